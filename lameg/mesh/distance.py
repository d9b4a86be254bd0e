"""Exact point-to-triangle-mesh distances (vectorised, with a second-order vertex bound)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import cKDTree

from .._docs import fill_doc
from ..exceptions import LamegDataError, LamegValueError

__all__ = ["closest_point_on_triangles", "point_to_mesh", "distance_lower_bound",
           "interpolate_vertex_normals",
           "radiality_to_surface"]


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of triangle ``(a, b, c)`` to ``p``, row by row.

    Region-based method (Ericson, *Real-Time Collision Detection*, 5.1.5): vertex, edge or
    face region of the projection, with barycentric coordinates.

    Parameters
    ----------
    p : ndarray, shape (n, 3)
        Query points.
    a, b, c : ndarray, shape (n, 3)
        Corners of one triangle per query point, same unit.

    Returns
    -------
    closest : ndarray, shape (n, 3)
        Closest point of each triangle to its query point.
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


class _TriangleData:
    """Per-face quantities shared by every point-triangle query on one mesh."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        tri = vertices[faces]
        self.a = np.ascontiguousarray(tri[:, 0])
        self.e0 = np.ascontiguousarray(tri[:, 1] - tri[:, 0])
        self.e1 = np.ascontiguousarray(tri[:, 2] - tri[:, 0])
        self.d00 = np.einsum("ij,ij->i", self.e0, self.e0)
        self.d01 = np.einsum("ij,ij->i", self.e0, self.e1)
        self.d11 = np.einsum("ij,ij->i", self.e1, self.e1)
        self.det = self.d00 * self.d11 - self.d01 ** 2
        # a face counts as degenerate (no interior) when its Gram determinant is at rounding
        # level; its closest point is then on one of its edges
        self.flat = self.det <= 1e-12 * np.maximum(self.d00 * self.d11, 1e-300)
        self.meb = _enclosing_radius(self.d00, self.d01, self.d11, self.det)

    def sq_distance(self, p: np.ndarray, fi: np.ndarray, want_bary: bool = False):
        """Squared distance from points ``p`` (n, 3) to faces ``fi`` (n,), row by row.

        The closest point of a triangle is the orthogonal projection when it falls inside,
        else the closest point of one of the three edges; everything is expressed through
        ``|w|^2``, ``w.e0`` and ``w.e1`` (``w = p - a``) and per-face constants.
        """
        w = p - self.a[fi]
        e0, e1 = self.e0[fi], self.e1[fi]
        ww = np.einsum("ij,ij->i", w, w)
        w0 = np.einsum("ij,ij->i", w, e0)
        w1 = np.einsum("ij,ij->i", w, e1)
        d00, d01, d11, det = self.d00[fi], self.d01[fi], self.d11[fi], self.det[fi]
        flat = self.flat[fi]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(flat, 0.0, 1.0 / det)
            s = (d11 * w0 - d01 * w1) * inv
            t = (d00 * w1 - d01 * w0) * inv
            inside = (s >= 0) & (t >= 0) & (s + t <= 1) & ~flat
            best = np.where(inside, ww - (s * w0 + t * w1), np.inf)
            # edge a-b, edge a-c, edge b-c (w' = w - e0, e2 = e1 - e0)
            u0 = np.clip(np.where(d00 > 0, w0 / d00, 0.0), 0.0, 1.0)
            u1 = np.clip(np.where(d11 > 0, w1 / d11, 0.0), 0.0, 1.0)
            d22 = d00 - 2.0 * d01 + d11
            w2 = w1 - w0 - d01 + d00
            u2 = np.clip(np.where(d22 > 0, w2 / d22, 0.0), 0.0, 1.0)
            q0 = ww - u0 * (2.0 * w0 - u0 * d00)
            q1 = ww - u1 * (2.0 * w1 - u1 * d11)
            q2 = ww - 2.0 * w0 + d00 - u2 * (2.0 * w2 - u2 * d22)
        out = ~inside
        edge = np.argmin(np.stack([q0, q1, q2]), axis=0)
        qe = np.choose(edge, (q0, q1, q2))
        best = np.where(out, qe, best)
        np.maximum(best, 0.0, out=best)
        if not want_bary:
            return best
        # barycentric weights (of a, b, c) of the closest point
        bs = np.where(out, np.choose(edge, (u0, 0.0, 1.0 - u2)), s)
        bt = np.where(out, np.choose(edge, (0.0, u1, u2)), t)
        return best, np.stack([1.0 - bs - bt, bs, bt], axis=1)


def _enclosing_radius(d00, d01, d11, det):
    """Radius of the smallest ball enclosing each triangle (from its Gram matrix).

    Circumradius for acute triangles, half the longest edge otherwise (and for degenerate
    triangles).
    """
    d22 = d00 - 2.0 * d01 + d11                      # |c - b|^2
    longest = np.maximum(np.maximum(d00, d11), d22)
    # obtuse or right at a, b or c: the dot products of the two edges at that corner
    obtuse = (d01 <= 0) | (d00 - d01 <= 0) | (d11 - d01 <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        circ2 = d00 * d11 * d22 / (4.0 * det)
    r2 = np.where(obtuse | ~(det > 0), 0.25 * longest, circ2)
    return np.sqrt(np.maximum(r2, 0.25 * longest))


def _query_sites(td: _TriangleData, vertices: np.ndarray, faces: np.ndarray,
                 max_extra: float = 1.0):
    """KD-tree sites covering every face with a small enclosing radius.

    Every face is cut (virtually) into ``s^2`` similar triangles by the uniform subdivision
    of order ``s = ceil(R / r0)`` (``s = 1`` for most faces), so that each piece has an
    enclosing radius ``R / s <= r0``, with ``r0`` 1.5 times the median face radius. Sites are
    the mesh vertices (linked to their incident faces) and the subdivision points of the
    larger faces that are not corners (linked to that face). ``r0`` grows when the extra
    points would outnumber ``max_extra`` times the vertices.

    Returns
    -------
    sites : ndarray, shape (n_sites, 3)
    ptr, site_face, site_rad : CSR arrays; the faces linked to site j are
        ``site_face[ptr[j]:ptr[j + 1]]``, with the radius of the pieces of that face.
    r0 : float
    """
    meb = td.meb
    r0 = max(1.5 * float(np.median(meb)), 1e-12)
    while True:
        s_face = np.maximum(np.ceil(meb / r0), 1).astype(np.int64)
        n_extra = int(((s_face + 1) * (s_face + 2) // 2 - 3).sum())
        if n_extra <= max_extra * len(vertices) + 64:
            break
        r0 *= 1.5
    rad = meb / s_face
    used, inv = np.unique(faces.ravel(), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    v_face = order // 3
    pos = [vertices[used]]
    cnts = [np.bincount(inv, minlength=len(used))]
    site_face = [v_face]
    site_rad = [rad[v_face]]
    for s in np.unique(s_face[s_face > 1]):
        fb = np.flatnonzero(s_face == s)
        i, j = np.nonzero(np.add.outer(np.arange(s + 1), np.arange(s + 1)) <= s)
        corner = ((i == 0) & (j == 0)) | (i == s) | (j == s)
        bi, bj = i[~corner] / s, j[~corner] / s                # barycentric grid, no corners
        pts = (td.a[fb, None, :] + bi[None, :, None] * td.e0[fb, None, :]
               + bj[None, :, None] * td.e1[fb, None, :])
        pos.append(pts.reshape(-1, 3))
        cnts.append(np.ones(pts.shape[0] * pts.shape[1], np.int64))
        site_face.append(np.repeat(fb, len(bi)))
        site_rad.append(np.repeat(rad[fb], len(bi)))
    ptr = np.r_[0, np.cumsum(np.concatenate(cnts))]
    return (np.concatenate(pos), ptr, np.concatenate(site_face), np.concatenate(site_rad), r0)


@fill_doc
def distance_lower_bound(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray
                         ) -> np.ndarray:
    """A cheap lower bound on the distance from points to a triangle mesh.

    With the query sites of :func:`point_to_mesh` (vertices, plus subdivision points of the
    large faces, so that every face is cut into pieces of enclosing radius ``<= r0``), every
    surface point ``x`` of a piece with corners at distances ``d_i`` from ``p`` satisfies
    ``|x - p|^2 >= min_i d_i^2 - r0^2``; hence ``sqrt(max(d^2 - r0^2, 0))``, with ``d`` the
    distance to the nearest site, bounds the distance to the whole mesh from below. One
    approximate KD-tree query per point (a site within 1.5 times the nearest one's distance,
    so ``d`` is that distance / 1.5).

    Parameters
    ----------
    %(query_points)s
    %(vertices)s
    %(faces)s

    Returns
    -------
    ndarray, shape (n_points,)
        Lower bound (>= 0) of each point's distance to the mesh; the open ball of that radius
        around the point holds no surface point.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if faces.size == 0:
        raise LamegValueError("the target mesh has no faces")
    sites, _, _, _, r0 = _query_sites(_TriangleData(vertices, faces), vertices, faces)
    # an approximate nearest site (within a factor 1 + eps of the nearest) is enough for a
    # bound, and much cheaper from deep inside a closed surface
    eps = 0.5
    d = cKDTree(sites, leafsize=64).query(points, eps=eps, workers=-1)[0] / (1.0 + eps)
    return np.sqrt(np.maximum(d * d - r0 * r0, 0.0))


@fill_doc
def point_to_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, k: int = 8,
                  chunk: int = 65536, workers: int = -1
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact distance from points to a triangle mesh (closest point, face, barycentrics).

    Method (exact, vectorised):

    1. For a triangle with corners at distances ``d_i`` from ``p`` and smallest enclosing
       ball radius ``R``, every point ``x = sum l_i v_i`` of the triangle satisfies
       ``|x - p|^2 = sum l_i d_i^2 - sum l_i |v_i - x|^2 >= min_i d_i^2 - R^2``: a face can only
       be closer than ``U`` if one of its corners lies within ``sqrt(U^2 + R^2)`` of ``p``.
       This second-order bound leaves only a handful of candidate faces per point, even for
       points far from the surface (the cortex inside the scalp).
    2. Query sites (KD-tree): the mesh vertices and, for faces with ``R > r0`` (1.5 times
       the median radius), the points of their uniform subdivision into similar triangles
       of radius ``<= r0``; the bound then holds with ``r0`` for every face (piece).
    3. The ``k`` nearest sites of every point; the exact distance to the faces of the nearest
       one gives the upper bound ``U``. Every face of a site within ``sqrt(U^2 + r0^2)`` that
       passes its own bound (``d_site^2 - R_piece^2 < U^2``) is evaluated exactly. Points
       whose k-th site is still within reach are retried with ``k`` quadrupled, so the result
       is exact.

    Parameters
    ----------
    %(query_points)s
    %(vertices)s
    %(faces)s
    k : int
        Initial number of nearest sites examined per point.
    chunk : int
        Largest number of points processed at once (memory bound).
    workers : int
        Threads processing blocks of points in parallel (-1: one per CPU).

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
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if faces.size == 0:
        raise LamegValueError("the target mesh has no faces")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise LamegValueError("face indices are outside the vertex array")
    if not (np.isfinite(points).all() and np.isfinite(vertices).all()):
        raise LamegDataError("points or mesh vertices contain NaN/inf")
    td = _TriangleData(vertices, faces)
    sites, ptr, site_face, site_rad, r0 = _query_sites(td, vertices, faces)
    site_rad2 = site_rad ** 2
    # large leaves: queries from far inside a closed surface visit fewer nodes
    tree = cKDTree(sites, leafsize=64)
    n_sites = len(sites)
    n = len(points)
    best = np.empty(n)
    face = np.empty(n, np.int64)
    kk0 = int(max(2, min(k, n_sites)))
    slack = 1 + 1e-9

    def expand(sj):
        """(owner index into sj, face, radius^2) for every face linked to the sites sj."""
        cnt = ptr[sj + 1] - ptr[sj]
        owner = np.repeat(np.arange(len(sj)), cnt)
        idx = np.repeat(ptr[sj] - np.cumsum(cnt) + cnt, cnt) + np.arange(cnt.sum())
        return owner, site_face[idx], site_rad2[idx]

    def solve(p):
        """Best squared distance and face for the points ``p`` (one block)."""
        nb = len(p)
        bsq = np.full(nb, np.inf)
        bfc = np.zeros(nb, np.int64)

        def consider(pi, fi):
            """Evaluate the pairs (pi non-decreasing) and keep the best face per point."""
            if pi.size == 0:
                return
            d2 = td.sq_distance(p[pi], fi)
            starts = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
            mins = np.minimum.reduceat(d2, starts)
            rows = pi[starts]
            win = d2 == np.repeat(mins, np.diff(np.r_[starts, len(pi)]))
            better = mins < bsq[rows]
            fwin = np.empty(len(rows), np.int64)
            fwin[np.searchsorted(starts, np.flatnonzero(win), side="right") - 1] = fi[win]
            bsq[rows[better]] = mins[better]
            bfc[rows[better]] = fwin[better]

        todo = np.arange(nb)
        kk = kk0
        j_first = None
        while todo.size:
            dk, jk = tree.query(p[todo], k=kk)
            dk = dk.reshape(len(todo), -1)
            jk = jk.reshape(len(todo), -1)
            if j_first is None:         # upper bound U from the faces of the nearest site
                j_first = jk[:, 0].copy()
                owner, fi, _ = expand(j_first)
                consider(todo[owner], fi)
            reach2 = (bsq[todo] + r0 ** 2) * slack
            complete = (dk[:, -1] ** 2 > reach2) | (kk >= n_sites)
            rows = np.flatnonzero(complete)
            # sites within reach, except the one already evaluated (equidistant sites may come
            # back in another order when k changes)
            rr, cc = np.nonzero((dk[rows] ** 2 <= reach2[rows, None])
                                & (jk[rows] != j_first[todo[rows], None]))
            if rr.size:
                sj = jk[rows[rr], cc]
                dj2 = dk[rows[rr], cc] ** 2
                owner, fi, rad2 = expand(sj)
                pi = todo[rows[rr]][owner]
                keep = dj2[owner] - rad2 < bsq[pi] * slack
                consider(pi[keep], fi[keep])
            todo = todo[~complete]
            kk = min(4 * kk, n_sites)
        return bsq, bfc

    n_workers = (os.cpu_count() or 1) if workers in (None, -1) else max(1, int(workers))
    step = max(1, min(int(chunk), -(-n // n_workers)))
    blocks = [slice(s0, s0 + step) for s0 in range(0, n, step)]
    if n_workers > 1 and len(blocks) > 1:
        # KD-tree queries and large NumPy operations release the GIL
        with ThreadPoolExecutor(max_workers=n_workers) as ex:
            results = list(ex.map(lambda sl: solve(points[sl]), blocks))
    else:
        results = [solve(points[sl]) for sl in blocks]
    for sl, (bsq, bfc) in zip(blocks, results):
        best[sl] = bsq
        face[sl] = bfc
    # final closest points, recomputed explicitly for the winning faces
    _, bary = td.sq_distance(points, face, want_bary=True)
    tri = vertices[faces[face]]
    closest = np.einsum("ij,ijk->ik", bary, tri)
    dist = np.linalg.norm(points - closest, axis=1)
    return dist, closest, face, bary


@fill_doc
def interpolate_vertex_normals(vertex_normals: np.ndarray, faces: np.ndarray, face: np.ndarray,
                               bary: np.ndarray) -> np.ndarray:
    """Unit normals at surface points given by (face, barycentric) from per-vertex normals.

    Parameters
    ----------
    vertex_normals : array-like, shape (n_vertices, 3)
        Normals at the mesh vertices.
    %(faces)s
    face : array-like of int, shape (n_points,)
        0-based face that holds each point (e.g. from :func:`point_to_mesh`).
    bary : array-like, shape (n_points, 3)
        Barycentric coordinates of each point in its face.

    Returns
    -------
    ndarray of float64, shape (n_points, 3)
        Interpolated normals, normalised (zero vectors stay zero).
    """
    faces = np.asarray(faces, dtype=np.int64)
    nv = np.asarray(vertex_normals, dtype=np.float64)[faces[face]]
    out = np.einsum("ij,ijk->ik", bary, nv)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return out / norm


@fill_doc
def radiality_to_surface(points: np.ndarray, orientations: np.ndarray, vertices: np.ndarray,
                         faces: np.ndarray) -> np.ndarray:
    """``|dot(o, n)|`` with ``n`` the surface normal at the closest surface point of each point.

    The normal is interpolated barycentrically from area-weighted vertex normals. Values lie
    in [0, 1] (1 = orientation along the normal, 0 = tangential).

    Parameters
    ----------
    points, orientations : ndarray, shape (n, 3)
        Source positions (mm) and orientations (normalised here).
    vertices : ndarray, shape (n_vertices, 3)
        Vertices of the target surface (e.g. the scalp), mm.
    %(faces)s

    Returns
    -------
    ndarray of float64, shape (n,)
        Radiality of every orientation, in [0, 1].
    """
    from .normals import normit, vertex_normals

    _, _, face, bary = point_to_mesh(points, vertices, faces)
    n = interpolate_vertex_normals(vertex_normals(vertices, faces, "area"), faces, face, bary)
    o = normit(np.asarray(orientations, dtype=np.float64).reshape(-1, 3))
    return np.clip(np.abs(np.einsum("ij,ij->i", o, n)), 0.0, 1.0)
