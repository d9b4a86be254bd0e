"""Simulated CTF datasets with a known source, readable by SAMsrcV5 and lameg alike.

:func:`simulate_ctf_dataset` takes a real CTF dataset as a template (sensor geometry, gains,
balancing), puts one current dipole (single-sphere forward of :mod:`lameg.sam.ctf_forward`) into
white sensor noise and writes a new ``.ds`` with one marker per trial. SAMsrcV5's own
``sam_simulate`` only writes text scans through the source (no dataset), so this is how the
differential tests get data with a ground truth that both implementations can read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validate import check_float, check_int
from .ctf import read_ctf, write_ctf_dataset
from .ctf_forward import sphere_lead_fields

__all__ = ["simulate_ctf_dataset"]


def simulate_ctf_dataset(template: str | os.PathLike, out: str | os.PathLike, *,
                         position=(0.0, 0.02, 0.06), orientation=(1.0, 0.0, 0.0),
                         moment: float = 20e-9, freq: float = 20.0, active=(0.0, 0.15),
                         n_trials: int = 40, noise: float = 5e-15,
                         origin=(0.0, 0.0, 0.04), seed: int = 0) -> Path:
    """Write a dataset with a dipole source active after a ``stim`` marker in every trial.

    Parameters
    ----------
    template : path-like
        A CTF ``.ds`` (its geometry, gains, trial length and pre-trigger samples are kept).
    out : path-like
        The new ``.ds`` folder.
    position : (3,) m
        Dipole position (head frame).
    orientation : (3,)
        Dipole direction (normalised here).
    moment : float
        Peak moment, A m.
    freq : float
        Frequency (Hz) of the source's oscillation in the active window.
    active : (float, float)
        Window (s, relative to the ``stim`` marker at each trial's time zero) where the source is
        on; random phase per trial; a Hann taper.
    n_trials : int
    noise : float
        White sensor-noise density, T / sqrt(Hz).
    origin : (3,) m
        Sphere origin of the forward model.
    seed : int

    Returns
    -------
    Path
        The dataset folder; markers ``stim`` (latency 0) in every trial.
    """
    check_int(n_trials, "n_trials", min_value=1)
    check_float(moment, "moment", min_value=0)
    check_float(noise, "noise", min_value=0)
    rng = np.random.default_rng(seed)
    ds = read_ctf(template)
    T, fs = ds.n_samples, ds.fs
    t = (np.arange(T) - ds.pre_trig) / fs
    ori = np.asarray(orientation, float)
    ori = ori / np.linalg.norm(ori)
    lf = sphere_lead_fields(ds, np.asarray(position, float)[None], origin)[0] @ ori  # (M,)
    on = (t >= active[0]) & (t <= active[1])
    taper = np.zeros(T)
    taper[on] = np.hanning(on.sum())
    data = np.zeros((n_trials, len(ds.chan_names), T))
    sd = noise * np.sqrt(fs / 2)
    for e in range(n_trials):
        s = moment * taper * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        data[e, ds.primary] = np.outer(lf, s) + rng.normal(0, sd, (ds.primary.size, T))
        data[e, ds.reference] = rng.normal(0, sd, (ds.reference.size, T))
    return write_ctf_dataset(template, out, data, {"stim": [(e, 0.0) for e in range(n_trials)]})
