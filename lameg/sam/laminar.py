"""Laminar SAM: beamformer power on two cortical layers of the same columns and their contrast.

The SAM weights of every vertex of two layers (pial and white by default) of a
:class:`lameg.surf.LayerSurfaceSet` are computed with their fixed (link-vector) orientations, using
the head model that :func:`lameg.invert.coregister` stored in the dataset (its gain matrix when
the dataset was co-registered with the surface set's multilayer mesh). One Global covariance gives
the weights of both layers; the power of an *active* and a *control* window is projected through
them, and each vertex gets the active/control ratio of its pseudo-Z^2 (a power ratio, independent
of the weight normalisation). The laminar contrast of a column is the pial ratio minus the white
ratio: positive where the task-related power is stronger on the pial layer.

Rendering (the ``sam`` package does not depend on :mod:`lameg.viz`)::

    res = laminar_sam_contrast('sub-01.mat', surf_set)
    from lameg.viz import show_surface
    show_surface(surf_set, layer_name='pial', scalars=res.contrast, cmap='RdBu_r',
                 vmin=-abs(res.contrast).max(), vmax=abs(res.contrast).max(),
                 screenshot='contrast.png')
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..exceptions import LamegDataError, LamegValueError
from .cov import sam_cov
from .io import as_sam_data
from .params import parse_param_text
from .weights import SamWeights, sam_wts

__all__ = ["LaminarSamResult", "laminar_sam_contrast"]


@dataclass
class LaminarSamResult:
    """Result of :func:`laminar_sam_contrast`.

    Parameters
    ----------
    layers : tuple of str
        The two layers compared, e.g. ``('pial', 'white')``.
    active, control : ndarray, shape (2, n_vertices)
        Pseudo-Z^2 (``w'Cw / (noise w'w)``, dimensionless) of the active and control windows per
        layer and vertex, with the Global weights.
    ratio : ndarray, shape (2, n_vertices)
        ``active / control``.
    contrast : ndarray, shape (n_vertices,)
        ``ratio[0] - ratio[1]`` (first layer minus second layer) per column.
    weights : SamWeights
        The weights (sources: the first layer's vertices, then the second layer's).
    """

    layers: tuple[str, str]
    active: np.ndarray
    control: np.ndarray
    ratio: np.ndarray
    contrast: np.ndarray
    weights: SamWeights

    @property
    def peak_vertex(self) -> int:
        """Column (layer vertex index) of the largest active/control ratio over both layers."""
        return int(np.unravel_index(np.argmax(self.ratio), self.ratio.shape)[1])

    @property
    def peak_layer(self) -> str:
        """Layer holding the largest active/control ratio."""
        return self.layers[int(np.unravel_index(np.argmax(self.ratio), self.ratio.shape)[0])]


def _check_window(name: str, win) -> tuple[float, float]:
    try:
        t0, t1 = (float(x) for x in win)
    except (TypeError, ValueError):
        raise LamegValueError(f"{name} must be a (start, end) pair in seconds, got {win!r}"
                              ) from None
    if not t1 > t0:
        raise LamegValueError(f"{name} window {win!r}: the end must be after the start")
    return t0, t1


def laminar_sam_contrast(
    data,
    surf_set,
    *,
    inversion_idx: int = 0,
    active: tuple[float, float] = (0.0, 0.1),
    control: tuple[float, float] = (-0.1, 0.0),
    cov_band: tuple[float, float] = (10.0, 40.0),
    condition: str | None = None,
    layers: tuple[str, str] = ("pial", "white"),
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    extra_params: str = "",
) -> LaminarSamResult:
    """SAM active-vs-control power on two layers and their per-column contrast.

    Parameters
    ----------
    data : str, path-like or MEEG
        SPM M/EEG dataset (epoched, one event per trial at t = 0), co-registered with
        :func:`lameg.invert.coregister` (``inversion_idx``), ideally with the surface set's
        multilayer mesh so that its stored gain matrix is used.
    surf_set : lameg.surf.LayerSurfaceSet
    inversion_idx : int
        0-based head-model index in ``D.other.inv``.
    active, control : (float, float)
        Windows in s relative to the trial's event (t = 0).
    cov_band : (float, float)
        Covariance (and imaging) band, Hz.
    condition : str, optional
        Trial condition whose trials are used (default: the only condition of the dataset).
    layers : (str, str)
        Layers to compare (names of ``surf_set.get_layer_names()``); contrast = first - second.
    stage, orientation, fixed
        Select the multilayer mesh (``surf_set.get_mesh_path``).
    extra_params : str
        More SAM parameter lines (e.g. ``"Mu *0.1"`` or ``"Notch"``).

    Returns
    -------
    LaminarSamResult
    """
    sd = as_sam_data(data)
    if sd.fname is None or sd.fname.suffix != ".mat":
        raise LamegValueError("laminar_sam_contrast needs an SPM dataset (.mat) co-registered "
                              "with lameg.invert.coregister")
    a0, a1 = _check_window("active", active)
    c0, c1 = _check_window("control", control)
    lo, hi = (float(x) for x in cov_band)
    conds = sorted(set(sd.conditions))
    if condition is None:
        if len(conds) != 1:
            raise LamegValueError(f"the dataset has several conditions {conds}; pass condition=")
        condition = conds[0]
    elif condition not in conds:
        raise LamegValueError(f"condition {condition!r} is not in the dataset {conds}")
    if any(c.isspace() or not c for c in (condition,)) or " " in condition:
        raise LamegValueError(f"condition {condition!r} contains spaces, which SAM marker "
                              "names cannot")
    names = list(surf_set.get_layer_names())
    missing = [ly for ly in layers if ly not in names]
    if len(layers) != 2 or missing:
        raise LamegValueError(f"layers must be two of {names}, got {layers!r}")
    li = [names.index(ly) for ly in layers]

    from ..io.gifti import read_surf_gifti

    mesh = surf_set.get_mesh_path(None, stage=stage, orientation=orientation, fixed=fixed)
    if not os.path.isfile(mesh):
        raise LamegValueError(f"multilayer mesh {mesh} does not exist; run surf_set.create()")
    vert, _, ori = read_surf_gifti(mesh)
    if ori is None:
        raise LamegDataError(f"{mesh} has no orientation (VECTOR) array")
    n = len(vert) // len(names)
    if n * len(names) != len(vert):
        raise LamegDataError(f"{mesh}: {len(vert)} vertices are not {len(names)} equal layers")
    rows = np.concatenate([np.arange(k * n, (k + 1) * n) for k in li])

    params = parse_param_text(
        f"CovBand {lo:g} {hi:g}\nCovType GLOBAL\n"
        f"Marker {condition} {c0:g} {c1:g} FALSE control\n"
        f"Marker {condition} {a0:g} {a1:g} TRUE active\n{extra_params}\n",
        name="laminar_sam")
    covs = sam_cov(params, sd, write=False)
    w = sam_wts(params, {"Global": covs["Global"]}, atlas=(vert[rows], ori[rows]), data=sd,
                inversion_idx=inversion_idx, write=False)
    W = w.weights["Global"]
    den = w.noise["Global"] * np.einsum("vm,vm->v", W, W)

    def pz2(C):
        return (np.einsum("vm,vm->v", W @ C, W) / den).reshape(2, n)

    act, ctl = pz2(covs["active"].C), pz2(covs["control"].C)
    ratio = act / ctl
    return LaminarSamResult(tuple(layers), act, ctl, ratio, ratio[0] - ratio[1], w)
