"""SAM parameters read the way SAMsrcV5 5.1 reads them.

A SAM analysis is directed by a plain-text *parameter file*; this module reads it, with the
command line, the environment, ``%include`` files and the ``.samrc``/``.coregrc`` files, into a
:class:`SamParams` mapping, following SAMsrcV5's parser (``Libs/samutil``):

Sources, first setting wins
---------------------------
1. the command line: ``--Name args`` (any registered parameter) and the single-dash flags of the
   program (``-r``, ``-m``, ``-v``, ``-i_SAMdir``, ``-o_SAMdir``, ``-C``, ``-W``, ``-N``, ...); words
   that are neither are ignored;
2. environment variables ``ds``, ``param``, ``mridir``, ``imagedir`` (``pdf``), for registered
   parameters;
3. the parameter file (``-m NAME``: ``NAME`` or ``NAME.param``, relative to the working
   directory);
4. the ``%include`` files, **after the whole parameter file**, in the order met (includes of
   includes are appended; relative names are relative to the working directory). SAMsrcV5 loops
   forever on an include cycle; lameg stops with an error naming the cycle;
5. ``./.samrc``, ``./.coregrc``, ``~/.samrc``, ``~/.coregrc`` (their ``%include`` lines are not
   followed).

Lines
-----
``Keyword args...``; leading blanks, blank lines and lines starting with ``#`` are skipped, ``#``
after the keyword ends the line. A keyword is any case-insensitive prefix of a parameter name
*registered by the running program* (``Or`` is ``OrientBand`` in sam_cov, ``Time`` is
``TimeStep`` in sam_4d); several registered matches are an error (ambiguous); a keyword that
matches no registered parameter but exactly one parameter of the SAMsrcV5 table belongs to
another program and is ignored (its value is not checked); anything else is an unknown parameter
(error). ``Marker...`` and ``SegFile...`` lines append markers in reading order. Switches take no
argument and ignore any (``Notch FALSE`` turns the notch *on*, as in SAMsrcV5). Extra arguments
are reported and ignored. Value rules: :mod:`lameg.sam.param_types`.

When no program is given (the Python API), every parameter of the table counts as registered.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._utils import logger
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from .param_table import (
    ENV_VARS,
    PARAMETERS,
    PROGRAM_PARAMETERS,
    PROGRAMS,
    ParamSpec,
    help_text,
    lookup_key,
)
from .param_types import (
    ImageFormatSpec,
    Marker,
    MetricSpec,
    ModelSpec,
    MuSpec,
    _fmt,
)

__all__ = [
    "Marker",
    "MuSpec",
    "ModelSpec",
    "MetricSpec",
    "ImageFormatSpec",
    "ParamSpec",
    "PARAMETERS",
    "PROGRAM_PARAMETERS",
    "SamParams",
    "read_params",
    "parse_param_text",
    "lookup_key",
    "help_text",
]

_UNIT_TO_SI = {"cm": 0.01, "mm": 0.001, "ms": 0.001, "s": 1.0, "Hz": 1.0, "": 1.0,
               "rad": 1.0, "deg": 3.141592653589793 / 180}


@dataclass
class SamParams(Mapping):
    """Parsed SAM parameters: a mapping of canonical names to values.

    Iteration and ``in`` cover the parameters that were *set*; indexing also returns SAMsrcV5's
    defaults (``params['Hz']`` is 60.0 when unset) and accepts abbreviated, case-insensitive keys.
    ``ImageBand`` and ``OrientBand`` default to ``CovBand``.

    Parameters
    ----------
    values : dict
        Set parameters, canonical name -> parsed value.
    markers : list of Marker
        Markers in reading order.
    origins : dict
        Where each parameter was set (``'file:line'``, ``'command line'``, ``'environment $ds'``).
    param_file : Path or None
        The main parameter file.
    files : list of Path
        Every parameter file read, in order.
    program : str or None
        The program whose registered parameters were used.
    cmdline_used : bool
        Whether any parameter came from the command line.
    """

    values: dict[str, Any] = field(default_factory=dict)
    markers: list[Marker] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    param_file: Path | None = None
    files: list[Path] = field(default_factory=list)
    program: str | None = None
    cmdline_used: bool = False

    def __getitem__(self, key: str) -> Any:
        name = self._canon(key)
        if name in self.values:
            return self.values[name]
        if name in ("ImageBand", "OrientBand") and "CovBand" in self.values:
            return self.values["CovBand"]
        spec = PARAMETERS[name]
        if spec.default is None:
            raise KeyError(name)
        return spec.default

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, key: object) -> bool:
        try:
            return self._canon(str(key)) in self.values
        except KeyError:
            return False

    @staticmethod
    def _canon(key: str) -> str:
        if key == "Verbose":
            key = "verbose"
        if key in PARAMETERS:
            return key
        try:
            return lookup_key(key)
        except KeyError as e:
            raise KeyError(f"{e.args[0]} parameter {key!r}") from None

    @property
    def param_name(self) -> str | None:
        """SAMsrcV5's parameter name (``ParmName``): the ``-m`` argument without folders and
        without a final ``.param``; None without a parameter file."""
        v = self.values.get("param")
        if v is None:
            return None
        base = str(v).rsplit("/", 1)[-1]
        return base[:-len(".param")] if base.endswith(".param") else base

    def is_set(self, key: str) -> bool:
        """Whether the parameter was set explicitly (not a default).

        Parameters
        ----------
        key : str
            Parameter name (abbreviations accepted).

        Returns
        -------
        bool
        """
        return key in self

    def si(self, key: str) -> Any:
        """The value converted to SI units (cm and mm -> m, deg -> rad).

        Parameters
        ----------
        key : str
            Parameter name.

        Returns
        -------
        object
            Scalars and tuples of numbers converted; other values unchanged.
        """
        v = self[key]
        f = _UNIT_TO_SI[PARAMETERS[self._canon(key)].unit]
        if isinstance(v, bool) or f == 1.0:
            return v
        if isinstance(v, (int, float)):
            return v * f
        if isinstance(v, tuple):
            return tuple(x * f for x in v)
        return v

    def require(self, key: str, program: str) -> Any:
        """Return the value of a parameter a program needs, or raise a clear error.

        Parameters
        ----------
        key : str
            Parameter name.
        program : str
            Program name for the message.

        Returns
        -------
        object
            The value.

        Raises
        ------
        LamegValueError
            When the parameter is not set and has no default.
        """
        try:
            return self[key]
        except KeyError:
            name = self._canon(key)
            spec = PARAMETERS[name]
            raise LamegValueError(
                f"sam_{program} needs the parameter {name}: add a line '{name} {spec.arg_help}'"
                f" to the parameter file or pass --{name} on the command line") from None

    def copy(self, **overrides) -> SamParams:
        """A copy with some parameters set.

        Parameters
        ----------
        **overrides
            ``name=value`` pairs (values already parsed).

        Returns
        -------
        SamParams
        """
        new = replace(self, values=dict(self.values), markers=list(self.markers),
                      origins=dict(self.origins), files=list(self.files))
        for k, v in overrides.items():
            name = self._canon(k)
            new.values[name] = v
            new.origins[name] = "python"
        return new

    def log_lines(self, program: str | None = None) -> list[str]:
        """The parameter lines SAMsrcV5 logs (``<SAM>/sam_<program>.param``).

        The set parameters in the program's registration order, then the markers in reading order;
        numbers as ``%g``, ``param`` without ``.param``, ``DataSet`` with ``.ds``.

        Parameters
        ----------
        program : str, optional
            Program (default: the one the parameters were read for).

        Returns
        -------
        list of str
        """
        prog = program or self.program
        names = PROGRAM_PARAMETERS.get(prog, tuple(PARAMETERS)) if prog else tuple(PARAMETERS)
        lines = []
        for name in names:
            if name not in self.values or name.startswith("%") or name in ("Marker", "SegFile"):
                continue
            v, spec = self.values[name], PARAMETERS[name]
            if spec.boolean:
                lines.append(name)
            elif name == "param":
                lines.append("param " + (v[:-len(".param")] if v.endswith(".param") else v))
            elif name == "DataSet":
                ds = v.rstrip("/") if v.endswith("/") and len(v) > 1 else v
                if not Path(ds).is_dir() and Path(ds + ".ds").is_dir():
                    ds += ".ds"
                lines.append(f"DataSet {ds}")
            elif name == "Mu":
                lines.append(f"Mu {'*' if v.mode == 'mul' else ''}{v.value:g}")
            elif name == "Model":
                if v.kind == "SingleSphere":
                    lines.append("Model SingleSphere " + " ".join(f"{x:g}" for x in v.origin_cm))
                else:
                    lines.append(f"Model {v.kind}" + (f" {v.order}" if v.order else ""))
            elif name in ("ImageMetric", "ImageFormat"):
                lines.append(f"{name} {v}")
            elif isinstance(v, tuple):
                lines.append(f"{name} " + " ".join(_fmt(x) for x in v))
            else:
                lines.append(f"{name} {_fmt(v)}")
        for m in self.markers:
            if m.seg_file is None:
                line = f"Marker {m.name} {_fmt(m.t0)} {_fmt(m.t1)} {_fmt(m.in_sum)}"
                lines.append(line + (f" {m.cov_name}" if m.cov_name != m.name else ""))
            else:
                lines.append(f"SegFile {m.name} {m.seg_file} {_fmt(m.in_sum)}")
        return lines

    def to_text(self, program: str | None = None) -> str:
        """The parameters as parameter-file text (SAMsrcV5's log lines).

        Parameters
        ----------
        program : str, optional
            Program whose registration order is used.

        Returns
        -------
        str
        """
        return "\n".join(self.log_lines(program)) + "\n"

    def write_log(self, path: str | os.PathLike, program: str) -> Path:
        """Append the parameters to a log file as SAMsrcV5 does.

        A blank line, ``# <version line>``, ``# <date time>``, then the parameter lines.

        Parameters
        ----------
        path : path-like
            ``<SAM>/sam_<program>.param``.
        program : str
            The program.

        Returns
        -------
        Path
        """
        from .._version import __version__

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        block = (f"\n# lameg {__version__} (SAMsrcV5 5.1 rules)\n# {stamp}\n"
                 + "\n".join(self.log_lines(program)) + "\n")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(block)
        return path


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, params: SamParams, cwd: Path, registered: tuple[str, ...]):
        self.p = params
        self.cwd = cwd
        self.registered = registered
        self.includes: list[str] = []

    def resolve(self, key: str, loc: str) -> str | None:
        """SAMsrcV5's ``check_get_parm``: registered name, None (ignored) or an error."""
        try:
            return lookup_key(key, self.registered)
        except KeyError as e:
            if e.args[0] == "ambiguous":
                raise LamegValueError(f"{loc}: ambiguous parameter '{key}' (matches "
                                      f"{', '.join(e.args[2])})") from None
        try:
            lookup_key(key)
        except KeyError:
            raise LamegValueError(f"{loc}: unknown parameter '{key}'") from None
        return None  # a parameter of another program: ignored

    def read_includes(self, seen: set[Path]) -> None:
        """Read the ``%include`` files met so far and those they include, in order.

        ``seen`` holds the resolved files already read; a file read twice is an include cycle.
        """
        k = 0
        while k < len(self.includes):
            inc = self.includes[k]
            p = Path(os.path.expanduser(inc))
            p = p if p.is_absolute() else self.cwd / p
            real = (p if p.is_file() else p.with_name(p.name + ".param")).resolve()
            if real in seen:
                raise LamegFormatError(
                    f"%include cycle: {real} is included again (SAMsrcV5 would loop forever); "
                    "remove the %include line that reads it a second time")
            seen.add(real)
            self.read_file(inc, True)
            k += 1

    def set(self, name: str, args: list[str], loc: str) -> None:
        spec = PARAMETERS[name]
        if name == "%include":
            if not args:
                raise LamegValueError(f"{loc}: %include requires an argument")
            self.includes.append(args[0])
            return
        if name in ("Marker", "SegFile"):
            try:
                m = spec.parse(args)
            except ValueError as e:
                raise LamegValueError(f"{loc}: {e}") from None
            self.p.markers.append(replace(m, origin=loc))
            return
        if name in self.p.values:
            return  # first setting wins
        try:
            value = spec.parse(args)
        except ValueError as e:
            raise LamegValueError(f"{loc}: {name}: {e}") from None
        if value is None:  # e.g. ImageFormat without argument: not set
            return
        if spec.nargs is not None and len(args) > spec.nargs and not spec.boolean:
            logger.warning("%s: extra arguments for %s ignored", loc, name)
        self.p.values[name] = value
        self.p.origins[name] = loc

    def read_text(self, text: str, fname: str) -> None:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            s = raw.lstrip()
            if not s or s.startswith("#"):
                continue
            parts = s.split(None, 1)
            key = parts[0]
            rest = parts[1].split("#", 1)[0] if len(parts) > 1 else ""
            loc = f"{fname}:{lineno}"
            name = self.resolve(key, loc)
            if name is not None:
                self.set(name, rest.split(), loc)

    def read_file(self, name: str, required: bool) -> Path | None:
        p = Path(os.path.expanduser(name))
        if not p.is_absolute():
            p = self.cwd / p
        cand = p if p.is_file() else p.with_name(p.name + ".param")
        if not cand.is_file():
            if required:
                raise LamegFileNotFoundError(f"file not found: {name} (also tried {name}.param)")
            return None
        try:
            text = cand.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise LamegFileNotFoundError(f"cannot read parameter file {cand}: {e.strerror}"
                                         ) from None
        self.p.files.append(cand)
        self.read_text(text, str(cand))
        return cand


def _parse_argv(argv: Sequence[str], reader: _Reader) -> None:
    """SAMsrcV5's ``parse_args``: ``--Key args`` and exact single-dash flags of the program."""
    reg = reader.registered
    flags = {}
    for n in reg:
        s = PARAMETERS[n].short
        if s and s not in flags:
            flags[s] = n
    i = 0
    argv = list(argv)
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("--"):
            try:
                name = lookup_key(tok[2:], reg)
            except KeyError:
                raise LamegValueError(f'parameter "{tok[2:]}" is not valid on the command line '
                                      f"of sam_{reader.p.program or 'cov'}") from None
        elif len(tok) > 1 and tok[0] == "-" and tok[1].isalpha():
            if tok not in flags:
                raise LamegValueError(f'unknown option "{tok}"')
            name = flags[tok]
        else:
            i += 1  # SAMsrcV5 skips words that are not options
            continue
        spec = PARAMETERS[name]
        if spec.nargs is None:  # markers and multi-word values: up to the next option
            j = i + 1
            while j < len(argv) and not (len(argv[j]) > 1 and argv[j][0] == "-" and (
                    argv[j][1].isalpha() or argv[j][1] == "-")):
                j += 1
            args = argv[i + 1:j]
        else:
            args = argv[i + 1:i + 1 + spec.nargs]
            j = i + 1 + len(args)
            if len(args) < spec.nargs or any(len(a) > 1 and a[0] == "-" and (
                    a[1].isalpha() or a[1] == "-") for a in args):
                word = ["an argument", "two arguments", "three arguments"][spec.nargs - 1]
                raise LamegValueError(f"{tok} requires {word}")
        loc = f"command line {tok}"
        if name == "param":
            reader.p.values.setdefault("param", args[0])
            reader.p.origins.setdefault("param", loc)
        else:
            reader.set(name, args, loc)
        reader.p.cmdline_used = True
        i = j


def read_params(
    path: str | os.PathLike | None = None,
    argv: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    *,
    program: str | None = None,
    cwd: str | os.PathLike | None = None,
    home: str | os.PathLike | None = None,
    read_samrc: bool = True,
) -> SamParams:
    """Read SAM parameters as a SAMsrcV5 program does (see the module docstring).

    Parameters
    ----------
    path : path-like, optional
        The parameter file (``NAME`` or ``NAME.param``); ``-m NAME`` in ``argv`` and then the
        ``param`` environment variable take precedence, as in SAMsrcV5.
    argv : sequence of str
        Command-line arguments (``--Name args``, ``-r DS``, ``-v``, ...).
    environ : mapping, optional
        Environment variables (default :data:`os.environ`; ``HOME`` locates ``~/.samrc``).
    program : {'cov', 'wts', '3d', '4d', 'ers', 'power', 'epi'}, optional
        The program whose registered parameters apply (default: all parameters).
    cwd, home : path-like, optional
        Working and home directories (default: the process's).
    read_samrc : bool
        Whether to read the ``.samrc``/``.coregrc`` files.

    Returns
    -------
    SamParams

    Raises
    ------
    LamegValueError
        Unknown or ambiguous keys, bad values (the message starts with ``file:line``).
    LamegFormatError
        ``%include`` cycles.
    LamegFileNotFoundError
        Missing parameter or include files.
    """
    environ = os.environ if environ is None else environ
    prog = _program(program)
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    if home is None:
        home = environ.get("HOME") or os.path.expanduser("~")
    registered = PROGRAM_PARAMETERS[prog] if prog else tuple(PARAMETERS)
    params = SamParams(program=prog)
    reader = _Reader(params, cwd, registered)
    _parse_argv(argv, reader)
    for var, name in ENV_VARS.items():
        if name in registered and environ.get(var):
            if name == "param":
                params.values.setdefault("param", environ[var])
                params.origins.setdefault("param", f"environment ${var}")
            else:
                reader.set(name, str(environ[var]).split(), f"environment ${var}")
    if params.values.get("param") is None and path is not None:
        params.values["param"] = os.fspath(path)
        params.origins["param"] = "python"
    if params.values.get("param") is not None:
        params.param_file = reader.read_file(str(params.values["param"]), True)
        reader.read_includes({params.param_file.resolve()})
    if read_samrc:
        for folder in (cwd, Path(home)):
            for rc in (".samrc", ".coregrc"):
                reader.includes = []
                reader.read_file(str(folder / rc), False)
        reader.includes = []
    return params


def _program(program: str | None) -> str | None:
    if program is None:
        return None
    p = str(program).removeprefix("sam_")
    if p not in PROGRAMS:
        raise LamegValueError(f"unknown SAM program {program!r}; choose one of "
                              f"{', '.join('sam_' + x for x in PROGRAMS)}")
    return p


def parse_param_text(text: str, name: str = "<text>", *, cwd: str | os.PathLike | None = None,
                     program: str | None = None) -> SamParams:
    """Parse parameter-file text (no command line, environment or ``.samrc``).

    ``%include`` lines are followed after the text, relative to ``cwd``.

    Parameters
    ----------
    text : str
        The parameter-file text.
    name : str
        File name used in error messages (``name:line``).
    cwd : path-like, optional
        Folder of relative ``%include`` names (default: the working directory).
    program : str, optional
        The program whose registered parameters apply (default: all).

    Returns
    -------
    SamParams
    """
    prog = _program(program)
    params = SamParams(program=prog)
    base = Path(cwd) if cwd is not None else Path.cwd()
    reader = _Reader(params, base, PROGRAM_PARAMETERS[prog] if prog else tuple(PARAMETERS))
    reader.read_text(text, name)
    reader.read_includes(set())
    return params
