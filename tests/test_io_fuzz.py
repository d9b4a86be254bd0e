"""Property tests: random bytes, truncations and corruptions of MAT/MEEG/gain files raise only
lameg exceptions (never another crash)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lameg.exceptions import LamegError
from lameg.io.matfile import load_mat
from lameg.io.spm_meeg import load_meeg, read_gainmat, write_gainmat, write_meeg

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid_files():
    d = Path(tempfile.mkdtemp(prefix="lameg_fuzz_"))
    rng = np.random.default_rng(0)
    files = {}
    for v in ("7", "7.3"):
        D = write_meeg(d / f"meeg{v.replace('.', '')}", rng.standard_normal((3, 8, 2)),
                       fsample=100.0, chanlabels=["a", "b", "c"], chantypes="MEG",
                       conditions=["x", "y"], version=v,
                       sensors={"coilpos": np.eye(3), "coilori": np.eye(3), "tra": np.eye(3),
                                "label": ["a", "b", "c"], "unit": "m"})
        files[f"meeg{v}"] = D.fname
        files[f"gain{v}"] = write_gainmat(d / f"gain{v.replace('.', '')}.mat",
                                          rng.standard_normal((3, 5)), ["a", "b", "c"], version=v)
    yield files
    shutil.rmtree(d, ignore_errors=True)


def _readers(path: Path):
    yield lambda: load_mat(path)
    yield lambda: load_meeg(path).data.sum()
    yield lambda: read_gainmat(path)


def _check_only_lameg_errors(path: Path):
    for read in _readers(path):
        try:
            read()
        except LamegError:
            pass


@SETTINGS
@given(data=st.binary(min_size=0, max_size=2048))
def test_random_bytes(tmp_path, data):
    p = tmp_path / "rand.mat"
    p.write_bytes(data)
    _check_only_lameg_errors(p)


@SETTINGS
@given(which=st.sampled_from(["meeg7", "meeg7.3", "gain7", "gain7.3"]),
       frac=st.floats(0.0, 1.0))
def test_truncated(tmp_path, valid_files, which, frac):
    src = valid_files[which]
    raw = src.read_bytes()
    p = tmp_path / src.name
    p.write_bytes(raw[: int(len(raw) * frac)])
    dat = src.with_suffix(".dat")
    if dat.exists():
        shutil.copy(dat, p.with_suffix(".dat"))
    _check_only_lameg_errors(p)


@SETTINGS
@given(which=st.sampled_from(["meeg7", "meeg7.3", "gain7", "gain7.3"]),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True),
                                st.integers(0, 255)), min_size=1, max_size=8),
       dat_frac=st.floats(0.0, 1.0))
def test_corrupted(tmp_path, valid_files, which, flips, dat_frac):
    src = valid_files[which]
    raw = bytearray(src.read_bytes())
    for pos, val in flips:
        raw[int(pos * len(raw))] = val
    p = tmp_path / src.name
    p.write_bytes(bytes(raw))
    dat = src.with_suffix(".dat")
    if dat.exists():
        p.with_suffix(".dat").write_bytes(dat.read_bytes()[: int(dat.stat().st_size * dat_frac)])
    _check_only_lameg_errors(p)
