"""The :class:`LayerSurfaceSet`: naming, reading, writing, validation and vertex bookkeeping."""

from __future__ import annotations

import json
import os
from datetime import datetime

import nibabel as nib
import numpy as np

from .._docs import fill_doc
from .._validate import check_int, check_option, validate_type
from ..exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegValueError,
)
from ..io.gifti import gifti_arrays, gifti_n_vertices, save_gifti
from .build import BuildMixin
from .commit import RETIRED_PREFIX, STAGING_PREFIX, recover, surface_lock
from .files import HEMI_STAGES, ORIENTATIONS, STAGES, _layer_name, _read_build_id, _write_json
from .orientations import _orientations
from .predictors import PredictorsMixin
from .stages import StageMapsMixin


@fill_doc
class LayerSurfaceSet(StageMapsMixin, PredictorsMixin, BuildMixin):
    """Laminar surface hierarchy of one FreeSurfer subject (laMEG 0.2.1 API).

    Parameters
    ----------
    subj_id : str
        Subject folder name inside ``subjects_dir``.
    n_layers : int
        Number of layers including pial and white (>= 2).
    subjects_dir : str or path-like, optional
        FreeSurfer ``SUBJECTS_DIR``; defaults to the ``SUBJECTS_DIR`` environment variable.

    Attributes
    ----------
    subj_id, n_layers : as given
    layer_spacing : ndarray, shape (n_layers,)
        ``linspace(1, 0, n_layers)`` (1 = pial, 0 = white).
    subjects_dir, subj_dir, mri_file, surf_dir, laminar_surf_dir : str
        Paths (``mri_file`` = ``<subj>/mri/orig.nii``, written by :meth:`create`).

    Raises
    ------
    LamegFileNotFoundError
        (an ``OSError``/``EnvironmentError``) if no subjects directory is given or set, or the
        subject folder does not exist.
    """

    def __init__(self, subj_id: str, n_layers: int, subjects_dir: str | os.PathLike | None = None):
        validate_type(subj_id, str, "subj_id")
        self.n_layers = check_int(n_layers, "n_layers", min_value=2)
        self.subj_id = subj_id
        self.layer_spacing = np.linspace(1, 0, self.n_layers)
        if subjects_dir is not None:
            validate_type(subjects_dir, "path-like", "subjects_dir")
        sd = subjects_dir if subjects_dir is not None else os.getenv("SUBJECTS_DIR")
        if sd is None:
            raise LamegFileNotFoundError(
                "SUBJECTS_DIR is not set and no subjects_dir was provided; pass "
                "subjects_dir=... or set the SUBJECTS_DIR environment variable")
        self.subjects_dir = str(sd)
        self.subj_dir = os.path.join(self.subjects_dir, self.subj_id)
        if not os.path.isdir(self.subj_dir):
            raise LamegFileNotFoundError(
                f"Subject directory not found: {self.subj_dir}. Run FreeSurfer's recon-all for "
                "this subject or pass the right subjects_dir.")
        self.mri_file = os.path.join(self.subj_dir, "mri", "orig.nii")
        self.surf_dir = os.path.join(self.subj_dir, "surf")
        self.laminar_surf_dir = os.path.join(self.surf_dir, "laminar")
        self._scalp_cache: dict = {}   # content hash -> closest scalp points of a layer
        if not os.path.isdir(self.laminar_surf_dir) and os.path.isdir(self.surf_dir) and any(
                e.startswith((STAGING_PREFIX, RETIRED_PREFIX)) for e in os.listdir(self.surf_dir)):
            # an update of surf/laminar was interrupted between its two renames
            with surface_lock(self.surf_dir):
                self._recover()

    def _recover(self) -> list[str]:
        """Finish an interrupted update of ``surf/laminar`` and remove leftovers (lock held)."""
        return recover(self.surf_dir, self.laminar_surf_dir,
                       (os.path.dirname(self.mri_file), os.path.join(self.subj_dir, "bem")))

    def __repr__(self) -> str:
        return (f"<LayerSurfaceSet subj_id={self.subj_id!r}, n_layers={self.n_layers}, "
                f"dir={self.laminar_surf_dir!r}>")

    # ------------------------------------------------------------------ naming and I/O
    def _get_fname(self, layer_name, stage="raw", hemi=None, orientation=None, fixed=None,
                   directory=None) -> str:
        check_option(stage, STAGES, "stage")
        check_option(hemi, (None, "lh", "rh"), "hemi")
        check_option(orientation, (None, *ORIENTATIONS), "orientation")
        if fixed is not None:
            validate_type(fixed, bool, "fixed")
        parts = []
        if hemi:
            parts.append(hemi)
        parts.append(str(layer_name))
        parts.append(stage)
        if orientation:
            parts.append(orientation)
            if fixed is not None:
                parts.append("fixed" if fixed else "not_fixed")
        return os.path.join(directory or self.laminar_surf_dir, ".".join(parts) + ".gii")

    def get_mesh_path(self, layer_name=None, stage="ds", hemi=None, orientation="link_vector",
                      fixed=True) -> str:
        """Path of a mesh file; ``layer_name=None`` is the multilayer mesh.

        Example: ``get_mesh_path()`` -> ``.../surf/laminar/multilayer.11.ds.link_vector.fixed.gii``.

        Parameters
        ----------
        %(mesh_file)s

        Returns
        -------
        str
            ``surf/laminar/[hemi.]<layer>.<stage>[.<orientation>[.fixed|.not_fixed]].gii``
            (the file need not exist).
        """
        if layer_name is None:
            layer_name = f"multilayer.{self.n_layers}"
        return self._get_fname(layer_name, stage=stage, hemi=hemi, orientation=orientation,
                               fixed=fixed)

    def get_layer_names(self) -> list[str]:
        """Layer names, pial first: ``['pial', '0.900', ..., 'white']`` for 11 layers.

        Returns
        -------
        list of str, length n_layers
            ``'pial'``, the fractions of the intermediate layers (1 = pial, 0 = white) with three
            decimals, ``'white'``.
        """
        return [_layer_name(x) for x in self.layer_spacing]

    def load(self, layer_name=None, stage="raw", hemi=None, orientation=None, fixed=None
             ) -> nib.gifti.GiftiImage:
        """Load a mesh as a GIfTI image (note: default stage 'raw', as laMEG).

        Parameters
        ----------
        %(mesh_file)s

        Returns
        -------
        nibabel.gifti.GiftiImage
            POINTSET (n_vertices, 3) float32 (tkRAS mm for 'raw', scanner RAS mm from
            'converted' on), TRIANGLE (n_faces, 3) int32 (0-based) and, for oriented files, a
            VECTOR array (n_vertices, 3) of unit orientations.

        Raises
        ------
        LamegFileNotFoundError
            If the file does not exist (the message says how to create it).
        """
        path = self.get_mesh_path(layer_name, stage=stage, hemi=hemi, orientation=orientation,
                                  fixed=fixed)
        if not os.path.exists(path):
            if stage in HEMI_STAGES and hemi is None:
                raise LamegValueError(f"stage {stage!r} is stored per hemisphere: pass "
                                      "hemi='lh' or hemi='rh'")
            if stage not in HEMI_STAGES and hemi is not None:
                raise LamegValueError(f"stage {stage!r} combines both hemispheres: pass "
                                      "hemi=None")
            raise LamegFileNotFoundError(
                f"Surface file not found: {path}. Run LayerSurfaceSet({self.subj_id!r}, "
                f"{self.n_layers}).create(...) with the wanted orientation/fixed settings.")
        return nib.load(path)

    def _mesh(self, layer_name=None, stage="ds", hemi=None, orientation=None, fixed=None):
        return gifti_arrays(self.load(layer_name, stage, hemi, orientation, fixed),
                            self.get_mesh_path(layer_name, stage, hemi, orientation, fixed))

    def save(self, gifti_obj, layer_name=None, stage="raw", hemi=None, orientation=None,
             fixed=None, meta=None) -> None:
        """Write a mesh and its JSON sidecar (with ``modified_at``) atomically.

        Parameters
        ----------
        gifti_obj : nibabel.gifti.GiftiImage
            The surface (:func:`lameg.io.gifti.create_surf_gifti`).
        %(mesh_file)s
        meta : dict, optional
            Sidecar content (JSON-serialisable; NumPy arrays are written as lists).
        """
        path = self.get_mesh_path(layer_name, stage=stage, hemi=hemi, orientation=orientation,
                                  fixed=fixed)
        meta = dict(meta or {})
        meta["modified_at"] = datetime.now().isoformat()
        with surface_lock(self.surf_dir):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            save_gifti(gifti_obj, path)
            _write_json(path[:-4] + ".json", meta)

    def load_meta(self, layer_name=None, stage="raw", hemi=None, orientation=None, fixed=None
                  ) -> dict:
        """JSON sidecar of a mesh as a dict (``{}`` if absent).

        Parameters
        ----------
        %(mesh_file)s

        Returns
        -------
        dict
            E.g. ``build_id``, ``t_orig``/``n_orig`` (4x4 FreeSurfer matrices),
            ``deep_vertices_removed`` (0-based indices), ``ds_factor``, ``modified_at``.
        """
        path = self.get_mesh_path(layer_name, stage=stage, hemi=hemi, orientation=orientation,
                                  fixed=fixed)[:-4] + ".json"
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def update_meta(self, layer_name=None, stage="raw", hemi=None, orientation=None, fixed=None,
                    updates=None) -> None:
        """Merge ``updates`` into a sidecar (no-op if None); sets ``modified_at``.

        Parameters
        ----------
        %(mesh_file)s
        updates : dict or None
            Keys to add or replace.
        """
        if updates is None:
            return
        path = self.get_mesh_path(layer_name, stage=stage, hemi=hemi, orientation=orientation,
                                  fixed=fixed)[:-4] + ".json"
        with surface_lock(self.surf_dir):
            meta = self.load_meta(layer_name, stage, hemi, orientation, fixed)
            meta.update(updates)
            meta["modified_at"] = datetime.now().isoformat()
            _write_json(path, meta)

    def validate(self, required_stages=("raw", "converted", "nodeep", "combined", "ds"),
                 hemis=("lh", "rh"), orientations=None, fixed=None) -> None:
        """Check that the files of the requested stages exist and agree in vertex counts.

        Per-hemisphere stages are checked per hemisphere, ``combined`` across layers, ``ds``
        only when ``orientations`` are given (each orientation and fixed state). Faces of the
        ``ds`` layers of one orientation must also be identical, and all files must come from
        one :meth:`create` run, or from runs with the same inputs and settings (the
        ``build_id`` of their sidecars; files without one, e.g. written by laMEG, count as one
        unrecorded build).

        Parameters
        ----------
        required_stages : sequence of str
            Stages to check (default all five).
        hemis : sequence of {'lh', 'rh'}
            Hemispheres of the per-hemisphere stages.
        orientations : sequence of str, optional
            Orientation methods whose oriented ``ds`` files are checked (``ds`` is skipped
            without).
        fixed : bool or None
            Fixed state of those files (None: both).

        Raises
        ------
        LamegFileNotFoundError
            Listing every missing file.
        LamegDataError
            On vertex-count or face mismatches, or files of different builds (mixed set).
        """
        missing = []
        names = self.get_layer_names()
        builds: dict = {}   # build id -> files (None: written without one, e.g. by laMEG)

        def _check(groups):
            for key, entries in groups.items():
                ref = None
                for name, path in entries:
                    if not os.path.exists(path):
                        missing.append(path)
                        continue
                    builds.setdefault(_read_build_id(path[:-4] + ".json"), []).append(path)
                    v, f, _ = gifti_arrays(nib.load(path), path)
                    if ref is None:
                        ref = (name, len(v), f)
                    elif len(v) != ref[1]:
                        raise LamegDataError(
                            f"Vertex mismatch in {name} ({key}): expected {ref[1]} (as "
                            f"{ref[0]}), found {len(v)}; re-run create()")
                    elif key.startswith("ds") and not np.array_equal(f, ref[2]):
                        raise LamegDataError(f"Faces of {name} ({key}) differ from {ref[0]}; "
                                             "re-run create()")

        for stage in required_stages:
            if stage not in STAGES:
                raise LamegValueError(f"unknown stage {stage!r}; choose from {STAGES}")
            groups = {}
            if stage in HEMI_STAGES:
                for h in hemis:
                    groups[h] = [(n, self._get_fname(n, stage, h)) for n in names]
            elif stage == "combined":
                groups["combined"] = [(n, self._get_fname(n, stage)) for n in names]
            elif stage == "ds" and orientations:
                states = [fixed] if fixed is not None else [True, False]
                for o in orientations:
                    for fx in states:
                        groups[f"ds {o} {fx}"] = [(n, self._get_fname(n, "ds", None, o, fx))
                                                  for n in names]
            _check(groups)
        if missing:
            raise LamegFileNotFoundError("Missing expected surface files:\n" + "\n".join(missing))
        if len(builds) > 1:
            groups = sorted(builds.items(), key=lambda kv: -len(kv[1]))
            detail = "; ".join(
                f"{len(files)} file(s) from {'an unrecorded build' if bid is None else 'build ' + bid[:8]}"
                f" (e.g. {os.path.basename(files[0])})" for bid, files in groups)
            raise LamegDataError(
                f"mixed surface set in {self.laminar_surf_dir}: its files come from different "
                f"create() runs (other inputs or settings): {detail}; re-run create()")

    # ------------------------------------------------------------------ vertex bookkeeping
    def get_vertices_per_layer(self, orientation="link_vector", fixed=True) -> int:
        """Number of vertices per layer (columns) of the ds multilayer mesh.

        Parameters
        ----------
        %(ds_orientation)s

        Returns
        -------
        int
            ``n_vertices(multilayer) / n_layers``.
        """
        path = self.get_mesh_path(None, "ds", None, orientation, fixed)
        if not os.path.exists(path):
            self.load(None, "ds", None, orientation, fixed)  # raises the explanatory error
        return int(gifti_n_vertices(path) // self.n_layers)

    def _layer_index(self, layer) -> int:
        names = self.get_layer_names()
        if isinstance(layer, str):
            if layer not in names:
                raise LamegValueError(f"unknown layer {layer!r}; layers are {names}")
            return names.index(layer)
        idx = check_int(layer, "layer")
        if not 0 <= idx < self.n_layers:
            raise LamegValueError(f"layer index {layer} outside [0, {self.n_layers})")
        return idx

    def get_multilayer_vertex(self, layer, layer_vertex, orientation="link_vector", fixed=True):
        """Multilayer index ``layer_idx * V + layer_vertex`` (layer-major layout).

        Parameters
        ----------
        layer : int or str
            0-based layer index (0 = pial) or layer name.
        layer_vertex : int or array-like of int
            0-based column(s), in ``[0, V)`` with V = :meth:`get_vertices_per_layer`.
        %(ds_orientation)s

        Returns
        -------
        int or ndarray of int
            Multilayer vertex index(es), the shape of ``layer_vertex``.
        """
        n_v = self.get_vertices_per_layer(orientation, fixed)
        lv = np.asarray(layer_vertex)
        if lv.dtype.kind not in "iu":
            raise LamegValueError(f"layer_vertex must be integer index(es), got {layer_vertex!r}")
        if np.any(lv < 0) or np.any(lv >= n_v):
            raise LamegValueError(f"layer_vertex must be in [0, {n_v})")
        out = self._layer_index(layer) * n_v + lv
        return int(out) if np.ndim(out) == 0 else out

    def get_layer_vertices(self, vertex, orientation="link_vector", fixed=True) -> np.ndarray:
        """The ``n_layers`` multilayer indices of one column (pial first).

        Parameters
        ----------
        %(column)s
        %(ds_orientation)s

        Returns
        -------
        ndarray of int, shape (n_layers,)
            ``layer * V + vertex`` for layer 0 (pial) ... n_layers - 1 (white).
        """
        n_v = self.get_vertices_per_layer(orientation, fixed)
        vertex = check_int(vertex, "vertex")
        if not 0 <= vertex < n_v:
            raise LamegValueError(f"vertex must be in [0, {n_v})")
        return np.arange(self.n_layers) * n_v + vertex

    def get_interlayer_distance(self, vertex, orientation="link_vector", fixed=True
                                ) -> np.ndarray:
        """Distances between consecutive layers of a column.

        Parameters
        ----------
        %(column)s
        %(ds_orientation)s

        Returns
        -------
        ndarray, shape (n_layers - 1,)
            Euclidean distances in mm, pial -> first intermediate layer first.
        """
        v, _, _ = self._mesh(None, "ds", None, orientation, fixed)
        idx = self.get_layer_vertices(vertex, orientation, fixed)
        return np.linalg.norm(np.diff(v[idx], axis=0), axis=1)

    # ------------------------------------------------------------------ stage mapping

    # ------------------------------------------------------------------ orientations
    def compute_dipole_orientations(self, method, fixed=True) -> np.ndarray:
        """Unit dipole orientations of every ds layer, shape (n_layers, V, 3), inward.

        Methods: ``'link_vector'`` (``unit(white - pial)``), ``'ds_surf_norm'`` (inward
        normals of the ds mesh), ``'orig_surf_norm'`` (inward normals of the full-resolution
        combined mesh at the exact original vertex of each ds vertex), ``'cps'`` (mean
        full-resolution normal over the original vertices whose nearest ds vertex it is). With
        ``fixed`` the pial orientation is used for every layer (link vectors are identical in
        all layers anyway).

        Parameters
        ----------
        method : {'link_vector', 'ds_surf_norm', 'orig_surf_norm', 'cps'}
            Orientation method.
        fixed : bool
            Use the pial layer's orientation in every layer.

        Returns
        -------
        ndarray, shape (n_layers, n_vertices_per_layer, 3)
            Unit vectors (scanner RAS), pointing from pial towards white.
        """
        check_option(method, ORIENTATIONS, "method")
        validate_type(fixed, bool, "fixed")
        names = self.get_layer_names()
        ds = {n: self._mesh(n, "ds")[:2] for n in names}
        comb = {}
        if method in ("orig_surf_norm", "cps"):
            comb = {n: self._mesh(n, "combined")[:2] for n in names}
            ds_kept = self._stage_maps(names[0])[2]
        else:
            ds_kept = None
        return _orientations(method, fixed, names, ds, comb, ds_kept)
