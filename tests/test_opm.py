"""OPM arrays, OPM head models and laminar model comparison with OPMs on the test participant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from lameg.datasets import copy_test_participant
from lameg.exceptions import LamegFormatError, LamegNotImplementedError, LamegValueError
from lameg.invert import load_forward_model_vertices, opm_headmodel
from lameg.io.spm_meeg import load_meeg
from lameg.laminar import model_comparison
from lameg.opm import opm_sensor_array, read_opm_layout
from lameg.simulate import run_current_density_simulation, setup_opm_simulation
from lameg.surf import LayerSurfaceSet
from lameg.util import load_meg_sensor_data


def _icosphere(radius, n_sub=4):
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                  [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
                 float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9],
                  [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2],
                  [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10],
                  [8, 6, 7], [9, 8, 1]])
    from lameg.opm import _subdivide

    for _ in range(n_sub):
        v, f = _subdivide(v, f)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    return radius * v + np.array([2.0, -5.0, 30.0]), f


def test_array_on_a_sphere():
    centre = np.array([2.0, -5.0, 30.0])
    v, f = _icosphere(90.0)
    pos, ori = opm_sensor_array(v, f, spacing=30.0, offset=6.5)
    r = np.linalg.norm(pos - centre, axis=1)
    # sphere: the convex-hull volume ratio scales the radius to 96.5 mm exactly, up to the
    # facetting of the mesh (chord sag of a 4-times subdivided icosahedron, < 0.3 %)
    np.testing.assert_allclose(r, 96.5, rtol=3e-3)
    radial = (pos - centre) / r[:, None]
    assert np.all(np.einsum("ij,ij->i", ori, -radial) > 0.995)  # inward, up to facet normals
    nn = cKDTree(pos).query(pos, k=2)[0][:, 1]
    assert 0.85 * 30 < np.median(nn) < 1.1 * 30 and nn.min() > 0.6 * 30
    # hexagonal packing at 30 mm would hold 4 pi R^2 / (sqrt(3)/2 s^2) = 150 sensors; an
    # irregular packing with the same median spacing holds fewer (here about 0.7 of it)
    expect = 4 * np.pi * 96.5 ** 2 / (np.sqrt(3) / 2 * 30 ** 2)
    assert 0.6 * expect < len(pos) < 1.15 * expect
    p3, o3 = opm_sensor_array(v, f, spacing=30.0, offset=6.5, axes=3)
    n = len(pos)
    np.testing.assert_array_equal(p3[:n], pos)
    np.testing.assert_array_equal(p3[n:2 * n], pos)
    gram = np.einsum("kij,lij->ikl", o3.reshape(3, n, 3), o3.reshape(3, n, 3))
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-12)
    up, _ = opm_sensor_array(v, f, spacing=30.0, wholehead=False, lowest_z=centre[2])
    assert 0 < len(up) < n and np.all(up[:, 2] > centre[2])
    with pytest.raises(LamegValueError):
        opm_sensor_array(v, f, axes=4)


def test_layout_file(tmp_path):
    fname = tmp_path / "positions.tsv"
    fname.write_text("Px\tPy\tPz\tOx\tOy\tOz\tname\n1\t2\t3\t0\t0\t2\tA\n4\t5\t6\t0\t3\t4\tB\n")
    pos, ori, names = read_opm_layout(fname)
    np.testing.assert_array_equal(pos, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(ori, [[0, 0, 1], [0, 0.6, 0.8]])
    assert names == ["A", "B"]
    (tmp_path / "bad.tsv").write_text("x\ty\n1\t2\n")
    with pytest.raises(LamegFormatError, match="columns"):
        read_opm_layout(tmp_path / "bad.tsv")


@pytest.fixture(scope="module")
def opm(tmp_path_factory, test_data_dir):
    p = copy_test_participant(tmp_path_factory.mktemp("opm"), datasets=[])
    s = LayerSurfaceSet(p.subj_id, 2, subjects_dir=p.subjects_dir)
    s.create(verbose=False)
    f = setup_opm_simulation(Path(p.root) / "opm.mat", s, s_rate=600, n_samples=200,
                             n_trials=20, viz=False)
    return s, f


def test_opm_dataset_and_head_model(opm, tmp_path):
    s, f = opm
    y, t, ch = load_meg_sensor_data(f)
    assert y.shape == (len(ch), 200, 20) and np.all(y == 0)
    np.testing.assert_allclose(np.diff(t), 1000 / 600)
    grad = load_meeg(f).sensors("MEG")
    scalp = s.load_head_mesh("scalp").darrays[0].data
    d = cKDTree(scalp).query(grad["coilpos"])[0]
    # sensors about 6.5 mm off the scalp (volume-ratio expansion of a non-spherical head)
    assert 3.0 < d.min() and np.median(d) == pytest.approx(6.5, abs=1.5) and d.max() < 12.0
    with pytest.raises(ValueError, match="mri_fname"):
        opm_headmodel(f, s, mri_fname=None)
    n = s.get_vertices_per_layer()
    lead = opm_headmodel(f, s, mri_fname=s.mri_file, layer_name="pial", lead=True, viz=False)
    assert lead.shape == (len(ch), n) and np.all(np.isfinite(lead))
    pial = load_forward_model_vertices(f)
    assert opm_headmodel(f, s, mri_fname=s.mri_file, layer_name="white", viz=False) is None
    white = load_forward_model_vertices(f)
    assert white.shape == pial.shape == (n, 3) and not np.allclose(white, pial)
    noisy = setup_opm_simulation(tmp_path / "noisy.mat", s, n_samples=50, noise_sd=10.0,
                                 seed=3, sensor_spacing=50, axes=2, viz=False)
    yn, _, chn = load_meg_sensor_data(noisy)
    assert yn.std() == pytest.approx(10.0, rel=0.05) and len(chn) % 2 == 0


@pytest.mark.parametrize("layer", [0, 1])
def test_model_comparison_assigns_the_layer(opm, layer):
    """An OPM simulation at the pial / white end of a column at 0 dB goes to that layer."""
    s, f = opm
    opm_headmodel(f, s, mri_fname=s.mri_file, viz=False)  # multilayer head model to simulate
    t = np.arange(200) / 600.0
    sig = np.exp(-(t - 0.1) ** 2 / (2 * 0.02 ** 2)) * np.cos(2 * np.pi * 20 * (t - 0.1))
    v = s.get_multilayer_vertex(layer, 1850)
    sim = run_current_density_simulation(f, f"L{layer}_", v, sig[None], 20.0, 5.0, snr=0.0,
                                         viz=False, seed=layer + 1)
    F, _ = model_comparison(None, sim, s, device="opm", viz=False,
                            forward_kwargs={"mri_fname": s.mri_file},
                            invert_kwargs={"n_temp_modes": 4})
    print(f"layer {layer}: F(pial) - F(white) = {F[0] - F[1]:.1f}")
    assert int(np.argmax(F)) == layer


# ---------------------------------------------------------------------------------------------
# Against SPM's spm_opm_sim (GNU Octave through lameg.spm)
# ---------------------------------------------------------------------------------------------

SPM_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "spm" / "spm-03564157-meeg.tar.xz"
# spm_opm_sim under Octave 7 needs the engine's compatibility m-files (multi-pattern
# startsWith/endsWith/contains, round(x, n), no check figure): lameg/spm/mfiles/octave_compat,
# put on the path by OctaveSPM itself.


@pytest.fixture(scope="module")
def octave_spm():
    import os
    import shutil as sh

    pytest.importorskip("oct2py")
    if sh.which("octave-cli") is None and sh.which("octave") is None:
        pytest.skip("GNU Octave is not installed")
    spm_dir = os.environ.get("LAMEG_SPM_DIR") or (SPM_ARCHIVE if SPM_ARCHIVE.exists() else None)
    if spm_dir is None:
        pytest.skip("no SPM tree (set LAMEG_SPM_DIR)")
    from lameg.spm import OctaveSPM

    eng = OctaveSPM(spm_dir=spm_dir, verbose=False)
    yield eng
    eng.close()


def _spm_grad(eng, folder, fields):
    s = "; ".join(f"S.{k}={v}" for k, v in fields.items())
    eng.eval(f"cd('{folder}'); rng('default'); S=[]; {s}; D=spm_opm_sim(S); "
             f"g=sensors(D,'MEG'); cp=g.coilpos; co=g.coilori; "
             f"save('-v7','{folder}/grad.mat','cp','co');")
    from scipy.io import loadmat

    g = loadmat(f"{folder}/grad.mat")
    return np.asarray(g["cp"], float), np.asarray(g["co"], float)


@pytest.mark.spm
@pytest.mark.slow
def test_layout_and_array_geometry_match_spm_opm_sim(octave_spm, opm, tmp_path):
    import nibabel as nib

    from lameg.mesh.distance import point_to_mesh
    from lameg.opm import expand_scalp, inward_axes

    s, _ = opm
    # 1) layout file: the same sensors, in mm, channel order kept
    rng = np.random.default_rng(5)
    pos = rng.normal(size=(10, 3))
    pos = 100 * pos / np.linalg.norm(pos, axis=1, keepdims=True)
    ori = -pos / 100 + 0.1 * rng.normal(size=(10, 3))
    tsv = tmp_path / "positions.tsv"
    tsv.write_text("Px\tPy\tPz\tOx\tOy\tOz\n" + "".join(
        "\t".join(f"{x:.10f}" for x in row) + "\n" for row in np.hstack([pos, ori])))
    sp_pos, sp_ori = _spm_grad(octave_spm, tmp_path, {"positions": f"'{tsv}'", "fs": 600,
                                                      "nSamples": 20, "fname": "'layout'"})
    ours = setup_opm_simulation(tmp_path / "ours.mat", s, sensor_positions_file=tsv,
                                n_samples=20, viz=False)
    g = load_meeg(ours).sensors("MEG")
    np.testing.assert_allclose(g["coilpos"], sp_pos, rtol=0, atol=1e-6)  # mm: 1e-9 m
    # spm_opm_sim keeps a layout's axes as given; lameg stores unit axes
    np.testing.assert_allclose(g["coilori"], sp_ori / np.linalg.norm(sp_ori, axis=1)[:, None],
                               atol=1e-12)
    # 2) generated array on the participant's scalp: SPM's sensors lie on lameg's expanded
    # scalp and their axes are lameg's inward face normals there. SPM handles the meshes in
    # single precision (GIfTI float32): 1e-6 m and 1e-5 are that precision at 100 mm.
    scalp = s.load_head_mesh("scalp")
    nib.save(scalp, tmp_path / "scalp.gii")
    mesh = s.get_mesh_path("pial", stage="ds")
    sp_pos, sp_ori = _spm_grad(octave_spm, tmp_path, {
        "scalp": f"'{tmp_path / 'scalp.gii'}'", "cortex": f"'{mesh}'", "fs": 600,
        "nSamples": 20, "fname": "'generated'", "space": 45, "offset": 6.5, "nDens": 2})
    v = scalp.darrays[0].data.astype(float)
    f = scalp.darrays[1].data
    surf = expand_scalp(v, f, 6.5)
    dist = np.abs(point_to_mesh(sp_pos, surf, f)[0])
    print(f"{len(sp_pos)} SPM sensors; largest distance to lameg's sensor surface "
          f"{dist.max() * 1e3:.2f} um")
    assert dist.max() < 1e-3  # mm
    np.testing.assert_allclose(inward_axes(surf, f, sp_pos), sp_ori, atol=1e-5)
    mine, _ = opm_sensor_array(v, f, spacing=45, offset=6.5)
    assert abs(len(mine) - len(sp_pos)) <= 0.2 * len(sp_pos)


def _layout(path, n=10, seed=5):
    """A layout TSV of ``n`` sensors 100 mm from the origin with non-unit, tilted axes."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(n, 3))
    pos = 100 * pos / np.linalg.norm(pos, axis=1, keepdims=True)
    ori = -pos / 100 + 0.1 * rng.normal(size=(n, 3))
    path.write_text("Px\tPy\tPz\tOx\tOy\tOz\n" + "".join(
        "\t".join(f"{x:.10f}" for x in row) + "\n" for row in np.hstack([pos, ori])))
    return path


@pytest.mark.spm
@pytest.mark.slow
def test_spm_backend_matches_native(octave_spm, opm, tmp_path):
    """setup_opm_simulation through spm_opm_sim (backend='spm') against the native back end."""
    import nibabel as nib

    from lameg.io.spm_inv import read_head_model
    from lameg.mesh.distance import point_to_mesh
    from lameg.opm import expand_scalp, inward_axes

    s, _ = opm
    tsv = _layout(tmp_path / "positions.tsv")
    kw = {"sensor_positions_file": tsv, "n_samples": 30, "n_trials": 2, "s_rate": 600,
          "viz": False}
    nat = setup_opm_simulation(tmp_path / "native" / "opm.mat", s, **kw)
    spm = setup_opm_simulation(tmp_path / "spm" / "opm", s, backend="spm",
                               spm_instance=octave_spm, **kw)
    # written where the native back end writes (the .mat suffix added), nothing in the cwd
    assert spm == str((tmp_path / "spm" / "opm.mat").resolve())
    assert (tmp_path / "spm" / "opm.dat").is_file() and not Path("opm.mat").exists()
    gn, gs = load_meeg(nat).sensors("MEG"), load_meeg(spm).sensors("MEG")
    assert list(gs["label"]) == list(gn["label"]) and gs["unit"] == gn["unit"] == "mm"
    # same sensors: 1e-6 m = 1e-3 mm (both read the same 10-decimal layout; measured 0)
    np.testing.assert_allclose(gs["coilpos"], gn["coilpos"], rtol=0, atol=1e-3)
    # spm_opm_sim keeps a layout's axes as given, lameg stores them as unit vectors: the
    # directions agree to 1e-6 (float64 round-off, measured ~1e-16)
    unit = gs["coilori"] / np.linalg.norm(gs["coilori"], axis=1, keepdims=True)
    np.testing.assert_allclose(unit, gn["coilori"], rtol=0, atol=1e-6)
    yn, tn, _ = load_meg_sensor_data(nat)
    ys, ts, _ = load_meg_sensor_data(spm)
    assert ys.shape == yn.shape == (10, 30, 2) and np.all(ys == 0) and np.all(yn == 0)
    np.testing.assert_allclose(ts, tn, atol=1e-9)
    # SPM's head model is on the cortex that was sent (multilayer, MRI space), Single Shell
    hm = read_head_model(spm)
    mesh = nib.load(s.get_mesh_path(None, stage="ds")).darrays[0].data
    assert hm.voltype == "Single Shell" and hm.is_mri_space
    np.testing.assert_allclose(hm.vertices_mm, mesh, atol=1e-4)  # GIfTI float32
    # each reads the other's: the native head model on SPM's dataset has the native dataset's
    # gain (same sensors; 1e-9 relative, float64 round-off), and SPM loads the native dataset
    ln = opm_headmodel(nat, s, mri_fname=s.mri_file, layer_name="pial", lead=True, viz=False)
    ls = opm_headmodel(spm, s, mri_fname=s.mri_file, layer_name="pial", lead=True, viz=False)
    print(f"layout: max |dpos| {np.abs(gs['coilpos'] - gn['coilpos']).max():.1e} mm, max |dori| "
          f"{np.abs(unit - gn['coilori']).max():.1e}, gain rel. diff "
          f"{np.abs(ls - ln).max() / np.abs(ln).max():.1e}")
    np.testing.assert_allclose(ls, ln, rtol=0, atol=1e-9 * np.abs(ln).max())
    octave_spm.eval(f"D = spm_eeg_load('{nat}'); assert(D.nchannels == 10 && D.ntrials == 2);")
    with pytest.raises(LamegNotImplementedError, match="noise_sd"):
        setup_opm_simulation(tmp_path / "n.mat", s, noise_sd=1.0, backend="spm",
                             spm_instance=octave_spm, **kw)
    # a generated array: SPM packs sensors (randomly, seeded) on the participant's scalp pushed
    # out as lameg does; every sensor lies on lameg's expanded scalp and its axis is lameg's
    # inward face normal there (1e-6 m and 1e-5: SPM's float32 meshes at ~100 mm)
    gen = setup_opm_simulation(tmp_path / "gen.mat", s, layer_name="pial", sensor_spacing=45,
                               density_checks=2, n_samples=20, backend="spm",
                               spm_instance=octave_spm, seed=3)
    g = load_meeg(gen).sensors("MEG")
    # the seed reaches SPM's packing (randi): the same seed gives the same array
    again = setup_opm_simulation(tmp_path / "again.mat", s, layer_name="pial",
                                 sensor_spacing=45, density_checks=2, n_samples=20,
                                 backend="spm", spm_instance=octave_spm, seed=3)
    np.testing.assert_array_equal(load_meeg(again).sensors("MEG")["coilpos"], g["coilpos"])
    scalp = s.load_head_mesh("scalp")
    v, f = scalp.darrays[0].data.astype(float), scalp.darrays[1].data
    surf = expand_scalp(v, f, 6.5)
    dist = np.abs(point_to_mesh(g["coilpos"], surf, f)[0])
    print(f"{len(dist)} sensors from spm_opm_sim; largest distance to lameg's sensor surface "
          f"{dist.max() * 1e3:.2f} um")
    assert dist.max() < 1e-3  # mm
    np.testing.assert_allclose(inward_axes(surf, f, g["coilpos"]), g["coilori"], atol=1e-5)
    mine, _ = opm_sensor_array(v, f, spacing=45, offset=6.5)
    assert abs(len(mine) - len(dist)) <= 0.2 * len(dist)


def test_coordsystem_json_coregisters_sensors_in_their_own_frame(opm, tmp_path):
    """Sensors and head coils moved into a rotated, shifted frame (m), with the MRI landmarks in
    coordsystem.json: the head model equals the one of the sensors given in MRI space."""
    import json
    import shutil

    from lameg.forward.coreg import apply_transform

    s, f = opm
    ref = opm_headmodel(f, s, mri_fname=s.mri_file, layer_name="pial", lead=True, viz=False)
    moved = tmp_path / "moved.mat"
    for ext in (".mat", ".dat"):
        shutil.copy(Path(f).with_suffix(ext), moved.with_suffix(ext))
    D = load_meeg(moved)
    fid = D.fiducials()
    labels, mri_fid = fid["fid"]["label"], np.asarray(fid["fid"]["pnt"], float)
    a = np.deg2rad(25.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    to_sensor = np.eye(4)
    to_sensor[:3, :3], to_sensor[:3, 3] = rot, [12.0, -30.0, 45.0]  # MRI mm -> sensor mm
    grad = D.header["sensors"]["meg"]
    scale = 1000.0 if str(grad.get("unit", "mm")) == "m" else 1.0
    for key in ("coilpos", "chanpos"):
        grad[key] = apply_transform(np.asarray(grad[key], float) * scale, to_sensor) / scale
    for key in ("coilori", "chanori"):
        grad[key] = np.asarray(grad[key], float) @ rot.T
    D.save()
    head = apply_transform(mri_fid, to_sensor) / 1000.0  # the coils, reported in metres
    coord = {"HeadCoilCoordinates": {k: head[i].tolist() for i, k in enumerate(labels)},
             "HeadCoilCoordinateUnits": "m",
             "AnatomicalLandmarkCoordinates": {k: mri_fid[i].tolist()
                                               for i, k in enumerate(labels)},
             "AnatomicalLandmarkCoordinateUnits": "mm"}
    cs = tmp_path / "coordsystem.json"
    cs.write_text(json.dumps(coord))
    lead = opm_headmodel(moved, s, coordsystem_fname=cs, mri_fname=s.mri_file,
                         layer_name="pial", lead=True, viz=False)
    # rigid registration of exact fiducials: equal to rounding of the transforms
    np.testing.assert_allclose(lead, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())
    del coord["AnatomicalLandmarkCoordinates"]
    cs.write_text(json.dumps(coord))
    with pytest.raises(ValueError, match="AnatomicalLandmarkCoordinates"):
        opm_headmodel(moved, s, coordsystem_fname=cs, mri_fname=s.mri_file, viz=False)
