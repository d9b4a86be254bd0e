function F = lameg_spm_inverse_f(fname, val)
% Free energy of inversion VAL as SPM reads it (D.inv{val}.inverse.F, first window).
D = spm_eeg_load(fname);
F = D.inv{val}.inverse.F(1);
end
