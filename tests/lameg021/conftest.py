"""Fixtures for laMEG 0.2.1's own test suite run against lameg (see README.md here).

laMEG's tests read its participant ``sub-104`` from ``./test_data`` and an SPM instance from
a session fixture ``spm``; here the data come from our test participant (``test_data/``,
``sub-01``) and ``spm`` is None (the native engine accepts and ignores ``spm_instance``).
"""

from __future__ import annotations

import pytest

from tests.lameg021.source_test_utils import make_source_file


@pytest.fixture
def source_file(tmp_path):
    fname = tmp_path / "source.h5"
    return fname, make_source_file(fname)


@pytest.fixture
def trial_source_file(tmp_path):
    fname = tmp_path / "source_trials.h5"
    return fname, make_source_file(fname, n_trials=2)


@pytest.fixture(scope="session")
def spm():
    return None
