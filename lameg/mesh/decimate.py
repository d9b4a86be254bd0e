"""Vertex-correspondent decimation: simplify a triangle mesh keeping a subset of its vertices.

Algorithm
---------
Quadric-error half-edge collapses (Garland & Heckbert 1997) in which a vertex ``u`` is merged
into a neighbour ``v`` that **keeps its original position**, so the decimated mesh is made
of original vertices only (``vertices[kept]``) and the same faces can be applied to every
cortical layer. Collapses are applied in parallel rounds: each round every live vertex
proposes its cheapest collapse, an independent set of proposals (pairwise graph distance
>= 3, chosen by increasing cost, Luby-style) is validated and applied at once. Because the
one-rings of the selected vertices are disjoint, the validity checks evaluated on the mesh at
the start of the round stay exact. A collapse ``u -> v`` is accepted only if

* the link condition holds (``u`` and ``v`` share exactly the apex vertices of the faces on
  the edge), which keeps the mesh 2-manifold (no non-manifold edges, no pinched vertices);
* every surviving face around ``u`` keeps its orientation (its normal turns by less than
  ``max_normal_angle`` degrees), so no face flips;
* no vertex drops below degree 3 and the new triangles are not slivers.

Boundary vertices (medial-wall cut) collapse only along their boundary, into boundary
vertices, so holes neither grow nor close. The face winding is preserved. The target is a
fraction of **faces** (MATLAB ``reducepatch`` semantics, as laMEG).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._utils import logger
from ..exceptions import LamegDataError, LamegValueError
from .adjacency import directed_edges, edge_face_counts, edge_keys

__all__ = ["decimate_vertex_subset"]


def _face_quadrics(v: np.ndarray, f: np.ndarray, n: int) -> np.ndarray:
    """Per-vertex 4x4 error quadrics (area-weighted face planes + boundary constraint planes)."""
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    nrm = np.cross(p1 - p0, p2 - p0)
    area2 = np.linalg.norm(nrm, axis=1)
    ok = area2 > 0
    unit = np.zeros_like(nrm)
    unit[ok] = nrm[ok] / area2[ok, None]
    plane = np.c_[unit, -np.einsum("ij,ij->i", unit, p0)]
    kf = (0.5 * area2)[:, None, None] * plane[:, :, None] * plane[:, None, :]
    q = np.zeros((n, 4, 4))
    for k in range(3):
        np.add.at(q, f[:, k], kf)
    # boundary edges: plane through the edge, perpendicular to its face, heavily weighted
    e = directed_edges(f)
    key, _ = edge_keys(np.sort(e, axis=1))
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    bnd = cnt[inv.ravel()] == 1
    if bnd.any():
        face_of = np.repeat(np.arange(len(f)), 3)[bnd]
        a, b = v[e[bnd, 0]], v[e[bnd, 1]]
        d = b - a
        pn = np.cross(d, unit[face_of])
        ln = np.linalg.norm(pn, axis=1)
        good = ln > 0
        pn[good] /= ln[good, None]
        bp = np.c_[pn, -np.einsum("ij,ij->i", pn, a)]
        w = 10.0 * (d ** 2).sum(1)
        kb = w[:, None, None] * bp[:, :, None] * bp[:, None, :]
        np.add.at(q, e[bnd, 0], kb)
        np.add.at(q, e[bnd, 1], kb)
    return q


# Compact the vertex arrays once fewer than this fraction of them is still used by a face.
COMPACT_BELOW = 0.8

_IU, _JU = np.triu_indices(4)
_W = np.where(_IU == _JU, 1.0, 2.0)


def _ring_min(adj_self: sp.csr_matrix, key: np.ndarray) -> np.ndarray:
    """Minimum of ``key`` over each vertex's closed one-ring (adjacency incl. the diagonal)."""
    vals = key[adj_self.indices]
    out = np.full(len(key), np.inf)
    nz = np.diff(adj_self.indptr) > 0
    out[nz] = np.minimum.reduceat(vals, adj_self.indptr[:-1][nz])
    return out


def _quality(p0, p1, p2):
    a2 = np.linalg.norm(np.cross(p1 - p0, p2 - p0), axis=1)
    l2 = ((p1 - p0) ** 2).sum(1) + ((p2 - p1) ** 2).sum(1) + ((p0 - p2) ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(2.0 * np.sqrt(3.0) * a2 / l2)


def decimate_vertex_subset(vertices: np.ndarray, faces: np.ndarray, ds_factor: float = 0.1, *,
                           target_faces: int | None = None, max_normal_angle: float = 75.0,
                           min_quality: float = 0.1, max_degree: int = 14,
                           preserve_boundary: bool = False, max_rounds: int = 500
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Decimate a manifold triangle mesh to a subset of its own vertices.

    Parameters
    ----------
    vertices : array_like, shape (n_vertices, 3)
        Coordinates (mm).
    faces : array_like, shape (n_faces, 3)
        Consistently wound, edge-manifold triangles.
    ds_factor : float
        Fraction of faces to keep, in (0, 1] (laMEG's ``ds_factor``).
    target_faces : int, optional
        Explicit number of faces to reach (overrides ``ds_factor``).
    max_normal_angle : float
        Largest rotation (degrees) a surviving face normal may undergo in one collapse.
    min_quality : float
        New triangles must have a shape quality (1 = equilateral) of at least
        ``min(min_quality, quality before the collapse)``.
    max_degree : int
        Collapses that would give a vertex more neighbours are rejected.
    preserve_boundary : bool
        If True, boundary vertices are never removed.
    max_rounds : int
        Safety limit on the number of parallel rounds.

    Returns
    -------
    kept : ndarray of int, shape (n_kept,)
        Sorted indices of the original vertices that remain.
    new_faces : ndarray of int, shape (n_new_faces, 3)
        Faces indexing ``vertices[kept]``, with the original winding.

    Notes
    -----
    The achieved face count equals the target unless no valid collapse remains (a warning is
    logged); each interior collapse removes exactly two faces, a boundary collapse one.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    n = len(v)
    if v.ndim != 2 or v.shape[1] != 3:
        raise LamegValueError("vertices must have shape (n, 3)")
    if not np.isfinite(v).all():
        raise LamegDataError("vertices contain NaN or infinite coordinates")
    if f.size == 0:
        raise LamegDataError("cannot decimate a mesh without faces")
    if f.min() < 0 or f.max() >= n:
        raise LamegValueError("face indices out of range")
    if target_faces is None:
        if not 0 < ds_factor <= 1:
            raise LamegValueError(f"ds_factor must be in (0, 1], got {ds_factor}")
        target_faces = int(round(ds_factor * len(f)))
    target_faces = max(int(target_faces), 1)
    _, cnt = edge_face_counts(f)
    if (cnt > 2).any():
        raise LamegDataError(f"mesh has {(cnt > 2).sum()} non-manifold edges; repair it first "
                             "(lameg.mesh.repair.fix_non_manifold_edges)")
    cos_max = np.cos(np.deg2rad(max_normal_angle))
    q = _face_quadrics(v, f, n)
    vh = np.c_[v, np.ones(n)]
    mono = vh[:, _IU] * vh[:, _JU]
    # original vertex normals: a new face must agree with the original surface at its corners
    from .normals import vertex_normals
    ref_n = vertex_normals(v, f, weighting="area")
    frozen = np.zeros(n, bool)
    orig = np.arange(n)  # original index of every (compacted) vertex

    for _round in range(max_rounds):
        n_faces = len(f)
        if n_faces <= target_faces:
            break
        # drop the vertices no face uses any more: the per-vertex work then shrinks with the
        # mesh. The order of the survivors is kept, so ties break exactly as without it.
        used = np.bincount(f.ravel(), minlength=n) > 0
        if used.sum() < COMPACT_BELOW * n:
            live = np.flatnonzero(used)
            remap = np.full(n, -1, np.int64)
            remap[live] = np.arange(len(live))
            f = remap[f]
            v, q, mono, ref_n, frozen, orig = (a[live] for a in (v, q, mono, ref_n, frozen, orig))
            n = len(live)
        # --- topology of the current mesh
        e = directed_edges(f)
        rows = np.r_[e[:, 0], e[:, 1]]
        cols = np.r_[e[:, 1], e[:, 0]]
        cnt_m = sp.csr_matrix((np.ones(rows.size, np.int32), (rows, cols)), shape=(n, n))
        cnt_m.sum_duplicates()
        cnt_m.sort_indices()
        deg = np.diff(cnt_m.indptr)
        ecount = cnt_m.data  # faces sharing each edge: 1 = boundary, 2 = interior
        u_all = np.repeat(np.arange(n), deg)
        v_all = cnt_m.indices
        is_bedge = ecount == 1
        n_bedges = np.bincount(u_all[is_bedge], minlength=n)
        bnd = n_bedges > 0
        singular = n_bedges > 2            # pinched (bow-tie) vertices: never touch them
        alive = deg > 0
        # --- cheap filters and cost of every directed collapse u -> v
        ok = ~frozen[u_all] & ~singular[u_all] & ~singular[v_all]
        if preserve_boundary:
            ok &= ~bnd[u_all]
        ok &= ~(bnd[u_all] & ~is_bedge)       # boundary vertices move along the boundary only
        # h_v' (Q_u + Q_v) h_v with Q as its 10 unique coefficients and h_v as monomials
        qc = q[:, _IU, _JU] * _W
        self_cost = np.einsum("ij,ij->i", mono, qc)
        cost = np.einsum("ij,ij->i", mono[v_all], qc[u_all]) + self_cost[v_all]
        cost = np.where(ok, cost, np.inf)
        best = np.full(n, np.inf)
        nz = deg > 0
        best[nz] = np.minimum.reduceat(cost, cnt_m.indptr[:-1][nz])
        cand = np.isfinite(best) & alive
        if not cand.any():
            break
        # --- independent set (graph distance >= 3) by increasing cost
        order = np.lexsort((np.arange(n), best))
        rank = np.empty(n)
        rank[order] = np.arange(n, dtype=float)
        key = np.where(cand, rank, np.inf)
        adj_self = (cnt_m.astype(bool) + sp.identity(n, dtype=bool, format="csr")).tocsr()
        selected = np.zeros(n, bool)
        pool = cand.copy()
        for _ in range(4):
            k = np.where(pool, key, np.inf)
            m2 = _ring_min(adj_self, _ring_min(adj_self, k))
            new = pool & (k == m2)
            if not new.any():
                break
            selected |= new
            block = new.astype(np.int8)
            block = (adj_self @ (adj_self @ block)) > 0
            pool &= ~block
            if not pool.any():
                break
        sel = np.flatnonzero(selected)
        # --- enumerate (edge u->w, face of u) pairs of the selected vertices
        ne = deg[sel]
        e_start = cnt_m.indptr[sel]
        e_owner = np.repeat(np.arange(len(sel)), ne)
        e_idx = np.arange(ne.sum()) - np.repeat(np.cumsum(ne) - ne, ne) + np.repeat(e_start, ne)
        eu, ev = u_all[e_idx], v_all[e_idx]
        e_bnd = is_bedge[e_idx]
        e_cost = cost[e_idx]
        # vertex -> face incidence
        fid = np.repeat(np.arange(n_faces), 3)
        vf = sp.csr_matrix((np.ones(fid.size, bool), (f.ravel(), fid)), shape=(n, n_faces))
        nf = np.diff(vf.indptr)[sel]
        f_start = vf.indptr[sel]
        # pairs: for each edge of u, every face of u
        npair_e = nf[e_owner]
        p_edge = np.repeat(np.arange(len(eu)), npair_e)
        p_local = np.arange(npair_e.sum()) - np.repeat(np.cumsum(npair_e) - npair_e, npair_e)
        p_face = vf.indices[f_start[e_owner[p_edge]] + p_local]
        pf = f[p_face]
        pu, pv = eu[p_edge], ev[p_edge]
        has_v = (pf == pv[:, None]).any(axis=1)
        # faces on the edge: count and apex degree
        n_edge_faces = np.bincount(p_edge, weights=has_v, minlength=len(eu))
        apex = np.where(has_v, pf.sum(axis=1) - pu - pv, 0)
        apex_bad = has_v & ((deg[apex] <= 3) | (e_bnd[p_edge] & bnd[apex]))
        # surviving faces: replace u by v and test orientation and shape
        surv = ~has_v
        sf = pf[surv]
        old = v[sf]
        newf = np.where(sf == pu[surv, None], pv[surv, None], sf)
        new = v[newf]
        n_old = np.cross(old[:, 1] - old[:, 0], old[:, 2] - old[:, 0])
        n_new = np.cross(new[:, 1] - new[:, 0], new[:, 2] - new[:, 0])
        l_old = np.linalg.norm(n_old, axis=1)
        l_new = np.linalg.norm(n_new, axis=1)
        dot = np.einsum("ij,ij->i", n_old, n_new)
        q_old = _quality(old[:, 0], old[:, 1], old[:, 2])
        q_new = _quality(new[:, 0], new[:, 1], new[:, 2])
        geo_bad = (l_new <= 1e-12 * np.maximum(l_old, 1e-300)) | (dot <= cos_max * l_old * l_new) \
            | (q_new < np.minimum(min_quality, q_old)) \
            | (np.einsum("ij,ij->i", n_new, ref_n[newf].sum(axis=1)) <= 0)
        bad_pair = np.zeros(len(p_edge), bool)
        bad_pair[surv] = geo_bad
        bad_pair |= apex_bad
        e_bad = np.bincount(p_edge, weights=bad_pair, minlength=len(eu)) > 0
        # link condition: common neighbours of u and v == faces on the edge
        au = cnt_m[eu].astype(bool)
        av = cnt_m[ev].astype(bool)
        common = np.asarray(au.multiply(av).sum(axis=1)).ravel()
        e_bad |= common != n_edge_faces
        e_bad |= (n_edge_faces == 2) & (deg[eu] + deg[ev] - 4 < 3)
        e_bad |= deg[eu] + deg[ev] - 2 - n_edge_faces > max_degree
        e_bad |= (n_edge_faces < 1) | ~np.isfinite(e_cost)
        # cheapest valid edge of every selected vertex
        c = np.where(e_bad, np.inf, e_cost)
        o = np.lexsort((c, e_owner))
        first = np.ones(len(o), bool)
        first[1:] = e_owner[o][1:] != e_owner[o][:-1]
        pick = o[first]
        pick = pick[np.isfinite(c[pick])]
        failed = np.setdiff1d(sel, eu[pick])
        frozen[failed] = True
        if len(pick) == 0:
            if not (cand & ~selected).any() and not (~frozen & alive).any():
                break
            continue
        removed = n_edge_faces[pick].astype(np.int64)
        excess = n_faces - target_faces
        if removed.sum() > excess:
            o2 = np.argsort(c[pick], kind="stable")
            csum = np.cumsum(removed[o2])
            keep_n = int(np.searchsorted(csum, excess, side="left")) + 1
            keep_n = min(keep_n, len(o2))
            if csum[keep_n - 1] > excess and keep_n > 1 and \
                    abs(csum[keep_n - 2] - excess) <= abs(csum[keep_n - 1] - excess):
                keep_n -= 1
            pick = pick[o2[:keep_n]]
        cu, cv = eu[pick], ev[pick]
        remap = np.arange(n)
        remap[cu] = cv
        f = remap[f]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        q[cv] += q[cu]
        # neighbourhoods changed: let frozen vertices near the collapses try again
        touched = np.zeros(n, np.int8)
        touched[cv] = 1
        touched = (adj_self @ (adj_self @ touched)) > 0
        frozen &= ~touched
        frozen[cu] = False
    else:
        logger.warning("decimation stopped after %d rounds", max_rounds)

    if len(f) > target_faces * 1.02:
        logger.warning("decimation reached %d faces instead of %d (no further valid collapse)",
                       len(f), target_faces)
    kept = np.unique(f)
    remap = np.full(n, -1, np.int64)
    remap[kept] = np.arange(len(kept))
    return orig[kept], remap[f]
