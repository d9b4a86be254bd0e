"""Real SPM behind lameg: engines (GNU Octave or spm_standalone) and SPM-tree preparation.

Quick start::

    from lameg.spm import OctaveSPM
    spm = OctaveSPM(spm_dir="/path/to/spm")   # or set LAMEG_SPM_DIR; prepared once
    coregister(..., backend="spm", spm_instance=spm)

``python -m lameg.spm setup --spm-dir DIR`` prepares a tree ahead of time (MEX build for
Octave, FieldTrip's ``meg_leadfield1``, the ``convertStringsToChars`` shim) into
``$LAMEG_CACHE_DIR/spm``.
"""

from __future__ import annotations

import atexit
import contextlib

from ..exceptions import LamegValueError
from .engine import OctaveSPM, SPMEngine, StandaloneSPM
from .errors import SPMError, SPMSetupError
from .prepare import SPM_DIR_ENV, PreparedTree, prepare_spm_tree, spm_cache_root

__all__ = ["SPMEngine", "OctaveSPM", "StandaloneSPM", "SPMError", "SPMSetupError",
           "get_engine", "prepare_spm_tree", "PreparedTree", "spm_cache_root", "SPM_DIR_ENV",
           "spm_context", "init_spm_parallel_pool", "batch"]

_DEFAULT: SPMEngine | None = None


def _close_default() -> None:
    global _DEFAULT
    if _DEFAULT is not None:
        _DEFAULT.close()
        _DEFAULT = None


def get_engine(spm_instance=None, spm_dir=None) -> SPMEngine:
    """The SPM engine for ``spm_instance``.

    Parameters
    ----------
    spm_instance : SPMEngine, oct2py.Oct2Py, spm_standalone instance or None
        An engine (returned as is); an ``oct2py.Oct2Py`` session (SPM is loaded into it); a
        running ``spm_standalone`` instance (wrapped); None: one shared Octave engine for the
        process, started on first use from ``spm_dir`` or ``$LAMEG_SPM_DIR`` and stopped at
        exit.
    spm_dir : path or None
        SPM folder/archive for a new Octave engine.

    Returns
    -------
    SPMEngine

    Raises
    ------
    LamegValueError
        ``spm_instance`` of another type.
    SPMSetupError
        The engine cannot start (see :class:`OctaveSPM`).
    """
    global _DEFAULT
    if isinstance(spm_instance, SPMEngine):
        return spm_instance
    if spm_instance is None:
        if _DEFAULT is None or getattr(_DEFAULT, "session", 1) is None:
            _DEFAULT = OctaveSPM(spm_dir)
            atexit.register(_close_default)
        return _DEFAULT
    mod = type(spm_instance).__module__ or ""
    if mod.startswith("oct2py"):
        return OctaveSPM(spm_dir, session=spm_instance)
    if hasattr(spm_instance, "spm_standalone") and callable(spm_instance.spm_standalone):
        return StandaloneSPM(spm_instance)
    raise LamegValueError(
        "spm_instance must be a lameg.spm engine (OctaveSPM / StandaloneSPM), an oct2py.Oct2Py "
        "session or a running spm_standalone instance, got "
        f"{type(spm_instance).__name__} ({spm_instance!r:.60})")


@contextlib.contextmanager
def spm_context(spm=None, n_jobs: int = 4):
    """laMEG's ``spm_context``: yield ``spm`` unchanged, or start an engine and stop it on exit.

    Parameters
    ----------
    spm : engine, spm_standalone instance, oct2py session or None
        An existing instance (yielded as is, never stopped here).
    n_jobs : int
        Workers of the MATLAB parallel pool when a compiled SPM (``spm_standalone``) is
        started here; the Octave engine started otherwise (``$LAMEG_SPM_DIR``) is one process.

    Yields
    ------
    object
        The instance.
    """
    if spm is not None:
        yield spm
        return
    try:
        import spm_standalone  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        eng = OctaveSPM()
    else:
        eng = StandaloneSPM()
        init_spm_parallel_pool(eng, n_jobs)
    try:
        yield eng
    finally:
        eng.close()


def init_spm_parallel_pool(spm, n_workers: int) -> None:
    """Start a MATLAB parallel pool of ``n_workers`` in a compiled SPM (laMEG's function).

    Parameters
    ----------
    spm : SPMEngine, oct2py.Oct2Py, spm_standalone instance or None
        The engine (see :func:`get_engine`; None: the process-wide Octave engine, which
        raises).
    n_workers : int
        Number of pool workers; an existing pool is kept as it is.

    Raises
    ------
    LamegNotImplementedError
        For the Octave engine (Octave runs SPM in one process; SPM's ``parfor`` loops run
        serially there).
    """
    from ..exceptions import LamegNotImplementedError

    eng = get_engine(spm)
    if isinstance(eng, OctaveSPM):
        raise LamegNotImplementedError(
            "init_spm_parallel_pool: the Octave engine has no MATLAB parallel pool; SPM runs in "
            "one Octave process (start several engines for parallel jobs)")
    n = int(n_workers)
    eng.eval(f"try, if usejava('jvm') && isempty(gcp('nocreate')), parpool({n}, "
             "'IdleTimeout', Inf); end, catch err, disp(err.message); end")


def batch(cfg: dict, viz: bool = True, spm_instance=None) -> None:
    """Run one SPM batch job (laMEG's ``util.batch``) with the engine for ``spm_instance``.

    Parameters
    ----------
    cfg : dict
        One ``matlabbatch`` entry, e.g. ``{'spm': {'meeg': {...}}}``.
    viz : bool
        SPM's graphics (``spm_get_defaults('cmdline', not viz)``); figures need a display.
    spm_instance : engine or None
        See :func:`get_engine`.
    """
    eng = get_engine(spm_instance)
    eng.eval(f"spm_get_defaults('cmdline', {int(not viz)});")
    try:
        eng.run_batch(cfg)
    finally:
        if viz:
            eng.eval("spm_get_defaults('cmdline', 1);")
