"""SPM co-registration and forward models (``backend='spm'`` of ``lameg.invert.coregister_mesh``).

:func:`lameg.invert.coregister` resolves the surface set's meshes and calls
:func:`coregister_mesh` of the selected back end, this one with ``backend='spm'``.

What SPM runs is its head-model batch (``spm_cfg_eeg_inv_headmodel``) for custom meshes, minus
the meshing step: SPM's meshing inverse-normalises template meshes from the MRI (it needs
SPM's ``tpm/`` and yields an MNI warp that laMEG's custom cortical meshes never use). Here the
individual meshes in MRI space are handed to SPM directly (``mesh.Affine`` = identity,
``mesh.tess_mni`` = the cortex, as the native back end and SPM's custom-mesh route store them),
then SPM's own ``spm_eeg_inv_datareg_ui`` (fiducial co-registration), ``spm_eeg_inv_forward``
(volume conductor) and ``spm_eeg_lgainmat`` (gain matrix, with the dipole orientations of the
mesh's GIfTI ``VECTOR`` array, which SPM reads as ``normals``) compute everything else, writing
``D.other.inv{k}`` and ``SPMgainmatrix_<name>_<k>.mat`` exactly where the native back end does.

Supported ``forward_model_type``: ``'Single Shell'``, ``'Single Sphere'``,
``'MEG Local Spheres'``. ``'MNE BEM'`` is native only. SPM's MEG models ignore the outer skull;
SPM nevertheless transforms every mesh, so a missing outer skull (or scalp, for the shell) is
replaced by the inner skull (or the scalp by the inner skull) and recorded as such.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..._docs import fill_doc
from ...exceptions import (
    LamegFileNotFoundError,
    LamegNotImplementedError,
    LamegValueError,
)
from ...io.spm_inv import n_inversions
from .._shared import head_model_index, mri_fiducials
from . import _common

__all__ = ["coregister_mesh", "SPM_FORWARD_MODEL_TYPES"]

#: ``forward_model_type`` values the SPM back end runs.
SPM_FORWARD_MODEL_TYPES = ("Single Shell", "Single Sphere", "MEG Local Spheres")


@fill_doc
def coregister_mesh(
    fid_coords: Mapping[str, Sequence[float]],
    data_fname: str | os.PathLike,
    mesh_fname,
    iskull_fname=None,
    scalp_fname=None,
    forward_model_type: str = "Single Shell",
    orientations: str = "mesh",
    inversion_idx: int = 0,
    *,
    fid_labels: Sequence[str] = ("nas", "lpa", "rpa"),
    oskull_fname=None,
    useheadshape: bool = False,
    cache_dir=None,
    viz: bool = True,
    verbose: bool = False,
    spm=None,
    spm_instance=None,
) -> None:
    """Co-register and compute the forward model of one cortical mesh with SPM.

    The SPM implementation of :func:`lameg.invert.coregister_mesh` (arguments validated there):
    same inputs and result as the native back end (``D.other.inv{inversion_idx + 1}`` and the
    gain file beside the dataset), computed by SPM as the module docstring describes.

    Parameters
    ----------
    %(fid_coords)s
    %(data_fname)s
    mesh_fname : str, path-like, GiftiImage or (vertices, faces[, orientations])
        Cortical (multilayer) mesh in scanner RAS mm; an in-memory mesh is written beside the
        dataset as ``lameg_spm_cortex.gii`` (SPM reads files).
    iskull_fname, scalp_fname : str, path-like, GiftiImage, tuple or None
        Inner skull (needed by 'Single Shell') and scalp (needed by the spheres), MRI mm.
    forward_model_type : {'Single Shell', 'Single Sphere', 'MEG Local Spheres'}
        SPM's volume conductor; ``'MNE BEM'`` is native only
        (:class:`~lameg.exceptions.LamegNotImplementedError`).
    orientations : {'mesh', 'normals'}
        ``'mesh'``: the GIfTI ``VECTOR`` array as dipole orientations; ``'normals'``: SPM's
        vertex normals (the array is dropped from a copy of the mesh).
    %(inversion_idx)s
        At most the current number of entries (then a new entry is appended).
    %(fid_labels)s
    oskull_fname : str, path-like, GiftiImage, tuple or None
        Outer skull mesh; SPM's MEG models do not use it (None: the inner skull is handed to
        SPM in its place).
    useheadshape : bool
        Refine the registration with the digitised head shape (SPM's ICP onto the scalp).
    cache_dir : None
        The native back end's gain cache; must be None or False (SPM computes the gain).
    %(spm_viz_verbose)s
    %(spm_engine)s
    %(spm_instance_direct)s

    Returns
    -------
    None
        Results are stored in the dataset.
    """
    from ...io.spm_meeg import load_meeg

    if cache_dir not in (None, False):
        raise LamegValueError("cache_dir is the native back end's gain cache; SPM computes its "
                              "gain matrix itself (leave cache_dir=None with backend='spm')")
    del viz, verbose
    if forward_model_type not in SPM_FORWARD_MODEL_TYPES:
        if forward_model_type in ("MNE BEM", "MEG OpenMEEG BEM"):
            raise LamegNotImplementedError(
                f"forward_model_type={forward_model_type!r} is not available with "
                "backend='spm' (MNE BEM is native only; SPM's OpenMEEG BEM needs the OpenMEEG "
                "binaries); use 'Single Shell', 'Single Sphere' or 'MEG Local Spheres'")
        raise LamegValueError(f"forward_model_type must be one of {SPM_FORWARD_MODEL_TYPES}, got "
                              f"{forward_model_type!r}")
    if orientations not in ("mesh", "normals"):
        raise LamegValueError("orientations must be 'mesh' or 'normals'")
    if not isinstance(fid_coords, Mapping):
        raise LamegValueError("fid_coords must be a dict {'nas': [x, y, z], ...} in MRI mm")
    data_fname = Path(data_fname)
    if not data_fname.is_file():
        raise LamegFileNotFoundError(f"dataset {data_fname} not found")
    meeg = load_meeg(data_fname)
    k = head_model_index(inversion_idx, n_inversions(meeg))
    folder = data_fname.parent
    ctx = _common.as_gifti_file(mesh_fname, "cortex", folder)
    if orientations == "normals":
        ctx = _common.without_normals(ctx, folder)
    iskull = None if iskull_fname is None else _common.as_gifti_file(iskull_fname, "iskull",
                                                                      folder)
    scalp = None if scalp_fname is None else _common.as_gifti_file(scalp_fname, "scalp", folder)
    oskull = None if oskull_fname is None else _common.as_gifti_file(oskull_fname, "oskull",
                                                                      folder)
    if forward_model_type == "Single Shell" and iskull is None:
        raise LamegFileNotFoundError("the Single Shell model needs the inner skull: pass "
                                     "iskull_fname")
    if forward_model_type != "Single Shell" and scalp is None:
        raise LamegFileNotFoundError(f"SPM fits the {forward_model_type} model to the scalp: "
                                     "pass scalp_fname")
    any_head = iskull or scalp
    iskull = iskull or any_head
    scalp = scalp or any_head
    oskull = oskull or iskull
    fid_labels = [str(x) for x in fid_labels]
    mri_fid = mri_fiducials(fid_coords, fid_labels)
    absent = [lab for lab in fid_labels if lab not in mri_fid]
    if absent:
        raise LamegValueError(f"fid_coords has no fiducial {absent[0]!r}")
    pnt = np.asarray([mri_fid[lab] for lab in fid_labels], dtype=float)
    if pnt.shape != (len(fid_labels), 3) or not np.isfinite(pnt).all():
        raise LamegValueError("fid_coords values must be finite [x, y, z] in mm")
    fids = meeg.fiducials()
    meg_labels = [str(x) for x in (fids.get("fid") or {}).get("label", [])] if fids else []
    missing = [lab for lab in fid_labels if meg_labels and lab not in meg_labels]
    if missing:
        raise LamegValueError(f"fiducials {missing} are not in {data_fname.name} "
                              f"(it has {meg_labels}); check fid_labels")
    from ...io.spm_inv import dataset_lock

    eng = _common.engine(spm, spm_instance)
    with dataset_lock(data_fname):
        eng.call("lameg_spm_coregister", _common.abspath(data_fname), float(k + 1), ctx,
                 iskull, oskull, scalp, fid_labels, pnt, forward_model_type,
                 float(bool(useheadshape)), nargout=0)
