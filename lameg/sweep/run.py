"""Laminar-accuracy sweeps: simulate in every layer of many columns, compare layer models.

For each cell (cortical column x generating layer x SNR x co-registration error x repeat) a
current-density patch is simulated in one layer (:mod:`lameg.simulate`), the data are inverted
once per layer model, and the layer with the highest free energy is the estimate (Szul et al.
2025 protocol, see the simulation-protocols reference).

The sweep works **in memory**: it holds the multilayer gain matrix, the per-layer patch kernels
and the template's time axis, and never writes a dataset. It follows exactly the maths of the
file-based path (``run_current_density_simulation`` followed by
:func:`lameg.laminar.model_comparison`):

* the same patch weights (:func:`lameg.simulate.patch_weights`, taken from the layer's
  normalised geodesic kernel, which it equals) and noise stream
  (``numpy.random.default_rng(seed)``, one ``(n_channels, n_samples)`` block per trial, every
  channel of the template), the same float32 rounding of the stored data and of the average;
* per layer model, the layer's columns of the multilayer gain (what ``coregister`` computes for
  that layer's mesh: same positions, same orientations) and the layer mesh's geodesic kernel;
* the same array-level engine (:func:`lameg.inverse.invert_classic`) with the settings
  :func:`lameg.invert.invert_msp` / ``invert_ebb`` use (spatial modes, integer-ms window, DCT
  band, Hanning, temporal modes, priors); for MSP by default through its compressed-frame
  equivalent :func:`lameg.inverse.lowrank.model_free_energies` (same free energies to
  rounding, the data reduction shared by the layer models).

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._utils import logger, progress
from ..exceptions import LamegValueError
from .fiducials import perturb_fiducials
from .model import LaminarModel

MAX_BATCH = 64
"""Largest default number of cells per task (about 10 s of work)."""


@dataclass
class SweepSettings:
    """Simulation and inversion settings of a sweep (defaults: Szul et al. 2025, MSP).

    Parameters
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
    fast : bool
        MSP: free energies from the compressed frame (:mod:`lameg.inverse.lowrank`, equal to
        the engine's to ~1e-9 relative, about 20 times faster); False runs
        :func:`lameg.inverse.invert_classic` per layer model (reference path).
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
    fast: bool = True

    def resolved(self, time_s: np.ndarray) -> SweepSettings:
        """Settings with the defaults that depend on the template's time axis filled in.

        Parameters
        ----------
        time_s : ndarray (n_samples,)
            Template time axis, s.

        Returns
        -------
        SweepSettings
        """
        from ..simulate import active_samples

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
    """Expected ``|true - estimated|`` for uniformly random estimates: (n^2 - 1) / (3n).

    Parameters
    ----------
    n_layers : int

    Returns
    -------
    float
        Layers.
    """
    return (n_layers**2 - 1) / (3.0 * n_layers)


def _cell_seed(seed: int, *idx: int) -> int:
    return int(np.random.SeedSequence([int(seed), *map(int, idx)]).generate_state(1)[0])


def _inversion_settings(settings: SweepSettings, time_s: np.ndarray) -> dict:
    from ..inverse.modes import truncate_woi

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


def _simulate(ctx: dict, cell: dict):
    """Simulated data of one cell as the file path stores them -> (data, trials, noise)."""
    from ..simulate import simulate_trials

    st: SweepSettings = ctx["settings"]
    pattern = ctx["patterns"][:, cell["pattern"]][:, None]
    sim = simulate_trials(pattern, np.eye(1), st.signal[None, :], ctx["active"],
                          len(ctx["time"]), len(ctx["conditions"]), cell["snr"],
                          st.noise_color, np.random.default_rng(cell["seed"]),
                          signal_rows=ctx["signal_rows"],
                          n_channels_total=ctx["n_channels_total"])
    data = sim.data[ctx["signal_rows"]]
    groups = ctx["groups"]
    if st.average_trials:
        data = np.stack([data[:, :, g].astype(np.float64).mean(axis=2) for g in groups],
                        axis=2).astype(np.float32)
        trials = [np.array([i]) for i in range(len(groups))]
    else:
        trials = groups
    return data, trials, sim.noise_level


def _layer_free_energies(ctx: dict, data, trials, column: int, gain_key) -> np.ndarray:
    """Free energy of every layer model for one simulated dataset."""
    from ..inverse import invert_classic
    from ..inverse.lowrank import model_free_energies

    st: SweepSettings = ctx["settings"]
    n_layers, nv = ctx["n_layers"], ctx["n_vertices"]
    gain = ctx["gains"][gain_key]
    leads = [gain[:, e * nv:(e + 1) * nv] for e in range(n_layers)]
    projectors = ctx["projectors"][gain_key]
    inv = ctx["inversion"]
    common = dict(trials=trials, woi=inv["wois"], lpf=inv["lpf"], hpf=inv["hpf"],
                  hanning=st.hann_windowing, n_temp_modes=st.n_temp_modes,
                  fsample=ctx["fsample"])
    if st.method == "MSP" and st.fast:
        return model_free_energies(leads, data, ctx["time"], kernels=ctx["kernels"],
                                   Ip=np.array([column]), projectors=projectors,
                                   inv_type="MSP", **common)[:, 0]
    F = np.empty(n_layers)
    for e in range(n_layers):
        Ip = np.array([column]) if st.method == "MSP" else None
        res = invert_classic(leads[e], data, ctx["time"], inv_type=st.method,
                             QG=ctx["kernels"][e], A=projectors[e], Ip=Ip, n_layers=1,
                             keep_M="none", **common)
        F[e] = res.F[0]
    return F


def _run_cells(ctx: dict, cells: list) -> list[dict]:
    n_layers = ctx["n_layers"]
    rows = []
    for cell in cells:
        data, trials, noise = _simulate(ctx, cell)
        F = _layer_free_energies(ctx, data, trials, cell["column"], cell["gain_key"])
        est = int(np.argmax(F))
        row = dict(column=cell["column"], true_layer=cell["layer"], est_layer=est,
                   error_layers=abs(est - cell["layer"]), bias_layers=cell["layer"] - est,
                   error_mm=abs(est - cell["layer"]) * ctx["thickness"][cell["column"]]
                   / (n_layers - 1),
                   snr=cell["snr"], jitter=cell["jitter"], repeat=cell["repeat"],
                   seed=cell["seed"], noise_level=noise)
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


def _projectors(gain: np.ndarray, n_layers: int, nv: int, n_spatial_modes) -> list:
    """Per-layer spatial projectors; 'all' shares one identity (and so the data reduction)."""
    from ..inverse.lowrank import layer_projector

    if n_spatial_modes == "all":
        return [np.eye(gain.shape[0])] * n_layers
    return [layer_projector(gain[:, e * nv:(e + 1) * nv], n_spatial_modes)
            for e in range(n_layers)]


def execute(fn: Callable, ctx: dict, batches: list, *, backend: str = "joblib",
            n_jobs: int = 1, client: Any = None, verbose: bool = False,
            desc: str = "cells") -> list:
    """Run ``fn(ctx, batch)`` for every batch, serially, with joblib or on a Dask cluster.

    Parameters
    ----------
    fn : callable
        Picklable ``fn(ctx, batch) -> list``.
    ctx : dict
        Shared context (sent once to every worker).
    batches : list
    backend : {'joblib', 'dask', 'serial'}
    n_jobs : int
        joblib workers (``backend='joblib'``).
    client : distributed.Client, optional
        Dask client (default: the current one).
    verbose : bool
        Progress bar over finished batches (all back ends).
    desc : str
        Progress-bar label.

    Returns
    -------
    list
        ``fn`` outputs in batch order (independent of the back end and of completion order).
    """
    if backend not in ("joblib", "dask", "serial"):
        raise LamegValueError("backend must be 'joblib', 'dask' or 'serial'")
    if backend == "serial" or (backend == "joblib" and n_jobs == 1):
        return [fn(ctx, b) for b in progress(batches, verbose, desc=desc)]
    if backend == "joblib":
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(ctx, b)
                                                             for b in batches)
        return list(progress(gen, verbose, desc=desc, total=len(batches)))
    from distributed import as_completed

    client = client or dask_client()
    ctx_f = client.scatter(ctx, broadcast=True)
    futures = client.map(fn, [ctx_f] * len(batches), batches, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    out: list = [None] * len(batches)
    for fut in progress(as_completed(futures), verbose, desc=desc, total=len(batches)):
        out[index[fut.key]] = fut.result()
    return out


def dask_client():
    """The current ``distributed.Client`` (raises a clear error when there is none)."""
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


def n_workers(backend: str, n_jobs: int, client: Any) -> int:
    """Number of parallel workers of a back end (for batch sizes).

    Parameters
    ----------
    backend : str
        'dask', 'joblib' or anything else (serial).
    n_jobs : int
        Number of joblib workers (used with ``backend='joblib'``).
    client : distributed.Client or None
        Dask client (``backend='dask'``); None uses the running one.

    Returns
    -------
    int
        Dask threads in total, ``n_jobs`` for joblib, 1 otherwise (at least 1 for dask).
    """
    if backend == "dask":
        client = client or dask_client()
        return max(1, sum(client.nthreads().values()))
    return n_jobs if backend == "joblib" else 1


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
    client : distributed.Client, optional
    batch_size : int, optional
        Cells per task (default: about 4 tasks per worker, at most ``MAX_BATCH`` = 64).
    kernel_cache_dir : path, optional
        Cache of geodesic kernels.
    blas_threads : int, None or -1
        BLAS threads per task (needs ``threadpoolctl``). -1 (default): 1 thread for parallel
        back ends (one task per core is faster than threaded BLAS on small matrices), unlimited
        for serial runs; None: never limit.
    verbose : bool
        Progress bars (kernels, forward models, finished batches).

    Returns
    -------
    pandas.DataFrame (or dict of arrays without pandas)
        One row per cell: ``column, true_layer, est_layer, error_layers, bias_layers
        (true - estimated; > 0 = estimate more superficial), error_mm, snr, jitter, repeat, seed,
        noise_level (fT), F_0 .. F_{n_layers-1}``.
    """
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
    ctx = _context(model, columns, layers, settings, kernel_cache_dir, verbose)
    # forward models: true + one per (jitter level, repeat)
    for ji, jit in enumerate(jitters):
        if jit == 0:
            continue
        for r in range(n_repeats):
            fid = perturb_fiducials(model.fiducials, jit, np.random.default_rng(
                [int(seed), 7919, ji, r]))
            logger.info("forward model for %.2f mm co-registration error (repeat %d)", jit, r)
            g = np.asarray(model.forward(fid), dtype=np.float64)
            ctx["gains"][(ji, r)] = g
            ctx["projectors"][(ji, r)] = _projectors(g, nl, nv, settings.n_spatial_modes)
    cells = []
    for ci, col in enumerate(columns):
        for li, lay in enumerate(layers):
            for si, snr in enumerate(snrs):
                for ji, jit in enumerate(jitters):
                    for r in range(n_repeats):
                        cells.append(dict(
                            column=int(col), layer=int(lay), snr=snr, jitter=jit, repeat=r,
                            seed=_cell_seed(seed, ci, li, si, ji, r),
                            pattern=ctx["pattern_index"][(int(lay), int(col))],
                            gain_key="true" if jit == 0 else (ji, r)))
    serial = backend == "serial" or (backend == "joblib" and n_jobs == 1)
    ctx["blas_threads"] = (None if serial else 1) if blas_threads == -1 else blas_threads
    workers = n_workers(backend, n_jobs, client)
    if batch_size is None:
        # about 4 tasks per worker, at most MAX_BATCH cells per task (a few seconds of work:
        # fine-grained progress and load balancing on large maps; results do not depend on it)
        batch_size = max(1, min(MAX_BATCH, int(np.ceil(len(cells) / (4 * max(1, workers))))))
    batches = [cells[i:i + batch_size] for i in range(0, len(cells), batch_size)]
    out = execute(_run_batch, ctx, batches, backend=backend, n_jobs=n_jobs, client=client,
                  verbose=verbose, desc="sweep")
    return _table([r for batch in out for r in batch])


def _context(model: LaminarModel, columns, layers, settings: SweepSettings,
             kernel_cache_dir, verbose: bool) -> dict:
    """Everything the cells share: source patterns, kernels, projectors, inversion settings."""
    from ..inverse import geodesic_kernel
    from ..simulate import active_samples

    nl, nv = model.n_layers, model.n_vertices
    # per-layer inversion kernels (what the per-layer mesh files give)
    kernels = []
    for e in progress(range(nl), verbose, desc="kernels"):
        v, f = model.layer_mesh(e)
        kernels.append(sp.csc_matrix(geodesic_kernel(v, f, settings.patch_size, 1,
                                                     cache_dir=kernel_cache_dir)))
    # sensor patterns of every simulated source (true forward model): the simulation patch
    # of a vertex is moment x its normalised geodesic kernel column on its layer
    # (lameg.simulate.patch_weights), so whole layers of patches come from one kernel
    if settings.sim_patch_size == settings.patch_size:
        sim_kernels = kernels
    else:
        sim_kernels = [sp.csc_matrix(geodesic_kernel(*model.layer_mesh(e),
                                                     settings.sim_patch_size, 1,
                                                     cache_dir=kernel_cache_dir))
                       if e in set(layers.tolist()) else None for e in range(nl)]
    ncol = columns.size
    patterns = np.empty((model.gain.shape[0], layers.size * ncol))
    for li, lay in enumerate(layers):
        q = sim_kernels[lay][:, columns] * settings.dipole_moment
        g = model.gain[:, lay * nv:(lay + 1) * nv]
        patterns[:, li * ncol:(li + 1) * ncol] = np.asarray((q.T @ g.T).T)
    pattern_index = {(int(lay), int(col)): li * ncol + ci for li, lay in enumerate(layers)
                     for ci, col in enumerate(columns)}
    _, groups = _trial_groups(model.conditions)
    return dict(settings=settings, time=model.time, fsample=model.fsample, n_layers=nl,
                n_vertices=nv, conditions=model.conditions, groups=groups, patterns=patterns,
                pattern_index=pattern_index, active=active_samples(model.time, settings.sim_woi),
                signal_rows=model.signal_rows, n_channels_total=model.n_channels_total,
                gains={"true": model.gain},
                projectors={"true": _projectors(model.gain, nl, nv, settings.n_spatial_modes)},
                kernels=kernels, thickness=model.thickness,
                inversion=_inversion_settings(settings, model.time))
