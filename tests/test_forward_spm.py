"""Forward models against real SPM outputs (../shared/spm_reference, set A).

Every input comes from the reference folder (sensors, meshes, fiducials); nothing is taken from
SPM's outputs except where a test says so explicitly (e.g. SPM's sphere centre, to isolate the
lead-field formula from the sphere fit).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import scipy.io as sio

from lameg.forward.coreg import apply_transform, register_fiducials
from lameg.forward.gain import compute_gain
from lameg.forward.normals import area_weighted_normals, spm_mesh_normals
from lameg.forward.sensors import SensorArray
from lameg.forward.singleshell import SingleShellModel, prepare_nolte
from lameg.forward.sphere import SphereModel, fit_sphere

pytestmark = pytest.mark.spmref


@pytest.fixture(scope="module")
def ref(spm_reference):
    shell = dict(np.load(spm_reference / "forward_singleshell.npz"))
    sphere = dict(np.load(spm_reference / "forward_singlesphere.npz"))
    geom = dict(np.load(spm_reference / "inputs" / "geometry_inputs.npz"))
    return {"shell": shell, "sphere": sphere, "geom": geom, "dir": spm_reference}


@pytest.fixture(scope="module")
def registration(ref):
    g = ref["geom"]
    return register_fiducials(g["fid_head"], g["fid_mri"], ("nas", "lpa", "rpa"))


@pytest.fixture(scope="module")
def sensors(ref):
    """Sensors from the grad exactly as SPM read it (mm, chanunit T) -> metres."""
    g = ref["geom"]
    grad = {"coilpos": g["coilpos"], "coilori": g["coilori"], "tra": g["tra"],
            "label": list(g["label"]), "unit": "mm", "chanunit": ["T"] * len(g["label"]),
            "chanpos": g["chanpos"], "chanori": g["chanori"]}
    return SensorArray.from_grad(grad)


@pytest.fixture(scope="module")
def head_frame(ref, registration):
    """Meshes as SPM read them, moved into the MEG head frame (m) with our registration.

    The GIfTI vertices are float32. MATLAB keeps the transformed inner skull in single precision
    (``single * double`` is single), so SPM's Nolte boundary is ``float32(M @ v)``; this quirk is
    reproduced here under ``"iskull_spm"`` (the library itself stays in double precision).
    """
    m = np.diag([1e-3, 1e-3, 1e-3, 1.0]) @ registration.fromMNI
    out = {}
    for key, fname in [("cortex", "cortex_fs5_lh_pial.gii"), ("iskull", "iskull_fsaverage.gii"),
                       ("scalp", "scalp_fsaverage.gii")]:
        img = nib.load(ref["dir"] / "inputs" / fname)
        out[key] = apply_transform(img.agg_data("pointset").astype(float), m)
        out[key + "_face"] = img.agg_data("triangle").astype(np.int64)
    out["iskull_spm"] = out["iskull"].astype(np.float32).astype(float)
    out["scalp_spm"] = out["scalp"].astype(np.float32).astype(float)
    return out


def _gain(ref, name):
    return sio.loadmat(ref["dir"] / "dataset" / name)["G"]


def test_datareg_transforms(ref, registration):
    # SPM's toMNI/fromMNI from the same fiducials; exact up to rounding (Kabsch is closed form)
    s = ref["shell"]
    np.testing.assert_allclose(registration.M1, s["toMNI_mm"], atol=1e-10)
    np.testing.assert_allclose(registration.fromMNI, s["fromMNI_mm"], atol=1e-10)
    fid_in_head = apply_transform(ref["geom"]["fid_mri"], registration.fromMNI)
    np.testing.assert_allclose(fid_in_head, s["fid_mri_in_head_mm"], atol=1e-10)
    assert registration.residuals_mm.max() < 1e-9


def test_sensor_conversion(ref, sensors):
    s = ref["shell"]
    np.testing.assert_allclose(sensors.coilpos, s["coilpos_m"], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(sensors.tra, s["tra"])
    assert sensors.labels == list(s["label"])


def test_cortex_in_head_frame(ref, head_frame):
    # SPM transforms tess_ctx with diag(1e-3) fromMNI; agreement to rounding (1e-12 m)
    np.testing.assert_allclose(head_frame["cortex"], ref["shell"]["fwd_mesh_vert_m"], atol=1e-12)
    np.testing.assert_array_equal(head_frame["iskull_spm"], ref["shell"]["vol_bnd_pos_m"])


def test_normals_match_spm(ref):
    s = ref["shell"]
    n = spm_mesh_normals(s["fwd_mesh_vert_m"], s["fwd_mesh_face_0based"])
    # README tolerance: max abs 1e-12 (same formula, only summation order differs)
    assert np.abs(n - s["fwd_normals"]).max() < 1e-12
    nb = area_weighted_normals(s["vol_bnd_pos_m"], s["vol_bnd_tri_0based"])
    assert np.abs(nb - s["vol_bnd_nrm"]).max() < 1e-12


def test_nolte_coefficients(ref):
    s = ref["shell"]
    nf = prepare_nolte(s["vol_bnd_pos_m"], s["vol_bnd_nrm"], s["coilpos_m"], s["coilori"])
    np.testing.assert_allclose(nf.center_cm, s["forwpar_center_cm"], rtol=1e-12)
    np.testing.assert_allclose(nf.coilpos_cm, s["forwpar_device_sens"][:, :3], atol=1e-12)
    ref_c = s["forwpar_coeff_sens"]
    # least-squares solution of the same normal equations; measured 1.2e-13
    assert np.linalg.norm(nf.coeffs - ref_c) / np.linalg.norm(ref_c) < 1e-10


def test_single_shell_gain_matches_spm(ref, sensors, head_frame):
    G_spm = _gain(ref, "SPMgainmatrix_base_1.mat")
    s = ref["shell"]
    normals = spm_mesh_normals(head_frame["cortex"], head_frame["cortex_face"])
    model = SingleShellModel(head_frame["iskull_spm"], head_frame["iskull_face"])
    G = compute_gain(head_frame["cortex"], normals, sensors, model)
    assert G.shape == G_spm.shape == (274, 10242)
    rel = np.linalg.norm(G - G_spm) / np.linalg.norm(G_spm)
    # README tolerance for a port of FieldTrip's Nolte code: 1e-8 (measured ~3e-15)
    assert rel < 1e-8
    corr = np.sum(G * G_spm, 0) / np.linalg.norm(G, axis=0) / np.linalg.norm(G_spm, axis=0)
    assert corr.min() > 0.999999
    np.testing.assert_allclose(np.linalg.norm(G_spm, axis=0), s["G_col_norm"], rtol=1e-12)
    # without SPM's float32 rounding of the skull (1e-9 m) the difference is ~2e-8
    G64 = compute_gain(head_frame["cortex"], normals, sensors,
                       SingleShellModel(head_frame["iskull"], head_frame["iskull_face"]))
    assert np.linalg.norm(G64 - G_spm) / np.linalg.norm(G_spm) < 1e-7


def test_single_sphere_gain_matches_spm(ref, sensors, head_frame):
    G_spm = _gain(ref, "SPMgainmatrix_base_sphere_1.mat")
    sp_ref = ref["sphere"]
    normals = spm_mesh_normals(head_frame["cortex"], head_frame["cortex_face"])
    # (a) lead-field formula with SPM's fitted sphere: README tolerance 1e-10 (measured 9e-15)
    G = compute_gain(head_frame["cortex"], normals, sensors,
                     SphereModel(sp_ref["sphere_o_m"], float(sp_ref["sphere_r_m"])))
    assert np.linalg.norm(G - G_spm) / np.linalg.norm(G_spm) < 1e-10
    # (b) the whole pipeline with our own sphere fit to the scalp SPM used (float32 quirk)
    o, r = fit_sphere(head_frame["scalp_spm"])
    np.testing.assert_allclose(o, sp_ref["sphere_o_m"], rtol=0, atol=1e-14)
    assert abs(r - float(sp_ref["sphere_r_m"])) < 1e-14
    G2 = compute_gain(head_frame["cortex"], normals, sensors, SphereModel(o, r))
    assert np.linalg.norm(G2 - G_spm) / np.linalg.norm(G_spm) < 1e-10
    # in double precision the algebraic fit moves the centre by ~1e-10 m (ill-conditioned 5x5
    # scatter matrix); the gain then differs by ~1e-9
    o64, r64 = fit_sphere(head_frame["scalp"])
    assert np.abs(o64 - sp_ref["sphere_o_m"]).max() < 1e-9
    G3 = compute_gain(head_frame["cortex"], normals, sensors, SphereModel(o64, r64))
    assert np.linalg.norm(G3 - G_spm) / np.linalg.norm(G_spm) < 1e-8
