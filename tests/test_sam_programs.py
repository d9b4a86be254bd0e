"""SAM programs: filters, covariances, weights vs MNE-Python, pseudo-Z, imaging, laminar example,
command line."""

from __future__ import annotations

import numpy as np
import pytest
from test_sam_sim import ORIGIN, helmet, point_magnetometer_info, simulate

from lameg.exceptions import (
    LamegDataError,
    LamegFormatError,
    LamegNotImplementedError,
    LamegValueError,
)
from lameg.sam import noise_floor, parse_param_text, sam_cov, sam_wts
from lameg.sam.cov import read_covariances
from lameg.sam.filters import BandFilter
from lameg.sam.forward import sphere_lead_field
from lameg.sam.imaging import laminar_contrast, sam_3d, sam_4d, sam_ers
from lameg.sam.io import SamData, read_cov
from lameg.sam.weights import (
    load_weights,
    max_snr_orientations,
    regularise,
    sam_pinv,
    unit_gain_weights,
)

SRC = np.array([0.025, 0.015, 0.085])  # a voxel centre of GRID (centres at (n + 1/2) cm)


def _tangential(pos, d=(0.0, 1.0, 0.0)):
    r = pos - ORIGIN
    d = np.asarray(d, float)
    t = d - d @ r / (r @ r) * r
    return t / np.linalg.norm(t)


GRID = """
XBounds -5 5
YBounds -5 5
ZBounds -1 9
ImageStep 1
Model SingleSphere 0 0 4
"""


# --------------------------------------------------------------------------------------------
# filters and noise floor
# --------------------------------------------------------------------------------------------

def test_fft_filter_band_and_bandwidth():
    """SAMsrcV5's FFT filter: bin i < N/2 gets g(i fs/N); the same gain sits at index N-1-i (one
    bin off the mirror frequency), so the real output of a sinusoid on bin k has amplitude
    (g(k) + g(k-1))/2. Checked on exact FFT bins (1e-9)."""
    fs, n = 500.0, 5000
    t = np.arange(n) / fs
    x = np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 60 * t) + np.sin(2 * np.pi * 150 * t)
    f = BandFilter(fs, 5, 100)
    y = f.apply(x)
    amp = np.abs(np.fft.rfft(y)) / (n / 2)
    freqs = np.fft.rfftfreq(n, 1 / fs)
    a = {hz: amp[np.argmin(abs(freqs - hz))] for hz in (10, 60, 150)}

    def g(hz):  # order-20 Butterworth magnitude about fc = 52.5 Hz, fw = 95 Hz
        return 1 / np.sqrt(1 + (2 * (hz - 52.5) / 95) ** 40)

    assert a[10] == pytest.approx((g(10) + g(9.9)) / 2, abs=1e-9)
    assert a[60] == pytest.approx(1, abs=1e-9) and a[150] < 1e-6
    # effective bandwidth = sum of the bin gains below N/2 times the bin width (SAMsrcV5)
    df = fs / n
    assert f.bandwidth_for(n) == pytest.approx(g(np.arange(n // 2) * df).sum() * df, rel=1e-12)
    from scipy.integrate import quad

    ref = quad(g, 0, 250, limit=200, points=[5, 100])[0]
    assert f.bandwidth == pytest.approx(ref, rel=1e-3) and 97 < ref < 99
    notch = BandFilter(fs, 5, 100, mains=60.0)
    assert list(notch.notches) == [60.0]
    y = notch.apply(x)
    amp = np.abs(np.fft.rfft(y)) / (n / 2)
    assert amp[np.argmin(abs(freqs - 60))] < 1e-6
    assert amp[np.argmin(abs(freqs - 10))] == pytest.approx(a[10], abs=1e-6)
    # SAMsrcV5's bandwidth is that of the band filter alone; the notch (1 Hz half width) is not
    # subtracted
    assert notch.bandwidth_for(n) == f.bandwidth_for(n)
    # harmonics 1..20 inside the covariance band
    assert list(BandFilter(1000.0, 1, 400, mains=50.0).notches) == [50.0 * k for k in range(1, 9)]
    iir = BandFilter(fs, 5, 100, kind="IIR")
    y = iir.apply(x)
    amp = np.abs(np.fft.rfft(y)) / (n / 2)
    assert amp[np.argmin(abs(freqs - 10))] > 0.95 and amp[np.argmin(abs(freqs - 150))] < 0.05
    with pytest.raises(LamegValueError, match="above the Nyquist"):
        BandFilter(fs, 5, 300)


def test_noise_floor_rule():
    """Hand-computed cases of the flattest-five-point rule (binary fractions: exact ties)."""
    ev = np.array([64, 32, 16, 8, 4, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25])
    # k = 2..9: S[k-2] - S[k+2] = 60, 31, 15.125, 7.25, 3.375, .5, .5, .5 -> ties keep k = 9
    assert noise_floor(ev) == 0.5
    assert noise_floor(ev[::-1]) == 0.5  # order of the input does not matter
    # ndim = 5 (Pinv 5) scans k = 2..7 only -> k = 7
    assert noise_floor(ev, ndim=5) == 0.75
    # too few values to scan: the smallest one
    assert noise_floor(np.array([3.0, 2.0, 1.0])) == 1.0


# --------------------------------------------------------------------------------------------
# covariances
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    sd, ls = simulate(SRC, _tangential(SRC), n_trials=30, amp=60e-9, n_background=8, seed=1)
    return sd, ls


def test_sam_cov_definitions(sim, tmp_path):
    sd, _ = sim
    p = parse_param_text("CovBand 5 45\nOrientBand 15 25\nNoiseBand 60 120\n"
                         "Marker stim -0.4 0 FALSE pre\nMarker stim 0 0.4 TRUE post\n")
    covs = sam_cov(p, sd, output_dir=tmp_path)
    assert set(covs) == {"Global", "Orient", "Noise", "pre", "post", "Sum"}
    f = BandFilter(sd.fs, 5, 45)
    x = f.apply(sd.data, axis=1)
    # Global: per-trial demeaned, divided by N
    xc = x - x.mean(1, keepdims=True)
    flat = xc.reshape(sd.n_channels, -1)
    np.testing.assert_allclose(covs["Global"].C, flat @ flat.T / flat.shape[1], rtol=1e-12)
    # marker 'post' = the 100 samples from 0 s after each event, demeaned by SAMsrcV5's segment
    # mean (sum of samples TS..TE inclusive divided by TT = TE - TS)
    i0 = int(round((0 - sd.time[0]) * sd.fs))
    seg = x[:, i0:i0 + 100, :]
    seg = seg - x[:, i0:i0 + 101, :].sum(1, keepdims=True) / 100
    ref = np.einsum("mtk,ntk->mn", seg, seg) / (100 * sd.n_trials)
    np.testing.assert_allclose(covs["post"].C, ref, rtol=1e-12)
    assert covs["post"].n_samples == 100 * sd.n_trials
    np.testing.assert_allclose(covs["Sum"].C, covs["post"].C, rtol=1e-12)  # only post is TRUE
    assert covs["Orient"].band == (15.0, 25.0) and covs["Noise"].band == (60.0, 120.0)
    assert covs["Global"].noise == noise_floor(np.linalg.svd(covs["Global"].C, compute_uv=False))
    # files: SAMsrcV5 .cov binary round trip
    folder = tmp_path / "cmdline,5-45Hz"  # no parameter file: SAMsrcV5's 'cmdline' name
    d = read_cov(folder / "Global.cov")
    np.testing.assert_array_equal(d["C"], covs["Global"].C)
    assert d["band"] == (5.0, 45.0) and d["noise"] == covs["Global"].noise
    assert (folder.stat().st_size >= 0) and (tmp_path / "sam_cov.param").is_file()
    back = read_covariances(folder, sd.chan_names)
    assert back["post"].chan_names == sd.chan_names
    np.testing.assert_array_equal(back["post"].chan_index, np.arange(sd.n_channels))
    assert back["post"].cov_type == 5 and back["pre"].cov_type == 4 and back["Sum"].cov_type == 1


def test_orient_band_equal_to_cov_band_copies_global(sim):
    sd, _ = sim
    covs = sam_cov(parse_param_text("CovBand 5 45\nOrientBand 5 45\n"), sd, write=False)
    np.testing.assert_array_equal(covs["Orient"].C, covs["Global"].C)


def test_marker_errors(sim):
    sd, _ = sim
    with pytest.raises(LamegDataError, match="m.param:2: marker 'nope' not found.*markers: stim"):
        sam_cov(parse_param_text("CovBand 5 45\nMarker nope 0 1 TRUE\n", "m.param"), sd,
                write=False)
    with pytest.raises(LamegDataError, match="'stim': no valid segments"):
        sam_cov(parse_param_text("CovBand 5 45\nMarker stim 2 3 TRUE\n"), sd, write=False)


def test_segfile_marker(sim, tmp_path):
    sd, _ = sim
    (tmp_path / "segs.txt").write_text("0 0.0 0.2\n1 0.1 0.3\n")
    (tmp_path / "s.param").write_text("CovBand 5 45\nSegFile burst segs.txt TRUE\n")
    from lameg.sam import read_params

    p = read_params(tmp_path / "s.param", (), {}, cwd=tmp_path, home=tmp_path)
    covs = sam_cov(p, sd, write=False)
    assert covs["burst"].n_segments == 2 and covs["burst"].n_samples == 100
    # SAMsrcV5 reads every line as 'trial t0 t1' (no comments): a comment line is an error
    (tmp_path / "segs.txt").write_text("0 0.0 0.2\n# comment\n")
    with pytest.raises(LamegFormatError, match="segs.txt:2: expected 'trial T0 T1'"):
        sam_cov(p, sd, write=False)


# --------------------------------------------------------------------------------------------
# weights vs MNE-Python
# --------------------------------------------------------------------------------------------

def _mne_setup(n_chan=60, n_src=20, seed=0):
    mne = pytest.importorskip("mne")

    mne.set_log_level("error")
    pos, ori = helmet(n_chan)
    info = point_magnetometer_info(pos, ori)
    rng = np.random.default_rng(seed)
    rr = rng.normal(size=(n_src, 3))
    rr = ORIGIN + 0.07 * rr / np.linalg.norm(rr, axis=1)[:, None] * rng.uniform(0.3, 1, (n_src, 1))
    nn = rng.normal(size=(n_src, 3))
    nn /= np.linalg.norm(nn, axis=1)[:, None]
    G = sphere_lead_field(rr, pos, ori, None, ORIGIN)
    # covariance: three active dipoles plus white sensor noise
    X = G[:, :3, 0] * 1e-8 @ rng.normal(size=(3, 5000)) + 2e-14 * rng.normal(size=(n_chan, 5000))
    C = X @ X.T / X.shape[1]
    cov = mne.Covariance(C, info.ch_names, [], [], X.shape[1])
    return mne, info, rr, nn, G, C, cov


def test_orientations_and_weights_equal_mne_max_power():
    """SAM orientation = MNE max-power orientation and w/|w| = MNE unit-noise-gain LCMV weights
    (reg=0, noise_cov=None). Sphere model: radial lead fields vanish, so MNE runs with
    reduce_rank=True and SAM excludes the silent direction. Tolerance 1e-8: both are exact
    closed forms on the same lead fields and covariance; only rounding differs (~1e-13 seen)."""
    mne, info, rr, nn, G, C, cov = _mne_setup()
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn))
    fwd = mne.make_forward_solution(info, None, src, mne.make_sphere_model(ORIGIN, None))
    Gm = fwd["sol"]["data"].reshape(G.shape)
    f = mne.beamformer.make_lcmv(info, fwd, cov, reg=0.0, noise_cov=None, pick_ori="max-power",
                                 weight_norm="unit-noise-gain", reduce_rank=True, rank=None)
    ori, span = max_snr_orientations(Gm, sam_pinv(C))  # sign: +z, MNE's volume convention
    np.testing.assert_allclose(ori, f["max_power_ori"], atol=1e-8)
    assert np.all(span >= 1)
    W = unit_gain_weights(np.einsum("mvk,vk->mv", Gm, ori), sam_pinv(C))
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    Wm = f["weights"] @ f["whitener"] @ f["proj"]
    assert np.abs(Wn - Wm).max() <= 1e-8 * np.abs(Wm).max()
    # pseudo-Z^2 = MNE unit-noise-gain power / noise
    pz2 = np.einsum("vm,vm->v", W @ C, W) / np.einsum("vm,vm->v", W, W)
    np.testing.assert_allclose(pz2, np.einsum("vm,vm->v", Wm @ C, Wm), rtol=1e-8)


def test_fixed_orientation_weights_equal_mne():
    """Atlas mode (fixed normals): w/|w| = MNE unit-noise-gain on a fixed-orientation forward."""
    mne, info, rr, nn, G, C, cov = _mne_setup(seed=4)
    # fixed orientations must not be radial in a sphere: use tangential normals
    nn = np.array([_tangential(r, d) for r, d in zip(rr, nn)])
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn))
    fwd = mne.make_forward_solution(info, None, src, mne.make_sphere_model(ORIGIN, None))
    fwd = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, use_cps=False)
    f = mne.beamformer.make_lcmv(info, fwd, cov, reg=0.0, noise_cov=None, pick_ori=None,
                                 weight_norm="unit-noise-gain", rank=None)
    B = fwd["sol"]["data"]
    # MNE stores source normals in float32, so its oriented gain differs from ours at ~1e-7
    np.testing.assert_allclose(B, np.einsum("mvk,vk->mv", G, nn), atol=1e-6 * np.abs(B).max())
    W = unit_gain_weights(B, sam_pinv(C))
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    Wm = f["weights"] @ f["whitener"] @ f["proj"]
    assert np.abs(Wn - Wm).max() <= 1e-8 * np.abs(Wm).max()


def test_regularisation():
    C = np.diag([4.0, 2.0, 1.0])
    from lameg.sam.params import MuSpec

    Cr, nz = regularise(C, 1.0, 100.0, MuSpec("add", 10.0))
    np.testing.assert_allclose(np.diag(Cr), [4, 2, 1] + np.full(3, (10e-15) ** 2 * 100))
    assert nz == 1.0 + (10e-15) ** 2 * 100
    # Mu *MU adds MU x noise floor to the diagonal and to the noise (SAMsrcV5's sam_wts)
    Cr, nz = regularise(C, 1.0, 100.0, MuSpec("mul", 2.0))
    np.testing.assert_allclose(np.diag(Cr), [6, 4, 3])
    assert nz == 3.0
    Cr, nz = regularise(C, 1.0, 100.0, None, 0.5)
    np.testing.assert_allclose(np.diag(Cr), [4.5, 2.5, 1.5])
    assert nz == 1.5
    np.testing.assert_allclose(sam_pinv(C) @ C, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(sam_pinv(C, drop=1), np.diag([0.25, 0.5, 0.0]))


# --------------------------------------------------------------------------------------------
# programs on simulated data
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grid_run(sim, tmp_path_factory):
    sd, _ = sim
    out = tmp_path_factory.mktemp("sam")
    p = parse_param_text("CovBand 5 45\nMarker stim -0.4 0 FALSE pre\nMarker stim 0 0.4 TRUE post\n"
                         "CovType GLOBAL\n" + GRID)
    covs = sam_cov(p, sd, output_dir=out)
    w = sam_wts(p, covs, data=sd, output_dir=out)
    return p, sd, covs, w, out


def test_sam_wts_grid_outputs(grid_run):
    p, sd, covs, w, out = grid_run
    s = w.sources
    # bounds -5..5 cm snapped outwards to voxel centres at half-integer multiples of the step
    assert s.kind == "grid" and s.grid_shape == (12, 12, 12)
    np.testing.assert_allclose(s.grid_origin, [-0.055, -0.055, -0.015])
    r = np.linalg.norm(s.positions - ORIGIN, axis=1)
    assert np.all((r > 0.005) & (r < 0.12))
    back = load_weights(out / "cmdline,5-45Hz")
    np.testing.assert_array_equal(back.weights["Global"], w.weights["Global"])
    np.testing.assert_array_equal(back.sources.grid_mask, s.grid_mask)
    import nibabel as nib

    img = nib.load(out / "cmdline,5-45Hz" / "Global.nii")
    assert img.shape == (12, 12, 12, sd.n_channels)
    # SAM's sform: world (R, A, S) = (-y, x, z) in mm
    v = np.flatnonzero(s.grid_mask)[7]
    ix, iy, iz = np.unravel_index(v, s.grid_shape)
    xyz = img.affine @ [iz, iy, ix, 1]
    pos = s.positions[7] * 1e3
    np.testing.assert_allclose(xyz[:3], [-pos[1], pos[0], pos[2]], atol=1e-6)
    np.testing.assert_allclose(img.get_fdata()[iz, iy, ix], w.weights["Global"][7], rtol=1e-6)


def test_unit_gain_and_source_is_pseudo_z_peak(grid_run):
    p, sd, covs, w, out = grid_run
    B, W = w.forward, w.weights["Global"]
    np.testing.assert_allclose(np.einsum("vm,mv->v", W, B), 1.0, rtol=1e-9)  # unit gain
    # the task-related pseudo-Z^2 ratio (post/pre weights share the Global filter) peaks at the
    # voxel nearest to the simulated source (grid step 1 cm: within one voxel diagonal)
    Wg = W
    ratio = np.einsum("vm,vm->v", Wg @ covs["post"].C, Wg) / np.einsum("vm,vm->v", Wg @ covs["pre"].C, Wg)
    assert np.linalg.norm(w.sources.positions[np.argmax(ratio)] - SRC) <= 1e-9


def test_pseudo_z_single_source(tmp_path):
    """With one active source and sensor noise only, the Global pseudo-Z^2 peaks at the source."""
    src = np.array([-0.025, 0.035, 0.075])
    sd, _ = simulate(src, _tangential(src, (1, 0, 0)), active=(-0.5, 1.0), n_background=0,
                     amp=30e-9, n_trials=10, seed=5)
    p = parse_param_text("CovBand 5 45\n" + GRID)
    w = sam_wts(p, sam_cov(p, sd, write=False), data=sd, write=False)
    pz2 = w.pseudo_z2()
    assert np.linalg.norm(w.sources.positions[np.argmax(pz2)] - src) <= 1e-9
    # the solved orientation at the source voxel is the simulated one (up to grid offset)
    i = np.argmin(np.linalg.norm(w.sources.positions - src, axis=1))
    assert abs(w.orientations[i] @ _tangential(src, (1, 0, 0))) > 0.9


def test_sam_3d_pseudo_z_relation(grid_run, tmp_path):
    """Without markers, CovType GLOBAL and ImageBand = CovBand, the sam_3d Mean image equals the
    pseudo-Z^2 w'Cw/(noise w'w) exactly (same filter, same per-trial demeaning: 1e-10)."""
    _, sd, covs, w, out = grid_run
    p = parse_param_text("CovBand 5 45\nCovType GLOBAL\n")
    im = sam_3d(p, sd, w, output_dir=tmp_path)
    np.testing.assert_allclose(im[("Global", "Mean")], w.pseudo_z2("Global"), rtol=1e-10)
    # BWratio scales the projected noise for a narrower ImageBand: y is in S/N units
    p2 = parse_param_text("CovBand 5 45\nImageBand 15 25\nCovType GLOBAL\nMinSNR 1.5\n")
    im2 = sam_3d(p2, sd, w, write=False)
    m = im2[("Global", "Mean")]
    assert np.all((m == 0) | (np.sqrt(m) >= 1.5)) and np.any(m == 0)
    files = [f.name for f in im.files]
    assert "SAM,cmdline,Global,3D_PWR,Mean.nii" in files  # OutName: the parameter name


def test_sam_3d_markers_contrast(grid_run):
    p, sd, covs, w, out = grid_run
    im = sam_3d(p, sd, w, output_dir=out)
    ratio = im[("post", "Mean")] / im[("pre", "Mean")]
    assert np.linalg.norm(w.sources.positions[np.argmax(ratio)] - SRC) <= 1e-9
    assert np.all(im[("post", "Variance")] >= 0)


def test_sam_4d_and_ers(grid_run):
    p, sd, covs, w, out = grid_run
    text = ("CovBand 5 45\nImageBand 15 25\nCovType GLOBAL\nMarker stim -0.4 0.4 TRUE\n"
            "TimeStep 0.1\nTimeInt 0.1\nBaseline -0.4 -0.1\n")
    # sam_4d: boxes of BoxWidth; its last box reads one sample past its start + width, so the
    # DataSegment extends past the marker window
    p4 = parse_param_text(text.replace("TimeInt 0.1", "BoxWidth 0.1\nDataSegment -0.4 0.5")
                          + "ImageMetric Power\n")
    im = sam_4d(p4, sd, w, output_dir=out)
    mean = im[("stim", "Mean")]
    np.testing.assert_allclose(im.times, np.arange(-0.4, 0.31, 0.1), atol=1e-9)
    i = np.argmin(np.linalg.norm(w.sources.positions - SRC, axis=1))
    post = im.times >= 0
    # the source voxel's power rises after the event; elsewhere the rise is smaller
    assert mean[i, post].mean() > 5 * abs(mean[i, ~post]).max()
    assert np.argmax(mean[:, post].mean(1)) == i or np.linalg.norm(
        w.sources.positions[np.argmax(mean[:, post].mean(1))] - SRC) <= 1e-9
    import nibabel as nib

    img = nib.load(im.files[0])
    assert img.shape[3] == len(im.times) and img.header.get_zooms()[3] == pytest.approx(0.1)
    ers = sam_ers(parse_param_text(text + "ImageMetric Power\n"), sd, w, write=False)
    e = ers[("stim", "ERS")]
    assert e[i, ers.times >= 0.05].mean() > 5 * abs(e[i, ers.times < -0.15]).max()


def test_sam_ers_evoked_signal_and_difference(tmp_path):
    src = np.array([0.015, -0.025, 0.085])
    sd, _ = simulate(src, _tangential(src), evoked=True, freq=5.0, amp=40e-9, active=(0.0, 0.2),
                     n_background=5, n_trials=30, seed=7)
    p = parse_param_text("CovBand 1 45\nCovType GLOBAL\nMarker stim -0.3 0.4 TRUE\n"
                         "TimeStep 0.02\nBaseline -0.3 0\nSignSegment 0 0.1\n" + GRID)
    w = sam_wts(p, sam_cov(p, sd, write=False), data=sd, write=False)
    ers = sam_ers(p, sd, w, output_dir=tmp_path)
    e = ers[("stim", "ERS")]
    i = np.argmin(np.linalg.norm(w.sources.positions - src, axis=1))
    t = ers.times
    # polarity made positive in the SignSegment, baseline removed
    assert e[i, (t >= 0) & (t <= 0.1)].sum() > 0
    assert abs(e[i, t < 0].mean()) < 1e-12 + 0.05 * e[i].max()
    assert np.linalg.norm(w.sources.positions[np.argmax(e[:, np.argmin(abs(t - 0.05))])] - src) <= 1e-9
    sd2 = SamData(sd.data, sd.fs, sd.time, sd.chan_names,
                  [(k, 0.0, "a" if k % 2 else "b") for k in range(sd.n_trials)])
    p2 = parse_param_text("CovBand 1 45\nCovType GLOBAL\nMarker a -0.3 0.4 TRUE\n"
                          "Marker b -0.3 0.4 TRUE\nTimeStep 0.02\n")
    d = sam_ers(p2, sd2, w, write=False)
    assert list(d.images) == [("a-b", "dERS")]


def test_unsupported_metrics(grid_run):
    p, sd, covs, w, out = grid_run
    for m in ("SpectEntropy", "MutualInfo 10 4", "TransferEntropy 10 4",
              "ConditionalEntropy 0.1 10 4"):
        q = parse_param_text(f"CovBand 5 45\nCovType GLOBAL\nImageMetric {m}\n")
        with pytest.raises(LamegNotImplementedError, match=f"ImageMetric {m.split()[0]} is not"):
            sam_3d(q, sd, w, write=False)


def test_kurtosis_and_rve_metrics(grid_run):
    from lameg.sam.metrics import excess_kurtosis, rank_vector_entropy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8000))
    np.testing.assert_allclose(excess_kurtosis(x), 0, atol=0.2)
    lap = rng.laplace(size=40000)
    assert excess_kurtosis(lap) == pytest.approx(3, abs=0.3)
    # white noise visits all ordinal patterns evenly: entropy near 1; a sine does not
    h_noise = rank_vector_entropy(x[0], 1000.0, 200.0, 4)
    h_sine = rank_vector_entropy(np.sin(np.arange(8000) * 0.05), 1000.0, 200.0, 4)
    assert h_noise.shape == (8000,) and 0.95 < h_noise[2000:].mean() <= 1
    assert h_sine[2000:].mean() < 0.5
    p, sd, covs, w, out = grid_run
    from dataclasses import replace

    w = replace(w, weights={k: v[::10] for k, v in w.weights.items()})  # 1 voxel in 10: speed
    for m in ("Kurtosis", "RankVectorEntropy 50 4", "Signal"):
        q = parse_param_text(f"CovBand 5 45\nCovType GLOBAL\nImageMetric {m}\n"
                             "Marker stim 0 0.4 TRUE\n")
        im = sam_3d(q, sd, w, write=False)
        assert np.all(np.isfinite(im[("stim", "Mean")]))


# --------------------------------------------------------------------------------------------
# laminar example: pial vs white atlas meshes
# --------------------------------------------------------------------------------------------

def _two_layer_atlas(tmp_path):
    """Two concentric spherical caps (pial r = 7 cm, white r = 6.5 cm about the sphere origin)
    with the same columns; orientations = a tangential field (radial sources are MEG-silent in a
    sphere). Written as a layer-major multilayer GIfTI (mm) with a VECTOR array."""
    import nibabel as nib

    rng = np.random.default_rng(2)
    d = rng.normal(size=(300, 3))
    d[:, 2] = np.abs(d[:, 2]) + 0.3
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    pial, white = ORIGIN + 0.070 * d, ORIGIN + 0.065 * d
    ori = np.array([_tangential(p, (1, 0.3, 0)) for p in pial])
    pos = np.vstack([pial, white])
    img = nib.gifti.GiftiImage()
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        (pos * 1e3).astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        np.array([[0, 1, 2]], np.int32), intent="NIFTI_INTENT_TRIANGLE"))
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        np.vstack([ori, ori]).astype(np.float32), intent="NIFTI_INTENT_VECTOR"))
    path = tmp_path / "multilayer.2.ds.link_vector.fixed.gii"
    nib.save(img, path)
    return path, pos, np.vstack([ori, ori])


@pytest.mark.parametrize("layer", [0, 1])
def test_laminar_sam_pial_vs_white(tmp_path, layer):
    """A source simulated on one layer gives more task power (post/pre pseudo-Z^2) on that layer
    than on the other layer of the same column; images are written as GIfTI."""
    import nibabel as nib

    atlas, pos, ori = _two_layer_atlas(tmp_path)
    col = 17
    v = layer * 300 + col
    sd, _ = simulate(pos[v], ori[v], amp=40e-9, n_background=5, n_trials=40, noise_t=5e-15,
                     seed=11 + layer)
    p = parse_param_text(f"CovBand 5 45\nCovType GLOBAL\nAtlasName {atlas}\n"
                         "Marker stim -0.4 0 FALSE pre\nMarker stim 0 0.4 TRUE post\n")
    L = sphere_lead_field(pos, sd.sensors["coilpos"], sd.sensors["coilori"], None, ORIGIN)
    covs = sam_cov(p, sd, output_dir=tmp_path)
    w = sam_wts(p, covs, lead_field=L, data=sd, output_dir=tmp_path)
    np.testing.assert_allclose(w.orientations, ori, atol=1e-6)  # fixed atlas orientations
    im = sam_3d(p, sd, w, output_dir=tmp_path)
    ratio = im[("post", "Mean")] / im[("pre", "Mean")]
    contrast = laminar_contrast(ratio, 2)  # pial minus white per column
    assert np.argmax(ratio) == v
    assert (contrast[col] > 0) == (layer == 0)
    gii = [f for f in im.files if f.name.endswith("post,3D_PWR,Mean.gii")][0]
    np.testing.assert_allclose(nib.load(gii).darrays[0].data, im[("post", "Mean")], rtol=1e-6)
    wg = nib.load(tmp_path / "cmdline,5-45Hz" / "Global.gii").darrays[0]
    assert wg.data.shape == (600, sd.n_channels)
    # Unconstrained (documented): orientations are solved instead of taken from the atlas
    pu = p.copy(Unconstrained=True)
    wu = sam_wts(pu, covs, lead_field=L, data=sd, write=False)
    assert abs(wu.orientations[v] @ ori[v]) > 0.95


def test_lead_field_shape_checked(grid_run):
    p, sd, covs, w, out = grid_run
    with pytest.raises(LamegValueError, match="lead field has shape"):
        sam_wts(p, covs, lead_field=np.zeros((3, 4)), data=sd, write=False)
    q = parse_param_text("CovBand 5 45\nModel Nolte\n" + GRID.replace("Model", "#"))
    with pytest.raises(LamegValueError, match="Model Nolte needs the MRIDirectory"):
        sam_wts(q, covs, data=sd, write=False)
    q = parse_param_text("CovBand 5 45\n" + GRID.replace("Model", "#"))
    with pytest.raises(LamegValueError, match="no forward model"):
        sam_wts(q, covs, data=sd, write=False)


# --------------------------------------------------------------------------------------------
# command line on an MNE .fif dataset
# --------------------------------------------------------------------------------------------

def test_command_line_end_to_end(sim, tmp_path, monkeypatch, capsys):
    mne = pytest.importorskip("mne")
    from mne.io.constants import FIFF

    from lameg.sam.cli import main

    mne.set_log_level("error")
    sd, _ = sim
    pos, ori = sd.sensors["coilpos"], sd.sensors["coilori"]
    info = mne.create_info(sd.chan_names, sd.fs, "mag")
    for i, ch in enumerate(info["chs"]):
        ex = np.cross(ori[i], [0.3, 1, 0.2])
        ex /= np.linalg.norm(ex)
        ch["loc"][:3], ch["loc"][3:6], ch["loc"][6:9], ch["loc"][9:12] = pos[i], ex, np.cross(ori[i], ex), ori[i]
        ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
    ep = mne.EpochsArray(sd.data.transpose(2, 0, 1), info, tmin=sd.time[0],
                         events=np.c_[np.arange(sd.n_trials) * 1000, np.zeros(sd.n_trials, int),
                                      np.ones(sd.n_trials, int)], event_id={"stim": 1})
    ep.save(tmp_path / "sub01_task-epo.fif")
    (tmp_path / "an.param").write_text(
        "CovBand 5 45\nCovType GLOBAL\nMarker stim -0.4 0 FALSE pre\nMarker stim 0 0.4 TRUE post\n"
        + GRID)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for prog in ("cov", "wts", "3d"):
        assert main([prog, "-m", "an", "-r", "sub01_task-epo.fif"]) == 0, capsys.readouterr().err
    samdir = tmp_path / "sub01_task-epo_SAM"
    assert (samdir / "an,5-45Hz" / "weights.npz").is_file()
    assert (samdir / "sub01,an,post,3D_PWR,Mean.nii").is_file() or any(
        samdir.glob("*,an,post,3D_PWR,Mean.nii"))
    assert main(["cov", "-m", "an", "--ImageStep", "1"]) == 2
    assert 'parameter "ImageStep" is not valid on the command line of sam_cov' in capsys.readouterr().err
    assert main(["frob"]) == 2
    assert main(["--help"]) == 0 and main(["sam_cov", "-h"]) == 0 and "CovBand" in capsys.readouterr().out


def test_spm_dataset_input(tmp_path):
    """SPM M/EEG datasets: fT -> T, trials -> events at t = 0 named by condition."""
    spm_meeg = pytest.importorskip("lameg.io.spm_meeg")
    x = np.random.default_rng(0).normal(size=(5, 100, 3)).astype(np.float32)
    spm_meeg.write_meeg(tmp_path / "t.mat", x, fsample=100.0, time_onset=-0.2,
                        chanlabels=[f"M{i}" for i in range(5)], chantypes=["MEGMAG"] * 5,
                        chanunits="fT", conditions=["a", "b", "a"])
    from lameg.sam.io import load_dataset, sam_directory

    s = load_dataset(tmp_path / "t")
    assert s.data.shape == (5, 100, 3) and s.fs == 100.0 and s.time[0] == pytest.approx(-0.2)
    assert s.events == [(0, 0.0, "a"), (1, 0.0, "b"), (2, 0.0, "a")]
    np.testing.assert_allclose(s.data, x * 1e-15, rtol=1e-6)
    assert sam_directory(s.fname) == tmp_path / "t_SAM"
