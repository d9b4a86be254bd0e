function lameg_spm_coregister(fname, val, ctx, iskull, oskull, scalp, fidlabels, fidpnt, voltype, useheadshape)
% Head model of SPM's batch (spm_cfg_eeg_inv_headmodel) for custom meshes in MRI space.
% The meshing step of the batch (inverse-normalising a template) is replaced by the given
% individual meshes with an identity MNI affine; co-registration (spm_eeg_inv_datareg_ui),
% forward model (spm_eeg_inv_forward) and gain matrix (spm_eeg_lgainmat) are SPM's.
D = spm_eeg_load(fname);
D.val = val;
if ~isfield(D, 'inv') || isempty(D.inv)
    D.inv = {struct('mesh', [])};
end
fidlabels = cellstr(fidlabels);
fidlabels = fidlabels(:);
inv = struct();
inv.date = strvcat(date, datestr(now, 15));
inv.comment = {'lameg SPM back end'};
inv.method = 'Imaging';
mesh = struct();
mesh.template = 0;
mesh.Affine = eye(4);
mesh.sMRI = '';
mesh.Msize = 2;
mesh.tess_ctx = ctx;
mesh.tess_scalp = scalp;
mesh.tess_oskull = oskull;
mesh.tess_iskull = iskull;
mesh.tess_mni = export(gifti(ctx), 'spm');
if ~isempty(scalp)
    s = export(gifti(scalp), 'spm');
    mesh.fid.pnt = double(s.vert);
    mesh.fid.tri = double(s.face);
else
    mesh.fid.pnt = zeros(0, 3);
    mesh.fid.tri = zeros(0, 3);
end
mesh.fid.unit = 'mm';
mesh.fid.fid.pnt = fidpnt;
mesh.fid.fid.label = fidlabels;
inv.mesh = mesh;
D.inv{val} = inv;

meegfid = D.fiducials;
selection = spm_match_str(meegfid.fid.label, fidlabels);
meegfid.fid.pnt = meegfid.fid.pnt(selection, :);
meegfid.fid.label = meegfid.fid.label(selection);
mrifid = [];
mrifid.pnt = mesh.fid.pnt;
mrifid.fid.pnt = fidpnt;
mrifid.fid.label = fidlabels;
D = spm_eeg_inv_datareg_ui(D, val, meegfid, mrifid, useheadshape);

D.inv{val}.forward = struct([]);
for j = 1:numel(D.inv{val}.datareg)
    if strcmp(D.inv{val}.datareg(j).modality, 'MEG')
        D.inv{val}.forward(j).voltype = voltype;
    else
        D.inv{val}.forward(j).voltype = 'EEG BEM';
    end
end
D = spm_eeg_inv_forward(D, val);
save(D);
[L, D] = spm_eeg_lgainmat(D);
save(D);
end
