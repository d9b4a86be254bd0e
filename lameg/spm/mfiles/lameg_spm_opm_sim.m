function segmented = lameg_spm_opm_sim(folder, sfile, smri, seed)
% Run spm_opm_sim with the settings stored in SFILE (variable S) inside FOLDER, where it
% writes S.fname.mat/.dat. SMRI (the participant's MRI) is passed on as S.sMRI only when this
% SPM has its tissue probability maps (tpm/TPM.nii), which the segmentation behind S.sMRI
% needs; otherwise spm_opm_sim starts from its template meshes and S's custom meshes replace
% them. SEED (empty: leave the generator) seeds rng for the sensor packing.
% Without the segmentation spm_opm_sim stores the cortex file name as mesh.tess_mni; it is
% replaced by the cortex itself (MRI space, SPM's vert/face struct), the template flag and
% affine are cleared and the MRI is recorded, as SPM's custom-mesh co-registration stores them.
% Returns true when the MRI was segmented.
L = load(sfile);
S = L.S;
segmented = ~isempty(smri) && exist(fullfile(spm('dir'), 'tpm', 'TPM.nii'), 'file') == 2;
if segmented
  S.sMRI = smri;
end
if ~isempty(seed)
  rng(seed);
end
here = pwd;
cd(folder);
try
  D = spm_opm_sim(S);
  if ~segmented
    D = spm_eeg_load(fullfile(folder, [S.fname '.mat']));
    D.inv{1}.mesh.tess_mni = export(gifti(D.inv{1}.mesh.tess_ctx), 'spm');
    % the meshes are the participant's (MRI space), not the template's: no template affine,
    % with the co-registration (toMNI = Affine * M1) rewritten so the forward model is the same
    A = D.inv{1}.mesh.Affine;
    D.inv{1}.mesh.Affine = eye(4);
    D.inv{1}.mesh.template = 0;
    if ~isempty(smri)
      D.inv{1}.mesh.sMRI = smri;
    end
    for k = 1:numel(D.inv{1}.datareg)
      D.inv{1}.datareg(k).toMNI = A \ D.inv{1}.datareg(k).toMNI;
      D.inv{1}.datareg(k).fromMNI = inv(D.inv{1}.datareg(k).toMNI);
    end
    save(D);
  end
catch err
  cd(here);
  rethrow(err);
end
cd(here);
end
