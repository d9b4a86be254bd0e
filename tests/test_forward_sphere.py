"""Spherical models, sensors and gain assembly: analytic properties and MNE-Python agreement."""

from __future__ import annotations

import numpy as np
import pytest

from lameg.exceptions import LamegValueError
from lameg.forward.gain import (
    clear_gain_cache,
    compute_gain,
    compute_leadfield,
    reduce_rank_project,
    spm_cond_units,
)
from lameg.forward.sensors import SensorArray, unit_scale
from lameg.forward.sphere import (
    LocalSpheresModel,
    SphereModel,
    fit_local_spheres,
    fit_sphere,
    sarvas_leadfield,
)


def _helmet(n: int, rng: np.random.Generator, radius: float = 0.12, centre=(0.0, 0.0, 0.04)):
    d = rng.normal(size=(n, 3))
    d[:, 2] = np.abs(d[:, 2]) + 0.2
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * radius + np.asarray(centre), d


def _sources(n: int, rng: np.random.Generator, centre=(0.0, 0.0, 0.04), spread=0.03):
    return rng.normal(size=(n, 3)) * spread + np.asarray(centre)


def test_fit_sphere_exact_on_sphere_points():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(200, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    c, r = fit_sphere(d * 0.0923 + [0.01, -0.02, 0.03])
    np.testing.assert_allclose(c, [0.01, -0.02, 0.03], atol=1e-12)
    assert abs(r - 0.0923) < 1e-12


def test_fit_sphere_rejects_bad_input():
    with pytest.raises(LamegValueError):
        fit_sphere(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        fit_sphere(np.full((10, 3), np.nan))


def test_radial_dipole_is_silent_and_field_is_rotation_invariant():
    rng = np.random.default_rng(2)
    pos, ori = _helmet(40, rng)
    o = np.array([0.0, 0.0, 0.04])
    src = _sources(20, rng)
    lf = sarvas_leadfield(src, pos, ori, o)  # (20, 3, 40)
    radial = (src - o) / np.linalg.norm(src - o, axis=1, keepdims=True)
    silent = np.einsum("skc,sk->sc", lf, radial)
    assert np.abs(silent).max() < 1e-12 * np.abs(lf).max()
    # rotating everything about the sphere centre leaves the field unchanged
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    lf_rot = sarvas_leadfield((src - o) @ q.T + o, (pos - o) @ q.T + o, ori @ q.T, o)
    mom = rng.normal(size=(20, 3))
    b1 = np.einsum("skc,sk->sc", lf, mom)
    b2 = np.einsum("skc,sk->sc", lf_rot, mom @ q.T)
    np.testing.assert_allclose(b2, b1, rtol=1e-10, atol=1e-12 * np.abs(b1).max())


def test_matches_textbook_sarvas_formula():
    # Sarvas (1987) eq. 25 written independently of FieldTrip's algebra:
    # B = mu0/(4 pi F^2) (F q x r0 - (q x r0 . r) grad F)
    rng = np.random.default_rng(11)
    pos, ori = _helmet(7, rng)
    o = np.array([0.003, -0.002, 0.04])
    src = _sources(6, rng)
    lf = sarvas_leadfield(src, pos, ori, o)
    for i, r0 in enumerate(src - o):
        for c, (r, u) in enumerate(zip(pos - o, ori)):
            a_vec = r - r0
            a, rn = np.linalg.norm(a_vec), np.linalg.norm(r)
            f = a * (rn * a + rn * rn - r0 @ r)
            grad_f = (a * a / rn + a_vec @ r / a + 2 * a + 2 * rn) * r - (
                a + 2 * rn + a_vec @ r / a) * r0
            for k in range(3):
                q = np.eye(3)[k]
                qxr0 = np.cross(q, r0)
                b = 1e-7 / f**2 * (f * qxr0 - (qxr0 @ r) * grad_f)
                assert lf[i, k, c] == pytest.approx(b @ u, rel=1e-9, abs=1e-22)


def test_single_sphere_equals_mne_sphere():
    mne = pytest.importorskip("mne")
    from mne.io.constants import FIFF

    rng = np.random.default_rng(3)
    n = 60
    pos, ori = _helmet(n, rng)
    info = mne.create_info([f"M{i:03d}" for i in range(n)], 1000.0, "mag")
    for i, ch in enumerate(info["chs"]):
        ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
        ez = ori[i]
        ex = np.cross(ez, [1.0, 0, 0] if abs(ez[0]) < 0.9 else [0, 1.0, 0])
        ex /= np.linalg.norm(ex)
        ch["loc"][:] = np.r_[pos[i], ex, np.cross(ez, ex), ez]
    info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
    o = np.array([0.002, -0.003, 0.041])
    src_pos = _sources(40, rng)
    src = mne.setup_volume_source_space(pos={"rr": src_pos, "nn": np.tile([0, 0, 1.0], (40, 1))},
                                        verbose=False)
    bem = mne.make_sphere_model(r0=o, head_radius=None, verbose=False)
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=bem, meg=True, eeg=False,
                                    verbose=False)
    assert fwd["src"][0]["nuse"] == 40
    L_mne = fwd["sol"]["data"]  # (n_chan, 3 * n_src), T/(A m), head frame
    sens = SensorArray.point_magnetometers(pos, ori, [c["ch_name"] for c in info["chs"]])
    ours = compute_leadfield(src_pos, sens, SphereModel(o, 0.09))
    ours = ours.transpose(2, 0, 1).reshape(n, -1)
    # same Sarvas formula in double precision: measured 2e-15
    assert np.linalg.norm(ours - L_mne) / np.linalg.norm(L_mne) < 1e-6


def test_local_spheres_with_identical_spheres_equal_single_sphere():
    rng = np.random.default_rng(4)
    pos, ori = _helmet(30, rng)
    sens = SensorArray.axial_gradiometers(pos, ori)
    o = np.array([0.0, 0.01, 0.04])
    src = _sources(15, rng)
    single = compute_leadfield(src, sens, SphereModel(o, 0.09))
    local = LocalSpheresModel(np.tile(o, (30, 1)), np.full(30, 0.09), list(sens.labels))
    np.testing.assert_allclose(compute_leadfield(src, sens, local), single, rtol=1e-12,
                               atol=1e-14 * np.abs(single).max())


def test_fit_local_spheres_on_a_sphere():
    rng = np.random.default_rng(5)
    d = rng.normal(size=(3000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.array([0.0, 0.0, 0.04])
    scalp = d * 0.095 + o
    pos, ori = _helmet(20, rng, radius=0.115, centre=o)
    sens = SensorArray.axial_gradiometers(pos, ori)
    model = fit_local_spheres(scalp, sens)
    np.testing.assert_allclose(model.origins, np.tile(o, (20, 1)), atol=1e-9)
    np.testing.assert_allclose(model.radii, 0.095, atol=1e-9)


def test_rank_reduction_matches_svd():
    rng = np.random.default_rng(6)
    lf = rng.normal(size=(25, 3, 40))
    n = rng.normal(size=(25, 3))
    got = reduce_rank_project(lf, n)
    for i in range(25):
        u, s, vt = np.linalg.svd(lf[i].T, full_matrices=False)
        s[2] = 0
        want = (u * s) @ vt @ n[i]
        np.testing.assert_allclose(got[:, i], want, rtol=1e-10, atol=1e-12)
    # lead fields laid out (3, n_chan, n_src), as the single-shell model returns them
    lt = np.ascontiguousarray(lf.transpose(1, 2, 0)).transpose(2, 0, 1)
    np.testing.assert_allclose(reduce_rank_project(lt, n), got, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(reduce_rank_project(lt, n, None), reduce_rank_project(lf, n, None),
                               rtol=1e-12, atol=1e-12)


def test_gain_units_and_planar_gradiometers():
    rng = np.random.default_rng(7)
    pos, ori = _helmet(10, rng)
    direction = np.cross(ori, [0, 0, 1.0])
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    baseline = 0.0168
    planar = SensorArray.planar_gradiometers(pos, ori, direction, baseline=baseline)
    mags = SensorArray.point_magnetometers(
        np.vstack([pos + 0.5 * baseline * direction, pos - 0.5 * baseline * direction]),
        np.vstack([ori, ori]))
    o = np.array([0.0, 0.0, 0.04])
    src = _sources(5, rng)
    n = rng.normal(size=(5, 3))
    g_pl = compute_gain(src, n, planar, SphereModel(o, 0.09), reducerank=None)
    g_mag = compute_gain(src, n, mags, SphereModel(o, 0.09), reducerank=None)
    # fT/mm per nA m = (fT difference / baseline in mm)
    np.testing.assert_allclose(g_pl, (g_mag[:10] - g_mag[10:]) / (baseline * 1e3), rtol=1e-10)
    assert unit_scale("T", "fT") == pytest.approx(1e15)
    assert unit_scale("T/m", "fT/mm") == pytest.approx(1e12)
    # fT/(nA m) = T/(A m) * 1e15 / 1e9
    lf = compute_leadfield(src, mags, SphereModel(o, 0.09))
    np.testing.assert_allclose(g_mag, np.einsum("skc,sk->cs", lf, n) * 1e6, rtol=1e-12)
    # written into a given array (as into a gain file's map); a wrong one is named
    out = np.zeros(g_mag.shape, order="F")
    assert compute_gain(src, n, mags, SphereModel(o, 0.09), reducerank=None, out=out) is out
    np.testing.assert_array_equal(out, g_mag)
    out.flags.writeable = False
    with pytest.raises(LamegValueError, match="writable float64"):
        compute_gain(src, n, mags, SphereModel(o, 0.09), out=out)


def test_sensor_from_grad_units():
    rng = np.random.default_rng(8)
    pos, ori = _helmet(12, rng)
    grad = {"coilpos": np.vstack([pos, pos + 0.05 * ori]) * 1000, "coilori": np.vstack([ori, ori]),
            "tra": np.hstack([np.eye(12), -np.eye(12)]), "label": [f"C{i}" for i in range(12)],
            "unit": "mm", "chanunit": ["T"] * 12}
    sens = SensorArray.from_grad(grad)
    np.testing.assert_allclose(sens.coilpos[:12], pos, atol=1e-15)
    sub = sens.select(["C3", "C1"])
    assert sub.labels == ["C3", "C1"] and sub.n_coils == 4
    with pytest.raises(LamegValueError):
        sens.select(["nope"])
    # planar gradiometers stored in fT/cm with positions in cm: converted to T/m
    gradp = {"coilpos": pos * 100, "coilori": ori, "tra": np.eye(12) / 1.68, "unit": "cm",
             "label": [f"P{i}" for i in range(12)], "chanunit": ["fT/cm"] * 12}
    sp = SensorArray.from_grad(gradp)
    assert sp.chanunit == ["T/m"] * 12
    np.testing.assert_allclose(sp.tra, np.eye(12) / 1.68 * 1e-15 * 100)
    with pytest.raises(LamegValueError):
        SensorArray.from_grad({"label": ["a"]})
    with pytest.raises(LamegValueError):  # metres expected after conversion
        SensorArray.point_magnetometers(pos * 1000, ori)


def test_gain_cache_roundtrip(tmp_path):
    rng = np.random.default_rng(9)
    pos, ori = _helmet(16, rng)
    sens = SensorArray.axial_gradiometers(pos, ori)
    src = _sources(50, rng)
    n = rng.normal(size=(50, 3))
    model = SphereModel(np.array([0.0, 0.0, 0.04]), 0.09)
    g1 = compute_gain(src, n, sens, model, cache=tmp_path, cache_block=20)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 3
    # a second call reads the cache; changing one source recomputes only its block
    stamp = {f.name: f.stat().st_mtime_ns for f in files}
    src2 = src.copy()
    src2[45] += 0.001
    g2 = compute_gain(src2, n, sens, model, cache=tmp_path, cache_block=20)
    files2 = sorted(tmp_path.glob("*.npz"))
    assert len(files2) == 4
    assert all(stamp[f.name] == f.stat().st_mtime_ns for f in files2 if f.name in stamp)
    np.testing.assert_array_equal(g2[:, :40], g1[:, :40])
    assert not np.allclose(g2[:, 45], g1[:, 45])
    np.testing.assert_array_equal(compute_gain(src, n, sens, model, cache=tmp_path,
                                               cache_block=20), g1)
    # threads give the same numbers
    np.testing.assert_array_equal(compute_gain(src, n, sens, model, block_size=7, n_jobs=3),
                                  compute_gain(src, n, sens, model, block_size=7, n_jobs=1))
    assert clear_gain_cache(tmp_path) == 4 and not list(tmp_path.glob("*.npz"))


def test_gain_cache_size_limit(tmp_path, monkeypatch):
    """The default cache skips gains above LAMEG_GAIN_CACHE_MAX_MB; an explicit folder does not."""
    rng = np.random.default_rng(9)
    pos, ori = _helmet(16, rng)
    sens = SensorArray.axial_gradiometers(pos, ori)
    src, n = _sources(50, rng), rng.normal(size=(50, 3))
    model = SphereModel(np.array([0.0, 0.0, 0.04]), 0.09)
    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("LAMEG_GAIN_CACHE_MAX_MB", "0.001")  # 1 kB < 16 x 50 x 8 bytes
    g = compute_gain(src, n, sens, model, cache=True)
    assert not list((tmp_path / "root").rglob("*.npz"))
    np.testing.assert_array_equal(compute_gain(src, n, sens, model, cache=tmp_path / "own"), g)
    assert list((tmp_path / "own").glob("*.npz"))
    monkeypatch.setenv("LAMEG_GAIN_CACHE_MAX_MB", "1")
    compute_gain(src, n, sens, model, cache=True)
    assert list((tmp_path / "root").rglob("*.npz"))
    for bad in ("big", "-1", "nan"):
        monkeypatch.setenv("LAMEG_GAIN_CACHE_MAX_MB", bad)
        with pytest.raises(LamegValueError, match="LAMEG_GAIN_CACHE_MAX_MB"):
            compute_gain(src, n, sens, model, cache=True)


def test_spm_cond_units():
    g = np.full((3, 3), 100.0)
    assert spm_cond_units(g)[1] == 1.0
    g2, s = spm_cond_units(g * 1e-9)
    assert s == pytest.approx(1e8) and np.abs(g2).max() == pytest.approx(10.0)


def test_positions_must_be_metres():
    rng = np.random.default_rng(10)
    pos, ori = _helmet(8, rng)
    sens = SensorArray.point_magnetometers(pos, ori)
    with pytest.raises(LamegValueError, match="metres"):
        compute_gain(np.array([[10.0, 20.0, 40.0]]), np.array([[0, 0, 1.0]]), sens,
                     SphereModel(np.zeros(3), 0.09))


def test_sensors_from_mne_info_match_spm_grad(test_data_dir):
    """MNE's CTF coil model (8 integration points per channel) equals the grad in the SPM file."""
    mne = pytest.importorskip("mne")
    from lameg.io.spm_meeg import load_meeg

    meg_dir = test_data_dir / "sub-01" / "meg" / "ses-01"
    info = mne.io.read_info(meg_dir / "fif" / "sub-01_ses-01_task-sim_ctf-pial-epo.fif",
                            verbose=False)
    from_mne = SensorArray.from_mne_info(info, accuracy="normal")
    D = load_meeg(meg_dir / "spm" / "sim_ctf_pial.mat")
    from_spm = SensorArray.from_grad(D.sensors("MEG"))
    assert [lab.split("-")[0] for lab in from_mne.labels] == from_spm.labels
    rng = np.random.default_rng(12)
    src = _sources(20, rng, centre=(0.0, 0.0, 0.05))
    model = SphereModel(np.array([0.0, 0.0, 0.045]), 0.09)
    a = compute_leadfield(src, from_mne, model)
    b = compute_leadfield(src, from_spm, model)
    # same coil geometry; FIF stores channel locations in float32 (measured 3e-7)
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5


def test_ctf_reference_compensation_from_mne_info(test_data_dir):
    """Third-order synthetic gradiometers: compensated lead field = L_meg - W L_ref."""
    mne = pytest.importorskip("mne")
    from mne.io.constants import FIFF

    fif = test_data_dir / "sub-01" / "meg" / "ses-01" / "fif" / "sub-01_ses-01_task-sim_ctf-pial-epo.fif"
    info = mne.io.read_info(fif, verbose=False)
    info = mne.pick_info(info, mne.pick_types(info, meg=True)[:20])
    raw = mne.io.RawArray(np.zeros((20, 4)), info, verbose=False)
    ref = mne.create_info(["R1", "R2", "R3"], info["sfreq"], "mag")
    for i, ch in enumerate(ref["chs"]):  # three orthogonal reference magnetometers
        ch["kind"] = FIFF.FIFFV_REF_MEG_CH
        ch["coil_type"] = FIFF.FIFFV_COIL_CTF_REF_MAG
        ez, ex = np.eye(3)[i], np.eye(3)[(i + 1) % 3]
        ch["loc"][:] = np.r_[np.array([0, 0, 0.2]) + 0.02 * ez, ex, np.cross(ez, ex), ez]
    raw.add_channels([mne.io.RawArray(np.zeros((3, 4)), ref, verbose=False)],
                     force_update_info=True)
    w = np.random.default_rng(13).normal(size=(20, 3)) * 0.1
    comp = {"ctfkind": 3, "kind": 3, "save_calibrated": False, "rowcals": np.ones(20),
            "colcals": np.ones(3),
            "data": {"nrow": 20, "ncol": 3, "row_names": raw.ch_names[:20],
                     "col_names": ["R1", "R2", "R3"], "data": w}}
    with raw.info._unlock():
        raw.info["comps"] = [comp]
    for ch in raw.info["chs"][:20]:  # data recorded in grade 3
        ch["coil_type"] = int(ch["coil_type"]) | (3 << 16)
    compensated = SensorArray.from_mne_info(raw.info)
    for ch in raw.info["chs"][:20]:
        ch["coil_type"] = int(ch["coil_type"]) & 0xFFFF
    plain = SensorArray.from_mne_info(raw.info)
    refs = SensorArray.from_mne_info(raw.info, picks=["R1", "R2", "R3"])
    src = _sources(5, np.random.default_rng(14), centre=(0.0, 0.0, 0.05), spread=0.02)
    model = SphereModel(np.array([0.0, 0.0, 0.04]), 0.09)
    want = compute_leadfield(src, plain, model) - np.einsum(
        "cr,skr->skc", w, compute_leadfield(src, refs, model))
    got = compute_leadfield(src, compensated, model)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_fit_local_spheres_matches_per_channel_fits():
    """The batched fits equal FieldTrip's per-channel loop (ellipsoidal head, CTF-like array)."""
    rng = np.random.default_rng(15)
    d = rng.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    scalp = d * [0.075, 0.095, 0.085] + [0.0, 0.0, 0.04]
    pos, ori = _helmet(30, rng, radius=0.11, centre=(0.0, 0.0, 0.04))
    sens = SensorArray.axial_gradiometers(pos, ori)
    model = fit_local_spheres(scalp, sens, radius=0.085, maxradius=0.2, baseline=0.05)
    for ch in range(30):  # the literal algorithm: closest coil of the channel, nearby points
        near = np.linalg.norm(scalp - pos[ch], axis=1) < 0.085
        o, r = fit_sphere(scalp[near])
        np.testing.assert_allclose(model.origins[ch], o, atol=1e-9)
        assert abs(model.radii[ch] - r) < 1e-9


def test_conductor_models_share_the_interface():
    """Every model answers coil_leadfield/cache_key through the one base class; a model that
    implements neither raises instead of returning something."""
    from lameg.exceptions import LamegNotImplementedError
    from lameg.forward.conductor import ConductorModel

    sens = SensorArray.point_magnetometers([[0, 0, 0.12]], [[0, 0, 1.0]])
    sphere = SphereModel(origin=np.zeros(3), radius=0.09)
    assert isinstance(sphere, ConductorModel)
    np.testing.assert_array_equal(
        sphere.coil_leadfield([[0.01, 0, 0.05]], sens),
        sarvas_leadfield([[0.01, 0, 0.05]], sens.coilpos, sens.coilori, np.zeros(3)))
    assert sphere.cache_key() == "sphere:[0.0, 0.0, 0.0]"
    with pytest.raises(LamegNotImplementedError, match="_coil_leadfield"):
        ConductorModel().coil_leadfield(np.zeros((1, 3)), sens)
    with pytest.raises(LamegNotImplementedError, match="_cache_text"):
        ConductorModel().cache_key()
