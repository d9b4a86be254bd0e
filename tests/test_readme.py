"""The README's example must run as written (on a copy of the test participant)."""

import re

import numpy as np


def test_readme_example_runs(repo_dir, test_data_dir, tmp_path, monkeypatch):
    text = (repo_dir / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(repo_dir)  # the example names test_data/ relative to the repository
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    F, cv_err = namespace["F"], namespace["cv_err"]
    # a real free energy of the classic engine: finite and negative for these data
    assert np.isfinite(F) and F < 0
    assert namespace["surf_set"].n_layers == 11
