"""SPM inversions (``backend='spm'`` of ``lameg.invert.invert_*``), as laMEG 0.2.1 sends them.

The sequence is laMEG's: (1) the geodesic patch kernel of the mesh, (2) spatial modes and
cross-validation channels with ``spm_eeg_inv_prep_modes_xval``, (3) SPM's iterative-inversion
batch (``spm.meeg.source.invertiter``, custom branch, ``invfunc='Classic'``, i.e.
``spm_eeg_invert_classic``) with ``patchfwhm = -patch_size`` (SPM's mm smoothing), one
iteration of 512 evenly spaced patches or the given fixed ``priors``, and reads
``D.other.inv{k}.inverse`` back with lameg's own reader -- the same fields either back end
writes, so ``lameg.source`` and the laminar analyses read both.

Where laMEG relies on its SPM fork, stock SPM is given what it lacks through its documented
inputs or a clear error is raised:

* geodesic mm smoothing (fork: ``spm_eeg_smoothmesh_multilayer_mm``, within layers): the
  kernel is computed natively and written as the smoothing file stock SPM looks for
  (``FWHM<fwhm>_<mesh>.mat`` beside the mesh, variables ``QG`` and ``M``), which
  ``spm_eeg_invert_classic`` (``inverse.smooth < 0``) then loads. Stock SPM cannot build it
  itself: it has no multilayer version, and its single-mesh ``spm_eeg_smoothmesh_mm`` fails
  in current SPM (it calls ``spm_mesh_area(M, 1)``, an option that function no longer
  accepts), so lameg's ``mfiles/spm_eeg_smoothmesh_mm.m`` (same interface) hands SPM the file.
  The same SPM code path reads ``forward.loc``, which no stock function sets: it is set to 0
  (one orientation per vertex) before inverting. The tests check the kernel against SPM's
  ``spm_mesh_geodesic`` distances.
* **EBBlayer** (fork-only prior): :class:`~lameg.exceptions.LamegNotImplementedError`.
* **sliding windows** (fork: several windows in one batch): one stock batch per window; the
  free energy of every window is stored in ``inverse.crossF`` / ``inverse.F`` and ``woi``
  holds all windows, with the operator of the first window (per-window operators, which the
  native back end stores in factored form, are not kept).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..._docs import fill_doc
from ...exceptions import (
    LamegFileNotFoundError,
    LamegNotImplementedError,
    LamegValueError,
)
from .._shared import n_layers as _n_layers
from . import _common

__all__ = ["invert_ebb", "invert_ebb_layer", "invert_msp", "invert_sliding_window_ebb",
           "invert_sliding_window_ebb_layer", "invert_sliding_window_msp", "smoothing_file"]

_EBBLAYER_MSG = ("EBBlayer is a prior of laMEG's SPM fork; stock SPM has no EBBlayer. Use "
                 "backend='native' for invert_ebb_layer / invert_sliding_window_ebb_layer")


def _q(s) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def smoothing_file(mesh_file: str | os.PathLike, fwhm: float) -> Path:
    """Where stock SPM looks for the mm smoothing kernel of a mesh (``spm_eeg_smoothmesh_mm``).

    Parameters
    ----------
    mesh_file : str or path-like
        The cortical mesh of the forward model (``D.inv{k}.mesh.tess_ctx``), a GIfTI file.
    fwhm : float
        Kernel FWHM, mm (the inversion's ``patch_size``).

    Returns
    -------
    Path
        ``FWHM<fwhm, 2 decimals>_<mesh name without .gii>.mat`` beside the mesh.
    """
    p = Path(mesh_file)
    return p.with_name(f"FWHM{fwhm:3.2f}_{p.name[:-4] if p.name.endswith('.gii') else p.stem}"
                       ".mat")


def _write_kernel(mesh_file: str, fwhm: float, n_layers: int, verts, faces) -> None:
    """Geodesic kernel (within layers) in SPM's smoothing-file layout (what the fork computes)."""
    from scipy.io import savemat

    from ..._utils import atomic_path
    from ...inverse.kernels import geodesic_kernel

    QG = geodesic_kernel(verts, faces, float(fwhm), int(n_layers))
    out = smoothing_file(mesh_file, fwhm)
    with atomic_path(out, suffix=".mat") as tmp:
        savemat(str(tmp), {"QG": QG.tocsc(),
                           "M": {"faces": (np.asarray(faces) + 1).astype(float),
                                 "vertices": np.asarray(verts, dtype=float)}},
                do_compression=False)


def _prepare_kernel(hm, patch_size: float, n_layers: int) -> None:
    ctx = hm.cortex_file
    if not ctx or not Path(ctx).is_file():
        raise LamegFileNotFoundError(
            f"the cortical mesh of the forward model ({ctx!r}) is not a file; SPM's mm smoothing "
            "reads it: re-run coregister with a mesh file")
    _write_kernel(ctx, patch_size, n_layers, hm.vertices_mm, hm.faces)


def _nmodes_arg(n_spatial_modes):
    if isinstance(n_spatial_modes, str):
        if n_spatial_modes == "all":
            return np.zeros((0, 0))
        if n_spatial_modes == "auto":
            return 0.0
        raise LamegValueError("n_spatial_modes must be 'auto', 'all' or a positive integer")
    n = float(n_spatial_modes)
    if n <= 0 or n != int(n):
        raise LamegValueError("n_spatial_modes must be 'auto', 'all' or a positive integer")
    return n


def _job(data_fname, inversion_idx, method, woi, foi, nsmodes, modes_file, n_temp_modes,
         patch_size, hann, pctest, n_folds, patch_file):
    """The stock ``invertiter`` job (custom branch) laMEG sends, without the fork's fields."""
    cell = np.empty((1,), dtype=object)
    cell[0] = modes_file
    custom = {
        "invfunc": "Classic", "invtype": method,
        "woi": np.asarray(woi, dtype=float).reshape(1, 2),
        "foi": np.asarray(foi, dtype=float).reshape(1, 2),
        "hanning": float(bool(hann)), "patchfwhm": -float(patch_size), "mselect": 0.0,
        "nsmodes": float(nsmodes), "umodes": cell, "ntmodes": float(n_temp_modes),
        "priors": {"priorsmask": np.array([""], dtype=object), "space": 0.0},
        "outinv": "",
    }
    if patch_file is not None:
        pf = np.empty((1,), dtype=object)
        pf[0] = patch_file
        custom["isfixedpatch"] = {"fixedpatch": {"fixedfile": pf,
                                                 "fixedrows": np.array([[1.0, np.inf]])}}
    else:
        custom["isfixedpatch"] = {"randpatch": {"npatches": 512.0, "niter": 1.0}}
    d = np.empty((1,), dtype=object)
    d[0] = str(data_fname)
    mod = np.empty((1,), dtype=object)
    mod[0] = "All"
    return {"spm": {"meeg": {"source": {"invertiter": {
        "D": d, "val": float(inversion_idx + 1), "whatconditions": {"all": 1.0},
        "isstandard": {"custom": custom}, "modality": mod,
        "crossval": np.array([[float(pctest), float(n_folds)]])}}}}}


def _run(method, data_fname, n_layers, patch_size, n_temp_modes, n_spatial_modes, foi, wois,
         hann_windowing, n_folds, ideal_pc_test, inversion_idx, priors, seed, eng):
    """Kernel, modes and one batch per window; returns (StoredInverse per window, path)."""
    from ...io.spm_inv import read_inverse

    if method == "EBBlayer":
        raise LamegNotImplementedError(_EBBLAYER_MSG)
    data_fname = Path(data_fname).expanduser().resolve()
    if not data_fname.is_file():
        raise LamegFileNotFoundError(f"dataset {data_fname} not found")
    if int(inversion_idx) != inversion_idx or inversion_idx < 0:
        raise LamegValueError(f"inversion_idx must be a non-negative integer, got {inversion_idx}")
    inversion_idx = int(inversion_idx)
    if n_temp_modes is None or int(n_temp_modes) != n_temp_modes or n_temp_modes < 1:
        raise LamegValueError("n_temp_modes must be a positive integer with backend='spm'")
    if patch_size is None or not np.isfinite(patch_size) or patch_size <= 0:
        raise LamegValueError("patch_size must be a positive FWHM in mm")
    if int(n_folds) != n_folds or n_folds < 1:
        raise LamegValueError("n_folds must be a positive integer")
    foi = np.asarray([0.0, 256.0] if foi is None else foi, dtype=float).ravel()
    if foi.size != 2 or np.any(foi < 0):
        raise LamegValueError(f"foi must be [low, high] in Hz, got {foi}")
    nsm = _nmodes_arg(n_spatial_modes)
    from ...io.spm_inv import read_head_model

    hm = read_head_model(data_fname, inversion_idx)
    if not hm.gain_name:
        raise LamegFileNotFoundError(f"{data_fname.name}: the head model at inversion_idx="
                                     f"{inversion_idx} has no gain matrix; re-run coregister")
    nd = hm.n_sources
    if n_layers > 1 and nd % n_layers:
        raise LamegValueError(f"the forward model has {nd} sources, not divisible into "
                              f"{n_layers} layers")
    _prepare_kernel(hm, float(patch_size), int(n_layers))
    patch_file = None
    if priors is not None:
        ip = np.atleast_1d(np.asarray(priors)).ravel()
        if ip.size == 0 or np.any(ip != np.floor(ip)) or ip.min() < 0 or ip.max() >= nd:
            raise LamegValueError(f"priors must be 0-based vertex indices in 0..{nd - 1}")
        from scipy.io import savemat

        patch_file = str(data_fname.parent / f"patch_{inversion_idx}.mat")
        savemat(patch_file, {"Ip": _common.mat_index(ip)[None, :]})
    if seed is not None:
        s = int(np.random.default_rng(seed).integers(0, 2**31 - 1)) \
            if isinstance(seed, np.random.Generator) else int(seed)
        eng.eval(f"rand('twister', {s}); randn('state', {s});")
    from ...io.spm_inv import dataset_lock

    # spm_eeg_invert_classic's mm smoothing reads forward.loc, which no stock SPM function
    # sets (0 = one orientation per vertex, what every lameg/SPM forward model here has)
    k = inversion_idx + 1
    modes_file = str(data_fname.with_name(data_fname.stem + "_testmodes.mat"))
    results = []
    with dataset_lock(data_fname):
        eng.eval(f"D = spm_eeg_load({_q(data_fname)}); D.val = {k}; inv = D.inv; "
                 f"if ~isfield(inv{{{k}}}.forward, 'loc'), inv{{{k}}}.forward(1).loc = 0; end; "
                 "D.inv = inv; save(D); clear D inv;")
        out = eng.call("spm_eeg_inv_prep_modes_xval", str(data_fname), nsm, modes_file,
                       float(n_folds), float(ideal_pc_test), nargout=3)
        modes_file, nmodes, pctest = str(out[0]).strip(), float(np.ravel(out[1])[0]), \
            float(np.ravel(out[2])[0])
        for w in wois[::-1]:  # the first window's inversion is the one left in the dataset
            eng.run_batch(_job(data_fname, inversion_idx, method, w, foi, nmodes, modes_file,
                               n_temp_modes, patch_size, hann_windowing, pctest, n_folds,
                               patch_file))
            results.append(read_inverse(data_fname, inversion_idx))
    return results[::-1], data_fname


def _wois_single(woi):
    w = np.asarray([-np.inf, np.inf] if woi is None else woi, dtype=float).ravel()
    if w.size != 2:
        raise LamegValueError(f"woi must be [start, end] in ms, got {woi}")
    return w[None, :]


def _summary(inverse, return_mu_matrix: bool):
    """laMEG's return value from a :class:`lameg.io.spm_inv.StoredInverse`."""
    f = inverse.fields
    F = np.squeeze(np.asarray(f["crossF"], dtype=float))
    cv = np.squeeze(np.asarray(f.get("crosserr", np.zeros((1, 0))), dtype=float))
    out = [F, cv]
    if return_mu_matrix:
        import scipy.sparse as sp

        out.append(sp.csc_matrix(inverse.operator()))  # laMEG returns a csc_matrix
    return out


def _one_window(method: str, a: dict) -> list:
    """One inversion from the public arguments ``a`` (the caller's ``locals()``).

    ``stage``, ``orientation``, ``fixed``, ``viz`` and ``verbose`` are not used (see the
    docstrings of the callers).
    """
    eng = _common.engine(a["spm"], a["spm_instance"])
    res, _ = _run(method, a["data_fname"], _n_layers(a["surf_set"], a["layer_name"]),
                  a["patch_size"], a["n_temp_modes"], a["n_spatial_modes"], a["foi"],
                  _wois_single(a["woi"]), a["hann_windowing"], a["n_folds"], a["ideal_pc_test"],
                  a["inversion_idx"], a.get("priors"), a["seed"], eng)
    return _summary(res[0], a["return_mu_matrix"])


@fill_doc
def invert_ebb(data_fname, surf_set=None, layer_name=None, stage="ds",
               orientation="link_vector", fixed=True, patch_size=5, n_temp_modes=4,
               n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False, n_folds=1,
               ideal_pc_test=0, inversion_idx=0, viz=True, return_mu_matrix=False,
               spm_instance=None, seed=None, verbose=False, *, spm=None):
    """EBB inversion by SPM (laMEG 0.2.1 ``invert_ebb``; see the module docstring).

    The SPM implementation of :func:`lameg.invert.invert_ebb` (arguments validated there).
    ``n_temp_modes`` must be an integer (SPM's automatic choice, None, is native only).

    Parameters
    ----------
    %(data_fname)s
    %(surf_set_mesh)s
    %(inversion_modes)s
    %(spm_inversion_tail)s

    Returns
    -------
    %(inversion_returns)s
    """
    return _one_window("EBB", locals())


@fill_doc
def invert_msp(data_fname, surf_set=None, layer_name=None, stage="ds",
               orientation="link_vector", fixed=True, priors=None, patch_size=5,
               n_temp_modes=4, n_spatial_modes="auto", foi=None, woi=None,
               hann_windowing=False, n_folds=1, ideal_pc_test=0, inversion_idx=0, viz=True,
               return_mu_matrix=False, spm_instance=None, seed=None, verbose=False, *,
               spm=None):
    """MSP inversion by SPM (laMEG 0.2.1 ``invert_msp``).

    The SPM implementation of :func:`lameg.invert.invert_msp` (arguments validated there).
    ``n_temp_modes`` must be an integer (SPM's automatic choice, None, is native only).

    Parameters
    ----------
    %(data_fname)s
    %(surf_set_mesh)s
    priors : sequence of int or None
        0-based vertices, written as SPM's fixed patch file ``patch_<inversion_idx>.mat``
        beside the dataset; None: SPM's 512 evenly spaced patches (laMEG's single
        random-patch iteration, whose first iteration is the evenly spaced set).
    %(inversion_modes)s
    %(spm_inversion_tail)s

    Returns
    -------
    %(inversion_returns)s
    """
    return _one_window("MSP", locals())


@fill_doc
def invert_ebb_layer(data_fname, surf_set=None, layer_name=None, stage="ds",
                     orientation="link_vector", fixed=True, patch_size=5, n_temp_modes=4,
                     n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False,
                     n_folds=1, ideal_pc_test=0, diag_vertex=None, sum_pair_topk=2,
                     diff_pair_topk=2, inversion_idx=0, viz=True, return_mu_matrix=False,
                     spm_instance=None, seed=None, verbose=False, *, spm=None):
    """Not available in stock SPM: raises :class:`~lameg.exceptions.LamegNotImplementedError`.

    EBBlayer is a prior of laMEG's SPM fork; use ``backend='native'``. The signature is
    :func:`lameg.invert.invert_ebb_layer`'s.

    Parameters
    ----------
    %(data_fname)s
    %(surf_set_mesh)s
    %(inversion_modes)s
    diag_vertex : int or None
        0-based column whose laminar prior diagnostics would be stored.
    sum_pair_topk, diff_pair_topk : int
        Number of layer-pair sum/difference priors.
    %(spm_inversion_tail)s

    Returns
    -------
    list
        Never returns.
    """
    raise LamegNotImplementedError(_EBBLAYER_MSG)


def _sliding(method, data_fname, surf_set, layer_name, patch_size, n_temp_modes,
             n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing, inversion_idx,
             spm, spm_instance, priors=None):
    from ...io.spm_meeg import load_meeg
    from ..native.inverse import compute_wois

    eng = _common.engine(spm, spm_instance)
    D = load_meeg(data_fname)
    w = compute_wois(1000.0 * np.asarray(D.time), wois, win_size, win_overlap, n_temp_modes)
    res, path = _run(method, data_fname, _n_layers(surf_set, layer_name), patch_size,
                     n_temp_modes, n_spatial_modes, foi, w, hann_windowing, 1, 0,
                     inversion_idx, priors, None, eng)
    from ...io.spm_inv import read_head_model, write_inverse

    F = np.array([float(r.free_energy[0]) for r in res])
    first = dict(res[0].fields)
    first.update({"crossF": F[None, :], "F": F, "allF": F[None, :],
                  "woi": np.concatenate([r.woi for r in res], axis=0),
                  "engine": f"spm.{eng.name}.window_by_window"})
    write_inverse(read_head_model(path, int(inversion_idx)), first)
    return [F, w]


@fill_doc
def invert_sliding_window_ebb(data_fname, surf_set=None, layer_name=None, stage="ds",
                              orientation="link_vector", fixed=True, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              viz=True, spm_instance=None, verbose=False, *, spm=None):
    """EBB in sliding windows by SPM, one stock batch per window.

    The SPM implementation of :func:`lameg.invert.invert_sliding_window_ebb` (arguments
    validated there); see the module docstring for what is stored. ``n_temp_modes`` must be
    an integer.

    Parameters
    ----------
    %(spm_sliding_params)s

    Returns
    -------
    %(spm_sliding_returns)s
    """
    return _sliding("EBB", data_fname, surf_set, layer_name, patch_size, n_temp_modes,
                    n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing,
                    inversion_idx, spm, spm_instance)


@fill_doc
def invert_sliding_window_ebb_layer(data_fname, surf_set=None, layer_name=None, stage="ds",
                                    orientation="link_vector", fixed=True, patch_size=5,
                                    n_temp_modes=1, n_spatial_modes="auto", wois=None,
                                    win_size=50, win_overlap=True, foi=None,
                                    hann_windowing=True, inversion_idx=0, viz=True,
                                    spm_instance=None, verbose=False, *, spm=None):
    """Not available in stock SPM: raises :class:`~lameg.exceptions.LamegNotImplementedError`.

    EBBlayer is a prior of laMEG's SPM fork; use ``backend='native'``.

    Parameters
    ----------
    %(spm_sliding_params)s

    Returns
    -------
    list
        Never returns.
    """
    raise LamegNotImplementedError(_EBBLAYER_MSG)


@fill_doc
def invert_sliding_window_msp(prior, data_fname, surf_set=None, layer_name=None, stage="ds",
                              orientation="link_vector", fixed=True, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              viz=True, spm_instance=None, verbose=False, *, spm=None):
    """MSP with one fixed prior patch in sliding windows by SPM, one stock batch per window.

    The SPM implementation of :func:`lameg.invert.invert_sliding_window_msp` (arguments
    validated there). ``n_temp_modes`` must be an integer.

    Parameters
    ----------
    prior : int
        0-based vertex of the prior patch centre.
    %(spm_sliding_params)s

    Returns
    -------
    %(spm_sliding_returns)s
    """
    return _sliding("MSP", data_fname, surf_set, layer_name, patch_size, n_temp_modes,
                    n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing,
                    inversion_idx, spm, spm_instance, priors=[int(prior)])
