"""Consistency of the bundled test participant (``test_data/``, made by tools/make_test_data.py).

The checks are independent of the generating code where possible (analytic sphere fields, MNE
readers, SPM's SNR definition recomputed here); where they reuse the script, they recompute a
part from the package-shipped sources and compare it with the committed files (determinism).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

HEMIS = ("lh", "rh")


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def script(repo_dir):
    """The generating script, imported as a module."""
    pytest.importorskip("nilearn")
    pytest.importorskip("mne")
    path = repo_dir / "tools" / "make_test_data.py"
    spec = importlib.util.spec_from_file_location("_make_test_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fs_dir(subjects_dir) -> Path:
    return subjects_dir / "sub-01"


@pytest.fixture(scope="module")
def spm_dir(test_data_dir) -> Path:
    return test_data_dir / "sub-01" / "meg" / "ses-01" / "spm"


@pytest.fixture(scope="module")
def truth(spm_dir) -> dict:
    return json.loads((spm_dir / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def truth_arrays(spm_dir) -> dict:
    with np.load(spm_dir / "ground_truth.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def surfaces(fs_dir) -> dict:
    out = {}
    for hemi in HEMIS:
        out[hemi] = {}
        for name in ("white", "pial", "inflated", "sphere", "sphere.reg"):
            rr, tris, meta = nib.freesurfer.read_geometry(fs_dir / "surf" / f"{hemi}.{name}",
                                                          read_metadata=True)
            out[hemi][name] = (rr, tris, meta)
    return out


def _load_meeg(path):
    from lameg.io import spm_meeg
    return spm_meeg.load_meeg(path)


def _scalp_head(fs_dir, truth):
    rr, tris = nib.freesurfer.read_geometry(fs_dir / "bem" / "outer_skin.surf")
    T = np.array(truth["T_tkras_to_head"])
    return rr @ T[:3, :3].T + T[:3, 3], tris


def _clean(truth, arrays, key):
    """Noiseless MEG signal of a dataset from the stored gains and moment (data units)."""
    ds = truth["datasets"][key]
    y = np.zeros((ds["n_meg_channels"], truth["sampling"]["n_samples"]))
    for s in ds["sources"]:
        name = f"{key.split('_')[0]}_{s['layer']}" if key.startswith("ctf") else key
        y += np.outer(arrays[f"gain_{name}"], arrays["moment_nAm"])
    return y


# --------------------------------------------------------------------------------------------------
# FreeSurfer subject
# --------------------------------------------------------------------------------------------------
def test_surfaces_correspond_and_match_fsaverage5(surfaces, script):
    fs5 = script.load_fsaverage5()
    for hemi in HEMIS:
        white, tris, meta = surfaces[hemi]["white"]
        assert white.shape == (10242, 3) and tris.shape == (20480, 3)
        for name in ("pial", "inflated", "sphere", "sphere.reg"):
            rr, t, _ = surfaces[hemi][name]
            assert rr.shape == white.shape
            np.testing.assert_array_equal(t, tris)  # vertex correspondence
        for name, key in (("white", "white"), ("pial", "pial"), ("inflated", "inflated"),
                          ("sphere", "sphere")):
            np.testing.assert_array_equal(surfaces[hemi][name][0].astype(np.float32), fs5[hemi][key])
        np.testing.assert_array_equal(surfaces[hemi]["sphere"][0], surfaces[hemi]["sphere.reg"][0])
        np.testing.assert_allclose(np.linalg.norm(surfaces[hemi]["sphere"][0], axis=1), 100.0,
                                   atol=0.05)
        d = np.linalg.norm(white - surfaces[hemi]["pial"][0], axis=1)
        # fsaverage5: mean white-pial distance 2.5 mm, max 6.9 (lh) and 7.1 mm (rh)
        assert 2.3 < d.mean() < 2.7 and d.max() < 7.5
        np.testing.assert_allclose(meta["cras"], script.C_RAS)


def test_morphometry(fs_dir, surfaces):
    for hemi in HEMIS:
        d = np.linalg.norm(surfaces[hemi]["white"][0] - surfaces[hemi]["pial"][0], axis=1)
        for key in ("curv", "sulc", "thickness"):
            v = nib.freesurfer.read_morph_data(fs_dir / "surf" / f"{hemi}.{key}")
            assert v.shape == (10242,) and np.isfinite(v).all()
        thick = nib.freesurfer.read_morph_data(fs_dir / "surf" / f"{hemi}.thickness")
        # FreeSurfer thickness is a symmetric nearest distance, not the vertex-wise link length
        assert np.corrcoef(thick, d)[0, 1] > 0.9


def test_orig_mgz_frames_and_contrast(fs_dir, surfaces, truth):
    img = nib.load(fs_dir / "mri" / "orig.mgz")
    assert img.shape == (256, 256, 256) and img.get_data_dtype() == np.uint8
    assert nib.aff2axcodes(img.affine) == ("L", "I", "A")
    tkr = img.header.get_vox2ras_tkr()
    np.testing.assert_allclose(tkr, [[-1, 0, 0, 128], [0, 0, 1, -128], [0, -1, 0, 128],
                                     [0, 0, 0, 1]])
    c_ras = img.affine[:3, 3] - tkr[:3, 3]
    np.testing.assert_allclose(img.affine[:3, :3], tkr[:3, :3])
    np.testing.assert_allclose(c_ras, truth["c_ras_mm"])
    assert np.linalg.norm(c_ras) > 1.0  # scanner RAS != tkRAS
    np.testing.assert_allclose(np.array(truth["T_tkras_to_scanner"]),
                               img.affine @ np.linalg.inv(tkr), atol=1e-12)
    # the surfaces lie on the brain: T1 white matter 1 mm inside the white surface is brighter
    # than the cortex at the pial surface, itself brighter than CSF 1.5 mm outside it
    from scipy import ndimage

    vol = np.asarray(img.dataobj, dtype=float)
    inv = np.linalg.inv(tkr)

    def sample(x):
        return ndimage.map_coordinates(vol, (x @ inv[:3, :3].T + inv[:3, 3]).T, order=1)

    for hemi in HEMIS:
        w, p = surfaces[hemi]["white"][0], surfaces[hemi]["pial"][0]
        d = np.linalg.norm(w - p, axis=1)
        keep = d > 1.0
        lv = (w - p)[keep] / d[keep, None]
        wm = sample(w[keep] + lv).mean()
        gm = sample(p[keep]).mean()
        csf = sample(p[keep] - 1.5 * lv).mean()
        assert wm > gm + 10 and gm > csf, (hemi, wm, gm, csf)


def test_annot_medial_wall_unknown(fs_dir, surfaces, script):
    for hemi in HEMIS:
        labels, ctab, names = nib.freesurfer.read_annot(fs_dir / "label" / f"{hemi}.aparc.annot")
        names = [n.decode() if isinstance(n, bytes) else n for n in names]
        assert labels.shape == (10242,)
        assert names[0] == "unknown" and len(names) == script.N_PARCELS + 1
        assert all(n.startswith("synthetic_") for n in names[1:])
        d = np.linalg.norm(surfaces[hemi]["white"][0] - surfaces[hemi]["pial"][0], axis=1)
        medial = d < script.MEDIAL_WALL_MM
        # laMEG removes vertices whose label is <= 0 or named 'unknown'
        unknown = (labels <= 0) | np.isin(labels, [names.index("unknown")])
        np.testing.assert_array_equal(unknown, medial)
        assert 250 < medial.sum() < 350  # 285 (lh) / 323 (rh) zero-thickness vertices
        sizes = np.bincount(labels[~medial], minlength=script.N_PARCELS + 1)[1:]
        assert sizes.min() > 100
        # determinism: the parcellation is recomputed from the shipped fsaverage5 sphere
        w, s = surfaces[hemi]["white"][0], surfaces[hemi]["sphere"][0]
        ref, ref_ctab, ref_names = script.synthetic_parcellation(s.astype(np.float32),
                                                                 w.astype(np.float32), medial)
        np.testing.assert_array_equal(labels, ref)
        np.testing.assert_array_equal(ctab, ref_ctab)
        assert names == ref_names


def test_bem_surfaces_nest(fs_dir, surfaces, script):
    isk, isk_t = nib.freesurfer.read_geometry(fs_dir / "bem" / "inner_skull.surf")
    scalp, scalp_t = nib.freesurfer.read_geometry(fs_dir / "bem" / "outer_skin.surf")
    assert isk.shape == (10242, 3) and scalp.shape == (2033, 3)
    for rr, t in ((isk, isk_t), (scalp, scalp_t)):
        # closed, consistently oriented: every directed edge has its opposite exactly once
        e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
        key = e[:, 0].astype(np.int64) * len(rr) + e[:, 1]
        rev = e[:, 1].astype(np.int64) * len(rr) + e[:, 0]
        assert len(np.unique(key)) == len(key) and np.isin(rev, key).all()
        # outward orientation: positive enclosed volume
        fn = np.cross(rr[t[:, 1]] - rr[t[:, 0]], rr[t[:, 2]] - rr[t[:, 0]])
        assert np.einsum("ij,ij->", fn, rr[t].mean(axis=1)) > 0
    # the inner skull lies inside the scalp, the cortex inside the inner skull
    assert script.inside_mesh(isk, scalp, scalp_t).all()
    for hemi in HEMIS:
        assert script.inside_mesh(surfaces[hemi]["pial"][0], isk, isk_t).all()


def test_inside_mesh_against_winding_numbers(fs_dir, script):
    """The fast inside test agrees with exact winding numbers on points around the skull."""
    isk, isk_t = nib.freesurfer.read_geometry(fs_dir / "bem" / "inner_skull.surf")
    rng = np.random.default_rng(0)
    pts = isk[rng.choice(len(isk), 60, replace=False)] * rng.uniform(0.8, 1.2, (60, 1))
    exact = script.winding_numbers(pts, isk, isk_t) > 0.5
    np.testing.assert_array_equal(script.inside_mesh(pts, isk, isk_t), exact)
    assert 5 < exact.sum() < 55


def test_head_fif_is_the_scalp(fs_dir):
    mne = pytest.importorskip("mne")
    surf = mne.read_bem_surfaces(fs_dir / "bem" / "sub-01-head.fif", verbose=False)[0]
    scalp, tris = nib.freesurfer.read_geometry(fs_dir / "bem" / "outer_skin.surf")
    np.testing.assert_allclose(surf["rr"] * 1e3, scalp, atol=1e-4)  # float32 mm in the .surf
    np.testing.assert_array_equal(surf["tris"], tris)


# --------------------------------------------------------------------------------------------------
# fiducials and frames
# --------------------------------------------------------------------------------------------------
def test_participants_fiducials(test_data_dir, truth, script):
    import csv

    with open(test_data_dir / "participants.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 1 and rows[0]["subj_id"] == "sub-01"
    fid = np.array([[float(v) for v in rows[0][k].split(",")] for k in ("nas", "lpa", "rpa")])
    np.testing.assert_allclose(fid, truth["fiducials"]["scanner_mm"], atol=1e-6)
    # scanner RAS = MNE's fsaverage fiducials (tkRAS) + c_ras
    ref = script.load_mne_fsaverage()["fid_tkras"] + np.array(truth["c_ras_mm"])
    np.testing.assert_allclose(fid, ref, atol=1e-6)
    # MEG head frame (Neuromag convention): nas on +y, lpa/rpa on the x axis
    T = np.array(truth["T_scanner_to_head"])
    head = fid @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(head, truth["fiducials"]["head_mm"], atol=1e-6)
    np.testing.assert_allclose(head[0, [0, 2]], 0, atol=1e-6)
    np.testing.assert_allclose(head[1:, 1:], 0, atol=1e-6)
    assert head[0, 1] > 50 and head[1, 0] < -50 and head[2, 0] > 50
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)  # rigid


# --------------------------------------------------------------------------------------------------
# MEG datasets
# --------------------------------------------------------------------------------------------------
def test_meg_datasets_layout(spm_dir, truth, fs_dir, script):
    scalp, tris = _scalp_head(fs_dir, truth)
    fid_head = np.array(truth["fiducials"]["head_mm"])
    for ds in truth["datasets"].values():
        D = _load_meeg(spm_dir / ds["file"])
        assert D.n_channels == ds["n_channels"] and D.n_trials == ds["n_trials"]
        assert D.n_samples == truth["sampling"]["n_samples"] and D.fsample == 600.0
        np.testing.assert_allclose(D.time[[0, -1]], [-0.1, 0.15], atol=1e-9)
        assert set(D.conditions) == {ds["condition"]}
        assert D.data.dtype == np.float32 and np.isfinite(D.data).all()
        meg = D.indchantype("MEGANY")
        assert len(meg) == ds["n_meg_channels"]
        sens = D.sensors("MEG")
        assert sens["unit"] == "mm" and list(sens["label"]) == [D.chanlabels[i] for i in meg]
        assert sens["tra"].shape == (len(meg), len(sens["coilpos"]))
        np.testing.assert_allclose(np.linalg.norm(sens["coilori"], axis=1), 1.0, atol=1e-12)
        if ds["system"] == "ctf275":
            assert {D.chantypes[i] for i in meg} == {"MEGGRAD"}
            assert D.chantypes[-1] == "EOG"
            # axial gradiometers: the weights of each channel sum to zero
            np.testing.assert_allclose(sens["tra"].sum(axis=1), 0, atol=1e-12)
        else:
            types = [D.chantypes[i] for i in meg]
            assert types.count("MEGMAG") == 102 and types.count("MEGPLANAR") == 204
            assert {D.chanunits[i] for i in meg if D.chantypes[i] == "MEGPLANAR"} == {"fT/mm"}
        # every coil outside the scalp, at least a few mm away
        assert not script.inside_mesh(sens["coilpos"], scalp, tris).any()
        assert script.surface_distance(sens["coilpos"], scalp).min() > 3.0
        # MEG fiducials and head shape in the head frame
        fid = D.fiducials()
        np.testing.assert_allclose(fid["fid"]["pnt"], fid_head, atol=1e-6)
        assert [s.lower() for s in fid["fid"]["label"]] == ["nas", "lpa", "rpa"]
        hsp = np.asarray(fid["pnt"])
        assert hsp.shape == (script.N_HEADSHAPE, 3)
        # head-shape points are sampled on scalp triangles: within an edge length of a vertex
        assert script.surface_distance(hsp, scalp).max() < 10.0


def test_ground_truth_sources(truth, surfaces):
    T = np.array(truth["T_tkras_to_head"])
    for key, ds in truth["datasets"].items():
        if key == "ctf_noise":
            assert ds["sources"] == [] and ds["snr_db"] is None
            continue
        (s,) = ds["sources"]
        w = surfaces[s["hemi"]]["white"][0][s["vertex"]]
        p = surfaces[s["hemi"]]["pial"][0][s["vertex"]]
        layer = {"pial": p, "white": w}[s["layer"]]
        np.testing.assert_allclose(s["pos_tkras_mm"], layer, atol=1e-5)
        np.testing.assert_allclose(s["ori_mri"], (w - p) / np.linalg.norm(w - p), atol=1e-6)
        np.testing.assert_allclose(np.array(s["pos_scanner_mm"]) - s["pos_tkras_mm"],
                                   truth["c_ras_mm"], atol=1e-9)
        np.testing.assert_allclose(s["pos_head_mm"], T[:3, :3] @ layer + T[:3, 3], atol=1e-5)
        np.testing.assert_allclose(s["ori_head"], T[:3, :3] @ s["ori_mri"], atol=1e-9)
        assert np.linalg.norm(w - p) >= 2.5
    # the pial and white datasets share one cortical column
    a, b = (truth["datasets"][k]["sources"][0] for k in ("ctf_pial", "ctf_white"))
    assert (a["hemi"], a["vertex"], a["layer"]) == (b["hemi"], b["vertex"], "pial")
    assert b["layer"] == "white"


def test_realised_snr_spm_definition(spm_dir, truth, truth_arrays):
    """noise = data - clean; SNR = 20 log10(mean_c std(clean_c) / noise SD) as spm_eeg_simulate."""
    for key, ds in truth["datasets"].items():
        D = _load_meeg(spm_dir / ds["file"])
        meg = D.indchantype("MEGANY")
        data = np.asarray(D.data, dtype=np.float64)
        clean = _clean(truth, truth_arrays, key)
        noise = data[meg] - clean[:, :, None]
        msd = np.mean(np.std(clean, axis=1, ddof=1))
        np.testing.assert_allclose(msd, ds["mean_signal_sd"], rtol=1e-9, atol=1e-12)
        n = noise.size
        # sample SD of n Gaussian values: relative standard error 1/sqrt(2n); allow 5 SE
        sd = noise.std(ddof=1)
        assert abs(sd / ds["noise_sd"] - 1) < 5 / np.sqrt(2 * n), (key, sd, ds["noise_sd"])
        assert abs(noise.mean()) < 5 * ds["noise_sd"] / np.sqrt(n)
        # white: no lag-1 autocorrelation
        r1 = np.mean(noise[:, 1:] * noise[:, :-1]) / sd**2
        assert abs(r1) < 5 / np.sqrt(n)
        if ds["snr_db"] is not None:
            snr = 20 * np.log10(msd / sd)
            # 5 SE of the SD estimate is < 0.03 dB here
            assert abs(snr - ds["snr_db"]) < 20 * np.log10(1 + 5 / np.sqrt(2 * n)) + 1e-6
    # the noise-only dataset has the noise level of the pial dataset
    assert truth["datasets"]["ctf_noise"]["noise_sd"] == truth["datasets"]["ctf_pial"]["noise_sd"]


def test_noise_is_reproducible_from_seed(spm_dir, truth, truth_arrays):
    """data = clean + noise from ``default_rng([seed, stream])`` (float32 rounding only)."""
    for key, ds in truth["datasets"].items():
        D = _load_meeg(spm_dir / ds["file"])
        rng = np.random.default_rng([truth["seed"], ds["noise_stream"]])
        noise = rng.standard_normal((ds["n_trials"], ds["n_channels"],
                                     truth["sampling"]["n_samples"])) * ds["noise_sd"]
        expect = noise.transpose(1, 2, 0).copy()
        expect[: ds["n_meg_channels"]] += _clean(truth, truth_arrays, key)[:, :, None]
        np.testing.assert_array_equal(np.asarray(D.data), expect.astype(np.float32))


def test_sensor_struct_is_mne_channel_model(spm_dir, truth, truth_arrays):
    """A Sarvas sphere field on the stored coils (coilpos/coilori/tra) matches MNE's sphere forward.

    This validates the SPM sensor description (geometry, frame, tra weights, units) independently
    of the generating code. The file holds MNE's 'normal' coil integration points while MNE's
    forward integrates over its 'accurate' points, so they differ by the coil-integration error:
    measured 0.04 % (CTF, 8 of 14 points per channel) and 0.9 % (Neuromag magnetometers: 4 of 16
    points) of the largest gain; tolerances 0.1 % and 1.5 %.
    """
    mne = pytest.importorskip("mne")
    for key in ("ctf_pial", "neuromag"):
        ds = truth["datasets"][key]
        D = _load_meeg(spm_dir / ds["file"])
        sens = D.sensors("MEG")
        (s,) = ds["sources"]
        r0 = np.array([0.0, 10.0, 45.0])  # sphere centre, head frame (mm)
        q = np.array(s["ori_head"])
        rq = np.array(s["pos_head_mm"]) - r0
        r = np.asarray(sens["coilpos"]) - r0
        a_vec = r - rq
        a = np.linalg.norm(a_vec, axis=1)
        rn = np.linalg.norm(r, axis=1)
        F = a * (rn * a + rn**2 - r @ rq)
        gradF = ((a**2 / rn + (a_vec * r).sum(1) / a + 2 * a + 2 * rn)[:, None] * r
                 - (a + 2 * rn + (a_vec * r).sum(1) / a)[:, None] * rq)
        qxr = np.cross(q, rq)
        B = (F[:, None] * qxr - (r @ qxr)[:, None] * gradF) / F[:, None] ** 2  # x mu0/4pi
        b = 1e-7 * (B * np.asarray(sens["coilori"])).sum(1) * 1e6  # T per (A m); 1/mm^2 -> 1/m^2
        g = np.asarray(sens["tra"]) @ b * 1e15 * 1e-9  # fT(/mm) per nA m
        # MNE's sphere forward on the canonical sensors with the stored device->head transform
        kind = "ctf275" if ds["system"] == "ctf275" else "neuromag"
        info = mne.channels.read_meg_canonical_info(kind)
        Td = np.array(ds["T_device_to_head"])
        Td[:3, 3] *= 1e-3
        with info._unlock():
            info["dev_head_t"] = mne.transforms.Transform("meg", "head", Td)
        sphere = mne.make_sphere_model(r0=r0 * 1e-3, head_radius=None, verbose=False)
        src = mne.setup_volume_source_space(
            pos=dict(rr=np.array([s["pos_head_mm"]]) * 1e-3, nn=np.array([q])), verbose=False)
        fwd = mne.make_forward_solution(info, None, src, sphere, meg=True, eeg=False,
                                        mindist=0.0, verbose=False)
        G = fwd["sol"]["data"] @ q * 1e15 * 1e-9
        planar = np.array([u == "T/mm" for u in sens["chanunit"]])
        G = np.where(planar, G * 1e-3, G)
        err = np.abs(g - G).max() / np.abs(G).max()
        assert err < {"ctf_pial": 1e-3, "neuromag": 1.5e-2}[key], (key, err)
        assert np.corrcoef(g, G)[0, 1] > 0.9999
        # and the BEM gain used for the simulation is close to the sphere (topography)
        bem = truth_arrays[f"gain_{key}"]
        assert np.corrcoef(bem, G)[0, 1] > 0.9


def test_fif_epochs_match_spm(test_data_dir, spm_dir, truth):
    mne = pytest.importorskip("mne")
    fif = test_data_dir / "sub-01" / "meg" / "ses-01" / "fif"
    ep = mne.read_epochs(fif / "sub-01_ses-01_task-sim_ctf-pial-epo.fif", verbose=False)
    D = _load_meeg(spm_dir / truth["datasets"]["ctf_pial"]["file"])
    assert [n.split("-")[0] for n in ep.ch_names] == D.chanlabels
    x = ep.get_data(copy=True)  # (trials, channels, samples), SI units
    meg = D.indchantype("MEGANY")
    np.testing.assert_allclose(x[:, meg].transpose(1, 2, 0) * 1e15, D.data[meg], rtol=1e-6,
                               atol=1e-6 * np.abs(D.data[meg]).max())
    np.testing.assert_allclose(x[:, -1] * 1e6, np.asarray(D.data[-1]).T, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(ep.times, D.time, atol=1e-9)
    Td = ep.info["dev_head_t"]["trans"].copy()
    Td[:3, 3] *= 1e3
    np.testing.assert_allclose(Td, truth["datasets"]["ctf_pial"]["T_device_to_head"], atol=1e-9)
    dig = {d["ident"]: d["r"] * 1e3 for d in ep.info["dig"] if d["kind"] == 1}
    np.testing.assert_allclose(np.stack([dig[2], dig[1], dig[3]]),
                               truth["fiducials"]["head_mm"], atol=1e-4)
    trans = mne.read_trans(fif / "sub-01-trans.fif")
    H = np.linalg.inv(trans["trans"])
    H[:3, 3] *= 1e3
    np.testing.assert_allclose(H, truth["T_tkras_to_head"], atol=1e-9)


# --------------------------------------------------------------------------------------------------
# heavier checks: recompute with MNE from the stored truth
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_forward_reproduces_data(subjects_dir, spm_dir, truth, truth_arrays, script):
    """MNE's BEM forward recomputed from the stored truth reproduces the data.

    Tolerance: float32 storage (relative 6e-8 of the largest value, x4) plus 1e-5 relative for
    BEM numerics across BLAS builds.
    """
    bem_sol = None
    for key, ds in truth["datasets"].items():
        if not ds["sources"]:
            continue
        kind = "ctf275" if ds["system"] == "ctf275" else "neuromag"
        info = script.canonical_info(kind)
        (s,) = ds["sources"]
        G, bem_sol = script.mne_fixed_gain(
            info, np.array(ds["T_device_to_head"]), np.array(truth["T_tkras_to_head"]),
            subjects_dir, np.array([s["pos_tkras_mm"]]), np.array([s["ori_mri"]]), bem_sol)
        np.testing.assert_allclose(G[:, 0], truth_arrays[f"gain_{key}"], rtol=1e-5,
                                   atol=1e-5 * np.abs(G).max())
        D = _load_meeg(spm_dir / ds["file"])
        rng = np.random.default_rng([truth["seed"], ds["noise_stream"]])
        noise = rng.standard_normal((ds["n_trials"], ds["n_channels"],
                                     truth["sampling"]["n_samples"])) * ds["noise_sd"]
        meg = D.indchantype("MEGANY")
        clean = np.outer(G[:, 0], truth_arrays["moment_nAm"])
        resid = np.asarray(D.data[meg], float) - noise.transpose(1, 2, 0)[: len(meg)]
        scale = np.abs(D.data[meg]).max()
        np.testing.assert_allclose(resid, np.broadcast_to(clean[:, :, None], resid.shape),
                                   atol=4 * 6e-8 * scale + 1e-5 * np.abs(clean).max())


@pytest.mark.slow
def test_orig_volume_is_reproducible(fs_dir, script):
    img = nib.load(fs_dir / "mri" / "orig.mgz")
    _, tkr = script.conformed_affines(script.C_RAS)
    ref = script.make_orig_volume(tkr)
    diff = np.abs(np.asarray(img.dataobj, int) - ref.astype(int))
    # trilinear interpolation then rounding: allow off-by-one at .5 boundaries across platforms
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_committed_checksums(test_data_dir):
    """Files match test_data/SHA256SUMS (nothing modified them, e.g. a test writing in place)."""
    sums = test_data_dir / "SHA256SUMS"
    lines = [ln.split(maxsplit=1) for ln in sums.read_text().splitlines() if ln.strip()]
    assert len(lines) > 30
    for digest, name in lines:
        h = hashlib.sha256((test_data_dir / name.strip().lstrip("*")).read_bytes()).hexdigest()
        assert h == digest, name
