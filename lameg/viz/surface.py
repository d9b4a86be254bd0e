"""Cortical surface rendering: :func:`render_mesh` and :func:`show_surface`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path, logger
from .._validate import check_float, check_int
from ..exceptions import LamegValueError
from ..io.gifti import gifti_arrays
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
from .colors import BASE_GREY, CURV_DARK, _check_cmap, _make_norm, _rgb255, _vertex_rgb


def _compose_with_colorbar(image: np.ndarray, mappable: Any, label: str | None,
                           title: str | None, path: Path) -> None:
    """Save the rendered image beside a matplotlib colour bar as one PNG."""
    from matplotlib.figure import Figure

    h, w = image.shape[:2]
    dpi = 100
    fig = Figure(figsize=((w + 1.3 * dpi) / dpi, h / dpi), dpi=dpi, facecolor="white")
    ax = fig.add_axes((0.0, 0.0, w / (w + 1.3 * dpi), 1.0))
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, y=0.95)
    cax = fig.add_axes((w / (w + 1.3 * dpi) + 0.02, 0.15, 0.025 * 8 * dpi / (w + 1.3 * dpi),
                        0.7))
    cbar = fig.colorbar(mappable, cax=cax)
    if label:
        cbar.set_label(label)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    scalars: np.ndarray | None = None,
    vertex_colors: Any = None,
    color: Any = None,
    cmap: Any = "RdBu_r",
    vmin: float | None = None,
    vmax: float | None = None,
    vcenter: float = 0.0,
    norm: str = "N",
    opacity: float = 1.0,
    camera_view: Any = None,
    marker_coords: np.ndarray | None = None,
    marker_size: float | Sequence[float] = 1.0,
    marker_color: Any = None,
    height: int = 512,
    width: int | None = None,
    colorbar: bool = False,
    colorbar_label: str | None = None,
    title: str | None = None,
    grid: bool = False,
    screenshot: str | os.PathLike | None = None,
    plotter: Any = None,
    show: bool | None = None,
):
    """Render a triangle mesh coloured by per-vertex values or colours.

    Parameters
    ----------
    vertices : ndarray, shape (n_vertices, 3)
        Coordinates (any length unit; mm for cortical meshes).
    faces : ndarray of int, shape (n_faces, 3)
        0-based vertex indices of the triangles.
    scalars : ndarray, shape (n_vertices,), optional
        Values mapped through ``cmap`` between ``vmin`` and ``vmax`` with ``norm``; NaN
        vertices take ``color``.
    vertex_colors : array_like, optional
        Explicit colours instead of ``scalars``: (n, 3) RGB, (n, 4) RGBA with the alpha mask, or
        (n,) packed integers. Masked vertices take ``color``.
    color : colour, optional
        Base colour (default laMEG's grey 166).
    cmap : str or matplotlib Colormap
        Colour map of ``scalars`` (a name from ``matplotlib.colormaps``).
    vmin : float, optional
        Value at the low end of the colour map (default: 1st percentile of ``scalars``).
    vmax : float, optional
        Value at the high end (default: 99th percentile); must exceed ``vmin``.
    vcenter : float
        Centre of the two-slope norm (``norm='TS'``).
    norm : {'N', 'TS', 'LOG'}
        Linear, two-slope (diverging around ``vcenter``) or logarithmic normalisation.
    opacity : float
        Mesh opacity in [0, 1].
    camera_view : 9 numbers or str, optional
        ``[eye xyz, target xyz, up xyz]`` or a pyvista view ('xy', 'yz', ...). Default: an
        automatic view from the left (-x) with z up.
    marker_coords : ndarray, shape (n_markers, 3), optional
        Centres of sphere markers, in mesh units.
    marker_size : float or sequence of float
        Marker diameter(s) in mesh units (one, or one per marker).
    marker_color : colour or sequence of colours, optional
        One colour, or one per marker (default red).
    height : int
        Image height in pixels.
    width : int, optional
        Image width in pixels (default 4/3 of the height).
    colorbar : bool
        Add a matplotlib colour bar (needs ``scalars``) to the screenshot.
    colorbar_label, title : str, optional
    grid : bool
        Show axes with a grid.
    screenshot : path, optional
        Write a PNG there (atomically); its folder must be writable (checked first).
    plotter : pyvista.Plotter, optional
        Draw into an existing plotter instead of a new one.
    show : bool, optional
        Show the view (default: only inside a Jupyter kernel). In Jupyter it is an
        interactive trame widget (:func:`lameg.viz.backend.notebook_backend`; a static image
        without trame), elsewhere a desktop window.

    Returns
    -------
    pyvista.Plotter
        The plotter (closed if only used for the screenshot; in Jupyter it stays open behind
        the widget).
    """
    _check_screenshot(screenshot)
    opacity = check_float(opacity, "opacity", min_value=0.0, max_value=1.0)
    height = check_int(height, "height", min_value=16)
    pv = _pyvista()
    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise LamegValueError(
            f"vertices must be (n, 3) and faces (m, 3); got {vertices.shape} and {faces.shape}"
        )
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        raise LamegValueError("faces index vertices that do not exist")
    n = vertices.shape[0]
    width = int(width) if width is not None else int(round(height * 4 / 3))
    if show is None:
        show = in_notebook()
    own_plotter = plotter is None
    if own_plotter:
        plotter = _new_plotter(show, screenshot, (width, int(height)))
    mesh = pv.PolyData(vertices, _faces_to_pv(faces))
    base = _rgb255(color)
    mappable = None
    if scalars is not None:
        scalars = np.asarray(scalars, dtype=float).ravel()
        if scalars.size != n:
            raise LamegValueError(f"scalars has {scalars.size} values for {n} vertices")
        finite = scalars[np.isfinite(scalars)]
        if finite.size == 0:
            raise LamegValueError("scalars has no finite value to colour")
        lo = np.percentile(finite, 1) if vmin is None else vmin
        hi = np.percentile(finite, 99) if vmax is None else vmax
        if vmin is None and vmax is None and not hi > lo:   # constant data: any range
            hi = lo + 1.0
        import matplotlib as mpl

        mappable = mpl.cm.ScalarMappable(norm=_make_norm(norm, lo, hi, vcenter),
                                         cmap=_check_cmap(cmap))
        rgb = mappable.to_rgba(np.nan_to_num(scalars, nan=lo))[:, :3] * 255.0
        rgb[~np.isfinite(scalars)] = base
    elif vertex_colors is not None:
        rgb = _vertex_rgb(vertex_colors, n, base)
    else:
        rgb = np.tile(base, (n, 1))
    mesh.point_data["rgb"] = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    plotter.add_mesh(mesh, scalars="rgb", rgb=True, opacity=float(opacity), smooth_shading=True,
                     show_scalar_bar=False)
    if marker_coords is not None:
        _add_markers(plotter, marker_coords, marker_size, marker_color)
    if grid:
        plotter.show_grid()
    cam = _camera(camera_view)
    if cam is None:
        plotter.view_vector((-1.0, 0.0, 0.0), viewup=(0.0, 0.0, 1.0))
        plotter.reset_camera()
        plotter.camera.zoom(1.3)
    elif isinstance(cam, str):
        plotter.camera_position = cam
    else:
        plotter.camera_position = cam
    if screenshot is not None:
        path = Path(screenshot)
        img = plotter.screenshot(None, return_img=True)
        if colorbar and mappable is not None:
            _compose_with_colorbar(img, mappable, colorbar_label, title, path)
        else:
            if colorbar:
                warnings.warn("colorbar needs scalars; writing the image without one",
                              UserWarning, stacklevel=2)
            _save_png(img, path)
    _finish(plotter, show, close=own_plotter and screenshot is not None)
    return plotter


def _add_markers(plotter: Any, coords: Any, size: Any, color: Any) -> None:
    pv = _pyvista()
    coords = np.atleast_2d(np.asarray(coords, dtype=float))
    if coords.shape[1] != 3:
        raise LamegValueError(f"marker coordinates must be (n, 3), got {coords.shape}")
    k = coords.shape[0]
    sizes = np.broadcast_to(np.asarray(size, dtype=float).ravel(), (k,)) if np.size(size) in (
        1, k) else None
    if sizes is None:
        raise LamegValueError(f"marker_size must be a scalar or {k} values")
    if color is None:
        colors = [np.array([255.0, 0.0, 0.0])] * k
    elif (isinstance(color, (list, tuple, np.ndarray)) and len(color) == k
          and all(np.ndim(c) == 1 or isinstance(c, str) for c in color) and k > 1
          or (k == 1 and np.ndim(color) == 2)):
        colors = [_rgb255(c) for c in color]
    else:
        colors = [_rgb255(color)] * k
    for p, s, c in zip(coords, sizes, colors):
        plotter.add_mesh(pv.Sphere(radius=s / 2.0, center=p, theta_resolution=16,
                                   phi_resolution=16), color=tuple(c / 255.0),
                         smooth_shading=True)


def _gifti_mesh(gii: Any) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (n, 3) float64, faces (m, 3) int64) of a GIfTI surface."""
    return gifti_arrays(gii)[:2]


def _curvature_colors(surf_set: Any, stage: str, hemi: str | None, vertices_pial: np.ndarray
                      ) -> np.ndarray | None:
    """Binary curvature grey (laMEG: curv <= 0 -> 166, > 0 -> 64) for displayed vertices."""
    import nibabel as nib
    from scipy.spatial import cKDTree

    hemis = [hemi] if hemi is not None else ["lh", "rh"]
    coords, curv = [], []
    for h in hemis:
        curv_file = Path(surf_set.surf_dir) / f"{h}.curv"
        try:
            conv = surf_set.load("pial", stage="converted", hemi=h)
        except (FileNotFoundError, OSError):
            return None
        if not curv_file.exists():
            return None
        c = nib.freesurfer.read_morph_data(str(curv_file))
        v, _ = _gifti_mesh(conv)
        if c.size != v.shape[0]:
            return None
        coords.append(v)
        curv.append(c)
    tree = cKDTree(np.vstack(coords))
    _, idx = tree.query(vertices_pial)
    values = np.concatenate(curv)[idx]
    return np.where(values[:, None] > 0, np.array(CURV_DARK, float), np.array(BASE_GREY, float))


def show_surface(
    surf_set: Any,
    layer_name: str = "inflated",
    stage: str = "ds",
    hemi: str | None = None,
    orientation: str | None = None,
    fixed: bool | None = None,
    color: Any = None,
    grid: bool = False,
    menu: bool = False,
    vertex_colors: Any = None,
    info: bool = False,
    camera_view: Any = None,
    height: int = 512,
    opacity: float = 1.0,
    marker_coords: np.ndarray | None = None,
    marker_vertices: Sequence[int] | None = None,
    marker_size: float | Sequence[float] = 1,
    marker_color: Any = None,
    plot_curvature: bool = True,
    screenshot: str | os.PathLike | None = None,
    scalars: np.ndarray | None = None,
    colorbar: bool = False,
    colorbar_label: str | None = None,
    cmap: Any = "RdBu_r",
    vmin: float | None = None,
    vmax: float | None = None,
):
    """Render a surface of a :class:`~lameg.surf.LayerSurfaceSet` (laMEG signature).

    Parameters
    ----------
    surf_set : LayerSurfaceSet
    layer_name : str
        Layer ('pial', '0.500', 'white', 'inflated', ...); default the inflated surface.
    stage : str
        Processing stage ('ds' by default; 'converted', 'nodeep' need ``hemi``).
    hemi : {'lh', 'rh'} or None
    orientation, fixed : optional
        Select an oriented ds file (``<layer>.ds.<orientation>.<fixed>.gii``).
    color : colour, optional
        Base colour where no vertex colour is shown and curvature is off.
    grid : bool
        Show axes and grid.
    menu : bool
        Accepted for compatibility (k3d's menu); pyvista has no equivalent.
    vertex_colors : array_like, optional
        (n, 3) integer RGB, or (n, 4) RGBA whose alpha > 128 shows the colour and otherwise the
        curvature/base grey (laMEG convention; :func:`color_map` output fits).
    info : bool
        Print the number of vertices.
    camera_view : 9 numbers, optional
        laMEG's ``[eye xyz, target xyz, up xyz]`` (mm).
    height : int
        Image height in pixels.
    opacity : float
    marker_coords : ndarray (n, 3), optional
        Marker positions (mm); ignored if ``marker_vertices`` is given.
    marker_vertices : sequence of int, optional
        Vertices of the displayed mesh to mark.
    marker_size, marker_color : optional
        Marker diameter (mm) and colour(s).
    plot_curvature : bool
        Shade by the sign of the FreeSurfer curvature (``surf/?h.curv``, mapped through the
        nearest full-resolution pial vertex).
    screenshot : path, optional
        Write a PNG.
    scalars, colorbar, colorbar_label, cmap, vmin, vmax : optional
        Colour by values with a matplotlib colour bar instead of ``vertex_colors``
        (see :func:`render_mesh`).

    Returns
    -------
    pyvista.Plotter
    """
    del menu  # k3d-only option
    _check_screenshot(screenshot)
    if scalars is not None or vertex_colors is None:
        _check_cmap(cmap)
    gii = surf_set.load(layer_name, stage=stage, hemi=hemi, orientation=orientation, fixed=fixed)
    vertices, faces = _gifti_mesh(gii)
    n = vertices.shape[0]
    if info:
        print(f"{n} vertices")
    background = None
    if plot_curvature:
        pial = vertices
        if layer_name != "pial":
            try:
                pial, _ = _gifti_mesh(surf_set.load("pial", stage=stage, hemi=hemi))
            except (FileNotFoundError, OSError):
                pial = None
        if pial is not None and pial.shape[0] == n:
            background = _curvature_colors(surf_set, stage, hemi, pial)
        if background is None:
            logger.info("curvature files not found; plotting without curvature")
    if background is None:
        background = np.tile(_rgb255(color), (n, 1))
    if vertex_colors is not None and scalars is None:
        colors_ = _vertex_rgb(vertex_colors, n, background)
    else:
        colors_ = background
    if marker_vertices is not None:
        idx = np.atleast_1d(np.asarray(marker_vertices, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise LamegValueError(f"marker_vertices must index the {n} displayed vertices")
        marker_coords = vertices[idx]
    return render_mesh(
        vertices, faces, scalars=scalars, vertex_colors=colors_, color=color, cmap=cmap,
        vmin=vmin, vmax=vmax, opacity=opacity, camera_view=camera_view,
        marker_coords=marker_coords, marker_size=marker_size, marker_color=marker_color,
        height=height, colorbar=colorbar, colorbar_label=colorbar_label, grid=grid,
        screenshot=screenshot,
    )
