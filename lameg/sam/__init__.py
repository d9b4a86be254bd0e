"""SAM (synthetic aperture magnetometry) beamformer behaving as SAMsrcV5 5.1.

Programs: :func:`sam_cov` (covariances), :func:`sam_wts` (two-step scalar beamformer weights),
:func:`sam_3d` (power / pseudo-Z images), :func:`sam_4d` (time-resolved images),
:func:`sam_power` (Hilbert power over the recording) and :func:`sam_ers` (event-related images),
also available as ``lameg-sam sam_cov|sam_wts|sam_3d|sam_4d|sam_power|sam_ers`` with SAMsrcV5's
options. They read CTF datasets as SAMsrcV5 does and read and write its files (``.cov``, NIfTI
weights and images, ``hull.shape``, ``default.hdm``, ``MarkerFile.mrk``); the results are checked
against the real programs. :func:`make_sam_beamformer` gives the weights as an MNE
``Beamformer`` from MNE objects.
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
