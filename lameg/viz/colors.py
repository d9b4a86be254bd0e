"""Colour mapping in laMEG's conventions: integer RGB arrays, alpha masks, packed integers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import check_float, check_int, check_option
from ..exceptions import LamegValueError

BASE_GREY = (166, 166, 166)
CURV_DARK = (64, 64, 64)


def _check_cmap(cmap: Any):
    """The matplotlib colour map named or given by ``cmap`` (LamegValueError if unknown)."""
    import matplotlib as mpl
    from matplotlib import colors

    if isinstance(cmap, colors.Colormap):
        return cmap
    if not isinstance(cmap, str):
        raise LamegValueError(f"cmap must be a matplotlib colour map or its name, got "
                              f"{type(cmap).__name__}")
    try:
        return mpl.colormaps[cmap]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(cmap, list(mpl.colormaps), n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise LamegValueError(f"unknown colour map {cmap!r}{hint}; use a name from "
                              "matplotlib.colormaps such as 'RdBu_r' or 'viridis'") from None


def _make_norm(norm: str, vmin: float, vmax: float, vcenter: float):
    from matplotlib import colors

    check_option(norm, ("TS", "N", "LOG"), "norm")
    vmin = check_float(vmin, "vmin")
    vmax = check_float(vmax, "vmax")
    if not vmin < vmax:
        raise LamegValueError(f"vmin must be smaller than vmax, got vmin={vmin:g}, "
                              f"vmax={vmax:g}; swap them or widen the range")
    if norm == "TS":
        vcenter = check_float(vcenter, "vcenter")
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
    n_bins = check_int(n_bins, "n_bins", min_value=1)
    normaliser = _make_norm(norm, vmin, vmax, vcenter)
    mappable = mpl.cm.ScalarMappable(norm=normaliser, cmap=_check_cmap(cmap))
    edges = np.histogram_bin_edges(data, bins=n_bins)
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
