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

from ..exceptions import LamegValueError
from .engine import OctaveSPM, SPMEngine, StandaloneSPM
from .errors import SPMError, SPMSetupError
from .prepare import SPM_DIR_ENV, PreparedTree, prepare_spm_tree, spm_cache_root

__all__ = ["SPMEngine", "OctaveSPM", "StandaloneSPM", "SPMError", "SPMSetupError",
           "get_engine", "prepare_spm_tree", "PreparedTree", "spm_cache_root", "SPM_DIR_ENV"]

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
