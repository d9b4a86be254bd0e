"""Command line ``lameg-sam PROGRAM -m PARAMFILE [options]``.

``PROGRAM`` is ``cov``, ``wts``, ``3d``, ``4d`` or ``ers``; the options are the SAMsrcV5 ones
(``-r DATASET``, ``-v``, ``--Name value ...``; see ``lameg-sam --help``). Exit status 0 on success,
2 on a usage or parameter error, 1 on other lameg errors.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..exceptions import LamegError
from .params import help_text, read_params

PROGRAMS = ("cov", "wts", "3d", "4d", "ers")

USAGE = """usage: lameg-sam {cov|wts|3d|4d|ers} -m PARAMFILE [-r DATASET] [-v] [--Name value ...]

SAM beamformer programs driven by SAMsrcV5 parameter files.
  cov   covariance matrices (Global, Orient, Noise, markers, Sum)
  wts   two-step scalar beamformer weights (grid, surface atlas or targets)
  3d    power / pseudo-Z images
  4d    time-resolved images
  ers   event-related response images

Short flags: -r DataSet, -m parameter file, -v Verbose, -t TargetName, -A AtlasName,
-i MRIDirectory, -o ImageDirectory, -H HullName, -C CovName, -W WtsName, -N OutName,
-n Normalize, -s Unconstrained, -u Mu, -a Absolute.
Environment: $ds, $pdf, $param, $mridir, $imagedir. Also read: ./.samrc, ~/.samrc.

Parameters:
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lameg-sam``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE + help_text())
        return 0 if argv else 2
    prog, rest = argv[0], argv[1:]
    if prog not in PROGRAMS:
        print(f"lameg-sam: unknown program {prog!r}; choose one of {', '.join(PROGRAMS)}",
              file=sys.stderr)
        return 2
    try:
        params = read_params(None, rest, program=prog)
    except LamegError as e:
        print(f"lameg-sam {prog}: {e}", file=sys.stderr)
        return 2
    if params.get("help", False):
        print(USAGE + help_text())
        return 0
    if params.get("Verbose", False):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        from . import cov, imaging, weights

        func = {"cov": cov.sam_cov, "wts": weights.sam_wts, "3d": imaging.sam_3d,
                "4d": imaging.sam_4d, "ers": imaging.sam_ers}[prog]
        result = func(params)
    except LamegError as e:
        print(f"lameg-sam {prog}: {e}", file=sys.stderr)
        return 1
    if params.get("Verbose", False):
        files = getattr(result, "files", None)
        if files:
            print("\n".join(str(f) for f in files))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
