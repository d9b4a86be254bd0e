function spm_eeg_inv_checkforward(varargin)
% No display here: SPM's forward-model check figure is skipped.
end
