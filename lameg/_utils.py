"""Small internal helpers shared by all modules: logging, progress bars, atomic writes, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger("lameg")


def progress(iterable: Iterable, verbose: bool = True, **kwargs) -> Iterable:
    """Wrap ``iterable`` in a tqdm progress bar unless ``verbose`` is False."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file lives in the destination folder (same file system, so the
    final :func:`os.replace` is atomic). If the body raises, the temporary file is
    removed and ``path`` is untouched. A replaced file keeps its permission bits (a new one
    gets the umask's); a read-only file is not replaced (:class:`LamegPermissionError`).
    Temporary files are named ``.<name>.<random><suffix>`` so that an interrupted write can be
    recognised and removed later; the body creates the file.
    """
    path = Path(path)
    mode = None
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if not mode & stat.S_IWUSR:
            from .exceptions import LamegPermissionError

            raise LamegPermissionError(
                f"{path} is read-only; lameg does not replace read-only files. Make it "
                f"writable (chmod u+w) if it should be updated")
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name that is not created here: the writer creates the file. (Opening an existing
    # file for writing truncates it, and on ext4 a file truncated to size 0 has all its data
    # written back when it is closed -- a blocking flush per file.)
    suffix = suffix if suffix is not None else path.suffix + ".tmp"
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}{suffix}"
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# Integrity digests (gain files, cache entries) use XXH3-128: ~30x faster than BLAKE2 on the
# gigabyte lead fields of full-resolution models, and ample against accidental damage. Stored
# digests carry this prefix; digests without it are BLAKE2b-128 (files written before).
DIGEST_PREFIX = "xxh3:"


def content_hasher():
    """A new XXH3-128 hasher (``update``/``hexdigest``) for integrity digests."""
    import xxhash

    return xxhash.xxh3_128()


class IntegrityDigest:
    """Incremental integrity digest in the scheme of a stored one (``update``/``digest``).

    New digests are XXH3-128 (``'xxh3:<hex>'``); ``like``, a digest stored without
    :data:`DIGEST_PREFIX`, selects the BLAKE2b-128 of files written before, so it can be checked.
    """

    def __init__(self, like: str | None = None) -> None:
        self._legacy = like is not None and not like.startswith(DIGEST_PREFIX)
        self._h = hashlib.blake2b(digest_size=16) if self._legacy else content_hasher()

    def update(self, data) -> None:
        self._h.update(data)

    def digest(self) -> str:
        return self._h.hexdigest() if self._legacy else DIGEST_PREFIX + self._h.hexdigest()


def digest_file(path: str | os.PathLike, like: str | None = None) -> str:
    """Integrity digest of a file (``'xxh3:<hex>'``), or in the scheme of a stored ``like``.

    Parameters
    ----------
    path : path-like
        The file.
    like : str, optional
        A stored digest: an unprefixed one is recomputed with the legacy BLAKE2b-128.

    Returns
    -------
    str
        The digest, comparable with ``like``.
    """
    h = IntegrityDigest(like)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size:  # hashed where the pages lie: no copies of a gigabyte file
            with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as view:
                h.update(view)
    return h.digest()


def hash_arrays(*arrays, extra: str = "") -> str:
    """Content hash (sha1 hex) of arrays and an optional string, used as a cache key."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    h.update(extra.encode())
    return h.hexdigest()
