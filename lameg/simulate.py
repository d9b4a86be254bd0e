"""Simulated MEG data from cortical current-density patches or dipoles (laMEG ``lameg.simulate``).

The maths follow SPM's ``spm_eeg_simulate`` (danclab version, see the SPM pipeline reference,
section 8):

* sources sit at vertices of the forward-model mesh stored in ``D.other.inv{k}``;
* a current-density patch is a geodesic Gaussian ``g = exp(-d^2 / 2 sigma^2)`` on
  ``d <= FWHM`` (``sigma = FWHM / 2.355``, exact geodesic distance ``d`` from the source vertex
  over the mesh), scaled so that its weights sum to the dipole moment (nA m); FWHM 0 gives a
  single vertex. These are the columns of :func:`lameg.inverse.kernels.geodesic_kernel`;
* the noiseless sensor signal is ``Y = sum_j G q_j s_j(t)`` (``G`` in fT per nA m) on the samples
  with ``woi[0] < t <= woi[1]`` and zero elsewhere;
* **SNR**: ``noise_sd = mean_c std_t(Y_c) * 10^(-SNR/20)`` (std over all samples of a trial,
  N-1 normalisation, averaged over trials when the signal varies across trials);
* noise is added to every channel of every trial: white ``N(0, noise_sd^2)``, or pink (a
  ``1/sqrt(f)`` amplitude spectrum per channel, zero DC, demeaned and rescaled to RMS
  ``noise_sd``).

Differences from laMEG/SPM, on purpose:

* vertices are given as 0-based indices of the forward mesh (laMEG passes their MNI coordinates
  and SPM snaps them back to the nearest vertex, which is the same vertex);
* random numbers come from ``numpy.random.default_rng(seed)``, drawn trial by trial as one
  ``(n_channels, n_samples)`` block (SPM uses MATLAB's unseeded global stream), so a simulation
  is reproducible and its noise can be regenerated with :func:`sensor_noise`;
* dipole simulations use the stored gain column of the vertex projected on the requested
  orientation (see :func:`run_dipole_simulation`);
* the averaged file is written with the simulation (laMEG averages after shutting down its
  MATLAB runtime, a documented defect).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._docs import fill_doc
from ._utils import logger
from ._validate import (
    check_array,
    check_float,
    check_int,
    check_option,
    check_path,
    check_writable,
    validate_type,
)
from .backends import select_backend
from .exceptions import (
    LamegDataError,
    LamegFormatError,
    LamegValueError,
)
from .io.spm_inv import read_head_model

__all__ = [
    "run_current_density_simulation",
    "run_dipole_simulation",
    "sensor_noise",
    "snr_noise_level",
    "patch_weights",
    "active_samples",
    "simulate_trials",
    "SimulatedData",
    "setup_opm_simulation",
]

NOISE_COLORS = ("white", "pink")


# ============================================================================================
# Array-level core
# ============================================================================================


def active_samples(time_s: np.ndarray, woi: Sequence[float] | None) -> np.ndarray:
    """Samples that carry the simulated signal: ``woi[0] < t <= woi[1]`` (SPM's rule).

    Parameters
    ----------
    time_s : ndarray, shape (n_samples,)
        Time axis, s.
    woi : (float, float) or None
        Window in **seconds**; None means the whole epoch (SPM's ``[-inf, inf]``, so every
        sample).

    Returns
    -------
    ndarray of int
        0-based sample indices.
    """
    time_s = np.asarray(time_s, dtype=float)
    if woi is None:
        return np.arange(time_s.size)
    w = np.asarray(woi, dtype=float).ravel()
    if w.size != 2 or not w[0] < w[1]:
        raise LamegValueError(f"sim_woi must be (start_s, end_s) with start < end, got {woi}")
    idx = np.flatnonzero((time_s > w[0]) & (time_s <= w[1]))
    if idx.size == 0:
        raise LamegValueError(
            f"sim_woi {w.tolist()} s contains no sample of the data "
            f"({time_s[0]:.4f} .. {time_s[-1]:.4f} s); note that sim_woi is in seconds")
    return idx


def snr_noise_level(y_clean: np.ndarray, snr_db: float) -> float:
    """SPM's noise standard deviation for a target SNR.

    Parameters
    ----------
    y_clean : ndarray, shape (n_channels, n_samples) or (n_channels, n_samples, n_trials)
        Noiseless sensor signal (fT), including the zero padding outside the window.
    snr_db : float
        Target SNR in dB (``20 log10`` of the amplitude ratio).

    Returns
    -------
    float
        ``mean_c std_t(y_c) * 10^(-snr/20)``; the std uses N-1 and, for 3-D input, is averaged
        over trials before the mean over channels.
    """
    y = np.asarray(y_clean, dtype=np.float64)
    if y.ndim == 2:
        y = y[:, :, None]
    if y.ndim != 3 or y.shape[1] < 2:
        raise LamegValueError(f"y_clean must be (n_channels, n_samples>=2[, n_trials]), "
                              f"got {np.shape(y_clean)}")
    if not np.isfinite(snr_db):
        raise LamegValueError(f"snr must be a finite number of dB, got {snr_db}")
    chan_sd = np.std(y, axis=1, ddof=1).mean(axis=1)
    return float(np.mean(chan_sd) * 10.0 ** (-float(snr_db) / 20.0))


def sensor_noise(n_channels: int, n_samples: int, level: float, color: str = "white",
                 rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One trial of sensor noise, shape (n_channels, n_samples), fT.

    Parameters
    ----------
    n_channels, n_samples : int
        Size of the block.
    level : float
        Noise standard deviation (white) or RMS per channel (pink), fT.
    color : {'white', 'pink'}
        ``'white'``: ``level * z`` with ``z = rng.standard_normal((n_channels, n_samples))``.
        ``'pink'``: the same ``z``, Fourier-transformed per channel, bin ``k >= 1`` multiplied by
        ``1/sqrt(k)`` and DC set to 0 (a 1/f power spectrum), transformed back, demeaned and
        rescaled to RMS ``level`` per channel (SPM's recipe).
    rng : Generator, int or None
        Random source; exactly one ``standard_normal`` block is drawn per call.

    Returns
    -------
    ndarray of float64, shape (n_channels, n_samples)
        Noise, in the unit of ``level``.
    """
    if color not in NOISE_COLORS:
        raise LamegValueError(f"noise_color must be one of {NOISE_COLORS}, got {color!r}")
    if not (np.isfinite(level) and level >= 0):
        raise LamegValueError(f"noise level must be a finite non-negative number, got {level}")
    rng = np.random.default_rng(rng)
    z = rng.standard_normal((int(n_channels), int(n_samples)))
    if color == "white":
        return z * level
    n = z.shape[1]
    spec = np.fft.rfft(z, axis=1)
    k = np.arange(spec.shape[1], dtype=float)
    k[0] = np.inf  # DC -> 0
    spec *= 1.0 / np.sqrt(k)
    y = np.fft.irfft(spec, n=n, axis=1)
    y -= y.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(y * y, axis=1, keepdims=True))
    rms[rms == 0] = 1.0
    return y / rms * level


def _mesh_arrays(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = np.ascontiguousarray(np.asarray(vertices, dtype=np.float64))
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise LamegValueError(f"mesh must be vertices (n, 3) and faces (m, 3); got {v.shape}, "
                              f"{f.shape}")
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise LamegValueError("mesh faces index missing vertices (0-based faces expected)")
    return v, np.ascontiguousarray(f, dtype=np.int32)


def patch_weights(vertices: np.ndarray, faces: np.ndarray, centers: Sequence[int],
                  fwhm: Sequence[float] | float, moments: Sequence[float] | float
                  ) -> sp.csc_matrix:
    """Current-density patches (nA m per vertex), one column per source.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, 3)
        Mesh vertices, mm (any rigidly moved copy gives the same patches).
    faces : ndarray, shape (n_faces, 3)
        0-based triangles.
    centers : sequence of int
        0-based source vertices.
    fwhm : float or sequence of float
        Patch FWHM per source, mm (0 = a single vertex).
    moments : float or sequence of float
        Dipole moment per source, nA m (the sum of the patch weights).

    Returns
    -------
    scipy.sparse.csc_matrix, shape (n_vertices, n_sources)
        ``q_j = moment_j * g / sum(g)`` with ``g = exp(-d^2 / (2 sigma^2))`` on exact geodesic
        distances ``d <= FWHM`` (tvb-gdist, Kirsanov's algorithm), ``sigma = FWHM / 2.355``.
        Equal to ``moment * geodesic_kernel(...)[:, center]`` (:mod:`lameg.inverse.kernels`).
    """
    v, f = _mesh_arrays(vertices, faces)
    centers = np.atleast_1d(np.asarray(centers)).astype(np.int64).ravel()
    n_src = centers.size
    fwhm = np.broadcast_to(np.asarray(fwhm, dtype=float).ravel(), (n_src,)) \
        if np.size(fwhm) in (1, n_src) else None
    moments = np.broadcast_to(np.asarray(moments, dtype=float).ravel(), (n_src,)) \
        if np.size(moments) in (1, n_src) else None
    if fwhm is None or moments is None:
        raise LamegValueError("sim_patch_sizes and dipole_moments need one value per source")
    if centers.size and (centers.min() < 0 or centers.max() >= len(v)):
        raise LamegValueError(f"source vertices must be 0-based indices below {len(v)}")
    if np.any(~np.isfinite(fwhm)) or np.any(fwhm < 0):
        raise LamegValueError(f"patch sizes must be non-negative mm, got {fwhm.tolist()}")
    if np.any(~np.isfinite(moments)):
        raise LamegValueError("dipole moments must be finite (nA m)")
    rows, cols, vals = [], [], []
    for j in range(n_src):  # one geodesic front per source (sources are few)
        c = int(centers[j])
        if fwhm[j] == 0:
            rows.append(np.array([c]))
            vals.append(np.array([moments[j]]))
        else:
            import gdist

            d = gdist.compute_gdist(v, f, source_indices=np.array([c], dtype=np.int32),
                                    max_distance=float(fwhm[j]))
            d = np.asarray(d, dtype=float)
            d[c] = 0.0
            near = np.flatnonzero(np.isfinite(d) & (d <= fwhm[j]))
            sigma = fwhm[j] / 2.355
            g = np.exp(-(d[near] ** 2) / (2.0 * sigma**2))
            keep = g > np.exp(-8)
            near, g = near[keep], g[keep]
            rows.append(near)
            vals.append(moments[j] * g / g.sum())
        cols.append(np.full(rows[-1].size, j))
    if not n_src:
        return sp.csc_matrix((len(v), 0))
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(v), n_src))


def _signals(sim_signals, n_src: int, n_active: int, n_trials: int) -> np.ndarray:
    s = np.asarray(sim_signals, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim == 2:
        s = s[:, :, None]
    if s.ndim != 3 or s.shape[0] != n_src:
        raise LamegValueError(
            f"sim_signals must be (n_sources={n_src}, n_times[, n_trials]); got "
            f"{np.shape(sim_signals)}")
    if s.shape[1] != n_active:
        raise LamegValueError(
            f"sim_signals has {s.shape[1]} samples but the simulation window holds "
            f"{n_active} samples (t > woi[0] and t <= woi[1]); resample the signal or change "
            "sim_woi")
    if s.shape[2] not in (1, n_trials):
        raise LamegValueError(f"sim_signals has {s.shape[2]} trials, the data {n_trials}")
    if not np.all(np.isfinite(s)):
        raise LamegDataError("sim_signals contains NaN or Inf")
    return s


@dataclass
class SimulatedData:
    """Output of :func:`simulate_trials`.

    Parameters
    ----------
    data : ndarray, shape (n_channels_total, n_samples, n_trials), float32
        Signal plus noise, as stored in the ``.dat`` file (fT).
    clean : ndarray, shape (n_signal_channels, n_samples, n_sig_trials)
        Noiseless signal on the signal channels (``n_sig_trials`` is 1 when the signal is the
        same in every trial).
    noise_level : float
        Noise standard deviation (fT), see :func:`snr_noise_level`.
    """

    data: np.ndarray
    clean: np.ndarray
    noise_level: float


@fill_doc
def simulate_trials(gain: np.ndarray, weights, sim_signals: np.ndarray, active: np.ndarray,
                    n_samples: int, n_trials: int, snr: float, noise_color: str = "white",
                    rng: np.random.Generator | int | None = None, *,
                    signal_rows: np.ndarray | None = None, n_channels_total: int | None = None,
                    signal_scale: float = 1.0, dtype=np.float32) -> SimulatedData:
    """Simulate trials on arrays (the core of both file-based simulations).

    Parameters
    ----------
    gain : ndarray, shape (n_signal_channels, n_vertices)
        Lead field, fT per nA m.
    weights : sparse or ndarray, shape (n_vertices, n_sources)
        Source weights in nA m (:func:`patch_weights`), or, with ``gain`` of shape
        (n_signal_channels, n_sources), the per-source sensor patterns directly.
    sim_signals : ndarray, shape (n_sources, n_active[, n_trials])
        Source waveforms (unitless, multiplied by the moments).
    active : ndarray of int
        Samples carrying the signal (:func:`active_samples`).
    n_samples, n_trials : int
        Epoch size.
    %(snr)s
    %(noise_color)s
    rng : Generator, int or None
        Noise source: one ``(n_channels_total, n_samples)`` block per trial, in trial order.
    signal_rows : ndarray of int, optional
        Rows of the output that receive the signal (default the first ``n_signal_channels``).
    n_channels_total : int, optional
        Rows of the output (default ``n_signal_channels``); every row gets noise.
    signal_scale : float
        Unit factor applied to the signal (1 for fT data, 1e-15 for T).
    dtype : numpy dtype
        Output dtype (float32, as SPM stores simulated data).

    Returns
    -------
    SimulatedData
        The noisy data of every channel, the clean signal and the noise level.
    """
    gain = np.asarray(gain, dtype=np.float64)
    n_sig = gain.shape[0]
    rows = np.arange(n_sig) if signal_rows is None else np.asarray(signal_rows, dtype=int)
    n_tot = n_sig if n_channels_total is None else int(n_channels_total)
    if rows.size != n_sig or (rows.size and (rows.min() < 0 or rows.max() >= n_tot)):
        raise LamegValueError("signal_rows must index one output row per gain row")
    active = np.asarray(active, dtype=int)
    if sp.issparse(weights):
        patterns = np.asarray((weights.T @ gain.T).T)
    else:
        w = np.asarray(weights, dtype=np.float64)
        patterns = gain @ w
    s = _signals(sim_signals, patterns.shape[1], active.size, n_trials)
    clean = np.zeros((n_sig, n_samples, s.shape[2]))
    clean[:, active, :] = np.einsum("cj,jtk->ctk", patterns, s) * signal_scale
    level = snr_noise_level(clean, snr) if np.any(clean) else 0.0
    if level == 0.0 and not np.any(clean):
        logger.warning("the simulated signal is zero everywhere; no noise level can be set "
                       "from the SNR, so no noise is added")
    rng = np.random.default_rng(rng)
    out = np.empty((n_tot, n_samples, n_trials), dtype=dtype)
    for k in range(n_trials):
        trial = sensor_noise(n_tot, n_samples, level, noise_color, rng)
        trial[rows] += clean[:, :, k if clean.shape[2] > 1 else 0]
        out[:, :, k] = trial
    return SimulatedData(data=out, clean=clean, noise_level=level)


# ============================================================================================
# Dataset helpers
# ============================================================================================


def signal_channels(D) -> tuple[np.ndarray, float]:
    """Channels that receive simulated signal and the signal unit scale.

    Parameters
    ----------
    D : lameg.io.spm_meeg.MEEG
        The template dataset.

    Returns
    -------
    channels : ndarray of int
        0-based good MEG channels.
    scale : float
        1 for data in fT, 1e-15 for data in T (SPM sets signal and noise levels in fT).
    """
    chan = np.asarray(D.indchantype(["MEG", "MEGPLANAR"], "GOOD"), dtype=int)
    if chan.size == 0:
        raise LamegDataError(f"{D.fname.name} has no good MEG channels to simulate on")
    units = {D.chanunits[i] for i in chan}
    scale = 1e-15 if units == {"T"} else 1.0  # SPM: noise and signal levels are set in fT
    return chan, scale


def _checked(args: dict) -> dict:
    """Validate and normalise the simulation façades' arguments, before any file is touched."""
    args["data_file"] = check_path(args["data_file"], "data_file")
    prefix = args["prefix"]
    if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "/\\"):
        raise LamegValueError(f"prefix must be a non-empty file-name prefix, got {prefix!r}")
    raw = np.atleast_1d(np.asarray(args["sim_vertices"], dtype=object)).ravel()
    if raw.size == 0:
        raise LamegValueError("sim_vertices is empty")
    verts = [check_int(v, "sim_vertices (0-based vertices)", min_value=0) for v in raw]
    args["sim_vertices"] = verts
    n_src = len(verts)
    for key, what, low in (("dipole_moments", "nA m", None), ("sim_patch_sizes", "mm", 0.0)):
        vals = np.atleast_1d(np.asarray(args[key], dtype=object)).ravel()
        vals = [check_float(v, f"{key} ({what})", min_value=low) for v in vals]
        if len(vals) not in (1, n_src):
            raise LamegValueError(f"{key} needs one value per source ({n_src}), got {len(vals)}")
        args[key] = vals * n_src if len(vals) == 1 else vals
    args["snr"] = check_float(args["snr"], "snr (dB)")
    check_option(args["noise_color"], NOISE_COLORS, "noise_color")
    sig = check_array(args["sim_signals"], "sim_signals")
    if sig.ndim not in (1, 2, 3) or sig.size == 0:
        raise LamegValueError(f"sim_signals must be (n_sources, n_times[, n_trials]), got shape "
                              f"{sig.shape}")
    args["sim_signals"] = sig
    if args["sim_woi"] is not None:
        woi = check_array(args["sim_woi"], "sim_woi (s)", shape=(2,), finite=False)
        if np.any(np.isnan(woi)) or woi[0] >= woi[1]:
            raise LamegValueError(f"sim_woi must be [start, end] in seconds with start < end, got "
                                  f"{woi.tolist()}")
        args["sim_woi"] = woi
    validate_type(args["average_trials"], (bool, np.bool_), "average_trials")
    if args["inversion_idx"] is not None:
        args["inversion_idx"] = check_int(args["inversion_idx"], "inversion_idx", min_value=0)
    check_writable(args["data_file"].parent, "output folder")
    return args


def _run_on_spm(func_name: str, args: dict) -> str | None:
    """Run a simulation with real SPM when ``args`` select that back end.

    ``args`` are the public function's arguments (``locals()`` on entry); ``backend`` and
    ``spm_instance`` choose the back end and the others are passed on unchanged. Returns the
    output file name, or None when the native back end is selected.
    """
    module, extra = select_backend(args.pop("backend"), args.pop("spm_instance"))
    if not extra:
        return None
    return getattr(module, func_name)(**args, **extra)  # spm_eeg_simulate, same arguments


def _write_outputs(D, prefix: str, data: np.ndarray, average_trials: bool) -> str:
    new = D.path / f"{prefix}{D.fname.name}"
    if new.resolve() == D.fname:
        raise LamegValueError("prefix must not be empty: the template would be overwritten")
    sim = D.clone(new, data=data)
    out = sim.fname
    if average_trials:
        conds = np.asarray(sim.conditions)
        bad = set(sim.badtrials.tolist())
        labels, avg = [], []
        for c in sim.condlist:
            idx = [i for i in np.flatnonzero(conds == c) if i not in bad]
            if not idx:
                continue
            labels.append(c)
            avg.append(np.asarray(data[:, :, idx], dtype=np.float64).mean(axis=2))
        if not avg:
            raise LamegDataError("no good trials to average")
        mdata = np.stack(avg, axis=2)
        msim = sim.clone(sim.path / f"m{sim.fname.name}", data=mdata, conditions=labels)
        out = msim.fname
    return str(out)


def _simulate_file(args: dict, pattern_fn) -> str:
    """The native simulation of the two façades, on their validated arguments."""
    from .io.spm_meeg import load_meeg

    D = load_meeg(args["data_file"])
    hm = read_head_model(D, args["inversion_idx"])
    chan, scale = signal_channels(D)
    labels = [D.chanlabels[i] for i in chan]
    G = hm.gain(labels)
    verts = np.asarray(args["sim_vertices"], dtype=np.int64)
    if verts.max() >= G.shape[1]:
        raise LamegValueError(
            f"sim_vertices must be 0-based vertices of the forward mesh (0..{G.shape[1] - 1})")
    n_src = verts.size
    moments = np.asarray(args["dipole_moments"], dtype=float)
    patterns = pattern_fn(hm, G, verts, moments)  # (n_chan, n_src), fT per unit signal
    active = active_samples(D.time, args["sim_woi"])
    sig = args["sim_signals"]
    if sig.ndim == 1 and n_src == 1:
        sig = sig[None, :]
    res = simulate_trials(patterns, np.eye(n_src), sig, active, D.n_samples, D.n_trials,
                          args["snr"], args["noise_color"], np.random.default_rng(args["seed"]),
                          signal_rows=chan, n_channels_total=D.n_channels, signal_scale=scale)
    logger.info("simulated %d source(s), SNR %g dB, noise SD %.6g fT", n_src, args["snr"],
                res.noise_level)
    return _write_outputs(D, args["prefix"], res.data, args["average_trials"])


# ============================================================================================
# laMEG API
# ============================================================================================


@fill_doc
def run_current_density_simulation(
    data_file: str | os.PathLike,
    prefix: str,
    sim_vertices: int | Sequence[int],
    sim_signals: np.ndarray,
    dipole_moments: float | Sequence[float],
    sim_patch_sizes: float | Sequence[float],
    snr: float,
    noise_color: str = "white",
    sim_woi: Sequence[float] | None = None,
    average_trials: bool = False,
    viz: bool = True,
    spm_instance: Any = None,
    seed: int | np.random.Generator | None = None,
    inversion_idx: int | None = None,
    *,
    backend: str | None = None,
) -> str:
    """Simulate current-density patches on the forward mesh of a template dataset.

    A new dataset ``<prefix><name>.mat/.dat`` is written next to ``data_file`` (never modified):
    a copy of its header, including the forward model in ``D.other.inv``, with new data.

    Parameters
    ----------
    %(sim_template)s
    %(sim_moments_sizes)s
    %(sim_options)s
    %(sim_engine)s

    Returns
    -------
    %(sim_returns)s
    """
    args = _checked(dict(locals()))
    out = _run_on_spm("run_current_density_simulation", dict(args))
    if out is not None:
        return out
    sizes = np.asarray(args["sim_patch_sizes"], dtype=float)

    def patterns(hm, G, verts, moments):
        v, f = 1000.0 * hm.cortex_head_m, hm.faces  # SPM: patches on forward.mesh (head, mm)
        if len(v) != G.shape[1]:
            raise LamegFormatError(
                f"forward mesh has {len(v)} vertices but the gain matrix {G.shape[1]} columns; "
                "re-run coregister")
        q = patch_weights(v, f, verts, sizes, moments)
        return np.asarray((q.T @ G.T).T)

    return _simulate_file(args, patterns)


@fill_doc
def run_dipole_simulation(
    data_file: str | os.PathLike,
    prefix: str,
    sim_vertices: int | Sequence[int],
    sim_signals: np.ndarray,
    dipole_orientations: np.ndarray,
    dipole_moments: float | Sequence[float],
    sim_patch_sizes: float | Sequence[float],
    snr: float,
    noise_color: str = "white",
    sim_woi: Sequence[float] | None = None,
    average_trials: bool = False,
    viz: bool = True,
    spm_instance: Any = None,
    seed: int | np.random.Generator | None = None,
    inversion_idx: int | None = None,
    *,
    backend: str | None = None,
) -> str:
    """Simulate point dipoles with given orientations at vertices of the forward mesh.

    The lead field of a dipole is the stored gain column of its vertex (computed for the mesh
    orientation ``n_v``) scaled by ``o . n_v``, the projection of the requested unit orientation
    ``o`` on it: the stored fixed-orientation forward model carries no information about the
    other two directions. Orientations along the mesh orientation (the usual laminar case, e.g.
    ``+/-`` the link vector) are therefore exact; a warning is logged for orientations more than
    1 degree away. SPM computes a free-orientation FieldTrip lead field at the affine-mapped
    vertex position instead. ``sim_patch_sizes`` is validated but, as in SPM, dipoles are points.

    Parameters
    ----------
    %(sim_template)s
    dipole_orientations : ndarray, shape (n_sources, 3)
        Orientations in the MRI frame of the mesh (normalised here).
    %(sim_moments_sizes)s
    %(sim_options)s
    %(sim_engine)s

    Returns
    -------
    %(sim_returns)s
    """
    args = _checked(dict(locals()))
    out = _run_on_spm("run_dipole_simulation", dict(args))
    if out is not None:
        return out
    n_src = len(args["sim_vertices"])
    ori = np.atleast_2d(np.asarray(dipole_orientations, dtype=float))
    if ori.shape != (n_src, 3):
        raise LamegValueError(f"dipole_orientations must be ({n_src}, 3), got {ori.shape}")
    nrm = np.linalg.norm(ori, axis=1)
    if np.any(~np.isfinite(nrm)) or np.any(nrm == 0):
        raise LamegValueError("dipole_orientations must be finite non-zero vectors")
    ori = ori / nrm[:, None]

    def patterns(hm, G, verts, moments):
        n = hm.orientations_mri[verts]
        proj = np.einsum("ij,ij->i", ori, n)
        off = np.degrees(np.arccos(np.clip(np.abs(proj), 0, 1)))
        if np.any(off > 1.0):
            logger.warning(
                "dipole orientation(s) %.1f deg away from the forward model's orientation: "
                "the fixed-orientation gain only carries the projected component",
                float(off.max()))
        return G[:, verts] * (proj * moments)[None, :]

    return _simulate_file(args, patterns)


# OPM arrays (implemented in lameg.opm; laMEG imports the name from lameg.simulate).
from .opm import setup_opm_simulation  # noqa: E402
