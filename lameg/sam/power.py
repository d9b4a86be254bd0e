"""``sam_power``: the time course of source power over a whole recording, as SAMsrcV5 5.1.

The trials are joined into one record (``T x E`` samples), demeaned, filtered in ``ImageBand``
(FFT filter of the whole record, + notch) and projected with the Global weights in units of the
projected noise (``sqrt(noise w'w)``, no bandwidth ratio). The Hilbert power ``y^2 + H{y}^2`` is
low-passed at ``SmoothBand``'s high edge (FFT filter of the whole record, not demeaned), clipped at
0 and sampled every ``TimeStep`` seconds from 1 s to the end minus 1 s. ``RemoveBaseline``:
``BYVOXEL`` subtracts each voxel's mean over time, ``GLOBAL`` the mean of all positive values
from the positive values. Output ``<prefix>,<OutName>,<lo>-<hi>Hz,PWR.nii`` (4D).
"""

from __future__ import annotations

import os

import numpy as np
from scipy.signal import hilbert

from ..exceptions import LamegValueError
from .filters import sam_gain_array
from .imaging import SamImages, _Context
from .params import SamParams
from .weights import SamWeights

__all__ = ["sam_power"]


def sam_power(params: SamParams, data=None, weights: SamWeights | None = None, *,
              output_dir: str | os.PathLike | None = None, write: bool = True,
              chunk: int = 256) -> SamImages:
    """Hilbert-power images over the whole recording (see the module docstring).

    Parameters
    ----------
    params : SamParams
        Needs ``CovBand``, ``ImageBand``, ``SmoothBand``, ``ImageMetric Hilbert``, ``TimeStep``
        and ``CovType GLOBAL``; uses ``RemoveBaseline``, ``Notch``, ``Hz``, ``WtsName``,
        ``OutName``, ``ImageDirectory``.
    data, weights, output_dir, write
        As for :func:`lameg.sam.sam_3d`.
    chunk : int
        Voxels processed together (memory).

    Returns
    -------
    SamImages
        Key ``('Global', 'Power')``, values (n_src, n_images); ``times`` in s from the start of
        the record.
    """
    for key in ("CovBand", "SmoothBand", "TimeStep"):
        params.require(key, "power")
    metric = params.get("ImageMetric")
    if metric is None or metric.name != "Hilbert":
        raise LamegValueError("sam_power: ImageMetric must specify Hilbert")
    if params.get("CovType") != "GLOBAL":
        raise LamegValueError("sam_power: CovType must be GLOBAL")
    if params["FilterType"] == "IIR":
        raise LamegValueError("sam_power with FilterType IIR is not supported (use FFT)")
    ctx = _Context(params, "power", data, weights, output_dir)
    d = ctx.data
    fs = d.fs
    x = ctx.x.transpose(0, 2, 1).reshape(ctx.x.shape[0], -1)  # trials joined: (M, E*T)
    n = x.shape[1]
    x = x - x.mean(1, keepdims=True)
    lo, hi = ctx.img_band
    X = np.fft.fft(x, axis=1) * sam_gain_array(n, fs, lo, hi)
    x = np.fft.ifft(X, axis=1).real
    if ctx.filt.notches.size:
        notch = sam_gain_array(n, fs, 0.0, np.inf, ctx.filt.notches)
        x = np.fft.ifft(np.fft.fft(x, axis=1) * notch, axis=1).real
    W = ctx.w.weights["Global"]
    noise = ctx.w.noise["Global"]
    Wn = W / np.sqrt(noise * np.einsum("vm,vm->v", W, W))[:, None]
    step = float(params["TimeStep"])
    n_img = int(np.rint((n / fs - 2.0) / step))
    if n_img < 1:
        raise LamegValueError(f"the record of {n / fs:g} s is too short for sam_power (it "
                              "leaves out 1 s at each end)")
    times = np.empty(n_img)
    t = 1.0
    for k in range(n_img):  # SAMsrcV5 accumulates the time; the sums decide ties of rint
        times[k] = t
        t += step
    idx = np.rint(times * fs).astype(int)
    smooth = sam_gain_array(n, fs, 0.0, float(params["SmoothBand"][1]))
    img = np.empty((Wn.shape[0], n_img))
    for s in range(0, Wn.shape[0], chunk):
        y = Wn[s:s + chunk] @ x
        env = y * y + hilbert(y, axis=1).imag ** 2
        env = np.fft.ifft(np.fft.fft(env, axis=1) * smooth, axis=1).real
        img[s:s + chunk] = np.clip(env[:, idx], 0.0, None)
    mode = params["RemoveBaseline"]
    if mode == "BYVOXEL":
        img -= img.mean(1, keepdims=True)
    elif mode == "GLOBAL":
        pos = img > 0
        if pos.any():
            img[pos] -= img[pos].mean()
    images = {("Global", "Power"): img}
    if write:
        name = f"{ctx.prefix},{ctx.out_name},{int(lo)}-{int(hi)}Hz,PWR"
        ctx.files.append(_write(ctx, name, img, step))
        ctx.finish()
    return SamImages(images, times, ctx.w.sources, ctx.files)


def _write(ctx, name, img, step):
    from .io import write_image

    return write_image(ctx.out_dir / name, img, ctx.w.sources, time_step=step, t0=0.0,
                       description="lameg sam_power Hilbert power")
