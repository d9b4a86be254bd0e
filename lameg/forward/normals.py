"""Vertex normals with the exact conventions of SPM and FieldTrip.

Two different vertex-normal definitions enter SPM's MEG forward model:

* :func:`spm_mesh_normals` -- the dipole orientations SPM uses when the cortical GIfTI has no
  ``VECTOR`` array (``spm_mesh_normals(M, true)``): the **unweighted** sum of the unit face normals
  around each vertex, normalised and **negated**. For outward-wound meshes (FreeSurfer, MNE) the
  result points into the brain.
* :func:`area_weighted_normals` -- FieldTrip's ``normals(pos, tri)`` used for the boundary of the
  Nolte single-shell model: the sum of the unnormalised face cross products (area weighting),
  normalised. The sign follows the triangle winding.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import LamegValueError

__all__ = ["face_normals", "spm_mesh_normals", "area_weighted_normals", "normalize_rows"]


def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise LamegValueError(f"vertices must have shape (n, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise LamegValueError(f"faces must have shape (m, 3), got {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        if not np.all(np.equal(np.mod(faces, 1), 0)):
            raise LamegValueError("faces must hold integer vertex indices")
        faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise LamegValueError(
            f"faces index vertices outside [0, {len(vertices) - 1}] (faces must be 0-based)"
        )
    return vertices, faces


def normalize_rows(v: np.ndarray, tiny: float = np.finfo(float).eps) -> np.ndarray:
    """Normalise the rows of ``v`` to unit length; rows with norm below ``tiny`` are left unchanged.

    Parameters
    ----------
    v : ndarray, shape (n, 3)
        Vectors.
    tiny : float
        Norm threshold below which a row is returned as it is (SPM/laMEG behaviour).

    Returns
    -------
    ndarray, shape (n, 3)
        The normalised rows (a new float array).
    """
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n < tiny, 1.0, n)


def face_normals(vertices: np.ndarray, faces: np.ndarray, unit: bool = True) -> np.ndarray:
    """Face normals ``(v1 - v0) x (v2 - v0)``.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, 3)
        Vertex positions (any length unit).
    faces : ndarray of int, shape (n_faces, 3)
        0-based triangle indices.
    unit : bool
        Normalise each face normal (degenerate faces stay zero).

    Returns
    -------
    ndarray, shape (n_faces, 3)
        One normal per face; unnormalised, its length is twice the face area.
    """
    vertices, faces = _check_mesh(vertices, faces)
    v0 = vertices[faces[:, 0]]
    fn = np.cross(vertices[faces[:, 1]] - v0, vertices[faces[:, 2]] - v0)
    return normalize_rows(fn, tiny=np.finfo(float).tiny) if unit else fn


def _accumulate(n_vertices: int, faces: np.ndarray, fn: np.ndarray) -> np.ndarray:
    rows = faces.ravel()
    cols = np.repeat(np.arange(len(faces)), 3)
    inc = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_vertices, len(faces)))
    return np.asarray(inc @ fn)


def spm_mesh_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """SPM's vertex normals (``spm_mesh_normals(M, true)``), pointing inward for outward meshes.

    ``n_i = -normalise(sum over faces f containing i of unit((v1 - v0) x (v2 - v0)))``.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, 3)
        Vertex positions (any length unit).
    faces : ndarray of int, shape (n_faces, 3)
        0-based triangles.

    Returns
    -------
    ndarray, shape (n_vertices, 3)
        Unit normals (rows of isolated vertices are zero).
    """
    vertices, faces = _check_mesh(vertices, faces)
    fn = face_normals(vertices, faces, unit=True)
    return -normalize_rows(_accumulate(len(vertices), faces, fn))


def area_weighted_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """FieldTrip's vertex normals: normalised sum of the unnormalised face cross products.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, 3)
        Vertex positions (any length unit).
    faces : ndarray of int, shape (n_faces, 3)
        0-based triangles; the sign of the normals follows their winding.

    Returns
    -------
    ndarray, shape (n_vertices, 3)
        Unit normals.
    """
    vertices, faces = _check_mesh(vertices, faces)
    fn = face_normals(vertices, faces, unit=False)
    return normalize_rows(_accumulate(len(vertices), faces, fn))
