"""STL triangle meshes (binary and ASCII), e.g. 3-D optical scans of the face.

An STL file stores every triangle with its own three corner coordinates (plus a facet normal,
which is ignored here); shared corners are repeated. :func:`read_stl` merges corners with
identical coordinates into one vertex (as VTK's ``vtkSTLReader`` does), numbered in order of
first appearance, and drops triangles that collapse when corners merge. STL has no unit: scans
are usually in millimetres, sometimes in metres.

Binary layout (little endian): an 80-byte header, ``uint32`` triangle count, then per triangle
12 ``float32`` (normal, three corners) and a ``uint16`` attribute count (50 bytes). A file whose
size is exactly ``84 + 50 n`` is read as binary (a binary header may start with ``solid``);
otherwise it must be ASCII (``solid ... facet normal ... outer loop / vertex x y z ...
endloop / endfacet ... endsolid``). Writes are atomic.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .._utils import atomic_path
from ..exceptions import LamegDataError, LamegFileNotFoundError, LamegFormatError, LamegValueError

__all__ = ["read_stl", "write_stl"]

PathLike = str | os.PathLike

_BINARY_DTYPE = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
_NUMBER = rb"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf|infinity))"
_VERTEX = re.compile(rb"\bvertex\s+" + _NUMBER + rb"\s+" + _NUMBER + rb"\s+" + _NUMBER,
                     re.IGNORECASE)
_FACET = re.compile(rb"\bfacet\b", re.IGNORECASE)
_VERTEX_WORD = re.compile(rb"\bvertex\b", re.IGNORECASE)


def _read_corners(path: Path) -> tuple[np.ndarray, bool]:
    """Triangle corners (n_triangles, 3, 3) float32 and whether the file is binary."""
    data = path.read_bytes()
    if len(data) >= 84:
        n = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
        if len(data) == 84 + 50 * n:
            rec = np.frombuffer(data, dtype=_BINARY_DTYPE, count=n, offset=84)
            return rec["corners"].astype(np.float32), True
    head = data[:512].lstrip()
    if not head[:5].lower() == b"solid":
        raise LamegFormatError(
            f"{path} is not an STL file: a binary STL has 84 + 50 n bytes (this one has "
            f"{len(data)}, the header announces {n if len(data) >= 84 else 'nothing'}) and an "
            "ASCII STL starts with 'solid'; the file may be truncated or of another format")
    values = _VERTEX.findall(data)
    n_vertex_words = len(_VERTEX_WORD.findall(data))
    n_facets = len(_FACET.findall(data))
    if n_vertex_words != len(values):
        raise LamegFormatError(
            f"{path}: {n_vertex_words - len(values)} 'vertex' line(s) of the ASCII STL do not "
            "hold three numbers")
    if n_facets == 0 or len(values) != 3 * n_facets:
        raise LamegFormatError(
            f"{path}: the ASCII STL has {n_facets} facet(s) and {len(values)} vertex line(s); "
            "every facet must have exactly three vertices (triangles)")
    corners = np.array(values, dtype=np.float64).astype(np.float32).reshape(-1, 3, 3)
    return corners, False


def read_stl(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary or ASCII STL file, merging repeated corners into shared vertices.

    Parameters
    ----------
    path : str or path-like
        The ``.stl`` file.

    Returns
    -------
    vertices : ndarray of float64, shape (n_vertices, 3)
        Distinct corner positions (the file's float32 values, in the file's unit), in order of
        first appearance.
    faces : ndarray of int64, shape (n_faces, 3)
        0-based triangles, in file order, without the triangles whose corners coincide.

    Raises
    ------
    LamegFileNotFoundError
        If the file does not exist.
    LamegFormatError
        If it is neither a complete binary STL nor a well-formed ASCII STL, or holds no
        triangle.
    LamegDataError
        If a coordinate is NaN or infinite.
    """
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"STL file {path} does not exist")
    corners, binary = _read_corners(path)
    if len(corners) == 0:
        raise LamegFormatError(f"{path} holds no triangle")
    if not np.all(np.isfinite(corners)):
        bad = int((~np.isfinite(corners)).any(axis=(1, 2)).sum())
        raise LamegDataError(f"{path}: {bad} triangle(s) have NaN or infinite coordinates")
    flat = np.ascontiguousarray(corners.reshape(-1, 3) + np.float32(0.0))   # -0.0 -> 0.0
    keys = flat.view(np.dtype((np.void, flat.dtype.itemsize * 3))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")          # unique values in first-appearance order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    vertices = flat[first[order]].astype(np.float64)
    faces = rank[inverse.ravel()].reshape(-1, 3).astype(np.int64)
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = faces[ok]
    if len(faces) == 0:
        raise LamegFormatError(f"{path}: every triangle is degenerate (coinciding corners)")
    used = np.zeros(len(vertices), bool)
    used[faces.ravel()] = True
    if not used.all():                                # corners of dropped triangles only
        new = np.cumsum(used) - 1
        vertices, faces = vertices[used], new[faces]
    return vertices, faces


def write_stl(path: PathLike, vertices: np.ndarray, faces: np.ndarray, *, binary: bool = True,
              name: str = "lameg") -> None:
    """Write a triangle mesh as an STL file (atomically).

    Parameters
    ----------
    path : str or path-like
        Output file (replaced atomically if it exists).
    vertices : array_like, shape (n_vertices, 3)
        Vertex positions (stored as float32, in any unit).
    faces : array_like of int, shape (n_faces, 3)
        0-based triangles; facet normals follow the right-hand rule of each triangle.
    binary : bool
        Binary STL (default) or ASCII.
    name : str
        Solid name (ASCII) or header text (binary, at most 80 ASCII characters).
    """
    from .._validate import check_mesh

    vertices, faces = check_mesh(vertices, faces, finite=True)
    if len(faces) == 0:
        raise LamegValueError("an STL file needs at least one triangle")
    if not name.isascii() or len(name) > 80 or "\n" in name:
        raise LamegValueError("name must be at most 80 ASCII characters on one line")
    corners = vertices[faces].astype(np.float32)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = (normals / np.where(length > 0, length, 1.0)).astype(np.float32)
    with atomic_path(path, suffix=".stl") as tmp:
        if binary:
            rec = np.zeros(len(faces), dtype=_BINARY_DTYPE)
            rec["normal"], rec["corners"] = normals, corners
            with open(tmp, "wb") as fh:
                fh.write(name.encode("ascii").ljust(80, b" "))
                fh.write(np.uint32(len(faces)).astype("<u4").tobytes())
                fh.write(rec.tobytes())
        else:
            rows = np.concatenate([normals[:, None, :], corners], axis=1).reshape(-1, 12)
            facet = ("facet normal {:.9g} {:.9g} {:.9g}\n outer loop\n"
                     "  vertex {:.9g} {:.9g} {:.9g}\n  vertex {:.9g} {:.9g} {:.9g}\n"
                     "  vertex {:.9g} {:.9g} {:.9g}\n endloop\nendfacet\n")
            body = "".join(facet.format(*r) for r in rows.tolist())
            Path(tmp).write_text(f"solid {name}\n{body}endsolid {name}\n", encoding="ascii")
