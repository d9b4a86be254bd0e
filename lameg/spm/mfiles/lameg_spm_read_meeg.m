function [data, labels, coilpos, fsample] = lameg_spm_read_meeg(fname)
% What SPM reads from a dataset (spm_eeg_load): data, channel labels, MEG coil positions,
% sampling rate. Used to check that files written by lameg load in SPM unchanged.
D = spm_eeg_load(fname);
data = D(:, :, :);
labels = D.chanlabels;
grad = D.sensors('MEG');
if isempty(grad)
    coilpos = zeros(0, 3);
else
    coilpos = grad.coilpos;
end
fsample = D.fsample;
end
