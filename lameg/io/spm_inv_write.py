"""Writing SPM's stored head models and inversions (``D.other.inv{k}``): one transaction each.

Under a per-dataset lock, the gain file is written first under a content-addressed name, the
header -- which records the gain file's name, size, hash and time stamp -- is renamed into place
last (the commit point), then files no longer referenced and debris of interrupted writes are
removed. Reading is :mod:`lameg.io.spm_inv`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from .._utils import content_hasher, digest_file
from ..exceptions import LamegDataError, LamegValueError
from .spm_gainmat import GainFileMap
from .spm_inv import (
    _GAIN_RE,
    _VERIFIED,
    LOCK_TIMEOUT_S,
    HeadModel,
    _first,
    _float,
    _load,
    _str,
    gain_file_name,
    read_inverse,
)

__all__ = ["dataset_lock", "write_head_model", "head_model_writer", "PendingHeadModel",
           "write_inverse", "adopt_gain_files",
           "write_window_operator_files"]


# ---------------------------------------------------------------------------------------------
# Writing: one transaction per update
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def dataset_lock(fname: str | os.PathLike, timeout: float | None = None) -> Iterator[None]:
    """Hold the per-dataset write lock (``.<name>.lock`` beside the header).

    Writers of the same dataset (``coregister``, inversions, model comparisons) take it around
    their read-modify-write of the header, so a second writer waits for the first and its
    update is applied to the first one's result instead of overwriting it.

    Parameters
    ----------
    fname : path-like
        The dataset header.
    timeout : float or None
        Seconds to wait (default ``$LAMEG_LOCK_TIMEOUT`` or 600).
    """
    from filelock import FileLock, Timeout

    path = Path(fname).resolve()
    lock = FileLock(str(path.parent / f".{path.name}.lock"))
    t = LOCK_TIMEOUT_S if timeout is None else float(timeout)
    try:
        lock.acquire(timeout=t)
    except Timeout:
        raise LamegDataError(
            f"{path.name} is being written by another process (lock {lock.lock_file} held for "
            f"more than {t:g} s); wait for it to finish, or raise LAMEG_LOCK_TIMEOUT") from None
    try:
        yield
    finally:
        lock.release()


def _cleanup(meeg, keep: Path | None = None) -> None:
    """Remove gain and laMEG window files no entry references, and interrupted writes' temporaries.

    Called with the dataset lock held, so no other lameg writer of this dataset is mid-write;
    ``keep`` is this writer's own gain file in progress.
    """
    folder = meeg.path
    stem = meeg.fname.stem
    referenced, windows = set(), set()
    for entry in meeg.inv:
        name = _str(entry.get("gainmat")) or _str((_first(entry.get("forward")) or {})
                                                   .get("gainmat"))
        if name:
            referenced.add(Path(name.replace("\\", "/")).name)
        files = (_first(entry.get("inverse")) or {}).get("M_win_files")
        if files is not None:
            windows.update(Path(f.replace("\\", "/")).name for f in _as_names(files))
    for p in folder.glob(f"SPMgainmatrix_{stem}_*.mat"):
        m = _GAIN_RE.match(p.name)
        if m and m.group("base") == stem and m.group("hash") and p.name not in referenced:
            p.unlink(missing_ok=True)
    for p in folder.glob(f"{stem}_inv*_Mwin*.mat"):
        if _WINDOW_RE.match(p.name) and p.name not in windows:
            p.unlink(missing_ok=True)
    for name in (meeg.fname.name, f"SPMgainmatrix_{stem}_", f"{stem}_inv"):
        for p in folder.glob(f".{name}*.tmp"):
            if keep is None or p.name != keep.name:
                p.unlink(missing_ok=True)


class PendingHeadModel:
    """A head model being written (see :func:`head_model_writer`): fill ``gain``, then commit.

    Parameters
    ----------
    meeg : lameg.io.spm_meeg.MEEG
        The dataset (its lock held by the caller).
    channels : sequence of str
        Row labels of the gain.
    n_sources : int
        Number of sources (columns of the gain).

    Attributes
    ----------
    gain : ndarray, shape (n_channels, n_sources)
        Column-major and initially zero: a writable map of the new gain file when the gain fits
        a MAT-5 file (below 2 GB; POSIX systems), else an array in memory written at
        :meth:`commit`; read-only once committed.
    """

    def __init__(self, meeg, channels: Sequence[str], n_sources: int) -> None:
        self._meeg = meeg
        self.channels = [str(c) for c in channels]
        self._map = None
        self._committed = False
        # POSIX only: Windows cannot rename a file that is still mapped
        if os.name == "posix" and GainFileMap.fits(len(self.channels), n_sources):
            # named as the debris of an interrupted write, so a crash leaves nothing behind
            # that the next writer's cleanup does not remove; created by GainFileMap (with the
            # umask's permissions)
            tmp = meeg.path / f".SPMgainmatrix_{meeg.fname.stem}_{secrets.token_hex(8)}.tmp"
            try:
                self._map = GainFileMap(tmp, self.channels, n_sources)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.gain = self._map.G
        else:
            self.gain = np.zeros((len(self.channels), int(n_sources)), order="F")

    def commit(self, inversion_idx: int, entry: Mapping) -> HeadModel:
        """Store the head model as ``D.other.inv{inversion_idx + 1}`` (see :func:`write_head_model`).

        Parameters
        ----------
        inversion_idx : int
            0-based index, at most the current number of entries (then the entry is appended).
        entry : dict
            ``mesh``, ``datareg``, ``forward``, ... in SPM's layout (``gainmat`` is filled here).

        Returns
        -------
        HeadModel
            The stored head model.
        """
        from .spm_meeg import load_meeg

        if self._committed:
            raise LamegValueError("this head model was already committed")
        meeg = load_meeg(self._meeg.fname)  # re-read under the lock: another writer may have run
        invs = [dict(v) for v in meeg.inv]
        k = int(inversion_idx)
        if not 0 <= k <= len(invs):
            raise LamegValueError(
                f"inversion_idx={k}: {meeg.fname.name} has {len(invs)} head model(s); use an "
                f"index between 0 and {len(invs)}")
        own = self._map.path if self._map is not None else None
        _cleanup(meeg, keep=own)
        name, size, digest, mtime = self._store_gain(meeg, k, invs[k] if k < len(invs) else None)
        new = dict(entry)
        new.pop("inverse", None)
        new["gainmat"] = name
        new["gainmat_bytes"] = float(size)
        new["gainmat_hash"] = digest
        new["gainmat_mtime_ns"] = str(mtime)  # text: a double cannot hold ns since 1970 exactly
        fwd = dict(_first(new.get("forward")) or {})
        fwd["gainmat"] = name
        new["forward"] = fwd
        if k == len(invs):
            invs.append(new)
        else:
            invs[k] = new
        meeg.save_inv(invs, val=k + 1)  # the commit point
        self._committed = True
        self.gain.flags.writeable = False  # the map is the committed file now
        _cleanup(meeg)
        return HeadModel(meeg.fname, k, new)

    def _store_gain(self, meeg, inversion_idx: int, current: Mapping | None
                    ) -> tuple[str, int, str, int]:
        """Put the gain file in place under a content-addressed name; (name, size, digest, mtime).

        A file of that name is the committed gain of the same content (unreferenced ones were
        removed by :func:`_cleanup`): when it verifies against the header it is kept as it is --
        rewriting it would change its bytes (MAT headers carry a time stamp) under a header that
        still records the old ones, and a crash in between would leave a mismatch.
        """
        from .spm_meeg import write_gainmat

        G = self.gain
        if self._map is not None:
            self._map.finish()  # checks the values are finite
        key = content_hasher()
        # the column-major bytes (as stored in the file): no copy of a Fortran-ordered gain
        key.update(np.ascontiguousarray(G.T).view(np.uint8))
        key.update("\n".join(self.channels).encode())
        name = gain_file_name(meeg, inversion_idx, key.hexdigest())
        path = meeg.path / name
        if current and _str(current.get("gainmat")) == name and path.is_file():
            try:
                HeadModel(meeg.fname, inversion_idx, dict(current))._verify_gain(path)
                return (name, int(_float(current.get("gainmat_bytes"), -1)),
                        _str(current.get("gainmat_hash")),
                        int(_str(current.get("gainmat_mtime_ns")) or 0))
            except (LamegDataError, ValueError, OSError):
                pass  # damaged: replaced below
        if self._map is not None:
            os.replace(self._map.path, path)
        else:  # in memory: MAT-5 below 2 GB, HDF5-based v7.3 beyond
            write_gainmat(path, G, self.channels, version="6" if GainFileMap.fits(*G.shape)
                          else "7.3")
        st = path.stat()
        digest = digest_file(path)
        _VERIFIED[(str(path), st.st_size, st.st_mtime_ns, st.st_ino)] = digest
        return name, int(st.st_size), digest, int(st.st_mtime_ns)

    def _discard(self) -> None:
        if self._map is not None:
            self._map.path.unlink(missing_ok=True)  # no-op once renamed into place


@contextlib.contextmanager
def head_model_writer(dataset, channels: Sequence[str], n_sources: int
                      ) -> Iterator[PendingHeadModel]:
    """Write a head model whose gain is computed in place, as one transaction.

    Under the dataset lock, a new gain file is created and its matrix handed out
    (``pending.gain``) to be filled -- e.g. as ``out`` of :func:`lameg.forward.compute_gain`, so
    that a full-resolution gain is never copied; ``pending.commit(inversion_idx, entry)`` then
    names the file by its content, renames it into place and stores the header (the commit
    point). Leaving the block without committing removes the file; an interrupted process leaves
    a temporary that the next writer of the dataset removes.

    Parameters
    ----------
    dataset : path-like or MEEG
        The dataset header; its ``.dat`` is never touched.
    channels : sequence of str
        Row labels of the gain.
    n_sources : int
        Number of sources (columns of the gain).

    Yields
    ------
    PendingHeadModel
        ``gain`` to fill (SPM's conditioned units, i.e. physical units x ``forward.scale``) and
        ``commit``.
    """
    meeg = _load(dataset)
    if int(n_sources) < 0:
        raise LamegValueError(f"n_sources must be >= 0, got {n_sources}")
    with dataset_lock(meeg.fname):
        pending = PendingHeadModel(meeg, channels, int(n_sources))
        try:
            yield pending
        finally:
            pending._discard()


def write_head_model(dataset, inversion_idx: int, entry: Mapping, gain: np.ndarray,
                     channels: Sequence[str]) -> HeadModel:
    """Store a head model and its gain matrix as ``D.other.inv{inversion_idx + 1}``.

    One transaction: the gain file is written first (content-addressed name), the header
    recording its name, size and hash is renamed into place last, then unreferenced gain files
    and debris of interrupted writes are removed; all under the dataset lock. Any inversion
    previously stored at that index is replaced (it belonged to the old head model). To compute
    a gain straight into its file, use :func:`head_model_writer`.

    Parameters
    ----------
    dataset : path-like or MEEG
        The dataset header; its ``.dat`` is never touched.
    inversion_idx : int
        0-based index, at most the current number of entries (then the entry is appended).
    entry : dict
        ``mesh``, ``datareg``, ``forward``, ... in SPM's layout (``gainmat`` is filled here).
    gain : ndarray, shape (n_channels, n_sources)
        The stored gain (SPM's conditioned units, i.e. physical units x ``forward.scale``).
    channels : sequence of str
        Row labels of ``gain``.

    Returns
    -------
    HeadModel
        The stored head model.
    """
    gain = np.asarray(gain, dtype=float)
    if gain.ndim != 2 or gain.shape[0] != len(channels):
        raise LamegValueError(f"gain must be (n_channels, n_sources) with one row per channel; "
                              f"got {gain.shape} and {len(channels)} channels")
    with head_model_writer(dataset, channels, gain.shape[1]) as pending:
        pending.gain[...] = gain
        return pending.commit(inversion_idx, entry)


def adopt_gain_files(dataset, source_dir: str | os.PathLike | None = None) -> None:
    """Give a dataset its own links to the gain files its header borrowed from another dataset.

    A clone (e.g. a simulation written from a template) copies the template's head models,
    whose gain files are named after the template; when the template is co-registered again its
    old gain file is removed. The clone therefore gets a hard link (a copy where links are not
    possible) named after itself, and its header is updated, so it stays self-contained.
    laMEG window files (``inverse.M_win_files``, see :func:`write_window_operator_files`)
    belong to the dataset they were written for and are removed with its next inversion: the
    clone drops the reference (lameg reads the factored windows; export them again for laMEG).

    Parameters
    ----------
    dataset : path-like or MEEG
        The dataset (header) to make self-contained.
    source_dir : path-like, optional
        Folder of the dataset it was cloned from, where the borrowed gain files are when the
        clone was written to another folder (default: the clone's own folder).
    """
    import shutil

    from .spm_meeg import load_meeg

    meeg0 = _load(dataset)
    with dataset_lock(meeg0.fname):
        meeg = load_meeg(meeg0.fname)
        invs = [dict(v) for v in meeg.inv]
        changed = False
        for k, entry in enumerate(invs):
            name = _str(entry.get("gainmat"))
            if not name:
                continue
            base = Path(name.replace("\\", "/")).name
            own = base.startswith(f"SPMgainmatrix_{meeg.fname.stem}_")
            src = meeg.path / base
            if own and src.is_file():
                continue
            if not src.is_file() and source_dir is not None:
                src = Path(source_dir) / base
            if not src.is_file():
                continue
            m = _GAIN_RE.match(src.name)
            new_name = base if own else gain_file_name(
                meeg, k, m.group("hash") if m and m.group("hash") else digest_file(src))
            dst = meeg.path / new_name
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
            fwd = dict(_first(entry.get("forward")) or {})
            fwd["gainmat"] = new_name
            invs[k] = dict(entry, gainmat=new_name, forward=fwd)
            changed = True
        for k, entry in enumerate(invs):
            inverse = _first(entry.get("inverse"))
            if isinstance(inverse, Mapping) and "M_win_files" in inverse:
                inverse = {f: v for f, v in inverse.items()
                           if f not in ("M_win_files", "M_win_variable")}
                invs[k] = dict(entry, inverse=inverse)
                changed = True
        if changed:
            meeg.save_inv(invs)


def _as_names(files) -> list[str]:
    if isinstance(files, str):
        return [files]
    return [str(_first(f)) for f in np.asarray(files, dtype=object).ravel()]


_WINDOW_RE = re.compile(r".+_inv\d+_Mwin\d{3,}\.mat$")


def write_window_operator_files(dataset, inversion_idx: int = 0) -> list[Path]:
    """Write a sliding-window inversion's per-window operators as laMEG 0.2.1 stores them.

    lameg stores the windows of a sliding-window inversion factored (a few megabytes); laMEG
    0.2.1's readers know only its own layouts and, without them, read the first window's ``M``
    for every window. This writes one MATLAB v7.3 file per window next to the dataset,
    ``<name>_inv<k>_Mwin<NNN>.mat`` holding ``M_window`` (sources x spatial modes), and records
    them in the inversion as laMEG does (``inverse.M_win_files``, ``M_win_variable``); the
    factored storage stays and lameg keeps reading it. Each file is as large as a
    single-window ``M``. The files are written before the header that references them, under
    the dataset lock; files no inversion references any more (the inversion was replaced, or
    a write was interrupted) are removed by the next write.

    Parameters
    ----------
    dataset : path-like or lameg.io.spm_meeg.MEEG
        The dataset header.
    inversion_idx : int
        0-based index of a sliding-window inversion.

    Returns
    -------
    list of Path
        The window files, in window order.

    Raises
    ------
    LamegValueError
        If the inversion is not a sliding-window inversion.
    """
    from .matfile import MatCell, save_mat
    from .spm_meeg import load_meeg

    fname = dataset.fname if hasattr(dataset, "fname") else Path(dataset)
    with dataset_lock(fname):
        meeg = load_meeg(fname)
        k = int(inversion_idx)
        inv = read_inverse(meeg, k)
        if not inv.is_windowed:
            raise LamegValueError(
                f"{meeg.fname.name}: inversion {k} is not a sliding-window inversion (its "
                "single operator is inverse.M, which laMEG reads already)")
        names = [f"{meeg.fname.stem}_inv{k + 1}_Mwin{w + 1:03d}.mat"
                 for w in range(inv.n_windows)]
        for w, name in enumerate(names):
            save_mat(meeg.path / name, {"M_window": inv.window_M(w)}, version="7.3")
        invs = [dict(v) for v in meeg.inv]
        entry = dict(invs[k])
        inverse = dict(_first(entry["inverse"]))
        inverse["M_win_files"] = MatCell.column(names)
        inverse["M_win_variable"] = "M_window"
        invs[k] = dict(entry, inverse=inverse)
        meeg.save_inv(invs)
        _cleanup(meeg)
    return [meeg.path / n for n in names]


def write_inverse(head_model: HeadModel, inverse: Mapping) -> None:
    """Store an inversion with the head model it was computed from.

    Under the dataset lock the header is re-read, the head model at ``head_model.index`` is
    checked to be the one the inversion used (a concurrent ``coregister`` makes the inversion
    stale: an error, not a silent mix), and only that entry's ``inverse`` is replaced, so
    inversions written concurrently at other indices are kept.

    Parameters
    ----------
    head_model : HeadModel
        The head model the inversion used (from :func:`read_head_model`).
    inverse : dict
        SPM's ``inverse`` struct.
    """
    from .spm_meeg import load_meeg

    with dataset_lock(head_model.dataset):
        meeg = load_meeg(head_model.dataset)
        k = head_model.index
        invs = [dict(v) for v in meeg.inv]
        if k >= len(invs):
            raise LamegDataError(
                f"{meeg.fname.name}: the head model at inversion_idx={k} was removed while "
                "the inversion ran; re-run coregister and the inversion")
        cur = invs[k]
        same = (_str(cur.get("gainmat")) == head_model.gain_name
                and _str(cur.get("gainmat_hash")) == _str(head_model.entry.get("gainmat_hash")))
        if not same:
            raise LamegDataError(
                f"{meeg.fname.name}: the head model at inversion_idx={k} was replaced (by a "
                "concurrent coregister?) while the inversion ran; its result was not stored. "
                "Re-run the inversion")
        invs[k] = dict(cur, inverse=dict(inverse), method="Imaging")
        meeg.save_inv(invs, val=k + 1)
        _cleanup(meeg)
