"""GIfTI surface helpers in laMEG's layout.

laMEG (and SPM, which reads them) store a surface as a GIfTI image with data arrays

0. ``NIFTI_INTENT_POINTSET`` float32 (n_vertices, 3), millimetres;
1. ``NIFTI_INTENT_TRIANGLE`` int32 (n_faces, 3), 0-based;
2. optional ``NIFTI_INTENT_VECTOR`` float32 (n_vertices, 3): the dipole orientation of each
   vertex (SPM reads it as the mesh normals and uses it as the fixed source orientation).

Writes are atomic.
"""

from __future__ import annotations

import binascii
import functools
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np

from .._docs import fill_doc
from .._utils import atomic_path
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError

__all__ = ["create_surf_gifti", "read_surf_gifti", "write_surf_gifti", "gifti_arrays", "save_gifti"]

PathLike = str | os.PathLike

_POINTSET = nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]
_TRIANGLE = nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"]
_VECTOR = nib.nifti1.intent_codes["NIFTI_INTENT_VECTOR"]


def create_surf_gifti(vertices: np.ndarray, faces: np.ndarray,
                      normals: np.ndarray | None = None) -> nib.gifti.GiftiImage:
    """Build an in-memory GIfTI surface (POINTSET, TRIANGLE[, VECTOR]).

    Parameters
    ----------
    vertices : array_like, shape (n_vertices, 3)
        Coordinates in mm (stored as float32).
    faces : array_like, shape (n_faces, 3)
        0-based triangles (stored as int32).
    normals : array_like, shape (n_vertices, 3), optional
        Per-vertex orientation vectors (stored as float32, intent VECTOR).

    Returns
    -------
    nibabel.gifti.GiftiImage
        The surface: POINTSET, TRIANGLE and (with ``normals``) VECTOR data arrays.
    """
    arrays = [nib.gifti.GiftiDataArray(a, intent=intent, datatype=dtype, encoding="B64BIN")
              for a, intent, dtype in _surf_arrays(vertices, faces, normals)]
    return nib.gifti.GiftiImage(darrays=arrays)


def _surf_arrays(vertices, faces, normals) -> list[tuple[np.ndarray, str, str]]:
    """(array, intent, datatype) of each data array of a surface, validated."""
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise LamegValueError(f"vertices must have shape (n, 3), got {vertices.shape}")
    faces = faces.reshape(-1, 3) if faces.size == 0 else faces
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise LamegValueError(f"faces must have shape (n, 3), got {faces.shape}")
    # stored uncompressed (Base64Binary): zlib at nibabel's level dominates the write time of
    # large meshes and float coordinates barely compress; SPM and laMEG read both encodings.
    out = [(np.ascontiguousarray(vertices, dtype="<f4"), _POINTSET, "NIFTI_TYPE_FLOAT32"),
           (np.ascontiguousarray(faces, dtype="<i4"), _TRIANGLE, "NIFTI_TYPE_INT32")]
    if normals is not None:
        normals = np.asarray(normals)
        if normals.shape != vertices.shape:
            raise LamegValueError(
                f"normals must have the shape of vertices {vertices.shape}, got {normals.shape}")
        out.append((np.ascontiguousarray(normals, dtype="<f4"), _VECTOR, "NIFTI_TYPE_FLOAT32"))
    return out


@functools.cache
def _surf_xml_template(n_arrays: int) -> tuple[bytes, ...]:
    """nibabel's XML of a surface with ``n_arrays`` arrays, split around their ``Data``.

    Returns the pieces between the data of the arrays, with ``%d`` for each array's ``Dim0``
    (made from a one-vertex surface, so the layout is whatever nibabel writes).
    """
    one = np.zeros((1, 3))
    img = create_surf_gifti(one, np.zeros((1, 3), int), one if n_arrays == 3 else None)
    pieces = re.split(rb"<Data>[^<]*</Data>", img.to_xml())
    if len(pieces) != n_arrays + 1:
        raise LamegFormatError("unexpected GIfTI layout from nibabel")
    out = []
    for piece in pieces:
        piece = piece.replace(b"%", b"%%")
        piece, n = re.subn(rb'\bDim0="1"', b'Dim0="%d"', piece)
        if n > 1:
            raise LamegFormatError("unexpected GIfTI layout from nibabel")
        out.append(piece)
    return tuple(out)


def gifti_arrays(img: nib.gifti.GiftiImage, source: str = "GIfTI image"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Extract the vertices, faces and normals of a GIfTI surface.

    Arrays are found by intent (POINTSET, TRIANGLE, VECTOR); when intents are missing the
    positional layout 0/1/2 is used.

    Parameters
    ----------
    img : nibabel.gifti.GiftiImage
        The surface image.
    source : str
        Name of the image used in error messages (e.g. its file name).

    Returns
    -------
    vertices : ndarray of float64, shape (n_vertices, 3)
        Vertex coordinates, in the file's unit (mm for lameg's and SPM's surfaces).
    faces : ndarray of int64, shape (n_faces, 3)
        0-based triangles.
    normals : ndarray of float64, shape (n_vertices, 3), or None
        Per-vertex vectors (None when the image has none).
    """
    darrays = list(img.darrays)
    by_intent = {}
    for da in darrays:
        by_intent.setdefault(int(da.intent), da)
    pts = by_intent.get(_POINTSET)
    tri = by_intent.get(_TRIANGLE)
    if pts is None or tri is None:
        if len(darrays) < 2:
            raise LamegFormatError(f"{source} is not a surface (needs a POINTSET and a TRIANGLE "
                                   "data array)")
        pts, tri = darrays[0], darrays[1]
    vec = by_intent.get(_VECTOR)
    if vec is None and len(darrays) > 2 and darrays[2].data.ndim == 2 \
            and darrays[2].data.shape == pts.data.shape and int(darrays[2].intent) != _TRIANGLE:
        vec = darrays[2]
    vertices = np.asarray(pts.data, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(tri.data, dtype=np.int64).reshape(-1, 3)
    normals = None if vec is None else np.asarray(vec.data, dtype=np.float64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise LamegFormatError(f"{source} has face indices outside [0, {len(vertices)})")
    return vertices, faces, normals


@fill_doc
def read_surf_gifti(path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a GIfTI surface file.

    Parameters
    ----------
    %(gii_path)s

    Returns
    -------
    vertices : ndarray, shape (n_vertices, 3), float64
        Vertex coordinates, mm.
    faces : ndarray, shape (n_faces, 3), int64
        0-based triangles.
    normals : ndarray, shape (n_vertices, 3), float64, or None
        Per-vertex vectors (None when the file has none).
    """
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"GIfTI surface not found: {path}")
    try:
        img = nib.load(str(path))
    except Exception as exc:
        raise LamegFormatError(f"cannot read GIfTI file {path}: {exc}") from exc
    if not isinstance(img, nib.gifti.GiftiImage):
        raise LamegFormatError(f"{path} is not a GIfTI image")
    return gifti_arrays(img, str(path))


@fill_doc
def gifti_n_vertices(path: PathLike) -> int:
    """Number of vertices of a GIfTI surface, from its header when possible.

    The ``Dim0`` attribute of the POINTSET array is read from the start of the file (no data
    decoded: a full-resolution multilayer mesh takes a fifth of a second to decode); a file
    whose header is not found there is read whole.

    Parameters
    ----------
    %(gii_path)s

    Returns
    -------
    int
        Number of vertices.
    """
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"GIfTI surface not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    for tag in re.finditer(rb"<DataArray\b([^>]*)>", head):
        if b"NIFTI_INTENT_POINTSET" in tag.group(1):
            dim0 = re.search(rb'\bDim0\s*=\s*"(\d+)"', tag.group(1))
            if dim0:
                return int(dim0.group(1))
            break
    return len(read_surf_gifti(path)[0])


def save_gifti(img: nib.gifti.GiftiImage, path: PathLike) -> None:
    """Write a GIfTI image atomically.

    Parameters
    ----------
    img : nibabel.gifti.GiftiImage
        The image to write.
    path : str or path-like
        Output file (replaced atomically if it exists).
    """
    with atomic_path(path, suffix=".gii") as tmp:
        nib.save(img, str(tmp))


def write_surf_gifti(path: PathLike, vertices: np.ndarray, faces: np.ndarray,
                     normals: np.ndarray | None = None) -> None:
    """Write a GIfTI surface (laMEG layout, see the module docstring) atomically.

    Parameters
    ----------
    path : str or path-like
        Output file (replaced atomically if it exists).
    vertices : array-like, shape (n_vertices, 3)
        Coordinates in mm (stored as float32).
    faces : array-like of int, shape (n_faces, 3)
        0-based triangles (stored as int32).
    normals : array-like, shape (n_vertices, 3), optional
        Per-vertex orientation vectors (stored as float32, intent VECTOR).
    """
    # the XML nibabel writes for this surface, assembled around the encoded arrays: a third of
    # nibabel's time on full-resolution meshes (no text conversion or escaping of the data)
    arrays = _surf_arrays(vertices, faces, normals)
    pieces = _surf_xml_template(len(arrays))
    chunks = [pieces[0] % (len(arrays[0][0]),)]
    for (a, _, _), after, nxt in zip(arrays, pieces[1:], [*arrays[1:], None]):
        chunks += [b"<Data>", binascii.b2a_base64(memoryview(a).cast("B"), newline=False),
                   b"</Data>", after % (len(nxt[0]),) if nxt is not None else after % ()]
    with atomic_path(path, suffix=".gii") as tmp, open(tmp, "wb") as fh:
        fh.writelines(chunks)
