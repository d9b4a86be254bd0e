"""3-D face scan -> MRI co-registration (lameg.util.coregister_3d_scan_mri) and the STL reader.

The scans are synthetic but built on the test participant's real scalp
(``bem/outer_skin.surf``): its front/upper part (face, forehead, crown) is subdivided into a
dense mesh, jittered with 0.5 mm Gaussian noise and moved into a "scanner" frame by a rigid
transform of 35 degrees and about 150 mm; the fiducials marked on it are the participant's true
fiducials (``participants.tsv``) with about 3 mm of marking error, moved the same way.
The template fiducials reach the MRI through a fake fsaverage5 whose cortex is the participant's
under a known affine (a 6 % scale, 4 degrees, 7 mm), so they start 5-10 mm off, as MNI
fiducials do on a real head.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lameg import util
from lameg.datasets import copy_test_participant
from lameg.exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)
from lameg.forward.coreg import apply_transform
from lameg.forward.headshape import (
    MNI_FIDUCIALS,
    atlas_to_subject_affine,
    grid_subsample,
    rotation_angle_deg,
)
from lameg.io import freesurfer as fsio
from lameg.io.stl import read_stl, write_stl

LABELS = ("lpa", "nas", "rpa")


# ---------------------------------------------------------------------------------------------
# synthetic scans
# ---------------------------------------------------------------------------------------------


def _subdivide(v, f):
    """Midpoint subdivision (each triangle -> 4, shared edge midpoints): same surface, denser."""
    e = np.sort(np.vstack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    ue, inv = np.unique(e, axis=0, return_inverse=True)
    m = len(v) + inv.ravel().reshape(3, -1).T
    nv = np.vstack([v, v[ue].mean(axis=1)])
    a, b, c = f.T
    m01, m12, m20 = m.T
    nf = np.vstack([np.c_[a, m01, m20], np.c_[m01, b, m12], np.c_[m20, m12, c],
                    np.c_[m01, m12, m20]])
    return nv, nf


def _rigid(axis, deg, shift):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    out = np.eye(4)
    out[:3, :3] = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k
    out[:3, 3] = shift
    return out


#: scanner RAS (MRI) -> scan frame: what a hand-held scanner's own frame typically is
MRI_TO_SCAN = _rigid([0.3, -1.0, 0.5], 35.0, [120.0, -80.0, 60.0])
MARKING_ERROR = np.array([[2.0, -1.5, 1.0], [-1.0, 2.0, -2.0], [1.5, 1.0, 2.5]])   # lpa, nas, rpa


def _scalp(subj_dir):
    v, f = fsio.read_surface(subj_dir / "bem" / "outer_skin.surf")
    tk2sc = fsio.tkras_to_scanner(subj_dir / "mri" / "orig.mgz")[0]
    return fsio.apply_affine(v, tk2sc), np.asarray(f, np.int64), tk2sc


def _face_scan(subj_dir, n_sub=2, noise=0.5, outliers=False, seed=0):
    """(vertices, faces) of a noisy face cap in scanner RAS mm (not yet moved to the scan)."""
    v, f, tk2sc = _scalp(subj_dir)
    cen = fsio.apply_affine(v[f].mean(axis=1), np.linalg.inv(tk2sc))      # tkRAS
    sel = (cen[:, 1] > -20.0) & (cen[:, 2] > -90.0)                      # front and upper part
    used = np.unique(f[sel])
    remap = np.full(len(v), -1)
    remap[used] = np.arange(len(used))
    cv, cf = v[used], remap[f[sel]]
    for _ in range(n_sub):
        cv, cf = _subdivide(cv, cf)
    rng = np.random.default_rng(seed)
    cv = cv + rng.normal(0.0, noise, cv.shape)
    if outliers:
        # a "shoulder": a 120 x 80 mm sheet 30 mm below the bottom of the MRI scalp mesh
        gx, gy = np.meshgrid(np.linspace(-60, 60, 41), np.linspace(-40, 40, 27))
        sv = np.c_[gx.ravel(), gy.ravel(), np.full(gx.size, v[:, 2].min() - 30.0)]
        sv += rng.normal(0.0, noise, sv.shape)
        i = np.arange(41 * 26).reshape(26, 41)[:, :-1].ravel()
        sf = np.vstack([np.c_[i, i + 1, i + 42], np.c_[i, i + 42, i + 41]])
        cf = np.vstack([cf, sf + len(cv)])
        cv = np.vstack([cv, sv])
    return cv, cf


def _true_fiducials(p):
    fc = p.fid_coords
    return {k: np.asarray(fc[k], float) for k in LABELS}


def _marked_fiducials(p):
    """Fiducials as marked on the scan (scan frame, mm) and the same points in scanner RAS."""
    true = _true_fiducials(p)
    marked_mri = {k: true[k] + MARKING_ERROR[i] for i, k in enumerate(LABELS)}
    return {k: apply_transform(marked_mri[k], MRI_TO_SCAN)[0] for k in LABELS}, marked_mri


def _add_fsaverage5(subjects_dir, subj_dir, affine):
    """fsaverage5 = the participant's white surfaces under ``affine``, sphere.reg unchanged."""
    fs5 = Path(subjects_dir) / "fsaverage5" / "surf"
    fs5.mkdir(parents=True, exist_ok=True)
    for h in ("lh", "rh"):
        w, fw = fsio.read_surface(subj_dir / "surf" / f"{h}.white")
        fsio.write_surface(fs5 / f"{h}.white", fsio.apply_affine(w, affine), fw)
        shutil.copy(subj_dir / "surf" / f"{h}.sphere.reg", fs5)


#: fsaverage5's cortex = participant's under this affine, so MNI -> subject is its inverse
TEMPLATE_AFFINE = _rigid([1.0, 0.2, 0.0], 4.0, [3.0, -5.0, 4.0]) @ np.diag([1.06, 1.06, 1.06, 1])


@pytest.fixture
def participant(tmp_path):
    p = copy_test_participant(tmp_path / "data", datasets=[])
    subj_dir = p.subjects_dir / p.subj_id
    _add_fsaverage5(p.subjects_dir, subj_dir, TEMPLATE_AFFINE)
    return p, subj_dir


def _write_scan(path, subj_dir, units="mm", binary=True, **kw):
    v, f = _face_scan(subj_dir, **kw)
    scan = apply_transform(v, MRI_TO_SCAN)
    write_stl(path, scan * (1e-3 if units == "m" else 1.0), f, binary=binary)
    return scan, f


def _listing(folder):
    return sorted((str(q.relative_to(folder)), q.stat().st_mtime_ns)
                  for q in Path(folder).rglob("*"))


# ---------------------------------------------------------------------------------------------
# 1. a known transform is recovered
# ---------------------------------------------------------------------------------------------


def test_recovers_known_transform(participant, tmp_path):
    p, subj_dir = participant
    stl = tmp_path / "face.stl"
    scan, scan_f = _write_scan(stl, subj_dir, outliers=True)
    fid_scan, marked_mri = _marked_fiducials(p)
    out_dir = tmp_path / "figs"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lpa, rpa, nas = util.coregister_3d_scan_mri(
            p.subj_id, fid_scan["lpa"], fid_scan["rpa"], fid_scan["nas"], stl, out_dir=out_dir,
            subjects_dir=p.subjects_dir)
    got = {"lpa": lpa, "rpa": rpa, "nas": nas}
    true = _true_fiducials(p)
    for k in LABELS:
        assert got[k].shape == (3,)
        # The ICP does not use the fiducials, so the marked points come back where they were
        # marked, up to the transform's error at the fiducials: 0.5 mm Gaussian noise on
        # ~10^4 scan points leaves ~0.05 mm (measured 0.04 mm); 0.5 mm bounds it with margin.
        # A 1-2 mm tolerance would only be needed for the marking error itself.
        np.testing.assert_allclose(got[k], marked_mri[k], atol=0.5)
        # and the true fiducial within its marking error (~3 mm) plus that 0.5 mm
        assert np.linalg.norm(got[k] - true[k]) <= np.linalg.norm(MARKING_ERROR[LABELS.index(k)]) + 0.5

    # the transform written for MNE: head (scan frame, m) -> MRI (tkRAS, m)
    mne = pytest.importorskip("mne")
    _, _, tk2sc = _scalp(subj_dir)
    trans = mne.read_trans(subj_dir / "surf" / "head_to_mri-trans.fif")
    assert trans["from"] == mne.io.constants.FIFF.FIFFV_COORD_HEAD
    expected = np.linalg.inv(tk2sc) @ np.linalg.inv(MRI_TO_SCAN)
    expected[:3, 3] /= 1000.0
    err = trans["trans"] @ np.linalg.inv(expected)
    assert rotation_angle_deg(err) < 0.1          # measured 0.03 deg; brief asks < 1 deg
    np.testing.assert_allclose(trans["trans"][:3, 3], expected[:3, 3], atol=0.5e-3)

    # face_3d.gii: the whole scan (outliers too) in scanner RAS mm, faces as read from the STL
    img = nib.load(subj_dir / "surf" / "face_3d.gii")
    fv, ff = img.darrays[0].data, img.darrays[1].data
    sv, sf = read_stl(stl)
    assert fv.dtype == np.float32 and ff.dtype == np.int32
    np.testing.assert_array_equal(ff, sf)
    np.testing.assert_allclose(fv, apply_transform(sv, np.linalg.inv(MRI_TO_SCAN)), atol=0.5)

    # the three figures: the fit moves the scan onto the scalp
    for name in ("coreg-initial.png", "coreg-fit_fiducials.png", "coreg-fit_icp.png"):
        png = plt_imread(out_dir / name)
        assert png.shape[0] >= 500 and (png[..., :3] < 0.9).any(-1).mean() > 0.05


def plt_imread(path):
    from matplotlib.image import imread

    return imread(path)


def test_scan_in_metres_same_result(participant, tmp_path):
    p, subj_dir = participant
    fid_scan, marked_mri = _marked_fiducials(p)
    results = []
    for units in ("mm", "m"):
        stl = tmp_path / f"face_{units}.stl"
        _write_scan(stl, subj_dir, units=units, n_sub=1)
        # fiducials stay in mm with a scan in metres (laMEG's convention)
        results.append(np.stack(util.coregister_3d_scan_mri(
            p.subj_id, fid_scan["lpa"], fid_scan["rpa"], fid_scan["nas"], stl, dig_units=units,
            subjects_dir=p.subjects_dir)))
    # float32 coordinates in metres carry ~1e-5 mm; the ICP stops at 1e-3 mm steps
    np.testing.assert_allclose(results[1], results[0], atol=5e-3)
    np.testing.assert_allclose(results[0], np.stack([marked_mri[k] for k in ("lpa", "rpa", "nas")]),
                               atol=0.5)


def test_swapped_ears_warn(participant, tmp_path):
    """LPA and RPA exchanged: the fiducial fit turns the scan upside down and the ICP settles
    in that local minimum (median distance 2.3 mm instead of 0.34 mm); the fit started the
    other way round shows it, and the user is warned."""
    p, subj_dir = participant
    stl = tmp_path / "face.stl"
    _write_scan(stl, subj_dir, n_sub=1)
    fid_scan, _ = _marked_fiducials(p)
    with pytest.warns(UserWarning, match="lpa and rpa exchanged"):
        util.coregister_3d_scan_mri(p.subj_id, fid_scan["rpa"], fid_scan["lpa"], fid_scan["nas"],
                                    stl, subjects_dir=p.subjects_dir)


# ---------------------------------------------------------------------------------------------
# 2. the ICP agrees with MNE-Python's
# ---------------------------------------------------------------------------------------------


def test_icp_matches_mne(participant, tmp_path):
    """MNE's Coregistration, started from the same template fiducials, fits the same points.

    MNE pairs each point with the nearest vertex of its high-resolution head, so the scalp is
    given to both as ``bem/sub-01-head-dense.fif``: the face region of the participant's scalp
    subdivided three times (the same surface, vertices 1.2 mm apart; at 2.4 mm MNE's vertex
    pairing stalls 1.1 deg from the optimum). Our fit uses exact distances to that surface.
    """
    mne = pytest.importorskip("mne")
    from lameg import _facescan
    from lameg.forward.coreg import rigid_transform

    p, subj_dir = participant
    v, f, tk2sc = _scalp(subj_dir)
    # the face region only (20 mm beyond the scan on every side), which keeps MNE quick
    cen = fsio.apply_affine(v[f].mean(axis=1), np.linalg.inv(tk2sc))
    region = f[(cen[:, 1] > -40.0) & (cen[:, 2] > -110.0)]
    used = np.unique(region)
    remap = np.full(len(v), -1)
    remap[used] = np.arange(len(used))
    dv, df = v[used], remap[region]
    for _ in range(3):
        dv, df = _subdivide(dv, df)
    surf = dict(rr=fsio.apply_affine(dv, np.linalg.inv(tk2sc)) / 1000.0, tris=df,
                ntri=len(df), np=len(dv), coord_frame=mne.io.constants.FIFF.FIFFV_COORD_MRI,
                id=mne.io.constants.FIFF.FIFFV_BEM_SURF_ID_HEAD, sigma=0.33)
    mne.write_bem_surfaces(subj_dir / "bem" / f"{p.subj_id}-head-dense.fif", [surf])
    stl = tmp_path / "face.stl"
    _write_scan(stl, subj_dir, n_sub=1)
    fid_scan, _ = _marked_fiducials(p)
    util.coregister_3d_scan_mri(p.subj_id, fid_scan["lpa"], fid_scan["rpa"], fid_scan["nas"],
                                stl, subjects_dir=p.subjects_dir)
    ours = mne.read_trans(subj_dir / "surf" / "head_to_mri-trans.fif")["trans"]

    # MNE: the same template fiducials (tkRAS m), the same evenly sampled scan points (m)
    source = _facescan.locate_mri_fiducial_source(subj_dir, p.subjects_dir)
    mri_fids = _facescan.mri_fiducials(source, subj_dir, tk2sc)
    tk = {k: fsio.apply_affine(mri_fids[k], np.linalg.inv(tk2sc)) / 1000.0 for k in LABELS}
    fids_mri = mne.channels.make_dig_montage(lpa=tk["lpa"], nasion=tk["nas"], rpa=tk["rpa"],
                                             coord_frame="mri").dig
    pts = grid_subsample(read_stl(stl)[0]) / 1000.0
    montage = mne.channels.make_dig_montage(
        hsp=pts, lpa=fid_scan["lpa"] / 1000.0, rpa=fid_scan["rpa"] / 1000.0,
        nasion=fid_scan["nas"] / 1000.0, coord_frame="head")
    info = mne.create_info(1, 1000.0, "eeg")
    with info._unlock():           # laMEG sets the digitisation the same way
        info["dig"] = montage.dig
    coreg = mne.coreg.Coregistration(info, p.subj_id, p.subjects_dir, fiducials=fids_mri,
                                     on_defects="ignore")   # an open face patch, as laMEG
    coreg.fit_fiducials(lpa_weight=1.0, nasion_weight=1.0, rpa_weight=1.0, verbose=False)
    # the fiducial fit is the same least-squares problem: equal to 1 micrometre
    scan_fid = np.stack([fid_scan[k] for k in LABELS])
    t_fid = np.linalg.inv(tk2sc) @ rigid_transform(scan_fid,
                                                   np.stack([mri_fids[k] for k in LABELS]))
    t_fid[:3, 3] /= 1000.0
    np.testing.assert_allclose(coreg.trans["trans"], t_fid, atol=1e-6)
    truth = np.linalg.inv(tk2sc) @ np.linalg.inv(MRI_TO_SCAN)
    truth[:3, 3] /= 1000.0
    # MNE's own stopping rule (a step under 0.2 mm and 0.2 deg), which laMEG relies on, ends
    # its point-to-vertex ICP long before it converges: here after fit_icp(n_iterations=50)
    # the rotation is 2.33 deg from the truth (the fiducial fit's was 2.29 deg). One MNE
    # iteration per call, until a step moves the fiducials by less than 1 micrometre, is
    # MNE's ICP run to convergence
    for _ in range(300):
        before = coreg.trans["trans"]
        coreg.fit_icp(n_iterations=1, lpa_weight=0.0, nasion_weight=0.0, rpa_weight=0.0,
                      verbose=False)
        step = apply_transform(scan_fid / 1000.0, coreg.trans["trans"] @ np.linalg.inv(before))
        if np.abs(step - scan_fid / 1000.0).max() < 1e-6:
            break
    theirs = coreg.trans["trans"]
    angle = rotation_angle_deg(ours @ np.linalg.inv(theirs))
    at_fids = np.linalg.norm(apply_transform(scan_fid / 1000.0, ours)
                             - apply_transform(scan_fid / 1000.0, theirs), axis=1) * 1000.0
    print(f"lameg vs MNE ICP: {angle:.3f} deg, {at_fids.round(3)} mm at the fiducials; vs "
          f"truth: lameg {rotation_angle_deg(ours @ np.linalg.inv(truth)):.3f} deg, MNE "
          f"{rotation_angle_deg(theirs @ np.linalg.inv(truth)):.3f} deg")
    # The difference is MNE's: pairing ~1,400 points with vertices 1.2 mm apart leaves its
    # optimum 0.15 deg from the truth, ours 0.04 deg (measured; lameg vs MNE 0.16 deg,
    # 0.16-0.31 mm at the fiducials). The bounds are about twice the measured values.
    assert angle < 0.3
    assert at_fids.max() < 0.6
    assert rotation_angle_deg(ours @ np.linalg.inv(truth)) < 0.1
    assert rotation_angle_deg(theirs @ np.linalg.inv(truth)) < 0.3


def test_scalp_preference(participant):
    """The most detailed head first: -head-dense.fif, lh.seghead, then outer_skin.surf."""
    from lameg import _facescan

    p, subj_dir = participant
    v, f, tk2sc = _scalp(subj_dir)
    name = _facescan.scalp_surface(subj_dir, p.subj_id)[2]
    assert name == "scalp"
    tk = fsio.apply_affine(v, np.linalg.inv(tk2sc))
    fsio.write_surface(subj_dir / "surf" / "lh.seghead", tk + [0.0, 0.0, 1.0], f)
    sv, sf, name = _facescan.scalp_surface(subj_dir, p.subj_id)
    assert name == "lh.seghead"
    np.testing.assert_allclose(sv, v + [0.0, 0.0, 1.0], atol=1e-4)      # scanner RAS mm
    mne = pytest.importorskip("mne")
    surf = dict(rr=tk / 1000.0 + [0.0, 0.0, 0.002], tris=f, ntri=len(f), np=len(v),
                coord_frame=mne.io.constants.FIFF.FIFFV_COORD_MRI,
                id=mne.io.constants.FIFF.FIFFV_BEM_SURF_ID_HEAD, sigma=0.33)
    mne.write_bem_surfaces(subj_dir / "bem" / f"{p.subj_id}-head-dense.fif", [surf])
    sv, sf, name = _facescan.scalp_surface(subj_dir, p.subj_id)
    assert name == f"{p.subj_id}-head-dense.fif"
    np.testing.assert_allclose(sv, v + [0.0, 0.0, 2.0], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# template fiducials
# ---------------------------------------------------------------------------------------------


def test_mni_fiducials_are_mne_values():
    mne = pytest.importorskip("mne")
    fname = Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-fiducials.fif"
    pts, frame = mne.io.read_fiducials(fname)
    assert frame == mne.io.constants.FIFF.FIFFV_COORD_MRI
    ident = {1: "lpa", 2: "nas", 3: "rpa"}
    for d in pts:
        np.testing.assert_allclose(MNI_FIDUCIALS[ident[int(d["ident"])]],
                                   d["r"].astype(np.float64) * 1000.0, rtol=0, atol=1e-9)


def test_template_fiducials_fsaverage_and_talairach(participant):
    """The two routes into the MRI, against the known affine and against MNE's reader."""
    mne = pytest.importorskip("mne")
    from lameg import _facescan

    p, subj_dir = participant
    _, _, tk2sc = _scalp(subj_dir)
    mni = np.stack([MNI_FIDUCIALS[k] for k in LABELS])
    # fsaverage route: cortex matched through sphere.reg recovers the affine exactly here
    src = _facescan.locate_mri_fiducial_source(subj_dir, p.subjects_dir)
    assert src[0] == "fsaverage"
    got = _facescan.mri_fiducials(src, subj_dir, tk2sc)
    want = fsio.apply_affine(fsio.apply_affine(mni, np.linalg.inv(TEMPLATE_AFFINE)), tk2sc)
    np.testing.assert_allclose(np.stack([got[k] for k in LABELS]), want, atol=1e-6)
    # a talairach.xfm takes precedence, and reads as MNE reads it
    xfm = subj_dir / "mri" / "transforms" / "talairach.xfm"
    xfm.parent.mkdir(parents=True)
    ras_mni = _rigid([0.2, 0.1, 1.0], 7.0, [-2.0, 9.0, -12.0]) @ np.diag([0.95, 1.02, 1.1, 1])
    rows = "\n".join(" ".join(f"{x:.10f}" for x in r) for r in ras_mni[:3])
    xfm.write_text("MNI Transform File\n% tkregister2\n\nTransform_Type = Linear;\n"
                   f"Linear_Transform =\n{rows};\n")
    src = _facescan.locate_mri_fiducial_source(subj_dir, p.subjects_dir)
    assert src[0] == "talairach"
    got = _facescan.mri_fiducials(src, subj_dir, tk2sc)
    ref = mne.coreg.get_mni_fiducials(p.subj_id, p.subjects_dir, verbose=False)
    ref = {ident: d["r"] for d, ident in zip(ref, ("lpa", "nas", "rpa"))}
    for k in LABELS:
        # MNE keeps the fiducials in float32 metres: 1e-4 mm
        np.testing.assert_allclose(got[k], fsio.apply_affine(ref[k] * 1000.0, tk2sc), atol=1e-4)


def test_atlas_affine_is_least_squares():
    rng = np.random.default_rng(3)
    sph = rng.normal(size=(3000, 3))
    sph *= 100.0 / np.linalg.norm(sph, axis=1, keepdims=True)
    cortex = sph * np.array([0.7, 0.9, 0.6]) + rng.normal(0, 3.0, sph.shape)
    a = _rigid([0, 0, 1], 10.0, [5, 6, 7]) @ np.diag([1.1, 0.9, 1.0, 1.0])
    subj = fsio.apply_affine(cortex, a) + rng.normal(0, 1.0, sph.shape)
    est, rms = atlas_to_subject_affine([(cortex, sph)], [(subj, sph * 1.01)])
    np.testing.assert_allclose(est, a, atol=0.05)
    assert 1.5 < rms < 1.9          # the 1 mm per-axis noise: sqrt(3) = 1.73 mm


# ---------------------------------------------------------------------------------------------
# 3. STL reader
# ---------------------------------------------------------------------------------------------


def test_stl_binary_equals_ascii_and_vtk(tmp_path, subjects_dir):
    pv = pytest.importorskip("pyvista")
    vtk = pytest.importorskip("vtk")
    v, f = fsio.read_surface(subjects_dir / "sub-01" / "bem" / "outer_skin.surf")
    mesh = pv.PolyData(v, np.c_[np.full(len(f), 3), f].ravel())
    files = {"pv_bin": True, "pv_ascii": False}
    for name, binary in files.items():                 # VTK's writers (independent)
        mesh.save(tmp_path / f"{name}.stl", binary=binary)
    write_stl(tmp_path / "ours_bin.stl", v, f)
    write_stl(tmp_path / "ours_ascii.stl", v, f, binary=False)
    ref_v, ref_f = read_stl(tmp_path / "pv_bin.stl")
    # every corner is repeated in the file; merged back to the surface's 2033 vertices
    assert ref_v.shape == v.shape and ref_f.shape == f.shape
    np.testing.assert_allclose(ref_v[ref_f], v[f].astype(np.float32), rtol=0, atol=0)
    for name in ("pv_ascii", "ours_bin", "ours_ascii"):
        rv, rf = read_stl(tmp_path / f"{name}.stl")
        np.testing.assert_array_equal(rf, ref_f)
        np.testing.assert_array_equal(rv, ref_v)
    # VTK's own reader (what laMEG uses) merges the same way, in the same order
    for name in ("pv_bin", "pv_ascii"):
        r = vtk.vtkSTLReader()
        r.SetFileName(str(tmp_path / f"{name}.stl"))
        r.Update()
        out = pv.wrap(r.GetOutput())
        np.testing.assert_array_equal(np.asarray(out.points, np.float64), ref_v)
        np.testing.assert_array_equal(out.faces.reshape(-1, 4)[:, 1:], ref_f)


def test_stl_merging_and_degenerate(tmp_path):
    # two triangles sharing an edge, a -0.0 corner equal to 0.0, one collapsed triangle
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [-0.0, 0, 0], [5, 5, 5]], float)
    f = np.array([[0, 1, 2], [1, 3, 2], [4, 1, 2], [5, 5, 1]])
    write_stl(tmp_path / "m.stl", v, f)
    rv, rf = read_stl(tmp_path / "m.stl")
    np.testing.assert_array_equal(rv, v[:4])
    np.testing.assert_array_equal(rf, [[0, 1, 2], [1, 3, 2], [0, 1, 2]])


@pytest.mark.parametrize("content, exc, match", [
    (b"", LamegFormatError, "not an STL"),
    (b"\0" * 80 + np.uint32(10).tobytes() + b"\0" * 120, LamegFormatError, "not an STL"),
    (b"hello world, not a mesh", LamegFormatError, "not an STL"),
    (b"solid x\nendsolid x\n", LamegFormatError, "0 facet"),
    (b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nendloop\n"
     b"endfacet\nendsolid x\n", LamegFormatError, "exactly three"),
    (b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 zero\nvertex 1 0 0\nvertex 0 1 0\n"
     b"endloop\nendfacet\nendsolid x\n", LamegFormatError, "three numbers"),
    (b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 nan\nvertex 1 0 0\nvertex 0 1 0\n"
     b"endloop\nendfacet\nendsolid x\n", LamegDataError, "NaN"),
    (b"\0" * 80 + np.uint32(0).tobytes(), LamegFormatError, "no triangle"),
])
def test_stl_bad_files(tmp_path, content, exc, match):
    path = tmp_path / "bad.stl"
    path.write_bytes(content)
    with pytest.raises(exc, match=match):
        read_stl(path)


def test_stl_missing_and_truncated(tmp_path):
    with pytest.raises(LamegFileNotFoundError):
        read_stl(tmp_path / "nope.stl")
    write_stl(tmp_path / "t.stl", np.eye(3), [[0, 1, 2], [2, 1, 0]])
    data = (tmp_path / "t.stl").read_bytes()
    (tmp_path / "t.stl").write_bytes(data[:-10])
    with pytest.raises(LamegFormatError, match="truncated"):
        read_stl(tmp_path / "t.stl")


# ---------------------------------------------------------------------------------------------
# 4. validation: lameg errors, nothing written
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ro_subject(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    p = copy_test_participant(root / "data", datasets=[])
    subj_dir = p.subjects_dir / p.subj_id
    _add_fsaverage5(p.subjects_dir, subj_dir, np.eye(4))
    stl = root / "face.stl"
    _write_scan(stl, subj_dir, n_sub=1)
    return p, subj_dir, stl


def _call(p, stl, **kw):
    fid_scan, _ = _marked_fiducials(p)
    args = dict(subject_id=p.subj_id, lpa=fid_scan["lpa"], rpa=fid_scan["rpa"],
                nas=fid_scan["nas"], dig_face_fname=stl, subjects_dir=p.subjects_dir)
    args.update(kw)
    return util.coregister_3d_scan_mri(**args)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(dig_units="cm"), LamegValueError, "dig_units"),
    (dict(dig_units="m"), LamegValueError, "spans"),          # a mm scan read as metres
    (dict(lpa=[1.0, 2.0]), LamegValueError, r"lpa must have shape \(3\)"),
    (dict(nas=[[1.0, 2.0, 3.0]]), LamegValueError, r"nas must have shape \(3\)"),
    (dict(rpa=[np.nan, 0.0, 0.0]), LamegValueError, "NaN"),
    (dict(lpa=[np.inf, 0.0, 0.0]), LamegValueError, "NaN or infinite"),
    (dict(subject_id="sub-99"), LamegFileNotFoundError, "sub-99"),
    (dict(subject_id=7), LamegValueError, "subject_id"),
    (dict(subject_id="../sub-01"), LamegValueError, "subject folder name"),
    (dict(dig_face_fname="missing.stl"), LamegFileNotFoundError, "missing.stl"),
    (dict(subjects_dir="/nonexistent/subjects"), LamegFileNotFoundError, "does not exist"),
])
def test_validation_writes_nothing(ro_subject, tmp_path, kw, exc, match):
    p, subj_dir, stl = ro_subject
    before = _listing(p.root)
    out_dir = tmp_path / "figs"
    with pytest.raises(exc, match=match):
        _call(p, stl, out_dir=out_dir, **kw)
    assert _listing(p.root) == before and not out_dir.exists()


def test_validation_fiducial_units_and_bad_scan(ro_subject, tmp_path):
    p, subj_dir, stl = ro_subject
    before = _listing(p.root)
    fid_scan, _ = _marked_fiducials(p)
    with pytest.raises(LamegValueError, match="LPA-RPA distance"):     # fiducials in metres
        _call(p, stl, **{k: fid_scan[k] / 1000.0 for k in LABELS})
    with pytest.raises(LamegValueError, match="outside the scan"):     # another frame
        _call(p, stl, **{k: fid_scan[k] + 500.0 for k in LABELS})
    with pytest.raises(LamegValueError, match="LPA-RPA line"):
        _call(p, stl, nas=fid_scan["lpa"] + 0.3 * (fid_scan["rpa"] - fid_scan["lpa"]))
    bad = tmp_path / "bad.stl"
    bad.write_bytes(b"not a mesh")
    with pytest.raises(LamegFormatError):
        _call(p, bad)
    with pytest.raises(LamegValueError, match="is a file"):
        _call(p, stl, out_dir=bad)
    assert _listing(p.root) == before


def test_needs_talairach_or_fsaverage(tmp_path):
    p = copy_test_participant(tmp_path / "data", datasets=[])
    subj_dir = p.subjects_dir / p.subj_id
    stl = tmp_path / "face.stl"
    _write_scan(stl, subj_dir, n_sub=1)
    before = _listing(p.root)
    with pytest.raises(LamegFileNotFoundError, match="talairach.xfm.*fsaverage"):
        _call(p, stl)
    assert _listing(p.root) == before

