"""OPM (optically pumped magnetometer) arrays and head models (laMEG 0.2.1 OPM API).

:func:`setup_opm_simulation` is a native counterpart of SPM's ``spm_opm_sim``: it places
magnetometers on a surface offset from the participant's scalp (or reads a layout file), writes
an SPM dataset with those sensors (single-, dual- or tri-axial, optional white sensor noise) and
computes its head model; :func:`opm_headmodel` (``lameg.invert.opm_headmodel``) builds the head
model of an OPM dataset whose sensors are already in MRI space.

Array geometry, as ``spm_opm_sim``: the scalp mesh is scaled about its centre of gravity by the
cube root of the ratio of the convex-hull volumes of the scalp displaced outward by ``offset``
and of the scalp, so that it lies about ``offset`` mm outside the head; points are spread over
it about ``spacing`` mm apart; each sensor's sensitive axis is the inward normal of the nearest
face; ``wholehead=False`` keeps sensors above the lowest point of the cortex; the second axis of
a dual-axis sensor is ``(o_y, -o_x, 0)`` (normalised) and the third ``cross(second, first)``.
SPM spreads the points with a random search (``spm_mesh_pack_points``); here they are chosen by
farthest-point sampling of a finely subdivided surface followed by ``density_checks`` Lloyd
relaxation sweeps, which is deterministic.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.spatial import ConvexHull, cKDTree

from ._validate import (
    check_array,
    check_float,
    check_int,
    check_option,
    check_path,
    validate_type,
)
from .backends import select_backend
from .exceptions import (
    LamegFileNotFoundError,
    LamegFormatError,
    LamegNotImplementedError,
    LamegValueError,
)
from .io.matfile import MatCell
from .mesh.normals import face_normals, vertex_normals

__all__ = ["expand_scalp", "inward_axes", "opm_sensor_array", "read_opm_layout", "opm_grad", "setup_opm_simulation",
           "opm_headmodel"]


def _outward(vectors: np.ndarray, points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Flip each vector to point away from ``centre`` (as spm_opm_sim's 5 mm test)."""
    toward = np.einsum("ij,ij->i", vectors, points - centre) < 0
    out = vectors.copy()
    out[toward] *= -1
    return out


def _subdivide(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One midpoint (1-to-4) subdivision of a triangle mesh."""
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    uniq, inv = np.unique(e, axis=0, return_inverse=True)
    mid = len(v) + inv.reshape(3, -1)  # (3, n_faces): edges 01, 12, 20
    v2 = np.vstack([v, 0.5 * (v[uniq[:, 0]] + v[uniq[:, 1]])])
    a, b, c = f.T
    m01, m12, m20 = mid
    f2 = np.concatenate([np.stack([a, m01, m20], 1), np.stack([b, m12, m01], 1),
                         np.stack([c, m20, m12], 1), np.stack([m01, m12, m20], 1)])
    return v2, f2


def expand_scalp(v, f, offset: float) -> np.ndarray:
    """The scalp scaled about its centre of gravity to lie ``offset`` mm further out.

    Scale = cube root of (convex-hull volume of the scalp displaced by ``offset`` along its
    outward vertex normals) / (convex-hull volume of the scalp), as ``spm_opm_sim``.

    Parameters
    ----------
    v : array-like, shape (n, 3)
        Scalp vertices, mm.
    f : array-like of int, shape (m, 3)
        Triangles.
    offset : float
        Scalp-to-sensor distance, mm.

    Returns
    -------
    ndarray, shape (n, 3)
        Vertices of the expanded surface (same triangles).
    """
    v = np.asarray(v, dtype=float)
    f = np.asarray(f, dtype=np.int64)
    cog = v.mean(axis=0)
    n = _outward(vertex_normals(v, f), v, cog)
    ratio = ConvexHull(v + offset * n).volume / ConvexHull(v).volume
    s = ratio ** (1.0 / 3.0)
    return s * v + (cog - s * cog)


def _farthest_points(cand: np.ndarray, spacing: float, start: int) -> np.ndarray:
    chosen = [start]
    d = np.linalg.norm(cand - cand[start], axis=1)
    while True:
        i = int(np.argmax(d))
        if d[i] < spacing:
            return np.asarray(chosen)
        chosen.append(i)
        d = np.minimum(d, np.linalg.norm(cand - cand[i], axis=1))


def _lloyd(cand: np.ndarray, idx: np.ndarray, n_iter: int) -> np.ndarray:
    idx = idx.copy()
    tree = cKDTree(cand)
    for _ in range(n_iter):
        owner = cKDTree(cand[idx]).query(cand)[1]
        counts = np.bincount(owner, minlength=idx.size)
        cent = np.zeros((idx.size, 3))
        np.add.at(cent, owner, cand)
        cent /= np.maximum(counts, 1)[:, None]
        new = tree.query(cent)[1]
        new[counts == 0] = idx[counts == 0]
        if np.array_equal(new, idx) or np.unique(new).size < idx.size:
            break
        idx = new
    return idx


def inward_axes(surf_vertices, faces, pos) -> np.ndarray:
    """Inward unit normal of the face whose centre is nearest to each position.

    Parameters
    ----------
    surf_vertices : array-like, shape (n, 3)
        Sensor surface (e.g. :func:`expand_scalp`), mm.
    faces : array-like of int, shape (m, 3)
        Triangles.
    pos : array-like, shape (k, 3)
        Sensor positions, mm.

    Returns
    -------
    ndarray, shape (k, 3)
    """
    surf = np.asarray(surf_vertices, dtype=float)
    f = np.asarray(faces, dtype=np.int64)
    centres = surf[f].mean(axis=1)
    fn = _outward(face_normals(surf, f), centres, surf.mean(axis=0))
    return -fn[cKDTree(centres).query(np.asarray(pos, dtype=float))[1]]


def opm_sensor_array(scalp_vertices, scalp_faces, spacing: float = 35.0, offset: float = 6.5,
                     wholehead: bool = True, lowest_z: float | None = None,
                     density_checks: int = 40, axes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """OPM positions and sensitive axes on a surface ``offset`` mm outside the scalp.

    Parameters
    ----------
    scalp_vertices : array-like, shape (n, 3)
        Scalp mesh vertices, mm (any frame; scanner RAS for ``setup_opm_simulation``).
    scalp_faces : array-like of int, shape (m, 3)
        Triangles (0-based).
    spacing : float
        Target distance between neighbouring sensors, mm (> 0).
    offset : float
        Scalp-to-sensor distance, mm (>= 0).
    wholehead : bool
        Cover the whole scalp; if False keep sensors with z above ``lowest_z``.
    lowest_z : float or None
        Height limit for ``wholehead=False`` (``spm_opm_sim``: the lowest cortex vertex), mm.
    density_checks : int
        Lloyd relaxation sweeps that even out the spacing (0 = farthest-point sampling only).
    axes : {1, 2, 3}
        Sensitive axes per sensor (positions repeated per axis).

    Returns
    -------
    pos : ndarray, shape (n_sensors * axes, 3)
        Positions, mm (all first axes, then the second axes, then the third).
    ori : ndarray, shape (n_sensors * axes, 3)
        Unit sensitive axes; the first axis points into the head.
    """
    v = np.asarray(scalp_vertices, dtype=float)
    f = np.asarray(scalp_faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(v) < 4:
        raise LamegValueError("the scalp mesh needs vertices (n, 3) and faces (m, 3)")
    spacing = check_float(spacing, "sensor_spacing", min_value=1e-3)
    offset = check_float(offset, "sensor_offset", min_value=0.0)
    density_checks = check_int(density_checks, "density_checks", min_value=0)
    axes = check_option(check_int(axes, "axes"), (1, 2, 3), "axes")
    surf = expand_scalp(v, f, offset)
    cv, cf = surf, f
    edge = np.median(np.linalg.norm(surf[f[:, 0]] - surf[f[:, 1]], axis=1))
    while edge > spacing / 8.0 and len(cv) < 400_000:
        cv, cf = _subdivide(cv, cf)
        edge /= 2.0
    idx = _farthest_points(cv, 0.85 * spacing, int(np.argmax(cv[:, 2])))
    idx = _lloyd(cv, idx, density_checks)
    pos = cv[idx]
    ori = inward_axes(surf, f, pos)
    if not wholehead:
        if lowest_z is None:
            raise LamegValueError("wholehead=False needs lowest_z (the lowest cortex point)")
        keep = pos[:, 2] > float(lowest_z)
        pos, ori = pos[keep], ori[keep]
    if axes > 1:
        second = np.column_stack([ori[:, 1], -ori[:, 0], np.zeros(len(ori))])
        axes_list = [ori, second] + ([np.cross(second, ori)] if axes > 2 else [])
        ori = np.vstack(axes_list)
        pos = np.vstack([pos] * axes)
    norm = np.linalg.norm(ori, axis=1, keepdims=True)
    if np.any(norm < 1e-12):
        raise LamegValueError("a sensor axis is undefined (a radial axis along z has no "
                              "second axis); use axes=1 or a different layout")
    return pos, ori / norm


def read_opm_layout(fname) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read an OPM layout (``positions.tsv``: columns Px Py Pz Ox Oy Oz [name]).

    Parameters
    ----------
    fname : str or path-like
        Tab-separated file with a header row; positions in mm (MRI space), orientations
        (normalised here).

    Returns
    -------
    pos : ndarray, shape (n, 3)
    ori : ndarray, shape (n, 3)
    names : list of str or None
    """
    path = check_path(fname, "sensor_positions_file")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    need = ("Px", "Py", "Pz", "Ox", "Oy", "Oz")
    if not rows or any(k not in rows[0] for k in need):
        raise LamegFormatError(f"{path.name} must be a TSV with columns {need} (and optionally "
                               "name); got " + (str(list(rows[0])) if rows else "no rows"))
    try:
        arr = np.array([[float(r[k]) for k in need] for r in rows])
    except ValueError as err:
        raise LamegFormatError(f"{path.name}: non-numeric position/orientation ({err})") from None
    ori = arr[:, 3:]
    norm = np.linalg.norm(ori, axis=1, keepdims=True)
    if not np.all(np.isfinite(arr)) or np.any(norm < 1e-12):
        raise LamegFormatError(f"{path.name}: positions must be finite and orientations "
                               "non-zero")
    names = [r["name"] for r in rows] if "name" in rows[0] else None
    return arr[:, :3], ori / norm, names


def opm_grad(pos, ori, labels=None) -> dict:
    """FieldTrip ``grad`` of point magnetometers (one coil per channel, ``tra`` = identity).

    Parameters
    ----------
    pos, ori : array-like, shape (n, 3)
        Coil positions (mm) and unit axes.
    labels : sequence of str or None
        Channel names; default ``Chan001`` ... as ``spm_opm_sim``.

    Returns
    -------
    dict
    """
    pos = np.asarray(pos, dtype=float)
    n = len(pos)
    if labels is None:
        labels = [f"Chan{k:0{len(str(n))}d}" for k in range(1, n + 1)]
    return {"label": list(labels), "coilpos": pos, "coilori": np.asarray(ori, float),
            "chanpos": pos, "chanori": np.asarray(ori, float), "tra": np.eye(n),
            "chanunit": ["T"] * n, "chantype": ["megmag"] * n, "unit": "mm", "type": "opm"}


def _mesh_vf(mesh) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(os.fspath(mesh)) if isinstance(mesh, (str, os.PathLike)) else mesh
    return (np.asarray(img.darrays[0].data, dtype=float),
            np.asarray(img.darrays[1].data, dtype=np.int64))


def _pseudo_fiducials(scalp_v: np.ndarray) -> dict:
    """Three scalp points (front, left, right) in MRI space, labelled nas/lpa/rpa.

    The sensors are in MRI space, so the co-registration is the identity whatever three
    non-collinear points are used; these stand in for SPM's template fiducials.
    """
    c = scalp_v.mean(axis=0)
    pick = [np.argmax(scalp_v[:, 1] - 0.2 * np.abs(scalp_v[:, 2] - c[2])),
            np.argmin(scalp_v[:, 0]), np.argmax(scalp_v[:, 0])]
    return {"fid": {"pnt": scalp_v[pick], "label": ["nas", "lpa", "rpa"]},
            "pnt": np.zeros((0, 3)), "unit": "mm"}


def setup_opm_simulation(data_file, surf_set, layer_name=None, stage="ds",
                         orientation="link_vector", fixed=True, s_rate=1000, wholehead=True,
                         sensor_spacing=35, sensor_offset=6.5, n_samples=1000, n_trials=1,
                         density_checks=40, axes=1, sensor_positions_file=None,
                         iskull_fname=None, oskull_fname=None, scalp_fname=None, viz=True,
                         spm_instance=None, *, noise_sd: float = 0.0, seed=None,
                         backend=None) -> str:
    """Create an OPM dataset on the participant's head (``spm_opm_sim``, native or SPM).

    The native back end (default) builds the array and the head model itself; ``backend='spm'``
    (or ``spm_instance=``) runs SPM's ``spm_opm_sim`` with laMEG's settings (see
    :mod:`lameg.backends.spm.opm`). With a layout file both give the same sensors; generated
    arrays differ, because SPM packs the sensors by a random search and lameg deterministically.

    Parameters
    ----------
    data_file : str or path-like
        Output SPM header (``.mat``; the ``.dat`` goes beside it).
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set (cortical mesh of the head model, scalp, inner skull).
    layer_name, stage, orientation, fixed
        Cortical mesh of the head model (None = multilayer), as in ``coregister``.
    s_rate : float
        Sampling rate, Hz.
    wholehead : bool
        Cover the whole head; False keeps sensors above the lowest cortex point.
    sensor_spacing : float
        Distance between sensors, mm.
    sensor_offset : float
        Scalp-to-sensor distance, mm.
    n_samples, n_trials : int
        Data size (time starts at 0 s).
    density_checks : int
        Relaxation sweeps of the array (see :func:`opm_sensor_array`); with SPM, its density
        optimisations.
    axes : {1, 2, 3}
        Axes per sensor.
    sensor_positions_file : str, path-like or None
        Layout TSV (see :func:`read_opm_layout`) instead of a generated array.
    iskull_fname, oskull_fname, scalp_fname : str, path-like or None
        Head meshes (GIfTI, scanner RAS mm); default the surface set's.
    viz : bool
        Accepted for laMEG compatibility (no figures are drawn).
    spm_instance : object or None
        A running SPM engine (laMEG's ``spm_standalone`` instance or a
        :class:`lameg.spm.SPMEngine`); passing one selects the SPM back end.
    noise_sd : float
        Standard deviation of white sensor noise written as data, fT (default 0: zeros, as
        ``spm_opm_sim``). Native back end only.
    seed : int, numpy.random.Generator or None
        Noise generator (native); with SPM, the seed of its random sensor packing.
    backend : {'native', 'spm'} or None
        Engine (None: ``'spm'`` when ``spm_instance`` is given, else ``'native'``).

    Returns
    -------
    str
        Path of the ``.mat`` header.
    """
    from .io.spm_meeg import write_meeg

    validate_type(data_file, "path-like", "data_file")
    s_rate = check_float(s_rate, "s_rate", min_value=1e-6)
    n_samples = check_int(n_samples, "n_samples", min_value=1)
    n_trials = check_int(n_trials, "n_trials", min_value=1)
    noise_sd = check_float(noise_sd, "noise_sd", min_value=0.0)
    density_checks = check_int(density_checks, "density_checks", min_value=0)
    axes = check_option(check_int(axes, "axes"), (1, 2, 3), "axes")
    sensor_spacing = check_float(sensor_spacing, "sensor_spacing", min_value=1e-6)
    sensor_offset = check_float(sensor_offset, "sensor_offset")
    module, extra = select_backend(backend, spm_instance)
    if extra:
        if noise_sd:
            raise LamegNotImplementedError(
                "spm_opm_sim writes zero data: noise_sd needs backend='native' (or add noise to "
                "the SPM dataset afterwards)")
        return module.setup_opm_simulation(
            data_file, surf_set, layer_name=layer_name, stage=stage, orientation=orientation,
            fixed=fixed, s_rate=s_rate, wholehead=wholehead, sensor_spacing=sensor_spacing,
            sensor_offset=sensor_offset, n_samples=n_samples, n_trials=n_trials,
            density_checks=density_checks, axes=axes,
            sensor_positions_file=sensor_positions_file, iskull_fname=iskull_fname,
            oskull_fname=oskull_fname, scalp_fname=scalp_fname, viz=viz, seed=seed, **extra)
    scalp = _mesh_vf(scalp_fname if scalp_fname is not None
                     else surf_set.load_head_mesh("scalp"))
    mesh = surf_set.get_mesh_path(layer_name, stage=stage, orientation=orientation, fixed=fixed)
    if not Path(mesh).is_file():
        raise LamegFileNotFoundError(f"mesh {mesh} does not exist; run surf_set.create()")
    if sensor_positions_file is not None:
        pos, ori, _ = read_opm_layout(sensor_positions_file)
    else:
        cortex_z = _mesh_vf(mesh)[0][:, 2].min()
        pos, ori = opm_sensor_array(*scalp, spacing=sensor_spacing, offset=sensor_offset,
                                    wholehead=bool(wholehead), lowest_z=cortex_z,
                                    density_checks=density_checks, axes=axes)
    grad = opm_grad(pos, ori)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    data = (noise_sd * rng.standard_normal((len(pos), n_samples, n_trials)) if noise_sd > 0
            else np.zeros((len(pos), n_samples, n_trials)))
    out = Path(data_file).with_suffix(".mat")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_meeg(out, data, fsample=s_rate, chanlabels=grad["label"], chantypes="MEG",
               chanunits="fT", sensors=grad, fiducials=_pseudo_fiducials(scalp[0]),
               dataset_type="single" if n_trials > 1 else None)
    opm_headmodel(out, surf_set, mri_fname=getattr(surf_set, "mri_file", None) or str(mesh),
                  layer_name=layer_name, stage=stage, orientation=orientation, fixed=fixed,
                  iskull_fname=iskull_fname, oskull_fname=oskull_fname,
                  scalp_fname=scalp_fname, viz=viz)
    return str(out)


_UNIT_MM = {"m": 1000.0, "cm": 10.0, "mm": 1.0}


def _coordsystem_fiducials(data_fname, coordsystem_fname) -> tuple[dict, list[str]]:
    """Read a BIDS ``coordsystem.json`` as ``spm_opm_headmodel`` does, store its head-coil
    positions as the dataset's MEG fiducials (mm) and return the MRI landmarks (mm) and labels.

    lameg has no template-derived MRI fiducials, so ``AnatomicalLandmarkCoordinates`` are
    required (SPM falls back to fiducials of its template brain).
    """
    import json

    from .io.spm_inv import dataset_lock
    from .io.spm_meeg import load_meeg

    path = check_path(coordsystem_fname, "coordsystem_fname")
    try:
        coord = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise LamegFormatError(f"{path.name} is not a readable JSON file: {err}") from None
    head = coord.get("HeadCoilCoordinates")
    anat = coord.get("AnatomicalLandmarkCoordinates")
    if not isinstance(head, dict) or len(head) < 3:
        raise LamegFormatError(f"{path.name} has no HeadCoilCoordinates (three or more coils)")
    if not isinstance(anat, dict):
        raise LamegValueError(
            f"{path.name} has no AnatomicalLandmarkCoordinates: lameg co-registers the head "
            "coils to MRI landmarks given there (SPM would fall back to its template's fiducials)")
    missing = sorted(set(head) - set(anat))
    if missing:
        raise LamegValueError(f"{path.name}: head coils {missing} have no anatomical landmark; "
                              "name the same points in both HeadCoilCoordinates and "
                              "AnatomicalLandmarkCoordinates")

    def _mm(key, default):
        unit = str(coord.get(key, default)).lower()
        if unit not in _UNIT_MM:
            raise LamegValueError(f"{path.name}: {key} = {unit!r}; expected m, cm or mm")
        return _UNIT_MM[unit]

    s_head = _mm("HeadCoilCoordinateUnits", coord.get("MEGCoordinateUnits", "mm"))
    s_anat = _mm("AnatomicalLandmarkCoordinateUnits", "mm")
    labels = list(head)
    pnt = np.array([check_array(head[k], f"HeadCoilCoordinates[{k!r}]", shape=(3,))
                    for k in labels]) * s_head
    mri = {k: check_array(anat[k], f"AnatomicalLandmarkCoordinates[{k!r}]", shape=(3,)) * s_anat
           for k in labels}
    with dataset_lock(data_fname):  # SPM: D = fiducials(D, fid); save(D)
        D = load_meeg(data_fname)
        fid = dict(D.header.get("fiducials") or {})
        fid.update({"fid": {"label": MatCell.column(labels), "pnt": pnt},
                    "pnt": np.zeros((0, 3)), "unit": "mm"})
        D.header["fiducials"] = fid
        D.save()
    return mri, labels


def opm_headmodel(data_fname, surf_set, coordsystem_fname=None, mri_fname=None,
                  layer_name=None, stage="ds", orientation="link_vector", fixed=True,
                  iskull_fname=None, oskull_fname=None, scalp_fname=None,
                  voltype="Single Shell", meshres=2, lead=False, viz=True, spm_instance=None):
    """Head model of an OPM dataset whose sensors are in MRI space (laMEG ``opm_headmodel``).

    As ``spm_opm_headmodel`` without a ``coordsystem.json``: the co-registration is the
    identity (the dataset's fiducials are used as the MRI fiducials), the forward model is
    computed on the surface set's cortical mesh (``layer_name``; None = multilayer) and stored
    in ``D.other.inv{1}`` with its gain matrix.

    Parameters
    ----------
    data_fname : str or path-like
        OPM dataset (e.g. from :func:`setup_opm_simulation`).
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set.
    coordsystem_fname : str, path-like or None
        BIDS ``coordsystem.json`` of a real recording: its ``HeadCoilCoordinates`` (sensor
        frame) become the dataset's fiducials and are co-registered to its
        ``AnatomicalLandmarkCoordinates`` (MRI, required), units from the ``*Units`` fields.
        None: the sensors are already in MRI space (identity).
    mri_fname : str or path-like
        Participant MRI (required, as in laMEG; it names the MRI space of the sensors).
    layer_name, stage, orientation, fixed
        Cortical mesh, as in ``coregister``.
    iskull_fname, oskull_fname, scalp_fname : str, path-like or None
        Head meshes; default the surface set's.
    voltype : str
        Forward model (``'Single Shell'``, ``'Single Sphere'``, ``'Local Spheres'``, ...).
    meshres : {1, 2, 3}
        SPM's template-mesh resolution, used only by SPM when no participant head meshes
        exist; the native engine always uses the participant's meshes (validated, no effect).
    lead : bool
        Return the gain matrix.
    viz : bool
        Accepted for laMEG compatibility.
    spm_instance : object, optional
        Accepted for laMEG compatibility.

    Returns
    -------
    ndarray, shape (n_channels, n_sources), or None
        The gain matrix (fT per nA m) when ``lead`` is True.
    """
    from .invert import coregister
    from .io.spm_inv import read_head_model
    from .io.spm_meeg import load_meeg

    if not mri_fname:
        raise LamegValueError("opm_headmodel requires mri_fname (the participant's MRI, the "
                              "space of the sensors)")
    check_option(int(meshres) if np.isscalar(meshres) else meshres, (1, 2, 3), "meshres")
    data_fname = check_path(data_fname, "data_fname")
    if coordsystem_fname:  # sensors in their own frame: fiducial co-registration
        fid_coords, labels = _coordsystem_fiducials(data_fname, coordsystem_fname)
        coregister(fid_coords, data_fname, surf_set, layer_name=layer_name, stage=stage,
                   orientation=orientation, fixed=fixed, fid_labels=tuple(labels),
                   iskull_fname=iskull_fname, oskull_fname=oskull_fname,
                   scalp_fname=scalp_fname, forward_model_type=voltype, viz=False)
        return np.asarray(read_head_model(data_fname).gain(), dtype=float) if lead else None
    fid = load_meeg(data_fname).fiducials()
    pnt = np.asarray(fid.get("fid", {}).get("pnt", []), dtype=float).reshape(-1, 3)
    labels = [str(x) for x in np.atleast_1d(fid.get("fid", {}).get("label", []))]
    if len(labels) < 3 or pnt.shape[0] != len(labels):
        raise LamegFormatError(f"{data_fname.name} has no fiducials; an OPM dataset in MRI "
                               "space needs three (written by setup_opm_simulation)")
    coregister({lab: pnt[k] for k, lab in enumerate(labels[:3])}, data_fname, surf_set,
               layer_name=layer_name, stage=stage, orientation=orientation, fixed=fixed,
               fid_labels=tuple(labels[:3]), iskull_fname=iskull_fname,
               oskull_fname=oskull_fname, scalp_fname=scalp_fname, forward_model_type=voltype,
               viz=False)
    if not lead:
        return None
    return np.asarray(read_head_model(data_fname).gain(), dtype=float)
