"""Tests of lameg.laminar.compute_csd and roi_power_comparison, and viz.plot_csd."""

from __future__ import annotations

import contextlib
import io
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from lameg import laminar
from lameg.exceptions import LamegDataError, LamegValueError

SIGMA = 0.3  # S/m, StandardCSD conductivity


def test_standard_csd_quadratic_profile_is_exact():
    """phi(z) = a z^2 + b z + c: interior rows equal -sigma * h * phi'' exactly."""
    n, thick = 11, 3.0  # mm
    z = np.linspace(0, thick, n) * 1e-3  # m
    a, b, c = 2.0e3, -1.5, 0.7  # V/m^2, V/m, V
    t_scale = np.array([1.0, -0.5, 2.0])
    phi = (a * z**2 + b * z + c)[:, None] * t_scale[None, :]
    csd = laminar.compute_csd(phi, thick, 600.0, method="StandardCSD")
    h = z[1] - z[0]
    expected = -SIGMA * h * (2 * a) * t_scale
    np.testing.assert_allclose(csd[2:-2], np.broadcast_to(expected, (n - 4, 3)), rtol=1e-9)
    assert np.all(csd[:2] == 0) and np.all(csd[-2:] == 0)


def test_standard_csd_cosine_profile_analytic():
    """phi = cos(k z): discrete Laplacian and 3-point Gaussian filter have closed forms, and the
    result tends to -sigma * h * phi'' as h -> 0."""
    n, thick = 41, 2.5
    z = np.linspace(0, thick, n) * 1e-3
    h = z[1] - z[0]
    k = 2 * np.pi / (thick * 1e-3)
    phi = np.cos(k * z)[:, None]
    csd = laminar.compute_csd(phi, thick, 1000.0, method="StandardCSD")[:, 0]
    w = np.exp(-0.5)
    gain = (1 + 2 * w * np.cos(k * h)) / (1 + 2 * w)
    expected = -SIGMA / h * (-4 * np.sin(k * h / 2) ** 2) * gain * np.cos(k * z)
    np.testing.assert_allclose(csd[2:-2], expected[2:-2], rtol=1e-9, atol=1e-12)
    # Continuum limit: -sigma*h*phi'' = sigma*h*k^2*cos; discretisation error O((kh)^2) ~ 2 %.
    np.testing.assert_allclose(csd[2:-2], (SIGMA * h * k**2 * np.cos(k * z))[2:-2],
                               atol=0.03 * SIGMA * h * k**2)


def test_standard_csd_smoothing():
    rng = np.random.default_rng(0)
    sig = rng.normal(size=(11, 20))
    raw = laminar.compute_csd(sig, 3.0, 600.0, method="StandardCSD")
    lin = laminar.compute_csd(sig, 3.0, 600.0, method="StandardCSD", smoothing="linear")
    assert lin.shape == (500, 20)
    # Linear interpolation reproduces the nodes that fall on the fine grid (ends).
    np.testing.assert_allclose(lin[0], raw[0], atol=1e-15)
    np.testing.assert_allclose(lin[-1], raw[-1], atol=1e-15)
    x = np.linspace(0, 1, 500)
    np.testing.assert_allclose(lin[:, 3], np.interp(x, np.linspace(0, 1, 11), raw[:, 3]),
                               rtol=1e-12, atol=1e-12)
    cub = laminar.compute_csd(sig, 3.0, 600.0, method="StandardCSD", smoothing="cubic")
    assert cub.shape == (500, 20) and not np.allclose(cub, lin)
    with pytest.raises(LamegValueError, match="interpolation"):
        laminar.compute_csd(sig, 3.0, 600.0, method="StandardCSD", smoothing="bogus")


def test_compute_csd_validation():
    sig = np.zeros((11, 5))
    with pytest.raises(LamegValueError, match="method"):
        laminar.compute_csd(sig, 3.0, 600.0, method="iCSD")
    with pytest.raises(LamegValueError, match="3 layers"):
        laminar.compute_csd(sig[:2], 3.0, 600.0)
    with pytest.raises(LamegValueError, match="thickness"):
        laminar.compute_csd(sig, 0.0, 600.0)
    with pytest.raises(LamegValueError, match="sfreq"):
        laminar.compute_csd(sig, 1.0, -1)
    bad = sig.copy()
    bad[0, 0] = np.nan
    with pytest.raises(LamegDataError):
        laminar.compute_csd(bad, 3.0, 600.0)
    with pytest.raises(LamegValueError, match="Unknown KCSD1D"):
        laminar.compute_csd(sig + 1, 3.0, 600.0, method="KCSD1D", foo=1)


def test_kcsd1d_locates_a_current_sink():
    """Potentials of a Gaussian current source (1-D kCSD forward model, h = 1 mm) are inverted
    to a CSD peaking at the source depth."""
    n, thick = 15, 3.0
    z = np.linspace(0, thick, n)
    src = np.linspace(0, thick, 2001)
    true_csd = np.exp(-((src - 1.2) ** 2) / (2 * 0.25**2))
    # 1-D potential of a slab source: (sqrt((x-x')^2 + h^2) - |x-x'|) / (2 sigma).
    d = np.abs(z[:, None] - src[None, :])
    pots_mv = ((np.sqrt(d**2 + 1.0) - d) * true_csd).sum(1) * (src[1] - src[0]) / 2.0
    csd = laminar.compute_csd(pots_mv[:, None] * 1e-3, thick, 600.0, method="KCSD1D")
    grid = np.linspace(0, thick, csd.shape[0])
    assert csd.shape[0] in (99, 100)
    assert abs(grid[np.argmax(csd[:, 0])] - 1.2) < 0.15  # mm


def test_csd_matches_elephant():
    """Native StandardCSD and KCSD1D equal elephant's estimators (laMEG's implementation)."""
    pytest.importorskip("elephant")
    neo = pytest.importorskip("neo")
    pq = pytest.importorskip("quantities")
    from elephant.current_source_density import estimate_csd

    rng = np.random.default_rng(4)
    for n, thick in [(8, 2.4)]:
        t = np.arange(60) / 600.0
        z = np.linspace(0, thick, n)
        sig = (np.exp(-((z[:, None] - thick / 2) ** 2) / 0.3) * np.sin(2 * np.pi * 10 * t)
               + 0.1 * rng.normal(size=(n, t.size))) * 1e-9
        coords = pq.Quantity(z.reshape(-1, 1)) * pq.mm
        with contextlib.redirect_stdout(io.StringIO()):
            ref = estimate_csd(neo.AnalogSignal(sig.T, units="T", sampling_rate=600 * pq.Hz),
                               coords, method="StandardCSD").as_array().T
            ref[:2] = 0
            ref[-2:] = 0
            uv = neo.AnalogSignal(sig.T * 1e6, units="uV", sampling_rate=600 * pq.Hz)
            kref = estimate_csd(uv, coords, method="KCSD1D", lambdas=None, Rs=None).as_array().T
            lam = np.logspace(-3, -12, 6)
            rs = np.array([0.1, 0.3])
            kref2 = estimate_csd(uv, coords, method="KCSD1D", lambdas=lam, Rs=rs).as_array().T
        # Same arithmetic up to summation order: agreement to ~1e-14 relative.
        std = laminar.compute_csd(sig, thick, 600.0, method="StandardCSD")
        np.testing.assert_allclose(std, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        k1 = laminar.compute_csd(sig, thick, 600.0, method="KCSD1D")
        assert k1.shape == kref.shape
        np.testing.assert_allclose(k1, kref, rtol=0, atol=1e-10 * np.abs(kref).max())
        k2 = laminar.compute_csd(sig, thick, 600.0, method="KCSD1D", lambdas=lam, Rs=rs)
        np.testing.assert_allclose(k2, kref2, rtol=0, atol=1e-10 * np.abs(kref2).max())


def test_plot_csd_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.image import imread

    from lameg import viz

    n, times = 11, np.linspace(-100, 100, 121)
    z = np.linspace(0, 1, n)[:, None]
    sig = np.exp(-((z - 0.3) ** 2) / 0.02) * np.exp(-(times / 25.0) ** 2)[None, :]
    csd = laminar.compute_csd(sig, 2.5, 600.0, method="StandardCSD", smoothing="cubic")
    fig, ax = plt.subplots(figsize=(5, 4))
    im = viz.plot_csd(csd, times, ax, n_layers=n, layer_boundaries=[0.2, 0.5])
    assert im.colorbar is not None and im.colorbar.ax.get_ylabel() == "CSD"
    assert ax.get_ylim() == (1.0, 0.0)  # pial at the top
    out = tmp_path / "csd.png"
    fig.savefig(out)
    plt.close(fig)
    img = imread(out)[..., :3]
    assert img.std() > 0.05
    reds = (img[..., 0] > 0.6) & (img[..., 2] < 0.4)
    blues = (img[..., 2] > 0.6) & (img[..., 0] < 0.4)
    assert reds.sum() > 100 and blues.sum() > 100  # sources and sinks both drawn
    with pytest.raises(LamegValueError):
        viz.plot_csd(csd[:, :-1], times, ax)


# ------------------------------------------------------------------------------------------
# ROI power comparison
# ------------------------------------------------------------------------------------------


def _layer_ts(n_cols=60, n_trials=30, pial_gain=3.0, white_gain=1.0, active=range(5), seed=0):
    """Synthetic pial/white time series: a 20 Hz burst in woi on `active` columns."""
    rng = np.random.default_rng(seed)
    time = np.linspace(-500, 500, 301)
    burst = np.sin(2 * np.pi * 20 * time / 1000) * (time >= 0)
    pial = rng.normal(size=(n_cols, time.size, n_trials))
    white = rng.normal(size=(n_cols, time.size, n_trials))
    act = np.array(list(active))
    amp = 1 + 0.2 * rng.normal(size=(1, 1, n_trials))
    pial[act] += pial_gain * burst[None, :, None] * amp
    white[act] += white_gain * burst[None, :, None] * amp
    return pial, white, time


def test_roi_power_comparison_arrays_modes():
    pial, white, time = _layer_ts()
    t, p, df, roi = laminar.roi_power_comparison_arrays(pial, white, time, [0, 500], [-500, 0],
                                                        perc_thresh=90)
    assert df == 29 and t > 5 and p < 1e-4
    # 6 columns above the 90th percentile per layer; the ROI is their union.
    assert set(range(5)) <= set(roi.tolist()) and 6 <= roi.size <= 12
    # Deep source: negative t.
    pial2, white2, _ = _layer_ts(pial_gain=1.0, white_gain=3.0, seed=1)
    t2, _, _, _ = laminar.roi_power_comparison_arrays(pial2, white2, time, [0, 500], [-500, 0],
                                                      perc_thresh=90)
    assert t2 < -5
    # Direct ROI: only the given columns are used.
    t3, _, _, roi3 = laminar.roi_power_comparison_arrays(
        pial, white, time, [0, 500], [-500, 0], roi_idx=[3, 1, 2], roi_mode="direct")
    np.testing.assert_array_equal(roi3, [1, 2, 3])
    assert t3 > 5
    # Restricted threshold: candidates limited to roi_idx.
    _, _, _, roi4 = laminar.roi_power_comparison_arrays(
        pial, white, time, [0, 500], [-500, 0], perc_thresh=90,
        roi_idx=np.arange(2, 40), roi_mode="restrict_threshold")
    assert set(roi4.tolist()) >= {2, 3, 4} and roi4.min() >= 2 and roi4.size <= 8


def test_roi_power_comparison_arrays_matches_manual():
    pial, white, time = _layer_ts(n_cols=10, n_trials=12, seed=5)
    from scipy.signal import hilbert

    from lameg.util import ttest_rel_corrected

    env_p, env_w = np.abs(hilbert(pial, axis=1)), np.abs(hilbert(white, axis=1))
    b, e = (time >= -500) & (time < 0), (time >= 0) & (time < 500)
    cp = env_p[:, e].mean(1) - env_p[:, b].mean(1)
    cw = env_w[:, e].mean(1) - env_w[:, b].mean(1)
    roi = [0, 4, 7]
    ref_t, ref_df, ref_p = ttest_rel_corrected(np.abs(cp[roi].mean(0)) - np.abs(cw[roi].mean(0)))
    t, p, df, _ = laminar.roi_power_comparison_arrays(pial, white, time, (0, 500), (-500, 0),
                                                      roi_idx=roi, roi_mode="direct")
    np.testing.assert_allclose([t, p, df], [ref_t, ref_p, ref_df], rtol=1e-12)


def test_roi_power_comparison_validation():
    pial, white, time = _layer_ts(n_cols=8, n_trials=5)
    args = (pial, white, time, (0, 500), (-500, 0))
    with pytest.raises(LamegValueError, match="roi_mode"):
        laminar.roi_power_comparison_arrays(*args, perc_thresh=50, roi_mode="auto")
    with pytest.raises(LamegValueError, match="roi_idx"):
        laminar.roi_power_comparison_arrays(*args, roi_mode="direct")
    with pytest.raises(LamegValueError, match="roi_idx"):
        laminar.roi_power_comparison_arrays(*args, roi_idx=[8], roi_mode="direct")
    with pytest.raises(LamegValueError, match="perc_thresh"):
        laminar.roi_power_comparison_arrays(*args)
    with pytest.raises(LamegValueError, match="no sample"):
        laminar.roi_power_comparison_arrays(pial, white, time, (600, 700), (-500, 0),
                                            perc_thresh=50)
    with pytest.raises(LamegDataError, match="survived"):
        laminar.roi_power_comparison_arrays(*args, perc_thresh=100)


def test_roi_power_comparison_reads_source_time_series(monkeypatch):
    """File-level function: chunks through load_source_time_series on pial/white vertices."""
    pial, white, time = _layer_ts(n_cols=23, n_trials=10)
    n_layers, n_cols = 3, pial.shape[0]
    sources = np.concatenate([pial, np.zeros_like(pial), white])  # layer-major
    requested = []

    def fake_load(data_fname, mu_matrix=None, inv_fname=None, vertices=None, inversion_idx=0):
        requested.append(np.asarray(vertices).size)
        return sources[np.asarray(vertices)], time, None

    try:
        import lameg.source as src_mod
    except ImportError:
        src_mod = types.ModuleType("lameg.source")
        monkeypatch.setitem(sys.modules, "lameg.source", src_mod)
    monkeypatch.setattr(src_mod, "load_source_time_series", fake_load, raising=False)
    surf_set = SimpleNamespace(n_layers=n_layers, get_vertices_per_layer=lambda: n_cols)
    res = laminar.roi_power_comparison("d.mat", [0, 500], [-500, 0], 80, surf_set, chunk_size=7)
    ref = laminar.roi_power_comparison_arrays(pial, white, time, [0, 500], [-500, 0],
                                              perc_thresh=80)
    np.testing.assert_allclose(res[:3], ref[:3], rtol=1e-12)
    np.testing.assert_array_equal(res[3], ref[3])
    assert max(requested) == 7  # chunked


def _inverted_dataset(folder, n_layers=3, n_cols=10, n_trials=9, seed=0):
    """A small SPM dataset with a stored single-window inversion in SPM's layout (``M``, ``U``,
    ``Ic``, ``It``, ``T``): 12 channels, 64 samples at 200 Hz from -160 ms, the inversion on
    samples 1..50 with 4 temporal modes."""
    from lameg.io.spm_meeg import write_meeg

    rng = np.random.default_rng(seed)
    n_chan, n_src = 12, n_layers * n_cols
    inverse = {"M": rng.normal(size=(n_src, 5)), "U": [rng.normal(size=(5, n_chan))],
               "Ic": [np.arange(1, n_chan + 1)], "It": np.arange(1, 51),
               "T": np.linalg.qr(rng.normal(size=(50, 4)))[0], "Nd": n_src,
               "L": rng.normal(size=(5, n_src))}
    data = rng.normal(size=(n_chan, 64, n_trials))
    data[:, 32:] *= 1 + rng.uniform(size=(n_chan, 1, n_trials))  # a power change at 0 ms
    write_meeg(folder / "inv.mat", data, fsample=200.0, time_onset=-0.16,
               chanlabels=[f"MEG{i:03d}" for i in range(n_chan)], chantypes="MEG",
               other={"inv": [{"inverse": inverse}]})
    return folder / "inv.mat", SimpleNamespace(n_layers=n_layers,
                                               get_vertices_per_layer=lambda: n_cols)


def test_roi_power_comparison_reads_dataset_once(tmp_path, monkeypatch):
    """The file-level function projects the stored inversion like load_source_time_series, but
    reads the header once for all chunks (the result does not depend on chunk_size)."""
    import lameg.io.spm_meeg as spm_meeg
    from lameg.source import load_source_time_series

    fname, surf_set = _inverted_dataset(tmp_path)
    n_cols, white0 = 10, 20
    pial, time, mu = load_source_time_series(fname, vertices=np.arange(n_cols))
    white, _, _ = load_source_time_series(fname, vertices=white0 + np.arange(n_cols))
    ref = laminar.roi_power_comparison_arrays(pial, white, time, [0, 90], [-160, 0],
                                              perc_thresh=60)
    loads = []
    real_load = spm_meeg.load_meeg
    monkeypatch.setattr(spm_meeg, "load_meeg",
                        lambda f, **kw: loads.append(f) or real_load(f, **kw))
    n_loads = {}
    for chunk in (1, 3, 100):
        loads.clear()
        res = laminar.roi_power_comparison(fname, [0, 90], [-160, 0], 60, surf_set,
                                           chunk_size=chunk)
        n_loads[chunk] = len(loads)
        # the same products as load_source_time_series on other row blocks: rounding only
        np.testing.assert_allclose(res[:3], ref[:3], rtol=1e-12)
        np.testing.assert_array_equal(res[3], ref[3])
    assert n_loads[1] == n_loads[100] <= 3, n_loads  # not once per chunk
    # a precomputed operator gives the same result
    full_mu = load_source_time_series(fname, vertices=np.arange(30))[2]
    res = laminar.roi_power_comparison(fname, [0, 90], [-160, 0], 60, surf_set,
                                       mu_matrix=full_mu.astype(np.float32), chunk_size=4)
    np.testing.assert_allclose(res[0], ref[0], rtol=1e-5)  # float32 operator
    np.testing.assert_array_equal(res[3], ref[3])
