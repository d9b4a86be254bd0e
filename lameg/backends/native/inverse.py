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
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..._utils import logger
from ...exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)
from ...inverse.crossval import crossval_error, draw_test_channels
from ...inverse.engine import invert_classic, invert_standard
from ...inverse.kernels import geodesic_kernel, green_kernel
from ...inverse.modes import truncate_woi
from ...inverse.results import InversionResult
from ...inverse.svd import spm_svd

__all__ = ["invert", "invert_ebb", "invert_ebb_layer", "invert_msp",
           "invert_sliding_window_ebb", "invert_sliding_window_ebb_layer",
           "invert_sliding_window_msp", "InversionSummary"]


@dataclass
class InversionSummary:
    """What :func:`invert` returns.

    Attributes
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


def _forward_model(D, inversion_idx: int) -> dict:
    invs = D.inv
    if inversion_idx < 0 or inversion_idx >= len(invs):
        raise LamegValueError(
            f"{D.fname.name} has no forward model at inversion_idx={inversion_idx} "
            f"({len(invs)} stored); run lameg.invert.coregister first")
    inv = dict(invs[inversion_idx])
    fwd = _first(inv.get("forward"))
    if not isinstance(fwd, dict) or not fwd or "mesh" not in inv:
        raise LamegValueError(
            f"D.other.inv{{{inversion_idx + 1}}} of {D.fname.name} has no forward model; "
            "run lameg.invert.coregister first")
    return inv


def _gain(D, inv: dict, channels: list[str]) -> np.ndarray:
    from ...io.spm_meeg import read_gainmat

    fwd = _first(inv.get("forward"))
    name = inv.get("gainmat") or (fwd.get("gainmat") if isinstance(fwd, dict) else None)
    if not name:
        raise LamegFileNotFoundError(
            f"no gain matrix recorded for {D.fname.name}; run lameg.invert.coregister first")
    path = Path(str(name))
    if not path.is_absolute():
        path = D.fname.parent / path
    if not path.exists():
        raise LamegFileNotFoundError(f"gain matrix {path} not found; re-run coregister")
    G, labels = read_gainmat(path)
    pos = {lab: i for i, lab in enumerate(labels)}
    missing = [c for c in channels if c not in pos]
    if missing:
        raise LamegFormatError(
            f"gain matrix {path.name} lacks channels {missing[:5]}; re-run coregister")
    G = G[[pos[c] for c in channels]]
    scale = fwd.get("scale") if isinstance(fwd, dict) else None
    if scale is not None and np.size(scale) == 1 and float(np.asarray(scale)) not in (0.0, 1.0):
        logger.debug("gain matrix conditioned by forward.scale = %s", scale)
    return G


def _mesh(D, inv: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    mesh = inv["mesh"]
    mni = mesh.get("tess_mni", {})
    faces = np.asarray(mni.get("face"), dtype=np.int64)
    verts = np.asarray(mni.get("vert"), dtype=float)
    if faces.size and faces.min() >= 1:
        faces = faces - 1  # MATLAB 1-based
    if kind == "geodesic":
        ctx = mesh.get("tess_ctx")
        if isinstance(ctx, str) and ctx:
            p = Path(ctx)
            p = p if p.is_absolute() else D.fname.parent / p
            if p.exists():
                import nibabel as nib

                g = nib.load(str(p))
                v = np.asarray(g.darrays[0].data, dtype=float)
                f = np.asarray(g.darrays[1].data, dtype=np.int64)
                if v.shape == verts.shape:
                    return v, f
        logger.warning("cortical mesh (tess_ctx) not readable; using tess_mni for kernels")
    return verts, faces


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


def _spatial_modes(L_train: np.ndarray, n_spatial_modes) -> tuple[np.ndarray | None, object]:
    """laMEG's ``n_spatial_modes`` -> (A or None, SPM's Nm setting)."""
    if isinstance(n_spatial_modes, str):
        if n_spatial_modes == "all":
            return np.eye(L_train.shape[0]), L_train.shape[0]
        if n_spatial_modes == "auto":
            return None, None
        raise LamegValueError("n_spatial_modes must be 'all', 'auto' or a positive integer")
    if n_spatial_modes is None:
        return None, None
    nm = int(n_spatial_modes)
    if nm <= 0:
        raise LamegValueError("n_spatial_modes must be 'all', 'auto' or a positive integer")
    u, s, _ = spm_svd(L_train @ L_train.T, 1e-12)
    if len(s) < nm:
        raise LamegValueError(f"only {len(s)} spatial modes available, {nm} requested")
    return u[:, :nm].T, nm


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
        "L": res.UL, "qC": w.qC, "tempU": w.tempU, "V": w.V, "qV": w.qV, "T": w.S,
        "U": [res.A], "Is": _to_mat_index(np.arange(res.Nd)), "It": _to_mat_index(w.It),
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


def _check_scalar_int(x, name):
    if int(x) != x or x < 0:
        raise LamegValueError(f"{name} must be a non-negative integer, got {x}")
    return int(x)


def invert(data_fname: str | os.PathLike, method: str = "EBB", n_layers: int = 1,
           smoothing=("geodesic", 5.0), n_spatial_modes="auto", n_temp_modes=None,
           foi=None, woi=None, hann_windowing: bool = True, priors=None, n_folds: int = 1,
           ideal_pc_test: float = 0, inversion_idx: int = 0, seed=None,
           engine: str = "classic", return_mu_matrix: bool = False, *,
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
    from ...io.spm_meeg import load_meeg

    data_fname = Path(data_fname)
    if not data_fname.exists():
        raise LamegFileNotFoundError(f"dataset {data_fname} not found")
    inversion_idx = _check_scalar_int(inversion_idx, "inversion_idx")
    if engine not in ("classic", "standard"):
        raise LamegValueError("engine must be 'classic' or 'standard'")
    D = load_meeg(data_fname)
    inv = _forward_model(D, inversion_idx)
    Ic = np.asarray(D.indchantype("MEGANY", "GOOD"), dtype=int)
    if Ic.size == 0:
        raise LamegDataError(f"{data_fname.name} has no good MEG channels (all marked bad?)")
    labels = [D.chanlabels[i] for i in Ic]
    L = _gain(D, inv, labels)
    time_s = np.asarray(D.time, dtype=float)
    foi = [0, 256] if foi is None else foi
    foi = np.asarray(foi, dtype=float).ravel()
    if foi.size != 2 or np.any(foi < 0):
        raise LamegValueError(f"foi must be [low, high] in Hz, got {foi}")
    lpf, hpf = float(np.fix(foi.min())), float(np.fix(foi.max()))
    woi = [-np.inf, np.inf] if woi is None else woi
    wois = truncate_woi(woi, time_s)
    if np.any(wois[:, 0] >= wois[:, 1]):
        raise LamegDataError(
            f"woi {np.asarray(woi).tolist()} ms does not overlap the data "
            f"({1000 * time_s[0]:.1f} .. {1000 * time_s[-1]:.1f} ms)")
    kind, value = smoothing
    verts, faces = _mesh(D, inv, kind)
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
    else:
        raise LamegValueError("smoothing must be ('geodesic', fwhm_mm) or ('green', s)")
    Ip = None
    if priors is not None:
        Ip = np.atleast_1d(np.asarray(priors, dtype=int)).ravel()
        if Ip.size == 0 or Ip.min() < 0 or Ip.max() >= nd:
            raise LamegValueError(f"priors must be 0-based vertex indices in 0..{nd - 1}")
    elif method in ("MSP", "GS", "ARD"):
        Ip = np.ceil(np.arange(1, 513) * nd / 512).astype(int) - 1  # laMEG: 512 patches
    data = D.data
    trials = _trials(D)
    testchans, pc = draw_test_channels(len(Ic), n_folds, ideal_pc_test, seed)
    results, crossF, crosserr = [], [], []
    all_idx = np.arange(len(Ic))
    for b in range(n_folds):
        test = testchans[b]
        train = np.setdiff1d(all_idx, test)
        ytrain = np.asarray(data[Ic[train]])
        L_tr = L[train]
        A, nm = _spatial_modes(L_tr, n_spatial_modes)
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
        invs = [dict(x) for x in D.inv]
        invs[inversion_idx] = dict(invs[inversion_idx], inverse=inverse, method="Imaging")
        D.save_inv(invs, val=inversion_idx + 1)
    return InversionSummary(F=np.squeeze(crossF), cv_err=np.squeeze(crosserr), wois=wois,
                            mu_matrix=mu, results=results)


# --- laMEG 0.2.1 façades -----------------------------------------------------------------


def _mesh_layers(surf_set, layer_name):
    if surf_set is None:
        return 1
    return surf_set.n_layers if layer_name is None else 1


def _spatial(n_spatial_modes):
    return n_spatial_modes


def _ret(summary: InversionSummary, return_mu_matrix: bool):
    out = [summary.F, summary.cv_err]
    if return_mu_matrix:
        out.append(summary.mu_matrix)
    return out


def invert_ebb(data_fname, surf_set=None, layer_name=None, stage="ds",
               orientation="link_vector", fixed=True, patch_size=5, n_temp_modes=4,
               n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False, n_folds=1,
               ideal_pc_test=0, inversion_idx=0, viz=True, return_mu_matrix=False,
               spm_instance=None, seed=None, verbose=False):
    """Empirical Bayes beamformer inversion (laMEG 0.2.1 signature).

    The mesh is the forward model's (``surf_set``, ``layer_name``, ``stage``, ``orientation``
    and ``fixed`` only set the number of layers); ``viz`` and ``spm_instance`` are accepted for
    compatibility and ignored. Returns ``[free_energy, cv_err]`` (+ ``mu_matrix``).
    """
    s = invert(data_fname, "EBB", _mesh_layers(surf_set, layer_name), ("geodesic", patch_size),
               n_spatial_modes, n_temp_modes, foi, woi, hann_windowing, None, n_folds,
               ideal_pc_test, inversion_idx, seed, "classic", return_mu_matrix,
               verbose=verbose)
    return _ret(s, return_mu_matrix)


def invert_ebb_layer(data_fname, surf_set=None, layer_name=None, stage="ds",
                     orientation="link_vector", fixed=True, patch_size=5, n_temp_modes=4,
                     n_spatial_modes="auto", foi=None, woi=None, hann_windowing=False,
                     n_folds=1, ideal_pc_test=0, diag_vertex=None, sum_pair_topk=2,
                     diff_pair_topk=2, inversion_idx=0, viz=True, return_mu_matrix=False,
                     spm_instance=None, seed=None, verbose=False):
    """Laminar EBB inversion (laMEG 0.2.1 signature; needs a multilayer forward model)."""
    n_layers = _mesh_layers(surf_set, layer_name)
    if n_layers < 2:
        raise LamegValueError("invert_ebb_layer needs a multilayer mesh (surf_set with >= 2 "
                              "layers and layer_name=None)")
    s = invert(data_fname, "EBBlayer", n_layers, ("geodesic", patch_size), n_spatial_modes,
               n_temp_modes, foi, woi, hann_windowing, None, n_folds, ideal_pc_test,
               inversion_idx, seed, "classic", return_mu_matrix, sum_pair_topk=sum_pair_topk,
               diff_pair_topk=diff_pair_topk, diag_vertex=diag_vertex, verbose=verbose)
    return _ret(s, return_mu_matrix)


def invert_msp(data_fname, surf_set=None, layer_name=None, stage="ds",
               orientation="link_vector", fixed=True, priors=None, patch_size=5,
               n_temp_modes=4, n_spatial_modes="auto", foi=None, woi=None,
               hann_windowing=False, n_folds=1, ideal_pc_test=0, inversion_idx=0, viz=True,
               return_mu_matrix=False, spm_instance=None, seed=None, verbose=False):
    """Multiple sparse priors inversion (GS + ARD; laMEG 0.2.1 signature)."""
    s = invert(data_fname, "MSP", _mesh_layers(surf_set, layer_name), ("geodesic", patch_size),
               n_spatial_modes, n_temp_modes, foi, woi, hann_windowing, priors, n_folds,
               ideal_pc_test, inversion_idx, seed, "classic", return_mu_matrix,
               verbose=verbose)
    return _ret(s, return_mu_matrix)


def compute_wois(time_ms: np.ndarray, wois=None, win_size: float = 50, win_overlap=True,
                 n_temp_modes: int = 1) -> np.ndarray:
    """Sliding windows as laMEG's ``_compute_wois`` (ms), shape (n_windows, 2)."""
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


def _sliding(method, data_fname, surf_set, layer_name, patch_size, n_temp_modes,
             n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing, inversion_idx,
             priors=None, verbose=False, **kw):
    from ...io.spm_meeg import load_meeg

    D = load_meeg(data_fname)
    w = compute_wois(1000.0 * np.asarray(D.time), wois, win_size, win_overlap, n_temp_modes)
    s = invert(data_fname, method, _mesh_layers(surf_set, layer_name), ("geodesic", patch_size),
               n_spatial_modes, n_temp_modes, foi, w, hann_windowing, priors, 1, 0,
               inversion_idx, None, "classic", False, verbose=verbose, **kw)
    return [np.atleast_1d(s.F), w]


def invert_sliding_window_ebb(data_fname, surf_set=None, layer_name=None, stage="ds",
                              orientation="link_vector", fixed=True, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              viz=True, spm_instance=None, verbose=False):
    """EBB in sliding windows -> ``[free_energy (n_windows,), wois (n_windows, 2)]``."""
    return _sliding("EBB", data_fname, surf_set, layer_name, patch_size, n_temp_modes,
                    n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing,
                    inversion_idx, verbose=verbose)


def invert_sliding_window_ebb_layer(data_fname, surf_set=None, layer_name=None, stage="ds",
                                    orientation="link_vector", fixed=True, patch_size=5,
                                    n_temp_modes=1, n_spatial_modes="auto", wois=None,
                                    win_size=50, win_overlap=True, foi=None,
                                    hann_windowing=True, inversion_idx=0, viz=True,
                                    spm_instance=None, verbose=False):
    """Laminar EBB in sliding windows -> ``[free_energy, wois]``."""
    return _sliding("EBBlayer", data_fname, surf_set, layer_name, patch_size, n_temp_modes,
                    n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing,
                    inversion_idx, verbose=verbose)


def invert_sliding_window_msp(prior, data_fname, surf_set=None, layer_name=None, stage="ds",
                              orientation="link_vector", fixed=True, patch_size=5,
                              n_temp_modes=1, n_spatial_modes="auto", wois=None, win_size=50,
                              win_overlap=True, foi=None, hann_windowing=True, inversion_idx=0,
                              viz=True, spm_instance=None, verbose=False):
    """MSP with one fixed prior vertex (0-based) in sliding windows -> ``[F, wois]``."""
    return _sliding("MSP", data_fname, surf_set, layer_name, patch_size, n_temp_modes,
                    n_spatial_modes, wois, win_size, win_overlap, foi, hann_windowing,
                    inversion_idx, priors=[int(prior)], verbose=verbose)
