"""SAM image metrics on beamformer time series.

All functions are vectorised over sources: inputs are ``(..., n_times)`` arrays and the metric is
taken along the last axis.

* ``Signal`` -- the beamformer output itself (S/N units when the weights are noise-normalised).
* ``Power`` -- segment power, the mean-removed mean square ``(sum y^2 - (sum y)^2/n)/n``.
* ``Hilbert`` -- instantaneous power ``0.5 (y^2 + H{y}^2)`` (H = Hilbert quadrature).
* ``Kurtosis`` -- excess kurtosis g2 as GSL defines it: ``mean(((y - mean)/sd)^4) - 3`` with the
  sample (n-1) standard deviation.
* ``RankVectorEntropy TAU DIMS`` -- Robinson, Mandell & Coppola (2013), Front. Comput. Neurosci.
  6:101: ordinal (rank-vector) patterns of DIMS samples spaced by ``lag = ceil(fs/(2 f_c))`` (f_c the
  upper edge of the image band), pattern counts initialised to 1, decayed every sample by
  ``alpha = exp(-1/(tau fs))`` and incremented at the observed pattern; entropy
  ``H = -sum p ln p / ln(DIMS!)`` with ``p`` the normalised counts. The value at time t uses the
  pattern that *starts* at t; the last ``(DIMS-1) lag`` samples repeat the final value.

``SpectEntropy``, ``MutualInfo``, ``TransferEntropy`` and ``ConditionalEntropy`` are accepted by the
parameter parser but have no public definition precise enough to reproduce; requesting them raises
:class:`~lameg.exceptions.LamegNotImplementedError`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import signal

from ..exceptions import LamegNotImplementedError, LamegValueError
from .params import MetricSpec

__all__ = ["SUPPORTED_METRICS"]

SUPPORTED_METRICS = ("Signal", "Power", "Hilbert", "Kurtosis", "RankVectorEntropy")
_UNSUPPORTED = ("SpectEntropy", "MutualInfo", "TransferEntropy", "ConditionalEntropy")


def check_metric(spec: MetricSpec | None, program: str, allowed: tuple[str, ...]) -> MetricSpec:
    """Validate the requested metric for a program (default Power) and return it.

    Parameters
    ----------
    spec : MetricSpec or None
        Requested ``ImageMetric``; None means Power.
    program : str
        Program name (``sam_<program>``), used in messages.
    allowed : tuple of str
        Metric names the program supports.

    Returns
    -------
    MetricSpec
        The validated metric.

    Raises
    ------
    LamegNotImplementedError
        When the metric is not implemented or not supported by the program.
    """
    spec = spec or MetricSpec("Power")
    if spec.name in _UNSUPPORTED:
        raise LamegNotImplementedError(
            f"ImageMetric {spec.name} is not implemented (no public definition of SAMsrc's "
            f"{spec.name} is precise enough to reproduce); sam_{program} supports "
            f"{', '.join(allowed)}"
        )
    if spec.name not in allowed:
        raise LamegNotImplementedError(
            f"sam_{program} does not implement ImageMetric {spec.name}; use one of "
            f"{', '.join(allowed)}"
        )
    return spec


def segment_power(y: np.ndarray) -> np.ndarray:
    """Mean-removed mean square along the last axis, ``(sum y^2 - (sum y)^2/n)/n``."""
    y = np.asarray(y, float)
    n = y.shape[-1]
    s = y.sum(-1)
    return (np.einsum("...t,...t->...", y, y) - s * s / n) / n


def hilbert_power(y: np.ndarray, half: bool = True) -> np.ndarray:
    """Instantaneous power ``0.5 (y^2 + H{y}^2)`` along the last axis.

    Parameters
    ----------
    y : ndarray, shape (..., n_times)
        Real signals (any unit).
    half : bool
        Include the factor 1/2 (False gives ``y^2 + H{y}^2``).

    Returns
    -------
    ndarray, shape (..., n_times)
        Instantaneous power (squared unit of ``y``).
    """
    a = signal.hilbert(np.asarray(y, float), axis=-1)
    p = a.real**2 + a.imag**2
    return 0.5 * p if half else p


def excess_kurtosis(y: np.ndarray) -> np.ndarray:
    """GSL excess kurtosis ``mean(((y - mean)/sd)^4) - 3`` (sd with n-1) along the last axis."""
    y = np.asarray(y, float)
    n = y.shape[-1]
    if n < 4:
        raise LamegValueError(f"kurtosis needs at least 4 samples per window, got {n}")
    d = y - y.mean(-1, keepdims=True)
    d2 = d * d
    var = d2.sum(-1) / (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g2 = np.einsum("...t,...t->...", d2, d2) / n / var**2 - 3.0
    return np.where(var > 0, g2, 0.0)


def _pattern_codes(y: np.ndarray, dims: int, lag: int) -> np.ndarray:
    """Ordinal-pattern index (0 .. dims!-1) of each embedding vector starting at t."""
    n = y.shape[-1] - (dims - 1) * lag
    if n <= 0:
        raise LamegValueError(
            f"time series of {y.shape[-1]} samples is too short for rank vectors of {dims} "
            f"samples spaced {lag} apart"
        )
    emb = np.stack([y[..., k * lag: k * lag + n] for k in range(dims)], axis=-1)
    ranks = np.argsort(np.argsort(emb, axis=-1, kind="stable"), axis=-1, kind="stable")
    base = dims ** np.arange(dims)
    key = ranks @ base
    table = np.full(dims**dims, -1, dtype=np.int64)
    for i, perm in enumerate(itertools.permutations(range(dims))):
        table[np.dot(perm, base)] = i
    return table[key]


def rank_vector_entropy(y: np.ndarray, fs: float, tau_ms: float, dims: int = 4,
                        lp_hz: float | None = None) -> np.ndarray:
    """Rank-vector entropy time series (0..1), same shape as ``y``.

    Parameters
    ----------
    y : ndarray, shape (..., n_times)
        Source time series.
    fs : float
        Sampling rate, Hz.
    tau_ms : float
        Integrator time constant, ms.
    dims : int
        Embedding dimension (pattern length), 2..6.
    lp_hz : float, optional
        Upper band edge setting the lag ``ceil(fs/(2 lp_hz))``; lag 1 if None.
    """
    y = np.asarray(y, float)
    lag = 1 if lp_hz is None else max(1, math.ceil(fs / (2.0 * lp_hz)))
    codes = _pattern_codes(y, dims, lag)
    n = codes.shape[-1]
    n_pat = math.factorial(dims)
    alpha = math.exp(-1.0 / (tau_ms * 1e-3 * fs))
    # total count S_t = alpha*S_{t-1} + 1 with S_{-1} = n_pat (all counts start at 1)
    t = np.arange(n)
    total = alpha ** (t + 1) * n_pat + (1 - alpha ** (t + 1)) / (1 - alpha)
    flnf = np.zeros(codes.shape)
    for k in range(n_pat):
        hit = (codes == k).astype(float)
        # F_t = alpha F_{t-1} + hit_t, F_{-1} = 1
        f, _ = signal.lfilter([1.0], [1.0, -alpha], hit, axis=-1, zi=np.full(hit.shape[:-1] + (1,),
                                                                              alpha))
        flnf += f * np.log(f)
    h = (np.log(total) - flnf / total) / math.log(n_pat)
    pad = y.shape[-1] - n
    if pad:
        h = np.concatenate([h, np.repeat(h[..., -1:], pad, axis=-1)], axis=-1)
    return h


def box_reduce(y: np.ndarray, starts: np.ndarray, width: int, how: str) -> np.ndarray:
    """Reduce ``y[..., s:s+width]`` for each start ``s``: 'mean', 'power' or 'kurtosis'.

    Parameters
    ----------
    y : ndarray, shape (..., n_times)
        Signals (any unit).
    starts : ndarray of int, shape (n_boxes,)
        0-based first sample of each box.
    width : int
        Box length, samples.
    how : str
        'mean', 'power' (mean-removed mean square) or 'kurtosis' (excess kurtosis).

    Returns
    -------
    ndarray, shape (..., n_boxes)
        One value per box (unit of ``y``, its square, or dimensionless).
    """
    starts = np.asarray(starts, int)
    if how == "mean" or how == "power":
        c1 = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(y, -1)], -1)
        s1 = c1[..., starts + width] - c1[..., starts]
        if how == "mean":
            return s1 / width
        c2 = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(y * y, -1)], -1)
        s2 = c2[..., starts + width] - c2[..., starts]
        return (s2 - s1 * s1 / width) / width
    if how == "kurtosis":
        idx = starts[:, None] + np.arange(width)[None, :]
        return excess_kurtosis(y[..., idx])
    raise LamegValueError(f"unknown box reduction {how!r}")
