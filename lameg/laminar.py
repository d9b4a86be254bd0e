"""Laminar analyses (laMEG ``lameg.laminar`` API).

Sections
--------
- Current source density: :func:`compute_csd` (StandardCSD and KCSD1D, native ports of the
  elephant estimators laMEG calls, with laMEG's smoothing options).
- ROI power contrasts: :func:`roi_power_comparison` (laMEG semantics, reading source time
  series from an inverted dataset) and :func:`roi_power_comparison_arrays` (the same analysis on
  arrays of laminar source time series).
- Model comparison across layers (``model_comparison``, ``sliding_window_model_comparison``)
  and BigBrain laminae mapping live in their own section below.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import integrate, interpolate
from scipy.signal import hilbert

from .exceptions import LamegDataError, LamegValueError
from .util import ttest_rel_corrected

__all__ = [
    "compute_csd",
    "roi_power_comparison",
    "roi_power_comparison_arrays",
    "model_comparison",
    "sliding_window_model_comparison",
]


# ============================================================================================
# Current source density
# ============================================================================================

#: Conductivity used by the StandardCSD estimator (S/m), elephant's default.
STANDARD_CSD_SIGMA = 0.3


def _standard_csd(signal_: np.ndarray, spacing_m: float, sigma: float) -> np.ndarray:
    """Second spatial difference with Vaknin end electrodes and a 3-point Gaussian filter.

    ``csd_i = -sigma * (phi_{i-1} - 2 phi_i + phi_{i+1}) / h`` with the end potentials
    duplicated (Vaknin et al. 1988), then convolved across depth with the normalised window
    ``[e^-1/2, 1, e^-1/2]`` (zero padded), as elephant's ``StandardCSD`` does.
    """
    padded = np.concatenate([signal_[:1], signal_, signal_[-1:]], axis=0)
    second_diff = padded[:-2] - 2.0 * padded[1:-1] + padded[2:]
    raw = -sigma * second_diff / spacing_m
    window = np.array([np.exp(-0.5), 1.0, np.exp(-0.5)])
    window /= window.sum()
    filtered = np.zeros_like(raw)
    filtered += window[1] * raw
    filtered[1:] += window[0] * raw[:-1]
    filtered[:-1] += window[2] * raw[1:]
    return filtered


def _basis_1d(kind: str):
    """Basis source profile of KCSD1D as a function of (distance, R)."""
    if kind == "gauss":
        def fn(d, r):
            sd = r / 3.0
            return np.exp(-(d ** 2) / (2 * sd ** 2)) / (np.sqrt(2 * np.pi) * sd)
    elif kind == "gauss_lim":
        def fn(d, r):
            sd = r / 3.0
            g = np.exp(-(d ** 2) / (2 * sd ** 2)) / (np.sqrt(2 * np.pi) * sd)
            return g * (d < r)
    elif kind == "step":
        def fn(d, r):
            return (d <= r) / r
    else:
        raise LamegValueError(
            f"KCSD1D src_type must be 'gauss', 'gauss_lim' or 'step', got {kind!r}"
        )
    return fn


class _KCSD1D:
    """Kernel CSD in 1-D (Potworowski et al. 2012), the estimator of kCSD-python / elephant.

    Positions in mm, potentials in mV; the estimate is in uA/mm^3 (for sigma in S/m). The
    potential of a basis source is tabulated at 20 log-spaced distances and interpolated with a
    cubic spline, exactly as kCSD-python does, so results agree with elephant's ``KCSD1D``.
    """

    def __init__(self, ele_pos, pots, *, src_type="gauss", sigma=1.0, h=1.0, n_src_init=1000,
                 lambd=0.0, R_init=0.23, ext_x=0.0, xmin=None, xmax=None, gdx=None):
        self.ele = np.asarray(ele_pos, dtype=float).ravel()
        self.pots = np.asarray(pots, dtype=float)
        self.sigma, self.h, self.lambd = float(sigma), float(h), float(lambd)
        self.basis = _basis_1d(src_type)
        xmin = float(np.min(self.ele)) if xmin is None else float(xmin)
        xmax = float(np.max(self.ele)) if xmax is None else float(xmax)
        gdx = 0.01 * (xmax - xmin) if gdx is None else float(gdx)
        # Grid of estimation points: numpy's mgrid with a complex step truncates the count.
        n_est = int(abs((xmax - xmin) / gdx))
        self.estm_x = xmin + np.arange(n_est) * ((xmax - xmin) / (n_est - 1))
        lo, hi = self.estm_x.min() - ext_x, self.estm_x.max() + ext_x
        n_src = int(n_src_init)
        self.src_x = lo + np.arange(n_src) * ((hi - lo) / (n_src - 1))
        self.src_ele = np.abs(self.src_x[:, None] - self.ele[None, :])
        self.src_est = np.abs(self.src_x[:, None] - self.estm_x[None, :])
        self._update_r(float(R_init))

    def _potential_table(self, r: float):
        """Cubic interpolant of the potential of one basis source versus distance."""
        dist_max = max(self.src_ele.max(), self.src_est.max()) + r
        xs = np.logspace(0.0, np.log10(dist_max + 1.0), 20) - 1.0
        h, basis = self.h, self.basis

        def integrand(xp, x):
            return (np.sqrt((x - xp) ** 2 + h ** 2) - abs(x - xp)) * basis(abs(xp), r)

        table = np.array([integrate.quad(integrand, -r, r, args=(x,))[0] for x in xs])
        table /= 2.0 * self.sigma
        return interpolate.interp1d(xs, table, kind="cubic")

    def _update_r(self, r: float) -> None:
        self.r = r
        pot = self._potential_table(r)
        n_src = self.src_x.size
        b_pot = pot(self.src_ele)  # (n_src, n_ele)
        self.k_pot = b_pot.T @ b_pot / n_src
        b_src = self.basis(self.src_est, r).T  # (n_est, n_src)
        self.k_cross = b_src @ b_pot / n_src

    def _cv_error(self, lambd: float) -> float:
        """Leave-one-electrode-out prediction error (sum over electrodes of the L2 norm)."""
        n = self.k_pot.shape[0]
        train = np.array([np.delete(np.arange(n), i) for i in range(n)])  # (n, n-1)
        k_train = self.k_pot[train[:, :, None], train[:, None, :]]  # (n, n-1, n-1)
        k_inv = np.linalg.inv(k_train + lambd * np.eye(n - 1))
        v_train = self.pots[train]  # (n, n-1, T)
        k_test = self.k_pot[np.arange(n)[:, None], train]  # (n, n-1)
        pred = np.einsum("ij,ijt->it", k_test, k_inv @ v_train)
        return float(np.sum(np.linalg.norm(pred - self.pots, axis=1)))

    def cross_validate(self, lambdas=None, rs=None) -> tuple[float, float]:
        if lambdas is None:
            lambdas = np.hstack((np.logspace(-2, -25, 25, base=10.0), [0.0]))
        lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float)).ravel()
        rs = np.atleast_1d(np.asarray(self.r if rs is None else rs, dtype=float)).ravel()
        errs = np.zeros((rs.size, lambdas.size))
        for i, r in enumerate(rs):
            self._update_r(r)
            errs[i] = [self._cv_error(lam) for lam in lambdas]
        i_r, i_l = np.unravel_index(np.argmin(errs), errs.shape)
        self._update_r(rs[i_r])
        self.lambd = lambdas[i_l]
        self.cv_error = errs.min()
        return rs[i_r], self.lambd

    def values(self) -> np.ndarray:
        k_inv = np.linalg.inv(self.k_pot + self.lambd * np.eye(self.k_pot.shape[0]))
        return self.k_cross @ (k_inv @ self.pots)


_KCSD_KWARGS = {"src_type", "sigma", "h", "n_src_init", "lambd", "R_init", "ext_x", "xmin",
                "xmax", "gdx"}


def compute_csd(
    signal: np.ndarray,
    thickness: float,
    sfreq: float,
    method: str = "KCSD1D",
    smoothing: str | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Laminar current source density of a column of layer time series.

    Parameters
    ----------
    signal : ndarray, shape (n_layers, n_times)
        Source time series of one cortical column, layer 0 = pial ... last = white, equally
        spaced in depth (laMEG's equidistant layers).
    thickness : float
        Cortical thickness of the column in mm (e.g. the sum of the inter-layer distances).
    sfreq : float
        Sampling frequency in Hz (checked for positivity; the CSD is computed per sample).
    method : {'KCSD1D', 'StandardCSD'}
        Estimator. ``'StandardCSD'``: second spatial difference with duplicated end potentials
        and a three-point Gaussian spatial filter, values ``-sigma * (phi[i-1] - 2 phi[i] +
        phi[i+1]) / h`` (sigma = 0.3 S/m, h = spacing in metres; elephant's convention, i.e.
        ``-sigma * h * d2phi/dz2``); the first two and last two rows are set to 0 as in laMEG.
        ``'KCSD1D'``: kernel CSD with leave-one-out cross-validation of the regularisation
        (and of the basis width if ``Rs`` is given); the signal is read as volts and the result
        is in uA/mm^3 on ``int(100 * (1 - eps))`` or 100 evenly spaced depths (elephant's grid
        of 1 % of the thickness).
    smoothing : {'linear', 'quadratic', 'cubic', ...} or None
        StandardCSD only: interpolate across normalised depth (any ``scipy.interpolate.interp1d``
        kind) onto 500 rows. Ignored (with a warning) for KCSD1D, whose grid is already fine.
    **kwargs
        KCSD1D options: ``lambdas`` (regularisation values to cross-validate; default
        ``logspace(-2, -25, 25)`` and 0), ``Rs`` (basis widths in mm; default ``R_init``), and
        the estimator parameters ``R_init`` (0.23 mm), ``n_src_init`` (1000), ``sigma`` (1.0),
        ``h`` (1.0), ``src_type`` ('gauss'), ``ext_x``, ``xmin``, ``xmax``, ``gdx``.

    Returns
    -------
    csd : ndarray, shape (n_rows, n_times)
        ``n_rows`` = n_layers (StandardCSD), 500 (StandardCSD with smoothing) or the KCSD1D
        estimation grid; row 0 is the pial end.

    Raises
    ------
    LamegValueError
        For an unknown method, fewer than 3 layers, non-finite values or a non-positive
        thickness or sampling rate.
    """
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim == 1:
        sig = sig[:, None]
    if sig.ndim != 2:
        raise LamegValueError(f"signal must be (n_layers, n_times), got shape {sig.shape}")
    if sig.shape[0] < 3:
        raise LamegValueError(f"compute_csd needs at least 3 layers, got {sig.shape[0]}")
    if not np.all(np.isfinite(sig)):
        raise LamegDataError("signal contains NaN or infinite values")
    if not (np.isfinite(thickness) and thickness > 0):
        raise LamegValueError(f"thickness must be a positive number of mm, got {thickness!r}")
    if not (np.isfinite(sfreq) and sfreq > 0):
        raise LamegValueError(f"sfreq must be a positive frequency in Hz, got {sfreq!r}")
    n_layers = sig.shape[0]
    coords = np.linspace(0.0, float(thickness), n_layers)  # mm

    if method == "StandardCSD":
        if kwargs:
            raise LamegValueError(f"StandardCSD takes no extra options, got {sorted(kwargs)}")
        spacing_m = (coords[1] - coords[0]) * 1e-3
        csd = _standard_csd(sig, spacing_m, STANDARD_CSD_SIGMA)
        csd[:2] = 0.0
        csd[-2:] = 0.0
        if smoothing is not None:
            depth = np.linspace(0.0, 1.0, n_layers)
            fine = np.linspace(0.0, 1.0, 500)
            try:
                csd = interpolate.interp1d(depth, csd, kind=smoothing, axis=0)(fine)
            except (ValueError, NotImplementedError) as err:
                raise LamegValueError(
                    f"smoothing={smoothing!r} is not an interpolation kind: {err}"
                ) from err
        return csd

    if method == "KCSD1D":
        if smoothing is not None:
            warnings.warn("smoothing applies to StandardCSD only; ignored for KCSD1D",
                          UserWarning, stacklevel=2)
        lambdas = kwargs.pop("lambdas", None)
        rs = kwargs.pop("Rs", None)
        unknown = set(kwargs) - _KCSD_KWARGS
        if unknown:
            raise LamegValueError(
                f"Unknown KCSD1D option(s) {sorted(unknown)}; valid: lambdas, Rs, "
                f"{', '.join(sorted(_KCSD_KWARGS))}"
            )
        # laMEG passes the signal as microvolts (x 1e6) and kCSD works in mV.
        pots_mv = sig * 1e3
        est = _KCSD1D(coords, pots_mv, **kwargs)
        est.cross_validate(lambdas, rs)
        return est.values()

    raise LamegValueError(f"method must be 'StandardCSD' or 'KCSD1D', got {method!r}")


# ============================================================================================
# ROI power contrasts
# ============================================================================================

_ROI_MODES = ("threshold", "restrict_threshold", "direct")


def _window_masks(time: np.ndarray, woi, baseline_woi) -> tuple[np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=float)
    for name, w in (("woi", woi), ("baseline_woi", baseline_woi)):
        if np.size(w) != 2 or not w[0] < w[1]:
            raise LamegValueError(f"{name} must be (start_ms, end_ms) with start < end, got {w}")
    base = (time >= baseline_woi[0]) & (time < baseline_woi[1])
    exp = (time >= woi[0]) & (time < woi[1])
    if not base.any() or not exp.any():
        raise LamegValueError(
            f"woi {tuple(woi)} or baseline {tuple(baseline_woi)} ms contains no sample of the "
            f"time axis [{time[0]:g}, {time[-1]:g}] ms"
        )
    return base, exp


def _power_change(ts: np.ndarray, base: np.ndarray, exp: np.ndarray) -> np.ndarray:
    """Mean Hilbert amplitude in the woi minus the baseline, per vertex and trial."""
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim == 2:
        ts = ts[:, :, None]
    env = np.abs(hilbert(ts, axis=1))
    return env[:, exp, :].mean(axis=1) - env[:, base, :].mean(axis=1)


def _roi_contrast(pial_change, white_change, candidates, perc_thresh, roi_mode):
    """Select the ROI among candidates and t-test |pial| - |white| across trials."""
    if roi_mode == "direct":
        keep = np.ones(candidates.size, dtype=bool)
    else:
        if perc_thresh is None or not 0 <= perc_thresh <= 100:
            raise LamegValueError(f"perc_thresh must be a percentile in [0, 100], got "
                                  f"{perc_thresh!r}")
        t_pial, _, _ = ttest_rel_corrected(pial_change, axis=-1)
        t_white, _, _ = ttest_rel_corrected(white_change, axis=-1)
        keep = (t_pial > np.nanpercentile(t_pial, perc_thresh)) | (
            t_white > np.nanpercentile(t_white, perc_thresh)
        )
        if not keep.any():
            raise LamegDataError(
                "No vertices survived thresholding: lower perc_thresh or check roi_idx."
            )
    pial_roi = pial_change[keep].mean(axis=0)
    white_roi = white_change[keep].mean(axis=0)
    t, df, p = ttest_rel_corrected(np.abs(pial_roi) - np.abs(white_roi), axis=-1)
    return t, p, df, candidates[keep]


def _check_roi_args(roi_mode, roi_idx, n_columns):
    if roi_mode not in _ROI_MODES:
        raise LamegValueError(f"roi_mode must be one of {_ROI_MODES}, got {roi_mode!r}")
    if roi_mode == "threshold":
        return np.arange(n_columns)
    if roi_idx is None:
        raise LamegValueError(f"roi_idx must be given when roi_mode={roi_mode!r}")
    roi = np.unique(np.asarray(roi_idx, dtype=np.int64).ravel())
    if roi.size == 0 or roi.min() < 0 or roi.max() >= n_columns:
        raise LamegValueError(
            f"roi_idx must be non-empty column indices in [0, {n_columns}) (pial-layer vertices)"
        )
    return roi


def roi_power_comparison_arrays(
    pial_ts: np.ndarray,
    white_ts: np.ndarray,
    time: np.ndarray,
    woi: Sequence[float],
    baseline_woi: Sequence[float],
    perc_thresh: float | None = None,
    roi_idx: Sequence[int] | None = None,
    roi_mode: str = "threshold",
) -> tuple[float, float, int, np.ndarray]:
    """ROI power contrast between the pial and white layers, on arrays.

    Same analysis as :func:`roi_power_comparison`, given the source time series of every column
    of the two surfaces.

    Parameters
    ----------
    pial_ts, white_ts : ndarray, shape (n_columns, n_times[, n_trials])
        Source time series on the pial and the white layer (row i = column i in both).
    time : ndarray, shape (n_times,)
        Time in ms.
    woi, baseline_woi : (float, float)
        Window of interest and baseline in ms, half-open ``[start, end)``.
    perc_thresh : float
        Percentile (0-100) of the per-column t statistics above which a column enters the ROI
        (on either layer). Not used by ``roi_mode='direct'``.
    roi_idx : sequence of int, optional
        Candidate columns (``'restrict_threshold'``) or the ROI itself (``'direct'``).
    roi_mode : {'threshold', 'restrict_threshold', 'direct'}
        ROI definition, as in laMEG.

    Returns
    -------
    laminar_t : float
        Corrected paired t statistic of ``|pial change| - |white change|`` across trials
        (positive: larger modulation on the pial surface).
    laminar_p : float
        Two-sided p-value.
    df : int
        Degrees of freedom (n_trials - 1).
    roi_idx : ndarray of int
        Columns in the ROI.
    """
    pial_ts = np.asarray(pial_ts)
    white_ts = np.asarray(white_ts)
    if pial_ts.shape != white_ts.shape or pial_ts.ndim not in (2, 3):
        raise LamegValueError(
            f"pial_ts and white_ts must have the same shape (n_columns, n_times[, n_trials]); "
            f"got {pial_ts.shape} and {white_ts.shape}"
        )
    if pial_ts.shape[1] != np.size(time):
        raise LamegValueError(f"time has {np.size(time)} samples, data {pial_ts.shape[1]}")
    candidates = _check_roi_args(roi_mode, roi_idx, pial_ts.shape[0])
    base, exp = _window_masks(time, woi, baseline_woi)
    pial_change = _power_change(pial_ts[candidates], base, exp)
    white_change = _power_change(white_ts[candidates], base, exp)
    return _roi_contrast(pial_change, white_change, candidates, perc_thresh, roi_mode)



class _StoredSourceProjector:
    """Source time series of chosen vertices of the inversion stored in a dataset.

    Gives the same numbers as :func:`lameg.source.load_source_time_series` (inversion 0), but
    reads the header, the sensor data and the inversion once and projects the data onto the
    inverted samples (``Y S S'``) once, so that many small sets of vertices are cheap: each call
    only multiplies the vertices' rows of the inverse operator (``M A``) with the projected
    data, as one BLAS product (the sums are ordered differently, so values agree to rounding,
    ~1e-15 relative). Sliding-window inversions (factored operators) are passed on to
    ``load_source_time_series`` chunk by chunk.

    Parameters
    ----------
    data_fname : str or path-like
        Inverted SPM dataset.
    mu_matrix : ndarray, shape (n_sources, n_channels), optional
        Precomputed inverse operator ``M A`` (rows are selected per call).
    """

    def __init__(self, data_fname: str | os.PathLike, mu_matrix: np.ndarray | None):
        from .source import load_source_time_series

        self._load = load_source_time_series
        self._fname = data_fname
        self._mu_matrix = None if mu_matrix is None else np.asarray(mu_matrix, dtype=float)
        # validates the file, the inversion and mu_matrix, and gives the time axis
        first, self.time, mu = load_source_time_series(data_fname, mu_matrix=self._mu_matrix,
                                                       vertices=np.array([0]))
        self.n_trials = first.shape[2] if first.ndim == 3 else 1
        self._proj = None
        if mu is None:  # sliding windows: one operator per window, no shared projection
            return
        from .io.spm_meeg import load_meeg

        meeg = load_meeg(data_fname)
        inv = meeg.inv[0]["inverse"]
        ic = np.asarray(_first_cell(inv["Ic"]), dtype=float).ravel().astype(int) - 1
        it = np.asarray(inv["It"], dtype=float).ravel().astype(int) - 1
        s_t = np.asarray(inv["T"], dtype=float).reshape(it.size, -1)
        y = np.asarray(meeg.data[ic], dtype=float)[:, it, :]  # (n_channels, n_times, n_trials)
        self._proj = np.einsum("cbk,bt->ctk", y, s_t @ s_t.T)
        if mu_matrix is None:
            self._m = np.asarray(inv["M"], dtype=float)
            u = np.asarray(_first_cell(inv["U"]), dtype=float)
            self._u = u.reshape(-1, ic.size) if u.ndim < 2 else u

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        """Source time series, shape (n_vertices, n_times[, n_trials]), of 0-based vertices."""
        if self._proj is None:
            return self._load(self._fname, mu_matrix=self._mu_matrix, vertices=vertices)[0]
        if self._mu_matrix is not None:
            mu = self._mu_matrix[vertices]
        else:
            mu = self._m[vertices] @ self._u
        n_chan, n_times, n_trials = self._proj.shape
        src = (mu @ self._proj.reshape(n_chan, -1)).reshape(len(mu), n_times, n_trials)
        return src[:, :, 0] if n_trials == 1 else src


def _first_cell(x):
    """First element of a MATLAB cell stored as a list (SPM keeps ``U``/``Ic`` in cells)."""
    return x[0] if isinstance(x, (list, tuple)) else x


def roi_power_comparison(
    data_fname: str | os.PathLike,
    woi: Sequence[float],
    baseline_woi: Sequence[float],
    perc_thresh: float,
    surf_set: Any,
    mu_matrix: np.ndarray | None = None,
    chunk_size: int = 100,
    roi_idx: Sequence[int] | None = None,
    roi_mode: str = "threshold",
) -> tuple[float, float, int, np.ndarray]:
    """Compare power changes between the pial and white layers in a region of interest.

    For every candidate column, the source time series of its pial and white vertices are
    reconstructed from the inversion stored in ``data_fname`` (the projection of
    :func:`lameg.source.load_source_time_series`, in chunks of ``chunk_size`` columns; the
    dataset is read and projected onto the inverted samples once for all chunks), the power is
    the mean Hilbert amplitude, and the per-trial change is woi minus baseline.

    - ``'threshold'``: candidates are all columns; the ROI is the set of columns whose
      corrected t statistic of the change exceeds the ``perc_thresh`` percentile on the pial OR
      on the white layer (percentiles taken separately per layer).
    - ``'restrict_threshold'``: the same, with the candidates restricted to ``roi_idx``.
    - ``'direct'``: the ROI is ``roi_idx``.

    Finally the ROI means of the pial and white changes are compared across trials with a
    corrected paired t test of ``|pial| - |white|``.

    Parameters
    ----------
    data_fname : str or path-like
        Inverted SPM dataset (multilayer forward model).
    woi, baseline_woi : (float, float)
        Window of interest and baseline in ms, half-open ``[start, end)``.
    perc_thresh : float
        Percentile threshold in [0, 100] (unused for ``'direct'``).
    surf_set : LayerSurfaceSet
        Layer set of the inversion (``n_layers`` and ``get_vertices_per_layer()`` are used).
    mu_matrix : ndarray, shape (n_sources, n_channels), optional
        Precomputed inverse operator, passed on to ``load_source_time_series``.
    chunk_size : int
        Columns reconstructed per chunk (memory bound), default 100.
    roi_idx : sequence of int, optional
        Pial-layer column indices, see ``roi_mode``.
    roi_mode : {'threshold', 'restrict_threshold', 'direct'}

    Returns
    -------
    laminar_t, laminar_p, df, roi_idx
        As :func:`roi_power_comparison_arrays`.
    """
    if int(chunk_size) < 1:
        raise LamegValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    n_columns = int(surf_set.get_vertices_per_layer())
    n_layers = int(surf_set.n_layers)
    candidates = _check_roi_args(roi_mode, roi_idx, n_columns)

    source = _StoredSourceProjector(data_fname, mu_matrix)
    base, exp = _window_masks(source.time, woi, baseline_woi)

    def changes(vertices: np.ndarray) -> np.ndarray:
        out = np.empty((vertices.size, source.n_trials))
        for start in range(0, vertices.size, int(chunk_size)):
            sl = slice(start, start + int(chunk_size))
            out[sl] = _power_change(source(vertices[sl]), base, exp)
        return out

    pial_change = changes(candidates)
    white_change = changes((n_layers - 1) * n_columns + candidates)
    return _roi_contrast(pial_change, white_change, candidates, perc_thresh, roi_mode)


# ============================================================================================
# Model comparison across layers and BigBrain laminae (separate section, other owner)
# ============================================================================================


def _backend() -> dict:
    """The file-based co-registration and inversion functions (resolved at call time)."""
    from . import invert as _inv

    return {"coregister": _inv.coregister, "invert_ebb": _inv.invert_ebb,
            "invert_msp": _inv.invert_msp,
            "invert_sliding_window_msp": _inv.invert_sliding_window_msp,
            "opm_headmodel": getattr(_inv, "opm_headmodel", None)}


def _forward_kwargs(forward_kwargs, coregister_kwargs) -> dict:
    out = dict(coregister_kwargs or {})
    out.update(forward_kwargs or {})
    return out


def _forward_per_layer(backend, device, fid_coords, data_fname, surf_set, layer_name, stage,
                       orientation, fixed, viz, spm_instance, fwd_kwargs):
    if device == "squid":
        backend["coregister"](fid_coords, data_fname, surf_set, layer_name=layer_name,
                              stage=stage, orientation=orientation, fixed=fixed, viz=viz,
                              spm_instance=spm_instance, **fwd_kwargs)
    elif device == "opm":
        opm = backend.get("opm_headmodel")
        if opm is None:
            from .exceptions import LamegNotImplementedError

            raise LamegNotImplementedError(
                "device='opm' needs lameg.invert.opm_headmodel, which is not available in this "
                "version; coregister OPM data with device='squid' (fiducial coregistration)")
        if "mri_fname" not in fwd_kwargs:
            raise LamegValueError("device='opm' requires forward_kwargs['mri_fname']")
        opm(data_fname, surf_set, layer_name=layer_name, stage=stage, orientation=orientation,
            fixed=fixed, viz=viz, spm_instance=spm_instance, **fwd_kwargs)
    else:
        raise LamegValueError(f"device must be 'squid' or 'opm', got {device!r}")


def model_comparison(
    fid_coords: Any,
    data_fname: str | os.PathLike,
    surf_set: Any,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    method: str = "EBB",
    device: str = "squid",
    viz: bool = True,
    spm_instance: Any = None,
    forward_kwargs: dict | None = None,
    invert_kwargs: dict | None = None,
    coregister_kwargs: dict | None = None,
) -> tuple[np.ndarray, list]:
    """Free-energy (and cross-validation) comparison of single-layer source models.

    For every layer of ``surf_set`` the dataset is coregistered to that layer's mesh (forward
    model at ``inversion_idx`` 0, overwritten each time as in laMEG; gain matrices and patch
    kernels are cached by content, so repeated comparisons reuse them) and inverted with EBB or
    MSP.

    Parameters
    ----------
    fid_coords : dict
        MRI fiducials (``{'nas': [x, y, z], 'lpa': ..., 'rpa': ...}``, scanner RAS mm).
    data_fname : str or path-like
        SPM dataset (its ``D.other.inv`` is rewritten).
    surf_set : LayerSurfaceSet
    stage, orientation, fixed
        Mesh selection (``surf_set.get_mesh_path``).
    method : {'EBB', 'MSP'}
    device : {'squid', 'opm'}
        ``'opm'`` uses ``lameg.invert.opm_headmodel`` (needs ``forward_kwargs['mri_fname']``).
    viz, spm_instance
        Passed on (laMEG compatibility).
    forward_kwargs : dict, optional
        Extra arguments of ``coregister`` (laMEG 0.2.1 name).
    invert_kwargs : dict, optional
        Extra arguments of ``invert_ebb`` / ``invert_msp``. ``n_spatial_modes`` defaults to
        ``'all'`` (laMEG's setting) and may be overridden here (laMEG raised ``TypeError``).
    coregister_kwargs : dict, optional
        laMEG 0.1.4 name of ``forward_kwargs`` (merged; ``forward_kwargs`` wins).

    Returns
    -------
    f_vals : ndarray, shape (n_layers,)
        Free energy of each layer model (higher is better), layer 0 = pial.
    cv_errs : list
        Cross-validation error of each layer model (lower is better; empty arrays without
        cross-validation).
    """
    if method not in ("EBB", "MSP"):
        raise LamegValueError(f"method must be 'EBB' or 'MSP', got {method!r}")
    backend = _backend()
    fwd_kwargs = _forward_kwargs(forward_kwargs, coregister_kwargs)
    inv_kwargs = dict(invert_kwargs or {})
    inv_kwargs.setdefault("n_spatial_modes", "all")
    for bad in ("layer_name", "stage", "orientation", "fixed", "inversion_idx"):
        if bad in inv_kwargs or bad in fwd_kwargs:
            raise LamegValueError(f"{bad!r} is set by model_comparison; remove it from the "
                                  "keyword dictionaries")
    invert_fn = backend["invert_ebb"] if method == "EBB" else backend["invert_msp"]
    f_vals, cv_errs = [], []
    for layer_name in surf_set.get_layer_names():
        _forward_per_layer(backend, device, fid_coords, data_fname, surf_set, layer_name,
                           stage, orientation, fixed, viz, spm_instance, fwd_kwargs)
        out = invert_fn(data_fname, surf_set, layer_name=layer_name, stage=stage,
                        orientation=orientation, fixed=fixed, viz=viz,
                        spm_instance=spm_instance, **inv_kwargs)
        f_vals.append(float(np.asarray(out[0]).ravel()[0]) if np.size(out[0]) == 1
                      else np.asarray(out[0]))
        cv_errs.append(np.asarray(out[1]))
    return np.asarray(f_vals), cv_errs


def sliding_window_model_comparison(
    prior: int,
    fid_coords: Any,
    data_fname: str | os.PathLike,
    surf_set: Any,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    device: str = "squid",
    viz: bool = True,
    spm_instance: Any = None,
    forward_kwargs: dict | None = None,
    invert_kwargs: dict | None = None,
    coregister_kwargs: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window MSP free energy of each single-layer model.

    Parameters
    ----------
    prior : int
        0-based vertex (column) of the single MSP prior patch.
    fid_coords, data_fname, surf_set, stage, orientation, fixed, device, viz, spm_instance,
    forward_kwargs, coregister_kwargs
        As :func:`model_comparison`.
    invert_kwargs : dict, optional
        Extra arguments of ``invert_sliding_window_msp`` (``patch_size``, ``n_temp_modes``,
        ``win_size``, ``win_overlap``, ``wois``, ``foi``, ``hann_windowing``...);
        ``n_spatial_modes`` defaults to ``'all'``.

    Returns
    -------
    f_vals : ndarray, shape (n_layers, n_windows)
    wois : ndarray, shape (n_windows, 2)
        Windows, ms.
    """
    prior = int(prior)
    if prior < 0:
        raise LamegValueError(f"prior must be a 0-based vertex index, got {prior}")
    backend = _backend()
    fwd_kwargs = _forward_kwargs(forward_kwargs, coregister_kwargs)
    inv_kwargs = dict(invert_kwargs or {})
    inv_kwargs.setdefault("n_spatial_modes", "all")
    f_vals, wois = [], None
    for layer_name in surf_set.get_layer_names():
        _forward_per_layer(backend, device, fid_coords, data_fname, surf_set, layer_name,
                           stage, orientation, fixed, viz, spm_instance, fwd_kwargs)
        f, w = backend["invert_sliding_window_msp"](
            prior, data_fname, surf_set, layer_name=layer_name, stage=stage,
            orientation=orientation, fixed=fixed, viz=viz, spm_instance=spm_instance,
            **inv_kwargs)
        f_vals.append(np.atleast_1d(np.asarray(f, dtype=float)))
        wois = np.asarray(w)
    return np.stack(f_vals, axis=0), wois
