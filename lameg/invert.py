"""Co-registration, forward models and source inversions (laMEG 0.2.1 ``lameg.invert`` API).

Every function validates its arguments here, before any file is touched, and then hands the
work to a back end (:mod:`lameg.backends`): lameg's own engine (``backend='native'``, the
default) or real SPM (``backend='spm'``, or implied by passing ``spm_instance=``). Both leave the
dataset in the same state -- SPM's ``D.other.inv{k}`` layout, read and written only by
:mod:`lameg.io.spm_inv` -- so either reads the other's results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._docs import docdict, fill_doc
from ._validate import (
    check_band_hz,
    check_fid_coords,
    check_float,
    check_int,
    check_option,
    check_path,
    check_window_ms,
    check_writable,
    validate_type,
)
from .backends import select_backend
from .backends.native.forward import FORWARD_MODEL_TYPES
from .backends.native.inverse import InversionSummary, compute_wois, invert
from .exceptions import (
    InversionNotFoundError,
    LamegDataError,
    LamegError,
    LamegFileNotFoundError,
    LamegValueError,
)
from .io.spm_inv import read_head_model
from .opm import opm_headmodel

__all__ = [
    "coregister",
    "coregister_mesh",
    "check_inversion_exists",
    "load_forward_model_vertices",
    "get_lead_field_rms_diff",
    "invert",
    "invert_ebb",
    "invert_ebb_layer",
    "invert_msp",
    "invert_sliding_window_ebb",
    "invert_sliding_window_ebb_layer",
    "invert_sliding_window_msp",
    "compute_wois",
    "InversionSummary",
    "InversionNotFoundError",
    "FORWARD_MODEL_TYPES",
    "opm_headmodel",
]

_FIDS = ("nas", "lpa", "rpa")


# ---------------------------------------------------------------------------------------------
# validation shared by the façades
# ---------------------------------------------------------------------------------------------


def _check_mesh_arg(mesh, name: str):
    if mesh is None or isinstance(mesh, tuple) or hasattr(mesh, "darrays"):
        return mesh
    return check_path(mesh, name)


def _check_inversion_args(d: dict) -> dict:
    """Validate the arguments shared by the inversion façades (in place, returns ``d``)."""
    d["data_fname"] = check_path(d["data_fname"], "data_fname")
    d["inversion_idx"] = check_int(d["inversion_idx"], "inversion_idx", min_value=0)
    d["patch_size"] = check_float(d["patch_size"], "patch_size", min_value=0, strict_min=True)
    if d.get("n_temp_modes") is not None:
        d["n_temp_modes"] = check_int(d["n_temp_modes"], "n_temp_modes", min_value=1)
    nsm = d.get("n_spatial_modes", "auto")
    if isinstance(nsm, str):
        check_option(nsm, ("auto", "all"), "n_spatial_modes")
    elif nsm is not None:
        d["n_spatial_modes"] = check_int(nsm, "n_spatial_modes", min_value=1)
    if d.get("foi") is not None:
        d["foi"] = check_band_hz(d["foi"], "foi")
    for key in ("woi", "wois"):
        if d.get(key) is not None:
            check_window_ms(d[key], key)
    if "n_folds" in d:
        d["n_folds"] = check_int(d["n_folds"], "n_folds", min_value=1)
    if "ideal_pc_test" in d:
        d["ideal_pc_test"] = check_float(d["ideal_pc_test"], "ideal_pc_test", min_value=0,
                                         max_value=99.999)
    if "win_size" in d:
        d["win_size"] = check_float(d["win_size"], "win_size", min_value=0, strict_min=True)
    for key in ("hann_windowing", "return_mu_matrix", "win_overlap", "fixed", "viz"):
        if key in d:
            validate_type(d[key], (bool, np.bool_), key)
    if d.get("layer_name") is not None:
        validate_type(d["layer_name"], str, "layer_name")
    surf_set = d.get("surf_set")
    if surf_set is not None and not hasattr(surf_set, "n_layers"):
        raise LamegValueError("surf_set must be a lameg.surf.LayerSurfaceSet, got "
                              f"{type(surf_set).__name__}")
    return d


def _check_mesh_matches(d: dict) -> None:
    """The surface set's mesh (layer_name/stage/orientation/fixed) must be the head model's."""
    surf_set = d.get("surf_set")
    if surf_set is None or not hasattr(surf_set, "get_mesh_path"):
        return
    from .io.gifti import gifti_n_vertices

    path = Path(surf_set.get_mesh_path(d.get("layer_name"), stage=d.get("stage", "ds"),
                                       orientation=d.get("orientation", "link_vector"),
                                       fixed=d.get("fixed", True)))
    if not path.is_file():
        raise LamegFileNotFoundError(
            f"mesh {path.name} of the surface set does not exist; run surf_set.create() or check "
            "layer_name, stage, orientation and fixed")
    n_mesh = gifti_n_vertices(path)  # from the header: nothing decoded
    hm = read_head_model(d["data_fname"], d["inversion_idx"])
    if n_mesh != hm.n_sources:
        raise LamegDataError(
            f"the head model of {Path(d['data_fname']).name} (inversion_idx="
            f"{d['inversion_idx']}) has {hm.n_sources} sources but {path.name} has {n_mesh} "
            "vertices: pass the layer_name/stage/orientation/fixed used by coregister, or "
            "re-run coregister")


def _dispatch(name: str, kwargs: dict) -> Any:
    backend = kwargs.pop("backend", None)
    spm_instance = kwargs.pop("spm_instance", None)
    module, extra = select_backend(backend, spm_instance)
    return getattr(module, name)(**kwargs, **extra)


# ---------------------------------------------------------------------------------------------
# co-registration and forward models
# ---------------------------------------------------------------------------------------------


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
    fid_labels: Sequence[str] = _FIDS,
    oskull_fname=None,
    useheadshape: bool = False,
    cache_dir: str | os.PathLike | bool | None = None,
    viz: bool = False,
    backend: str | None = None,
    spm_instance: Any = None,
    verbose: bool = False,
) -> None:
    """Co-register MEG and MRI, build the head model and the gain matrix of one cortical mesh.

    The dataset's header is updated in place (``D.other.inv{inversion_idx + 1}`` and a gain file
    beside it, one transaction: an interrupted run leaves the old or the new head model); its
    ``.dat`` is not touched.

    Parameters
    ----------
    %(fid_coords)s
    %(data_fname)s
    mesh_fname : str, path-like, GiftiImage or (vertices, faces[, orientations])
        Cortical (multilayer) mesh in scanner RAS mm.
    iskull_fname, scalp_fname : str, path-like, GiftiImage, tuple or None
        Inner skull (needed by 'Single Shell' and 'MNE BEM') and scalp (for the spheres and the
        head-shape ICP), MRI mm.
    %(forward_model_type)s
    orientations : {'mesh', 'normals'}
        ``'mesh'``: the GIfTI ``VECTOR`` array (laMEG's dipole orientations; SPM's vertex normals
        when the file has none, with a warning); ``'normals'``: SPM's vertex normals.
    %(inversion_idx)s
        At most the current number of entries (then a new entry is appended).
    %(fid_labels)s
    oskull_fname : str, path-like or None
        Outer skull mesh (recorded only).
    useheadshape : bool
        Refine the registration with the digitised head shape (ICP onto the scalp).
    cache_dir : path-like, bool or None
        Gain cache folder; None: ``<cache root>/gain``; False: no cache.
    %(viz)s
    %(backend)s
    %(spm_instance)s
    %(verbose)s

    Returns
    -------
    None
        Results are stored in the dataset (laMEG semantics).
    """
    fid_coords = check_fid_coords(fid_coords)
    data_fname = check_path(data_fname, "data_fname")
    check_writable(data_fname, "dataset header")
    check_writable(data_fname.parent, "dataset folder")
    mesh_fname = _check_mesh_arg(mesh_fname, "mesh_fname")
    iskull_fname = _check_mesh_arg(iskull_fname, "iskull_fname")
    scalp_fname = _check_mesh_arg(scalp_fname, "scalp_fname")
    check_option(forward_model_type, (*FORWARD_MODEL_TYPES, "MEG OpenMEEG BEM"),
                 "forward_model_type")
    check_option(orientations, ("mesh", "normals"), "orientations")
    inversion_idx = check_int(inversion_idx, "inversion_idx", min_value=0)
    validate_type(useheadshape, (bool, np.bool_), "useheadshape")
    if isinstance(fid_labels, str) or len(list(fid_labels)) < 3:
        raise LamegValueError(f"fid_labels must be three labels (nas, lpa, rpa order), got "
                              f"{fid_labels!r}")
    _dispatch("coregister_mesh", dict(
        fid_coords=fid_coords, data_fname=data_fname, mesh_fname=mesh_fname,
        iskull_fname=iskull_fname, scalp_fname=scalp_fname,
        forward_model_type=forward_model_type, orientations=orientations,
        inversion_idx=inversion_idx, fid_labels=tuple(str(x) for x in fid_labels),
        oskull_fname=oskull_fname, useheadshape=bool(useheadshape), cache_dir=cache_dir,
        viz=viz, verbose=verbose, backend=backend, spm_instance=spm_instance))


@fill_doc
def coregister(
    fid_coords: Mapping[str, Sequence[float]],
    data_fname: str | os.PathLike,
    surf_set,
    layer_name: str | None = None,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    fid_labels: Sequence[str] = _FIDS,
    iskull_fname=None,
    oskull_fname=None,
    scalp_fname=None,
    forward_model_type: str = "Single Shell",
    inversion_idx: int = 0,
    viz: bool = True,
    spm_instance: Any = None,
    *,
    backend: str | None = None,
    useheadshape: bool = False,
    cache_dir: str | os.PathLike | bool | None = None,
    verbose: bool = False,
) -> None:
    """Co-register MEG with the participant's MRI and compute the forward model (laMEG API).

    The cortical mesh is ``surf_set.get_mesh_path(layer_name, stage=stage,
    orientation=orientation, fixed=fixed)`` (the multilayer mesh when ``layer_name`` is None),
    with its stored dipole orientations. The inner skull and scalp default to
    ``surf_set.load_head_mesh('iskull' / 'scalp')``.

    Parameters
    ----------
    %(fid_coords)s
    %(data_fname)s
    %(surf_set)s
    %(mesh_selection)s
    %(fid_labels)s
    iskull_fname, oskull_fname, scalp_fname : str or None
        Head meshes in scanner RAS mm (GIfTI); default the surface set's.
    %(forward_model_type)s
    %(inversion_idx)s
    %(viz)s
    %(spm_instance)s
    %(backend)s
    useheadshape : bool
        Refine with the digitised head shape (ICP onto the scalp).
    cache_dir : path-like, bool or None
        Gain cache (see :func:`coregister_mesh`).
    %(verbose)s

    Returns
    -------
    None
    """
    if surf_set is None or not hasattr(surf_set, "get_mesh_path"):
        raise LamegValueError("surf_set must be a lameg.surf.LayerSurfaceSet, got "
                              f"{type(surf_set).__name__}")
    if layer_name is not None:
        validate_type(layer_name, str, "layer_name")
    mesh_fname = surf_set.get_mesh_path(layer_name, stage=stage, orientation=orientation,
                                        fixed=fixed)
    if not Path(mesh_fname).is_file():
        raise LamegFileNotFoundError(
            f"mesh {mesh_fname} does not exist; run surf_set.create() (or check layer_name, "
            "stage, orientation and fixed)")

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
        raise LamegFileNotFoundError(
            "no inner-skull mesh is available for the head model. Provide one with "
            "iskull_fname=<GIfTI, scanner RAS mm>, or create the surface set's head meshes so that "
            "surf_set.load_head_mesh('iskull') finds one, or "
            "use forward_model_type='Single Sphere' with a scalp mesh")
    coregister_mesh(
        fid_coords, data_fname, mesh_fname, iskull_fname=iskull, scalp_fname=scalp,
        forward_model_type=forward_model_type, orientations="mesh", inversion_idx=inversion_idx,
        fid_labels=fid_labels, oskull_fname=oskull_fname, useheadshape=useheadshape,
        cache_dir=cache_dir, viz=viz, backend=backend, spm_instance=spm_instance,
        verbose=verbose)


@fill_doc
def check_inversion_exists(data_file: str | os.PathLike, inversion_idx: int = 0) -> bool:
    """True when ``D.other.inv{inversion_idx + 1}`` holds a head model (laMEG).

    Parameters
    ----------
    data_file : str or path-like
        SPM M/EEG header.
    %(inversion_idx)s

    Returns
    -------
    bool
        True (otherwise an exception is raised).

    Raises
    ------
    InversionNotFoundError
        (a ``KeyError``) when there is none.
    """
    read_head_model(check_path(data_file, "data_file"), inversion_idx)
    return True


@fill_doc
def load_forward_model_vertices(data_file: str | os.PathLike,
                                inversion_idx: int = 0) -> np.ndarray:
    """Source positions of a head model, ``D.other.inv{k}.mesh.tess_mni.vert``.

    With lameg's head models these are the cortical mesh vertices in MRI (scanner RAS) mm; for
    files made by SPM's template route they are SPM's warped cortex.

    Parameters
    ----------
    data_file : str or path-like
        SPM M/EEG header.
    %(inversion_idx)s

    Returns
    -------
    ndarray, shape (n_sources, 3)
        Positions, mm.
    """
    return read_head_model(check_path(data_file, "data_file"), inversion_idx).vertices_mm


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
    matrix (``V`` vertices per layer, layer 0 = pial), in the head model's data units per nA m
    (``forward.scale`` undone, like every other use of the gain).

    Parameters
    ----------
    data_file : str or path-like
        SPM M/EEG header with a multilayer head model.
    surf_set : lameg.surf.LayerSurfaceSet
        Gives ``n_layers`` and the vertices per layer.
    inversion_idx : int
        0-based index of the head model.
    all_layers : bool
        Return every layer (shape (n_layers, V); row 0 is zero) instead of the deepest one.
    orientation : str
        Orientation variant used to count the vertices per layer.
    fixed : bool
        Fixed-orientation variant used to count the vertices per layer.

    Returns
    -------
    ndarray, shape (V,) or (n_layers, V)
        RMS difference, fT per nA m for CTF/Neuromag data in fT.
    """
    hm = read_head_model(check_path(data_file, "data_file"), inversion_idx)
    n_layers = check_int(surf_set.n_layers, "surf_set.n_layers", min_value=1)
    n_per = int(surf_set.get_vertices_per_layer(orientation=orientation, fixed=fixed))
    if hm.n_sources != n_layers * n_per:
        raise LamegDataError(
            f"the gain matrix has {hm.n_sources} sources, not {n_layers} layers x {n_per} "
            "vertices; was the head model computed on this surface set's multilayer mesh?")
    layers = np.arange(n_layers) if all_layers else np.array([0, n_layers - 1])
    cols = (layers[:, None] * n_per + np.arange(n_per)[None, :]).ravel()
    G = hm.gain(columns=cols).reshape(-1, len(layers), n_per)  # only the layers needed
    rms = np.empty((len(layers), n_per))
    for i in range(len(layers)):
        d = G[:, i, :] - G[:, 0, :]
        rms[i] = np.sqrt(np.einsum("cv,cv->v", d, d) / d.shape[0])
    return rms if all_layers else rms[-1]


# ---------------------------------------------------------------------------------------------
# inversions (laMEG 0.2.1 signatures)
# ---------------------------------------------------------------------------------------------


@fill_doc
def invert_ebb(data_fname, surf_set=None, layer_name=None, stage="ds",
               orientation="link_vector", fixed=True, patch_size=5, n_temp_modes=4,
               n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False, n_folds=1,
               ideal_pc_test=0, inversion_idx=0, viz=True, return_mu_matrix=False,
               spm_instance=None, seed=None, verbose=False, *, backend=None):
    """Empirical Bayes beamformer (EBB) inversion of a co-registered dataset.

    The result is stored in ``D.other.inv{inversion_idx + 1}.inverse`` (SPM layout).

    Parameters
    ----------
    %(data_fname)s
    %(surf_set)s
        With ``layer_name=None`` its layers set the layer count of the source mesh.
    %(mesh_selection)s
        The mesh must be the head model's (checked).
    %(inversion_modes)s
    %(inversion_tail)s

    Returns
    -------
    %(inversion_returns)s
    """
    d = _check_inversion_args(dict(locals()))
    _check_mesh_matches(d)
    return _dispatch("invert_ebb", d)


@fill_doc
def invert_ebb_layer(data_fname, surf_set=None, layer_name=None, stage="ds",
                     orientation="link_vector", fixed=True, patch_size=5, n_temp_modes=4,
                     n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False,
                     n_folds=1, ideal_pc_test=0, diag_vertex=None, sum_pair_topk=2,
                     diff_pair_topk=2, inversion_idx=0, viz=True, return_mu_matrix=False,
                     spm_instance=None, seed=None, verbose=False, *, backend=None):
    """Laminar EBB inversion (EBBlayer); needs a multilayer head model.

    Parameters
    ----------
    %(data_fname)s
    %(surf_set)s
    %(mesh_selection)s
    %(inversion_modes)s
    diag_vertex : int or None
        0-based column whose laminar prior diagnostics are stored (``inverse.EBBlayer_diag``).
    sum_pair_topk, diff_pair_topk : int
        Number of layer-pair sum/difference priors kept.
    %(inversion_tail)s

    Returns
    -------
    %(inversion_returns)s
    """
    d = _check_inversion_args(dict(locals()))
    for key in ("sum_pair_topk", "diff_pair_topk"):
        d[key] = check_int(d[key], key, min_value=0)
    if d["diag_vertex"] is not None:
        d["diag_vertex"] = check_int(d["diag_vertex"], "diag_vertex", min_value=0)
    _check_mesh_matches(d)
    return _dispatch("invert_ebb_layer", d)


@fill_doc
def invert_msp(data_fname, surf_set=None, layer_name=None, stage="ds",
               orientation="link_vector", fixed=True, priors=None, patch_size=5,
               n_temp_modes=4, n_spatial_modes="auto", foi=None, woi=None,
               hann_windowing=False, n_folds=1, ideal_pc_test=0, inversion_idx=0, viz=True,
               return_mu_matrix=False, spm_instance=None, seed=None, verbose=False, *,
               backend=None):
    """Multiple sparse priors (MSP: greedy search + ARD) inversion.

    Parameters
    ----------
    %(data_fname)s
    %(surf_set)s
    %(mesh_selection)s
    priors : sequence of int or None
        0-based vertices used as fixed patch centres (default SPM's 512 evenly spaced ones).
    %(inversion_modes)s
    %(inversion_tail)s

    Returns
    -------
    %(inversion_returns)s
    """
    d = _check_inversion_args(dict(locals()))
    if d["priors"] is not None:
        p = np.atleast_1d(np.asarray(d["priors"], dtype=object)).ravel()
        if p.size == 0:
            raise LamegValueError("priors is empty; pass None for SPM's default patches")
        d["priors"] = [check_int(v, "priors (0-based vertices)", min_value=0) for v in p]
    _check_mesh_matches(d)
    return _dispatch("invert_msp", d)


def _entries(*keys: str) -> str:
    return "\n".join(docdict[k].strip("\n") for k in keys)


docdict["sliding_params"] = "\n".join([
    _entries("data_fname", "surf_set", "mesh_selection", "patch_size", "n_temp_modes",
             "n_spatial_modes"),
    """wois : array-like, shape (n_windows, 2) or None
    Explicit windows, ms (default: windows of ``win_size`` around every sample).
win_size : float
    Window length, ms.
win_overlap : bool
    One window per sample (overlapping) or consecutive windows.""",
    _entries("foi", "hann_windowing", "inversion_idx", "viz", "spm_instance", "verbose",
             "backend")])
docdict["sliding_returns"] = """
free_energy : ndarray, shape (n_windows,)
    Free energy of each window.
wois : ndarray, shape (n_windows, 2)
    The windows, ms."""


def _sliding(name: str, d: dict):
    d = _check_inversion_args(d)
    _check_mesh_matches(d)
    return _dispatch(name, d)


@fill_doc
def invert_sliding_window_ebb(data_fname, surf_set=None, layer_name=None, stage="ds",
                              orientation="link_vector", fixed=True, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              viz=True, spm_instance=None, verbose=False, *, backend=None):
    """EBB inversions in sliding windows (one free energy per window).

    Parameters
    ----------
    %(sliding_params)s

    Returns
    -------
    %(sliding_returns)s
    """
    return _sliding("invert_sliding_window_ebb", dict(locals()))


@fill_doc
def invert_sliding_window_ebb_layer(data_fname, surf_set=None, layer_name=None, stage="ds",
                                    orientation="link_vector", fixed=True, patch_size=5,
                                    n_temp_modes=1, n_spatial_modes="auto", wois=None,
                                    win_size=50, win_overlap=True, foi=None,
                                    hann_windowing=True, inversion_idx=0, viz=True,
                                    spm_instance=None, verbose=False, *, backend=None):
    """Laminar EBB inversions in sliding windows (one free energy per window).

    Parameters
    ----------
    %(sliding_params)s

    Returns
    -------
    %(sliding_returns)s
    """
    return _sliding("invert_sliding_window_ebb_layer", dict(locals()))


@fill_doc
def invert_sliding_window_msp(prior, data_fname, surf_set=None, layer_name=None, stage="ds",
                              orientation="link_vector", fixed=True, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              viz=True, spm_instance=None, verbose=False, *, backend=None):
    """MSP inversions with one fixed prior patch in sliding windows.

    Parameters
    ----------
    prior : int
        0-based vertex of the prior patch centre.
    %(sliding_params)s

    Returns
    -------
    %(sliding_returns)s
    """
    d = dict(locals())
    d["prior"] = check_int(prior, "prior (0-based vertex)", min_value=0)
    return _sliding("invert_sliding_window_msp", d)
