"""A tutorial as a user runs it in Jupyter: converted to a notebook (jupytext) and executed cell
by cell in a real IPython kernel (nbclient).

Tutorial 08 (OPMs) is used: it has no reduced-settings switch and runs in well under a minute.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]


def _as_notebook(script: Path):
    """jupytext's percent format, with sphinx-gallery's text (the module docstring and the
    comment block that opens a cell) as Markdown cells."""
    import nbformat

    nb = jupytext.read(script, fmt="py:percent")
    cells = []
    for cell in nb.cells:
        src = cell.source.strip()
        lines = src.splitlines()
        n_text = next((i for i, x in enumerate(lines) if not x.startswith("#")), len(lines))
        if cell.cell_type == "code" and n_text:  # leading comment block = the text
            cells.append(nbformat.v4.new_markdown_cell(
                "\n".join(x[2:] if x.startswith("# ") else x[1:] for x in lines[:n_text])))
            rest = "\n".join(lines[n_text:]).strip()
            if rest:
                cells.append(nbformat.v4.new_code_cell(rest))
        elif cell.cell_type == "code" and src.startswith('"""'):
            doc, _, rest = src[3:].partition('"""')
            cells.append(nbformat.v4.new_markdown_cell(doc.strip()))
            if rest.strip():
                cells.append(nbformat.v4.new_code_cell(rest.strip()))
        elif src:
            cells.append(cell)
    nb.cells = cells
    return nb


def test_tutorial_08_runs_as_a_notebook(tmp_path, monkeypatch):
    nb = _as_notebook(REPO / "tutorials" / "tutorial_08_opm.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(code) >= 5 and text and "OPM" in text[0].source
    # the kernel imports this checkout's lameg and keeps its cache in the test's folder
    nb.cells.insert(0, jupytext.reads(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\n", fmt="py:percent").cells[0])
    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    stdout = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.get("name") == "stdout")
    n_png = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                for o in c.outputs)
    assert n_png == 2, f"expected the array and the comparison figures, got {n_png}"
    pial = float(re.search(r"pial simulation: F\(pial\) - F\(white\) = (\S+)", stdout)[1])
    white = float(re.search(r"white simulation: F\(pial\) - F\(white\) = (\S+)", stdout)[1])
    assert pial > 3 and white < -3


@pytest.mark.parametrize("script", sorted((REPO / "tutorials").glob("tutorial_*.py")),
                         ids=lambda p: p.stem[:11])
def test_every_tutorial_is_a_valid_notebook(script):
    """Each tutorial converts to a notebook that nbformat validates, with text and code cells
    whose code compiles (the same conversion as the executed notebooks)."""
    import nbformat

    nb = _as_notebook(script)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and any(c.cell_type == "markdown" for c in nb.cells)
    for cell in code:
        compile(cell.source, f"{script.name}[cell]", "exec")


def test_tutorial_06_runs_as_a_notebook(tmp_path, monkeypatch):
    """A second tutorial executed in a kernel (CSD; the reduced layer count of the tests)."""
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    try:
        from tutorial_settings import write_reduced
    finally:
        sys.path.remove(str(REPO / "tools"))
    script = write_reduced(REPO / "tutorials" / "tutorial_06_csd.py", tmp_path)
    nb = _as_notebook(script)
    nb.cells.insert(0, jupytext.reads(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\n", fmt="py:percent").cells[0])
    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    n_png = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                for o in c.outputs)
    assert n_png >= 1
