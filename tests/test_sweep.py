"""Laminar-accuracy sweeps (lameg.sweep): co-registration error, accuracy, back ends, plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from lameg.exceptions import LamegValueError
from lameg.inverse import geodesic_kernel
from lameg.io.spm_meeg import load_meeg, write_gainmat, write_meeg
from lameg.simulate import patch_weights
from lameg.sweep import (
    LaminarModel,
    SweepSettings,
    chance_error,
    perturb_fiducials,
    plot_confusion,
    plot_error_vs_snr,
    run_laminar_sweep,
    synthetic_model,
)


@pytest.fixture(scope="module")
def model():
    return synthetic_model(n_layers=3, n_side=14, extent_mm=34.0, n_sensors=80, n_trials=10,
                           n_samples=101)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "cache"))


def _wall_columns(model, n):
    """Columns on the fold walls (tangential link vectors, visible to MEG)."""
    nv = model.n_vertices
    link = model.vertices[-nv:] - model.vertices[:nv]
    tang = np.abs(link[:, 0]) / np.linalg.norm(link, axis=1)
    centre = np.linalg.norm(model.vertices[:nv, :2], axis=1) < 10
    cand = np.flatnonzero((tang > 0.6) & centre)
    return cand[np.linspace(0, cand.size - 1, n).astype(int)]


def test_perturb_fiducials_is_rigid_with_requested_error():
    fid = np.array([[0.0, 85.0, -30.0], [-80.0, -25.0, -40.0], [82.0, -28.0, -41.0]])
    for err in (0.5, 2.0, 5.0):
        moved = perturb_fiducials(fid, err, np.random.default_rng(int(err * 10)))
        disp = np.linalg.norm(moved - fid, axis=1)
        assert abs(disp.max() - err) <= 0.05
        d0 = np.linalg.norm(fid[:, None] - fid[None], axis=2)
        d1 = np.linalg.norm(moved[:, None] - moved[None], axis=2)
        np.testing.assert_allclose(d1, d0, atol=1e-9)  # rigid motion
    np.testing.assert_array_equal(perturb_fiducials(fid, 0.0), fid)
    a = perturb_fiducials(fid, 3.0, 1)
    np.testing.assert_array_equal(a, perturb_fiducials(fid, 3.0, 1))
    with pytest.raises(LamegValueError):
        perturb_fiducials(fid, -1.0)


def test_accuracy_snr_and_coregistration(model):
    """Szul et al. protocol, reduced: accurate at high SNR, chance-like with noise only,
    degraded by fiducial error."""
    cols = _wall_columns(model, 4)
    st = SweepSettings(method="MSP", patch_size=5.0, n_temp_modes=3)
    tab = run_laminar_sweep(model, cols, [-500.0, 0.0], jitters=[0.0, 8.0], settings=st,
                            seed=3, blas_threads=1)
    assert len(tab) == 4 * 3 * 2 * 2
    assert {f"F_{e}" for e in range(3)} <= set(tab.columns)
    perfect = tab[tab.jitter == 0]
    err = perfect.groupby("snr")["error_layers"].mean()
    assert err[0.0] <= 0.1  # 10 trials at 0 dB, averaged: nearly always right
    assert err[-500.0] >= 0.5 * chance_error(3)  # noise only: no better than chance
    jit = tab[tab.snr == 0.0].groupby("jitter")["error_layers"].mean()
    assert jit[8.0] > jit[0.0] + 0.2
    # error in mm = layers x thickness / (n_layers - 1); thickness 2.5 mm here
    np.testing.assert_allclose(tab.error_mm, tab.error_layers * 2.5 / 2, rtol=1e-9)
    np.testing.assert_array_equal(tab.bias_layers, tab.true_layer - tab.est_layer)
    # plot helpers
    ax = plot_error_vs_snr(perfect)
    assert len(ax.lines) >= 2
    ax = plot_confusion(perfect[perfect.snr == 0.0], n_layers=3)
    m = ax.images[0].get_array()
    np.testing.assert_allclose(np.asarray(m).sum(axis=0), 1.0)
    assert np.trace(np.asarray(m)) >= 2.5


def test_joblib_and_dask_tables_identical(model):
    distributed = pytest.importorskip("distributed")
    cols = _wall_columns(model, 2)
    st = SweepSettings(method="MSP", patch_size=5.0, n_temp_modes=2)
    kw = dict(layers=[0, 2], settings=st, seed=11, batch_size=2)
    a = run_laminar_sweep(model, cols, [-5.0], backend="joblib", n_jobs=2, **kw)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        b = run_laminar_sweep(model, cols, [-5.0], backend="dask", client=client, **kw)
    s = run_laminar_sweep(model, cols, [-5.0], backend="serial", blas_threads=1, **kw)
    for other in (b, s):
        assert list(a.columns) == list(other.columns)
        np.testing.assert_array_equal(a.seed, other.seed)
        np.testing.assert_array_equal(a.est_layer, other.est_layer)
        # same arrays, same code: equal up to BLAS summation order
        np.testing.assert_allclose(a[["F_0", "F_1", "F_2"]], other[["F_0", "F_1", "F_2"]],
                                   rtol=1e-10)


def test_model_from_dataset_and_validation(tmp_path, model):
    n = model.gain.shape[0]
    labels = [f"MEG{i:03d}" for i in range(n)] + ["STI"]
    D = write_meeg(tmp_path / "d.mat", np.zeros((n + 1, model.time.size, 2), np.float32),
                   fsample=model.fsample, time_onset=float(model.time[0]), chanlabels=labels,
                   chantypes=["MEGMAG"] * n + ["Other"], conditions=["a", "b"])
    write_gainmat(tmp_path / "g.mat", model.gain[::-1], labels[:n][::-1])  # other row order
    mesh = {"vert": model.vertices, "face": model.faces.astype(float) + 1}
    D.save_inv([{"mesh": {"tess_mni": mesh}, "forward": {"mesh": mesh}, "gainmat": "g.mat"}])
    m = LaminarModel.from_dataset(D.fname, n_layers=3)
    np.testing.assert_array_equal(m.gain, model.gain)
    assert m.n_channels_total == n + 1 and m.conditions == ["a", "b"]
    np.testing.assert_allclose(m.thickness, 2.5)
    assert load_meeg(D.fname).n_trials == 2
    with pytest.raises(LamegValueError, match="layers"):
        LaminarModel(model.gain, model.vertices, model.faces, 1, model.time, ["x"])
    with pytest.raises(LamegValueError, match="columns"):
        run_laminar_sweep(model, [10**6], [0.0])
    bare = LaminarModel(model.gain, model.vertices, model.faces, 3, model.time, ["x"])
    with pytest.raises(LamegValueError, match="forward"):
        run_laminar_sweep(bare, [0], [0.0], jitters=[2.0])


def test_fast_free_energies_equal_reference_path(model):
    """The compressed-frame layer models give the engine's free energies and layer picks."""
    cols = _wall_columns(model, 2)
    kw = dict(snrs=[-500.0, -10.0], seed=5, backend="serial")
    tabs = [run_laminar_sweep(model, cols, settings=SweepSettings(
        method="MSP", n_temp_modes=3, n_spatial_modes=modes, fast=fast), **kw)
        for modes in ("all", "auto") for fast in (True, False)]
    F = [f"F_{e}" for e in range(3)]
    for fast, ref in (tabs[0:2], tabs[2:4]):
        np.testing.assert_array_equal(fast.est_layer, ref.est_layer)
        # same statements on the same matrices in another basis: rounding only (see
        # tests/test_inverse_lowrank.py); 1e-6 relative is the promised equality
        np.testing.assert_allclose(fast[F], ref[F], rtol=1e-6)
        assert not np.allclose(fast[F].to_numpy()[:, :1], fast[F].to_numpy()[:, 1:])


def test_accuracy_map_backends_and_score(model, tmp_path):
    distributed = pytest.importorskip("distributed")
    from lameg.sweep import AccuracyMap, laminar_accuracy_map, plot_accuracy_map

    cols = np.concatenate([_wall_columns(model, 4), [0, 13, 100]])  # walls + flat crests
    st = SweepSettings(method="MSP", n_temp_modes=3)
    kw = dict(columns=cols, snr=-10.0, settings=st, seed=2, batch_size=3)
    a = laminar_accuracy_map(model, backend="serial", **kw)
    b = laminar_accuracy_map(model, backend="joblib", n_jobs=2, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        c = laminar_accuracy_map(model, backend="dask", client=client, verbose=True, **kw)
    for other in (b, c):
        np.testing.assert_array_equal(a.columns, other.columns)
        np.testing.assert_array_equal(a.table.est_layer, other.table.est_layer)
        np.testing.assert_allclose(a.error, other.error)
    assert isinstance(a, AccuracyMap) and a.columns.tolist() == sorted(cols.tolist())
    # the sweep's simulation patches (layer kernels) are lameg.simulate.patch_weights
    nv = model.n_vertices
    st_res = st.resolved(model.time)
    q = patch_weights(model.vertices, model.faces, [2 * nv + int(cols[0])],
                      st_res.sim_patch_size, st_res.dipole_moment)
    kern = geodesic_kernel(*model.layer_mesh(2), st_res.sim_patch_size, 1)
    np.testing.assert_allclose(q.toarray()[2 * nv:, 0],
                               st_res.dipole_moment * kern[:, int(cols[0])].toarray()[:, 0],
                               rtol=1e-12, atol=1e-15)
    assert a.confusion.shape == (cols.size, 3, 3)
    np.testing.assert_array_equal(a.confusion.sum(axis=(1, 2)), 3)  # 3 layers x 1 repeat
    # error, bias and accuracy agree with the table
    t = a.table
    for i, col in enumerate(a.columns):
        sel = t.column == col
        assert a.error[i] == pytest.approx(np.mean(np.abs(t.true_layer[sel] - t.est_layer[sel])))
        assert a.bias[i] == pytest.approx(np.mean(t.true_layer[sel] - t.est_layer[sel]))
        assert a.accuracy[i] == pytest.approx(np.mean(t.true_layer[sel] == t.est_layer[sel]))
    # fold walls (tangential link vectors) are read better than crests (radial ones)
    assert a.error[np.isin(a.columns, _wall_columns(model, 4))].mean() < a.error[
        np.isin(a.columns, [0, 13, 100])].mean() + 1e-9
    full = a.full("error")
    assert np.isnan(full).sum() == model.n_vertices - cols.size
    # a score equal to minus the error has rank correlation -1 with it
    score = -full.copy()
    score[np.isnan(score)] = 0.0
    corr = a.correlation(score)
    assert corr["spearman_r"] == pytest.approx(-1.0) and corr["n"] == cols.size
    with pytest.raises(LamegValueError, match="one value per column"):
        a.correlation(score[:5])
    v, f = model.layer_mesh(0)
    fig = plot_accuracy_map(a, v, f, score=score)
    fig.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000
    with pytest.raises(LamegValueError, match="one SNR"):
        AccuracyMap.from_table(t.assign(snr=np.arange(len(t))), 3, model.n_vertices)
