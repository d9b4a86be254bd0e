"""Face and vertex normals, areas, signed volume and orientation of triangle meshes.

Sign convention: with FreeSurfer's counter-clockwise (outward) winding, the normals returned
here point **outward** (away from the enclosed volume). laMEG's dipole orientations point
inward (pial -> white); :mod:`lameg.surf` negates explicitly where it needs that convention.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._docs import fill_doc

__all__ = [
    "normit",
    "face_normals",
    "face_areas",
    "vertex_normals",
    "vertex_areas",
    "signed_volume",
    "orient_outward",
    "triangle_quality",
]


def normit(vectors: np.ndarray, eps: float | None = None) -> np.ndarray:
    """Row-normalise vectors; rows with a norm below ``eps`` are returned unchanged.

    Parameters
    ----------
    vectors : array-like, shape (n, d)
        Row vectors, any unit.
    eps : float, optional
        Threshold (default: machine epsilon of float64).

    Returns
    -------
    ndarray of float64, shape (n, d)
        The rows divided by their Euclidean norms (a copy).
    """
    vectors = np.array(vectors, dtype=np.float64, copy=True)
    if vectors.size == 0:
        return vectors
    eps = np.finfo(np.float64).eps if eps is None else eps
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    norms[norms < eps] = 1.0
    return vectors / norms


@fill_doc
def face_normals(vertices: np.ndarray, faces: np.ndarray, unit: bool = True,
                 eps: float | None = None) -> np.ndarray:
    """Face normals ``(v1 - v0) x (v2 - v0)``.

    Parameters
    ----------
    %(mesh_params_body)s
    unit : bool
        Normalise to unit length. With ``unit=False`` the length equals twice the triangle
        area (mm^2 for mm input).
    eps : float, optional
        With ``unit``: normals shorter than this stay unnormalised (default: machine epsilon
        of float64, see :func:`normit`).

    Returns
    -------
    ndarray of float64, shape (n_faces, 3)
        One normal per face, outward for counter-clockwise (outward) winding.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    v0 = vertices[faces[:, 0]]
    n = np.cross(vertices[faces[:, 1]] - v0, vertices[faces[:, 2]] - v0)
    return normit(n, eps) if unit else n


@fill_doc
def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangle areas.

    Parameters
    ----------
    %(mesh_params_body)s

    Returns
    -------
    ndarray of float64, shape (n_faces,)
        Area of every face, in squared vertex units (mm^2 for mm).
    """
    return 0.5 * np.linalg.norm(face_normals(vertices, faces, unit=False), axis=1)


def _scatter_faces(values: np.ndarray, faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Sum per-face rows ``values`` (n_faces, k) onto the three vertices of each face."""
    n_faces = faces.shape[0]
    rows = faces.ravel()
    cols = np.repeat(np.arange(n_faces), 3)
    inc = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_vertices, n_faces))
    return np.asarray(inc @ values)


@fill_doc
def vertex_normals(vertices: np.ndarray, faces: np.ndarray, weighting: str = "area",
                   face_eps: float | None = None) -> np.ndarray:
    """Unit vertex normals, shape (n_vertices, 3), outward for outward-wound faces.

    Parameters
    ----------
    %(mesh_params_body)s
    weighting : {'area', 'unit'}
        ``'area'``: sum of area-weighted face normals; ``'unit'``: sum of unit face normals
        (SPM's and laMEG's choice). Vertices without faces get a zero vector.
    face_eps : float, optional
        With ``weighting='unit'``: face normals shorter than this are summed unnormalised
        (default: machine epsilon of float64; SPM normalises every face with a non-zero
        normal, which ``np.finfo(float).tiny`` reproduces).

    Returns
    -------
    ndarray of float64, shape (n_vertices, 3)
        Unit normal of every vertex (zero for vertices used by no face).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if weighting not in ("area", "unit"):
        raise ValueError("weighting must be 'area' or 'unit'")
    fn = face_normals(vertices, faces, unit=(weighting == "unit"), eps=face_eps)
    return normit(_scatter_faces(fn, faces, len(vertices)))


@fill_doc
def vertex_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area attributed to each vertex (a third of each incident triangle).

    Parameters
    ----------
    %(mesh_params_body)s

    Returns
    -------
    ndarray of float64, shape (n_vertices,)
        Vertex areas in squared vertex units (mm^2 for mm); they sum to the mesh area.
    """
    a = face_areas(vertices, faces)
    return _scatter_faces(a[:, None] / 3.0, np.asarray(faces, dtype=np.int64),
                          len(vertices))[:, 0]


def _cone_volumes6(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Six times the signed volume of the cone from ``origin`` (shape (3,) or one row per
    face) over every face."""
    v0, v1, v2 = (vertices[faces[:, k]] - origin for k in range(3))
    return np.einsum("ij,ij->i", v0, np.cross(v1, v2))


@fill_doc
def signed_volume(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray | None = None
                  ) -> float:
    """Signed volume enclosed by the mesh, relative to ``origin`` (default: vertex centroid).

    Positive when the faces are wound outward. For a closed mesh the value does not depend on
    ``origin``; for an open surface it is the signed volume of the cone from ``origin``.

    Parameters
    ----------
    %(mesh_params_body)s
    origin : array-like, shape (3,), or None
        Apex of the cones, in vertex units (None: centroid of the vertices used by faces).

    Returns
    -------
    float
        Signed volume in cubed vertex units (mm^3 for mm); 0.0 for no faces.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.size == 0:
        return 0.0
    o = vertices[np.unique(faces)].mean(axis=0) if origin is None else np.asarray(origin)
    return float(_cone_volumes6(vertices, faces, o).sum() / 6.0)


@fill_doc
def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip the winding of connected components whose signed volume is negative.

    Each connected component is tested on its own (relative to its own centroid), so the
    function is meaningful for closed surfaces and for cortical hemispheres with the medial
    wall removed (nearly closed). Faces must already be consistently wound within a component.

    Parameters
    ----------
    %(mesh_params_body)s

    Returns
    -------
    faces : ndarray, shape (n_faces, 3)
        Faces, outward-wound.
    flipped : ndarray of bool, shape (n_faces,)
        Which faces were flipped.
    """
    from .adjacency import connected_components, used_vertices

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).copy()
    if faces.size == 0:
        return faces, np.zeros(0, bool)
    labels = connected_components(faces, len(vertices))
    face_lab = labels[faces[:, 0]]
    n_lab = labels.max() + 1
    used = used_vertices(faces, len(vertices))
    cnt = np.bincount(labels[used], minlength=n_lab).astype(float)
    centroid = np.stack([np.bincount(labels[used], weights=vertices[used, k], minlength=n_lab)
                         for k in range(3)], axis=1) / np.maximum(cnt, 1)[:, None]
    vol = np.bincount(face_lab, weights=_cone_volumes6(vertices, faces, centroid[face_lab]),
                      minlength=n_lab)
    flip = (vol < 0)[face_lab]
    faces[flip] = faces[flip][:, ::-1]
    return faces, flip


@fill_doc
def triangle_quality(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Shape quality ``4 sqrt(3) area / sum(edge^2)`` of every triangle.

    Parameters
    ----------
    %(mesh_params_body)s

    Returns
    -------
    ndarray of float64, shape (n_faces,)
        Quality in [0, 1]: 1 for an equilateral triangle, 0 for a degenerate one.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    p0, p1, p2 = (vertices[faces[:, k]] for k in range(3))
    a2 = np.linalg.norm(np.cross(p1 - p0, p2 - p0), axis=1)
    l2 = ((p1 - p0) ** 2).sum(1) + ((p2 - p1) ** 2).sum(1) + ((p0 - p2) ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = 2.0 * np.sqrt(3.0) * a2 / l2
    return np.nan_to_num(q)
