"""BigBrain laminae: the packaged fsaverage maps, the mapping on the test participant."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lameg import bigbrain
from lameg.datasets import copy_test_participant
from lameg.exceptions import LamegFileNotFoundError
from lameg.laminar import compute_bigbrain_laminar_weights, surface_to_laminae
from lameg.surf import LayerSurfaceSet
from lameg.util import big_brain_proportional_layer_boundaries

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "bigbrain"


def test_proportions_match_the_shipped_maps():
    bb = big_brain_proportional_layer_boundaries()
    for h, tag in (("lh", "L"), ("rh", "R")):
        thick = np.stack([nib.load(bigbrain.bigbrain_data_dir() / f"tpl-fsaverage_hemi-{tag}_"
                                   f"den-164k_desc-layer{k}_thickness.shape.gii").agg_data()
                          for k in range(1, 7)]).astype(float)
        total = thick.sum(0)
        cortex = total > 0
        assert bb[h].shape == (6, 163842) and 0.9 < cortex.mean() < 0.97
        # per vertex: diff of the boundaries = each layer's share of the total thickness
        share = np.diff(np.vstack([np.zeros(163842), bb[h]]), axis=0)
        np.testing.assert_allclose(share[:, cortex], thick[:, cortex] / total[cortex],
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(bb[h][:, ~cortex], 0.0)
    # the packaged maps are the files of the BigBrainWarp distribution, unchanged
    if SHARED_MAPS.is_dir():
        for f in bigbrain.bigbrain_data_dir().glob("*.gii"):
            assert f.read_bytes() == (SHARED_MAPS / f.name).read_bytes()
    # laMEG 0.2.1's own expected values at vertex 0 (tests/test_05_util.py)
    np.testing.assert_allclose(bb["lh"][:, 0], [0.07864515, 0.13759026, 0.3424378, 0.4091583,
                                                0.64115983, 1], rtol=1e-6)


def test_weights_average_linear_profiles_exactly():
    depth = np.array([0.0, 0.1, 0.35, 0.5, 0.8, 1.0])  # uneven (equivolume-like) layers
    edges = np.array([[0.0, 0.07, 0.2, 0.33, 0.52, 0.71, 1.0], [0, .1, .2, .3, .4, .5, 1]])
    e, w = bigbrain.laminar_weights_from_edges(edges, depth)
    f = 2.0 - 3.0 * depth
    mid = 0.5 * (e[:, :-1] + e[:, 1:])
    np.testing.assert_allclose(surface_to_laminae(f[:, None] * np.ones((1, 2)), w).T,
                               2.0 - 3.0 * mid, atol=1e-12)
    # a kinked profile: compare with fine numerical quadrature of the interpolant
    g = np.array([0.0, 4.0, -1.0, 2.0, 2.0, 7.0])
    for c in range(2):
        for a in range(6):
            x = np.linspace(e[c, a], e[c, a + 1], 20001)
            ref = np.trapezoid(np.interp(x, depth, g), x) / (x[-1] - x[0])
            assert w[c, a] @ g == pytest.approx(ref, rel=1e-7, abs=1e-9)


@pytest.fixture(scope="module")
def participant(tmp_path_factory, test_data_dir):
    p = copy_test_participant(tmp_path_factory.mktemp("bb"), datasets=[])
    s = LayerSurfaceSet(p.subj_id, 11, subjects_dir=p.subjects_dir)
    s.create(verbose=False)
    return p, s


def test_participant_needs_fsaverage(participant):
    _, s = participant
    with pytest.raises(LamegFileNotFoundError, match="fsaverage"):
        s.get_bigbrain_layer_boundaries()


def test_laminae_on_the_participant(participant):
    p, s = participant
    fs5 = Path(p.subjects_dir) / "fsaverage5" / "surf"
    fs5.mkdir(parents=True, exist_ok=True)
    for h in ("lh", "rh"):  # the participant is fsaverage5: sphere.reg is fsaverage5's sphere
        shutil.copy(Path(p.subjects_dir) / p.subj_id / "surf" / f"{h}.sphere.reg", fs5)
    bb = s.get_bigbrain_layer_boundaries()
    n = s.get_vertices_per_layer()
    assert bb.shape == (6, n)
    # each ds column is a converted vertex i of fsaverage5 = fsaverage vertex i (nested)
    ref = big_brain_proportional_layer_boundaries()
    ds = s.load("pial", "ds").darrays[0].data
    lh = s.load("pial", "converted", "lh").darrays[0].data
    rh = s.load("pial", "converted", "rh").darrays[0].data
    for c in (0, 5, n // 2, n - 1):
        dl, dr = np.linalg.norm(lh - ds[c], axis=1), np.linalg.norm(rh - ds[c], axis=1)
        h, i = ("lh", dl.argmin()) if dl.min() <= dr.min() else ("rh", dr.argmin())
        np.testing.assert_array_equal(bb[:, c], ref[h][:, i])
    np.testing.assert_array_equal(s.get_bigbrain_layer_boundaries(ds[7]), bb[:, 7])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        edges, weights = compute_bigbrain_laminar_weights(s)
    valid = np.isfinite(edges[:, 0])
    assert 0.85 < valid.mean() < 1.0 and any("unavailable" in str(r.message) for r in rec)
    np.testing.assert_allclose(weights[valid].sum(axis=2), 1.0, atol=1e-12)
    thick = bigbrain.bigbrain_laminar_thickness(s)
    cortical = s.get_cortical_thickness()
    assert thick.shape == (6, n) and np.all(thick[:, valid] > 0)
    # six laminae whose thicknesses add up to the cortical thickness (pial-white distance)
    np.testing.assert_allclose(thick[:, valid].sum(axis=0), cortical[valid], rtol=1e-12)
    assert 1.0 < np.median(cortical[valid]) < 4.0
