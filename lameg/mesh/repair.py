"""Mesh repairs: non-manifold edges, degenerate faces, unreferenced vertices."""

from __future__ import annotations

import numpy as np

from .._docs import fill_doc
from .adjacency import _half_edge_multiplicity, as_faces, find_non_manifold_edges

__all__ = ["fix_non_manifold_edges", "remove_degenerate_faces"]


@fill_doc
def fix_non_manifold_edges(vertices: np.ndarray, faces: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Drop every face that touches an edge shared by more than two faces (laMEG semantics).

    Parameters
    ----------
    %(mesh_params_body)s

    Returns
    -------
    vertices : ndarray, shape (n_vertices, 3)
        Unchanged (isolated vertices are not removed here).
    faces : ndarray of int64, shape (n_kept_faces, 3)
        The faces none of whose edges is shared by more than two faces.
    """
    faces = as_faces(faces)
    if faces.size == 0:
        return np.asarray(vertices), faces
    bad_face = (_half_edge_multiplicity(faces)[1] > 2).reshape(-1, 3).any(axis=1)
    return np.asarray(vertices), faces[~bad_face]


@fill_doc
def remove_degenerate_faces(faces: np.ndarray) -> np.ndarray:
    """Remove faces with repeated vertex indices and duplicated faces (same vertex set).

    Parameters
    ----------
    %(faces_params_body)s

    Returns
    -------
    ndarray of int64, shape (n_kept_faces, 3)
        The remaining faces, in their original order (first copy of each duplicate kept).
    """
    faces = as_faces(faces)
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = faces[ok]
    if faces.size == 0:
        return faces
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    return faces[np.sort(first)]


__all__ += ["find_non_manifold_edges"]
