"""The SPM back end against the native one, with real SPM running in GNU Octave.

Everything here runs unmodified SPM (the tree of ``../shared/spm``, or ``$LAMEG_SPM_DIR``)
through :class:`lameg.spm.OctaveSPM`; it skips with the reason when Octave, oct2py or the SPM
tree is absent. SPM's m-code is slow under Octave, so the test participant's decimated
meshes are used (2015 sources per layer) and the forward-model comparison uses a further
decimated cortex (a few hundred sources). All tests share one engine and one set of prepared
datasets (module fixtures; ``make test`` runs a file on one worker).

Tolerances, and why:

* gain matrices: 1e-6 relative (max |difference| / max |G|) -- the same physics in double
  precision; the residual differences are floating-point summation order;
* free energy: |dF| < 0.5 (the issue's criterion; the same maths gives ~1e-8 here);
* source operators and time series: correlation >= 0.9999;
* simulated data at SNR 200 dB (noise 1e-10 of the signal): 1e-6 relative (float32 data);
* ReML differential test: F to 1e-6 relative, hyperparameters to 1e-5 relative (the
  Fisher-scoring iterations amplify rounding a little).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lameg.datasets import copy_test_participant
from lameg.exceptions import LamegNotImplementedError, LamegValueError
from lameg.io.spm_meeg import load_meeg
from lameg.surf import LayerSurfaceSet

pytestmark = pytest.mark.spm

SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SPM_TREE = Path(os.environ.get("LAMEG_SPM_DIR") or SHARED / "spm" / "spm-03564157-meeg.tar.xz")


@pytest.fixture(scope="module")
def eng():
    if shutil.which("octave-cli") is None and shutil.which("octave") is None:
        pytest.skip("GNU Octave is not installed (apt-get install octave liboctave-dev)")
    pytest.importorskip("oct2py", reason="oct2py is not installed (pip install 'lameg[spm]')")
    if not SPM_TREE.exists():
        pytest.skip(f"no SPM tree: {SPM_TREE} is absent (set LAMEG_SPM_DIR)")
    from lameg.spm import OctaveSPM

    e = OctaveSPM(SPM_TREE, verbose=False)
    yield e
    e.close()


@pytest.fixture(scope="module")
def case(tmp_path_factory, test_data_dir, eng):
    """A participant with a 2-layer set and natively co-registered single/multilayer copies."""
    from lameg.invert import coregister

    root = tmp_path_factory.mktemp("spmcase")
    p = copy_test_participant(root / "p", datasets=["sim_ctf_pial"])
    surf = LayerSurfaceSet(p.subj_id, 2, subjects_dir=p.subjects_dir)
    surf.create(verbose=False)
    out = {"p": p, "surf": surf, "root": root}
    for name, layer in (("single", "pial"), ("multi", None)):
        d = root / name
        d.mkdir()
        for ext in (".mat", ".dat"):  # SPM needs the .dat name the header records
            shutil.copy(Path(p.dataset("sim_ctf_pial")).with_suffix(ext), d)
        out[name] = d / "sim_ctf_pial.mat"
        coregister(p.fid_coords, out[name], surf, layer_name=layer, viz=False)
    return out


def _copy(src: Path, dest_dir: Path) -> Path:
    """Copy a dataset with its gain file(s) into ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for f in src.parent.iterdir():
        if f.name.startswith((src.stem + ".", "SPMgainmatrix_" + src.stem)):
            shutil.copy(f, dest_dir / f.name)
    return dest_dir / src.name


def _corr(a, b) -> float:
    a = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
    b = b.toarray() if hasattr(b, "toarray") else np.asarray(b)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# --- tree preparation --------------------------------------------------------------------------


def test_prepared_tree_is_reused_and_complete(eng):
    from lameg.spm import prepare_spm_tree, spm_cache_root

    mtime = SPM_TREE.stat().st_mtime_ns
    mex = eng.tree.spm_dir / "spm_existfile.mex"
    built = mex.stat().st_mtime_ns
    tree = prepare_spm_tree(SPM_TREE, verbose=False)
    assert mex.stat().st_mtime_ns == built, "a prepared tree must be reused, not rebuilt"
    assert tree.spm_dir == eng.tree.spm_dir
    assert spm_cache_root() in tree.spm_dir.parents
    assert SPM_TREE.stat().st_mtime_ns == mtime  # the source is read only
    assert (tree.spm_dir / "spm_existfile.mex").is_file()
    priv = tree.spm_dir / "external" / "fieldtrip" / "forward" / "private"
    assert (priv / "meg_leadfield1.mex").is_file()
    assert (tree.shim_dir / "convertStringsToChars.m").is_file()
    assert eng.version.startswith("SPM")


# --- co-registration and gain matrices ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_cortex(case):
    """The pial mesh decimated to a few hundred vertices, with its stored orientations."""
    from lameg.mesh.decimate import decimate_vertex_subset

    surf = case["surf"]
    g = nib.load(surf.get_mesh_path("pial", stage="ds"))
    v, f = g.darrays[0].data, g.darrays[1].data
    n = g.darrays[2].data
    kept, faces = decimate_vertex_subset(v, f, target_faces=300)
    from lameg.io.gifti import create_surf_gifti

    path = case["root"] / "small_pial.gii"
    nib.save(create_surf_gifti(v[kept], faces, n[kept]), str(path))
    return path


@pytest.mark.parametrize("model", ["Single Sphere", "Single Shell"])
def test_coregistration_and_gain_match_native(case, eng, small_cortex, tmp_path, model):
    from lameg.invert import coregister_mesh
    from lameg.io.spm_inv import read_head_model

    p, surf = case["p"], case["surf"]
    iskull, scalp = tmp_path / "iskull.gii", tmp_path / "scalp.gii"
    # SPM's Single Shell costs grow with the boundary size: a 2562-vertex inner skull
    from lameg.io.gifti import create_surf_gifti
    from lameg.mesh.decimate import decimate_vertex_subset

    ib = surf.load_head_mesh("iskull")
    iv, iff = ib.darrays[0].data, ib.darrays[1].data
    kept, faces = decimate_vertex_subset(iv, iff, target_faces=5120)
    nib.save(create_surf_gifti(iv[kept], faces), str(iskull))
    nib.save(surf.load_head_mesh("scalp"), str(scalp))
    heads = {}
    for backend in ("native", "spm"):
        d = tmp_path / backend
        d.mkdir()
        for ext in (".mat", ".dat"):
            shutil.copy(Path(p.dataset("sim_ctf_pial")).with_suffix(ext), d)
        coregister_mesh(p.fid_coords, d / "sim_ctf_pial.mat", str(small_cortex), iskull_fname=str(iskull),
                        scalp_fname=str(scalp), forward_model_type=model, backend=backend,
                        **({"spm_instance": eng} if backend == "spm" else {}))
        heads[backend] = read_head_model(d / "sim_ctf_pial.mat", 0)
    nat, spm = heads["native"], heads["spm"]
    G_nat, G_spm = nat.gain(), spm.gain()
    assert G_nat.shape == G_spm.shape == (274, len(nib.load(str(small_cortex)).darrays[0].data))
    rel = np.abs(G_nat - G_spm).max() / np.abs(G_spm).max()
    print(f"{model}: gain max relative difference {rel:.2e}")
    assert rel < 1e-6
    # the stored co-registration is the same rigid transform
    np.testing.assert_allclose(nat.entry["datareg"]["toMNI"], spm.entry["datareg"]["toMNI"],
                               atol=1e-6)


# --- inversions ---------------------------------------------------------------------------------


def _spm_f(eng, path: Path) -> float:
    """F of the stored inversion, read back by SPM itself (``spm_eeg_load``)."""
    return float(eng.call("lameg_spm_inverse_f", str(path), 1.0))


@pytest.mark.parametrize("method, layers", [("EBB", "single"), ("MSP", "single"),
                                            ("EBB", "multi"), ("MSP", "multi")])
def test_inversions_agree_and_cross_read(case, eng, tmp_path, method, layers):
    from lameg.invert import invert_ebb, invert_msp
    from lameg.source import load_source_time_series

    surf = case["surf"]
    layer = "pial" if layers == "single" else None
    fn = invert_ebb if method == "EBB" else invert_msp
    kw = dict(layer_name=layer, n_temp_modes=4, n_spatial_modes=60, return_mu_matrix=True,
              viz=False)
    if method == "MSP":
        nd = 2015 if layers == "single" else 4030
        kw["priors"] = [10, 700, 1500, nd - 5]
    dn = _copy(case[layers], tmp_path / "native")
    ds = _copy(case[layers], tmp_path / "spm")
    Fn, cvn, mun = fn(dn, surf, **kw)
    Fs, cvs, mus = fn(ds, surf, backend="spm", spm_instance=eng, **kw)
    print(f"{method} {layers}: F native {float(Fn):.4f}, SPM {float(Fs):.4f}")
    assert abs(float(Fs) - float(Fn)) < 0.5
    assert np.shape(cvs) == np.shape(cvn)
    assert _corr(mus, mun) >= 0.9999
    # native reads SPM's result, SPM reads the native one
    ts_s, t_s, _ = load_source_time_series(ds)
    ts_n, t_n, _ = load_source_time_series(dn)
    np.testing.assert_allclose(t_s, t_n)
    assert _corr(ts_s, ts_n) >= 0.9999
    assert abs(_spm_f(eng, dn) - float(Fn)) < 1e-6 * abs(float(Fn))
    assert abs(_spm_f(eng, ds) - float(Fs)) < 1e-6 * abs(float(Fs))


def test_sliding_window_inversion_agrees(case, eng, tmp_path):
    from lameg.invert import invert_sliding_window_ebb

    surf = case["surf"]
    wois = [[-50.0, 0.0], [0.0, 50.0]]
    dn = _copy(case["single"], tmp_path / "native")
    ds = _copy(case["single"], tmp_path / "spm")
    kw = dict(layer_name="pial", wois=wois, n_spatial_modes=60, viz=False)
    Fn, wn = invert_sliding_window_ebb(dn, surf, **kw)
    Fs, ws = invert_sliding_window_ebb(ds, surf, backend="spm", spm_instance=eng, **kw)
    print("sliding windows: F native", Fn, "SPM", Fs)
    np.testing.assert_allclose(ws, wn)
    assert Fs.shape == Fn.shape == (2,)
    assert np.all(np.abs(Fs - Fn) < 0.5)
    # the stored result is readable by SPM and by lameg (first window's operator)
    from lameg.io.spm_inv import read_inverse

    inv = read_inverse(ds, 0)
    np.testing.assert_allclose(inv.free_energy, Fs)
    assert inv.woi.shape == (2, 2)
    assert abs(_spm_f(eng, ds) - Fs[0]) < 1e-6 * abs(Fs[0])


def test_fork_only_settings_raise(case, eng, tmp_path):
    from lameg.invert import invert_ebb_layer
    from lameg.simulate import run_current_density_simulation, run_dipole_simulation

    ds = _copy(case["multi"], tmp_path / "spm")
    with pytest.raises(LamegNotImplementedError, match="EBBlayer"):
        invert_ebb_layer(ds, case["surf"], viz=False, backend="spm", spm_instance=eng)
    sig = np.zeros((1, 151))
    with pytest.raises(LamegNotImplementedError, match="dipole"):
        run_dipole_simulation(ds, "x_", [1], sig, np.array([[0.0, 0.0, 1.0]]), 10.0, 0.0, 0.0,
                              viz=False, backend="spm", spm_instance=eng)
    with pytest.raises(LamegNotImplementedError, match="pink"):
        run_current_density_simulation(ds, "x_", [1], sig, 10.0, 0.0, 0.0, noise_color="pink",
                                       viz=False, backend="spm", spm_instance=eng)
    with pytest.raises(LamegNotImplementedError, match="MNE BEM"):
        from lameg.invert import coregister

        coregister(case["p"].fid_coords, ds, case["surf"], forward_model_type="MNE BEM",
                   viz=False, backend="spm", spm_instance=eng)


# --- simulations --------------------------------------------------------------------------------


def test_current_density_simulation_agrees(case, eng, tmp_path):
    from lameg.simulate import run_current_density_simulation, snr_noise_level

    src = _copy(case["single"], tmp_path)
    D = load_meeg(src)
    t = np.asarray(D.time)
    sig = (np.sin(2 * np.pi * 10 * t) * np.exp(-((t - 0.05) / 0.03) ** 2))[None, :]
    out = {}
    for backend in ("native", "spm"):
        kw = {"spm_instance": eng} if backend == "spm" else {}
        out[backend] = run_current_density_simulation(
            src, f"{backend}200_", [321], sig, 10.0, 0.0, 200.0, viz=False, seed=1,
            backend=backend, **kw)
    a = np.asarray(load_meeg(out["spm"]).data[:], dtype=float)
    b = np.asarray(load_meeg(out["native"]).data[:], dtype=float)
    rel = np.abs(a - b).max() / np.abs(b).max()
    print(f"simulation at 200 dB: max relative difference {rel:.2e}")
    assert rel < 1e-6
    # at -5 dB the SPM noise has the SNR-defined SD (statistical check over 30 x 151 x 275)
    noisy = run_current_density_simulation(src, "spm_m5_", [321], sig, 10.0, 0.0, -5.0,
                                           viz=False, seed=2, backend="spm", spm_instance=eng)
    y = np.asarray(load_meeg(noisy).data[:], dtype=float)
    meg = np.asarray(load_meeg(noisy).indchantype("MEGANY"))
    clean = b[meg]
    level = snr_noise_level(clean[:, :, 0], -5.0)
    sd = np.std(y[meg] - clean)
    print(f"noise SD {sd:.4g}, expected {level:.4g}")
    assert abs(sd / level - 1) < 0.02
    # the simulated files load in SPM with the same data
    _assert_spm_reads(eng, Path(out["spm"]))
    _assert_spm_reads(eng, Path(out["native"]))


# --- every dataset lameg writes loads in SPM -----------------------------------------------------


def _assert_spm_reads(eng, path: Path) -> None:
    data, labels, coilpos, fs = eng.call("lameg_spm_read_meeg", str(path), nargout=4)
    D = load_meeg(path)
    ours = np.asarray(D.data[:], dtype=float)
    theirs = np.asarray(data, dtype=float).reshape(ours.shape)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6 * max(np.abs(ours).max(), 1e-30))
    lab = [str(x) for x in np.ravel(labels)] if not isinstance(labels, str) else [labels]
    assert lab == list(D.chanlabels)
    grad = D.sensors("MEG")
    np.testing.assert_allclose(np.asarray(coilpos, dtype=float),
                               np.asarray(grad["coilpos"], dtype=float), atol=1e-9)
    assert float(fs) == pytest.approx(D.fsample)


@pytest.mark.parametrize("name", ["sim_ctf_pial", "sim_neuromag_pial"])
def test_participant_datasets_load_in_spm(eng, test_data_dir, tmp_path, name):
    p = copy_test_participant(tmp_path / "p", datasets=[name])
    _assert_spm_reads(eng, Path(p.dataset(name)))


def test_inverted_dataset_loads_in_spm(case, eng, tmp_path):
    from lameg.invert import invert_ebb

    d = _copy(case["single"], tmp_path)
    invert_ebb(d, case["surf"], layer_name="pial", n_spatial_modes=60, viz=False)
    _assert_spm_reads(eng, d)


def test_reference_dataset_round_trip_loads_in_spm(eng, spm_reference, tmp_path):
    ref = load_meeg(spm_reference / "dataset" / "sim_base.mat")
    out = ref.clone(tmp_path / "roundtrip.mat", data=np.asarray(ref.data[:]))
    _assert_spm_reads(eng, Path(out.fname))
    # the same data and sensors as SPM reads from its own file
    a = eng.call("lameg_spm_read_meeg", str(spm_reference / "dataset" / "sim_base.mat"),
                 nargout=4)
    b = eng.call("lameg_spm_read_meeg", str(Path(out.fname)), nargout=4)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(np.asarray(a[2]), np.asarray(b[2]))


# --- seeded differential test on random small geometries ---------------------------------------


def _random_geometry(rng, n_sens, n_src):
    """Magnetometers on a 12 cm sphere cap, dipoles inside 7 cm, free-space dipole fields."""
    u = rng.normal(size=(n_sens, 3))
    u[:, 2] = np.abs(u[:, 2])
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pos, nrm = 0.12 * u, u
    s = rng.normal(size=(n_src, 3))
    s *= (0.07 * rng.uniform(0.3, 1.0, n_src) / np.linalg.norm(s, axis=1))[:, None]
    m = rng.normal(size=(n_src, 3))
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    r = pos[:, None, :] - s[None, :, :]
    d = np.linalg.norm(r, axis=2)
    b = 1e-7 * (3 * r * np.einsum("csk,sk->cs", r, m)[..., None] / d[..., None] ** 5
                - m[None] / d[..., None] ** 3)
    return np.einsum("csk,ck->cs", b, nrm) * 1e15 * 1e-9  # fT per nA m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reml_matches_spm_on_random_geometries(eng, seed):
    from lameg.inverse.reml import reml_sc

    rng = np.random.default_rng(seed)
    n_sens, n_src, n_t = int(rng.integers(12, 30)), int(rng.integers(40, 120)), 64
    L = _random_geometry(rng, n_sens, n_src)
    J = np.zeros((n_src, n_t))
    J[rng.integers(n_src)] = 10 * np.sin(np.linspace(0, 6 * np.pi, n_t))
    Y = L @ J
    Y += rng.normal(size=Y.shape) * Y.std() * 0.3
    YY = Y @ Y.T
    # EBB-like components: sensor noise and a beamformer-weighted source prior
    w = 1.0 / np.einsum("cs,cs->s", L, np.linalg.solve(YY + 1e-3 * np.trace(YY) * np.eye(n_sens),
                                                      L))
    Q = [np.eye(n_sens) * np.trace(YY) / n_sens / n_t, (L * w) @ L.T]
    ours = reml_sc(YY, Q, n_t, he=-4.0, hc=16.0)
    C, h, _, F = eng.call("spm_reml_sc", YY, np.zeros((0, 0)), Q, float(n_t), -4.0, 16.0,
                          nargout=4)
    h = np.ravel(h.toarray() if hasattr(h, "toarray") else np.asarray(h, dtype=float))
    print(f"seed {seed}: {n_sens} sensors, {n_src} sources: F {ours.F:.6f} vs {float(F):.6f}")
    assert abs(ours.F - float(F)) <= 1e-6 * abs(float(F))
    np.testing.assert_allclose(ours.h, h, rtol=1e-5)
    np.testing.assert_allclose(ours.C, np.asarray(C, dtype=float), rtol=1e-5,
                               atol=1e-9 * np.abs(C).max())


# --- errors that need Octave ---------------------------------------------------------------------


def test_missing_mex_files_are_reported(eng, tmp_path, monkeypatch):
    from lameg.spm import OctaveSPM, SPMSetupError
    from lameg.spm import prepare as prep

    # a prepared tree whose MEX files went missing: the engine refuses to start, quickly
    broken = tmp_path / "spm"
    shutil.copytree(eng.tree.spm_dir, broken, ignore=shutil.ignore_patterns("*.mex"))
    tree = prep.PreparedTree(broken, eng.tree.shim_dir, eng.tree.source)
    monkeypatch.setattr(prep, "prepare_spm_tree", lambda *a, **k: tree)
    with pytest.raises(SPMSetupError, match="MEX"):  # an error, not a hang
        OctaveSPM(broken, verbose=False)


def test_octave_compat_functions(eng):
    """The engine's Octave compatibility m-files give MATLAB's results (spm_opm_sim needs them)."""
    from lameg.spm.engine import OCTAVE_COMPAT_DIR

    eng.eval("p = which('startsWith'); r = round(1.23456, 2); "
             "a = startsWith({'megmag', 'eeg1'}, {'eeg', 'meg'}); "
             "b = endsWith('coil_x', {'_y', '_x'}); c = contains({'xyz', 'abc'}, {'q', 'b'}); "
             "d = startsWith('MEG', 'meg', 'IgnoreCase', true);")
    assert Path(str(eng.session.pull("p"))).parent == OCTAVE_COMPAT_DIR
    assert float(eng.session.pull("r")) == pytest.approx(1.23, abs=1e-12)
    assert np.asarray(eng.session.pull("a"), bool).ravel().tolist() == [True, True]
    assert bool(eng.session.pull("b"))
    assert np.asarray(eng.session.pull("c"), bool).ravel().tolist() == [False, True]
    assert bool(eng.session.pull("d"))


def test_spm_error_is_raised_not_hung(eng):
    from lameg.spm import SPMError

    with pytest.raises(SPMError, match="no_such_function"):
        eng.call("no_such_function_in_spm", 1.0)
    with pytest.raises(SPMError, match="(?i)cannot load"):
        eng.call("spm_eeg_load", "/nonexistent/file.mat")
    assert eng.call("plus", 1.0, 2.0) == 3.0  # the session is still usable


def test_wrong_engine_types_rejected(case):
    from lameg.invert import invert_ebb

    with pytest.raises(LamegValueError, match="spm_instance"):
        invert_ebb(case["single"], case["surf"], layer_name="pial", viz=False,
                   spm_instance=object())


# --- laMEG's util entry points and the command line --------------------------------------------


def test_util_batch_runs_an_spm_batch(eng, test_data_dir, tmp_path):
    from lameg.util import batch, spm_context

    p = copy_test_participant(tmp_path / "p", datasets=["sim_ctf_noise"])
    src = Path(p.dataset("sim_ctf_noise"))
    cell = np.empty((1,), dtype=object)
    cell[0] = str(src)
    with spm_context(eng) as spm:
        assert spm is eng
        batch({"spm": {"meeg": {"averaging": {"average": {
            "D": cell, "userobust": {"standard": 0.0}, "plv": 0.0, "prefix": "m"}}}}},
            viz=False, spm_instance=spm)
    avg = load_meeg(src.with_name("m" + src.name))
    data = np.asarray(load_meeg(src).data[:], dtype=float)
    np.testing.assert_allclose(np.asarray(avg.data[:], dtype=float)[..., 0], data.mean(axis=2),
                               rtol=1e-5, atol=1e-6 * np.abs(data).max())


def test_command_line_setup_reuses_the_prepared_tree(eng, capsys):
    from lameg.spm.__main__ import main

    assert main(["setup", "--spm-dir", str(SPM_TREE)]) == 0
    assert capsys.readouterr().out.strip() == str(eng.tree.spm_dir)
    assert main(["setup", "--spm-dir", "/nonexistent/spm"]) == 1
    assert "does not exist" in capsys.readouterr().err
