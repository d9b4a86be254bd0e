"""Laminar source HDF5 files: export on the test participant, and exchange with laMEG 0.2.1.

laMEG's own reader (``tests/lameg021/lameg_reference``, loaded unchanged) must open what
lameg writes, and lameg must read what laMEG's ``add_bigbrain_mapping`` writes.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from lameg.datasets import copy_test_participant
from lameg.exceptions import LamegFileExistsError, LamegValueError
from lameg.invert import coregister, invert_ebb, invert_sliding_window_ebb
from lameg.source import (
    LaminarSourceData,
    add_bigbrain_mapping,
    export_source_time_series_hdf5,
    load_source_time_series,
)
from lameg.surf import LayerSurfaceSet
from tests.lameg021.reference import load_reference
from tests.lameg021.source_test_utils import make_source_file

WOIS = [[-100, 0], [-50, 50], [0, 100], [50, 150]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, test_data_dir):
    root = tmp_path_factory.mktemp("src")
    p = copy_test_participant(root / "p", datasets=["sim_ctf_pial"])
    fs5 = Path(p.subjects_dir) / "fsaverage5" / "surf"  # fsaverage5 is nested in fsaverage
    fs5.mkdir(parents=True)
    for h in ("lh", "rh"):
        shutil.copy(Path(p.subjects_dir) / p.subj_id / "surf" / f"{h}.sphere.reg", fs5)
    surf_set = LayerSurfaceSet(p.subj_id, 3, subjects_dir=p.subjects_dir)
    surf_set.create(verbose=False)
    data = p.dataset("sim_ctf_pial")
    coregister(p.fid_coords, data, surf_set, viz=False)
    invert_sliding_window_ebb(data, surf_set, wois=WOIS, viz=False)
    out = export_source_time_series_hdf5(data, root / "source.h5", surf_set)
    return data, surf_set, Path(out)


def test_export_matches_load_source_time_series(exported):
    data, surf_set, out = exported
    n_col = surf_set.get_vertices_per_layer()
    cols = np.array([0, 17, 1200, n_col - 1])
    verts = (np.arange(3)[:, None] * n_col + cols[None, :]).ravel()
    ts, time_ms, mu = load_source_time_series(data, vertices=verts)
    assert mu is None
    with LaminarSourceData(out) as src:
        assert src.shape == (3, n_col, 151, 30) and src.axis_order == "layer,column,time,trial"
        np.testing.assert_array_equal(src.time, time_ms)
        np.testing.assert_array_equal(src.woi, np.asarray(WOIS, float))
        np.testing.assert_array_equal(src.window_count[[0, 60, 120, 150]], [1, 3, 2, 1])
        np.testing.assert_allclose(src.layer_depth, [0.0, 0.5, 1.0])
        got = np.stack([src.layer(layer=k, column=int(c)) for k in range(3) for c in cols])
        # float32 storage: relative rounding 6e-8 of each value, 1e-6 of the largest
        np.testing.assert_allclose(got, ts, rtol=1e-6, atol=1e-6 * np.abs(ts).max())
        np.testing.assert_allclose(src.vertices.reshape(-1, 3),
                                   surf_set.load(None, "ds", orientation="link_vector",
                                                 fixed=True).darrays[0].data, atol=1e-4)
        a = src.attrs
        assert a["subject_id"] == "sub-01" and a["n_windows"] == 4
        assert a["export_strategy"] == "window-major"
    with pytest.raises(LamegFileExistsError, match="already exists"):
        export_source_time_series_hdf5(data, out, surf_set)


def test_blockwise_export_equals_window_major(exported, tmp_path):
    data, surf_set, out = exported
    alt = export_source_time_series_hdf5(data, tmp_path / "b.h5", surf_set, max_memory_gb=1e-6,
                                         block_size=1000, compression="gzip", dtype="float64")
    with LaminarSourceData(out) as a, LaminarSourceData(alt) as b:
        assert b.attrs["export_strategy"] == "blockwise" and b.dtype == np.float64
        x, y = a.layer(column=slice(950, 1060)), b.layer(column=slice(950, 1060))
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6 * np.abs(y).max())


def test_export_needs_sliding_window_inversion(exported, tmp_path):
    data, surf_set, _ = exported
    for f in Path(data).parent.glob("*sim_ctf_pial*"):  # dataset and its gain matrix
        shutil.copy(f, tmp_path / f.name)
    single = tmp_path / Path(data).name
    invert_ebb(single, surf_set, viz=False)
    with pytest.raises(LamegValueError, match="sliding-window"):
        export_source_time_series_hdf5(single, tmp_path / "x.h5", surf_set)
    assert not (tmp_path / "x.h5").exists()


def test_lameg021_reader_reads_our_export(exported):
    ref = load_reference()
    _, _, out = exported
    with ref.LaminarSourceData(out) as theirs, LaminarSourceData(out) as ours:
        assert theirs.shape == ours.shape and theirs.has_trials
        np.testing.assert_array_equal(theirs.layer(layer=1, time=(-20, 40), trial=3),
                                      ours.layer(layer=1, time=(-20, 40), trial=3))
        np.testing.assert_array_equal(theirs.vertices, ours.vertices)
        np.testing.assert_array_equal(theirs.window_count, ours.window_count)


def test_bigbrain_mapping_exchanged_with_lameg021(exported, tmp_path):
    """Our mapping equals laMEG's (its weights code on our atlas boundaries), both ways."""
    ref = load_reference()
    _, surf_set, out = exported
    ours_f, theirs_f = tmp_path / "ours.h5", tmp_path / "theirs.h5"
    shutil.copy(out, ours_f)
    shutil.copy(out, theirs_f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # medial-wall columns have no laminae
        add_bigbrain_mapping(ours_f, surf_set)
        ref.add_bigbrain_mapping(theirs_f, surf_set)
    with h5py.File(ours_f) as a, h5py.File(theirs_f) as b:
        for k in ("edges", "weights", "valid_columns", "labels"):
            # same boundaries; laMEG integrates layer by layer, we per hat function: 1e-12
            np.testing.assert_allclose(a["bigbrain"][k][()], b["bigbrain"][k][()], rtol=0,
                                       atol=1e-12, equal_nan=True) if k != "labels" else \
                np.testing.assert_array_equal(a["bigbrain"][k][()], b["bigbrain"][k][()])
    cols = slice(10, 14)
    with ref.LaminarSourceData(ours_f) as theirs, LaminarSourceData(theirs_f) as ours:
        assert ours.laminae == ("I", "II", "III", "IV", "V", "VI")
        np.testing.assert_allclose(ours.lamina(column=cols, trial=0),
                                   theirs.lamina(column=cols, trial=0), rtol=1e-12)
        np.testing.assert_allclose(ours.lamina("iv", column=12, time=(0, 50)),
                                   theirs.lamina("IV", column=12, time=(0, 50)), rtol=1e-12)
    with pytest.raises(LamegFileExistsError):
        add_bigbrain_mapping(ours_f, surf_set)


@pytest.mark.parametrize("trials", [None, 2])
def test_both_readers_agree_on_selectors(tmp_path, trials):
    ref = load_reference()
    fname = tmp_path / "s.h5"
    make_source_file(fname, n_trials=trials)
    sels = [dict(), dict(layer=-1), dict(column=slice(1, 4, 2), time=(-60, 60)),
            dict(layer=slice(0, 2), column=0, time=(0, 0))]
    with ref.LaminarSourceData(fname) as theirs, LaminarSourceData(fname) as ours:
        assert repr(ours).replace("lameg", "") and ours.n_trials == theirs.n_trials
        for sel in sels:
            np.testing.assert_array_equal(ours.layer(**sel), theirs.layer(**sel))


def test_lameg021_reads_exported_window_operators(exported, tmp_path):
    """After ``export_window_operators`` laMEG 0.2.1's own ``load_source_time_series`` reads
    every window of our sliding-window inversion (before, it refused the dataset);
    lameg's reader is unchanged; replacing the inversion removes the window files."""
    from lameg.io.spm_meeg import load_meeg
    from lameg.source import export_window_operators
    from tests.lameg021.reference import load_reference_source_io

    data, surf_set, _ = exported
    # laMEG's datasets are MATLAB v7.3 (its v7 reader cannot index a single inversion)
    d73 = load_meeg(data).clone(tmp_path / "w73.mat", version="7.3").fname
    n_col = surf_set.get_vertices_per_layer()
    verts = np.array([3, 500, n_col + 7, 2 * n_col + 1900])
    ours, time_ms, _ = load_source_time_series(d73, vertices=verts)
    laMEG = load_reference_source_io()
    with pytest.raises(ValueError, match="Temporal projector"):  # factored storage unknown
        laMEG.load_source_time_series(str(d73), vertices=verts)
    files = export_window_operators(d73)
    assert [f.name for f in files] == [f"w73_inv1_Mwin{w:03d}.mat" for w in range(1, 5)]
    theirs, t2, _ = laMEG.load_source_time_series(str(d73), vertices=verts)
    np.testing.assert_array_equal(t2, time_ms)
    # laMEG takes a window's samples as [start, end] inclusive in ms; lameg (as SPM's
    # inversion) by fix((t - onset) fs + 1), which can drop a boundary sample to rounding.
    # Samples whose window membership the two rules decide differently are averaged over
    # other windows; everywhere else: the same operators, rounding only.
    from lameg.inverse.modes import woi_samples

    D = load_meeg(d73)
    differ = np.zeros(time_ms.size, bool)
    for w in WOIS:
        spm_rule = np.zeros(time_ms.size, bool)
        spm_rule[woi_samples(w, D.time, D.fsample)] = True
        differ |= spm_rule != ((time_ms >= w[0]) & (time_ms <= w[1]))
    assert differ.sum() <= len(WOIS)
    np.testing.assert_allclose(theirs[:, ~differ], ours[:, ~differ], rtol=1e-9,
                               atol=1e-9 * np.abs(ours).max())
    np.testing.assert_array_equal(load_source_time_series(d73, vertices=verts)[0], ours)
    # a clone does not borrow another dataset's window files (they go with its next inversion)
    clone = load_meeg(d73).clone(tmp_path / "c73.mat").fname
    np.testing.assert_array_equal(load_source_time_series(clone, vertices=verts)[0], ours)
    with pytest.raises(ValueError, match="Temporal projector"):
        laMEG.load_source_time_series(str(clone), vertices=verts)
    invert_ebb(d73, surf_set, viz=False)  # replaces inversion 0 by a single-window one
    assert not any(f.exists() for f in files)  # window files nothing references are removed
    single = load_source_time_series(d73, vertices=verts)[0]  # laMEG's single-window path too
    np.testing.assert_allclose(laMEG.load_source_time_series(str(d73), vertices=verts)[0],
                               single, rtol=1e-9, atol=1e-9 * np.abs(single).max())
    with pytest.raises(LamegValueError, match="not a sliding-window"):
        export_window_operators(d73)
