"""Anatomical predictors on the layer meshes: thickness, distance and radiality to the scalp."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from .._utils import hash_arrays
from ..exceptions import (
    LamegDataError,
    LamegFormatError,
    LamegValueError,
)
from ..io.gifti import create_surf_gifti
from ..mesh.distance import interpolate_vertex_normals, point_to_mesh
from ..mesh.normals import normit, orient_outward, vertex_normals
from .files import HEAD_MESHES, _pointset
from .head import _find_head_mesh


class PredictorsMixin:
    """Geometry predictors of :class:`~lameg.surf.LayerSurfaceSet`."""

    def get_cortical_thickness(self, stage="ds", hemi=None) -> np.ndarray:
        """``|pial - white|`` per vertex along the vertex correspondence.

        Parameters
        ----------
        stage : str
            Stage of the pial and white meshes (default ``'ds'``).
        hemi : {'lh', 'rh'} or None
            Hemisphere (per-hemisphere stages only).

        Returns
        -------
        ndarray, shape (n_vertices,)
            Cortical thickness in mm.
        """
        p = _pointset(self.load("pial", stage, hemi))
        w = _pointset(self.load("white", stage, hemi))
        if p.shape != w.shape:
            raise LamegDataError(f"pial ({len(p)}) and white ({len(w)}) {stage} meshes differ in "
                                 "size; re-run create()")
        return np.linalg.norm(p - w, axis=1)

    def load_head_mesh(self, mesh_type="scalp") -> nib.gifti.GiftiImage:
        """Head surface in scanner RAS mm as a GIfTI image (POINTSET, TRIANGLE).

        Looked up in order: laMEG's ``bem/outer_skin.converted.gii`` (scalp only);
        FreeSurfer/MNE ``bem/{outer_skin,inner_skull,outer_skull}.surf`` (tkRAS, converted
        with ``orig.mgz``); MNE ``bem/<subj>-head-dense.fif`` / ``<subj>-head.fif`` (scalp,
        metres, converted); ``bem/watershed/<subj>_<kind>_surface``; SPM's
        ``mri/orig{scalp,iskull,oskull}_2562.surf.gii``. If no scalp exists, one is built from
        ``mri/orig.mgz`` (:func:`scalp_from_mri`). Faces are oriented outward.

        Parameters
        ----------
        mesh_type : {'scalp', 'iskull', 'oskull'}
            Scalp, inner skull or outer skull.

        Returns
        -------
        nibabel.gifti.GiftiImage
            POINTSET (n, 3) in scanner RAS mm and TRIANGLE (m, 3), 0-based.
        """
        if mesh_type not in HEAD_MESHES:
            raise LamegValueError(f"mesh_type must be one of {HEAD_MESHES}, got {mesh_type!r}")
        v, f = _find_head_mesh(self, mesh_type)
        f, _ = orient_outward(v, f)
        return create_surf_gifti(v, f)

    def _head_arrays(self, mesh_type="scalp"):
        """(vertices, faces) of a head surface as found on disk (winding not normalised:
        distances and ``|cos|`` with its normals do not depend on it)."""
        if mesh_type not in HEAD_MESHES:
            raise LamegValueError(f"mesh_type must be one of {HEAD_MESHES}, got {mesh_type!r}")
        v, f = _find_head_mesh(self, mesh_type)
        return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)

    def _scalp_query(self, points):
        """Exact closest scalp points of ``points``: (distance, face, bary, scalp v, scalp f).

        The result is cached on the instance, keyed by the content of the points and of the
        scalp mesh, so distance and radiality of the same layer share one query.
        """
        sv, sf = self._head_arrays("scalp")
        key = hash_arrays(points, sv, sf)
        cache = self._scalp_cache
        if key not in cache:
            dist, _, face, bary = point_to_mesh(points, sv, sf)
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = (dist, face, bary)
        dist, face, bary = cache[key]
        return dist, face, bary, sv, sf

    def get_distance_to_scalp(self, layer_name="pial", stage="ds", hemi=None, method="exact"
                              ) -> np.ndarray:
        """Distance (mm) from each vertex of a layer to the scalp.

        Parameters
        ----------
        layer_name, stage, hemi
            The layer mesh (as :meth:`load`; default the ds pial surface).
        method : {'exact', 'vertex'}
            ``'exact'``: Euclidean distance to the scalp *surface* (closest point on any
            triangle, :func:`lameg.mesh.distance.point_to_mesh`); ``'vertex'``: to the nearest
            scalp vertex (laMEG's value, an overestimate by up to about half an edge length).

        Returns
        -------
        ndarray, shape (n_vertices,)
        """
        if method not in ("exact", "vertex"):
            raise LamegValueError("method must be 'exact' or 'vertex'")
        v, _, _ = self._mesh(layer_name, stage, hemi)
        if method == "vertex":
            sv, _ = self._head_arrays("scalp")
            return cKDTree(sv).query(v)[0]
        return self._scalp_query(v)[0].copy()

    def get_radiality_to_scalp(self, layer_name="pial", orientation="link_vector", fixed=True,
                               method="exact") -> np.ndarray:
        """``|o . n|`` in [0, 1]: dipole orientation vs the scalp normal (1 = radial).

        Parameters
        ----------
        layer_name, orientation, fixed
            The ds layer mesh with the orientation array (written by :meth:`create`).
        method : {'exact', 'vertex'}
            ``'exact'``: the normal at the closest point of the scalp surface, interpolated
            barycentrically from area-weighted vertex normals (the closest-point query is
            shared with :meth:`get_distance_to_scalp`); ``'vertex'``: laMEG's definition, the
            normal (normalised sum of unit face normals) of the nearest scalp vertex.

        Returns
        -------
        ndarray, shape (n_vertices,)
        """
        if method not in ("exact", "vertex"):
            raise LamegValueError("method must be 'exact' or 'vertex'")
        v, _, o = self._mesh(layer_name, "ds", None, orientation, fixed)
        if o is None:
            raise LamegFormatError(f"{layer_name} ds mesh has no orientation array; re-run "
                                   "create() with this orientation")
        o = normit(o)
        if method == "vertex":
            sv, sf = self._head_arrays("scalp")
            n = normit(vertex_normals(sv, sf, weighting="unit"))[cKDTree(sv).query(v)[1]]
        else:
            _, face, bary, sv, sf = self._scalp_query(v)
            n = interpolate_vertex_normals(vertex_normals(sv, sf, "area"), sf, face, bary)
        return np.clip(np.abs(np.einsum("ij,ij->i", o, n)), 0.0, 1.0)

    def get_bigbrain_layer_boundaries(self, subj_coord=None, fsaverage=None):
        """BigBrain laminar boundaries (cumulative depth of laminae I-VI) at cortical columns.

        See :func:`lameg.bigbrain.get_bigbrain_layer_boundaries` (needs an fsaverage subject
        with ``surf/?h.sphere.reg`` in SUBJECTS_DIR or ``$FREESURFER_HOME/subjects``).

        Parameters
        ----------
        subj_coord : array-like, shape (3,) or (n, 3), optional
            Scanner RAS coordinate(s) (mm) of pial points; default every ds pial vertex.
        fsaverage : str, path-like or None
            fsaverage subject name or folder (default: searched).

        Returns
        -------
        ndarray, shape (6, n) or (6,) for one coordinate
            Depth (0 = pial, 1 = white) of the lower boundary of laminae I-VI.
        """
        from ..bigbrain import get_bigbrain_layer_boundaries

        return get_bigbrain_layer_boundaries(self, subj_coord, fsaverage)
