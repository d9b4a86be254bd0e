"""Spatial and temporal data reduction as in SPM's inversions.

* windows of interest (``woi``, ms) -> sample indices with MATLAB colon semantics;
* the batch's integer-millisecond truncation of windows (``fix``), which makes windows that
  differ by less than 1 ms identical (documented SPM behaviour, kept for comparability);
* the DCT band-pass basis (``lpf <= f <= hpf``), Hanning weights, temporal modes;
* spatial modes (``'all'``, ``'auto'`` = ``spm_svd(L L', exp(-16))``, or a fixed number).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_int
from ..exceptions import LamegDataError, LamegValueError
from .svd import EPS, spm_dctmtx, spm_hanning, spm_svd, svd


def _matlab_round(x: float) -> float:
    return float(np.sign(x) * np.floor(np.abs(x) + 0.5))


def matlab_colon(start: float, stop: float) -> np.ndarray:
    """Elements of MATLAB's ``start:stop`` (unit step), reproducing its rounding rules.

    Parameters
    ----------
    start : float
        First element.
    stop : float
        Upper bound (included when ``stop - start`` is an integer up to rounding).

    Returns
    -------
    ndarray of float64, shape (n,)
        ``start, start + 1, ...``; empty when ``stop < start``.
    """
    n = _matlab_round(stop - start)
    tol = 2.0 * EPS * max(abs(start), abs(stop))
    if start + n - stop > tol:
        n -= 1
    if n < 0:
        return np.zeros(0)
    n = int(n)
    last = stop if abs(start + n - stop) <= tol else start + n
    k = np.arange(n + 1, dtype=float)
    out = start + k
    half = k >= n / 2.0
    out[half] = last - (n - k[half])
    return out


def truncate_woi(woi_ms, time_s) -> np.ndarray:
    """Clip windows to the epoch and truncate them toward zero to integer ms (``fix``).

    This is what SPM's ``invertiter`` batch does with every window before inverting, so
    sub-millisecond windows collapse onto the same integers.

    Parameters
    ----------
    woi_ms : array_like, shape (2,) or (n_windows, 2)
        Windows in ms; ``-inf``/``inf`` mean the epoch edges.
    time_s : array_like, shape (n_samples,)
        Time axis of the data, s.

    Returns
    -------
    ndarray, shape (n_windows, 2)
        ``[start, end]`` per window, integer ms inside the epoch.
    """
    w = np.atleast_2d(np.asarray(woi_ms, dtype=float))
    if w.shape[1] != 2:
        raise LamegValueError(f"woi must be (2,) or (n, 2) in ms, got shape {w.shape}")
    t0, t1 = 1000.0 * float(time_s[0]), 1000.0 * float(time_s[-1])
    lo = np.maximum(np.min(w, axis=1), t0)
    hi = np.minimum(np.max(w, axis=1), t1)
    return np.fix(np.stack([lo, hi], axis=1))


def woi_samples(woi_ms, time_s, fsample: float) -> np.ndarray:
    """0-based sample indices of a window as ``spm_eeg_invert_classic`` computes them.

    ``It = fix(max(1, It0(1)) : min(It0(2), Nsamples))`` with
    ``It0 = (w/1000 - timeOnset) * fsample + 1`` (1-based).

    Parameters
    ----------
    woi_ms : array-like, shape (2,)
        Window ``[start, end]``, ms.
    time_s : array-like, shape (n_samples,)
        Time axis of the data, s.
    fsample : float
        Sampling rate, Hz.

    Returns
    -------
    ndarray of int, shape (n_window_samples,)
        0-based sample indices (at least 2; fewer raise
        :class:`~lameg.exceptions.LamegDataError`).
    """
    time_s = np.asarray(time_s, dtype=float)
    w = np.asarray(woi_ms, dtype=float).ravel()
    it0 = (w / 1000.0 - time_s[0]) * fsample + 1
    start = max(1.0, it0[0])
    stop = min(it0[-1], float(len(time_s)))
    it = np.fix(matlab_colon(start, stop)).astype(int) - 1
    if it.size < 2:
        raise LamegDataError(
            f"window {w.tolist()} ms selects {it.size} sample(s) of the data "
            f"({1000 * time_s[0]:.1f} .. {1000 * time_s[-1]:.1f} ms); widen the window")
    return it


@dataclass
class TemporalBasis:
    """Temporal reduction of one window.

    Parameters
    ----------
    It : ndarray (Nb,)
        0-based sample indices.
    pst : ndarray (Nb,)
        Peristimulus times, ms.
    T : ndarray (Nb, Nk)
        Kept DCT columns.
    dct : ndarray (Nk,)
        Their frequencies, Hz.
    W : ndarray (Nb,) or None
        Hanning weights (None when not used).
    qV : ndarray (Nb, Nb)
        Temporal smoothness prior ``K K'`` (stored only).
    """

    It: np.ndarray
    pst: np.ndarray
    T: np.ndarray
    dct: np.ndarray
    W: np.ndarray | None
    qV: np.ndarray


def temporal_basis(it: np.ndarray, time_s, lpf: float, hpf: float, han: bool,
                   sdv: float = 4.0) -> TemporalBasis:
    """DCT band-pass basis of a window (SPM: ``lpf`` is the lower, ``hpf`` the upper bound).

    Parameters
    ----------
    it : ndarray of int, shape (Nb,)
        0-based sample indices of the window (:func:`woi_samples`).
    time_s : array-like, shape (n_samples,)
        Time axis of the data, s.
    lpf : float
        Lower edge of the band, Hz (DCT components with frequency >= ``lpf`` are kept).
    hpf : float
        Upper edge of the band, Hz (components with frequency <= ``hpf`` are kept).
    han : bool
        Also compute Hanning weights for the window.
    sdv : float
        Standard deviation of the Gaussian temporal smoother of the prior ``qV``, ms.

    Returns
    -------
    TemporalBasis
        Samples, times, kept DCT columns and frequencies, Hanning weights and ``qV``.
    """
    time_s = np.asarray(time_s, dtype=float)
    pst = 1000.0 * time_s[it]
    dur = (pst[-1] - pst[0]) / 1000.0
    nb = len(it)
    dct = (it - it[0]) / 2.0 / dur
    k = np.exp(-((pst - pst[0]) ** 2) / (2 * sdv**2))
    from scipy.linalg import toeplitz

    kk = toeplitz(k)
    qv = kk @ kk.T
    t = spm_dctmtx(nb)
    j = np.flatnonzero((dct >= lpf) & (dct <= hpf))
    if j.size == 0:
        raise LamegDataError(
            f"no DCT component between {lpf} and {hpf} Hz for a {nb}-sample window "
            f"(frequency resolution {1 / (2 * dur):.3g} Hz); widen foi or the window")
    return TemporalBasis(It=it, pst=pst, T=t[:, j], dct=dct[j],
                         W=spm_hanning(nb) if han else None, qV=qv)


def temporal_modes(yy_mean: np.ndarray, basis: TemporalBasis, n_temp_modes: int | None,
                   n_max: int = 16) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Temporal modes from the trial-averaged temporal covariance (classic engine).

    Parameters
    ----------
    yy_mean : ndarray (Nb, Nb)
        ``mean_k (A Y_k)'(A Y_k)``.
    basis : TemporalBasis
        Temporal basis of the window (:func:`temporal_basis`).
    n_temp_modes : int or None
        Fixed number (plain SVD) or None (``spm_svd(YTY, exp(-8))``, at most ``n_max``).
    n_max : int
        Most modes of the automatic choice (SPM: 16).

    Returns
    -------
    S : ndarray (Nb, Nr)
        Temporal projector ``T V``.
    V : ndarray (Nk, Nr)
        Modes in DCT space.
    ve : float
        Fraction of the (windowed, band-passed) variance kept.
    U : ndarray
        All temporal singular vectors (SPM's ``tempU``).
    """
    yy = yy_mean
    if basis.W is not None:
        yy = basis.W[:, None] * yy * basis.W[None, :]
    yty = basis.T.T @ yy @ basis.T
    if n_temp_modes is None:
        u, e, _ = spm_svd(yty, np.exp(-8))
        if u.shape[1] == 0:
            u, e, _ = svd(yty)
        e = e / np.trace(yty)
        nr = max(min(len(e), n_max), 1)
    else:
        u, e, _ = svd(yty)
        e = e / np.trace(yty)
        nr = int(n_temp_modes)
        if nr > u.shape[1]:
            raise LamegDataError(
                f"{nr} temporal modes requested but the window only supports {u.shape[1]} "
                f"(samples x frequency band); use fewer modes or a longer window / wider foi")
    v = u[:, :nr]
    ve = float(np.sum(e[:nr]))
    return basis.T @ v, v, ve, u


# Lead fields at least this large also keep the SVD of L L' in the disk cache (kind 'inverse').
DISK_CACHE_MIN_BYTES = 64 * 2**20


def lead_gram_svd(L: np.ndarray, u: float = 1e-6, *, key: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``spm_svd(L L', u)`` -> (U (Nc, r), s (r,)), cached by the content of ``L``.

    Parameters
    ----------
    L : ndarray (Nc, Nd)
        Lead field.
    u : float
        ``spm_svd`` threshold.
    key : str or None
        Pre-computed :func:`lameg.inverse.cache.array_key` of ``L`` (saves hashing it again).

    Returns
    -------
    U : ndarray, shape (Nc, r)
        Left singular vectors of ``L L'`` above the threshold (read-only, cached; lead fields of
        at least :data:`DISK_CACHE_MIN_BYTES` also in the verified disk cache, kind
        ``'inverse'``).
    s : ndarray, shape (r,)
        Their singular values, decreasing (read-only, cached).
    """
    from .. import _cache
    from .cache import array_key, cached

    key = array_key(key or array_key(L), float(u), extra="lead_gram_svd")

    def _compute():
        # full-resolution lead fields: L L' takes seconds, its SVD is tiny -> kept on disk too
        on_disk = L.nbytes >= DISK_CACHE_MIN_BYTES
        path = _cache.cache_dir("inverse") / f"lead_gram_svd_{key}.npz"
        entry = _cache.load_entry(path) if on_disk else None
        if entry is not None:
            return entry["U"], entry["s"]
        ll = L @ L.T  # symmetric rank-k update: exactly symmetric, as SPM's L*L'
        uu, s, _ = spm_svd(ll, u)
        if on_disk:
            _cache.save_entry(path, U=uu, s=s)
        return uu, s

    return cached(key, _compute)


def spatial_modes(L: np.ndarray, n_modes: int | None, *, key: str | None = None) -> np.ndarray:
    """Spatial projector ``A`` (Nm, Nc) of the classic engine.

    ``n_modes=None``: ``spm_svd(L L', exp(-16))``; an int: the first ``n_modes`` of
    ``spm_svd(L L', 0)``. The SVD is cached by the content of ``L``.

    Parameters
    ----------
    L : ndarray, shape (Nc, Nd)
        Lead field.
    n_modes : int or None
        Number of modes, or None for SPM's automatic choice.
    key : str or None
        Pre-computed :func:`lameg.inverse.cache.array_key` of ``L``.

    Returns
    -------
    ndarray, shape (Nm, Nc)
        Spatial projector ``A`` (a writable copy).
    """
    if n_modes is None:
        u, _ = lead_gram_svd(L, np.exp(-16), key=key)
        return np.array(u.T)
    u, s = lead_gram_svd(L, 0, key=key)
    if len(s) < n_modes:
        raise LamegValueError(
            f"{n_modes} spatial modes requested but the lead field has only {len(s)}; "
            "use n_spatial_modes='auto' or a smaller number")
    return np.array(u[:, :n_modes].T)


def spatial_projector(L_train: np.ndarray, n_spatial_modes) -> tuple[np.ndarray | None, object]:
    """laMEG's ``n_spatial_modes`` -> the spatial projector ``A`` and SPM's ``Nm`` setting.

    Parameters
    ----------
    L_train : ndarray, shape (n_channels, n_sources)
        Lead field of the channels used.
    n_spatial_modes : 'auto', 'all', int or None
        ``'auto'``/None: SPM chooses (returns ``(None, None)``); ``'all'``: identity; an
        integer: the leading eigenvectors of ``L L'``.

    Returns
    -------
    A : ndarray, shape (n_modes, n_channels) or None
        Spatial projector (None: SPM chooses).
    nm : int or None
        SPM's ``Nm`` setting (None: automatic).
    """
    if isinstance(n_spatial_modes, str):
        if n_spatial_modes == "all":
            return np.eye(L_train.shape[0]), L_train.shape[0]
        if n_spatial_modes == "auto":
            return None, None
        raise LamegValueError("n_spatial_modes must be 'all', 'auto' or a positive integer")
    if n_spatial_modes is None:
        return None, None
    if isinstance(n_spatial_modes, (bool, np.bool_)) or not isinstance(
            n_spatial_modes, (int, np.integer, float, np.floating)):
        raise LamegValueError("n_spatial_modes must be 'all', 'auto' or a positive integer, "
                              f"got {n_spatial_modes!r}")
    nm = check_int(n_spatial_modes, "n_spatial_modes", min_value=1)
    u, s, _ = spm_svd(L_train @ L_train.T, 1e-12)
    if len(s) < nm:
        raise LamegValueError(f"only {len(s)} spatial modes available, {nm} requested")
    return u[:, :nm].T, nm
