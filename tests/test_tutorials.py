"""Run the sphinx-gallery tutorials end to end (reduced settings) and check what they show.

Each tutorial runs in its own Python process with the reduced settings of
``tools/tutorial_settings.py`` (fewer layers and simulations) and ``LAMEG_TUTORIAL_OUTPUT`` pointing at a temporary folder; all tutorials of a
session share one gain/kernel cache (``LAMEG_CACHE_DIR``) so that identical forward models are
computed once. The tutorials work on temporary copies of ``test_data/``
(``lameg.datasets.copy_test_participant``); the test checks that the bundled data are left
untouched.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("tutorial_*.py"))
TIMEOUT_S = 900  # generous: the shared 2-core CI machine can be heavily loaded

T07_FIGURES = ("thickness", "lf_rms_diff", "orientation", "distance", "anatomical_score")


def _digest(folder: Path) -> str:
    """Content hash of every file under ``folder`` (names and bytes)."""
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def tutorial_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tutorial_cache")


def run_tutorial(script: Path, out_dir: Path, cache_dir: Path) -> subprocess.CompletedProcess:
    """Run the tutorial with its reduced settings (``tools/tutorial_settings.py``)."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from tutorial_settings import write_reduced
    finally:
        sys.path.pop(0)
    script = write_reduced(script, out_dir.parent / f"{out_dir.name}_script")
    env = dict(os.environ)
    env.pop("LAMEG_TUTORIAL_FAST", None)
    env.update({
        "LAMEG_TUTORIAL_OUTPUT": str(out_dir),
        "LAMEG_CACHE_DIR": str(cache_dir),
        "MPLBACKEND": "Agg",
        "PYVISTA_OFF_SCREEN": "true",
    })
    if sys.platform.startswith("linux") and not env.get("DISPLAY"):
        env.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    proc = subprocess.run([sys.executable, str(script)], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"{script.name} failed (exit {proc.returncode}):\n--- stdout ---\n"
                    f"{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")
    return proc


def check_surface_figure(png: Path) -> None:
    """A rendered cortex with a colour bar: non-blank brain, varied colours, a colour bar.

    The renderer places the surface in the left part of the image and the matplotlib colour bar
    at the right (``lameg.viz.render_mesh(colorbar=True)``).
    """
    import matplotlib.pyplot as plt

    img = plt.imread(png)[..., :3].astype(float)
    if img.max() > 1.0:
        img = img / 255.0
    h, w, _ = img.shape
    split = int(0.75 * w)
    brain = img[:, :split]
    non_white = np.any(brain < 0.92, axis=-1)
    # the brain covers a good part of the picture (not blank, not a tiny speck)
    assert non_white.mean() > 0.15, f"{png.name}: the surface covers {non_white.mean():.1%}"
    pix = brain[non_white]
    saturation = pix.max(axis=1) - pix.min(axis=1)
    assert np.mean(saturation > 0.08) > 0.3, f"{png.name}: the surface is mostly grey"
    # colours vary across the surface: many distinct colours and hues from both ends of the map
    distinct = np.unique(np.round(pix * 15).astype(int), axis=0)
    assert len(distinct) > 60, f"{png.name}: only {len(distinct)} distinct surface colours"
    assert np.ptp(pix[:, 0] - pix[:, 2]) > 0.5, f"{png.name}: no red-to-blue spread"
    # colour bar: columns on the right with a long run of saturated pixels whose colour changes
    # from one end to the other
    right = img[:, split:]
    sat_r = right.max(axis=-1) - right.min(axis=-1)
    cols = np.flatnonzero((sat_r > 0.15).mean(axis=0) > 0.4)
    assert cols.size >= 5, f"{png.name}: no colour bar found"
    col = right[:, cols[cols.size // 2]]
    rows = np.flatnonzero(sat_r[:, cols[cols.size // 2]] > 0.15)
    top, bottom = col[rows[:5]].mean(axis=0), col[rows[-5:]].mean(axis=0)
    assert np.linalg.norm(top - bottom) > 0.5, f"{png.name}: colour bar is not a gradient"


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(script, tmp_path, tutorial_cache):
    before = _digest(REPO / "test_data")
    proc = run_tutorial(script, tmp_path, tutorial_cache)
    assert _digest(REPO / "test_data") == before, f"{script.name} modified test_data/"
    if script.stem.startswith("tutorial_07"):
        _check_tutorial_07(proc.stdout, tmp_path)
    checks = {"tutorial_03": _check_tutorial_03, "tutorial_04": _check_tutorial_04,
              "tutorial_05": _check_tutorial_05, "tutorial_08": _check_tutorial_08,
              "tutorial_09": _check_tutorial_09}
    for prefix, check in checks.items():
        if script.stem.startswith(prefix):
            check(proc.stdout, tmp_path)


def _check_tutorial_07(stdout: str, out_dir: Path) -> None:
    n_columns = int(re.search(r"(\d+) columns per layer", stdout).group(1))
    m = re.search(r"Highest anatomical score at vertex (\d+)", stdout)
    assert m, "tutorial 07 did not print the best vertex"
    assert 0 <= int(m.group(1)) < n_columns
    m = re.search(r"best prior column (\d+)", stdout)
    assert m and 0 <= int(m.group(1)) < n_columns
    m = re.search(r"Largest difference between the two scores: (\S+)", stdout)
    assert m and float(m.group(1)) < 1e-9
    m = re.search(r"mean layer error over (\d+) columns: (\S+) layers \(chance (\S+)\)", stdout)
    assert m and int(m.group(1)) > 0 and 0 <= float(m.group(2)) <= 2 * float(m.group(3))
    m = re.search(r"Spearman r = (\S+) \(p = (\S+), n = (\d+)\)", stdout)
    assert m and -1 <= float(m.group(1)) <= 1
    pngs = sorted(out_dir.glob("*.png"))
    assert {p.name for p in pngs} == {f"tutorial_07_{f}.png" for f in T07_FIGURES} | {
        "tutorial_07_accuracy_map.png"}
    for png in pngs:
        if png.name != "tutorial_07_accuracy_map.png":
            check_surface_figure(png)
    import matplotlib.pyplot as plt

    img = plt.imread(out_dir / "tutorial_07_accuracy_map.png")[..., :3]
    assert np.mean(np.any(img < 0.9, axis=-1)) > 0.05  # surfaces and a scatter were drawn


def _number(pattern: str, stdout: str) -> float:
    m = re.search(pattern, stdout)
    assert m, f"the tutorial did not print {pattern!r}"
    return float(m.group(1))


def _check_figures(out_dir: Path, prefix: str, names: tuple[str, ...]) -> None:
    """The tutorial saved exactly these matplotlib figures, none of them blank."""
    import matplotlib.pyplot as plt

    pngs = sorted(out_dir.glob("*.png"))
    assert {p.name for p in pngs} == {f"{prefix}_{n}.png" for n in names}
    for png in pngs:
        img = plt.imread(png)[..., :3]
        assert np.any(img < 0.5), f"{png.name} is blank"


def _check_tutorial_03(stdout: str, out_dir: Path) -> None:
    # cross-validation error: lower is better, so the simulated layer has the lower error
    d_pial = _number(r"pial simulation: .*CV\(pial\) - CV\(white\) = (\S+) fT", stdout)
    d_white = _number(r"white simulation: .*CV\(pial\) - CV\(white\) = (\S+) fT", stdout)
    assert d_pial < 0 < d_white
    # the free energies of the same cross-validated inversions agree
    f_pial = _number(r"pial simulation: .*F\(pial\) - F\(white\) = (\S+)", stdout)
    f_white = _number(r"white simulation: .*F\(pial\) - F\(white\) = (\S+)", stdout)
    assert f_white < 0 < f_pial
    assert "best model per simulation: [0, 1] simulated: [0, 1]" in stdout
    _check_figures(out_dir, "tutorial_03", ("pial_white", "layers"))


def _check_tutorial_04(stdout: str, out_dir: Path) -> None:
    m = re.search(r"localiser peak at column (\d+) \(simulated: (\d+)\)", stdout)
    assert m and m.group(1) == m.group(2), "the localiser missed the simulated column"
    # a pial source: the pial model wins in the windows around the pulse, by more than the
    # conventional threshold of strong evidence (3)
    assert _number(r"averaged over windows centred in -20 \.\.\. 20 ms: (\S+)", stdout) > 3
    assert _number(r"best layer in -20 \.\.\. 20 ms: (\d+)", stdout) == 0
    _check_figures(out_dir, "tutorial_04", ("localiser", "two_layers", "all_layers"))


def _check_tutorial_05(stdout: str, out_dir: Path) -> None:
    t_pial = _number(r"pial simulation: +t\(\d+\) = (\S+),", stdout)
    t_white = _number(r"white simulation: t\(\d+\) = (\S+),", stdout)
    assert t_pial > 0 > t_white
    m = re.search(r"ROI of \d+ column\(s\) \[([\d, ]+)\]", stdout)
    assert m, "tutorial 05 did not print the ROI"
    column = int(re.search(r"simulating at column (\d+)", stdout).group(1))
    assert column in [int(c) for c in m.group(1).split(",")], "the ROI misses the source"
    change = re.search(r"ROI power change per layer \(pial first\): \[([^\]]+)\]", stdout)
    assert change, "tutorial 05 did not print the per-layer power change"
    values = np.array(change.group(1).split(), dtype=float)
    assert np.argmax(values) == 0, f"largest power change not on the pial layer: {values}"
    _check_figures(out_dir, "tutorial_05", ("signal", "roi_t", "roi_time_series", "layer_power"))


def _check_tutorial_08(stdout: str, out_dir: Path) -> None:
    # OPM: the simulated layer wins the free-energy comparison by strong evidence (> 3)
    assert _number(r"(\d+) OPM sensors", stdout) > 50
    assert _number(r"pial simulation: F\(pial\) - F\(white\) = (\S+)", stdout) > 3
    assert _number(r"white simulation: F\(pial\) - F\(white\) = (\S+)", stdout) < -3


def _check_tutorial_09(stdout: str, out_dir: Path) -> None:
    m = re.search(r"sources in layers \[(\d+), (\d+)\] of (\d+)", stdout)
    assert m, "tutorial 09 did not print the simulated layers"
    sup, deep, n_layers = (int(g) for g in m.groups())

    def peaks(scenario: str, method: str) -> list[int]:
        line = re.search(rf"{scenario}, {method} *: peak layer at .* -> \[([\d, ]+)\]", stdout)
        assert line, f"no peak layers printed for {scenario} / {method}"
        return [int(v) for v in line.group(1).split(",")]

    def profile(scenario: str, method: str) -> np.ndarray:
        block = stdout[stdout.index(f"{scenario}, {method}"):]
        row = re.search(r"profile at [+-]\d+ ms \(pial first, relative to the maximum\): "
                        r"\[([^\]]+)\]", block)
        return np.array(row.group(1).split(), dtype=float)

    # sliding windows separate the sequential sources (within one layer)
    found = peaks("sequential", "sliding-window EBB")
    assert abs(found[0] - sup) <= 1 and abs(found[1] - deep) <= 1, found
    # the whole-epoch EBB inversion puts both sequential pulses between the two layers
    assert all(sup < p < deep for p in peaks("sequential", "EBB, whole epoch"))
    # plain EBB merges the simultaneous pair into a middle layer ...
    mid = peaks("simultaneous", "sliding-window EBB")[0]
    assert sup + 1 < mid < deep - 1
    # ... while EBBlayer shows activity near both simulated layers
    prof = np.abs(profile("simultaneous", "sliding-window EBBlayer"))
    assert prof.size == n_layers
    assert prof[sup - 2:sup + 1].max() > 0.5 and prof[deep - 2:deep + 1].max() > 0.5, prof
    assert prof[sup + 1:deep - 2].max() < 0.5, prof
    _check_figures(out_dir, "tutorial_09", ("csd", "layers"))


def test_surface_figure_check_rejects_blank(tmp_path):
    """The figure check must fail on a blank image and on a grey brain without colour bar."""
    import matplotlib.pyplot as plt

    blank = tmp_path / "blank.png"
    plt.imsave(blank, np.ones((400, 600, 3)))
    with pytest.raises(AssertionError):
        check_surface_figure(blank)
    grey = np.ones((400, 600, 3))
    grey[100:300, 50:350] = 0.6
    grey_png = tmp_path / "grey.png"
    plt.imsave(grey_png, grey)
    with pytest.raises(AssertionError):
        check_surface_figure(grey_png)


@pytest.mark.slow
def test_demo_script_fast(tmp_path, tutorial_cache):
    """``tools/demo.py --fast`` writes the five tutorial-07 figures into --output (the tutorial
    itself is checked by ``test_tutorial_runs``; this checks the ``make demo`` wiring)."""
    env = dict(os.environ, LAMEG_CACHE_DIR=str(tutorial_cache), MPLBACKEND="Agg")
    out = tmp_path / "output"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "demo.py"), "--fast",
                           "--output", str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Highest anatomical score at vertex" in proc.stdout
    for f in T07_FIGURES:
        assert (out / f"tutorial_07_{f}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_docs_build_and_render(tmp_path, tutorial_cache):
    """``sphinx -W`` builds the site with the executed gallery; Chromium shows it without
    console errors and with the tutorial figures (``tools/check_docs.py``)."""
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("numpydoc")
    pytest.importorskip("pydata_sphinx_theme")
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import check_docs
    finally:
        sys.path.pop(0)
    try:
        chromium = check_docs.find_chromium()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    html = tmp_path / "html"
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from tutorial_settings import write_reduced
    finally:
        sys.path.pop(0)
    reduced = tmp_path / "tutorials"
    for script in TUTORIALS:
        write_reduced(script, reduced)
    (reduced / "README.rst").write_text((REPO / "tutorials" / "README.rst").read_text())
    env = dict(os.environ, LAMEG_CACHE_DIR=str(tutorial_cache),
               LAMEG_DOCS_TUTORIALS=str(reduced))
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html",
                           "-d", str(tmp_path / "doctrees"), str(REPO / "docs"), str(html)],
                          env=env, capture_output=True, text=True, timeout=3 * TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-6000:]
    failures = check_docs.check(html, tmp_path / "screenshots", chromium)
    assert not failures, failures
    assert (tmp_path / "screenshots" / "tutorial_07.png").stat().st_size > 50_000
