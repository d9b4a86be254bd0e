"""numpydoc validation of lameg's public API.

Every public callable (the names in each module's ``__all__``, and the public methods and
properties of public classes) must have a docstring with a ``Parameters`` section naming every
parameter and, when it returns something, a ``Returns`` section. Run from the repository:

    python tools/check_docstrings.py            # lists the problems, exit status 1 if any
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys

from numpydoc.validate import validate

#: numpydoc codes that fail the check: no docstring, undocumented / unknown parameters,
#: no Returns section for a function that returns a value.
CODES = {"GL08", "PR01", "PR02", "RT01"}


def _public_modules():
    import lameg

    yield lameg
    for info in pkgutil.walk_packages(lameg.__path__, "lameg."):
        name = info.name
        if any(part.startswith("_") for part in name.split(".")[1:]):
            continue
        try:
            yield importlib.import_module(name)
        except ImportError as err:  # optional dependency missing
            print(f"skip {name}: {err}", file=sys.stderr)


def _objects():
    seen = set()
    for mod in _public_modules():
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if obj is None or not callable(obj) and not inspect.isclass(obj):
                continue
            owner = getattr(obj, "__module__", "") or ""
            if not owner.startswith("lameg"):
                continue
            qual = f"{owner}.{obj.__qualname__}"
            if qual in seen:
                continue
            seen.add(qual)
            yield qual, obj
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                # own and inherited public members, validated where they are defined
                for klass in obj.__mro__:
                    if not (klass.__module__ or "").startswith("lameg"):
                        continue
                    for attr, member in vars(klass).items():
                        if attr.startswith("_"):
                            continue
                        if isinstance(member, property) or inspect.isfunction(member) or \
                                isinstance(member, (staticmethod, classmethod)):
                            name = f"{klass.__module__}.{klass.__qualname__}.{attr}"
                            if name not in seen:
                                seen.add(name)
                                yield name, member


def problems() -> list[str]:
    """All failing checks as ``'name: CODE message'`` lines."""
    out = []
    for qual, obj in _objects():
        if isinstance(obj, property):
            if not (obj.fget and obj.fget.__doc__):
                out.append(f"{qual}: GL08 property has no docstring")
            continue
        try:
            res = validate(qual)
        except (AttributeError, ImportError, TypeError) as err:
            out.append(f"{qual}: could not validate ({err})")
            continue
        for code, msg in res["errors"]:
            if code in CODES:
                out.append(f"{qual}: {code} {msg}")
    return out


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    print(f"{len(found)} docstring problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
