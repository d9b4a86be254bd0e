"""SAM imaging programs: ``sam_3d`` (power / pseudo-Z), ``sam_4d`` (time-resolved) and ``sam_ers``
(event-related responses).

Common rules
------------
* Weights per condition by ``CovType``: ``GLOBAL`` -> the Global weights for every condition,
  ``SUM`` -> the Sum weights, ``ALL`` -> each marker's own covariance weights.
* Data are filtered in ``ImageBand`` (default CovBand; + notch) and projected to S/N units,
  ``y = w'x / sigma_v`` with the projected noise ``sigma_v^2 = noise w'w BWratio``,
  ``BWratio = (ImageHI - ImageLO)/(CovHI - CovLO) <= 1`` (nominal bandwidths), or, when a Noise
  covariance exists (NoiseBand), ``sigma_v^2 = w'C_noise w (BW_image/BW_noise)`` with effective
  bandwidths.
* Conditions are the markers (named by their covariance name) or, without markers, one
  ``Global`` condition made of whole trials.
* Images go to ``ImageDirectory`` (default: the SAM folder) as
  ``<prefix>,<OutName>,<Cond>,<TAG>,<Stat>.nii`` (grids, targets) or ``.gii`` (surface atlases),
  where prefix is the dataset-name prefix (``PrefixLength``) and OutName defaults to the parameter
  file name.

``sam_3d``: per segment k the metric ``P_k`` (Power: segment power; Signal: segment mean;
Kurtosis: excess kurtosis; RankVectorEntropy: mean entropy); images Mean = mean_k P_k and Variance
(unbiased). With ``CovType GLOBAL``, no markers, ``ImageBand == CovBand`` and no Mu, Mean equals the
pseudo-Z^2 ``w'Cw / (noise w'w)``. ``MinSNR`` (documented meaning): voxels whose pseudo-Z
``sqrt(mean power)`` is below the threshold are set to 0 in every image.

``sam_4d``: per trial, the metric over boxes of ``TimeInt`` seconds (documented; else ``BoxWidth``,
else ``1/SmoothHI``) starting every ``TimeStep`` seconds from the start of the window
(``DataSegment`` or the marker window): Signal -> box mean of y (low-passed in ``SmoothBand`` when
given), Power -> box segment power, Hilbert -> box mean of the (SmoothBand low-passed) Hilbert power,
Kurtosis -> box excess kurtosis, RankVectorEntropy -> box mean entropy. Mean and Variance across
trials per box; ``Baseline`` subtracts the mean over boxes starting inside the window;
``SignSegment`` (Signal only; the documented intent) multiplies each voxel by the sign of the sum of
its mean inside the window.

``sam_ers`` (the documented specification): Signal -> trials averaged in sensor space then projected;
Power -> per-trial Hilbert power ``0.5 (y^2 + H{y}^2)`` averaged over trials. The average is low-passed
in ``SmoothBand`` (when given), smoothed by a centred boxcar of ``TimeInt`` seconds (when given),
baseline-corrected (``Baseline``), sign-aligned (``SignSegment``, Signal), optionally made absolute
(``Absolute``) and sampled every ``TimeStep`` seconds from the window start. Two markers give the
difference Marker1 - Marker2 (identical windows required).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..exceptions import LamegDataError, LamegValueError
from ._docs import fill_doc
from .cov import _get_data, event_segments, make_band_filter, marker_segments
from .filters import BandFilter
from .io import SamData, band_folder, dataset_prefix, write_image
from .metrics import (
    check_metric,
    excess_kurtosis,
    hilbert_power,
    rank_vector_entropy,
    segment_power,
)
from .params import SamParams
from .weights import SamWeights

__all__ = ["SamImages", "sam_3d", "sam_4d", "sam_ers", "laminar_contrast"]

_TAGS = {"Signal": "MOM", "Power": "PWR", "Hilbert": "PWR", "Kurtosis": "KRT",
         "RankVectorEntropy": "RVE"}


@dataclass
class SamImages:
    """Images produced by a SAM imaging program.

    Parameters
    ----------
    images : dict of (str, str) -> ndarray
        ``(condition, statistic)`` -> values, shape (n_src,) or (n_src, n_times).
    times : ndarray or None
        Image times, s relative to the marker (start of each box for sam_4d).
    sources : SourceSet
    files : list of Path
        Files written.
    """

    images: dict[tuple[str, str], np.ndarray]
    times: np.ndarray | None
    sources: object
    files: list[Path] = field(default_factory=list)

    def __getitem__(self, key):
        return self.images[key]


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, params: SamParams, program: str, data, weights, output_dir):
        from .cov import cov_set_name, input_sam_dir, output_sam_dir
        from .weights import load_weight_set, wts_set_name

        self.params = params
        self.program = program
        self.data: SamData = _get_data(params, data)
        self.samdir = output_sam_dir(params, self.data, output_dir)
        indir = input_sam_dir(params, self.data, output_dir)
        band = tuple(params.require("CovBand", program)) if weights is None else tuple(
            params.get("CovBand") or weights.band["Global"])
        if weights is None:
            weights = load_weight_set(band_folder(indir, wts_set_name(params), band),
                                      list(self.data.chan_names))
        self.w: SamWeights = weights
        self.x = self._channels()
        cov_band = params.get("CovBand") or self.w.band["Global"]
        img_band = params.get("ImageBand") or cov_band
        self.cov_band, self.img_band = tuple(cov_band), tuple(img_band)
        if img_band[1] - img_band[0] > cov_band[1] - cov_band[0] + 1e-9:
            raise LamegValueError(f"ImageBand {img_band} is wider than CovBand {cov_band}: the "
                                  "covariance bandwidth must be >= the image bandwidth")
        self.filt: BandFilter = make_band_filter(params, img_band, self.data.fs)
        self.xf = self.filt.apply(self.x, axis=1)
        self.out_dir = Path(os.path.expanduser(params["ImageDirectory"])) if params.is_set(
            "ImageDirectory") else self.samdir
        ds = str(self.data.fname) if self.data.fname else "SAM"
        self.prefix = dataset_prefix(ds, params["PrefixLength"])
        self.out_name = str(params["OutName"]) if params.is_set("OutName") else \
            _param_name(params)
        self.noise_cov = None
        if params.is_set("NoiseBand"):  # the raw Noise covariance of the covariance folder
            from .io import read_cov

            d = read_cov(band_folder(indir, cov_set_name(params), self.cov_band) / "Noise.cov")
            self.noise_cov = (d["C"], d["bandwidth"])
        self.files: list[Path] = []

    def _channels(self) -> np.ndarray:
        names = self.data.chan_names
        if list(names) == list(self.w.chan_names):
            return self.data.data
        pos = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.w.chan_names if n not in pos]
        if missing:
            raise LamegDataError(f"the weights use channels absent from the data: {missing[:5]}")
        return self.data.data[[pos[n] for n in self.w.chan_names]]

    def weights_for(self, cond_cov: str | None) -> tuple[str, np.ndarray]:
        ct = self.params.get("CovType")
        if ct is None:
            ct = self.params.require("CovType", self.program)
        name = {"GLOBAL": "Global", "SUM": "Sum"}.get(ct, cond_cov or "Global")
        if name not in self.w.weights:
            raise LamegValueError(f"CovType {ct}: no '{name}' weights (run sam_cov/sam_wts with "
                                  "markers flagged TRUE for SUM, or per-marker covariances for ALL)")
        W = self.w.weights[name]
        n = self.data.data.shape[1]
        if self.noise_cov is not None:
            Cn, bw_noise = self.noise_cov
            var = np.einsum("vm,vm->v", W @ Cn, W) * (self.filt.bandwidth_for(n) / bw_noise)
        else:
            ratio = (self.img_band[1] - self.img_band[0]) / (self.cov_band[1] - self.cov_band[0])
            var = self.w.noise[name] * np.einsum("vm,vm->v", W, W) * ratio
        with np.errstate(divide="ignore", invalid="ignore"):
            Wn = np.where((var > 0)[:, None], W / np.sqrt(var)[:, None], 0.0)
        return name, Wn

    def conditions(self, allow_segfile=True, window=None, rule="cov"):
        """[(label, cov_name, segments, (t0, t1))] for markers, or the Global whole trials.

        ``rule='3d'`` uses sam_3d's segments: ``TS = floor((lat + T0) fs) + pre``, ``TE`` likewise,
        samples ``TS .. TE`` inclusive (as segments ``(trial, TS, TE + 1)``).
        """
        d = self.data
        if not self.params.markers:
            segs = [(k, 0, d.data.shape[1]) for k in range(d.n_trials)]
            return [("Global", None, segs, (float(d.time[0]), float(d.time[-1]) + 1 / d.fs))]
        out = []
        for mk in self.params.markers:
            if mk.seg_file is not None and not allow_segfile:
                raise LamegValueError(f"{mk.origin}: sam_{self.program} needs constant-length "
                                      "segments; SegFile markers only work with sam_3d")
            win = window if window is not None else (mk.t0, mk.t1)
            base = self.params.param_file.parent if self.params.param_file else None
            if rule == "3d" and mk.seg_file is None:
                segs = _segments_3d(d, mk)
            else:
                segs = marker_segments(d, mk, win if mk.seg_file is None else None, base)
            out.append((mk.cov_name, mk.cov_name, segs, win))
        return out

    def write(self, cond: str, tag: str, stat: str, values, **kw) -> None:
        name = f"{self.prefix},{self.out_name},{cond},{tag},{stat}"
        self.files.append(write_image(self.out_dir / name, values, self.w.sources,
                                      description=f"lameg sam_{self.program} {tag} {stat}", **kw))

    def finish(self):
        self.params.write_log(self.samdir / f"sam_{self.program}.param", self.program)


def _param_name(params: SamParams) -> str:
    return params.param_name or "cmdline"


def _segments_3d(d: SamData, mk) -> list[tuple[int, int, int]]:
    """sam_3d's marker segments (floor rounding, inclusive end), as (trial, TS, TE + 1)."""
    segs = [(trial, ts, te + 1) for trial, ts, te in event_segments(d, mk, mk.t0, mk.t1, np.floor)]
    if not segs:
        raise LamegDataError(f"{mk.origin}: there were no valid data segments for marker "
                             f"{mk.name!r} and its time window")
    return segs


# ---------------------------------------------------------------------------------------------
# sam_3d
# ---------------------------------------------------------------------------------------------


def sam_3d(params: SamParams, data=None, weights: SamWeights | None = None, *,
           output_dir: str | os.PathLike | None = None, write: bool = True) -> SamImages:
    """Per-condition Mean and Variance images of a segment metric (default Power).

    Parameters
    ----------
    params : SamParams
        Needs ``CovType``; uses ``ImageBand``, ``ImageMetric``, ``MinSNR``, markers, filters.
    data : optional
        Dataset (default ``DataSet``).
    weights : SamWeights, optional
        Output of :func:`~lameg.sam.weights.sam_wts` (default: read from the weights folder).
    output_dir : path-like, optional
        SAM folder.
    write : bool
        Write ``<prefix>,<OutName>,<Cond>,3D_<TAG>,Mean|Variance`` images.

    Returns
    -------
    SamImages
        Keys ``(condition, 'Mean')`` and ``(condition, 'Variance')``, values (n_src,).
    """
    metric = check_metric(params.get("ImageMetric"), "3d",
                          ("Power", "Signal", "Kurtosis", "RankVectorEntropy"))
    ctx = _Context(params, "3d", data, weights, output_dir)
    images = {}
    min_snr = params.get("MinSNR")
    for label, cov_name, segs, _ in ctx.conditions(allow_segfile=True, rule="3d"):
        _, Wn = ctx.weights_for(cov_name)
        vals = []
        powers = []
        for trial, a, b in segs:
            xs = ctx.xf[:, a:b, trial]
            if b - a < 12:
                raise LamegDataError(f"condition {label}: segments of {b - a} samples are too "
                                     "short (at least 12 needed)")
            if metric.name == "Power" or min_snr is not None:
                if xs.shape[1] >= xs.shape[0]:  # cheaper through the segment covariance
                    xc = xs - xs.mean(1, keepdims=True)
                    p = np.einsum("vm,vm->v", Wn @ (xc @ xc.T / xc.shape[1]), Wn)
                else:
                    p = segment_power(Wn @ xs)
                powers.append(p)
                if metric.name == "Power":
                    vals.append(p)
                    continue
            y = Wn @ xs
            if metric.name == "Signal":
                vals.append(y.mean(1))
            elif metric.name == "Kurtosis":
                vals.append(excess_kurtosis(y))
            else:
                vals.append(rank_vector_entropy(y, ctx.data.fs, metric.tau, metric.dims,
                                                ctx.img_band[1]).mean(1))
        V = np.asarray(vals)
        mean = V.mean(0)
        var = V.var(0, ddof=1) if len(V) > 1 else np.zeros_like(mean)
        if min_snr is not None:
            low = np.sqrt(np.asarray(powers).mean(0)) < min_snr
            mean[low] = 0.0
            var[low] = 0.0
        images[(label, "Mean")], images[(label, "Variance")] = mean, var
        if write:
            tag = "3D_" + _TAGS[metric.name]
            ctx.write(label, tag, "Mean", mean)
            ctx.write(label, tag, "Variance", var)
    if write:
        ctx.finish()
    return SamImages(images, None, ctx.w.sources, ctx.files)


# ---------------------------------------------------------------------------------------------
# sam_4d
# ---------------------------------------------------------------------------------------------


def _box_seconds(params: SamParams, program: str) -> float:
    if params.is_set("TimeInt"):
        return float(params["TimeInt"])
    if params.is_set("BoxWidth"):
        return float(params["BoxWidth"])
    if params.is_set("SmoothBand"):
        return 1.0 / float(params["SmoothBand"][1])
    raise LamegValueError(f"sam_{program} needs TimeInt (integration time, s), BoxWidth or "
                          "SmoothBand to set the integration window")


def _window_mask(times, win, what="window", cond=""):
    m = (times >= win[0] - 1e-9) & (times <= win[1] + 1e-9)
    if not m.any():
        raise LamegValueError(
            f"{what} {win[0]:g}..{win[1]:g} s contains no image time of condition {cond} "
            f"({times[0]:g}..{times[-1]:g} s); widen DataSegment or move the {what}")
    return m


@fill_doc
def sam_4d(params: SamParams, data=None, weights: SamWeights | None = None, *,
           output_dir: str | os.PathLike | None = None, write: bool = True) -> SamImages:
    """Time-resolved Mean and Variance images, as SAMsrcV5 5.1's ``sam_4d``.

    Every marker's segments span ``DataSegment`` (default: the *first* marker's window) around
    its events; the images are boxes of ``BoxWidth`` (or ``1/SmoothBand`` high edge) seconds that
    start every ``TimeStep`` from the first marker's ``T0`` and stay inside its window. Per box:
    ``Power`` -- the segment power of the ``n_box + 1`` samples from the box start (SAMsrcV5's
    inclusive end), ``Signal`` -- the sum of ``n_box`` samples divided by ``n_box + 1``, as
    SAMsrcV5 computes them. Mean and Variance over the segments (zero with fewer than 3);
    ``Baseline`` subtracts the mean over boxes starting inside it; ``SignSegment`` multiplies each
    voxel's Mean by the sign of its sum over the boxes inside it. (SAMsrcV5 multiplies the Mean by a
    leftover loop variable instead of that sign; see the differences page.)

    Parameters
    ----------
    %(sam_image_parameters_body)s

    Returns
    -------
    SamImages
        Keys ``(condition, 'Mean'|'Variance')``, values (n_src, n_images); ``times`` = box
        starts, s relative to the markers.
    """
    from ..exceptions import LamegNotImplementedError

    metric = check_metric(params.get("ImageMetric") or None, "4d",
                          ("Signal", "Power", "RankVectorEntropy"))
    if metric.name == "RankVectorEntropy":
        raise LamegNotImplementedError("ImageMetric RankVectorEntropy: SAMsrcV5 5.1's sam_4d "
                                       "stops with 'entropy unimplemented'; use Signal or Power")
    if not params.markers:
        raise LamegValueError("sam_4d needs at least one Marker")
    step = float(params.require("TimeStep", "4d"))
    if params.is_set("BoxWidth") and params.is_set("SmoothBand"):
        raise LamegValueError("give only one of BoxWidth or SmoothBand (the box width)")
    if params.is_set("BoxWidth"):
        width = float(params["BoxWidth"])
    elif params.is_set("SmoothBand"):
        width = 1.0 / float(params["SmoothBand"][1])
    else:
        width = 0.0
    ctx = _Context(params, "4d", data, weights, output_dir)
    d = ctx.data
    fs = d.fs
    n_box = int(np.rint(width * fs))
    if n_box <= 0:
        raise LamegValueError("give BoxWidth or SmoothBand (the box width must be >= 1 sample)")
    m0 = params.markers[0]
    ds0, ds1 = params["DataSegment"] if params.is_set("DataSegment") else (m0.t0, m0.t1)
    n_img = int(np.rint((m0.t1 - m0.t0 - n_box / fs) / step)) + 1
    tseg = int(np.rint((ds1 - ds0) * fs))
    offset = m0.t0 - ds0
    if offset < 0:
        raise LamegValueError("the first marker's window must begin after the DataSegment start")
    starts = np.rint((offset + np.arange(n_img) * step) * fs).astype(int)
    if n_img < 1 or starts[-1] + n_box >= tseg:
        raise LamegValueError(f"the boxes ({n_img} of {n_box + 1} samples) do not fit in the "
                              f"segment of {tseg} samples; check TimeStep, BoxWidth and "
                              "DataSegment")
    if metric.name == "Power" and n_box + 1 < 12:
        raise LamegValueError(f"power over {n_box + 1} samples: at least 12 are needed")
    ts0, te0 = int(np.rint(ds0 * fs)), int(np.rint(ds1 * fs))
    if params.is_set("Baseline"):
        bs, be = (int(np.rint(v * fs)) for v in params["Baseline"])
        if not (ts0 <= bs <= te0 and ts0 <= be <= te0):
            raise LamegValueError("Baseline starting / ending samples out of range of the "
                                  "DataSegment")
    if params.is_set("SignSegment"):
        ps, pe = (int(np.rint((v - m0.t0) * fs)) for v in params["SignSegment"])
    times = m0.t0 + np.arange(n_img) * step
    images = {}
    idx = starts[:, None] + np.arange(n_box + 1)[None, :]
    for mk in params.markers:
        segs = [(trial, a) for trial, a, _ in event_segments(d, mk, ds0, ds1)]
        if not segs:
            raise LamegDataError(f"{mk.origin}: there were no valid data segments for marker "
                                 f"{mk.name!r} and the time windows")
        _, Wn = ctx.weights_for(mk.cov_name)
        samples = []
        for trial, a in segs:
            y = Wn @ ctx.xf[:, a:a + tseg, trial]  # (n_src, tseg)
            boxes = y[:, idx]  # (n_src, n_img, n_box + 1)
            if metric.name == "Power":
                samples.append(segment_power(boxes))
            else:
                samples.append(boxes[:, :, :n_box].sum(-1) / (n_box + 1))
        S = np.asarray(samples)
        k = len(segs)
        if k > 2:
            mean = S.mean(0)
            var = (np.einsum("kvi,kvi->vi", S, S) - S.sum(0) ** 2 / k) / (k - 1)
        else:
            mean = np.zeros(S.shape[1:])
            var = np.zeros(S.shape[1:])
        if params.is_set("Baseline"):
            base = (times >= params["Baseline"][0]) & (times <= params["Baseline"][1])
            if not base.any():
                raise LamegValueError("no box starts inside the Baseline window")
            mean = mean - mean[:, base].mean(1, keepdims=True)
        if params.is_set("SignSegment"):
            inside = (starts >= ps) & (starts <= pe)
            sgn = np.where(mean[:, inside].sum(1) > 0, 1.0, -1.0)
            mean = mean * sgn[:, None]
        label = mk.cov_name
        images[(label, "Mean")], images[(label, "Variance")] = mean, var
        if write:
            tag = "4D_" + _TAGS[metric.name]
            ctx.write(label, tag, "Mean", mean, time_step=step, t0=float(m0.t0))
            ctx.write(label, tag, "Variance", var, time_step=step, t0=float(m0.t0))
    if write:
        ctx.finish()
    return SamImages(images, times, ctx.w.sources, ctx.files)


# ---------------------------------------------------------------------------------------------
# sam_ers
# ---------------------------------------------------------------------------------------------


@fill_doc
def sam_ers(params: SamParams, data=None, weights: SamWeights | None = None, *,
            output_dir: str | os.PathLike | None = None, write: bool = True) -> SamImages:
    """Event-related source images (ERS), or the difference of two markers (dERS).

    Parameters
    ----------
    %(sam_image_parameters_body)s

    Returns
    -------
    SamImages
        Key ``(label, 'ERS')`` (``label`` = marker name, or ``'M1-M2'`` with key
        ``(label, 'dERS')``), values (n_src, n_images); ``times`` relative to the marker.
    """
    metric = check_metric(params.get("ImageMetric") or None, "ers",
                          ("Signal", "Power", "Hilbert"))
    step = float(params.require("TimeStep", "ers"))
    if not params.markers:
        raise LamegValueError("sam_ers needs one or two Marker lines")
    if len(params.markers) > 2:
        raise LamegValueError(f"sam_ers takes one or two markers, got {len(params.markers)}")
    ctx = _Context(params, "ers", data, weights, output_dir)
    fs = ctx.data.fs
    conds = ctx.conditions(False, params.get("DataSegment"))
    if len(conds) == 2 and (conds[0][3] != conds[1][3]):
        raise LamegValueError("the two sam_ers markers must have identical time windows")
    avgs = []
    for _label, cov_name, segs, _win in conds:
        _, Wn = ctx.weights_for(cov_name)
        L = segs[0][2] - segs[0][1]
        if metric.name == "Signal":
            xa = np.mean([ctx.xf[:, a:a + L, t] for t, a, _ in segs], axis=0)
            avg = Wn @ xa
        else:
            avg = np.zeros((Wn.shape[0], L))
            for t, a, _ in segs:
                avg += hilbert_power(Wn @ ctx.xf[:, a:a + L, t])
            avg /= len(segs)
        avgs.append(avg)
    win = conds[0][3]
    avg = avgs[0] - avgs[1] if len(avgs) == 2 else avgs[0]
    t = win[0] + np.arange(avg.shape[1]) / fs
    if params.is_set("SmoothBand"):
        sb = params["SmoothBand"]
        dc = avg.mean(1, keepdims=True)
        avg = BandFilter(fs, sb[0], sb[1], params["FilterType"]).apply(avg, axis=1) + (
            dc if sb[0] == 0 else 0.0)
    if params.is_set("TimeInt"):
        w = max(1, int(round(params["TimeInt"] * fs)))
        avg = uniform_filter1d(avg, w, axis=1, mode="nearest")
    if params.is_set("Baseline"):
        avg = avg - avg[:, _window_mask(t, params["Baseline"], "Baseline", conds[0][0])].mean(1, keepdims=True)
    if params.is_set("SignSegment") and metric.name == "Signal":
        sgn = np.sign(avg[:, _window_mask(t, params["SignSegment"], "SignSegment", conds[0][0])].sum(1))
        avg = avg * np.where(sgn == 0, 1.0, sgn)[:, None]
    if params.get("Absolute", False):
        avg = np.abs(avg)
    idx = np.round(np.arange(0, (avg.shape[1] - 1) / fs + 1e-9, step) * fs).astype(int)
    idx = idx[idx < avg.shape[1]]
    images_t = t[idx]
    out = avg[:, idx]
    tag = _TAGS[metric.name]
    label = conds[0][0] if len(conds) == 1 else f"{conds[0][0]}-{conds[1][0]}"
    stat = "ERS" if len(conds) == 1 else "dERS"
    images = {(label, stat): out}
    if write:
        ctx.write(label, tag, stat, out, time_step=step, t0=float(images_t[0]))
        ctx.finish()
    return SamImages(images, images_t, ctx.w.sources, ctx.files)


def laminar_contrast(values: np.ndarray, n_layers: int, layers: tuple[int, int] = (0, -1)
                     ) -> np.ndarray:
    """Per-column difference between two layers of a layer-major multilayer image.

    Parameters
    ----------
    values : ndarray, shape (n_layers * n_vertices, ...)
        Image on a multilayer mesh (layer 0 = pial ... n_layers - 1 = white).
    n_layers : int
    layers : (int, int)
        Layers to compare (default pial minus white).

    Returns
    -------
    ndarray, shape (n_vertices, ...)
        ``values[layer a] - values[layer b]`` per column.
    """
    values = np.asarray(values)
    if values.shape[0] % n_layers:
        raise LamegValueError(f"{values.shape[0]} sources are not a multiple of {n_layers} layers")
    per = values.reshape((n_layers, -1) + values.shape[1:])
    return per[layers[0]] - per[layers[1]]
