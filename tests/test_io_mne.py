"""MNE-Python -> SPM conversion: units, types, conditions, and the sensor geometry checked by the
field of a dipole (our coils + an independent Sarvas formula vs MNE's own sphere forward)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from lameg.exceptions import LamegFileNotFoundError, LamegValueError  # noqa: E402
from lameg.io.mne import ctf_fif_spm_conversion, mne_to_spm  # noqa: E402
from lameg.io.spm_meeg import load_meeg  # noqa: E402

FIFF = mne.io.constants.FIFF
R0 = np.array([0.0, 0.0, 0.04])  # sphere centre (head frame, m)
DIP_POS = np.array([0.02, 0.03, 0.08])  # m
DIP_ORI = np.array([0.6, -0.8, 0.0])
DIP_AMP = 1e-8  # A m


def _sarvas(rd, q, r, r0):
    """Magnetic field (T) of a current dipole q (A m) at rd, at points r (n, 3), in a conducting
    sphere centred at r0 (Sarvas 1987). Independent of MNE's implementation."""
    rd = rd - r0
    r = r - r0
    a = r - rd
    an = np.linalg.norm(a, axis=1)
    rn = np.linalg.norm(r, axis=1)
    F = an * (rn * an + rn ** 2 - r @ rd)
    adr = np.sum(a * r, axis=1)
    gradF = ((an ** 2 / rn + adr / an + 2 * an + 2 * rn)[:, None] * r
             - (an + 2 * rn + adr / an)[:, None] * rd[None, :])
    qxr = np.cross(q, rd)
    return 1e-7 * (F[:, None] * qxr[None, :] - (r @ qxr)[:, None] * gradF) / F[:, None] ** 2


def _canonical(kind, dz):
    info = mne.channels.read_meg_canonical_info(kind)
    with info._unlock():
        t = info["dev_head_t"]["trans"].copy()
        t[2, 3] += dz  # move the helmet up so that every sensor is outside the head
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", t)
    return info


def _our_field(D):
    """Channel outputs (T, or T/m for planar channels, as MNE) from the written geometry."""
    s = D.sensors("MEG")
    B = _sarvas(DIP_POS, DIP_ORI * DIP_AMP, s["coilpos"] / 1e3, R0)
    y = s["tra"] @ np.sum(B * s["coilori"], axis=1)
    y *= np.array([1e3 if u == "T/mm" else 1.0 for u in s["chanunit"]])
    return dict(zip(s["label"], y))


def _mne_field(info):
    sphere = mne.make_sphere_model(r0=R0, head_radius=None, verbose="error")
    dip = mne.Dipole([0.0], DIP_POS[None], [DIP_AMP], DIP_ORI[None], [100.0])
    fwd, _ = mne.make_forward_dipole(dip, sphere, info, verbose="error")
    return fwd["sol"]["data"][:, 0] * DIP_AMP, fwd["info"]["ch_names"]


@pytest.mark.parametrize("kind, dz, tol_normal", [
    # MNE's forward uses its 'accurate' coils; our default 'normal' differs by the integration
    ("ctf275", 0.05, 1e-3),      # measured 8.6e-5 (8 vs 14 points per channel)
    ("neuromag", 0.035, 1e-2),   # measured 5.3e-3 (4 vs 8/16 points per channel); 'point'
                                 # (FieldTrip-like, 1-2 points) would be 2.1e-2
])
def test_dipole_field_matches_mne(tmp_path, kind, dz, tol_normal):
    info = _canonical(kind, dz)
    evoked = mne.EvokedArray(np.zeros((info["nchan"], 4)), info, tmin=-0.01, comment="cond")
    L_mne, names = _mne_field(info)
    for accuracy, tol in (("accurate", 1e-6), ("normal", tol_normal)):
        # 'accurate' = MNE's own forward coils: measured 3.7e-8 for both systems
        D = mne_to_spm(evoked, tmp_path / f"{kind}_{accuracy}.mat", accuracy=accuracy)
        ours = _our_field(D)
        stripped = [n.split("-")[0] if kind == "ctf275" else n for n in names]
        y = np.array([ours[n] for n in stripped])
        rel = np.linalg.norm(y - L_mne) / np.linalg.norm(L_mne)
        assert rel < tol, (accuracy, rel)
    s = D.sensors("MEG")
    assert s["unit"] == "mm" and s["balance"]["current"] == "none"
    # sensors in the head frame: dev_head_t (a +dz translation) was applied
    loc0 = info["chs"][0]["loc"][:3] + [0, 0, dz]
    np.testing.assert_allclose(s["chanpos"][0], loc0 * 1e3, atol=1e-9)
    if kind == "ctf275":
        assert set(D.chantypes) == {"MEGGRAD"} and set(D.chanunits) == {"fT"}
        assert D.chanlabels[0] == "MLC11" and s["type"] == "ctf275"
        assert s["tra"].shape == (274, 274 * 8)  # 'normal': 4 points per coil, 2 coils
    else:
        assert D.chantypes.count("MEGPLANAR") == 204 and D.chantypes.count("MEGMAG") == 102
        assert D.chanunits[D.chantypes.index("MEGPLANAR")] == "fT/mm"
        assert s["type"] == "neuromag306"
        # planar baseline 16.8 mm is in tra: weights +-1/(2*16.8 mm) per point pair
        row = s["tra"][D.chantypes.index("MEGPLANAR")]
        np.testing.assert_allclose(np.sort(np.abs(row[row != 0])), 1 / 33.6, rtol=1e-3)


def test_ctf_compensation_in_tra(tmp_path):
    """Synthetic third-order compensation: tra must include it (MNE's forward applies it)."""
    info = _canonical("ctf275", 0.05)
    rng = np.random.default_rng(0)
    meg_names = list(info["ch_names"])
    with info._unlock():
        refs = []
        for k in range(6):
            ch = copy.deepcopy(info["chs"][k * 40])
            ch.update(ch_name=f"REF{k}", kind=FIFF.FIFFV_REF_MEG_CH,
                      coil_type=5002 if k < 3 else 5003)  # CTF reference mag / gradiometer
            ch["loc"][:3] += [0, 0, 0.12]
            refs.append(ch)
        info["chs"] = info["chs"] + refs
        for ch in info["chs"][:274]:
            ch["coil_type"] = 5001 | (3 << 16)  # data at compensation grade 3
        info._update_redundant()
        C = rng.standard_normal((274, 6)) * 0.5
        info["comps"] = [dict(
            ctfkind=3, kind=3, save_calibrated=False, rowcals=np.ones(274), colcals=np.ones(6),
            data=dict(nrow=274, ncol=6, row_names=meg_names,
                      col_names=[f"REF{k}" for k in range(6)], data=C))]
    info._check_consistency()
    evoked = mne.EvokedArray(np.zeros((info["nchan"], 3)), info)
    D = mne_to_spm(evoked, tmp_path / "comp.mat", accuracy="accurate")
    assert D.chantypes[-6:] == ["REFMAG"] * 3 + ["REFGRAD"] * 3
    s = D.sensors("MEG")
    assert s["balance"]["current"] == "G3BR" and s["tra"].shape[0] == 280
    L_mne, names = _mne_field(info)
    ours = _our_field(D)
    y = np.array([ours[n.split("-")[0]] for n in names])
    rel = np.linalg.norm(y - L_mne) / np.linalg.norm(L_mne)
    assert rel < 1e-6, rel  # measured 3.9e-8
    # the check is sensitive: ignoring the compensation would be far off
    uncomp = mne_to_spm(mne.EvokedArray(np.zeros((info["nchan"], 3)),
                                        _without_comp(info)), tmp_path / "nocomp.mat",
                        accuracy="accurate")
    y0 = np.array([_our_field(uncomp)[n.split("-")[0]] for n in names])
    assert np.linalg.norm(y0 - L_mne) / np.linalg.norm(L_mne) > 100 * max(rel, 1e-6)


def _without_comp(info):
    info = info.copy()
    with info._unlock():
        for ch in info["chs"]:
            ch["coil_type"] = int(ch["coil_type"]) & 0xFFFF
    return info


def _info_with_dig(n_meg_kind="neuromag"):
    info = _canonical(n_meg_kind, 0.04)
    eeg = mne.create_info(["EEG001", "EOG061", "STI101"], info["sfreq"], ["eeg", "eog", "stim"])
    info = mne.io.meas_info._merge_info([info, eeg]) if hasattr(mne.io, "meas_info") else \
        mne._fiff.meas_info._merge_info([info, eeg])
    mont = mne.channels.make_dig_montage(
        nasion=[0.0, 0.1, 0.0], lpa=[-0.08, 0.0, 0.0], rpa=[0.08, 0.0, 0.0],
        hsp=np.array([[0.0, 0.05, 0.09], [0.03, 0.02, 0.1]]),
        ch_pos={"EEG001": [0.0, 0.0, 0.1]}, coord_frame="head")
    info.set_montage(mont, on_missing="ignore")
    return info


def test_epochs_units_types_conditions(tmp_path):
    info = _info_with_dig()
    info["bads"] = ["MEG 0113"]
    rng = np.random.default_rng(3)
    n = info["nchan"]
    data = rng.standard_normal((4, n, 20)) * 1e-12
    events = np.array([[100, 0, 1], [300, 0, 2], [500, 0, 1], [700, 0, 2]])
    ep = mne.EpochsArray(data, info, events=events, tmin=-0.005,
                         event_id={"faces": 1, "scrambled": 2}, verbose="error")
    for version in ("7", "7.3"):
        D = mne_to_spm(ep, tmp_path / f"ep{version}.mat", version=version)
        D = load_meeg(D.fname)
        assert D.type == "single" and D.n_trials == 4 and D.fsample == info["sfreq"]
        assert D.conditions == ["faces", "scrambled", "faces", "scrambled"]
        assert abs(D.time_onset - (-0.005)) < 1e-12
        i_mag = D.chanlabels.index("MEG 0111")
        i_pl = D.chanlabels.index("MEG 0112")
        i_eeg = D.chanlabels.index("EEG001")
        i_sti = D.chanlabels.index("STI101")
        assert D.chantypes[i_mag] == "MEGMAG" and D.chanunits[i_mag] == "fT"
        assert D.chantypes[i_pl] == "MEGPLANAR" and D.chanunits[i_pl] == "fT/mm"
        assert D.chantypes[i_eeg] == "EEG" and D.chanunits[i_eeg] == "uV"
        assert D.chantypes[D.chanlabels.index("EOG061")] == "EOG"
        assert D.chantypes[i_sti] == "Other"
        tol = 1e-6  # float32 storage
        np.testing.assert_allclose(D.data[i_mag], data[:, i_mag].T * 1e15, rtol=tol)
        np.testing.assert_allclose(D.data[i_pl], data[:, i_pl].T * 1e12, rtol=tol)
        np.testing.assert_allclose(D.data[i_eeg], data[:, i_eeg].T * 1e6, rtol=tol)
        np.testing.assert_allclose(D.data[i_sti], data[:, i_sti].T, rtol=tol)
        assert list(D.badchannels) == [D.chanlabels.index("MEG 0113")]
        assert len(D.indchantype("MEG")) == 306 and len(D.indchantype("MEG", "GOOD")) == 305
        fid = D.fiducials()
        assert fid["fid"]["label"] == ["nas", "lpa", "rpa"]
        np.testing.assert_allclose(fid["fid"]["pnt"], [[0, 100, 0], [-80, 0, 0], [80, 0, 0]],
                                   atol=1e-9)
        assert fid["pnt"].shape[0] >= 2
        eeg = D.sensors("EEG")
        np.testing.assert_allclose(eeg["elecpos"][0], [0, 0, 100], atol=1e-9)
        ons = [t["onset"] for t in D.header["trials"]]
        np.testing.assert_allclose(ons, events[:, 0] / info["sfreq"] - 0.005)


def test_raw_and_fif_and_ctf_wrapper(tmp_path):
    info = _canonical("ctf275", 0.05)
    rng = np.random.default_rng(4)
    raw = mne.io.RawArray(rng.standard_normal((info["nchan"], 300)) * 1e-13, info,
                          verbose="error")
    raw.set_annotations(mne.Annotations([0.05], [0.01], ["stim"]))
    D = mne_to_spm(raw, tmp_path / "raw.mat")
    assert D.type == "continuous" and D.n_trials == 1 and D.time_onset == 0.0
    np.testing.assert_allclose(D.data[:, :, 0], raw.get_data() * 1e15, rtol=1e-6)
    ev = D.header["trials"]["events"]
    assert ev["type"] == "stim" and abs(ev["time"] - 0.05) < 1e-9
    # fif round trip through laMEG's entry point (no res4: geometry from the fif)
    fif = tmp_path / "sub01_raw.fif"
    raw.save(fif, verbose="error")
    E = ctf_fif_spm_conversion(fif, None, tmp_path / "out", epoched=False)
    assert E.fname == (tmp_path / "out" / "spm_sub01_raw.mat").resolve()
    np.testing.assert_allclose(E.data, D.data, rtol=1e-6)
    # .fif stores channel locations as float32: ~1e-7 relative, i.e. < 1e-4 mm here
    np.testing.assert_allclose(E.sensors("MEG")["coilpos"], D.sensors("MEG")["coilpos"],
                               atol=1e-4)
    ep = mne.make_fixed_length_epochs(raw, duration=0.1, preload=True, verbose="error")
    fif_ep = tmp_path / "sub01-epo.fif"
    ep.save(fif_ep, verbose="error")
    F = ctf_fif_spm_conversion(fif_ep, "", tmp_path / "out", epoched=True, prefix="x_")
    assert F.fname.name == "x_sub01-epo.mat" and F.n_trials == 3 and F.type == "single"
    G = mne_to_spm(fif_ep, tmp_path / "viafile.mat")
    np.testing.assert_array_equal(G.data, F.data)
    with pytest.raises(LamegValueError, match="stand-alone .res4"):
        bogus = tmp_path / "x.res4"
        bogus.write_bytes(b"junk")
        ctf_fif_spm_conversion(fif_ep, bogus, tmp_path / "out", epoched=True)
    with pytest.raises(LamegFileNotFoundError):
        ctf_fif_spm_conversion(tmp_path / "missing.fif", None, tmp_path, epoched=True)
    with pytest.raises(LamegValueError, match="expected mne"):
        mne_to_spm(np.zeros(3), tmp_path / "bad.mat")


@pytest.mark.spmref
def test_point_accuracy_reproduces_spm_reference_grad(spm_reference, tmp_path):
    """accuracy='point' gives FieldTrip's 2-coil CTF grad: the one SPM used for the reference."""
    geo = np.load(spm_reference / "inputs" / "geometry_inputs.npz")
    info = mne.channels.read_meg_canonical_info("ctf275")
    with info._unlock():
        t = np.eye(4)
        t[:3, 3] = geo["t_dev2head"] / 1e3  # (15, 0, 55) mm
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", t)
    D = mne_to_spm(mne.EvokedArray(np.zeros((274, 2)), info), tmp_path / "p.mat",
                   accuracy="point")
    s = D.sensors("MEG")
    assert s["label"] == [str(v) for v in geo["label"]]
    assert s["tra"].shape == geo["tra"].shape == (274, 548)
    pick = s["coilpos"][np.argmax(s["tra"], axis=1)]   # +1 weight: pickup coil
    comp = s["coilpos"][np.argmin(s["tra"], axis=1)]   # -1 weight: compensation coil
    # the reference positions differ by up to 3e-5 mm (single-precision steps in its making)
    np.testing.assert_allclose(pick, geo["coilpos"][:274], atol=1e-4)  # mm
    np.testing.assert_allclose(comp, geo["coilpos"][274:], atol=1e-4)
    np.testing.assert_allclose(s["chanpos"], geo["chanpos"], atol=1e-4)
    np.testing.assert_allclose(s["chanori"], geo["chanori"], atol=1e-6)
    # coilori is normalised and its (float32-rounded, |ori| = 1 +- 1e-6) length moved into tra
    np.testing.assert_allclose(np.sort(s["tra"], axis=1)[:, [0, -1]],
                               np.tile([-1.0, 1.0], (274, 1)), rtol=1e-6)
    assert np.count_nonzero(s["tra"]) == 548
