"""Laminar analyses (laMEG ``lameg.laminar`` API).

Modules
-------
- :mod:`~lameg.laminar.comparison`: model comparison across layers (:func:`model_comparison`,
  :func:`sliding_window_model_comparison`);
- :mod:`~lameg.laminar.csd`: current source density (:func:`compute_csd`; StandardCSD and
  KCSD1D, native ports of the elephant estimators laMEG calls, with laMEG's smoothing options);
- :mod:`~lameg.laminar.roi`: ROI power contrasts between the pial and white layers
  (:func:`roi_power_comparison` on an inverted dataset, :func:`roi_power_comparison_arrays` on
  arrays of laminar source time series);
- BigBrain laminae (:func:`compute_bigbrain_laminar_weights`, :func:`surface_to_laminae`),
  implemented in :mod:`lameg.bigbrain`.
"""

from __future__ import annotations

from ..bigbrain import compute_bigbrain_laminar_weights, surface_to_laminae
from .comparison import _backend as _backend
from .comparison import model_comparison, sliding_window_model_comparison
from .csd import compute_csd
from .roi import roi_power_comparison, roi_power_comparison_arrays

__all__ = [
    "compute_csd",
    "roi_power_comparison",
    "roi_power_comparison_arrays",
    "model_comparison",
    "sliding_window_model_comparison",
    "compute_bigbrain_laminar_weights",
    "surface_to_laminae",
]
