"""Command line ``lameg-sam PROGRAM [options]``, with SAMsrcV5's program names and options.

``PROGRAM`` is ``sam_cov``, ``sam_wts``, ``sam_3d``, ``sam_4d``, ``sam_ers``, ``sam_power`` (or
``cov``, ``wts``, ``3d``, ``4d``, ``ers``, ``power``); the options are the program's own SAMsrcV5 options (``-r DSNAME``,
``-m PFILE``, ``-v``, ``-i_SAMdir``, ``-o_SAMdir``, ``--Name args`` ...; ``lameg-sam sam_cov -h``
lists them). Errors are reported as one line ``lameg-sam sam_cov: <what is wrong>``. Exit status:
0 on success (and for ``-h``), 2 for usage and parameter errors, 1 for other errors (missing
files, data problems).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..exceptions import LamegError, LamegFileNotFoundError, LamegValueError
from .param_table import help_text
from .params import read_params

PROGRAMS = ("cov", "wts", "3d", "4d", "ers", "power")

USAGE = """usage: lameg-sam PROGRAM [options]

SAM beamformer programs driven by SAMsrcV5 parameter files (SAMsrcV5 5.1 rules).
  sam_cov   covariance matrices (Global, Orient, Noise, Sum, markers)
  sam_wts   beamformer weights (grid, surface atlas or targets)
  sam_3d    power images (pseudo-Z)
  sam_4d    time-resolved images
  sam_ers   event-related images
  sam_power Hilbert power over the whole recording
The short names cov, wts, 3d, 4d, ers, power work too. 'lameg-sam PROGRAM -h' lists its options.
"""


def _program_help(prog: str) -> str:
    return (f"\nUsage: sam_{prog} [options]\t(lameg, SAMsrcV5 5.1 rules)\n\nOptions:\n"
            "If a parameter begins with '--', it is allowed on the command line,\n"
            "otherwise it is only allowed in a parameter file (see -m).\n"
            "All times are in seconds.\n\n" + help_text(prog) + "\n")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lameg-sam``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    prog = name.removeprefix("sam_")
    if prog not in PROGRAMS:
        print(f"lameg-sam: unknown program {name!r}; choose one of "
              f"{', '.join('sam_' + p for p in PROGRAMS)}", file=sys.stderr)
        return 2
    label = f"lameg-sam sam_{prog}"
    if "-h" in rest or "--help" in rest:
        print(_program_help(prog))
        return 0
    try:
        params = read_params(None, rest, program=prog)
    except LamegError as e:
        print(f"{label}: {_one_line(e)}", file=sys.stderr)
        return 1 if isinstance(e, LamegFileNotFoundError) else 2
    if not params.is_set("DataSet"):
        print(f"{label}: the dataset (-r DSNAME) is required", file=sys.stderr)
        return 2
    if params.get("verbose", False):
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        from . import cov, imaging, power, weights

        func = {"cov": cov.sam_cov, "wts": weights.sam_wts, "3d": imaging.sam_3d,
                "4d": imaging.sam_4d, "ers": imaging.sam_ers, "power": power.sam_power}[prog]
        result = func(params)
    except LamegValueError as e:
        print(f"{label}: {_one_line(e)}", file=sys.stderr)
        return 2
    except LamegError as e:
        print(f"{label}: {_one_line(e)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:  # a file the readers could not parse
        print(f"{label}: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 1
    if params.get("verbose", False):
        files = getattr(result, "files", None)
        if files:
            print("\n".join(str(f) for f in files))
    print(f"'sam_{prog}' done" if params.get("verbose", False) else "", end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
