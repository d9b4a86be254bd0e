"""SAM (synthetic aperture magnetometry) beamformer driven by SAMsrcV5 parameter files.

Programs: :func:`sam_cov` (covariances), :func:`sam_wts` (two-step scalar beamformer weights),
:func:`sam_3d` (power / pseudo-Z images), :func:`sam_4d` (time-resolved images) and :func:`sam_ers`
(event-related images), also available as the ``lameg-sam cov|wts|3d|4d|ers`` command line.
Parameters come from :func:`read_params`. Lead fields come from :mod:`lameg.forward`
(:mod:`lameg.sam.forward`); :func:`laminar_sam_contrast` compares the task-related SAM power of two
cortical layers of a :class:`lameg.surf.LayerSurfaceSet`.
"""

from __future__ import annotations

from .cov import SamCovariance, noise_floor, sam_cov
from .io import SamData
from .laminar import LaminarSamResult, laminar_sam_contrast
from .params import Marker, SamParams, parse_param_text, read_params
from .weights import SamWeights, load_weights, sam_wts

__all__ = [
    "read_params",
    "parse_param_text",
    "SamParams",
    "Marker",
    "SamData",
    "SamCovariance",
    "SamWeights",
    "noise_floor",
    "sam_cov",
    "sam_wts",
    "load_weights",
    "laminar_sam_contrast",
    "LaminarSamResult",
    "sam_3d",
    "sam_4d",
    "sam_ers",
    "make_sam_beamformer",
    "sam_power",
]


def __getattr__(name):
    if name == "sam_power":
        from .power import sam_power

        return sam_power
    if name == "make_sam_beamformer":
        from .mne_interface import make_sam_beamformer

        return make_sam_beamformer
    if name in ("sam_3d", "sam_4d", "sam_ers", "SamImages"):
        from . import imaging

        return getattr(imaging, name)
    raise AttributeError(f"module 'lameg.sam' has no attribute {name!r}")
