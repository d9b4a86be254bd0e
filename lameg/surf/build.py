"""Construction of the laminar surface hierarchy (:meth:`LayerSurfaceSet.create`)."""

from __future__ import annotations

import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import nibabel as nib
import numpy as np

from .._utils import atomic_path, logger, progress
from .._validate import check_float, check_option, check_writable, validate_type
from ..exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
)
from ..io import freesurfer as fsio
from ..io.gifti import write_surf_gifti
from ..mesh import adjacency as _adj
from ..mesh.decimate import decimate_vertex_subset
from ..mesh.normals import orient_outward, vertex_areas
from ..mesh.repair import fix_non_manifold_edges
from .commit import staging_folder, surface_lock, switch_over
from .files import ORIENTATIONS, _layer_name, _write_json
from .head import _ensure_scalp, _has_scalp, scalp_from_mri
from .orientations import _orientations


def _equivolume_fraction(alpha: np.ndarray | float, area_white: np.ndarray,
                         area_pial: np.ndarray) -> np.ndarray:
    """Distance fraction from white giving volume fraction ``alpha`` (0 = white, 1 = pial).

    With the cross-sectional area varying linearly from ``A_w`` (white) to ``A_p`` (pial),
    the volume below depth t is ``A_w t + (A_p - A_w) t^2 / 2`` (times the thickness); solving
    for a volume fraction ``alpha`` gives
    ``t = alpha (A_w + A_p) / (A_w + sqrt((1 - alpha) A_w^2 + alpha A_p^2))``
    (Waehnert et al. 2014, written without cancellation when ``A_p ~ A_w``).
    """
    aw = np.maximum(np.asarray(area_white, float), 1e-12)
    ap = np.maximum(np.asarray(area_pial, float), 1e-12)
    return alpha * (aw + ap) / (aw + np.sqrt((1 - alpha) * aw ** 2 + alpha * ap ** 2))


#: Below this pial-white distance (mm) a vertex has no thickness (degenerate geometry).
_MIN_THICKNESS_MM = 1e-6
#: A cortical surface in mm spans 100-200 mm; below this extent it is in another unit.
_MIN_EXTENT_MM = 20.0


def _check_geometry(hemi: str, white: np.ndarray, pial: np.ndarray) -> None:
    """Reject surfaces in metres/centimetres and pial surfaces that coincide with white."""
    extent = float(np.max(np.ptp(pial, axis=0)))
    if extent < _MIN_EXTENT_MM:
        unit = "metres (multiply by 1000)" if extent < 0.5 else "centimetres (multiply by 10)"
        raise LamegDataError(
            f"{hemi}.pial spans only {extent:.3g} units; cortical surfaces must be in mm (a "
            f"hemisphere spans 100-200 mm): it looks like {unit}")
    flat = np.linalg.norm(pial - white, axis=1) < _MIN_THICKNESS_MM
    if flat.mean() > 0.5:
        raise LamegDataError(
            f"{hemi}.pial and {hemi}.white coincide at {int(flat.sum())} of {len(flat)} vertices "
            "(degenerate geometry: zero thickness, zero-length link vectors); check that "
            f"surf/{hemi}.pial is FreeSurfer's pial surface and not a copy of the white one")


def _build_id(paths: list[str], ds_factor: float, layer_model: str) -> str:
    """Content hash of the inputs and settings that determine the surfaces' geometry."""
    h = hashlib.sha1()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    h.update(f"{float(ds_factor)!r}/{layer_model}".encode())
    return h.hexdigest()


class BuildMixin:
    """Creation of the layer set."""

    def _create_layer_surfaces(self, hemispheres=("lh", "rh"), n_jobs=-1,
                               layer_model="equidistant"):
        """Intermediate layers in memory: ``{hemi: {layer_name: vertices (tkRAS)}}``."""
        out = {}
        for h in hemispheres:
            w, fw = fsio.read_surface(os.path.join(self.surf_dir, f"{h}.white"))
            p, _ = fsio.read_surface(os.path.join(self.surf_dir, f"{h}.pial"))
            if layer_model == "equivolume":
                aw, ap = vertex_areas(w, fw), vertex_areas(p, fw)
            layers = {}
            for x in self.layer_spacing:
                if layer_model == "equivolume" and 0 < x < 1:
                    t = _equivolume_fraction(x, aw, ap)[:, None]
                else:
                    t = x
                layers[_layer_name(x)] = w + t * (p - w)
            out[h] = layers
        return out

    def create(self, ds_factor=0.1, orientation="link_vector", fix_orientation=True, n_jobs=-1,
               spm_instance=None, *, layer_model="equidistant", scalp=True, verbose=True,
               **scalp_kwargs) -> None:
        """Build the whole laminar hierarchy in ``surf/laminar`` (no FreeSurfer binaries).

        Parameters
        ----------
        ds_factor : float
            Fraction of **faces** kept by the decimation (laMEG/``reducepatch`` semantics).
        orientation : {'link_vector', 'ds_surf_norm', 'orig_surf_norm', 'cps'}
            Dipole orientation method (see :meth:`compute_dipole_orientations`).
        fix_orientation : bool
            Use the pial orientation in every layer.
        n_jobs : int
            Accepted for compatibility (the computation is vectorised).
        spm_instance : object, optional
            Accepted for compatibility; unused.
        layer_model : {'equidistant', 'equivolume'}
            Placement of the intermediate layers (laMEG: equidistant).
        scalp : bool
            If no scalp surface exists in ``bem/``, build ``bem/outer_skin.{raw,converted}.gii``
            from ``mri/orig.mgz`` (:func:`scalp_from_mri`; keyword arguments are passed on).
        verbose : bool
            Progress bar.
        **scalp_kwargs
            Passed to :func:`scalp_from_mri` (``threshold``, ``n_faces``, ``smooth_iter``).

        Raises
        ------
        LamegFileNotFoundError
            Missing inputs (all listed, with how to produce them).
        LamegDataError
            White/pial vertex-count or face mismatch, non-finite coordinates, annotation not
            matching the surface, or a mesh that cannot be decimated.
        LamegValueError
            Bad arguments (unknown orientation, ds_factor outside (0, 1], ...).
        LamegPermissionError
            A read-only output folder (``surf``, ``surf/laminar``, ``mri``, ``bem``) or
            ``mri/orig.nii``.

        Notes
        -----
        Everything is written into a staging folder beside ``surf/laminar``, which then
        replaces ``surf/laminar`` in one step (:mod:`lameg.surf.commit`); files of the old
        folder that this run does not rewrite (other layer counts or orientations) are kept.
        A failure or a kill at any point leaves the old or the new complete set, and the next
        run removes what an interrupted one left behind. Every sidecar records a ``build_id``
        (hash of the FreeSurfer inputs, ``ds_factor`` and ``layer_model``), from which
        :meth:`validate` recognises a set mixing files of different runs. Arguments, inputs
        and write permissions are checked before any computation.
        """
        del n_jobs, spm_instance
        check_option(orientation, ORIENTATIONS, "orientation")
        ds_factor = check_float(ds_factor, "ds_factor", min_value=0.0, max_value=1.0,
                                strict_min=True)
        check_option(layer_model, ("equidistant", "equivolume"), "layer_model")
        validate_type(fix_orientation, bool, "fix_orientation")
        validate_type(scalp, bool, "scalp")
        hemis = ("lh", "rh")
        self._check_inputs(hemis)
        self._check_writable(scalp)
        # the scalp depends only on orig.mgz: it is extracted in a thread meanwhile (ndimage
        # and VTK overlap with the NumPy work of the build)
        pool = ThreadPoolExecutor(1) if scalp and not _has_scalp(self) else None
        job = None if pool is None else pool.submit(
            scalp_from_mri, os.path.join(self.subj_dir, "mri", "orig.mgz"), **scalp_kwargs)
        try:
            with surface_lock(self.surf_dir):
                self._recover()
                self._build(hemis, ds_factor, orientation, fix_orientation, layer_model,
                            verbose)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        if scalp:
            try:
                _ensure_scalp(self, None if job is None else job.result(), **scalp_kwargs)
            except (LamegDataError, LamegFileNotFoundError, LamegFormatError) as exc:
                logger.warning("no scalp surface could be built (%s); distance/radiality to the "
                               "scalp need bem/outer_skin.surf or a head MRI", exc)

    def _build(self, hemis, ds_factor, orientation, fix_orientation, layer_model, verbose):
        """Compute every stage and switch ``surf/laminar`` over to them (lock held)."""
        steps = progress(range(6), verbose, desc="LayerSurfaceSet.create", total=6)
        steps = iter(steps)
        next(steps, None)
        orig_mgz = os.path.join(self.subj_dir, "mri", "orig.mgz")
        affine, t_orig, n_orig = fsio.tkras_to_scanner(orig_mgz)
        build_id = _build_id(self._input_files(hemis), ds_factor, layer_model)
        base_meta = {"build_id": build_id, "t_orig": t_orig.tolist(), "n_orig": n_orig.tolist()}
        names = self.get_layer_names()
        surfaces = names + ["inflated"]

        # --- raw (tkRAS) surfaces and layers
        raw = {h: {} for h in hemis}
        faces = {}
        for h in hemis:
            w, fw = fsio.read_surface(os.path.join(self.surf_dir, f"{h}.white"))
            p, fp = fsio.read_surface(os.path.join(self.surf_dir, f"{h}.pial"))
            infl, fi = fsio.read_surface(os.path.join(self.surf_dir, f"{h}.inflated"))
            for nm, arr in (("white", w), ("pial", p), ("inflated", infl)):
                if not np.isfinite(arr).all():
                    raise LamegDataError(f"{h}.{nm} contains NaN or infinite coordinates; "
                                         "repair the FreeSurfer surface")
            if len(w) != len(p) or len(w) != len(infl):
                raise LamegDataError(
                    f"{h}: white ({len(w)}), pial ({len(p)}) and inflated ({len(infl)}) vertex "
                    "counts differ; the surfaces must come from the same recon-all run")
            if not (np.array_equal(fw, fp) and np.array_equal(fw, fi)):
                raise LamegDataError(f"{h}: white, pial and inflated faces differ; the surfaces "
                                     "must share FreeSurfer's vertex correspondence")
            _check_geometry(h, w, p)
            faces[h] = fw
            raw[h]["inflated"] = infl
        layers = self._create_layer_surfaces(hemis, layer_model=layer_model)
        for h in hemis:
            raw[h].update(layers[h])
        next(steps, None)

        # --- converted (scanner RAS), nodeep
        conv = {h: {s: fsio.apply_affine(raw[h][s], affine) for s in surfaces} for h in hemis}
        removed, nodeep_faces, kept = {}, {}, {}
        for h in hemis:
            n_v = len(conv[h]["pial"])
            labels, _, lnames = fsio.read_annot(
                os.path.join(self.subj_dir, "label", f"{h}.aparc.annot"), n_v)
            lower = np.array([n.lower() for n in lnames] + [""])
            deep = (labels <= 0) | (lower[np.where(labels < 0, len(lnames), labels)] == "unknown")
            _, f2, _, k = _adj.remove_vertices(conv[h]["pial"], faces[h], np.flatnonzero(deep))
            # vertices left without any face are removed as well (keeps the maps exact)
            used = np.zeros(len(k), bool)
            used[f2.ravel()] = True
            if not used.all():
                deep[k[~used]] = True
                _, f2, _, k = _adj.remove_vertices(conv[h]["pial"], faces[h],
                                                   np.flatnonzero(deep))
            if len(f2) == 0:
                raise LamegDataError(f"{h}: every vertex is labelled unknown in "
                                     f"{h}.aparc.annot; the annotation does not match")
            removed[h], nodeep_faces[h], kept[h] = np.flatnonzero(deep), f2, k
        next(steps, None)
        # every file goes into a staging folder that then replaces surf/laminar in one step;
        # one writer thread (file order and the JSON memo stay serial) writes the raw,
        # converted and nodeep stages while the main thread decimates (NumPy releases the GIL),
        # and the later stages while it writes orig.nii
        tmp = staging_folder(self.surf_dir)
        writer = ThreadPoolExecutor(1)
        try:
            memo: dict = {}

            def put(v, f, meta, layer, stage, hemi=None, o=None, fx=None, normals=None):
                path = self._get_fname(layer, stage, hemi, o, fx, directory=tmp)
                write_surf_gifti(path, v, f, normals)
                meta = dict(meta)
                meta["modified_at"] = datetime.now().isoformat()
                _write_json(path[:-4] + ".json", meta, memo)

            pending = []  # one writer thread: files are written in submission order
            for h in hemis:
                for s in surfaces:
                    pending += [
                        writer.submit(put, raw[h][s], faces[h], {"build_id": build_id}, s,
                                      "raw", h),
                        writer.submit(put, conv[h][s], faces[h], base_meta, s, "converted", h),
                        writer.submit(put, conv[h][s][kept[h]], nodeep_faces[h],
                                      {**base_meta, "deep_vertices_removed": removed[h]}, s,
                                      "nodeep", h)]

            # --- combined, consistently outward faces, manifold repair
            n_lh = len(kept["lh"])
            comb_faces = np.concatenate([nodeep_faces["lh"], nodeep_faces["rh"] + n_lh])
            comb = {}
            for s in surfaces:
                lh_v = conv["lh"][s][kept["lh"]]
                rh_v = conv["rh"][s][kept["rh"]]
                if s == "inflated":
                    width = lh_v[:, 0].max() - lh_v[:, 0].min()
                    rh_v = rh_v.copy()
                    rh_v[:, 0] += lh_v[:, 0].max() + 0.5 * width
                comb[s] = np.concatenate([lh_v, rh_v])
            comb_faces, _ = orient_outward(comb["pial"], comb_faces)
            if _adj.find_non_manifold_edges(comb_faces):
                _, comb_faces = fix_non_manifold_edges(comb["pial"], comb_faces)
            next(steps, None)

            # --- decimation (vertex subset of the pial mesh, same faces for every layer)
            ds_kept, ds_faces = decimate_vertex_subset(comb["pial"], comb_faces, ds_factor)
            ds_removed = np.setdiff1d(np.arange(len(comb["pial"])), ds_kept)
            ds = {s: comb[s][ds_kept] for s in surfaces}
            if orientation == "link_vector":
                flat = np.linalg.norm(ds["white"] - ds["pial"], axis=1) < _MIN_THICKNESS_MM
                if flat.any():
                    raise LamegDataError(
                        f"pial and white coincide at {int(flat.sum())} of {len(flat)} downsampled "
                        "vertices, where link vectors (white - pial) are undefined (degenerate "
                        "geometry); repair the surfaces or use orientation='ds_surf_norm'")
            next(steps, None)

            # --- orientations
            ori = _orientations(orientation, fix_orientation, names,
                                {n: (ds[n], ds_faces) for n in names},
                                {n: (comb[n], comb_faces) for n in names}, ds_kept)
            next(steps, None)

            # --- the remaining stages, queued after the early ones
            comb_meta = {**base_meta, "lh_deep_vertices_removed": removed["lh"],
                         "rh_deep_vertices_removed": removed["rh"],
                         "layer_model": layer_model}
            ds_meta = {**comb_meta, "ds_factor": ds_factor, "ds_removed_vertices": ds_removed}
            ori_meta = {**ds_meta, "orientation": orientation, "fix_orientation": fix_orientation}
            ml_meta = {**base_meta}
            for s in names:
                ml_meta[f"lh_{s}_deep_vertices_removed"] = removed["lh"]
                ml_meta[f"rh_{s}_deep_vertices_removed"] = removed["rh"]
                ml_meta[f"{s}_ds_removed_vertices"] = ds_removed
            ml_meta.update({"ds_factor": ds_factor, "orientation": orientation,
                            "fix_orientation": fix_orientation, "n_layers": self.n_layers,
                            "layer_model": layer_model})
            for li, s in enumerate(surfaces):
                pending.append(writer.submit(put, comb[s], comb_faces, comb_meta, s, "combined"))
                pending.append(writer.submit(put, ds[s], ds_faces, ds_meta, s, "ds"))
                if s != "inflated":
                    pending.append(writer.submit(put, ds[s], ds_faces, ori_meta, s, "ds", None,
                                                 orientation, fix_orientation, ori[li]))
            n_ds = len(ds_kept)
            ml_v = np.concatenate([ds[n] for n in names])
            ml_f = np.concatenate([ds_faces + i * n_ds for i in range(self.n_layers)])
            pending.append(writer.submit(put, ml_v, ml_f, ml_meta, f"multilayer.{self.n_layers}",
                                         "ds", None, orientation, fix_orientation,
                                         ori.reshape(-1, 3)))
            # orig.nii for SPM (written atomically next to orig.mgz), meanwhile
            img = nib.load(orig_mgz)
            nii = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
            with atomic_path(self.mri_file, suffix=".nii") as tmp_nii:
                nib.save(nii, str(tmp_nii))
            for job in pending:
                job.result()  # re-raises a failed write: nothing is switched over
            # the content was checked in memory (same vertex counts and faces in every layer
            # by construction); re-reading every file as validate() does would double the I/O
            switch_over(tmp, self.laminar_surf_dir)
            next(steps, None)
        finally:
            # no thread may still write into tmp; after a failure the queued writes are dropped
            writer.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(tmp, ignore_errors=True)

    def downsample(self, ds_factor, spm_instance=None) -> None:
        """Re-decimate the existing ``combined`` layers (rewrites the ``ds`` stage).

        The new ``ds`` files replace the old ones in one step (see :meth:`create`). Oriented
        ``ds`` files and multilayer meshes of the old decimation are removed (they no longer
        match); run :meth:`create` to rebuild them.

        Parameters
        ----------
        ds_factor : float
            Fraction of faces kept, in (0, 1].
        spm_instance : object, optional
            Accepted for compatibility; unused.
        """
        del spm_instance
        ds_factor = check_float(ds_factor, "ds_factor", min_value=0.0, max_value=1.0,
                                strict_min=True)
        self._check_writable(False)
        names = self.get_layer_names() + ["inflated"]
        with surface_lock(self.surf_dir):
            self._recover()
            pv_, pf, _ = self._mesh("pial", "combined")
            kept, faces = decimate_vertex_subset(pv_, pf, ds_factor)
            removed = np.setdiff1d(np.arange(len(pv_)), kept)
            tmp = staging_folder(self.surf_dir)
            try:
                for n in names:
                    v, _, _ = self._mesh(n, "combined")
                    meta = self.load_meta(n, "combined")
                    meta.update({"ds_factor": ds_factor, "ds_removed_vertices": removed,
                                 "modified_at": datetime.now().isoformat()})
                    path = self._get_fname(n, "ds", directory=tmp)
                    write_surf_gifti(path, v[kept], faces)
                    _write_json(path[:-4] + ".json", meta)
                # ds files of the old decimation that are not rewritten no longer match
                stale = [f for f in os.listdir(self.laminar_surf_dir)
                         if ".ds." in f and not os.path.exists(os.path.join(tmp, f))]
                switch_over(tmp, self.laminar_surf_dir)
                for f in stale:
                    os.unlink(os.path.join(self.laminar_surf_dir, f))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def _input_files(self, hemis) -> list[str]:
        out = [os.path.join(self.subj_dir, "mri", "orig.mgz")]
        for h in hemis:
            out += [os.path.join(self.surf_dir, f"{h}.{s}") for s in ("white", "pial", "inflated")]
            out.append(os.path.join(self.subj_dir, "label", f"{h}.aparc.annot"))
        return out

    def _check_writable(self, scalp: bool) -> None:
        """Report read-only output folders/files before any computation."""
        targets = [self.surf_dir, os.path.dirname(self.mri_file)]
        if os.path.isdir(self.laminar_surf_dir):
            targets.append(self.laminar_surf_dir)
        if scalp:
            bem = os.path.join(self.subj_dir, "bem")
            targets.append(bem if os.path.isdir(bem) else self.subj_dir)
        for d in targets:
            check_writable(d, "output folder")
        if os.path.exists(self.mri_file):
            check_writable(self.mri_file, "orig.nii (rewritten by create)")

    def _check_inputs(self, hemis):
        missing = [p for p in self._input_files(hemis) if not os.path.exists(p)]
        if missing:
            raise LamegFileNotFoundError(
                "Missing FreeSurfer inputs:\n  " + "\n  ".join(missing) +
                "\nThey are produced by FreeSurfer's `recon-all -all -s <subject>` (surf/?h.white, "
                "?h.pial, ?h.inflated, label/?h.aparc.annot, mri/orig.mgz).")
