"""lameg: laminar inference with MEG in pure Python.

Submodules are imported lazily, so ``import lameg`` is cheap and
``lameg.surf``, ``lameg.invert`` ... load on first access.
"""

from __future__ import annotations

import importlib
import logging

from ._version import __version__
from .exceptions import (
    LamegDataError,
    LamegError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegNotImplementedError,
    LamegValueError,
)

logger = logging.getLogger("lameg")
logger.addHandler(logging.NullHandler())

_SUBMODULES = (
    "anatomy",
    "backends",
    "datasets",
    "forward",
    "inverse",
    "invert",
    "io",
    "laminar",
    "mesh",
    "sam",
    "simulate",
    "source",
    "surf",
    "sweep",
    "util",
    "viz",
)

__all__ = [
    "__version__",
    "clear_cache",
    "LamegError",
    "LamegValueError",
    "LamegFileNotFoundError",
    "LamegFormatError",
    "LamegDataError",
    "LamegNotImplementedError",
    *_SUBMODULES,
]


def clear_cache(kind: str | None = None) -> int:
    """Empty lameg's caches (on disk under ``$LAMEG_CACHE_DIR`` and in memory).

    Parameters
    ----------
    kind : str or None
        One kind (``'gain'``, ``'kernels'``, ``'spm'``) or None for all.

    Returns
    -------
    int
        Number of files removed.
    """
    from ._cache import clear_cache as _clear

    return _clear(kind)


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lameg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
