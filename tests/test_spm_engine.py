"""SPM engine set-up errors that need no working SPM: clear messages, no hang.

These run everywhere (no Octave needed, except the MEX-build case, which needs ``make`` and
``mkoctfile`` and skips without them).
"""

from __future__ import annotations

import shutil

import pytest

from lameg.exceptions import LamegFileNotFoundError, LamegValueError
from lameg.spm import SPMSetupError, get_engine, prepare_spm_tree
from lameg.spm.prepare import find_octave, resolve_spm_source


def test_no_spm_folder_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("LAMEG_SPM_DIR", raising=False)
    with pytest.raises(LamegValueError, match="LAMEG_SPM_DIR"):
        resolve_spm_source(None)


def test_missing_or_wrong_spm_folder(tmp_path):
    with pytest.raises(LamegFileNotFoundError, match="does not exist"):
        resolve_spm_source(tmp_path / "nowhere")
    (tmp_path / "notspm").mkdir()
    with pytest.raises(LamegFileNotFoundError, match="spm.m"):
        resolve_spm_source(tmp_path / "notspm")
    (tmp_path / "spm.txt").write_text("x")
    with pytest.raises(LamegFileNotFoundError, match="archive"):
        resolve_spm_source(tmp_path / "spm.txt")
    # a folder holding an spm/ subfolder is accepted
    (tmp_path / "outer" / "spm").mkdir(parents=True)
    (tmp_path / "outer" / "spm" / "spm.m").write_text("function spm\n")
    assert resolve_spm_source(tmp_path / "outer") == (tmp_path / "outer" / "spm").resolve()


def test_missing_octave_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("OCTAVE_EXECUTABLE", str(tmp_path / "no-octave"))
    with pytest.raises(SPMSetupError, match="not found"):
        find_octave()
    monkeypatch.delenv("OCTAVE_EXECUTABLE")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SPMSetupError, match="apt-get install"):
        find_octave()


def test_wrong_spm_instance_type_is_rejected():
    for bad in (object(), "spm", 3):
        with pytest.raises(LamegValueError, match="spm_instance must be"):
            get_engine(bad)


def test_failing_mex_build_reports_the_build_output(tmp_path, monkeypatch):
    if shutil.which("make") is None or shutil.which("mkoctfile") is None:
        pytest.skip("make or mkoctfile (liboctave-dev) not installed")
    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "spm"
    (src / "src").mkdir(parents=True)
    (src / "spm.m").write_text("function spm\n")
    (src / "src" / "Makefile").write_text("main-all:\n\t@echo 'spm_broken.c: syntax error'; false\n")
    mtime = (src / "spm.m").stat().st_mtime_ns
    with pytest.raises(SPMSetupError, match="syntax error"):
        prepare_spm_tree(src, verbose=False)
    assert (src / "spm.m").stat().st_mtime_ns == mtime
    assert not list((src / "src").glob("*.mex"))  # the user's folder is untouched
    # nothing half-built is left as "prepared"
    assert not [p for p in (tmp_path / "cache" / "spm").iterdir() if not p.name.startswith(".")]


def test_spm_cache_root_follows_lameg_cache_dir(monkeypatch, tmp_path):
    from lameg.spm import spm_cache_root

    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "c"))
    assert spm_cache_root() == tmp_path / "c" / "spm"


def test_back_ends_share_fiducial_pairing_and_head_model_slots():
    """Both back ends pair fiducials and place head models through lameg.backends._shared."""
    from lameg.backends._shared import head_model_index, mri_fiducials, n_layers

    a, b, c = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]
    # laMEG's keys pair positionally with the MEG file's labels
    assert mri_fiducials({"nas": a, "lpa": b, "rpa": c}, ["NZ", "L", "R"]) == \
        {"NZ": a, "L": b, "R": c}
    # a key equal to a label wins over the positional key; an unknown label is left out
    assert mri_fiducials({"nas": a, "NZ": c, "lpa": b}, ["NZ", "L", "R"]) == {"NZ": c, "L": b}
    assert mri_fiducials({"nas": a}, ["nas", "lpa", "rpa", "extra"]) == {"nas": a}
    assert head_model_index(2, 2) == 2 and head_model_index(0, 0) == 0
    for bad, n in ((3, 2), (-1, 2), (1, 0)):
        with pytest.raises(LamegValueError, match="inversion_idx"):
            head_model_index(bad, n)

    class Surf:
        n_layers = 11

    assert n_layers(Surf(), None) == 11
    assert n_layers(Surf(), "pial") == 1
    assert n_layers(None, None) == 1
