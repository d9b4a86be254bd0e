"""SAM head models through lameg.forward: SingleSphere, MultiSphere (local spheres) and Nolte on a
hull, the model flags, and the sensor arrays of SPM and MNE datasets."""

from __future__ import annotations

import numpy as np
import pytest
from test_sam_sim import ORIGIN, simulate

from lameg.exceptions import LamegDataError, LamegValueError
from lameg.sam import parse_param_text, sam_cov, sam_wts
from lameg.sam.forward import (
    HullShellModel,
    free_lead_fields,
    model_spec,
    sam_head_model,
    sensor_array,
    sphere_lead_field,
)

HULL_R = 0.085  # m


def _sphere_hull(path, n=900):
    """SAM hull.shape (as orthohull writes it): vertex count, 'x y z nx ny nz' in metres, then
    the triangles, on a sphere about ORIGIN."""
    from scipy.spatial import ConvexHull

    from lameg.sam.grid import write_hull

    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (3 - np.sqrt(5)) * k
    r = np.sqrt(1 - z**2)
    nrm = np.c_[r * np.cos(phi), r * np.sin(phi), z]
    pts = ORIGIN + HULL_R * nrm
    # 12 decimals: with the default 6 (micrometres) the rounded sphere gives the radial
    # direction a field of ~1e-6, enough to tip orientation solutions on a perfect sphere
    return write_hull(path, pts, nrm, ConvexHull(nrm).simplices, decimals=12)


GRID = """CovBand 5 45
XBounds -4 4
YBounds -4 4
ZBounds 1 8
ImageStep 2
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("samfwd")
    hull = _sphere_hull(tmp / "hull.shape")
    pos = np.array([0.02, 0.01, 0.08])
    sd, _ = simulate(pos, [0.0, 1.0, 0.0], n_trials=6, n_background=4, seed=3)
    covs = sam_cov(parse_param_text(GRID), sd, write=False)
    return tmp, hull, sd, covs


def _run(setup, model_line):
    tmp, hull, sd, covs = setup
    # SAMsrcV5 needs MRIDirectory for the hull models even when HullName is a full path
    p = parse_param_text(GRID + f"MRIDirectory {tmp}\nHullName {hull}\n{model_line}\n")
    return sam_wts(p, covs, data=sd, write=False)


def test_nolte_on_a_spherical_hull_equals_the_sphere(setup):
    """Nolte's correction vanishes for a spherical boundary: the Nolte lead fields (fitted on
    the hull points and normals) equal the Sarvas sphere about the hull centre. hull.shape stores
    metres (here with 12 decimals); measured max relative difference 2e-10, tolerance 1e-6 (a hull
    scaled by 1.1 about another centre gives 7e-2)."""
    tmp, hull, sd, covs = setup
    sph = _run(setup, "Model SingleSphere {} {} {}".format(*(ORIGIN * 100)))
    nol = _run(setup, "Model Nolte 10")
    assert sph.sources.n_sources >= nol.sources.n_sources > 20
    # grid masked by the hull: every voxel inside the 8.5 cm sphere
    assert np.all(np.linalg.norm(nol.sources.positions - ORIGIN, axis=1) < HULL_R)
    s = sensor_array(sd)
    model = sam_head_model(model_spec(parse_param_text("Model Nolte 10")), s, _hull_arrays(hull))
    assert isinstance(model, HullShellModel) and model.order == 10
    Lh = free_lead_fields(nol.sources.positions, s, model)
    Ls = sphere_lead_field(nol.sources.positions, s.coilpos, s.coilori, s.tra, ORIGIN)
    assert np.abs(Lh - Ls).max() < 1e-6 * np.abs(Ls).max()
    # hence the same solved orientations (up to the sign rule, +z) and oriented lead fields
    fn, fs = _common(nol, sph)
    assert np.abs(fn - fs).max() < 1e-6 * np.abs(fs).max()


def _common(a, b):
    """Oriented lead fields of ``a`` and ``b`` on the voxels both use (SingleSphere keeps the
    voxels 5-120 mm from its origin, the hull models those inside the hull, as SAMsrcV5)."""
    both = a.sources.grid_mask & b.sources.grid_mask
    ia = np.flatnonzero(both[a.sources.grid_mask])
    ib = np.flatnonzero(both[b.sources.grid_mask])
    return a.forward[:, ia], b.forward[:, ib]


def _hull_arrays(path):
    from lameg.sam.grid import read_hull

    return read_hull(path)


def test_multisphere_on_a_spherical_hull_equals_the_sphere(setup):
    """Local spheres fitted to points of one sphere are that sphere (exact fit): MultiSphere
    lead fields = SingleSphere lead fields to rounding (1e-9)."""
    tmp, hull, sd, covs = setup
    s = sensor_array(sd)
    model = sam_head_model(model_spec(parse_param_text("Model MultiSphere")), s,
                           _hull_arrays(hull))
    np.testing.assert_allclose(model.origins, np.tile(ORIGIN, (s.n_channels, 1)), atol=1e-9)
    np.testing.assert_allclose(model.radii, HULL_R, rtol=1e-9)
    sph = _run(setup, "Model SingleSphere {} {} {}".format(*(ORIGIN * 100)))
    ms = _run(setup, "Model MultiSphere")
    fm, fs = _common(ms, sph)
    assert np.abs(fm - fs).max() < 1e-9 * np.abs(fs).max()


def test_model_flags_and_errors(setup):
    tmp, hull, sd, covs = setup
    assert model_spec(parse_param_text("doNolte\nOrder 5")).order == 5
    assert model_spec(parse_param_text("Model Nolte 12\nOrder 7")).order == 7
    assert model_spec(parse_param_text("Model Nolte 12")).order == 12
    assert model_spec(parse_param_text("doMultiSphere")).kind == "MultiSphere"
    assert model_spec(parse_param_text("CovBand 5 45")) is None
    s = sensor_array(sd)
    hull_arrays = _hull_arrays(hull)
    with pytest.raises(LamegDataError, match="Nolte order 40 needs at least 1680"):
        sam_head_model(model_spec(parse_param_text("Model Nolte 40")), s, hull_arrays)
    with pytest.raises(LamegValueError, match="no forward model"):
        sam_head_model(None, s)
    # fixed orientations (a target atlas) go through compute_gain without rank reduction
    p = parse_param_text(GRID + f"HullName {hull}\nModel Nolte 10\n")
    src = np.array([[0.02, 0.01, 0.07], [-0.01, 0.02, 0.06]])
    nrm = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    w = sam_wts(p, covs, atlas=(src * 1e3, nrm), data=sd, write=False)
    L = free_lead_fields(src, s, sam_head_model(model_spec(p), s, hull_arrays))
    np.testing.assert_allclose(w.forward, np.einsum("mvk,vk->mv", L, nrm), rtol=1e-10,
                               atol=1e-12 * np.abs(L).max())


def test_sensor_arrays_of_spm_and_mne_datasets_agree(test_data_dir):
    """The CTF-275 sensors of the participant read from the SPM grad and from the MNE Info of the
    same recording: same coils, same channel map, hence the same lead fields (1e-6: MNE stores
    coil geometry in float32)."""
    mne = pytest.importorskip("mne")
    from lameg.sam.io import SamData, load_dataset

    mne.set_log_level("error")
    meg = test_data_dir / "sub-01" / "meg" / "ses-01"
    spm = load_dataset(meg / "spm" / "sim_ctf_pial.mat")
    ep = mne.read_epochs(meg / "fif" / "sub-01_ses-01_task-sim_ctf-pial-epo.fif")
    fif = SamData.from_mne(ep)
    assert [c.split("-")[0] for c in fif.chan_names] == spm.chan_names
    a, b = sensor_array(spm), sensor_array(fif)
    assert a.n_channels == b.n_channels == 274 and a.n_coils == b.n_coils
    head = np.array([[-0.05, 0.0, 0.06], [0.03, 0.02, 0.07]])
    model = sam_head_model(model_spec(parse_param_text("Model SingleSphere 0 0 4")), a)
    La, Lb = free_lead_fields(head, a, model), free_lead_fields(head, b, model)
    assert np.abs(La - Lb).max() < 1e-6 * np.abs(La).max()
    # the same data in tesla
    np.testing.assert_allclose(fif.data, spm.data, rtol=1e-5, atol=1e-19)
