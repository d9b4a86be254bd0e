"""Co-registration error as in Szul et al. (2025): rigid perturbations of the MRI fiducials."""

from __future__ import annotations

import numpy as np

from ..exceptions import LamegValueError


def _rotation(axis: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """Rodrigues rotation matrices, axis (n, 3) unit, angle (n,) -> (n, 3, 3)."""
    k = axis
    kx = np.zeros((len(k), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2] = -k[:, 2], k[:, 1]
    kx[:, 1, 0], kx[:, 1, 2] = k[:, 2], -k[:, 0]
    kx[:, 2, 0], kx[:, 2, 1] = -k[:, 1], k[:, 0]
    s, c = np.sin(angle_rad)[:, None, None], np.cos(angle_rad)[:, None, None]
    return np.eye(3)[None] + s * kx + (1 - c) * (kx @ kx)


def perturb_fiducials(fiducials: np.ndarray, error_mm: float,
                      rng: np.random.Generator | int | None = None, tol_mm: float = 0.05,
                      batch: int = 4096, max_batches: int = 1000) -> np.ndarray:
    """Randomly moved fiducials whose largest displacement is ``error_mm`` (Szul et al. 2025).

    Parameters
    ----------
    fiducials : ndarray, shape (3, 3)
        Fiducials, mm (rows nas, lpa, rpa).
    error_mm : float
        Target largest displacement, mm (0 returns a copy).
    rng : Generator, int or None
    tol_mm : float
        Acceptance tolerance on the largest displacement.
    batch : int
        Candidate perturbations drawn at once.
    max_batches : int
        Batches tried before giving up.

    Returns
    -------
    ndarray, shape (3, 3)
        Translation (random unit vector x N(0,1) x err) plus a rotation about the fiducials'
        centroid (random axis, N(0,1) x err degrees), rejection-sampled.
    """
    fid = np.asarray(fiducials, dtype=float).reshape(3, 3)
    if not np.isfinite(error_mm) or error_mm < 0:
        raise LamegValueError(f"co-registration error must be >= 0 mm, got {error_mm}")
    if error_mm == 0:
        return fid.copy()
    rng = np.random.default_rng(rng)
    centre = fid.mean(axis=0)
    for _ in range(max_batches):
        u = rng.standard_normal((batch, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        trans = u * (rng.standard_normal(batch) * error_mm)[:, None]
        ax = rng.standard_normal((batch, 3))
        ax /= np.linalg.norm(ax, axis=1, keepdims=True)
        ang = np.radians(rng.standard_normal(batch) * error_mm)
        rot = _rotation(ax, ang)
        moved = np.einsum("nij,fj->nfi", rot, fid - centre) + centre + trans[:, None, :]
        disp = np.linalg.norm(moved - fid[None], axis=2).max(axis=1)
        ok = np.flatnonzero(np.abs(disp - error_mm) <= tol_mm)
        if ok.size:
            return moved[ok[0]]
    raise LamegValueError(f"could not draw a fiducial perturbation of {error_mm} mm")


