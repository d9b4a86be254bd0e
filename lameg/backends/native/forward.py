"""Native co-registration and forward-model façade (laMEG 0.2.1 ``lameg.invert`` semantics).

``coregister`` / ``coregister_mesh`` do what laMEG's SPM head-model batch does, natively:

1. rigid MEG -> MRI registration from the fiducials (Kabsch, ``spm_eeg_inv_datareg``), optionally
   refined with the digitised head shape (``useheadshape=True``, ICP on the scalp);
2. the volume conductor in the MEG head frame (metres): ``'Single Shell'`` (Nolte, SPM/FieldTrip
   defaults), ``'Single Sphere'`` (fitted to the scalp as SPM does, to the inner skull when there is
   no scalp), ``'MEG Local Spheres'``, or ``'MNE BEM'`` (single-layer BEM through MNE-Python);
3. the gain matrix of the cortical mesh with its stored orientations (GIfTI ``VECTOR`` array,
   rotated into the head frame) or SPM's vertex normals, rank-2 reduced, in data units per nA m;
4. SPM's storage: ``D.other.inv{k}`` with ``mesh``, ``datareg``, ``forward`` and ``gainmat``, and
   ``SPMgainmatrix_<base>_<k>.mat`` (``G`` channels x sources, ``label``) next to the data. The gain
   file is written first, then the header, each atomically; the ``.dat`` is never touched.

Gain matrices are cached by content (mesh vertices and orientations, sensors, head model,
transform) in ``cache_dir`` (default ``$LAMEG_CACHE_DIR/gain`` or ``~/.cache/lameg/gain``), in
blocks of sources, so that recomputing an unchanged model -- for instance every layer of an
11-layer model comparison -- reads the cache instead.

Differences from SPM, by design: no MNI warp is estimated (``mesh.Affine`` is the identity and
``mesh.tess_mni`` holds the cortex in MRI space, like the custom-mesh route of SPM's batch; laMEG's
simulations address vertices through these coordinates, so they stay consistent); the gain matrix
is computed at co-registration rather than lazily at the first inversion.
"""

from __future__ import annotations

import datetime
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from ..._utils import logger
from ...exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegNotImplementedError,
    LamegValueError,
)
from ...forward.coreg import apply_transform, points_outside_surface, register_fiducials
from ...forward.gain import compute_gain, spm_cond_units
from ...forward.normals import normalize_rows, spm_mesh_normals
from ...forward.sensors import SensorArray, length_scale
from ...forward.singleshell import SingleShellModel
from ...forward.sphere import SphereModel, fit_local_spheres, fit_sphere
from ...io.matfile import MatCell
from ...io.spm_inv import head_model_writer, n_inversions
from .._shared import head_model_index, mri_fiducials

__all__ = ["coregister_mesh", "FORWARD_MODEL_TYPES"]

#: Accepted ``forward_model_type`` values (SPM names, plus the MNE BEM).
FORWARD_MODEL_TYPES = ("Single Shell", "Single Sphere", "MEG Local Spheres", "MNE BEM")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _load_meeg(data_fname):
    from ...io.spm_meeg import load_meeg

    path = Path(data_fname)
    if not path.is_file():
        raise LamegFileNotFoundError(f"MEG data file not found: {path}")
    return load_meeg(path)


def _read_mesh(mesh, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """(vertices mm, faces 0-based, VECTOR normals or None, file name or '') from many inputs."""
    from ...io.gifti import gifti_arrays, read_surf_gifti

    if isinstance(mesh, nib.gifti.GiftiImage):
        v, f, n = gifti_arrays(mesh, what)
        return v, f, n, ""
    if isinstance(mesh, tuple) and len(mesh) in (2, 3):
        v = np.asarray(mesh[0], dtype=float)
        f = np.asarray(mesh[1], dtype=np.int64)
        n = None if len(mesh) == 2 or mesh[2] is None else np.asarray(mesh[2], dtype=float)
        return v, f, n, ""
    if isinstance(mesh, (str, os.PathLike)):
        v, f, n = read_surf_gifti(mesh)
        return v, f, n, str(Path(mesh).resolve())
    raise LamegValueError(
        f"{what} must be a GIfTI file name, a nibabel GiftiImage or a (vertices, faces) tuple; "
        f"got {type(mesh).__name__}"
    )


def _meg_fiducials(meeg) -> tuple[np.ndarray, list[str], np.ndarray]:
    fid = meeg.fiducials()
    pnt = np.asarray(fid["fid"]["pnt"], dtype=float).reshape(-1, 3)
    labels = list(fid["fid"]["label"])
    if len(pnt) == 0 or not labels:
        raise LamegDataError(
            f"{meeg.fname.name} has no MEG fiducials (D.fiducials.fid); they are needed to "
            "co-register the MEG head frame with the MRI"
        )
    s = length_scale(fid.get("unit") or "mm") * 1e3  # -> mm
    hsp = np.asarray(fid["pnt"], dtype=float).reshape(-1, 3) * s
    return pnt * s, labels, hsp


def _head_model(kind: str, iskull_head, scalp_head, sensors):
    """Build the volume conductor (head frame, m) and its SPM ``vol`` struct."""
    if kind == "Single Shell":
        if iskull_head is None:
            raise _no_iskull_error()
        model = SingleShellModel(iskull_head[0], iskull_head[1], order=10)
        vol = {"bnd": {"pos": model.bnd_pos, "tri": (model.bnd_tri + 1).astype(float)},
               "type": "singleshell", "order": 10.0, "unit": "m"}
        return model, vol
    if kind == "Single Sphere":
        surf = scalp_head if scalp_head is not None else iskull_head
        if surf is None:
            raise LamegValueError(
                "the Single Sphere model is fitted to the scalp (or, without one, the inner "
                "skull): pass scalp_fname= or iskull_fname="
            )
        o, r = fit_sphere(surf[0])
        return SphereModel(o, r), {"o": o, "r": float(r), "type": "singlesphere", "unit": "m"}
    if kind == "MEG Local Spheres":
        surf = scalp_head if scalp_head is not None else iskull_head
        if surf is None:
            raise LamegValueError(
                "MEG Local Spheres are fitted to the scalp: pass scalp_fname= (or iskull_fname=)"
            )
        model = fit_local_spheres(surf[0], sensors)
        vol = {"o": model.origins, "r": model.radii, "label": MatCell.column(model.labels),
               "type": "localspheres", "unit": "m"}
        return model, vol
    if kind == "MNE BEM":
        if iskull_head is None:
            raise _no_iskull_error()
        from ...forward.bem import BEMModel

        model = BEMModel(iskull_head[0], iskull_head[1])
        vol = {"bnd": {"pos": model.bnd_pos, "tri": (model.bnd_tri + 1).astype(float)},
               "type": "mne_bem", "cond": 0.3, "unit": "m"}
        return model, vol
    if kind == "MEG OpenMEEG BEM":
        raise LamegNotImplementedError(
            "'MEG OpenMEEG BEM' is not available natively; use 'MNE BEM' (single-layer BEM "
            "through MNE-Python) or 'Single Shell'"
        )
    raise LamegValueError(
        f"unknown forward_model_type {kind!r}; choose one of {list(FORWARD_MODEL_TYPES)}"
    )


def _no_iskull_error() -> LamegFileNotFoundError:
    return LamegFileNotFoundError(
        "no inner-skull mesh is available for the head model. Provide one with "
        "iskull_fname=<GIfTI, scanner RAS mm>, or create the surface set's head meshes so that "
        "surf_set.load_head_mesh('iskull') finds one (e.g. from an MNE watershed BEM), or use "
        "forward_model_type='Single Sphere' with a scalp mesh"
    )


def _grad_struct(sensors: SensorArray, grad_type: str) -> dict:
    """FieldTrip grad struct in metres / tesla (SPM's ``forward.sensors``)."""
    out = {
        "balance": {"current": "none"},
        "chanori": sensors.chanori if sensors.chanori is not None else np.zeros((0, 3)),
        "chanpos": sensors.chanpos if sensors.chanpos is not None else np.zeros((0, 3)),
        "chantype": MatCell.column(list(sensors.chantype)),
        "chanunit": MatCell.column(list(sensors.chanunit)),
        "coilori": sensors.coilori,
        "coilpos": sensors.coilpos,
        "label": MatCell.column(list(sensors.labels)),
        "tra": sensors.tra,
        "type": grad_type,
        "unit": "m",
    }
    return out


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def coregister_mesh(
    *,
    fid_coords: Mapping[str, Sequence[float]],
    data_fname: str | os.PathLike,
    mesh_fname,
    iskull_fname=None,
    scalp_fname=None,
    forward_model_type: str = "Single Shell",
    orientations: str = "mesh",
    inversion_idx: int = 0,
    fid_labels: Sequence[str] = ("nas", "lpa", "rpa"),
    oskull_fname=None,
    useheadshape: bool = False,
    cache_dir: str | os.PathLike | bool | None = None,
    viz: bool = False,
    verbose: bool = False,
) -> None:
    """Native implementation of :func:`lameg.invert.coregister_mesh` (arguments validated there).

    Parameters
    ----------
    fid_coords, data_fname, mesh_fname, iskull_fname, scalp_fname, forward_model_type, \
orientations, inversion_idx, fid_labels, oskull_fname, useheadshape, cache_dir, viz, verbose
        See :func:`lameg.invert.coregister_mesh`; ``viz`` has no effect natively.

    Returns
    -------
    None
    """
    del viz
    meeg = _load_meeg(data_fname)
    k = head_model_index(inversion_idx, n_inversions(meeg))
    if orientations not in ("mesh", "normals"):
        raise LamegValueError("orientations must be 'mesh' or 'normals'")
    if not isinstance(fid_coords, Mapping):
        raise LamegValueError("fid_coords must be a dict {'nas': [x, y, z], ...} in MRI mm")

    # ---- geometry -----------------------------------------------------------------------
    ctx_v, ctx_f, ctx_n, ctx_name = _read_mesh(mesh_fname, "mesh_fname")
    if len(ctx_v) == 0:
        raise LamegDataError("the cortical mesh has no vertices")
    iskull = None if iskull_fname is None else _read_mesh(iskull_fname, "iskull_fname")
    scalp = None if scalp_fname is None else _read_mesh(scalp_fname, "scalp_fname")
    oskull_name = ""
    if oskull_fname is not None and isinstance(oskull_fname, (str, os.PathLike)):
        oskull_name = str(Path(oskull_fname).resolve())

    # ---- registration ---------------------------------------------------------------------
    fid_meg, meg_labels, headshape = _meg_fiducials(meeg)
    fid_labels = [str(x) for x in fid_labels]
    mri_fid = mri_fiducials(fid_coords, fid_labels)
    reg = register_fiducials(
        fid_meg, mri_fid, fid_labels, meg_labels=meg_labels,
        headshape=headshape, scalp=None if scalp is None else scalp[0], useheadshape=useheadshape,
        scalp_faces=None if scalp is None else scalp[1],
    )
    logger.info("co-registration: fiducial residuals %s mm", np.round(reg.residuals_mm, 3))
    m1 = reg.M1
    from_mni_m = np.diag([1e-3, 1e-3, 1e-3, 1.0]) @ np.linalg.inv(m1)  # MRI mm -> head m

    # ---- sensors ---------------------------------------------------------------------------
    grad = meeg.sensors("MEG")
    if grad is None:
        raise LamegDataError(f"{meeg.fname.name} has no MEG sensors (D.sensors.meg)")
    chan_idx = meeg.indchantype(["MEG", "MEGPLANAR"], "GOOD")
    if len(chan_idx) == 0:
        raise LamegDataError(f"{meeg.fname.name} has no good MEG channels")
    labels = [meeg.chanlabels[i] for i in chan_idx]
    sensors = SensorArray.from_grad(grad, channels=labels)
    data_units = [meeg.chanunits[i] or "fT" for i in chan_idx]
    data_units = [u if u not in ("", "unknown") else "fT" for u in data_units]

    # ---- head model ------------------------------------------------------------------------
    iskull_head = None if iskull is None else (apply_transform(iskull[0], from_mni_m), iskull[1])
    scalp_head = None if scalp is None else (apply_transform(scalp[0], from_mni_m), scalp[1])
    cortex_head = apply_transform(ctx_v, from_mni_m)
    model, vol = _head_model(forward_model_type, iskull_head, scalp_head, sensors)
    if iskull is not None:
        outside, dist = points_outside_surface(ctx_v, iskull[0], iskull[1], point_faces=ctx_f)
        n_out = int(outside.sum())
        if n_out > 0.5 * len(ctx_v):
            raise LamegDataError(
                f"{n_out} of {len(ctx_v)} cortical vertices lie outside the inner skull: the mesh "
                "and the inner skull are not in the same space (both must be scanner RAS mm)"
            )
        if n_out:
            warnings.warn(
                f"{n_out} cortical vertices lie outside the inner skull (up to "
                f"{dist[outside].max():.1f} mm from it); their lead fields are inaccurate",
                stacklevel=2,
            )

    # ---- orientations ----------------------------------------------------------------------
    if orientations == "mesh" and ctx_n is None:
        warnings.warn(
            "the cortical mesh has no orientation (VECTOR) array; using SPM's vertex normals",
            stacklevel=2,
        )
    if orientations == "mesh" and ctx_n is not None:
        if ctx_n.shape != ctx_v.shape:
            raise LamegDataError("the mesh orientation array does not match its vertices")
        # SPM: [n 1] inv(M) with M = fromMNI (head <- MRI), i.e. the rotation of M1 transposed
        ori_head = normalize_rows(ctx_n @ m1[:3, :3])
    else:
        ori_head = spm_mesh_normals(cortex_head, ctx_f)

    # ---- gain ------------------------------------------------------------------------------
    if cache_dir is False:
        cache = False
    elif cache_dir is None:
        cache = True
    else:
        cache = Path(cache_dir)
    # the gain is computed straight into its new file (no gain-sized copy); the header, written
    # at the end of the block, commits it
    with head_model_writer(meeg, labels, len(cortex_head)) as pending:
        G = compute_gain(cortex_head, ori_head, sensors, model, chanunits=data_units,
                         cache=cache, verbose=verbose, out=pending.gain)
        G, scale = spm_cond_units(G, siunits=True, out=G)

        # ---- D.other.inv{k} (SPM layout) ---------------------------------------------------
        scalp_mm = scalp[0] if scalp is not None else np.zeros((0, 3))
        scalp_tri = (scalp[1] + 1).astype(float) if scalp is not None else np.zeros((0, 3))
        fid_mri_pnt = reg.fid_mri
        inv_m1 = np.linalg.inv(m1)
        mesh = {
            "template": 0.0,
            "Affine": np.eye(4),
            "sMRI": "",
            "Msize": 2.0,
            "tess_ctx": ctx_name,
            "tess_mni": {"vert": ctx_v, "face": (ctx_f + 1).astype(np.uint32)},
            "tess_scalp": scalp[3] if scalp is not None else "",
            "tess_oskull": oskull_name,
            "tess_iskull": iskull[3] if iskull is not None else "",
            "fid": {"pnt": scalp_mm, "tri": scalp_tri, "unit": "mm",
                    "fid": {"pnt": fid_mri_pnt, "label": MatCell.column(fid_labels)}},
        }
        datareg = {
            "sensors": grad,
            "fid_eeg": {"fid": {"pnt": reg.fid_meg, "label": MatCell.column(fid_labels)},
                        "pnt": headshape, "unit": "mm"},
            "fid_mri": {"pnt": apply_transform(scalp_mm, inv_m1) if len(scalp_mm) else scalp_mm,
                        "fid": {"pnt": apply_transform(fid_mri_pnt, inv_m1),
                                "label": MatCell.column(fid_labels)}},
            "toMNI": m1,
            "fromMNI": inv_m1,
            "modality": "MEG",
            "useheadshape": float(bool(useheadshape)),
            "fid_residuals_mm": reg.residuals_mm,
        }
        forward = {
            "voltype": forward_model_type,
            "vol": vol,
            "mesh": {"vert": cortex_head, "face": (ctx_f + 1).astype(np.uint32)},
            "mesh_correction": None,
            "modality": "MEG",
            "siunits": 1.0,
            "sensors": _grad_struct(sensors, str(grad.get("type", "meg"))),
            "toMNI": m1 @ np.diag([1e3, 1e3, 1e3, 1.0]),
            "fromMNI": from_mni_m,
            "channels": MatCell.column(labels),
            "scale": float(scale),
            "orientations": ori_head,
        }
        entry = {
            "mesh": mesh,
            "date": datetime.datetime.now().strftime("%d-%b-%Y %H:%M:%S"),
            "comment": f"lameg native head model ({forward_model_type})",
            "datareg": datareg,
            "forward": forward,
            "method": "Imaging",
        }
        pending.commit(k, entry)
