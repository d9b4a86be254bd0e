"""Patch kernels and data-reduction helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lameg.exceptions import LamegDataError, LamegValueError
from lameg.inverse.kernels import geodesic_kernel, green_kernel
from lameg.inverse.modes import matlab_colon, truncate_woi, woi_samples


def _grid(n=12, spacing=1.0, z=0.0):
    x, y = np.meshgrid(np.arange(n) * spacing, np.arange(n) * spacing, indexing="ij")
    v = np.c_[x.ravel(), y.ravel(), np.full(n * n, z)]
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), \
        idx[:-1, 1:].ravel()
    f = np.r_[np.c_[a, b, c], np.c_[a, c, d]]
    return v, f


def test_geodesic_kernel_on_flat_grid(tmp_path):
    v, f = _grid()
    qg = geodesic_kernel(v, f, 2.5, cache_dir=tmp_path)
    np.testing.assert_allclose(np.asarray(qg.sum(axis=0)).ravel(), 1.0, rtol=1e-12)
    # on a flat mesh geodesic = Euclidean: check one column's support and weights
    j = 5 * 12 + 5
    col = qg[:, j].toarray().ravel()
    d = np.linalg.norm(v - v[j], axis=1)
    sigma = 2.5 / 2.355
    expect = np.where(d <= 2.5 + 1e-9, np.exp(-d**2 / (2 * sigma**2)), 0.0)
    np.testing.assert_allclose(col, expect / expect.sum(), rtol=1e-6, atol=1e-12)
    # cached copy is identical
    assert abs(geodesic_kernel(v, f, 2.5, cache_dir=tmp_path) - qg).max() == 0


def test_geodesic_kernel_is_block_diagonal_by_layer(tmp_path):
    v1, f1 = _grid(8)
    v = np.r_[v1, v1 + [0, 0, 2.0]]
    f = np.r_[f1, f1 + len(v1)]
    qg = geodesic_kernel(v, f, 2.0, n_layers=2, cache_dir=tmp_path)
    n = len(v1)
    assert sp.csr_matrix(qg[:n, n:]).nnz == 0 and sp.csr_matrix(qg[n:, :n]).nnz == 0
    np.testing.assert_allclose(qg[:n, :n].toarray(), qg[n:, n:].toarray(), atol=1e-12)
    with pytest.raises(LamegValueError):
        geodesic_kernel(v, f, 2.0, n_layers=3, cache_dir=tmp_path)
    with pytest.raises(LamegValueError):
        geodesic_kernel(v, f, 1e4, cache_dir=tmp_path)  # units check


def test_geodesic_kernel_backends_agree(tmp_path):
    """lameg's exact geodesics = Kirsanov's (pygeodesic grouped, tvb-gdist per vertex).

    All three are exact algorithms, so on a curved two-layer mesh the kernels agree to rounding
    (observed: <= 1e-15 on the weights; distances to 2e-13 mm on a 28,609-vertex S1 layer).
    """
    pytest.importorskip("pygeodesic")
    v, f = _grid(20, spacing=1.3)
    v[:, 2] = 2.0 * np.sin(v[:, 0] / 3.0) * np.cos(v[:, 1] / 4.0)  # curved: geodesic > chord
    vv = np.r_[v, v + [0.0, 0.0, 3.0]]
    ff = np.r_[f, f + len(v)]
    a = geodesic_kernel(vv, ff, 4.0, n_layers=2, use_cache=False, backend="gdist")
    b = geodesic_kernel(vv, ff, 4.0, n_layers=2, use_cache=False, backend="pygeodesic")
    c = geodesic_kernel(vv, ff, 4.0, n_layers=2, use_cache=False, n_jobs=1)
    assert a.nnz == b.nnz == c.nnz
    assert abs(a - b).max() < 1e-12
    assert abs(c - b).max() < 1e-12
    d = geodesic_kernel(vv, ff, 4.0, n_layers=2, use_cache=False, n_jobs=2)
    assert abs(d - c).max() == 0  # processes change nothing
    with pytest.raises(LamegValueError):
        geodesic_kernel(vv, ff, 4.0, n_layers=2, use_cache=False, backend="nope")


def test_green_kernel_small_mesh():
    v, f = _grid(6)
    qg = green_kernel(f, len(v), 0.6)
    assert abs(qg - qg.T).max() < 1e-14  # symmetric (topology only)
    assert qg.diagonal().min() > 0
    with pytest.raises(LamegValueError):
        green_kernel(f, len(v), 1.5)


def test_green_kernel_ignores_self_loops_of_degenerate_faces():
    """A face that repeats a vertex puts a self-loop in the shared mesh adjacency; the graph
    Laplacian ``A - diag(A 1)`` cancels it, so the kernel equals the one built from the
    adjacency without its diagonal (SPM's Laplacian). Exact: integer sums, same operations."""
    v, f = _grid(6)
    f = np.r_[f, [[3, 3, 9]]]  # degenerate face: self-loop at 3, edge 3-9
    a = sp.coo_matrix((np.ones(3 * len(f)), (f.ravel(), f[:, [1, 2, 0]].ravel())),
                      shape=(len(v), len(v))).tocsr()
    a = a + a.T
    a.data[:] = 1.0
    a.setdiag(0)
    a.eliminate_zeros()
    gl = ((a - sp.diags(np.asarray(a.sum(axis=1)).ravel())) * 0.3).tocsr()
    qi, ref = sp.identity(len(v), format="csr"), sp.csr_matrix((len(v), len(v)))
    for i in range(1, 9):
        ref, qi = ref + qi, (qi @ gl) / i
    ref = ref.multiply(ref > np.exp(-8)).tocsr()
    ref = ref @ ref
    qg = green_kernel(f, len(v), 0.6)
    assert abs(qg - ref).max() == 0


def test_windows_follow_spm():
    assert matlab_colon(1.0, 3.0).tolist() == [1.0, 2.0, 3.0]
    assert matlab_colon(1.5, 3.2).tolist() == [1.5, 2.5]
    assert matlab_colon(3.0, 1.0).size == 0
    t = (np.arange(100) - 30) / 600
    # sub-ms windows collapse onto integers (SPM's fix), edges are clipped to the epoch
    np.testing.assert_array_equal(truncate_woi([[-60, 10.7], [0.4, 99.9]], t),
                                  [[-50, 10], [0, 99]])
    it = woi_samples([-50, 115], t, 600.0)
    np.testing.assert_array_equal(it, np.arange(100))
    it = woi_samples([0, 100], t, 600.0)
    assert it[0] == 30 and it[-1] == 90
    with pytest.raises(LamegDataError):
        woi_samples([0, 1], t, 600.0)
