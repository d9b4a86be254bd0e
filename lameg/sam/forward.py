"""Lead fields of the SAM programs, from :mod:`lameg.forward`.

Every SAM head model is one of the forward module's volume conductors, so there is a single
implementation of each (Sarvas sphere, local spheres, Nolte single shell):

============================  ==================================================================
``Model``                     volume conductor
============================  ==================================================================
``SingleSphere x y z``        :class:`lameg.forward.sphere.SphereModel` at the origin (cm)
``MultiSphere``               :class:`lameg.forward.sphere.LocalSpheresModel`: one sphere per
                              channel fitted to the hull points near it (FieldTrip
                              ``localspheres``; SAMsrc reads the spheres of the CTF
                              ``default.hdm``, which a fit to the same hull approximates)
``Nolte [N]``                 Nolte's single shell of order N on the hull (inner skull), using
                              :func:`lameg.forward.singleshell.prepare_nolte`
============================  ==================================================================

Sensors are :class:`lameg.forward.sensors.SensorArray` objects (coil integration points and the
channel map, CTF reference balancing included when the dataset stores it): from the SPM ``grad``
of an SPM dataset, from the MNE ``Info`` of an MNE object, or point coils from a plain
``coilpos``/``coilori``/``tra`` dictionary.

An SPM dataset co-registered with :func:`lameg.invert.coregister` carries its head model in
``D.other.inv{k}`` (:class:`SpmForwardModel`): the registration (MRI mm -> MEG head frame), the
volume conductor, the sensors and the gain matrix of its cortical mesh. Surface sources given in
MRI millimetres are mapped into the head frame with that registration; when they are vertices of
the stored mesh with its orientations, the stored gain matrix is used as it is (it is SPM's
rank-2 reduced lead field ``L (I - v3 v3') n``; ``v3`` the weakest lead-field direction), otherwise
lead fields are computed with the stored volume conductor.

All lead fields are in SI units: T (or T/m for planar gradiometers) per A m, matching the SAM data
(:class:`lameg.sam.io.SamData`, tesla).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from .._utils import hash_arrays, logger
from ..exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegNotImplementedError,
    LamegValueError,
)
from ..forward.gain import compute_gain, compute_leadfield
from ..forward.normals import normalize_rows
from ..forward.sensors import SensorArray, length_scale
from ..forward.singleshell import SingleShellModel
from ..forward.sphere import LocalSpheresModel, SphereModel, fit_local_spheres, sarvas_leadfield

__all__ = [
    "sensor_array",
    "HullShellModel",
    "sam_head_model",
    "model_spec",
    "free_lead_fields",
    "fixed_lead_fields",
    "sphere_lead_field",
    "SpmForwardModel",
    "read_spm_forward",
]


# ---------------------------------------------------------------------------------------------
# sensors
# ---------------------------------------------------------------------------------------------


def sensor_array(data, channels: list[str] | None = None) -> SensorArray:
    """The :class:`SensorArray` of a :class:`~lameg.sam.io.SamData`.

    Uses, in this order, the CTF dataset read as SAMsrcV5 reads it (its integration points and
    balancing), the SPM ``grad``, the MNE ``Info`` or point coils ``coilpos`` (m), ``coilori``,
    ``tra``.

    Parameters
    ----------
    data : SamData
    channels : list of str, optional
        Rows, in this order (default ``data.chan_names``).

    Returns
    -------
    SensorArray

    Raises
    ------
    LamegValueError
        When the data carry no sensor geometry.
    """
    s = data.sensors
    if not s:
        raise LamegValueError(
            "the data have no sensor geometry, which the SAM head models need; load an SPM or "
            "MNE dataset with sensors, or pass lead_field= to sam_wts")
    names = list(data.chan_names) if channels is None else list(channels)
    if s.get("ctf") is not None:  # a CTF dataset read as SAMsrcV5 reads it
        from .ctf_forward import ctf_sensor_array

        sens = ctf_sensor_array(s["ctf"])
        return sens if names == list(sens.labels) else sens.select(names)
    if s.get("grad") is not None:
        return SensorArray.from_grad(s["grad"], channels=names)
    if s.get("info") is not None:
        return SensorArray.from_mne_info(s["info"], picks=names)
    tra = s.get("tra")
    coilpos = np.asarray(s["coilpos"], float)
    tra = np.eye(data.n_channels, len(coilpos)) if tra is None else np.asarray(tra, float)
    sens = SensorArray(coilpos=coilpos, coilori=np.asarray(s["coilori"], float), tra=tra,
                       labels=list(data.chan_names))
    return sens if names == list(data.chan_names) else sens.select(names)


# ---------------------------------------------------------------------------------------------
# head models
# ---------------------------------------------------------------------------------------------


class HullShellModel(SingleShellModel):
    """Nolte single shell bounded by a hull given as points with outward normals (SAM hulls).

    :class:`lameg.forward.singleshell.SingleShellModel` takes a triangulated boundary and derives
    its normals; SAM's ``hull.shape`` files carry points and normals only, which is all the Nolte
    fit uses. Everything else (the expansion, cached per coil set, and the lead fields) is
    :class:`~lameg.forward.singleshell.SingleShellModel`'s.

    Parameters
    ----------
    bnd_pos : ndarray, shape (n_points, 3)
        Hull points, m, MEG head frame.
    bnd_nrm : ndarray, shape (n_points, 3)
        Unit normals.
    order : int
        Spherical-harmonic order.
    """

    def __init__(self, bnd_pos: np.ndarray, bnd_nrm: np.ndarray, order: int = 20) -> None:
        self.bnd_pos = np.asarray(bnd_pos, float)
        self.bnd_nrm = normalize_rows(np.asarray(bnd_nrm, float))
        if self.bnd_pos.shape != self.bnd_nrm.shape or self.bnd_pos.ndim != 2:
            raise LamegValueError("hull points and normals must both be (n, 3)")
        self.bnd_tri = None  # no triangles: the normals come with the points
        self.order = order
        self.kind = "Nolte hull"
        self._prepared = {}

    def __repr__(self) -> str:
        return f"HullShellModel(n_points={len(self.bnd_pos)}, order={self.order})"

    def _cache_text(self) -> str:  # hull points, normals and order
        return "nolte-hull:" + hash_arrays(self.bnd_pos, self.bnd_nrm, extra=str(self.order))


def model_spec(params):
    """The effective ``Model`` of the parameters.

    ``--doNolte``/``--doMultiSphere``/``--Order`` apply when ``Model`` is not set; ``--Order`` also
    overrides a ``Model Nolte`` order.

    Parameters
    ----------
    params : SamParams

    Returns
    -------
    ModelSpec or None
    """
    from .params import ModelSpec

    model = params.get("Model")
    order = int(params["Order"]) if params.is_set("Order") else None
    if model is None:
        if params.get("doNolte", False):
            model = ModelSpec("Nolte", order=order or int(params.get("Order", 16)))
        elif params.get("doMultiSphere", False):
            model = ModelSpec("MultiSphere")
    elif model.kind == "Nolte" and order is not None:
        model = ModelSpec("Nolte", order=order)
    return model


def sam_head_model(model, sensors: SensorArray, hull: tuple[np.ndarray, np.ndarray] | None = None):
    """Volume conductor for a SAM ``Model``.

    Parameters
    ----------
    model : lameg.sam.params.ModelSpec
        ``SingleSphere`` (origin in cm), ``MultiSphere`` or ``Nolte`` (order).
    sensors : SensorArray
        Needed by ``MultiSphere`` (one sphere per channel).
    hull : (points, normals), optional
        Hull (inner skull) in the MEG head frame, m, with outward unit normals; required by
        ``MultiSphere`` and ``Nolte``.

    Returns
    -------
    SphereModel | LocalSpheresModel | HullShellModel
    """
    if model is None:
        raise LamegValueError(
            "no forward model: set 'Model SingleSphere x y z | MultiSphere | Nolte [N]' in the "
            "parameters, pass inversion_idx= for an SPM dataset co-registered with "
            "lameg.invert.coregister, or pass lead_field=")
    if model.kind == "SingleSphere":
        return SphereModel(np.asarray(model.origin_cm, float) * 0.01, 0.09)
    if hull is None:
        raise LamegFileNotFoundError(
            f"Model {model.kind} needs the hull (inner skull, HullName): none was found")
    pts, nrm = hull
    if model.kind == "MultiSphere":
        return fit_local_spheres(pts, sensors)
    if model.kind == "Nolte":
        order = int(model.order or 16)
        need = (order + 1) ** 2 - 1
        if len(pts) < need:
            raise LamegDataError(f"the hull has {len(pts)} points; Nolte order {order} needs at "
                                 f"least {need} (use a finer hull or a lower order)")
        return HullShellModel(pts, nrm, order)
    raise LamegValueError(f"unknown Model {model.kind!r}")


# ---------------------------------------------------------------------------------------------
# lead fields
# ---------------------------------------------------------------------------------------------


def free_lead_fields(positions: np.ndarray, sensors: SensorArray, headmodel) -> np.ndarray:
    """Free-orientation lead fields of unit x/y/z dipoles (no rank reduction).

    Parameters
    ----------
    positions : ndarray, shape (n_src, 3)
        m, MEG head frame.
    sensors : SensorArray
    headmodel
        Any :mod:`lameg.forward` volume conductor.

    Returns
    -------
    ndarray, shape (n_channels, n_src, 3)
        T (or T/m) per A m.
    """
    return np.moveaxis(compute_leadfield(positions, sensors, headmodel), 2, 0)


def fixed_lead_fields(positions: np.ndarray, orientations: np.ndarray, sensors: SensorArray,
                      headmodel, cache=False) -> np.ndarray:
    """Lead fields projected on fixed orientations, ``b = L n`` (no rank reduction).

    Parameters
    ----------
    positions : ndarray, shape (n_src, 3)
        m.
    orientations : ndarray, shape (n_src, 3)
        Unit vectors.
    sensors : SensorArray
    headmodel : object
        A :mod:`lameg.forward` volume conductor.
    cache : bool
        Use the gain cache.

    Returns
    -------
    ndarray, shape (n_channels, n_src)
        T (or T/m) per A m.
    """
    G = compute_gain(positions, orientations, sensors, headmodel,
                     chanunits=list(sensors.chanunit), reducerank=None, cache=cache)
    return G * 1e9  # compute_gain: per nA m


def sphere_lead_field(positions: np.ndarray, coilpos: np.ndarray, coilori: np.ndarray,
                      tra: np.ndarray | None = None, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Single-sphere (Sarvas 1987) MEG lead fields, :func:`lameg.forward.sphere.sarvas_leadfield`
    combined into channels.

    Parameters
    ----------
    positions : ndarray, shape (n_src, 3)
        Dipole positions, m.
    coilpos, coilori : ndarray, shape (n_coils, 3)
        Coil positions (m) and unit orientations.
    tra : ndarray, shape (n_channels, n_coils), optional
        Coil-to-channel montage (identity if None).
    origin : (3,) array-like
        Sphere centre, m.

    Returns
    -------
    ndarray, shape (n_channels, n_src, 3)
        Field per unit dipole moment along x, y, z, T per A m.
    """
    lf = sarvas_leadfield(positions, coilpos, coilori, np.asarray(origin, float))  # (v, 3, c)
    L = np.moveaxis(lf, 2, 0)
    if tra is not None:
        L = np.einsum("nc,cvk->nvk", np.asarray(tra, float), L)
    return L


# ---------------------------------------------------------------------------------------------
# head models stored in SPM datasets
# ---------------------------------------------------------------------------------------------


def _str_list(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return [str(v) for v in np.asarray(list(x), dtype=object).ravel()]


def _stored_head_model(vol: dict, sensors: SensorArray):
    kind = str(vol.get("type", ""))
    s = length_scale(str(vol.get("unit", "m") or "m"))
    if kind == "singlesphere":
        return SphereModel(np.asarray(vol["o"], float).ravel() * s, float(vol["r"]) * s)
    if kind == "localspheres":
        return LocalSpheresModel(np.atleast_2d(np.asarray(vol["o"], float)) * s,
                                 np.asarray(vol["r"], float).ravel() * s, _str_list(vol["label"]))
    if kind in ("singleshell", "mne_bem"):
        bnd = vol["bnd"]
        if isinstance(bnd, list):
            bnd = bnd[0]
        pos = np.asarray(bnd["pos"], float) * s
        tri = np.asarray(bnd["tri"], np.int64) - 1
        if kind == "mne_bem":
            from ..forward.bem import BEMModel

            return BEMModel(pos, tri)
        return SingleShellModel(pos, tri, order=int(vol.get("order", 10) or 10))
    raise LamegNotImplementedError(
        f"the stored head model type {kind!r} cannot be evaluated natively; use a 'Single "
        "Shell', 'Single Sphere', 'MEG Local Spheres' or 'MNE BEM' head model")


@dataclass
class SpmForwardModel:
    """The head model of ``D.other.inv{index + 1}`` of an SPM dataset, prepared for SAM.

    Built by :func:`read_spm_forward` from :class:`lameg.io.spm_inv.HeadModel` (the owner of the
    stored head model), with the volume conductor and sensors ready for lead fields.

    Parameters
    ----------
    fname : Path
        The dataset ``.mat``.
    index : int
        0-based inversion index.
    mri_to_head : ndarray, shape (4, 4)
        MRI (scanner RAS) mm -> MEG head frame m (``forward.fromMNI``).
    headmodel
        The volume conductor (head frame, m).
    sensors : SensorArray
        The forward model's sensors (head frame, m), all its channels.
    mesh_head : ndarray, shape (n_vertices, 3)
        Cortical mesh of the gain matrix, head frame, m.
    orientations_head : ndarray, shape (n_vertices, 3)
        Orientations the gain matrix was computed with.
    gain_path : Path or None
        The stored gain file (None when it is missing: lead fields are recomputed).
    scale : float
        SPM's conditioning factor applied to the stored gain (``forward.scale``).
    chanunits : dict of str -> str
        Data unit of every channel of the dataset (the gain's row units).
    """

    fname: Path
    index: int
    mri_to_head: np.ndarray
    headmodel: object
    sensors: SensorArray
    mesh_head: np.ndarray
    orientations_head: np.ndarray
    gain_path: Path | None
    scale: float
    chanunits: dict

    def _head_model(self):
        from ..io.spm_inv import read_head_model

        return read_head_model(self.fname, self.index)

    def to_head(self, positions_mm: np.ndarray, orientations=None):
        """MRI mm positions (and orientations) -> head frame m (and unit vectors).

        Parameters
        ----------
        positions_mm : ndarray, shape (n, 3)
            Positions in MRI (scanner RAS) mm.
        orientations : ndarray, shape (n, 3), optional
            Orientations in the MRI frame.

        Returns
        -------
        positions : ndarray, shape (n, 3)
            Head frame, m.
        orientations : ndarray, shape (n, 3) or None
            Unit vectors in the head frame.
        """
        return self._head_model().to_head(positions_mm, orientations)

    def from_head_orientations(self, ori_head: np.ndarray) -> np.ndarray:
        """Head-frame unit orientations -> MRI frame.

        Parameters
        ----------
        ori_head : ndarray, shape (n, 3)
            Orientations in the head frame.

        Returns
        -------
        ndarray, shape (n, 3)
            Unit vectors in the MRI frame.
        """
        return self._head_model().to_mri_orientations(ori_head)

    def match_vertices(self, positions_head: np.ndarray, orientations_head=None,
                       tol_m: float = 1e-6, tol_ori: float = 1e-4) -> np.ndarray | None:
        """Indices of the stored mesh vertices at given sources, if they are all mesh vertices.

        Parameters
        ----------
        positions_head : ndarray, shape (n, 3)
            Source positions, head frame, m.
        orientations_head : ndarray, shape (n, 3), optional
            Their orientations; then they must also match the stored ones.
        tol_m : float
            Position tolerance, m.
        tol_ori : float
            Orientation tolerance (1 - |cos|).

        Returns
        -------
        ndarray of int, shape (n,) or None
            0-based vertices, or None when some source is not a stored vertex (or there is no
            stored gain).
        """
        if self.gain_path is None or len(self.mesh_head) == 0:
            return None
        d, idx = cKDTree(self.mesh_head).query(positions_head)
        if np.any(d > tol_m):
            return None
        if orientations_head is not None:
            dev = np.abs(np.einsum("ij,ij->i", self.orientations_head[idx], orientations_head))
            if np.any(dev < 1 - tol_ori):
                return None
        return idx

    def gain(self, channels: list[str], columns: np.ndarray | None = None) -> np.ndarray:
        """The stored gain matrix in SI units (T or T/m per A m), rows = ``channels``.

        Parameters
        ----------
        channels : list of str
            Row order.
        columns : ndarray of int, optional
            Mesh vertices to keep (default all).

        Returns
        -------
        ndarray, shape (n_channels, n_columns)
        """
        from ..io.spm_inv import read_head_model
        from .io import _unit_scale

        hm = read_head_model(self.fname, self.index)
        G = hm.gain(channels, columns)  # data units per nA m, forward.scale undone
        unit = np.array([_unit_scale(self.chanunits.get(c, "fT") or "fT") for c in channels])
        return G * 1e9 * unit[:, None]


_FORWARD_CACHE: dict = {}
_FORWARD_CACHE_SIZE = 2


def read_spm_forward(fname: str | os.PathLike, inversion_idx: int = 0) -> SpmForwardModel:
    """Read the head model of ``D.other.inv{inversion_idx + 1}`` of an SPM dataset.

    Parameters
    ----------
    fname : str or path-like
        The dataset header.
    inversion_idx : int
        0-based head-model index.

    Returns
    -------
    SpmForwardModel

    The last two head models read are kept in memory (keyed by file, modification time and
    index), so that their prepared volume conductors (e.g. the Nolte expansion of the coils) are
    reused by successive SAM analyses of the same dataset.

    Raises
    ------
    LamegValueError
        When the dataset has no head model with that index (run
        :func:`lameg.invert.coregister` first).
    """
    path = Path(fname).resolve()
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, int(inversion_idx))
    except OSError:
        key = None
    if key is not None and key in _FORWARD_CACHE:
        _FORWARD_CACHE[key] = _FORWARD_CACHE.pop(key)  # most recently used last
        return _FORWARD_CACHE[key]
    fm = _read_spm_forward(path, inversion_idx)
    if key is not None:
        _FORWARD_CACHE[key] = fm
        while len(_FORWARD_CACHE) > _FORWARD_CACHE_SIZE:
            _FORWARD_CACHE.pop(next(iter(_FORWARD_CACHE)))
    return fm


def _read_spm_forward(fname: Path, inversion_idx: int) -> SpmForwardModel:
    from ..io.spm_inv import read_head_model
    from ..io.spm_meeg import load_meeg

    meeg = load_meeg(fname)
    hm = read_head_model(meeg, inversion_idx)
    sensors = SensorArray.from_grad(hm.sensors)
    headmodel = _stored_head_model(hm.vol, sensors)
    vert = hm.cortex_head_m
    ori = hm.orientations_head if len(hm.faces) or "orientations" in hm.forward \
        else np.zeros_like(vert)
    try:
        gain_path = hm.gain_path
    except LamegFileNotFoundError:
        gain_path = None
        logger.warning("gain matrix of %s not found; lead fields will be recomputed",
                       Path(fname).name)
    units = dict(zip(meeg.chanlabels, meeg.chanunits))
    return SpmForwardModel(Path(fname), hm.index, hm.mri_to_head, headmodel, sensors, vert, ori,
                           gain_path, hm.scale, units)
