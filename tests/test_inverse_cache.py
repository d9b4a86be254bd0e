"""In-memory cache of per-gain quantities (:mod:`lameg.inverse.cache`) and its use by the
engines: repeated inversions must give bit-identical results, changed inputs must miss."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lameg.inverse import cache
from lameg.inverse.engine import invert_classic
from lameg.inverse.kernels import green_kernel


@pytest.fixture(autouse=True)
def _fresh_cache():
    limit_mb = cache.cache_info()["limit_bytes"] / 2**20
    cache.clear_cache()
    yield
    cache.set_cache_limit(limit_mb)
    cache.clear_cache()


def test_keys_are_exact_and_values_read_only():
    a = np.arange(12.0).reshape(3, 4)
    b = a.copy()
    b[1, 2] = np.nextafter(b[1, 2], np.inf)  # one ulp
    assert cache.array_key(a) != cache.array_key(b)
    assert cache.array_key(a) == cache.array_key(a.copy())
    assert cache.array_key(a) != cache.array_key(a.T)  # shape and layout of values
    s1 = sp.random(20, 20, density=0.2, random_state=0, format="csr")
    assert cache.array_key(s1) == cache.array_key(s1.tocsc())
    calls = []
    v = cache.cached("k", lambda: calls.append(1) or np.ones(3))
    v2 = cache.cached("k", lambda: calls.append(1) or np.zeros(3))
    assert v2 is v and calls == [1] and not v.flags.writeable
    info = cache.cache_info()
    assert info["hits"] == 1 and info["misses"] == 1 and info["entries"] == 1


def test_limit_evicts_least_recently_used():
    cache.set_cache_limit(1e-3)  # ~1 kB
    cache.cached("a", lambda: np.zeros(60))  # 480 B
    cache.cached("b", lambda: np.zeros(60))
    cache.cached("a", lambda: None)  # touch a
    cache.cached("c", lambda: np.zeros(60))  # evicts b
    assert cache.lookup("b") is None and cache.lookup("a") is not None
    big = cache.cached("big", lambda: np.zeros(1000))  # larger than the limit: not kept
    assert big.shape == (1000,) and cache.lookup("big") is None
    cache.set_cache_limit(0)
    assert cache.cache_info()["entries"] == 0


def _problem(seed=0, nc=12, nd=60, nt=100, ntr=6):
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((nc, nd))
    y = rng.standard_normal((nc, nt, ntr))
    t = (np.arange(nt) - 20) / 200.0
    faces = np.array([[i, i + 1, i + 2] for i in range(nd - 2)])
    return L, y, t, green_kernel(faces, nd, 0.6)


def test_repeated_inversions_hit_the_cache_and_are_identical():
    L, y, t, qg = _problem()
    r1 = invert_classic(L, y, t, inv_type="EBB", QG=qg, fsample=200.0)
    misses = cache.cache_info()["misses"]
    r2 = invert_classic(L, y, t, inv_type="EBB", QG=qg, fsample=200.0)
    assert cache.cache_info()["misses"] == misses  # everything reused
    assert r1.F[0] == r2.F[0]
    np.testing.assert_array_equal(r1.windows[0].M, r2.windows[0].M)
    cache.clear_cache()
    r3 = invert_classic(L, y, t, inv_type="EBB", QG=qg, fsample=200.0)
    assert r3.F[0] == r1.F[0]  # recomputed: same bits
    # a different lead field misses and gives another answer
    L2 = L.copy()
    L2[0, 0] += 1.0
    r4 = invert_classic(L2, y, t, inv_type="EBB", QG=qg, fsample=200.0)
    assert r4.F[0] != r1.F[0]
    # non-finite lead fields are still rejected (the check is cached with the key)
    L2[1, 1] = np.nan
    with pytest.raises(ValueError):
        invert_classic(L2, y, t, inv_type="EBB", QG=qg, fsample=200.0)


def test_green_kernel_is_cached_per_topology():
    _, _, _, qg = _problem()
    faces = np.array([[i, i + 1, i + 2] for i in range(58)])
    q2 = green_kernel(faces, 60, 0.6)
    assert abs(q2 - qg).max() == 0
    q2.data[:] = 0  # callers get a copy
    assert abs(green_kernel(faces, 60, 0.6) - qg).max() == 0
    assert abs(green_kernel(faces, 60, 0.5) - qg).max() > 0


def test_lead_gram_svd_of_large_lead_fields_is_kept_on_disk(monkeypatch, tmp_path):
    """Full-resolution lead fields keep the SVD of L L' in the verified disk cache: a new
    process (emulated by clearing the memory cache) reads the same values; a damaged entry is
    evicted with a warning and recomputed."""
    from lameg.inverse import modes

    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(modes, "DISK_CACHE_MIN_BYTES", 0)
    L = np.random.default_rng(3).standard_normal((20, 300))
    cache.clear_cache()
    U1, s1 = modes.lead_gram_svd(L)
    files = list((tmp_path / "inverse").glob("lead_gram_svd_*.npz"))
    assert len(files) == 1
    cache.clear_cache()
    U2, s2 = modes.lead_gram_svd(L)
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(s1, s2)
    files[0].write_bytes(files[0].read_bytes()[:-40] + bytes(40))
    cache.clear_cache()
    with pytest.warns(RuntimeWarning, match="cache entry"):
        U3, s3 = modes.lead_gram_svd(L)
    np.testing.assert_allclose(s3, s1, rtol=1e-12)  # recomputed, same values
    cache.clear_cache()


def test_keys_of_column_major_arrays():
    """Column-major arrays are hashed as they lie: stable, sensitive to every element, and
    distinct from the row-major copy (a cache miss, never a wrong hit)."""
    a = np.asfortranarray(np.random.default_rng(5).standard_normal((7, 300)))
    k = cache.array_key(a)
    assert k == cache.array_key(np.asfortranarray(a.copy()))
    b = a.copy(order="F")
    b[6, 299] += 1e-12
    assert cache.array_key(b) != k
    assert cache.array_key(np.ascontiguousarray(a)) != k
    v = np.arange(5.0)  # 1-D: both layouts at once, hashed as row-major
    assert cache.array_key(v) == cache.array_key(v.copy(order="F"))
