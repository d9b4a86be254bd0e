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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .._utils import progress
from ..exceptions import LamegDataError, LamegValueError
from . import priors as pr
from .modes import spatial_modes, temporal_basis, temporal_modes, woi_samples
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
    if not np.all(np.isfinite(L)):
        raise LamegDataError("the lead field contains NaN or Inf values")
    return L, data


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


def _window_data(data, it, ik) -> np.ndarray:
    y = np.asarray(data[:, it, :], dtype=np.float64)[:, :, ik]
    if not np.all(np.isfinite(y)):
        raise LamegDataError("the data contain NaN or Inf values in the inverted window; "
                             "mark the affected channels/trials bad or clean the data")
    return y


def _stage1_cov(kind, UL, QG, AYYA, Qe, Q0, Nn, layer_opts, extras):
    """Covariance-type priors (EBB, EBBlayer, IID, COH): stage-1 ReML and pooling.

    Returns the pooled prior ``qp`` (sparse Nd x Nd), and its diagonal.
    """
    nd = UL.shape[1]
    if kind == "EBB":
        inv_cov = spm_inv(AYYA)
        allsource, power = pr.ebb_weights(UL, QG, inv_cov, smooth=True)
        mx = allsource.max()
        if not mx > 0:
            raise LamegDataError("EBB prior is zero everywhere (lead field or data are zero)")
        extras.update(allsource=allsource / mx, Sourcepower=power, InvCov=inv_cov)
        qps = [sp.diags(allsource / mx)]
        lqpl = [(UL * (allsource / mx)) @ UL.T]
    elif kind == "EBBlayer":
        inv_cov = spm_inv(AYYA)
        lp = pr.ebblayer_priors(UL, QG, inv_cov, **layer_opts)
        extras["EBBlayer_diag"] = lp.diag
        qps = [sp.diags(lp.Qp[0]), lp.Qp[1], lp.Qp[2]]
        lqpl = lp.LQpL
    elif kind in ("IID", "MMN"):
        qps = [sp.identity(nd, format="csr")]
        lqpl = [UL @ UL.T]
    else:  # COH / LOR
        qps = [sp.identity(nd, format="csr"), sp.csr_matrix(QG)]
        lqpl = [UL @ UL.T, UL @ np.asarray(QG @ UL.T)]
    # components with zero trace cannot be scaled by ReML: leave them out (weight 0)
    use = [i for i, q in enumerate(lqpl) if np.trace(q) > 0]
    if not use:
        raise LamegDataError("all source prior components are zero")
    res = reml_sc(AYYA, [Qe] + [lqpl[i] for i in use], Nn, -4, 16, Q0)
    hp = np.zeros(len(qps))
    hp[use] = res.h[1:]
    qp = sp.csr_matrix((nd, nd))
    for h, q in zip(hp, qps):
        if h != 0:
            qp = qp + h * q
    extras["h_source"] = hp
    return qp.tocsr(), res


def _final_stage(UL, qp_list, AYYA, comps0, Nn, Q0, fixed_first):
    """Final ReML over pooled priors ``LQPL_j = UL qp_j UL'`` and the MAP operator pieces."""
    lqp = [np.asarray((q.T @ UL.T).T) for q in qp_list]  # UL @ qp (qp symmetric)
    lqpl = [x @ UL.T for x in lqp]
    res = reml_sc(AYYA, [comps0] + lqpl, Nn, -4, 16, Q0)
    hp = res.h[1:]
    nd = UL.shape[1]
    qtot = sp.csr_matrix((nd, nd))
    lcp = np.zeros_like(UL)
    cp = np.zeros(nd)
    for h, q, lq in zip(hp, qp_list, lqp):
        qtot = qtot + h * q
        lcp = lcp + h * lq
        cp = cp + h * q.diagonal()
    M = np.linalg.solve(res.C.T, lcp).T  # LCp' / Cy
    qc = cp - np.sum(lcp * M.T, axis=0)
    return res, qtot.tocsr(), lcp, M, cp, qc


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
    Qe0 : float
        Noise floor relative to the data power.
    n_layers, sum_pair_topk, diff_pair_topk, diff_score_method, diag_vertex
        EBBlayer settings.
    keep_M : {'first', 'all', 'none'}
        For which windows the dense MAP projector is kept (the factored form is always kept).
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
    L, data = _check_inputs(L, data, time_s)
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
        A = spatial_modes(L, n_spatial_modes)
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[1] != nc or A.shape[0] == 0:
        raise LamegValueError(f"spatial projector must be (Nm, {nc}), got {A.shape}")
    UL = A @ L
    if woi is None:
        woi = 1000.0 * np.array([[time_s.min(), time_s.max()]])
    woi = np.atleast_2d(np.asarray(woi, dtype=float))
    layer_opts = dict(n_layers=n_layers, sum_pair_topk=sum_pair_topk,
                      diff_pair_topk=diff_pair_topk, diff_score_method=diff_score_method,
                      diag_vertex=diag_vertex)
    wins = []
    for w_idx in progress(range(len(woi)), verbose and len(woi) > 1, desc="windows"):
        keep = keep_M == "all" or (keep_M == "first" and w_idx == 0)
        wins.append(_classic_window(L, data, time_s, fsample, woi[w_idx], kind, QG, tr, lpf,
                                    hpf, hanning, n_temp_modes, A, UL, Ip, Qe0, sdv,
                                    layer_opts, keep))
    return InversionResult(method=kind, engine="classic", A=A, UL=UL, Ic=np.arange(nc),
                           Ip=Ip, windows=wins,
                           settings=dict(lpf=lpf, hpf=hpf, Han=bool(hanning), Nt=n_temp_modes,
                                         Nm=n_spatial_modes, Qe0=Qe0, sdv=sdv,
                                         nlayers=n_layers, Np=len(Ip)))


def _classic_window(L, data, time_s, fsample, w, kind, QG, tr, lpf, hpf, han, nt, A, UL, Ip,
                    Qe0, sdv, layer_opts, keep_m) -> WindowResult:
    it = woi_samples(w, time_s, fsample)
    basis = temporal_basis(it, time_s, lpf, hpf, han, sdv)
    ik = np.concatenate(tr)
    K = len(ik)
    y = _window_data(data, it, ik)  # (Nc, Nb, K)
    nb = len(it)
    nc = y.shape[0]
    ay = (A @ y.reshape(nc, -1)).reshape(A.shape[0], nb, K)
    yy = np.einsum("mbk,mck->bc", ay, ay) / K
    S, V, ve, tempU = temporal_modes(yy, basis, nt)
    nr = S.shape[1]
    ds = np.einsum("cbk,br->crk", y, S)
    Yk = np.einsum("mc,crk->mrk", A, ds)  # (Nm, Nr, K)
    uy = []
    pos = 0
    for t in tr:
        uy.append(Yk[:, :, pos:pos + len(t)].sum(axis=2))
        pos += len(t)
    AYYA = np.einsum("mrk,nrk->mn", Yk, Yk)
    AY = np.concatenate([Yk[:, :, k] for k in range(K)], axis=1)  # trials side by side
    Nn = nr * K
    aqea = A @ A.T
    Qe = aqea / np.trace(aqea)
    Q0 = Qe0 * np.trace(AYYA) * Qe / Nn
    extras: dict = {}
    qp_list = []
    h1 = np.zeros(0)
    if kind in ("MSP", "GS", "ARD"):
        Q = pr.patch_matrix(QG, Ip)
        if kind in ("MSP", "GS"):
            mvb = pr.mvb_greedy(AY, UL, Q, Qe, 16)
            extras.update(MVB_cp=mvb.cp, MVB_F=mvb.F)
            qp_list.append((Q @ sp.diags(mvb.cp) @ Q.T).tocsr())
        if kind in ("MSP", "ARD"):
            hp = pr.ard_weights(AYYA, Qe, UL, Q, Nn)
            keep = hp > hp.max() / 128
            qs = Q[:, np.flatnonzero(keep)]
            qp_list.append((qs @ sp.diags(hp[keep]) @ qs.T).tocsr())
            extras["ARD_h"] = hp
    else:
        qp, res1 = _stage1_cov(kind, UL, QG, AYYA, Qe, Q0, Nn, layer_opts, extras)
        h1 = res1.h
        extras["F_stage1"] = res1.F
        qp_list.append(qp)
    res, qtot, lcp, M, cp, qc = _final_stage(UL, qp_list, AYYA, Q0, Nn, Q0, True)
    J = [M @ u for u in uy]
    ssr = sum(np.sum(_var_cols(u - UL @ j)) for u, j in zip(uy, J))
    sst = sum(np.sum(_var_cols(u)) for u in uy)
    r2 = 100.0 * (sst - ssr) / sst
    vq = S @ np.linalg.pinv(S.T @ basis.qV @ S) @ S.T
    return WindowResult(
        F=res.F, R2=float(r2), VE=float(r2 * ve), woi=np.asarray(w, dtype=float), It=it,
        Ik=ik, pst=basis.pst, dct=basis.dct, S=S, V=V, tempU=tempU, qV=vq, Nr=nr,
        ve_temporal=ve, UY=uy, J=J, Q=qtot, iCy=np.linalg.inv(res.C),
        M=M if keep_m else None, qC=qc, Cp=cp, Cy=res.C, h_stage1=h1, h_stage2=res.h,
        Ph=res.Ph, AYYA=AYYA, Qe=Qe, Q0=Q0, Y_last=Yk[:, :, -1].copy(), Nn=Nn, extras=extras)


def _mirror_index(vert: np.ndarray, i: int) -> int:
    d = ((vert[:, 0] + vert[i, 0]) ** 2 + (vert[:, 1] - vert[i, 1]) ** 2
         + (vert[:, 2] - vert[i, 2]) ** 2)
    return int(np.argmin(d))


def invert_standard(L, data, time_s, *, inv_type: str = "EBB", QG=None,
                    trials: Sequence | None = None, woi=None, lpf: float = 0.0,
                    hpf: float = 48.0, hanning: bool = True, n_patches: int = 256,
                    vertices: np.ndarray | None = None, sdv: float = 4.0,
                    n_max_temp: int = 16, A: np.ndarray | None = None,
                    fsample: float | None = None) -> InversionResult:
    """Invert M/EEG data as ``spm_eeg_invert`` (one subject, one modality, no VOI).

    Parameters are as :func:`invert_classic`; ``QG`` must be the Green-function kernel
    (:func:`lameg.inverse.kernels.green_kernel`) and ``vertices`` (Nd, 3) the MNI mesh, used
    to find the mirror patches of MSP/GS. ``A`` (Nm, Nc) replaces the computed spatial
    projector (for comparisons: ``A = UL L' spm_inv(L L')`` is ill-conditioned, so its
    null-space part depends on the LAPACK/BLAS rounding).

    Notes
    -----
    SPM's standard engine selects trials with ``indtrial`` including bad ones; here the
    caller's ``trials`` (good trials) are used.
    """
    kind = inv_type
    if kind not in STANDARD_TYPES:
        raise LamegValueError(f"unknown inversion type {inv_type!r}; use one of {STANDARD_TYPES}")
    L, data = _check_inputs(L, data, time_s)
    time_s = np.asarray(time_s, dtype=float)
    fsample = _fsample(time_s, fsample)
    nc, nd = L.shape
    tr = _as_trials(trials, data.shape[2])
    # spatial modes (one subject: a single alignment pass)
    ul0 = L
    U, _, _ = spm_svd(ul0 @ ul0.T)
    UL = U.T @ ul0
    nm = UL.shape[0]
    UL = UL / np.sqrt(np.trace(UL @ UL.T) / nm)
    if A is None:
        A = UL @ L.T @ spm_inv(L @ L.T)
    A = np.asarray(A, dtype=float)
    nm = A.shape[0]
    UL = A @ L
    if woi is None:
        woi = 1000.0 * np.array([time_s.min(), time_s.max()])
    w = np.asarray(woi, dtype=float).ravel()
    it = woi_samples(w, time_s, fsample)
    basis = temporal_basis(it, time_s, lpf, hpf, hanning, sdv)
    nb = len(it)
    ik = np.concatenate(tr)
    y = _window_data(data, it, ik)
    K = len(ik)
    ay = (A @ y.reshape(nc, -1)).reshape(nm, nb, K)
    my = ay.sum(axis=2)
    yy = np.einsum("mbk,mck->bc", ay, ay)
    N = nb * K
    if basis.W is not None:
        yy = basis.W[:, None] * yy * basis.W[None, :]
    yy = basis.T.T @ yy @ basis.T
    scale = np.sign(np.trace(my.T @ (UL @ UL.T) @ my)) / np.sqrt(np.trace(yy) / (nm * N))
    yty = yy * scale**2
    u, e, _ = spm_svd(yty, np.exp(-8))
    e = e / np.trace(yty)
    nr = min(len(e), n_max_temp)
    if nr < 1:
        raise LamegDataError("no temporal mode found in the data")
    S = basis.T @ u[:, :nr]
    ve = float(np.sum(e[:nr]))
    vq = S @ np.linalg.inv(S.T @ basis.qV @ S) @ S.T
    ds = np.einsum("cbk,br->crk", y, S)
    uy, pos = [], 0
    Yk = np.empty((nm, nr, K))
    for t in tr:
        nk = len(t)
        Yk[:, :, pos:pos + nk] = np.einsum("mc,crk->mrk", A, ds[:, :, pos:pos + nk]) * scale / nk
        uy.append(Yk[:, :, pos:pos + nk].sum(axis=2))
        pos += nk
    AYYA = np.einsum("mrk,nrk->mn", Yk, Yk)
    UYYU = AYYA
    AY = np.concatenate([Yk[:, :, k] for k in range(K)], axis=1)
    Nn = nr * K
    aqea = A @ A.T
    Qe = aqea / (np.trace(aqea) / nm)
    AQ = Qe
    extras: dict = {"scale": float(scale)}
    qp_list = []
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
        if kind in ("MSP", "GS"):
            mvb = pr.mvb_greedy(AY, UL, Q, AQ, 16)
            extras.update(MVB_cp=mvb.cp, MVB_F=mvb.F)
            qp_list.append((Q @ sp.diags(mvb.cp) @ Q.T).tocsr())
        if kind in ("MSP", "ARD"):
            hp = pr.ard_weights(AYYA, Qe, UL, Q, Nn)
            keep = hp > hp.max() / 128
            qs = Q[:, np.flatnonzero(keep)]
            qp_list.append((qs @ sp.diags(hp[keep]) @ qs.T).tocsr())
    else:
        if kind == "EBB":
            yl = Yk[:, :, -1]
            inv_cov = spm_inv(yl @ yl.T)
            allsource, power = pr.ebb_weights(UL, None, inv_cov, smooth=False)
            allsource = allsource / allsource.max()
            extras.update(allsource=allsource, Sourcepower=power, InvCov=inv_cov)
            qps = [sp.diags(allsource)]
            lqpl = [(UL * allsource) @ UL.T]
        elif kind in ("IID", "MMN"):
            qps = [sp.identity(nd, format="csr")]
            lqpl = [UL @ UL.T]
        else:
            if QGc is None:
                raise LamegValueError("COH/LOR need the kernel QG")
            qps = [sp.identity(nd, format="csr"), QGc.tocsr()]
            lqpl = [UL @ UL.T, UL @ np.asarray(QGc @ UL.T)]
        q01 = np.exp(-2) * np.trace(AYYA) / Nn * AQ / np.trace(AQ)
        res1 = reml_sc(AYYA, [Qe] + lqpl, Nn, -4, 16, q01)
        h1 = res1.h
        qp = sp.csr_matrix((nd, nd))
        for h, q in zip(res1.h[1:], qps):
            qp = qp + h * q
        qp_list.append(qp.tocsr())
    Q0 = np.exp(-2) * np.trace(UYYU) / Nn * AQ / np.trace(AQ)
    res, qtot, lcp, M, cp, qc = _final_stage(UL, qp_list, UYYU, Qe, Nn, Q0, False)
    J = [M @ v for v in uy]
    ssr = sum(np.sum(np.var(v - UL @ j, axis=1, ddof=1)) for v, j in zip(uy, J))
    sst = sum(np.sum(np.var(v, axis=1, ddof=1)) for v in uy)
    r2 = 100.0 * (sst - ssr) / sst if sst > 0 else float("nan")
    win = WindowResult(
        F=res.F, R2=float(r2), VE=float(r2 * ve), woi=w, It=it, Ik=ik, pst=basis.pst,
        dct=basis.dct, S=S, V=u[:, :nr], tempU=u, qV=vq, Nr=nr, ve_temporal=ve, UY=uy, J=J,
        Q=qtot, iCy=np.linalg.inv(res.C), M=M, qC=qc, Cp=cp, Cy=res.C, h_stage1=h1,
        h_stage2=res.h, Ph=res.Ph, AYYA=AYYA, Qe=Qe, Q0=Q0, Y_last=Yk[:, :, -1].copy(),
        Nn=Nn, extras=extras)
    return InversionResult(method=kind, engine="standard", A=A, UL=UL, Ic=np.arange(nc),
                           Ip=Ip, windows=[win], scale=float(scale),
                           settings=dict(lpf=lpf, hpf=hpf, Han=bool(hanning), Np=len(Ip)))
