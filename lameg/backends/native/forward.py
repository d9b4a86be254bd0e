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
    LamegError,
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

__all__ = [
    "coregister",
    "coregister_mesh",
    "get_lead_field_rms_diff",
    "load_forward_model_vertices",
    "check_inversion_exists",
    "InversionNotFoundError",
    "FORWARD_MODEL_TYPES",
]

#: Accepted ``forward_model_type`` values (SPM names, plus the MNE BEM).
FORWARD_MODEL_TYPES = ("Single Shell", "Single Sphere", "MEG Local Spheres", "MNE BEM")


class InversionNotFoundError(LamegError, KeyError):
    """The data file has no ``D.other.inv{k}`` for the requested inversion index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


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
        from ...io.matfile import MatCell

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
    from ...io.matfile import MatCell

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


def _gainmat_name(meeg, k: int) -> str:
    return f"SPMgainmatrix_{meeg.fname.stem}_{k}.mat"


def _inv_entry(meeg, inversion_idx: int) -> dict:
    inv = meeg.inv
    if inversion_idx < 0 or inversion_idx >= len(inv) or not inv[inversion_idx]:
        raise InversionNotFoundError(
            f"{meeg.fname.name} has no forward model / inversion with index {inversion_idx} "
            f"(it has {len(inv)}); run lameg.invert.coregister(..., inversion_idx={inversion_idx})"
        )
    return inv[inversion_idx]


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


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
    cache_dir: str | os.PathLike | bool | None = None,
    verbose: bool = False,
) -> None:
    """Co-register MEG and MRI, build the head model and the gain matrix of one cortical mesh.

    Parameters
    ----------
    fid_coords : dict
        MRI fiducials in scanner RAS **mm**, e.g. ``{'nas': [x, y, z], 'lpa': ..., 'rpa': ...}``
        (as returned by ``lameg.util.get_fiducial_coords``).
    data_fname : str or path-like
        SPM M/EEG ``.mat`` file with MEG sensors and fiducials. Its header is updated in place
        (``D.other.inv{inversion_idx + 1}``); the ``.dat`` is not touched.
    mesh_fname : str, path-like, GiftiImage or (vertices, faces[, orientations])
        Cortical (multilayer) mesh in scanner RAS mm.
    iskull_fname, scalp_fname, oskull_fname : optional
        Inner skull (needed by 'Single Shell' and 'MNE BEM'), scalp (for the spheres and the
        head-shape ICP), outer skull (stored only) -- file names, GiftiImages or tuples, MRI mm.
    forward_model_type : {'Single Shell', 'Single Sphere', 'MEG Local Spheres', 'MNE BEM'}
    orientations : {'mesh', 'normals'}
        ``'mesh'``: the GIfTI ``VECTOR`` array (laMEG's dipole orientations; SPM's vertex normals
        when the file has none, with a warning); ``'normals'``: SPM's vertex normals.
    inversion_idx : int
        0-based index of the head model in ``D.other.inv`` (SPM ``val = inversion_idx + 1``);
        at most the current number of entries (appending).
    fid_labels : sequence of str
        Fiducials to pair; must exist in both ``fid_coords`` and the data file.
    useheadshape : bool
        Refine the registration with the digitised head shape (ICP onto the scalp).
    cache_dir : path, bool or None
        Gain cache folder; None: default location; False: no cache.
    verbose : bool
        Progress output.

    Returns
    -------
    None
        Results are stored in the data file (laMEG semantics).
    """
    meeg = _load_meeg(data_fname)
    inv = list(meeg.inv)
    k = int(inversion_idx)
    if k < 0 or k > len(inv):
        raise LamegValueError(
            f"inversion_idx={inversion_idx}: the file has {len(inv)} head model(s); use an index "
            f"between 0 and {len(inv)}"
        )
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
    # laMEG types fid_coords['nas'/'lpa'/'rpa'] under the names fid_labels (positionally)
    mri_fid = {}
    for i, lab in enumerate(fid_labels):
        if lab in fid_coords:
            mri_fid[lab] = fid_coords[lab]
        elif i < 3 and ("nas", "lpa", "rpa")[i] in fid_coords:
            mri_fid[lab] = fid_coords[("nas", "lpa", "rpa")[i]]
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
        outside, dist = points_outside_surface(ctx_v, iskull[0], iskull[1])
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
    G = compute_gain(cortex_head, ori_head, sensors, model, chanunits=data_units, cache=cache,
                     verbose=verbose)
    G, scale = spm_cond_units(G, siunits=True)
    val = k + 1
    gain_name = _gainmat_name(meeg, val)
    from ...io.matfile import MatCell
    from ...io.spm_meeg import write_gainmat

    # uncompressed MAT-5 (zlib would spend seconds per 100 MB on incompressible doubles);
    # HDF5-based v7.3 beyond MAT-5's 2 GB limit
    write_gainmat(meeg.path / gain_name, G, labels,
                  version="7.3" if G.nbytes > 2**31 - 2**20 else "6")

    # ---- D.other.inv{k} (SPM layout) -------------------------------------------------------
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
        "gainmat": gain_name,
        "orientations": ori_head,
    }
    entry = {
        "mesh": mesh,
        "date": datetime.datetime.now().strftime("%d-%b-%Y %H:%M:%S"),
        "comment": f"lameg native head model ({forward_model_type})",
        "datareg": datareg,
        "forward": forward,
        "gainmat": gain_name,
        "method": "Imaging",
    }
    if k == len(inv):
        inv.append(entry)
    else:
        inv[k] = entry
    meeg.save_inv(inv, val=val)


def coregister(
    fid_coords: Mapping[str, Sequence[float]],
    data_fname: str | os.PathLike,
    surf_set,
    layer_name: str | None = None,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    fid_labels: Sequence[str] = ("nas", "lpa", "rpa"),
    iskull_fname=None,
    oskull_fname=None,
    scalp_fname=None,
    forward_model_type: str = "Single Shell",
    inversion_idx: int = 0,
    viz: bool = True,
    spm_instance=None,
    *,
    useheadshape: bool = False,
    cache_dir: str | os.PathLike | bool | None = None,
    verbose: bool = False,
) -> None:
    """Co-register MEG with the participant's MRI and compute the forward model (laMEG API).

    The cortical mesh is ``surf_set.get_mesh_path(layer_name, stage=stage,
    orientation=orientation, fixed=fixed)`` (the multilayer mesh when ``layer_name`` is None),
    with its stored dipole orientations. The inner skull and scalp default to
    ``surf_set.load_head_mesh('iskull' / 'scalp')`` when not given.

    Parameters
    ----------
    fid_coords : dict
        MRI fiducials, scanner RAS mm (``lameg.util.get_fiducial_coords``).
    data_fname : str or path-like
        SPM M/EEG ``.mat`` file (header updated in place).
    surf_set : lameg.surf.LayerSurfaceSet
    layer_name, stage, orientation, fixed
        Select the mesh (see ``LayerSurfaceSet.get_mesh_path``).
    fid_labels : sequence of str
        Fiducial labels (``('nas', 'lpa', 'rpa')``).
    iskull_fname, oskull_fname, scalp_fname : str, optional
        Head meshes in scanner RAS mm (GIfTI).
    forward_model_type : {'Single Shell', 'Single Sphere', 'MEG Local Spheres', 'MNE BEM'}
    inversion_idx : int
        0-based head-model index (SPM ``val - 1``).
    viz, spm_instance
        Accepted for compatibility; ignored (no SPM runtime is used).
    useheadshape : bool
        Refine with the digitised head shape (ICP onto the scalp).
    cache_dir : path, bool or None
        Gain cache (see :func:`coregister_mesh`).
    verbose : bool

    Returns
    -------
    None
    """
    del viz, spm_instance
    mesh_fname = surf_set.get_mesh_path(layer_name, stage=stage, orientation=orientation,
                                        fixed=fixed)
    if not Path(mesh_fname).is_file():
        raise LamegFileNotFoundError(
            f"mesh {mesh_fname} does not exist; run surf_set.create() (or check layer_name, stage, "
            "orientation and fixed)"
        )

    def _head(kind, given):
        if given is not None:
            return given
        try:
            return surf_set.load_head_mesh(kind)
        except (FileNotFoundError, OSError, LamegError):
            return None

    iskull = _head("iskull", iskull_fname)
    scalp = _head("scalp", scalp_fname)
    if iskull is None and forward_model_type in ("Single Shell", "MNE BEM"):
        raise _no_iskull_error()
    coregister_mesh(
        fid_coords, data_fname, mesh_fname, iskull_fname=iskull, scalp_fname=scalp,
        forward_model_type=forward_model_type, orientations="mesh", inversion_idx=inversion_idx,
        fid_labels=fid_labels, oskull_fname=oskull_fname, useheadshape=useheadshape,
        cache_dir=cache_dir, verbose=verbose,
    )


def check_inversion_exists(data_file: str | os.PathLike, inversion_idx: int = 0) -> bool:
    """True when ``D.other.inv{inversion_idx + 1}`` exists; ``KeyError`` otherwise (laMEG).

    Raises
    ------
    InversionNotFoundError
        (a ``KeyError``) when ``D.other.inv`` is missing or too short.
    """
    meeg = _load_meeg(data_file)
    _inv_entry(meeg, int(inversion_idx))
    return True


def load_forward_model_vertices(data_file: str | os.PathLike, inversion_idx: int = 0) -> np.ndarray:
    """Source positions of a head model: ``D.other.inv{k}.mesh.tess_mni.vert`` (n, 3), mm.

    With the native pipeline these are the cortical mesh vertices in MRI (scanner RAS) mm; for
    files made by SPM they are SPM's MNI-warped cortex.
    """
    meeg = _load_meeg(data_file)
    entry = _inv_entry(meeg, int(inversion_idx))
    try:
        vert = entry["mesh"]["tess_mni"]["vert"]
    except (KeyError, TypeError):
        raise InversionNotFoundError(
            f"{meeg.fname.name}: D.other.inv{{{inversion_idx + 1}}} has no mesh.tess_mni; "
            "run coregister first"
        ) from None
    return np.asarray(vert, dtype=float).reshape(-1, 3)


def _gain_path(meeg, entry: Mapping, inversion_idx: int) -> Path:
    name = entry.get("gainmat") or (entry.get("forward") or {}).get("gainmat")
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    candidates = []
    if isinstance(name, str) and name:
        candidates += [meeg.path / Path(name.replace("\\", "/")).name, Path(name)]
    candidates.append(meeg.path / _gainmat_name(meeg, inversion_idx + 1))
    for c in candidates:
        if c.is_file():
            return c
    raise LamegFileNotFoundError(
        f"gain matrix for inversion {inversion_idx} of {meeg.fname.name} not found (looked for "
        f"{[str(c) for c in candidates]}); run coregister first"
    )


def get_lead_field_rms_diff(
    data_file: str | os.PathLike,
    surf_set,
    inversion_idx: int = 0,
    *,
    all_layers: bool = False,
    orientation: str = "link_vector",
    fixed: bool = True,
) -> np.ndarray:
    """RMS over channels of the lead-field difference between deep layers and the pial layer.

    ``rms_l[v] = sqrt(mean_c (G[c, l V + v] - G[c, v])^2)`` on the layer-major multilayer gain
    matrix (``V`` vertices per layer, layer 0 = pial).

    Parameters
    ----------
    data_file : str or path-like
        SPM M/EEG file with a multilayer head model.
    surf_set : lameg.surf.LayerSurfaceSet
        Gives ``n_layers`` and the vertices per layer.
    inversion_idx : int
    all_layers : bool
        Return every layer (shape (n_layers, V); row 0 is zero) instead of the deepest one.
    orientation, fixed
        Mesh variant used to count the vertices per layer (laMEG always used the defaults).

    Returns
    -------
    ndarray, shape (V,) or (n_layers, V)
        In the gain units (fT per nA m).
    """
    from ...io.spm_meeg import read_gainmat

    meeg = _load_meeg(data_file)
    entry = _inv_entry(meeg, int(inversion_idx))
    G, _ = read_gainmat(_gain_path(meeg, entry, int(inversion_idx)))
    n_layers = int(surf_set.n_layers)
    n_per = int(surf_set.get_vertices_per_layer(orientation=orientation, fixed=fixed))
    if G.shape[1] != n_layers * n_per:
        raise LamegDataError(
            f"the gain matrix has {G.shape[1]} sources, not {n_layers} layers x {n_per} vertices; "
            "was the head model computed on this surface set's multilayer mesh?"
        )
    layers = G.reshape(G.shape[0], n_layers, n_per)
    diff = layers - layers[:, :1, :]
    rms = np.sqrt(np.mean(diff * diff, axis=0))  # (n_layers, V)
    return rms if all_layers else rms[-1]
