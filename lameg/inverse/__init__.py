"""Bayesian source inversion on arrays (SPM's ``spm_eeg_invert_classic`` / ``spm_eeg_invert``).

Submodules: :mod:`~lameg.inverse.reml` (ReML and free energy), :mod:`~lameg.inverse.svd`
(SPM linear algebra), :mod:`~lameg.inverse.modes` (spatial/temporal reduction),
:mod:`~lameg.inverse.kernels` (patch kernels), :mod:`~lameg.inverse.priors` (source priors),
:mod:`~lameg.inverse.engine` (the engines), :mod:`~lameg.inverse.crossval`,
:mod:`~lameg.inverse.results` and :mod:`~lameg.inverse.cache` (per-gain quantities reused by
repeated inversions; :func:`clear_cache` frees them).
"""

from .cache import clear_cache
from .engine import invert_classic, invert_standard
from .kernels import geodesic_kernel, green_kernel
from .reml import reml_sc, sp_reml
from .results import InversionResult, WindowResult

__all__ = ["clear_cache", "invert_classic", "invert_standard", "geodesic_kernel",
           "green_kernel", "reml_sc", "sp_reml", "InversionResult", "WindowResult"]
