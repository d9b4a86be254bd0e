"""Free energies of patch-prior inversions (MSP, GS, ARD) at a cost independent of the sensors.

With few prior patches (a laminar model comparison puts one patch at the column of interest)
every matrix of the classic engine's Bayesian steps - the reduced data ``AY AY'``, the patch
priors ``UL Q diag(w) Q' UL'``, the sensor-noise component ``Qe`` and the floor ``Q0`` - is
a multiple of the identity plus a matrix whose range lies in ``span([AY, UL Q])``, whose
dimension ``r`` is ``Nr K + Np`` (e.g. 4 temporal modes x 1 averaged trial + 1 patch = 5)
instead of ``Nm`` (~300 sensors). In an orthonormal basis of that span the greedy search
(``spm_mvb``), the ARD step (``spm_sp_reml``) and the final ``spm_reml_sc`` run on
(r + 1) x (r + 1) matrices (see the compressed representation in :mod:`lameg.inverse.reml`),
with the same iterations and free energies as :func:`lameg.inverse.invert_classic` to
rounding. This needs ``Qe`` proportional to the identity (spatial projectors with
orthonormal rows: ``n_spatial_modes`` ``'all'``, ``'auto'`` or an integer); otherwise, or
when the span is not smaller than ``Nm``, the same statements run on the full matrices.

Layer models that share a spatial projector (the identity for ``n_spatial_modes='all'``)
share the data reduction (window, temporal modes, ``AY``): only the patch lead fields differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..exceptions import LamegValueError
from . import priors as pr
from .engine import WindowReduction, reduce_window
from .modes import spatial_modes, spatial_projector
from .reml import reml_sc, sp_reml

__all__ = ["Frame", "patch_free_energy", "model_free_energies", "layer_projector",
           "PATCH_TYPES"]

PATCH_TYPES = ("MSP", "GS", "ARD")


def layer_projector(L: np.ndarray, n_spatial_modes="all") -> np.ndarray:
    """Spatial projector ``A`` (Nm, Nc) chosen as the file-based inversions choose it.

    Parameters
    ----------
    L : ndarray (Nc, Nd)
        Lead field of the good channels.
    n_spatial_modes : 'all', 'auto', int or None
        See :func:`lameg.inverse.modes.spatial_projector`; ``'auto'``/None resolve to the
        engine's automatic choice ``spm_svd(L L', exp(-16))``.

    Returns
    -------
    ndarray (Nm, Nc)
        Orthonormal rows.
    """
    L = np.asarray(L, dtype=float)
    A, _ = spatial_projector(L, n_spatial_modes)
    return spatial_modes(L, None) if A is None else np.ascontiguousarray(A)


@dataclass
class Frame:
    """Coordinates in which the Bayesian steps run (compressed or the full sensor space).

    Parameters
    ----------
    basis : ndarray (Nm, r) or None
        Orthonormal basis of the low-rank span; None = no compression (full matrices).
    multiplicity : ndarray (r + 1,) or None
        ``[1] * r + [Nm - r]`` for the compressed representation.
    n : int
        Dimension Nm of the reduced sensor space.
    """

    basis: np.ndarray | None
    multiplicity: np.ndarray | None
    n: int

    @classmethod
    def for_span(cls, vectors: np.ndarray, qe: np.ndarray, rtol: float = 1e-10) -> Frame:
        """The frame of ``span(vectors)`` if ``qe`` is a multiple of the identity.

        Falls back to the full space when ``qe`` is not (relative deviation > ``rtol``) or
        when the span would not be smaller than Nm - 1.

        Parameters
        ----------
        vectors : ndarray (Nm, k)
            Vectors spanning the low-rank part (reduced data and patch lead fields).
        qe : ndarray (Nm, Nm)
            Sensor-noise component.
        rtol : float
            Tolerance on ``qe`` being a multiple of the identity.

        Returns
        -------
        Frame
        """
        n = qe.shape[0]
        alpha = np.trace(qe) / n
        off = np.max(np.abs(qe - alpha * np.eye(n))) if n else 0.0
        if vectors.shape[1] >= n - 1 or not alpha > 0 or off > rtol * alpha:
            return cls(None, None, n)
        basis, _ = np.linalg.qr(vectors)
        r = basis.shape[1]
        return cls(basis, np.array([1.0] * r + [float(n - r)]), n)

    @property
    def compressed(self) -> bool:
        """True when the frame is the compressed (r + 1)-dimensional one."""
        return self.basis is not None

    def vectors(self, x: np.ndarray) -> np.ndarray:
        """Frame coordinates of vectors lying in the span.

        Parameters
        ----------
        x : ndarray (Nm, k)

        Returns
        -------
        ndarray (r + 1, k) or (Nm, k)
        """
        if self.basis is None:
            return x
        return np.vstack([self.basis.T @ x, np.zeros((1, x.shape[1]))])

    def identity(self, scale: float) -> np.ndarray:
        """``scale * I`` in frame coordinates.

        Parameters
        ----------
        scale : float

        Returns
        -------
        ndarray (r + 1, r + 1) or (Nm, Nm)
        """
        m = self.n if self.basis is None else self.basis.shape[1] + 1
        return scale * np.eye(m)


def _lead_times_sparse(L: np.ndarray, q: sp.csc_matrix) -> np.ndarray:
    """``L q`` for a few sparse columns ``q`` without copying ``L`` (it may be a view)."""
    out = np.empty((L.shape[0], q.shape[1]))
    for j in range(q.shape[1]):
        sl = slice(q.indptr[j], q.indptr[j + 1])
        out[:, j] = L[:, q.indices[sl]] @ q.data[sl]
    return out


def _patch_lql(lq: np.ndarray, wts: np.ndarray) -> np.ndarray:
    """``UL Q diag(w) Q' UL'`` from the patch lead fields ``lq = UL Q`` (as the engine)."""
    keep = np.flatnonzero(wts)
    lw = lq[:, keep] * wts[keep]
    return lw @ lq[:, keep].T


def patch_free_energy(red: WindowReduction, lq_patch: np.ndarray, inv_type: str = "MSP",
                      Qe0: float = np.exp(-5), *, compress: bool = True) -> dict:
    """Free energy of a patch-prior inversion (classic engine) from the reduced data.

    Reproduces the Bayesian part of :func:`lameg.inverse.invert_classic` for one window:
    greedy search over the patches (MSP, GS), ARD over the patches (MSP, ARD), and the
    final ReML over the pooled priors with the floor ``Q0 = Qe0 tr(AYYA) Qe / Nn``.

    Parameters
    ----------
    red : WindowReduction
        Reduced data (:func:`lameg.inverse.engine.reduce_window`).
    lq_patch : ndarray (Nm, Np)
        Patch lead fields ``UL Q`` (``Q`` = kernel columns of the patch centres).
    inv_type : {'MSP', 'GS', 'ARD'}
    Qe0 : float
        Noise floor relative to the data power.
    compress : bool
        Run in the compressed frame when possible (False: always on the full matrices, the
        reference computation).

    Returns
    -------
    dict
        ``F`` (free energy), ``h`` (final hyperparameters), ``mvb_cp`` / ``ard_h`` (patch
        weights, when computed), ``rank`` (dimension of the compressed span, or Nm).
    """
    if inv_type not in PATCH_TYPES:
        raise LamegValueError(f"inv_type must be one of {PATCH_TYPES}, got {inv_type!r}")
    lq_patch = np.asarray(lq_patch, dtype=float).reshape(red.AY.shape[0], -1)
    qe = red.Qe
    if compress:
        frame = Frame.for_span(np.hstack([red.AY, lq_patch]), qe)
    else:
        frame = Frame(None, None, qe.shape[0])
    w = frame.multiplicity
    Nn = red.Nn
    if frame.compressed:
        ay = frame.vectors(red.AY)
        lq = frame.vectors(lq_patch)
        yy = ay @ ay.T
        qe_c = frame.identity(np.trace(qe) / qe.shape[0])
    else:
        ay, lq, yy, qe_c = red.AY, lq_patch, red.AYYA, qe
    q0 = Qe0 * np.trace(red.AYYA) * qe_c / Nn
    out: dict = {"rank": frame.n if w is None else len(w) - 1}
    lqpl = []
    if inv_type in ("MSP", "GS"):
        mvb = pr.mvb_greedy(ay, None, None, qe_c, 16, lp=lq, multiplicity=w)
        out["mvb_cp"] = mvb.cp
        lqpl.append(_patch_lql(lq, mvb.cp))
    if inv_type in ("MSP", "ARD"):
        hp = sp_reml(yy, [qe_c], [lq[:, i] for i in range(lq.shape[1])], Nn,
                     multiplicity=w).h[1:]
        out["ard_h"] = hp
        lqpl.append(_patch_lql(lq, np.where(hp > hp.max() / 128, hp, 0.0)))
    res = reml_sc(yy, [q0] + lqpl, Nn, -4, 16, q0, multiplicity=w)
    out["F"] = res.F
    out["h"] = res.h
    return out


def model_free_energies(leads: Sequence[np.ndarray], data, time_s, *, kernels, Ip,
                        projectors: Sequence[np.ndarray] | None = None,
                        inv_type: str = "MSP", trials: Sequence | None = None, woi=None,
                        lpf: float = 0.0, hpf: float = 48.0, hanning: bool = True,
                        n_temp_modes: int | None = None, Qe0: float = np.exp(-5),
                        fsample: float | None = None, compress: bool = True) -> np.ndarray:
    """Free energies of several patch-prior models (e.g. layer models) for the same data.

    Equivalent to ``[invert_classic(L_e, data, time_s, inv_type=inv_type, QG=kernels[e],
    Ip=Ip[e], A=projectors[e], ...).F for e ...]`` (same free energies to rounding), but
    the data reduction is shared by the models given the same projector object and the
    Bayesian steps run in the compressed frame (see the module notes).

    Parameters
    ----------
    leads : sequence of ndarray (Nc, Nd_e)
        Lead field of each model (good channels, fT per nA m).
    data : array_like (Nc, n_samples, n_trials)
        Data of the same channels, fT.
    time_s : ndarray (n_samples,)
        Time axis, s.
    kernels : sequence of sparse (Nd_e, Nd_e)
        Patch kernel of each model (geodesic or Green function).
    Ip : sequence of int arrays, or an int array
        0-based patch centres per model (one array: the same for all models).
    projectors : sequence of ndarray (Nm, Nc), optional
        Spatial projector per model (default: one identity shared by all, laMEG's
        ``n_spatial_modes='all'``); see :func:`layer_projector`.
    inv_type : {'MSP', 'GS', 'ARD'}
    trials : list of int arrays, optional
        0-based trials per condition (default all trials, one condition).
    woi : array_like (2,) or (n_windows, 2), optional
        Windows in ms (default the whole epoch), truncated to the epoch as the engine does.
    lpf, hpf : float
        DCT band, Hz.
    hanning : bool
    n_temp_modes : int or None
    Qe0 : float
    fsample : float, optional
        Sampling rate, Hz (default from ``time_s``).
    compress : bool
        False runs every step on the full matrices (reference computation).

    Returns
    -------
    ndarray (n_models, n_windows)
        Free energies.
    """
    from .engine import _as_trials, _fsample

    if inv_type not in PATCH_TYPES:
        raise LamegValueError(f"inv_type must be one of {PATCH_TYPES}, got {inv_type!r}")
    n_models = len(leads)
    if len(kernels) != n_models:
        raise LamegValueError("give one kernel per model")
    data = np.asarray(data) if not hasattr(data, "shape") else data
    if data.ndim == 2:
        data = data[:, :, None]
    time_s = np.asarray(time_s, dtype=float)
    fsample = _fsample(time_s, fsample)
    nc = data.shape[0]
    if projectors is None:
        projectors = [np.eye(nc)] * n_models
    if len(projectors) != n_models:
        raise LamegValueError("give one projector per model")
    if isinstance(Ip, np.ndarray) or np.isscalar(Ip):
        Ip = [np.atleast_1d(np.asarray(Ip, dtype=int))] * n_models
    if len(Ip) != n_models:
        raise LamegValueError("give the patch centres of every model")
    tr = _as_trials(trials, data.shape[2])
    if woi is None:
        woi = 1000.0 * np.array([[time_s.min(), time_s.max()]])
    woi = np.atleast_2d(np.asarray(woi, dtype=float))
    F = np.empty((n_models, len(woi)))
    reductions: dict = {}
    for e in range(n_models):
        L = np.asarray(leads[e])
        A = projectors[e]
        if L.shape[0] != nc or A.shape[1] != nc:
            raise LamegValueError(f"model {e}: lead field/projector do not match {nc} channels")
        ip = np.asarray(Ip[e], dtype=int)
        lq = A @ _lead_times_sparse(L, sp.csc_matrix(kernels[e])[:, ip])  # A L Q
        for wi, win in enumerate(woi):
            key = (id(A), wi)
            if key not in reductions:
                reductions[key] = reduce_window(data, time_s, fsample, win, tr, lpf, hpf,
                                                hanning, n_temp_modes, A)
            F[e, wi] = patch_free_energy(reductions[key], lq, inv_type, Qe0,
                                         compress=compress)["F"]
    return F

