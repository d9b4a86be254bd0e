"""Spherical MEG volume conductors: the single sphere and SPM/FieldTrip local spheres.

The magnetic field of a current dipole in a spherically symmetric conductor does not depend on the
conductivity profile (Sarvas 1987). The lead field below follows FieldTrip's ``meg_leadfield1``
(which SPM uses for 'Single Sphere' and 'MEG Local Spheres'), vectorised over dipoles and coils.
All positions are in metres; lead fields are in tesla per ampere-metre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .._docs import fill_doc
from ..exceptions import LamegDataError, LamegValueError
from .conductor import ConductorModel

__all__ = [
    "fit_sphere",
    "sarvas_leadfield",
    "SphereModel",
    "LocalSpheresModel",
    "fit_local_spheres",
]

MU0_OVER_4PI = 1e-7  # T m / A


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Algebraic (Taubin) least-squares sphere fit, as FieldTrip/SPM ``fitsphere``.

    Parameters
    ----------
    points : ndarray, shape (n, 3)
        Surface points (any length unit; n >= 4).

    Returns
    -------
    center : ndarray, shape (3,)
        Sphere centre, same unit as ``points``.
    radius : float
        Sphere radius, same unit as ``points``.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 4:
        raise LamegValueError(f"fit_sphere needs an (n>=4, 3) array of points, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise LamegDataError("fit_sphere: points contain NaN or Inf")
    x, y, z = p.T
    one = np.ones_like(x)
    zero = np.zeros_like(x)
    design = np.column_stack([x * x + y * y + z * z, x, y, z, one])
    m = design.T @ design
    dx = np.column_stack([2 * x, one, zero, zero, zero])
    dy = np.column_stack([2 * y, zero, one, zero, zero])
    dz = np.column_stack([2 * z, zero, zero, one, zero])
    n = dx.T @ dx + dy.T @ dy + dz.T @ dz
    ev = np.linalg.eigvalsh(m)
    tol = np.finfo(float).eps * 5 * np.linalg.norm(m, 2)
    if np.sum(ev > tol) == 5:
        w, v = np.linalg.eig(np.linalg.inv(m) @ n)
        pvec = np.real(v[:, int(np.argmax(np.real(w)))])
    else:
        w, v = np.linalg.eigh(m)
        null = v[:, w <= tol]
        if null.shape[1] == 0:
            raise LamegDataError("fit_sphere: could not fit a sphere to the points")
        pvec = null[:, 0]
    if pvec[0] == 0:
        raise LamegDataError("fit_sphere: the points lie on a plane; no sphere can be fitted")
    center = -0.5 * pvec[1:4] / pvec[0]
    radius = float(np.sqrt(center @ center - pvec[4] / pvec[0]))
    return center, radius


def sarvas_leadfield(
    dip_pos: np.ndarray,
    coil_pos: np.ndarray,
    coil_ori: np.ndarray,
    origin: np.ndarray | None = None,
) -> np.ndarray:
    """Magnetic lead field of current dipoles in a spherical conductor (Sarvas formula).

    Parameters
    ----------
    dip_pos : ndarray, shape (n_dip, 3)
        Dipole positions, m.
    coil_pos : ndarray, shape (n_coils, 3)
        Point-coil (integration point) positions, m.
    coil_ori : ndarray, shape (n_coils, 3)
        Coil normals (unit vectors).
    origin : ndarray, shape (3,) or (n_coils, 3), optional
        Sphere centre (one per coil for local spheres), m. Default: the coordinate origin.

    Returns
    -------
    ndarray, shape (n_dip, 3, n_coils)
        ``L[i, k, c]``: field component along ``coil_ori[c]`` at coil ``c`` (T) of a unit dipole
        (1 A m) at ``dip_pos[i]`` along axis ``k``.
    """
    dip_pos = np.atleast_2d(np.asarray(dip_pos, dtype=float))
    coil_pos = np.asarray(coil_pos, dtype=float)
    u = np.asarray(coil_ori, dtype=float)
    o = np.zeros(3) if origin is None else np.asarray(origin, dtype=float)
    if o.ndim == 1:
        return _sarvas_single_origin(dip_pos - o, coil_pos - o, u)
    o_c = o
    r = coil_pos - o_c  # (nc, 3)
    # component-wise (n_dip, n_coils) arithmetic (no (n_dip, n_coils, 3) temporaries)
    rx, ry, rz = (r[None, :, i] for i in range(3))
    ux, uy, uz = (u[None, :, i] for i in range(3))
    if o.ndim == 1:
        p = dip_pos - o
        px, py, pz = (p[:, i : i + 1] for i in range(3))
    else:  # one origin per coil (local spheres)
        px, py, pz = (dip_pos[:, i : i + 1] - o[None, :, i] for i in range(3))
    dx, dy, dz = rx - px, ry - py, rz - pz
    t1 = np.sqrt(rx * rx + ry * ry + rz * rz)  # |r|
    t2sq = px * px + py * py + pz * pz  # |R|^2
    t3 = np.sqrt(dx * dx + dy * dy + dz * dz)  # |r - R|
    t4 = rx * px + ry * py + rz * pz  # r.R
    t5 = rx * dx + ry * dy + rz * dz  # r.(r-R)
    t6 = px * dx + py * dy + pz * dz  # R.(r-R)
    t7 = (t1 * t1) * t2sq - t4 * t4  # |r x R|^2
    alpha = 1.0 / (-t3 * (t1 * t3 + t5))
    a = 1.0 / t3 - 2.0 * alpha * t2sq - 1.0 / t1
    b = 2.0 * alpha * t4
    c = -t6 / (t3 * t3 * t3)
    num = (
        a * (rx * ux + ry * uy + rz * uz)
        + b * (px * ux + py * uy + pz * uz)
        + c * (dx * ux + dy * uy + dz * uz)
    )
    small = t7 < np.finfo(float).eps
    beta = np.where(small, 0.0, num / np.where(small, 1.0, t7))
    vx, vy, vz = alpha * ux + beta * rx, alpha * uy + beta * ry, alpha * uz + beta * rz
    shape = np.broadcast_shapes(vx.shape, px.shape)
    lf = np.empty((shape[0], 3, shape[1]))
    lf[:, 0] = MU0_OVER_4PI * (vy * pz - vz * py)
    lf[:, 1] = MU0_OVER_4PI * (vz * px - vx * pz)
    lf[:, 2] = MU0_OVER_4PI * (vx * py - vy * px)
    return lf


def _sarvas_single_origin(p: np.ndarray, r: np.ndarray, u: np.ndarray) -> np.ndarray:
    """:func:`sarvas_leadfield` for one sphere: dot products as BLAS products.

    ``p`` dipoles and ``r`` coils relative to the centre. ``|r - p|^2`` is formed as
    ``|r|^2 - 2 r.p + |p|^2``, which costs at most ``log10(|r|^2 / |r - p|^2)`` (2-3) digits.
    """
    rr = np.einsum("jk,jk->j", r, r)[None, :]  # |r|^2
    pp = np.einsum("ik,ik->i", p, p)[:, None]  # |R|^2
    t1 = np.sqrt(rr)
    t4 = p @ r.T  # r.R
    t3 = np.sqrt(rr - 2.0 * t4 + pp)  # |r - R|
    t5 = rr - t4  # r.(r - R)
    t6 = t4 - pp  # R.(r - R)
    t7 = rr * pp - t4 * t4  # |r x R|^2
    alpha = -1.0 / (t3 * (t1 * t3 + t5))
    a = 1.0 / t3 - 2.0 * alpha * pp - 1.0 / t1
    b = 2.0 * alpha * t4
    c = -t6 / (t3 * t3 * t3)
    ru = np.einsum("jk,jk->j", r, u)[None, :]
    pu = p @ u.T
    num = a * ru + b * pu + c * (ru - pu)
    small = t7 < np.finfo(float).eps
    beta = np.where(small, 0.0, num / np.where(small, 1.0, t7))
    lf = np.empty((len(p), 3, r.shape[0]))
    eye = np.eye(3)
    for k in range(3):
        q = np.cross(p, eye[k])  # ((a u + b r) x R)_k = (a u + b r) . (R x e_k)
        lf[:, k] = MU0_OVER_4PI * (alpha * (q @ u.T) + beta * (q @ r.T))
    return lf


def _fit_spheres_masked(points: np.ndarray, masks) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_sphere` for many subsets of ``points`` at once (0/1 ``masks`` (k, n), sparse).

    Subsets whose scatter matrix is rank deficient get a NaN centre and an infinite radius.
    """
    x, y, z = points.T
    one = np.ones_like(x)
    zero = np.zeros_like(x)
    design = np.column_stack([x * x + y * y + z * z, x, y, z, one])
    dx = np.column_stack([2 * x, one, zero, zero, zero])
    dy = np.column_stack([2 * y, zero, one, zero, zero])
    dz = np.column_stack([2 * z, zero, zero, one, zero])
    w = sp.csr_matrix(masks, dtype=float)
    k = w.shape[0]

    def outer(a, b):  # per-point outer products, flattened (n, 25)
        return (a[:, :, None] * b[:, None, :]).reshape(len(a), 25)

    m = np.asarray(w @ outer(design, design)).reshape(k, 5, 5)
    n = np.asarray(w @ (outer(dx, dx) + outer(dy, dy) + outer(dz, dz))).reshape(k, 5, 5)
    ev = np.linalg.eigvalsh(m)
    tol = np.finfo(float).eps * 5 * np.abs(ev).max(axis=1)
    full = np.sum(ev > tol[:, None], axis=1) == 5
    centres = np.full((k, 3), np.nan)
    radii = np.full(k, np.inf)
    if full.any():
        vals, vecs = np.linalg.eig(np.linalg.inv(m[full]) @ n[full])
        best = np.argmax(np.real(vals), axis=1)
        pvec = np.real(np.take_along_axis(vecs, best[:, None, None], axis=2)[:, :, 0])
        c = -0.5 * pvec[:, 1:4] / pvec[:, :1]
        centres[full] = c
        radii[full] = np.sqrt(np.einsum("ij,ij->i", c, c) - pvec[:, 4] / pvec[:, 0])
    return centres, radii


@dataclass
class SphereModel(ConductorModel):
    """Single-sphere MEG conductor: coil lead fields by Sarvas' formula about ``origin``.

    Parameters
    ----------
    origin : ndarray, shape (3,)
        Centre, m (MEG head frame).
    radius : float
        Radius, m (informative: the MEG field of a sphere does not depend on it).
    """

    origin: np.ndarray
    radius: float
    kind: str = field(default="Single Sphere", init=False)

    def _coil_leadfield(self, dip_pos: np.ndarray, sensors) -> np.ndarray:
        return sarvas_leadfield(dip_pos, sensors.coilpos, sensors.coilori, self.origin)

    def _cache_text(self) -> str:  # the sphere centre
        return f"sphere:{np.round(self.origin, 15).tolist()}"


@dataclass
class LocalSpheresModel(ConductorModel):
    """One sphere per channel (FieldTrip ``localspheres``); coils use their channel's sphere.

    Coil lead fields follow Sarvas' formula, each coil about the sphere of its channel.

    Parameters
    ----------
    origins : ndarray, shape (n_channels, 3)
        Sphere centres, m, in the row order of ``labels``.
    radii : ndarray, shape (n_channels,)
        Radii, m.
    labels : list of str
        Channel labels.
    """

    origins: np.ndarray
    radii: np.ndarray
    labels: list
    kind: str = field(default="MEG Local Spheres", init=False)

    @fill_doc
    def coil_origins(self, sensors) -> np.ndarray:
        """Sphere centre for every coil of ``sensors`` (the channel with the largest weight).

        Parameters
        ----------
        %(sensors)s
            Every channel label must have a sphere in ``labels``.

        Returns
        -------
        ndarray, shape (n_coils, 3)
            Centre of the sphere of the channel each coil feeds most, m.
        """
        index = {lab: i for i, lab in enumerate(self.labels)}
        missing = [lab for lab in sensors.labels if lab not in index]
        if missing:
            raise LamegValueError(
                f"local-spheres model has no sphere for channels {missing[:5]}...; "
                "refit the model with these sensors"
            )
        owner = np.argmax(np.abs(np.asarray(sensors.tra)), axis=0)  # channel row per coil
        sphere_of_chan = np.array([index[lab] for lab in sensors.labels], dtype=int)
        return self.origins[sphere_of_chan[owner]]

    def _coil_leadfield(self, dip_pos: np.ndarray, sensors) -> np.ndarray:
        return sarvas_leadfield(dip_pos, sensors.coilpos, sensors.coilori, self.coil_origins(sensors))

    def _cache_text(self) -> str:  # sphere centres and channel labels
        return "localspheres:" + str(np.round(self.origins, 15).tolist()) + str(self.labels)


def fit_local_spheres(
    headshape: np.ndarray,
    sensors,
    radius: float = 0.085,
    maxradius: float = 0.2,
    baseline: float = 0.05,
) -> LocalSpheresModel:
    """Fit one sphere per channel to the head-shape points near it (FieldTrip ``localspheres``).

    For each channel the reference point is the mean of its coils, replaced by the coil closest
    to the head when the coils are spread along the channel orientation by more than
    ``baseline / 4`` (axial gradiometers). Points within ``radius`` of it are fitted with
    :func:`fit_sphere`; with 10 points or fewer, or a fitted radius above ``maxradius``, the
    single sphere fitted to all points is used.

    Parameters
    ----------
    headshape : ndarray, shape (n_points, 3)
        Scalp (or inner-skull) points in the MEG head frame, m.
    sensors : SensorArray
        Sensors in m (:class:`lameg.forward.sensors.SensorArray`).
    radius, maxradius, baseline : float
        Selection radius, maximum accepted radius and gradiometer baseline, m (FieldTrip
        defaults 8.5 cm, 20 cm, 5 cm).

    Returns
    -------
    LocalSpheresModel
        One sphere (centre and radius, m) per channel of ``sensors``.
    """
    pts = np.asarray(headshape, dtype=float)
    single_o, single_r = fit_sphere(pts)
    tra = np.asarray(sensors.tra)
    n_chan = tra.shape[0]
    member = (tra != 0).astype(float)  # (n_chan, n_coils)
    n_mem = member.sum(1)
    has = n_mem > 0
    # channel position: mean of its coils; orientation: principal axis of its coil normals
    this = (member @ sensors.coilpos) / np.where(has, n_mem, 1)[:, None]
    scatter = np.einsum("cj,jk,jl->ckl", member, sensors.coilori, sensors.coilori)
    ori = np.linalg.eigh(scatter)[1][:, :, -1]
    ori *= np.where(np.einsum("ck,ck->c", this, ori) < 0, -1.0, 1.0)[:, None]
    # axial gradiometers: use the coil closest to the head when the coils are spread along
    # the channel axis by more than baseline / 4 (planar gradiometers keep the centre)
    dist = np.einsum("jk,ck->cj", sensors.coilpos, ori) - np.einsum("ck,ck->c", this, ori)[:, None]
    dist = np.where(member > 0, dist, np.inf)
    low = np.argmin(dist, axis=1)
    use_low = has & (np.abs(dist[np.arange(n_chan), low]) > baseline / 4)
    this[use_low] = sensors.coilpos[low[use_low]]
    # sphere fits to the head-shape points near every channel, all channels at once
    lists = cKDTree(pts).query_ball_point(this, radius)
    rows = np.repeat(np.arange(n_chan), [len(li) for li in lists])
    cols = np.concatenate([np.asarray(li, dtype=int) for li in lists]) if len(rows) else rows
    near = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_chan, len(pts)))
    origins = np.tile(single_o, (n_chan, 1))
    radii = np.full(n_chan, single_r)
    ok = has & (np.asarray(near.sum(1)).ravel() > 10)
    if ok.any():
        o_fit, r_fit = _fit_spheres_masked(pts, near[ok])
        good = np.isfinite(r_fit) & (r_fit <= maxradius)
        idx = np.flatnonzero(ok)[good]
        origins[idx], radii[idx] = o_fit[good], r_fit[good]
    return LocalSpheresModel(origins=origins, radii=radii, labels=list(sensors.labels))
