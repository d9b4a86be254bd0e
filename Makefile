# Set-up and checks. Both targets create .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export VTK_DEFAULT_OPENGL_WINDOW ?= vtkEGLRenderWindow
export MPLBACKEND ?= Agg
export PYVISTA_OFF_SCREEN ?= true

.PHONY: test lint demo docs bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip uninstall --quiet -y lameg 2>/dev/null || true  # the distribution is now lameg-native
	$(PY) -m pip install --quiet -e ".[test,mne,dask]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Style and the public API's numpydoc docstrings.
lint: $(STAMP)
	$(PY) -m ruff check lameg tests tools tutorials benchmarks
	$(PY) tools/check_docstrings.py

# Lint, then the suite with a coverage report. Two pytest workers already use both cores: one
# BLAS thread each avoids oversubscription.
test: lint
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" --cov=lameg --cov-report=term:skip-covered tests

demo: $(STAMP)
	$(PY) tools/demo.py --output output

docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	$(PY) -m sphinx -W -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) output docs/_build .pytest_cache
