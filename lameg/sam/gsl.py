"""GSL numerics as SAMsrcV5 uses them, for reproducing its outputs bit-for-bit when asked.

SAMsrcV5's ``sam_cov`` takes the singular values of each covariance from GSL's one-sided Jacobi
SVD (``gsl_linalg_SV_decomp_jacobi``). Its stopping rule also skips a column pair when a column's
norm falls below its accumulated rounding-error estimate; on MEG covariances (a flat noise
spectrum) these estimates grow past the column norms, the pass ends with columns that are not
orthogonal (cosines up to ~0.2 seen) and the "singular values" -- hence the noise floor -- are
off by up to several per cent. lameg uses exact singular values by default; :func:`jacobi_svd`
reproduces GSL's algorithm (same pair order and formulas) for the differential tests and for
users who need SAMsrcV5's noise files exactly. It is sequential (O(sweeps * M^3), about 2 s for
150 channels).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import LamegDataError

__all__ = ["jacobi_svd"]

_EPS = np.finfo(float).eps


def jacobi_svd(A: np.ndarray) -> np.ndarray:
    """Singular values of ``A`` (M x N, M >= N) as GSL's ``gsl_linalg_SV_decomp_jacobi``.

    Parameters
    ----------
    A : ndarray, shape (M, N)

    Returns
    -------
    ndarray, shape (N,)
        GSL's singular values (column norms after its Jacobi sweeps; not sorted by GSL, but
        sorted here in decreasing order as GSL's sweeps leave them for positive matrices).

    Raises
    ------
    LamegDataError
        When the sweeps do not converge (GSL's ``GSL_ETOL``).
    """
    A = np.array(A, dtype=float, order="F", copy=True)
    M, N = A.shape
    tol = 10 * M * _EPS
    err = _EPS * np.sqrt(np.einsum("ij,ij->j", A, A))
    sweep, count = 0, 1
    sweepmax = max(5 * N, 12)
    cols = [A[:, j] for j in range(N)]
    while count > 0 and sweep <= sweepmax:
        count = N * (N - 1) // 2
        for j in range(N - 1):
            for k in range(j + 1, N):
                cj, ck = cols[j], cols[k]
                p = 2.0 * float(cj @ ck)
                a = float(np.sqrt(cj @ cj))
                b = float(np.sqrt(ck @ ck))
                q = a * a - b * b
                v = float(np.hypot(p, q))
                is_sorted = a >= b
                if is_sorted and (abs(p) <= tol * a * b or a < err[j] or b < err[k]):
                    count -= 1
                    continue
                if v == 0 or not is_sorted:
                    c, s = 0.0, 1.0
                else:
                    c = np.sqrt((v + q) / (2.0 * v))
                    s = p / (2.0 * v * c)
                cols[j], cols[k] = cj * c + ck * s, -cj * s + ck * c
                ej, ek = err[j], err[k]
                err[j] = abs(c) * ej + abs(s) * ek
                err[k] = abs(s) * ej + abs(c) * ek
        sweep += 1
    if count > 0:
        raise LamegDataError("the Jacobi SVD did not converge (GSL would stop with GSL_ETOL)")
    sv = np.array([np.sqrt(c @ c) for c in cols])
    prev = -1.0
    for j in range(N):  # GSL's zero test against the previous column
        if sv[j] == 0 or prev == 0 or (j > 0 and sv[j] <= tol * prev):
            sv[j] = 0.0
        prev = sv[j]
    return sv
