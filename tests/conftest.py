"""Shared fixtures: locations of the bundled test participant and of the SPM reference outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
# Caches go to the repository's ignored .lameg_cache (shared by the workers, warm across runs),
# never to the home directory.
os.environ.setdefault("LAMEG_CACHE_DIR", str(REPO / ".lameg_cache"))
TEST_DATA = REPO / "test_data"
# The SPM reference outputs sit beside the repository (``../shared``) in CI; users do not have them.
SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", REPO.parent / "shared"))
SPM_REFERENCE = SHARED / "spm_reference"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """The committed test participant (``test_data/``)."""
    if not (TEST_DATA / "participants.tsv").exists():
        pytest.skip("test_data/ has not been generated (run tools/make_test_data.py)")
    return TEST_DATA


@pytest.fixture(scope="session")
def subjects_dir(test_data_dir) -> Path:
    """FreeSurfer SUBJECTS_DIR of the test participant (read-only: copy before writing)."""
    return test_data_dir / "fs"


@pytest.fixture(scope="session")
def spm_reference() -> Path:
    """Folder of real SPM outputs; tests using it skip when ``../shared`` is absent."""
    if not (SPM_REFERENCE / "README.md").exists():
        pytest.skip("SPM reference outputs (../shared/spm_reference) not available")
    return SPM_REFERENCE
