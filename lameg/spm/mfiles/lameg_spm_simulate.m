function outname = lameg_spm_simulate(fname, val, prefix, coords, signals, woi, snr, fwhm, moments, seed)
% Current-density simulation with SPM's building blocks, as spm_eeg_simulate does it
% (same steps, same SNR definition), without its figures (Octave without a display has no
% graphics toolkit, and spm_eeg_simulate draws several figures before saving).
%   FNAME   template dataset (not modified), VAL its forward model
%   COORDS  source positions in MNI/MRI mm (snapped to the nearest tess_mni vertex)
%   SIGNALS Nsources x Nsamples-in-WOI (nA m units after scaling by MOMENTS)
%   WOI     [start end] in s; SNR in dB; FWHM patch widths in mm; SEED [] or a number
D = spm_eeg_load(fname);
D.val = val;
[~, b] = fileparts(D.fname);
Dnew = D.clone([prefix b]);
vert = Dnew.inv{val}.mesh.tess_mni.vert;
idx = zeros(1, size(coords, 1));
for d = 1:size(coords, 1)
    [~, idx(d)] = min(sum(bsxfun(@minus, vert, coords(d, :)).^2, 2));
end
try
    chanind = Dnew.indchantype({'MEG', 'MEGPLANAR'}, 'GOOD');
catch
    chanind = Dnew.indchantype(modality(Dnew), 'GOOD');
end
Dnew = units(Dnew, chanind, 'fT');
[L, Dnew] = spm_eeg_lgainmat(Dnew);
if isfield(Dnew.inv{val}.forward, 'scale')
    L = L ./ Dnew.inv{val}.forward.scale;
end
base = struct('FWHMmm', fwhm(:)', 'nAm', moments(:));
priordir = tempname;
mkdir(priordir);
Qp = spm_eeg_invert_setuppatches(idx, Dnew.inv{val}.forward.mesh, base, priordir, [], L);
if exist('OCTAVE_VERSION', 'builtin')
    confirm_recursive_rmdir(false, 'local');  % Octave would prompt
end
rmdir(priordir, 's');
f1ind = find(Dnew.time >= woi(1) & Dnew.time <= woi(2));
if numel(f1ind) ~= size(signals, 2)
    error('lameg:simwoi', 'Signal has %d samples, the window %d', size(signals, 2), numel(f1ind));
end
Y = zeros(size(L, 1), Dnew.nsamples);
for j = 1:numel(Qp)
    Y(:, f1ind) = Y(:, f1ind) + (L * Qp{j}.q) * signals(j, :);
end
noise = mean(std(Y')) * 10^(-snr / 20);
if ~isempty(seed)
    randn('state', seed);
end
for i = 1:Dnew.ntrials
    Dnew(chanind, :, i) = Y;
    Dnew(:, :, i) = Dnew(:, :, i) + randn(Dnew.nchannels, Dnew.nsamples) .* noise;
end
Dnew.save;
outname = fullfile(Dnew.path, Dnew.fname);
end
