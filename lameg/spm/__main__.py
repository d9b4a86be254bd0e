"""Command line: ``python -m lameg.spm setup --spm-dir DIR [--force]`` and ``check``."""

from __future__ import annotations

import argparse
import sys

from ..exceptions import LamegError


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m lameg.spm",
                                description="Prepare and check an SPM tree for lameg's SPM "
                                            "back end (GNU Octave)")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, hlp in (("setup", "copy/unpack the SPM tree into the cache and build its MEX "
                                "files (once per tree)"),
                      ("check", "prepare if needed, start Octave and print SPM's version")):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("--spm-dir", default=None,
                       help="SPM folder or archive (default $LAMEG_SPM_DIR)")
        s.add_argument("--octave", default=None, help="Octave executable")
        if name == "setup":
            s.add_argument("--force", action="store_true", help="rebuild")
    a = p.parse_args(argv)
    try:
        if a.cmd == "setup":
            from .prepare import prepare_spm_tree

            tree = prepare_spm_tree(a.spm_dir, force=a.force, octave=a.octave)
            print(tree.spm_dir)
        else:
            from .engine import OctaveSPM

            with OctaveSPM(a.spm_dir, octave=a.octave) as eng:
                print(f"{eng.version} ({eng.tree.spm_dir})")
    except LamegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
