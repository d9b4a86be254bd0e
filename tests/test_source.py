"""``lameg.source.load_source_time_series`` on single and sliding-window inversions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lameg.backends.native.inverse import invert
from lameg.exceptions import LamegValueError
from lameg.source import load_source_time_series

pytestmark = pytest.mark.spmref


@pytest.fixture()
def dataset(spm_reference, tmp_path):
    for sub in ("dataset", "inputs"):
        shutil.copytree(spm_reference / sub, tmp_path / sub)
    for p in tmp_path.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return tmp_path / "dataset" / "sim_base.mat"


def test_single_window_equals_engine_projection(dataset):
    s = invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[0, 100], foi=[0, 48])
    ts, t, mu = load_source_time_series(dataset, vertices=[1025, 6451])
    w = s.results[0].windows[0]
    assert ts.shape == (2, len(w.It), 60) and len(w.It) == 61
    assert t[0] == pytest.approx(0.0, abs=1e-9) and t[-1] == pytest.approx(100.0)
    # trial mean of M A Y S S' equals J S' / K (J is computed from the trial sum)
    jt = (w.M @ w.UY[0] @ w.S.T)[[1025, 6451]] / 60
    np.testing.assert_allclose(ts.mean(axis=2), jt, rtol=1e-10, atol=1e-12 * np.abs(jt).max())
    ts2, _, _ = load_source_time_series(dataset, mu_matrix=s.results[0].mu_matrix(),
                                        vertices=[1025, 6451])
    # same numbers through differently blocked BLAS products (M A then rows, or rows then A):
    # rounding only, ~1e-16 of the largest value (an element near zero can differ by 1e-12
    # relative to itself)
    np.testing.assert_allclose(ts2, ts, rtol=1e-12, atol=1e-14 * np.abs(ts).max())
    with pytest.raises(LamegValueError):
        load_source_time_series(dataset, vertices=[10242])


def test_sliding_windows_average_overlaps(dataset):
    wois = [[-50, 20], [0, 60], [50, 115]]
    s = invert(dataset, method="EBB", smoothing=("green", 0.6), woi=wois, foi=[0, 48], n_temp_modes=1)
    ts, t, mu = load_source_time_series(dataset, vertices=[6451])
    assert mu is None and ts.shape == (1, 100, 60) and len(t) == 100
    res = s.results[0]
    y = np.asarray(np.fromfile(dataset.with_suffix(".dat"), "<f4").reshape(
        (274, 100, 60), order="F"), dtype=float)
    acc = np.zeros((100, 60))
    cnt = np.zeros(100)
    for k, w in enumerate(res.windows):
        op = res.mu_matrix(k)[6451]  # factored operator, first window also dense
        acc[w.It] += np.einsum("c,ctk->tk", op, y[:, w.It, :])
        cnt[w.It] += 1
    np.testing.assert_allclose(ts[0], acc / cnt[:, None], rtol=1e-9, atol=1e-12)
