"""Co-registration views: MEG sensors, head surfaces, fiducials and cortex in one frame."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import logger
from ..exceptions import LamegFileNotFoundError, LamegValueError
from ..forward.coreg import similarity_transform
from .backend import (
    _camera,
    _check_screenshot,
    _faces_to_pv,
    _finish,
    _new_plotter,
    _pyvista,
    _save_png,
    in_notebook,
)
from .surface import _gifti_mesh


def _similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotation + isotropic scale + translation from ``src`` onto ``dst``; (4x4, rmse)."""
    return similarity_transform(src, dst, scale=True)


def plot_coregistration(
    sensors: dict,
    cortex: tuple[np.ndarray, np.ndarray] | None = None,
    head_meshes: dict | None = None,
    fiducials: dict | None = None,
    unit_scale: float = 1.0,
    camera_view: Any = None,
    height: int = 512,
    screenshot: str | os.PathLike | None = None,
    show: bool | None = None,
):
    """Draw MEG sensors, head surfaces, fiducials and cortex in one frame.

    Parameters
    ----------
    sensors : dict
        ``coilpos`` (n_coils, 3), ``coilori`` (n_coils, 3), optional ``chanpos``/``chanori``
        (n_chan, 3), ``tra`` (n_chan, n_coils), ``chantype`` (list of str). Types drawn as:
        'megmag' points; 'megplanar' 3 cm squares spanning the gradiometer's two coils;
        'meg', 'meggrad', 'opm' (and other MEG) 1 cm discs normal to the channel orientation.
    cortex : (vertices, faces), optional
    head_meshes : dict of name -> (vertices, faces), optional
        E.g. 'scalp', 'iskull', 'oskull' (drawn translucent) and 'face_3d' (a 3-D scan of the
        face, drawn blue).
    fiducials : dict, optional
        'nas', 'lpa', 'rpa' -> (3,) positions (blue, red, green).
    unit_scale : float
        Length of one millimetre in the coordinates' unit (1 for mm, 0.001 for m), used for
        glyph sizes.
    camera_view, height, screenshot, show
        As :func:`render_mesh`.

    Returns
    -------
    pyvista.Plotter
    """
    _check_screenshot(screenshot)
    pv = _pyvista()
    if show is None:
        show = in_notebook()
    plotter = _new_plotter(show, screenshot, (int(round(height * 4 / 3)), int(height)))
    head_colors = {"scalp": (0.95, 0.8, 0.7), "oskull": (0.6, 0.6, 0.9),
                   "iskull": (0.6, 0.9, 0.6), "face_3d": (0.3, 0.45, 0.9)}
    for name, (v, f) in (head_meshes or {}).items():
        plotter.add_mesh(pv.PolyData(np.asarray(v, float), _faces_to_pv(f)),
                         color=head_colors.get(name, (0.8, 0.8, 0.8)),
                         opacity=0.8 if name == "face_3d" else 0.25, smooth_shading=True)
    if cortex is not None:
        v, f = cortex
        plotter.add_mesh(pv.PolyData(np.asarray(v, float), _faces_to_pv(f)),
                         color=(0.65, 0.65, 0.65), smooth_shading=True)
    # float RGB: pyvista reads integer tuples as 0-255
    fid_colors = {"nas": (0.0, 0.0, 1.0), "lpa": (1.0, 0.0, 0.0), "rpa": (0.0, 0.7, 0.0)}
    for name, pos in (fiducials or {}).items():
        plotter.add_mesh(pv.Sphere(radius=5 * unit_scale, center=np.asarray(pos, float)),
                         color=fid_colors.get(name.lower(), (1.0, 1.0, 0.0)))
    _add_sensor_glyphs(plotter, sensors, unit_scale)
    cam = _camera(camera_view)
    if cam is None:
        plotter.view_vector((-1.0, 0.8, 0.3), viewup=(0.0, 0.0, 1.0))   # front left
        plotter.reset_camera()
    else:
        plotter.camera_position = cam
    if screenshot is not None:
        _save_png(plotter.screenshot(None, return_img=True), screenshot)
    _finish(plotter, show, close=screenshot is not None)
    return plotter


def _add_sensor_glyphs(plotter: Any, sensors: dict, unit_scale: float) -> None:
    pv = _pyvista()
    coilpos = np.atleast_2d(np.asarray(sensors["coilpos"], float))
    coilori = np.atleast_2d(np.asarray(sensors.get("coilori", np.zeros_like(coilpos)), float))
    tra = sensors.get("tra")
    chantype = [str(t).lower() for t in sensors.get("chantype", [])]
    if tra is None or not chantype:
        cloud = pv.PolyData(coilpos)
        plotter.add_mesh(cloud, color="black", point_size=6, render_points_as_spheres=True)
        return
    tra = np.asarray(tra.toarray() if hasattr(tra, "toarray") else tra, float)
    chanpos = sensors.get("chanpos")
    chanori = sensors.get("chanori")
    pos_w = np.abs(tra) / np.maximum(np.abs(tra).sum(1, keepdims=True), 1e-30)
    chanpos = np.asarray(chanpos, float) if chanpos is not None else pos_w @ coilpos
    chanori = np.asarray(chanori, float) if chanori is not None else pos_w @ coilori
    types = np.array(chantype)
    mag = types == "megmag"
    if mag.any():
        plotter.add_mesh(pv.PolyData(chanpos[mag]), color="black", point_size=8,
                         render_points_as_spheres=True)
    planar = np.flatnonzero(types == "megplanar")
    if planar.size:
        pos = (tra[planar] > 0).astype(float)
        neg = (tra[planar] < 0).astype(float)
        direction = (pos @ coilpos / np.maximum(pos.sum(1, keepdims=True), 1)
                     - neg @ coilpos / np.maximum(neg.sum(1, keepdims=True), 1))
        # 3 cm squares spanned by the gradiometer's baseline and its normal
        half = 15.0 * unit_scale
        square = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0],
                           [-1.0, 1.0, 0.0]]) * half
        plotter.add_mesh(_oriented_glyphs(square, np.array([[0, 1, 2], [0, 2, 3]]),
                                          chanpos[planar], chanori[planar], direction),
                         color=(0.2, 0.4, 0.9), opacity=0.6)
    other = np.flatnonzero(np.isin(types, ["meg", "meggrad", "opm"]))
    if other.size:
        # 1 cm discs normal to the channel orientation
        n_seg = 16
        ang = 2 * np.pi * np.arange(n_seg) / n_seg
        disc = np.vstack([[0.0, 0.0, 0.0],
                          np.c_[np.cos(ang), np.sin(ang), np.zeros(n_seg)] * 5 * unit_scale])
        tri = np.c_[np.zeros(n_seg, int), 1 + np.arange(n_seg), 1 + (np.arange(n_seg) + 1) % n_seg]
        plotter.add_mesh(_oriented_glyphs(disc, tri, chanpos[other], chanori[other]),
                         color=(0.1, 0.1, 0.5))


def _oriented_glyphs(points: np.ndarray, faces: np.ndarray, centres: np.ndarray,
                     normals: np.ndarray, in_plane: np.ndarray | None = None):
    """One mesh of copies of a planar glyph (template in the x-y plane, z = its normal).

    Copy i is centred on ``centres[i]`` with its z axis along ``normals[i]`` (z when zero) and
    its x axis along the part of ``in_plane[i]`` orthogonal to the normal (any orthogonal
    direction when absent or parallel).
    """
    pv = _pyvista()
    n = np.asarray(normals, float)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 0, n / np.where(length > 0, length, 1.0), [0.0, 0.0, 1.0])
    ref = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(n, ref)
    if in_plane is not None:
        d = np.asarray(in_plane, float)
        d = d - np.einsum("ij,ij->i", d, n)[:, None] * n
        ok = np.linalg.norm(d, axis=1) > 0
        u[ok] = d[ok]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = np.cross(n, u)
    basis = np.stack([u, w, n], axis=1)                      # (k, 3 axes, 3 coords)
    verts = np.asarray(centres, float)[:, None, :] + np.einsum("pa,kac->kpc", points, basis)
    k, m = len(basis), len(points)
    tris = (np.asarray(faces)[None, :, :] + m * np.arange(k)[:, None, None]).reshape(-1, 3)
    return pv.PolyData(verts.reshape(-1, 3), _faces_to_pv(tris))


def verify_coregistration(
    data_file: str | os.PathLike,
    surf_set: Any,
    layer_name: str | None = None,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    inversion_idx: int = 0,
    fid_coords: dict | None = None,
    display_3d_scan: bool = False,
    camera_view: Any = None,
    screenshot: str | os.PathLike | None = None,
):
    """Show a dataset's co-registration: sensors, head surfaces, fiducials and cortex.

    Reads the forward model stored in ``D.other.inv{inversion_idx + 1}`` (sensors and cortical
    mesh in the MEG head frame), estimates the similarity transform from the ``surf_set`` mesh
    (MRI mm) to that cortical mesh, and draws the MRI-space surfaces (pial ``combined`` mesh,
    scalp and skull meshes of ``surf_set.load_head_mesh``, ``fid_coords``, optionally
    ``surf/face_3d.gii``) transformed into the sensor frame, with :func:`plot_coregistration`.

    Parameters
    ----------
    data_file : str or path-like
        Co-registered SPM dataset.
    surf_set : LayerSurfaceSet
    layer_name, stage, orientation, fixed
        Mesh the forward model was built on (``surf_set.get_mesh_path`` arguments).
    inversion_idx : int
        0-based index of the forward model.
    fid_coords : dict, optional
        Fiducials in MRI scanner-RAS mm.
    display_3d_scan : bool
        Also draw ``surf/face_3d.gii``, the face scan written by
        :func:`lameg.util.coregister_3d_scan_mri` (blue).
    camera_view, screenshot
        As :func:`render_mesh`.

    Returns
    -------
    pyvista.Plotter

    Raises
    ------
    LamegFileNotFoundError
        With ``display_3d_scan=True`` when ``surf/face_3d.gii`` does not exist (as laMEG).
    """
    _check_screenshot(screenshot)
    import nibabel as nib

    from ..io.spm_inv import read_head_model

    face = Path(surf_set.surf_dir) / "face_3d.gii"
    if display_3d_scan and not face.is_file():
        raise LamegFileNotFoundError(
            f"3-D scan of the face not found at {face}: write it with "
            "lameg.util.coregister_3d_scan_mri, or pass display_3d_scan=False")

    hm = read_head_model(data_file, inversion_idx)
    sensors = hm.sensors
    fvert = hm.cortex_head_m
    mesh_path = surf_set.get_mesh_path(layer_name=layer_name, stage=stage,
                                       orientation=orientation, fixed=fixed)
    sv, sf = _gifti_mesh(nib.load(mesh_path))
    if sv.shape[0] != fvert.shape[0]:
        raise LamegValueError(
            f"the forward model mesh has {fvert.shape[0]} vertices but {Path(mesh_path).name} "
            f"has {sv.shape[0]}: pass the layer_name/stage/orientation used by coregister()"
        )
    affine, rmse = _similarity_transform(sv, fvert)
    scale = float(np.cbrt(abs(np.linalg.det(affine[:3, :3]))))
    logger.info("MRI -> MEG similarity transform: scale %.4g, RMSE %.3g", scale, rmse)

    def xf(p):
        return np.asarray(p, float) @ affine[:3, :3].T + affine[:3, 3]

    try:
        pv_, pf_ = _gifti_mesh(surf_set.load("pial", stage="combined"))
        cortex = (xf(pv_), pf_)
    except (FileNotFoundError, OSError):
        cortex = (fvert, hm.faces)
    heads = {}
    for kind in ("scalp", "iskull", "oskull"):
        try:
            hv, hf = _gifti_mesh(surf_set.load_head_mesh(kind))
            heads[kind] = (xf(hv), hf)
        except (FileNotFoundError, OSError, LamegFileNotFoundError):
            continue
    if display_3d_scan:
        fv, ff = _gifti_mesh(nib.load(face))
        heads["face_3d"] = (xf(fv), ff)
    fids = {k: xf(v) for k, v in (fid_coords or {}).items()}
    return plot_coregistration(sensors, cortex=cortex, head_meshes=heads, fiducials=fids,
                               unit_scale=scale, camera_view=camera_view,
                               screenshot=screenshot)


def _scan_alignment_screenshot(scalp: tuple[np.ndarray, np.ndarray],
                               face: tuple[np.ndarray, np.ndarray],
                               mri_fiducials: dict, scan_fiducials: dict,
                               screenshot: str | os.PathLike, title: str) -> None:
    """PNG of a face scan on the MRI scalp (scanner RAS mm), as two views (front, left).

    MRI fiducials are drawn as large translucent spheres, the scan's fiducials as small solid
    ones, in laMEG's colours (nasion blue, LPA red, RPA green).
    """
    pv = _pyvista()
    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=(1200, 600), border=False)
    plotter.set_background("white")
    colors = {"nas": (0.0, 0.0, 1.0), "lpa": (1.0, 0.0, 0.0), "rpa": (0.0, 0.7, 0.0)}
    for col, view in enumerate(((0.0, 1.0, 0.15), (-1.0, 0.0, 0.15))):
        plotter.subplot(0, col)
        plotter.add_mesh(pv.PolyData(np.asarray(scalp[0], float), _faces_to_pv(scalp[1])),
                         color=(0.95, 0.8, 0.7), smooth_shading=True)
        plotter.add_mesh(pv.PolyData(np.asarray(face[0], float), _faces_to_pv(face[1])),
                         color=(0.3, 0.45, 0.9), opacity=0.75)
        for name, pos in mri_fiducials.items():
            plotter.add_mesh(pv.Sphere(radius=6.0, center=np.asarray(pos, float)),
                             color=colors[name], opacity=0.35)
        for name, pos in scan_fiducials.items():
            plotter.add_mesh(pv.Sphere(radius=2.5, center=np.asarray(pos, float)),
                             color=colors[name])
        plotter.view_vector(view, viewup=(0.0, 0.0, 1.0))
        plotter.reset_camera()
        if col == 0:
            plotter.add_text(title, font_size=12, color="black")
    _save_png(plotter.screenshot(None, return_img=True), screenshot)
    plotter.close()
