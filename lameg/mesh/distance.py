"""Exact point-to-triangle-mesh distances (vectorised, with KD-tree candidate pruning)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..exceptions import LamegDataError, LamegValueError

__all__ = ["closest_point_on_triangles", "point_to_mesh", "interpolate_vertex_normals",
           "radiality_to_surface"]


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of triangle ``(a, b, c)`` to ``p``, row by row.

    Region-based method (Ericson, *Real-Time Collision Detection*, 5.1.5): vertex, edge or
    face region of the projection, with barycentric coordinates.

    Parameters
    ----------
    p, a, b, c : ndarray, shape (n, 3)

    Returns
    -------
    closest : ndarray, shape (n, 3)
    bary : ndarray, shape (n, 3)
        Barycentric weights of ``closest`` with respect to ``(a, b, c)``.
    """
    ab, ac, ap = b - a, c - a, p - a
    d1 = np.einsum("ij,ij->i", ab, ap)
    d2 = np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3 = np.einsum("ij,ij->i", ab, bp)
    d4 = np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5 = np.einsum("ij,ij->i", ab, cp)
    d6 = np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    n = len(p)
    bary = np.zeros((n, 3))
    done = np.zeros(n, bool)

    def assign(mask, w):
        m = mask & ~done
        bary[m] = w[m]
        done[m] = True

    with np.errstate(divide="ignore", invalid="ignore"):
        one, zero = np.ones(n), np.zeros(n)
        assign((d1 <= 0) & (d2 <= 0), np.c_[one, zero, zero])
        assign((d3 >= 0) & (d4 <= d3), np.c_[zero, one, zero])
        assign((d6 >= 0) & (d5 <= d6), np.c_[zero, zero, one])
        t = d1 / (d1 - d3)
        assign((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.c_[1 - t, t, zero])
        t = d2 / (d2 - d6)
        assign((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.c_[1 - t, zero, t])
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        assign((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), np.c_[zero, 1 - t, t])
        denom = va + vb + vc
        vv = vb / denom
        ww = vc / denom
        assign(np.ones(n, bool), np.c_[1 - vv - ww, vv, ww])
    bary = np.nan_to_num(bary)
    closest = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    return closest, bary


def point_to_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, k: int = 8,
                  chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact distance from points to a triangle mesh.

    Candidate faces are the ``k`` faces with the nearest centroids; a point is final when its
    best distance ``d`` satisfies ``d <= r_k - R`` (``r_k`` = distance to the k-th centroid,
    ``R`` = largest centroid-to-corner distance of the mesh), which proves that no other face
    can be closer. Unresolved points are retried with ``k`` doubled, so the result is exact.

    Parameters
    ----------
    points : array_like, shape (n_points, 3)
    vertices : array_like, shape (n_vertices, 3)
    faces : array_like, shape (n_faces, 3)
    k : int
        Initial number of candidate faces per point.
    chunk : int
        Largest number of (point, face) pairs evaluated at once (memory bound).

    Returns
    -------
    distance : ndarray, shape (n_points,)
        Euclidean distance (input units).
    closest : ndarray, shape (n_points, 3)
        Closest surface point.
    face : ndarray of int, shape (n_points,)
        Index of the face containing it.
    bary : ndarray, shape (n_points, 3)
        Barycentric coordinates of the closest point in that face.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if faces.size == 0:
        raise LamegValueError("the target mesh has no faces")
    if not (np.isfinite(points).all() and np.isfinite(vertices).all()):
        raise LamegDataError("points or mesh vertices contain NaN/inf")
    tri = vertices[faces]
    centroids = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centroids[:, None], axis=2).max()
    tree = cKDTree(centroids)
    n = len(points)
    dist = np.full(n, np.inf)
    closest = np.zeros((n, 3))
    face = np.zeros(n, np.int64)
    bary = np.zeros((n, 3))
    todo = np.arange(n)
    kk = min(k, len(faces))
    while todo.size:
        rk, cand = tree.query(points[todo], k=kk)
        rk = rk.reshape(len(todo), -1)
        cand = cand.reshape(len(todo), -1)
        step = max(1, chunk // kk)
        for s in range(0, len(todo), step):
            idx = todo[s:s + step]
            cf = cand[s:s + step]
            pp = np.repeat(points[idx], cf.shape[1], axis=0)
            ff = cf.ravel()
            cp, bc = closest_point_on_triangles(pp, tri[ff, 0], tri[ff, 1], tri[ff, 2])
            d = np.linalg.norm(cp - pp, axis=1).reshape(len(idx), -1)
            j = np.argmin(d, axis=1)
            rows = np.arange(len(idx))
            better = d[rows, j] < dist[idx]
            sel = idx[better]
            flat = rows[better] * cf.shape[1] + j[better]
            dist[sel] = d[rows, j][better]
            closest[sel] = cp[flat]
            face[sel] = ff[flat]
            bary[sel] = bc[flat]
        if kk >= len(faces):
            break
        unresolved = dist[todo] > rk[:, -1] - radius
        todo = todo[unresolved]
        kk = min(kk * 2, len(faces))
    return dist, closest, face, bary


def interpolate_vertex_normals(vertex_normals: np.ndarray, faces: np.ndarray, face: np.ndarray,
                               bary: np.ndarray) -> np.ndarray:
    """Unit normals at surface points given by (face, barycentric) from per-vertex normals."""
    faces = np.asarray(faces, dtype=np.int64)
    nv = np.asarray(vertex_normals, dtype=np.float64)[faces[face]]
    out = np.einsum("ij,ijk->ik", bary, nv)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return out / norm


def radiality_to_surface(points: np.ndarray, orientations: np.ndarray, vertices: np.ndarray,
                         faces: np.ndarray) -> np.ndarray:
    """``|o . n|`` with ``n`` the surface normal at the closest surface point of each point.

    The normal is interpolated barycentrically from area-weighted vertex normals. Values lie
    in [0, 1] (1 = orientation along the normal, 0 = tangential).

    Parameters
    ----------
    points, orientations : ndarray, shape (n, 3)
        Source positions (mm) and orientations (normalised here).
    vertices, faces : ndarray
        Target surface (e.g. the scalp).
    """
    from .normals import normit, vertex_normals

    _, _, face, bary = point_to_mesh(points, vertices, faces)
    n = interpolate_vertex_normals(vertex_normals(vertices, faces, "area"), faces, face, bary)
    o = normit(np.asarray(orientations, dtype=np.float64).reshape(-1, 3))
    return np.clip(np.abs(np.einsum("ij,ij->i", o, n)), 0.0, 1.0)
