"""Prepare an SPM source tree for GNU Octave, once per tree, in lameg's cache.

SPM runs unmodified under Octave once three things are in place, none of which a plain SPM
download provides:

1. SPM's MEX files compiled for Octave (``src/Makefile`` with ``PLATFORM=octave``; the
   ``@file_array``, ``@gifti`` and ``@xmltree`` private MEX files);
2. FieldTrip's ``meg_leadfield1`` and ``routlm`` compiled with ``mkoctfile --mex`` (the Single
   Sphere model has no m-file fallback for ``meg_leadfield1``);
3. a ``convertStringsToChars`` function, which FieldTrip calls and Octave 7 lacks (an identity
   shim on the path).

:func:`prepare_spm_tree` copies (or unpacks) the user's SPM folder or archive into
``$LAMEG_CACHE_DIR/spm/<name>-<key>/spm`` and builds there, so the user's folder is never
modified. The key hashes the source's location and a fingerprint of its content, so an
updated SPM gets a new copy. A marker file records a completed build; concurrent processes
wait on a lock instead of building twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .._utils import logger
from ..exceptions import LamegFileNotFoundError, LamegValueError
from .errors import SPMSetupError

__all__ = ["PreparedTree", "prepare_spm_tree", "spm_cache_root", "resolve_spm_source",
           "find_octave", "SPM_DIR_ENV"]

#: Environment variable naming the SPM folder (or archive) used by the Octave engine.
SPM_DIR_ENV = "LAMEG_SPM_DIR"
_MARKER = ".lameg_prepared.json"
_PREP_VERSION = 2
_ARCHIVES = (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")
_SHIM = ("function varargout = convertStringsToChars(varargin)\n"
         "% Identity shim: FieldTrip calls convertStringsToChars, which Octave < 9 lacks.\n"
         "varargout = varargin;\nend\n")
_PRIVATE_MEX_DIRS = ("@file_array/private", "@gifti/private", "@xmltree/private")
_FIELDTRIP_MEX = ("meg_leadfield1.c", "routlm.c")


@dataclass(frozen=True)
class PreparedTree:
    """A ready-to-use SPM tree in the cache.

    Parameters
    ----------
    spm_dir : Path
        The SPM folder (holds ``spm.m`` and the built MEX files).
    shim_dir : Path
        Folder holding the ``convertStringsToChars`` shim.
    source : Path
        The user's SPM folder or archive it was made from.
    """

    spm_dir: Path
    shim_dir: Path
    source: Path


def spm_cache_root() -> Path:
    """The folder of prepared SPM trees and batch files.

    Returns
    -------
    Path
        ``$LAMEG_CACHE_DIR/spm`` (default ``~/.cache/lameg/spm``); not created.
    """
    from .._cache import cache_dir

    return cache_dir("spm")


def _say(msg: str, verbose: bool) -> None:
    logger.info(msg)
    if verbose:
        print(f"lameg.spm: {msg}", file=sys.stderr, flush=True)


def find_octave(executable: str | os.PathLike | None = None) -> tuple[str, str]:
    """Paths of ``octave-cli`` (or ``octave``) and ``mkoctfile``.

    Parameters
    ----------
    executable : path or None
        Octave executable; default ``$OCTAVE_EXECUTABLE``, else ``octave-cli``/``octave`` on
        ``PATH``.

    Returns
    -------
    octave, mkoctfile : str
        ``mkoctfile`` is ``''`` when absent (only needed to build a new tree).

    Raises
    ------
    SPMSetupError
        When no Octave executable is found.
    """
    cand = executable or os.environ.get("OCTAVE_EXECUTABLE")
    found = None
    if cand:
        found = shutil.which(str(cand)) or (str(cand) if Path(cand).is_file() else None)
        if found is None:
            raise SPMSetupError(f"Octave executable {cand!r} not found or not executable")
    else:
        found = shutil.which("octave-cli") or shutil.which("octave")
    if found is None:
        raise SPMSetupError(
            "GNU Octave was not found on PATH: the SPM back end needs it. Install it (Debian/"
            "Ubuntu: 'apt-get install --no-install-recommends octave liboctave-dev'; conda: "
            "'conda install -c conda-forge octave') or set OCTAVE_EXECUTABLE")
    mk = shutil.which("mkoctfile") or ""
    if not mk:
        sib = Path(found).with_name("mkoctfile")
        mk = str(sib) if sib.is_file() else ""
    return found, mk


def resolve_spm_source(spm_dir: str | os.PathLike | None = None) -> Path:
    """The SPM folder or archive to use: ``spm_dir``, else ``$LAMEG_SPM_DIR``.

    Parameters
    ----------
    spm_dir : str, path-like or None
        An SPM source folder (holding ``spm.m``, or its parent holding ``spm/spm.m``) or an
        archive of one (``.tar.xz``, ``.zip``, ...); None reads ``$LAMEG_SPM_DIR``.

    Returns
    -------
    Path
        The absolute folder holding ``spm.m``, or the archive.

    Raises
    ------
    LamegValueError
        When neither is given.
    LamegFileNotFoundError
        When the path does not exist or is not an SPM tree / archive.
    """
    src = spm_dir if spm_dir is not None else os.environ.get(SPM_DIR_ENV)
    if src is None or str(src) == "":
        raise LamegValueError(
            "no SPM folder given: pass spm_dir=... (an SPM source folder holding spm.m, or its "
            f".tar.xz/.zip archive) or set the {SPM_DIR_ENV} environment variable")
    p = Path(src).expanduser().resolve()
    if not p.exists():
        raise LamegFileNotFoundError(f"SPM folder {p} does not exist (spm_dir / {SPM_DIR_ENV})")
    if p.is_dir():
        if not (p / "spm.m").is_file():
            sub = p / "spm"
            if (sub / "spm.m").is_file():
                return sub
            raise LamegFileNotFoundError(
                f"{p} is not an SPM folder (no spm.m in it); pass the folder that holds spm.m")
        return p
    if not str(p).endswith(_ARCHIVES):
        raise LamegFileNotFoundError(
            f"{p} is neither an SPM folder nor an archive ({', '.join(_ARCHIVES)})")
    return p


def _fingerprint(src: Path) -> str:
    h = hashlib.sha256(str(src).encode())
    if src.is_dir():
        for name in ("spm.m", "Contents.m", "spm_eeg_invert_classic.m", "src/Makefile"):
            f = src / name
            if f.is_file():
                st = f.stat()
                h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        st = src.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(f"v{_PREP_VERSION}".encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _lock(path: Path, timeout: float = 900.0):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() - t0 > timeout:
                    raise SPMSetupError(
                        f"another process has been preparing {path.parent} for over "
                        f"{timeout:.0f} s; remove {path} if no such process runs") from exc
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], cwd: Path, what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SPMSetupError(f"{what} did not finish within {timeout:.0f} s ({' '.join(cmd)})"
                            ) from exc
    except OSError as exc:
        raise SPMSetupError(f"{what} could not start ({' '.join(cmd)}): {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SPMSetupError(
            f"{what} failed (exit {proc.returncode}) in {cwd}: {' '.join(cmd)}\n{tail}\n"
            "The Octave development files are needed to build SPM's MEX files (Debian/Ubuntu: "
            "'apt-get install liboctave-dev').")


def _copy_in(src: Path, dest_parent: Path) -> Path:
    """Copy or unpack ``src`` into ``dest_parent``; return the SPM folder inside."""
    dest_parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        dst = dest_parent / "spm"
        shutil.copytree(src, dst, symlinks=False,
                        ignore=shutil.ignore_patterns(".git", "*.mex", "*.oct"))
        return dst
    if str(src).endswith(".zip"):
        with zipfile.ZipFile(src) as zf:
            zf.extractall(dest_parent)
    else:
        with tarfile.open(src) as tf:
            try:
                tf.extractall(dest_parent, filter="data")
            except TypeError:  # Python < 3.12 without extraction filters
                tf.extractall(dest_parent)  # noqa: S202
    hits = sorted(dest_parent.glob("*/spm.m")) + sorted(dest_parent.glob("*/*/spm.m"))
    if (dest_parent / "spm.m").is_file():
        hits.insert(0, dest_parent / "spm.m")
    if not hits:
        raise LamegFileNotFoundError(f"archive {src} holds no SPM folder (no spm.m)")
    return hits[0].parent


def _build(spm: Path, mkoctfile: str, verbose: bool, timeout: float) -> None:
    make = shutil.which("make")
    if not make:
        raise SPMSetupError("'make' is needed to build SPM's MEX files (apt-get install make)")
    if not mkoctfile:
        raise SPMSetupError(
            "mkoctfile was not found: building SPM's MEX files needs the Octave development "
            "files (Debian/Ubuntu: 'apt-get install liboctave-dev')")
    env_path = str(Path(mkoctfile).parent)
    os.environ["PATH"] = env_path + os.pathsep + os.environ.get("PATH", "")
    t0 = time.monotonic()
    _say("building SPM's MEX files for Octave (about 20 s) ...", verbose)
    _run([make, "PLATFORM=octave", "main-all"], spm / "src", "make main-all", timeout)
    for mex in (spm / "src").glob("*.mex"):
        shutil.copy2(mex, spm / mex.name)
    for d in _PRIVATE_MEX_DIRS:
        if (spm / d / "Makefile").is_file():
            _run([make, "PLATFORM=octave"], spm / d, f"make in {d}", timeout)
    ft = spm / "external" / "fieldtrip" / "src"
    _say("building FieldTrip's meg_leadfield1 and routlm ...", verbose)
    for c in _FIELDTRIP_MEX:
        if (ft / c).is_file():
            _run([mkoctfile, "--mex", c], ft, f"mkoctfile --mex {c}", timeout)
            built = ft / c.replace(".c", ".mex")
            # ft_compute_leadfield calls them from forward/private (FieldTrip's own layout)
            priv = spm / "external" / "fieldtrip" / "forward" / "private"
            if built.is_file() and priv.is_dir():
                shutil.copy2(built, priv / built.name)
    _say(f"MEX build done in {time.monotonic() - t0:.0f} s", verbose)


def prepare_spm_tree(spm_dir: str | os.PathLike | None = None, *, force: bool = False,
                     verbose: bool = True, octave: str | os.PathLike | None = None,
                     timeout: float = 900.0) -> PreparedTree:
    """Return an Octave-ready copy of an SPM tree, preparing it on first use.

    Parameters
    ----------
    spm_dir : path or None
        SPM source folder (holding ``spm.m``) or an archive of one (``.tar.xz``, ``.zip``, ...);
        default ``$LAMEG_SPM_DIR``. It is read only.
    force : bool
        Rebuild even when a prepared copy exists.
    verbose : bool
        Print progress messages to stderr (they also go to the ``lameg`` logger).
    octave : path or None
        Octave executable (see :func:`find_octave`).
    timeout : float
        Seconds allowed for each build command.

    Returns
    -------
    PreparedTree

    Raises
    ------
    SPMSetupError
        Octave, ``mkoctfile`` or ``make`` missing, or a build step failing (with its output).
    """
    src = resolve_spm_source(spm_dir)
    _, mkoctfile = find_octave(octave)
    stem = src.name.split(".")[0] if src.is_file() else src.name
    slot = spm_cache_root() / f"{stem}-{_fingerprint(src)}"
    marker = slot / _MARKER
    shim = slot / "shim"
    with _lock(slot.parent / f".{slot.name}.lock", timeout=timeout):
        if marker.is_file() and not force:
            info = json.loads(marker.read_text())
            spm = Path(info["spm_dir"])
            if (spm / "spm.m").is_file():
                return PreparedTree(spm, shim, src)
        _say(f"preparing SPM from {src} for Octave in {slot} (once per SPM tree)", verbose)
        if slot.exists():
            shutil.rmtree(slot)
        tmp = slot.with_name(slot.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        t0 = time.monotonic()
        try:
            spm = _copy_in(src, tmp / "tree")
            _say(f"copied the SPM tree in {time.monotonic() - t0:.0f} s", verbose)
            _build(spm, mkoctfile, verbose, timeout)
            (tmp / "shim").mkdir(parents=True, exist_ok=True)
            (tmp / "shim" / "convertStringsToChars.m").write_text(_SHIM)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-built tree behind
            raise
        tmp.rename(slot)
        spm = slot / spm.relative_to(tmp)
        marker.write_text(json.dumps({"spm_dir": str(spm), "source": str(src),
                                      "version": _PREP_VERSION, "time": time.time()}))
        _say(f"SPM ready in {spm}", verbose)
        return PreparedTree(spm, shim, src)
