"""All-or-nothing updates of a laminar surface folder (``surf/laminar``).

A new generation of surfaces is written into a staging folder beside ``surf/laminar``
(``surf/.laminar-staging-<token>``); files of the current folder that the new generation does not
rewrite (other layer counts, other orientations, user files) are hard-linked into it; a marker
file beside it (``<staging>.complete``) ends the staging, and the staging folder then **replaces the current one in one step**:

* on Linux, ``renameat2(RENAME_EXCHANGE)`` swaps the two folders atomically;
* elsewhere, the current folder is renamed to ``surf/.laminar-retired-<token>`` and the staging
  folder into its place. A kill between the two renames leaves no ``surf/laminar``; the next
  :class:`~lameg.surf.LayerSurfaceSet` finds the complete staging folder (its marker) and
  finishes the switch, or puts the retired folder back.

So a process killed at any point leaves the old or the new complete set. Leftovers (staging and
retired folders, interrupted atomic writes ``.<name>.<random><suffix>``) are removed by the next
:meth:`~lameg.surf.LayerSurfaceSet.create` (and whenever the folder is found missing). All of
this runs under a lock file ``surf/.laminar.lock`` (the ``filelock`` package), so two writers of
one subject wait for each other instead of deleting each other's staging folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator

from .._utils import logger
from ..exceptions import LamegDataError

__all__ = ["surface_lock", "recover", "staging_folder", "switch_over", "LOCK_TIMEOUT_S"]

STAGING_PREFIX = ".laminar-staging-"
RETIRED_PREFIX = ".laminar-retired-"
LEGACY_PREFIX = ".laminar_tmp_"          # staging folders of earlier versions
COMPLETE_SUFFIX = ".complete"          # marker file beside a finished staging folder
LOCK_NAME = ".laminar.lock"
#: Seconds a writer waits for another writer of the same subject before giving up.
LOCK_TIMEOUT_S = 900.0
# temporary names of lameg._utils.atomic_path: ".<name>.<8 random chars><suffix>"
_ATOMIC_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)+$")


@contextlib.contextmanager
def surface_lock(surf_dir: str | os.PathLike, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the subject's surface lock (``surf/.laminar.lock``).

    Parameters
    ----------
    surf_dir : str or path-like
        The subject's ``surf`` folder.
    timeout : float
        Seconds to wait for another writer.

    Yields
    ------
    None
        While the lock is held.
    """
    from filelock import FileLock, Timeout

    path = os.path.join(os.fspath(surf_dir), LOCK_NAME)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LamegDataError(
            f"the surfaces in {surf_dir} are being written by another process (lock {path} "
            f"held for more than {timeout:g} s); wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def _atomic_leftovers(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names
            if _ATOMIC_TMP.match(n) and os.path.isfile(os.path.join(folder, n))]


def recover(surf_dir: str, laminar_dir: str, extra_dirs: tuple[str, ...] = ()) -> list[str]:
    """Finish or undo an interrupted switch-over and delete what interrupted writes left.

    Call with :func:`surface_lock` held.

    Parameters
    ----------
    surf_dir : str
        The subject's ``surf`` folder.
    laminar_dir : str
        The laminar folder (``surf/laminar``).
    extra_dirs : tuple of str
        Further folders whose interrupted atomic writes are removed (``mri``, ``bem``).

    Returns
    -------
    list of str
        The paths removed.
    """
    try:
        entries = sorted(os.listdir(surf_dir))
    except FileNotFoundError:
        return []
    staging = [os.path.join(surf_dir, e) for e in entries if e.startswith(STAGING_PREFIX)]
    retired = [os.path.join(surf_dir, e) for e in entries if e.startswith(RETIRED_PREFIX)]
    if not os.path.isdir(laminar_dir):
        complete = [s for s in staging if os.path.isdir(s)
                    and os.path.exists(s + COMPLETE_SUFFIX)]
        if complete:
            newest = max(complete, key=lambda s: os.stat(s + COMPLETE_SUFFIX).st_mtime)
            os.rename(newest, laminar_dir)
            staging.remove(newest)
            logger.warning("finished an interrupted update of %s", laminar_dir)
        elif retired:
            newest = max(retired, key=lambda s: os.stat(s).st_mtime)
            os.rename(newest, laminar_dir)
            retired.remove(newest)
            logger.warning("restored %s after an interrupted update", laminar_dir)
    removed = []
    legacy = [os.path.join(surf_dir, e) for e in entries if e.startswith(LEGACY_PREFIX)]
    for d in staging + retired + legacy:
        if os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        elif os.path.exists(d):               # completion markers
            os.unlink(d)
            removed.append(d)
    for folder in (laminar_dir, *extra_dirs):
        for f in _atomic_leftovers(folder):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f)
                removed.append(f)
    if removed:
        logger.info("removed %d leftovers of interrupted writes in %s", len(removed),
                    os.path.dirname(surf_dir))
    return removed


def staging_folder(surf_dir: str) -> str:
    """A new, empty staging folder beside ``surf/laminar``.

    Parameters
    ----------
    surf_dir : str
        The subject's ``surf`` folder.

    Returns
    -------
    str
        Path of the folder (``surf/.laminar-staging-<token>``).
    """
    os.makedirs(surf_dir, exist_ok=True)
    return tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=surf_dir)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically with Linux's ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), a)


def _carry_over(current: str, staging: str) -> None:
    """Hard-link (or copy) the files of ``current`` that ``staging`` does not have."""
    for name in os.listdir(current):
        if _ATOMIC_TMP.match(name):
            continue
        src, dst = os.path.join(current, name), os.path.join(staging, name)
        if os.path.lexists(dst):
            continue
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, dst, symlinks=True)
            continue
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, dst, follow_symlinks=False)


def switch_over(staging: str, laminar_dir: str, *, use_exchange: bool = True) -> None:
    """Make ``staging`` the laminar folder in one step (call with :func:`surface_lock` held).

    Parameters
    ----------
    staging : str
        Complete staging folder (from :func:`staging_folder`).
    laminar_dir : str
        The laminar folder to replace (``surf/laminar``; created if absent).
    use_exchange : bool
        Use the atomic exchange where the system has it (False: the two-rename protocol whose
        interruption :func:`recover` repairs).
    """
    if os.path.isdir(laminar_dir):
        _carry_over(laminar_dir, staging)
    marker = staging + COMPLETE_SUFFIX
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write("complete\n")
        fh.flush()
        os.fsync(fh.fileno())
    surf_dir = os.path.dirname(laminar_dir)
    if not os.path.isdir(laminar_dir):
        os.rename(staging, laminar_dir)
    elif use_exchange and _exchange(staging, laminar_dir):
        shutil.rmtree(staging, ignore_errors=True)          # the old generation
    else:
        retired = tempfile.mkdtemp(prefix=RETIRED_PREFIX, dir=surf_dir)
        os.rmdir(retired)
        os.rename(laminar_dir, retired)
        os.rename(staging, laminar_dir)
        shutil.rmtree(retired, ignore_errors=True)
    os.unlink(marker)
