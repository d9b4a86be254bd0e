"""Vertex correspondence between processing stages, atlas regions and fsaverage."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from .._docs import fill_doc
from ..exceptions import (
    LamegFileNotFoundError,
    LamegValueError,
)
from ..io import freesurfer as fsio
from ..io.gifti import gifti_arrays
from ..mesh import adjacency as _adj
from .files import HEMI_STAGES, STAGES


@fill_doc
class StageMapsMixin:
    """Stage maps of :class:`~lameg.surf.LayerSurfaceSet`."""

    def _stage_maps(self, layer_name):
        """Index maps: nodeep->converted per hemisphere, ds->combined, and n_lh (nodeep)."""
        kept = {}
        n_conv = {}
        for h in ("lh", "rh"):
            meta = self.load_meta(layer_name, "nodeep", h)
            if "deep_vertices_removed" not in meta:
                raise LamegFileNotFoundError(
                    f"no nodeep metadata for {h}.{layer_name}; run create() first")
            v, _, _ = self._mesh(layer_name, "converted", h)
            n_conv[h] = len(v)
            keep = np.ones(len(v), bool)
            keep[np.asarray(meta["deep_vertices_removed"], dtype=np.int64)] = False
            kept[h] = np.flatnonzero(keep)
        ds_meta = self.load_meta(layer_name, "ds")
        n_comb = len(kept["lh"]) + len(kept["rh"])
        ds_kept = None
        if "ds_removed_vertices" in ds_meta:
            keep = np.ones(n_comb, bool)
            keep[np.asarray(ds_meta["ds_removed_vertices"], dtype=np.int64)] = False
            ds_kept = np.flatnonzero(keep)
        return kept, n_conv, ds_kept, len(kept["lh"]), n_comb

    def map_between_stages(self, layer_name, from_stage="ds", from_hemi=None,
                           to_stage="converted", to_hemi=None) -> np.ndarray:
        """Vertex indices between two stages of one layer, as laMEG 0.2.1 defines them.

        * ``'converted' -> 'nodeep'``: the converted-stage indices of the vertices kept by the
          medial-wall cut (an index selection, one per nodeep vertex);
        * ``'nodeep' -> 'combined'``: each nodeep vertex's index in the combined mesh;
        * ``'combined' -> 'nodeep'``: the combined indices of ``to_hemi``'s vertices;
        * every other pair: for each ``from_stage`` vertex, its nearest ``to_stage`` vertex.

        The exact correspondence (-1 where a vertex has no counterpart) is
        :meth:`map_between_stages_exact`.

        Parameters
        ----------
        layer_name : str
            Layer (``'pial'``, ..., ``'white'``, ``'inflated'``).
        from_stage : str
            Stage whose vertices are mapped.
        from_hemi : {'lh', 'rh'} or None
            Hemisphere of ``from_stage`` (per-hemisphere stages only).
        to_stage : str
            Target stage.
        to_hemi : {'lh', 'rh'} or None
            Hemisphere of ``to_stage`` (per-hemisphere stages only).

        Returns
        -------
        ndarray of int
            0-based indices (see above for their length and meaning).
        """
        exact = self.map_between_stages_exact(layer_name, from_stage, from_hemi, to_stage,
                                              to_hemi)  # also validates the arguments
        kept, _, _, n_lh, n_comb = self._stage_maps(layer_name)
        if (from_stage, to_stage) == ("converted", "nodeep"):
            return np.asarray(kept[from_hemi], dtype=np.int64)
        if (from_stage, to_stage) == ("nodeep", "combined"):
            return exact
        if (from_stage, to_stage) == ("combined", "nodeep"):
            return np.arange(n_lh) if to_hemi == "lh" else np.arange(n_lh, n_comb)
        src, _, _ = self._mesh(layer_name, from_stage, from_hemi)
        tgt, _, _ = self._mesh(layer_name, to_stage, to_hemi)
        return np.asarray(cKDTree(tgt).query(src, k=1)[1], dtype=np.int64)

    def map_between_stages_exact(self, layer_name, from_stage="ds", from_hemi=None,
                                 to_stage="converted", to_hemi=None) -> np.ndarray:
        """Exact vertex correspondence between two stages of one layer.

        Returns, for every vertex of ``from_stage``, its index in ``to_stage``, or -1 where it
        has no counterpart (a vertex removed by the medial-wall cut or by decimation, or a
        vertex of the other hemisphere). The stored index maps are used (not nearest
        neighbours as in :meth:`map_between_stages`). ``hemi`` is required for
        'raw'/'converted'/'nodeep' and not allowed for 'combined'/'ds'.

        Parameters
        ----------
        layer_name : str
            Layer (``'pial'``, ..., ``'white'``, ``'inflated'``).
        from_stage : str
            Stage whose vertices are mapped.
        from_hemi : {'lh', 'rh'} or None
            Hemisphere of ``from_stage`` (per-hemisphere stages only).
        to_stage : str
            Target stage.
        to_hemi : {'lh', 'rh'} or None
            Hemisphere of ``to_stage`` (per-hemisphere stages only).

        Returns
        -------
        ndarray of int, shape (n_vertices of from_stage,)
            0-based index in ``to_stage``, -1 where there is none.
        """
        for st, h, name in ((from_stage, from_hemi, "from"), (to_stage, to_hemi, "to")):
            if st not in STAGES:
                raise LamegValueError(f"unknown {name}_stage {st!r}; choose from {STAGES}")
            if st in HEMI_STAGES and h not in ("lh", "rh"):
                raise LamegValueError(f"{name}_hemi ('lh' or 'rh') is required for stage {st!r}")
            if st not in HEMI_STAGES and h is not None:
                raise LamegValueError(f"{name}_hemi must be None for stage {st!r}")
        if from_hemi and to_hemi and from_hemi != to_hemi:
            raise LamegValueError("mapping across hemispheres is not possible")
        kept, n_conv, ds_kept, n_lh, n_comb = self._stage_maps(layer_name)
        if "ds" in (from_stage, to_stage) and ds_kept is None:
            raise LamegFileNotFoundError(f"no ds metadata for {layer_name}; run create() first")
        # express every stage by its "combined" index (or -1) and back
        def to_combined(stage, hemi):
            if stage in ("raw", "converted"):
                out = np.full(n_conv[hemi], -1, np.int64)
                out[kept[hemi]] = np.arange(len(kept[hemi])) + (n_lh if hemi == "rh" else 0)
                return out
            if stage == "nodeep":
                return np.arange(len(kept[hemi])) + (n_lh if hemi == "rh" else 0)
            if stage == "combined":
                return np.arange(n_comb)
            return ds_kept.copy()

        def from_combined(stage, hemi):
            """Array over combined vertices giving the index in ``stage`` (or -1)."""
            out = np.full(n_comb, -1, np.int64)
            if stage in ("raw", "converted", "nodeep"):
                sl = slice(0, n_lh) if hemi == "lh" else slice(n_lh, n_comb)
                out[sl] = kept[hemi] if stage != "nodeep" else np.arange(sl.stop - sl.start)
            elif stage == "combined":
                out = np.arange(n_comb)
            else:
                out[ds_kept] = np.arange(len(ds_kept))
            return out

        comb = to_combined(from_stage, from_hemi)
        back = from_combined(to_stage, to_hemi)
        res = np.full(len(comb), -1, np.int64)
        ok = comb >= 0
        res[ok] = back[comb[ok]]
        return res

    def interpolate_layer_data(self, layer_name, data, from_stage="ds", to_stage="combined",
                               k_neighbors=5) -> np.ndarray:
        """Interpolate per-vertex data of one layer from ``from_stage`` to ``to_stage``.

        Parameters
        ----------
        layer_name : str
            Layer of the surface set.
        data : array-like, shape (n_from,) or (n_from, k)
            Values on the ``from_stage`` vertices (any unit; kept).
        from_stage : str
            Stage of ``data`` (default ``'ds'``).
        to_stage : str
            Stage to interpolate to (default ``'combined'``).
        k_neighbors : int
            Nearest ``from_stage`` vertices in the inverse-distance weights.

        Returns
        -------
        ndarray, shape (n_to,) or (n_to, k)
            See :func:`interpolate_data`.
        """
        orig = self.load(layer_name, stage=to_stage)
        ds = self.load(layer_name, stage=from_stage)
        adj = _adj.mesh_adjacency(gifti_arrays(orig)[1])
        return interpolate_data(orig, ds, data, adj, k_neighbors)

    def get_roi_idx(self, regions, hemi=None, atlas="aparc", layer_name="pial", to_stage="ds"
                    ) -> np.ndarray:
        """Vertex indices (in ``to_stage``) of the named regions of ``label/<hemi>.<atlas>.annot``.

        Exact mapping converted -> ``to_stage`` (vertices without a counterpart are dropped).

        Parameters
        ----------
        regions : str or sequence of str
            Region names of the atlas (e.g. ``'precentral'``).
        hemi : {'lh', 'rh'} or None
            Hemisphere; None for both.
        atlas : str
            Annotation name (``label/<hemi>.<atlas>.annot``), default ``'aparc'``.
        layer_name : str
            Layer whose stage maps are used (all layers share them).
        to_stage : str
            Stage of the returned indices (default ``'ds'``).

        Returns
        -------
        ndarray of int
            Sorted unique 0-based vertex indices in ``to_stage``.
        """
        if isinstance(regions, str):
            regions = [regions]
        hemis = ("lh", "rh") if hemi is None else (hemi,)
        out = []
        for h in hemis:
            path = os.path.join(self.subj_dir, "label", f"{h}.{atlas}.annot")
            n_conv = len(self._mesh(layer_name, "converted", h)[0])
            labels, _, names = fsio.read_annot(path, n_conv)
            missing = [r for r in regions if r not in names]
            if missing and hemi is not None:
                raise LamegValueError(f"regions {missing} not in {path}; available: {names}")
            ids = [names.index(r) for r in regions if r in names]
            sel = np.flatnonzero(np.isin(labels, ids))
            to_hemi = h if to_stage in HEMI_STAGES else None
            m = self.map_between_stages_exact(layer_name, "converted", h, to_stage, to_hemi)
            idx = m[sel]
            out.append(idx[idx >= 0])
        if hemi is None:
            all_names = set()
            for h in hemis:
                all_names.update(fsio.read_annot(
                    os.path.join(self.subj_dir, "label", f"{h}.{atlas}.annot"))[2])
            missing = [r for r in regions if r not in all_names]
            if missing:
                raise LamegValueError(f"regions {missing} not in the {atlas} atlas; available: "
                                      f"{sorted(all_names)}")
        return np.unique(np.concatenate(out)).astype(np.int64)


def interpolate_data(original_mesh, downsampled_mesh, downsampled_data, adjacency_matrix=None,
                     k_neighbors=5) -> np.ndarray:
    """Interpolate per-vertex data from a decimated mesh to the full-resolution mesh.

    Pass 1: inverse-distance weights over the ``k_neighbors`` nearest ds vertices (a zero
    distance counts as 1e-6 mm, so coinciding vertices take the ds value). Pass 2: the
    full-resolution vertices that **coincide with a ds vertex** get the inverse-distance
    weighted mean of their mesh neighbours' pass-1 values (laMEG compared vertex *indices*
    with ds indices here, which selects unrelated vertices; this is the intended rule).

    Parameters
    ----------
    original_mesh : nibabel.gifti.GiftiImage or (vertices, faces)
        Full-resolution mesh, vertices (n_orig, 3) in mm.
    downsampled_mesh : nibabel.gifti.GiftiImage or (vertices, faces)
        Decimated mesh, vertices (n_ds, 3) in mm (faces may be None).
    downsampled_data : array_like, shape (n_ds,) or (n_ds, k)
        Values on the decimated vertices (any unit; kept).
    adjacency_matrix : scipy.sparse matrix, shape (n_orig, n_orig), optional
        Full-resolution adjacency (default: from its faces).
    k_neighbors : int
        Nearest decimated vertices in the inverse-distance weights.

    Returns
    -------
    ndarray, shape (n_orig,) or (n_orig, k)
        Interpolated values.
    """
    def _va(m):
        if isinstance(m, nib.gifti.GiftiImage):
            return gifti_arrays(m)[:2]
        faces = None if m[1] is None else np.asarray(m[1], np.int64).reshape(-1, 3)
        return np.asarray(m[0], float).reshape(-1, 3), faces

    ov, of = _va(original_mesh)
    dv, _ = _va(downsampled_mesh)
    data = np.asarray(downsampled_data, dtype=np.float64)
    if data.shape[0] != len(dv):
        raise LamegValueError(f"downsampled_data has {data.shape[0]} rows but the mesh has "
                              f"{len(dv)} vertices")
    k = int(min(k_neighbors, len(dv)))
    dist, idx = cKDTree(dv).query(ov, k=k)
    dist = np.asarray(dist, float).reshape(len(ov), k)
    idx = np.asarray(idx).reshape(len(ov), k)
    w = 1.0 / np.where(dist == 0, 1e-6, dist)
    w /= w.sum(axis=1, keepdims=True)
    vals = np.einsum("ik,ik...->i...", w, data[idx])
    if adjacency_matrix is None:
        adjacency_matrix = _adj.mesh_adjacency(of, len(ov))
    coincide = np.flatnonzero(dist[:, 0] == 0)
    if coincide.size:
        a = adjacency_matrix.tocsr()[coincide].tocoo()
        rows, cols = a.row, a.col
        d = np.linalg.norm(ov[coincide[rows]] - ov[cols], axis=1)
        wn = 1.0 / np.where(d == 0, 1e-6, d)
        den = np.bincount(rows, weights=wn, minlength=len(coincide))
        has = den > 0
        flat = vals.reshape(len(ov), -1)
        num = np.stack([np.bincount(rows, weights=wn * flat[cols, j], minlength=len(coincide))
                        for j in range(flat.shape[1])], axis=1)
        new = flat.copy()
        new[coincide[has]] = num[has] / den[has, None]
        vals = new.reshape(vals.shape)
    return vals


def _sphere_reg(subjects_dir, subj, hemi):
    path = os.path.join(subjects_dir, subj, "surf", f"{hemi}.sphere.reg")
    if not os.path.exists(path):
        raise LamegFileNotFoundError(
            f"{path} not found; it is written by FreeSurfer's recon-all (surface registration)"
            + (" — fsaverage must be inside SUBJECTS_DIR" if subj == "fsaverage" else ""))
    return fsio.read_surface(path)[0]


@fill_doc
def convert_fsaverage_to_native(surf_set, layer_name, hemi, vert_idx=None):
    """fsaverage vertex -> the subject's ds vertex (via ``?h.sphere.reg``).

    The fsaverage vertex is matched to the nearest vertex of the subject's ``sphere.reg``;
    that converted vertex maps to the ds mesh through the exact stage maps when it survived
    decimation, else to the nearest ds vertex of the layer.

    Parameters
    ----------
    %(surf_set)s
    layer_name : str
        Layer of the ds mesh.
    hemi : {'lh', 'rh'}
        Hemisphere of the fsaverage vertex.
    vert_idx : int, array-like of int or None
        0-based fsaverage vertex index(es); None for all fsaverage vertices.

    Returns
    -------
    int or ndarray of int
        0-based ds vertex index (an int for a single ``vert_idx``).
    """
    if hemi not in ("lh", "rh"):
        raise LamegValueError("hemi must be 'lh' or 'rh'")
    fs = _sphere_reg(surf_set.subjects_dir, "fsaverage", hemi)
    subj = _sphere_reg(surf_set.subjects_dir, surf_set.subj_id, hemi)
    scalar = vert_idx is not None and np.ndim(vert_idx) == 0
    idx = np.arange(len(fs)) if vert_idx is None else np.atleast_1d(vert_idx).astype(np.int64)
    if np.any(idx < 0) or np.any(idx >= len(fs)):
        raise IndexError(f"fsaverage vertex index out of range [0, {len(fs)})")
    local = cKDTree(subj).query(fs[idx])[1]
    conv, _, _ = surf_set._mesh(layer_name, "converted", hemi)
    ds_v, _, _ = surf_set._mesh(layer_name, "ds")
    exact = surf_set.map_between_stages_exact(layer_name, "converted", hemi, "ds")
    out = exact[local]
    miss = out < 0
    if miss.any():
        out[miss] = cKDTree(ds_v).query(conv[local[miss]])[1]
    return int(out[0]) if scalar else out


@fill_doc
def convert_native_to_fsaverage(surf_set, layer_name, subj_coord=None):
    """Subject coordinate(s) or all ds vertices -> (hemisphere, fsaverage vertex).

    Each point is matched to the nearest ``converted`` vertex of lh and rh (the closer one
    wins), then through ``sphere.reg`` to the nearest fsaverage ``sphere.reg`` vertex.

    Parameters
    ----------
    %(surf_set)s
    layer_name : str
        Layer whose ``converted`` (and, without ``subj_coord``, ``ds``) mesh is used.
    subj_coord : array-like, shape (3,) or (n, 3), optional
        Scanner RAS coordinates in mm; None for every ds vertex.

    Returns
    -------
    hemi : str or list of str
        ``'lh'`` or ``'rh'`` per point.
    fsaverage_vertex : int or list of int
        0-based fsaverage vertex per point (scalars for a single coordinate).
    """
    if subj_coord is None:
        pts, _, _ = surf_set._mesh(layer_name, "ds")
    else:
        pts = np.atleast_2d(np.asarray(subj_coord, dtype=np.float64))
        if pts.shape[1] != 3:
            raise LamegValueError("subj_coord must have shape (3,) or (n, 3)")
    dist, loc = {}, {}
    for h in ("lh", "rh"):
        v, _, _ = surf_set._mesh(layer_name, "converted", h)
        dist[h], loc[h] = cKDTree(v).query(pts)
    is_lh = dist["lh"] < dist["rh"]
    fs_idx = np.zeros(len(pts), np.int64)
    for h, m in (("lh", is_lh), ("rh", ~is_lh)):
        if m.any():
            subj = _sphere_reg(surf_set.subjects_dir, surf_set.subj_id, h)
            fs = _sphere_reg(surf_set.subjects_dir, "fsaverage", h)
            fs_idx[m] = cKDTree(fs).query(subj[loc[h][m]])[1]
    hemis = np.where(is_lh, "lh", "rh")
    if subj_coord is not None and len(pts) == 1:
        return str(hemis[0]), int(fs_idx[0])
    return hemis.tolist(), fs_idx.tolist()
