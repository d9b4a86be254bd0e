"""Large numeric arrays of uncompressed MAT-5 files, memory-mapped instead of read.

A full-resolution SPM dataset holds its inversion inside ``D``: ``inverse.M`` and
``inverse.L`` alone are 400 MB for 314,699 sources, read (and copied) at every ``load_meeg``
although most readers only want the head model. For an uncompressed little-endian MAT-5 file
(what lameg writes for large headers), :func:`prune_large_arrays` walks the element tree,
records where every large real double matrix lies in the file and builds a copy of the file
in memory in which those matrices are empty; SciPy parses that small copy, and
:func:`restore_mapped` puts copy-on-write memory maps of the recorded matrices back in place:
the values are read from the page cache only where used, and may be modified in memory
without touching the file.

Element layout (MATLAB "MAT-File Format", 2019): 128-byte header; then tagged elements, each
padded to 8 bytes; a tag whose upper 16 bits are non-zero is a "small" element (type and size
in 4 bytes, data in the next 4). An ``miMATRIX`` holds the array flags, dimensions and name,
then: field-name length, field names and one ``miMATRIX`` per field and element (struct;
objects first give their class name); one ``miMATRIX`` per element (cell); or the real (and
imaginary) data (numeric).
"""

from __future__ import annotations

import math
import mmap
import struct
from pathlib import Path

import numpy as np

__all__ = ["locate_double_matrix", "prune_large_arrays", "restore_mapped"]

_MI_INT32, _MI_UINT32, _MI_DOUBLE, _MI_MATRIX = 5, 6, 9, 14
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_DOUBLE = 1, 2, 3, 6


class _Unsupported(Exception):
    """The file uses a feature this walker does not map (the caller reads it whole)."""


# whatever the walker cannot follow: the caller reads the file with SciPy (which may reject it)
_WALK_ERRORS = (_Unsupported, struct.error, UnicodeDecodeError, ValueError, IndexError,
                OverflowError)


def _walk(path: Path, fn):
    """``fn(view)`` on a read-only map of a little-endian MAT-5 file (elements from byte
    128); None for other files or when the walk fails."""
    with open(path, "rb") as fh:
        try:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            return None
    view = memoryview(buf)
    try:
        result = fn(view) if len(view) >= 136 and bytes(view[126:128]) == b"IM" else None
    except _WALK_ERRORS:
        result = None
    view.release()
    buf.close()
    return result


def _tag(buf, pos: int) -> tuple[int, int, int, int]:
    """(type, number of bytes, data offset, offset of the next element)."""
    if pos + 8 > len(buf):
        raise _Unsupported("truncated element")
    word, nbytes = struct.unpack_from("<II", buf, pos)
    if word >> 16:  # small data element
        return word & 0xFFFF, word >> 16, pos + 4, pos + 8
    end = pos + 8 + nbytes + (-nbytes) % 8
    if end > len(buf):
        raise _Unsupported("element runs past the end of the file")
    return word, nbytes, pos + 8, end


def _header(buf, pos: int):
    """Class, complex flag, dimensions, name and the ends of the flags, dimensions and name
    elements of the ``miMATRIX`` content starting at ``pos``."""
    t, n, d, flags_end = _tag(buf, pos)
    if t != _MI_UINT32 or n != 8:
        raise _Unsupported("unexpected array flags")
    flags = struct.unpack_from("<I", buf, d)[0]
    t, n, d, dims_end = _tag(buf, flags_end)
    if t != _MI_INT32:
        raise _Unsupported("unexpected dimensions")
    dims = struct.unpack_from(f"<{n // 4}i", buf, d)
    if min(dims, default=0) < 0:
        raise _Unsupported("negative dimensions")
    _, n, d, name_end = _tag(buf, dims_end)
    name = bytes(buf[d:d + n]).decode("latin-1")
    return flags & 0xFF, bool(flags & 0x0800), dims, name, flags_end, dims_end, name_end


def _real_double_data(buf, pos: int, end: int, count: int) -> int | None:
    """Offset of the real data of a double matrix of ``count`` values stored as ``miDOUBLE``
    from ``pos`` to ``end`` (None when stored otherwise, e.g. as smaller integers)."""
    t, n, d, data_end = _tag(buf, pos)
    return d if t == _MI_DOUBLE and n == 8 * count and data_end == end else None


def locate_double_matrix(path: Path, name: str) -> tuple[int, tuple[int, ...]] | None:
    """Byte offset and dimensions of the top-level real double matrix ``name``.

    Parameters
    ----------
    path : Path
        An uncompressed little-endian MAT-5 file.
    name : str
        The variable.

    Returns
    -------
    (int, tuple of int) or None
        Where its values start (column-major float64) and its MATLAB dimensions; None when the
        file or the variable cannot be mapped (compressed, complex, sparse, not double,
        absent...): read it whole.
    """
    def find(view):
        pos = 128
        while pos < len(view):
            t, n, d, nxt = _tag(view, pos)
            if t == _MI_MATRIX:
                cls, cplx, dims, var, _, _, name_end = _header(view, d)
                if var == name:
                    data = _real_double_data(view, name_end, d + n, math.prod(dims)) \
                        if cls == _MX_DOUBLE and not cplx else None
                    return None if data is None else (data, tuple(dims))
            pos = nxt
        return None

    return _walk(path, find)


def _matrix(buf, pos: int, end: int, path: tuple, min_bytes: int, out: list, maps: list,
            under: frozenset) -> int:
    """Append the pieces of the ``miMATRIX`` content ``buf[pos:end]`` with its large arrays
    emptied to ``out`` (one list for the whole file: joined once); returns their length."""
    cls, is_complex, dims, _, flags_end, dims_end, name_end = _header(buf, pos)
    count = math.prod(dims) if dims else 0
    if cls == _MX_DOUBLE and not is_complex:
        data = _real_double_data(buf, name_end, end, count)
        inside = not under or any(st[0] == "field" and st[1] in under for st in path)
        if data is not None and 8 * count >= min_bytes and inside:
            maps.append((path, data, tuple(dims)))
            pieces = [buf[pos:flags_end],                        # the array flags
                      struct.pack("<IIii", _MI_INT32, 8, 0, 0),  # 0 x 0
                      buf[dims_end:name_end],                    # the name
                      struct.pack("<II", _MI_DOUBLE, 0)]         # no data
            out += pieces
            return sum(len(x) for x in pieces)
    if cls not in (_MX_CELL, _MX_STRUCT, _MX_OBJECT):
        out.append(buf[pos:end])  # char, sparse, integer, logical, small double: as stored
        return end - pos
    if count > (end - pos) // 8:  # every element takes at least one 8-byte tag
        raise _Unsupported("implausible dimensions")
    p = name_end
    names: list[str] = []
    if cls in (_MX_STRUCT, _MX_OBJECT):
        if cls == _MX_OBJECT:
            p = _tag(buf, p)[3]  # the class name
        _, _, d, len_end = _tag(buf, p)
        width = struct.unpack_from("<i", buf, d)[0]
        t, n, d, p = _tag(buf, len_end)
        raw = bytes(buf[d:d + n])
        names = [raw[i:i + width].split(b"\0", 1)[0].decode("latin-1")
                 for i in range(0, n, width)] if width > 0 else []
    out.append(buf[pos:p])  # flags, dimensions, name (class name, field names)
    size = p - pos
    keys = [(i, None) for i in range(count)] if cls == _MX_CELL else \
        [(i, nm) for i in range(count) for nm in names]
    for i, nm in keys:
        t, n, d, nxt = _tag(buf, p)
        if t != _MI_MATRIX or nxt > end:
            raise _Unsupported("unexpected child element")
        step = (("elem", i, count),) if nm is None else \
            ((("elem", i, count),) if count > 1 else ()) + (("field", nm),)
        slot = len(out)
        out.append(b"")  # the child's tag, once its length is known
        n_child = _matrix(buf, d, d + n, path + step, min_bytes, out, maps, under)
        out[slot] = struct.pack("<II", _MI_MATRIX, n_child)
        size += 8 + n_child
        p = nxt
    if p != end:
        raise _Unsupported("trailing bytes in a container")
    return size


def prune_large_arrays(path: Path, min_bytes: int = 2**20, under: tuple[str, ...] = ()):
    """A small in-memory copy of an uncompressed MAT-5 file without its large double arrays.

    Parameters
    ----------
    path : Path
        The MAT-file.
    min_bytes : int
        Real double matrices of at least this many bytes are left out (and recorded).
    under : tuple of str
        Only arrays inside a struct field of one of these names (at any depth) are left out;
        empty: anywhere.

    Returns
    -------
    (bytes, list) or None
        The pruned file and, for every array left out, ``(variable, steps, offset, dims)``:
        the top-level variable, the steps to it (``('field', name)`` or
        ``('elem', index, count)``), its byte offset in the file and its MATLAB dimensions.
        None when nothing would be left out or the file cannot be walked (compressed, big-endian,
        or unexpected content): read it whole.
    """
    return _walk(path, lambda view: _prune(view, min_bytes, frozenset(under)))


def _prune(view: memoryview, min_bytes: int, under: frozenset):
    out: list = [bytes(view[:128])]
    found: list = []
    pos = 128
    while pos < len(view):
        t, n, d, nxt = _tag(view, pos)
        if t != _MI_MATRIX:
            return None  # miCOMPRESSED (or unknown): SciPy reads it
        name = _header(view, d)[3]
        maps: list = []
        slot = len(out)
        out.append(b"")  # the variable's tag, once its pruned length is known
        out[slot] = struct.pack("<II", _MI_MATRIX,
                                _matrix(view, d, d + n, (), min_bytes, out, maps, under))
        found += [(name, steps, off, dims) for steps, off, dims in maps]
        pos = nxt
    if not found:
        return None
    return b"".join(out), found


def restore_mapped(variables: dict, path: Path, found: list, squeeze) -> None:
    """Put copy-on-write memory maps of the recorded arrays into the loaded variables.

    Parameters
    ----------
    variables : dict
        What :func:`lameg.io.matfile.load_mat` made of the pruned file.
    path : Path
        The MAT-file (mapped).
    found : list
        The second item returned by :func:`prune_large_arrays`.
    squeeze : callable
        The reader's numeric conversion (vectors to 1-D, ...), applied to each map.
    """
    for name, steps, offset, dims in found:
        arr = np.memmap(path, dtype="<f8", mode="c", offset=offset, shape=dims, order="F")
        parent, key = variables, name
        for kind, *rest in steps:
            node = parent[key]
            if kind == "field":
                parent, key = node, rest[0]
            elif rest[1] > 1:  # a cell or struct array element; 1x1 structs are dicts
                parent, key = node, rest[0]
            elif isinstance(node, list):  # a 1x1 cell
                parent, key = node, 0
        parent[key] = squeeze(arr)
