"""Linear-algebra helpers with SPM's exact semantics (``spm_svd``, ``spm_inv``, ``spm_logdet``).

These are small, dense routines: the matrices they see are at most (channels x channels).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

EPS = np.finfo(float).eps


def _dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x, dtype=float)


def svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD with LAPACK's ``gesvd`` driver (MATLAB/Octave's).

    Singular-vector signs follow the same convention as SPM's (``numpy``'s ``gesdd`` flips
    about half of them, which changes SPM's sign-dependent R2).

    Parameters
    ----------
    x : ndarray, shape (m, n)
        Dense matrix.

    Returns
    -------
    U : ndarray, shape (m, k)
        Left singular vectors, ``k = min(m, n)``.
    s : ndarray, shape (k,)
        Singular values, in decreasing order.
    Vh : ndarray, shape (k, n)
        Right singular vectors, as rows.
    """
    return scipy.linalg.svd(x, full_matrices=False, lapack_driver="gesvd")


def spm_svd(x, u: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated SVD with ``spm_svd`` semantics.

    Parameters
    ----------
    x : array_like, shape (m, n)
        Matrix (dense or sparse).
    u : float
        Relative threshold on the normalised "eigenvalues" ``s * len(s) / sum(s)``.
        ``u >= 1`` means ``u - 1e-6``; ``u <= 0`` means ``64 * eps``.

    Returns
    -------
    U : ndarray, shape (m, r)
        Left singular vectors (rows of all-zero rows of ``x`` stay zero).
    S : ndarray, shape (r,)
        Singular values (unsquared), in decreasing order.
    V : ndarray, shape (n, r)
        Right singular vectors.

    Notes
    -----
    SPM's quirk is kept: for a **square** input the threshold is applied to the squared
    singular values (for a covariance matrix, eigenvalue squared); for a rectangular
    input it is applied to the eigenvalues of ``X'X`` (or ``XX'``), i.e. to the squared
    singular values of ``X`` too, and the left vectors are ``normalise(X v)``.
    A diagonal input is sorted (stable) by decreasing diagonal value.
    """
    if u >= 1:
        u = u - 1e-6
    if u <= 0:
        u = 64 * EPS
    x = _dense(x)
    big_m, big_n = x.shape
    p = np.flatnonzero(np.any(x != 0, axis=1))
    q = np.flatnonzero(np.any(x != 0, axis=0))
    xs = x[np.ix_(p, q)]
    m, n = xs.shape
    if m == 0 or n == 0:
        return np.zeros((big_m, 0)), np.zeros(0), np.zeros((big_n, 0))
    off = xs.copy()
    k = min(m, n)
    off[np.arange(k), np.arange(k)] = 0.0
    if np.any(off != 0):
        if m > n:
            _, s, vh = svd(xs.T @ xs)
            v = vh.T
            keep = np.flatnonzero(s * len(s) / s.sum() > u)
            v = v[:, keep]
            uu = xs @ v
            uu = uu / np.sqrt(np.sum(uu**2, axis=0))
            svals = np.sqrt(s[keep])
        elif m < n:
            uu, s, _ = svd(xs @ xs.T)
            keep = np.flatnonzero(s * len(s) / s.sum() > u)
            uu = uu[:, keep]
            v = xs.T @ uu
            v = v / np.sqrt(np.sum(v**2, axis=0))
            svals = np.sqrt(s[keep])
        else:
            uu, s, vh = svd(xs)
            s2 = s**2
            keep = np.flatnonzero(s2 * len(s2) / s2.sum() > u)
            uu = uu[:, keep]
            v = vh.T[:, keep]
            svals = s[keep]
    else:
        d = np.diag(xs)[:k].copy()
        # MATLAB find() returns only the nonzero diagonal entries; sort(-s) is stable
        nz = np.flatnonzero(d != 0)
        order = nz[np.argsort(-d[nz], kind="stable")]
        svals = d[order]
        s2 = svals**2
        keep = np.flatnonzero(s2 * len(s2) / s2.sum() > u)
        order = order[keep]
        svals = svals[keep]
        uu = np.zeros((m, len(order)))
        uu[order, np.arange(len(order))] = 1.0
        v = np.zeros((n, len(order)))
        v[order, np.arange(len(order))] = 1.0
    r = uu.shape[1]
    U = np.zeros((big_m, r))
    V = np.zeros((big_n, r))
    if r:
        U[p, :] = uu
        V[q, :] = v
    return U, svals, V


def _offdiag_bounded(a: np.ndarray, d: np.ndarray) -> bool:
    """``a_ij^2 < a_ii a_jj`` for every off-diagonal entry (Octave's Hermitian probe)."""
    bound = np.outer(d, d)
    np.fill_diagonal(bound, np.inf)
    return bool(np.all(a * a < bound))


def octave_inv(a: np.ndarray) -> np.ndarray:
    """Matrix inverse with the algorithm choice of Octave's ``inv`` (SPM's reference platform).

    Octave probes a full square matrix first: triangular matrices (nonzero diagonal) are
    inverted with ``dtrtri``; exactly symmetric matrices with a positive diagonal and
    ``a_ij^2 < a_ii a_jj`` with a Cholesky factorisation (``dpotrf`` + ``dpotri``, result
    mirrored from the upper triangle, so exactly symmetric); everything else (and a failed
    Cholesky) with LU (``dgetrf`` + ``dgetri``). For well-conditioned matrices the choice is
    invisible (~1e-15); for the near-singular covariances that ``spm_inv`` regularises
    (condition ~1e13-1e17) the rounding pattern of the Cholesky inverse is what SPM's
    published numbers contain (their ``InvCov`` is exactly symmetric).

    Parameters
    ----------
    a : ndarray, shape (n, n)
        Square matrix.

    Returns
    -------
    ndarray, shape (n, n)
        ``inv(a)``.
    """
    a = np.asarray(a, dtype=float)
    n = a.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    lapack = scipy.linalg.lapack
    d = np.diag(a)
    if np.array_equal(a, a.T):
        if np.all(d != 0) and np.count_nonzero(a) == np.count_nonzero(d):
            return np.diag(1.0 / d)  # diagonal: Octave's triangular branch, 1/d exactly
        if np.all(d > 0) and _offdiag_bounded(a, d):
            c, info = lapack.dpotrf(a, lower=0, clean=1)
            if info == 0:
                x, info = lapack.dpotri(c, lower=0)
                if info == 0:
                    x = np.triu(x)
                    x += np.triu(x, 1).T
                    return x
    elif np.all(d != 0):
        for lower in (0, 1):
            part = np.tril(a, -1) if lower == 0 else np.triu(a, 1)
            if not np.any(part):
                x, info = lapack.dtrtri(a, lower=lower)
                if info == 0:
                    return x
    return scipy.linalg.inv(a, check_finite=False)


def spm_inv(a, tol: float | None = None) -> np.ndarray:
    """Regularised inverse ``inv(A + TOL*I)``, TOL = max(eps(||A||_inf) * max(m, n), e^-32).

    ``inv`` follows Octave's algorithm choice (:func:`octave_inv`): Cholesky for exactly
    symmetric positive-diagonal matrices (the covariances SPM passes here), LU otherwise.

    Parameters
    ----------
    a : array-like or scipy.sparse matrix, shape (n, n)
        Square matrix to invert (a non-square one raises ``LinAlgError``, as MATLAB's
        ``inv``).
    tol : float or None
        Regulariser added to the diagonal (None: SPM's default above).

    Returns
    -------
    ndarray, shape (n, n)
        ``inv(A + tol * I)`` (an empty input gives an empty array).
    """
    a = _dense(a)
    if a.size == 0:
        return np.zeros(a.shape[::-1])
    m, n = a.shape
    if tol is None:
        tol = max(np.spacing(np.linalg.norm(a, np.inf)) * max(m, n), np.exp(-32))
    b = a + np.eye(m, n) * tol
    if m != n:
        return np.linalg.inv(b)  # raises LinAlgError like MATLAB's inv for non-square input
    return octave_inv(b)


def spm_logdet(c) -> float:
    """Log-determinant with ``spm_logdet`` semantics.

    Zero-variance rows/columns are dropped; a symmetric positive-definite matrix uses
    Cholesky; otherwise the sum of log singular values within (1e-16, 1e16) is returned
    (for a diagonal matrix: of the diagonal values in that range, so a negative diagonal
    gives 0).

    Parameters
    ----------
    c : array-like or scipy.sparse matrix, shape (n, n)
        Square matrix.

    Returns
    -------
    float
        ``log|det(c)|`` as SPM computes it (NaN if ``c`` contains NaN).
    """
    c = _dense(np.atleast_2d(c))
    i = np.flatnonzero(np.diag(c))
    c = c[np.ix_(i, i)]
    if np.any(np.isnan(c)):
        return float("nan")
    tol = 1e-16
    off = c - np.diag(np.diag(c))
    if np.any(off != 0):
        if np.max(np.abs(c - c.T)) > tol:
            s = np.linalg.svd(c, compute_uv=False)
        else:
            try:
                r = np.linalg.cholesky(c)
                return float(2.0 * np.sum(np.log(np.diag(r))))
            except np.linalg.LinAlgError:
                s = np.linalg.svd(c, compute_uv=False)
    else:
        s = np.diag(c)
        s = s[s != 0]
    s = s[(s > tol) & (s < 1.0 / tol)]
    return float(np.sum(np.log(s)))


def spm_dctmtx(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis (``spm_dctmtx(n)``).

    Parameters
    ----------
    n : int
        Number of samples (>= 1).

    Returns
    -------
    ndarray, shape (n, n)
        Columns are cosines of increasing frequency; ``C' C = I``.
    """
    k = np.arange(n)
    t = np.arange(n)[:, None]
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * t + 1) * k[None, :] / (2 * n))
    c[:, 0] = 1.0 / np.sqrt(n)
    return c


def spm_hanning(n: int) -> np.ndarray:
    """SPM's Hanning window ``(1 - cos(2 pi k / (n + 1))) / 2`` for k = 1..n.

    Parameters
    ----------
    n : int
        Number of samples.

    Returns
    -------
    ndarray, shape (n,)
        Window weights in (0, 1].
    """
    k = np.arange(1, n + 1)
    return (1.0 - np.cos(2.0 * np.pi * k / (n + 1))) / 2.0
