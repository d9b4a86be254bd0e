"""Mesh topology: edges, adjacency, boundaries, non-manifold edges, components, vertex removal."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc

from .._docs import fill_doc

__all__ = [
    "as_faces",
    "used_vertices",
    "directed_edges",
    "edge_keys",
    "unique_edges",
    "edge_face_counts",
    "mesh_adjacency",
    "find_non_manifold_edges",
    "boundary_vertices",
    "connected_components",
    "split_connected_components",
    "remove_vertices",
    "remove_unconnected_vertices",
    "is_consistently_oriented",
]


def as_faces(faces) -> np.ndarray:
    """Faces as an int64 array of shape (n_faces, 3) (an empty input gives shape (0, 3)).

    Parameters
    ----------
    faces : array-like of int
        0-based vertex indices, three per triangle.

    Returns
    -------
    ndarray of int64, shape (n_faces, 3)
        The faces.
    """
    return np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def _n_vertices(faces: np.ndarray, n_vertices: int | None) -> int:
    """``n_vertices``, or ``faces.max() + 1`` when it is None."""
    return int(faces.max()) + 1 if n_vertices is None else int(n_vertices)


def used_vertices(faces, n_vertices: int) -> np.ndarray:
    """Mask of the vertices referenced by at least one face.

    Parameters
    ----------
    faces : array-like of int, shape (n_faces, 3)
        0-based vertex indices of each triangle.
    n_vertices : int
        Number of vertices of the mesh.

    Returns
    -------
    ndarray of bool, shape (n_vertices,)
        True for the vertices of some face.
    """
    used = np.zeros(int(n_vertices), bool)
    used[as_faces(faces).ravel()] = True
    return used


def _half_edge_multiplicity(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted half-edges (three per face, face-major) and the number of faces on each one's
    undirected edge."""
    e = np.sort(directed_edges(faces), axis=1)
    _, inv, counts = np.unique(edge_keys(e)[0], return_inverse=True, return_counts=True)
    return e, counts[inv.ravel()]


@fill_doc
def directed_edges(faces: np.ndarray) -> np.ndarray:
    """Directed half-edges (a -> b) of every face, face-major.

    Parameters
    ----------
    %(faces_params_body)s

    Returns
    -------
    ndarray of int64, shape (3 * n_faces, 2)
        Edges ``(f0, f1), (f1, f2), (f2, f0)`` of every face in turn.
    """
    return as_faces(faces)[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)


def edge_keys(edges: np.ndarray) -> tuple[np.ndarray, int]:
    """Encode (a, b) pairs (non-negative ints) as one int64 key ``a * base + b``.

    Key order is the lexicographic order of the pairs; ``np.unique`` on the 1-D keys is much
    faster than ``np.unique(..., axis=0)`` on the pairs.

    Parameters
    ----------
    edges : array-like of int, shape (n_edges, 2)
        Pairs of non-negative integers (vertex indices).

    Returns
    -------
    keys : ndarray of int64, shape (n_edges,)
        ``a * base + b`` for every pair.
    base : int
        ``max(edges) + 1`` (1 for no edges); ``a = keys // base``, ``b = keys % base``.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    base = int(edges.max()) + 1 if edges.size else 1
    return edges[:, 0] * base + edges[:, 1], base


@fill_doc
def unique_edges(faces: np.ndarray) -> np.ndarray:
    """Undirected edges of a mesh, each once.

    Parameters
    ----------
    %(faces_params_body)s

    Returns
    -------
    ndarray of int64, shape (n_edges, 2)
        Vertex pairs ``(a, b)`` with ``a < b``, in lexicographic order.
    """
    return edge_face_counts(faces)[0]


@fill_doc
def edge_face_counts(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges and how many faces share each (1 = boundary, 2 = manifold, >2 = not).

    Parameters
    ----------
    %(faces_params_body)s

    Returns
    -------
    edges : ndarray of int64, shape (n_edges, 2)
        Vertex pairs ``(a, b)`` with ``a < b``, in lexicographic order.
    counts : ndarray of int64, shape (n_edges,)
        Number of faces that contain each edge.
    """
    e = np.sort(directed_edges(faces), axis=1)
    if not e.size:
        return e.reshape(0, 2), np.zeros(0, np.int64)
    key, base = edge_keys(e)
    u, counts = np.unique(key, return_counts=True)
    return np.stack([u // base, u % base], axis=1), counts


@fill_doc
def mesh_adjacency(faces: np.ndarray, n_vertices: int | None = None) -> sp.csr_matrix:
    """Binary symmetric vertex adjacency (laMEG's ``_mesh_adjacency``).

    Parameters
    ----------
    %(faces_n_vertices_params_body)s

    Returns
    -------
    scipy.sparse.csr_matrix of int8, shape (n_vertices, n_vertices)
        1 where two vertices share an edge, 0 elsewhere. The diagonal is zero except for a
        face that repeats a vertex, which marks that vertex as its own neighbour (as SPM's
        ``spm_mesh_adjacency`` does); a graph Laplacian ``A - diag(A 1)`` is unaffected.
    """
    faces = as_faces(faces)
    n = _n_vertices(faces, n_vertices)
    if faces.size == 0:
        return sp.csr_matrix((n, n), dtype=np.int8)
    e = directed_edges(faces)
    rows = np.r_[e[:, 0], e[:, 1]]
    cols = np.r_[e[:, 1], e[:, 0]]
    a = sp.csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, n))
    a.data[:] = 1
    return a


@fill_doc
def find_non_manifold_edges(faces: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """Edges shared by more than two faces.

    Parameters
    ----------
    %(faces_params_body)s

    Returns
    -------
    dict of (int, int) to list of int
        ``{(a, b): face indices}`` with ``a < b``, the 0-based faces (sorted) that share
        each non-manifold edge.
    """
    faces = as_faces(faces)
    if faces.size == 0:
        return {}
    e, multiplicity = _half_edge_multiplicity(faces)
    face_id = np.repeat(np.arange(len(faces)), 3)
    bad = multiplicity > 2
    out: dict[tuple[int, int], list[int]] = {}
    for (a, b), f in zip(e[bad], face_id[bad]):
        out.setdefault((int(a), int(b)), []).append(int(f))
    return {k: sorted(set(v)) for k, v in out.items()}


@fill_doc
def boundary_vertices(faces: np.ndarray, n_vertices: int | None = None) -> np.ndarray:
    """Vertices on a boundary edge (an edge with one face).

    Parameters
    ----------
    %(faces_n_vertices_params_body)s

    Returns
    -------
    ndarray of bool, shape (n_vertices,)
        True for the vertices of boundary edges.
    """
    faces = as_faces(faces)
    n = _n_vertices(faces, n_vertices)
    mask = np.zeros(n, bool)
    edges, counts = edge_face_counts(faces)
    mask[edges[counts == 1].ravel()] = True
    return mask


@fill_doc
def connected_components(faces: np.ndarray, n_vertices: int | None = None) -> np.ndarray:
    """Label every vertex with its edge-connected component.

    Parameters
    ----------
    %(faces_n_vertices_params_body)s

    Returns
    -------
    ndarray of int, shape (n_vertices,)
        Component label (0, 1, ...) of every vertex; isolated vertices get their own labels.
    """
    adj = mesh_adjacency(faces, n_vertices)
    return _cc(adj, directed=False)[1]


@fill_doc
def split_connected_components(faces: np.ndarray, vertices: np.ndarray) -> list[dict]:
    """Split a mesh into face-connected components (laMEG's ``_split_connected_components``).

    Parameters
    ----------
    %(faces_params_body)s
    %(vertices)s
        Only their number is used.

    Returns
    -------
    list of dict
        ``{'faces': re-indexed faces, 'vertices': original vertex indices (sorted)}`` per
        component, ordered by the first face of each component.
    """
    faces = as_faces(faces)
    if faces.size == 0:
        return []
    labels = connected_components(faces, len(vertices))
    face_lab = labels[faces[:, 0]]
    order = []
    for lab in face_lab:
        if lab not in order:
            order.append(lab)
    out = []
    for lab in order:
        f = faces[face_lab == lab]
        verts = np.unique(f)
        remap = np.full(len(vertices), -1, np.int64)
        remap[verts] = np.arange(len(verts))
        out.append({"faces": remap[f], "vertices": verts})
    return out


@fill_doc
def remove_vertices(vertices: np.ndarray, faces: np.ndarray, to_remove: np.ndarray,
                    normals: np.ndarray | None = None):
    """Remove vertices, drop every face touching them and re-index the rest.

    Parameters
    ----------
    %(mesh_params_body)s
    to_remove : array-like of int
        0-based indices of the vertices to remove.
    %(normals)s

    Returns
    -------
    %(mesh_removal_returns)s
    """
    vertices = np.asarray(vertices)
    faces = as_faces(faces)
    keep = np.ones(len(vertices), bool)
    keep[np.asarray(to_remove, dtype=np.int64)] = False
    kept = np.flatnonzero(keep)
    remap = np.full(len(vertices), -1, np.int64)
    remap[kept] = np.arange(len(kept))
    new_faces = remap[faces] if faces.size else faces
    new_faces = new_faces[(new_faces >= 0).all(axis=1)] if faces.size else new_faces
    new_normals = None if normals is None else np.asarray(normals)[kept]
    return vertices[kept], new_faces, new_normals, kept


@fill_doc
def remove_unconnected_vertices(vertices: np.ndarray, faces: np.ndarray,
                                normals: np.ndarray | None = None):
    """Remove vertices used by no face.

    Parameters
    ----------
    %(mesh_params_body)s
    %(normals)s

    Returns
    -------
    %(mesh_removal_returns)s
    """
    faces = as_faces(faces)
    used = used_vertices(faces, len(vertices))
    return remove_vertices(vertices, faces, np.flatnonzero(~used), normals)


@fill_doc
def is_consistently_oriented(faces: np.ndarray) -> bool:
    """Check that neighbouring faces are wound the same way.

    Parameters
    ----------
    %(faces_params_body)s

    Returns
    -------
    bool
        True if no directed half-edge occurs twice (also True for no faces).
    """
    e = directed_edges(faces)
    if not e.size:
        return True
    return len(np.unique(e, axis=0)) == len(e)
