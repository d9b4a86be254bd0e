"""The on-disk cache: one location policy, verified entries.

Every cache lives in ``<root>/<kind>`` where ``<root>`` is ``$LAMEG_CACHE_DIR`` or
``~/.cache/lameg`` and ``<kind>`` names what is stored (``gain`` blocks of lead fields,
geodesic ``kernels``, prepared ``spm`` trees, ...). Entries are ``.npz`` files written atomically
with a BLAKE2 checksum of their arrays; a reader recomputes it, and an entry that does not match
(truncated, bit-flipped, written by another version) is reported with a warning, deleted and
recomputed by the caller, never used. :func:`clear_cache` empties one kind or all of them.
"""

from __future__ import annotations

import os
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._utils import IntegrityDigest, atomic_path, logger

__all__ = ["cache_root", "cache_dir", "load_entry", "save_entry", "load_sparse_entry",
           "save_sparse_entry", "clear_cache"]

_CHECKSUM = "__lameg_checksum__"
_FORMAT = "lameg-cache-v1"


def cache_root() -> Path:
    """The cache root: ``$LAMEG_CACHE_DIR`` or ``~/.cache/lameg``.

    Returns
    -------
    Path
        The folder (not created).
    """
    env = os.environ.get("LAMEG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lameg"


def cache_dir(kind: str, override: str | os.PathLike | None = None) -> Path:
    """The folder of one kind of cache entry.

    Parameters
    ----------
    kind : str
        Sub-folder name (``'gain'``, ``'kernels'``, ``'spm'``, ...).
    override : path-like or None
        An explicit folder given by the caller (used as is).

    Returns
    -------
    Path
        The folder (not created).
    """
    return Path(override) if override is not None else cache_root() / kind


def _checksum(arrays: dict[str, np.ndarray], like: str | None = None) -> str:
    h = IntegrityDigest(like)
    h.update(_FORMAT.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        if a.size:
            h.update(memoryview(a).cast("B"))
    return h.digest()


def _evict(path: Path, why: str) -> None:
    warnings.warn(f"cache entry {path} is {why}; it was removed and will be recomputed",
                  RuntimeWarning, stacklevel=3)
    try:
        path.unlink()
    except OSError as err:
        logger.warning("could not remove corrupted cache entry %s: %s", path, err)


def load_entry(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read and verify a cache entry.

    Parameters
    ----------
    path : path-like
        The entry (``.npz``).

    Returns
    -------
    dict of str to ndarray or None
        The arrays, or None when the entry is absent or failed verification (then it has been
        deleted and a ``RuntimeWarning`` issued).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        _evict(path, f"unreadable ({type(err).__name__})")
        return None
    stored = arrays.pop(_CHECKSUM, None)
    if stored is None or str(stored) != _checksum(arrays, like=str(stored)):
        _evict(path, "corrupted (checksum mismatch)")
        return None
    return arrays


def save_entry(path: str | os.PathLike, **arrays: np.ndarray) -> bool:
    """Write a cache entry atomically with its checksum.

    Parameters
    ----------
    path : path-like
        The entry (``.npz``).
    **arrays : ndarray
        What to store.

    Returns
    -------
    bool
        False when the cache folder is not writable (a read-only cache is not an error).
    """
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays, **{_CHECKSUM: np.array(_checksum(arrays))})
    except OSError as err:
        logger.warning("could not write cache entry %s: %s", path, err)
        return False
    return True


def load_sparse_entry(path: str | os.PathLike) -> sp.csc_matrix | None:
    """Read and verify a cache entry holding one sparse matrix.

    Parameters
    ----------
    path : path-like
        The entry.

    Returns
    -------
    scipy.sparse.csc_matrix or None
    """
    z = load_entry(path)
    if z is None:
        return None
    try:
        return sp.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    except (KeyError, ValueError):
        _evict(Path(path), "not a sparse-matrix entry")
        return None


def save_sparse_entry(path: str | os.PathLike, matrix) -> bool:
    """Write a sparse matrix as a verified cache entry.

    Parameters
    ----------
    path : path-like
        The entry.
    matrix : scipy.sparse matrix
        The matrix (stored as CSC).

    Returns
    -------
    bool
        False when the cache folder is not writable.
    """
    m = sp.csc_matrix(matrix)
    return save_entry(path, data=m.data, indices=m.indices, indptr=m.indptr,
                      shape=np.asarray(m.shape))


def clear_cache(kind: str | None = None) -> int:
    """Empty the on-disk cache (and the in-memory inversion cache).

    Parameters
    ----------
    kind : str or None
        One kind (``'gain'``, ``'kernels'``, ...) or None for every kind.

    Returns
    -------
    int
        Number of files removed.
    """
    from .inverse.cache import clear_cache as clear_memory

    clear_memory()
    root = cache_root()
    folders = [root / kind] if kind is not None else ([p for p in root.iterdir() if p.is_dir()]
                                                      if root.is_dir() else [])
    n = 0
    for folder in folders:
        if folder.is_dir():
            n += sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
    return n
