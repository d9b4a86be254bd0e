"""Head surfaces (scalp, inner and outer skull) of a subject, found on disk or built from the T1."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
)
from ..io import freesurfer as fsio
from ..io.gifti import gifti_arrays, write_surf_gifti
from ..mesh.decimate import decimate_vertex_subset
from ..mesh.normals import orient_outward


def _find_head_mesh(surf_set, mesh_type):
    subj = Path(surf_set.subj_dir)
    bem = subj / "bem"
    mgz = subj / "mri" / "orig.mgz"
    fs_name = {"scalp": "outer_skin", "iskull": "inner_skull", "oskull": "outer_skull"}[mesh_type]
    spm_name = {"scalp": "origscalp_2562", "iskull": "origiskull_2562",
                "oskull": "origoskull_2562"}[mesh_type]

    def tk(v):
        if not mgz.exists():
            raise LamegFileNotFoundError(f"{mgz} is needed to convert tkRAS head surfaces")
        return fsio.apply_affine(v, fsio.tkras_to_scanner(mgz)[0])

    if mesh_type == "scalp" and (bem / "outer_skin.converted.gii").exists():
        v, f, _ = gifti_arrays(nib.load(str(bem / "outer_skin.converted.gii")))
        return v, f
    for cand in (bem / f"{fs_name}.surf", bem / "watershed" / f"{surf_set.subj_id}_{fs_name}_surface"):
        if cand.exists():
            v, f = fsio.read_surface(cand)
            return tk(v), f
    if mesh_type == "scalp":
        for name in (f"{surf_set.subj_id}-head-dense.fif", f"{surf_set.subj_id}-head.fif"):
            if (bem / name).exists():
                import mne

                surf = mne.read_bem_surfaces(str(bem / name))[0]
                return tk(surf["rr"] * 1000.0), np.asarray(surf["tris"], np.int64)
    spm = subj / "mri" / f"{spm_name}.surf.gii"
    if spm.exists():
        v, f, _ = gifti_arrays(nib.load(str(spm)))
        return v, f
    if mesh_type == "scalp" and mgz.exists():
        return _ensure_scalp(surf_set)
    raise LamegFileNotFoundError(
        f"no {mesh_type} surface for {surf_set.subj_id}: provide bem/{fs_name}.surf (FreeSurfer "
        f"mri_watershed / mne watershed_bem), or {spm.name} (SPM coregistration)"
        + (", or bem/<subj>-head-dense.fif (mne make_scalp_surfaces)" if mesh_type == "scalp"
           else ""))


def _has_scalp(surf_set) -> bool:
    """Whether ``bem/`` already holds a scalp surface (then none is built)."""
    bem = Path(surf_set.subj_dir) / "bem"
    return any((bem / name).exists() for name in (
        "outer_skin.converted.gii", "outer_skin.surf",
        f"{surf_set.subj_id}-head-dense.fif", f"{surf_set.subj_id}-head.fif"))


def _ensure_scalp(surf_set, computed=None, **kwargs):
    """Build ``bem/outer_skin.{raw,converted}.gii`` from orig.mgz if no scalp exists.

    ``computed``: the ``(vertices, faces)`` of :func:`scalp_from_mri` when already computed.
    """
    if _has_scalp(surf_set):
        return None
    bem = Path(surf_set.subj_dir) / "bem"
    mgz = Path(surf_set.subj_dir) / "mri" / "orig.mgz"
    v, f = computed if computed is not None else scalp_from_mri(mgz, **kwargs)
    affine = fsio.tkras_to_scanner(mgz)[0]
    raw = fsio.apply_affine(v, np.linalg.inv(affine))
    bem.mkdir(parents=True, exist_ok=True)
    write_surf_gifti(bem / "outer_skin.raw.gii", raw, f)
    write_surf_gifti(bem / "outer_skin.converted.gii", v, f)
    return v, f


def scalp_from_mri(mri_path, threshold=None, n_faces=20000, smooth_iter=10):
    """Scalp surface from a T1 volume (scanner RAS mm).

    Method: the head mask is ``intensity > threshold`` (default: half of Otsu's threshold
    of the non-zero voxels, which separates air/background from skin), its largest connected
    component, morphologically closed (3 voxels) and hole-filled slice-wise and in 3-D; the
    isosurface (0.5 level of the mask, marching cubes via VTK flying edges; for voxels finer
    of 1 mm or less the mask is first averaged over blocks of about 2 mm) is lightly
    Laplacian-smoothed and decimated to about ``n_faces`` faces. The surface lies within about
    one voxel of the air/skin boundary of the mask (mesh vertices on the 0.5 level set of a
    binary volume are at most half a voxel from the voxel boundary before smoothing).

    Parameters
    ----------
    mri_path : path-like
        Volume readable by nibabel (``orig.mgz``).
    threshold : float, optional
        Intensity threshold (default: automatic, see above).
    n_faces : int
        Approximate number of faces of the result.
    smooth_iter : int
        Laplacian smoothing iterations.

    Returns
    -------
    vertices : ndarray, shape (n, 3), scanner RAS mm
    faces : ndarray, shape (m, 3), outward-wound
    """
    import pyvista as pv
    from scipy import ndimage

    img = nib.load(str(mri_path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim > 3:
        data = data[..., 0]
    nz = data[data > 0]
    if nz.size == 0:
        raise LamegDataError(f"{mri_path} is empty; cannot extract a scalp")
    if threshold is None:
        hist, edges = np.histogram(nz, bins=256)
        p = hist / hist.sum()
        w = np.cumsum(p)
        mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            between = (mu[-1] * w - mu) ** 2 / (w * (1 - w))
        if np.isfinite(between).any():
            threshold = 0.5 * edges[int(np.nanargmax(between)) + 1]
        else:                       # a single non-zero intensity (binary mask volume)
            threshold = 0.5 * float(nz.min())
    mask = data > threshold
    lab, nlab = ndimage.label(mask)
    if nlab == 0:
        raise LamegDataError(f"no voxel of {mri_path} exceeds the threshold {threshold}")
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    mask = lab == sizes.argmax()
    mask = ndimage.binary_closing(np.pad(mask, 4), iterations=3)[4:-4, 4:-4, 4:-4]
    mask = ndimage.binary_fill_holes(mask)
    # fine volumes: the isosurface is taken on the mask averaged over b^3 blocks (partial-volume
    # fractions, voxels of about 2 mm), which keeps sub-voxel accuracy and makes the contour
    # and its decimation several times cheaper
    vsize = float(np.linalg.norm(img.affine[:3, :3], axis=0).min())
    b = max(1, int(2.0 // vsize)) if vsize > 0 else 1
    frac = mask.astype(np.float32)
    if b > 1:
        frac = np.pad(frac, [(0, (-n) % b) for n in frac.shape])
        sh = [n // b for n in frac.shape]
        frac = frac.reshape(sh[0], b, sh[1], b, sh[2], b).mean(axis=(1, 3, 5))
    padded = np.pad(frac, 1)
    o = -b + (b - 1) / 2.0            # original voxel index of padded block 0
    grid = pv.ImageData(dimensions=padded.shape, spacing=(b, b, b), origin=(o, o, o))
    grid.point_data["m"] = padded.ravel(order="F")
    # level just below 0.5: block fractions k / b^3 never equal it, so no vertex falls exactly
    # on a grid point (which would create coincident vertices and degenerate triangles)
    level = 0.5 - 0.25 / b ** 3 if b > 1 else 0.5
    surf = grid.contour([level], scalars="m", method="flying_edges").clean().triangulate()
    surf = pv.PolyData(surf.points, surf.faces).clean()       # polygons only
    if smooth_iter:
        surf = surf.smooth(n_iter=smooth_iter)
    vox = np.asarray(surf.points, dtype=np.float64)
    faces = np.asarray(surf.faces).reshape(-1, 4)[:, 1:].astype(np.int64)
    if len(faces) > n_faces:
        # manifold-preserving decimation (VTK's quadric decimation can leave a few
        # non-manifold or open edges at strong reductions)
        kept, faces = decimate_vertex_subset(vox, faces, target_faces=n_faces)
        vox = vox[kept]
    v = fsio.apply_affine(vox, img.affine)
    faces, _ = orient_outward(v, faces)
    return v, faces
