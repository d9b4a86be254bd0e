"""Compressed-frame ReML and patch-prior free energies (lameg.inverse.lowrank) against the
full-matrix reference computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lameg.exceptions import LamegValueError
from lameg.inverse import geodesic_kernel, invert_classic, reml_sc, sp_reml
from lameg.inverse.lowrank import Frame, layer_projector, model_free_energies
from lameg.simulate import patch_weights
from lameg.sweep import synthetic_model

# Tolerance: the compressed frame runs the same Fisher-scoring statements on matrices that
# are exactly (in exact arithmetic) the full ones written in another orthonormal basis, so
# the free energies differ by rounding only (measured ~1e-10 relative on these problems);
# 1e-6 relative is the equality the sweep promises, and far below the F differences that
# decide between layer models (> 1e-3 relative here).
RTOL_F = 1e-6


def _compress(x, basis, perp):
    r = basis.shape[1]
    out = np.zeros((r + 1, r + 1))
    out[:r, :r] = basis.T @ x @ basis
    out[r, r] = perp
    return out


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(4)
    n, nn = 90, 6
    lead = rng.standard_normal((n, 3))
    y = rng.standard_normal((n, nn)) + 2.0 * np.outer(lead[:, 0], rng.standard_normal(nn))
    basis, _ = np.linalg.qr(np.hstack([y, lead]))
    return dict(n=n, nn=nn, lead=lead, yy=y @ y.T, basis=basis,
                w=np.array([1.0] * basis.shape[1] + [n - basis.shape[1]]))


def test_compressed_reml_sc_equals_full(problem):
    n, nn, lead, yy, B, w = (problem[k] for k in ("n", "nn", "lead", "yy", "basis", "w"))
    q0 = np.exp(-5) * np.trace(yy) * np.eye(n) / n / nn
    comps = [q0, np.outer(lead[:, 0], lead[:, 0]), lead[:, 1:] @ lead[:, 1:].T]
    ref = reml_sc(yy, comps, nn, -4, 16, q0)
    c = reml_sc(_compress(yy, B, 0.0), [_compress(q, B, q[0, 0] if i == 0 else 0.0)
                                        for i, q in enumerate(comps)],
                nn, -4, 16, _compress(q0, B, q0[0, 0]), multiplicity=w)
    assert c.n_iter == ref.n_iter
    np.testing.assert_allclose(c.F, ref.F, rtol=1e-9)
    np.testing.assert_allclose(c.h, ref.h, rtol=1e-7)
    np.testing.assert_allclose(c.Ph, ref.Ph, rtol=1e-7, atol=1e-9)
    # C comes back compressed: rotating it back gives the full C
    r = B.shape[1]
    full = B @ c.C[:r, :r] @ B.T + c.C[r, r] * (np.eye(n) - B @ B.T)
    np.testing.assert_allclose(full, ref.C, rtol=1e-8, atol=1e-10 * np.abs(ref.C).max())


def test_compressed_sp_reml_equals_full(problem):
    n, nn, lead, yy, B, w = (problem[k] for k in ("n", "nn", "lead", "yy", "basis", "w"))
    qe = np.eye(n) / n
    ref = sp_reml(yy, [qe], [lead[:, i] for i in range(3)], nn)
    lc = np.vstack([B.T @ lead, np.zeros((1, 3))])
    c = sp_reml(_compress(yy, B, 0.0), [_compress(qe, B, 1.0 / n)],
                [lc[:, i] for i in range(3)], nn, multiplicity=w)
    assert c.n_iter == ref.n_iter
    np.testing.assert_allclose(c.F, ref.F, rtol=1e-9)
    np.testing.assert_allclose(c.h, ref.h, rtol=1e-6, atol=1e-12)


def test_compressed_input_validation(problem):
    yy, w = _compress(problem["yy"], problem["basis"], 0.0), problem["w"]
    with pytest.raises(LamegValueError, match="multiplicity"):
        reml_sc(yy, [np.eye(len(w))], 4, multiplicity=w[:-1])
    coupled = np.eye(len(w))
    coupled[0, -1] = coupled[-1, 0] = 0.1
    with pytest.raises(LamegValueError, match="scalar blocks"):
        reml_sc(yy, [coupled], 4, multiplicity=w)
    pattern = np.ones(len(w))
    with pytest.raises(LamegValueError, match="zero at positions"):
        sp_reml(yy, [np.eye(len(w))], [pattern], 4, multiplicity=w)


@pytest.fixture(scope="module")
def layered():
    m = synthetic_model(n_layers=3, n_side=14, extent_mm=34.0, n_sensors=80, n_trials=10,
                        n_samples=101)
    nv = m.n_vertices
    kern = [sp.csc_matrix(geodesic_kernel(*m.layer_mesh(e), 5.0, 1, use_cache=False))
            for e in range(3)]
    leads = [m.gain[:, e * nv:(e + 1) * nv] for e in range(3)]
    return m, kern, leads


def _simulate(m, layer, column, snr_scale, seed):
    nv = m.n_vertices
    q = patch_weights(m.vertices, m.faces, [layer * nv + column], 5.0, 10.0)
    pattern = np.asarray((q.T @ m.gain.T).T)[:, 0]
    t = m.time
    sig = np.exp(-(t**2) / (2 * 0.02**2))
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((m.gain.shape[0], t.size, 4))
    data = pattern[:, None, None] * sig[None, :, None] + snr_scale * np.abs(pattern).max() \
        * noise
    return data.mean(axis=2, keepdims=True).astype(np.float32)


@pytest.mark.parametrize("inv_type,n_patch,modes", [
    ("MSP", 1, "all"), ("MSP", 3, "auto"), ("GS", 2, "all"), ("ARD", 2, 20)])
def test_model_free_energies_equal_invert_classic(layered, inv_type, n_patch, modes):
    m, kern, leads = layered
    col = 14 * 7 + 5
    ip = np.array([col, col + 3, col - 30][:n_patch])
    kw = dict(trials=[np.array([0])], woi=np.array([[-40.0, 40.0]]), lpf=0.0, hpf=48.0,
              hanning=True, n_temp_modes=3, fsample=m.fsample)
    for true_layer, noise in ((0, 0.05), (2, 0.3)):
        data = _simulate(m, true_layer, col, noise, seed=true_layer)
        projectors = [layer_projector(L, modes) for L in leads]
        ref = np.array([invert_classic(L, data, m.time, inv_type=inv_type, QG=k, A=A, Ip=ip,
                                       keep_M="none", **kw).F[0]
                        for L, k, A in zip(leads, kern, projectors)])
        fast = model_free_energies(leads, data, m.time, kernels=kern, Ip=ip,
                                   projectors=projectors, inv_type=inv_type, **kw)[:, 0]
        full = model_free_energies(leads, data, m.time, kernels=kern, Ip=ip,
                                   projectors=projectors, inv_type=inv_type, compress=False,
                                   **kw)[:, 0]
        np.testing.assert_allclose(fast, ref, rtol=RTOL_F)
        # without compression the same statements run on the same matrices as the engine
        np.testing.assert_allclose(full, ref, rtol=1e-12)
        assert np.argmax(fast) == np.argmax(ref)
        if noise < 0.1:
            assert np.argmax(fast) == true_layer


def test_frame_falls_back_without_identity_noise(layered):
    m, kern, leads = layered
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((20, 3))
    frame = Frame.for_span(vecs, np.eye(20) / 20)
    assert frame.compressed and frame.multiplicity[-1] == 17
    skewed = np.diag(np.linspace(1, 2, 20))
    assert not Frame.for_span(vecs, skewed).compressed
    assert not Frame.for_span(rng.standard_normal((20, 19)), np.eye(20)).compressed
    # a projector with non-orthonormal rows (Qe not ~ I) runs uncompressed, same F
    col = 14 * 7 + 5
    data = _simulate(m, 1, col, 0.1, seed=3)
    A = np.diag(np.linspace(0.5, 1.5, m.gain.shape[0]))
    kw = dict(trials=[np.array([0])], woi=np.array([[-40.0, 40.0]]), lpf=0.0, hpf=48.0,
              n_temp_modes=3, fsample=m.fsample)
    ref = [invert_classic(L, data, m.time, inv_type="MSP", QG=k, A=A, Ip=np.array([col]),
                          keep_M="none", **kw).F[0] for L, k in zip(leads, kern)]
    fast = model_free_energies(leads, data, m.time, kernels=kern, Ip=np.array([col]),
                               projectors=[A] * 3, **kw)[:, 0]
    np.testing.assert_allclose(fast, ref, rtol=1e-12)
    with pytest.raises(LamegValueError, match="inv_type"):
        model_free_energies(leads, data, m.time, kernels=kern, Ip=[col], inv_type="EBB")
    with pytest.raises(LamegValueError, match="kernel"):
        model_free_energies(leads, data, m.time, kernels=kern[:2], Ip=[col])
