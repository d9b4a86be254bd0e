"""Co-registration and the forward-model façade (lameg.invert.coregister & friends)."""

from __future__ import annotations

import json
import shutil
import warnings

import nibabel as nib
import numpy as np
import pytest
import scipy.io as sio

import lameg.invert as li
from lameg.exceptions import LamegDataError, LamegFileNotFoundError, LamegValueError
from lameg.forward.coreg import (
    apply_transform,
    icp_register,
    points_outside_surface,
    register_fiducials,
    rigid_transform,
)
from lameg.forward.normals import normalize_rows
from lameg.io.gifti import write_surf_gifti
from lameg.io.spm_inv import read_head_model
from lameg.io.spm_meeg import load_meeg, read_gainmat

LABELS = ("nas", "lpa", "rpa")



def _gain_file(data, idx):
    """The gain file a dataset's header records (content-addressed name)."""
    return read_head_model(data, idx).gain_path

def _random_rigid(rng, angle_deg=20.0, shift=30.0):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.eye(4)
    t[:3, :3] = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
    t[:3, 3] = rng.normal(size=3) * shift
    return t


FID_MRI = np.array([[1.5, 85.0, -34.8], [-80.6, -29.1, -41.3], [84.4, -28.5, -41.3]])


# --------------------------------------------------------------------------- array-level


def test_rigid_transform_recovers_known_transform():
    rng = np.random.default_rng(0)
    t = _random_rigid(rng)
    src = rng.normal(size=(10, 3)) * 50
    np.testing.assert_allclose(rigid_transform(src, apply_transform(src, t)), t, atol=1e-10)
    with pytest.raises(LamegValueError, match="collinear"):
        rigid_transform(np.outer(np.arange(4.0), [1, 1, 1]), np.outer(np.arange(4.0), [1, 1, 1]))


def test_register_fiducials_exact_and_residuals():
    rng = np.random.default_rng(1)
    m1 = _random_rigid(rng)
    meg = apply_transform(FID_MRI, np.linalg.inv(m1))
    reg = register_fiducials(meg, dict(zip(LABELS, FID_MRI)), LABELS, meg_labels=LABELS)
    np.testing.assert_allclose(reg.M1, m1, atol=1e-10)
    assert reg.residuals_mm.max() < 1e-9
    # noisy digitisation: residuals reported, transform still close
    noisy = meg + rng.normal(size=meg.shape) * 1.0
    reg2 = register_fiducials(noisy, dict(zip(LABELS, FID_MRI)), LABELS, meg_labels=LABELS)
    assert 0.1 < reg2.residuals_mm.max() < 5


def test_fiducials_in_metres_are_rejected():
    meg = FID_MRI.copy()
    with pytest.raises(LamegValueError, match="metres"):
        register_fiducials(meg, dict(zip(LABELS, FID_MRI / 1000)), LABELS, meg_labels=LABELS)


def test_swapped_ears_are_rejected():
    meg = FID_MRI.copy()
    swapped = dict(zip(LABELS, FID_MRI[[0, 2, 1]]))  # lpa <-> rpa
    with pytest.raises(LamegValueError, match="swapped"):
        register_fiducials(meg, swapped, LABELS, meg_labels=LABELS)


def test_missing_fiducial_label_is_named():
    with pytest.raises(LamegValueError, match="lpa"):
        register_fiducials(FID_MRI, {"nas": FID_MRI[0], "rpa": FID_MRI[2], "LPA": FID_MRI[1]},
                           LABELS, meg_labels=LABELS)


def _sphere_points(n, radius, rng):
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * radius


@pytest.mark.filterwarnings("ignore:fiducial residuals")
def test_icp_refines_a_perturbed_registration():
    rng = np.random.default_rng(2)
    # an ellipsoidal 'scalp' (not rotation symmetric), head-shape points on its upper half
    scalp = _sphere_points(6000, 1.0, rng) * [75.0, 95.0, 85.0]
    hsp_mri = scalp[scalp[:, 2] > 0][::20]
    fid_mri = np.array([[0, 95.0, 0], [-75.0, 0, 0], [75.0, 0, 0]])
    m1_true = _random_rigid(rng, 10, 20)
    inv_true = np.linalg.inv(m1_true)
    fid_meg = apply_transform(fid_mri, inv_true) + rng.normal(size=(3, 3)) * 3.0  # poor fids
    hsp_meg = apply_transform(hsp_mri, inv_true)
    reg0 = register_fiducials(fid_meg, dict(zip(LABELS, fid_mri)), LABELS, meg_labels=LABELS)
    reg1 = register_fiducials(fid_meg, dict(zip(LABELS, fid_mri)), LABELS, meg_labels=LABELS,
                              headshape=hsp_meg, scalp=scalp, useheadshape=True)
    err0 = np.abs(apply_transform(hsp_meg, reg0.M1) - hsp_mri).max()
    err1 = np.abs(apply_transform(hsp_meg, reg1.M1) - hsp_mri).max()
    assert reg1.used_headshape and err1 < 0.5 * err0
    extra = icp_register(fid_meg, fid_mri, hsp_meg, scalp, max_iter=0)
    np.testing.assert_array_equal(extra, np.eye(4))
    with pytest.raises(LamegValueError, match="head-shape"):
        register_fiducials(fid_meg, dict(zip(LABELS, fid_mri)), LABELS, meg_labels=LABELS,
                           useheadshape=True)


def test_points_outside_surface():
    rng = np.random.default_rng(3)
    from scipy.spatial import ConvexHull

    pts = _sphere_points(500, 80.0, rng)
    hull = ConvexHull(pts)
    tri = hull.simplices.copy()  # qhull does not orient its facets: make them outward
    v0, v1, v2 = (pts[tri[:, i]] for i in range(3))
    flip = np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), hull.equations[:, :3]) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    inside = _sphere_points(200, 1.0, rng) * rng.uniform(0, 70, size=(200, 1))
    outside = _sphere_points(50, 1.0, rng) * rng.uniform(90, 150, size=(50, 1))
    out, _ = points_outside_surface(np.vstack([inside, outside]), pts, tri)
    assert not out[:200].any() and out[200:].all()


def test_points_outside_surface_carried_along_a_mesh():
    """With the points' own triangles, verdicts travel along edges that cannot cross the
    surface: same verdicts as testing every point, exact distances for the points outside,
    NaN only for points that inherited an inside verdict."""
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(4)

    def hull_mesh(p):
        t = ConvexHull(p).simplices.copy()
        a, b, c = p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]
        flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), a - p.mean(0)) < 0
        t[flip] = t[flip][:, ::-1]
        return t

    skull = _sphere_points(800, 80.0, rng)
    tri = hull_mesh(skull)
    # a "cortex": two nested closed meshes, the outer one poking through the skull at +x
    layer = _sphere_points(1500, 1.0, rng)
    lf = hull_mesh(layer)
    inner = layer * 50.0
    outer = layer * 60.0 + [35.0, 0.0, 0.0]
    pts = np.vstack([inner, outer])
    pf = np.vstack([lf, lf + len(layer)])
    ref_out, ref_d = points_outside_surface(pts, skull, tri)
    out, d = points_outside_surface(pts, skull, tri, point_faces=pf)
    assert 0 < ref_out.sum() < len(layer)  # some of the outer mesh is outside
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(d[out], ref_d[out], rtol=1e-12)
    carried = np.isnan(d)
    assert carried.sum() > len(layer)  # most points were not tested one by one
    assert not out[carried].any()
    with pytest.raises(LamegValueError):
        points_outside_surface(pts, skull, tri, point_faces=pf + len(pts))


# --------------------------------------------------------------------------- façade vs SPM


@pytest.fixture()
def spm_dataset(spm_reference, tmp_path):
    """Writable copy of SPM's base dataset (sensors + fiducials) and the reference inputs."""
    for ext in ("mat", "dat"):
        shutil.copy(spm_reference / "dataset" / f"base.{ext}", tmp_path / f"base.{ext}")
        (tmp_path / f"base.{ext}").chmod(0o644)
    g = np.load(spm_reference / "inputs" / "geometry_inputs.npz")
    return {"data": tmp_path / "base.mat", "inputs": spm_reference / "inputs",
            "fid": {k: g["fid_mri"][i] for i, k in enumerate(LABELS)}, "geom": g,
            "ref": spm_reference, "dir": tmp_path}


@pytest.mark.spmref
def test_coregister_mesh_reproduces_spm(spm_dataset, tmp_path):
    d = spm_dataset
    li.coregister_mesh(d["fid"], d["data"], d["inputs"] / "cortex_fs5_lh_pial.gii",
                       iskull_fname=d["inputs"] / "iskull_fsaverage.gii",
                       scalp_fname=d["inputs"] / "scalp_fsaverage.gii",
                       forward_model_type="Single Shell", orientations="normals",
                       cache_dir=tmp_path / "cache")
    G, labels = read_gainmat(_gain_file(d["data"], 0))
    G_spm = sio.loadmat(d["ref"] / "dataset" / "SPMgainmatrix_base_1.mat")["G"]
    # differs from SPM only by SPM's float32 rounding of the inner skull (measured 1.8e-8)
    assert np.linalg.norm(G - G_spm) / np.linalg.norm(G_spm) < 1e-7
    assert labels == list(d["geom"]["label"])
    D = load_meeg(d["data"])
    inv = D.inv[0]
    spm_inv = load_meeg(d["ref"] / "dataset" / "base.mat").inv[0]
    np.testing.assert_allclose(inv["datareg"]["toMNI"], spm_inv["datareg"]["toMNI"], atol=1e-10)
    np.testing.assert_allclose(inv["forward"]["toMNI"], spm_inv["forward"]["toMNI"], atol=1e-7)
    np.testing.assert_allclose(inv["forward"]["mesh"]["vert"], spm_inv["forward"]["mesh"]["vert"],
                               atol=1e-12)
    assert inv["forward"]["vol"]["type"] == "singleshell"
    assert inv["gainmat"].startswith("SPMgainmatrix_base_1_") and inv["gainmat"].endswith(".mat")
    assert D.val == 1
    # the data file itself is untouched
    assert (d["dir"] / "base.dat").read_bytes() == (d["ref"] / "dataset" / "base.dat").read_bytes()
    # readers
    assert li.check_inversion_exists(d["data"], 0) is True
    with pytest.raises(KeyError):
        li.check_inversion_exists(d["data"], 1)
    vert = li.load_forward_model_vertices(d["data"])
    np.testing.assert_allclose(vert, d["geom"]["pial_vert"], atol=1e-5)  # float32 GIfTI


@pytest.mark.spmref
def test_mesh_orientations_and_sphere_models(spm_dataset, tmp_path):
    d = spm_dataset
    g = d["geom"]
    from lameg.forward.normals import spm_mesh_normals

    # orientations stored in the GIfTI (MRI frame) are rotated into the head frame: SPM's
    # normals given as a VECTOR array reproduce SPM's sphere gain
    nrm = spm_mesh_normals(g["pial_vert"], g["pial_face"])
    mesh = tmp_path / "cortex_with_normals.gii"
    write_surf_gifti(mesh, g["pial_vert"], g["pial_face"], nrm)
    li.coregister_mesh(d["fid"], d["data"], mesh, scalp_fname=d["inputs"] / "scalp_fsaverage.gii",
                       forward_model_type="Single Sphere", orientations="mesh", cache_dir=False)
    G, _ = read_gainmat(_gain_file(d["data"], 0))
    G_spm = sio.loadmat(d["ref"] / "dataset" / "SPMgainmatrix_base_sphere_1.mat")["G"]
    # float32 storage of the normals in the GIfTI (1e-7) dominates
    assert np.linalg.norm(G - G_spm) / np.linalg.norm(G_spm) < 1e-6
    # local spheres as a second head model (inversion_idx=1, appended)
    li.coregister_mesh(d["fid"], d["data"], mesh, scalp_fname=d["inputs"] / "scalp_fsaverage.gii",
                       forward_model_type="MEG Local Spheres", inversion_idx=1, cache_dir=False)
    D = load_meeg(d["data"])
    assert len(D.inv) == 2 and D.inv[1]["forward"]["vol"]["type"] == "localspheres"
    G2, _ = read_gainmat(_gain_file(d["data"], 1))
    corr = np.sum(G * G2, 0) / np.linalg.norm(G, axis=0) / np.linalg.norm(G2, axis=0)
    assert 0.7 < np.median(corr) < 0.9999  # a different, related model
    with pytest.raises(LamegValueError, match="inversion_idx"):
        li.coregister_mesh(d["fid"], d["data"], mesh, scalp_fname=d["inputs"] /
                           "scalp_fsaverage.gii", forward_model_type="Single Sphere",
                           inversion_idx=5)


@pytest.mark.spmref
def test_clear_errors(spm_dataset, tmp_path):
    d = spm_dataset
    g = d["geom"]
    cortex = d["inputs"] / "cortex_fs5_lh_pial.gii"
    with pytest.raises(LamegFileNotFoundError, match="iskull_fname"):
        li.coregister_mesh(d["fid"], d["data"], cortex, forward_model_type="Single Shell")
    with pytest.raises(LamegValueError, match="forward_model_type"):
        li.coregister_mesh(d["fid"], d["data"], cortex, iskull_fname=d["inputs"] /
                           "iskull_fsaverage.gii", forward_model_type="Triple Shell")
    metres = {k: np.asarray(v) / 1000 for k, v in d["fid"].items()}
    with pytest.raises(LamegValueError, match="metres"):
        li.coregister_mesh(metres, d["data"], cortex,
                           iskull_fname=d["inputs"] / "iskull_fsaverage.gii")
    swapped = {"nas": d["fid"]["nas"], "lpa": d["fid"]["rpa"], "rpa": d["fid"]["lpa"]}
    with pytest.raises(LamegValueError, match="swapped"):
        li.coregister_mesh(swapped, d["data"], cortex,
                           iskull_fname=d["inputs"] / "iskull_fsaverage.gii")
    with pytest.raises(LamegFileNotFoundError):
        li.coregister_mesh(d["fid"], d["dir"] / "nope.mat", cortex)
    # cortex in the wrong place: every vertex outside the inner skull -> error
    far = (g["pial_vert"] + [0, 0, 150.0], g["pial_face"])
    with pytest.raises(LamegDataError, match="outside the inner skull"):
        li.coregister_mesh(d["fid"], d["data"], far, forward_model_type="Single Sphere",
                           iskull_fname=d["inputs"] / "iskull_fsaverage.gii", cache_dir=False)
    # a few vertices outside -> warning, gain still written
    v = g["pial_vert"].copy()
    top = np.argsort(v[:, 2])[-20:]
    v[top, 2] += 40.0
    with pytest.warns(UserWarning, match="20 cortical vertices lie outside"):
        li.coregister_mesh(d["fid"], d["data"], (v, g["pial_face"]),
                           forward_model_type="Single Sphere", orientations="normals",
                           iskull_fname=d["inputs"] / "iskull_fsaverage.gii", cache_dir=False)
    # no orientation array with orientations='mesh' -> SPM's normals, with a warning
    with pytest.warns(UserWarning, match="VECTOR"):
        li.coregister_mesh(d["fid"], d["data"], cortex, forward_model_type="Single Sphere",
                           scalp_fname=d["inputs"] / "scalp_fsaverage.gii", cache_dir=False)


class _FakeSurfSet:
    """The parts of LayerSurfaceSet that coregister/get_lead_field_rms_diff use."""

    def __init__(self, mesh_path, n_layers, n_per, iskull, scalp):
        self.mesh_path, self.n_layers, self.n_per = mesh_path, n_layers, n_per
        self.heads = {"iskull": iskull, "scalp": scalp}

    def get_mesh_path(self, layer_name=None, stage="ds", hemi=None, orientation="link_vector",
                      fixed=True):
        assert layer_name is None and stage == "ds" and orientation == "link_vector" and fixed
        return str(self.mesh_path)

    def get_vertices_per_layer(self, orientation="link_vector", fixed=True):
        return self.n_per

    def load_head_mesh(self, mesh_type="scalp"):
        if self.heads.get(mesh_type) is None:
            raise FileNotFoundError(mesh_type)
        return nib.load(str(self.heads[mesh_type]))


@pytest.mark.spmref
def test_multilayer_coregister_and_rms_diff(spm_dataset, tmp_path):
    d = spm_dataset
    pial = nib.load(str(d["inputs"] / "cortex_fs5_lh_pial.gii"))
    white = nib.load(str(d["inputs"] / "cortex_fs5_lh_white.gii"))
    pv, f = pial.agg_data("pointset").astype(float), pial.agg_data("triangle")
    wv = white.agg_data("pointset").astype(float)
    link = normalize_rows(wv - pv)  # zero rows (pial == white) stay zero, as in laMEG
    n = len(pv)
    mid = 0.5 * (pv + wv)
    verts = np.vstack([pv, mid, wv])
    faces = np.vstack([f, f + n, f + 2 * n])
    mesh = tmp_path / "multilayer.3.ds.link_vector.fixed.gii"
    write_surf_gifti(mesh, verts, faces, np.vstack([link, link, link]))
    surf = _FakeSurfSet(mesh, 3, n, d["inputs"] / "iskull_fsaverage.gii",
                        d["inputs"] / "scalp_fsaverage.gii")
    li.coregister(d["fid"], d["data"], surf, forward_model_type="Single Sphere",
                  cache_dir=tmp_path / "cache", viz=False)
    G, _ = read_gainmat(_gain_file(d["data"], 0))
    assert G.shape == (274, 3 * n)
    rms = li.get_lead_field_rms_diff(d["data"], surf)
    all_rms = li.get_lead_field_rms_diff(d["data"], surf, all_layers=True)
    want = np.sqrt(np.mean((G[:, 2 * n :] - G[:, :n]) ** 2, axis=0))
    np.testing.assert_allclose(rms, want, rtol=1e-12)
    np.testing.assert_allclose(all_rms[2], want, rtol=1e-12)
    assert np.all(all_rms[0] == 0)
    np.testing.assert_allclose(
        all_rms[1], np.sqrt(np.mean((G[:, n : 2 * n] - G[:, :n]) ** 2, axis=0)), rtol=1e-12)
    # the cache holds the gain: a second co-registration reuses it exactly
    cached = sorted((tmp_path / "cache").glob("*.npz"))
    assert cached
    li.coregister(d["fid"], d["data"], surf, forward_model_type="Single Sphere",
                  cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(read_gainmat(_gain_file(d["data"], 0))[0], G)
    # a surface set whose layer count does not match the gain matrix
    bad = _FakeSurfSet(mesh, 2, n, None, None)
    with pytest.raises(LamegDataError, match="layers"):
        li.get_lead_field_rms_diff(d["data"], bad)
    # no inner skull anywhere -> clear error for the single shell
    with pytest.raises(LamegFileNotFoundError, match="load_head_mesh"):
        li.coregister(d["fid"], d["data"], _FakeSurfSet(mesh, 3, n, None, None))


# --------------------------------------------------------------------------- test participant


@pytest.fixture(scope="module")
def participant(test_data_dir):
    spm_dir = test_data_dir / "sub-01" / "meg" / "ses-01" / "spm"
    truth = json.loads((spm_dir / "ground_truth.json").read_text())
    with np.load(spm_dir / "ground_truth.npz") as z:
        gains = {k: z[k] for k in z.files if k.startswith("gain_")}
    return {"spm": spm_dir, "truth": truth, "gains": gains, "fs": test_data_dir / "fs" / "sub-01",
            "tsv": test_data_dir / "participants.tsv"}


def _fiducials_from_tsv(tsv, subj="sub-01"):
    from lameg.util import get_fiducial_coords

    return get_fiducial_coords(subj, tsv)


def _column_mesh(fs, hemi, vertex, t_tk2scanner, rings=2):
    """A small patch of the pial surface around ``vertex`` with link-vector orientations."""
    pv, pf = nib.freesurfer.read_geometry(str(fs / "surf" / f"{hemi}.pial"))
    wv, _ = nib.freesurfer.read_geometry(str(fs / "surf" / f"{hemi}.white"))
    keep = {vertex}
    for _ in range(rings):
        sel = np.any(np.isin(pf, list(keep)), axis=1)
        keep |= set(pf[sel].ravel().tolist())
    keep = np.array(sorted(keep))
    faces = pf[np.all(np.isin(pf, keep), axis=1)]
    remap = -np.ones(len(pv), int)
    remap[keep] = np.arange(len(keep))
    link = wv[keep] - pv[keep]
    link /= np.linalg.norm(link, axis=1, keepdims=True)
    verts = apply_transform(pv[keep], t_tk2scanner)
    return verts, remap[faces], link, int(remap[vertex])


def _surf_to_gii(fs, name, t_tk2scanner, out):
    v, f = nib.freesurfer.read_geometry(str(fs / "bem" / name))
    write_surf_gifti(out, apply_transform(v, t_tk2scanner), f)
    return out


@pytest.mark.parametrize("dataset", ["ctf_pial", "neuromag"])
def test_participant_registration_and_gain(participant, tmp_path, dataset):
    p = participant
    ds = p["truth"]["datasets"][dataset]
    src = ds["sources"][0]
    for ext in ("mat", "dat"):
        shutil.copy(p["spm"] / ds["file"].replace(".mat", f".{ext}"), tmp_path)
    data = tmp_path / ds["file"]
    t_tk = np.array(p["truth"]["T_tkras_to_scanner"])
    verts, faces, link, idx = _column_mesh(p["fs"], src["hemi"], src["vertex"], t_tk)
    iskull = _surf_to_gii(p["fs"], "inner_skull.surf", t_tk, tmp_path / "iskull.gii")
    fid = _fiducials_from_tsv(p["tsv"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a correct participant raises no warning
        li.coregister_mesh(fid, data, (verts, faces, link), iskull_fname=iskull,
                           forward_model_type="Single Shell", cache_dir=False)
    inv = load_meeg(data).inv[0]
    # transform recovered: the true MEG head -> scanner map, fiducial residual < 0.5 mm
    m1_true = np.linalg.inv(np.array(p["truth"]["T_scanner_to_head"]))
    np.testing.assert_allclose(inv["datareg"]["toMNI"], m1_true, atol=1e-6)
    assert np.max(inv["datareg"]["fid_residuals_mm"]) < 0.5
    np.testing.assert_allclose(apply_transform(verts[idx], np.linalg.inv(m1_true))[0],
                               src["pos_head_mm"], atol=1e-3)
    G, labels = read_gainmat(_gain_file(data, 0))
    g = G[:, idx]
    g_mne = p["gains"][f"gain_{dataset}"]
    assert len(labels) == len(g_mne)
    # Nolte single shell vs MNE's single-layer BEM on the same inner skull (the simulation's
    # forward model): measured correlation 0.9998 (CTF) / 0.9997 (Neuromag), amplitude +1 % /
    # +3 %; the two methods differ by their discretisation of the same boundary
    corr = g @ g_mne / np.linalg.norm(g) / np.linalg.norm(g_mne)
    assert corr > 0.999
    assert abs(np.linalg.norm(g) / np.linalg.norm(g_mne) - 1) < 0.05


def test_participant_headshape_icp(participant, tmp_path):
    """Digitised head shape (ICP onto the scalp) corrects mis-marked fiducials."""
    p = participant
    ds = p["truth"]["datasets"]["neuromag"]
    src = ds["sources"][0]
    for ext in ("mat", "dat"):
        shutil.copy(p["spm"] / ds["file"].replace(".mat", f".{ext}"), tmp_path)
    data = tmp_path / ds["file"]
    t_tk = np.array(p["truth"]["T_tkras_to_scanner"])
    verts, faces, link, _ = _column_mesh(p["fs"], src["hemi"], src["vertex"], t_tk)
    scalp = _surf_to_gii(p["fs"], "outer_skin.surf", t_tk, tmp_path / "scalp.gii")
    fid = _fiducials_from_tsv(p["tsv"])
    shift = {"nas": [0.0, 0, 0], "lpa": [3.0, -2.0, 2.0], "rpa": [-3.0, 2.0, -2.0]}
    bad_fid = {k: np.asarray(v) + shift[k] for k, v in fid.items()}  # 4 mm marking errors
    m1_true = np.linalg.inv(np.array(p["truth"]["T_scanner_to_head"]))
    hsp = load_meeg(data).fiducials()["pnt"]
    errors = []
    for use in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            li.coregister_mesh(bad_fid, data, (verts, faces, link), scalp_fname=scalp,
                               forward_model_type="Single Sphere", useheadshape=use,
                               cache_dir=False)
        m1 = load_meeg(data).inv[0]["datareg"]["toMNI"]
        err = np.linalg.norm(apply_transform(hsp, m1) - apply_transform(hsp, m1_true), axis=1)
        errors.append(err.mean())
    # measured: 2.7 mm with the fiducials alone, 0.75 mm after ICP
    assert errors[0] > 2.0 and errors[1] < 1.2


@pytest.mark.spmref
def test_custom_fiducial_labels(spm_dataset):
    d = spm_dataset
    g = d["geom"]
    D = load_meeg(d["data"])
    header = dict(D.header)
    fids = dict(header["fiducials"])
    fids["fid"] = {"pnt": D.fiducials()["fid"]["pnt"], "label": ["Nasion", "LPA", "RPA"]}
    header["fiducials"] = fids
    D.header = header
    D.save()
    small = (g["pial_vert"][:300], g["pial_face"][np.all(g["pial_face"] < 300, axis=1)])
    with pytest.raises(LamegValueError, match="Nasion"):
        li.coregister_mesh(d["fid"], d["data"], small, forward_model_type="Single Sphere",
                           scalp_fname=d["inputs"] / "scalp_fsaverage.gii",
                           orientations="normals", cache_dir=False)
    # laMEG semantics: fid_coords['nas'/'lpa'/'rpa'] are typed under the names in fid_labels
    li.coregister_mesh(d["fid"], d["data"], small, forward_model_type="Single Sphere",
                       scalp_fname=d["inputs"] / "scalp_fsaverage.gii", orientations="normals",
                       fid_labels=("Nasion", "LPA", "RPA"), cache_dir=False)
    inv = load_meeg(d["data"]).inv[0]
    spm_inv = load_meeg(d["ref"] / "dataset" / "base.mat").inv[0]
    np.testing.assert_allclose(inv["datareg"]["toMNI"], spm_inv["datareg"]["toMNI"], atol=1e-10)
