"""Tests of lameg.util: statistics (laMEG conformance values), fiducials, file helpers, data loading."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
from scipy import stats

from lameg import util
from lameg.exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)

# ------------------------------------------------------------------------------------------
# ttest_rel_corrected: values from laMEG's test-suite (computed independently by scipy there)
# ------------------------------------------------------------------------------------------

DATA = np.array([[1, 2, np.nan, 4], [1, 2, 3, 4]], dtype=float).T


def test_ttest_rel_corrected_matches_lameg_values():
    t, df, p = util.ttest_rel_corrected(DATA)
    # laMEG reference values are printed to 8 significant digits.
    np.testing.assert_allclose(t, [3.22428901, 4.44456638], rtol=1e-8)
    np.testing.assert_array_equal(df, [2, 3])
    np.testing.assert_allclose(p, [0.08421719, 0.02118368], rtol=1e-6)


def test_ttest_rel_corrected_explicit_correction():
    t, _, p = util.ttest_rel_corrected(DATA, correction=0.1)
    np.testing.assert_allclose(t, [3.14098262, 4.30331483], rtol=1e-8)
    np.testing.assert_allclose(p, [0.08816231, 0.02309284], rtol=1e-6)


def test_ttest_rel_corrected_tails_are_correct():
    t, df, p_two = util.ttest_rel_corrected(DATA)
    _, _, p_left = util.ttest_rel_corrected(DATA, tail=-1)
    _, _, p_right = util.ttest_rel_corrected(DATA, tail=1)
    # Left tail: laMEG values (correct there).
    np.testing.assert_allclose(p_left, [0.9578914, 0.98940816], rtol=1e-6)
    # Right tail: laMEG returned the left value (defect); the correct value is sf(t).
    np.testing.assert_allclose(p_right, stats.t.sf(t, df), rtol=1e-12)
    np.testing.assert_allclose(p_right + p_left, 1.0, rtol=1e-12)
    np.testing.assert_allclose(2 * p_right, p_two, rtol=1e-12)  # t > 0 here
    assert np.all(p_right < 0.05)


def test_ttest_rel_corrected_axis_and_zero_correction_equivalence():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(5, 40))
    t0, df0, p0 = util.ttest_rel_corrected(x, axis=1, correction=1e-300)
    ref = stats.ttest_1samp(x, 0.0, axis=1)
    # With a negligible correction the statistic is the classic one up to sqrt(n/(n-1)).
    n = x.shape[1]
    np.testing.assert_allclose(t0, ref.statistic * np.sqrt(n / (n - 1)), rtol=1e-10)
    np.testing.assert_array_equal(df0, n - 1)
    t1, _, _ = util.ttest_rel_corrected(x.T, axis=0, correction=1e-300)
    np.testing.assert_allclose(t0, t1)
    with pytest.raises(LamegValueError):
        util.ttest_rel_corrected(x, tail=2)


def test_calc_prop():
    np.testing.assert_array_equal(util.calc_prop([0, 0, 0]), [0, 0, 0])
    np.testing.assert_allclose(util.calc_prop([1, 2, 3]), np.array([1, 3, 6]) / 6)
    np.testing.assert_allclose(util.calc_prop([0, 1, 2, 0, 3]), np.array([0, 1, 3, 3, 6]) / 6)


def test_check_many():
    assert util.check_many(["a", "b"], "abc", "all")
    assert not util.check_many(["a", "z"], "abc", "all")
    assert util.check_many(["a", "z"], "abc", "any")
    with pytest.raises(ValueError):
        util.check_many(["a"], "abc")


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------


def test_get_files_and_directories(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["x_mobeta.res4", "y.res4", "a/z_mobeta.res4", "a/b/spm_q.mat", "a/b/q.txt"]:
        (tmp_path / name).write_text("1")
    files = util.get_files(tmp_path, "*.res4", strings=["mobeta"])
    assert [f.name for f in files] == ["x_mobeta.res4", "z_mobeta.res4"]
    assert [f.name for f in util.get_files(tmp_path, "*.res4", depth="one")] == [
        "x_mobeta.res4",
        "y.res4",
    ]
    assert [f.name for f in util.get_files(tmp_path, "*.mat", prefix="spm_")] == ["spm_q.mat"]
    assert util.get_files(tmp_path, "*.mat", prefix="nope") == []
    dirs = util.get_directories(tmp_path, strings=["b"])
    assert dirs == [tmp_path / "a" / "b"]
    assert util.get_directories(tmp_path, depth="one") == [tmp_path / "a"]
    with pytest.raises(LamegFileNotFoundError):
        util.get_files(tmp_path / "missing", "*.mat")


def test_make_directory(tmp_path):
    p = util.make_directory(tmp_path, ["s1", "meg", "spm"])
    assert p == tmp_path / "s1" / "meg" / "spm" and p.is_dir()
    assert util.make_directory(tmp_path, "s1") == tmp_path / "s1"


# ------------------------------------------------------------------------------------------
# Fiducials
# ------------------------------------------------------------------------------------------

TSV = (
    "subj_id\tage\tnas\tlpa\trpa\n"
    "sub-104\t30\t-2.448184,117.891385,8.210301\t-74.534153,24.382267,-15.896578\t"
    "75.167465,33.04979,-27.065764\n"
)


def test_get_fiducial_coords(tmp_path):
    f = tmp_path / "participants.tsv"
    f.write_text(TSV)
    fid = util.get_fiducial_coords("sub-104", f)
    assert set(fid) == {"nas", "lpa", "rpa"}
    np.testing.assert_allclose(fid["nas"], [-2.448184, 117.891385, 8.210301])
    np.testing.assert_allclose(fid["rpa"], [75.167465, 33.04979, -27.065764])
    with pytest.warns(UserWarning, match="not found"):
        assert util.get_fiducial_coords("sub-999", f) is None


def test_get_fiducial_coords_errors(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("subject\tnas\tlpa\trpa\nsub-1\t1,2,3\t1,2,3\t1,2,3\n")
    with pytest.raises(LamegFormatError, match="subj_id"):
        util.get_fiducial_coords("sub-1", f)
    assert util.get_fiducial_coords("sub-1", f, subject_column="subject")["lpa"] == [1, 2, 3]
    g = tmp_path / "q.tsv"
    g.write_text("subj_id\tnas\tlpa\trpa\nsub-1\t1,2\t1,2,3\t1,2,3\n")
    with pytest.raises(LamegFormatError, match="nas"):
        util.get_fiducial_coords("sub-1", g)
    h = tmp_path / "r.csv"
    h.write_text("subj_id;nas;lpa;rpa\nsub-1;1 2 3;4 5 6;7 8 9\n")
    fid = util.get_fiducial_coords("sub-1", h, col_delimiter=";", val_delimiter=" ")
    assert fid["rpa"] == [7, 8, 9]
    with pytest.raises(LamegFileNotFoundError):
        util.get_fiducial_coords("sub-1", tmp_path / "none.tsv")


def test_get_fiducial_coords_test_participant(test_data_dir):
    # The bundled participant's table must parse (values are checked by the data generator).
    import csv

    with open(test_data_dir / "participants.tsv") as fh:
        subj = next(csv.DictReader(fh, delimiter="\t"))["subj_id"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid = util.get_fiducial_coords(subj, test_data_dir / "participants.tsv")
    assert np.all(np.isfinite(np.array([fid["nas"], fid["lpa"], fid["rpa"]])))


# ------------------------------------------------------------------------------------------
# load_meg_sensor_data
# ------------------------------------------------------------------------------------------


class _FakeMEEG:
    """Minimal object with the lameg.io.spm_meeg.MEEG attributes used by the loader."""

    def __init__(self, data, types_, bad, fsample=600.0, onset=-0.1):
        self.data = data
        self.chantypes = types_
        self.chanlabels = [f"C{i:02d}" for i in range(len(types_))]
        self._bad = set(bad)
        self.time = onset + np.arange(data.shape[1]) / fsample

    def indchantype(self, types, flag="ALL"):
        meg = {"MEG", "MEGMAG", "MEGGRAD", "MEGPLANAR"}
        idx = [i for i, t in enumerate(self.chantypes) if t in meg]
        if flag == "GOOD":
            idx = [i for i in idx if i not in self._bad]
        return np.array(idx, dtype=int)


@pytest.fixture
def fake_spm_meeg(monkeypatch):
    """Route lameg.io.spm_meeg.load_meeg to a fake dataset (real module if present)."""
    store = {}
    try:
        import lameg.io.spm_meeg as mod
    except ImportError:
        mod = types.ModuleType("lameg.io.spm_meeg")
        monkeypatch.setitem(sys.modules, "lameg.io.spm_meeg", mod)
    monkeypatch.setattr(mod, "load_meeg", lambda fname: store["meeg"], raising=False)
    return store


def test_load_meg_sensor_data_selection(tmp_path, fake_spm_meeg):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(5, 7, 3))
    types_ = ["MEG", "REFMEG", "MEGGRAD", "EEG", "MEG"]
    fake_spm_meeg["meeg"] = _FakeMEEG(data, types_, bad=[4])
    fname = tmp_path / "d.mat"
    fname.write_bytes(b"")
    x, t, names = util.load_meg_sensor_data(fname)
    np.testing.assert_array_equal(x, data[[0, 2]])
    assert names == ["C00", "C02"]
    np.testing.assert_allclose(t, (-0.1 + np.arange(7) / 600.0) * 1000.0)
    # Single-trial datasets come back 2-D, as in laMEG.
    fake_spm_meeg["meeg"] = _FakeMEEG(data[:, :, :1], types_, bad=[])
    x, _, names = util.load_meg_sensor_data(fname)
    assert x.shape == (3, 7) and len(names) == 3
    fake_spm_meeg["meeg"] = _FakeMEEG(data, ["EEG"] * 5, bad=[])
    with pytest.raises(LamegDataError, match="no good MEG"):
        util.load_meg_sensor_data(fname)
    with pytest.raises(LamegFileNotFoundError):
        util.load_meg_sensor_data(tmp_path / "missing.mat")


def test_load_meg_sensor_data_roundtrip(tmp_path):
    from lameg.io import spm_meeg
    rng = np.random.default_rng(2)
    data = rng.normal(size=(4, 50, 2)).astype(np.float32) * 100
    spm_meeg.write_meeg(
        tmp_path / "x.mat",
        data,
        fsample=250.0,
        time_onset=-0.2,
        chanlabels=["A", "B", "C", "D"],
        chantypes=["MEG", "MEG", "EEG", "MEG"],
        badchannels=[3],
    )
    x, t, names = util.load_meg_sensor_data(tmp_path / "x.mat")
    assert names == ["A", "B"]
    np.testing.assert_allclose(x, data[:2], rtol=1e-6)
    np.testing.assert_allclose(t, (-0.2 + np.arange(50) / 250.0) * 1000.0, atol=1e-9)


def test_every_submodule_imports_lazily():
    """``lameg.<name>`` works for every advertised submodule (lazy import, no import cycles)."""
    import lameg

    for name in lameg._SUBMODULES:
        assert getattr(lameg, name).__name__ == f"lameg.{name}"
    assert "sweep" in dir(lameg)


def test_check_freesurfer_setup(tmp_path, monkeypatch):
    monkeypatch.delenv("SUBJECTS_DIR", raising=False)
    with pytest.raises(OSError, match="SUBJECTS_DIR is not set"):
        util.check_freesurfer_setup()
    monkeypatch.setenv("SUBJECTS_DIR", str(tmp_path))
    assert util.check_freesurfer_setup() == tmp_path
    with pytest.raises(OSError, match="does not exist"):
        util.check_freesurfer_setup(tmp_path / "nope")
