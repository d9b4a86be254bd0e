"""Reading and writing MATLAB MAT-files (v5/v6/v7 and v7.3/HDF5) as plain Python objects.

MATLAB values are mapped to Python as follows (and back when saving):

============================= ===================================================================
MATLAB                        Python
============================= ===================================================================
1x1 struct                    :class:`dict` (field order kept)
struct array (not 1x1)        :class:`StructArray` (a ``list`` of dicts with ``shape``/``fields``)
old-style object (file_array) :class:`MatObject` (a ``dict`` with ``classname``)
cell array                    :class:`MatCell` (a ``list``, column-major, with ``shape``); a plain
                              ``list``/``tuple`` is saved as a 1xN cell
char row                      :class:`str`; a char matrix with several rows -> 1-D ``numpy`` str
                              array (rows, trailing blanks kept)
numeric / logical scalar      NumPy scalar (``np.float64``, ``np.uint8``, ``np.bool_`` ...)
numeric row/column vector     1-D ``numpy`` array (a 1-D array is saved as a 1xN row)
numeric matrix / N-D array    ``numpy`` array of the same shape and class
empty numeric / char / cell   empty array of its shape / ``''`` / empty :class:`MatCell`
sparse matrix                 ``scipy.sparse.csc_matrix``
============================= ===================================================================

When saving, Python ``int`` and ``float`` become MATLAB ``double`` (MATLAB's default class),
``bool`` becomes ``logical``, ``None`` becomes ``[]`` and :class:`pathlib.Path` becomes ``char``.
NumPy arrays and scalars keep their dtype (``int64`` arrays are saved as MATLAB ``int64``; cast
index arrays to ``float`` if MATLAB code will do arithmetic with them).

Known limitation: MAT-5 (v5/v6/v7) ``logical`` arrays are read as ``uint8`` (the SciPy reader does
not expose the logical flag); v7.3 ``logical`` arrays are read as ``bool``. Function handles and
new-style (classdef) objects cannot be decoded and are read as ``None`` with a warning.
"""

from __future__ import annotations

import datetime
import io
import os
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from .._utils import atomic_path, logger
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from .mapped import MappedWriter
from .mat5map import prune_large_arrays, restore_mapped

__all__ = [
    "MatCell",
    "MatObject",
    "StructArray",
    "load_mat",
    "save_mat",
    "mat_version",
]


# ---------------------------------------------------------------------------------------------
# Container types
# ---------------------------------------------------------------------------------------------


class MatCell(list):
    """A MATLAB cell array: a list of its elements in column-major order.

    Parameters
    ----------
    items : iterable
        The elements.
    shape : tuple of int, optional
        MATLAB dimensions (at least 2). Default ``(1, len(items))`` (a row cell).
    """

    def __init__(self, items=(), shape: tuple[int, ...] | None = None):
        super().__init__(items)
        self.shape = _check_shape(shape, len(self))

    @classmethod
    def column(cls, items=()) -> MatCell:
        """A column (Nx1) cell, as FieldTrip stores labels.

        Parameters
        ----------
        items : iterable
            The elements.

        Returns
        -------
        MatCell
            A cell of shape ``(len(items), 1)``.
        """
        items = list(items)
        return cls(items, (len(items), 1))

    def __repr__(self) -> str:
        return f"MatCell({list.__repr__(self)}, shape={self.shape})"


class StructArray(list):
    """A MATLAB struct array (any size other than 1x1): a list of dicts, column-major.

    Parameters
    ----------
    items : iterable of dict
        One dict per element; all must have the same keys.
    shape : tuple of int, optional
        MATLAB dimensions. Default ``(1, len(items))``.
    fields : sequence of str, optional
        Field names (needed for an empty struct array; otherwise taken from the first element).
    """

    def __init__(self, items=(), shape: tuple[int, ...] | None = None, fields=None):
        super().__init__(items)
        self.shape = _check_shape(shape, len(self))
        if fields is None:
            fields = list(self[0].keys()) if len(self) else []
        self.fields = tuple(fields)

    @classmethod
    def column(cls, items=(), fields=None) -> StructArray:
        """A column (Nx1) struct array.

        Parameters
        ----------
        items : iterable of dict
            One dict per element; all must have the same keys.
        fields : sequence of str, optional
            Field names (needed for an empty struct array).

        Returns
        -------
        StructArray
            A struct array of shape ``(len(items), 1)``.
        """
        items = list(items)
        return cls(items, (len(items), 1), fields)

    def __repr__(self) -> str:
        return f"StructArray(<{len(self)} elements>, shape={self.shape}, fields={self.fields})"


class MatObject(dict):
    """An old-style MATLAB object (e.g. SPM's ``file_array``): its fields plus ``classname``.

    Parameters
    ----------
    *args
        Positional arguments of :class:`dict` (a mapping or an iterable of pairs): the fields.
    classname : str
        MATLAB class name (e.g. ``'file_array'``).
    **kwargs
        More fields, as for :class:`dict`.
    """

    def __init__(self, *args, classname: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.classname = classname

    def __repr__(self) -> str:
        return f"MatObject({dict.__repr__(self)}, classname={self.classname!r})"


def _check_shape(shape, n: int) -> tuple[int, ...]:
    if shape is None:
        return (1, n)
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        shape = (1,) * (2 - len(shape)) + shape if shape else (1, n)
    if int(np.prod(shape)) != n:
        raise LamegValueError(f"shape {shape} does not match {n} elements")
    return shape


# ---------------------------------------------------------------------------------------------
# Version detection
# ---------------------------------------------------------------------------------------------

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def mat_version(fname: str | os.PathLike) -> str:
    """Return the MAT-file format of a file.

    Parameters
    ----------
    fname : str or path-like
        The MAT-file.

    Returns
    -------
    str
        ``'7.3'`` (HDF5), ``'7'`` (MAT-5, compressed), ``'6'`` (MAT-5, uncompressed) or
        ``'4'``.

    Raises
    ------
    LamegFileNotFoundError
        If the file does not exist.
    LamegFormatError
        If the file is too short to be a MAT-file.
    """
    path = Path(fname)
    if not path.is_file():
        raise LamegFileNotFoundError(f"MAT-file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(1024)
    if len(head) >= 520 and head[512:520] == _HDF5_SIGNATURE:
        return "7.3"
    if head[:8] == _HDF5_SIGNATURE:
        return "7.3"
    if len(head) >= 128 and head[126:128] in (b"IM", b"MI") and not head[:4].count(0):
        endian = "<" if head[126:128] == b"IM" else ">"
        if len(head) >= 132:
            (dtype,) = struct.unpack(endian + "I", head[128:132])
            if dtype & 0xFFFF0000:  # small-element format never used for top-level variables
                dtype &= 0xFFFF
            return "7" if dtype == 15 else "6"
        return "6"
    if len(head) < 20:
        raise LamegFormatError(f"{path} is too short ({len(head)} bytes) to be a MAT-file")
    return "4"


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def load_mat(fname: str | os.PathLike, variables: list[str] | None = None,
             map_under: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a MAT-file (v4, v5/v6/v7 or v7.3) into plain Python objects.

    Parameters
    ----------
    fname : str or path-like
        The ``.mat`` file.
    variables : list of str, optional
        Load only these top-level variables (all by default).
    map_under : tuple of str
        In an uncompressed MAT-5 file of at least :data:`LAZY_MIN_BYTES`, the large real double
        arrays inside struct fields of these names are copy-on-write memory maps of the file
        (:mod:`lameg.io.mat5map`): read only where used. For readers that rarely touch them
        (e.g. ``('inverse',)`` for a head model); a program rewriting the file in place while
        a map is in use would change what the map shows, so nothing is mapped by default.

    Returns
    -------
    dict
        Variable name -> value (see the module docstring for the type mapping).

    Raises
    ------
    LamegFileNotFoundError
        If ``fname`` does not exist.
    LamegFormatError
        If ``fname`` is not a readable MAT-file (corrupt, truncated or another kind of file).
    """
    path = Path(fname)
    version = mat_version(path)
    try:
        if version == "7.3":
            out = _load_h5(path, variables)
        else:
            out = _load_v5(path, variables, map_under)
    except (LamegFormatError, LamegFileNotFoundError):
        raise
    except MemoryError as err:
        raise LamegFormatError(
            f"{path} declares arrays too large to load; the file is probably corrupt"
        ) from err
    except (NameError, ImportError):
        raise
    except Exception as err:  # any parser failure means the file is not a valid MAT-file
        raise LamegFormatError(
            f"cannot read {path} as a MATLAB v{version} MAT-file ({type(err).__name__}: {err}); "
            "the file is corrupt, truncated or not a MAT-file"
        ) from err
    if variables is not None:
        missing = [v for v in variables if v not in out]
        if missing:
            raise LamegFormatError(f"{path} has no variable(s) {missing}")
    return out


def _load_v5(path: Path, variables, map_under=()) -> dict[str, Any]:
    import scipy.io as sio
    from scipy.io.matlab import MatlabFunction, MatlabObject, MatlabOpaque

    # large uncompressed files: their big double arrays are memory-mapped, not read
    pruned = prune_large_arrays(path, under=map_under) \
        if map_under and path.stat().st_size >= LAZY_MIN_BYTES else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = sio.loadmat(
            io.BytesIO(pruned[0]) if pruned else str(path), squeeze_me=False,
            struct_as_record=True, chars_as_strings=True, mat_dtype=False,
            variable_names=variables, verify_compressed_data_integrity=True,
        )

    def conv(x):
        if isinstance(x, (MatlabFunction, MatlabOpaque)):
            logger.warning("%s: a function handle/opaque object cannot be decoded; read as None",
                           path)
            return None
        if sp.issparse(x):
            return sp.csc_matrix(x)
        if not isinstance(x, np.ndarray):
            return x
        if x.dtype.names is not None:  # struct or object
            fields = list(x.dtype.names)
            elems = []
            for el in x.ravel(order="F"):
                elems.append({k: conv(el[k]) for k in fields})
            if isinstance(x, MatlabObject):
                d = elems[0] if elems else {}
                return MatObject(d, classname=str(x.classname))
            if x.size == 1 and x.ndim <= 2:
                return elems[0]
            return StructArray(elems, _mshape(x.shape), fields)
        if x.dtype == object:
            if x.size == 1 and x.ndim == 2 and x[0, 0] is None:
                return {}  # scipy reads a field-less struct as [[None]]
            return MatCell([conv(el) for el in x.ravel(order="F")], _mshape(x.shape))
        if x.dtype.kind == "U":
            if x.size == 0:
                return ""
            if x.size == 1:
                return str(x.reshape(-1)[0])
            return np.ascontiguousarray(x.reshape(-1))
        return _squeeze_numeric(x)

    out = {k: conv(v) for k, v in raw.items() if not k.startswith("__")}
    if pruned:
        restore_mapped(out, path, [f for f in pruned[1] if f[0] in out], _squeeze_numeric)
    return out


def _mshape(shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        return (1, shape[0])
    return shape


def _squeeze_numeric(x: np.ndarray):
    """Scalars -> NumPy scalar, vectors -> 1-D; matrices, N-D and empties keep their shape."""
    if x.size == 1 and x.ndim <= 2:
        return x.reshape(-1)[0]
    if x.ndim == 2 and x.size > 1 and 1 in x.shape:
        return np.ascontiguousarray(x.reshape(-1))
    return x


def _h5_attr_str(obj, name: str) -> str | None:
    v = obj.attrs.get(name)
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return b"".join(v.ravel().tolist()).decode("ascii", "replace")
    return str(v)


def _h5_fields(obj) -> list[str] | None:
    v = obj.attrs.get("MATLAB_fields")
    if v is None:
        return None
    names = []
    for item in np.asarray(v, dtype=object).ravel():
        if isinstance(item, bytes):
            names.append(item.decode("ascii", "replace"))
        else:
            names.append(b"".join(np.asarray(item).ravel().tolist()).decode("ascii", "replace"))
    return names


_H5_NUMERIC = {
    "double": np.float64, "single": np.float32, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
    "int64": np.int64, "uint64": np.uint64, "logical": np.bool_,
}


def _load_h5(path: Path, variables) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        names = [k for k in f.keys() if k != "#refs#" and k != "#subsystem#"]
        if variables is not None:
            names = [k for k in names if k in variables]
        reader = _H5Reader(f, path)
        return {k: reader.read(f[k]) for k in names}


class _H5Reader:
    def __init__(self, f, path: Path):
        self.f = f
        self.path = path
        self.depth = 0

    def deref(self, ref):
        if not ref:
            return np.zeros((0, 0))
        return self.read(self.f[ref])

    def read(self, obj):
        self.depth += 1
        try:
            if self.depth > 200:
                raise LamegFormatError(f"{self.path}: nesting too deep (circular references?)")
            if isinstance(obj, h5py.Group):
                return self._read_group(obj)
            return self._read_dataset(obj)
        finally:
            self.depth -= 1

    def _read_group(self, g):
        cls = _h5_attr_str(g, "MATLAB_class") or "struct"
        if "MATLAB_sparse" in g.attrs:
            nrows = int(np.asarray(g.attrs["MATLAB_sparse"]).reshape(-1)[0])
            jc = np.asarray(g["jc"][()]).astype(np.int64).reshape(-1)
            ncols = len(jc) - 1
            if "data" in g:
                ir = np.asarray(g["ir"][()]).astype(np.int64).reshape(-1)
                data = np.asarray(g["data"][()])
                if data.dtype.names and "real" in data.dtype.names:
                    data = data["real"] + 1j * data["imag"]
                data = data.reshape(-1)
                if cls == "logical":
                    data = data.astype(bool)
            else:
                ir = np.zeros(0, np.int64)
                data = np.zeros(0, bool if cls == "logical" else np.float64)
            return sp.csc_matrix((data, ir, jc), shape=(nrows, ncols))
        fields = _h5_fields(g)
        if fields is None:
            fields = list(g.keys())
        children = {k: g[k] for k in fields if k in g}
        # struct array: its field datasets are object references without a MATLAB_class
        is_array = any(
            isinstance(v, h5py.Dataset) and v.dtype == h5py.ref_dtype
            and "MATLAB_class" not in v.attrs
            for v in children.values()
        )
        if is_array:
            shape = None
            cols = {}
            for k in fields:
                ds = children[k]
                refs = np.asarray(ds[()])
                if shape is None:
                    shape = refs.shape[::-1]
                cols[k] = [self.deref(r) for r in refs.T.ravel(order="F")]
            shape = _mshape(shape or (0, 0))
            n = int(np.prod(shape))
            elems = [{k: cols[k][i] for k in fields} for i in range(n)]
            return StructArray(elems, shape, fields)
        d = {k: self.read(children[k]) for k in fields if k in children}
        if cls != "struct":
            return MatObject(d, classname=cls)
        return d

    def _read_dataset(self, ds):
        cls = _h5_attr_str(ds, "MATLAB_class")
        empty = "MATLAB_empty" in ds.attrs and bool(np.asarray(ds.attrs["MATLAB_empty"]).any())
        if empty:
            dims = np.asarray(ds[()]).astype(np.int64).reshape(-1)
            shape = _mshape(dims if dims.size else (0, 0))
            if cls == "char":
                return ""
            if cls == "cell":
                return MatCell([], shape)
            if cls == "struct":
                return StructArray([], shape, _h5_fields(ds) or [])
            return np.zeros(shape, dtype=_H5_NUMERIC.get(cls, np.float64))
        data = ds[()]
        if ds.dtype == h5py.ref_dtype:
            refs = np.asarray(data)
            shape = _mshape(refs.shape[::-1])
            items = [self.deref(r) for r in refs.T.ravel(order="F")]
            return MatCell(items, shape)
        arr = np.asarray(data)
        if arr.dtype.names and "real" in arr.dtype.names:
            arr = arr["real"] + 1j * arr["imag"]
        arr = arr.T
        if cls == "char":
            arr = np.asarray(arr, dtype=np.uint32)
            if arr.ndim == 1:
                arr = arr.reshape(1, -1)
            rows = ["".join(map(chr, row)) for row in arr.reshape(arr.shape[0], -1)]
            return rows[0] if len(rows) == 1 else np.array(rows)
        if cls in ("function_handle",) or (cls is not None and cls not in _H5_NUMERIC
                                           and "MATLAB_object_decode" in ds.attrs):
            logger.warning("%s: MATLAB %s value cannot be decoded; read as None", self.path, cls)
            return None
        if cls == "logical":
            arr = arr.astype(bool)
        elif cls in _H5_NUMERIC and arr.dtype.kind != "c":
            arr = arr.astype(_H5_NUMERIC[cls], copy=False)
        if arr.ndim == 0:
            arr = arr.reshape(1, 1)
        elif arr.ndim == 1:
            arr = arr.reshape(1, -1)
        return _squeeze_numeric(np.ascontiguousarray(arr))


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def save_mat(fname: str | os.PathLike, variables: Mapping[str, Any], version: str = "7") -> Path:
    """Save variables to a MAT-file, atomically.

    Parameters
    ----------
    fname : str or path-like
        Destination ``.mat`` file (replaced atomically if it exists).
    variables : mapping
        Variable name -> value (see the module docstring for the type mapping).
    version : {'7', '6', '5', '7.3'}
        ``'7'``: MAT-5 with compression (MATLAB ``-v7``; uncompressed when the numeric content
        exceeds :data:`COMPRESS_LIMIT_BYTES`, where compression costs seconds and saves little),
        ``'6'``/``'5'``: MAT-5 uncompressed, ``'7.3'``: HDF5 with the 512-byte MATLAB header
        (needed for variables larger than 2 GB).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    LamegValueError
        For an unknown ``version``, invalid variable/field names or values that cannot be stored.
    """
    version = str(version)
    if version not in ("5", "6", "7", "7.3"):
        raise LamegValueError(f"unknown MAT-file version {version!r}; use '7', '6' or '7.3'")
    if not isinstance(variables, Mapping):
        raise LamegValueError("variables must be a mapping of variable name -> value")
    for name in variables:
        _check_name(name)
    path = Path(fname)
    with atomic_path(path, suffix=".tmp") as tmp:
        if version == "7.3":
            _save_h5(tmp, variables)
        else:
            _save_v5(tmp, variables, compress=(version == "7"))
    return path


def _check_name(name) -> None:
    if (not isinstance(name, str) or not name or len(name) > 63 or not name[0].isalpha()
            or not all(c.isalnum() or c == "_" for c in name) or not name.isascii()):
        raise LamegValueError(
            f"{name!r} is not a valid MATLAB variable/field name (letters, digits and '_', "
            "starting with a letter, at most 63 characters)"
        )


def _prep_scalar_array(x) -> np.ndarray | None:
    """Python/NumPy scalars and numeric arrays -> MATLAB-shaped arrays (None if not numeric)."""
    if isinstance(x, (bool, np.bool_)):
        return np.array([[bool(x)]])
    if isinstance(x, int) and not isinstance(x, bool):
        return np.array([[float(x)]])
    if isinstance(x, float):
        return np.array([[x]], dtype=np.float64)
    if isinstance(x, complex):
        return np.array([[x]], dtype=np.complex128)
    if isinstance(x, np.generic) and x.dtype.kind in "biufc":
        return np.array(x).reshape(1, 1)
    if isinstance(x, np.ndarray) and x.dtype.kind in "biufc":
        if x.dtype.kind == "f" and x.dtype.itemsize not in (4, 8):
            x = x.astype(np.float64)
        if x.dtype.kind == "c" and x.dtype.itemsize not in (8, 16):
            x = x.astype(np.complex128)
        if x.ndim == 0:
            return x.reshape(1, 1)
        if x.ndim == 1:
            return x.reshape(1, -1)
        return x
    return None


def _as_str(x) -> str | None:
    if isinstance(x, str):
        return x
    if isinstance(x, np.str_):
        return str(x)
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return None


def _is_list(x) -> bool:
    return isinstance(x, (list, tuple)) and not isinstance(x, StructArray)


# MAT-5 files of at least this size have their large double arrays memory-mapped on reading
# (copy-on-write: the values are read where used; see :mod:`lameg.io.mat5map`).
LAZY_MIN_BYTES = 64 * 2**20

# Above this many bytes of numeric content a '7' file is written uncompressed: zlib costs about
# a second per 50 MB while double-precision lead fields and operators shrink by under 10 %. An
# uncompressed MAT-5 file is a valid ``-v7`` file for MATLAB, Octave and SciPy.
COMPRESS_LIMIT_BYTES = 16 * 2**20


class _WriteThrough(np.ndarray):
    """A large column-major array whose bytes reach a MAT-5 file without an intermediate copy.

    SciPy's MAT-5 writer takes an array's data as ``arr.tobytes(order='F')``, a copy of every
    matrix (seconds for the gigabyte lead fields and operators of a full-resolution mesh); a
    column-major array already holds those bytes, so they are handed over as a memory view.
    Any other request is NumPy's own ``tobytes``.
    """

    MIN_BYTES = 2**20

    @classmethod
    def wrap(cls, a: np.ndarray) -> np.ndarray:
        """``a`` as this type when it is large and column-major, else ``a`` itself."""
        if a.nbytes >= cls.MIN_BYTES and a.flags.f_contiguous and a.dtype.isnative:
            return a.view(cls)
        return a

    def tobytes(self, order="C"):
        """The data bytes; a memory view of the array's buffer for ``order='F'``."""
        a = self.view(np.ndarray)
        if order == "F" and a.flags.f_contiguous:
            return memoryview(a.T).cast("B")
        return a.tobytes(order)


def _save_v5(path: Path, variables, compress: bool) -> None:
    import scipy.io as sio
    from scipy.io.matlab import MatlabObject

    numeric_bytes = 0

    def conv(x):
        out = _conv(x)
        if isinstance(out, np.ndarray) and out.dtype.kind in "biufc":
            nonlocal numeric_bytes
            numeric_bytes += out.nbytes
        elif sp.issparse(out):
            numeric_bytes += out.data.nbytes + out.indices.nbytes
        return out

    def _conv(x):
        s = _as_str(x)
        if s is not None:
            return np.array(s) if s else np.zeros((0, 0), dtype="U1")
        if x is None:
            return np.zeros((0, 0))
        if sp.issparse(x):
            x = sp.csc_matrix(x)
            if x.dtype.kind not in "bfc":
                x = x.astype(np.float64)
            return x
        a = _prep_scalar_array(x)
        if a is not None:
            return _WriteThrough.wrap(a)
        if isinstance(x, np.ndarray) and x.dtype.kind in "US":
            if x.size == 0:
                return np.zeros((0, 0), dtype="U1")
            return np.asarray(x, dtype="U").reshape(-1)
        if isinstance(x, StructArray):
            return struct_array(list(x), x.shape, x.fields)
        if isinstance(x, MatObject):
            arr = struct_array([dict(x)], (1, 1), list(x.keys()))
            return MatlabObject(arr, x.classname)
        if isinstance(x, Mapping):
            if len(x) == 0:
                return {}  # scipy writes an empty dict as a field-less 1x1 struct
            return struct_array([x], (1, 1), list(x.keys()))
        if _is_list(x):
            shape = getattr(x, "shape", None) or (1, len(x))
            out = np.empty(len(x), dtype=object)
            for i, el in enumerate(x):
                out[i] = conv(el)
            return out.reshape(shape, order="F")
        if isinstance(x, np.ndarray) and x.dtype == object:
            out = np.empty(x.size, dtype=object)
            for i, el in enumerate(x.ravel(order="F")):
                out[i] = conv(el)
            return out.reshape(_mshape(x.shape), order="F")
        raise LamegValueError(f"cannot store a value of type {type(x).__name__} in a MAT-file")

    def struct_array(elems, shape, fields):
        fields = [str(k) for k in fields]
        for k in fields:
            _check_name(k)
        if not fields:
            if len(elems) == 1:
                return {}
            raise LamegValueError("cannot store a field-less struct array in a MAT-5 file")
        arr = np.empty(len(elems), dtype=[(k, object) for k in fields])
        for i, el in enumerate(elems):
            if not isinstance(el, Mapping) or list(map(str, el.keys())) != fields:
                raise LamegValueError(
                    f"struct array elements must all have the fields {fields} in that order"
                )
            for k in fields:
                arr[i][k] = conv(el[k])
        return arr.reshape(shape, order="F")

    mdict = {k: conv(v) for k, v in variables.items()}
    compress = compress and numeric_bytes <= COMPRESS_LIMIT_BYTES
    with warnings.catch_warnings(), open(path, "w+b") as fh:
        warnings.simplefilter("ignore")
        # small elements (names, tags, labels) gathered in a buffer; large arrays pass through
        stream = fh if compress else io.BufferedWriter(
            MappedWriter(fh, numeric_bytes + 2**20), 2**16)
        try:
            sio.savemat(stream, mdict, format="5", do_compression=compress,
                        long_field_names=True, oned_as="row")
        finally:
            if stream is not fh:
                stream.close()


def _mat73_header() -> bytes:
    now = datetime.datetime.now().strftime("%a %b %d %H:%M:%S %Y")
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {now} HDF5 schema 1.00 ."
    b = text.encode("ascii")[:116].ljust(116, b" ")
    b += b"\x00" * 8 + b"\x00\x02" + b"IM"
    return b.ljust(512, b"\x00")


def _save_h5(path: Path, variables) -> None:
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        writer = _H5Writer(f)
        for k, v in variables.items():
            writer.write(f, k, v)
    with open(path, "r+b") as fh:
        fh.write(_mat73_header())


_H5_CLASS = {
    np.dtype(np.float64): "double", np.dtype(np.float32): "single",
    np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8",
    np.dtype(np.int16): "int16", np.dtype(np.uint16): "uint16",
    np.dtype(np.int32): "int32", np.dtype(np.uint32): "uint32",
    np.dtype(np.int64): "int64", np.dtype(np.uint64): "uint64",
    np.dtype(np.complex128): "double", np.dtype(np.complex64): "single",
}


class _H5Writer:
    def __init__(self, f):
        self.h5py = h5py
        self.f = f
        self.refs = f.require_group("#refs#")
        self.counter = 0

    @staticmethod
    def _set_class(obj, cls: str) -> None:
        obj.attrs.create("MATLAB_class", np.bytes_(cls))

    def _new_ref_name(self) -> str:
        self.counter += 1
        n, s = self.counter, ""
        while n:
            n, r = divmod(n - 1, 26)
            s = chr(ord("a") + r) + s
        return s

    def _ref(self, value):
        name = self._new_ref_name()
        obj = self.write(self.refs, name, value)
        return obj.ref

    def _empty(self, parent, name, shape, cls, fields=None):
        ds = parent.create_dataset(name, data=np.array(shape, dtype=np.uint64))
        self._set_class(ds, cls)
        ds.attrs.create("MATLAB_empty", np.uint8(1))
        if fields is not None:
            self._set_fields(ds, fields)
        return ds

    def _set_fields(self, obj, fields) -> None:
        vlen = self.h5py.vlen_dtype(np.dtype("S1"))
        data = np.empty(len(fields), dtype=object)
        for i, k in enumerate(fields):
            data[i] = np.array(list(k), dtype="S1")
        obj.attrs.create("MATLAB_fields", data, dtype=vlen)

    def _refs_dataset(self, parent, name, values, shape):
        refs = np.empty(len(values), dtype=self.h5py.ref_dtype)
        for i, v in enumerate(values):
            refs[i] = self._ref(v)
        refs = refs.reshape(shape, order="F").T
        return parent.create_dataset(name, data=refs, dtype=self.h5py.ref_dtype)

    def write(self, parent, name: str, x):
        s = _as_str(x)
        if s is not None:
            if not s:
                return self._empty(parent, name, (0, 0), "char")
            codes = np.array([ord(c) for c in s], dtype=np.uint32)
            if codes.max() > 0xFFFF:
                raise LamegValueError("characters outside the Basic Multilingual Plane cannot "
                                      "be stored in a MATLAB char array")
            ds = parent.create_dataset(name, data=codes.astype(np.uint16).reshape(-1, 1))
            self._set_class(ds, "char")
            ds.attrs.create("MATLAB_int_decode", np.int32(2))
            return ds
        if x is None:
            return self._empty(parent, name, (0, 0), "double")
        if sp.issparse(x):
            return self._sparse(parent, name, x)
        a = _prep_scalar_array(x)
        if a is not None:
            return self._numeric(parent, name, a)
        if isinstance(x, np.ndarray) and x.dtype.kind in "US":
            rows = [str(r) for r in np.asarray(x, dtype="U").reshape(-1)]
            if not rows:
                return self._empty(parent, name, (0, 0), "char")
            width = max(len(r) for r in rows)
            codes = np.array([[ord(c) for c in r.ljust(width)] for r in rows], dtype=np.uint16)
            ds = parent.create_dataset(name, data=codes.T)
            self._set_class(ds, "char")
            ds.attrs.create("MATLAB_int_decode", np.int32(2))
            return ds
        if isinstance(x, StructArray):
            return self._struct_array(parent, name, list(x), x.shape, x.fields)
        if isinstance(x, Mapping):
            g = parent.create_group(name)
            cls = x.classname if isinstance(x, MatObject) else "struct"
            self._set_class(g, cls)
            if isinstance(x, MatObject):
                g.attrs.create("MATLAB_object_decode", np.int32(2))
            fields = [str(k) for k in x.keys()]
            for k in fields:
                _check_name(k)
            self._set_fields(g, fields)
            for k, v in x.items():
                self.write(g, str(k), v)
            return g
        if _is_list(x):
            shape = getattr(x, "shape", None) or (1, len(x))
            if len(x) == 0:
                return self._empty(parent, name, shape, "cell")
            ds = self._refs_dataset(parent, name, list(x), shape)
            self._set_class(ds, "cell")
            return ds
        if isinstance(x, np.ndarray) and x.dtype == object:
            return self.write(parent, name, MatCell(list(x.ravel(order="F")), _mshape(x.shape)))
        raise LamegValueError(f"cannot store a value of type {type(x).__name__} in a MAT-file")

    def _numeric(self, parent, name, a: np.ndarray):
        if a.size == 0:
            cls = "logical" if a.dtype == bool else _H5_CLASS.get(a.dtype.newbyteorder("="),
                                                                   "double")
            return self._empty(parent, name, a.shape, cls)
        if a.dtype == bool:
            ds = parent.create_dataset(name, data=a.astype(np.uint8).T)
            self._set_class(ds, "logical")
            ds.attrs.create("MATLAB_int_decode", np.int32(1))
            return ds
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
        cls = _H5_CLASS.get(a.dtype)
        if cls is None:
            a = a.astype(np.float64)
            cls = "double"
        if a.dtype.kind == "c":
            base = np.float64 if a.dtype.itemsize == 16 else np.float32
            comp = np.empty(a.shape, dtype=[("real", base), ("imag", base)])
            comp["real"], comp["imag"] = a.real, a.imag
            a = comp
        ds = parent.create_dataset(name, data=np.ascontiguousarray(a.T))
        self._set_class(ds, cls)
        return ds

    def _sparse(self, parent, name, x):
        x = sp.csc_matrix(x)
        x.sort_indices()
        g = parent.create_group(name)
        cls = "logical" if x.dtype == bool else "double"
        self._set_class(g, cls)
        g.attrs.create("MATLAB_sparse", np.uint64(x.shape[0]))
        g.create_dataset("jc", data=x.indptr.astype(np.uint64))
        if x.nnz:
            g.create_dataset("ir", data=x.indices.astype(np.uint64))
            data = x.data
            if data.dtype == bool:
                data = data.astype(np.uint8)
            elif data.dtype.kind == "c":
                comp = np.empty(data.shape, dtype=[("real", np.float64), ("imag", np.float64)])
                comp["real"], comp["imag"] = data.real, data.imag
                data = comp
            else:
                data = data.astype(np.float64)
            g.create_dataset("data", data=data)
        return g

    def _struct_array(self, parent, name, elems, shape, fields):
        fields = [str(k) for k in fields]
        for k in fields:
            _check_name(k)
        if not elems:
            return self._empty(parent, name, shape, "struct", fields)
        for el in elems:
            if not isinstance(el, Mapping) or list(map(str, el.keys())) != fields:
                raise LamegValueError(
                    f"struct array elements must all have the fields {fields} in that order"
                )
        g = parent.create_group(name)
        self._set_class(g, "struct")
        self._set_fields(g, fields)
        for k in fields:
            self._refs_dataset(g, k, [el[k] for el in elems], shape)
        return g
