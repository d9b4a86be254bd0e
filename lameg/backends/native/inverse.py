"""Native implementation of the dataset-level inversions (``lameg.invert.invert*``).

These functions read an SPM M/EEG dataset and the forward model stored in
``D.other.inv{k}`` (written by ``coregister``), run :mod:`lameg.inverse` on arrays and store
the result in ``D.other.inv{k}.inverse`` in SPM's layout (header rewritten atomically; the
``.dat`` is never touched, and nothing is written when the inversion fails).

Differences from laMEG/SPM, on purpose: cross-validation test channels come from ``seed``
(SPM's are unseeded); without test channels ``cv_err`` is an empty array (laMEG reads
``[1, 0]``, the dimensions of MATLAB's empty matrix); sliding-window operators are stored in
factored form inside the header (``inverse.M_win_*``, see :func:`_window_fields`) instead of
one external file per window; windows are truncated to integer ms exactly as SPM's batch does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..._validate import (
    check_band_hz,
    check_finite_data,
    check_float,
    check_int,
    check_option,
    check_path,
    check_window_ms,
    check_writable,
)
from ...exceptions import LamegDataError, LamegFormatError, LamegValueError
from ...inverse.crossval import crossval_error, draw_test_channels
from ...inverse.engine import invert_classic, invert_standard
from ...inverse.kernels import geodesic_kernel, green_kernel
from ...inverse.modes import spatial_projector, truncate_woi
from ...inverse.results import InversionResult
from ...io.spm_inv import write_inverse
from .._shared import n_layers as _n_layers

__all__ = ["invert", "invert_ebb", "invert_ebb_layer", "invert_msp",
           "invert_sliding_window_ebb", "invert_sliding_window_ebb_layer",
           "invert_sliding_window_msp", "InversionSummary"]


@dataclass
class InversionSummary:
    """What :func:`invert` returns.

    Parameters
    ----------
    F : ndarray
        Free energy per fold and window, squeezed like laMEG's ``crossF``.
    cv_err : ndarray
        Cross-validation RMS error per fold and test channel (empty without test channels).
    wois : ndarray (n_windows, 2)
        Windows actually inverted (ms, integer-truncated).
    mu_matrix : ndarray (Nd, Nc) or None
        ``M @ A`` of the first window of the last fold (when requested).
    results : list of InversionResult
        One per fold.
    """

    F: np.ndarray
    cv_err: np.ndarray
    wois: np.ndarray
    mu_matrix: np.ndarray | None = None
    results: list = field(default_factory=list)


def _first(x):
    if isinstance(x, (list, tuple)):
        return x[0] if x else {}
    return x


def _trials(D) -> list[np.ndarray]:
    conds = np.asarray(D.conditions)
    bad = set(D.badtrials.tolist())
    out = []
    for c in D.condlist:
        idx = [i for i in np.flatnonzero(conds == c) if i not in bad]
        out.append(np.asarray(idx, dtype=int))
    if sum(len(t) for t in out) == 0:
        raise LamegDataError(f"{D.fname.name} has no good trials")
    return out


def _to_mat_index(x) -> np.ndarray:
    return np.asarray(x, dtype=float) + 1.0


def _window_fields(res: InversionResult) -> dict:
    """Factored storage of all windows' MAP operators: ``M_w = Q_w @ L.T @ iCy_w``."""
    nd = res.Nd
    qs = [sp.csc_matrix(w.Q) for w in res.windows]
    diag_only = all((q - sp.diags(q.diagonal())).nnz == 0 for q in qs)
    out = {"M_win_storage": "lameg_factored_v1",
           "M_win_iCy": np.stack([w.iCy for w in res.windows], axis=0)}
    if diag_only:
        out["M_win_qdiag"] = np.stack([q.diagonal() for q in qs], axis=1)  # (Nd, n_win)
    else:
        coo = [sp.coo_matrix(q) for q in qs]
        out["M_win_q_row"] = np.concatenate([c.row for c in coo]).astype(float) + 1
        out["M_win_q_col"] = np.concatenate([c.col for c in coo]).astype(float) + 1
        out["M_win_q_val"] = np.concatenate([c.data for c in coo])
        out["M_win_q_ptr"] = np.cumsum([0] + [c.nnz for c in coo]).astype(float)
    out["M_win_nd"] = float(nd)
    return out


def _inverse_dict(D, res: InversionResult, Ic: np.ndarray, method: str, smooth: float,
                  n_layers: int, crossF: np.ndarray, crosserr: np.ndarray, xval: np.ndarray,
                  settings: dict) -> dict:
    w = res.windows[0]
    inv = {
        "type": method, "smooth": float(smooth), "M": w.M, "J": [j for j in w.J],
        "L": res.UL, "qC": w.qC, "tempU": w.tempU, "V": w.V, "qV": w.qV,
        "T": np.asarray(w.S, dtype=float).reshape(len(w.It), -1),  # a column per mode, as SPM
        # A as a MATLAB sparse matrix: laMEG 0.2.1's v7.3 reader takes a dense U as stored in
        # HDF5 (transposed) but a sparse one with its logical shape; SPM computes A*Y either way
        "U": [sp.csc_matrix(res.A)], "Is": _to_mat_index(np.arange(res.Nd)), "It": _to_mat_index(w.It),
        "Ik": _to_mat_index(w.Ik), "Ic": [_to_mat_index(Ic)], "Nd": float(res.Nd),
        "pst": w.pst, "dct": w.dct, "F": res.F, "R2": res.R2, "VE": res.VE,
        "woi": np.stack([x.woi for x in res.windows]), "Ip": _to_mat_index(res.Ip),
        "modality": "MEG", "nlayers": float(n_layers), "crossF": crossF,
        "crosserr": crosserr, "xvalchans": xval, "allF": res.F[None, :],
        "engine": f"lameg.native.{res.engine}",
    }
    if res.engine == "standard":
        inv["scale"] = res.scale
        inv["Y"] = [u for u in w.UY]
    else:
        inv["Y"] = [w.Y_last]
    if method == "EBBlayer" and "EBBlayer_diag" in w.extras:
        inv["EBBlayer_diag"] = {k: (np.asarray(v, dtype=float) if not isinstance(v, str) else v)
                                for k, v in w.extras["EBBlayer_diag"].items()}
    for k, v in settings.items():
        if v is not None:
            inv[k] = v
    if len(res.windows) > 1:
        inv.update(_window_fields(res))
    return inv


#: Source priors of :func:`invert`.
INVERSION_METHODS = ("EBB", "EBBlayer", "MSP", "GS", "ARD", "IID", "COH")


def _check_smoothing(smoothing) -> tuple[str, float]:
    if (not isinstance(smoothing, (tuple, list)) or len(smoothing) != 2
            or smoothing[0] not in ("geodesic", "green")):
        raise LamegValueError(
            f"smoothing must be ('geodesic', fwhm_mm) or ('green', s), got {smoothing!r}")
    return smoothing[0], check_float(smoothing[1], "patch_size" if smoothing[0] == "geodesic"
                                     else "smoothing", min_value=0, strict_min=True)


def _check_priors(priors) -> np.ndarray:
    p = np.atleast_1d(np.asarray(priors, dtype=object)).ravel()
    return np.asarray([check_int(v, "priors (0-based vertex indices)", min_value=0) for v in p],
                      dtype=np.int64)


def invert(data_fname: str | os.PathLike, *, method: str = "EBB", n_layers: int = 1,
           smoothing=("geodesic", 5.0), n_spatial_modes="auto", n_temp_modes=None,
           foi=None, woi=None, hann_windowing: bool = True, priors=None, n_folds: int = 1,
           ideal_pc_test: float = 0, inversion_idx: int = 0, seed=None,
           engine: str = "classic", return_mu_matrix: bool = False,
           sum_pair_topk: int = 2, diff_pair_topk: int = 2, diag_vertex=None,
           kernel_cache_dir=None, verbose: bool = False, save: bool = True
           ) -> InversionSummary:
    """Invert an SPM dataset with the forward model of ``D.other.inv{inversion_idx+1}``.

    Parameters
    ----------
    data_fname : path
        SPM M/EEG ``.mat`` file holding a forward model (``coregister``).
    method : {'EBB', 'EBBlayer', 'MSP', 'GS', 'ARD', 'IID', 'COH'}
        Source prior.
    n_layers : int
        Layers of the source mesh (layer-major); > 1 for EBBlayer.
    smoothing : ('geodesic', fwhm_mm) or ('green', s)
        Patch kernel: laMEG's geodesic Gaussian patches or SPM's Green function.
    n_spatial_modes : 'auto', 'all' or int
        Spatial reduction (laMEG semantics).
    n_temp_modes : int or None
        Fixed number of temporal modes, or automatic (<= 16).
    foi : (2,) Hz
        Frequency band of the DCT basis (default [0, 256]); truncated to integers.
    woi : (2,) or (n, 2) ms
        Window(s); default the whole epoch; clipped and truncated to integer ms as SPM does.
    hann_windowing : bool
        Hanning weighting when choosing temporal modes.
    priors : list of int or None
        0-based vertices used as fixed MSP patch centres (default SPM's evenly spaced 512).
    n_folds, ideal_pc_test : int, float
        Cross-validation blocks and percentage of held-out channels.
    inversion_idx : int
        0-based index of the forward model / inversion.
    seed : int, Generator or None
        Random source for the test channels.
    engine : {'classic', 'standard'}
        ``spm_eeg_invert_classic`` (laMEG) or ``spm_eeg_invert``.
    return_mu_matrix : bool
        Also return ``M @ A`` (sources x good channels).
    sum_pair_topk, diff_pair_topk, diag_vertex
        EBBlayer options (``diag_vertex`` 0-based column).
    kernel_cache_dir : path or None
        Cache of geodesic kernels.
    verbose : bool
        Progress bars.
    save : bool
        Store the result in the dataset (default True).

    Returns
    -------
    InversionSummary
    """
    from ...io.spm_inv import read_head_model
    from ...io.spm_meeg import load_meeg

    data_fname = check_path(data_fname, "data_fname")
    inversion_idx = check_int(inversion_idx, "inversion_idx", min_value=0)
    check_option(engine, ("classic", "standard"), "engine")
    check_option(method, INVERSION_METHODS, "method")
    n_layers = check_int(n_layers, "n_layers", min_value=1)
    if n_temp_modes is not None:
        n_temp_modes = check_int(n_temp_modes, "n_temp_modes", min_value=1)
    n_folds = check_int(n_folds, "n_folds", min_value=1)
    ideal_pc_test = check_float(ideal_pc_test, "ideal_pc_test", min_value=0, max_value=99.999)
    kind, value = _check_smoothing(smoothing)
    foi = check_band_hz([0, 256] if foi is None else foi, "foi")
    lpf, hpf = float(np.fix(foi.min())), float(np.fix(foi.max()))
    if save:
        check_writable(data_fname, "dataset header")
        check_writable(data_fname.parent, "dataset folder")
    D = load_meeg(data_fname)
    time_s = np.asarray(D.time, dtype=float)
    woi = [-np.inf, np.inf] if woi is None else woi
    check_window_ms(woi, "woi", time_ms=1000.0 * time_s)
    wois = truncate_woi(woi, time_s)
    if np.any(wois[:, 0] >= wois[:, 1]):
        raise LamegValueError(
            f"woi {np.asarray(woi).tolist()} ms is shorter than one ms after SPM's truncation "
            f"to integer ms (data {1000 * time_s[0]:.1f} .. {1000 * time_s[-1]:.1f} ms); "
            "windows are given in ms")
    hm = read_head_model(D, inversion_idx)
    Ic = np.asarray(D.indchantype("MEGANY", "GOOD"), dtype=int)
    if Ic.size == 0:
        raise LamegDataError(f"{data_fname.name} has no good MEG channels (all marked bad?)")
    labels = [D.chanlabels[i] for i in Ic]
    L = hm.gain(labels, copy=False)  # read-only map of the file: nothing copied
    verts, faces = hm.cortex_mm()
    nd = L.shape[1]
    if len(verts) != nd:
        raise LamegFormatError(f"mesh has {len(verts)} vertices but the gain matrix {nd} "
                               "sources; re-run coregister")
    if kind == "geodesic":
        QG = geodesic_kernel(verts, faces, float(value), n_layers, cache_dir=kernel_cache_dir,
                             verbose=verbose)
        smooth = -float(value)
    elif kind == "green":
        QG = green_kernel(faces, nd, float(value))
        smooth = float(value)
    Ip = None
    if priors is not None:
        Ip = _check_priors(priors)
        if Ip.size == 0 or Ip.min() < 0 or Ip.max() >= nd:
            raise LamegValueError(f"priors must be 0-based vertex indices in 0..{nd - 1}")
    elif method in ("MSP", "GS", "ARD"):
        Ip = np.ceil(np.arange(1, 513) * nd / 512).astype(int) - 1  # laMEG: 512 patches
    data = D.data
    trials = _trials(D)
    check_finite_data(data[Ic][:, :, np.concatenate(trials)], f"{data_fname.name}: MEG data")
    testchans, pc = draw_test_channels(len(Ic), n_folds, ideal_pc_test, seed)
    results, crossF, crosserr = [], [], []
    all_idx = np.arange(len(Ic))
    for b in range(n_folds):
        test = testchans[b]
        train = np.setdiff1d(all_idx, test)
        ytrain = np.asarray(data[Ic[train]])
        L_tr = L if train.size == L.shape[0] else L[train]  # no gain-sized copy without CV
        A, nm = spatial_projector(L_tr, n_spatial_modes)
        if engine == "classic":
            res = invert_classic(
                L_tr, ytrain, time_s, inv_type=method, QG=QG, trials=trials, woi=wois,
                lpf=lpf, hpf=hpf, hanning=hann_windowing, A=A,
                n_temp_modes=n_temp_modes, Ip=Ip, n_layers=n_layers,
                sum_pair_topk=sum_pair_topk, diff_pair_topk=diff_pair_topk,
                diag_vertex=diag_vertex, fsample=D.fsample, verbose=verbose)
        else:
            if kind != "green":
                raise LamegValueError("the standard engine uses the Green-function kernel: "
                                      "pass smoothing=('green', s)")
            if len(wois) != 1:
                raise LamegValueError("the standard engine inverts a single window")
            res = invert_standard(L_tr, ytrain, time_s, inv_type=method, QG=QG,
                                  trials=trials, woi=wois[0], lpf=lpf, hpf=hpf,
                                  hanning=hann_windowing, vertices=verts,
                                  fsample=D.fsample)
        res.Ic = Ic[train]
        results.append(res)
        crossF.append(res.F)
        if len(test):
            w = res.windows[0]
            yall = np.asarray(data[Ic])
            hann = None
            if hann_windowing:
                from ...inverse.svd import spm_hanning

                hann = spm_hanning(len(w.It))
            crosserr.append(crossval_error(L, w.M, res.A, yall, w.It, w.Ik, w.S, train, test,
                                           hann))
    crossF = np.asarray(crossF)
    crosserr = np.asarray(crosserr) if crosserr else np.zeros((1, 0))
    last = results[-1]
    mu = last.mu_matrix(0) if return_mu_matrix else None
    if save:
        settings = {"Han": float(bool(hann_windowing)), "lpf": lpf, "hpf": hpf,
                    "Nt": float(n_temp_modes) if n_temp_modes is not None else None,
                    "Nm": float(last.Nm), "Np": float(len(last.Ip)),
                    "EBBlayer_sum_pair_topk": float(sum_pair_topk) if method == "EBBlayer"
                    else None,
                    "EBBlayer_diff_pair_topk": float(diff_pair_topk) if method == "EBBlayer"
                    else None}
        xval = testchans.astype(float) + 1 if testchans.size else np.zeros((n_folds, 0))
        inverse = _inverse_dict(D, last, last.Ic, method, smooth, n_layers, crossF,
                                crosserr, xval, settings)
        write_inverse(hm, inverse)
    return InversionSummary(F=np.squeeze(crossF), cv_err=np.squeeze(crosserr), wois=wois,
                            mu_matrix=mu, results=results)


# --- laMEG 0.2.1 operations (validated and documented in lameg.invert) -------------------


def _ret(summary: InversionSummary, return_mu_matrix: bool) -> list:
    out = [summary.F, summary.cv_err]
    if return_mu_matrix:
        out.append(sp.csc_matrix(summary.mu_matrix))
    return out


def invert_ebb(*, data_fname, surf_set=None, layer_name=None, patch_size=5, n_temp_modes=4,
               n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False, n_folds=1,
               ideal_pc_test=0, inversion_idx=0, return_mu_matrix=False, seed=None,
               verbose=False, **_mesh) -> list:
    """Native :func:`lameg.invert.invert_ebb`.

    Parameters
    ----------
    data_fname, surf_set, layer_name, patch_size, n_temp_modes, n_spatial_modes, foi, woi, \
hann_windowing, n_folds, ideal_pc_test, inversion_idx, return_mu_matrix, seed, verbose
        See :func:`lameg.invert.invert_ebb`.
    **_mesh
        ``stage``, ``orientation``, ``fixed``, ``viz``: checked by the façade.

    Returns
    -------
    list
        ``[free_energy, cv_err]`` (+ ``mu_matrix``).
    """
    s = invert(data_fname, method="EBB", n_layers=_n_layers(surf_set, layer_name),
               smoothing=("geodesic", patch_size), n_spatial_modes=n_spatial_modes,
               n_temp_modes=n_temp_modes, foi=foi, woi=woi, hann_windowing=hann_windowing,
               n_folds=n_folds, ideal_pc_test=ideal_pc_test, inversion_idx=inversion_idx,
               seed=seed, return_mu_matrix=return_mu_matrix, verbose=verbose)
    return _ret(s, return_mu_matrix)


def invert_ebb_layer(*, data_fname, surf_set=None, layer_name=None, patch_size=5,
                     n_temp_modes=4, n_spatial_modes="auto", foi=None, woi=None,
                     hann_windowing=False, n_folds=1, ideal_pc_test=0, diag_vertex=None,
                     sum_pair_topk=2, diff_pair_topk=2, inversion_idx=0,
                     return_mu_matrix=False, seed=None, verbose=False, **_mesh) -> list:
    """Native :func:`lameg.invert.invert_ebb_layer`.

    Parameters
    ----------
    data_fname, surf_set, layer_name, patch_size, n_temp_modes, n_spatial_modes, foi, woi, \
hann_windowing, n_folds, ideal_pc_test, diag_vertex, sum_pair_topk, diff_pair_topk, \
inversion_idx, return_mu_matrix, seed, verbose
        See :func:`lameg.invert.invert_ebb_layer`.
    **_mesh
        ``stage``, ``orientation``, ``fixed``, ``viz``: checked by the façade.

    Returns
    -------
    list
        ``[free_energy, cv_err]`` (+ ``mu_matrix``).
    """
    n_layers = _n_layers(surf_set, layer_name)
    if n_layers < 2:
        raise LamegValueError("invert_ebb_layer needs a multilayer mesh (surf_set with >= 2 "
                              "layers and layer_name=None)")
    s = invert(data_fname, method="EBBlayer", n_layers=n_layers,
               smoothing=("geodesic", patch_size), n_spatial_modes=n_spatial_modes,
               n_temp_modes=n_temp_modes, foi=foi, woi=woi, hann_windowing=hann_windowing,
               n_folds=n_folds, ideal_pc_test=ideal_pc_test, inversion_idx=inversion_idx,
               seed=seed, return_mu_matrix=return_mu_matrix, sum_pair_topk=sum_pair_topk,
               diff_pair_topk=diff_pair_topk, diag_vertex=diag_vertex, verbose=verbose)
    return _ret(s, return_mu_matrix)


def invert_msp(*, data_fname, surf_set=None, layer_name=None, priors=None, patch_size=5,
               n_temp_modes=4, n_spatial_modes="auto", foi=None, woi=None,
               hann_windowing=False, n_folds=1, ideal_pc_test=0, inversion_idx=0,
               return_mu_matrix=False, seed=None, verbose=False, **_mesh) -> list:
    """Native :func:`lameg.invert.invert_msp`.

    Parameters
    ----------
    data_fname, surf_set, layer_name, priors, patch_size, n_temp_modes, n_spatial_modes, foi, \
woi, hann_windowing, n_folds, ideal_pc_test, inversion_idx, return_mu_matrix, seed, verbose
        See :func:`lameg.invert.invert_msp`.
    **_mesh
        ``stage``, ``orientation``, ``fixed``, ``viz``: checked by the façade.

    Returns
    -------
    list
        ``[free_energy, cv_err]`` (+ ``mu_matrix``).
    """
    s = invert(data_fname, method="MSP", n_layers=_n_layers(surf_set, layer_name),
               smoothing=("geodesic", patch_size), n_spatial_modes=n_spatial_modes,
               n_temp_modes=n_temp_modes, foi=foi, woi=woi, hann_windowing=hann_windowing,
               priors=priors, n_folds=n_folds, ideal_pc_test=ideal_pc_test,
               inversion_idx=inversion_idx, seed=seed, return_mu_matrix=return_mu_matrix,
               verbose=verbose)
    return _ret(s, return_mu_matrix)


def compute_wois(time_ms: np.ndarray, wois=None, win_size: float = 50, win_overlap=True,
                 n_temp_modes: int = 1) -> np.ndarray:
    """Sliding windows as laMEG's ``_compute_wois``.

    Parameters
    ----------
    time_ms : array-like, shape (n_samples,)
        Time axis of the data, ms (uniformly sampled).
    wois : array-like, shape (n_windows, 2), or None
        Explicit windows, ms; returned as given (as a 2-D float array) when not None.
    win_size : float
        Window width, ms.
    win_overlap : bool
        True: one window centred on every sample (clipped to the epoch); False: consecutive
        non-overlapping windows spanning the epoch.
    n_temp_modes : int
        Temporal modes per window; each window must hold at least 2 samples per mode.

    Returns
    -------
    ndarray, shape (n_windows, 2)
        ``[start, end]`` of every window, ms.
    """
    if wois is not None:
        return np.atleast_2d(np.asarray(wois, dtype=float))
    time_ms = np.asarray(time_ms, dtype=float)
    dt = time_ms[1] - time_ms[0]
    win_steps = int(round(win_size / dt))
    if win_steps / n_temp_modes < 2:
        raise LamegValueError(
            f"win_size {win_size} ms gives {win_steps} samples, too few for {n_temp_modes} "
            "temporal modes (need >= 2 samples per mode); enlarge win_size")
    n = len(time_ms)
    if win_overlap:
        i = np.arange(n)
        lo = np.maximum(0, np.ceil(i - win_steps / 2)).astype(int)
        hi = np.minimum(n - 1, np.floor(i + win_steps / 2)).astype(int)
        return np.stack([time_ms[lo], time_ms[hi]], axis=1)
    edges = np.linspace(time_ms[0], time_ms[-1],
                        int((time_ms[-1] - time_ms[0]) / win_size + 1))
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _sliding(method: str, *, data_fname, surf_set, layer_name, patch_size, n_temp_modes,
             n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing, inversion_idx,
             priors=None, verbose=False, **kw) -> list:
    from ...io.spm_meeg import load_meeg

    D = load_meeg(data_fname)
    w = compute_wois(1000.0 * np.asarray(D.time), wois, win_size, win_overlap, n_temp_modes)
    s = invert(data_fname, method=method, n_layers=_n_layers(surf_set, layer_name),
               smoothing=("geodesic", patch_size), n_spatial_modes=n_spatial_modes,
               n_temp_modes=n_temp_modes, foi=foi, woi=w, hann_windowing=hann_windowing,
               priors=priors, inversion_idx=inversion_idx, verbose=verbose, **kw)
    return [np.atleast_1d(s.F), w]


def invert_sliding_window_ebb(*, data_fname, surf_set=None, layer_name=None, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              verbose=False, **_mesh) -> list:
    """Native :func:`lameg.invert.invert_sliding_window_ebb`.

    Parameters
    ----------
    data_fname, surf_set, layer_name, patch_size, n_temp_modes, n_spatial_modes, wois, \
win_size, win_overlap, foi, hann_windowing, inversion_idx, verbose
        See :func:`lameg.invert.invert_sliding_window_ebb`.
    **_mesh
        ``stage``, ``orientation``, ``fixed``, ``viz``: checked by the façade.

    Returns
    -------
    list
        ``[free_energy (n_windows,), wois (n_windows, 2)]``.
    """
    return _sliding("EBB", data_fname=data_fname, surf_set=surf_set, layer_name=layer_name,
                    patch_size=patch_size, n_temp_modes=n_temp_modes,
                    n_spatial_modes=n_spatial_modes, wois=wois, win_size=win_size,
                    win_overlap=win_overlap, foi=foi, hann_windowing=hann_windowing,
                    inversion_idx=inversion_idx, verbose=verbose)


def invert_sliding_window_ebb_layer(*, data_fname, surf_set=None, layer_name=None,
                                    patch_size=5, n_temp_modes=1, n_spatial_modes="auto",
                                    wois=None, win_size=50, win_overlap=True, foi=None,
                                    hann_windowing=True, inversion_idx=0, verbose=False,
                                    **_mesh) -> list:
    """Native :func:`lameg.invert.invert_sliding_window_ebb_layer`.

    Parameters
    ----------
    data_fname, surf_set, layer_name, patch_size, n_temp_modes, n_spatial_modes, wois, \
win_size, win_overlap, foi, hann_windowing, inversion_idx, verbose
        See :func:`lameg.invert.invert_sliding_window_ebb_layer`.
    **_mesh
        ``stage``, ``orientation``, ``fixed``, ``viz``: checked by the façade.

    Returns
    -------
    list
        ``[free_energy (n_windows,), wois (n_windows, 2)]``.
    """
    return _sliding("EBBlayer", data_fname=data_fname, surf_set=surf_set,
                    layer_name=layer_name, patch_size=patch_size, n_temp_modes=n_temp_modes,
                    n_spatial_modes=n_spatial_modes, wois=wois, win_size=win_size,
                    win_overlap=win_overlap, foi=foi, hann_windowing=hann_windowing,
                    inversion_idx=inversion_idx, verbose=verbose)


def invert_sliding_window_msp(*, prior, data_fname, surf_set=None, layer_name=None,
                              patch_size=5, n_temp_modes=1, n_spatial_modes="auto", wois=None,
                              win_size=50, win_overlap=True, foi=None, hann_windowing=True,
                              inversion_idx=0, verbose=False, **_mesh) -> list:
    """Native :func:`lameg.invert.invert_sliding_window_msp`.

    Parameters
    ----------
    prior, data_fname, surf_set, layer_name, patch_size, n_temp_modes, n_spatial_modes, wois, \
win_size, win_overlap, foi, hann_windowing, inversion_idx, verbose
        See :func:`lameg.invert.invert_sliding_window_msp`.
    **_mesh
        ``stage``, ``orientation``, ``fixed``, ``viz``: checked by the façade.

    Returns
    -------
    list
        ``[free_energy (n_windows,), wois (n_windows, 2)]``.
    """
    return _sliding("MSP", data_fname=data_fname, surf_set=surf_set, layer_name=layer_name,
                    patch_size=patch_size, n_temp_modes=n_temp_modes,
                    n_spatial_modes=n_spatial_modes, wois=wois, win_size=win_size,
                    win_overlap=win_overlap, foi=foi, hann_windowing=hann_windowing,
                    inversion_idx=inversion_idx, priors=[int(prior)], verbose=verbose)
