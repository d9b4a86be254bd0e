"""Simulations (lameg.simulate): SPM reference, SNR definition, noise colours, files."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import scipy.io as sio

from lameg.exceptions import LamegError, LamegValueError
from lameg.inverse.kernels import geodesic_kernel
from lameg.io.spm_meeg import load_meeg, write_gainmat, write_meeg
from lameg.simulate import (
    active_samples,
    patch_weights,
    run_current_density_simulation,
    run_dipole_simulation,
    sensor_noise,
    simulate_trials,
    snr_noise_level,
)
from lameg.sweep import synthetic_model


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_template(folder, model, name="tmpl", n_extra=1, layer=None):
    """An SPM dataset (zeros) with the model's forward model in D.other.inv{1}.

    ``n_extra`` non-MEG channels are appended (they receive noise only). ``layer`` restricts the
    forward model to one layer (as coregister(layer_name=...) does).
    """
    if layer is None:
        verts, faces, gain = model.vertices, model.faces, model.gain
    else:
        verts, faces = model.layer_mesh(layer)
        nv = model.n_vertices
        gain = model.gain[:, layer * nv:(layer + 1) * nv]
    n_meg = model.gain.shape[0]
    labels = [f"MEG{i:03d}" for i in range(n_meg)] + [f"EOG{i}" for i in range(n_extra)]
    types = ["MEGMAG"] * n_meg + ["EOG"] * n_extra
    units = ["fT"] * n_meg + ["uV"] * n_extra
    data = np.zeros((len(labels), model.time.size, model.n_trials), np.float32)
    path = folder / f"{name}.mat"
    D = load_meeg(path) if path.exists() else write_meeg(
        path, data, fsample=model.fsample,
        time_onset=float(model.time[0]), chanlabels=labels, chantypes=types, chanunits=units,
        conditions=model.conditions)
    gname = f"SPMgainmatrix_{name}_1.mat"
    write_gainmat(folder / gname, gain, labels[:n_meg])
    mesh = {"vert": verts, "face": faces.astype(float) + 1}
    inv = {"mesh": {"tess_mni": mesh}, "forward": {"mesh": {"vert": verts / 1000.0,
                                                            "face": faces.astype(float) + 1}},
           "gainmat": gname, "method": "Imaging"}
    D.save_inv([inv], val=1)
    return path


@pytest.fixture(scope="module")
def model():
    return synthetic_model(n_layers=2, n_side=12, extent_mm=30.0, n_sensors=60, n_trials=8,
                           n_samples=101)


@pytest.fixture()
def template(tmp_path, model):
    return write_template(tmp_path, model)


# ------------------------------------------------------------------------------------------
# SPM reference (spm_eeg_simulate run by unmodified SPM)
# ------------------------------------------------------------------------------------------


@pytest.mark.spmref
def test_clean_signal_and_noise_level_match_spm(spm_reference):
    ds = spm_reference / "dataset"
    truth = sio.loadmat(ds / "sim_truth.mat", squeeze_me=True)
    from lameg.io.spm_meeg import read_gainmat

    G, _ = read_gainmat(ds / "SPMgainmatrix_base_1.mat")
    D = load_meeg(ds / "base.mat")
    # SPM put the 61-sample signal on samples 31..91 (1-based), i.e. t = 0 ... 100 ms
    active = np.arange(30, 91)
    res = simulate_trials(G, truth["q"][:, None], truth["simsignal"][None], active,
                          D.n_samples, 2, float(truth["SNRdB"]), rng=0)
    # noiseless data: same products in double precision -> rounding only
    np.testing.assert_allclose(res.clean[:, :, 0], truth["Yclean"], rtol=0,
                               atol=1e-12 * np.abs(truth["Yclean"]).max())
    # SPM's noise SD (mean channel SD x 10^(10/20)): double-precision agreement
    assert res.noise_level == pytest.approx(float(truth["whitenoise"]), rel=1e-12)
    assert snr_noise_level(truth["Yclean"], -10.0) == pytest.approx(
        float(truth["whitenoise"]), rel=1e-12)


@pytest.mark.spmref
def test_file_simulation_on_spm_dataset(spm_reference, tmp_path):
    ds = spm_reference / "dataset"
    for f in ("base.mat", "base.dat", "SPMgainmatrix_base_1.mat"):
        shutil.copy(ds / f, tmp_path / f)
    truth = sio.loadmat(ds / "sim_truth.mat", squeeze_me=True)
    before = _sha(tmp_path / "base.mat"), _sha(tmp_path / "base.dat")
    # FWHM 0 = a single vertex: the noiseless signal is G[:, v] * 10 nAm * s(t)
    woi = (-1 / 1200, 0.1)  # holds samples 31..91 (1-based) with SPM's t > woi[0] rule
    out = run_current_density_simulation(tmp_path / "base.mat", "sim_", 1025,
                                         truth["simsignal"], 10.0, 0.0, -10.0, sim_woi=woi,
                                         seed=3)
    assert (_sha(tmp_path / "base.mat"), _sha(tmp_path / "base.dat")) == before
    S = load_meeg(out)
    # the simulation links the template's gain under its own name (self-contained)
    assert S.fname.name == "sim_base.mat"
    assert S.inv[0]["gainmat"].startswith("SPMgainmatrix_sim_base_1_")
    assert (tmp_path / S.inv[0]["gainmat"]).samefile(tmp_path / "SPMgainmatrix_base_1.mat")
    from lameg.io.spm_meeg import read_gainmat

    G, _ = read_gainmat(ds / "SPMgainmatrix_base_1.mat")
    clean = np.zeros((274, 100))
    clean[:, 30:91] = G[:, [1025]] * 10.0 * truth["simsignal"][None]
    rng = np.random.default_rng(3)
    level = snr_noise_level(clean, -10.0)
    for k in range(3):
        expect = clean + sensor_noise(274, 100, level, "white", rng)
        # float32 storage: half an ulp of the stored values
        np.testing.assert_allclose(S.data[:, :, k], expect, rtol=0,
                                   atol=np.abs(expect).max() * 2**-24)


# ------------------------------------------------------------------------------------------
# SNR and noise
# ------------------------------------------------------------------------------------------


def test_realised_snr_matches_request(template, model):
    """The noise in the stored file has exactly SPM's level for the requested SNR.

    The test recomputes the noiseless signal independently (kernel column of
    lameg.inverse.kernels x gain), subtracts it from the float32 data and regresses the residual
    on the regenerated standard-normal draws: float32 rounding is averaged out, leaving the
    SNR accurate to ~1e-8 dB.
    """
    nv = model.n_vertices
    src = 1 * nv + 70  # white layer, column 70
    snr = -7.5
    sig = np.hanning(40)
    woi = (model.time[30], model.time[70])  # t > woi0 and t <= woi1: 40 samples
    out = run_current_density_simulation(template, "sim_", src, sig, 10.0, 5.0, snr,
                                         sim_woi=woi, seed=11)
    S = load_meeg(out)
    v, f = model.layer_mesh(1)
    qg = geodesic_kernel(v, f, 5.0, 1, use_cache=False)
    q = np.zeros(model.vertices.shape[0])
    q[nv:] = 10.0 * qg[:, 70].toarray().ravel()
    clean = np.zeros((model.gain.shape[0], model.time.size))
    clean[:, 31:71] = (model.gain @ q)[:, None] * sig[None]
    rng = np.random.default_rng(11)
    n_tot = S.n_channels
    num = den = 0.0
    for k in range(S.n_trials):
        z = rng.standard_normal((n_tot, S.n_samples))
        resid = np.asarray(S.data[:, :, k], dtype=float)
        resid[: clean.shape[0]] -= clean
        num += np.sum(resid * z)
        den += np.sum(z * z)
    level = num / den
    realised = 20 * np.log10(np.mean(np.std(clean, axis=1, ddof=1)) / level)
    assert abs(realised - snr) < 1e-6


def test_pink_noise_has_1_over_f_spectrum():
    n = 4096
    y = sensor_noise(200, n, 3.0, "pink", np.random.default_rng(5))
    np.testing.assert_allclose(np.sqrt(np.mean(y**2, axis=1)), 3.0, rtol=1e-12)
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-12)
    p = np.mean(np.abs(np.fft.rfft(y, axis=1)) ** 2, axis=0)
    k = np.arange(1, n // 2)
    slope = np.polyfit(np.log10(k), np.log10(p[1:n // 2]), 1)[0]
    assert abs(slope + 1.0) < 0.1
    # white noise is flat
    w = sensor_noise(200, n, 3.0, "white", np.random.default_rng(5))
    pw = np.mean(np.abs(np.fft.rfft(w, axis=1)) ** 2, axis=0)
    assert abs(np.polyfit(np.log10(k), np.log10(pw[1:n // 2]), 1)[0]) < 0.1


def test_seed_reproducible_and_trials_independent(template, model):
    a = run_current_density_simulation(template, "a_", 5, np.ones((1, 101)), 10.0, 0.0, 0.0,
                                       seed=1)
    b = run_current_density_simulation(template, "b_", 5, np.ones((1, 101)), 10.0, 0.0, 0.0,
                                       seed=1)
    c = run_current_density_simulation(template, "c_", 5, np.ones((1, 101)), 10.0, 0.0, 0.0,
                                       seed=2)
    da, db, dc = (np.asarray(load_meeg(x).data) for x in (a, b, c))
    np.testing.assert_array_equal(da, db)
    assert not np.array_equal(da, dc)
    assert not np.array_equal(da[:, :, 0], da[:, :, 1])  # fresh noise per trial
    assert np.std(da[-1]) > 0  # the non-MEG channel gets noise too


def test_average_and_pink_files(template, model):
    out = run_current_density_simulation(template, "p_", [3, 150], np.ones((2, 101)),
                                         [10.0, 5.0], [0.0, 4.0], -3.0, noise_color="pink",
                                         average_trials=True, seed=4)
    M = load_meeg(out)
    assert M.fname.name == "mp_tmpl.mat" and M.n_trials == 1 and M.type == "evoked"
    S = load_meeg(M.path / "p_tmpl.mat")
    np.testing.assert_allclose(M.data[:, :, 0], np.asarray(S.data, float).mean(axis=2),
                               rtol=0, atol=np.abs(S.data).max() * 2**-23)
    assert len(M.inv) == 1  # forward model kept


def test_patch_weights_equal_kernel_columns(model):
    v, f = model.layer_mesh(0)
    qg = geodesic_kernel(v, f, 6.0, 1, use_cache=False)
    q = patch_weights(v, f, [10, 77], [6.0, 6.0], [10.0, 2.0])
    np.testing.assert_allclose(q[:, 0].toarray().ravel(), 10 * qg[:, 10].toarray().ravel(),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(q[:, 1].toarray().ravel(), 2 * qg[:, 77].toarray().ravel(),
                               rtol=1e-12, atol=1e-14)
    imp = patch_weights(v, f, [3], 0.0, 7.0)
    assert imp.nnz == 1 and imp[3, 0] == 7.0


def test_dipole_along_mesh_orientation_equals_point_patch(template, model):
    sig = np.ones((1, 101))
    nv = model.n_vertices
    link = (model.vertices[nv + 40] - model.vertices[40])
    link /= np.linalg.norm(link)
    # link vectors are the mesh orientation stored with the gain (SPM normals of this sheet
    # point the same way up to sign): use the normals the module would use
    from lameg.io.spm_inv import read_head_model

    n = read_head_model(template, 0).orientations_mri[40]
    a = run_dipole_simulation(template, "d_", 40, sig, n[None], 10.0, 0.0, 0.0, seed=9)
    b = run_current_density_simulation(template, "q_", 40, sig, 10.0, 0.0, 0.0, seed=9)
    # equal up to the rounding of the orientation's head <-> MRI rotation (~1e-16 relative)
    da, db = np.asarray(load_meeg(a).data), np.asarray(load_meeg(b).data)
    np.testing.assert_allclose(da, db, rtol=0, atol=1e-9 * np.abs(db).max())
    c = run_dipole_simulation(template, "e_", 40, sig, -n[None], 10.0, 0.0, 0.0, seed=9)
    clean_b = np.asarray(load_meeg(b).data, float).mean(axis=2)
    clean_c = np.asarray(load_meeg(c).data, float).mean(axis=2)
    assert np.corrcoef(clean_b[:-1].ravel(), clean_c[:-1].ravel())[0, 1] < -0.9
    assert abs(link @ n) > 0  # a real orientation was found


def test_input_validation(template, tmp_path, model):
    with pytest.raises(LamegValueError, match="samples"):
        run_current_density_simulation(template, "x_", 0, np.ones(50), 10, 5, 0,
                                       sim_woi=(model.time[10], model.time[30]))
    with pytest.raises(LamegValueError, match="prefix"):
        run_current_density_simulation(template, "", 0, np.ones(101), 10, 5, 0)
    with pytest.raises(LamegValueError, match="0-based"):
        run_current_density_simulation(template, "x_", 10**6, np.ones(101), 10, 5, 0)
    with pytest.raises(LamegValueError, match="noise_color"):
        run_current_density_simulation(template, "x_", 0, np.ones(101), 10, 5, 0,
                                       noise_color="brown")
    with pytest.raises(LamegValueError, match="seconds"):
        active_samples(model.time, (100.0, 200.0))
    bare = write_meeg(tmp_path / "bare.mat", np.zeros((3, 10, 1), np.float32), fsample=100.0,
                      chanlabels=["a", "b", "c"], chantypes="MEGMAG")
    with pytest.raises(LamegError, match="coregister"):
        run_current_density_simulation(bare.fname, "x_", 0, np.ones(10), 10, 5, 0)
