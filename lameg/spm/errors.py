"""Exceptions of the SPM back end."""

from __future__ import annotations

from ..exceptions import LamegError

__all__ = ["SPMError", "SPMSetupError"]


class SPMError(LamegError, RuntimeError):
    """An SPM function or batch failed inside the engine (the SPM error message is included)."""


class SPMSetupError(LamegError, RuntimeError):
    """The SPM engine cannot start: Octave, the SPM folder or its MEX build is missing/broken."""
