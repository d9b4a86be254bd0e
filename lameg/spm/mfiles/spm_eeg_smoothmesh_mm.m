function allsmoothnames = spm_eeg_smoothmesh_mm(meshname, allfwhm, redo)
% Geodesic mm smoothing kernels of a mesh, as precomputed by lameg.
% FORMAT allsmoothnames = spm_eeg_smoothmesh_mm(meshname, allfwhm)
%
% Same interface and files as SPM's spm_eeg_smoothmesh_mm (FWHM<fwhm>_<mesh>.mat beside the
% mesh, variables QG and M), which spm_eeg_invert_classic calls for inverse.smooth < 0. SPM's
% own version fails in current SPM (spm_mesh_area(M, 1) is no longer a valid call) and has no
% multilayer variant; lameg computes the kernel (within layers, as laMEG does) before the
% inversion and this function hands its file name to SPM.
[a1, b1] = fileparts(meshname);
allsmoothnames = [];
for k = 1:numel(allfwhm)
    name = [a1 filesep sprintf('FWHM%3.2f_', allfwhm(k)) b1 '.mat'];
    if ~exist(name, 'file')
        error('lameg:nokernel', ['Smoothing kernel %s not found: with lameg''s SPM back end ' ...
            'the kernel is written by lameg before the inversion.'], name);
    end
    allsmoothnames = strvcat(allsmoothnames, name);
end
end
