"""``lameg.datasets``: locating and copying the bundled test participant."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from lameg import datasets
from lameg.exceptions import LamegFileNotFoundError, LamegValueError


def _digest(folder) -> str:
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_path_defaults_to_repository_and_env(test_data_dir, monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.TEST_DATA_ENV, raising=False)
    assert datasets.test_participant_path() == test_data_dir.resolve()
    # the environment variable wins over the repository folder
    monkeypatch.setenv(datasets.TEST_DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(LamegFileNotFoundError, match="make_test_data.py"):
        datasets.test_participant_path()
    # a folder that exists but is not test data: the message names what is missing
    monkeypatch.setenv(datasets.TEST_DATA_ENV, str(tmp_path))
    with pytest.raises(LamegFileNotFoundError, match="participants.tsv"):
        datasets.test_participant_path()
    # an explicit path wins over both
    assert datasets.test_participant_path(test_data_dir) == test_data_dir.resolve()


def test_copy_is_complete_writable_and_leaves_source_untouched(test_data_dir, tmp_path):
    before = _digest(test_data_dir)
    part = datasets.copy_test_participant(tmp_path / "copy", datasets=["sim_ctf_noise"])
    assert part.root == (tmp_path / "copy").resolve()
    assert part.subj_id == "sub-01"
    assert part.subjects_dir == part.root / "fs"
    assert (part.subjects_dir / "sub-01" / "surf" / "lh.pial").read_bytes() == (
        test_data_dir / "fs" / "sub-01" / "surf" / "lh.pial").read_bytes()
    assert part.dataset_names() == ["sim_ctf_noise"]
    mat = part.dataset("sim_ctf_noise")
    assert mat == part.meg_dir / "sim_ctf_noise.mat" == part.dataset("sim_ctf_noise.mat")
    assert mat.with_suffix(".dat").stat().st_size == (
        test_data_dir / datasets.MEG_SUBDIR / "sim_ctf_noise.dat").stat().st_size
    with pytest.raises(LamegFileNotFoundError, match="sim_ctf_noise"):
        part.dataset("sim_ctf_pial")  # not copied; the message lists what is there
    # fiducials as lameg.util reads them from the original table
    from lameg.util import get_fiducial_coords

    ref = get_fiducial_coords("sub-01", test_data_dir / "participants.tsv")
    assert part.fid_coords == ref and set(ref) == {"nas", "lpa", "rpa"}
    gt = part.ground_truth()
    assert gt["time_s"].shape == (151,)
    np.testing.assert_allclose(gt["time_s"][[0, -1]], [-0.1, 0.15], atol=1e-9)
    # writing into the copy does not touch the bundled data
    (part.subjects_dir / "sub-01" / "surf" / "laminar").mkdir()
    with open(mat, "ab") as f:
        f.write(b"\0")
    assert _digest(test_data_dir) == before
    part.cleanup()
    assert not part.root.exists()
    assert _digest(test_data_dir) == before


def test_copy_defaults_and_errors(test_data_dir, tmp_path):
    with datasets.copy_test_participant() as part:  # temporary folder, every dataset
        assert part.root.name.startswith("lameg_test_participant_")
        assert {"sim_ctf_pial", "sim_ctf_white", "sim_ctf_noise",
                "sim_neuromag_pial"} <= set(part.dataset_names())
        root = part.root
    assert not root.exists()  # the context manager cleaned up
    with pytest.raises(LamegFileNotFoundError, match="no_such_dataset"):
        datasets.copy_test_participant(tmp_path / "a", datasets=["no_such_dataset"])
    assert not (tmp_path / "a").exists()  # nothing created on a bad request
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("x")
    with pytest.raises(LamegValueError, match="empty"):
        datasets.copy_test_participant(tmp_path / "b", datasets=[])
    # cleanup refuses to delete the bundled data themselves
    with pytest.raises(LamegValueError, match="refusing"):
        datasets.TestParticipant(root=test_data_dir).cleanup()
    with pytest.raises(LamegValueError, match="refusing"):  # even when marked as a copy
        datasets.TestParticipant(root=test_data_dir, copied=True).cleanup()
    assert (test_data_dir / "participants.tsv").is_file()


def test_lazy_submodule():
    import lameg

    assert lameg.datasets is datasets and "datasets" in dir(lameg)
