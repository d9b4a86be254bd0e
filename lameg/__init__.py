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
    "LamegError",
    "LamegValueError",
    "LamegFileNotFoundError",
    "LamegFormatError",
    "LamegDataError",
    "LamegNotImplementedError",
    *_SUBMODULES,
]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'lameg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
