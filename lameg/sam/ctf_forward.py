"""SAMsrcV5's lead fields for CTF sensors (single and multiple local spheres).

The field of a current dipole in a conducting sphere (Sarvas 1987) is integrated over each coil
at the points SAMsrcV5 uses (``FwdSensIntPnt``: 4 points at ``radius / sqrt(2)`` for the default
order 3, in a coil-plane frame chosen by ``OrthoPlane``, whose reference axis carries over from one
coil to the next in the order references then primaries), weighted by the coil's turns relative to
the first coil, and every primary sensor is balanced with its synthetic-gradient reference
weights (``FwdVec``). Units: tesla per ampere-metre, positions in metres (head frame).

SAMsrcV5 jitters each sensor's sphere origin by a 1 micrometre Gaussian (seeded by the clock) so
that its moment eigen-solution never meets an exactly radial dipole; lameg uses the origin as
given (the jitter changes SAMsrcV5's own weights by about 1e-6 between runs).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import LamegValueError
from .ctf import CtfDataset

__all__ = ["CoilPoints", "integration_points", "sphere_lead_fields"]

MU0_4PI = 1e-7

# (radius factor, angles in units of pi/2 or 2pi/n, weights) per integration order
_ORDERS = {
    1: (np.array([0.0]), np.array([0.0]), np.array([1.0])),
    2: (np.full(3, np.sqrt(0.5)), np.arange(3) * 2 * np.pi / 3, np.full(3, 0.333333)),
    3: (np.full(4, np.sqrt(0.5)), np.arange(4) * np.pi / 2, np.full(4, 0.25)),
    4: (np.r_[np.full(5, 0.81650), 0.0], np.r_[np.arange(5) * 2 * np.pi / 5, 0.0],
        np.array([0.25, 0.25, 0.25, 0.25, 0.25, 0.15])),
    5: (np.r_[np.full(6, 0.81650), 0.0], np.r_[np.arange(6) * np.pi / 3, 0.0],
        np.r_[np.full(6, 0.125), 0.25]),
    7: (np.r_[np.full(4, 0.45667), np.full(4, 0.86603), np.full(4, 0.91100)],
        np.r_[(np.arange(4) - 0.5) * np.pi / 2, np.arange(4, 8) * np.pi / 2,
              (np.arange(8, 12) - 0.5) * np.pi / 2],
        np.r_[np.full(4, 0.12321), np.full(4, 0.074074), np.full(4, 0.052715)]),
}


class _OrthoPlane:
    """SAMsrcV5's in-plane frame of a coil, with its persistent reference axis."""

    def __init__(self):
        self.ref = 0

    def __call__(self, vr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vr = vr / np.sqrt(vr @ vr)
        index = int(np.argmax(np.abs(vr)))
        if abs(vr[self.ref]) < 0.1:
            self.ref = index
        if self.ref == 0:
            vx = np.array([vr[1], -vr[0], 0.0])
        elif self.ref == 1:
            vx = np.array([0.0, vr[2], -vr[1]])
        else:
            vx = np.array([-vr[2], 0.0, vr[0]])
        vx = vx / np.sqrt(vx @ vx)
        vy = np.cross(vr, vx)
        return vx, vy / np.sqrt(vy @ vy)


class CoilPoints:
    """Integration points of every primary and reference sensor.

    Parameters
    ----------
    pos : ndarray, shape (K, 3)
        Points, m.
    wvec : ndarray, shape (K, 3)
        Coil normal times integration weight times turns / |turns of coil 0|.
    chan : ndarray of int, shape (K,)
        Row of the point's sensor: primaries 0..M-1, then references M..M+R-1.
    n_primary, n_reference : int
    """

    def __init__(self, pos, wvec, chan, n_primary, n_reference):
        self.pos, self.wvec, self.chan = pos, wvec, chan
        self.n_primary, self.n_reference = n_primary, n_reference


def integration_points(ds: CtfDataset, order: int = 3) -> CoilPoints:
    """The coil integration points SAMsrcV5 computes for ``ds`` (references first, as it does).

    Parameters
    ----------
    ds : CtfDataset
    order : {1, 2, 3, 4, 5, 7}
        Integration order (SAMsrcV5 uses 3: four points per coil).

    Returns
    -------
    CoilPoints
    """
    if order not in _ORDERS:
        raise LamegValueError(f"coil integration order must be one of {sorted(_ORDERS)}, "
                              f"not {order}")
    rad, ang, w = _ORDERS[order]
    frame = _OrthoPlane()
    M, R = ds.primary.size, ds.reference.size
    rows = {}
    for i, ch in enumerate(ds.reference):
        rows[int(ch)] = M + i
    for i, ch in enumerate(ds.primary):
        rows[int(ch)] = i
    pos, wv, chan = [], [], []
    for ch in list(ds.reference) + list(ds.primary):
        coils = ds.coils[int(ch)]
        if not coils:
            continue
        t0 = abs(coils[0].turns) or 1
        for c in coils:
            n = c.ori / np.sqrt(c.ori @ c.ori)
            if order > 1:
                vx, vy = frame(n)
                pts = c.pos + np.outer(rad * c.radius * np.cos(ang), vx) + \
                    np.outer(rad * c.radius * np.sin(ang), vy)
            else:
                pts = c.pos[None, :]
            pos.append(pts)
            wv.append((w * c.turns / t0)[:, None] * n[None, :])
            chan.append(np.full(len(pts), rows[int(ch)]))
    return CoilPoints(np.concatenate(pos), np.concatenate(wv), np.concatenate(chan), M, R)


def _sarvas(q: np.ndarray, pts: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Field (T per A m) at ``pts`` (K, 3) of unit dipoles x, y, z at ``q`` (V, 3).

    ``origin`` is (3,) or per-point (K, 3). Returns (V, 3 dipole axes, K, 3 field axes).
    """
    R = pts - origin  # (K, 3)
    R0 = q[:, None, :] - origin  # (V, K, 3) or (V, 1, 3)
    R0 = np.broadcast_to(R0, (q.shape[0], pts.shape[0], 3))
    A = R[None] - R0
    r2 = np.einsum("kj,kj->k", R, R)
    r = np.sqrt(r2)[None]
    a2 = np.einsum("vkj,vkj->vk", A, A)
    a = np.sqrt(a2)
    r0dr = np.einsum("vkj,kj->vk", R0, R)
    adr = np.einsum("vkj,kj->vk", A, R)
    f = a * (r * a + r2[None] - r0dr)
    k0 = adr / a + 2.0 * r
    k1 = a2 / r + 2.0 * a + k0
    k2 = a + k0
    k3 = MU0_4PI / (f * f)
    delf = k1[..., None] * R[None] - k2[..., None] * R0  # (V, K, 3)
    out = np.empty((q.shape[0], 3, pts.shape[0], 3))
    for d in range(3):
        e = np.zeros(3)
        e[d] = 1.0
        Vv = np.cross(e, R0)  # (V, K, 3)
        vdr = np.einsum("vkj,kj->vk", Vv, R)
        out[:, d] = k3[..., None] * (f[..., None] * Vv - vdr[..., None] * delf)
    return out


def sphere_lead_fields(ds: CtfDataset, positions: np.ndarray, origin, order: int = 3,
                       points: CoilPoints | None = None, chunk: int = 256) -> np.ndarray:
    """Balanced lead fields of the primary sensors, SAMsrcV5's single/multi-sphere model.

    Parameters
    ----------
    ds : CtfDataset
    positions : ndarray, shape (V, 3)
        Dipole positions, m (head frame).
    origin : array-like, shape (3,) or (n_primary + n_reference, 3)
        Sphere origin (m), one for all sensors or one per sensor (rows: primaries then
        references, as in :class:`CoilPoints`).
    order : int
        Coil integration order (1, 2, 3, 4, 5 or 7; SAMsrcV5 uses 3).
    points : CoilPoints, optional
        Precomputed integration points (default: computed for ``order``).
    chunk : int
        Dipoles computed together (memory).

    Returns
    -------
    ndarray, shape (V, n_primary, 3)
        T / (A m).
    """
    pts = points if points is not None else integration_points(ds, order)
    positions = np.atleast_2d(np.asarray(positions, float))
    origin = np.asarray(origin, float)
    o = origin if origin.ndim == 1 else origin[pts.chan]
    n_rows = pts.n_primary + pts.n_reference
    out = np.empty((positions.shape[0], pts.n_primary, 3))
    for s in range(0, positions.shape[0], chunk):
        q = positions[s:s + chunk]
        B = _sarvas(q, pts.pos, o)  # (v, 3, K, 3)
        proj = np.einsum("vdkj,kj->vdk", B, pts.wvec)
        per = np.zeros((q.shape[0], 3, n_rows))
        np.add.at(per, (slice(None), slice(None), pts.chan), proj)
        lf = per[:, :, :pts.n_primary] - per[:, :, pts.n_primary:] @ ds.balance.T
        out[s:s + chunk] = lf.transpose(0, 2, 1)
    return out


def ctf_sensor_array(ds: CtfDataset, order: int = 3):
    """The primary sensors of a CTF dataset as a :class:`lameg.forward.sensors.SensorArray`.

    Coils are SAMsrcV5's integration points (:func:`integration_points`), ``tra`` maps them to the
    balanced primary channels (own points minus the balance weights times the references'
    points), so any :mod:`lameg.forward` head model (Nolte single shell, local spheres) gives the
    lead fields SAMsrcV5's geometry implies.

    Parameters
    ----------
    ds : CtfDataset
    order : int
        Coil integration order.

    Returns
    -------
    SensorArray
        Rows = good primaries in ``res4`` order, T per unit field.
    """
    from ..forward.sensors import SensorArray

    pts = integration_points(ds, order)
    w = np.linalg.norm(pts.wvec, axis=1)
    ori = pts.wvec / w[:, None]
    n_rows = pts.n_primary + pts.n_reference
    tra = np.zeros((n_rows, w.size))
    tra[pts.chan, np.arange(w.size)] = w
    tra_p = tra[:pts.n_primary] - ds.balance @ tra[pts.n_primary:]
    return SensorArray(pts.pos, ori, tra_p, ds.primary_names)
