"""Whole-cortex empirical laminar-accuracy maps.

For every column of a participant (or a requested subset) a current-density patch is
simulated in each layer at one SNR and one co-registration error, the layer models are
compared (:func:`lameg.sweep.run_laminar_sweep`) and the outcomes are summarised per column:
mean absolute layer error, signed bias and the confusion matrix. The map can be set against
the anatomical score (:func:`lameg.anatomy.anatomical_score`), which Szul et al. (2025)
propose as a cheap stand-in for exactly this empirical accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import LamegValueError
from .model import LaminarModel
from .run import SweepSettings, chance_error, run_laminar_sweep

__all__ = ["AccuracyMap", "laminar_accuracy_map", "plot_accuracy_map"]


@dataclass
class AccuracyMap:
    """Per-column laminar accuracy from simulations.

    Parameters
    ----------
    columns : ndarray (n_columns,)
        Column (per-layer vertex) indices, increasing.
    error : ndarray (n_columns,)
        Mean ``|true - estimated|`` layer over generating layers and repeats, layers.
    error_mm : ndarray (n_columns,)
        The same in mm (layer spacing = thickness / (n_layers - 1)).
    bias : ndarray (n_columns,)
        Mean ``true - estimated`` layer (> 0: estimates more superficial), layers.
    accuracy : ndarray (n_columns,)
        Fraction of exactly recovered layers.
    confusion : ndarray (n_columns, n_layers, n_layers)
        Counts, ``[column, estimated, true]``.
    n_layers, n_vertices : int
    snr, jitter : float
        dB and mm.
    table : DataFrame
        The underlying sweep table (one row per simulation).
    """

    columns: np.ndarray
    error: np.ndarray
    error_mm: np.ndarray
    bias: np.ndarray
    accuracy: np.ndarray
    confusion: np.ndarray
    n_layers: int
    n_vertices: int
    snr: float
    jitter: float
    table: Any

    @classmethod
    def from_table(cls, table, n_layers: int, n_vertices: int) -> AccuracyMap:
        """Summarise a sweep table (one SNR and co-registration error) per column.

        Parameters
        ----------
        table : DataFrame or dict
            Output of :func:`lameg.sweep.run_laminar_sweep`.
        n_layers : int
        n_vertices : int
            Columns of the participant.

        Returns
        -------
        AccuracyMap
        """
        col = np.asarray(table["column"], dtype=int)
        true = np.asarray(table["true_layer"], dtype=int)
        est = np.asarray(table["est_layer"], dtype=int)
        snr = np.unique(np.asarray(table["snr"], dtype=float))
        jit = np.unique(np.asarray(table["jitter"], dtype=float))
        if snr.size != 1 or jit.size != 1:
            raise LamegValueError("an accuracy map needs a table with one SNR and one "
                                  "co-registration error")
        columns, inv = np.unique(col, return_inverse=True)
        n = np.bincount(inv, minlength=columns.size).astype(float)

        def mean(x):
            return np.bincount(inv, weights=np.asarray(x, dtype=float),
                               minlength=columns.size) / n

        conf = np.zeros((columns.size, n_layers, n_layers))
        np.add.at(conf, (inv, est, true), 1.0)
        return cls(columns=columns, error=mean(np.abs(true - est)),
                   error_mm=mean(table["error_mm"]), bias=mean(true - est),
                   accuracy=mean(true == est), confusion=conf, n_layers=int(n_layers),
                   n_vertices=int(n_vertices), snr=float(snr[0]), jitter=float(jit[0]),
                   table=table)

    @property
    def chance(self) -> float:
        """Mean error of uniformly random layer picks, layers."""
        return chance_error(self.n_layers)

    def full(self, values: np.ndarray | str = "error", fill: float = np.nan) -> np.ndarray:
        """Per-column values on all ``n_vertices`` columns (``fill`` where not simulated).

        Parameters
        ----------
        values : str or ndarray (n_columns,)
            Attribute name ('error', 'error_mm', 'bias', 'accuracy') or values.
        fill : float

        Returns
        -------
        ndarray (n_vertices,)
        """
        v = getattr(self, values) if isinstance(values, str) else np.asarray(values)
        out = np.full(self.n_vertices, fill, dtype=float)
        out[self.columns] = v
        return out

    def correlation(self, score: np.ndarray, values: str = "error") -> dict:
        """Rank (Spearman) and linear (Pearson) correlation with a per-column score.

        Parameters
        ----------
        score : ndarray (n_vertices,)
            E.g. the anatomical score (higher = predicted more accurate; a useful score
            correlates negatively with the error).
        values : str
            Map attribute to correlate.

        Returns
        -------
        dict
            ``spearman_r, spearman_p, pearson_r, pearson_p, n``.
        """
        from scipy import stats

        score = np.asarray(score, dtype=float).ravel()
        if score.shape != (self.n_vertices,):
            raise LamegValueError(f"score needs one value per column ({self.n_vertices}), "
                                  f"got {score.shape}")
        x = score[self.columns]
        y = np.asarray(getattr(self, values), dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
            raise LamegValueError("need at least 3 columns with varying score and values")
        sr = stats.spearmanr(x[ok], y[ok])
        pr_ = stats.pearsonr(x[ok], y[ok])
        return dict(spearman_r=float(sr.statistic), spearman_p=float(sr.pvalue),
                    pearson_r=float(pr_.statistic), pearson_p=float(pr_.pvalue),
                    n=int(ok.sum()))


def laminar_accuracy_map(model: LaminarModel, columns: Sequence[int] | None = None,
                         snr: float = 0.0, jitter: float = 0.0,
                         layers: Sequence[int] | None = None, n_repeats: int = 1,
                         settings: SweepSettings | None = None, *, seed: int = 0,
                         backend: str = "joblib", n_jobs: int = 1, client: Any = None,
                         batch_size: int | None = None,
                         kernel_cache_dir: str | os.PathLike | None = None,
                         verbose: bool = False) -> AccuracyMap:
    """Empirical laminar accuracy of every column (or a subset) from simulations.

    Each column is simulated in each layer (``layers``) ``n_repeats`` times at ``snr`` with
    fiducials perturbed by ``jitter`` mm; every simulation is inverted once per layer model
    (MSP with one prior patch at the column, by default) and the layer with the highest free
    energy is the estimate.

    Parameters
    ----------
    model : LaminarModel
    columns : sequence of int, optional
        Columns to map (default all ``model.n_vertices``).
    snr : float
        Per-trial SNR, dB.
    jitter : float
        Co-registration error, mm (> 0 needs ``model.forward``).
    layers : sequence of int, optional
        Generating layers (default all).
    n_repeats : int
    settings : SweepSettings, optional
    seed : int
    backend : {'joblib', 'dask', 'serial'}
        ``'dask'`` runs on ``client`` (e.g. a ``LocalCluster`` or a SLURM cluster from
        ``dask_jobqueue``) with the same results as joblib.
    n_jobs : int
    client : distributed.Client, optional
    batch_size : int, optional
        Simulations per task.
    kernel_cache_dir : path, optional
    verbose : bool
        Progress bar over finished tasks.

    Returns
    -------
    AccuracyMap

    Examples
    --------
    On a SLURM cluster (``pip install dask-jobqueue``)::

        from dask_jobqueue import SLURMCluster
        from distributed import Client
        cluster = SLURMCluster(cores=8, processes=8, memory="16GB", walltime="01:00:00")
        cluster.scale(jobs=10)  # 80 workers
        acc = laminar_accuracy_map(model, snr=-20.0, backend="dask",
                                   client=Client(cluster), verbose=True)
    """
    cols = np.arange(model.n_vertices) if columns is None else np.unique(
        np.asarray(columns, dtype=int))
    tab = run_laminar_sweep(model, cols, [float(snr)], layers=layers, jitters=[float(jitter)],
                            n_repeats=n_repeats, settings=settings, seed=seed, backend=backend,
                            n_jobs=n_jobs, client=client, batch_size=batch_size,
                            kernel_cache_dir=kernel_cache_dir, verbose=verbose)
    return AccuracyMap.from_table(tab, model.n_layers, model.n_vertices)


def _mesh_panel(ax, vertices, faces, values, cmap, vmin, vmax, elev, azim, title):
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    vf = values[faces]
    cnt = np.isfinite(vf).sum(axis=1)
    fv = np.full(len(faces), np.nan)
    fv[cnt > 0] = np.nansum(vf[cnt > 0], axis=1) / cnt[cnt > 0]  # mean of mapped corners
    norm = plt.Normalize(vmin, vmax)
    colors = plt.get_cmap(cmap)(norm(fv))
    colors[~np.isfinite(fv)] = (0.85, 0.85, 0.85, 1.0)
    poly = Poly3DCollection(vertices[faces], facecolors=colors, edgecolors="none")
    ax.add_collection3d(poly)
    mapped = np.flatnonzero(np.isfinite(values))
    if mapped.size < 0.5 * len(values):  # a subset of columns: mark them
        ax.computed_zorder = False  # markers on top of the surface
        poly.set_zorder(1)
        ax.scatter(*vertices[mapped].T, c=values[mapped], cmap=cmap, norm=norm, s=16,
                   depthshade=False, edgecolors="k", linewidths=0.3, zorder=2)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_zlim(lo[2], hi[2])
    ax.set_box_aspect(hi - lo)
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return plt.cm.ScalarMappable(norm=norm, cmap=cmap)


def plot_accuracy_map(acc: AccuracyMap, vertices: np.ndarray, faces: np.ndarray,
                      score: np.ndarray | None = None, values: str = "error",
                      views: Sequence[tuple[float, float]] = ((0, 180), (90, -90)),
                      fig=None):
    """Render an accuracy map on a layer surface, next to the anatomical score.

    Parameters
    ----------
    acc : AccuracyMap
    vertices : ndarray (n_vertices, 3)
        One layer's mesh (e.g. the pial layer of the model), mm.
    faces : ndarray (n_faces, 3)
        0-based triangles.
    score : ndarray (n_vertices,), optional
        Anatomical score; adds its map and a score-vs-accuracy scatter with the rank
        correlation.
    values : str
        Map attribute ('error', 'error_mm', 'bias', 'accuracy').
    views : sequence of (elevation, azimuth)
        Camera angles, degrees.
    fig : matplotlib Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces, dtype=int)
    if vertices.shape[0] != acc.n_vertices:
        raise LamegValueError(f"the mesh has {vertices.shape[0]} vertices, the map "
                              f"{acc.n_vertices} columns")
    rows = 2 if score is not None else 1
    ncol = len(views) + (1 if score is not None else 0)
    if fig is None:
        fig = plt.figure(figsize=(3.6 * ncol, 3.2 * rows))
    vals = acc.full(values)
    if values == "bias":
        lim = np.nanmax(np.abs(vals)) or 1.0
        cmap, vmin, vmax = "RdBu_r", -lim, lim
    elif values == "accuracy":
        cmap, vmin, vmax = "viridis", 0.0, 1.0
    else:
        cmap, vmin, vmax = "magma_r", 0.0, np.nanmax(vals) if values == "error_mm" else \
            max(acc.chance, float(np.nanmax(vals)))
    label = {"error": "layer error (layers)", "error_mm": "layer error (mm)",
             "bias": "bias (layers, + = superficial)", "accuracy": "fraction correct"}[values]
    sm = None
    for i, (el, az) in enumerate(views):
        ax = fig.add_subplot(rows, ncol, i + 1, projection="3d")
        sm = _mesh_panel(ax, vertices, faces, vals, cmap, vmin, vmax, el, az,
                         f"{label}\nSNR {acc.snr:g} dB, {acc.jitter:g} mm")
    fig.colorbar(sm, ax=fig.axes[-1], shrink=0.6, label=label)
    if score is not None:
        score = np.asarray(score, dtype=float)
        lim = np.nanpercentile(np.abs(score), 98)
        sm2 = None
        for i, (el, az) in enumerate(views):
            ax = fig.add_subplot(rows, ncol, ncol + i + 1, projection="3d")
            sm2 = _mesh_panel(ax, vertices, faces, score, "RdBu_r", -lim, lim, el, az,
                              "anatomical score")
        fig.colorbar(sm2, ax=fig.axes[-1], shrink=0.6, label="score (z)")
        ax = fig.add_subplot(rows, ncol, ncol)
        x = score[acc.columns]
        y = getattr(acc, values)
        ax.scatter(x, y, s=5, alpha=0.5)
        c = acc.correlation(score, values)
        ax.set_xlabel("anatomical score")
        ax.set_ylabel(label)
        ax.set_title(f"Spearman r = {c['spearman_r']:.2f} (n = {c['n']})", fontsize=9)
        if values == "error":
            ax.axhline(acc.chance, color="grey", ls="--", lw=1)
    fig.tight_layout()
    return fig
