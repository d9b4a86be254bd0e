"""Argument validation used at every public boundary (MNE-Python's ``_validate_type`` habit).

Each checker returns the cleaned value or raises a :class:`lameg.LamegError` subclass whose
message names the argument, what was received and what is accepted, so that a bad input never
ends in a bare NumPy/SciPy traceback or, worse, a silent coercion (``2.5`` layers becoming 2,
``-1`` temporal modes becoming 128, ``NaN`` in a window).
"""

from __future__ import annotations

import numbers
import operator
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegPermissionError,
    LamegValueError,
)

__all__ = [
    "validate_type",
    "check_option",
    "check_int",
    "check_float",
    "check_array",
    "check_window_ms",
    "check_band_hz",
    "check_path",
    "check_finite_data",
    "check_writable",
    "check_fid_coords",
    "check_mesh",
]

_TYPE_NAMES = {
    "int": (numbers.Integral,),
    "numeric": (numbers.Real,),
    "path-like": (str, os.PathLike),
    "str": (str,),
    "callable": (),
}


def _type_tuple(types) -> tuple[tuple, list[str]]:
    if not isinstance(types, tuple):
        types = (types,)
    classes, names = [], []
    for t in types:
        if t is None:
            classes.append(type(None))
            names.append("None")
        elif isinstance(t, str):
            classes.extend(_TYPE_NAMES[t])
            names.append(t)
        else:
            classes.append(t)
            names.append(t.__name__)
    return tuple(classes), names


def validate_type(value, types, name: str):
    """Raise :class:`LamegValueError` unless ``value`` is one of ``types``.

    Parameters
    ----------
    value : object
        The argument.
    types : type, str or tuple of them
        Accepted types; strings ``'int'``, ``'numeric'``, ``'path-like'``, ``'str'``,
        ``'callable'`` and ``None`` are understood. ``bool`` is never accepted as a number.
    name : str
        The argument's name, used in the message.

    Returns
    -------
    value : object
        ``value`` unchanged.
    """
    classes, names = _type_tuple(types)
    ok = isinstance(value, classes) if classes else False
    if "callable" in names and callable(value):
        ok = True
    if isinstance(value, (bool, np.bool_)) and bool not in classes:
        ok = False
    if not ok:
        raise LamegValueError(
            f"{name} must be {' or '.join(names)}, got {type(value).__name__} ({value!r:.60})")
    return value


def check_option(value, allowed: Iterable, name: str):
    """Raise :class:`LamegValueError` unless ``value`` is one of ``allowed``.

    Parameters
    ----------
    value : object
        The argument.
    allowed : iterable
        Accepted values.
    name : str
        The argument's name.

    Returns
    -------
    value : object
        ``value`` unchanged.
    """
    allowed = list(allowed)
    try:
        ok = value in allowed
    except TypeError:  # unhashable / incomparable value
        ok = False
    if not ok:
        raise LamegValueError(f"{name}={value!r} is not valid; choose one of {allowed}")
    return value


def check_int(value, name: str, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """An integer argument, without silent truncation.

    Integral floats (``4.0``) are accepted; ``2.5``, ``NaN``, strings and booleans are not.

    Parameters
    ----------
    value : int or integral float
        The argument.
    name : str
        The argument's name.
    min_value, max_value : int or None
        Inclusive bounds.

    Returns
    -------
    int
        The value as a Python ``int``.
    """
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        raise LamegValueError(f"{name} must be an integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise LamegValueError(f"{name} must be an integer, got {value!r}") from None
        if not np.isfinite(f) or f != int(f):
            raise LamegValueError(f"{name} must be an integer, got {value!r}") from None
        out = int(f)
    if min_value is not None and out < min_value:
        raise LamegValueError(f"{name} must be >= {min_value}, got {out}")
    if max_value is not None and out > max_value:
        raise LamegValueError(f"{name} must be <= {max_value}, got {out}")
    return int(out)


def check_float(value, name: str, *, min_value: float | None = None,
                max_value: float | None = None, allow_inf: bool = False,
                strict_min: bool = False) -> float:
    """A finite real argument.

    Parameters
    ----------
    value : real
        The argument.
    name : str
        The argument's name.
    min_value, max_value : float or None
        Bounds (inclusive; ``strict_min`` makes the lower one exclusive).
    allow_inf : bool
        Accept +/- infinity.
    strict_min : bool
        Require ``value > min_value``.

    Returns
    -------
    float
    """
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        raise LamegValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise LamegValueError(f"{name} must be a number, got {value!r}") from None
    if np.isnan(out) or (np.isinf(out) and not allow_inf):
        raise LamegValueError(f"{name} must be finite, got {value!r}")
    if min_value is not None and (out <= min_value if strict_min else out < min_value):
        raise LamegValueError(f"{name} must be {'>' if strict_min else '>='} {min_value}, "
                              f"got {out}")
    if max_value is not None and out > max_value:
        raise LamegValueError(f"{name} must be <= {max_value}, got {out}")
    return out


def check_array(value, name: str, *, shape: Sequence[int | None] | None = None,
                dtype=float, finite: bool = True) -> np.ndarray:
    """A numeric array of a given shape (``None`` in ``shape`` means any length).

    Parameters
    ----------
    value : array-like
        The argument.
    name : str
        The argument's name.
    shape : sequence of int or None, optional
        Expected shape.
    dtype : numpy dtype
        Conversion target.
    finite : bool
        Reject NaN and infinity.

    Returns
    -------
    ndarray
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise LamegValueError(f"{name} must be a numeric array, got {value!r:.80}") from None
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and a != s
                                         for a, s in zip(arr.shape, shape)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            raise LamegValueError(f"{name} must have shape {want}, got {arr.shape}")
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise LamegValueError(f"{name} contains NaN or infinite values")
    return arr


def check_window_ms(woi, name: str = "woi", *, time_ms: np.ndarray | None = None
                    ) -> np.ndarray:
    """Time window(s) in milliseconds, shape (n_windows, 2), ``low < high``.

    Parameters
    ----------
    woi : array-like, shape (2,) or (n_windows, 2)
        Window(s) in ms; ``-inf``/``inf`` mean the start/end of the epoch.
    name : str
        The argument's name.
    time_ms : ndarray, optional
        The data's time axis (ms). When given, a window that does not overlap it is an error,
        and a window that fits the epoch only when read as seconds is reported as such.

    Returns
    -------
    ndarray, shape (n_windows, 2)
    """
    try:
        w = np.atleast_2d(np.asarray(woi, dtype=float))
    except (TypeError, ValueError):
        raise LamegValueError(f"{name} must be [start, end] in ms, got {woi!r}") from None
    if w.ndim != 2 or w.shape[1] != 2 or w.shape[0] == 0:
        raise LamegValueError(f"{name} must be [start, end] or (n, 2) in ms, got shape "
                              f"{np.shape(woi)}")
    if np.any(np.isnan(w)):
        raise LamegValueError(f"{name} contains NaN")
    if np.any(w[:, 0] >= w[:, 1]):
        raise LamegValueError(f"{name} must have start < end (ms), got {w.tolist()}")
    if time_ms is not None and len(time_ms):
        t0, t1 = float(np.min(time_ms)), float(np.max(time_ms))
        lo, hi = np.maximum(w[:, 0], t0), np.minimum(w[:, 1], t1)
        bad = hi - lo < 1.0  # less than one ms of data inside the window
        if np.any(bad):
            ws = w[bad]
            as_ms = ws * 1000.0
            hint = ""
            if np.all(np.isfinite(ws)) and np.all((as_ms[:, 1] > t0) & (as_ms[:, 0] < t1)):
                hint = (f"; it looks like seconds: windows are given in ms (e.g. "
                        f"{as_ms[0].tolist()})")
            raise LamegValueError(
                f"{name} {ws.tolist()} ms does not overlap the data ({t0:.1f} .. {t1:.1f} ms) "
                f"by at least one ms{hint}")
    return w


def check_band_hz(foi, name: str = "foi") -> np.ndarray:
    """Frequency band ``[low, high]`` in Hz, finite, ``0 <= low < high``.

    Parameters
    ----------
    foi : array-like, shape (2,)
        The band.
    name : str
        The argument's name.

    Returns
    -------
    ndarray, shape (2,)
    """
    f = check_array(foi, name)
    f = f.ravel()
    if f.size != 2 or f[0] < 0 or f[0] >= f[1]:
        raise LamegValueError(f"{name} must be [low, high] in Hz with 0 <= low < high, "
                              f"got {np.asarray(foi).tolist()}")
    return f


def check_path(value, name: str, *, must_exist: bool = True, kind: str = "file") -> Path:
    """A path argument (``str`` or ``os.PathLike``), optionally required to exist.

    Parameters
    ----------
    value : str or path-like
        The argument.
    name : str
        The argument's name.
    must_exist : bool
        Raise :class:`LamegFileNotFoundError` when it does not exist.
    kind : {'file', 'dir', 'any'}
        What must exist.

    Returns
    -------
    Path
    """
    validate_type(value, "path-like", name)
    p = Path(value)
    if must_exist:
        ok = {"file": p.is_file, "dir": p.is_dir, "any": p.exists}[kind]()
        if not ok:
            what = {"file": "file", "dir": "folder", "any": "path"}[kind]
            raise LamegFileNotFoundError(f"{name}: {what} {p} does not exist")
    return p


def check_finite_data(data: np.ndarray, what: str) -> None:
    """Reject non-finite or flat (all-constant) data before an inversion or a statistic.

    Parameters
    ----------
    data : ndarray
        The data.
    what : str
        What the data are (used in the message), e.g. ``'sim.mat: MEG data'``.
    """
    arr = np.asarray(data)
    if arr.size == 0:
        raise LamegDataError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        raise LamegDataError(f"{what} contains NaN or infinite values; clean or interpolate "
                             "them first")
    if float(np.ptp(arr)) == 0.0:
        raise LamegDataError(f"{what} is flat (every value is {arr.flat[0]!r}): nothing to "
                             "invert; check the file's data and scaling")


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """Reject a read-only output file or folder before any work is done.

    A path that does not exist yet is checked through its nearest existing parent folder.
    Read-only means not writable for this process or without the owner's write bit (so that
    ``chmod a-w`` protects data even from a superuser's process, as lameg's atomic writes do).

    Parameters
    ----------
    path : str or path-like
        The output file or folder.
    what : str
        What it is (used in the message), e.g. ``'output folder'``.

    Returns
    -------
    Path
        ``path``.
    """
    p = Path(path)
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    mode = probe.stat().st_mode
    if not os.access(probe, os.W_OK) or not mode & stat.S_IWUSR:
        raise LamegPermissionError(
            f"{what} {probe} is read-only; make it writable (chmod u+w '{probe}') or write "
            "somewhere else")
    return p



def check_mesh(vertices, faces, *, finite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A triangle mesh: (n, 3) float vertices and (m, 3) 0-based integer faces.

    Parameters
    ----------
    vertices : array-like, shape (n_vertices, 3)
        Vertex positions (any length unit).
    faces : array-like, shape (n_faces, 3)
        0-based vertex indices; a float array is accepted when every value is a whole number.
    finite : bool
        Also reject NaN and infinite vertex coordinates.

    Returns
    -------
    vertices : ndarray of float64, shape (n_vertices, 3)
        The vertices.
    faces : ndarray of int64, shape (n_faces, 3)
        The faces.
    """
    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise LamegValueError(f"vertices must have shape (n, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise LamegValueError(f"faces must have shape (m, 3), got {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        if not np.all(np.equal(np.mod(faces, 1), 0)):
            raise LamegValueError("faces must hold integer vertex indices")
    faces = faces.astype(np.int64, copy=False)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise LamegValueError(
            f"faces index vertices outside [0, {len(vertices) - 1}] (faces must be 0-based)"
        )
    if finite and not np.all(np.isfinite(vertices)):
        raise LamegValueError("mesh vertices contain NaN or Inf")
    return vertices, faces


def check_fid_coords(fid_coords) -> dict:
    """MRI fiducials: a mapping of label to 3 finite coordinates (mm).

    Parameters
    ----------
    fid_coords : mapping
        ``{'nas': [x, y, z], 'lpa': ..., 'rpa': ...}`` in scanner RAS mm.

    Returns
    -------
    dict of str to ndarray, shape (3,)
    """
    if not isinstance(fid_coords, Mapping):
        raise LamegValueError("fid_coords must be a dict {'nas': [x, y, z], 'lpa': ..., "
                              f"'rpa': ...}} in MRI mm, got {type(fid_coords).__name__}")
    out = {}
    for k, v in fid_coords.items():
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise LamegValueError(f"fid_coords[{k!r}] must be 3 numbers (mm), got {v!r}") from None
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise LamegValueError(f"fid_coords[{k!r}] must be 3 finite numbers (x, y, z in mm), "
                                  f"got {np.asarray(v).tolist()}")
        out[k] = a
    if not all(f in out for f in ("nas", "lpa", "rpa")) and len(out) < 3:
        raise LamegValueError(f"fid_coords needs the three fiducials ['nas', 'lpa', 'rpa'], "
                              f"got {list(out)}")
    return out
