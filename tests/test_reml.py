"""Tests of the ReML engine (``spm_reml_sc`` / ``spm_sp_reml`` ports) and SPM linear algebra."""

from __future__ import annotations

import numpy as np
import pytest

from lameg.exceptions import LamegValueError
from lameg.inverse.reml import reml_sc, sp_reml, spm_dx
from lameg.inverse.svd import spm_dctmtx, spm_hanning, spm_inv, spm_logdet, spm_svd


def _gauss_logev(yy, c, n):
    """log p(Y | C) for Y (m x N) with columns iid N(0, C), from YY = Y Y'."""
    m = c.shape[0]
    _, ld = np.linalg.slogdet(c)
    return -0.5 * (n * m * np.log(2 * np.pi) + n * ld + np.trace(np.linalg.solve(c, yy)))


def test_reml_recovers_known_hyperparameters():
    rng = np.random.default_rng(0)
    m, n = 12, 20000
    b = rng.standard_normal((m, 3))
    q1 = np.eye(m)
    q2 = b @ b.T
    c_true = 2.0 * q1 + 0.5 * q2
    y = np.linalg.cholesky(c_true) @ rng.standard_normal((m, n))
    res = reml_sc(y @ y.T, [q1, q2], n)
    # 20000 samples: the sampling error of the hyperparameters is ~1-2 %
    np.testing.assert_allclose(res.h, [2.0, 0.5], rtol=0.05)
    np.testing.assert_allclose(res.C, c_true, rtol=0.06, atol=0.1)


def test_free_energy_equals_direct_evaluation():
    """F = log-likelihood at the estimate - complexity; check the accuracy term directly."""
    rng = np.random.default_rng(1)
    m, n = 6, 500
    q1 = np.eye(m)
    v = rng.standard_normal((m, 2))
    q2 = v @ v.T
    y = np.linalg.cholesky(1.5 * q1 + q2) @ rng.standard_normal((m, n))
    yy = y @ y.T
    res = reml_sc(yy, [q1, q2], n, -4, 16)
    # accuracy Fa - N n log(sY)/2 is the Gaussian log-likelihood of the (pre-update) C,
    # up to the Ft/2 term; the complexity is a KL divergence >= 0 up to Ft/2.
    sy = np.trace(yy) / (n * m)
    ft = np.trace(np.linalg.inv(res.Ph)) / (16 + np.exp(-32)) - 2
    loglik = res.Fa - ft / 2 - n * m * np.log(sy) / 2
    np.testing.assert_allclose(loglik, _gauss_logev(yy, res.C, n), rtol=1e-10)
    assert res.F == pytest.approx(res.Fa - res.Fc - n * m * np.log(sy) / 2, rel=1e-12)
    assert res.Fc - ft / 2 > 0


def test_pruned_component_and_1x1_case():
    rng = np.random.default_rng(2)
    m, n = 8, 400
    q1 = np.eye(m)
    w = rng.standard_normal((m, 1))
    q2 = w @ w.T  # absent from the data: its hyperparameter must collapse
    y = rng.standard_normal((m, n))
    res = reml_sc(y @ y.T, [q1, q2], n, -4, 16)
    assert res.h[1] < 1e-2 * res.h[0]
    assert np.isfinite(res.F)
    # 1x1 data: a single component, closed-form variance (weak prior => close to sample var)
    x = rng.standard_normal(1000) * 3.0
    r1 = reml_sc(np.array([[x @ x]]), [np.eye(1)], 1000, -32, 256)
    assert r1.h[0] == pytest.approx(x @ x / 1000, rel=1e-2)


def test_reml_rejects_bad_input():
    with pytest.raises(LamegValueError):
        reml_sc(np.full((2, 2), np.nan), [np.eye(2)], 10)
    with pytest.raises(LamegValueError):
        reml_sc(np.eye(2), [np.eye(3)], 10)


def test_sp_reml_selects_present_pattern():
    rng = np.random.default_rng(3)
    m, n = 10, 2000
    pats = rng.standard_normal((m, 4))
    y = 0.3 * rng.standard_normal((m, n)) + np.outer(pats[:, 1], rng.standard_normal(n)) * 2
    res = sp_reml(y @ y.T, [np.eye(m)], [pats[:, i] for i in range(4)], n)
    hp = res.h[1:]
    assert np.argmax(hp) == 1
    assert hp[1] > 20 * np.delete(hp, 1).max()


def test_spm_svd_squares_singular_values_of_square_input():
    s = np.array([10.0, 1.0, 0.1, 0.01])
    x = np.diag(s) + 1e-12 * np.ones((4, 4))  # not diagonal -> full square path
    _, kept, _ = spm_svd(x, 1e-3)
    # normalised squared values: 100*4/101.01 = 3.96, 0.0396, 3.96e-4, 3.96e-6
    assert len(kept) == 2
    # the same matrix through a rectangular path (X'X eigenvalues are s^2 too)
    u, sv, v = spm_svd(np.vstack([x, np.zeros((1, 4))]), 1e-3)
    assert len(sv) == 2 and u.shape == (5, 2) and v.shape == (4, 2)
    # diagonal path sorts decreasing
    _, sd, _ = spm_svd(np.diag([1.0, 3.0, 2.0]), 0)
    np.testing.assert_array_equal(sd, [3.0, 2.0, 1.0])


def test_small_helpers():
    assert spm_logdet(-np.eye(1) * 5) == 0.0  # negative 1x1: no valid singular value
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert spm_logdet(a) == pytest.approx(np.log(np.linalg.det(a)))
    assert spm_logdet(-a) == pytest.approx(np.log(np.linalg.det(a)))  # log|det|
    np.testing.assert_allclose(spm_inv(a), np.linalg.inv(a), rtol=1e-12)
    t = spm_dctmtx(7)
    np.testing.assert_allclose(t.T @ t, np.eye(7), atol=1e-13)
    np.testing.assert_allclose(spm_hanning(3), [0.5, 1.0, 0.5])
    j = np.array([[-2.0, 0.3], [0.3, -1.0]])
    f = np.array([1.0, -0.5])
    np.testing.assert_allclose(spm_dx(j, f), -np.linalg.solve(j, f), rtol=1e-12)
    # finite t: (expm(tJ) - I) J^-1 f
    from scipy.linalg import expm

    tt = np.exp(0.0 - spm_logdet(j) / 2)
    np.testing.assert_allclose(spm_dx(j, f, 0.0),
                               (expm(tt * j) - np.eye(2)) @ np.linalg.solve(j, f), rtol=1e-10)


def test_spm_inv_follows_octave_algorithm_choice():
    """``inv`` as on SPM's reference platform (Octave): Cholesky for exactly symmetric
    positive-diagonal matrices (result exactly symmetric), triangular inverse for triangular
    matrices, LU otherwise; all agree with the textbook inverse on well-conditioned input."""
    from lameg.inverse.svd import octave_inv

    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 20))
    s = x @ x.T  # symmetric rank-k update: exactly symmetric
    inv_s = spm_inv(s)
    assert np.array_equal(inv_s, inv_s.T)  # Cholesky path (LU would not be exactly symmetric)
    tol = max(np.spacing(np.linalg.norm(s, np.inf)) * 6, np.exp(-32))
    np.testing.assert_allclose(inv_s, np.linalg.inv(s + tol * np.eye(6)), rtol=1e-10)
    u = np.triu(rng.standard_normal((5, 5))) + 5 * np.eye(5)
    np.testing.assert_allclose(octave_inv(u) @ u, np.eye(5), atol=1e-12)
    assert np.all(np.tril(octave_inv(u), -1) == 0)
    g = rng.standard_normal((5, 5)) + 5 * np.eye(5)  # general: LU
    np.testing.assert_allclose(octave_inv(g) @ g, np.eye(5), atol=1e-12)
    # symmetric, positive diagonal but indefinite: Cholesky fails -> LU, still the inverse
    h = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.9], [0.0, 0.9, 1.0]])
    np.testing.assert_allclose(octave_inv(h) @ h, np.eye(3), atol=1e-12)
    assert spm_inv(np.zeros((0, 0))).shape == (0, 0)
