"""Anatomical predictors of laminar inference accuracy (Szul et al. 2025).

Per cortical column: cortical thickness, the lead-field RMS difference between the deepest and
the most superficial layer, the radiality of the column orientation to the scalp and the
distance to the scalp. Their z-scores, with the distance inverted (closer is better), sum to a
composite *anatomical score*: columns with higher scores are predicted to support more accurate
laminar inference, and the best-scoring column of a region of interest is a natural prior
location for laminar model comparison.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .exceptions import LamegDataError, LamegValueError

__all__ = ["PREDICTORS", "anatomical_predictors", "anatomical_score", "select_prior_vertex"]

#: Predictor names and the sign with which each enters the score (+1: larger is better).
PREDICTORS: dict[str, int] = {"thickness": 1, "lf_rms_diff": 1, "radiality": 1, "distance": -1}


def anatomical_predictors(
    data_fname: str | os.PathLike, surf_set: Any, inversion_idx: int = 0
) -> dict[str, np.ndarray]:
    """Compute the four anatomical predictors of each column of a layer set.

    Parameters
    ----------
    data_fname : str or path-like
        Co-registered (and inverted) SPM dataset whose forward model at ``inversion_idx`` was
        built on the multilayer mesh of ``surf_set`` (its gain matrix is read).
    surf_set : LayerSurfaceSet
        Layer set of the forward model (ds stage, link-vector orientation).
    inversion_idx : int
        0-based index of the forward model in ``D.other.inv``.

    Returns
    -------
    dict of str -> ndarray, shape (n_columns,)
        ``'thickness'`` (mm, pial-white distance), ``'lf_rms_diff'`` (fT/nAm, RMS over
        channels of the deepest minus the pial lead field), ``'radiality'`` (``|cos|`` between the
        column orientation and the nearest scalp normal, 1 = radial) and ``'distance'``
        (mm, pial vertex to scalp).
    """
    from .invert import get_lead_field_rms_diff

    predictors = {
        "thickness": surf_set.get_cortical_thickness(),
        "lf_rms_diff": get_lead_field_rms_diff(data_fname, surf_set, inversion_idx=inversion_idx),
        "radiality": surf_set.get_radiality_to_scalp(),
        "distance": surf_set.get_distance_to_scalp(),
    }
    predictors = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in predictors.items()}
    sizes = {k: v.size for k, v in predictors.items()}
    if len(set(sizes.values())) != 1:
        raise LamegDataError(
            f"anatomical predictors have different lengths {sizes}: the forward model at "
            f"inversion_idx={inversion_idx} must use the multilayer ds mesh of this layer set"
        )
    return predictors


def _zscore(x: np.ndarray, name: str) -> np.ndarray:
    sd = x.std()
    if not sd > 0:
        warnings.warn(f"predictor {name!r} is constant; it does not contribute to the score",
                      UserWarning, stacklevel=3)
        return np.zeros_like(x)
    return (x - x.mean()) / sd


def anatomical_score(
    predictors: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Composite anatomical score: weighted sum of predictor z-scores, distance inverted.

    ``score = w_t z(thickness) + w_l z(lf_rms_diff) + w_r z(radiality) + w_d z(-distance)``
    with population z-scores (``ddof=0``, as ``scipy.stats.zscore``) over all columns and unit
    weights by default (Szul et al. 2025; laMEG tutorial 07).

    Parameters
    ----------
    predictors : mapping
        Arrays of shape (n_columns,) for some or all of ``'thickness'``, ``'lf_rms_diff'``,
        ``'radiality'``, ``'distance'`` (e.g. the output of :func:`anatomical_predictors`).
        Only the predictors given enter the score.
    weights : mapping, optional
        Weight per predictor name (missing names weigh 1; 0 drops a predictor).

    Returns
    -------
    ndarray, shape (n_columns,)
        Higher = anatomically more favourable for laminar inference.
    """
    unknown = set(predictors) - set(PREDICTORS)
    if unknown:
        raise LamegValueError(f"unknown predictor(s) {sorted(unknown)}; valid: {list(PREDICTORS)}")
    if not predictors:
        raise LamegValueError("no predictors given")
    weights = dict(weights or {})
    bad_w = set(weights) - set(PREDICTORS)
    if bad_w:
        raise LamegValueError(f"weights for unknown predictor(s) {sorted(bad_w)}")
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in predictors.items()}
    sizes = {k: v.size for k, v in arrays.items()}
    if len(set(sizes.values())) != 1 or 0 in sizes.values():
        raise LamegValueError(f"predictors must be non-empty and of equal length, got {sizes}")
    score = np.zeros(next(iter(sizes.values())))
    for name, values in arrays.items():
        if not np.all(np.isfinite(values)):
            raise LamegDataError(f"predictor {name!r} contains NaN or infinite values")
        w = float(weights.get(name, 1.0))
        if w != 0.0:
            score += w * _zscore(PREDICTORS[name] * values, name)
    return score


def select_prior_vertex(score: np.ndarray, roi_idx: Sequence[int]) -> int:
    """Column of a region of interest with the highest anatomical score.

    Parameters
    ----------
    score : ndarray, shape (n_columns,)
        Output of :func:`anatomical_score`.
    roi_idx : sequence of int
        Candidate columns (layer vertex indices, e.g. ``surf_set.get_roi_idx(...)`` or the ROI
        of ``roi_power_comparison``).

    Returns
    -------
    int
        The candidate with the maximal score (the first one on ties); NaN scores are skipped.
        Use ``surf_set.get_multilayer_vertex(layer, vertex)`` for a multilayer index.
    """
    score = np.asarray(score, dtype=np.float64).ravel()
    roi = np.asarray(roi_idx).ravel()
    if roi.size == 0:
        raise LamegValueError("roi_idx is empty")
    if not np.issubdtype(roi.dtype, np.integer):
        raise LamegValueError(f"roi_idx must hold integer vertex indices, got {roi.dtype}")
    if roi.min() < 0 or roi.max() >= score.size:
        raise LamegValueError(f"roi_idx must index the {score.size} columns of the score")
    cand = score[roi]
    if np.all(np.isnan(cand)):
        raise LamegDataError("every candidate vertex has a NaN score")
    return int(roi[np.nanargmax(cand)])
