"""End-to-end demo: the anatomical-predictors tutorial on the bundled test participant.

``make demo`` runs::

    .venv/bin/python tools/demo.py --output output

which executes ``tutorials/tutorial_07_anatomical_predictors.py`` (multilayer mesh, co-registration,
EBB inversion, the four anatomical predictors, the composite score and the prior choice in a
region of interest) on a temporary copy of the bundled test participant
(:func:`lameg.datasets.copy_test_participant`) and writes its five figures to ``output/``:

``tutorial_07_thickness.png``, ``tutorial_07_lf_rms_diff.png``, ``tutorial_07_orientation.png``,
``tutorial_07_distance.png`` and ``tutorial_07_anatomical_score.png``.

``--fast`` uses the tutorials' reduced settings (3 instead of 11 layers); ``--data DIR`` reads
the test participant from ``DIR`` instead of the repository's ``test_data/`` (as
``LAMEG_TEST_DATA=DIR`` does).
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "tutorials" / "tutorial_07_anatomical_predictors.py"
FIGURES = ("thickness", "lf_rms_diff", "orientation", "distance", "anatomical_score")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="output",
                        help="folder for the figures (created if needed; default ./output)")
    parser.add_argument("--fast", action="store_true",
                        help="reduced settings (3 layers) for a quick check")
    parser.add_argument("--data", default=None,
                        help="test-data folder (default: $LAMEG_TEST_DATA or the repository's "
                             "test_data/)")
    args = parser.parse_args(argv)

    from lameg.datasets import TEST_DATA_ENV, test_participant_path
    from lameg.exceptions import LamegFileNotFoundError

    try:
        data = test_participant_path(args.data)
    except LamegFileNotFoundError as err:
        print(f"demo failed: {err}", file=sys.stderr)
        return 1
    os.environ[TEST_DATA_ENV] = str(data)
    print(f"test participant: {data}")

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["LAMEG_TUTORIAL_OUTPUT"] = str(out)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

    script = TUTORIAL
    if args.fast:  # the tutorial with its reduced settings (tools/tutorial_settings.py)
        import tempfile

        sys.path.insert(0, str(REPO / "tools"))
        from tutorial_settings import write_reduced

        script = write_reduced(TUTORIAL, tempfile.mkdtemp(prefix="lameg_demo_"))
    start = time.perf_counter()
    runpy.run_path(str(script), run_name="__main__")
    elapsed = time.perf_counter() - start

    missing = [f for f in FIGURES if not (out / f"tutorial_07_{f}.png").is_file()]
    if missing:
        print(f"demo failed: figures not written: {missing}", file=sys.stderr)
        return 1
    print(f"demo finished in {elapsed:.0f} s; figures in {out}:")
    for f in FIGURES:
        print(f"  {out / f'tutorial_07_{f}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
