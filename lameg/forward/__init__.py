"""Co-registration and MEG forward models (SPM/FieldTrip-compatible), vectorised over sources.

Modules
-------
coreg
    Fiducial (Kabsch) and head-shape (ICP) registration of the MEG head frame to MRI space.
headshape
    Dense head shapes (3-D scans of the face) onto the MRI scalp: template fiducials, even
    subsampling, rigid surface ICP.
sensors
    Coil/channel models (CTF axial gradiometers with reference compensation, Neuromag
    magnetometers and planar gradiometers, OPMs).
conductor
    The interface of the volume-conductor models (``coil_leadfield``, ``cache_key``).
sphere
    Single sphere (Sarvas) and local spheres.
singleshell
    Nolte's realistic single shell (SPM 'Single Shell').
bem
    Optional single-layer BEM through MNE-Python.
gain
    Gain-matrix assembly (rank reduction, units fT/(nA m), orientations, content-hash cache).
normals
    Vertex normals with SPM's and FieldTrip's conventions.
"""

from .conductor import ConductorModel
from .coreg import (
    Registration,
    apply_transform,
    icp_register,
    points_outside_surface,
    register_fiducials,
    rigid_transform,
    winding_number,
)
from .gain import clear_gain_cache, compute_gain, compute_leadfield, reduce_rank_project
from .normals import area_weighted_normals, spm_mesh_normals
from .sensors import SensorArray, unit_scale
from .singleshell import SingleShellModel, prepare_nolte
from .sphere import LocalSpheresModel, SphereModel, fit_local_spheres, fit_sphere, sarvas_leadfield

__all__ = [
    "Registration",
    "apply_transform",
    "icp_register",
    "register_fiducials",
    "rigid_transform",
    "points_outside_surface",
    "winding_number",
    "ConductorModel",
    "clear_gain_cache",
    "compute_gain",
    "compute_leadfield",
    "reduce_rank_project",
    "area_weighted_normals",
    "spm_mesh_normals",
    "SensorArray",
    "unit_scale",
    "SingleShellModel",
    "prepare_nolte",
    "LocalSpheresModel",
    "SphereModel",
    "fit_local_spheres",
    "fit_sphere",
    "sarvas_leadfield",
]
