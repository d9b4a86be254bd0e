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
from ._docs import fill_doc
from .filters import BandFilter
from .io import (
    SamData,
    as_sam_data,
    band_folder,
    read_cov,
    sam_directory,
    write_cov,
    write_text,
)
from .params import Marker, SamParams

__all__ = ["SamCovariance", "noise_floor", "sam_cov", "read_covariances", "cov_set_name"]

RESERVED = ("Global", "Orient", "Noise", "Sum")


@dataclass
class SamCovariance:
    """One covariance of a SAM analysis.

    Parameters
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
    segments : list of (trial, TS, TE)
        SAMsrcV5 segments (samples ``TS .. TE - 1``; see :func:`segment_covariance`).
    singular_values : ndarray or None
        Singular values of C, decreasing (T^2).
    cov_type : int
        SAMsrcV5's covariance type code: 0 Global, 1 Sum, 2 Orient, 3 Noise, 4 + i for the
        i-th marker of the parameters.
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
    singular_values: np.ndarray | None = None
    cov_type: int = 0

    @property
    def eigenvalues(self) -> np.ndarray:
        """Singular values (= eigenvalues) of C in decreasing order, T^2."""
        if self.singular_values is None:
            self.singular_values = np.linalg.svd(self.C, compute_uv=False)
        return self.singular_values


def noise_floor(eigenvalues: np.ndarray, ndim: int = 3) -> float:
    """SAMsrc's noise floor: the eigenvalue where the spectrum is flattest (T^2).

    Parameters
    ----------
    eigenvalues : ndarray, shape (M,)
        Eigen/singular values of a covariance (any order).
    ndim : int
        Number of trailing values excluded from the scan (``max(3, Pinv)``).

    Returns
    -------
    float
        The noise floor, T^2.
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
    """The filter for a pass band with the parameters' FilterType, Notch and Hz.

    The notch (FFT filters only) removes the mains harmonics inside ``CovBand``, whatever the
    band, as SAMsrcV5 does.

    Parameters
    ----------
    params : SamParams
        Parameters (``FilterType``, ``Notch``, ``Hz``, ``CovBand``).
    band : tuple of float, (2,)
        Pass band ``(lo, hi)``, Hz.
    fs : float
        Sampling rate, Hz.

    Returns
    -------
    BandFilter
        The zero-phase filter.
    """
    mains = float(params["Hz"]) if params.get("Notch", False) else None
    cov_band = params.get("CovBand") or band
    return BandFilter(fs, float(band[0]), float(band[1]), params["FilterType"], mains,
                      (float(cov_band[0]), float(cov_band[1])))


def _read_segfile(path: Path, data: SamData, origin: str) -> list[tuple[int, int, int]]:
    fs, pre = data.fs, data.pre_trig
    segs = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        toks = line.split()
        try:
            trial, t0, t1 = int(toks[0]), float(toks[1]), float(toks[2])
        except (ValueError, IndexError):
            raise LamegFormatError(f"{path}:{lineno}: expected 'trial T0 T1', got {line!r}"
                                   ) from None
        ts = int(np.rint(fs * t0)) + pre
        te = int(np.rint(fs * t1)) + pre
        segs.append((trial, ts, te))
    n = data.data.shape[1]
    for k, (trial, ts, te) in enumerate(segs):
        if not (0 <= trial < data.n_trials and ts >= 0 and te < n and te - ts > 0):
            raise LamegValueError(f"{origin}: invalid segment {k} in SegFile {path} (trial {trial}"
                                  f", samples {ts}-{te}; the trials have {data.n_trials} x {n} "
                                  "samples)")
    return segs


def event_segments(data: SamData, marker: Marker, t0: float, t1: float, rounding=np.rint
                   ) -> list[tuple[int, int, int]]:
    """Samples ``(trial, TS, TE)`` of a marker's events in the good trials.

    ``TS = rounding((latency + t0) fs) + pre_trigger``, ``TE`` likewise with ``t1``; events with
    ``TS < 0`` or ``TE >= n_samples`` are skipped. Each program applies its own further rules.

    Parameters
    ----------
    data : SamData
        The dataset.
    marker : Marker
        The marker (its name and, for messages, where it was given).
    t0, t1 : float
        Window relative to every event, s.
    rounding : callable
        Seconds-times-rate to sample rule (``np.rint`` or ``np.floor``).

    Returns
    -------
    list of (int, int, int)
        Trial, first sample and end sample of every kept event.

    Raises
    ------
    LamegDataError
        The dataset has no event of that name.
    """
    n, fs, pre = data.data.shape[1], data.fs, data.pre_trig
    evs = [e for e in data.events if e[2] == marker.name]
    if not evs:
        names = sorted({e[2] for e in data.events})
        raise LamegDataError(
            f"{marker.origin}: marker {marker.name!r} not found in the dataset; there are no "
            f"segments for it (markers: {', '.join(names) or 'none'})")
    segs = []
    for trial, lat, _ in evs:
        if not data.epoch_ok[trial]:
            continue
        ts = int(rounding((lat + t0) * fs)) + pre
        te = int(rounding((lat + t1) * fs)) + pre
        if ts >= 0 and te < n:
            segs.append((trial, ts, te))
    return segs


def marker_segments(data: SamData, marker: Marker, data_segment=None, base_dir: Path | None = None
                    ) -> list[tuple[int, int, int]]:
    """SAMsrcV5's segments ``(trial, TS, TE)`` of a marker (samples ``TS .. TE - 1`` are used).

    ``TS = rint((latency + T0) fs) + pre_trigger``, ``TE`` likewise with ``T1``; segments in bad
    trials or not satisfying ``0 <= TS < TE < n_samples`` are skipped. ``DataSegment`` (when given)
    replaces ``T0 T1``. ``SegFile`` paths are relative to the dataset folder.

    Parameters
    ----------
    data : SamData
        The dataset (sampling rate, pre-trigger samples, markers, bad trials).
    marker : Marker
        The ``Marker`` or ``SegFile`` entry.
    data_segment : tuple of float, (2,), or None
        ``DataSegment`` ``(T0, T1)``, s, replacing the marker's window.
    base_dir : Path or None
        Further folder in which to look for a relative ``SegFile``.

    Returns
    -------
    list of tuple of int
        ``(trial, TS, TE)`` per segment (0-based trial, samples).
    """
    if marker.seg_file is not None:
        path = Path(os.path.expanduser(marker.seg_file))
        if not path.is_absolute():
            cands = ([Path(data.fname) / path] if data.fname is not None and
                     Path(data.fname).is_dir() else [])
            cands += [base_dir / path] if base_dir is not None else []
            cands += [path]
            path = next((c for c in cands if c.is_file()), cands[0])
        if not path.is_file():
            raise LamegFileNotFoundError(f"{marker.origin}: SegFile {marker.seg_file} not found "
                                         f"(looked for {path})")
        return _read_segfile(path, data, marker.origin)
    t0, t1 = data_segment if data_segment is not None else (marker.t0, marker.t1)
    segs = [(trial, ts, te) for trial, ts, te in event_segments(data, marker, t0, t1) if te > ts]
    if not segs:
        raise LamegDataError(f"{marker.origin}: marker {marker.name!r}: no valid segments found "
                             "within sample limits; check T0/T1 or DataSegment")
    return segs


def segment_covariance(x: np.ndarray, segments) -> tuple[np.ndarray, int]:
    """SAMsrcV5's covariance of segments ``(trial, TS, TE)``.

    Each segment contributes the ``TT = TE - TS`` samples ``TS .. TE - 1``, demeaned by
    ``sum(x[TS .. TE]) / TT`` -- the sum includes sample ``TE`` when ``TE`` is a sample of the trial
    (marker segments), as SAMsrcV5 computes it; whole trials (``TE = n_samples``) use their plain
    mean. ``C = sum_segments X X' / sum TT``.

    Parameters
    ----------
    x : ndarray, shape (n_ch, n_samp, n_trials)
        Filtered data, T.
    segments : sequence of tuple of int
        ``(trial, TS, TE)`` per segment (0-based trial, samples).

    Returns
    -------
    C : ndarray, shape (n_ch, n_ch)
        Covariance, T^2.
    n : int
        Total number of samples used.
    """
    m, n = x.shape[0], x.shape[1]
    acc = np.zeros((m, m))
    total = 0
    groups: dict[int, list] = {}
    for seg in segments:
        groups.setdefault(seg[2] - seg[1], []).append(seg)
    for L, segs in groups.items():
        trials = np.array([s[0] for s in segs])
        starts = np.array([s[1] for s in segs])
        ends = np.array([s[2] for s in segs])
        for c in range(0, len(segs), 256):
            tr, st, en = trials[c:c + 256], starts[c:c + 256], ends[c:c + 256]
            idx = st[:, None] + np.arange(L)[None, :]
            seg = x[:, idx, tr[:, None]]  # (m, nseg, L)
            tot = seg.sum(-1)
            inside = en < n
            if inside.any():
                tot[:, inside] += x[:, en[inside], tr[inside]]
            seg = seg - (tot / L)[:, :, None]
            flat = seg.reshape(m, -1)
            acc += flat @ flat.T
        total += L * len(segs)
    return acc / total, total


def _finish(name, C, band, bw, nseg, nsamp, data, segments, ndim, svd="exact") -> SamCovariance:
    m = C.shape[0]
    if nsamp < m:
        raise LamegDataError(f"covariance {name}: too few samples ({nsamp}) for {m} channels -- "
                             "the covariance is singular; use longer segments or more trials")
    if svd == "gsl":
        from .gsl import jacobi_svd

        sv = jacobi_svd(C)
    else:
        sv = np.linalg.svd(C, compute_uv=False)
    eff = 2 * bw * nsamp / data.fs / m
    if eff < 3:
        logger.warning("covariance %s: only %.3f effective samples per channel; too few for a "
                       "reliable SAM analysis", name, eff)
    if sv[0] > 0 and (sv[-1] / sv[0] < 1e-15 or np.sqrt(sv[-1] / bw) < 5e-16):
        logger.warning("covariance %s appears to be degenerate (condition %.3e)", name,
                       sv[0] / max(sv[-1], 1e-300))
    dead = np.sqrt(np.clip(np.diag(C), 0, None) / bw) * 1e15 < 1
    if dead.any():
        logger.warning("covariance %s: %d dead channel(s) (< 1 fT/sqrt(Hz)): %s", name,
                       dead.sum(), ", ".join(np.array(data.chan_names)[dead][:10]))
    return SamCovariance(name, C, (float(band[0]), float(band[1])), float(bw),
                         noise_floor(sv, ndim), nseg, nsamp, list(data.chan_names),
                         list(segments), singular_values=sv)


def _check_band(name: str, band, data: SamData) -> None:
    if data.analog_band is None:
        return
    hp, lp = data.analog_band
    if band[0] < hp:
        raise LamegValueError(f"{name} highpass cutoff {band[0]:g} Hz is out of the recorded "
                              f"range ({hp:g}-{lp:g} Hz)")
    if band[1] > lp:
        raise LamegValueError(f"{name} lowpass cutoff {band[1]:g} Hz is out of the recorded "
                              f"range ({hp:g}-{lp:g} Hz)")


def compute_covariances(params: SamParams, data: SamData, base_dir: Path | None = None,
                        svd: str = "exact") -> dict[str, SamCovariance]:
    """All covariances of ``sam_cov`` (see the module docstring), without writing files.

    The result is ordered as SAMsrcV5 numbers its covariance types (``CovType``): Global, Sum,
    Orient, Noise, then the markers in parameter order (a marker whose covariance name repeats an
    earlier one replaces it, as the later file overwrites the earlier one in SAMsrcV5).

    Parameters
    ----------
    params : SamParams
        Parameters (``CovBand``, ``OrientBand``, ``NoiseBand``, markers, ...).
    data : SamData
        The dataset, data (n_ch, n_samples, n_trials) in T.
    base_dir : Path or None
        Further folder in which to look for relative ``SegFile`` paths.
    svd : str
        'exact' (LAPACK) or 'gsl' (GSL's one-sided Jacobi, as SAMsrcV5) for the singular values.

    Returns
    -------
    dict of str to SamCovariance
        Covariances by name (matrices (n_ch, n_ch) in T^2).
    """
    band = params.require("CovBand", "cov")
    fs = data.fs
    ndim = params.get("Pinv", 0) or 3
    _check_band("CovBand", band, data)
    if params.is_set("ImageBand"):
        _check_band("ImageBand", params["ImageBand"], data)
    n, E = data.data.shape[1], data.n_trials
    cov_filter = make_band_filter(params, band, fs)
    bw = cov_filter.bandwidth_for(n)
    x = cov_filter.apply(data.data, axis=1)
    whole = [(k, 0, n) for k in range(E)]
    nall = n * E
    res: dict[str, SamCovariance] = {}
    res["Global"] = _finish("Global", segment_covariance(x, whole)[0], band, bw, E, nall, data,
                            whole, ndim, svd)
    covtype = {"Global": 0}
    ob = tuple(params["OrientBand"]) if params.is_set("OrientBand") else tuple(band)
    if ob[0] != band[0] and ob[1] != band[1]:  # SAMsrcV5 re-filters only when both edges differ
        _check_band("OrientBand", ob, data)
        of = make_band_filter(params, ob, fs)
        xo = of.apply(data.data, axis=1)
        orient = _finish("Orient", segment_covariance(xo, whole)[0], ob, of.bandwidth_for(n), E,
                         nall, data, whole, ndim, svd)
    else:
        g = res["Global"]
        orient = SamCovariance("Orient", g.C.copy(), (float(ob[0]), float(ob[1])), g.bandwidth,
                               g.noise, g.n_segments, g.n_samples, g.chan_names, g.segments,
                               singular_values=g.singular_values)
    noise = None
    if params.is_set("NoiseBand"):
        nb = tuple(params["NoiseBand"])
        _check_band("NoiseBand", nb, data)
        if not (nb[0] > 0 and nb[1] > 0):
            raise LamegValueError("NoiseBand edges must both be > 0 Hz (SAMsrcV5 would write an "
                                  "all-zero Noise covariance)")
        nf = make_band_filter(params, nb, fs)
        noise = _finish("Noise", segment_covariance(nf.apply(data.data, axis=1), whole)[0], nb,
                        nf.bandwidth_for(n), E, nall, data, whole, ndim, svd)
    dseg = params.get("DataSegment")
    markers = []
    sum_segs: list = []
    for mk in params.markers:
        if mk.cov_name in RESERVED:
            raise LamegValueError(f"{mk.origin}: covariance name {mk.cov_name!r} is reserved; "
                                  "give the marker another COVNAME")
        segs = marker_segments(data, mk, dseg, base_dir)
        markers.append((mk, segs))
        if mk.in_sum:
            sum_segs.extend(segs)
    if sum_segs:
        C, ns = segment_covariance(x, sum_segs)
        res["Sum"] = _finish("Sum", C, band, bw, len(sum_segs), ns, data, sum_segs, ndim, svd)
        covtype["Sum"] = 1
    res["Orient"] = orient
    covtype["Orient"] = 2
    if noise is not None:
        res["Noise"] = noise
        covtype["Noise"] = 3
    for i, (mk, segs) in enumerate(markers):
        C, ns = segment_covariance(x, segs)
        res.pop(mk.cov_name, None)
        res[mk.cov_name] = _finish(mk.cov_name, C, band, bw, len(segs), ns, data, segs, ndim, svd)
        covtype[mk.cov_name] = 4 + i
    for name, c in res.items():
        c.cov_type = covtype[name]
    return res


def sam_cov(params: SamParams, data=None, *, output_dir: str | os.PathLike | None = None,
            write: bool = True, svd: str = "exact") -> dict[str, SamCovariance]:
    """Compute (and write) the covariance set of a SAM analysis, as SAMsrcV5's ``sam_cov``.

    Parameters
    ----------
    params : SamParams
        Needs ``CovBand``; uses ``OrientBand``, ``NoiseBand``, ``ImageBand`` (range check),
        ``FilterType``, ``Notch``, ``Hz``, ``DataSegment``, ``Pinv``, markers, ``OutName`` /
        ``CovName`` (default: the parameter file's name), ``OutputSAMDirectory``.
    data : SamData, MEEG, MNE Raw/Epochs or path, optional
        The sensor data; default: the dataset named by ``DataSet``.
    output_dir : path-like, optional
        SAM folder (default ``OutputSAMDirectory``, else ``<dataset>.ds/SAM`` for CTF datasets
        and ``<dataset folder>/<stem>_SAM`` otherwise).
    write : bool
        Write ``<SAM>/<CovName>,<lo>-<hi>Hz/<Name>.cov`` (SAMsrcV5 binary), ``<Name>_Noise``,
        ``<Name>_Eigenvalues``, ``SAMcov-Segments`` and ``<SAM>/sam_cov.param``.
    svd : {'exact', 'gsl'}
        How the singular values (eigenvalue files, noise floor) are computed: exact (LAPACK), or
        GSL's Jacobi SVD as SAMsrcV5 does, whose early stop leaves them off by up to a few per
        cent (see :mod:`lameg.sam.gsl`); 'gsl' reproduces SAMsrcV5's noise files.

    Returns
    -------
    dict of str -> SamCovariance
    """
    data = _get_data(params, data)
    base = params.param_file.parent if params.param_file else None
    if svd not in ("exact", "gsl"):
        raise LamegValueError(f"svd must be 'exact' or 'gsl', not {svd!r}")
    covs = compute_covariances(params, data, base, svd)
    if write:
        samdir = output_sam_dir(params, data, output_dir)
        name = cov_set_name(params)
        folder = band_folder(samdir, name, params["CovBand"])
        folder.mkdir(parents=True, exist_ok=True)
        spec = name if params.param_file is not None else "NONE"
        n = data.data.shape[1]
        seg_lines = []
        for cname, c in covs.items():
            write_cov(folder / f"{cname}.cov", c.C, set_name=data.set_name or "NONE",
                      spec_name=spec, band=c.band, bandwidth=c.bandwidth, noise=c.noise,
                      n_segments=c.n_segments, n_samples=c.n_samples, cov_type=c.cov_type,
                      chan_index=data.chan_index)
            write_text(folder / f"{cname}_Noise", f"{c.noise:e}\n")
            sv = c.eigenvalues
            tol = sv[-1] / sv[0] if sv[0] != 0 else 0.0
            write_text(folder / f"{cname}_Eigenvalues",
                       f"Covariance File: '{cname}'\nNumber of Segments: {c.n_segments}\n"
                       f"Number of Samples: {c.n_samples}\nSingular Values:\n"
                       + "".join(f"{v:e}\n" for v in sv)
                       + f"Tolerance={tol:e}\nCondition={1 / tol if tol else np.inf:e}\n")

        def block(title, segs, whole=False):
            seg_lines.append(f"'{title}' segments:")
            seg_lines.extend(f"\t{len(segs) if whole else k}: e={t}, start={a}, "
                             f"end={min(b, n - 1)}" for k, (t, a, b) in enumerate(segs))

        block("Global", covs["Global"].segments, True)
        block("Orient", covs["Orient"].segments, True)
        for mk in params.markers:
            if mk.cov_name in covs:
                block(mk.name, covs[mk.cov_name].segments)
        if "Sum" in covs:
            block("Sum", covs["Sum"].segments)
        if "Noise" in covs:
            block("Noise", covs["Noise"].segments, True)
        write_text(folder / "SAMcov-Segments", "\n".join(seg_lines) + "\n")
        params.write_log(samdir / "sam_cov.param", "cov")
    return covs


@fill_doc
def cov_set_name(params: SamParams) -> str:
    """Name of the covariance folder: ``CovName``, else ``OutName``, else the parameter file's
    name (``cmdline`` when every parameter came from the command line).

    Parameters
    ----------
    %(sam_folder_name_body)s
    """
    for key in ("CovName", "OutName"):
        if params.is_set(key):
            return str(params[key])
    return params.param_name or "cmdline"


def _sam_dir(params: SamParams, data: SamData, override, key: str) -> Path:
    # ``override``, else the parameter ``key``, else ``<dataset>.ds/SAM``
    if override:
        return Path(override)
    if params.is_set(key):
        return Path(os.path.expanduser(str(params[key])))
    return sam_directory(data.fname)


def output_sam_dir(params: SamParams, data: SamData, output_dir=None) -> Path:
    """The SAM folder outputs go to.

    Parameters
    ----------
    params : SamParams
    data : SamData
    output_dir : path-like, optional
        Overrides everything.

    Returns
    -------
    Path
        ``output_dir``, else ``OutputSAMDirectory`` (``-o_SAMdir``), else ``<dataset>.ds/SAM``.
    """
    return _sam_dir(params, data, output_dir, "OutputSAMDirectory")


def input_sam_dir(params: SamParams, data: SamData, input_dir=None) -> Path:
    """The SAM folder inputs (covariances, weights) come from.

    Parameters
    ----------
    params : SamParams
    data : SamData
    input_dir : path-like, optional
        Overrides everything.

    Returns
    -------
    Path
        ``input_dir``, else ``InputSAMDirectory`` (``-i_SAMdir``), else ``<dataset>.ds/SAM``.
    """
    return _sam_dir(params, data, input_dir, "InputSAMDirectory")


def read_covariances(folder: str | os.PathLike, chan_names: list[str] | None = None
                     ) -> dict[str, SamCovariance]:
    """Read every ``.cov`` of a covariance folder (written by lameg or SAMsrcV5).

    Parameters
    ----------
    folder : path-like
        ``<SAM>/<CovName>,<lo>-<hi>Hz``.
    chan_names : list of str, optional
        Names of the channels (the files store only their dataset indices); default
        ``'ch<index>'``.

    Returns
    -------
    dict of str -> SamCovariance
        Keyed by file name; ``noise`` from the header (SAMsrcV5's ``_Noise`` files hold the same
        value).
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.cov"))
    if not files:
        raise LamegFileNotFoundError(f"no covariance files in {folder}; run sam_cov first")
    out = {}
    for f in files:
        d = read_cov(f)
        m = d["C"].shape[0]
        names = list(chan_names) if chan_names is not None and len(chan_names) == m else [
            f"ch{i}" for i in d["chan_index"]]
        c = SamCovariance(f.stem, d["C"], d["band"], d["bandwidth"], d["noise"],
                          d["n_segments"], d["n_samples"], names, cov_type=d["cov_type"])
        c.chan_index = d["chan_index"]
        out[f.stem] = c
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
