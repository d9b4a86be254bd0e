"""Plots of sweep tables: layer error against SNR, confusion matrices."""

from __future__ import annotations

import numpy as np

from .run import chance_error


def _col(table, key) -> np.ndarray:
    return np.asarray(table[key])


NOISE_ONLY_DB = -200.0
"""SNRs at or below this (dB) are labelled "noise only" in plots."""


def plot_error_vs_snr(table, ax=None, n_layers: int | None = None, by: str = "jitter"):
    """Mean layer error (+/- s.e.m.) against SNR, one line per co-registration error.

    Parameters
    ----------
    table : DataFrame or dict
        Output of :func:`run_laminar_sweep`.
    ax : matplotlib Axes, optional
    n_layers : int, optional
        Draws the uniform-chance level (n^2 - 1) / (3n) (default from the F columns).
    by : str
        Column that splits the lines.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    snr, err, grp = _col(table, "snr"), _col(table, "error_layers"), _col(table, by)
    if n_layers is None:
        n_layers = sum(1 for k in (table.keys() if hasattr(table, "keys") else table)
                       if str(k).startswith("F_"))
    # SNR levels on an even categorical axis: noise-only runs use a huge negative SNR
    # (e.g. -500 dB) that would squash every other level on a linear axis
    levels = np.unique(snr)
    pos = {x: i for i, x in enumerate(levels)}
    for g in np.unique(grp):
        sel = grp == g
        xs = np.unique(snr[sel])
        m = np.array([err[sel & (snr == x)].mean() for x in xs])
        se = np.array([err[sel & (snr == x)].std(ddof=1) / np.sqrt(max(1, np.sum(sel & (snr == x))))
                       if np.sum(sel & (snr == x)) > 1 else 0.0 for x in xs])
        ax.errorbar([pos[x] for x in xs], m, yerr=se, marker="o", capsize=3,
                    label=f"{by} = {g:g}")
    if n_layers:
        ax.axhline(chance_error(n_layers), color="grey", ls="--", label="chance")
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels(["noise only" if x <= NOISE_ONLY_DB else f"{x:g}" for x in levels])
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("layer error (layers)")
    ax.legend(fontsize=8)
    return ax


def plot_confusion(table, ax=None, n_layers: int | None = None, normalize: bool = True):
    """Confusion matrix of true (columns) versus estimated (rows) layer.

    Parameters
    ----------
    table : DataFrame or dict
        Output of :func:`run_laminar_sweep`.
    ax : matplotlib Axes, optional
    n_layers : int, optional
        Default from the table.
    normalize : bool
        Proportions per simulated layer instead of counts.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    true, est = _col(table, "true_layer").astype(int), _col(table, "est_layer").astype(int)
    if n_layers is None:
        n_layers = int(max(true.max(), est.max()) + 1)
    m = np.zeros((n_layers, n_layers))
    np.add.at(m, (est, true), 1.0)
    if normalize:
        tot = m.sum(axis=0, keepdims=True)
        m = np.divide(m, tot, out=np.zeros_like(m), where=tot > 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.5))
    im = ax.imshow(m, origin="upper", cmap="viridis", vmin=0)
    ax.set_xlabel("simulated layer")
    ax.set_ylabel("estimated layer")
    ax.figure.colorbar(im, ax=ax, label="proportion" if normalize else "count")
    return ax

