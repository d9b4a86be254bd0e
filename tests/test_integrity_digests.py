"""Integrity digests (XXH3-128, with BLAKE2b-128 files of earlier versions still verified) and
the size-dependent compression of MAT-5 headers."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import scipy.io as sio

from lameg import _cache
from lameg._utils import DIGEST_PREFIX, digest_file
from lameg.io.matfile import COMPRESS_LIMIT_BYTES, load_mat, save_mat


def test_file_digest_schemes(tmp_path):
    import xxhash

    data = np.random.default_rng(0).bytes(3 * 2**20 + 17)  # spans several read blocks
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    new = digest_file(path)
    assert new == DIGEST_PREFIX + xxhash.xxh3_128(data).hexdigest()
    legacy = hashlib.blake2b(data, digest_size=16).hexdigest()
    assert digest_file(path, like=legacy) == legacy          # recomputed in the stored scheme
    assert digest_file(path, like=new) == new


def test_cache_entry_of_the_legacy_scheme_still_verifies(tmp_path):
    arrays = {"G": np.arange(12.0).reshape(3, 4)}
    h = hashlib.blake2b(digest_size=16)                       # the earlier entry format
    h.update(_cache._FORMAT.encode())
    h.update(f"G|{arrays['G'].dtype.str}|{arrays['G'].shape}".encode())
    h.update(arrays["G"].tobytes())
    path = tmp_path / "old.npz"
    np.savez(path, **arrays, **{_cache._CHECKSUM: np.array(h.hexdigest())})
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # no eviction warning
        got = _cache.load_entry(path)
    np.testing.assert_array_equal(got["G"], arrays["G"])
    # a damaged legacy entry is still caught
    np.savez(path, G=arrays["G"] + 1, **{_cache._CHECKSUM: np.array(h.hexdigest())})
    with pytest.warns(RuntimeWarning, match="checksum"):
        assert _cache.load_entry(path) is None
    # new entries carry the new scheme
    assert _cache.save_entry(tmp_path / "new.npz", **arrays)
    with np.load(tmp_path / "new.npz") as z:
        assert str(z[_cache._CHECKSUM]).startswith(DIGEST_PREFIX)


@pytest.mark.parametrize("n_bytes, compressed", [(2**20, True),
                                                  (COMPRESS_LIMIT_BYTES + 2**20, False)])
def test_v7_headers_are_compressed_only_when_small(tmp_path, n_bytes, compressed):
    x = np.random.default_rng(1).standard_normal(n_bytes // 8)
    path = save_mat(tmp_path / "d.mat", {"D": {"M": x.reshape(-1, 8), "name": "d"}}, version="7")
    # MAT-5 element type 15 = miCOMPRESSED (right after the 128-byte file header)
    tag = int(np.frombuffer(path.read_bytes()[128:132], "<u4")[0])
    assert (tag == 15) == compressed
    back = sio.loadmat(path)["D"][0, 0]["M"]
    np.testing.assert_array_equal(back, x.reshape(-1, 8))
    np.testing.assert_array_equal(load_mat(path)["D"]["M"], x.reshape(-1, 8))
