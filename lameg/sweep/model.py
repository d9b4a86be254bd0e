"""What a sweep needs to know about a participant: :class:`LaminarModel` and its forward models."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import LamegValueError


@dataclass
class LaminarModel:
    """A participant's multilayer forward model and recording template, as arrays.

    Parameters
    ----------
    gain : ndarray, shape (n_channels, n_layers * n_vertices)
        Multilayer lead field of the good MEG channels, fT per nA m, layer-major columns
        (layer 0 = pial).
    vertices : ndarray, shape (n_layers * n_vertices, 3)
        Multilayer mesh, mm.
    faces : ndarray, shape (n_faces, 3)
        0-based triangles of the multilayer mesh (no triangle joins two layers).
    n_layers : int
    time : ndarray, shape (n_samples,)
        Template time axis, s.
    conditions : list of str
        Condition of each template trial (its length is the number of trials).
    signal_rows : ndarray of int, optional
        Rows of the template's channel list that the gain rows correspond to (default all).
    n_channels_total : int, optional
        Number of channels of the template (noise is drawn for all, as in the file path).
    fiducials : ndarray, shape (3, 3), optional
        MRI fiducials (nas, lpa, rpa; mm) used for the true forward model.
    forward : callable, optional
        ``forward(fiducials (3, 3) mm) -> gain`` like ``gain`` (same channels and sources),
        for co-registration errors. Must be picklable for parallel runs.
    fsample : float, optional
        Sampling rate, Hz (default from ``time``, rounded to 1e-6 Hz).
    """

    gain: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    n_layers: int
    time: np.ndarray
    conditions: list
    signal_rows: np.ndarray | None = None
    n_channels_total: int | None = None
    fiducials: np.ndarray | None = None
    forward: Callable | None = None
    fsample: float | None = None

    def __post_init__(self) -> None:
        self.gain = np.asarray(self.gain, dtype=np.float64)
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.time = np.asarray(self.time, dtype=np.float64)
        self.conditions = [str(c) for c in self.conditions]
        n = self.vertices.shape[0]
        if self.n_layers < 2 or n % self.n_layers:
            raise LamegValueError(
                f"{n} vertices cannot form {self.n_layers} layers (need >= 2 equal layers)")
        if self.gain.ndim != 2 or self.gain.shape[1] != n:
            raise LamegValueError(
                f"gain must be (n_channels, {n}) to match the mesh, got {self.gain.shape}")
        if not np.all(np.isfinite(self.gain)):
            raise LamegValueError("gain contains NaN or Inf")
        if self.signal_rows is None:
            self.signal_rows = np.arange(self.gain.shape[0])
        self.signal_rows = np.asarray(self.signal_rows, dtype=int)
        if self.n_channels_total is None:
            self.n_channels_total = self.gain.shape[0]
        if len(self.signal_rows) != self.gain.shape[0]:
            raise LamegValueError("signal_rows needs one entry per gain row")
        if not self.conditions:
            raise LamegValueError("the template needs at least one trial (conditions)")
        if self.fiducials is not None:
            self.fiducials = np.asarray(self.fiducials, dtype=float).reshape(3, 3)
        if self.fsample is None:
            self.fsample = float(np.round(1.0 / np.median(np.diff(self.time)), 6))

    @property
    def n_vertices(self) -> int:
        """Vertices per layer (= columns)."""
        return self.vertices.shape[0] // self.n_layers

    @property
    def n_trials(self) -> int:
        """Number of template trials."""
        return len(self.conditions)

    @property
    def thickness(self) -> np.ndarray:
        """Pial-white Euclidean distance per column, mm, shape (n_vertices,)."""
        v = self.n_vertices
        return np.linalg.norm(self.vertices[:v] - self.vertices[-v:], axis=1)

    def layer_mesh(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Vertices and 0-based faces of one layer.

        Parameters
        ----------
        layer : int
            0 = pial.

        Returns
        -------
        vertices : ndarray (n_vertices, 3)
            mm.
        faces : ndarray (n_faces, 3)
        """
        v = self.n_vertices
        sel = (self.faces // v)[:, 0] == layer
        return self.vertices[layer * v:(layer + 1) * v], self.faces[sel] - layer * v

    @classmethod
    def from_dataset(cls, data_fname: str | os.PathLike, n_layers: int | None = None,
                     surf_set: Any = None, inversion_idx: int = 0,
                     fid_coords: Any = None, forward: Callable | None = None
                     ) -> LaminarModel:
        """Read the multilayer forward model of a coregistered dataset.

        Parameters
        ----------
        data_fname : path
            SPM dataset whose ``D.other.inv{inversion_idx+1}`` holds a forward model on the
            multilayer mesh (``coregister(..., layer_name=None)``) and its gain matrix.
        n_layers : int, optional
            Number of layers (default ``surf_set.n_layers``).
        surf_set : LayerSurfaceSet, optional
        inversion_idx : int
            0-based forward model index.
        fid_coords : dict or (3, 3) array, optional
            MRI fiducials (nas, lpa, rpa; mm) of the true forward model.
        forward : callable, optional
            See :class:`LaminarModel`; e.g. :class:`FileForward` for the file-based path.
        """
        from ..io.spm_inv import read_head_model
        from ..io.spm_meeg import load_meeg
        from ..simulate import signal_channels

        if n_layers is None:
            if surf_set is None:
                raise LamegValueError("give n_layers or surf_set")
            n_layers = int(surf_set.n_layers)
        D = load_meeg(data_fname)
        hm = read_head_model(D, inversion_idx)
        chan, _ = signal_channels(D)
        G = hm.gain([D.chanlabels[i] for i in chan])
        v, f = hm.cortex_mm()
        fid = None
        if fid_coords is not None:
            fid = _fid_array(fid_coords)
        return cls(gain=G, vertices=v, faces=f, n_layers=int(n_layers), time=D.time,
                   conditions=list(D.conditions), signal_rows=chan,
                   n_channels_total=D.n_channels, fiducials=fid, forward=forward,
                   fsample=D.fsample)


def _fid_array(fid_coords) -> np.ndarray:
    if isinstance(fid_coords, dict):
        return np.array([np.asarray(fid_coords[k], dtype=float).ravel()
                         for k in ("nas", "lpa", "rpa")])
    return np.asarray(fid_coords, dtype=float).reshape(3, 3)


@dataclass
class FileForward:
    """Forward model from perturbed fiducials through the file-based ``coregister``.

    Coregisters a scratch copy of the template (one trial) to the multilayer mesh with the given
    fiducials and returns the gain of the good MEG channels. Picklable.

    Parameters
    ----------
    scratch_fname : str
        Scratch dataset (a one-trial copy of the template).
    surf_set : LayerSurfaceSet
    coregister_kwargs : dict
        Extra arguments of :func:`lameg.invert.coregister`.
    """

    scratch_fname: str
    surf_set: Any
    coregister_kwargs: dict = field(default_factory=dict)

    @classmethod
    def create(cls, data_fname, surf_set, scratch_dir, **coregister_kwargs) -> FileForward:
        """Make the scratch copy of ``data_fname`` in ``scratch_dir``.

        Parameters
        ----------
        data_fname : path
            Template dataset.
        surf_set : LayerSurfaceSet
        scratch_dir : path
        **coregister_kwargs
            Passed to :func:`lameg.invert.coregister`.

        Returns
        -------
        FileForward
        """
        from ..io.spm_meeg import load_meeg

        D = load_meeg(data_fname)
        Path(scratch_dir).mkdir(parents=True, exist_ok=True)
        new = Path(scratch_dir) / f"fwd_{D.fname.name}"
        D.clone(new, data=np.zeros((D.n_channels, D.n_samples, 1), np.float32))
        return cls(str(new), surf_set, dict(coregister_kwargs))

    def __call__(self, fiducials: np.ndarray) -> np.ndarray:
        from ..invert import coregister
        from ..io.spm_inv import read_head_model
        from ..io.spm_meeg import load_meeg
        from ..simulate import signal_channels

        fid = _fid_array(fiducials)
        coregister({"nas": fid[0], "lpa": fid[1], "rpa": fid[2]}, self.scratch_fname,
                   self.surf_set, viz=False, **self.coregister_kwargs)
        D = load_meeg(self.scratch_fname)
        chan, _ = signal_channels(D)
        return read_head_model(D, 0).gain([D.chanlabels[i] for i in chan])




@dataclass
class _SphereForward:
    """Sphere-model gain of a fixed MRI-space mesh for given MRI fiducials (picklable)."""

    vertices_mm: np.ndarray
    orientations: np.ndarray
    fid_meg_mm: np.ndarray
    sensors: Any
    origin_m: np.ndarray

    def __call__(self, fiducials: np.ndarray) -> np.ndarray:
        from ..forward.coreg import apply_transform, rigid_transform
        from ..forward.gain import compute_gain
        from ..forward.sphere import SphereModel

        m1 = rigid_transform(self.fid_meg_mm, _fid_array(fiducials))  # head -> MRI
        to_head = np.linalg.inv(m1)
        pos = apply_transform(self.vertices_mm, to_head) / 1000.0
        ori = self.orientations @ to_head[:3, :3].T
        return compute_gain(pos, ori, self.sensors, SphereModel(self.origin_m, 0.09))


def synthetic_model(n_layers: int = 3, n_side: int = 24, extent_mm: float = 50.0,
                    depth_mm: float = 70.0, fold_mm: float = 5.0, fold_period_mm: float = 20.0,
                    thickness_mm: float = 2.5, n_sensors: int = 120, n_trials: int = 20,
                    n_samples: int = 121, fsample: float = 600.0) -> LaminarModel:
    """A small folded cortical sheet under a helmet of radial magnetometers (sphere model).

    The pial surface is a sheet at height ``depth_mm`` above the sphere centre, folded along x
    (``fold_mm * sin(2 pi x / fold_period_mm)``); deeper layers are displaced along the inward
    normal up to ``thickness_mm`` (white); orientations are link vectors (pial -> white, fixed
    across layers). Head frame = MRI frame; fiducials on a 80 mm circle. Gains are exact
    single-sphere fields (fT per nA m).

    Parameters
    ----------
    n_layers : int
    n_side : int
        Vertices along each side of the square sheet.
    extent_mm, depth_mm : float
        Side length of the sheet and its height above the sphere centre, mm.
    fold_mm, fold_period_mm : float
        Fold amplitude and period, mm.
    thickness_mm : float
        Pial-white distance, mm.
    n_sensors : int
        Radial magnetometers on a 115 mm helmet.
    n_trials, n_samples : int
        Template size.
    fsample : float
        Hz.

    Returns
    -------
    LaminarModel
        With ``forward`` set (co-registration errors supported).
    """
    from ..forward.sensors import SensorArray

    x = np.linspace(-extent_mm / 2, extent_mm / 2, n_side)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    z = depth_mm + fold_mm * np.sin(2 * np.pi * xx / fold_period_mm)
    pial = np.stack([xx.ravel(), yy.ravel(), z.ravel()], axis=1)
    dzdx = (fold_mm * 2 * np.pi / fold_period_mm) * np.cos(2 * np.pi * xx / fold_period_mm)
    normal = np.stack([-dzdx.ravel(), np.zeros(dzdx.size), np.ones(dzdx.size)], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)  # outward (up)
    white = pial - thickness_mm * normal
    frac = np.linspace(1.0, 0.0, n_layers)  # 1 = pial
    verts = np.concatenate([white + f * (pial - white) for f in frac], axis=0)
    link = (white - pial) / thickness_mm
    ori = np.tile(link, (n_layers, 1))
    i, j = np.meshgrid(np.arange(n_side - 1), np.arange(n_side - 1), indexing="ij")
    a = (i * n_side + j).ravel()
    b, c, d = a + n_side, a + 1, a + n_side + 1
    tri = np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)], axis=0)
    nv = pial.shape[0]
    faces = np.concatenate([tri + k * nv for k in range(n_layers)], axis=0)
    # helmet: Fibonacci points on the upper hemisphere, radius 115 mm, radial magnetometers
    k = np.arange(n_sensors) + 0.5
    zc = 0.15 + 0.85 * k / n_sensors
    phi = np.pi * (1 + 5**0.5) * k
    rc = np.sqrt(1 - zc**2)
    dirs = np.stack([rc * np.cos(phi), rc * np.sin(phi), zc], axis=1)
    sensors = SensorArray(coilpos=0.115 * dirs, coilori=dirs, tra=np.eye(n_sensors),
                          labels=[f"MEG{i:03d}" for i in range(n_sensors)],
                          chanunit=["T"] * n_sensors, chantype=["megmag"] * n_sensors)
    fid = np.array([[0.0, 80.0, 0.0], [-80.0, 0.0, 0.0], [80.0, 0.0, 0.0]])
    fwd = _SphereForward(verts, ori, fid.copy(), sensors, np.zeros(3))
    gain = fwd(fid)
    time = np.arange(n_samples) / fsample - (n_samples // 2) / fsample
    return LaminarModel(gain=gain, vertices=verts, faces=faces, n_layers=n_layers, time=time,
                        conditions=["sim"] * n_trials, fiducials=fid, forward=fwd,
                        fsample=float(fsample))


