"""ROI power contrasts between the pial and white layers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.signal import hilbert

from ..exceptions import LamegDataError, LamegValueError
from ..util import ttest_rel_corrected

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
    mu_matrix : ndarray or scipy.sparse matrix, shape (n_sources, n_channels), optional
        Precomputed inverse operator ``M A`` (rows are selected per call).
    """

    def __init__(self, data_fname: str | os.PathLike, mu_matrix: np.ndarray | None):
        from ..source import load_source_time_series

        self._load = load_source_time_series
        self._fname = data_fname
        if mu_matrix is not None and hasattr(mu_matrix, "toarray"):  # laMEG returns csc_matrix
            mu_matrix = mu_matrix.toarray()
        self._mu_matrix = None if mu_matrix is None else np.asarray(mu_matrix, dtype=float)
        # validates the file, the inversion and mu_matrix, and gives the time axis
        first, self.time, mu = load_source_time_series(data_fname, mu_matrix=self._mu_matrix,
                                                       vertices=np.array([0]))
        self.n_trials = first.shape[2] if first.ndim == 3 else 1
        self._proj = None
        if mu is None:  # sliding windows: one operator per window, no shared projection
            return
        from ..io.spm_inv import read_inverse
        from ..io.spm_meeg import load_meeg

        meeg = load_meeg(data_fname)
        inv = read_inverse(meeg, 0)
        ic, it, s_t = inv.channels, inv.samples, inv.temporal_basis
        y = np.asarray(meeg.data[ic], dtype=float)[:, it, :]  # (n_channels, n_times, n_trials)
        self._proj = np.einsum("cbk,bt->ctk", y, s_t @ s_t.T)
        if mu_matrix is None:
            self._m = inv.M
            self._u = inv.spatial_projector

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
    mu_matrix : ndarray or scipy.sparse matrix, shape (n_sources, n_channels), optional
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
