"""Bad input on the public API ends in a ``lameg`` exception, never a bare NumPy/SciPy/OS one.

Hypothesis draws arguments -- valid, wrong type, wrong shape, NaN, negative, fractional where an
integer is due, windows in seconds -- for the inversion, co-registration, simulation and source
façades; every call must either succeed or raise :class:`lameg.LamegError`, and a rejected call
must leave the dataset's files byte-identical.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lameg import LamegError
from lameg import invert as li
from lameg.simulate import run_current_density_simulation
from lameg.source import load_source_time_series

pytestmark = pytest.mark.spmref

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

junk = st.one_of(st.none(), st.text(max_size=3), st.booleans(),
                 st.floats(allow_nan=True, allow_infinity=True),
                 st.integers(-5, 5), st.lists(st.integers(-3, 3), max_size=3))
ints = st.one_of(st.integers(-3, 40), st.floats(-3, 40), junk)
windows = st.one_of(st.none(), junk,
                    st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=2),  # seconds
                    st.lists(st.one_of(st.floats(-200, 300), st.just(float("nan"))), min_size=2, max_size=2),
                    st.lists(st.lists(st.floats(-60, 120), min_size=2, max_size=2),
                             min_size=1, max_size=3))


@pytest.fixture(scope="module")
def dataset(spm_reference, tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    for name in ("sim_base.mat", "sim_base.dat", "SPMgainmatrix_base_1.mat"):
        shutil.copy(spm_reference / "dataset" / name, d / name)
        (d / name).chmod(0o644)
    return d / "sim_base.mat"


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _only_lameg_errors(fn, files):
    before = [_digest(f) for f in files]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except LamegError:
        assert [_digest(f) for f in files] == before, "a rejected call modified the dataset"


@FUZZ
@given(n_temp_modes=ints, woi=windows, patch_size=st.one_of(st.floats(-1, 20), junk),
       foi=st.one_of(st.none(), junk, st.lists(st.floats(-5, 300), min_size=2, max_size=2)),
       n_spatial_modes=st.one_of(st.sampled_from(["auto", "all", "some"]), ints),
       inversion_idx=st.one_of(st.sampled_from([0, 0, 1]), junk),
       n_folds=st.one_of(st.sampled_from([1, 2]), junk))
def test_invert_ebb_arguments(dataset, n_temp_modes, woi, patch_size, foi, n_spatial_modes,
                              inversion_idx, n_folds):
    _only_lameg_errors(
        lambda: li.invert_ebb(dataset, None, patch_size=patch_size, n_temp_modes=n_temp_modes,
                              n_spatial_modes=n_spatial_modes, foi=foi, woi=woi,
                              inversion_idx=inversion_idx, n_folds=n_folds,
                              ideal_pc_test=10 if n_folds == 2 else 0, viz=False),
        [dataset, dataset.with_suffix(".dat")])


@FUZZ
@given(priors=st.one_of(junk, st.lists(st.one_of(st.integers(-5, 20000), junk), max_size=3)),
       n_temp_modes=ints)
def test_invert_msp_arguments(dataset, priors, n_temp_modes):
    _only_lameg_errors(
        lambda: li.invert_msp(dataset, None, priors=priors, n_temp_modes=n_temp_modes,
                              patch_size=5, viz=False),
        [dataset, dataset.with_suffix(".dat")])


fid_values = st.one_of(junk, st.lists(st.one_of(st.floats(-150, 150), st.just(float("nan"))), min_size=0,
                                      max_size=4))


@FUZZ
@given(fid=st.dictionaries(st.sampled_from(["nas", "lpa", "rpa", "x"]), fid_values,
                           max_size=4),
       model=st.one_of(st.sampled_from(["Single Sphere", "Triple Shell"]), junk),
       idx=st.one_of(st.sampled_from([0, 1, 5]), junk),
       labels=st.one_of(st.just(("nas", "lpa", "rpa")), junk))
def test_coregister_mesh_arguments(dataset, spm_reference, fid, model, idx, labels):
    cortex = spm_reference / "inputs" / "cortex_fs5_lh_pial.gii"
    iskull = spm_reference / "inputs" / "iskull_fsaverage.gii"
    _only_lameg_errors(
        lambda: li.coregister_mesh(fid, dataset, cortex, iskull_fname=iskull,
                                   forward_model_type=model, inversion_idx=idx,
                                   fid_labels=labels, cache_dir=False),
        [dataset, dataset.with_suffix(".dat")])


@FUZZ
@given(vertices=st.one_of(junk, st.lists(st.integers(-5, 20000), max_size=3)),
       snr=st.one_of(st.floats(-50, 20), junk), sizes=st.one_of(st.floats(-2, 20), junk),
       woi=st.one_of(st.none(), junk, st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=2)),
       noise=st.one_of(st.sampled_from(["white", "pink", "blue"]), junk))
def test_simulation_arguments(dataset, vertices, snr, sizes, woi, noise):
    n = 166
    _only_lameg_errors(
        lambda: run_current_density_simulation(
            dataset, "fz_", vertices, np.ones((max(np.size(vertices), 1), n)), 10.0, sizes, snr,
            noise_color=noise, sim_woi=woi, seed=0),
        [dataset, dataset.with_suffix(".dat")])


@FUZZ
@given(vertices=st.one_of(st.none(), junk, st.lists(st.integers(-5, 20000), max_size=3)),
       idx=st.one_of(st.sampled_from([0, 3]), junk))
def test_source_arguments(dataset, vertices, idx):
    _only_lameg_errors(
        lambda: load_source_time_series(dataset, vertices=vertices, inversion_idx=idx),
        [dataset, dataset.with_suffix(".dat")])
