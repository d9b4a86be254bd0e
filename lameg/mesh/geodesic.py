"""Exact geodesic distances on a triangle mesh, between all vertex pairs closer than a radius.

The shortest path between two vertices of a polyhedral surface is a chain of straight segments
(straight once the faces they cross are unfolded into a plane) that bend only at saddle or
boundary vertices, whose total angle is at least 2 pi (Mitchell, Mount & Papadimitriou 1987).
So the exact geodesic distance within a radius ``r`` is found in two vectorised steps:

1. **Direct distances.** From every vertex, wedges of straight rays are unfolded face by face
   (the "windows" of Chen & Han 1990, without their pruning): a wedge enters the face across
   an edge, the face's third vertex is unfolded into the source's plane, a vertex inside the
   wedge is reached in a straight line (distance = length of its image), and the wedge splits
   into the parts that leave through the face's two other edges. A wedge stops when the part
   of its edge it can see is farther than ``r``. All sources advance together, one face per
   step, as NumPy arrays.
2. **Bends.** Paths that bend at vertices: ``d(s, t) = min(d(s, t), d(s, v) + d(v, t))`` over
   bend candidates ``v`` (vertices with a total angle >= 2 pi, and boundary vertices), repeated
   until no distance within ``r`` decreases. (A ray that meets a vertex exactly continues as
   such a bend, so wedges of zero width are dropped.)

The distances are those of the exact (Mitchell-Mount-Papadimitriou / Kirsanov) algorithm
behind SPM's ``spm_mesh_geodesic``, ``tvb-gdist`` and ``pygeodesic``, up to rounding (2e-13 mm
on a 28,609-vertex cortical layer, same pairs), at ~40 us per vertex instead of ~120 us.
On open meshes Kirsanov's implementation can miss the path around a boundary vertex that
belongs to a single triangle; the bends above find it.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_mesh
from ..exceptions import LamegDataError, LamegValueError

__all__ = ["local_geodesic_distances"]

# Sources advanced together (bounds the memory of the wedge arrays: ~1 kB per live wedge).
_SOURCE_CHUNK = 8192


class _Topology:
    """Edges of a manifold mesh: their faces, squared lengths and the faces' other edges."""

    def __init__(self, v: np.ndarray, faces: np.ndarray):
        n, m = len(v), len(faces)
        # edge opposite corner k of a face: (faces[k+1], faces[k+2])
        a = faces[:, [1, 2, 0]].ravel()
        b = faces[:, [2, 0, 1]].ravel()
        key = np.minimum(a, b) * n + np.maximum(a, b)
        uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        if cnt.max(initial=0) > 2:
            raise LamegDataError(f"{int((cnt > 2).sum())} edges are shared by more than two "
                                 "faces; repair the mesh (lameg.mesh.repair."
                                 "fix_non_manifold_edges) before computing geodesics")
        self.face_edge = inv.reshape(m, 3)          # edge id opposite each corner
        slot = np.repeat(np.arange(m) * 3, 3) + np.tile(np.arange(3), m)  # face * 3 + corner
        order = np.argsort(inv, kind="stable")
        first = np.r_[0, np.cumsum(cnt)[:-1]]
        two = cnt == 2
        # (edge, side) -> face * 3 + corner opposite the edge in that face, -1 on a boundary
        self.edge_slot = np.full((len(uniq), 2), -1, np.int64)
        self.edge_slot[:, 0] = slot[order[first]]
        self.edge_slot[two, 1] = slot[order[first[two] + 1]]
        ends = np.c_[uniq // n, uniq % n]
        self.len2 = ((v[ends[:, 0]] - v[ends[:, 1]]) ** 2).sum(1)
        self.boundary = np.zeros(n, bool)
        self.boundary[ends[~two].ravel()] = True
        self.faces = faces


def _angle_sums(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Total face angle at every vertex, radians."""
    tot = np.zeros(len(v))
    for k in range(3):
        p, q, r = v[f[:, k]], v[f[:, (k + 1) % 3]], v[f[:, (k + 2) % 3]]
        e1, e2 = q - p, r - p
        ang = np.arctan2(np.linalg.norm(np.cross(e1, e2), axis=1),
                         np.einsum("ij,ij->i", e1, e2))
        tot += np.bincount(f[:, k], weights=ang, minlength=len(v))
    return tot


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Im(conj(a) b)``: the 2-D cross product of points stored as complex numbers."""
    return a.real * b.imag - a.imag * b.real


def _visible_near(A, B, P, Q, r: float) -> np.ndarray:
    """Wedges of positive width whose visible part of their edge ``AB`` is within ``r``.

    The visible part of segment AB lies between the rays through P (right bound) and Q (left
    bound); its point nearest to the source (the origin) is tested. Points are complex.
    """
    E = B - A
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.clip(_cross(A, P) / _cross(P, E), 0.0, 1.0)
        tq = np.clip(_cross(A, Q) / _cross(Q, E), 0.0, 1.0)
        t0 = np.clip(-(A.real * E.real + A.imag * E.imag) / (E.real ** 2 + E.imag ** 2),
                     np.fmin(tp, tq), np.fmax(tp, tq))
    X = A + np.nan_to_num(t0) * E
    return (_cross(P, Q) > 0) & (X.real ** 2 + X.imag ** 2 <= r * r)


def _direct(v, topo: _Topology, sources: np.ndarray, r: float):
    """(source, target, distance) of every straight (unbending) path of length <= r.

    Wedge state: complex ``z`` (A, B: ends of the edge crossed next, unfolded into the
    source's plane with the source at 0; P, Q: right and left bounds) and int32 ``iv``
    (source, a, b, that edge, ``3 * face + corner`` of the face being left).
    """
    f = topo.faces
    # --- initial wedges: one per (source, incident face), spanning the face's angle at s
    fi, ki = np.nonzero(np.isin(f, sources))
    src = f[fi, ki]
    a, b = f[fi, (ki + 1) % 3], f[fi, (ki + 2) % 3]
    sa, sb = v[a] - v[src], v[b] - v[src]
    la, lb = np.linalg.norm(sa, axis=1), np.linalg.norm(sb, axis=1)
    ang = np.arctan2(np.linalg.norm(np.cross(sa, sb), axis=1), np.einsum("ij,ij->i", sa, sb))
    out_s, out_t, out_d = [src, src], [a, b], [la, lb]
    A = la.astype(complex)
    B = lb * np.exp(1j * ang)
    keep = _visible_near(A, B, A, B, r)
    z = np.stack([A, B, A, B], axis=1)[keep]
    iv = np.stack([src, a, b, topo.face_edge[fi, ki], 3 * fi + ki], axis=1)[keep]
    iv = iv.astype(np.int32)  # halves the memory traffic of the gathers
    while len(iv):
        es = topo.edge_slot[iv[:, 3]]
        slot = np.where(es[:, 0] == iv[:, 4], es[:, 1], es[:, 0])
        inside = slot >= 0  # a boundary edge ends the wedge
        if not inside.all():
            z, iv, slot = z[inside], iv[inside], slot[inside]
        g, kc = np.divmod(slot, 3)
        k1, k2 = (kc + 1) % 3, (kc + 2) % 3
        c = f[g, kc]
        a_first = f[g, k1] == iv[:, 1]
        ka = np.where(a_first, k1, k2)  # corners of a and b in the new face
        kb = np.where(a_first, k2, k1)
        # edges (a, c) and (c, b) of the new face: opposite b's and a's corners
        e_ac, e_cb = topo.face_edge[g, kb], topo.face_edge[g, ka]
        lac2, lbc2 = topo.len2[e_ac], topo.len2[e_cb]
        A, B, P, Q = z.T
        # unfold c across the line A -> B, on the side away from the source (its right)
        E = B - A
        ll = np.abs(E)
        x = (lac2 - lbc2 + ll * ll) / (2.0 * ll)
        y = np.sqrt(np.maximum(lac2 - x * x, 0.0))
        C = A + (E / ll) * (x - 1j * y)
        cp = _cross(P, C)
        cq = _cross(C, Q)
        seen = (cp >= 0) & (cq >= 0)
        dc = np.abs(C)
        hit = seen & (dc <= r)
        out_s.append(iv[hit, 0])
        out_t.append(c[hit])
        out_d.append(dc[hit])
        # children: the parts of the wedge leaving through (a, c) and through (c, b)
        QL = np.where(seen, C, Q)
        PR = np.where(seen, C, P)
        li = np.flatnonzero((seen | (cq < 0)) & _visible_near(A, C, P, QL, r))
        ri = np.flatnonzero((seen | (cp < 0)) & _visible_near(C, B, PR, Q, r))
        nl = len(li)
        zn = np.concatenate([z[li], z[ri]])
        zn[:nl, 1], zn[:nl, 3] = C[li], QL[li]
        zn[nl:, 0], zn[nl:, 2] = C[ri], PR[ri]
        ivn = np.concatenate([iv[li], iv[ri]])
        ivn[:nl, 2], ivn[:nl, 3], ivn[:nl, 4] = c[li], e_ac[li], 3 * g[li] + kb[li]
        ivn[nl:, 1], ivn[nl:, 3], ivn[nl:, 4] = c[ri], e_cb[ri], 3 * g[ri] + ka[ri]
        z, iv = zn, ivn
    return (np.concatenate(out_s).astype(np.int64), np.concatenate(out_t).astype(np.int64),
            np.concatenate(out_d))


def _min_pairs(key, d):
    """Sorted unique keys and the smallest distance of each."""
    if not len(key):
        return key, d
    order = np.argsort(key)
    key, d = key[order], d[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return key[first], np.minimum.reduceat(d, first)


def _join(s, v, d, indptr, indices, data, limit=None):
    """Paths s -> v -> t: every entry (s, v, d) extended by row v of a CSR matrix.

    With ``limit = (row_key, r)`` (rows sorted by distance, ``row_key = row * 2(r + 1) +
    distance``) only the entries with ``d + d(v, t) <= r`` (and a few rounding-level
    extras) are produced.
    """
    start = indptr[v]
    if limit is None:
        cnt = indptr[v + 1] - start
    else:
        row_key, r = limit
        # 1e-6 mm of slack: the float key resolves ~1e-9 mm; the caller filters exactly
        q = v * (2.0 * (r + 1.0)) + (r - d + 1e-6)
        cnt = np.maximum(np.searchsorted(row_key, q, side="right") - start, 0)
    tot = int(cnt.sum())
    pos = np.repeat(start - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot)
    return np.repeat(s, cnt), indices[pos], np.repeat(d, cnt) + data[pos]


def local_geodesic_distances(vertices, faces, max_distance: float
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact geodesic distance between every pair of vertices at most ``max_distance`` apart.

    Parameters
    ----------
    vertices : array_like, shape (n_vertices, 3)
        Vertex coordinates (any length unit; ``max_distance`` in the same unit).
    faces : array_like, shape (n_faces, 3)
        0-based triangles of an edge-manifold mesh (any winding).
    max_distance : float
        Radius: pairs farther apart along the surface are not returned.

    Returns
    -------
    source, target : ndarray of int64, shape (n_pairs,)
        Vertex pairs (both orders, never ``source == target``), sorted by source then target.
    distance : ndarray of float64, shape (n_pairs,)
        Geodesic distance ``0 < d <= max_distance``; pairs at distance 0 (duplicated vertices)
        are left out.

    Notes
    -----
    Distances equal those of the exact algorithm of Mitchell, Mount & Papadimitriou (Kirsanov's
    implementation in ``tvb-gdist``/``pygeodesic``, SPM's ``spm_mesh_geodesic``) up to
    rounding; see the module docstring for the method.
    """
    v, f = check_mesh(vertices, faces, finite=True)
    r = float(max_distance)
    if not np.isfinite(r) or r <= 0:
        raise LamegValueError(f"max_distance must be a positive number, got {max_distance}")
    n = len(v)
    if max(n, 3 * len(f)) >= 2**31:
        raise LamegValueError("meshes of 2^31 vertices or 7e8 faces or more are not supported")
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    if repeated.any():
        raise LamegDataError(f"{int(repeated.sum())} triangles repeat a vertex; remove them "
                             "first (lameg.mesh.repair.remove_degenerate_faces)")
    topo = _Topology(v, f)
    parts = [_direct(v, topo, np.arange(s0, min(s0 + _SOURCE_CHUNK, n)), r)
             for s0 in range(0, n, _SOURCE_CHUNK)]
    s, t, d = (np.concatenate(x) for x in zip(*parts))
    # pairs at distance 0 (coincident vertices) stay until the end: paths bend through them
    ok = (s != t) & (d <= r)
    keys, vals = _min_pairs(s[ok] * n + t[ok], d[ok])  # one value per (source, target)
    # bends at saddle and boundary vertices, relaxed until nothing changes; each round joins
    # only the pairs that changed in the previous one (semi-naive evaluation)
    bend = (_angle_sums(v, f) >= 2 * np.pi * (1 - 1e-9)) | topo.boundary
    dk, dv = keys, vals
    while len(dk):
        rows = keys // n
        indptr = np.searchsorted(rows, np.arange(n + 1))
        ds, dt = dk // n, dk % n
        via = bend[dt]
        if dk is keys:  # first round, all pairs: rows by distance, joins pruned at r
            by_dist = np.lexsort((vals, rows))  # rows stay in place
            cols_d, vals_d = keys[by_dist] % n, vals[by_dist]
            limit = (rows * (2.0 * (r + 1.0)) + vals_d, r)
            cand = [_join(ds[via], dt[via], dv[via], indptr, cols_d, vals_d, limit)]
        else:  # few changed pairs: changed (s, v) then (v, t), and unchanged then changed
            cand = [_join(ds[via], dt[via], dv[via], indptr, keys % n, vals)]
            d_rows = np.searchsorted(ds, np.arange(n + 1))
            via = bend[keys % n]
            cand.append(_join(rows[via], keys[via] % n, vals[via], d_rows, dt, dv))
        cs, ct, cd = (np.concatenate(x) for x in zip(*cand))
        ok = (cd <= r) & (cs != ct)
        ck, cd = _min_pairs(cs[ok] * n + ct[ok], cd[ok])
        pos = np.minimum(np.searchsorted(keys, ck), len(keys) - 1)
        known = keys[pos] == ck
        better = ~known | (cd < vals[pos])
        dk, dv = ck[better], cd[better]
        upd = known[better]
        vals = vals.copy()
        vals[pos[better][upd]] = dv[upd]
        if (~upd).any():
            keys, vals = _min_pairs(np.r_[keys, dk[~upd]], np.r_[vals, dv[~upd]])
    keys, vals = keys[vals > 0], vals[vals > 0]
    return keys // n, keys % n, vals
