"""Tests of lameg.anatomy: composite anatomical score (Szul et al. 2025) and prior selection."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import zscore

from lameg import anatomy
from lameg.exceptions import LamegDataError, LamegValueError


@pytest.fixture
def predictors():
    rng = np.random.default_rng(3)
    n = 500
    return {
        "thickness": rng.uniform(1.5, 4.5, n),
        "lf_rms_diff": rng.gamma(2.0, 3.0, n),
        "radiality": rng.uniform(0, 1, n),
        "distance": rng.uniform(8, 40, n),
    }


def test_score_equals_tutorial_formula(predictors):
    p = predictors
    expected = (zscore(p["thickness"]) + zscore(p["lf_rms_diff"]) + zscore(p["radiality"])
                + zscore(-p["distance"]))
    np.testing.assert_allclose(anatomy.anatomical_score(p), expected, rtol=1e-12, atol=1e-12)


def test_score_weights_and_subsets(predictors):
    p = predictors
    s = anatomy.anatomical_score(p, weights={"thickness": 2.0, "distance": 0.0})
    expected = 2 * zscore(p["thickness"]) + zscore(p["lf_rms_diff"]) + zscore(p["radiality"])
    np.testing.assert_allclose(s, expected, atol=1e-12)
    # A single predictor: the score is its z-score; distance is inverted.
    np.testing.assert_allclose(anatomy.anatomical_score({"distance": p["distance"]}),
                               -zscore(p["distance"]), atol=1e-12)
    # Score is invariant to affine rescaling of a predictor (units do not matter).
    q = dict(p, distance=p["distance"] / 10 + 3)
    np.testing.assert_allclose(anatomy.anatomical_score(q), anatomy.anatomical_score(p),
                               atol=1e-12)


def test_score_ordering_is_monotone():
    # A column better on every predictor must score higher.
    p = {"thickness": np.array([2.0, 3.0, 2.5]), "lf_rms_diff": np.array([1.0, 2.0, 1.5]),
         "radiality": np.array([0.2, 0.9, 0.5]), "distance": np.array([30.0, 10.0, 20.0])}
    s = anatomy.anatomical_score(p)
    assert np.argmax(s) == 1 and np.argmin(s) == 0
    assert abs(s.sum()) < 1e-12  # sum of z-scores is zero


def test_score_validation(predictors):
    with pytest.raises(LamegValueError, match="unknown predictor"):
        anatomy.anatomical_score({"curv": np.ones(3)})
    with pytest.raises(LamegValueError, match="equal length"):
        anatomy.anatomical_score({"thickness": np.ones(3), "distance": np.ones(4)})
    with pytest.raises(LamegDataError, match="NaN"):
        anatomy.anatomical_score({"thickness": np.array([1.0, np.nan, 2.0])})
    with pytest.raises(LamegValueError):
        anatomy.anatomical_score(predictors, weights={"depth": 1.0})
    with pytest.warns(UserWarning, match="constant"):
        s = anatomy.anatomical_score({"thickness": np.ones(4), "distance": np.arange(4.0)})
    np.testing.assert_allclose(s, -zscore(np.arange(4.0)))


def test_select_prior_vertex():
    score = np.array([0.1, 5.0, -1.0, 3.0, 3.0, np.nan])
    assert anatomy.select_prior_vertex(score, [0, 2, 3, 4, 5]) == 3  # first of the tie, NaN skipped
    assert anatomy.select_prior_vertex(score, np.arange(6)) == 1
    assert isinstance(anatomy.select_prior_vertex(score, [2]), int)
    with pytest.raises(LamegValueError):
        anatomy.select_prior_vertex(score, [])
    with pytest.raises(LamegValueError):
        anatomy.select_prior_vertex(score, [6])
    with pytest.raises(LamegValueError):
        anatomy.select_prior_vertex(score, [0.5])
    with pytest.raises(LamegDataError):
        anatomy.select_prior_vertex(score, [5])


def test_anatomical_predictors_plumbing(monkeypatch):
    """Predictors are collected from the layer set and the lead-field function, per column."""
    import lameg.invert as invert

    n = 7
    surf_set = SimpleNamespace(
        get_cortical_thickness=lambda: np.linspace(2, 3, n),
        get_radiality_to_scalp=lambda: np.linspace(0, 1, n),
        get_distance_to_scalp=lambda: np.linspace(10, 20, n),
    )
    calls = {}

    def fake_rms(data_fname, surf_set_, inversion_idx=0):
        calls["args"] = (data_fname, surf_set_, inversion_idx)
        return np.arange(n, dtype=float)

    monkeypatch.setattr(invert, "get_lead_field_rms_diff", fake_rms)
    p = anatomy.anatomical_predictors("x.mat", surf_set, inversion_idx=2)
    assert calls["args"] == ("x.mat", surf_set, 2)
    assert set(p) == set(anatomy.PREDICTORS)
    np.testing.assert_array_equal(p["lf_rms_diff"], np.arange(n))
    surf_set.get_distance_to_scalp = lambda: np.ones(n + 1)
    with pytest.raises(LamegDataError, match="different lengths"):
        anatomy.anatomical_predictors("x.mat", surf_set)
