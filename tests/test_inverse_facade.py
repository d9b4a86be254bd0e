"""Dataset-level inversions (``lameg.backends.native.inverse``) on a copy of SPM's dataset."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from lameg.exceptions import LamegDataError, LamegError, LamegValueError
from lameg.invert import (
    compute_wois,
    invert,
    invert_ebb,
    invert_msp,
    invert_sliding_window_ebb,
)
from lameg.io.spm_meeg import load_meeg

pytestmark = pytest.mark.spmref


@pytest.fixture()
def dataset(spm_reference, tmp_path):
    for sub in ("dataset", "inputs"):
        shutil.copytree(spm_reference / sub, tmp_path / sub)
    for p in tmp_path.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return tmp_path / "dataset" / "sim_base.mat"


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_invert_matches_spm_and_stores_inverse(dataset, spm_reference):
    dat_before = _digest(dataset.with_suffix(".dat"))
    s = invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[-50, 115], foi=[0, 48],
               hann_windowing=True, return_mu_matrix=True)
    ref = np.load(spm_reference / "inv_spm_eeg_invert_classic_EBB.npz")
    # same engine as tests/test_inverse_spmref.py, now reading everything from the files
    assert abs(float(s.F) - float(ref["F"])) < 1e-3
    assert s.cv_err.size == 0 and s.mu_matrix.shape == (10242, 274)
    inv = load_meeg(dataset).inv[0]
    assert inv["method"] == "Imaging"
    stored = inv["inverse"]
    assert float(np.ravel(stored["F"])[0]) == pytest.approx(float(ref["F"]), abs=1e-3)
    assert np.asarray(stored["M"]).shape == (10242, 89)
    np.testing.assert_array_equal(np.ravel(stored["It"]), ref["It_1based"])
    assert "forward" in inv and "mesh" in inv  # the forward model is kept
    assert _digest(dataset.with_suffix(".dat")) == dat_before


def test_geodesic_ebb_crossvalidation_is_seeded(dataset):
    a = invert_ebb(dataset, None, patch_size=5, n_folds=2, ideal_pc_test=10, seed=3,
                   n_temp_modes=4)
    b = invert(dataset, method="EBB", smoothing=("geodesic", 5), n_temp_modes=4, n_folds=2,
               ideal_pc_test=10, seed=3, hann_windowing=False, save=False)
    assert a[0].shape == (2,) and a[1].shape == (2, 27)
    np.testing.assert_allclose(a[0], b.F, rtol=1e-12)
    np.testing.assert_allclose(a[1], b.cv_err, rtol=1e-12)
    assert np.all(a[1] > 0)
    assert float(np.ravel(load_meeg(dataset).inv[0]["inverse"]["smooth"])[0]) == -5.0


@pytest.mark.slow
def test_msp_with_fixed_prior_prefers_true_patch(dataset):
    # the simulated source is at vertex 1025 (0-based); a far vertex explains the data worse
    f_true, _ = invert_msp(dataset, None, priors=[1025], patch_size=10, n_temp_modes=4)
    f_far, _ = invert_msp(dataset, None, priors=[9000], patch_size=10, n_temp_modes=4)
    assert f_true > f_far + 10


def test_sliding_windows(dataset):
    w = compute_wois(1000 * (np.arange(100) - 30) / 600, win_size=20, n_temp_modes=1)
    assert w.shape == (100, 2) and w[0, 0] == -50 and w[-1, 1] == 115
    with pytest.raises(LamegValueError):
        compute_wois(np.arange(100.0), win_size=3, n_temp_modes=2)
    F, wois = invert_sliding_window_ebb(dataset, None, wois=[[-50, 0], [0, 50], [40, 100]],
                                        foi=[0, 48])
    assert F.shape == (3,) and np.all(np.isfinite(F))
    # the signal window (0-100 ms) is better explained than the baseline
    inv = load_meeg(dataset).inv[0]["inverse"]
    assert inv["M_win_storage"] == "lameg_factored_v1"


def test_bad_inputs_raise_and_leave_file_unchanged(dataset):
    before = _digest(dataset)
    with pytest.raises(LamegValueError, match="overlap"):
        invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[500, 600])
    with pytest.raises(LamegValueError, match="seconds"):  # a window given in seconds
        invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[-0.05, 0.1])
    with pytest.raises(LamegValueError, match="NaN"):
        invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[np.nan, 100])
    for bad in (-1, 2.5, 0, "abc"):
        with pytest.raises(LamegValueError, match="n_temp_modes"):
            invert(dataset, method="EBB", smoothing=("green", 0.6), n_temp_modes=bad)
    with pytest.raises(LamegValueError, match="inversion_idx"):
        invert(dataset, method="EBB", smoothing=("green", 0.6), inversion_idx=1.5)
    with pytest.raises(LamegDataError):
        invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[0, 3], n_temp_modes=4)
    with pytest.raises(LamegValueError, match="forward model"):
        invert(dataset, method="EBB", smoothing=("green", 0.6), inversion_idx=3)
    with pytest.raises(LamegValueError):
        invert(dataset, method="EBB", smoothing=("cubic", 1.0))
    assert _digest(dataset) == before
    # NaNs in the data
    mm = np.memmap(dataset.with_suffix(".dat"), dtype="<f4", mode="r+")
    mm[5000] = np.nan
    mm.flush()
    del mm
    with pytest.raises(LamegDataError, match="NaN"):
        invert(dataset, method="EBB", smoothing=("green", 0.6))
    assert _digest(dataset) == before


def test_all_channels_bad(dataset):
    D = load_meeg(dataset)
    for ch in D.header["channels"]:
        ch["bad"] = 1.0
    D.save()
    before = _digest(dataset)
    with pytest.raises(LamegError, match="good MEG channels"):
        invert(dataset, method="EBB", smoothing=("green", 0.6))
    assert _digest(dataset) == before
