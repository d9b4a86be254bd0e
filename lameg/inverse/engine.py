"""Array-level inversion engines.

:func:`invert_classic` reproduces ``spm_eeg_invert_classic`` (the routine laMEG runs, danclab
version with several windows and EBBlayer) and :func:`invert_standard` reproduces
``spm_eeg_invert`` (SPM's default 'Imaging' inversion) for one subject and one modality.
Both take the lead field of the good channels and the data of the same channels, so the
file handling stays in :mod:`lameg.backends.native.inverse`.

Documented SPM behaviours that are kept because they change the numbers (see the SPM
pipeline reference): the reduced data ``UY`` is summed over trials (classic); ``Nn = Nr K``;
the Hanning window only enters the choice of temporal modes; ``spm_svd`` thresholds squared
singular values; stage 2 uses ``Q0`` both as a component and as the fixed floor (classic); the
MAP operator mixes the post-update hyperparameters with the pre-update ``Cy``; the classic R2
takes variances over spatial modes, the standard one over temporal modes; the standard EBB
beamformer uses the covariance of the last trial and unsmoothed lead fields.

Deliberate difference: the standard engine's two ill-posed inverses (``A = UL L'
spm_inv(L L')`` and the EBB beamformer's ``spm_inv`` of a rank-Nr covariance) are evaluated
exactly from thin SVDs instead of through a rounding-dominated floating-point inverse (see
:func:`standard_spatial_projector`, :func:`standard_ebb_inverse_covariance`), which makes
the results independent of the BLAS/LAPACK build and thread count.

Speed: quantities that depend only on the lead field, the spatial projector and the kernel
(``L L'`` and its SVD, ``UL = A L``, ``UL QG`` and its column norms) are kept in the
content-keyed cache of :mod:`lameg.inverse.cache`, so model comparisons, sliding windows and
simulation sweeps pay for them once; symmetric products use rank-k updates; pooled priors
reuse their stage-1 projections ``UL Q UL'`` (linearity) instead of recomputing them; and
windows whose MAP operator is not kept skip the dense ``M`` (Nd x Nm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._utils import progress
from ..exceptions import LamegDataError, LamegValueError
from . import priors as pr
from .cache import array_key, cached
from .modes import lead_gram_svd, spatial_modes, temporal_basis, temporal_modes, woi_samples
from .reml import reml_sc
from .results import InversionResult, WindowResult
from .svd import spm_inv, spm_svd

CLASSIC_TYPES = ("EBB", "EBBlayer", "MSP", "GS", "ARD", "IID", "MMN", "COH", "LOR")
STANDARD_TYPES = ("EBB", "MSP", "GS", "ARD", "IID", "MMN", "COH", "LOR")


def _as_trials(trials, n_trials: int) -> list[np.ndarray]:
    if trials is None:
        return [np.arange(n_trials)]
    out = [np.asarray(t, dtype=int).ravel() for t in trials]
    for t in out:
        if t.size and (t.min() < 0 or t.max() >= n_trials):
            raise LamegValueError(f"trial indices must be within 0..{n_trials - 1}")
    if sum(t.size for t in out) == 0:
        raise LamegDataError("no (good) trials to invert")
    return out


def _check_inputs(L, data, time_s):
    """Validate shapes; returns ``(L, data, key)`` with ``key`` the content key of ``L``."""
    L = np.asarray(L, dtype=float)
    if L.ndim != 2:
        raise LamegValueError(f"lead field must be (n_channels, n_sources), got {L.shape}")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[0] != L.shape[0]:
        raise LamegValueError(
            f"data must be (n_channels, n_samples, n_trials) with {L.shape[0]} channels, "
            f"got {data.shape}")
    if len(time_s) != data.shape[1]:
        raise LamegValueError("time axis length does not match the data")
    if L.shape[0] == 0:
        raise LamegDataError("no good channels to invert")
    key = array_key(L)
    if not cached(array_key(key, extra="finite"), lambda: bool(np.all(np.isfinite(L)))):
        raise LamegDataError("the lead field contains NaN or Inf values")
    return L, data, key


def _reduced_lead(L, A, lkey: str) -> np.ndarray:
    """``UL = A L`` (Nm, Nd), cached by the content of ``L`` and ``A``.

    Formed as ``(L' A')'``: column-major like a gain read from file, so that the sparse
    products with the kernel (``QG' UL'``) need no conversion of this Nm x Nd matrix.
    """
    return cached(array_key(lkey, A, extra="UL"), lambda: (L.T @ A.T).T)


def _gram(x: np.ndarray) -> np.ndarray:
    """``x x'`` by a symmetric rank-k update (exactly symmetric, as MATLAB's ``X*X'``)."""
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        x = np.ascontiguousarray(x)
    return x @ x.T


def _apply_temporal(ay: np.ndarray, S: np.ndarray) -> np.ndarray:
    """(Nm, Nb, K) x (Nb, Nr) -> (Nm, Nr, K)."""
    nm, nb, k = ay.shape
    z = np.ascontiguousarray(ay.transpose(0, 2, 1)).reshape(nm * k, nb) @ S
    return z.reshape(nm, k, S.shape[1]).transpose(0, 2, 1)


def _temporal_gram(ay: np.ndarray) -> np.ndarray:
    """``sum_k ay_k' ay_k`` (Nb, Nb) from ay (Nm, Nb, K)."""
    nm, nb, k = ay.shape
    z = np.ascontiguousarray(ay.transpose(1, 0, 2)).reshape(nb, nm * k)
    return _gram(z)


def _side_by_side(Yk: np.ndarray) -> np.ndarray:
    """(Nm, Nr, K) -> (Nm, K Nr), trials side by side (SPM's ``AY``)."""
    nm, nr, k = Yk.shape
    return np.ascontiguousarray(Yk.transpose(0, 2, 1)).reshape(nm, k * nr)


def _fsample(time_s: np.ndarray, fsample: float | None) -> float:
    if fsample is not None:
        return float(fsample)
    if len(time_s) < 2:
        raise LamegValueError("need at least two samples (or pass fsample)")
    return float(np.round(1.0 / np.median(np.diff(time_s)), 6))


def _var_cols(x: np.ndarray) -> np.ndarray:
    """MATLAB ``var(X)``: over rows (N-1), but over the elements of a row vector."""
    if x.shape[0] == 1:
        return np.atleast_1d(np.var(x, ddof=1))
    return np.var(x, axis=0, ddof=1)


def _as_index(idx: np.ndarray):
    """A slice when ``idx`` is a contiguous increasing range (cheap on memory maps)."""
    idx = np.asarray(idx)
    if idx.size and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _window_data(data, it, ik) -> np.ndarray:
    ti, ki = _as_index(it), _as_index(ik)
    if isinstance(ti, slice) or isinstance(ki, slice):  # at most one fancy index
        y = np.asarray(data[:, ti, ki], dtype=np.float64)
    else:
        y = np.asarray(data[:, it, :], dtype=np.float64)[:, :, ik]
    if not np.all(np.isfinite(y)):
        raise LamegDataError("the data contain NaN or Inf values in the inverted window; "
                             "mark the affected channels/trials bad or clean the data")
    return y


@dataclass
class _Prior:
    """A pooled source prior ``qp`` with its projections ``lq = UL qp`` and ``lql = UL qp UL'``.

    ``q`` is a vector (diagonal prior) or a sparse matrix (Nd, Nd); ``lq`` may be None (then
    it is formed from ``q`` when needed).
    """

    q: object
    lql: np.ndarray
    lq: np.ndarray | None = None

    def diagonal(self) -> np.ndarray:
        return self.q if isinstance(self.q, np.ndarray) else self.q.diagonal()

    def matrix(self, nd: int):
        return sp.diags(self.q) if isinstance(self.q, np.ndarray) else self.q

    def lead(self, UL: np.ndarray) -> np.ndarray:
        if self.lq is not None:
            return self.lq
        if isinstance(self.q, np.ndarray):
            return UL * self.q
        return np.asarray((self.q.T @ UL.T).T)  # UL @ qp (qp symmetric)


def _stage1_cov(kind, UL, QG, AYYA, Qe, Q0, Nn, layer_opts, extras, leads=None):
    """Covariance-type priors (EBB, EBBlayer, IID, COH): stage-1 ReML and pooling.

    Returns the pooled prior (:class:`_Prior`) and the ReML result. ``leads`` are the
    pre-computed smoothed lead fields ``UL QG`` (EBB, EBBlayer).
    """
    nd = UL.shape[1]
    diag_parts = None
    if kind == "EBB":
        inv_cov = spm_inv(AYYA)
        lead_mat, norms = leads if leads is not None else (None, None)
        allsource, power = pr.ebb_weights(UL, QG, inv_cov, smooth=True, leads=lead_mat,
                                          norms=norms)
        mx = allsource.max()
        if not mx > 0:
            raise LamegDataError("EBB prior is zero everywhere (lead field or data are zero)")
        extras.update(allsource=allsource / mx, Sourcepower=power, InvCov=inv_cov)
        diag_parts = [allsource / mx]
        xs = UL * np.sqrt(diag_parts[0])
        lqpl = [_gram(xs)]
    elif kind == "EBBlayer":
        inv_cov = spm_inv(AYYA)
        lp = pr.ebblayer_priors(UL, QG, inv_cov, leads=leads, **layer_opts)
        extras["EBBlayer_diag"] = lp.diag
        qps = [sp.diags(lp.Qp[0]), lp.Qp[1], lp.Qp[2]]
        lqpl = lp.LQpL
    elif kind in ("IID", "MMN"):
        diag_parts = [np.ones(nd)]
        lqpl = [_gram(UL)]
    else:  # COH / LOR
        qps = [sp.identity(nd, format="csr"), sp.csr_matrix(QG)]
        lqpl = [_gram(UL), UL @ np.asarray(QG @ UL.T)]
    # components with zero trace cannot be scaled by ReML: leave them out (weight 0)
    use = [i for i, q in enumerate(lqpl) if np.trace(q) > 0]
    if not use:
        raise LamegDataError("all source prior components are zero")
    res = reml_sc(AYYA, [Qe] + [lqpl[i] for i in use], Nn, -4, 16, Q0)
    hp = np.zeros(len(lqpl))
    hp[use] = res.h[1:]
    extras["h_source"] = hp
    # pooled prior qp = sum_j h_j Qp_j, and (by linearity) UL qp UL' = sum_j h_j LQpL_j
    lql = sum(h * q for h, q in zip(hp, lqpl) if h != 0)
    if diag_parts is not None:
        q = sum(h * d for h, d in zip(hp, diag_parts) if h != 0)
        return _Prior(q=np.asarray(q, dtype=float) * np.ones(nd), lql=lql), res
    qp = sp.csr_matrix((nd, nd))
    for h, q in zip(hp, qps):
        if h != 0:
            qp = qp + h * q
    return _Prior(q=qp.tocsr(), lql=lql), res


def _final_stage(UL, priors, AYYA, comps0, Nn, Q0, need_m: bool = True):
    """Final ReML over pooled priors ``LQPL_j = UL qp_j UL'`` and the MAP operator pieces.

    Without ``need_m`` the dense MAP operator ``M`` (Nd x Nm) and the posterior variances
    ``qC`` (which cost as much) are not formed (returned as None); ``J`` can still be
    obtained cheaply as ``LCp' (iCy' UY)`` (see :func:`_source_estimates`).
    """
    res = reml_sc(AYYA, [comps0] + [p.lql for p in priors], Nn, -4, 16, Q0)
    hp = res.h[1:]
    nd = UL.shape[1]
    if all(isinstance(p.q, np.ndarray) for p in priors):
        dq = sum(h * p.q for h, p in zip(hp, priors))
        qtot = sp.diags(dq).tocsr()
        lcp = UL * dq
        cp = dq
    else:
        qtot = sp.csr_matrix((nd, nd))
        lcp = None
        cp = np.zeros(nd)
        for h, p in zip(hp, priors):
            qtot = qtot + h * p.matrix(nd)
            term = h * p.lead(UL)  # keeps the memory layout of the lead
            if lcp is None:
                lcp = term
            else:
                lcp += term
            cp = cp + h * p.diagonal()
    icy = np.linalg.inv(res.C)
    if not need_m:
        return res, qtot.tocsr(), lcp, None, cp, None, icy
    # LCp' / Cy, (Nd, Nm), formed as (Cy \ LCp)' so that it is column-major as MATLAB stores
    # it: the header writer then copies it without a gain-sized transposition
    M = (icy @ lcp).T
    qc = cp - np.einsum("md,dm->d", lcp, M)
    return res, qtot.tocsr(), lcp, M, cp, qc, icy


def _source_estimates(M, lcp, icy, uy) -> list:
    """``J = M UY`` per condition; from the factors ``LCp' (iCy' UY)`` when M was not formed."""
    if M is not None:
        return [M @ u for u in uy]
    return [lcp.T @ (icy.T @ u) for u in uy]


def invert_classic(L, data, time_s, *, inv_type: str = "EBB", QG=None,
                   trials: Sequence | None = None, woi=None, lpf: float = 0.0,
                   hpf: float = 48.0, hanning: bool = True, n_spatial_modes: int | None = None,
                   n_temp_modes: int | None = None, A: np.ndarray | None = None,
                   Ip: np.ndarray | None = None, n_patches: int = 256, Qe0: float = np.exp(-5),
                   sdv: float = 4.0, n_layers: int = 1, sum_pair_topk: int = 2,
                   diff_pair_topk: int = 2, diff_score_method: str = "stable",
                   diag_vertex: int | None = None, keep_M: str = "first",
                   fsample: float | None = None, verbose: bool = False) -> InversionResult:
    """Invert M/EEG data as ``spm_eeg_invert_classic``.

    Parameters
    ----------
    L : ndarray (Nc, Nd)
        Lead field of the good channels (fT per nA m, rows in channel order).
    data : array_like (Nc, n_samples, n_trials)
        Data of the same channels (fT); may be a memory map.
    time_s : ndarray (n_samples,)
        Time axis, s.
    inv_type : str
        'EBB', 'EBBlayer', 'MSP', 'GS', 'ARD', 'IID' ('MMN'), 'COH' ('LOR').
    QG : sparse (Nd, Nd)
        Smoothing kernel (Green function or geodesic patches).
    trials : list of int arrays
        0-based good trials per condition (default: all trials, one condition).
    woi : array_like (2,) or (n_windows, 2)
        Windows in ms, already truncated as the caller wishes (see
        :func:`lameg.inverse.modes.truncate_woi`); default the whole epoch.
    lpf, hpf : float
        Lower and upper frequency bounds of the DCT basis, Hz.
    hanning : bool
        Hanning-weight the temporal covariance used to choose temporal modes.
    n_spatial_modes : int or None
        None = automatic (``spm_svd(L L', exp(-16))``), else the first n modes.
    n_temp_modes : int or None
        None = automatic (<= 16), else fixed.
    A : ndarray (Nm, Nc) or None
        Pre-computed spatial projector (overrides ``n_spatial_modes``).
    Ip : ndarray or None
        0-based patch centres for MSP/GS/ARD (default ``ceil((1..Np) Nd / Np) - 1``).
    n_patches : int
        Number Np of default patch centres (when ``Ip`` is None).
    Qe0 : float
        Noise floor relative to the data power.
    sdv : float
        Standard deviation of the Gaussian temporal smoother of the prior ``qV``, ms.
    n_layers, sum_pair_topk, diff_pair_topk, diff_score_method, diag_vertex
        EBBlayer settings.
    keep_M : {'first', 'all', 'none'}
        For which windows the dense MAP projector ``M`` and the posterior variances ``qC``
        are formed (the factored operator is always kept; ``J`` is computed either way).
    fsample : float or None
        Sampling rate, Hz (default: from ``time_s``, rounded to 1e-6 Hz). It enters SPM's
        window-to-sample conversion, so pass the dataset's exact value.
    verbose : bool
        Progress bar over windows.

    Returns
    -------
    InversionResult
    """
    kind = inv_type
    if kind not in CLASSIC_TYPES:
        raise LamegValueError(f"unknown inversion type {inv_type!r}; use one of {CLASSIC_TYPES}")
    L, data, lkey = _check_inputs(L, data, time_s)
    time_s = np.asarray(time_s, dtype=float)
    fsample = _fsample(time_s, fsample)
    nc, nd = L.shape
    if QG is None:
        if kind in ("IID", "MMN"):
            QG = sp.identity(nd, format="csc")
        else:
            raise LamegValueError(f"{kind} needs a smoothing kernel QG")
    if QG.shape != (nd, nd):
        raise LamegValueError(f"kernel shape {QG.shape} does not match {nd} sources")
    QG = sp.csc_matrix(QG)
    tr = _as_trials(trials, data.shape[2])
    if Ip is None:
        Ip = np.ceil(np.arange(1, n_patches + 1) * nd / n_patches).astype(int) - 1
    Ip = np.asarray(Ip, dtype=int)
    if A is None:
        A = spatial_modes(L, n_spatial_modes, key=lkey)
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[1] != nc or A.shape[0] == 0:
        raise LamegValueError(f"spatial projector must be (Nm, {nc}), got {A.shape}")
    UL = _reduced_lead(L, A, lkey)
    leads = None
    if kind in ("EBB", "EBBlayer"):  # smoothed lead fields, shared by all windows (cached)
        lqkey = array_key(array_key(lkey, A), array_key(QG), extra="ULQG")
        leads = cached(lqkey, lambda: pr.smoothed_leads(UL, QG))
        if kind == "EBB":
            leads = (leads, cached(array_key(lqkey, extra="norms"),
                                   lambda: pr.lead_norms(leads)))
    if woi is None:
        woi = 1000.0 * np.array([[time_s.min(), time_s.max()]])
    woi = np.atleast_2d(np.asarray(woi, dtype=float))
    layer_opts = dict(n_layers=n_layers, sum_pair_topk=sum_pair_topk,
                      diff_pair_topk=diff_pair_topk, diff_score_method=diff_score_method,
                      diag_vertex=diag_vertex)
    wins = []
    for w_idx in progress(range(len(woi)), verbose and len(woi) > 1, desc="windows"):
        keep = keep_M == "all" or (keep_M == "first" and w_idx == 0)
        wins.append(_classic_window(data, time_s, fsample, woi[w_idx], kind, QG, tr, lpf,
                                    hpf, hanning, n_temp_modes, A, UL, Ip, Qe0, sdv,
                                    layer_opts, keep, leads))
    return InversionResult(method=kind, engine="classic", A=A, UL=UL, Ic=np.arange(nc),
                           Ip=Ip, windows=wins,
                           settings=dict(lpf=lpf, hpf=hpf, Han=bool(hanning), Nt=n_temp_modes,
                                         Nm=n_spatial_modes, Qe0=Qe0, sdv=sdv,
                                         nlayers=n_layers, Np=len(Ip)))


def _patch_prior(Q, lq_patch: np.ndarray, w: np.ndarray) -> _Prior:
    """Prior ``Q diag(w) Q'`` over patches, with ``lq_patch = UL Q`` (Nm, Np)."""
    keep = np.flatnonzero(w)
    qs = Q[:, keep]
    lw = lq_patch[:, keep] * w[keep]
    q = (qs @ sp.diags(w[keep]) @ qs.T).tocsr()
    lq = np.asarray((qs @ lw.T).T)  # UL Q diag(w) Q'
    return _Prior(q=q, lql=lw @ lq_patch[:, keep].T, lq=lq)


def _sparse_priors(kind, Q, UL, AY, AYYA, Qe_mvb, Qe, Nn, extras: dict) -> list[_Prior]:
    """Patch priors of MSP/GS/ARD: greedy search (MVB) and/or ARD weights over patches ``Q``.

    ``Qe_mvb`` is the sensor-noise component the greedy search uses (the classic engine's
    ``Qe``, the standard engine's ``AQ``). Records ``MVB_cp``/``MVB_F`` and ``ARD_h`` in
    ``extras``.
    """
    lq_patch = np.asarray((Q.T @ UL.T).T)
    priors = []
    if kind in ("MSP", "GS"):
        mvb = pr.mvb_greedy(AY, UL, Q, Qe_mvb, 16, lp=lq_patch)
        extras.update(MVB_cp=mvb.cp, MVB_F=mvb.F)
        priors.append(_patch_prior(Q, lq_patch, mvb.cp))
    if kind in ("MSP", "ARD"):
        hp = pr.ard_weights(AYYA, Qe, UL, Q, Nn, lq=lq_patch)
        priors.append(_patch_prior(Q, lq_patch, np.where(hp > hp.max() / 128, hp, 0.0)))
        extras["ARD_h"] = hp
    return priors


@dataclass
class WindowReduction:
    """Spatially and temporally reduced data of one window (classic engine).

    Attributes: ``it`` (samples), ``basis`` (:class:`~lameg.inverse.modes.TemporalBasis`),
    ``ik`` (trials), ``S``/``V``/``ve``/``tempU`` (temporal modes), ``Yk`` (Nm, Nr, K),
    ``uy`` (per-condition sums, Nm x Nr), ``AY`` (Nm, Nr K), ``AYYA`` (Nm, Nm), ``Nn``,
    ``Qe`` (sensor noise component, Nm x Nm).
    """

    it: np.ndarray
    basis: object
    ik: np.ndarray
    S: np.ndarray
    V: np.ndarray
    ve: float
    tempU: np.ndarray
    Yk: np.ndarray
    uy: list
    AY: np.ndarray
    AYYA: np.ndarray
    Nn: int
    Qe: np.ndarray


def reduce_window(data, time_s, fsample, w, tr, lpf, hpf, han, nt, A,
                  sdv: float = 4.0) -> WindowReduction:
    """Data reduction of one window as ``spm_eeg_invert_classic`` (before any prior).

    Parameters
    ----------
    data : array_like, shape (Nc, n_samples, n_trials)
        Data of the good channels (fT); may be a memory map.
    time_s : ndarray, shape (n_samples,)
        Time axis, s.
    fsample : float
        Sampling rate, Hz.
    w : array_like, shape (2,)
        The window, ms.
    tr : list of int arrays
        0-based trials per condition.
    lpf, hpf : float
        Lower and upper frequency bounds of the DCT basis, Hz.
    han : bool
        Hanning-weight the temporal covariance used to choose temporal modes.
    nt : int or None
        Number of temporal modes; None chooses it automatically (<= 16).
    A : ndarray, shape (Nm, Nc)
        Spatial projector.
    sdv : float
        Width of the temporal smoothness prior (as in :func:`invert_classic`), ms.

    Returns
    -------
    WindowReduction
        The reduced data (temporal modes, ``AY`` (Nm, Nr K), ``AYYA`` (Nm, Nm), ``Qe``, ...).
    """
    it = woi_samples(w, time_s, fsample)
    basis = temporal_basis(it, time_s, lpf, hpf, han, sdv)
    ik = np.concatenate(tr)
    K = len(ik)
    y = _window_data(data, it, ik)  # (Nc, Nb, K)
    nb = len(it)
    nc = y.shape[0]
    ay = (A @ y.reshape(nc, nb * K)).reshape(A.shape[0], nb, K)
    yy = _temporal_gram(ay) / K
    S, V, ve, tempU = temporal_modes(yy, basis, nt)
    nr = S.shape[1]
    Yk = _apply_temporal(ay, S)  # (Nm, Nr, K)
    uy = []
    pos = 0
    for t in tr:
        uy.append(Yk[:, :, pos:pos + len(t)].sum(axis=2))
        pos += len(t)
    AY = _side_by_side(Yk)  # trials side by side
    aqea = _gram(A)
    return WindowReduction(it=it, basis=basis, ik=ik, S=S, V=V, ve=ve, tempU=tempU, Yk=Yk,
                           uy=uy, AY=AY, AYYA=_gram(AY), Nn=nr * K,
                           Qe=aqea / np.trace(aqea))


def _classic_window(data, time_s, fsample, w, kind, QG, tr, lpf, hpf, han, nt, A, UL, Ip,
                    Qe0, sdv, layer_opts, keep_m, leads=None) -> WindowResult:
    red = reduce_window(data, time_s, fsample, w, tr, lpf, hpf, han, nt, A, sdv)
    it, basis, ik, S, V, ve, tempU = red.it, red.basis, red.ik, red.S, red.V, red.ve, red.tempU
    Yk, uy, AY, AYYA, Nn, Qe = red.Yk, red.uy, red.AY, red.AYYA, red.Nn, red.Qe
    nr = S.shape[1]
    Q0 = Qe0 * np.trace(AYYA) * Qe / Nn
    extras: dict = {}
    priors = []
    h1 = np.zeros(0)
    if kind in ("MSP", "GS", "ARD"):
        Q = pr.patch_matrix(QG, Ip)
        priors += _sparse_priors(kind, Q, UL, AY, AYYA, Qe, Qe, Nn, extras)
    else:
        prior, res1 = _stage1_cov(kind, UL, QG, AYYA, Qe, Q0, Nn, layer_opts, extras, leads)
        h1 = res1.h
        extras["F_stage1"] = res1.F
        priors.append(prior)
    res, qtot, lcp, M, cp, qc, icy = _final_stage(UL, priors, AYYA, Q0, Nn, Q0, keep_m)
    J = _source_estimates(M, lcp, icy, uy)
    ssr = sum(np.sum(_var_cols(u - UL @ j)) for u, j in zip(uy, J))
    sst = sum(np.sum(_var_cols(u)) for u in uy)
    r2 = 100.0 * (sst - ssr) / sst
    vq = S @ np.linalg.pinv(S.T @ basis.qV @ S) @ S.T
    return WindowResult(
        F=res.F, R2=float(r2), VE=float(r2 * ve), woi=np.asarray(w, dtype=float), It=it,
        Ik=ik, pst=basis.pst, dct=basis.dct, S=S, V=V, tempU=tempU, qV=vq, Nr=nr,
        ve_temporal=ve, UY=uy, J=J, Q=qtot, iCy=icy, M=M, qC=qc, Cp=cp, Cy=res.C,
        h_stage1=h1, h_stage2=res.h,
        Ph=res.Ph, AYYA=AYYA, Qe=Qe, Q0=Q0, Y_last=Yk[:, :, -1].copy(), Nn=Nn, extras=extras)


def _mirror_index(vert: np.ndarray, i: int) -> int:
    d = ((vert[:, 0] + vert[i, 0]) ** 2 + (vert[:, 1] - vert[i, 1]) ** 2
         + (vert[:, 2] - vert[i, 2]) ** 2)
    return int(np.argmin(d))


def standard_spatial_projector(L: np.ndarray, *, key: str | None = None) -> np.ndarray:
    """Spatial projector ``A`` (Nm, Nc) of ``spm_eeg_invert`` for one subject, cached.

    SPM computes ``U = spm_svd(L L')``, ``UL = U' L / sqrt(tr(U' L L' U) / Nm)`` and
    ``A = UL L' spm_inv(L L')``. ``L L'`` has condition numbers of ~1e17, so the last product
    amplifies rounding by ``1 / TOL`` and SPM's ``A`` carries ~1 % of rounding noise outside
    the lead-field subspace that no other BLAS/LAPACK reproduces (even the thread count of
    the same library changes it). Here the product is evaluated exactly: with ``L L' = U
    diag(s) U'`` (``U`` from the same ``spm_svd``), ``UL L' (L L' + TOL I)^-1 =
    diag(s / (s + TOL)) U' / scale``, TOL as ``spm_inv``. ``A L`` agrees with SPM's to ~1e-6.

    Parameters
    ----------
    L : ndarray (Nc, Nd)
        Lead field.
    key : str or None
        Pre-computed :func:`lameg.inverse.cache.array_key` of ``L``.

    Returns
    -------
    ndarray (Nm, Nc)
    """
    key = key or array_key(L)

    def _compute():
        U, s = lead_gram_svd(L, 1e-6, key=key)
        nm = U.shape[1]
        ul = U.T @ L
        scale = np.sqrt(np.sum(ul * ul) / nm)  # sqrt(trace(UL UL') / Nm)
        ll_norm = cached(array_key(key, extra="LL_inf_norm"),
                         lambda: float(np.linalg.norm(_gram(L), np.inf)))
        tol = max(np.spacing(ll_norm) * L.shape[0], np.exp(-32))
        return (s / (s + tol))[:, None] * U.T / scale

    return np.array(cached(array_key(key, extra="standard_A"), _compute))


def standard_ebb_inverse_covariance(y_last: np.ndarray) -> np.ndarray:
    """Beamformer ``InvCov = spm_inv(Y Y')`` of ``spm_eeg_invert`` (EBB), evaluated exactly.

    SPM inverts the covariance of the last trial only (Nm x Nm, rank Nr < Nm), so ``Y Y' +
    TOL I`` has a condition number of ~1e13 and the rounding noise of the null-space
    eigenvalues (~1e-16 ||YY||, vs TOL ~ 76 eps ||YY||) enters the inverse at the 0.1-1 %
    level, differently on every BLAS. With the thin SVD ``Y = U diag(s) V'`` the regularised
    inverse is ``U diag(1 / (s^2 + TOL)) U' + (I - U U') / TOL``, exact to rounding.

    Parameters
    ----------
    y_last : ndarray (Nm, Nr)
        Reduced, scaled data of the last trial.

    Returns
    -------
    ndarray (Nm, Nm)
        Symmetric inverse covariance.
    """
    y = np.asarray(y_last, dtype=float)
    nm = y.shape[0]
    yy = _gram(y)
    tol = max(np.spacing(np.linalg.norm(yy, np.inf)) * nm, np.exp(-32))
    u, s, _ = np.linalg.svd(y, full_matrices=False)
    proj = np.eye(nm) - _gram(u)
    out = (u / (s**2 + tol)) @ u.T + proj / tol
    return (out + out.T) / 2


def invert_standard(L, data, time_s, *, inv_type: str = "EBB", QG=None,
                    trials: Sequence | None = None, woi=None, lpf: float = 0.0,
                    hpf: float = 48.0, hanning: bool = True, n_patches: int = 256,
                    vertices: np.ndarray | None = None, sdv: float = 4.0,
                    n_max_temp: int = 16, A: np.ndarray | None = None,
                    fsample: float | None = None) -> InversionResult:
    """Invert M/EEG data as ``spm_eeg_invert`` (one subject, one modality, no VOI).

    Parameters
    ----------
    L : ndarray (Nc, Nd)
        Lead field of the good channels (fT per nA m).
    data : array_like (Nc, n_samples, n_trials)
        Data of the same channels (fT).
    time_s : ndarray (n_samples,)
        Time axis, s.
    inv_type : str
        'EBB', 'MSP', 'GS', 'ARD', 'IID' ('MMN'), 'COH' ('LOR').
    QG : sparse (Nd, Nd)
        Green-function kernel (:func:`lameg.inverse.kernels.green_kernel`).
    trials : list of int arrays
        0-based good trials per condition.
    woi : array_like (2,)
        Window, ms (default the whole epoch).
    lpf, hpf : float
        DCT band, Hz.
    hanning : bool
        Hanning-weight the temporal covariance.
    n_patches : int
        Number of patch centres (each with its mirror patch and their sum, MSP/GS/ARD).
    vertices : ndarray (Nd, 3)
        MNI mesh, used to find the mirror patches of MSP/GS/ARD.
    sdv : float
        Standard deviation of the Gaussian temporal smoother of the prior ``qV``, ms.
    n_max_temp : int
        Largest number of temporal modes.
    A : ndarray (Nm, Nc) or None
        Replaces the computed spatial projector (for comparisons: ``A = UL L' spm_inv(L L')``
        is ill-conditioned, so its null-space part depends on the LAPACK/BLAS rounding).
    fsample : float or None
        Sampling rate, Hz (default from ``time_s``).

    Returns
    -------
    InversionResult

    Notes
    -----
    SPM's standard engine selects trials with ``indtrial`` including bad ones; here the
    caller's ``trials`` (good trials) are used.
    """
    kind = inv_type
    if kind not in STANDARD_TYPES:
        raise LamegValueError(f"unknown inversion type {inv_type!r}; use one of {STANDARD_TYPES}")
    L, data, lkey = _check_inputs(L, data, time_s)
    time_s = np.asarray(time_s, dtype=float)
    fsample = _fsample(time_s, fsample)
    nc, nd = L.shape
    tr = _as_trials(trials, data.shape[2])
    if A is None:
        A = standard_spatial_projector(L, key=lkey)
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[1] != nc or A.shape[0] == 0:
        raise LamegValueError(f"spatial projector must be (Nm, {nc}), got {A.shape}")
    nm = A.shape[0]
    UL = _reduced_lead(L, A, lkey)
    if woi is None:
        woi = 1000.0 * np.array([time_s.min(), time_s.max()])
    w = np.asarray(woi, dtype=float).ravel()
    it = woi_samples(w, time_s, fsample)
    basis = temporal_basis(it, time_s, lpf, hpf, hanning, sdv)
    nb = len(it)
    ik = np.concatenate(tr)
    y = _window_data(data, it, ik)
    K = len(ik)
    ay = (A @ y.reshape(nc, nb * K)).reshape(nm, nb, K)
    my = ay.sum(axis=2)
    yy = _temporal_gram(ay)
    N = nb * K
    if basis.W is not None:
        yy = basis.W[:, None] * yy * basis.W[None, :]
    yy = basis.T.T @ yy @ basis.T
    scale = np.sign(np.trace(my.T @ _gram(UL) @ my)) / np.sqrt(np.trace(yy) / (nm * N))
    yty = yy * scale**2
    u, e, _ = spm_svd(yty, np.exp(-8))
    e = e / np.trace(yty)
    nr = min(len(e), n_max_temp)
    if nr < 1:
        raise LamegDataError("no temporal mode found in the data")
    S = basis.T @ u[:, :nr]
    ve = float(np.sum(e[:nr]))
    vq = S @ np.linalg.inv(S.T @ basis.qV @ S) @ S.T
    # SPM: Y = D_k S; Y = A Y scale / Nk (per condition)
    ds = _apply_temporal(y, S)  # (Nc, Nr, K)
    Yk = (A @ ds.reshape(nc, nr * K)).reshape(nm, nr, K)
    uy, pos = [], 0
    for t in tr:
        nk = len(t)
        Yk[:, :, pos:pos + nk] = Yk[:, :, pos:pos + nk] * scale / nk
        uy.append(Yk[:, :, pos:pos + nk].sum(axis=2))
        pos += nk
    AY = _side_by_side(Yk)
    AYYA = _gram(AY)
    UYYU = AYYA
    Nn = nr * K
    aqea = _gram(A)
    Qe = aqea / (np.trace(aqea) / nm)
    AQ = Qe
    extras: dict = {"scale": float(scale)}
    priors = []
    h1 = np.zeros(0)
    Ip = np.ceil(np.arange(1, n_patches + 1) * nd / n_patches).astype(int) - 1
    QGc = sp.csc_matrix(QG) if QG is not None else None
    if kind in ("MSP", "GS", "ARD"):
        if vertices is None or QGc is None:
            raise LamegValueError("MSP/GS/ARD need the kernel QG and the mesh vertices")
        vert = np.asarray(vertices, dtype=float)
        cols = []
        for i in Ip:
            j = _mirror_index(vert, i)
            cols += [QGc[:, [i]], QGc[:, [j]], QGc[:, [i]] + QGc[:, [j]]]
        Q = sp.hstack(cols).tocsc()
        ard_extras: dict = {}
        priors += _sparse_priors(kind, Q, UL, AY, AYYA, AQ, Qe, Nn, ard_extras)
        extras.update({k: v for k, v in ard_extras.items() if k != "ARD_h"})
    else:
        diag_q = None
        if kind == "EBB":
            inv_cov = standard_ebb_inverse_covariance(Yk[:, :, -1])
            allsource, power = pr.ebb_weights(UL, None, inv_cov, smooth=False)
            allsource = allsource / allsource.max()
            extras.update(allsource=allsource, Sourcepower=power, InvCov=inv_cov)
            diag_q = allsource
            lqpl = [_gram(UL * np.sqrt(allsource))]
        elif kind in ("IID", "MMN"):
            diag_q = np.ones(nd)
            lqpl = [_gram(UL)]
        else:
            if QGc is None:
                raise LamegValueError("COH/LOR need the kernel QG")
            qps = [sp.identity(nd, format="csr"), QGc.tocsr()]
            lqpl = [_gram(UL), UL @ np.asarray(QGc @ UL.T)]
        q01 = np.exp(-2) * np.trace(AYYA) / Nn * AQ / np.trace(AQ)
        res1 = reml_sc(AYYA, [Qe] + lqpl, Nn, -4, 16, q01)
        h1 = res1.h
        lql = sum(h * q for h, q in zip(res1.h[1:], lqpl))
        if diag_q is not None:
            priors.append(_Prior(q=res1.h[1] * diag_q, lql=lql))
        else:
            qp = sp.csr_matrix((nd, nd))
            for h, q in zip(res1.h[1:], qps):
                qp = qp + h * q
            priors.append(_Prior(q=qp.tocsr(), lql=lql))
    Q0 = np.exp(-2) * np.trace(UYYU) / Nn * AQ / np.trace(AQ)
    res, qtot, lcp, M, cp, qc, icy = _final_stage(UL, priors, UYYU, Qe, Nn, Q0)
    J = [M @ v for v in uy]
    ssr = sum(np.sum(np.var(v - UL @ j, axis=1, ddof=1)) for v, j in zip(uy, J))
    sst = sum(np.sum(np.var(v, axis=1, ddof=1)) for v in uy)
    r2 = 100.0 * (sst - ssr) / sst if sst > 0 else float("nan")
    win = WindowResult(
        F=res.F, R2=float(r2), VE=float(r2 * ve), woi=w, It=it, Ik=ik, pst=basis.pst,
        dct=basis.dct, S=S, V=u[:, :nr], tempU=u, qV=vq, Nr=nr, ve_temporal=ve, UY=uy, J=J,
        Q=qtot, iCy=icy, M=M, qC=qc, Cp=cp, Cy=res.C, h_stage1=h1,
        h_stage2=res.h, Ph=res.Ph, AYYA=AYYA, Qe=Qe, Q0=Q0, Y_last=Yk[:, :, -1].copy(),
        Nn=Nn, extras=extras)
    return InversionResult(method=kind, engine="standard", A=A, UL=UL, Ic=np.arange(nc),
                           Ip=Ip, windows=[win], scale=float(scale),
                           settings=dict(lpf=lpf, hpf=hpf, Han=bool(hanning), Np=len(Ip)))
