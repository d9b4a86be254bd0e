"""The interface every MEG volume-conductor model offers to :func:`lameg.forward.compute_gain`.

A model computes the field of unit x/y/z dipoles at the coils of a
:class:`~lameg.forward.sensors.SensorArray` and names its geometry for the gain cache. The
models (:class:`~lameg.forward.sphere.SphereModel`,
:class:`~lameg.forward.sphere.LocalSpheresModel`,
:class:`~lameg.forward.singleshell.SingleShellModel`, :class:`~lameg.forward.bem.BEMModel`)
derive from :class:`ConductorModel` and implement ``_coil_leadfield`` and ``_cache_text``; the
public methods, their arguments and their documentation live here once.
"""

from __future__ import annotations

import numpy as np

from .._docs import fill_doc
from ..exceptions import LamegNotImplementedError

__all__ = ["ConductorModel"]


class ConductorModel:
    """Base class of the MEG volume-conductor models (see the module docstring)."""

    @fill_doc
    def coil_leadfield(self, dip_pos: np.ndarray, sensors) -> np.ndarray:
        """Coil lead fields of unit dipoles, computed as the class docstring describes.

        Parameters
        ----------
        %(dip_pos)s
        %(sensors)s

        Returns
        -------
        %(coil_leadfield)s
        """
        return self._coil_leadfield(dip_pos, sensors)

    @fill_doc
    def cache_key(self) -> str:
        """Identify the model for the gain cache (its kind, geometry and parameters).

        Returns
        -------
        %(cache_key_returns)s
        """
        return self._cache_text()

    def _coil_leadfield(self, dip_pos: np.ndarray, sensors) -> np.ndarray:
        raise LamegNotImplementedError(
            f"{type(self).__name__} does not implement _coil_leadfield; a conductor model must "
            "compute the coil lead fields of unit dipoles")

    def _cache_text(self) -> str:
        raise LamegNotImplementedError(
            f"{type(self).__name__} does not implement _cache_text; a conductor model must name "
            "its geometry for the gain cache")
