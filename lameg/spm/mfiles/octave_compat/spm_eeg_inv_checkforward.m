function spm_eeg_inv_checkforward(varargin)
% Octave without a display cannot draw SPM's forward-model check figure: skipped (no output).
end
