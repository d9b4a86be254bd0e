"""Build the bundled test participant ``test_data/`` from geometry shipped in PyPI packages.

Run from the repository root::

    .venv/bin/python tools/make_test_data.py            # writes test_data/
    .venv/bin/python tools/make_test_data.py --out DIR  # writes elsewhere

Everything is deterministic: all random numbers come from ``numpy.random.default_rng([SEED, k])``
with one fixed stream ``k`` per purpose (see ``STREAMS``). What is made, the coordinate frames and
the provenance/licences of the sources are documented in ``test_data/README.md``.

Sources
-------
* nilearn (BSD-3-Clause): the fsaverage5 surfaces (white, pial, inflated, sphere; curv, sulc,
  thickness), which are FreeSurfer's ``fsaverage5`` files, and the MNI152 2009a T1 template.
* MNE-Python (BSD-3-Clause): the fsaverage inner skull and scalp, the fsaverage fiducials, the
  canonical CTF-275 and Neuromag-306 sensor geometries, the coil definitions and the forward model
  (single-layer BEM) used to simulate the MEG data.

The functions are importable (``tests/test_test_data.py`` loads this file to recompute cheap parts
and checks that they match what is committed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------------
# Parameters (documented in test_data/README.md; changing any of them changes the committed files)
# --------------------------------------------------------------------------------------------------
SEED = 20240521
#: one independent random stream per purpose: ``default_rng([SEED, STREAMS[name]])``
STREAMS = {
    "headshape": 1,
    "noise_ctf_pial": 2,
    "noise_ctf_white": 3,
    "noise_ctf_noise": 4,
    "noise_neuromag": 5,
}
SUBJECT = "sub-01"
SESSION = "ses-01"
#: centre of the conformed volume in scanner RAS (mm): scanner RAS = tkRAS + C_RAS
C_RAS = np.array([2.5, -4.0, 6.5])
#: FreeSurfer's published affine from MNI305 (fsaverage surface RAS) to MNI152 space (mm)
MNI305_TO_MNI152 = np.array(
    [
        [0.9975, -0.0073, 0.0176, -0.0429],
        [0.0146, 1.0009, -0.0024, 1.5496],
        [-0.0130, -0.0093, 0.9971, 1.1840],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
#: vertices whose white-pial distance is below this (mm) form the medial wall ('unknown')
MEDIAL_WALL_MM = 1e-3
N_PARCELS = 30
#: number of scalp points digitised as head shape
N_HEADSHAPE = 300

# Source columns (fsaverage5 vertex numbers within the hemisphere), chosen on the lateral
# convexity: white-pial distance >= 2.5 mm, link vector nearly tangential to the head, pial vertex
# >= 10 mm inside the inner skull. ``check_source_column`` asserts these properties.
SOURCE_COLUMNS = {"ctf": ("lh", 1897), "neuromag": ("rh", 946)}

# Acquisition
FSAMPLE = 600.0  # Hz
TIME_ONSET = -0.1  # s, time of the first sample
N_SAMPLES = 151  # -0.100 ... 0.150 s
N_TRIALS = {"ctf_pial": 30, "ctf_white": 30, "ctf_noise": 20, "neuromag": 16}
SNR_DB = {"ctf": -10.0, "neuromag": -5.0}
EOG_NAME = "EOG061"

# Source waveform: Gaussian-windowed 20 Hz burst, identical in every trial
BURST = {"amplitude_nAm": 20.0, "freq_hz": 20.0, "t0_s": 0.05, "sigma_s": 0.02}

# Device -> head placement of the helmets: rotation (degrees, extrinsic x then y then z) and
# translation (mm). Chosen so that every coil lies outside the scalp with a margin.
DEV2HEAD = {
    "ctf275": {"rot_deg": (5.0, 0.0, 2.0), "trans_mm": (0.0, 10.0, 50.0)},
    "neuromag": {"rot_deg": (-3.0, 1.0, 0.0), "trans_mm": (0.0, 0.0, 40.0)},
}
#: single-layer BEM used for the simulations
BEM_ICO = 4
BEM_CONDUCTIVITY = (0.3,)
#: coils stored in the SPM sensor description: the integration points of MNE's 'normal' coil
#: definitions (CTF 8 per channel, Neuromag 4). MNE's forward (used for the simulation) integrates
#: over its 'accurate' points; the two differ by 0.04 % (CTF) and 0.9 % (Neuromag) of the largest
#: gain here, whereas FieldTrip-style point coils (2 per CTF channel) would differ by ~5 %.
COIL_ACCURACY = "normal"

HEMIS = ("lh", "rh")
_NILEARN_HEMI = {"lh": "left", "rh": "right"}


# --------------------------------------------------------------------------------------------------
# Package-shipped sources
# --------------------------------------------------------------------------------------------------
def nilearn_data_dir() -> Path:
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data"


def mne_fsaverage_dir() -> Path:
    import mne

    return Path(mne.__file__).parent / "data" / "fsaverage"


def load_fsaverage5() -> dict[str, dict[str, np.ndarray]]:
    """Load nilearn's fsaverage5 surfaces and morphometry for both hemispheres.

    Returns
    -------
    dict
        ``{hemi: {'white', 'pial', 'inflated', 'sphere': (10242, 3) float32 tkRAS mm,
        'faces': (20480, 3) int32, 'curv', 'sulc', 'thickness': (10242,) float32}}``.
    """
    import nibabel as nib

    base = nilearn_data_dir() / "fsaverage5"
    out: dict[str, dict[str, np.ndarray]] = {}
    for hemi in HEMIS:
        side = _NILEARN_HEMI[hemi]
        h: dict[str, np.ndarray] = {}
        faces = None
        for key, stem in (("white", "white"), ("pial", "pial"), ("inflated", "infl"),
                          ("sphere", "sphere")):
            g = nib.load(base / f"{stem}_{side}.gii.gz")
            h[key] = np.asarray(g.darrays[0].data, dtype=np.float32)
            f = np.asarray(g.darrays[1].data, dtype=np.int32)
            if faces is None:
                faces = f
            elif not np.array_equal(faces, f):
                raise RuntimeError(f"fsaverage5 {hemi} {key}: triangles differ from the white mesh")
        h["faces"] = faces
        for key, stem in (("curv", "curv"), ("sulc", "sulc"), ("thickness", "thick")):
            h[key] = np.asarray(nib.load(base / f"{stem}_{side}.gii.gz").darrays[0].data,
                                dtype=np.float32)
        out[hemi] = h
    return out


def load_mne_fsaverage() -> dict[str, np.ndarray]:
    """MNE's fsaverage fiducials, inner skull and scalp in fsaverage surface RAS (= tkRAS), mm.

    Returns
    -------
    dict
        ``fid_tkras`` (3, 3) rows nas, lpa, rpa; ``iskull_rr`` (10242, 3), ``iskull_tris``
        (20480, 3); ``scalp_rr`` (2033, 3), ``scalp_tris`` (4062, 3). Triangles are outward
        oriented (counter-clockwise seen from outside).
    """
    import mne
    from mne.io.constants import FIFF

    d = mne_fsaverage_dir()
    fids, frame = mne.io.read_fiducials(d / "fsaverage-fiducials.fif", verbose=False)
    if frame != FIFF.FIFFV_COORD_MRI:
        raise RuntimeError("unexpected coordinate frame of the fsaverage fiducials")
    by_id = {int(f["ident"]): np.asarray(f["r"], float) * 1e3 for f in fids}
    fid = np.stack([by_id[FIFF.FIFFV_POINT_NASION], by_id[FIFF.FIFFV_POINT_LPA],
                    by_id[FIFF.FIFFV_POINT_RPA]])
    isk = mne.read_bem_surfaces(d / "fsaverage-inner_skull-bem.fif", verbose=False)[0]
    scalp = mne.read_bem_surfaces(d / "fsaverage-head.fif", verbose=False)[0]
    return {
        "fid_tkras": fid,
        "iskull_rr": isk["rr"] * 1e3,
        "iskull_tris": isk["tris"].astype(np.int32),
        "scalp_rr": scalp["rr"] * 1e3,
        "scalp_tris": scalp["tris"].astype(np.int32),
    }


# --------------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------------
def apply_affine(T: np.ndarray, pts: np.ndarray, move: bool = True) -> np.ndarray:
    """Apply a 4x4 affine to (n, 3) points (``move=False``: rotate directions only)."""
    pts = np.asarray(pts, float)
    out = pts @ T[:3, :3].T
    return out + T[:3, 3] if move else out


def rigid_transform(rot_deg, trans) -> np.ndarray:
    """4x4 rigid transform: extrinsic rotations about x, y, z (degrees), then a translation."""
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", rot_deg, degrees=True).as_matrix()
    T[:3, 3] = trans
    return T


def conformed_affines(c_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FreeSurfer conformed (256^3, 1 mm, LIA) vox2ras and vox2ras-tkr matrices.

    Returns
    -------
    vox2ras, vox2ras_tkr : (4, 4) arrays
        ``vox2ras = vox2ras_tkr`` with ``c_ras`` added to the translation.
    """
    tkr = np.array([[-1.0, 0, 0, 128], [0, 0, 1, -128], [0, -1, 0, 128], [0, 0, 0, 1]])
    v2r = tkr.copy()
    v2r[:3, 3] += c_ras
    return v2r, tkr


def volume_info(c_ras: np.ndarray) -> OrderedDict:
    """FreeSurfer surface footer describing the conformed ``orig.mgz``."""
    return OrderedDict(
        head=np.array([2, 0, 20], dtype=np.int32),
        valid="1  # volume info valid",
        filename="../mri/orig.mgz",
        volume=np.array([256, 256, 256], dtype=np.int64),
        voxelsize=np.array([1.0, 1.0, 1.0]),
        xras=np.array([-1.0, 0.0, 0.0]),
        yras=np.array([0.0, 0.0, -1.0]),
        zras=np.array([0.0, 1.0, 0.0]),
        cras=np.asarray(c_ras, float),
    )


def make_orig_volume(vox2ras_tkr: np.ndarray) -> np.ndarray:
    """Resample nilearn's MNI152 T1 onto the conformed grid so that tkRAS = fsaverage (MNI305).

    A voxel's tkRAS position is mapped to MNI152 with :data:`MNI305_TO_MNI152` and the template is
    sampled there (trilinear); outside the template the volume is 0.

    Returns
    -------
    (256, 256, 256) uint8
    """
    import nibabel as nib
    from scipy import ndimage

    img = nib.load(nilearn_data_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    src = np.asarray(img.dataobj, dtype=np.float32)
    M = np.linalg.inv(img.affine) @ MNI305_TO_MNI152 @ vox2ras_tkr
    out = ndimage.affine_transform(src, M[:3, :3], offset=M[:3, 3], output_shape=(256,) * 3,
                                   order=1, mode="constant", cval=0.0, prefilter=False)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def medial_wall(white: np.ndarray, pial: np.ndarray) -> np.ndarray:
    """Boolean mask of the zero-thickness medial wall (white-pial distance < MEDIAL_WALL_MM)."""
    d = np.linalg.norm(white.astype(float) - pial.astype(float), axis=1)
    return d < MEDIAL_WALL_MM


def synthetic_parcellation(sphere: np.ndarray, white: np.ndarray, medial: np.ndarray,
                           n_parcels: int = N_PARCELS, n_iter: int = 100):
    """Synthetic cortical parcellation: k-means of the unit-sphere coordinates.

    Deterministic: farthest-point initialisation starting from the most anterior cortical vertex
    of ``white``, then ``n_iter`` Lloyd iterations with cosine similarity on the sphere. Parcels are
    numbered by decreasing anterior (y) coordinate of their mean white-surface position.

    Returns
    -------
    labels : (n_vertices,) int32
        0 on the medial wall ('unknown'), 1..n_parcels elsewhere.
    ctab : (n_parcels + 1, 5) int32
        FreeSurfer colour table (R, G, B, transparency, annotation value).
    names : list of str
        ``['unknown', 'synthetic_01', ...]``.
    """
    import colorsys

    u = sphere.astype(float)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    idx = np.flatnonzero(~medial)
    x = u[idx]
    centres = [int(np.argmax(white[idx, 1]))]
    dmin = 1.0 - x @ x[centres[0]]
    for _ in range(n_parcels - 1):
        centres.append(int(np.argmax(dmin)))
        dmin = np.minimum(dmin, 1.0 - x @ x[centres[-1]])
    c = x[centres]
    assign = np.argmax(x @ c.T, axis=1)
    for _ in range(n_iter):
        onehot = np.zeros((len(x), n_parcels))
        onehot[np.arange(len(x)), assign] = 1.0
        c = onehot.T @ x
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
    counts = np.bincount(assign, minlength=n_parcels)
    if counts.min() == 0:
        raise RuntimeError("empty synthetic parcel")
    ymean = np.bincount(assign, weights=white[idx, 1].astype(float), minlength=n_parcels) / counts
    order = np.argsort(-ymean, kind="stable")
    rank = np.empty(n_parcels, int)
    rank[order] = np.arange(n_parcels)
    labels = np.zeros(len(u), np.int32)
    labels[idx] = rank[assign] + 1
    rgb = [(25, 5, 25)]
    for k in range(n_parcels):
        r, g, b = colorsys.hsv_to_rgb((k * 0.61803398875) % 1.0, 0.55 + 0.4 * (k % 2), 0.85)
        rgb.append((int(r * 255), int(g * 255), int(b * 255)))
    ctab = np.zeros((n_parcels + 1, 5), np.int32)
    ctab[:, :3] = rgb
    ctab[:, 4] = ctab[:, 0] + ctab[:, 1] * 2**8 + ctab[:, 2] * 2**16
    if len(np.unique(ctab[:, 4])) != len(ctab):
        raise RuntimeError("colour table annotation values are not unique")
    names = ["unknown"] + [f"synthetic_{k + 1:02d}" for k in range(n_parcels)]
    return labels, ctab, names


def winding_numbers(points: np.ndarray, verts: np.ndarray, tris: np.ndarray,
                    chunk: int = 128) -> np.ndarray:
    """Generalised winding number of points w.r.t. a closed, outward-oriented triangle mesh.

    ~1 inside, ~0 outside (van Oosterom & Strackee solid angles summed over triangles).

    Parameters
    ----------
    points : (n, 3) array
    verts : (m, 3) array
    tris : (k, 3) int array

    Returns
    -------
    (n,) array
    """
    points = np.asarray(points, float)
    a, b, c = (np.asarray(verts, float)[tris[:, i]] for i in range(3))
    out = np.empty(len(points))
    for s in range(0, len(points), chunk):  # chunks bound the (chunk, k, 3) temporaries
        p = points[s:s + chunk, None, :]
        A, B, C = a[None] - p, b[None] - p, c[None] - p
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (A, B, C))
        det = np.einsum("ijk,ijk->ij", A, np.cross(B, C))
        den = (la * lb * lc + np.einsum("ijk,ijk->ij", A, B) * lc
               + np.einsum("ijk,ijk->ij", B, C) * la + np.einsum("ijk,ijk->ij", C, A) * lb)
        out[s:s + chunk] = np.arctan2(det, den).sum(axis=1) / (2 * np.pi)
    return out


def inside_mesh(points: np.ndarray, verts: np.ndarray, tris: np.ndarray,
                exact_within_mm: float = 3.0) -> np.ndarray:
    """Whether points lie inside a closed, outward-oriented triangle mesh (mm).

    Points are classified by ray casting (VTK ``vtkSelectEnclosedPoints``), except those closer
    than ``exact_within_mm`` to the surface, which are decided by their exact winding number.
    (The sign of VTK's closest-cell implicit distance is not used: it is wrong for hundreds of
    cortical points far below the fsaverage inner skull, where nearest-element normals mislead.)

    Parameters
    ----------
    points : (n, 3) array
    verts : (m, 3) array
    tris : (k, 3) int array

    Returns
    -------
    (n,) bool array
    """
    import pyvista as pv

    points = np.asarray(points, float)
    surf = pv.PolyData.from_regular_faces(np.asarray(verts, float), np.asarray(tris))
    cloud = pv.PolyData(points)
    if hasattr(cloud, "select_interior_points"):  # pyvista >= 0.47
        res = cloud.select_interior_points(surf, method="cell_locator", check_surface=True,
                                           locator_tolerance=1e-9)
        ray = np.asarray(res.point_data["selected_points"], bool)
    else:
        res = cloud.select_enclosed_points(surf, tolerance=1e-9, check_surface=True)
        ray = np.asarray(res.point_data["SelectedPoints"], bool)
    dist = np.asarray(cloud.compute_implicit_distance(surf).point_data["implicit_distance"])
    check = np.abs(dist) < exact_within_mm
    inside = ray.copy()
    if check.any():
        inside[check] = winding_numbers(points[check], verts, tris) > 0.5
    return inside


def vertex_normals(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for outward-oriented triangles)."""
    verts = np.asarray(verts, float)
    fn = np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]])
    nn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(nn, tris[:, k], fn)
    return nn / np.linalg.norm(nn, axis=1, keepdims=True)


def surface_distance(points: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Distance (mm) from each point to the nearest mesh vertex."""
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(verts, float)).query(np.asarray(points, float))[0]


def sample_surface(verts: np.ndarray, tris: np.ndarray, n: int, rng: np.random.Generator,
                   mask_tris: np.ndarray | None = None) -> np.ndarray:
    """``n`` points uniformly distributed (by area) on a triangle mesh (optionally on a subset)."""
    verts = np.asarray(verts, float)
    t = tris if mask_tris is None else tris[mask_tris]
    area = 0.5 * np.linalg.norm(np.cross(verts[t[:, 1]] - verts[t[:, 0]],
                                         verts[t[:, 2]] - verts[t[:, 0]]), axis=1)
    k = rng.choice(len(t), size=n, replace=False, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    return np.einsum("ij,ijk->ik", w, verts[t[k]])


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares (algebraic) sphere through points: centre (3,) and radius, in their units."""
    p = np.asarray(points, float)
    A = np.column_stack([2 * p, np.ones(len(p))])
    sol = np.linalg.lstsq(A, (p**2).sum(axis=1), rcond=None)[0]
    centre = sol[:3]
    return centre, float(np.sqrt(sol[3] + centre @ centre))


def head_frame(fid: np.ndarray) -> np.ndarray:
    """MRI -> MEG head transform (4x4, mm) of the Neuromag/MNE convention.

    ``fid`` rows are nas, lpa, rpa (mm, any MRI frame). Origin: the projection of the nasion onto
    the LPA-RPA line; +x towards RPA; +y towards the nasion; +z up.
    """
    import mne

    return mne.transforms.get_ras_to_neuromag_trans(fid[0], fid[1], fid[2])


def link_vectors(white: np.ndarray, pial: np.ndarray) -> np.ndarray:
    """Unit vectors from pial to white (the link-vector dipole orientation; inward)."""
    v = white.astype(float) - pial.astype(float)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def check_source_column(fs5: dict, iskull: np.ndarray, iskull_tris: np.ndarray, hemi: str,
                        vertex: int) -> dict:
    """Check the documented properties of a source column; return its diagnostics."""
    h = fs5[hemi]
    white, pial = h["white"][vertex].astype(float), h["pial"][vertex].astype(float)
    thick = float(np.linalg.norm(white - pial))
    ori = (white - pial) / thick
    centre, _ = fit_sphere(iskull)
    radial = pial - centre
    cos_radial = float(abs(ori @ radial) / np.linalg.norm(radial))
    d_pial = float(surface_distance(pial[None], iskull)[0])
    d_white = float(surface_distance(white[None], iskull)[0])
    inside = inside_mesh(np.stack([pial, white]), iskull, iskull_tris)
    assert thick >= 2.5, f"{hemi} {vertex}: white-pial distance {thick:.2f} mm < 2.5 mm"
    assert cos_radial < 0.2, f"{hemi} {vertex}: orientation too radial ({cos_radial:.2f})"
    assert d_pial >= 10.0, f"{hemi} {vertex}: pial vertex {d_pial:.1f} mm from the inner skull"
    assert inside.all(), f"{hemi} {vertex}: column not inside the inner skull"
    return {"thickness_mm": thick, "cos_to_radial": cos_radial,
            "pial_to_inner_skull_mm": d_pial, "white_to_inner_skull_mm": d_white}


# --------------------------------------------------------------------------------------------------
# Sensors
# --------------------------------------------------------------------------------------------------
def canonical_info(kind: str):
    """MNE's canonical sensor ``Info`` ('ctf275' or 'neuromag') with the acquisition rate set."""
    import mne

    info = mne.channels.read_meg_canonical_info(kind)
    with info._unlock():
        info["sfreq"] = FSAMPLE
        info["lowpass"] = FSAMPLE / 2
    return info


def spm_label(name: str) -> str:
    """Channel label as SPM/FieldTrip write it (CTF '-2908' suffix and spaces removed)."""
    return name.split("-")[0].replace(" ", "")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def grad_struct(info, T_dev2head_mm: np.ndarray, kind: str) -> dict:
    """FieldTrip/SPM ``grad`` structure of the MEG channels of ``info`` in the head frame (mm).

    The coils are the integration points of MNE's coil definitions of accuracy
    :data:`COIL_ACCURACY`, with unit normals: ``channel = tra @ (B . coilori)`` at
    ``coilpos``. Axial gradiometers (CTF) and magnetometers are in T; planar gradiometers in T/mm
    (their ``tra`` weights are per mm).
    """
    from mne.forward._make_forward import _create_meg_coils
    from mne.io.constants import FIFF

    chs = info["chs"]
    coils = _create_meg_coils(chs, COIL_ACCURACY)
    n_pts = np.array([len(c["w"]) for c in coils])
    rmag = np.concatenate([c["rmag"] for c in coils]) * 1e3
    cosmag = np.concatenate([c["cosmag"] for c in coils])
    w = np.concatenate([c["w"] for c in coils]).astype(float)
    planar = np.array([c["coil_type"] == FIFF.FIFFV_COIL_VV_PLANAR_T1 for c in chs])
    mag = np.array([c["coil_type"] == FIFF.FIFFV_COIL_VV_MAG_T3 for c in chs])
    row = np.repeat(np.arange(len(chs)), n_pts)
    w = np.where(planar[row], w * 1e-3, w)  # 1/m -> 1/mm
    tra = np.zeros((len(chs), len(w)))
    tra[row, np.arange(len(w))] = w
    loc = np.array([c["loc"] for c in chs])
    if kind == "ctf275":
        chantype = ["meggrad"] * len(chs)
        chanunit = ["T"] * len(chs)
    else:
        chantype = ["megplanar" if p else "megmag" for p in planar]
        chanunit = ["T/mm" if p else "T" for p in planar]
        assert (planar | mag).all()
    return {
        "label": [spm_label(c["ch_name"]) for c in chs],
        "chanpos": apply_affine(T_dev2head_mm, loc[:, :3] * 1e3),
        "chanori": _unit(apply_affine(T_dev2head_mm, loc[:, 9:12], move=False)),
        "chantype": chantype,
        "chanunit": chanunit,
        "coilpos": apply_affine(T_dev2head_mm, rmag),
        "coilori": _unit(apply_affine(T_dev2head_mm, cosmag, move=False)),
        "tra": tra,
        "unit": "mm",
        "type": "ctf275" if kind == "ctf275" else "neuromag306",
        "balance": {"current": "none"},
    }


# --------------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------------
def time_axis() -> np.ndarray:
    """Sample times (s), shape (N_SAMPLES,)."""
    return TIME_ONSET + np.arange(N_SAMPLES) / FSAMPLE


def burst(t: np.ndarray, amplitude_nAm: float, freq_hz: float, t0_s: float,
          sigma_s: float) -> np.ndarray:
    """Gaussian-windowed cosine: ``A exp(-(t-t0)^2 / (2 sigma^2)) cos(2 pi f (t-t0))`` (nA m)."""
    dt = t - t0_s
    return amplitude_nAm * np.exp(-0.5 * (dt / sigma_s) ** 2) * np.cos(2 * np.pi * freq_hz * dt)


def spm_noise_level(y_clean: np.ndarray, snr_db: float) -> tuple[float, float]:
    """SPM's noise SD for a noiseless sensor signal (``spm_eeg_simulate``).

    Parameters
    ----------
    y_clean : (n_channels, n_samples) array
        Noiseless signal of the MEG channels over the whole trial.
    snr_db : float

    Returns
    -------
    noise_sd, mean_signal_sd : float
        ``mean_signal_sd = mean_c std(y_clean[c], ddof=1)``;
        ``noise_sd = mean_signal_sd * 10 ** (-snr_db / 20)``.
    """
    msd = float(np.mean(np.std(y_clean, axis=1, ddof=1)))
    return msd * 10 ** (-snr_db / 20), msd


def mne_fixed_gain(info, T_dev2head_mm: np.ndarray, T_tkras2head_mm: np.ndarray,
                   subjects_dir: Path, pos_tkras_mm: np.ndarray, ori_tkras: np.ndarray,
                   bem_solution=None):
    """MNE-Python single-layer-BEM gain of fixed dipoles, in the units of the SPM datasets.

    Parameters
    ----------
    info : mne.Info
        Sensor description (device frame); its ``dev_head_t`` is set from ``T_dev2head_mm``.
    T_dev2head_mm, T_tkras2head_mm : (4, 4) arrays
        Rigid transforms (mm).
    subjects_dir : Path
        FreeSurfer SUBJECTS_DIR holding ``sub-01/bem/inner_skull.surf``.
    pos_tkras_mm : (n, 3) array
        Dipole positions, tkRAS mm.
    ori_tkras : (n, 3) array
        Unit orientations in the MRI frame.
    bem_solution : mne.bem.ConductorModel, optional
        Reused if given.

    Returns
    -------
    G : (n_meg_channels, n) array
        fT per nA m for magnetometers/axial gradiometers, fT/mm per nA m for planar gradiometers,
        rows in the order of ``info``'s channels.
    bem_solution : mne.bem.ConductorModel
    """
    import mne
    from mne.io.constants import FIFF

    info = info.copy()
    T = T_dev2head_mm.copy()
    T[:3, 3] *= 1e-3
    with info._unlock():
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", T)
    H = np.linalg.inv(T_tkras2head_mm)
    H[:3, 3] *= 1e-3
    trans = mne.transforms.Transform("head", "mri", H)
    if bem_solution is None:
        model = mne.make_bem_model(SUBJECT, ico=BEM_ICO, conductivity=BEM_CONDUCTIVITY,
                                   subjects_dir=subjects_dir, verbose=False)
        bem_solution = mne.make_bem_solution(model, verbose=False)
    pos = np.asarray(pos_tkras_mm, float) * 1e-3
    ori = np.asarray(ori_tkras, float)
    src = mne.setup_volume_source_space(pos=dict(rr=pos, nn=ori), verbose=False)
    fwd = mne.make_forward_solution(info, trans, src, bem_solution, meg=True, eeg=False,
                                    mindist=0.0, n_jobs=1, verbose=False)
    if fwd["nsource"] != len(pos):
        raise RuntimeError("MNE dropped sources outside the inner skull")
    if fwd["coord_frame"] != FIFF.FIFFV_COORD_HEAD:
        raise RuntimeError("unexpected forward coordinate frame")
    ori_head = apply_affine(np.linalg.inv(trans["trans"]), ori, move=False)
    nn = fwd["source_nn"].reshape(len(pos), 3, 3)  # free orientations, head frame
    G3 = fwd["sol"]["data"].reshape(fwd["nchan"], len(pos), 3)
    coef = np.einsum("sij,sj->si", nn, ori_head)  # orientation in the free basis
    G = np.einsum("csi,si->cs", G3, coef)  # T / (A m) or T/m / (A m)
    names = fwd["sol"]["row_names"]
    if names != [info["ch_names"][i] for i in mne.pick_types(info, meg=True)]:
        raise RuntimeError("forward rows are not in the channel order")
    planar = np.array([info["chs"][info["ch_names"].index(n)]["coil_type"]
                       == FIFF.FIFFV_COIL_VV_PLANAR_T1 for n in names])
    scale = np.where(planar, 1e15 * 1e-9 * 1e-3, 1e15 * 1e-9)  # -> fT(/mm) per nA m
    return G * scale[:, None], bem_solution


# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------
def write_anatomy(fs_dir: Path, fs5: dict, mne_fs: dict) -> dict:
    """Write the FreeSurfer subject ``fs_dir`` (= SUBJECTS_DIR/sub-01). Returns diagnostics."""
    import nibabel as nib
    from nibabel.freesurfer import write_annot, write_geometry, write_morph_data

    stamp = "created by lameg tools/make_test_data.py from nilearn fsaverage5"
    for sub in ("surf", "mri", "bem", "label"):
        (fs_dir / sub).mkdir(parents=True, exist_ok=True)
    vi = volume_info(C_RAS)
    diag: dict = {}
    for hemi in HEMIS:
        h = fs5[hemi]
        for key, name in (("white", "white"), ("pial", "pial"), ("inflated", "inflated"),
                          ("sphere", "sphere"), ("sphere", "sphere.reg")):
            write_geometry(fs_dir / "surf" / f"{hemi}.{name}", h[key], h["faces"],
                           create_stamp=stamp, volume_info=vi)
        for key in ("curv", "sulc", "thickness"):
            write_morph_data(fs_dir / "surf" / f"{hemi}.{key}", h[key], fnum=len(h["faces"]))
        med = medial_wall(h["white"], h["pial"])
        labels, ctab, names = synthetic_parcellation(h["sphere"], h["white"], med)
        write_annot(fs_dir / "label" / f"{hemi}.aparc.annot", labels, ctab, names,
                    fill_ctab=False)
        diag[hemi] = {"n_medial_wall": int(med.sum()),
                      "parcel_sizes": np.bincount(labels)[1:].tolist()}

    v2r, tkr = conformed_affines(C_RAS)
    vol = make_orig_volume(tkr)
    img = nib.MGHImage(vol, v2r)
    nib.save(img, fs_dir / "mri" / "orig.mgz")

    bem_stamp = "created by lameg tools/make_test_data.py from mne fsaverage"
    write_geometry(fs_dir / "bem" / "inner_skull.surf", mne_fs["iskull_rr"].astype(np.float32),
                   mne_fs["iskull_tris"], create_stamp=bem_stamp, volume_info=vi)
    write_geometry(fs_dir / "bem" / "outer_skin.surf", mne_fs["scalp_rr"].astype(np.float32),
                   mne_fs["scalp_tris"], create_stamp=bem_stamp, volume_info=vi)
    # the scalp as MNE stores it (tkRAS = fsaverage surface RAS, so the file is unchanged)
    shutil.copyfile(mne_fsaverage_dir() / "fsaverage-head.fif",
                    fs_dir / "bem" / f"{SUBJECT}-head.fif")
    return diag


def write_participants(path: Path, fid_scanner: np.ndarray) -> None:
    """laMEG fiducial table (tab-separated; cells 'x,y,z' in scanner RAS mm)."""
    cells = [",".join(f"{v:.6f}" for v in row) for row in fid_scanner]
    path.write_text("subj_id\tnas\tlpa\trpa\n" + "\t".join([SUBJECT, *cells]) + "\n")


def _meeg_writer():
    try:
        from lameg.io.spm_meeg import write_meeg
    except ImportError as err:  # pragma: no cover - depends on the I/O module
        raise SystemExit(f"lameg.io.spm_meeg.write_meeg is not available ({err})") from err
    return write_meeg


def fiducials_struct(fid_head_mm: np.ndarray, headshape_mm: np.ndarray) -> dict:
    """SPM ``D.fiducials`` (FieldTrip headshape, head frame, mm)."""
    return {"pnt": headshape_mm, "fid": {"pnt": fid_head_mm, "label": ["nas", "lpa", "rpa"]},
            "unit": "mm"}


def build(out: Path, verbose: bool = True) -> dict:
    """Write the whole test participant into ``out``; return the ground truth dictionary."""
    import mne

    t_start = time.perf_counter()

    def log(msg):
        if verbose:
            print(f"[{time.perf_counter() - t_start:6.1f} s] {msg}", flush=True)

    mne.set_log_level("ERROR")
    out.mkdir(parents=True, exist_ok=True)
    fs5 = load_fsaverage5()
    mne_fs = load_mne_fsaverage()

    # ---- anatomy ---------------------------------------------------------------------------
    subjects_dir = out / "fs"
    fs_dir = subjects_dir / SUBJECT
    anat_diag = write_anatomy(fs_dir, fs5, mne_fs)
    log("FreeSurfer subject written")
    for hemi in HEMIS:
        pial = fs5[hemi]["pial"]
        ins = inside_mesh(pial, mne_fs["iskull_rr"], mne_fs["iskull_tris"])
        assert ins.all(), f"{hemi}: {np.sum(~ins)} pial vertices outside the inner skull"
        anat_diag[hemi]["pial_to_inner_skull_min_mm"] = float(
            surface_distance(pial, mne_fs["iskull_rr"]).min())
    log("cortex inside the inner skull")

    # ---- frames and fiducials ---------------------------------------------------------------
    v2r, tkr = conformed_affines(C_RAS)
    tk2sc = v2r @ np.linalg.inv(tkr)  # tkRAS -> scanner RAS (a translation by C_RAS)
    fid_tkras = mne_fs["fid_tkras"]
    fid_scanner = apply_affine(tk2sc, fid_tkras)
    write_participants(out / "participants.tsv", fid_scanner)
    T_tk2head = head_frame(fid_tkras)
    T_sc2head = T_tk2head @ np.linalg.inv(tk2sc)
    fid_head = apply_affine(T_tk2head, fid_tkras)
    scalp_head = apply_affine(T_tk2head, mne_fs["scalp_rr"])
    # head shape: the scalp above the level 20 mm below the fiducial plane, nose included
    cen_z = scalp_head[mne_fs["scalp_tris"], 2].mean(axis=1)
    hsp = sample_surface(scalp_head, mne_fs["scalp_tris"], N_HEADSHAPE,
                         np.random.default_rng([SEED, STREAMS["headshape"]]),
                         mask_tris=cen_z > -20.0)

    # ---- sensors ------------------------------------------------------------------------------
    sensors = {}
    for kind in ("ctf275", "neuromag"):
        info = canonical_info(kind)
        T_dev = rigid_transform(**{"rot_deg": DEV2HEAD[kind]["rot_deg"],
                                   "trans": DEV2HEAD[kind]["trans_mm"]})
        grad = grad_struct(info, T_dev, kind)
        ins = inside_mesh(grad["coilpos"], scalp_head, mne_fs["scalp_tris"])
        assert not ins.any(), f"{kind}: {ins.sum()} coils inside the scalp"
        dist = surface_distance(grad["coilpos"], scalp_head)
        sensors[kind] = {"info": info, "T_dev2head": T_dev, "grad": grad,
                         "coil_scalp_min_mm": float(dist.min()),
                         "coil_scalp_median_mm": float(np.median(dist))}
    log("sensors placed outside the scalp")

    # ---- sources and forward ----------------------------------------------------------------
    columns = SOURCE_COLUMNS
    col_diag = {k: check_source_column(fs5, mne_fs["iskull_rr"], mne_fs["iskull_tris"], h, v)
                for k, (h, v) in columns.items()}
    t = time_axis()
    moment = burst(t, **BURST)
    src = {}
    for name, key, layer in (("ctf_pial", "ctf", "pial"), ("ctf_white", "ctf", "white"),
                             ("neuromag", "neuromag", "pial")):
        hemi, vtx = columns[key]
        src[name] = {"hemi": hemi, "vertex": int(vtx), "layer": layer,
                     "pos_tkras": fs5[hemi][layer][vtx].astype(float),
                     "ori_mri": link_vectors(fs5[hemi]["white"][vtx:vtx + 1],
                                             fs5[hemi]["pial"][vtx:vtx + 1])[0]}
    bem_sol = None
    gains = {}
    for kind, names in (("ctf275", ["ctf_pial", "ctf_white"]), ("neuromag", ["neuromag"])):
        G, bem_sol = mne_fixed_gain(sensors[kind]["info"], sensors[kind]["T_dev2head"], T_tk2head,
                                    subjects_dir, np.stack([src[n]["pos_tkras"] for n in names]),
                                    np.stack([src[n]["ori_mri"] for n in names]), bem_sol)
        for i, n in enumerate(names):
            gains[n] = G[:, i]
    log("MNE forward computed")

    # ---- MEG datasets -----------------------------------------------------------------------
    write_meeg = _meeg_writer()
    spm_dir = out / SUBJECT / "meg" / SESSION / "spm"
    fif_dir = out / SUBJECT / "meg" / SESSION / "fif"
    spm_dir.mkdir(parents=True, exist_ok=True)
    fif_dir.mkdir(parents=True, exist_ok=True)
    truth: dict = {
        "description": "Ground truth of the simulated MEG datasets of the lameg test participant "
                       "(see test_data/README.md).",
        "seed": SEED, "streams": STREAMS,
        "software": {"mne": mne.__version__, "numpy": np.__version__},
        "frames": {
            "mri_tkras": "FreeSurfer surface RAS (tkRAS) of sub-01, mm; = fsaverage surface RAS",
            "mri_scanner": "scanner RAS of mri/orig.mgz, mm; = tkRAS + c_ras",
            "head": "MEG head frame (Neuromag/MNE convention from the fiducials), mm",
            "device": "MNE canonical sensor frame of each system, mm",
        },
        "c_ras_mm": C_RAS.tolist(),
        "T_tkras_to_scanner": tk2sc.tolist(),
        "T_tkras_to_head": T_tk2head.tolist(),
        "T_scanner_to_head": T_sc2head.tolist(),
        "fiducials": {"labels": ["nas", "lpa", "rpa"], "tkras_mm": fid_tkras.tolist(),
                      "scanner_mm": fid_scanner.tolist(), "head_mm": fid_head.tolist()},
        "anatomy": anat_diag,
        "source_columns": col_diag,
        "sampling": {"fsample_hz": FSAMPLE, "time_onset_s": TIME_ONSET,
                     "n_samples": N_SAMPLES},
        "waveform": {**BURST, "formula": "amplitude_nAm * exp(-(t - t0_s)^2 / (2 sigma_s^2)) * "
                                         "cos(2 pi freq_hz (t - t0_s)), identical in every trial"},
        "forward": {"software": f"MNE-Python {mne.__version__}", "model": "single-layer BEM",
                    "bem_surface": "fs/sub-01/bem/inner_skull.surf", "bem_ico": BEM_ICO,
                    "conductivity_S_per_m": list(BEM_CONDUCTIVITY),
                    "coil_integration": "MNE 'accurate' coil definitions (make_forward_solution)",
                    "sensor_file_coils": f"MNE '{COIL_ACCURACY}' coil definitions",
                    "gain_units": "fT (MEGGRAD, MEGMAG) or fT/mm (MEGPLANAR) per nA m"},
        "noise": "white Gaussian, independent per trial and channel (all channels, as "
                 "spm_eeg_simulate); noise_sd = mean_c std(Yclean_c, ddof=1) * 10^(-snr_db/20)",
        "npz": {"time_s": "sample times (s)", "moment_nAm": "source moment per sample (nA m)",
                "gain_<source>": "MNE fixed-orientation gain of the source (fT or fT/mm per nA m),"
                                 " MEG channels in the dataset's order"},
        "datasets": {},
    }
    npz: dict[str, np.ndarray] = {"time_s": t, "moment_nAm": moment}

    def source_truth(s: dict, T_dev: np.ndarray) -> dict:
        hemi, vtx = s["hemi"], s["vertex"]
        n_lh_kept = int((~medial_wall(fs5["lh"]["white"], fs5["lh"]["pial"])).sum())
        kept = np.flatnonzero(~medial_wall(fs5[hemi]["white"], fs5[hemi]["pial"]))
        nodeep = int(np.searchsorted(kept, vtx))
        assert kept[nodeep] == vtx
        ori_head = apply_affine(T_tk2head, s["ori_mri"][None], move=False)[0]
        return {
            "hemi": hemi, "vertex": vtx, "layer": s["layer"],
            "nodeep_index": nodeep,
            "combined_index": nodeep + (n_lh_kept if hemi == "rh" else 0),
            "pos_tkras_mm": s["pos_tkras"].tolist(),
            "pos_scanner_mm": apply_affine(tk2sc, s["pos_tkras"][None])[0].tolist(),
            "pos_head_mm": apply_affine(T_tk2head, s["pos_tkras"][None])[0].tolist(),
            "pos_device_mm": apply_affine(np.linalg.inv(T_dev), apply_affine(
                T_tk2head, s["pos_tkras"][None]))[0].tolist(),
            "orientation": "link vector unit(white - pial), inward",
            "ori_mri": s["ori_mri"].tolist(),
            "ori_head": ori_head.tolist(),
            "amplitude_nAm": BURST["amplitude_nAm"],
        }

    specs = [
        ("ctf_pial", "sim_ctf_pial", "ctf275", ["ctf_pial"], "ctf", "burst"),
        ("ctf_white", "sim_ctf_white", "ctf275", ["ctf_white"], "ctf", "burst"),
        ("ctf_noise", "sim_ctf_noise", "ctf275", [], "ctf", "noise"),
        ("neuromag", "sim_neuromag_pial", "neuromag", ["neuromag"], "neuromag", "burst"),
    ]
    noise_ref = None
    datasets = {}
    for key, base, kind, srcs, snr_key, cond in specs:
        sens = sensors[kind]
        grad = sens["grad"]
        n_meg = len(grad["label"])
        y_clean = np.zeros((n_meg, N_SAMPLES))
        for s in srcs:
            y_clean += np.outer(gains[s], moment)
        if srcs:
            snr = SNR_DB[snr_key]
            noise_sd, msd = spm_noise_level(y_clean, snr)
        else:
            snr, msd = None, 0.0
            noise_sd = noise_ref
        if key == "ctf_pial":
            noise_ref = noise_sd
        with_eog = kind == "ctf275"
        n_chan = n_meg + int(with_eog)
        n_tr = N_TRIALS[key]
        rng = np.random.default_rng([SEED, STREAMS["noise_" + key if key.startswith("ctf")
                                                    else "noise_neuromag"]])
        noise = rng.standard_normal((n_tr, n_chan, N_SAMPLES)) * noise_sd
        data = noise.transpose(1, 2, 0).copy()
        data[:n_meg] += y_clean[:, :, None]
        labels = list(grad["label"]) + ([EOG_NAME] if with_eog else [])
        if kind == "ctf275":
            chantypes = ["MEGGRAD"] * n_meg
            chanunits = ["fT"] * n_meg
        else:
            chantypes = ["MEGPLANAR" if u == "T/mm" else "MEGMAG" for u in grad["chanunit"]]
            chanunits = ["fT/mm" if u == "T/mm" else "fT" for u in grad["chanunit"]]
        if with_eog:
            chantypes.append("EOG")
            chanunits.append("uV")
        fid_struct = fiducials_struct(fid_head, hsp)
        write_meeg(spm_dir / f"{base}.mat", data.astype(np.float32), fsample=FSAMPLE,
                   time_onset=TIME_ONSET, chanlabels=labels, chantypes=chantypes,
                   chanunits=chanunits, sensors={"meg": grad}, fiducials=fid_struct,
                   conditions=[cond] * n_tr)
        _make_header_portable(spm_dir / f"{base}.mat")
        datasets[key] = (data, labels, chantypes, sens)
        for sname in srcs:
            npz[f"gain_{sname}"] = gains[sname]
        truth["datasets"][key] = {
            "file": f"{base}.mat", "system": kind, "n_channels": n_chan, "n_meg_channels": n_meg,
            "n_trials": n_tr, "condition": cond, "channel_types": sorted(set(chantypes)),
            "snr_db": snr, "mean_signal_sd": msd, "noise_sd": noise_sd,
            "noise_stream": int(STREAMS["noise_" + key if key.startswith("ctf")
                                        else "noise_neuromag"]),
            "T_device_to_head": sens["T_dev2head"].tolist(),
            "device_to_head": DEV2HEAD[kind],
            "coil_to_scalp_min_mm": sens["coil_scalp_min_mm"],
            "coil_to_scalp_median_mm": sens["coil_scalp_median_mm"],
            "sources": [source_truth(src[s], sens["T_dev2head"]) for s in srcs],
            "clean_signal": " + ".join(f"outer(ground_truth.npz['gain_{sname}'], "
                                       "ground_truth.npz['moment_nAm'])" for sname in srcs)
                            or "0",
        }
        log(f"{base} written")

    # ---- MNE epochs (.fif) of the CTF pial dataset and the head<->MRI transform ---------------
    data, labels, chantypes, sens = datasets["ctf_pial"]
    info = sens["info"].copy()
    Td = sens["T_dev2head"].copy()
    Td[:3, 3] *= 1e-3
    eog_info = mne.create_info([EOG_NAME], FSAMPLE, ["eog"])
    with info._unlock():
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", Td)
    montage = mne.channels.make_dig_montage(nasion=fid_head[0] * 1e-3, lpa=fid_head[1] * 1e-3,
                                            rpa=fid_head[2] * 1e-3, hsp=hsp * 1e-3,
                                            coord_frame="head")
    with info._unlock():
        info["dig"] = montage.dig
    meg = mne.EpochsArray(data[:-1].transpose(2, 0, 1) * 1e-15, info, tmin=TIME_ONSET,
                          event_id={"burst": 1}, verbose=False)
    eog = mne.EpochsArray(data[-1:].transpose(2, 0, 1) * 1e-6, eog_info, tmin=TIME_ONSET,
                          event_id={"burst": 1}, verbose=False)
    epochs = meg.add_channels([eog], force_update_info=True)
    epochs.save(fif_dir / f"{SUBJECT}_{SESSION}_task-sim_ctf-pial-epo.fif", overwrite=True,
                fmt="single", verbose=False)
    H = np.linalg.inv(T_tk2head)
    H[:3, 3] *= 1e-3
    mne.write_trans(fif_dir / f"{SUBJECT}-trans.fif", mne.transforms.Transform("head", "mri", H),
                    overwrite=True)
    log("fif written")

    # ---- ground truth ------------------------------------------------------------------------
    with open(spm_dir / "ground_truth.json", "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    np.savez(spm_dir / "ground_truth.npz", **npz)
    write_checksums(out)
    log("done")
    return truth


def write_checksums(out: Path) -> None:
    """``SHA256SUMS`` (sha256sum format) of every file below ``out`` except itself and README."""
    import hashlib

    lines = []
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = f.relative_to(out).as_posix()
        if rel in ("SHA256SUMS", "README.md"):
            continue
        lines.append(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {rel}\n")
    (out / "SHA256SUMS").write_text("".join(lines))


def _make_header_portable(fname: Path) -> None:
    """Store ``D.path`` as ``'.'`` so the committed headers do not depend on where they were made.

    SPM resets ``path`` when it loads a dataset (and lameg looks for the ``.dat`` next to the
    header first), so the stored value is informative only.
    """
    from lameg.io.matfile import load_mat, save_mat

    header = load_mat(fname)["D"]
    header["path"] = "."
    save_mat(fname, {"D": header}, version="7")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "test_data",
                   help="output folder (default: the repository's test_data/)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    build(args.out, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
