function lameg_spm_run_batch(fname)
% Run the SPM batch stored in FNAME (variable matlabbatch) without the GUI.
S = load(fname);
spm_get_defaults('cmdline', 1);
spm_jobman('run', S.matlabbatch);
end
