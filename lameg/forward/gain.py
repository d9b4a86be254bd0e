"""Gain-matrix assembly as ``spm_eeg_lgainmat`` / ``ft_compute_leadfield`` do it, vectorised.

For every source: the three-column lead field of unit x/y/z dipoles at the channels (T or T/m per
A m), rank reduction to 2 (the near-silent radial direction removed, ``reducerank = 2`` with
back-projection, FieldTrip's default for MEG), conversion to the data units per nA m, and
projection on the source orientation. Sources are processed in blocks (batched NumPy/BLAS, no
loop over single vertices), and a content-addressed cache stores finished blocks on disk so that
an unchanged mesh/sensor/head-model/transform combination is never recomputed.

Cache location: the ``cache`` argument, else ``<cache root>/gain`` (:mod:`lameg._cache`). Entries
are verified ``<key>.npz`` files, ``key`` a SHA-1 of the source positions and orientations, the
sensors (coils, ``tra``, labels, units), the head model and the options.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._cache import load_entry, save_entry
from .._docs import fill_doc
from .._utils import hash_arrays, logger, progress
from ..exceptions import LamegValueError
from .sensors import SensorArray, unit_scale

__all__ = [
    "compute_leadfield",
    "compute_gain",
    "reduce_rank_project",
    "default_cache_dir",
    "default_chanunits",
    "spm_cond_units",
    "clear_gain_cache",
]


def default_cache_dir() -> Path:
    """The gain-block cache folder, ``<cache root>/gain`` (see :mod:`lameg._cache`).

    Returns
    -------
    pathlib.Path
        The folder (``LAMEG_CACHE_DIR/gain`` when that variable is set).
    """
    from .._cache import cache_dir

    return cache_dir("gain")


def clear_gain_cache(cache_dir: str | os.PathLike | None = None) -> int:
    """Delete the cached gain blocks in ``cache_dir`` (default location).

    Parameters
    ----------
    cache_dir : path-like or None
        The folder (default :func:`default_cache_dir`).

    Returns
    -------
    int
        Number of files removed.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    n = 0
    for f in [*folder.glob("*.npz"), *folder.glob("*.npy")]:
        f.unlink()
        n += 1
    return n


@fill_doc
def default_chanunits(sensors: SensorArray) -> list[str]:
    """SPM's data units: fT for magnetometers/axial gradiometers, fT/mm for planar gradiometers.

    Parameters
    ----------
    %(sensors)s

    Returns
    -------
    list of str
        ``'fT/mm'`` for every ``'T/m'`` channel, ``'fT'`` otherwise, in channel order.
    """
    return ["fT/mm" if u == "T/m" else "fT" for u in sensors.chanunit]


def _auto_block(n_coils: int, n_chan: int) -> int:
    # keep each (block, 3, n_coils) float64 temporary around ~24 MB
    return int(max(64, min(4096, 1_000_000 // max(1, 3 * max(n_coils, n_chan)))))


def compute_leadfield(
    positions: np.ndarray,
    sensors: SensorArray,
    headmodel,
    block_size: int | None = None,
) -> np.ndarray:
    """Free-orientation channel lead fields in SI units (no rank reduction).

    Parameters
    ----------
    positions : ndarray, shape (n_src, 3)
        Dipole positions, m, MEG head frame.
    sensors : SensorArray
        Channels (last axis of the result, in ``sensors.labels`` order).
    headmodel : SphereModel | LocalSpheresModel | SingleShellModel | BEMModel
        Any object with ``coil_leadfield(pos, sensors) -> (n, 3, n_coils)``.
    block_size : int, optional
        Sources per vectorised block (default: ~24 MB temporaries).

    Returns
    -------
    ndarray, shape (n_src, 3, n_channels)
        T (or T/m) per A m.
    """
    pos = _check_positions(positions)
    bs = block_size or _auto_block(sensors.n_coils, sensors.n_channels)
    out = np.empty((len(pos), 3, sensors.n_channels))
    chan = _ChannelMap(sensors.tra)
    for start in range(0, len(pos), bs):
        sl = slice(start, start + bs)
        out[sl] = _channel_lf(headmodel, pos[sl], sensors, chan)
    return out


def reduce_rank_project(lf: np.ndarray, orientations: np.ndarray, reducerank: int | None = 2):
    """Rank-reduce each source's (3, n_chan) lead field and project it on its orientation.

    Equivalent to FieldTrip's ``[u, s, v] = svd(lf); s(3, 3) = 0; lf = u s v'`` followed by
    ``lf @ n``: with ``v3`` the weakest right singular vector, ``lf (I - v3 v3') n``.

    Parameters
    ----------
    lf : ndarray, shape (n_src, 3, n_chan)
        Free-orientation lead fields (:func:`compute_leadfield`).
    orientations : ndarray, shape (n_src, 3)
        Source orientations (unit vectors).
    reducerank : int or None
        2 (SPM/FieldTrip MEG default) or None/3 for no reduction.

    Returns
    -------
    ndarray, shape (n_chan, n_src)
        Fixed-orientation lead fields, in the units of ``lf``.
    """
    n = np.asarray(orientations, dtype=float)
    if reducerank not in (None, 2, 3):
        raise LamegValueError("reducerank must be 2, 3 or None")
    lt = lf.transpose(1, 2, 0)
    if not lt.flags.c_contiguous:
        lt = None
    if reducerank in (None, 3):
        return _project(lf, lt, n)
    # Gram matrices of the sources' three lead-field rows, shape (n_src, 3, 3)
    if lt is None:
        gram = lf @ lf.transpose(0, 2, 1)
    else:  # laid out (3, n_chan, n_src): channel sums of whole rows
        gram = np.empty((lf.shape[0], 3, 3))
        for j in range(3):
            for k in range(j, 3):
                gram[:, j, k] = gram[:, k, j] = np.einsum("cs,cs->s", lt[j], lt[k])
    _, vecs = np.linalg.eigh(gram)
    v3 = vecs[:, :, 0]
    n_eff = n - v3 * np.einsum("sk,sk->s", v3, n)[:, None]
    return _project(lf, lt, n_eff)


def _project(lf: np.ndarray, lt: np.ndarray | None, n: np.ndarray) -> np.ndarray:
    """``sum_k lf[s, k, c] n[s, k]``, shape (n_chan, n_src); ``lt``: ``lf`` as (3, n_chan, n_src)."""
    if lt is None:
        return np.einsum("skc,sk->cs", lf, n)
    out = lt[0] * n[:, 0]
    for k in (1, 2):
        out += lt[k] * n[:, k]
    return out


class _ChannelMap:
    """Applies ``tra`` to (n, 3, n_coils) coil lead fields; sparse when ``tra`` is sparse."""

    def __init__(self, tra: np.ndarray) -> None:
        density = np.count_nonzero(tra) / max(1, tra.size)
        self.sparse = density < 0.2
        self.tra = sp.csr_matrix(tra) if self.sparse else None
        self.tra_t = None if self.sparse else np.ascontiguousarray(tra.T)
        self.n_chan = tra.shape[0]

    def __call__(self, coil_lf: np.ndarray) -> np.ndarray:
        if not self.sparse:
            return coil_lf @ self.tra_t
        n, k, nc = coil_lf.shape
        out = self.tra @ coil_lf.reshape(n * k, nc).T  # (n_chan, n*3)
        return np.ascontiguousarray(out.T).reshape(n, k, self.n_chan)


def single_threaded_blas():
    """Context limiting BLAS to one thread (when ``threadpoolctl`` is installed).

    Used around lameg's own worker threads so that BLAS and the workers do not oversubscribe
    the CPUs (OpenBLAS threads busy-wait).

    Returns
    -------
    contextlib.AbstractContextManager
        ``threadpoolctl.threadpool_limits(limits=1, user_api='blas')``, or a context that does
        nothing when ``threadpoolctl`` is not installed.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _channel_lf(headmodel, pos: np.ndarray, sensors: SensorArray, chan: _ChannelMap):
    if hasattr(headmodel, "channel_leadfield"):  # the model combines its coils itself
        return headmodel.channel_leadfield(pos, sensors)
    return chan(headmodel.coil_leadfield(pos, sensors))


def _n_workers(n_jobs: int | None) -> int:
    if n_jobs is None:
        return max(1, min(8, os.cpu_count() or 1))
    n = int(n_jobs)
    if n < 0:
        n = max(1, (os.cpu_count() or 1) + 1 + n)
    return max(1, n)


def _check_positions(positions) -> np.ndarray:
    pos = np.atleast_2d(np.asarray(positions, dtype=float))
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise LamegValueError(f"source positions must have shape (n, 3), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise LamegValueError("source positions contain NaN or Inf")
    if len(pos) and np.abs(pos).max() > 1.0:
        raise LamegValueError(
            "source positions exceed 1 m in magnitude; they must be in metres (head frame)"
        )
    return pos


def _gain_cache_limit_mb() -> float:
    raw = os.environ.get("LAMEG_GAIN_CACHE_MAX_MB", "256")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise LamegValueError(f"LAMEG_GAIN_CACHE_MAX_MB={raw!r} is not a size in MB (a number "
                              ">= 0); unset it for the default 256")
    return value


def compute_gain(
    positions: np.ndarray,
    orientations: np.ndarray,
    sensors: SensorArray,
    headmodel,
    *,
    chanunits: list[str] | None = None,
    reducerank: int | None = 2,
    block_size: int | None = None,
    cache: bool | str | os.PathLike = False,
    cache_block: int = 16384,
    n_jobs: int | None = None,
    verbose: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Fixed-orientation gain matrix in data units per nA m (SPM's ``G``).

    Parameters
    ----------
    positions : ndarray, shape (n_src, 3)
        Source positions, m, MEG head frame.
    orientations : ndarray, shape (n_src, 3)
        Source orientations (unit vectors, head frame).
    sensors : SensorArray
        Channels (rows of the result, in ``sensors.labels`` order).
    headmodel : SphereModel | LocalSpheresModel | SingleShellModel | BEMModel
        Volume conductor (see :func:`compute_leadfield`).
    chanunits : list of str, optional
        Data unit per channel (default :func:`default_chanunits`: fT, fT/mm).
    reducerank : int or None
        2 as SPM (default); None for the full-rank lead field.
    block_size : int, optional
        Sources per vectorised block.
    cache : bool or path
        False: no disk cache. True: :func:`default_cache_dir`, for gains of at most
        ``$LAMEG_GAIN_CACHE_MAX_MB`` (default 256 MB; a full-resolution multilayer gain would add
        about a gigabyte to the cache at every co-registration, and writing it costs seconds).
        A path: that folder, whatever the size. Blocks of ``cache_block`` sources are stored
        under their content hash, so changing one layer of a multilayer mesh recomputes only
        that layer's blocks.
    cache_block : int
        Sources per cache entry (and per progress step), >= 1.
    n_jobs : int or None
        Worker threads for the source blocks (None: the number of CPUs, at most 8).
    verbose : bool
        Progress bar.
    out : ndarray, shape (n_channels, n_src), float64, optional
        Where to write the gain (e.g. the map of its file from
        :func:`lameg.io.spm_inv.head_model_writer`); column-major is fastest.

    Returns
    -------
    ndarray, shape (n_channels, n_src), float64
        Gain (``out`` when given) in e.g. fT/(nA m), column-major (one source's channels are
        contiguous, as in MATLAB and SPM's gain files).
    """
    pos = _check_positions(positions)
    ori = np.atleast_2d(np.asarray(orientations, dtype=float))
    if ori.shape != pos.shape:
        raise LamegValueError(f"orientations {ori.shape} do not match positions {pos.shape}")
    if not np.all(np.isfinite(ori)):
        bad = int(np.sum(~np.all(np.isfinite(ori), axis=1)))
        raise LamegValueError(
            f"{bad} source orientations are NaN/Inf (e.g. zero-length link vectors normalised "
            "by zero); fix the mesh orientations"
        )
    units = chanunits or default_chanunits(sensors)
    if len(units) != sensors.n_channels:
        raise LamegValueError("chanunits must give one unit per channel")
    row_scale = np.array([unit_scale(si, u) for si, u in zip(sensors.chanunit, units)]) / 1e9
    bs = block_size or getattr(headmodel, "preferred_block", None) or _auto_block(
        sensors.n_coils, sensors.n_channels)
    chan = _ChannelMap(sensors.tra)
    if out is None:
        G = np.empty((sensors.n_channels, len(pos)), order="F")  # column-major, as MATLAB
    else:
        G = out
        if not (isinstance(G, np.ndarray) and G.dtype == np.float64 and G.flags.writeable
                and G.shape == (sensors.n_channels, len(pos))):
            raise LamegValueError(f"out must be a writable float64 array of shape "
                                  f"{(sensors.n_channels, len(pos))}")

    cache_dir = None
    limit_mb = _gain_cache_limit_mb()
    if cache is True and G.nbytes > limit_mb * 2**20:
        logger.info("gain of %.0f MB not cached (LAMEG_GAIN_CACHE_MAX_MB = %g)",
                    G.nbytes / 2**20, limit_mb)
        cache = False
    if cache:
        cache_dir = default_cache_dir() if cache is True else Path(cache)
        common = "|".join([
            sensors.hash(), headmodel.cache_key(), str(reducerank), ",".join(units), "v2",
        ])

    workers = _n_workers(n_jobs) if getattr(headmodel, "thread_safe", True) else 1

    def _sub(s0: int, s1: int) -> None:
        lf = _channel_lf(headmodel, pos[s0:s1], sensors, chan)
        np.multiply(reduce_rank_project(lf, ori[s0:s1], reducerank), row_scale[:, None],
                    out=G[:, s0:s1])

    def _fill(sl: slice) -> None:
        if hasattr(headmodel, "prepare"):
            headmodel.prepare(sensors)  # before any worker thread needs it (cached)
        subs = [(s0, min(s0 + bs, sl.stop)) for s0 in range(sl.start, sl.stop, bs)]
        if workers == 1 or len(subs) == 1:
            with single_threaded_blas():  # small products: BLAS threads only spin
                for s0, s1 in subs:
                    _sub(s0, s1)
        else:  # NumPy releases the GIL in its kernels: blocks run in parallel threads
            with single_threaded_blas(), ThreadPoolExecutor(workers) as ex:
                list(ex.map(lambda a: _sub(*a), subs))

    chunks = [slice(s, min(s + cache_block, len(pos))) for s in range(0, len(pos), cache_block)]
    for sl in progress(chunks, verbose, desc="gain matrix", unit="block"):
        if cache_dir is None:
            _fill(sl)
            continue
        key = hash_arrays(pos[sl], ori[sl], extra=common)
        fname = cache_dir / f"{key}.npz"
        entry = load_entry(fname)  # verified; a corrupted block is evicted with a warning
        if entry is not None and entry["G"].shape == (sensors.n_channels, sl.stop - sl.start):
            G[:, sl] = entry["G"]
            continue
        _fill(sl)
        save_entry(fname, G=G[:, sl])
    return G


def spm_cond_units(G: np.ndarray, siunits: bool = True, out: np.ndarray | None = None
                   ) -> tuple[np.ndarray, float]:
    """SPM's conditioning of the gain units (``spm_cond_units`` as used by ``spm_eeg_lgainmat``).

    ``scale = 10^-round(log10(max|G| / 8))``; ``G`` is rescaled only when ``siunits`` and
    ``|log10(scale)| > 2`` (otherwise ``scale = 1``).

    Parameters
    ----------
    G : ndarray, shape (n_channels, n_sources)
        Gain matrix, data units per source unit (e.g. fT/(nA m)).
    siunits : bool
        Whether the data are in SI-derived units (SPM's ``forward.siunits``); rescaling is
        applied only then.
    out : ndarray, shape (n_channels, n_sources), optional
        Where to put a rescaled gain (may be ``G`` itself: in place); default a new array.

    Returns
    -------
    G : ndarray, shape (n_channels, n_sources)
        Possibly rescaled gain (the input array when unchanged, ``out`` when rescaled into it).
    scale : float
        Factor applied to ``G`` (1.0 when unchanged; SPM's ``forward.scale``).
    """
    # max |G| from the extremes: no |G| temporary the size of a full-resolution gain
    mx = float(max(G.max(), -G.min())) if G.size else 0.0
    if mx == 0 or not np.isfinite(mx):
        return G, 1.0
    scale = 10.0 ** (-np.round(np.log10(mx / 8)))
    if siunits and abs(np.log10(scale)) > 2:
        logger.warning("gain matrix rescaled by %g for numerical conditioning (as SPM)", scale)
        return np.multiply(G, scale, out=out), float(scale)
    return G, 1.0
