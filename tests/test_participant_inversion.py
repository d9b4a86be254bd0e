"""End to end on the test participant's MNE-simulated CTF data (independent forward model).

The datasets were simulated with MNE-Python's BEM forward model (``tools/make_test_data.py``),
so these checks exercise lameg's own co-registration, Single Shell forward model and
inversions against data it did not generate.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lameg.datasets import copy_test_participant
from lameg.invert import coregister, invert_ebb, invert_msp
from lameg.laminar import model_comparison
from lameg.source import load_source_time_series
from lameg.surf import LayerSurfaceSet


@pytest.fixture(scope="module")
def participant(tmp_path_factory, test_data_dir):
    p = copy_test_participant(tmp_path_factory.mktemp("participant"),
                              datasets=["sim_ctf_pial", "sim_ctf_white"])
    surf_set = LayerSurfaceSet(p.subj_id, 2, subjects_dir=p.subjects_dir)
    surf_set.create(verbose=False)
    return p, surf_set


def _true_position(p, name):
    truth = json.loads((p.meg_dir / "ground_truth.json").read_text())
    (source,) = truth["datasets"][name]["sources"]
    return np.asarray(source["pos_scanner_mm"])


@pytest.mark.parametrize("method", ["EBB", "MSP"])
def test_localises_the_simulated_source(participant, method):
    p, surf_set = participant
    data = p.dataset("sim_ctf_pial")
    coregister(p.fid_coords, data, surf_set, layer_name="pial", viz=False)
    if method == "EBB":
        invert_ebb(data, surf_set, layer_name="pial", n_temp_modes=4, viz=False)
    else:
        invert_msp(data, surf_set, layer_name="pial", n_temp_modes=4, viz=False)
    ts, time_ms, _ = load_source_time_series(data)
    power = (ts[:, (time_ms >= 0) & (time_ms <= 100)] ** 2).sum(axis=1)
    if power.ndim > 1:
        power = power.sum(axis=-1)
    vertices = surf_set.load("pial", stage="ds").darrays[0].data
    peak = vertices[int(np.argmax(power))]
    error = np.linalg.norm(peak - _true_position(p, "ctf_pial"))
    # 10 mm: the decimated mesh has ~4-5 mm vertex spacing and the data were made with another
    # forward model (MNE BEM) at -10 dB SNR
    print(f"{method}: peak {error:.1f} mm from the simulated source")
    assert error < 10.0, f"{method} peak {error:.1f} mm from the simulated source"


@pytest.mark.parametrize("name, best", [("sim_ctf_pial", 0), ("sim_ctf_white", 1)])
def test_free_energy_prefers_the_generating_layer(participant, name, best):
    p, surf_set = participant
    f_vals, _ = model_comparison(p.fid_coords, p.dataset(name), surf_set, method="EBB",
                                 viz=False, invert_kwargs={"n_temp_modes": 4})
    print(f"{name}: F(pial) - F(white) = {f_vals[0] - f_vals[1]:.1f}")
    assert f_vals.shape == (2,)
    assert int(np.argmax(f_vals)) == best, f"F per layer (pial, white): {f_vals}"


def test_a_mesh_other_than_the_head_model_is_refused(participant):
    """The surface set's mesh (here the 2-layer multilayer mesh, counted from its GIfTI header)
    must be the head model's (the pial layer): a clear error before any computation."""
    from lameg.exceptions import LamegDataError

    p, surf_set = participant
    data = p.dataset("sim_ctf_white")
    coregister(p.fid_coords, data, surf_set, layer_name="pial", viz=False)
    n = surf_set.get_vertices_per_layer()
    with pytest.raises(LamegDataError, match=f"has {n} sources but .* has {2 * n} vertices"):
        invert_ebb(data, surf_set, n_temp_modes=4, viz=False)
