"""Exception hierarchy.

Every error lameg raises on purpose derives from :class:`LamegError`, and the
specific classes also derive from the matching built-in exception so that
``except ValueError`` and ``except FileNotFoundError`` keep working.
"""

from __future__ import annotations


class LamegError(Exception):
    """Base class of all lameg errors."""


class LamegValueError(LamegError, ValueError):
    """An argument or array has the wrong value, shape, unit or frame."""


class LamegFileNotFoundError(LamegError, FileNotFoundError):
    """A required file or directory does not exist."""


class LamegFormatError(LamegError, ValueError):
    """A file exists but is not in the expected format (corrupt, truncated, wrong kind)."""


class LamegDataError(LamegError, ValueError):
    """Data are unusable for the requested operation (NaNs, no good channels, ...)."""


class LamegNotImplementedError(LamegError, NotImplementedError):
    """A documented feature that this version does not provide yet."""


class LamegPermissionError(LamegError, PermissionError):
    """A file lameg would replace is read-only (lameg does not override file permissions)."""


class InversionNotFoundError(LamegValueError, KeyError):
    """The dataset has no ``D.other.inv{k}`` (head model / inversion) at the requested index.

    A ``KeyError`` as in laMEG, and a :class:`LamegValueError` like other bad arguments.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class LamegIndexError(LamegError, IndexError):
    """An index (layer, column, trial, vertex) is outside the valid range."""


class LamegTypeError(LamegError, TypeError):
    """An argument has a type that cannot be interpreted (e.g. a list where a slice is needed)."""


class LamegFileExistsError(LamegError, FileExistsError):
    """An output file or stored entry exists and overwriting was not requested."""


class LamegClosedError(LamegError, RuntimeError):
    """An operation on a file handle that has been closed."""
