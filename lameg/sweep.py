"""Laminar-accuracy sweeps: simulate in every layer of many columns, compare layer models.

For each cell (cortical column x generating layer x SNR x co-registration error x repeat) a
current-density patch is simulated in one layer (:mod:`lameg.simulate`), the data are inverted
once per layer model, and the layer with the highest free energy is the estimate (Szul et al.
2025 protocol, see the simulation-protocols reference).

The sweep works **in memory**: it holds the multilayer gain matrix, the per-layer patch kernels
and the template's time axis, and never writes a dataset. It follows exactly the maths of the
file-based path (``run_current_density_simulation`` followed by
:func:`lameg.laminar.model_comparison`):

* the same patch weights (:func:`lameg.simulate.patch_weights`) and noise stream
  (``numpy.random.default_rng(seed)``, one ``(n_channels, n_samples)`` block per trial, every
  channel of the template), the same float32 rounding of the stored data and of the average;
* per layer model, the layer's columns of the multilayer gain (what ``coregister`` computes for
  that layer's mesh: same positions, same orientations) and the layer mesh's geodesic kernel;
* the same array-level engine (:func:`lameg.inverse.invert_classic`) with the settings
  :func:`lameg.invert.invert_msp` / ``invert_ebb`` use (spatial modes, integer-ms window, DCT
  band, Hanning, temporal modes, priors).

Every cell has its own integer seed (derived from ``seed`` and the cell's indices), stored in the
table, so any cell can be re-run through the file-based path, and the joblib and Dask back ends
return identical tables.

Co-registration error follows Szul et al. (2025): the three MRI fiducials are moved by a random
translation (random unit vector x N(0, 1) x err mm) and a rotation about their centroid (random
axis, N(0, 1) x err degrees), kept only when the largest fiducial displacement is err +/- 0.05 mm
(:func:`perturb_fiducials`); the forward model is rebuilt from the perturbed fiducials while the
data come from the true one. One perturbation is drawn per (error level, repeat) and shared by
all columns (the forward model is the expensive part).

Error in mm = error in layers x thickness / (n_layers - 1), the distance between adjacent
equidistant layers (Szul et al.'s code divides by n_layers instead).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._utils import logger, progress
from .exceptions import LamegValueError

__all__ = [
    "LaminarModel",
    "SweepSettings",
    "perturb_fiducials",
    "run_laminar_sweep",
    "synthetic_model",
    "chance_error",
    "plot_error_vs_snr",
    "plot_confusion",
]


# ============================================================================================
# Model (what a sweep needs to know about a participant)
# ============================================================================================


@dataclass
class LaminarModel:
    """A participant's multilayer forward model and recording template, as arrays.

    Attributes
    ----------
    gain : ndarray, shape (n_channels, n_layers * n_vertices)
        Multilayer lead field of the good MEG channels, fT per nA m, layer-major columns
        (layer 0 = pial).
    vertices : ndarray, shape (n_layers * n_vertices, 3)
        Multilayer mesh, mm.
    faces : ndarray, shape (n_faces, 3)
        0-based triangles of the multilayer mesh (no triangle joins two layers).
    n_layers : int
    time : ndarray, shape (n_samples,)
        Template time axis, s.
    conditions : list of str
        Condition of each template trial (its length is the number of trials).
    signal_rows : ndarray of int, optional
        Rows of the template's channel list that the gain rows correspond to (default all).
    n_channels_total : int, optional
        Number of channels of the template (noise is drawn for all, as in the file path).
    fiducials : ndarray, shape (3, 3), optional
        MRI fiducials (nas, lpa, rpa; mm) used for the true forward model.
    forward : callable, optional
        ``forward(fiducials (3, 3) mm) -> gain`` like ``gain`` (same channels and sources),
        for co-registration errors. Must be picklable for parallel runs.
    fsample : float, optional
        Sampling rate, Hz (default from ``time``, rounded to 1e-6 Hz).
    """

    gain: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    n_layers: int
    time: np.ndarray
    conditions: list
    signal_rows: np.ndarray | None = None
    n_channels_total: int | None = None
    fiducials: np.ndarray | None = None
    forward: Callable | None = None
    fsample: float | None = None

    def __post_init__(self) -> None:
        self.gain = np.asarray(self.gain, dtype=np.float64)
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.time = np.asarray(self.time, dtype=np.float64)
        self.conditions = [str(c) for c in self.conditions]
        n = self.vertices.shape[0]
        if self.n_layers < 2 or n % self.n_layers:
            raise LamegValueError(
                f"{n} vertices cannot form {self.n_layers} layers (need >= 2 equal layers)")
        if self.gain.ndim != 2 or self.gain.shape[1] != n:
            raise LamegValueError(
                f"gain must be (n_channels, {n}) to match the mesh, got {self.gain.shape}")
        if not np.all(np.isfinite(self.gain)):
            raise LamegValueError("gain contains NaN or Inf")
        if self.signal_rows is None:
            self.signal_rows = np.arange(self.gain.shape[0])
        self.signal_rows = np.asarray(self.signal_rows, dtype=int)
        if self.n_channels_total is None:
            self.n_channels_total = self.gain.shape[0]
        if len(self.signal_rows) != self.gain.shape[0]:
            raise LamegValueError("signal_rows needs one entry per gain row")
        if not self.conditions:
            raise LamegValueError("the template needs at least one trial (conditions)")
        if self.fiducials is not None:
            self.fiducials = np.asarray(self.fiducials, dtype=float).reshape(3, 3)
        if self.fsample is None:
            self.fsample = float(np.round(1.0 / np.median(np.diff(self.time)), 6))

    @property
    def n_vertices(self) -> int:
        """Vertices per layer (= columns)."""
        return self.vertices.shape[0] // self.n_layers

    @property
    def n_trials(self) -> int:
        return len(self.conditions)

    @property
    def thickness(self) -> np.ndarray:
        """Pial-white Euclidean distance per column, mm, shape (n_vertices,)."""
        v = self.n_vertices
        return np.linalg.norm(self.vertices[:v] - self.vertices[-v:], axis=1)

    def layer_mesh(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Vertices and 0-based faces of one layer."""
        v = self.n_vertices
        sel = (self.faces // v)[:, 0] == layer
        return self.vertices[layer * v:(layer + 1) * v], self.faces[sel] - layer * v

    @classmethod
    def from_dataset(cls, data_fname: str | os.PathLike, n_layers: int | None = None,
                     surf_set: Any = None, inversion_idx: int = 0,
                     fid_coords: Any = None, forward: Callable | None = None
                     ) -> LaminarModel:
        """Read the multilayer forward model of a coregistered dataset.

        Parameters
        ----------
        data_fname : path
            SPM dataset whose ``D.other.inv{inversion_idx+1}`` holds a forward model on the
            multilayer mesh (``coregister(..., layer_name=None)``) and its gain matrix.
        n_layers : int, optional
            Number of layers (default ``surf_set.n_layers``).
        surf_set : LayerSurfaceSet, optional
        inversion_idx : int
            0-based forward model index.
        fid_coords : dict or (3, 3) array, optional
            MRI fiducials (nas, lpa, rpa; mm) of the true forward model.
        forward : callable, optional
            See :class:`LaminarModel`; e.g. :class:`FileForward` for the file-based path.
        """
        from .io.spm_inv import read_head_model
        from .io.spm_meeg import load_meeg
        from .simulate import signal_channels

        if n_layers is None:
            if surf_set is None:
                raise LamegValueError("give n_layers or surf_set")
            n_layers = int(surf_set.n_layers)
        D = load_meeg(data_fname)
        hm = read_head_model(D, inversion_idx)
        chan, _ = signal_channels(D)
        G = hm.gain([D.chanlabels[i] for i in chan])
        v, f = hm.cortex_mm()
        fid = None
        if fid_coords is not None:
            fid = _fid_array(fid_coords)
        return cls(gain=G, vertices=v, faces=f, n_layers=int(n_layers), time=D.time,
                   conditions=list(D.conditions), signal_rows=chan,
                   n_channels_total=D.n_channels, fiducials=fid, forward=forward,
                   fsample=D.fsample)


def _fid_array(fid_coords) -> np.ndarray:
    if isinstance(fid_coords, dict):
        return np.array([np.asarray(fid_coords[k], dtype=float).ravel()
                         for k in ("nas", "lpa", "rpa")])
    return np.asarray(fid_coords, dtype=float).reshape(3, 3)


@dataclass
class FileForward:
    """Forward model from perturbed fiducials through the file-based ``coregister``.

    Coregisters a scratch copy of the template (one trial) to the multilayer mesh with the given
    fiducials and returns the gain of the good MEG channels. Picklable.
    """

    scratch_fname: str
    surf_set: Any
    coregister_kwargs: dict = field(default_factory=dict)

    @classmethod
    def create(cls, data_fname, surf_set, scratch_dir, **coregister_kwargs) -> FileForward:
        from .io.spm_meeg import load_meeg

        D = load_meeg(data_fname)
        Path(scratch_dir).mkdir(parents=True, exist_ok=True)
        new = Path(scratch_dir) / f"fwd_{D.fname.name}"
        D.clone(new, data=np.zeros((D.n_channels, D.n_samples, 1), np.float32))
        return cls(str(new), surf_set, dict(coregister_kwargs))

    def __call__(self, fiducials: np.ndarray) -> np.ndarray:
        from .invert import coregister
        from .io.spm_inv import read_head_model
        from .io.spm_meeg import load_meeg
        from .simulate import signal_channels

        fid = _fid_array(fiducials)
        coregister({"nas": fid[0], "lpa": fid[1], "rpa": fid[2]}, self.scratch_fname, self.surf_set,
              viz=False, **self.coregister_kwargs)
        D = load_meeg(self.scratch_fname)
        chan, _ = signal_channels(D)
        return read_head_model(D, 0).gain([D.chanlabels[i] for i in chan])


# ============================================================================================
# Co-registration error
# ============================================================================================


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


# ============================================================================================
# Sweep
# ============================================================================================


@dataclass
class SweepSettings:
    """Simulation and inversion settings of a sweep (defaults: Szul et al. 2025, MSP).

    Attributes
    ----------
    method : {'MSP', 'EBB'}
        Inversion per layer model; MSP uses a single prior patch at the simulated column.
    patch_size : float
        Inversion patch FWHM, mm.
    sim_patch_size : float or None
        Simulation patch FWHM, mm (default ``patch_size``).
    dipole_moment : float
        nA m.
    signal : ndarray or None
        Waveform over the samples of ``sim_woi`` (default: a Gaussian centred mid-epoch with
        sigma = epoch duration / 5, normalised to peak 1).
    sim_woi : (float, float) or None
        Simulation window, s (default the whole epoch).
    woi : (float, float) or None
        Inversion window, ms (default +/- 25 ms around the signal peak).
    foi : (float, float)
        DCT band, Hz.
    hann_windowing : bool
    n_temp_modes : int or None
    n_spatial_modes : 'all', 'auto' or int
    noise_color : {'white', 'pink'}
    average_trials : bool
        Invert the per-condition average of the simulated trials (as Szul et al.).
    """

    method: str = "MSP"
    patch_size: float = 5.0
    sim_patch_size: float | None = None
    dipole_moment: float = 10.0
    signal: np.ndarray | None = None
    sim_woi: tuple | None = None
    woi: tuple | None = None
    foi: tuple = (0.0, 256.0)
    hann_windowing: bool = True
    n_temp_modes: int | None = 4
    n_spatial_modes: Any = "all"
    noise_color: str = "white"
    average_trials: bool = True

    def resolved(self, time_s: np.ndarray) -> SweepSettings:
        from .simulate import active_samples

        if self.method not in ("MSP", "EBB"):
            raise LamegValueError(f"method must be 'MSP' or 'EBB', got {self.method!r}")
        s = SweepSettings(**self.__dict__)
        act = active_samples(time_s, s.sim_woi)
        if s.signal is None:
            t = time_s[act]
            mid = 0.5 * (time_s[0] + time_s[-1])
            sd = (time_s[-1] - time_s[0]) / 5.0
            sig = np.exp(-((t - mid) ** 2) / (2 * sd**2))
            s.signal = (sig - sig.min()) / (sig.max() - sig.min())
        s.signal = np.asarray(s.signal, dtype=float).ravel()
        if s.signal.size != act.size:
            raise LamegValueError(f"signal has {s.signal.size} samples, sim_woi holds {act.size}")
        if s.woi is None:
            peak_ms = 1000.0 * time_s[act][int(np.argmax(np.abs(s.signal)))]
            s.woi = (peak_ms - 25.0, peak_ms + 25.0)
        if s.sim_patch_size is None:
            s.sim_patch_size = s.patch_size
        return s


def chance_error(n_layers: int) -> float:
    """Expected ``|true - estimated|`` (layers) for uniformly random estimates: (n^2 - 1) / (3n)."""
    return (n_layers**2 - 1) / (3.0 * n_layers)


def _cell_seed(seed: int, *idx: int) -> int:
    return int(np.random.SeedSequence([int(seed), *map(int, idx)]).generate_state(1)[0])


def _inversion_settings(settings: SweepSettings, time_s: np.ndarray) -> dict:
    from .inverse.modes import truncate_woi

    foi = np.asarray(settings.foi, dtype=float)
    return dict(wois=truncate_woi(settings.woi, time_s), lpf=float(np.fix(foi.min())),
                hpf=float(np.fix(foi.max())))


def _trial_groups(conditions: Sequence[str]) -> tuple[list, list]:
    conds = np.asarray(conditions)
    labels = list(dict.fromkeys(conditions))
    return labels, [np.flatnonzero(conds == c) for c in labels]


def _blas_limit(n_threads: int | None):
    """Context limiting BLAS threads (threadpoolctl when installed; no-op otherwise)."""
    import contextlib

    if n_threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(n_threads), user_api="blas")


def _run_batch(ctx: dict, cells: list) -> list[dict]:
    """Run a batch of cells (simulation + one inversion per layer model)."""
    with _blas_limit(ctx.get("blas_threads")):
        return _run_cells(ctx, cells)


def _run_cells(ctx: dict, cells: list) -> list[dict]:
    from .inverse.engine import invert_classic
    from .inverse.modes import spatial_projector
    from .simulate import simulate_trials

    st: SweepSettings = ctx["settings"]
    time_s = ctx["time"]
    n_layers, nv = ctx["n_layers"], ctx["n_vertices"]
    labels, groups = _trial_groups(ctx["conditions"])
    rows = []
    for cell in cells:
        pattern = ctx["patterns"][:, cell["pattern"]][:, None]
        sim = simulate_trials(pattern, np.eye(1), st.signal[None, :], ctx["active"],
                              len(time_s), len(ctx["conditions"]), cell["snr"],
                              st.noise_color, np.random.default_rng(cell["seed"]),
                              signal_rows=ctx["signal_rows"],
                              n_channels_total=ctx["n_channels_total"])
        data = sim.data[ctx["signal_rows"]]
        if st.average_trials:
            data = np.stack([data[:, :, g].astype(np.float64).mean(axis=2) for g in groups],
                            axis=2).astype(np.float32)
            trials = [np.array([i]) for i in range(len(groups))]
        else:
            trials = groups
        gain = ctx["gains"][cell["gain_key"]]
        F = np.empty(n_layers)
        for e in range(n_layers):
            L = gain[:, e * nv:(e + 1) * nv]
            A, _ = spatial_projector(L, st.n_spatial_modes)
            Ip = np.array([cell["column"]]) if st.method == "MSP" else None
            res = invert_classic(
                L, data, time_s, inv_type=st.method, QG=ctx["kernels"][e], trials=trials,
                woi=ctx["inversion"]["wois"], lpf=ctx["inversion"]["lpf"], hpf=ctx["inversion"]["hpf"],
                hanning=st.hann_windowing, A=A, n_temp_modes=st.n_temp_modes, Ip=Ip,
                n_layers=1, keep_M="none", fsample=ctx["fsample"])
            F[e] = res.F[0]
        est = int(np.argmax(F))
        row = dict(column=cell["column"], true_layer=cell["layer"], est_layer=est,
                   error_layers=abs(est - cell["layer"]), bias_layers=cell["layer"] - est,
                   error_mm=abs(est - cell["layer"]) * ctx["thickness"][cell["column"]]
                   / (n_layers - 1),
                   snr=cell["snr"], jitter=cell["jitter"], repeat=cell["repeat"],
                   seed=cell["seed"], noise_level=sim.noise_level)
        for e in range(n_layers):
            row[f"F_{e}"] = F[e]
        rows.append(row)
    return rows


def _table(rows: list[dict]):
    keys = list(rows[0]) if rows else []
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with mne/nilearn
        return {k: np.array([r[k] for r in rows]) for k in keys}
    return pd.DataFrame(rows, columns=keys)


def run_laminar_sweep(
    model: LaminarModel,
    columns: Sequence[int],
    snrs: Sequence[float],
    layers: Sequence[int] | None = None,
    jitters: Sequence[float] = (0.0,),
    n_repeats: int = 1,
    settings: SweepSettings | None = None,
    *,
    seed: int = 0,
    backend: str = "joblib",
    n_jobs: int = 1,
    client: Any = None,
    batch_size: int | None = None,
    kernel_cache_dir: str | os.PathLike | None = None,
    blas_threads: int | None = -1,
    verbose: bool = False,
):
    """Laminar-accuracy sweep over columns x generating layers x SNRs x co-registration errors.

    Parameters
    ----------
    model : LaminarModel
        Multilayer forward model and template (:meth:`LaminarModel.from_dataset`,
        :func:`synthetic_model`).
    columns : sequence of int
        Column (per-layer vertex) indices.
    snrs : sequence of float
        Per-trial SNRs, dB (SPM definition).
    layers : sequence of int, optional
        Generating layers (default all).
    jitters : sequence of float
        Co-registration errors, mm (largest fiducial displacement); > 0 needs
        ``model.forward`` and ``model.fiducials``.
    n_repeats : int
        Repeats of every cell (new noise and, for jitter > 0, a new perturbation).
    settings : SweepSettings, optional
    seed : int
        Base seed; cell seeds are derived from it and the cell's indices.
    backend : {'joblib', 'dask', 'serial'}
        ``'dask'`` uses ``client`` (a ``distributed.Client``) or the current client.
    n_jobs : int
        joblib workers.
    batch_size : int, optional
        Cells per task (default: about 4 tasks per worker).
    kernel_cache_dir : path, optional
        Cache of geodesic kernels.
    blas_threads : int, None or -1
        BLAS threads per task (needs ``threadpoolctl``). -1 (default): 1 thread for parallel
        back ends (one task per core is faster than threaded BLAS on small matrices), unlimited
        for serial runs; None: never limit.
    verbose : bool

    Returns
    -------
    pandas.DataFrame (or dict of arrays without pandas)
        One row per cell: ``column, true_layer, est_layer, error_layers, bias_layers
        (true - estimated; > 0 = estimate more superficial), error_mm, snr, jitter, repeat, seed,
        noise_level (fT), F_0 .. F_{n_layers-1}``.
    """
    from .inverse.kernels import geodesic_kernel
    from .simulate import active_samples, patch_weights

    settings = (settings or SweepSettings()).resolved(model.time)
    nl, nv = model.n_layers, model.n_vertices
    columns = np.atleast_1d(np.asarray(columns, dtype=int))
    if columns.size == 0 or columns.min() < 0 or columns.max() >= nv:
        raise LamegValueError(f"columns must be vertex indices within a layer (0..{nv - 1})")
    layers = np.arange(nl) if layers is None else np.atleast_1d(np.asarray(layers, dtype=int))
    if layers.min() < 0 or layers.max() >= nl:
        raise LamegValueError(f"layers must be within 0..{nl - 1}")
    snrs = [float(s) for s in np.atleast_1d(snrs)]
    jitters = [float(j) for j in np.atleast_1d(jitters)]
    if any(j > 0 for j in jitters) and (model.forward is None or model.fiducials is None):
        raise LamegValueError("co-registration errors need model.forward and model.fiducials")
    if backend not in ("joblib", "dask", "serial"):
        raise LamegValueError("backend must be 'joblib', 'dask' or 'serial'")

    # patterns of every simulated source (true forward model)
    src = (layers[:, None] * nv + columns[None, :]).ravel()  # layer-major
    q = patch_weights(model.vertices, model.faces, src, settings.sim_patch_size,
                      settings.dipole_moment)
    patterns = np.asarray((q.T @ model.gain.T).T)
    pattern_index = {(int(lay), int(col)): i for i, (lay, col) in
                     enumerate((s // nv, s % nv) for s in src)}
    # per-layer inversion kernels (what the per-layer mesh files give)
    kernels = []
    for e in progress(range(nl), verbose, desc="kernels"):
        v, f = model.layer_mesh(e)
        kernels.append(sp.csc_matrix(geodesic_kernel(v, f, settings.patch_size, 1,
                                                     cache_dir=kernel_cache_dir)))
    # forward models: true + one per (jitter level, repeat)
    gains = {"true": model.gain}
    for ji, jit in enumerate(jitters):
        if jit == 0:
            continue
        for r in range(n_repeats):
            fid = perturb_fiducials(model.fiducials, jit, np.random.default_rng(
                [int(seed), 7919, ji, r]))
            logger.info("forward model for %.2f mm co-registration error (repeat %d)", jit, r)
            gains[(ji, r)] = np.asarray(model.forward(fid), dtype=np.float64)
    cells = []
    for ci, col in enumerate(columns):
        for li, lay in enumerate(layers):
            for si, snr in enumerate(snrs):
                for ji, jit in enumerate(jitters):
                    for r in range(n_repeats):
                        cells.append(dict(
                            column=int(col), layer=int(lay), snr=snr, jitter=jit, repeat=r,
                            seed=_cell_seed(seed, ci, li, si, ji, r),
                            pattern=pattern_index[(int(lay), int(col))],
                            gain_key="true" if jit == 0 else (ji, r)))
    ctx = dict(settings=settings, time=model.time, fsample=model.fsample, n_layers=nl, n_vertices=nv,
               conditions=model.conditions, patterns=patterns,
               active=active_samples(model.time, settings.sim_woi),
               signal_rows=model.signal_rows, n_channels_total=model.n_channels_total,
               gains=gains, kernels=kernels, thickness=model.thickness,
               inversion=_inversion_settings(settings, model.time))
    serial = backend == "serial" or (backend == "joblib" and n_jobs == 1)
    ctx["blas_threads"] = (None if serial else 1) if blas_threads == -1 else blas_threads
    workers = n_jobs if backend == "joblib" else 1
    if backend == "dask":
        client = client or _dask_client()
        workers = max(1, sum(client.nthreads().values()))
    if batch_size is None:
        batch_size = max(1, int(np.ceil(len(cells) / (4 * max(1, workers)))))
    batches = [cells[i:i + batch_size] for i in range(0, len(cells), batch_size)]
    if serial:
        out = [_run_batch(ctx, b) for b in progress(batches, verbose, desc="sweep")]
    elif backend == "joblib":
        from joblib import Parallel, delayed

        out = Parallel(n_jobs=n_jobs, verbose=10 if verbose else 0)(
            delayed(_run_batch)(ctx, b) for b in batches)
    else:
        ctx_f = client.scatter(ctx, broadcast=True)
        futures = client.map(_run_batch, [ctx_f] * len(batches), batches, pure=False)
        out = client.gather(futures)
    rows = [r for batch in out for r in batch]
    return _table(rows)


def _dask_client():
    try:
        from distributed import get_client
    except ImportError as err:  # pragma: no cover
        raise LamegValueError("backend='dask' needs the 'distributed' package "
                              "(pip install lameg[dask])") from err
    try:
        return get_client()
    except ValueError as err:
        raise LamegValueError("backend='dask' needs a running distributed.Client: pass "
                              "client=Client(...) or create one first") from err


# ============================================================================================
# Synthetic participant (tests, examples, benchmark fallback)
# ============================================================================================


@dataclass
class _SphereForward:
    """Sphere-model gain of a fixed MRI-space mesh for given MRI fiducials (picklable)."""

    vertices_mm: np.ndarray
    orientations: np.ndarray
    fid_meg_mm: np.ndarray
    sensors: Any
    origin_m: np.ndarray

    def __call__(self, fiducials: np.ndarray) -> np.ndarray:
        from .forward.coreg import apply_transform, rigid_transform
        from .forward.gain import compute_gain
        from .forward.sphere import SphereModel

        m1 = rigid_transform(self.fid_meg_mm, _fid_array(fiducials))  # head -> MRI
        to_head = np.linalg.inv(m1)
        pos = apply_transform(self.vertices_mm, to_head) / 1000.0
        ori = self.orientations @ to_head[:3, :3].T
        return compute_gain(pos, ori, self.sensors, SphereModel(self.origin_m, 0.09))


def synthetic_model(n_layers: int = 3, n_side: int = 24, extent_mm: float = 50.0,
                    depth_mm: float = 70.0, fold_mm: float = 5.0, fold_period_mm: float = 20.0,
                    thickness_mm: float = 2.5, n_sensors: int = 120, n_trials: int = 20,
                    n_samples: int = 121, fsample: float = 600.0) -> LaminarModel:
    """A small folded cortical sheet under a helmet of radial magnetometers (sphere model).

    The pial surface is a sheet at height ``depth_mm`` above the sphere centre, folded along x
    (``fold_mm * sin(2 pi x / fold_period_mm)``); deeper layers are displaced along the inward
    normal up to ``thickness_mm`` (white); orientations are link vectors (pial -> white, fixed
    across layers). Head frame = MRI frame; fiducials on a 80 mm circle. Gains are exact
    single-sphere fields (fT per nA m).

    Returns
    -------
    LaminarModel
        With ``forward`` set (co-registration errors supported).
    """
    from .forward.sensors import SensorArray

    x = np.linspace(-extent_mm / 2, extent_mm / 2, n_side)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    z = depth_mm + fold_mm * np.sin(2 * np.pi * xx / fold_period_mm)
    pial = np.stack([xx.ravel(), yy.ravel(), z.ravel()], axis=1)
    dzdx = (fold_mm * 2 * np.pi / fold_period_mm) * np.cos(2 * np.pi * xx / fold_period_mm)
    normal = np.stack([-dzdx.ravel(), np.zeros(dzdx.size), np.ones(dzdx.size)], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)  # outward (up)
    white = pial - thickness_mm * normal
    frac = np.linspace(1.0, 0.0, n_layers)  # 1 = pial
    verts = np.concatenate([white + f * (pial - white) for f in frac], axis=0)
    link = (white - pial) / thickness_mm
    ori = np.tile(link, (n_layers, 1))
    i, j = np.meshgrid(np.arange(n_side - 1), np.arange(n_side - 1), indexing="ij")
    a = (i * n_side + j).ravel()
    b, c, d = a + n_side, a + 1, a + n_side + 1
    tri = np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)], axis=0)
    nv = pial.shape[0]
    faces = np.concatenate([tri + k * nv for k in range(n_layers)], axis=0)
    # helmet: Fibonacci points on the upper hemisphere, radius 115 mm, radial magnetometers
    k = np.arange(n_sensors) + 0.5
    zc = 0.15 + 0.85 * k / n_sensors
    phi = np.pi * (1 + 5**0.5) * k
    rc = np.sqrt(1 - zc**2)
    dirs = np.stack([rc * np.cos(phi), rc * np.sin(phi), zc], axis=1)
    sensors = SensorArray(coilpos=0.115 * dirs, coilori=dirs, tra=np.eye(n_sensors),
                          labels=[f"MEG{i:03d}" for i in range(n_sensors)],
                          chanunit=["T"] * n_sensors, chantype=["megmag"] * n_sensors)
    fid = np.array([[0.0, 80.0, 0.0], [-80.0, 0.0, 0.0], [80.0, 0.0, 0.0]])
    fwd = _SphereForward(verts, ori, fid.copy(), sensors, np.zeros(3))
    gain = fwd(fid)
    time = np.arange(n_samples) / fsample - (n_samples // 2) / fsample
    return LaminarModel(gain=gain, vertices=verts, faces=faces, n_layers=n_layers, time=time,
                        conditions=["sim"] * n_trials, fiducials=fid, forward=fwd,
                        fsample=float(fsample))


# ============================================================================================
# Plots
# ============================================================================================


def _col(table, key) -> np.ndarray:
    return np.asarray(table[key])


NOISE_ONLY_DB = -200.0
"""SNRs at or below this (dB) are labelled "noise only" in plots."""


def plot_error_vs_snr(table, ax=None, n_layers: int | None = None, by: str = "jitter"):
    """Mean layer error (+/- s.e.m.) against SNR, one line per co-registration error.

    Parameters
    ----------
    table : DataFrame or dict
        Output of :func:`run_laminar_sweep`.
    ax : matplotlib Axes, optional
    n_layers : int, optional
        Draws the uniform-chance level (n^2 - 1) / (3n) (default from the F columns).
    by : str
        Column that splits the lines.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    snr, err, grp = _col(table, "snr"), _col(table, "error_layers"), _col(table, by)
    if n_layers is None:
        n_layers = sum(1 for k in (table.keys() if hasattr(table, "keys") else table)
                       if str(k).startswith("F_"))
    # SNR levels on an even categorical axis: noise-only runs use a huge negative SNR
    # (e.g. -500 dB) that would squash every other level on a linear axis
    levels = np.unique(snr)
    pos = {x: i for i, x in enumerate(levels)}
    for g in np.unique(grp):
        sel = grp == g
        xs = np.unique(snr[sel])
        m = np.array([err[sel & (snr == x)].mean() for x in xs])
        se = np.array([err[sel & (snr == x)].std(ddof=1) / np.sqrt(max(1, np.sum(sel & (snr == x))))
                       if np.sum(sel & (snr == x)) > 1 else 0.0 for x in xs])
        ax.errorbar([pos[x] for x in xs], m, yerr=se, marker="o", capsize=3,
                    label=f"{by} = {g:g}")
    if n_layers:
        ax.axhline(chance_error(n_layers), color="grey", ls="--", label="chance")
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels(["noise only" if x <= NOISE_ONLY_DB else f"{x:g}" for x in levels])
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("layer error (layers)")
    ax.legend(fontsize=8)
    return ax


def plot_confusion(table, ax=None, n_layers: int | None = None, normalize: bool = True):
    """Confusion matrix of true (columns) versus estimated (rows) layer.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    true, est = _col(table, "true_layer").astype(int), _col(table, "est_layer").astype(int)
    if n_layers is None:
        n_layers = int(max(true.max(), est.max()) + 1)
    m = np.zeros((n_layers, n_layers))
    np.add.at(m, (est, true), 1.0)
    if normalize:
        tot = m.sum(axis=0, keepdims=True)
        m = np.divide(m, tot, out=np.zeros_like(m), where=tot > 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.5))
    im = ax.imshow(m, origin="upper", cmap="viridis", vmin=0)
    ax.set_xlabel("simulated layer")
    ax.set_ylabel("estimated layer")
    ax.figure.colorbar(im, ax=ax, label="proportion" if normalize else "count")
    return ax
