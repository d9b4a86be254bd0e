"""In-memory cache of per-(gain, mesh) quantities shared by repeated inversions.

Model comparisons invert the same data with one gain matrix per layer, sliding-window
analyses invert many windows with the same gain, and simulation sweeps invert many data sets
with the same gain and kernel. The quantities that depend only on the lead field ``L``, the
spatial projector ``A`` and the smoothing kernel ``QG`` (``L L'`` and its SVD, the spatial
modes, ``UL = A L``, the smoothed lead fields ``UL QG``) are therefore computed once and kept
in a small least-recently-used cache, keyed by a 128-bit hash (XXH3) of the arrays' bytes (exact: a
changed array never hits a stale entry).

The cache holds at most ``LAMEG_INVERSE_CACHE_MB`` megabytes (default 2048); entries larger
than that are computed but not kept. Cached arrays are returned read-only.
:func:`clear_cache` empties it and :func:`set_cache_limit` changes the limit.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._utils import content_hasher

__all__ = ["array_key", "cached", "lookup", "store", "clear_cache", "set_cache_limit",
           "cache_info"]

_LOCK = threading.RLock()
_STORE: OrderedDict[str, tuple[Any, int]] = OrderedDict()
_LIMIT = [int(float(os.environ.get("LAMEG_INVERSE_CACHE_MB", "2048")) * 2**20)]
_STATS = {"hits": 0, "misses": 0}


def _update_array(h, a: np.ndarray) -> None:
    # column-major arrays (MATLAB's layout: lead fields mapped from gain files) are hashed as
    # they lie, with the layout in the key: equal values in the other layout only miss the
    # cache, and no gain-sized copy is made to hash them
    a = np.asarray(a)
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        h.update(f"{a.dtype.str}{a.shape}F".encode())
        h.update(memoryview(a.T).cast("B"))
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    if a.size:
        h.update(memoryview(a).cast("B"))


def array_key(*items, extra: str = "") -> str:
    """XXH3-128 content key of arrays (dense or sparse), strings and numbers.

    Parameters
    ----------
    *items : ndarray, scipy.sparse matrix, str, int, float or None
        What the cached value depends on.
    extra : str
        Additional text (e.g. the name of the quantity).

    Returns
    -------
    str
        Hex digest.
    """
    h = content_hasher()
    for it in items:
        if it is None:
            h.update(b"<none>")
        elif sp.issparse(it):
            c = sp.csc_matrix(it)
            c.sort_indices()
            h.update(f"sparse{c.shape}".encode())
            for part in (c.indptr.astype(np.int64), c.indices.astype(np.int64),
                         c.data.astype(np.float64)):
                _update_array(h, part)
        elif isinstance(it, (str, int, float, np.integer, np.floating)):
            h.update(f"<{type(it).__name__}:{it!r}>".encode())
        else:
            _update_array(h, np.asarray(it))
    h.update(extra.encode())
    return h.hexdigest()


def _nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if sp.issparse(value):
        c = value.tocsc() if not hasattr(value, "indptr") else value
        return int(c.data.nbytes + c.indices.nbytes + c.indptr.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 64


def _freeze(value):
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _freeze(v)
    return value


def lookup(key: str) -> Any:
    """Look a value up in the cache.

    Parameters
    ----------
    key : str
        Content key (see :func:`array_key`).

    Returns
    -------
    object or None
        The cached value (arrays read-only), or None when ``key`` is not cached.
    """
    with _LOCK:
        if key in _STORE:
            _STORE.move_to_end(key)
            _STATS["hits"] += 1
            return _STORE[key][0]
    return None


def store(key: str, value: Any) -> Any:
    """Keep ``value`` under ``key`` (ndarrays made read-only; too large values are not kept).

    Least recently used entries are evicted until the cache fits its limit again.

    Parameters
    ----------
    key : str
        Content key (see :func:`array_key`).
    value : object
        Value to keep; ndarrays in it (also inside tuples and lists) are made read-only.

    Returns
    -------
    object
        ``value`` itself, frozen.
    """
    value = _freeze(value)
    size = _nbytes(value)
    with _LOCK:
        _STATS["misses"] += 1
        if size <= _LIMIT[0]:
            _STORE[key] = (value, size)
            _STORE.move_to_end(key)
            total = sum(s for _, s in _STORE.values())
            while total > _LIMIT[0] and len(_STORE) > 1:
                _, (_, s) = _STORE.popitem(last=False)
                total -= s
    return value


def cached(key: str, compute: Callable[[], Any]) -> Any:
    """Return the cached value of ``key``, computing (and storing) it on a miss.

    Parameters
    ----------
    key : str
        Content key (see :func:`array_key`).
    compute : callable
        Called without arguments on a miss; its ndarrays are made read-only.

    Returns
    -------
    object
        The cached or newly computed value (ndarrays read-only).
    """
    with _LOCK:
        if key in _STORE:
            _STORE.move_to_end(key)
            _STATS["hits"] += 1
            return _STORE[key][0]
    return store(key, compute())


def clear_cache() -> None:
    """Drop every cached quantity."""
    with _LOCK:
        _STORE.clear()
        _STATS.update(hits=0, misses=0)


def set_cache_limit(megabytes: float) -> None:
    """Set the cache size limit and evict what no longer fits.

    Parameters
    ----------
    megabytes : float
        New limit, MB (2**20 bytes); 0 (or a negative value) disables caching.
    """
    with _LOCK:
        _LIMIT[0] = int(max(0.0, float(megabytes)) * 2**20)
        total = sum(s for _, s in _STORE.values())
        while _STORE and total > _LIMIT[0]:
            _, (_, s) = _STORE.popitem(last=False)
            total -= s


def cache_info() -> dict:
    """Entries, bytes held, limit, hits and misses of the cache.

    Returns
    -------
    dict
        ``entries`` (int), ``bytes`` held (int), ``limit_bytes`` (int), ``hits`` and
        ``misses`` (int, since the last :func:`clear_cache`).
    """
    with _LOCK:
        return {"entries": len(_STORE), "bytes": sum(s for _, s in _STORE.values()),
                "limit_bytes": _LIMIT[0], **_STATS}
