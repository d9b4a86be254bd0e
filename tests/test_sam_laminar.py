"""SAM on the bundled test participant: lead fields from the co-registered head model (stored gain
reused), equality with MNE-Python's LCMV on those lead fields, and the laminar pial-vs-white
contrast of the simulated CTF datasets with its rendering."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from lameg.exceptions import LamegValueError
from lameg.forward.gain import compute_gain
from lameg.io.gifti import read_surf_gifti
from lameg.sam import parse_param_text, sam_cov, sam_wts
from lameg.sam.forward import free_lead_fields, read_spm_forward
from lameg.sam.io import load_dataset
from lameg.sam.laminar import laminar_sam_contrast
from lameg.sam.weights import max_snr_orientations, sam_pinv


@pytest.fixture(scope="module")
def participant(test_data_dir, tmp_path_factory):
    """2-layer full-resolution surface set of sub-01 and both CTF datasets co-registered with its
    multilayer mesh (Single Shell). Full resolution: the simulated column is a mesh vertex (the
    decimated mesh's nearest vertex is 3.9 mm away, and at this SNR the beamformer cancels a
    source whose lead field is that far off the model's)."""
    import lameg.invert
    from lameg.surf import LayerSurfaceSet
    from lameg.util import get_fiducial_coords

    tmp = tmp_path_factory.mktemp("sam_participant")
    shutil.copytree(test_data_dir / "fs", tmp / "fs")
    surf = LayerSurfaceSet("sub-01", 2, subjects_dir=tmp / "fs")
    surf.create(ds_factor=1.0, verbose=False)
    spm = test_data_dir / "sub-01" / "meg" / "ses-01" / "spm"
    truth = json.loads((spm / "ground_truth.json").read_text())
    with np.load(spm / "ground_truth.npz") as z:
        gains = {k: z[k] for k in z.files if k.startswith("gain_")}
    fid = get_fiducial_coords("sub-01", test_data_dir / "participants.tsv")
    data = {}
    for layer in ("pial", "white"):
        for ext in ("mat", "dat"):
            shutil.copy(spm / f"sim_ctf_{layer}.{ext}", tmp)
        data[layer] = tmp / f"sim_ctf_{layer}.mat"
        with warnings.catch_warnings():
            # the forward module's inside-skull screen reports false positives on this mesh
            warnings.filterwarnings("ignore", ".*cortical vertices lie outside the inner skull")
            lameg.invert.coregister(fid, data[layer], surf, viz=False, cache_dir=tmp / "cache")
    vert, _, ori = read_surf_gifti(surf.get_mesh_path())
    n = surf.get_vertices_per_layer()
    src = truth["datasets"]["ctf_pial"]["sources"][0]
    col = int(src["combined_index"])
    np.testing.assert_allclose(vert[col], src["pos_scanner_mm"], atol=1e-3)
    return {"surf": surf, "data": data, "vert": vert, "ori": ori, "n": n, "col": col,
            "gains": gains, "tmp": tmp}


def _params(extra=""):
    return parse_param_text("CovBand 10 40\nCovType GLOBAL\nMarker burst -0.1 0 FALSE control\n"
                            "Marker burst 0 0.1 TRUE active\n" + extra)


def test_stored_gain_reused_in_si_units(participant):
    """Sources on the co-registered mesh use its stored gain matrix (fT per nA m -> T per A m);
    other sources get lead fields from the stored Single Shell; both agree with the gain the
    simulation used (MNE BEM)."""
    p = participant
    sd = load_dataset(p["data"]["pial"])
    params = _params()
    covs = sam_cov(params, sd, write=False)
    n, col = p["n"], p["col"]
    rows = np.r_[col, col + n, np.arange(0, 2 * n, 997)]
    w = sam_wts(params, covs, atlas=(p["vert"][rows], p["ori"][rows]), data=sd,
                inversion_idx=0, write=False)
    fm = read_spm_forward(p["data"]["pial"], 0)
    from lameg.io.spm_meeg import read_gainmat

    G, labels = read_gainmat(fm.gain_path)
    assert labels == sd.chan_names
    # stored gain (fT/(nA m), scale 1) -> T/(A m): x 1e-6, exactly
    np.testing.assert_allclose(w.forward, G[:, rows] * 1e-6, rtol=1e-12)
    # the same sources shifted by 0.5 mm are not mesh vertices: lead fields from the stored
    # head model (no rank reduction), equal to compute_gain without reduction to rounding
    shifted = p["vert"][rows] + 0.5
    w2 = sam_wts(params, covs, atlas=(shifted, p["ori"][rows]), data=sd, inversion_idx=0,
                 write=False)
    pos_h, ori_h = fm.to_head(shifted, p["ori"][rows])
    ref = compute_gain(pos_h, ori_h, fm.sensors.select(sd.chan_names), fm.headmodel,
                       chanunits=["T"] * sd.n_channels, reducerank=None) * 1e9
    np.testing.assert_allclose(w2.forward, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    # independent check of units and frames: the simulation's MNE-BEM gain of the source column
    # (fT per nA m); measured correlation 0.9998 / amplitude +1 % (Nolte vs BEM)
    for j, key in ((0, "gain_ctf_pial"), (1, "gain_ctf_white")):
        g, g0 = w.forward[:, j] * 1e6, p["gains"][key]
        assert g @ g0 / np.linalg.norm(g) / np.linalg.norm(g0) > 0.999
        assert abs(np.linalg.norm(g) / np.linalg.norm(g0) - 1) < 0.05


def test_unconstrained_equals_mne_max_power_unit_noise_gain(participant):
    """With free-orientation lead fields of the participant's cortical sources from the stored
    Single Shell head model, SAM's orientation = MNE's max-power orientation and w/|w| = MNE's
    unit-noise-gain LCMV weights (reg=0, noise_cov=None). Both are closed forms of the same lead
    fields and covariance, so only rounding differs: tolerance 1e-8 (measured: orientations
    2.5e-12, weights 1.9e-11 relative)."""
    mne = pytest.importorskip("mne")
    from mne.io.constants import FIFF

    mne.set_log_level("error")
    p = participant
    sd = load_dataset(p["data"]["pial"])
    params = _params("Unconstrained\n")
    covs = sam_cov(params, sd, write=False)
    n, col = p["n"], p["col"]
    rng = np.random.default_rng(0)
    rows = np.r_[col, col + n, rng.choice(2 * n, 150, replace=False)]
    w = sam_wts(params, {"Global": covs["Global"]}, atlas=(p["vert"][rows], p["ori"][rows]),
                data=sd, inversion_idx=0, write=False)
    fm = read_spm_forward(p["data"]["pial"], 0)
    pos_h, nrm_h = fm.to_head(p["vert"][rows], p["ori"][rows])
    sens = fm.sensors.select(sd.chan_names)
    L = free_lead_fields(pos_h, sens, fm.headmodel)  # (m, v, 3) T/(A m)
    ori_h = fm.to_head(p["vert"][rows], w.orientations)[1]
    # SAM's sign convention: along the source's link vector
    assert np.all(np.einsum("ij,ij->i", ori_h, nrm_h) >= 0)
    # MNE: point magnetometers at the channel positions (only the forward's shape matters: its
    # solution is replaced by our lead fields)
    info = mne.create_info(sd.chan_names, sd.fs, "mag")
    for i, ch in enumerate(info["chs"]):
        ez = sens.chanori[i] if sens.chanori is not None else [0, 0, 1.0]
        ex = np.cross(ez, [0.3, 1, 0.2])
        ex /= np.linalg.norm(ex)
        ch["loc"][:3] = sens.chanpos[i] if sens.chanpos is not None else [0, 0, 0.1]
        ch["loc"][3:6], ch["loc"][6:9], ch["loc"][9:12] = ex, np.cross(ez, ex), ez
        ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
    info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
    src = mne.setup_volume_source_space(pos=dict(rr=pos_h, nn=nrm_h))
    fwd = mne.make_forward_solution(info, None, src, mne.make_sphere_model((0, 0, 0.04), None))
    assert fwd["sol"]["data"].shape == (sd.n_channels, 3 * len(rows))
    fwd["sol"]["data"] = L.reshape(sd.n_channels, -1).copy()
    C = covs["Global"].C
    cov = mne.Covariance(C, sd.chan_names, [], [], covs["Global"].n_samples)
    f = mne.beamformer.make_lcmv(info, fwd, cov, reg=0.0, noise_cov=None, pick_ori="max-power",
                                 weight_norm="unit-noise-gain", reduce_rank=False, rank=None)
    ori_m = f["max_power_ori"]
    # the radial direction of the single shell is weak but not silent: SAM keeps all 3
    s = np.linalg.svd(np.moveaxis(L, 0, 1), compute_uv=False)
    assert np.all(s[:, 2] > 1e-6 * s[:, 0])
    sign = np.sign(np.einsum("ij,ij->i", ori_h, ori_m))
    np.testing.assert_allclose(ori_h, ori_m * sign[:, None], atol=1e-8)
    # the array-level function on the same lead fields gives the same orientations
    ori2, _ = max_snr_orientations(L, sam_pinv(C), nrm_h)
    np.testing.assert_allclose(ori2, ori_h, atol=1e-10)
    W = w.weights["Global"]
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    Wm = (f["weights"] @ f["whitener"] @ f["proj"]) * sign[:, None]
    assert np.abs(Wn - Wm).max() <= 1e-8 * np.abs(Wm).max()
    # unit gain along the solved orientation
    np.testing.assert_allclose(np.einsum("vm,mv->v", W, w.forward), 1.0, rtol=1e-9)


@pytest.mark.parametrize("layer", ["pial", "white"])
def test_laminar_contrast_favours_simulated_layer(participant, layer, tmp_path):
    """Active (0-100 ms) vs control (-100-0 ms) pseudo-Z^2 ratio on the pial and white layers:
    the ratio peaks at the simulated column on the simulated layer, so the pial - white contrast
    there is positive for the pial simulation and negative for the white one. Measured (no
    regularisation): pial data ratio 1.94 (pial) vs 1.22 (white); white data 1.42 vs 2.64. The
    ratios are modest because the Nolte head model differs slightly from the simulation's BEM and
    the beamformer partly cancels a source that strong (regularisation, e.g. PropMu 1, raises
    them to 4.2 vs 2.2 and 2.1 vs 4.8 with the same signs)."""
    p = participant
    res = laminar_sam_contrast(p["data"][layer], p["surf"])
    col = p["col"]
    assert res.ratio.shape == (2, p["n"]) and res.layers == ("pial", "white")
    assert res.peak_vertex == col and res.peak_layer == layer
    sign = 1 if layer == "pial" else -1
    assert sign * res.contrast[col] > 0.3
    np.testing.assert_allclose(res.contrast, res.ratio[0] - res.ratio[1])
    # nothing farther than 20 mm comes close (measured: 1.56 vs 1.94 and 1.57 vs 2.64)
    far = np.linalg.norm(p["vert"][: p["n"]] - p["vert"][col], axis=1) > 20
    assert res.ratio[:, far].max() < res.ratio.max() - 0.25
    if layer == "pial":
        pytest.importorskip("pyvista")
        from PIL import Image

        from lameg.viz import show_surface

        png = tmp_path / "laminar_sam_contrast.png"
        # +-0.2: the simulated column (0.72) saturates; 99.9 % of |contrast| is below 0.1
        show_surface(p["surf"], layer_name="pial", stage="ds", scalars=res.contrast,
                     cmap="RdBu_r", vmin=-0.2, vmax=0.2, plot_curvature=False, colorbar=True,
                     colorbar_label="pial - white ratio", screenshot=png)
        img = np.asarray(Image.open(png).convert("RGB"), float)
        assert img.shape[0] >= 256 and img.std() > 10  # not blank
        # both signs of the map are drawn on the (grey) brain, left of the colour bar; measured
        # 2082 reddish and 93 bluish pixels
        brain = img[:, : int(0.75 * img.shape[1])]
        assert np.sum(brain[..., 0] - brain[..., 2] > 40) > 200
        assert np.sum(brain[..., 2] - brain[..., 0] > 40) > 20


def test_laminar_contrast_input_errors(participant):
    p = participant
    with pytest.raises(LamegValueError, match="active window"):
        laminar_sam_contrast(p["data"]["pial"], p["surf"], active=(0.1, 0.0))
    with pytest.raises(LamegValueError, match="layers must be two of"):
        laminar_sam_contrast(p["data"]["pial"], p["surf"], layers=("pial", "0.500"))
    with pytest.raises(LamegValueError, match="condition 'nope'"):
        laminar_sam_contrast(p["data"]["pial"], p["surf"], condition="nope")
    with pytest.raises(LamegValueError, match="has no head model.*inversion_idx=3"):
        laminar_sam_contrast(p["data"]["pial"], p["surf"], inversion_idx=3)
    # the surface set's meshes are in MRI space: without a head model, sam_wts refuses them
    sd = load_dataset(p["data"]["pial"])
    params = _params("Model SingleSphere 0 0 4\n")
    covs = sam_cov(params, sd, write=False)
    with pytest.raises(LamegValueError, match="MRI .scanner RAS. space"):
        sam_wts(params, covs, atlas=p["surf"], data=sd, write=False)
