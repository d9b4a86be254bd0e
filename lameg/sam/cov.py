"""``sam_cov``: the covariance matrices of a SAM analysis.

Covariances (all in T^2, channels = good MEG channels):

* **Global** -- every sample of every trial, data filtered in ``CovBand`` (+ notch);
* **Orient** -- every sample, filtered in ``OrientBand`` when that is given and differs from
  ``CovBand`` (the documented rule), else a copy of Global;
* **Noise** -- every sample, filtered in ``NoiseBand`` (only when ``NoiseBand`` is given);
* one per marker covariance name -- the union of the marker's segments (``DataSegment``, when
  given, replaces the ``T0 T1`` of every marker; ``SegFile`` markers list their segments);
* **Sum** -- the union of the segments of all markers flagged TRUE.

Estimator: every segment is demeaned per channel and ``C = sum_s X_s X_s' / sum_s n_s`` (divided by
the number of samples, not n-1). A segment of a marker at latency ``lat`` covers samples
``round((lat + T0 - t_first) fs)`` up to (excluding) ``round((lat + T1 - t_first) fs)``; segments not
entirely inside their trial are dropped. Each trial is demeaned and filtered as a whole before
segments are cut.

Noise floor (per covariance): with singular values ``S_0 >= ... >= S_{M-1}`` and ``ndim = max(3,
Pinv)``, the ``k`` in ``2 .. M-ndim`` minimising ``S_{k-2} - S_{k+2}`` (the largest such k on ties) gives
``noise = S_k``, the mean per-sensor noise power in the band (T^2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._utils import logger
from ..exceptions import LamegDataError, LamegFileNotFoundError, LamegFormatError, LamegValueError
from .filters import BandFilter
from .io import (
    COV_TYPES,
    SamData,
    as_sam_data,
    band_folder,
    read_cov,
    sam_directory,
    write_cov,
    write_text,
)
from .params import Marker, SamParams

__all__ = ["SamCovariance", "noise_floor", "marker_segments", "segment_covariance", "sam_cov",
           "read_covariances", "make_band_filter"]

RESERVED = ("Global", "Orient", "Noise", "Sum")


@dataclass
class SamCovariance:
    """One covariance of a SAM analysis.

    Attributes
    ----------
    name : str
        ``Global``, ``Orient``, ``Noise``, ``Sum`` or a marker covariance name.
    C : ndarray, shape (n_channels, n_channels)
        Covariance, T^2.
    band : (float, float)
        Pass band, Hz.
    bandwidth : float
        Effective filter bandwidth, Hz.
    noise : float
        Noise-floor estimate, T^2.
    n_segments, n_samples : int
    chan_names : list of str
    segments : list of (trial, start, stop)
        Sample ranges used (stop exclusive).
    """

    name: str
    C: np.ndarray
    band: tuple[float, float]
    bandwidth: float
    noise: float
    n_segments: int
    n_samples: int
    chan_names: list[str] = field(default_factory=list)
    segments: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of C in decreasing order, T^2."""
        return np.linalg.eigvalsh(self.C)[::-1]


def noise_floor(eigenvalues: np.ndarray, ndim: int = 3) -> float:
    """SAMsrc's noise floor: the eigenvalue where the spectrum is flattest (T^2).

    Parameters
    ----------
    eigenvalues : ndarray, shape (M,)
        Eigen/singular values of a covariance (any order).
    ndim : int
        Number of trailing values excluded from the scan (``max(3, Pinv)``).
    """
    s = np.sort(np.asarray(eigenvalues, float))[::-1]
    m = s.size
    ndim = max(3, int(ndim))
    if m - ndim < 2:
        return float(s[-1])
    k = np.arange(2, m - ndim + 1)
    d = s[k - 2] - s[k + 2]
    # scanning from high k downwards with a strict '<' keeps the largest k among equal minima
    i = len(d) - 1 - int(np.argmin(d[::-1]))
    return float(s[k[i]])


def make_band_filter(params: SamParams, band: tuple[float, float], fs: float) -> BandFilter:
    """The filter for a pass band with the parameters' FilterType, Notch and Hz."""
    mains = float(params["Hz"]) if params.get("Notch", False) else None
    return BandFilter(fs, float(band[0]), float(band[1]), params["FilterType"], mains)


def marker_segments(data: SamData, marker: Marker, data_segment=None, base_dir: Path | None = None
                    ) -> list[tuple[int, int, int]]:
    """Sample ranges ``(trial, start, stop)`` of a marker (stop exclusive)."""
    n = data.data.shape[1]
    t_first = float(data.time[0])
    fs = data.fs
    segs = []
    if marker.seg_file is not None:
        path = Path(os.path.expanduser(marker.seg_file))
        if not path.is_absolute() and base_dir is not None and (base_dir / path).is_file():
            path = base_dir / path
        if not path.is_file():
            raise LamegFileNotFoundError(f"{marker.origin}: SegFile {marker.seg_file} not found")
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            toks = line.split("#", 1)[0].split()
            if not toks:
                continue
            try:
                trial, t0, t1 = int(toks[0]), float(toks[1]), float(toks[2])
            except (ValueError, IndexError):
                raise LamegFormatError(f"{path}:{lineno}: expected 'trial T0 T1'") from None
            if not 0 <= trial < data.n_trials:
                raise LamegValueError(f"{path}:{lineno}: trial {trial} does not exist "
                                      f"({data.n_trials} trials, 0-based)")
            segs.append((trial, int(round((t0 - t_first) * fs)), int(round((t1 - t_first) * fs))))
    else:
        t0, t1 = data_segment if data_segment is not None else (marker.t0, marker.t1)
        evs = [e for e in data.events if e[2] == marker.name]
        if not evs:
            names = sorted({e[2] for e in data.events})
            raise LamegDataError(
                f"{marker.origin}: marker {marker.name!r} matches no event of the dataset "
                f"(available: {', '.join(names) or 'none'})")
        for trial, lat, _ in evs:
            segs.append((trial, int(round((lat + t0 - t_first) * fs)),
                         int(round((lat + t1 - t_first) * fs))))
    kept = [s for s in segs if 0 <= s[1] < s[2] <= n]
    if len(kept) < len(segs):
        logger.info("marker %s: %d of %d segments outside their trial dropped", marker.name,
                    len(segs) - len(kept), len(segs))
    if not kept:
        raise LamegDataError(f"{marker.origin}: no segment of marker {marker.name!r} lies inside "
                             "the trials; check T0/T1 or DataSegment")
    return kept


def segment_covariance(x: np.ndarray, segments) -> tuple[np.ndarray, int]:
    """Sum of per-segment demeaned outer products divided by the total number of samples.

    ``x`` is (n_channels, n_samples, n_trials); returns (C, n_samples_total).
    """
    m = x.shape[0]
    acc = np.zeros((m, m))
    total = 0
    lengths = {s[2] - s[1] for s in segments}
    if len(lengths) == 1:  # equal-length segments: one batched product
        L = lengths.pop()
        trials = np.array([s[0] for s in segments])
        starts = np.array([s[1] for s in segments])
        for chunk in range(0, len(segments), 256):
            tr, st = trials[chunk:chunk + 256], starts[chunk:chunk + 256]
            idx = st[:, None] + np.arange(L)[None, :]
            seg = x[:, idx, tr[:, None]]  # (m, nseg, L)
            seg = seg - seg.mean(-1, keepdims=True)
            flat = seg.reshape(m, -1)
            acc += flat @ flat.T
        total = L * len(segments)
    else:
        for trial, a, b in segments:
            seg = x[:, a:b, trial]
            seg = seg - seg.mean(1, keepdims=True)
            acc += seg @ seg.T
            total += b - a
    return acc / total, total


def _whole_trials(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(1, keepdims=True)
    flat = xc.reshape(x.shape[0], -1)
    return flat @ flat.T / flat.shape[1]


def _finish(name, C, band, filt, nseg, nsamp, data, segments, ndim) -> SamCovariance:
    m = C.shape[0]
    if nsamp < m:
        raise LamegDataError(f"covariance {name}: too few samples ({nsamp}) for {m} channels; "
                             "use longer segments or more trials")
    ev = np.linalg.eigvalsh(C)[::-1]
    eff = 2 * filt.bandwidth * nsamp / data.fs / m
    if eff < 3:
        logger.warning("covariance %s: only %.1f effective samples per channel", name, eff)
    if ev[0] > 0 and ev[-1] / ev[0] < 1e-15:
        logger.warning("covariance %s is nearly singular (condition > 1e15)", name)
    dead = np.sqrt(np.clip(np.diag(C), 0, None) / filt.bandwidth) * 1e15 < 1
    if dead.any():
        logger.warning("covariance %s: %d dead channel(s) (< 1 fT/sqrt(Hz)): %s", name,
                       dead.sum(), ", ".join(np.array(data.chan_names)[dead][:10]))
    return SamCovariance(name, C, (float(band[0]), float(band[1])), filt.bandwidth,
                         noise_floor(ev, ndim), nseg, nsamp, list(data.chan_names), segments)


def compute_covariances(params: SamParams, data: SamData, base_dir: Path | None = None
                        ) -> dict[str, SamCovariance]:
    """All covariances of ``sam_cov`` (see the module docstring), without writing files."""
    band = params.require("CovBand", "cov")
    fs = data.fs
    ndim = params.get("Pinv", 0) or 3
    img = params["ImageBand"]
    if img[0] < band[0] or img[1] > band[1]:
        raise LamegValueError(f"ImageBand {img[0]:g}-{img[1]:g} Hz must lie inside CovBand "
                              f"{band[0]:g}-{band[1]:g} Hz")
    cov_filter = make_band_filter(params, band, fs)
    x = cov_filter.apply(data.data, axis=1)
    whole = [(k, 0, data.data.shape[1]) for k in range(data.n_trials)]
    nall = data.data.shape[1] * data.n_trials
    out: dict[str, SamCovariance] = {}
    out["Global"] = _finish("Global", _whole_trials(x), band, cov_filter, data.n_trials, nall,
                            data, whole, ndim)
    if params.is_set("OrientBand") and tuple(params["OrientBand"]) != tuple(band):
        of = make_band_filter(params, params["OrientBand"], fs)
        out["Orient"] = _finish("Orient", _whole_trials(of.apply(data.data, axis=1)),
                                params["OrientBand"], of, data.n_trials, nall, data, whole, ndim)
    else:
        g = out["Global"]
        out["Orient"] = SamCovariance("Orient", g.C.copy(), g.band, g.bandwidth, g.noise,
                                      g.n_segments, g.n_samples, g.chan_names, g.segments)
    if params.is_set("NoiseBand"):
        nf = make_band_filter(params, params["NoiseBand"], fs)
        out["Noise"] = _finish("Noise", _whole_trials(nf.apply(data.data, axis=1)),
                               params["NoiseBand"], nf, data.n_trials, nall, data, whole, ndim)
    dseg = params.get("DataSegment")
    by_cov: dict[str, list] = {}
    sum_segs: list = []
    for mk in params.markers:
        if mk.cov_name in RESERVED:
            raise LamegValueError(f"{mk.origin}: covariance name {mk.cov_name!r} is reserved; "
                                  "give the marker another COVNAME")
        segs = marker_segments(data, mk, dseg, base_dir)
        by_cov.setdefault(mk.cov_name, []).extend(segs)
        if mk.in_sum:
            sum_segs.extend(segs)
    for name, segs in by_cov.items():
        segs = sorted(set(segs))
        C, n = segment_covariance(x, segs)
        out[name] = _finish(name, C, band, cov_filter, len(segs), n, data, segs, ndim)
    if sum_segs:
        segs = sorted(set(sum_segs))
        C, n = segment_covariance(x, segs)
        out["Sum"] = _finish("Sum", C, band, cov_filter, len(segs), n, data, segs, ndim)
    return out


def sam_cov(params: SamParams, data=None, *, output_dir: str | os.PathLike | None = None,
            write: bool = True) -> dict[str, SamCovariance]:
    """Compute (and write) the covariance set of a SAM analysis.

    Parameters
    ----------
    params : SamParams
        Needs ``CovBand``; uses ``OrientBand``, ``NoiseBand``, ``ImageBand`` (range check),
        ``FilterType``, ``Notch``, ``Hz``, ``DataSegment``, ``Pinv``, markers, ``CovName``.
    data : SamData, MEEG, MNE Raw/Epochs or path, optional
        The sensor data; default: the dataset named by ``DataSet``.
    output_dir : path-like, optional
        SAM folder (default ``<dataset folder>/<stem>_SAM``).
    write : bool
        Write ``<SAM>/<CovName>,<lo>-<hi>Hz/<Name>.cov`` (SAMsrcV5 binary), ``<Name>_Noise``,
        ``<Name>_Eigenvalues``, ``SAMcov-Segments``, ``channels.txt`` and append
        ``<SAM>/sam_cov.param``.

    Returns
    -------
    dict of str -> SamCovariance
    """
    data = _get_data(params, data)
    base = params.param_file.parent if params.param_file else None
    covs = compute_covariances(params, data, base)
    if write:
        samdir = Path(output_dir) if output_dir else sam_directory(data.fname)
        folder = band_folder(samdir, params.get("CovName", "SAM"), params["CovBand"])
        folder.mkdir(parents=True, exist_ok=True)
        seg_lines = []
        for name, c in covs.items():
            ctype = COV_TYPES.get(name, 4 + list(covs).index(name) - len(RESERVED))
            write_cov(folder / f"{name}.cov", c.C, set_name=str(data.fname or ""), spec_name=name,
                      band=c.band, bandwidth=c.bandwidth, noise=c.noise,
                      n_segments=c.n_segments, n_samples=c.n_samples, cov_type=ctype)
            write_text(folder / f"{name}_Noise", f"{c.noise:e}\n")
            ev = c.eigenvalues
            write_text(folder / f"{name}_Eigenvalues",
                       f"{name}\n{c.n_segments}\n{c.n_samples}\n"
                       + "".join(f"{v:e}\n" for v in ev)
                       + f"Tolerance {ev[-1] / ev[0]:e}\nCondition {ev[0] / max(ev[-1], 1e-300):e}\n")
            seg_lines += [f"{name} {t} {a} {b}" for t, a, b in c.segments]
        write_text(folder / "SAMcov-Segments", "\n".join(seg_lines) + "\n")
        write_text(folder / "channels.txt", "\n".join(data.chan_names) + "\n")
        params.write_log(samdir / "sam_cov.param", "cov")
    return covs


def read_covariances(folder: str | os.PathLike) -> dict[str, SamCovariance]:
    """Read every ``.cov`` of a covariance folder written by :func:`sam_cov`."""
    folder = Path(folder)
    files = sorted(folder.glob("*.cov"))
    if not files:
        raise LamegFileNotFoundError(f"no covariance files in {folder}; run 'lameg-sam cov' first")
    chans_file = folder / "channels.txt"
    chans = chans_file.read_text().split() if chans_file.is_file() else []
    out = {}
    for f in files:
        d = read_cov(f)
        names = chans if len(chans) == d["C"].shape[0] else [f"MEG{i:03d}" for i in
                                                             range(d["C"].shape[0])]
        out[f.stem] = SamCovariance(f.stem, d["C"], d["band"], d["bandwidth"], d["noise"],
                                    d["n_segments"], d["n_samples"], names)
    return out


def _get_data(params: SamParams, data) -> SamData:
    if data is not None:
        return as_sam_data(data)
    ds = params.get("DataSet")
    if ds is None:
        raise LamegValueError("no data: pass data= or set DataSet (-r) in the parameters")
    p = Path(os.path.expanduser(ds))
    if not p.is_absolute() and params.param_file is not None and not p.exists():
        cand = params.param_file.parent / p
        if cand.exists() or cand.with_suffix(".mat").exists():
            p = cand
    return as_sam_data(p)
