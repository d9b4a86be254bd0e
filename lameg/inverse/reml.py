"""Restricted maximum likelihood (ReML) covariance-component estimation, ported from SPM.

:func:`reml_sc` reproduces ``spm_reml_sc`` (log-normal hyperpriors, Fisher scoring with
``spm_dx`` regularisation, automatic pruning) including the details that change its numbers:

* ``dFdh``/``dFdhh`` are persistent arrays; the modulation by ``exp(h)`` and the hyperprior
  terms are applied to the whole arrays, so stale rows of pruned components keep entering
  the free energy through ``Ph = -dFdhh``;
* the free energy uses the ``C``, ``P``, ``e`` of the last iteration *before* its update,
  while the returned ``h`` is post-update (and the returned ``C`` pre-update);
* ``spm_logdet`` of the negative-definite curvature is ``log|det|`` and is 0 for a 1x1 (or
  diagonal) curvature, which sets the step size ``exp(t - logdet/n)`` of ``spm_dx``.

:func:`sp_reml` reproduces ``spm_sp_reml`` (the ARD scheme used by MSP).

Compressed representation (``multiplicity=``): when every matrix involved (data ``YY``,
components, floor) has the form ``B X_S B' + x (I - B B')`` for one orthonormal basis ``B``
(n x r) - the data and a few low-rank priors span ``B`` and the remaining components are
multiples of the identity - the whole algebra of the Fisher scoring (sums, products,
inverses, traces, log-determinants) acts separately on the r-dimensional block and on the
scalar ``x``. Such a matrix is passed as the (r + 1) x (r + 1) block-diagonal matrix
``diag(X_S, x)`` with ``multiplicity = [1] * r + [n - r]``: traces weight each diagonal
position by its multiplicity and log-determinants add ``(w - 1) log x`` for the scalar
block. The iterations, pruning and stopping rules are the same statements, so the
hyperparameters and the free energy equal those of the n x n computation to rounding,
at a cost independent of n (see :mod:`lameg.inverse.lowrank`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..exceptions import LamegValueError
from .svd import _dense, octave_inv, spm_inv, spm_logdet, spm_svd


def _expm(a: np.ndarray) -> np.ndarray:
    """Matrix exponential by Pade(6) with scaling and squaring (as SPM's ``spm_expm``/``padm``).

    Used for the tiny augmented Jacobians of :func:`spm_dx`, where this is much faster than
    :func:`scipy.linalg.expm` and agrees with it to ~1e-15.
    """
    n = a.shape[0]
    p = 6
    c = [1.0]
    for k in range(1, p + 1):
        c.append(c[-1] * ((p + 1 - k) / (k * (2 * p + 1 - k))))
    s = np.linalg.norm(a, np.inf)
    sq = 0
    if s > 0.5:
        sq = max(0, int(np.fix(np.log(s) / np.log(2))) + 2)
        a = a * 2.0 ** (-sq)
    eye = np.eye(n)
    a2 = a @ a
    q = c[p] * eye
    pp = c[p - 1] * eye
    odd = True
    for k in range(p - 2, -1, -1):
        if odd:
            q = q @ a2 + c[k] * eye
        else:
            pp = pp @ a2 + c[k] * eye
        odd = not odd
    if odd:
        q = q @ a
        q = q - pp
        e = -(eye + 2 * np.linalg.solve(q, pp))
    else:
        pp = pp @ a
        q = q - pp
        e = eye + 2 * np.linalg.solve(q, pp)
    for _ in range(sq):
        e = e @ e
    return e


def spm_dx(dfdx: np.ndarray, f: np.ndarray, t: float | None = None) -> np.ndarray:
    """Local-linearisation update ``dx = (expm(t J) - I) J^-1 f`` (``spm_dx``).

    Parameters
    ----------
    dfdx : ndarray, shape (n, n)
        Jacobian (here: the curvature of F).
    f : ndarray, shape (n,)
        Flow (here: the gradient of F).
    t : float or None
        ``None`` means ``t = inf`` (a Gauss-Newton step ``-pinv(J) f``). A float is SPM's
        regulariser ``{t}``: the integration time becomes ``exp(t - logdet(J)/n)``.
    """
    f = np.asarray(f, dtype=float).ravel()
    n = f.size
    dfdx = np.atleast_2d(np.asarray(dfdx, dtype=float))
    if n == 0:
        return np.zeros(0)
    tt = np.inf if t is None else float(np.exp(t - spm_logdet(dfdx) / n))
    if tt > np.exp(16):
        return -np.linalg.pinv(dfdx) @ f
    j = np.zeros((n + 1, n + 1))
    j[1:, 0] = tt * f
    j[1:, 1:] = tt * dfdx
    dx = (_expm(j) if n < 64 else scipy.linalg.expm(j))[:, 0]
    return np.real(dx[1:])


def _weights(multiplicity, n: int) -> np.ndarray | None:
    """Validated multiplicities of the diagonal positions, or None (plain matrices)."""
    if multiplicity is None:
        return None
    w = np.asarray(multiplicity, dtype=float).ravel()
    if w.shape != (n,) or np.any(w < 1) or np.any(w != np.round(w)):
        raise LamegValueError(f"multiplicity must hold {n} positive integers")
    return w


def weighted_trace(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """Trace of a square matrix, each diagonal entry weighted by its multiplicity.

    Parameters
    ----------
    x : ndarray, shape (n, n)
        Square matrix (any unit).
    w : ndarray, shape (n,), or None
        Multiplicity of each row/column; None counts every entry once.

    Returns
    -------
    float
        ``sum(diag(x))`` or ``diag(x) @ w`` (unit of ``x``).
    """
    d = np.diagonal(x)
    return float(np.sum(d) if w is None else d @ w)


def _tr_prod(a: np.ndarray, b: np.ndarray, w: np.ndarray | None) -> float:
    """``trace(a b)`` as ``sum(a .* b')`` (weighted by the multiplicity of a's rows)."""
    if w is None:
        return float(np.sum(a * b.T))
    return float(w @ np.sum(a * b.T, axis=1))


def _logdet(c: np.ndarray, w: np.ndarray | None) -> float:
    """``spm_logdet``; positions with multiplicity w > 1 (scalar blocks) count w times."""
    out = spm_logdet(c)
    if w is not None:
        rep = np.flatnonzero(w > 1)
        if rep.size:
            out += float(np.sum((w[rep] - 1) * np.log(np.diagonal(c)[rep])))
    return out


def _check_scalar_blocks(mats, w) -> None:
    """Positions with multiplicity > 1 must be decoupled (zero off-diagonal row/column)."""
    if w is None:
        return
    rep = np.flatnonzero(w > 1)
    for x in mats:
        off = x[rep].copy()
        off[np.arange(rep.size), rep] = 0.0
        if np.any(off != 0):
            raise LamegValueError("positions with multiplicity > 1 must be scalar blocks "
                                  "(zero off-diagonal entries in their rows)")


@dataclass
class RemlResult:
    """Output of :func:`reml_sc` / :func:`sp_reml`.

    Attributes
    ----------
    C : ndarray (n, n)
        Estimated covariance ``V + sum_i h_i Q_i`` (pre-update, rescaled to data units).
    h : ndarray (m,)
        Hyperparameters in the units of the original components (post-update).
    Ph : ndarray (m, m)
        Posterior precision of the log-hyperparameters.
    F : float
        Free energy (log-evidence bound).
    Fa, Fc : float
        Accuracy and complexity terms (``F = Fa - Fc - N n log(sY) / 2``).
    n_iter : int
        Iterations run.
    """

    C: np.ndarray
    h: np.ndarray
    Ph: np.ndarray
    F: float
    Fa: float
    Fc: float
    n_iter: int


def _check_yy(yy, q_list, n_samples):
    yy = _dense(yy)
    if yy.ndim != 2 or yy.shape[0] != yy.shape[1]:
        raise LamegValueError(f"YY must be a square matrix, got shape {yy.shape}")
    if not np.all(np.isfinite(yy)):
        raise LamegValueError("YY contains NaN or Inf values; check the data for NaNs")
    if len(q_list) == 0:
        raise LamegValueError("at least one covariance component is needed")
    if n_samples <= 0:
        raise LamegValueError(f"the number of samples N must be positive, got {n_samples}")
    return yy


def reml_sc(yy, q_list, n_samples: float, he: float = -32.0, hc: float = 256.0, v=0.0,
            max_iter: int = 32, *, multiplicity=None) -> RemlResult:
    """Exact port of ``spm_reml_sc(YY, [], Q, N, hE, hC, V)`` (no design matrix).

    Parameters
    ----------
    yy : ndarray, shape (n, n)
        Sample second-moment matrix ``Y Y'`` (not divided by N).
    q_list : list of ndarray, each (n, n)
        Covariance components.
    n_samples : float
        Number of samples N (columns of Y).
    he, hc : float
        Log-normal hyperprior expectation and variance (SPM defaults -32 and 256; the M/EEG
        inversions use -4 and 16).
    v : float or ndarray (n, n)
        Fixed covariance component (noise floor).
    max_iter : int
        Maximum number of Fisher-scoring iterations (32 in SPM).
    multiplicity : ndarray (n,) of int, optional
        Compressed representation (see the module notes): how many dimensions each diagonal
        position stands for (all matrices must then be block-diagonal with scalar blocks at
        the positions whose multiplicity exceeds 1). ``C`` is returned compressed too.

    Returns
    -------
    RemlResult
    """
    yy = _check_yy(yy, q_list, n_samples)
    w = _weights(multiplicity, yy.shape[0])
    n = yy.shape[0] if w is None else int(w.sum())
    n_rows = yy.shape[0]
    m = len(q_list)
    N = float(n_samples)
    qs = [_dense(q) for q in q_list]
    for q in qs:
        if q.shape != (n_rows, n_rows):
            raise LamegValueError(f"component of shape {q.shape} does not match YY {yy.shape}")
    v = np.asarray(_dense(v) if not np.isscalar(v) else v, dtype=float)
    if v.ndim == 0 or v.size == 1:
        v = float(v) * np.eye(n_rows)
    _check_scalar_blocks([yy, v] + qs, w)
    h = np.zeros(m)
    dfdh = np.zeros(m)
    dfdhh = np.zeros((m, m))
    sy = weighted_trace(yy, w) / (N * n)
    yy = yy / sy
    v = v / sy
    sh = np.array([weighted_trace(q, w) / n for q in qs])
    qs = [q / s for q, s in zip(qs, sh)]
    he_v = np.full(m, float(he))
    hp_scalar = float(spm_inv(np.array([[hc]]))[0, 0])
    hp = hp_scalar * np.eye(m)
    if hp_scalar > np.exp(16):
        h = he_v.copy()
    eye = np.eye(n_rows)
    df = np.inf
    act = np.arange(m)
    t = 4.0
    c = p = e = None
    n_iter = 0
    pq = [None] * m
    for k in range(1, max_iter + 1):
        n_iter = k
        c = v.copy()
        for i in act:
            c = c + qs[i] * np.exp(h[i])
        p = spm_inv(c)
        u = eye - p @ yy / N
        for i in act:
            pq[i] = p @ qs[i]
            dfdh[i] = -_tr_prod(pq[i], u, w) * N / 2
        for a_i, i in enumerate(act):
            for j in act[a_i:]:
                val = -_tr_prod(pq[i], pq[j], w) * N / 2
                dfdhh[i, j] = val
                dfdhh[j, i] = val
        eh = np.exp(h)
        dfdh = dfdh * eh
        dfdhh = dfdhh * np.outer(eh, eh)
        e = h - he_v
        dfdh = dfdh - hp @ e
        dfdhh = dfdhh - hp
        dh = spm_dx(dfdhh[np.ix_(act, act)], dfdh[act], t)
        h[act] = h[act] + dh
        pf = float(dfdh[act] @ dh)
        if pf > df:
            t = t - 1
        else:
            t = t + 1 / 8
        df = pf
        if df < 1e-2:
            break
        act = np.flatnonzero(h > he_v)
    ph = -dfdhh
    ft = np.trace(hp @ np.linalg.inv(ph)) - m
    fc = ft / 2 + e @ hp @ e / 2 + spm_logdet(ph @ np.linalg.inv(hp)) / 2
    fa = (ft / 2 - _tr_prod(c @ p, yy @ p, w) / 2 - N * n * np.log(2 * np.pi) / 2
          - N * _logdet(c, w) / 2)
    f = fa - fc - N * n * np.log(sy) / 2
    return RemlResult(C=sy * c, h=sy * np.exp(h) / sh, Ph=ph, F=float(f), Fa=float(fa),
                      Fc=float(fc), n_iter=n_iter)


def _spd_inv(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix (Cholesky, exactly symmetric)."""
    lapack = scipy.linalg.lapack
    c, info = lapack.dpotrf(a, lower=0, clean=1)
    if info == 0:
        x, info = lapack.dpotri(c, lower=0)
        if info == 0:
            x = np.triu(x)
            return x + np.triu(x, 1).T
    return octave_inv(a)


def _full_basis(comp: np.ndarray, w: np.ndarray | None):
    """``spm_svd`` of a full component -> (basis, values, column multiplicities)."""
    if w is None:
        u, s, _ = spm_svd(comp)
        return u, s, np.ones(s.size)
    rep = np.flatnonzero(w > 1)
    dense = np.flatnonzero(w == 1)
    ud, sd, _ = spm_svd(comp[np.ix_(dense, dense)], 0.0)  # all nonzero; threshold below
    n = comp.shape[0]
    u = np.zeros((n, sd.size + rep.size))
    u[dense, :sd.size] = ud
    u[rep, sd.size + np.arange(rep.size)] = 1.0
    s = np.concatenate([sd, np.diagonal(comp)[rep]])
    cw = np.concatenate([np.ones(sd.size), w[rep]])
    s2 = s**2
    keep = np.flatnonzero((s != 0) & (s2 * cw.sum() / (cw @ s2) > 1e-6))  # spm_svd's u
    keep = keep[np.argsort(-s[keep], kind="stable")]
    return u[:, keep], s[keep], cw[keep]


def sp_reml(yy, full_components, basis_components, n_samples: float,
            max_iter: int = 128, *, multiplicity=None) -> RemlResult:
    """Port of ``spm_sp_reml(YY, [], Q, N)`` (ARD over sparse rank-one patterns).

    Parameters
    ----------
    yy : ndarray, shape (n, n)
        Sample second-moment matrix.
    full_components : list of ndarray (n, n)
        Full covariance components (decomposed with :func:`spm_svd` into a basis ``q`` and
        singular values ``v``, as SPM does for non-struct components).
    basis_components : list of ndarray (n,) or (n, r)
        Patterns given by their basis vectors (SPM's ``Q{i}.q``, unit weights ``Q{i}.v``).
    n_samples : float
        Number of samples.
    max_iter : int
        Maximum iterations (128 in SPM).
    multiplicity : ndarray (n,) of int, optional
        Compressed representation (see the module notes and :func:`reml_sc`); the patterns
        must then be zero at the positions whose multiplicity exceeds 1.

    Returns
    -------
    RemlResult
        ``h`` (full components first, then patterns) in the units of the components.
    """
    components = list(full_components) + list(basis_components)
    yy = _check_yy(yy, components, n_samples)
    w = _weights(multiplicity, yy.shape[0])
    n_rows = yy.shape[0]
    n = n_rows if w is None else int(w.sum())
    m = len(components)
    N = float(n_samples)
    he = np.full(m, -32.0)
    hp = np.eye(m) / 256.0
    qb, vb, cwb = [], [], []
    fulls = [_dense(comp) for comp in full_components]
    _check_scalar_blocks([yy] + fulls, w)
    for comp in fulls:
        u, s, cw = _full_basis(comp, w)
        qb.append(u)
        vb.append(s)
        cwb.append(cw)
    for comp in basis_components:
        q = _dense(comp).reshape(n_rows, -1)
        if w is not None and np.any(q[w > 1] != 0):
            raise LamegValueError("patterns must be zero at positions with multiplicity > 1")
        qb.append(q)
        vb.append(np.ones(q.shape[1]))
        cwb.append(np.ones(q.shape[1]))
    sy = n * weighted_trace(yy, w) / N
    yy = yy / sy
    sh = np.array([n * np.sum(np.sum(q * q, axis=0) * vv * cw)
                   for q, vv, cw in zip(qb, vb, cwb)])
    qb = [q / np.sqrt(s) for q, s in zip(qb, sh)]
    q_all = np.concatenate(qb, axis=1)
    col_w = np.concatenate(cwb) if w is not None else None
    owner = np.concatenate([np.full(q.shape[1], i) for i, q in enumerate(qb)])
    vals = np.concatenate(vb)
    s_tot = q_all.shape[1]
    dedh = np.zeros((s_tot, m))
    dedh[np.arange(s_tot), owner] = vals
    h = np.zeros(m)
    act = np.ones(m, dtype=bool)
    reg = np.eye(n_rows) / np.exp(32)
    yy_n = yy / N
    c = u = e = None
    dfdhh = np.zeros((0, 0))
    # cheap inverse for the compressed frame (always SPD there); Octave's choice otherwise
    inv = octave_inv if w is None else _spd_inv
    act_key = None
    for k in range(1, max_iter + 1):
        exp_h = np.exp(h)
        ee = dedh @ exp_h
        xs = q_all * np.sqrt(ee)
        c = xs @ xs.T  # Q diag(ee) Q' as a rank-k update: exactly symmetric
        u = inv(c + reg)  # symmetric positive definite: Cholesky
        if act_key != act.tobytes():  # columns and priors of the active components
            act_key = act.tobytes()
            rel = np.any(dedh[:, act] != 0, axis=1)
            qr = q_all[:, rel]
            dedh_ra = dedh[np.ix_(rel, act)]
            hpa = hp[np.ix_(act, act)]
            if col_w is not None:  # a scalar-block column stands for col_w directions
                cwr = col_w[rel]
                dg = np.arange(cwr.size)
        uq = u @ qr  # u is symmetric: u' Q = u Q
        pmat = qr.T @ uq
        # W Q = u (YY/N - C) u' Q
        dfde = N / 2 * np.sum(qr * (u @ ((yy_n - c) @ uq)), axis=0)
        dfdee = -N / 2 * pmat * pmat.T
        if col_w is not None:
            dfde = dfde * cwr
            dfdee[dg, dg] *= cwr
        dhdh = dedh_ra * exp_h[act][None, :]
        dfdh = dhdh.T @ dfde
        dfdhh = dhdh.T @ dfdee @ dhdh
        e = h - he
        dfdh = dfdh - hpa @ e[act]
        dfdhh = dfdhh - hpa
        dh = spm_dx(dfdhh, dfdh) / np.log(k + 2)
        h[act] = h[act] + dh
        df = float(dfdh @ dh)
        if df < 1e-2 or k == max_iter:
            break
        act = h > -16
        h[~act] = he[~act]
        h[h > 1] = 1
    ph = hp.copy()
    ph[np.ix_(act, act)] = ph[np.ix_(act, act)] - dfdhh
    ft = np.trace(hp @ np.linalg.inv(ph)) - m
    fc = ft / 2 + e @ hp @ e / 2 + spm_logdet(ph @ np.linalg.inv(hp)) / 2
    fa = (ft / 2 - _tr_prod(c @ u, yy @ u.T, w) / 2 - N * n * np.log(2 * np.pi) / 2
          - N * _logdet(c, w) / 2)
    f = fa - fc - N * n * np.log(sy) / 2
    return RemlResult(C=sy * c, h=sy * np.exp(h) / sh, Ph=ph, F=float(f), Fa=float(fa),
                      Fc=float(fc), n_iter=k)
