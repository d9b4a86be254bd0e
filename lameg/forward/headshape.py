"""Dense head-shape registration: a 3-D scan of the face onto the MRI scalp.

Three array-level steps used by :func:`lameg.util.coregister_3d_scan_mri`:

- :data:`MNI_FIDUCIALS` and :func:`atlas_to_subject_affine`: fiducials of the MNI305 template
  (fsaverage) carried into a subject's MRI by an affine fitted between fsaverage's and the
  subject's cortical surfaces, matched through their registration spheres (``?h.sphere.reg``);
- :func:`grid_subsample`: an even sampling of a dense scan (one point per occupied grid cell);
- :func:`fit_points_to_surface`: rigid iterative-closest-point fit of points onto a triangle
  surface, minimising the squared exact point-to-surface distances (Gauss-Newton, i.e.
  point-to-plane ICP with the exact closest points) of the points within an adaptive distance.

All lengths are millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..exceptions import LamegDataError, LamegValueError
from .coreg import apply_transform

__all__ = [
    "MNI_FIDUCIALS",
    "atlas_to_subject_affine",
    "grid_subsample",
    "rotation_angle_deg",
    "SurfaceFit",
    "fit_points_to_surface",
]

#: Fiducials of fsaverage in its MRI (surface RAS) frame, which is MNI305, mm. These are the
#: values of MNE-Python's ``mne/data/fsaverage/fsaverage-fiducials.fif`` (float32 metres,
#: times 1000), which ``mne.coreg.get_mni_fiducials`` maps into a subject's MRI; the test suite
#: checks them against that file.
MNI_FIDUCIALS: dict[str, np.ndarray] = {
    "lpa": np.array([-80.61611652374268, -29.08875234425068, -41.31076857447624]),
    "nas": np.array([1.4676303835585713, 85.06715297698975, -34.83611345291138]),
    "rpa": np.array([84.36284959316254, -28.50276418030262, -41.277434676885605]),
}


def atlas_to_subject_affine(
    atlas: Sequence[tuple[np.ndarray, np.ndarray]],
    subject: Sequence[tuple[np.ndarray, np.ndarray]],
    max_points: int = 20000,
) -> tuple[np.ndarray, float]:
    """Least-squares affine from an atlas's cortex to a subject's, matched on the sphere.

    Each (subsampled) subject vertex is paired with the atlas vertex nearest to it on the
    registration sphere (both spheres normalised to unit radius; FreeSurfer's
    ``?h.sphere.reg`` of a subject is aligned to fsaverage's), and the 12-parameter affine
    ``subject ~ A atlas`` is fitted by least squares; pairs with residuals above three times
    the median are dropped and the affine refitted once. With fsaverage as the atlas, whose
    surface coordinates are MNI305, ``A`` maps MNI305 onto the subject's surface frame — an
    estimate of the inverse of FreeSurfer's ``talairach.xfm`` (from surfaces instead of the
    volume).

    Parameters
    ----------
    atlas, subject : sequence of (vertices, sphere) pairs
        One pair per hemisphere, in the same hemisphere order: cortical vertices
        (n_i, 3) mm (e.g. ``?h.white``) and the registration-sphere vertices (n_i, 3) of the
        same mesh.
    max_points : int
        Largest number of subject vertices used per hemisphere (an even stride).

    Returns
    -------
    affine : ndarray, shape (4, 4)
        Atlas frame -> subject frame, mm.
    rms : float
        Root-mean-square residual of the kept pairs, mm (anatomical variability, typically
        several mm).
    """
    if len(atlas) != len(subject) or len(atlas) == 0:
        raise LamegValueError("atlas and subject need the same hemispheres (at least one)")
    src, dst = [], []
    for (av, asph), (sv, ssph) in zip(atlas, subject):
        av, asph, sv, ssph = (np.asarray(a, dtype=np.float64) for a in (av, asph, sv, ssph))
        if av.shape != asph.shape or sv.shape != ssph.shape:
            raise LamegValueError("each surface needs a registration sphere with the same "
                                  "vertices")
        stride = max(1, -(-len(sv) // int(max_points)))
        sv, ssph = sv[::stride], ssph[::stride]
        tree = cKDTree(asph / np.linalg.norm(asph, axis=1, keepdims=True))
        idx = tree.query(ssph / np.linalg.norm(ssph, axis=1, keepdims=True))[1]
        src.append(av[idx])
        dst.append(sv)
    x = np.vstack(src)
    y = np.vstack(dst)
    design = np.c_[x, np.ones(len(x))]
    keep = np.ones(len(x), bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], y[keep], rcond=None)[0]      # (4, 3)
        res = np.linalg.norm(design @ coef - y, axis=1)
        keep = res <= max(3.0 * float(np.median(res)), 1e-3)
    affine = np.eye(4)
    affine[:3] = coef.T
    rms = float(np.sqrt(np.mean(res[keep] ** 2)))
    return affine, rms


def grid_subsample(points: np.ndarray, cell_mm: float = 2.0, max_points: int = 20000
                   ) -> np.ndarray:
    """Even subsample of a dense point cloud: the centroid of the points in each grid cell.

    The cell size starts at ``cell_mm`` and grows until at most ``max_points`` cells are
    occupied, so a scan's weight in a fit follows its area, not its triangle density.

    Parameters
    ----------
    points : ndarray, shape (n, 3)
        Points, mm.
    cell_mm : float
        Initial cell edge, mm.
    max_points : int
        Largest number of points returned.

    Returns
    -------
    ndarray, shape (m, 3)
        Cell centroids, in order of their cells (deterministic).
    """
    pts = np.asarray(points, dtype=np.float64)
    cell = float(cell_mm)
    origin = pts.min(axis=0)
    while True:
        dims = np.floor((pts.max(axis=0) - origin) / cell) + 1
        if np.prod(dims) > 2.0 ** 62:                 # keep one int64 key per cell
            cell *= 2.0
            continue
        ijk = np.floor((pts - origin) / cell).astype(np.int64)
        dims = ijk.max(axis=0) + 1
        key = (ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]    # one integer per cell
        _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        if len(counts) <= max_points:
            break
        cell *= max(1.05, np.sqrt(len(counts) / max_points))
    out = np.stack([np.bincount(inv, weights=pts[:, k]) for k in range(3)], axis=1)
    return out / counts[:, None]


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle of a rotation matrix (the upper-left 3x3 of a rigid transform), degrees.

    Parameters
    ----------
    rotation : array-like, shape (3, 3) or (4, 4)
        Rotation matrix, or a rigid transform whose upper-left 3x3 block is used.

    Returns
    -------
    float
        Rotation angle in degrees, in [0, 180].
    """
    r = np.asarray(rotation, dtype=np.float64)[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def _rodrigues(omega: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(omega))
    if theta < 1e-15:
        return np.eye(3)
    k = omega / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * kx @ kx


@dataclass
class SurfaceFit:
    """Result of :func:`fit_points_to_surface`.

    Parameters
    ----------
    transform : ndarray, shape (4, 4)
        Rigid transform, points frame -> surface frame, mm.
    n_iterations : int
        Iterations run.
    converged : bool
        Whether the last update moved every point by less than the tolerance.
    distances : ndarray, shape (n_points,)
        Final distance of each point from the surface, mm.
    inliers : ndarray of bool, shape (n_points,)
        Points within the final distance threshold (the points fitted).
    threshold_mm : float
        The final distance threshold, mm.
    conditioning : float
        Smallest over largest eigenvalue of the fit's normal matrix (rotations scaled by the
        points' radius): near 0 when the points slide freely along the surface (e.g. a
        spherical patch), so that the fit is not determined.
    """

    transform: np.ndarray
    n_iterations: int
    converged: bool
    distances: np.ndarray
    inliers: np.ndarray
    threshold_mm: float
    conditioning: float

    @property
    def median_distance_mm(self) -> float:
        """Median distance of the inliers from the surface, mm."""
        return float(np.median(self.distances[self.inliers]))

    @property
    def inlier_fraction(self) -> float:
        """Fraction of the points used in the final fit."""
        return float(self.inliers.mean())


def fit_points_to_surface(
    points: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    initial: np.ndarray | None = None,
    *,
    max_iter: int = 50,
    min_threshold_mm: float = 2.0,
    threshold_factor: float = 3.0,
    tol_mm: float = 1e-3,
) -> SurfaceFit:
    """Rigid ICP of points onto a triangle surface (exact closest points, point-to-plane steps).

    Each iteration finds the exact closest surface point ``q_i`` of every moved point ``x_i``
    (:func:`lameg.mesh.distance.point_to_mesh`), keeps the points with
    ``|x_i - q_i| <= max(min_threshold_mm, threshold_factor * median |x - q|)`` (the threshold
    shrinks as the fit improves; scan parts absent from the MRI surface — neck, shoulders,
    clothing, hair far from the scalp — fall out), and takes one Gauss-Newton step of
    ``sum_i |x_i - q_i|^2`` over a rotation about the inliers' centroid and a translation,
    with the residual linearised along ``n_i = (x_i - q_i) / |x_i - q_i|`` (the gradient of
    the distance; the face normal for points on the surface). It stops when the step moves
    every inlier by less than ``tol_mm`` or after ``max_iter`` iterations.

    Parameters
    ----------
    points : ndarray, shape (n_points, 3)
        Points to move (e.g. a scan), mm.
    vertices : ndarray, shape (n_vertices, 3)
        Surface vertices, mm.
    faces : ndarray of int, shape (n_faces, 3)
        Surface triangles, 0-based.
    initial : ndarray, shape (4, 4), optional
        Starting rigid transform, points frame -> surface frame (default identity).
    max_iter : int
        Largest number of iterations.
    min_threshold_mm : float
        Smallest inlier distance threshold, mm.
    threshold_factor : float
        Threshold as a multiple of the median distance.
    tol_mm : float
        Convergence tolerance on the largest displacement of an inlier in one step, mm.

    Returns
    -------
    SurfaceFit
    """
    from ..mesh.distance import point_to_mesh

    pts = np.asarray(points, dtype=np.float64)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 6:
        raise LamegValueError(f"need at least 6 points of shape (n, 3), got {pts.shape}")
    total = np.eye(4) if initial is None else np.asarray(initial, dtype=np.float64).copy()
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-300)

    def pair(transform):
        x = apply_transform(pts, transform)
        d, q, fi = point_to_mesh(x, v, f)[:3]
        thr = max(float(min_threshold_mm), float(threshold_factor) * float(np.median(d)))
        return x, d, q, fi, d <= thr, thr

    converged = False
    conditioning = 0.0
    n_iter = 0
    for it in range(1, int(max_iter) + 1):
        n_iter = it
        x, d, q, fi, keep, _ = pair(total)
        if keep.sum() < 6:
            raise LamegDataError("fewer than 6 points lie near the surface; the initial "
                                 "alignment is too far off")
        n = np.where(d[:, None] > 1e-9, (x - q) / np.maximum(d, 1e-300)[:, None], fn[fi])
        xk, nk, rk = x[keep], n[keep], d[keep]
        c = xk.mean(axis=0)
        xc = xk - c
        radius = float(np.sqrt(np.mean(np.sum(xc ** 2, axis=1))))
        jac = np.hstack([np.cross(xc, nk) / radius, nk])        # rotation columns in mm
        h = jac.T @ jac
        ev = np.linalg.eigvalsh(h)
        conditioning = float(ev[0] / ev[-1]) if ev[-1] > 0 else 0.0
        delta = -np.linalg.lstsq(h, jac.T @ rk, rcond=None)[0]
        omega, shift = delta[:3] / radius, delta[3:]
        rot = _rodrigues(omega)
        step = np.eye(4)
        step[:3, :3] = rot
        step[:3, 3] = c + shift - rot @ c
        total = step @ total
        moved = float(np.linalg.norm(shift) + np.linalg.norm(omega) * np.sqrt(
            np.max(np.sum(xc ** 2, axis=1))))
        if moved < tol_mm:
            converged = True
            break
    _, d, _, _, keep, thr = pair(total)
    return SurfaceFit(transform=total, n_iterations=n_iter, converged=converged, distances=d,
                      inliers=keep, threshold_mm=thr, conditioning=conditioning)
