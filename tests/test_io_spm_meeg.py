"""SPM M/EEG datasets: reading SPM's own files, writing SPM-shaped files, round trips, bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from lameg.exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from lameg.io.matfile import MatCell, MatObject, StructArray, load_mat, mat_version, save_mat
from lameg.io.spm_meeg import MEEG, load_meeg, read_gainmat, write_gainmat, write_meeg


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _small_dataset(tmp_path, name="small", n_trials=3, version="7", conditions=None, **kw):
    rng = np.random.default_rng(0)
    n_chan, n_samp = 5, 40
    data = rng.standard_normal((n_chan, n_samp, n_trials)) * 100
    sensors = {
        "coilpos": rng.standard_normal((10, 3)) * 0.1, "coilori": np.tile([0, 0, 1.0], (10, 1)),
        "tra": np.hstack([np.eye(5), -np.eye(5)]), "label": [f"M{i}" for i in range(5)],
        "chanpos": rng.standard_normal((5, 3)) * 0.1, "chanori": np.tile([0, 0, 1.0], (5, 1)),
        "chantype": ["meggrad"] * 5, "chanunit": ["T"] * 5, "unit": "m", "type": "ctf275",
    }
    fid = {"fid": {"pnt": np.array([[0.1, 0, 0], [0, 0.08, 0], [0, -0.08, 0]]),
                   "label": ["nas", "lpa", "rpa"]}, "pnt": np.zeros((0, 3)), "unit": "m"}
    if conditions is None and n_trials > 1:
        conditions = ["a", "b"] * (n_trials // 2) + ["a"] * (n_trials % 2)
    D = write_meeg(tmp_path / name, data if n_trials > 1 else data[:, :, 0], fsample=200.0,
                   time_onset=-0.05, chanlabels=[f"M{i}" for i in range(5)], chantypes="MEGGRAD",
                   chanunits="fT", sensors=sensors, fiducials=fid, conditions=conditions,
                   badchannels=[2], version=version, **kw)
    return D, data


# ---------------------------------------------------------------------------------------------
# SPM's own files
# ---------------------------------------------------------------------------------------------


@pytest.mark.spmref
def test_read_spm_sim_base(spm_reference):
    D = load_meeg(spm_reference / "dataset" / "sim_base.mat")
    assert (D.n_channels, D.n_samples, D.n_trials) == (274, 100, 60)
    assert D.fsample == 600.0 and D.type == "single"
    # the README documents sample k (1-based) at (k - 31)/600 s
    np.testing.assert_allclose(D.time, (np.arange(1, 101) - 31) / 600.0, atol=1e-15)
    assert isinstance(D.data, np.memmap) and D.data.dtype == np.float32
    raw = np.fromfile(spm_reference / "dataset" / "sim_base.dat", "<f4").reshape(
        (274, 100, 60), order="F")
    np.testing.assert_array_equal(D.data, raw)  # exact
    assert abs(raw.astype(np.float64).sum() - (-19352.3467)) < 5e-4  # README: -19352.3467
    assert D.chanlabels[0] == "MLC11" and set(D.chantypes) == {"MEGGRAD"}
    assert set(D.chanunits) == {"fT"} and D.badchannels.size == 0
    assert D.conditions == ["sim"] * 60 and D.condlist == ["sim"]
    np.testing.assert_array_equal(D.indchantype("MEG"), np.arange(274))
    np.testing.assert_array_equal(D.indchantype("MEGGRAD", "GOOD"), np.arange(274))
    s = D.sensors("MEG")
    assert s["coilpos"].shape == (548, 3) and s["tra"].shape == (274, 548)
    assert s["unit"] == "mm" and len(s["label"]) == 274 and s["chantype"][0] == "meggrad"
    geo = np.load(spm_reference / "inputs" / "geometry_inputs.npz")
    np.testing.assert_allclose(s["coilpos"], geo["coilpos"], atol=1e-9)
    np.testing.assert_allclose(s["tra"], geo["tra"], atol=0)
    fid = D.fiducials()
    assert fid["fid"]["label"] == ["nas", "lpa", "rpa"] and fid["unit"] == "mm"
    np.testing.assert_allclose(fid["fid"]["pnt"][0], [114.0466, 0, 0], atol=1e-4)  # README
    assert len(D.inv) == 1 and D.val == 1
    assert D.inv[0]["gainmat"] == "SPMgainmatrix_base_1.mat"
    assert D.inv[0]["mesh"]["tess_mni"]["vert"].shape == (10242, 3)
    assert "sim_base.mat" in repr(D)


@pytest.mark.spmref
@pytest.mark.parametrize("name, fro", [("SPMgainmatrix_base_1.mat", 3852.745004897),
                                       ("SPMgainmatrix_base_sphere_1.mat", 4488.649405201)])
def test_read_spm_gainmat(spm_reference, name, fro):
    G, labels = read_gainmat(spm_reference / "dataset" / name)
    assert G.shape == (274, 10242) and G.dtype == np.float64
    assert len(labels) == 274 and labels[0] == "MLC11"
    assert abs(np.linalg.norm(G) - fro) < 1e-8  # README table, 12 significant digits
    fwd = np.load(spm_reference / "forward_singleshell.npz")
    assert labels == [str(v) for v in fwd["label"]]
    if "sphere" not in name:
        np.testing.assert_allclose(np.linalg.norm(G, axis=0), fwd["G_col_norm"], rtol=1e-12)


def _layout(x):
    """Field names, MATLAB classes and dims of a loaded struct, recursively."""
    if isinstance(x, MatObject):
        return ("object", x.classname, {k: _layout(v) for k, v in x.items()})
    if isinstance(x, dict):
        return ("struct", {k: _layout(v) for k, v in x.items()})
    if isinstance(x, StructArray):
        return ("structarray", len(x.shape), x.fields,
                _layout(x[0]) if len(x) else None)
    if isinstance(x, list):
        return ("cell", "column" if x.shape[-1] == 1 and x.shape[0] > 1 else "row",
                _layout(x[0]) if len(x) else None)
    if isinstance(x, str):
        return "char"
    a = np.asarray(x)
    return (a.dtype.kind, "empty" if a.size == 0 else a.ndim)


@pytest.mark.spmref
@pytest.mark.parametrize("version", ["7", "7.3"])
def test_written_layout_matches_spm(spm_reference, tmp_path, version):
    """A dataset written by lameg has the fields, classes and dims of SPM's base.mat."""
    ref = load_meeg(spm_reference / "dataset" / "base.mat")
    s = ref.sensors("MEG")
    D = write_meeg(tmp_path / "mine", np.zeros((274, 100, 60), np.float32), fsample=600.0,
                   time_onset=-0.05, chanlabels=ref.chanlabels, chantypes="MEGGRAD",
                   chanunits="fT", sensors=s, fiducials=ref.fiducials(),
                   conditions=["sim"] * 60, version=version)
    mine = load_mat(D.fname)["D"]
    theirs = load_mat(ref.fname)["D"]
    assert list(mine) == list(theirs)
    for key in theirs:
        if key in ("other", "condlist"):
            continue
        lm, lt = _layout(mine[key]), _layout(theirs[key])
        if key == "channels":  # SPM (Octave) left X/Y_plot2D filled from a 2-D layout
            assert lm[2] == lt[2]
            continue
        if key == "trials":
            assert lm[:3] == lt[:3]
            continue
        assert lm == lt, key
    assert mine["condlist"] == ["sim"]
    assert _sha(D.fname.with_suffix(".dat")) == _sha(spm_reference / "dataset" / "base.dat")


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["7", "7.3"])
@pytest.mark.parametrize("n_trials", [1, 4])
def test_round_trip(tmp_path, version, n_trials):
    D, data = _small_dataset(tmp_path, n_trials=n_trials, version=version)
    assert mat_version(D.fname) == version
    E = load_meeg(D.fname)
    assert E.mat_version == version
    assert E.type == ("continuous" if n_trials == 1 else "single")
    assert (E.n_channels, E.n_samples, E.n_trials) == (5, 40, n_trials)
    if n_trials == 1:
        assert list(np.atleast_1d(E.header["data"]["dim"])) == [5, 40]
    np.testing.assert_array_equal(E.data, data.astype(np.float32).reshape(E.data.shape))
    np.testing.assert_allclose(E.time, -0.05 + np.arange(40) / 200.0, atol=1e-15)
    assert E.chanlabels == [f"M{i}" for i in range(5)]
    assert list(E.badchannels) == [2]
    np.testing.assert_array_equal(E.indchantype("MEG", "GOOD"), [0, 1, 3, 4])
    s = E.sensors("MEG")
    assert s["unit"] == "mm" and s["tra"].shape == (5, 10)
    np.testing.assert_allclose(s["coilpos"], D.sensors("MEG")["coilpos"])
    np.testing.assert_allclose(E.fiducials()["fid"]["pnt"][0], [100, 0, 0])
    assert load_mat(E.fname)["D"] is not None
    h1, h2 = load_mat(D.fname)["D"], E.header
    assert list(h1) == list(h2)


def test_dat_layout_is_column_major(tmp_path):
    D, data = _small_dataset(tmp_path, n_trials=2)
    raw = np.fromfile(D.fname.with_suffix(".dat"), "<f4")
    # x[c, t, k] at c + Nchan*(t + Nsamples*k)
    c, t, k = 3, 17, 1
    assert raw[c + 5 * (t + 40 * k)] == np.float32(data[c, t, k])


def test_save_inv_and_clone(tmp_path):
    D, data = _small_dataset(tmp_path, n_trials=2, version="7.3")
    dat_hash = _sha(D.fname.with_suffix(".dat"))
    inv = {"method": "Imaging", "inverse": {"F": -123.5, "M": np.arange(6.0).reshape(2, 3),
                                           "Is": np.array([1.0, 5.0]), "type": "EBB"}}
    D.save_inv([inv])
    assert _sha(D.fname.with_suffix(".dat")) == dat_hash
    E = load_meeg(D.fname)
    assert E.mat_version == "7.3" and E.val == 1 and len(E.inv) == 1
    np.testing.assert_array_equal(E.inv[0]["inverse"]["M"], inv["inverse"]["M"])
    assert E.inv[0]["inverse"]["F"] == -123.5 and E.inv[0]["inverse"]["type"] == "EBB"
    E.save_inv([inv, {"method": "Imaging"}])
    F = load_meeg(D.fname)
    assert len(F.inv) == 2 and F.val == 1
    # clone: new files, original untouched
    C = F.clone("copy.mat", data=np.ones((5, 40, 2)))
    assert C.fname.parent == F.fname.parent and C.fname.name == "copy.mat"
    np.testing.assert_array_equal(C.data, 1.0)
    assert len(C.inv) == 2 and C.conditions == F.conditions
    assert _sha(D.fname.with_suffix(".dat")) == dat_hash
    C2 = F.clone(tmp_path / "sub" / "avg.mat", data=np.zeros((5, 40, 2)),
                 conditions=["a", "b"], version="7")
    assert C2.type == "evoked" and C2.mat_version == "7"
    C3 = F.clone("copy3")
    np.testing.assert_array_equal(C3.data, F.data)
    with pytest.raises(LamegValueError):
        F.clone("bad.mat", data=np.zeros((4, 40, 2)))
    with pytest.raises(LamegValueError):
        F.save_inv({"not": "a list"})


@pytest.mark.parametrize("version", ["7", "7.3"])
def test_gainmat_round_trip(tmp_path, version):
    rng = np.random.default_rng(1)
    G = rng.standard_normal((7, 30))
    labels = [f"C{i}" for i in range(7)]
    fn = write_gainmat(tmp_path / "SPMgainmatrix_x_1.mat", G, labels, version=version)
    assert mat_version(fn) == version
    G2, l2 = read_gainmat(fn)
    np.testing.assert_array_equal(G2, G)
    assert l2 == labels
    with pytest.raises(LamegValueError):
        write_gainmat(tmp_path / "g.mat", G, labels[:-1])


def test_gain_file_written_in_place_is_the_saved_file(tmp_path):
    from lameg.io.spm_gainmat import GainFileMap, read_gain_columns

    rng = np.random.default_rng(2)
    G = rng.standard_normal((9, 41))
    labels = [f"MEG{i:04d}" for i in range(8)] + ["a longer label"]
    m = GainFileMap(tmp_path / "a.mat", labels, 41)
    assert np.all(m.G == 0) and m.G.flags.f_contiguous
    m.G[:, 3:] = G[:, 3:]
    m.G[:, :3] = G[:, :3]
    m.finish()
    del m
    write_gainmat(tmp_path / "b.mat", G, labels, version="6")
    a, b = (tmp_path / "a.mat").read_bytes(), (tmp_path / "b.mat").read_bytes()
    assert a[116:] == b[116:]  # byte for byte what SciPy writes, after the dated text
    G2, l2 = read_gainmat(tmp_path / "a.mat")
    np.testing.assert_array_equal(G2, G)
    assert l2 == labels
    np.testing.assert_array_equal(read_gain_columns(tmp_path / "a.mat", np.array([40, 0]))[0],
                                  G[:, [40, 0]])
    assert not GainFileMap.fits(306, 900_000)  # 2.2 GB: MAT v7.3
    with pytest.raises(LamegValueError, match="7.3"):
        GainFileMap(tmp_path / "c.mat", labels, 2**28)
    assert not (tmp_path / "c.mat").exists()
    with pytest.raises(LamegValueError, match="at least one channel"):
        GainFileMap(tmp_path / "d.mat", labels, 0)


def test_dtype_codes_scaling_offset(tmp_path):
    """Non-float32 .dat files: int16 big endian with per-channel slope, an offset, float64."""
    D, _ = _small_dataset(tmp_path, n_trials=2)
    header = load_mat(D.fname)["D"]
    rng = np.random.default_rng(2)
    raw = rng.integers(-3000, 3000, size=(5, 40, 2)).astype(">i2")
    (tmp_path / "i16.dat").write_bytes(b"\0" * 16 + raw.tobytes(order="F"))
    h = dict(header)
    fa = MatObject(h["data"], classname="file_array")
    fa.update(fname="i16.dat", dtype=4.0, be=1.0, offset=16.0,
              scl_slope=np.arange(1.0, 6.0).reshape(5, 1), scl_inter=np.zeros((0, 0)))
    h["data"] = fa
    save_mat(tmp_path / "i16.mat", {"D": h})
    E = load_meeg(tmp_path / "i16.mat")
    np.testing.assert_array_equal(E.data, raw.astype(float) * np.arange(1.0, 6.0)[:, None, None])
    raw64 = rng.standard_normal((5, 40, 2))
    (tmp_path / "f64.dat").write_bytes(raw64.astype("<f8").tobytes(order="F"))
    fa.update(fname="f64.dat", dtype="float64-le", be=0.0, offset=0.0,
              scl_slope=np.zeros((0, 0)))
    save_mat(tmp_path / "f64.mat", {"D": h})
    np.testing.assert_array_equal(load_meeg(tmp_path / "f64.mat").data, raw64)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _rewrite(D: MEEG, out: Path, **data_fields) -> Path:
    h = load_mat(D.fname)["D"]
    fa = MatObject(h["data"], classname="file_array")
    fa.update(data_fields)
    h["data"] = fa
    save_mat(out, {"D": h})
    return out


def test_truncated_dat(tmp_path):
    D, _ = _small_dataset(tmp_path)
    dat = D.fname.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:-4])
    with pytest.raises(LamegFormatError, match="truncated"):
        _ = load_meeg(D.fname).data


def test_missing_or_moved_dat(tmp_path):
    D, data = _small_dataset(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.move(D.fname.with_suffix(".dat"), other / "small.dat")
    with pytest.raises(LamegFileNotFoundError, match="small.dat"):
        _ = load_meeg(D.fname).data
    # an absolute stored path to another folder is honoured when nothing is next to the .mat
    out = _rewrite(D, tmp_path / "abs.mat", fname=str(other / "small.dat"))
    np.testing.assert_array_equal(load_meeg(out).data, data.astype(np.float32))
    # a Windows-style stored path falls back to the basename next to the header
    shutil.copy(other / "small.dat", tmp_path / "small.dat")
    out = _rewrite(D, tmp_path / "win.mat", fname="C:\\data\\meg\\small.dat")
    np.testing.assert_array_equal(load_meeg(out).data, data.astype(np.float32))


def test_header_errors(tmp_path):
    D, _ = _small_dataset(tmp_path)
    with pytest.raises(LamegFormatError, match="mismatch"):
        load_meeg(_rewrite(D, tmp_path / "dim.mat", dim=np.array([6.0, 40, 3])))
    with pytest.raises(LamegFormatError, match="data type code 3"):
        load_meeg(_rewrite(D, tmp_path / "dt.mat", dtype=3.0))
    save_mat(tmp_path / "other.mat", {"x": np.eye(3)})
    with pytest.raises(LamegFormatError, match="not an SPM M/EEG"):
        load_meeg(tmp_path / "other.mat")
    save_mat(tmp_path / "d.mat", {"D": {"a": 1.0}})
    with pytest.raises(LamegFormatError, match="not an SPM M/EEG header"):
        load_meeg(tmp_path / "d.mat")
    (tmp_path / "junk.mat").write_bytes(b"this is not a MAT-file at all, " * 20)
    with pytest.raises(LamegFormatError, match="junk.mat"):
        load_meeg(tmp_path / "junk.mat")
    with pytest.raises(LamegFileNotFoundError):
        load_meeg(tmp_path / "nothere.mat")
    with pytest.raises(LamegFormatError, match="not an SPM gain-matrix"):
        read_gainmat(tmp_path / "other.mat")


def test_write_meeg_validation(tmp_path):
    x = np.zeros((2, 10, 2))
    kw = dict(fsample=100.0, chanlabels=["a", "b"], chantypes="EEG", chanunits="uV")
    with pytest.raises(LamegValueError, match="duplicate"):
        write_meeg(tmp_path / "x", x, **{**kw, "chanlabels": ["a", "a"]})
    with pytest.raises(LamegValueError, match="labels"):
        write_meeg(tmp_path / "x", x, **{**kw, "chanlabels": ["a"]})
    with pytest.raises(LamegValueError, match="fsample"):
        write_meeg(tmp_path / "x", x, **{**kw, "fsample": 0})
    with pytest.raises(LamegValueError, match="conditions"):
        write_meeg(tmp_path / "x", x, conditions=["c"], **kw)
    with pytest.raises(LamegValueError, match="continuous"):
        write_meeg(tmp_path / "x", x, dataset_type="continuous", **kw)
    assert not list(tmp_path.iterdir())  # nothing half-written
    E = write_meeg(tmp_path / "ev", x, conditions=["c1", "c2"], **kw)
    assert E.type == "evoked" and E.fname.name == "ev.mat"
    assert E.sensors("MEG") is None and E.inv == []
    assert isinstance(load_mat(E.fname)["D"]["condlist"], MatCell)
