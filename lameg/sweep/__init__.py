"""Laminar-accuracy sweeps and whole-cortex accuracy maps from simulations.

:mod:`~lameg.sweep.run` simulates in every layer of many columns and compares layer models
(:func:`run_laminar_sweep`, Szul et al. 2025 protocol); :mod:`~lameg.sweep.maps` turns a
sweep over all (or many) columns into per-column accuracy maps set against the anatomical
score (:func:`laminar_accuracy_map`); :mod:`~lameg.sweep.model` holds what a sweep needs to
know about a participant (:class:`LaminarModel`, :func:`synthetic_model`);
:mod:`~lameg.sweep.fiducials` draws co-registration errors; :mod:`~lameg.sweep.plots` plots
sweep tables. Every sweep runs serially, with joblib, or on a Dask cluster with the same
code and identical results.
"""

from .fiducials import perturb_fiducials
from .maps import AccuracyMap, laminar_accuracy_map, plot_accuracy_map
from .model import FileForward, LaminarModel, synthetic_model
from .plots import NOISE_ONLY_DB, plot_confusion, plot_error_vs_snr
from .run import SweepSettings, chance_error, execute, run_laminar_sweep

__all__ = [
    "AccuracyMap",
    "FileForward",
    "LaminarModel",
    "NOISE_ONLY_DB",
    "SweepSettings",
    "chance_error",
    "execute",
    "laminar_accuracy_map",
    "perturb_fiducials",
    "plot_accuracy_map",
    "plot_confusion",
    "plot_error_vs_snr",
    "run_laminar_sweep",
    "synthetic_model",
]
