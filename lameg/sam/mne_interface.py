"""SAM weights from MNE-Python objects, as ``mne.beamformer.Beamformer`` (the in-memory
interface of ``samsrc.mne``).

:func:`make_sam_beamformer` takes an MNE ``Info``, ``Forward`` and ``Covariance`` (plus an optional
orientation covariance and noise floors), applies SAMsrcV5's regularisation (``Mu``), pseudo-inverse
(``Pinv``), two-step orientation and unit-gain weights, and returns a ``Beamformer`` that
``mne.beamformer.apply_lcmv``, ``apply_lcmv_epochs``, ``apply_lcmv_raw`` and ``apply_lcmv_cov`` use
directly. Same signature and results as ``samsrc.mne.make_sam_beamformer`` (checked in the tests);
lameg's own linear algebra (:mod:`lameg.sam.weights`) is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_float, check_int, check_option, validate_type
from ..exceptions import LamegDataError, LamegValueError
from .cov import noise_floor
from .param_types import MuSpec
from .weights import max_snr_orientations, regularise

__all__ = ["SAMNoise", "estimate_sam_noise", "make_sam_beamformer"]


@dataclass(frozen=True)
class SAMNoise:
    """Sensor-noise floor of a covariance for SAM's regularisation and normalisation.

    Parameters
    ----------
    variance : float
        Noise power, in the squared units of the covariance (T^2).
    bandwidth_hz : float or None
        Effective filter bandwidth, Hz (needed for additive ``mu`` in fT/sqrt(Hz)).
    """

    variance: float
    bandwidth_hz: float | None = None

    def __post_init__(self):
        check_float(self.variance, "variance", min_value=0.0)
        if self.bandwidth_hz is not None:
            check_float(self.bandwidth_hz, "bandwidth_hz", min_value=0.0, strict_min=True)


def _cov_array(cov, name: str) -> np.ndarray:
    data = np.asarray(cov["data"], float)
    if bool(cov.get("diag", False)) or data.ndim == 1:
        data = np.diag(data)
    n = len(cov.ch_names)
    if data.shape != (n, n) or not np.all(np.isfinite(data)):
        raise LamegValueError(f"{name} must be a finite {n} x {n} channel covariance")
    return 0.5 * (data + data.T)


def estimate_sam_noise(covariance, bandwidth_hz: float, *, edge_exclusion: int = 3) -> SAMNoise:
    """SAMsrcV5's noise floor (flattest part of the singular-value spectrum) of a covariance.

    Parameters
    ----------
    covariance : mne.Covariance
    bandwidth_hz : float
        Effective bandwidth of the data's filter, Hz.
    edge_exclusion : int
        Smallest singular values excluded from the search (``max(3, Pinv)``).

    Returns
    -------
    SAMNoise
    """
    import mne

    validate_type(covariance, mne.Covariance, "covariance")
    check_float(bandwidth_hz, "bandwidth_hz", min_value=0.0, strict_min=True)
    check_int(edge_exclusion, "edge_exclusion", min_value=3)
    sv = np.linalg.svd(_cov_array(covariance, "covariance"), compute_uv=False)
    if sv.size < 5 or edge_exclusion > sv.size - 2:
        raise LamegValueError("the covariance has too few channels for the noise-floor search")
    return SAMNoise(noise_floor(sv, edge_exclusion), float(bandwidth_hz))


def _pinv(C: np.ndarray, rcond: float, n_nulls: int) -> tuple[np.ndarray, int]:
    U, s, Vt = np.linalg.svd(C, full_matrices=False)
    keep = s > s[0] * rcond
    if n_nulls:
        keep[-n_nulls:] = False
    inv = (Vt.T * np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)) @ U.T
    return 0.5 * (inv + inv.T), int(keep.sum())


def make_sam_beamformer(info, forward, data_cov, *, orient_cov=None, data_noise=None,
                        orient_noise=None, mu: float | None = None, mu_kind: str = "additive",
                        normalize: bool = False, n_nulls: int = 0, rcond: float = 1e-15):
    """SAM beamformer weights as an MNE ``Beamformer``.

    Parameters
    ----------
    info : mne.Info
        Measurement info; its good, non-reference MEG channels are used.
    forward : mne.Forward
        Lead fields (free or fixed orientation) and the source space.
    data_cov : mne.Covariance
        Covariance the weights are computed from (SAM's Global, Sum or marker covariance).
    orient_cov : mne.Covariance, optional
        Covariance for the orientations (SAM's ``Orient.cov``); default ``data_cov``.
    data_noise, orient_noise : SAMNoise, optional
        Noise floors (:func:`estimate_sam_noise`); needed for ``mu`` and ``normalize``.
    mu : float, optional
        Regularisation: ``mu_kind='additive'`` adds ``(mu 1e-15)^2 * bandwidth`` (mu in
        fT/sqrt(Hz)), ``'proportional'`` adds ``mu x noise``, to the diagonal and the noise.
    mu_kind : {'additive', 'proportional'}
    normalize : bool
        Divide the weights by ``sqrt(noise)`` (SAM's ``Normalize``).
    n_nulls : int
        Smallest singular values dropped from the inverses (SAM's ``Pinv``).
    rcond : float
        Relative singular-value cut-off of the inverses.

    Returns
    -------
    mne.beamformer.Beamformer
        Scalar weights (n_sources, n_channels), A m per T; ``pick_ori='max-power'`` for free
        orientation forwards. Extra keys ``sam_orientations`` (n_sources, 3),
        ``sam_condition_numbers``, ``sam_effective_noise``, ``sam_effective_orient_noise``.
    """
    import mne
    from mne.beamformer import Beamformer
    from mne.io.constants import FIFF
    from mne.proj import make_projector

    validate_type(info, mne.Info, "info")
    validate_type(forward, mne.Forward, "forward")
    validate_type(data_cov, mne.Covariance, "data_cov")
    if orient_cov is not None:
        validate_type(orient_cov, mne.Covariance, "orient_cov")
    check_option(mu_kind, ("additive", "proportional"), "mu_kind")
    validate_type(normalize, bool, "normalize")
    check_int(n_nulls, "n_nulls", min_value=0)
    check_float(rcond, "rcond", min_value=0.0, max_value=1.0, strict_min=True)
    if mu is not None:
        check_float(mu, "mu", min_value=0.0)
    if orient_cov is None:
        orient_cov = data_cov
        orient_noise = data_noise if orient_noise is None else orient_noise
    bads = set(info["bads"]) | set(data_cov.get("bads", [])) | set(orient_cov.get("bads", []))
    finfo = forward.get("info")
    if finfo is not None:
        bads |= set(finfo.get("bads", []))
    picks = mne.pick_types(info, meg=True, ref_meg=False, eeg=False, exclude=sorted(bads))
    if len(picks) == 0:
        raise LamegDataError("info contains no usable non-reference MEG channels")
    names = [info["ch_names"][p] for p in picks]
    tesla = {info["chs"][p]["unit"] for p in picks} == {FIFF.FIFF_UNIT_T}
    rows = list(forward["sol"].get("row_names") or (finfo["ch_names"] if finfo else []))
    missing = [n for n in names if n not in rows]
    if missing:
        raise LamegDataError(f"the forward lacks channels {missing[:5]}")
    G = np.asarray(forward["sol"]["data"], float)[[rows.index(n) for n in names]]

    def pick(cov, label):
        allc = list(cov.ch_names)
        miss = [n for n in names if n not in allc]
        if miss:
            raise LamegDataError(f"{label} lacks channels {miss[:5]}")
        idx = [allc.index(n) for n in names]
        return _cov_array(cov, label)[np.ix_(idx, idx)]

    P = np.asarray(make_projector(info["projs"], names)[0], float)
    G = P @ G
    Cd = P @ pick(data_cov, "data_cov") @ P.T
    Co = P @ pick(orient_cov, "orient_cov") @ P.T

    def reg(C, noise, label):
        if mu is None:
            return C, (None if noise is None else noise.variance), 0.0
        if noise is None:
            raise LamegValueError(f"{label}_noise is needed with mu")
        if mu_kind == "additive":
            if not tesla or noise.bandwidth_hz is None:
                raise LamegValueError("additive mu (fT/sqrt(Hz)) needs channels in tesla and "
                                      f"{label}_noise.bandwidth_hz")
            Cr, nz = regularise(C, noise.variance, noise.bandwidth_hz, MuSpec("add", mu))
        else:
            Cr, nz = regularise(C, noise.variance, 1.0, MuSpec("mul", mu))
        return Cr, nz, nz - noise.variance

    Cd, eff_noise, d_load = reg(Cd, data_noise, "data")
    Co, eff_onoise, o_load = reg(Co, orient_noise, "orient")
    if normalize and not (eff_noise and eff_noise > 0):
        raise LamegValueError("normalize=True needs a positive data_noise")
    if n_nulls >= len(names):
        raise LamegValueError("n_nulls must be smaller than the number of channels")
    Cd_inv, rank = _pinv(Cd, rcond, n_nulls)
    Co_inv, orank = _pinv(Co, rcond, n_nulls)
    nsrc = int(forward["nsource"])
    n_ori = G.shape[1] // nsrc
    nn = np.asarray(forward["source_nn"], float)
    if n_ori == 3:
        bases = nn.reshape(nsrc, 3, 3)
        # lead fields in each source's local frame (rows of the basis), as MNE stores them
        L = G.reshape(len(names), nsrc, 3)
        local, span = max_snr_orientations(L, Co_inv, np.array([0.0, 0.0, 1.0]))
        phys = np.einsum("vk,vkj->vj", local, bases)
        B = np.einsum("mvk,vk->mv", L, local)
    else:
        normals = nn.reshape(nsrc, 3, 3)[:, 2] if nn.shape == (3 * nsrc, 3) else nn
        phys = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        local, span, B = None, np.zeros(nsrc), G
    CB = Cd_inv @ B
    den = np.einsum("mv,mv->v", B, CB)
    W = (CB / den).T
    if normalize:
        W = W / np.sqrt(eff_noise)
    vertices = [np.asarray(s["vertno"], int).copy() for s in forward["src"]]
    cov = mne.pick_channels_cov(data_cov, include=names, exclude=[], ordered=True, copy=True)
    return Beamformer(
        kind="SAM", weights=W, data_cov=cov, noise_cov=None, whitener=None, weight_norm=None,
        pick_ori="max-power" if n_ori == 3 else None, ch_names=names, proj=P,
        is_ssp=bool(info["projs"]), vertices=vertices, is_free_ori=False, n_sources=nsrc,
        src_type=forward["src"].kind, source_nn=nn.copy(),
        subject=getattr(forward["src"], "_subject", None), rank=rank, max_power_ori=local,
        inversion="single", sam_source_rr=np.asarray(forward["source_rr"], float).copy(),
        sam_orientations=phys, sam_condition_numbers=span, sam_effective_noise=eff_noise,
        sam_effective_orient_noise=eff_onoise, sam_data_loading=d_load,
        sam_orient_loading=o_load, sam_mu=mu, sam_mu_kind=mu_kind if mu is not None else None,
        sam_n_nulls=n_nulls, sam_rcond=float(rcond), sam_orient_rank=orank)
