"""Visualisation: cortical surfaces, colour maps, CSD images, co-registration and layer comparisons.

laMEG 0.2.1 ``lameg.viz`` API rendered with pyvista/VTK instead of k3d: the same calls draw an
interactive view in Jupyter (pyvista's notebook backend) and render off-screen anywhere else;
``screenshot=`` writes a PNG. On Linux machines without a display, VTK's EGL window is selected
automatically (set ``VTK_DEFAULT_OPENGL_WINDOW`` yourself to override).

Colour conventions follow laMEG: colours are integer RGB (0-255) arrays, as returned by
:func:`color_map`; an (n, 4) array's alpha column masks (alpha > 128 shows the colour, otherwise
the curvature/base grey). ``camera_view`` is laMEG's 9-number list
``[eye x, y, z, target x, y, z, up x, y, z]``.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._utils import atomic_path, logger
from .exceptions import LamegFileNotFoundError, LamegValueError

__all__ = [
    "data_to_rgb",
    "rgbtoint",
    "color_map",
    "render_mesh",
    "show_surface",
    "plot_csd",
    "plot_layer_comparison",
    "plot_coregistration",
    "verify_coregistration",
]

BASE_GREY = (166, 166, 166)
CURV_DARK = (64, 64, 64)


def _prepare_vtk_env() -> None:
    """Select VTK's EGL window on display-less Linux before VTK is imported."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def _pyvista():
    _prepare_vtk_env()
    import pyvista as pv

    return pv


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


# --------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------


def _make_norm(norm: str, vmin: float, vmax: float, vcenter: float):
    from matplotlib import colors

    if norm == "TS":
        if not vmin < vcenter < vmax:
            raise LamegValueError(
                f"norm='TS' needs vmin < vcenter < vmax, got {vmin}, {vcenter}, {vmax}; "
                "use norm='N' for one-signed data"
            )
        return colors.TwoSlopeNorm(vmin=vmin, vcenter=vcenter, vmax=vmax)
    if norm == "N":
        return colors.Normalize(vmin=vmin, vmax=vmax)
    if norm == "LOG":
        if not 0 < vmin < vmax:
            raise LamegValueError(f"norm='LOG' needs 0 < vmin < vmax, got {vmin}, {vmax}")
        return colors.LogNorm(vmin=vmin, vmax=vmax, clip=True)
    raise LamegValueError(f"norm must be 'TS', 'N' or 'LOG', got {norm!r}")


def data_to_rgb(
    data: np.ndarray,
    n_bins: int,
    cmap: Any,
    vmin: float,
    vmax: float,
    vcenter: float = 0.0,
    ret_map: bool = False,
    norm: str = "TS",
):
    """Map values to RGBA colours through histogram bins.

    Parameters
    ----------
    data : array_like, shape (n,)
        Values.
    n_bins : int
        Number of bins of ``np.histogram_bin_edges(data, n_bins)``; each value takes the colour
        of its bin's upper edge (laMEG's quantisation).
    cmap : str or matplotlib Colormap
    vmin, vmax : float
        Colour limits.
    vcenter : float
        Centre of the two-slope norm.
    ret_map : bool
        Also return the ``ScalarMappable`` (for a colour bar).
    norm : {'TS', 'N', 'LOG'}
        Two-slope (diverging), linear or logarithmic normalisation.

    Returns
    -------
    rgba : ndarray, shape (n, 4)
        Colours in [0, 1].
    mappable : matplotlib.cm.ScalarMappable
        Only if ``ret_map``.
    """
    import matplotlib as mpl

    data = np.asarray(data, dtype=float).ravel()
    if data.size == 0 or not np.all(np.isfinite(data)):
        raise LamegValueError("data must be a non-empty array of finite values")
    normaliser = _make_norm(norm, vmin, vmax, vcenter)
    mappable = mpl.cm.ScalarMappable(norm=normaliser, cmap=cmap)
    edges = np.histogram_bin_edges(data, bins=int(n_bins))
    upper = np.clip(np.searchsorted(edges, data, side="right"), 1, edges.size - 1)
    rgba = mappable.to_rgba(edges[upper])
    if ret_map:
        return rgba, mappable
    return rgba


def rgbtoint(rgb: Sequence[int] | np.ndarray) -> int | np.ndarray:
    """Pack RGB (0-255) into ``R << 16 | G << 8 | B`` (k3d's colour integers).

    Parameters
    ----------
    rgb : array_like, shape (3,) or (n, 3)

    Returns
    -------
    int or ndarray of int, shape (n,)
    """
    arr = np.asarray(rgb)
    if arr.shape[-1] != 3:
        raise LamegValueError(f"rgb must have 3 components, got shape {arr.shape}")
    if np.any(arr < 0) or np.any(arr > 255) or np.any(arr != np.round(arr)):
        raise LamegValueError("rgb components must be integers in 0..255")
    arr = arr.astype(np.int64)
    packed = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
    return int(packed) if packed.ndim == 0 else packed


def color_map(
    data: np.ndarray,
    cmap: Any,
    vmin: float,
    vmax: float,
    n_bins: int = 1000,
    vcenter: float = 0,
    norm: str = "TS",
):
    """Integer RGB colours of data values and the matching ScalarMappable.

    Parameters
    ----------
    data : array_like, shape (n,)
    cmap : str or Colormap
    vmin, vmax, vcenter : float
    n_bins : int
    norm : {'TS', 'N', 'LOG'}

    Returns
    -------
    colors : ndarray of int, shape (n, 3)
        RGB in 0..255, ready for ``show_surface(vertex_colors=...)``.
    mappable : matplotlib.cm.ScalarMappable
    """
    rgba, mappable = data_to_rgb(data, n_bins, cmap, vmin, vmax, vcenter=vcenter, ret_map=True,
                                 norm=norm)
    return np.round(rgba[:, :3] * 255).astype(int), mappable


def _rgb255(color: Any) -> np.ndarray:
    """One colour (int hex, RGB 0-255, RGB 0-1 or matplotlib name) as float RGB 0-255."""
    from matplotlib import colors

    if color is None:
        return np.array(BASE_GREY, dtype=float)
    if isinstance(color, (int, np.integer)):
        c = int(color)
        return np.array([(c >> 16) & 255, (c >> 8) & 255, c & 255], dtype=float)
    if isinstance(color, str):
        return np.array(colors.to_rgb(color)) * 255.0
    arr = np.asarray(color, dtype=float).ravel()[:3]
    if arr.size != 3:
        raise LamegValueError(f"cannot interpret {color!r} as a colour")
    return arr * 255.0 if arr.max() <= 1.0 and not np.issubdtype(np.asarray(color).dtype,
                                                                  np.integer) else arr


def _vertex_rgb(vertex_colors: Any, n: int, background: np.ndarray) -> np.ndarray:
    """Per-vertex RGB (0-255 float) from laMEG-style colours, masked onto ``background``."""
    vc = np.asarray(vertex_colors)
    if vc.ndim == 1 and vc.shape[0] == n and np.issubdtype(vc.dtype, np.integer):
        vc = np.stack([(vc >> 16) & 255, (vc >> 8) & 255, vc & 255], axis=1)
    if vc.ndim != 2 or vc.shape[0] != n or vc.shape[1] not in (3, 4):
        raise LamegValueError(
            f"vertex_colors must be (n_vertices={n}, 3|4) RGB(A) or (n,) packed integers, "
            f"got shape {vc.shape}"
        )
    vc = vc.astype(float)
    is_unit = vc.max() <= 1.0 and not np.issubdtype(np.asarray(vertex_colors).dtype, np.integer)
    if is_unit:
        vc = vc * 255.0
    rgb = vc[:, :3]
    if vc.shape[1] == 4:
        show = vc[:, 3] > 128
        rgb = np.where(show[:, None], rgb, background)
    return rgb


# --------------------------------------------------------------------------------------------
# Low-level renderer
# --------------------------------------------------------------------------------------------


def _faces_to_pv(faces: np.ndarray) -> np.ndarray:
    faces = np.asarray(faces, dtype=np.int64)
    return np.hstack([np.full((faces.shape[0], 1), 3, dtype=np.int64), faces]).ravel()


def _camera(camera_view: Any):
    if camera_view is None:
        return None
    if isinstance(camera_view, str):
        return camera_view
    arr = np.asarray(camera_view, dtype=float).ravel()
    if arr.size != 9:
        raise LamegValueError("camera_view must be 9 numbers [eye xyz, target xyz, up xyz] "
                              "or a pyvista view name such as 'xy'")
    return [tuple(arr[0:3]), tuple(arr[3:6]), tuple(arr[6:9])]


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
    scalars : ndarray, shape (n_vertices,), optional
        Values mapped through ``cmap`` between ``vmin`` and ``vmax`` (default: 1st and 99th
        percentiles) with ``norm`` ('N', 'TS' around ``vcenter``, or 'LOG').
    vertex_colors : array_like, optional
        Explicit colours instead of ``scalars``: (n, 3) RGB, (n, 4) RGBA with the alpha mask, or
        (n,) packed integers. Masked vertices take ``color``.
    color : colour, optional
        Base colour (default laMEG's grey 166).
    opacity : float
    camera_view : 9 numbers or str, optional
        ``[eye xyz, target xyz, up xyz]`` or a pyvista view ('xy', 'yz', ...). Default: an
        automatic view from the left (-x) with z up.
    marker_coords : ndarray, shape (n_markers, 3), optional
        Sphere markers; ``marker_size`` is their diameter (scalar or per marker) in mesh units
        and ``marker_color`` a colour or one per marker (default red).
    height, width : int
        Image size in pixels (width defaults to 4/3 of the height).
    colorbar : bool
        Add a matplotlib colour bar (needs ``scalars``) to the screenshot.
    colorbar_label, title : str, optional
    grid : bool
        Show axes with a grid.
    screenshot : path, optional
        Write a PNG there (atomically).
    plotter : pyvista.Plotter, optional
        Draw into an existing plotter instead of a new one.
    show : bool, optional
        Show the plotter (default: only inside a Jupyter kernel).

    Returns
    -------
    pyvista.Plotter
        The plotter (closed if it was shown or only used for the screenshot).
    """
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
    in_notebook = _in_notebook()
    if show is None:
        show = in_notebook
    own_plotter = plotter is None
    if own_plotter:
        plotter = pv.Plotter(off_screen=not show or screenshot is not None,
                             window_size=(width, int(height)),
                             notebook=in_notebook and show)
        plotter.set_background("white")
    mesh = pv.PolyData(vertices, _faces_to_pv(faces))
    base = _rgb255(color)
    mappable = None
    if scalars is not None:
        scalars = np.asarray(scalars, dtype=float).ravel()
        if scalars.size != n:
            raise LamegValueError(f"scalars has {scalars.size} values for {n} vertices")
        finite = scalars[np.isfinite(scalars)]
        lo = np.percentile(finite, 1) if vmin is None else vmin
        hi = np.percentile(finite, 99) if vmax is None else vmax
        if not hi > lo:
            hi = lo + 1.0
        import matplotlib as mpl

        mappable = mpl.cm.ScalarMappable(norm=_make_norm(norm, lo, hi, vcenter), cmap=cmap)
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
            from matplotlib.image import imsave

            with atomic_path(path) as tmp:
                imsave(tmp, img, format="png", metadata={"Software": None})
    if show:
        plotter.show()
    elif own_plotter and screenshot is not None:
        plotter.close()
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


# --------------------------------------------------------------------------------------------
# show_surface (LayerSurfaceSet)
# --------------------------------------------------------------------------------------------


def _gifti_mesh(gii: Any) -> tuple[np.ndarray, np.ndarray]:
    verts = np.asarray(gii.darrays[0].data, dtype=float)
    faces = np.asarray(gii.darrays[1].data, dtype=np.int64)
    return verts, faces


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


# --------------------------------------------------------------------------------------------
# 2-D plots
# --------------------------------------------------------------------------------------------


def plot_csd(
    csd: np.ndarray,
    times: np.ndarray,
    axis: Any,
    colorbar: bool = True,
    cmap: str = "RdBu_r",
    vmin_vmax: Any = None,
    n_layers: int = 11,
    layer_boundaries: Sequence[float] | None = None,
):
    """Draw a laminar CSD (depth x time) image.

    Parameters
    ----------
    csd : ndarray, shape (n_rows, n_times)
        Row 0 = pial end (output of :func:`lameg.laminar.compute_csd`).
    times : ndarray, shape (n_times,)
        Time axis (any unit, typically ms).
    axis : matplotlib Axes
    colorbar : bool
        Add a colour bar labelled 'CSD' (available afterwards as ``image.colorbar``).
    cmap : str
    vmin_vmax : None, 'norm' or (vmin, vmax)
        None: symmetric two-slope norm at ``max|csd|``; 'norm': linear ``Normalize()``;
        a pair: two-slope norm between them, centred at 0.
    n_layers : int
        Number of tick labels (1 .. n_layers) over the normalised depth.
    layer_boundaries : sequence of float, optional
        Normalised depths (0 = pial, 1 = white) drawn as dashed lines.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    from matplotlib import colors

    csd = np.asarray(csd, dtype=float)
    times = np.asarray(times, dtype=float)
    if csd.ndim != 2 or csd.shape[1] != times.size:
        raise LamegValueError(f"csd must be (n_rows, n_times={times.size}), got {csd.shape}")
    if vmin_vmax is None:
        m = float(np.nanmax(np.abs(csd))) or 1.0
        nrm = colors.TwoSlopeNorm(vmin=-m, vcenter=0.0, vmax=m)
    elif isinstance(vmin_vmax, str) and vmin_vmax == "norm":
        nrm = colors.Normalize()
    else:
        lo, hi = vmin_vmax
        nrm = colors.TwoSlopeNorm(vmin=lo, vcenter=0.0, vmax=hi)
    im = axis.imshow(csd, origin="lower", aspect="auto", extent=[times[0], times[-1], 0, 1],
                     cmap=cmap, norm=nrm, interpolation="none")
    if colorbar:
        cb = axis.figure.colorbar(im, ax=axis)
        cb.set_label("CSD")
    axis.set_ylim(1, 0)
    axis.set_yticks(np.linspace(0, 1, n_layers))
    axis.set_yticklabels([str(i) for i in range(1, n_layers + 1)])
    axis.set_ylabel("Layer")
    axis.set_xlabel("Time")
    if layer_boundaries is not None:
        for b in layer_boundaries:
            axis.axhline(b, color="k", linestyle="--", linewidth=1)
    return im


def plot_layer_comparison(
    values: np.ndarray,
    metric: str = "free_energy",
    layer_names: Sequence[str] | None = None,
    ax: Any = None,
    relative: bool = True,
    true_layer: int | Sequence[int] | None = None,
    cmap: str = "viridis",
):
    """Plot free energy or cross-validation error across layer models.

    Parameters
    ----------
    values : ndarray, shape (n_layers,) or (n_simulations, n_layers)
        One value per layer model (rows: e.g. one simulation per true layer).
    metric : {'free_energy', 'cv_error'}
        Higher free energy is better; lower CV error is better.
    layer_names : sequence of str, optional
        Tick labels (default 1 .. n_layers, 1 = pial).
    ax : matplotlib Axes, optional
    relative : bool
        Plot free energy relative to the worst model (ΔF), as laMEG's tutorials do.
    true_layer : int or sequence of int, optional
        Simulated layer(s) to highlight.
    cmap : str
        Colour map of the matrix view.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if metric not in ("free_energy", "cv_error"):
        raise LamegValueError(f"metric must be 'free_energy' or 'cv_error', got {metric!r}")
    vals = np.asarray(values, dtype=float)
    if vals.ndim not in (1, 2) or vals.shape[-1] < 2:
        raise LamegValueError(f"values must be (n_layers,) or (n, n_layers), got {vals.shape}")
    higher_better = metric == "free_energy"
    if relative and higher_better:
        vals = vals - np.min(vals, axis=-1, keepdims=True)
    n_layers = vals.shape[-1]
    names = list(layer_names) if layer_names is not None else [str(i + 1)
                                                               for i in range(n_layers)]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    label = ("ΔF" if relative else "Free energy") if higher_better else "CV error"
    best = np.argmax(vals, axis=-1) if higher_better else np.argmin(vals, axis=-1)
    if vals.ndim == 1:
        x = np.arange(n_layers)
        ax.plot(x, vals, "-o", color="tab:blue")
        ax.plot(best, vals[best], "*", color="tab:red", markersize=14, label="best")
        if true_layer is not None:
            ax.axvline(int(np.ravel(true_layer)[0]), color="k", linestyle="--",
                       label="simulated")
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_xlabel("Layer model")
        ax.set_ylabel(label)
        ax.legend(frameon=False)
    else:
        im = ax.imshow(vals, aspect="auto", cmap=cmap, interpolation="none")
        ax.figure.colorbar(im, ax=ax, label=label)
        ax.plot(best, np.arange(vals.shape[0]), "x", color="w", markersize=10, mew=2)
        if true_layer is not None:
            tl = np.broadcast_to(np.asarray(true_layer), (vals.shape[0],))
            ax.plot(tl, np.arange(vals.shape[0]), "o", mfc="none", mec="r", markersize=12)
        ax.set_xticks(np.arange(n_layers))
        ax.set_xticklabels(names)
        ax.set_yticks(np.arange(vals.shape[0]))
        ax.set_xlabel("Layer model")
        ax.set_ylabel("Simulation")
    return ax


# --------------------------------------------------------------------------------------------
# Co-registration
# --------------------------------------------------------------------------------------------


def _similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares rotation + isotropic scale + translation (Umeyama); returns (4x4, rmse)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(d0.T @ s0 / src.shape[0])
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = float((sv * d).sum() / s0.var(0).sum())
    t = np.eye(4)
    t[:3, :3] = scale * rot
    t[:3, 3] = mu_d - scale * rot @ mu_s
    rmse = float(np.sqrt(np.mean(np.sum((src @ t[:3, :3].T + t[:3, 3] - dst) ** 2, axis=1))))
    return t, rmse


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
        E.g. 'scalp', 'iskull', 'oskull' (drawn translucent).
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
    pv = _pyvista()
    in_notebook = _in_notebook()
    if show is None:
        show = in_notebook
    width = int(round(height * 4 / 3))
    plotter = pv.Plotter(off_screen=not show or screenshot is not None,
                         window_size=(width, int(height)), notebook=in_notebook and show)
    plotter.set_background("white")
    head_colors = {"scalp": (0.95, 0.8, 0.7), "oskull": (0.6, 0.6, 0.9),
                   "iskull": (0.6, 0.9, 0.6)}
    for name, (v, f) in (head_meshes or {}).items():
        plotter.add_mesh(pv.PolyData(np.asarray(v, float), _faces_to_pv(f)),
                         color=head_colors.get(name, (0.8, 0.8, 0.8)), opacity=0.25,
                         smooth_shading=True)
    if cortex is not None:
        v, f = cortex
        plotter.add_mesh(pv.PolyData(np.asarray(v, float), _faces_to_pv(f)),
                         color=(0.65, 0.65, 0.65), smooth_shading=True)
    fid_colors = {"nas": (0, 0, 1), "lpa": (1, 0, 0), "rpa": (0, 0.7, 0)}
    for name, pos in (fiducials or {}).items():
        plotter.add_mesh(pv.Sphere(radius=5 * unit_scale, center=np.asarray(pos, float)),
                         color=fid_colors.get(name.lower(), (1, 1, 0)))
    _add_sensor_glyphs(plotter, sensors, unit_scale)
    cam = _camera(camera_view)
    if cam is None:
        plotter.view_vector((-1.0, -0.6, 0.4), viewup=(0.0, 0.0, 1.0))
        plotter.reset_camera()
    else:
        plotter.camera_position = cam
    if screenshot is not None:
        from matplotlib.image import imsave

        img = plotter.screenshot(None, return_img=True)
        with atomic_path(screenshot) as tmp:
            imsave(tmp, img, format="png", metadata={"Software": None})
    if show:
        plotter.show()
    elif screenshot is not None:
        plotter.close()
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
        half = 15.0 * unit_scale
        squares = []
        for c, d, o in zip(chanpos[planar], direction, chanori[planar]):
            o = _unit(o) if np.linalg.norm(o) > 0 else np.array([0.0, 0.0, 1.0])
            u = d - np.dot(d, o) * o
            if np.linalg.norm(u) == 0:
                u = np.cross(o, [1.0, 0.0, 0.0] if abs(o[0]) < 0.9 else [0.0, 1.0, 0.0])
            u = _unit(u)
            w = np.cross(o, u)
            squares.append(pv.Rectangle([c - half * u - half * w, c + half * u - half * w,
                                         c + half * u + half * w]))
        plotter.add_mesh(pv.merge(squares), color=(0.2, 0.4, 0.9), opacity=0.6)
    other = np.flatnonzero(np.isin(types, ["meg", "meggrad", "opm"]))
    if other.size:
        discs = [pv.Disc(center=c, normal=o if np.linalg.norm(o) > 0 else (0, 0, 1),
                         inner=0.0, outer=5 * unit_scale, c_res=16)
                 for c, o in zip(chanpos[other], chanori[other])]
        plotter.add_mesh(pv.merge(discs), color=(0.1, 0.1, 0.5))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


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
        Also draw ``surf/face_3d.gii``.
    camera_view, screenshot
        As :func:`render_mesh`.

    Returns
    -------
    pyvista.Plotter
    """
    import nibabel as nib

    from .io.spm_meeg import load_meeg

    meeg = load_meeg(data_file)
    inv = meeg.inv
    if len(inv) <= inversion_idx:
        raise LamegValueError(
            f"{Path(data_file).name} has {len(inv)} forward model(s); run coregister() for "
            f"inversion_idx={inversion_idx} first"
        )
    forward = inv[inversion_idx]["forward"]
    if isinstance(forward, list):
        forward = forward[0]
    sensors = forward["sensors"]
    fmesh = forward["mesh"]
    fvert = np.asarray(fmesh["vert"], float)
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
        cortex = (fvert, np.asarray(fmesh["face"], np.int64) - 1)
    heads = {}
    for kind in ("scalp", "iskull", "oskull"):
        try:
            hv, hf = _mesh_tuple(surf_set.load_head_mesh(kind))
            heads[kind] = (xf(hv), hf)
        except (FileNotFoundError, OSError, LamegFileNotFoundError):
            continue
    if display_3d_scan:
        face = Path(surf_set.surf_dir) / "face_3d.gii"
        if face.exists():
            fv, ff = _gifti_mesh(nib.load(face))
            heads["face_3d"] = (xf(fv), ff)
    fids = {k: xf(v) for k, v in (fid_coords or {}).items()}
    return plot_coregistration(sensors, cortex=cortex, head_meshes=heads, fiducials=fids,
                               unit_scale=scale, camera_view=camera_view,
                               screenshot=screenshot)


def _mesh_tuple(mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) from a GIfTI image, a pyvista mesh or a (v, f) pair."""
    if hasattr(mesh, "darrays"):
        return _gifti_mesh(mesh)
    if hasattr(mesh, "points") and hasattr(mesh, "faces"):
        return np.asarray(mesh.points), np.asarray(mesh.faces).reshape(-1, 4)[:, 1:]
    v, f = mesh
    return np.asarray(v, float), np.asarray(f, np.int64)
