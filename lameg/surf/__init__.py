"""Multilayer cortical meshes: :class:`LayerSurfaceSet` (laMEG 0.2.1 API), built natively.

A :class:`LayerSurfaceSet` manages ``$SUBJECTS_DIR/<subj>/surf/laminar`` with laMEG's
file-name grammar ``[hemi.]<layer>.<stage>[.<orientation>[.fixed|.not_fixed]].gii`` plus JSON
sidecars, so sets written by laMEG load unchanged and sets written here load in laMEG.
:meth:`LayerSurfaceSet.create` needs no FreeSurfer binaries and no MATLAB:

* intermediate layers along the white <-> pial vertex correspondence, equidistant
  (``white + x (pial - white)``, x = laMEG's fractions) or, as a new option, equivolume
  (Bok's principle in the closed form of Waehnert et al. 2014, with per-vertex areas);
* tkRAS -> scanner RAS from the header of ``mri/orig.mgz`` (``N inv(T)``);
* medial-wall removal from ``label/?h.aparc.annot`` (label index <= 0 or named 'unknown');
* hemisphere combination (lh then rh);
* vertex-correspondent decimation (:func:`lameg.mesh.decimate_vertex_subset`): the ds mesh
  is a subset of the pial vertices with the same faces for every layer, manifold, without
  flipped faces; the stored index maps make :meth:`~LayerSurfaceSet.map_between_stages`
  exact;
* dipole orientations ``link_vector``, ``ds_surf_norm``, ``orig_surf_norm``, ``cps``, all
  pointing **inward** (pial -> white) like laMEG's link vectors, with an explicit sign
  convention (faces are oriented outward by signed volume first, normals are then negated);
* the layer-major multilayer mesh.

All geometry from the ``converted`` stage on is in scanner RAS millimetres.

Modules
-------
- :mod:`~lameg.surf.layers`: the :class:`LayerSurfaceSet` (naming, reading, writing,
  validation, vertex bookkeeping);
- :mod:`~lameg.surf.build`: :meth:`LayerSurfaceSet.create` and ``downsample``;
- :mod:`~lameg.surf.stages`: exact maps between stages, atlas regions, fsaverage conversion,
  interpolation from the decimated to the full mesh;
- :mod:`~lameg.surf.orientations`: dipole orientations;
- :mod:`~lameg.surf.predictors`: thickness, distance and radiality to the scalp;
- :mod:`~lameg.surf.head`: head surfaces (scalp from the T1 when none exists);
- :mod:`~lameg.surf.files`: file-name grammar and JSON sidecars.
"""

from __future__ import annotations

from .files import HEAD_MESHES, HEMI_STAGES, ORIENTATIONS, STAGES
from .head import scalp_from_mri
from .layers import LayerSurfaceSet
from .orientations import _vertex_normal_vectors as _vertex_normal_vectors
from .stages import convert_fsaverage_to_native, convert_native_to_fsaverage, interpolate_data

__all__ = [
    "LayerSurfaceSet",
    "interpolate_data",
    "convert_fsaverage_to_native",
    "convert_native_to_fsaverage",
    "scalp_from_mri",
    "STAGES",
    "HEMI_STAGES",
    "ORIENTATIONS",
    "HEAD_MESHES",
]
