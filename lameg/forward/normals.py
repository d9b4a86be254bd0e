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

from .._validate import check_mesh
from ..mesh.normals import normit, vertex_normals

__all__ = ["spm_mesh_normals", "area_weighted_normals", "normalize_rows"]

#: Row normalisation (rows shorter than machine epsilon are left as they are); the one
#: implementation is :func:`lameg.mesh.normals.normit`.
normalize_rows = normit


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
    vertices, faces = check_mesh(vertices, faces)
    return -vertex_normals(vertices, faces, weighting="unit", face_eps=np.finfo(float).tiny)


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
    vertices, faces = check_mesh(vertices, faces)
    return vertex_normals(vertices, faces, weighting="area")
