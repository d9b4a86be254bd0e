"""Layer model comparison (lameg.laminar.model_comparison and the sliding-window variant).

The co-registration step is replaced by a stand-in that stores the synthetic participant's
per-layer forward model (the columns of its multilayer gain), so these tests exercise the
comparison logic and the file-based inversion independently of the head model; the sweep
equivalence test checks that the in-memory sweep reproduces the file-based F values.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lameg import invert as li
from lameg import laminar
from lameg.exceptions import LamegValueError
from lameg.io.spm_meeg import load_meeg, write_gainmat, write_meeg
from lameg.simulate import run_current_density_simulation
from lameg.sweep import SweepSettings, run_laminar_sweep, synthetic_model


class FakeSurfSet:
    def __init__(self, n_layers):
        self.n_layers = n_layers

    def get_layer_names(self):
        return ["pial"] + [f"{x:.3f}" for x in np.linspace(1, 0, self.n_layers)[1:-1]] + \
            ["white"]


def store_forward(path, model, layer=None):
    """Write the model's (per-layer or multilayer) forward model into the dataset at ``path``."""
    if layer is None:
        verts, faces, gain = model.vertices, model.faces, model.gain
    else:
        verts, faces = model.layer_mesh(layer)
        nv = model.n_vertices
        gain = model.gain[:, layer * nv:(layer + 1) * nv]
    D = load_meeg(path)
    gname = f"SPMgainmatrix_{D.fname.stem}_1.mat"
    labels = [D.chanlabels[i] for i in D.indchantype("MEGANY")]
    write_gainmat(D.path / gname, gain, labels)
    mesh = {"vert": verts, "face": faces.astype(float) + 1}
    inv = {"mesh": {"tess_mni": mesh},
           "forward": {"mesh": {"vert": verts / 1000.0, "face": faces.astype(float) + 1}},
           "gainmat": gname, "method": "Imaging"}
    D.save_inv([inv], val=1)


@pytest.fixture(scope="module")
def model():
    return synthetic_model(n_layers=3, n_side=14, extent_mm=34.0, n_sensors=80, n_trials=10,
                           n_samples=101)


@pytest.fixture()
def setup(tmp_path, model, monkeypatch):
    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "cache"))
    n_meg = model.gain.shape[0]
    labels = [f"MEG{i:03d}" for i in range(n_meg)] + ["EOG1"]
    data = np.zeros((n_meg + 1, model.time.size, model.n_trials), np.float32)
    path = tmp_path / "tmpl.mat"
    write_meeg(path, data, fsample=model.fsample,
               time_onset=float(model.time[0]), chanlabels=labels,
               chantypes=["MEGMAG"] * n_meg + ["EOG"], chanunits=["fT"] * n_meg + ["uV"],
               conditions=model.conditions)
    store_forward(path, model)
    calls = []
    names = FakeSurfSet(model.n_layers).get_layer_names()

    def fake_coregister(fid_coords, data_fname, surf_set, layer_name=None, stage="ds",
                        orientation="link_vector", fixed=True, viz=True, spm_instance=None,
                        **kw):
        calls.append((layer_name, kw))
        store_forward(data_fname, model, None if layer_name is None
                      else names.index(layer_name))

    backend = {"coregister": fake_coregister, "invert_ebb": li.invert_ebb,
               "invert_msp": li.invert_msp,
               "invert_sliding_window_msp": li.invert_sliding_window_msp,
               "opm_headmodel": li.opm_headmodel}
    monkeypatch.setattr(laminar.comparison, "_backend", lambda: backend)
    return path, calls


FID = {"nas": [0, 80, 0], "lpa": [-80, 0, 0], "rpa": [80, 0, 0]}


def test_sweep_cell_equals_file_based_path(setup, model):
    """One sweep cell (in memory) gives the F values of simulate-to-file + model_comparison."""
    path, calls = setup
    col, layer, snr = 60, 2, -5.0
    st = SweepSettings(method="MSP", patch_size=5.0, n_temp_modes=3)
    # the template has one non-MEG channel, which also draws noise
    mem = dataclasses.replace(model, n_channels_total=model.gain.shape[0] + 1,
                              signal_rows=np.arange(model.gain.shape[0]))
    tab = run_laminar_sweep(mem, [col], [snr], layers=[layer], settings=st, seed=7,
                            blas_threads=1)
    row = tab.iloc[0]
    rs = st.resolved(model.time)
    sim = run_current_density_simulation(path, "sim_", layer * model.n_vertices + col,
                                         rs.signal, rs.dipole_moment, rs.sim_patch_size, snr,
                                         average_trials=True, seed=int(row["seed"]))
    f_vals, cv = laminar.model_comparison(
        FID, sim, FakeSurfSet(model.n_layers), method="MSP", viz=False,
        invert_kwargs=dict(priors=[col], patch_size=5.0, n_temp_modes=3, woi=list(rs.woi),
                           hann_windowing=True))
    assert [c[0] for c in calls] == FakeSurfSet(3).get_layer_names()
    f_sweep = np.array([row[f"F_{e}"] for e in range(model.n_layers)])
    # identical arrays through the same engine: agreement to rounding
    np.testing.assert_allclose(f_vals, f_sweep, rtol=1e-9)
    assert int(np.argmax(f_vals)) == int(row["est_layer"])
    assert all(np.size(c) == 0 for c in cv)  # no cross-validation requested


def test_recovers_layer_and_accepts_n_spatial_modes(setup, model):
    path, calls = setup
    nv = model.n_vertices
    col = 60
    for layer in (0, 2):
        sim = run_current_density_simulation(path, f"s{layer}_", layer * nv + col,
                                             np.hanning(101), 10.0, 5.0, 0.0,
                                             average_trials=True, seed=layer)
        f_vals, _ = laminar.model_comparison(
            FID, sim, FakeSurfSet(3), method="EBB", viz=False,
            forward_kwargs={"cache_dir": False},
            invert_kwargs={"n_spatial_modes": 20, "n_temp_modes": 2})
        assert f_vals.shape == (3,)
        assert int(np.argmax(f_vals)) == layer
        assert f_vals.max() - np.sort(f_vals)[-2] > 3  # decisive (odds > 20)
    assert calls[-1][1] == {"cache_dir": False}


def test_sliding_window_shapes(setup, model):
    path, _ = setup
    sim = run_current_density_simulation(path, "w_", 30, np.hanning(101), 10.0, 5.0, 0.0,
                                         average_trials=True, seed=1)
    f, wois = laminar.sliding_window_model_comparison(
        30, FID, sim, FakeSurfSet(3), viz=False,
        invert_kwargs=dict(win_size=60, win_overlap=False, n_temp_modes=1))
    assert f.shape == (3, len(wois)) and wois.shape[1] == 2
    assert np.all(np.isfinite(f))


def test_argument_errors(setup, model):
    path, _ = setup
    with pytest.raises(LamegValueError, match="method"):
        laminar.model_comparison(FID, path, FakeSurfSet(3), method="LOR")
    with pytest.raises(LamegValueError, match="mri_fname"):
        laminar.model_comparison(FID, path, FakeSurfSet(3), device="opm")
    with pytest.raises(LamegValueError, match="layer_name"):
        laminar.model_comparison(FID, path, FakeSurfSet(3), invert_kwargs={"layer_name": "x"})


@pytest.mark.parametrize("layer, sign", [(0, 1.0), (1, -1.0)])
def test_roi_power_sign_from_simulation(layer, sign):
    """roi_power_comparison on simulated pial / white power increases (EBB on 2 layers)."""
    from lameg.inverse.engine import invert_classic
    from lameg.inverse.kernels import geodesic_kernel
    from lameg.laminar import roi_power_comparison_arrays
    from lameg.simulate import active_samples, patch_weights, simulate_trials

    m = synthetic_model(n_layers=2, n_side=14, extent_mm=34.0, n_sensors=80, n_trials=30,
                        n_samples=101)
    nv = m.n_vertices
    col = 60
    act = active_samples(m.time, (0.0, m.time[-1]))
    sig = np.sin(2 * np.pi * 20 * m.time[act])
    q = patch_weights(m.vertices, m.faces, [layer * nv + col], 5.0, 10.0)
    sim = simulate_trials(m.gain, q, sig[None], act, m.time.size, m.n_trials, -5.0,
                          rng=np.random.default_rng(layer))
    qg = geodesic_kernel(m.vertices, m.faces, 5.0, 2, use_cache=False)
    res = invert_classic(m.gain, sim.data, m.time, inv_type="EBB", QG=qg, n_layers=2,
                         n_temp_modes=4, hanning=False, fsample=m.fsample)
    mu = res.mu_matrix(0)
    ts = np.einsum("sc,ctk->stk", mu, sim.data.astype(float))
    t, p, df, roi = roi_power_comparison_arrays(ts[:nv], ts[nv:], 1000 * m.time, [0, 84],
                                                [-84, 0], perc_thresh=95)
    assert df == m.n_trials - 1 and roi.size > 0
    assert np.sign(t) == sign and p < 0.05


def test_arguments_are_checked_before_the_head_model_is_touched(setup):
    """Unknown keyword keys, bad fiducials or devices: an error, and the dataset unchanged."""
    import hashlib

    path, calls = setup
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    bad_calls = [
        dict(forward_kwargs={"bogus": 1}),
        dict(invert_kwargs={"n_temp_mode": 4}),
        dict(fid={"nas": [0, 80], "lpa": [-80, 0, 0], "rpa": [80, 0, 0]}),
        dict(device="eeg"),
    ]
    for kw in bad_calls:
        fid = kw.pop("fid", FID)
        with pytest.raises(LamegValueError):
            laminar.model_comparison(fid, path, FakeSurfSet(3), **kw)
    with pytest.raises(LamegValueError, match="prior"):
        laminar.sliding_window_model_comparison(2.5, FID, path, FakeSurfSet(3))
    assert not calls  # coregister never ran
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
