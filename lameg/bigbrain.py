"""Cortical laminae I-VI from the BigBrain layer-thickness atlas.

The package ships the thickness maps of the six cortical layers of the BigBrain (Wagstyl et al.
2020, PLoS Biol 18:e3000678) resampled to FreeSurfer's fsaverage (163,842 vertices per
hemisphere), as distributed by BigBrainWarp (Paquola et al. 2021, eLife 10:e70119), unchanged, in
``lameg/data/bigbrain/``. Per vertex the six thicknesses become cumulative proportions of the
cortical depth (0 = pial, 1 = white); a participant's cortical columns pick them up through the
FreeSurfer spherical registration (``?h.sphere.reg``) and the reconstructed layers (equidistant
or equivolume depths) are mapped to laminae by integrating the piecewise-linear depth profile
over each lamina.

Conventions: depth 0 = pial, 1 = grey/white boundary; ``edges`` (n_columns, 7) are the lamina
boundaries (``edges[:, 0] = 0``, ``edges[:, 6] = 1``); ``weights`` (n_columns, 6, n_layers) map
layer activity to the mean activity of each lamina. Columns whose atlas boundaries are not
finite, outside the reconstructed depth range or not increasing (the fsaverage medial wall) get
NaN edges and weights.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from .exceptions import LamegFileNotFoundError, LamegIndexError, LamegValueError

__all__ = [
    "LAMINAE",
    "bigbrain_data_dir",
    "load_bigbrain_thickness",
    "big_brain_proportional_layer_boundaries",
    "get_bigbrain_layer_boundaries",
    "compute_bigbrain_laminar_weights",
    "surface_to_laminae",
    "bigbrain_laminar_thickness",
]

LAMINAE = ("I", "II", "III", "IV", "V", "VI")
_N_FSAVERAGE = 163842
_HEMI_TAG = {"lh": "L", "rh": "R"}
_FSAVERAGE_NAMES = ("fsaverage", "fsaverage6", "fsaverage5", "fsaverage4", "fsaverage3")


def bigbrain_data_dir() -> Path:
    """Folder of the packaged BigBrain thickness maps (``lameg/data/bigbrain``).

    Returns
    -------
    Path
    """
    return Path(__file__).resolve().parent / "data" / "bigbrain"


def _map_path(hemi: str, layer: int) -> Path:
    name = f"tpl-fsaverage_hemi-{_HEMI_TAG[hemi]}_den-164k_desc-layer{layer}_thickness.shape.gii"
    path = bigbrain_data_dir() / name
    if not path.is_file():
        raise LamegFileNotFoundError(
            f"BigBrain map {path} is missing from the installed package; reinstall lameg "
            "(the maps are package data)")
    return path


@lru_cache(maxsize=2)
def _thickness(hemi: str) -> np.ndarray:
    arr = np.stack([np.asarray(nib.load(_map_path(hemi, k)).agg_data(), dtype=np.float64)
                    for k in range(1, 7)])
    arr.setflags(write=False)
    return arr


def load_bigbrain_thickness(hemi: str) -> np.ndarray:
    """Thickness of BigBrain layers I-VI on fsaverage.

    Parameters
    ----------
    hemi : {'lh', 'rh'}
        Hemisphere.

    Returns
    -------
    thickness : ndarray, shape (6, 163842)
        Thickness of each layer (pial to white) at each fsaverage vertex, in BigBrain units
        (only the proportions are used); 0 on the medial wall. A copy.
    """
    if hemi not in _HEMI_TAG:
        raise LamegValueError(f"hemi={hemi!r} is not valid; choose 'lh' or 'rh'")
    return _thickness(hemi).copy()


def _proportions(thick: np.ndarray) -> np.ndarray:
    total = thick.sum(axis=0)
    cum = np.cumsum(thick, axis=0)
    out = np.where(total > 0, cum / np.where(total > 0, total, 1.0), thick)
    return out


@lru_cache(maxsize=1)
def _proportional_boundaries() -> dict:
    out = {h: _proportions(_thickness(h)) for h in ("lh", "rh")}
    for v in out.values():
        v.setflags(write=False)
    return out


def big_brain_proportional_layer_boundaries(overwrite: bool = False) -> dict:
    """Cumulative BigBrain laminar boundaries on fsaverage (laMEG ``util`` API).

    Parameters
    ----------
    overwrite : bool
        Recompute from the packaged maps instead of reusing the in-memory result (nothing is
        written to disk).

    Returns
    -------
    dict
        ``{'lh': (6, 163842), 'rh': (6, 163842)}`` float64 arrays: the depth (0 = pial,
        1 = white) of the lower boundary of laminae I-VI at each fsaverage vertex; the medial
        wall (all thicknesses 0) holds zeros.
    """
    if overwrite:
        _proportional_boundaries.cache_clear()
        _thickness.cache_clear()
    return {h: v.copy() for h, v in _proportional_boundaries().items()}


def _ico_order_ok(n: int) -> bool:
    k = (n - 2) / 10.0
    while k > 1 and k == int(k):
        k /= 4.0
    return k == 1.0 and n <= _N_FSAVERAGE


def _fsaverage_surf_dir(subjects_dir, fsaverage) -> Path:
    tried = []
    if fsaverage is not None:
        cands = [Path(fsaverage)] if os.sep in str(fsaverage) else [Path(subjects_dir) / fsaverage]
    else:
        roots = [Path(subjects_dir)] if subjects_dir else []
        fs_home = os.environ.get("FREESURFER_HOME")
        if fs_home:
            roots.append(Path(fs_home) / "subjects")
        cands = [r / n for r in roots for n in _FSAVERAGE_NAMES]
    for c in cands:
        tried.append(str(c))
        if (c / "surf" / "lh.sphere.reg").is_file() and (c / "surf" / "rh.sphere.reg").is_file():
            return c / "surf"
    raise LamegFileNotFoundError(
        "No FreeSurfer fsaverage subject with surf/{lh,rh}.sphere.reg found (tried "
        f"{', '.join(tried) or 'nothing: no subjects_dir'}); copy or link FreeSurfer's "
        "fsaverage (or fsaverage5/6) into SUBJECTS_DIR or pass fsaverage=<path>")


@lru_cache(maxsize=4)
def _fsaverage_tree(path: str):
    vert = nib.freesurfer.read_geometry(path)[0]
    if not _ico_order_ok(len(vert)):
        raise LamegValueError(
            f"{path} has {len(vert)} vertices, not an icosahedral fsaverage order "
            "(10*4^k+2 <= 163842); use FreeSurfer's fsaverage, fsaverage6 or fsaverage5")
    return cKDTree(vert)


def _mesh_vertices(surf_set, layer_name, stage, hemi=None):
    img = surf_set.load(layer_name, stage=stage, hemi=hemi)
    return np.asarray(img.darrays[0].data, dtype=np.float64)


def native_to_fsaverage(surf_set, subj_coord=None, layer_name: str = "pial", fsaverage=None):
    """Hemisphere and fsaverage vertex of subject points, through ``?h.sphere.reg``.

    Each point goes to the nearest full-resolution (``converted``) vertex of the left or right
    hemisphere (the closer one), then through the subject's registration sphere to the nearest
    vertex of the fsaverage registration sphere. fsaverage5/6 are nested in fsaverage, so their
    vertex numbers are fsaverage vertex numbers.

    Parameters
    ----------
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set (``converted`` and ``ds`` stages).
    subj_coord : array-like, shape (3,) or (n, 3), or None
        Points in scanner RAS mm; None = every vertex of the ``ds`` mesh of ``layer_name``.
    layer_name : str
        Layer whose meshes are used (default ``'pial'``).
    fsaverage : str, path-like or None
        fsaverage subject name in ``surf_set.subjects_dir`` or folder; None searches
        ``fsaverage``, ``fsaverage6``, ``fsaverage5`` ... in SUBJECTS_DIR and
        ``$FREESURFER_HOME/subjects``.

    Returns
    -------
    hemis : ndarray of str, shape (n,)
        ``'lh'`` or ``'rh'``.
    fs_idx : ndarray of int, shape (n,)
        fsaverage vertex numbers.
    """
    if subj_coord is None:
        pts = _mesh_vertices(surf_set, layer_name, "ds")
    else:
        pts = np.atleast_2d(np.asarray(subj_coord, dtype=np.float64))
        if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
            raise LamegValueError("subj_coord must be finite with shape (3,) or (n, 3), mm")
    surf_dir = _fsaverage_surf_dir(surf_set.subjects_dir, fsaverage)
    subj_surf = Path(surf_set.subjects_dir) / surf_set.subj_id / "surf"
    dist, loc = {}, {}
    for h in ("lh", "rh"):
        dist[h], loc[h] = cKDTree(_mesh_vertices(surf_set, layer_name, "converted", h)).query(pts)
    is_lh = dist["lh"] <= dist["rh"]
    fs_idx = np.zeros(len(pts), np.int64)
    for h, m in (("lh", is_lh), ("rh", ~is_lh)):
        if not m.any():
            continue
        reg = subj_surf / f"{h}.sphere.reg"
        if not reg.is_file():
            raise LamegFileNotFoundError(f"{reg} not found; it is written by FreeSurfer's "
                                         "recon-all (surface registration)")
        sphere = nib.freesurfer.read_geometry(str(reg))[0]
        fs_idx[m] = _fsaverage_tree(str(surf_dir / f"{h}.sphere.reg")).query(sphere[loc[h][m]])[1]
    return np.where(is_lh, "lh", "rh"), fs_idx


def get_bigbrain_layer_boundaries(surf_set, subj_coord=None, fsaverage=None) -> np.ndarray:
    """BigBrain laminar boundaries at a participant's cortical columns.

    Parameters
    ----------
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set (``converted`` and ``ds`` stages) of a FreeSurfer subject with
        ``surf/?h.sphere.reg``.
    subj_coord : array-like, shape (3,) or (n, 3), or None
        Pial points in scanner RAS mm; None = every vertex of the downsampled pial mesh.
    fsaverage : str, path-like or None
        See :func:`native_to_fsaverage`.

    Returns
    -------
    boundaries : ndarray, shape (6, n) (or (6,) for one coordinate)
        Depth (0 = pial, 1 = white) of the lower boundary of laminae I-VI; zeros where the
        atlas has no cortex (medial wall).
    """
    single = subj_coord is not None and np.asarray(subj_coord).ndim == 1
    hemis, idx = native_to_fsaverage(surf_set, subj_coord, "pial", fsaverage)
    prop = _proportional_boundaries()
    out = np.empty((6, len(idx)))
    for h in ("lh", "rh"):
        m = hemis == h
        out[:, m] = prop[h][:, idx[m]]
    return out[:, 0] if single else out


def _source_depth(surf_set) -> np.ndarray:
    depth = 1.0 - np.asarray(surf_set.layer_spacing, dtype=float)
    if depth.ndim != 1:
        raise LamegValueError("`surf_set.layer_spacing` must be one-dimensional.")
    if depth.size < 2:
        raise LamegValueError("At least two reconstructed layers are required.")
    if not np.all(np.isfinite(depth)) or np.any(np.diff(depth) <= 0):
        raise LamegValueError("Reconstructed layer depths must increase monotonically from "
                              "pial (0) to white (1); check surf_set.layer_spacing.")
    return depth


def _boundaries_for(surf_set, columns) -> np.ndarray:
    if columns is None:
        return np.asarray(surf_set.get_bigbrain_layer_boundaries(), dtype=float)
    pial = np.asarray(surf_set.load("pial", stage="ds").darrays[0].data)
    idx = np.asarray(columns).reshape(-1)
    if idx.size == 0:
        raise LamegValueError("`columns` must contain at least one column index.")
    if not np.issubdtype(idx.dtype, np.integer):
        raise LamegValueError("`columns` must hold integer column indices.")
    if np.any(idx < 0) or np.any(idx >= len(pial)):
        raise LamegIndexError(f"Cortical-column index exceeds the downsampled pial surface "
                              f"(valid 0..{len(pial) - 1}).")
    return np.asarray(surf_set.get_bigbrain_layer_boundaries(subj_coord=pial[idx]),
                      dtype=float).reshape(6, -1)


def _hat_integral(x: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``H[..., j] = integral from depth[0] to x of the hat function of node j``."""
    x = np.asarray(x)[..., None]
    left = np.concatenate([[depth[0]], depth[:-1]])
    right = np.concatenate([depth[1:], [depth[-1]]])
    wl = depth - left
    wr = right - depth
    xl = np.clip(x, left, depth)
    xr = np.clip(x, depth, right)
    rise = np.where(wl > 0, (xl - left) ** 2 / (2 * np.where(wl > 0, wl, 1)), 0.0)
    fall = np.where(wr > 0, (wr ** 2 - (right - xr) ** 2) / (2 * np.where(wr > 0, wr, 1)), 0.0)
    return rise + fall


def laminar_weights_from_edges(edges, depth) -> tuple[np.ndarray, np.ndarray]:
    """Layer-to-lamina weights for given lamina boundaries.

    Parameters
    ----------
    edges : array-like, shape (n_columns, n_laminae + 1)
        Lamina boundaries (depth, 0 = pial), increasing along each row.
    depth : array-like, shape (n_layers,)
        Depths of the reconstructed layers, increasing from 0 to 1.

    Returns
    -------
    edges : ndarray, shape (n_columns, n_laminae + 1)
        The boundaries clipped to the depth range (tolerance 1e-8); NaN rows for invalid
        columns.
    weights : ndarray, shape (n_columns, n_laminae, n_layers)
        ``weights[c, a] @ f`` is the mean over lamina ``a`` of the linear interpolation of the
        layer values ``f`` along depth (each row sums to 1); NaN for invalid columns.
    """
    edges = np.array(edges, dtype=float)
    depth = np.asarray(depth, dtype=float)
    tol = 1e-8
    ok = np.all(np.isfinite(edges), axis=1)
    with np.errstate(invalid="ignore"):
        ok &= np.all(edges >= depth[0] - tol, axis=1) & np.all(edges <= depth[-1] + tol, axis=1)
    edges[ok] = np.clip(edges[ok], depth[0], depth[-1])
    ok &= np.all(np.diff(np.where(ok[:, None], edges, 0.0), axis=1) > 0, axis=1)
    edges[~ok] = np.nan
    n_lam = edges.shape[1] - 1
    weights = np.full((edges.shape[0], n_lam, depth.size), np.nan)
    e = edges[ok]
    h = _hat_integral(e, depth)  # (n_ok, n_lam + 1, n_layers)
    weights[ok] = np.diff(h, axis=1) / np.diff(e, axis=1)[..., None]
    return edges, weights


def compute_bigbrain_laminar_weights(surf_set, columns=None) -> tuple[np.ndarray, np.ndarray]:
    """Weights mapping reconstructed layers to BigBrain laminae I-VI, per cortical column.

    The activity profile along depth is the linear interpolation between the reconstructed
    layers; the weights give its exact mean over each lamina.

    Parameters
    ----------
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set; its ``layer_spacing`` gives the layer depths (``1 - layer_spacing``) and
        its ``get_bigbrain_layer_boundaries`` the atlas boundaries.
    columns : int, array-like of int or None
        Downsampled cortical columns (0-based), in the order wanted; None = all.

    Returns
    -------
    edges : ndarray, shape (n_columns, 7)
        Lamina boundaries (0 = pial ... 1 = white); NaN rows where the atlas has no valid
        laminae (a ``RuntimeWarning`` reports how many).
    weights : ndarray, shape (n_columns, 6, n_layers)
        ``weights[c] @ layer_values`` = mean value in each lamina; rows sum to 1.

    Raises
    ------
    LamegValueError
        If the layer depths are invalid or no column has valid boundaries.
    LamegIndexError
        If a column is out of range.
    """
    depth = _source_depth(surf_set)
    bb = _boundaries_for(surf_set, columns)
    if bb.ndim == 1:
        bb = bb[:, None]
    if bb.ndim != 2 or bb.shape[0] != 6:
        raise LamegValueError(f"Expected BigBrain boundaries of shape (6, n_columns), got "
                              f"{bb.shape}.")
    raw = np.column_stack([np.zeros(bb.shape[1]), bb.T])
    edges, weights = laminar_weights_from_edges(raw, depth)
    bad = int(np.count_nonzero(np.isnan(edges[:, 0])))
    if bad == edges.shape[0]:
        raise LamegValueError("No cortical columns have valid BigBrain laminar boundaries "
                              "(all outside the atlas cortex or not increasing).")
    if bad:
        warnings.warn(
            f"BigBrain mapping unavailable for {bad} of {edges.shape[0]} cortical columns "
            "(atlas boundaries non-finite, outside the reconstructed depth range or not "
            "increasing, e.g. on the medial wall); their edges and weights are NaN.",
            RuntimeWarning, stacklevel=2)
    return edges, weights


def surface_to_laminae(layer_data, weights) -> np.ndarray:
    """Apply layer-to-lamina weights.

    Parameters
    ----------
    layer_data : array-like, shape (n_layers, ...) or (n_layers, n_columns, ...)
        Values per reconstructed layer (layer axis first).
    weights : array-like, shape (n_laminae, n_layers) or (n_columns, n_laminae, n_layers)
        One weight matrix for all columns, or one per column (then ``layer_data``'s second
        axis is the column).

    Returns
    -------
    ndarray, shape (n_laminae, ...) or (n_laminae, n_columns, ...)
        Values per lamina.
    """
    data = np.asarray(layer_data)
    w = np.asarray(weights, dtype=float)
    if w.ndim == 2:
        if data.ndim < 1 or data.shape[0] != w.shape[1]:
            raise LamegValueError(f"Layer dimension mismatch: layer_data has "
                                  f"{data.shape[0] if data.ndim else 0} layers, weights expect "
                                  f"{w.shape[1]}.")
        return np.tensordot(w, data, axes=(1, 0))
    if w.ndim == 3:
        if data.ndim < 2:
            raise LamegValueError("For column-specific weights, `layer_data` must have shape "
                                  "layer x column x ...")
        if data.shape[0] != w.shape[2]:
            raise LamegValueError(f"Layer dimension mismatch: layer_data has {data.shape[0]} "
                                  f"layers, weights expect {w.shape[2]}.")
        if data.shape[1] != w.shape[0]:
            raise LamegValueError(f"Column dimension mismatch: layer_data has {data.shape[1]} "
                                  f"columns, weights contain {w.shape[0]}.")
        return np.einsum("cal,lc...->ac...", w, data, optimize=True)
    raise LamegValueError("`weights` must have shape (lamina, layer) or "
                          "(column, lamina, layer).")


def bigbrain_laminar_thickness(surf_set, columns=None) -> np.ndarray:
    """Thickness of laminae I-VI at each cortical column, mm.

    Parameters
    ----------
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set (``ds`` pial/white meshes).
    columns : array-like of int or None
        Downsampled columns; None = all.

    Returns
    -------
    thickness : ndarray, shape (6, n_columns)
        ``diff(edges) * cortical thickness`` (pial-white distance); sums to the cortical
        thickness; NaN where the atlas has no laminae.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        edges, _ = compute_bigbrain_laminar_weights(surf_set, columns)
    pial = _mesh_vertices(surf_set, "pial", "ds")
    white = _mesh_vertices(surf_set, "white", "ds")
    thick = np.linalg.norm(white - pial, axis=1)
    if columns is not None:
        thick = thick[np.asarray(columns).reshape(-1)]
    return (np.diff(edges, axis=1) * thick[:, None]).T
