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

Parallel rounds over connected components
-----------------------------------------
Every decision of a round is local to a connected component: the independent set compares
cost ranks within 2-rings (the relative order of a component's vertices in the global ranking
is their order in a ranking of the component alone, ties broken by vertex index), and the
validity of a collapse depends on its one-ring only. The only couplings between components are
the stop tests (face count, no candidate left) and the trimming of a round that would overshoot
the target (the cheapest collapses over *all* components are kept). Large meshes with several
components (the two hemispheres) are therefore split into groups of components that propose
their collapses in threads (NumPy and SciPy release the GIL on large arrays); the main thread
trims the proposals jointly and the groups apply them. The result is bit-identical to
decimating the whole mesh at once (``n_jobs=1``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from .._utils import logger
from .._validate import check_int
from ..exceptions import LamegDataError, LamegValueError
from .adjacency import directed_edges, edge_keys
from .normals import vertex_normals

__all__ = ["decimate_vertex_subset"]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two (m, 3) arrays (the same products and differences), faster."""
    out = np.empty_like(a)
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    np.subtract(a1 * b2, a2 * b1, out=out[:, 0])
    np.subtract(a2 * b0, a0 * b2, out=out[:, 1])
    np.subtract(a0 * b1, a1 * b0, out=out[:, 2])
    return out


def _face_quadrics(v: np.ndarray, f: np.ndarray, n: int, e: np.ndarray,
                   bnd: np.ndarray) -> np.ndarray:
    """Per-vertex 4x4 error quadrics (area-weighted face planes + boundary constraint planes).

    ``e`` are the half-edges of the faces (:func:`directed_edges`), ``bnd`` flags the ones on
    the boundary.
    """
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    nrm = _cross(p1 - p0, p2 - p0)
    area2 = np.linalg.norm(nrm, axis=1)
    ok = area2 > 0
    unit = np.zeros_like(nrm)
    unit[ok] = nrm[ok] / area2[ok, None]
    plane = np.c_[unit, -np.einsum("ij,ij->i", unit, p0)]
    # (area * p_i) * p_j of every face, summed per corner vertex in the order corner 0 of all
    # faces, corner 1, corner 2 (bincount accumulates sequentially, as ``np.add.at`` would)
    ap = ((0.5 * area2)[:, None] * plane).T.copy()
    pt = plane.T.copy()
    corner = f.T.ravel()
    q = np.empty((n, 4, 4))
    for i in range(4):
        for j in range(4):
            q[:, i, j] = np.bincount(corner, weights=np.tile(ap[i] * pt[j], 3), minlength=n)
    # boundary edges: plane through the edge, perpendicular to its face, heavily weighted
    if bnd.any():
        face_of = np.repeat(np.arange(len(f)), 3)[bnd]
        a, b = v[e[bnd, 0]], v[e[bnd, 1]]
        d = b - a
        pn = _cross(d, unit[face_of])
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
# Threads are used (n_jobs=None) only when at least two groups of components have this many
# faces or more: NumPy releases the GIL only on large arrays, and on small meshes the per-call
# overhead dominates, so two threads contend for the GIL (two bumpy spheres of 1,280 / 5,120 /
# 20,480 faces each: 2 threads take 1.6x / 1.2x / 1.0x the time of 1).
PARALLEL_MIN_FACES = 50_000

# collapse costs are evaluated in blocks of this many edges (cache-sized temporaries)
_COST_BLOCK = 16384
# collapse costs of the rows untouched by the last round are carried over (False: all
# recomputed; the same values)
_REUSE_COSTS = True
# each selected vertex tests its cheapest, then next cheapest... edge for validity, and after
# this many all its remaining edges at once
_LAZY_EDGES = 2

_IU, _JU = np.triu_indices(4)
_W = np.where(_IU == _JU, 1.0, 2.0)


def _ring_min(adj_self: sp.csr_matrix, key: np.ndarray) -> np.ndarray:
    """Minimum of ``key`` over each vertex's closed one-ring (adjacency incl. the diagonal)."""
    # every row holds at least its diagonal entry, so no segment of reduceat is empty
    return np.minimum.reduceat(key[adj_self.indices], adj_self.indptr[:-1])


def _row_entries(adj: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the given rows of ``adj`` (concatenated) and where each row starts."""
    start = adj.indptr[rows]
    cnt = adj.indptr[rows + 1] - start
    off = np.cumsum(cnt) - cnt
    return adj.indices[np.arange(cnt.sum()) - np.repeat(off - start, cnt)], off


def _two_ring_min_at(adj_self: sp.csr_matrix, key: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``_ring_min(adj_self, _ring_min(adj_self, key))[rows]``, visiting only the one-rings
    of ``rows`` and of their neighbours (for a few rows of a large mesh)."""
    nb, off = _row_entries(adj_self, rows)
    near = np.zeros(len(key), bool)
    near[nb] = True
    near = np.flatnonzero(near)
    nb1, off1 = _row_entries(adj_self, near)
    m1 = np.full(len(key), np.inf)
    m1[near] = np.minimum.reduceat(key[nb1], off1)
    return np.minimum.reduceat(m1[nb], off)


def _sq_norm(d: np.ndarray) -> np.ndarray:
    """``(d ** 2).sum(1)`` of an (m, 3) array, summed in the same order, without the slow
    reduction over a length-3 axis."""
    s = d * d
    return (s[:, 0] + s[:, 1]) + s[:, 2]


def _quality(p0, p1, p2, a2):
    """Shape quality of triangles (p0, p1, p2) of doubled area ``a2`` (1 = equilateral)."""
    l2 = _sq_norm(p1 - p0) + _sq_norm(p2 - p1) + _sq_norm(p0 - p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(2.0 * np.sqrt(3.0) * a2 / l2)


class _Part:
    """A group of connected components of the mesh, decimated one round at a time.

    Its vertices are kept in increasing original order (``orig``) and its faces in their
    original order (``fid``), so every tie breaks as it would on the whole mesh. A round is
    :meth:`propose` (cheapest valid collapse of every independent vertex; no global state), then
    :meth:`commit` of the collapses the caller kept.
    """

    def __init__(self, v, f, fid, orig, opts):
        self.v, self.f, self.fid, self.orig = v, f, fid, orig
        self.q = self.mono = self.ref_n = None
        self.frozen = np.zeros(len(v), bool)
        # per-vertex quadric coefficients (row-major), and the collapse costs of the previous
        # round with the vertices whose row of costs is unchanged since then (``clean``)
        self.qc = self.qc_f = self.self_cost = None
        self.prev_start = self.prev_cost = self.clean = None
        self.cos_max, self.min_quality, self.max_degree, self.preserve_boundary = opts
        self._cu = self._cv = self._adj = None

    def prepare(self) -> int:
        """Quadrics, monomials and reference normals of the vertices; returns the number of
        non-manifold edges (nothing else is done when there are some)."""
        v, f, n = self.v, self.f, len(self.v)
        e = directed_edges(f)
        key, _ = edge_keys(np.sort(e, axis=1))
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        n_bad = int((cnt > 2).sum())
        if n_bad:
            return n_bad
        self.q = _face_quadrics(v, f, n, e, cnt[inv.ravel()] == 1)
        vh = np.c_[v, np.ones(n)]
        # row-major, so that rows are gathered fast (the values do not depend on the layout)
        self.mono = np.ascontiguousarray(vh[:, _IU] * vh[:, _JU])
        # original vertex normals: a new face must agree with the original surface at its
        # corners
        self.ref_n = vertex_normals(v, f, weighting="area")
        return 0

    def propose(self):
        """Proposed collapses of this round.

        Returns ``(has_candidate, more, cost, removed, u_orig)``: whether any vertex proposed a
        collapse, whether a later round could still find one (a candidate left out of the
        independent set or a vertex that is not frozen), and per valid collapse (in increasing
        original index of the removed vertex) its cost, the number of faces it removes and the
        original index of the removed vertex.
        """
        none = np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._cu = self._cv = np.zeros(0, np.int64)
        self._adj = None
        if len(self.f) == 0:
            return (False, False) + none
        f, n = self.f, len(self.v)
        # drop the vertices no face uses any more: the per-vertex work then shrinks with the
        # mesh. The order of the survivors is kept, so ties break exactly as without it.
        used = np.bincount(f.ravel(), minlength=n) > 0
        if used.sum() < COMPACT_BELOW * n:
            live = np.flatnonzero(used)
            remap = np.full(n, -1, np.int64)
            remap[live] = np.arange(len(live))
            self.f = f = remap[f]
            self.v, self.q, self.mono, self.ref_n, self.frozen, self.orig = (
                a[live] for a in (self.v, self.q, self.mono, self.ref_n, self.frozen, self.orig))
            if self.qc is not None:
                self.qc, self.prev_start, self.clean = (
                    a[live] for a in (self.qc, self.prev_start, self.clean))
                self.qc_f = np.asfortranarray(self.qc_f[live])
            n = len(live)
        v, q, frozen, deg_max = self.v, self.q, self.frozen, self.max_degree
        n_faces = len(f)
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
        if self.preserve_boundary:
            ok &= ~bnd[u_all]
        ok &= ~(bnd[u_all] & ~is_bedge)       # boundary vertices move along the boundary only
        # h_v' (Q_u + Q_v) h_v with Q as its 10 unique coefficients and h_v as monomials;
        # only the rows near the last round's collapses are recomputed (the same
        # row-wise arithmetic, so the costs are exactly those of a full recomputation)
        # (the self costs are recomputed as a whole from a column-major qc: einsum sums in a
        # layout-dependent order, and this is the order of every other round and part)
        if self.qc is None:
            self.qc_f = np.asfortranarray(q[:, _IU, _JU] * _W)
            self.qc = np.ascontiguousarray(self.qc_f)   # row-major copy for gathering rows
        self.self_cost = np.einsum("ij,ij->i", self.mono, self.qc_f)
        starts = cnt_m.indptr[:-1]
        if self.clean is None or not _REUSE_COSTS:
            raw = self._edge_cost(u_all, v_all)
        else:
            clean_e = self.clean[u_all]
            raw = np.empty(len(u_all))
            src = np.repeat(self.prev_start - starts, deg)
            src += np.arange(len(u_all))
            raw[clean_e] = self.prev_cost[src[clean_e]]
            dirty_e = ~clean_e
            raw[dirty_e] = self._edge_cost(u_all[dirty_e], v_all[dirty_e])
        self.prev_start, self.prev_cost = starts, raw
        self.clean = np.ones(n, bool)             # unless collapses are committed
        cost = np.where(ok, raw, np.inf)
        best = np.full(n, np.inf)
        nz = deg > 0
        best[nz] = np.minimum.reduceat(cost, cnt_m.indptr[:-1][nz])
        cand = np.isfinite(best) & alive
        if not cand.any():
            return (False, bool((~frozen & alive).any())) + none
        # --- independent set (graph distance >= 3) by increasing cost
        # rank of every candidate by cost, ties by index (only the order is ever compared)
        ci = np.flatnonzero(cand)
        bc = best[ci]
        o = np.argsort(bc)                        # any sort is stable when no costs tie
        bo = bc[o]
        if (bo[1:] == bo[:-1]).any():
            o = np.argsort(bc, kind="stable")
        key = np.full(n, np.inf)
        key[ci[o]] = np.arange(len(ci), dtype=float)
        adj_self = (cnt_m.astype(bool) + sp.identity(n, dtype=bool, format="csr")).tocsr()
        selected = np.zeros(n, bool)
        pool = cand.copy()
        for _ in range(4):
            k = np.where(pool, key, np.inf)
            at = np.flatnonzero(pool)
            if 3 * len(at) > n:
                new = pool & (k == _ring_min(adj_self, _ring_min(adj_self, k)))
            else:                                 # later passes: a small pool
                new = np.zeros(n, bool)
                new[at[k[at] == _two_ring_min_at(adj_self, k, at)]] = True
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
        # vertex -> face incidence; the faces of the selected vertices (disjoint one-rings)
        fid = np.repeat(np.arange(n_faces), 3)
        vf = sp.csr_matrix((np.ones(fid.size, bool), (f.ravel(), fid)), shape=(n, n_faces))
        nf = np.diff(vf.indptr)[sel]
        f_start = vf.indptr[sel]
        s_base = np.cumsum(nf) - nf
        s_face = vf.indices[np.arange(nf.sum()) - np.repeat(s_base - f_start, nf)]
        # their shape before the collapse (once per face rather than once per edge)
        old = v[f[s_face]]
        n_old_s = _cross(old[:, 1] - old[:, 0], old[:, 2] - old[:, 0])
        l_old_s = np.linalg.norm(n_old_s, axis=1)
        q_old_s = _quality(old[:, 0], old[:, 1], old[:, 2], l_old_s)

        def edge_bad(idx):
            """Which of the collapses ``idx`` (edge indices) are invalid, and the number of
            faces on each edge (every test is row-wise, so any subset gives the same answer)."""
            own = e_owner[idx]
            iu, iv, ib = eu[idx], ev[idx], e_bnd[idx]
            # pairs: for each edge of u, every face of u
            npair_e = nf[own]
            p_edge = np.repeat(np.arange(len(idx)), npair_e)
            p_local = np.arange(npair_e.sum()) - np.repeat(np.cumsum(npair_e) - npair_e, npair_e)
            p_slot = s_base[own][p_edge] + p_local
            pf = f[s_face[p_slot]]
            pu, pv = iu[p_edge], iv[p_edge]
            has_v = (pf == pv[:, None]).any(axis=1)
            # faces on the edge: count and apex degree
            n_edge_faces = np.bincount(p_edge, weights=has_v, minlength=len(idx))
            apex = np.where(has_v, pf.sum(axis=1) - pu - pv, 0)
            apex_bad = has_v & ((deg[apex] <= 3) | (ib[p_edge] & bnd[apex]))
            # surviving faces: replace u by v and test orientation and shape
            surv = ~has_v
            sf = pf[surv]
            s_surv = p_slot[surv]
            n_old, l_old, q_old = n_old_s[s_surv], l_old_s[s_surv], q_old_s[s_surv]
            newf = np.where(sf == pu[surv, None], pv[surv, None], sf)
            new = v[newf]
            n_new = _cross(new[:, 1] - new[:, 0], new[:, 2] - new[:, 0])
            l_new = np.linalg.norm(n_new, axis=1)
            dot = np.einsum("ij,ij->i", n_old, n_new)
            q_new = _quality(new[:, 0], new[:, 1], new[:, 2], l_new)
            rn = self.ref_n             # the sum over the corners, in the order of .sum(axis=1)
            ref_sum = (rn[newf[:, 0]] + rn[newf[:, 1]]) + rn[newf[:, 2]]
            geo_bad = (l_new <= 1e-12 * np.maximum(l_old, 1e-300)) \
                | (dot <= self.cos_max * l_old * l_new) \
                | (q_new < np.minimum(self.min_quality, q_old)) \
                | (np.einsum("ij,ij->i", n_new, ref_sum) <= 0)
            bad_pair = np.zeros(len(p_edge), bool)
            bad_pair[surv] = geo_bad
            bad_pair |= apex_bad
            bad = np.bincount(p_edge, weights=bad_pair, minlength=len(idx)) > 0
            # link condition: common neighbours of u and v == faces on the edge
            au = cnt_m[iu].astype(bool)
            av = cnt_m[iv].astype(bool)
            common = np.asarray(au.multiply(av).sum(axis=1)).ravel()
            bad |= common != n_edge_faces
            bad |= (n_edge_faces == 2) & (deg[iu] + deg[iv] - 4 < 3)
            bad |= deg[iu] + deg[iv] - 2 - n_edge_faces > deg_max
            bad |= (n_edge_faces < 1) | ~np.isfinite(e_cost[idx])
            return bad, n_edge_faces

        # cheapest valid edge of every selected vertex (the first one among equal costs):
        # each vertex tries its edges in that order, and the cheapest is almost always valid
        e_first = np.cumsum(ne) - ne
        tried = np.zeros(len(eu), bool)
        pick_of = np.full(len(sel), -1)
        faces_of = np.zeros(len(sel))
        pending = np.ones(len(sel), bool)
        for r in range(_LAZY_EDGES + 1):
            if r < _LAZY_EDGES:                   # the cheapest untried edge of each vertex
                c_try = np.where(tried, np.inf, e_cost)
                low = np.fmin.reduceat(c_try, e_first)
                pending &= np.isfinite(low)       # else no finite edge is left
                if not pending.any():
                    break
                hit = np.flatnonzero(c_try == low[e_owner])
                idx = hit[np.r_[True, e_owner[hit][1:] != e_owner[hit][:-1]]]
                idx = idx[pending[e_owner[idx]]]
            elif not pending.any():
                break
            else:                                 # then all the others, in order of cost
                idx = np.flatnonzero(pending[e_owner] & ~tried)
                idx = idx[np.lexsort((e_cost[idx], e_owner[idx]))]
            tried[idx] = True
            own = e_owner[idx]
            fin = np.isfinite(e_cost[idx])
            valid = np.zeros(len(idx), bool)
            nef = np.zeros(len(idx))
            if fin.any():
                bad, nef[fin] = edge_bad(idx[fin])
                valid[fin] = ~bad
            ok = np.flatnonzero(valid)
            if len(ok):                           # the first valid edge of each vertex
                ok = ok[np.r_[True, own[ok][1:] != own[ok][:-1]]]
            pick_of[own[ok]] = idx[ok]
            faces_of[own[ok]] = nef[ok]
            pending[own[ok]] = False
            pending[own[~fin]] = False            # no finite edge left
        picked = np.flatnonzero(pick_of >= 0)
        pick = pick_of[picked]
        failed = np.setdiff1d(sel, eu[pick])
        frozen[failed] = True
        more = bool((cand & ~selected).any() or (~frozen & alive).any())
        self._cu, self._cv, self._adj = eu[pick], ev[pick], adj_self
        return (True, more, e_cost[pick], faces_of[picked].astype(np.int64),
                self.orig[eu[pick]])

    def _edge_cost(self, u, w):
        """Quadric error of collapsing ``u`` into ``w`` (both index arrays).

        Computed in blocks of :data:`_COST_BLOCK` collapses through reused buffers (the
        gathered rows then stay in cache); each value is the same row-wise product sum.
        """
        out = np.empty(len(u))
        m = min(len(u), _COST_BLOCK)
        bm, bq = np.empty((m, 10)), np.empty((m, 10))
        for s in range(0, len(u), _COST_BLOCK):
            uu, ww = u[s:s + _COST_BLOCK], w[s:s + _COST_BLOCK]
            k = len(uu)
            np.take(self.mono, ww, axis=0, out=bm[:k], mode="clip")  # valid indices
            np.take(self.qc, uu, axis=0, out=bq[:k], mode="clip")
            np.einsum("ij,ij->i", bm[:k], bq[:k], out=out[s:s + k])
            out[s:s + k] += self.self_cost[ww]
        return out

    def commit(self, keep):
        """Apply the proposed collapses selected by the boolean mask ``keep``."""
        n = len(self.v)
        cu, cv = self._cu[keep], self._cv[keep]
        remap = np.arange(n)
        remap[cu] = cv
        f = remap[self.f]
        good = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        gone = f[~good].ravel()
        self.f, self.fid = f[good], self.fid[good]
        self.q[cv] += self.q[cu]
        if len(cv):
            self.qc[cv] = self.qc_f[cv] = self.q[cv][:, _IU, _JU] * _W
            adj_self = self._adj
            # costs change on the rows of the one-rings of u and v (neighbours or quadrics)
            ends = np.zeros(n, np.int32)
            ends[cu] = 1
            ends[cv] = 1
            self.clean = (adj_self @ ends) == 0
            # neighbourhoods changed: let frozen vertices near the collapses try again
            touched = np.zeros(n, np.int8)
            touched[cv] = 1
            touched = (adj_self @ (adj_self @ touched)) > 0
            self.frozen &= ~touched
            self.frozen[cu] = False
        if len(gone) and self.clean is not None:
            self.clean[gone] = False              # degenerate input faces dropped
        self._cu = self._cv = self._adj = None


def _split_parts(f: np.ndarray, n: int, n_groups: int):
    """Group the connected components of a mesh into ``n_groups`` parts of similar face count.

    Returns a list of ``(vertex_indices, face_indices)``, both increasing; vertices of no face
    belong to no part.
    """
    from scipy.sparse.csgraph import connected_components

    e = directed_edges(f)
    graph = sp.csr_matrix((np.ones(len(e), bool), (e[:, 0], e[:, 1])), shape=(n, n))
    n_comp, label = connected_components(graph, directed=False)
    face_comp = label[f[:, 0]]
    size = np.bincount(face_comp, minlength=n_comp)
    group = np.full(n_comp, -1)
    load = np.zeros(n_groups, np.int64)
    for comp in np.argsort(-size, kind="stable"):
        if size[comp] == 0:
            continue                                 # a vertex without faces
        g = int(np.argmin(load))
        group[comp] = g
        load[g] += size[comp]
    vert_group = group[label]
    face_group = group[face_comp]
    return [(np.flatnonzero(vert_group == g), np.flatnonzero(face_group == g))
            for g in range(n_groups) if load[g] > 0]


def _trim(cost: np.ndarray, removed: np.ndarray, excess: int) -> np.ndarray:
    """Indices of the cheapest collapses whose removed faces come closest to ``excess``.

    ``cost`` and ``removed`` are in increasing vertex order (ties in cost keep that order).
    """
    o2 = np.argsort(cost, kind="stable")
    csum = np.cumsum(removed[o2])
    keep_n = int(np.searchsorted(csum, excess, side="left")) + 1
    keep_n = min(keep_n, len(o2))
    if csum[keep_n - 1] > excess and keep_n > 1 and \
            abs(csum[keep_n - 2] - excess) <= abs(csum[keep_n - 1] - excess):
        keep_n -= 1
    return o2[:keep_n]


def decimate_vertex_subset(vertices: np.ndarray, faces: np.ndarray, ds_factor: float = 0.1, *,
                           target_faces: int | None = None, max_normal_angle: float = 75.0,
                           min_quality: float = 0.1, max_degree: int = 14,
                           preserve_boundary: bool = False, max_rounds: int = 500,
                           n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    n_jobs : int or None
        Threads over groups of connected components (module docstring); the result does not
        depend on it. 1 decimates the whole mesh in one piece, -1 uses every core (at most one
        thread per component). None (default): every core when at least two groups of
        components have :data:`PARALLEL_MIN_FACES` faces or more (the two hemispheres of a
        cortical mesh), else 1 (threads do not pay on small meshes). Meshes with degenerate
        faces (a repeated vertex) are decimated in one piece.

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
    if n_jobs is not None:
        n_jobs = check_int(n_jobs, "n_jobs")
        if n_jobs == 0 or n_jobs < -1:
            raise LamegValueError(f"n_jobs must be a positive integer or -1, got {n_jobs}")
    if target_faces is None:
        if not 0 < ds_factor <= 1:
            raise LamegValueError(f"ds_factor must be in (0, 1], got {ds_factor}")
        target_faces = int(round(ds_factor * len(f)))
    target_faces = max(int(target_faces), 1)
    opts = (np.cos(np.deg2rad(max_normal_angle)), min_quality, max_degree, preserve_boundary)
    cores = os.cpu_count() or 1
    n_groups = 1 if n_jobs == 1 else cores if n_jobs in (None, -1) else n_jobs
    if n_jobs is None and len(f) < 2 * PARALLEL_MIN_FACES:
        n_groups = 1
    if n_groups > 1 and ((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])).any():
        n_groups = 1    # faces with a repeated vertex: their first round looks beyond the part
    groups = _split_parts(f, n, n_groups) if n_groups > 1 else []
    sizes = sorted((len(fi) for _, fi in groups), reverse=True)
    if len(groups) < 2 or (n_jobs is None and sizes[1] < PARALLEL_MIN_FACES):
        parts = [_Part(v, f, np.arange(len(f)), np.arange(n), opts)]
    else:
        remap = np.full(n, -1, np.int64)
        for vi, _ in groups:
            remap[vi] = np.arange(len(vi))
        parts = [_Part(v[vi], remap[f[fi]], fi, vi, opts) for vi, fi in groups]
    pool = ThreadPoolExecutor(len(parts)) if len(parts) > 1 else None
    try:
        # every per-vertex quantity only sums over the vertex's own faces, in face order,
        # so it is the same whether computed on the whole mesh or on its part
        n_bad = sum(pool.map(_Part.prepare, parts) if pool else [parts[0].prepare()])
        if n_bad:
            raise LamegDataError(f"mesh has {n_bad} non-manifold edges; repair it first "
                                 "(lameg.mesh.repair.fix_non_manifold_edges)")
        _run_rounds(parts, pool, target_faces, max_rounds)
    finally:
        if pool is not None:
            pool.shutdown()

    f = np.concatenate([p.orig[p.f] for p in parts])
    if len(parts) > 1:
        f = f[np.argsort(np.concatenate([p.fid for p in parts]))]
    if len(f) > target_faces * 1.02:
        logger.warning("decimation reached %d faces instead of %d (no further valid collapse)",
                       len(f), target_faces)
    kept = np.unique(f)
    return kept, np.searchsorted(kept, f)


def _run_rounds(parts: list[_Part], pool, target_faces: int, max_rounds: int) -> None:
    """Parallel collapse rounds over all parts in lockstep until the target is reached."""
    def each(fn, *args):
        if pool is None:
            return [fn(*a) for a in zip(*args)]
        return list(pool.map(fn, *args))

    for _round in range(max_rounds):
        n_faces = sum(len(p.f) for p in parts)
        if n_faces <= target_faces:
            break
        props = each(_Part.propose, parts)
        if not any(pr[0] for pr in props):
            break
        n_pick = [len(pr[2]) for pr in props]
        if sum(n_pick) == 0:
            if not any(pr[1] for pr in props):
                break
            continue
        keep = [np.ones(k, bool) for k in n_pick]
        removed = np.concatenate([pr[3] for pr in props])
        excess = n_faces - target_faces
        if removed.sum() > excess:
            # keep the cheapest collapses of the whole mesh (ties by original vertex index)
            cost = np.concatenate([pr[2] for pr in props])
            order = np.argsort(np.concatenate([pr[4] for pr in props]), kind="stable")
            flat = np.zeros(len(cost), bool)
            flat[order[_trim(cost[order], removed[order], excess)]] = True
            keep = np.split(flat, np.cumsum(n_pick)[:-1])
            logger.debug("decimation round %d: %d of %d collapses kept to reach the target",
                         _round, int(flat.sum()), len(flat))
        each(_Part.commit, parts, keep)
    else:
        logger.warning("decimation stopped after %d rounds", max_rounds)
