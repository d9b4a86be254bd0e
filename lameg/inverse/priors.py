"""Source priors of the SPM inversions (classic engine; the standard engine reuses some).

* EBB - smoothed empirical Bayes beamformer (``a_b = l'l / l'C^-1 l`` with ``l = UL QG[:, b]``);
* EBBlayer - laminar EBB (IND, SUM and DIFF covariance families with top-k pairs per column,
  danclab/spm @ 1d9abecc);
* IID (minimum norm) and COH (IID + Green-function smoothness);
* MSP/GS/ARD - patches ``QG[:, Ip]``; greedy search (``spm_mvb``) and ARD (``spm_sp_reml``).

Everything is vectorised over vertices; projected lead fields are formed in column blocks so
that memory stays bounded on large (multilayer) meshes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..exceptions import LamegValueError
from .reml import reml_sc, sp_reml, weighted_trace
from .svd import spm_inv

_BLOCK = 16384
TINY = 1e-30


def smoothed_leads(UL: np.ndarray, QG, cols: np.ndarray | slice | None = None) -> np.ndarray:
    """``UL @ QG[:, cols]`` (Nm x n_cols) with a sparse ``QG``.

    Parameters
    ----------
    UL : ndarray, shape (Nm, Nd)
        Spatially reduced lead field (fT per nA m in the reduced sensor space).
    QG : sparse or ndarray, shape (Nd, Nd)
        Smoothing kernel (Green function or geodesic patches).
    cols : ndarray of int, slice or None
        0-based columns of ``QG`` to use; None uses all of them.

    Returns
    -------
    ndarray, shape (Nm, n_cols)
        Smoothed lead fields, one column per selected source.
    """
    q = QG if cols is None else QG[:, cols]
    if sp.issparse(q):
        return np.asarray((q.T @ UL.T).T)
    return UL @ q


def lead_norms(leads: np.ndarray, block: int = _BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(l'l, any(l != 0))`` of lead fields, computed in blocks.

    Parameters
    ----------
    leads : ndarray, shape (Nm, Nd)
        Lead fields, one column per source (fT per nA m in the reduced sensor space).
    block : int
        Number of columns handled at a time (bounds the memory used).

    Returns
    -------
    den : ndarray, shape (Nd,)
        Squared norm ``l'l`` of each column (squared lead-field unit).
    ok : ndarray of bool, shape (Nd,)
        True where the column has a non-zero entry.
    """
    nd = leads.shape[1]
    den = np.zeros(nd)
    ok = np.zeros(nd, dtype=bool)
    for start in range(0, nd, block):
        lead = leads[:, start:start + block]
        den[start:start + block] = np.einsum("md,md->d", lead, lead)
        ok[start:start + block] = np.any(lead != 0, axis=0)
    return den, ok


def ebb_weights(UL: np.ndarray, QG, inv_cov: np.ndarray, smooth: bool = True,
                block: int = _BLOCK, leads: np.ndarray | None = None,
                norms: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """EBB source power ``a_b = (l'l) / (l' C^-1 l)`` for every vertex (not normalised).

    Parameters
    ----------
    UL : ndarray (Nm, Nd)
        Reduced lead field.
    QG : sparse (Nd, Nd) or None
        Smoothing kernel (classic engine); ignored when ``smooth`` is False (standard engine).
    inv_cov : ndarray (Nm, Nm)
        Inverse data covariance.
    smooth : bool
        Use the smoothed lead fields ``UL QG[:, b]`` (classic) or ``UL[:, b]`` (standard).
    block : int
        Number of vertices processed at once (bounds the temporary memory).
    leads : ndarray (Nm, Nd) or None
        Pre-computed smoothed lead fields ``UL QG`` (used instead of ``UL`` and ``QG``
        when given, e.g. from the inversion cache).
    norms : (ndarray (Nd,), ndarray (Nd,) bool) or None
        Pre-computed :func:`lead_norms` of the lead fields used (window-invariant).

    Returns
    -------
    allsource : ndarray (Nd,)
        ``Sourcepower / normpower``; 0 where the lead field vanishes.
    sourcepower : ndarray (Nd,)
        ``1 / (l' C^-1 l)``.
    """
    nd = UL.shape[1]
    allsource = np.zeros(nd)
    power = np.zeros(nd)
    for start in range(0, nd, block):
        cols = slice(start, min(start + block, nd))
        if leads is not None:
            lead = leads[:, cols]
        else:
            lead = smoothed_leads(UL, QG, cols) if smooth else UL[:, cols]
        if norms is not None:
            den, ok = norms[0][cols], norms[1][cols]
        else:
            den, ok = lead_norms(lead)
        num = np.einsum("md,md->d", lead, inv_cov @ lead)
        with np.errstate(divide="ignore", invalid="ignore"):
            normpower = 1.0 / den
            sp_ = 1.0 / num
            val = sp_ / normpower
        power[cols] = np.where(ok, sp_, 0.0)
        allsource[cols] = np.where(ok, val, 0.0)
    return allsource, power


@dataclass
class LayerPriors:
    """EBBlayer covariance families (trace-normalised) and diagnostics."""

    Qp: list
    LQpL: list
    diag: dict = field(default_factory=dict)


def _topk_mask(scores: np.ndarray, k: int) -> np.ndarray:
    s = np.where(np.isfinite(scores), scores, 0.0)
    order = np.argsort(-s, axis=1, kind="stable")
    ranked = np.take_along_axis(s, order, axis=1)
    take = (np.arange(s.shape[1])[None, :] < k) & (ranked > 0)
    mask = np.zeros_like(take)
    np.put_along_axis(mask, order, take, axis=1)
    return mask


def _update(state, value, valid, r, is_end):
    """Strict-``>`` candidate update of the SUM optimum (SPM's evaluation order)."""
    best, mix, endpoint = state
    upd = valid & np.isfinite(value) & (value > best)
    best[upd] = value[upd]
    mix[upd] = r[upd] if np.ndim(r) else r
    endpoint[upd] = is_end


def ebblayer_priors(UL: np.ndarray, QG, inv_cov: np.ndarray, n_layers: int,
                    sum_pair_topk: int = 2, diff_pair_topk: int = 2,
                    diff_score_method: str = "stable", diff_min_relative_norm: float = 1e-8,
                    diag_vertex: int | None = None, block: int = 4096,
                    leads: np.ndarray | None = None) -> LayerPriors:
    """Laminar EBB priors (IND, SUM, DIFF), as danclab/spm ``spm_eeg_invert_classic`` @1d9abecc.

    Parameters
    ----------
    UL : ndarray (Nm, Nd)
        Reduced lead field, sources layer-major.
    QG : sparse (Nd, Nd)
        Patch kernel (block-diagonal by layer).
    inv_cov : ndarray (Nm, Nm)
        ``spm_inv(AYYA)``.
    n_layers : int
        Number of layers (>= 2).
    sum_pair_topk, diff_pair_topk : int
        Layer pairs kept per column for SUM and DIFF (1..n_layers(n_layers-1)/2).
    diff_score_method : {'stable', 'legacy'}
    diff_min_relative_norm : float
        DIFF pairs whose lead-field difference is smaller than this fraction of the larger
        single-layer lead field are rejected.
    diag_vertex : int or None
        0-based column for which per-pair diagnostics are kept.
    block : int
        Number of columns processed at once.
    leads : ndarray (Nm, Nd) or None
        Pre-computed smoothed lead fields ``UL QG`` (e.g. from the inversion cache).

    Notes
    -----
    The DIFF quadratic form ``d' C^-1 d`` uses ``C^-1 d = C^-1 l_a - C^-1 l_b``; the relative
    rounding error of this is about ``eps / diff_min_relative_norm``.
    """
    nm, nd = UL.shape
    if n_layers < 2:
        raise LamegValueError("EBBlayer needs a multilayer mesh (n_layers >= 2)")
    if nd % n_layers:
        raise LamegValueError(f"{nd} sources cannot be split into {n_layers} layers")
    n_pairs = n_layers * (n_layers - 1) // 2
    for name, k in (("sum_pair_topk", sum_pair_topk), ("diff_pair_topk", diff_pair_topk)):
        if int(k) != k or not 1 <= k <= n_pairs:
            raise LamegValueError(f"{name} must be an integer in 1..{n_pairs}, got {k}")
    if diff_score_method not in ("stable", "legacy"):
        raise LamegValueError("diff_score_method must be 'stable' or 'legacy'")
    nv = nd // n_layers
    la, lb = np.triu_indices(n_layers, 1)
    ind = np.zeros(nd)
    pair_sum = np.zeros((nv, n_pairs))
    pair_mix = np.full((nv, n_pairs), np.nan)
    pair_endpoint = np.ones((nv, n_pairs), dtype=bool)
    pair_diff = np.zeros((nv, n_pairs))
    n_rejected = 0
    cols_rejected = 0
    for start in range(0, nv, block):
        v = np.arange(start, min(start + block, nv))
        idx = (v[None, :] + nv * np.arange(n_layers)[:, None]).ravel()  # layer-major
        lead = (leads[:, idx] if leads is not None
                else smoothed_leads(UL, QG, idx)).reshape(nm, n_layers, len(v))
        ilead = (inv_cov @ lead.reshape(nm, -1)).reshape(nm, n_layers, len(v))
        g = np.einsum("mav,mbv->vab", lead, lead)
        nn = np.einsum("mav,mbv->vab", lead, ilead)
        # independent component (per vertex, as EBB)
        den_i = np.einsum("vaa->va", g)
        num_i = np.einsum("vaa->va", nn)
        ok = np.isfinite(den_i) & (den_i > TINY) & np.isfinite(num_i) & (num_i > TINY)
        with np.errstate(divide="ignore", invalid="ignore"):
            val = (1.0 / num_i) / (1.0 / den_i)
        ok &= np.isfinite(val) & (val > 0)
        ind[idx.reshape(n_layers, len(v)).T.ravel()] = np.where(ok, val, 0.0).ravel()
        g = (g + g.transpose(0, 2, 1)) / 2
        nn = (nn + nn.transpose(0, 2, 1)) / 2
        gaa, gab, gbb = g[:, la, la], g[:, la, lb], g[:, lb, lb]
        naa, nab, nbb = nn[:, la, la], nn[:, la, lb], nn[:, lb, lb]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            best = np.zeros(gaa.shape)
            mix = np.full(gaa.shape, np.nan)
            endpoint = np.ones(gaa.shape, dtype=bool)
            state = (best, mix, endpoint)
            v0 = gaa / (4 * naa)
            _update(state, v0, np.isfinite(gaa) & np.isfinite(naa) & (gaa > TINY) & (naa > TINY),
                    0.0, True)
            a2 = gbb * nab - gab * nbb
            a1 = gbb * naa - gaa * nbb
            a0 = gab * naa - gaa * nab
            scale = np.max(np.abs(np.stack([a2, a1, a0])), axis=0)
            good = np.isfinite(scale) & (scale > 0)
            tol = 1e-12 * scale
            quad = good & (np.abs(a2) > tol)
            lin = good & ~quad & (np.abs(a1) > tol)
            disc = a1 * a1 - 4 * a2 * a0
            qok = quad & np.isfinite(disc) & (disc >= 0)
            sq = np.sqrt(np.where(qok, disc, 0.0))
            r1 = np.where(qok, (-a1 + sq) / (2 * a2), np.nan)
            r2 = np.where(qok, (-a1 - sq) / (2 * a2), np.nan)
            r1 = np.where(lin, -a0 / a1, r1)
            for r in (r1, r2):
                rv = np.isfinite(r) & (r > 0)
                rr = np.where(rv, r, 0.0)
                den = gaa + 2 * rr * gab + rr**2 * gbb
                num = naa + 2 * rr * nab + rr**2 * nbb
                valid = rv & np.isfinite(den) & (den > TINY) & np.isfinite(num) & (num > TINY)
                _update(state, den / (4 * num), valid, rr, False)
            vinf = gbb / (4 * nbb)
            _update(state, vinf, np.isfinite(gbb) & np.isfinite(nbb) & (gbb > TINY) & (nbb > TINY),
                    np.inf, True)
        interior = ~endpoint & np.isfinite(mix) & (mix > 0) & np.isfinite(best) & (best > 0)
        pair_sum[v] = np.where(interior, best, 0.0)
        pair_mix[v] = mix
        pair_endpoint[v] = endpoint
        # DIFF scores
        with np.errstate(divide="ignore", invalid="ignore"):
            if diff_score_method == "stable":
                dl = lead[:, la, :] - lead[:, lb, :]
                dil = ilead[:, la, :] - ilead[:, lb, :]
                den = np.einsum("mpv,mpv->vp", dl, dl)
                num = np.einsum("mpv,mpv->vp", dl, dil)
                nrm_a = np.sqrt(np.einsum("mav,mav->va", lead, lead))
                rel = np.sqrt(den) / np.maximum(nrm_a[:, la], nrm_a[:, lb])
                elig = (np.isfinite(den) & (den > TINY) & np.isfinite(num) & (num > TINY)
                        & np.isfinite(rel))
                rejected = elig & (rel < diff_min_relative_norm)
                n_rejected += int(rejected.sum())
                cols_rejected += int(np.any(rejected, axis=1).sum())
                elig &= ~rejected
            else:
                den = gaa + gbb - 2 * gab
                num = naa + nbb - 2 * nab
                elig = np.isfinite(den) & (den > TINY) & np.isfinite(num) & (num > TINY)
            sc = den / (4 * num)
            pair_diff[v] = np.where(elig & np.isfinite(sc) & (sc > 0), sc, 0.0)
    keep_sum = _topk_mask(pair_sum, int(sum_pair_topk)) & (pair_sum > 0)
    keep_diff = _topk_mask(pair_diff, int(diff_pair_topk))
    # covariance families
    rows_s, cols_s, vals_s = [], [], []
    rows_d, cols_d, vals_d = [], [], []
    diag_sum = np.zeros((nv, n_layers))
    diag_diff = np.zeros((nv, n_layers))
    for p in range(n_pairs):
        a, b = la[p], lb[p]
        ks = np.flatnonzero(keep_sum[:, p])
        if ks.size:
            r = pair_mix[ks, p]
            s = pair_sum[ks, p]
            sc2 = 2.0 / (1.0 + r**2)
            diag_sum[ks, a] += s * sc2
            diag_sum[ks, b] += s * sc2 * r**2
            off = s * sc2 * r
            rows_s += [a * nv + ks, b * nv + ks]
            cols_s += [b * nv + ks, a * nv + ks]
            vals_s += [off, off]
        kd = np.flatnonzero(keep_diff[:, p])
        if kd.size:
            d = pair_diff[kd, p]
            diag_diff[kd, a] += d
            diag_diff[kd, b] += d
            rows_d += [a * nv + kd, b * nv + kd]
            cols_d += [b * nv + kd, a * nv + kd]
            vals_d += [-d, -d]
    all_idx = np.arange(nd)

    def _assemble(rows, cols, vals, dg):
        dflat = dg.T.ravel()  # layer-major
        r = np.concatenate(rows + [all_idx])
        c = np.concatenate(cols + [all_idx])
        x = np.concatenate(vals + [dflat])
        q = sp.csr_matrix((x, (r, c)), shape=(nd, nd))
        q = (q + q.T) / 2
        q.eliminate_zeros()
        d = q.diagonal()
        d = np.where(np.isfinite(d), d, 0.0)
        mx = d.max() if d.size else 0.0
        if mx > 0 and np.isfinite(mx):
            q = q / mx
        return q.tocsr()

    qsum = _assemble(rows_s, cols_s, vals_s, diag_sum)
    qdiff = _assemble(rows_d, cols_d, vals_d, diag_diff)
    ind = np.where(np.isfinite(ind), ind, 0.0)
    mx = ind.max()
    if mx > 0 and np.isfinite(mx):
        ind = ind / mx
    qp = [ind, qsum, qdiff]
    lqpl = []
    for i in range(3):
        if i == 0:
            xs = UL * np.sqrt(ind)
            lq = xs @ xs.T  # UL diag(ind) UL' (symmetric rank-k update)
        else:
            lq = UL @ np.asarray(qp[i] @ UL.T)
        tr = float(np.trace(lq))
        if np.isfinite(tr) and tr > 0:
            qp[i] = qp[i] / tr
            lq = lq / tr
        lqpl.append(lq)
    diag = {
        "sum_pair_topk": int(sum_pair_topk), "diff_pair_topk": int(diff_pair_topk),
        "diff_score_method": diff_score_method,
        "diff_min_relative_norm": float(diff_min_relative_norm),
        "n_diff_numerically_rejected": n_rejected,
        "n_diff_columns_with_rejection": cols_rejected,
        "n_sum_endpoint_entries": int(pair_endpoint.sum()),
        "n_sum_interior_entries": int((pair_sum > 0).sum()),
        "n_sum_pairs_kept": int(np.any(keep_sum, axis=0).sum()),
        "n_sum_pair_entries_kept": int(keep_sum.sum()),
        "n_diff_pairs_kept": int(np.any(keep_diff, axis=0).sum()),
        "n_diff_pair_entries_kept": int(keep_diff.sum()),
        "layer_pairs": np.stack([la, lb], axis=1) + 1,
    }
    if diag_vertex is not None:
        if not 0 <= diag_vertex < nv:
            raise LamegValueError(f"diag_vertex must be in 0..{nv - 1}, got {diag_vertex}")
        dv = int(diag_vertex)
        diag.update({
            "diag_vertex": dv + 1,
            "pair_sum_vertex": pair_sum[dv].copy(),
            "pair_sum_mixing_vertex": pair_mix[dv].copy(),
            "pair_sum_endpoint_vertex": pair_endpoint[dv].copy(),
            "pair_keep_sum_vertex": keep_sum[dv].copy(),
            "pair_diff_vertex": pair_diff[dv].copy(),
            "pair_keep_diff_vertex": keep_diff[dv].copy(),
        })
        di = dv + nv * np.arange(n_layers)
        diag["Qind_local"] = np.diag(qp[0][di])
        diag["Qsum_local"] = qp[1][np.ix_(di, di)].toarray()
        diag["Qdiff_local"] = qp[2][np.ix_(di, di)].toarray()
    return LayerPriors(Qp=qp, LQpL=lqpl, diag=diag)


def patch_matrix(QG, Ip: np.ndarray) -> sp.csc_matrix:
    """Patch basis ``Q = QG[:, Ip]``.

    Parameters
    ----------
    QG : sparse or ndarray, shape (Nd, Nd)
        Smoothing kernel (Green function or geodesic patches).
    Ip : ndarray of int, shape (Np,)
        0-based patch centres (vertex indices).

    Returns
    -------
    scipy.sparse.csc_matrix, shape (Nd, Np)
        One smoothed patch per column.
    """
    return sp.csc_matrix(QG)[:, np.asarray(Ip, dtype=int)]


@dataclass
class MVBResult:
    """Greedy-search (``spm_mvb``) result.

    Attributes
    ----------
    cp : ndarray (Np,)
        Diagonal of the empirical prior covariance over patches (original order).
    F : ndarray
        Free-energy trajectory ``[F(null), F(1), ...]``.
    h : ndarray
        Hyperparameters of the kept model.
    G : ndarray (Np, n_sets)
        Patch sets of the kept model.
    """

    cp: np.ndarray
    F: np.ndarray
    h: np.ndarray
    G: np.ndarray


def _mvb_g(x: np.ndarray, lp: np.ndarray, g: np.ndarray, qe: np.ndarray, w=None):
    n = x.shape[1]
    yy = x @ x.T
    comps = [qe]
    for gi in g.T:
        xs = np.ascontiguousarray(lp[:, gi != 0])
        comps.append(xs @ xs.T)
    floor = np.exp(-2) * weighted_trace(yy, w) * comps[0] / weighted_trace(comps[0], w) / n
    res = reml_sc(yy, comps, n, -4, 16, floor, multiplicity=w)
    cp = g @ res.h[1:] if g.shape[1] else np.zeros(lp.shape[1])
    mapm = np.linalg.solve(res.C.T, lp * cp).T  # Cp L' / Cy
    qe_ = mapm @ x
    return res, cp, qe_


def mvb_greedy(AY: np.ndarray, UL: np.ndarray, Q, Qe: np.ndarray, n_greedy: int = 16,
               split: float = 0.5, lp: np.ndarray | None = None, *,
               multiplicity=None) -> MVBResult:
    """Greedy search over patch sets (``spm_mvb(AY, UL, [], Q, Qe, nG)``), no confounds.

    Parameters
    ----------
    AY : ndarray (Nm, n)
        Reduced data of all trials side by side.
    UL : ndarray (Nm, Nd)
        Reduced lead field.
    Q : sparse (Nd, Np)
        Patch basis.
    Qe : ndarray (Nm, Nm)
        Sensor-noise component.
    n_greedy : int
        Number of greedy iterations (SPM: 16; the loop does not stop on a worse F).
    split : float
        Fraction of patches kept at each subdivision.
    lp : ndarray (Nm, Np) or None
        Pre-computed patch lead fields ``UL Q``.
    multiplicity : ndarray, optional
        ``AY``, ``lp`` and ``Qe`` are in the compressed representation of
        :mod:`lameg.inverse.reml` (then ``lp`` is required).
    """
    if lp is None:
        lp = np.asarray((sp.csc_matrix(Q).T @ UL.T).T)
    npat = lp.shape[1]
    null, _, _ = _mvb_g(AY, lp[:, :0], np.zeros((0, 0)), Qe, multiplicity)
    fs = [null.F]
    g = np.ones((npat, 1))
    kept = None
    for i in range(1, n_greedy + 1):
        res, cp, qe_ = _mvb_g(AY, lp, g, Qe, multiplicity)
        if i == 1 or res.F > max(fs):
            kept = (res, cp, g.copy())
        fs.append(res.F)
        lnh = np.log(res.h)
        lnh = lnh[1:] - lnh[-1]
        g = g[:, ~(lnh < -16)]
        sel = np.flatnonzero(g[:, -1])
        ng = int(np.ceil(len(sel) * split))
        order = np.argsort(-np.sum(qe_[sel] ** 2, axis=1), kind="stable")
        newcol = np.zeros((npat, 1))
        newcol[sel[order[:ng]], 0] = 1
        g = np.hstack([g, newcol])
        if ng < 1 / (1 - split):
            break
    res, cp, gk = kept
    return MVBResult(cp=cp, F=np.array(fs), h=res.h, G=gk)


def ard_weights(AYYA: np.ndarray, Qe: np.ndarray, UL: np.ndarray, Q, n_samples: float,
                lq: np.ndarray | None = None) -> np.ndarray:
    """ARD patch hyperparameters (``spm_sp_reml(AYYA, [], [Qe LQpL], Nn)``).

    Parameters
    ----------
    AYYA : ndarray, shape (Nm, Nm)
        Reduced data covariance (fT^2 in the reduced sensor space).
    Qe : ndarray, shape (Nm, Nm)
        Sensor noise covariance component.
    UL : ndarray, shape (Nm, Nd)
        Spatially reduced lead field.
    Q : sparse or ndarray, shape (Nd, Np)
        Patch basis (:func:`patch_matrix`).
    n_samples : float
        Number of samples (degrees of freedom) behind ``AYYA``.
    lq : ndarray, shape (Nm, Np), or None
        Pre-computed patch lead fields ``UL Q``; None computes them.

    Returns
    -------
    ndarray, shape (Np,)
        Hyperparameter of each patch (the noise hyperparameter is dropped).
    """
    if lq is None:
        lq = np.asarray((sp.csc_matrix(Q).T @ UL.T).T)
    res = sp_reml(AYYA, [Qe], [lq[:, i] for i in range(lq.shape[1])], n_samples)
    return res.h[1:]


def inverse_covariance(AYYA: np.ndarray) -> np.ndarray:
    """``spm_inv`` of the data covariance (used by the beamformer priors)."""
    return spm_inv(AYYA)
