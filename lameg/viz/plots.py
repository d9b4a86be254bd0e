"""Two-dimensional figures: laminar CSD images and layer model comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import LamegValueError


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
