"""The README's example must run as written (on a copy of the test participant)."""

import re

import numpy as np


def test_readme_example_runs(repo_dir, test_data_dir):
    text = (repo_dir / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    # a real free energy of the classic engine: finite and negative for these data
    assert np.isfinite(namespace["F"]) and namespace["F"] < 0
    assert np.size(namespace["cv_err"]) == 0  # no cross-validation folds were requested
    assert namespace["surf_set"].n_layers == 11
    namespace["participant"].cleanup()
