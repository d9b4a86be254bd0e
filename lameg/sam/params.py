"""SAM parameter files: the SAMsrcV5 parameter language.

A SAM analysis is directed by a plain-text *parameter file*. This module reads such files
(with ``%include`` files, ``.samrc`` files, environment variables and command-line overrides)
into a :class:`SamParams` mapping of canonical parameter names to parsed values, and writes the
parameters actually used back as a *reconstituted* ``.param`` file.

Language
--------
* One parameter per line: ``Keyword arg1 arg2 ...``. Leading and trailing white space is
  ignored, arguments are separated by white space (no quoting), blank lines and lines whose
  first non-blank character is ``#`` are skipped, and ``#`` after the keyword starts a comment.
* Keywords are case-insensitive and may be abbreviated to any *unique* prefix of a parameter
  name (``atlas`` -> ``AtlasName``, ``covb`` -> ``CovBand``). An exact name always wins over a
  longer name it prefixes. Unknown or ambiguous keywords are errors that name the file and line.
* Boolean parameters (``Notch``, ``Normalize``, ``Unconstrained``, ...) are switched on by the bare
  keyword. The documentation also shows ``Notch TRUE|FALSE``; an explicit ``FALSE`` (any
  case-insensitive prefix of ``FALSE``, or ``NO``/``0``) switches the parameter off. (The public
  SAMsrcV5 code ignores the argument, so there ``Notch FALSE`` switches the notch *on*; we follow
  the documentation.)
* ``Marker[N] NAME T0 T1 TRUE|FALSE [COVNAME]`` lines (any keyword starting with ``Marker``, with
  or without a number) and ``SegFile NAME FILE TRUE|FALSE`` lines *append* a marker; the order of
  appearance, not the number, defines the marker index.
* ``%include NAME`` reads another parameter file (``NAME`` or ``NAME.param``, relative to the
  including file's folder, then to the working directory) **at that point**, as the documentation
  states; parameters that are already set are not changed. (The public code defers all includes
  until the main file has been read; with first-setting-wins semantics the two differ only when
  the main file sets a key *after* the include line, or in the order of markers.) Include cycles
  are errors.

Precedence
----------
The first setting of a parameter wins, and sources are read in this order, so that the
command line overrides the environment, which overrides the parameter file (and its includes,
at their point of inclusion), which overrides ``./.samrc``, which overrides ``~/.samrc``:

1. command-line ``--Name args`` overrides and the short flags (``-r``, ``-m``, ``-v``, ...);
2. environment variables ``ds`` (DataSet), ``pdf`` (PDFName), ``param`` (the parameter file, when
   ``-m`` is not given), ``mridir`` (MRIDirectory), ``imagedir`` (ImageDirectory);
3. the parameter file, with its ``%include`` files at their point of inclusion;
4. ``.samrc`` in the working directory, then ``.samrc`` in the home directory.

Markers from every file are appended in reading order (markers cannot be given on the command
line).

Where the documentation and the public SAMsrcV5 code differ we follow the documentation:
``PrefixLength`` defaults to the delimiter ``_``, the Nolte order to 16, ``PropMu`` and ``Surface`` are
accepted, ``Transform`` takes no argument (an optional transform name is accepted too), target
files may have 3 or 4 columns, ``MinSNR`` is the voxel-writing SNR threshold, and ``Notch FALSE``
disables the notch.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._utils import logger
from .._version import __version__
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError

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
]


# ----------------------------------------------------------------------------------------------
# Parsed value types
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """One ``Marker`` or ``SegFile`` line.

    Attributes
    ----------
    name : str
        Event (marker) name, matched against the dataset's condition/event labels.
    t0, t1 : float or None
        Segment start and end relative to each event, in seconds (None for a SegFile marker).
    in_sum : bool
        Whether the marker's segments enter the Sum covariance.
    cov_name : str
        Name of the marker's covariance (defaults to ``name``).
    seg_file : str or None
        For ``SegFile`` markers: the file of ``trial t0 t1`` lines (0-based trial, seconds).
    origin : str
        ``file:line`` where the marker was defined.
    """

    name: str
    t0: float | None
    t1: float | None
    in_sum: bool
    cov_name: str
    seg_file: str | None = None
    origin: str = ""

    def to_line(self) -> str:
        """The parameter-file line that defines this marker."""
        flag = "TRUE" if self.in_sum else "FALSE"
        if self.seg_file is not None:
            return f"SegFile {self.name} {self.seg_file} {flag}"
        line = f"Marker {self.name} {_fmt(self.t0)} {_fmt(self.t1)} {flag}"
        if self.cov_name != self.name:
            line += f" {self.cov_name}"
        return line


@dataclass(frozen=True)
class MuSpec:
    """Regularisation ``Mu [+|*]MU``.

    ``mode='add'``: MU in fT/sqrt(Hz); ``(MU*1e-15)**2 * bandwidth`` (T^2) is added to the
    covariance diagonal. ``mode='mul'``: the covariance diagonal is multiplied by MU (the
    documented behaviour; the V5 ``sam_wts`` code instead adds MU x noise floor, which is what
    ``PropMu`` does here).
    """

    mode: str
    value: float

    def __str__(self) -> str:
        return ("+" if self.mode == "add" else "*") + _fmt(self.value)


@dataclass(frozen=True)
class ModelSpec:
    """Forward model ``Model SingleSphere x y z | MultiSphere | Nolte [N]`` (origin in cm)."""

    kind: str
    origin_cm: tuple[float, float, float] | None = None
    order: int | None = None

    def __str__(self) -> str:
        if self.kind == "SingleSphere":
            return "SingleSphere " + " ".join(_fmt(v) for v in self.origin_cm)
        if self.kind == "Nolte":
            return f"Nolte {self.order}"
        return self.kind


@dataclass(frozen=True)
class MetricSpec:
    """Image metric ``ImageMetric NAME [args]``.

    ``tau`` is the integrator time constant (ms for RankVectorEntropy, s for ConditionalEntropy,
    as documented), ``advance`` the time advance in ms, ``dims`` the embedding dimension.
    """

    name: str
    tau: float | None = None
    advance: float | None = None
    dims: int | None = None

    def __str__(self) -> str:
        parts = [self.name]
        if self.tau is not None:
            parts.append(_fmt(self.tau))
        if self.advance is not None:
            parts.append(_fmt(self.advance))
        if self.dims is not None:
            parts.append(str(self.dims))
        return " ".join(parts)


@dataclass(frozen=True)
class ImageFormatSpec:
    """``ImageFormat ORIG|TLRC [RES]`` (RES in mm)."""

    kind: str
    res_mm: float | None = None

    def __str__(self) -> str:
        return self.kind if self.res_mm is None else f"{self.kind} {_fmt(self.res_mm)}"


# ----------------------------------------------------------------------------------------------
# Argument parsers (raise ValueError with a short message; the caller adds file and line)
# ----------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _float(tok: str, what: str = "value") -> float:
    try:
        v = float(tok)
    except ValueError:
        raise ValueError(f"{what} {tok!r} is not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{what} {tok!r} must be finite")
    return v


def _int(tok: str, what: str = "value") -> int:
    try:
        return int(tok)
    except ValueError:
        raise ValueError(f"{what} {tok!r} is not an integer") from None


def _need(args: Sequence[str], n: int, usage: str) -> None:
    if len(args) < n:
        raise ValueError(f"expected {n} argument(s): {usage}")


def _bool_word(tok: str) -> bool:
    t = tok.lower()
    if t in ("1", "yes", "on") or (t and "true".startswith(t)):
        return True
    if t in ("0", "no", "off") or (t and "false".startswith(t)):
        return False
    raise ValueError(f"{tok!r} is not TRUE or FALSE")


def p_flag(args):
    return True if not args else _bool_word(args[0])


def p_str(args):
    _need(args, 1, "NAME")
    return args[0]


def p_dataset(args):
    _need(args, 1, "DNAME")
    name = args[0].rstrip("/")
    if not name:
        raise ValueError("empty dataset name")
    return name


def p_float(lo=None, hi=None, lo_open=False, unit=""):
    def parse(args):
        _need(args, 1, "VALUE")
        v = _float(args[0])
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise ValueError(f"value {v:g} must be {'>' if lo_open else '>='} {lo:g} {unit}".strip())
        if hi is not None and v > hi:
            raise ValueError(f"value {v:g} must be <= {hi:g} {unit}".strip())
        return v

    return parse


def p_int(lo=None):
    def parse(args):
        _need(args, 1, "N")
        v = _int(args[0])
        if lo is not None and v < lo:
            raise ValueError(f"value {v} must be >= {lo}")
        return v

    return parse


def p_band(lo_min=0.0, allow_zero_lo=True):
    def parse(args):
        _need(args, 2, "LO HI (Hz)")
        lo, hi = _float(args[0], "LO"), _float(args[1], "HI")
        if lo < lo_min or (not allow_zero_lo and lo == 0):
            raise ValueError(f"LO {lo:g} Hz must be >= {lo_min:g}")
        if not hi > lo:
            raise ValueError(f"HI {hi:g} Hz must be greater than LO {lo:g} Hz")
        return (lo, hi)

    return parse


def p_window(args):
    _need(args, 2, "START END")
    a, b = _float(args[0], "START"), _float(args[1], "END")
    if not b > a:
        raise ValueError(f"END {b:g} must be greater than START {a:g}")
    return (a, b)


def p_choice(*choices: str):
    def parse(args):
        _need(args, 1, "|".join(choices))
        t = args[0].lower()
        exact = [c for c in choices if c.lower() == t]
        hits = exact or [c for c in choices if c.lower().startswith(t)]
        if len(hits) != 1:
            raise ValueError(f"{args[0]!r} is not one of {'|'.join(choices)}")
        return hits[0]

    return parse


def p_prefix_length(args):
    _need(args, 1, "N or a delimiter character")
    tok = args[0]
    try:
        v = int(tok)
    except ValueError:
        if len(tok) != 1:
            raise ValueError(f"{tok!r} is neither a length nor a single delimiter character") from None
        return tok
    if v < 0:
        raise ValueError(f"prefix length {v} must be >= 0")
    return v


def p_transform(args):
    return True if not args else args[0]


def p_mu(args):
    _need(args, 1, "[+|*]MU")
    tok = "".join(args[:2]) if args[0] in ("+", "*") and len(args) > 1 else args[0]
    mode = "add"
    if tok[:1] in "+*" and tok:
        mode = "add" if tok[0] == "+" else "mul"
        tok = tok[1:]
    v = _float(tok, "MU")
    if v < 0:
        raise ValueError(f"MU {v:g} must be >= 0")
    return MuSpec(mode, v)


def p_model(args):
    _need(args, 1, "SingleSphere x y z | MultiSphere | Nolte [N]")
    kind = p_choice("SingleSphere", "MultiSphere", "Nolte")(args[:1])
    if kind == "SingleSphere":
        _need(args, 4, "SingleSphere x y z (cm)")
        return ModelSpec(kind, tuple(_float(a, "origin") for a in args[1:4]))
    if kind == "Nolte":
        order = _int(args[1], "order") if len(args) > 1 else 16
        if order < 1:
            raise ValueError(f"Nolte order {order} must be >= 1")
        return ModelSpec(kind, order=order)
    return ModelSpec(kind)


_METRICS = (
    "Signal",
    "Moment",
    "Power",
    "Hilbert",
    "Kurtosis",
    "RankVectorEntropy",
    "SpectEntropy",
    "MutualInfo",
    "TransferEntropy",
    "ConditionalEntropy",
)


def p_metric(args):
    _need(args, 1, "|".join(_METRICS))
    name = p_choice(*_METRICS)(args[:1])
    if name == "Moment":
        name = "Signal"
    rest = args[1:]

    def dims(tok):
        d = _int(tok, "DIMS")
        if not 2 <= d <= 6:
            raise ValueError(f"DIMS {d} must be between 2 and 6 (4 or 5 recommended)")
        return d

    def pos(tok, what):
        v = _float(tok, what)
        if v <= 0:
            raise ValueError(f"{what} {v:g} must be > 0")
        return v

    if name == "RankVectorEntropy":
        _need(rest, 1, "RankVectorEntropy TAU(ms) [DIMS]")
        return MetricSpec(name, tau=pos(rest[0], "TAU"), dims=dims(rest[1]) if len(rest) > 1 else 4)
    if name in ("MutualInfo", "TransferEntropy"):
        _need(rest, 2, f"{name} ADVANCE(ms) DIMS")
        return MetricSpec(name, advance=pos(rest[0], "ADVANCE"), dims=dims(rest[1]))
    if name == "ConditionalEntropy":
        _need(rest, 3, "ConditionalEntropy TAU(s) ADVANCE(ms) DIMS")
        return MetricSpec(
            name, tau=pos(rest[0], "TAU"), advance=pos(rest[1], "ADVANCE"), dims=dims(rest[2])
        )
    return MetricSpec(name)


def p_image_format(args):
    _need(args, 1, "ORIG|TLRC [RES]")
    kind = p_choice("ORIG", "ORTHO", "TLRC")(args[:1])
    if kind == "ORTHO":
        kind = "ORIG"
    if kind == "TLRC":
        _need(args, 2, "TLRC RES (mm)")
        res = _float(args[1], "RES")
        if not 0 < res < 20:
            raise ValueError(f"TLRC resolution {res:g} mm must be in (0, 20)")
        return ImageFormatSpec(kind, res)
    return ImageFormatSpec(kind)


# number of arguments consumed by each parser (for "extra arguments" warnings); None = variable
_NARGS = {p_flag: 1, p_str: 1, p_dataset: 1, p_window: 2, p_prefix_length: 1, p_transform: 1}


# ----------------------------------------------------------------------------------------------
# The parameter table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One entry of the parameter table.

    Attributes
    ----------
    name : str
        Canonical name (as written in parameter files).
    parse : callable
        ``parse(args: list[str]) -> value``; raises ``ValueError`` on invalid arguments.
    nargs : int or None
        Number of arguments used (None = variable); more produce a warning.
    unit : str
        Unit of the value as written in the file ('' if dimensionless); see :meth:`SamParams.si`.
    cmdline : bool
        Whether ``--Name`` is allowed on the command line.
    short : str or None
        Single-dash flag (e.g. ``'-r'``).
    env : str or None
        Environment variable that sets it.
    default : Any
        Documented default (None = no default).
    doc : str
        One-line description.
    boolean : bool
        Whether the parameter is a switch (no argument).
    """

    name: str
    parse: Callable[[list[str]], Any]
    nargs: int | None = 1
    unit: str = ""
    cmdline: bool = True
    short: str | None = None
    env: str | None = None
    default: Any = None
    doc: str = ""
    boolean: bool = False


def _flag(name, doc, short=None, default=False):
    return ParamSpec(name, p_flag, 1, "", True, short, None, default, doc, True)


_PF = p_float
PARAMETERS: dict[str, ParamSpec] = {
    s.name: s
    for s in [
        # meta
        _flag("Verbose", "verbose output", "-v"),
        _flag("help", "print usage and the parameter table", "-h"),
        # input and output files
        ParamSpec("DataSet", p_dataset, short="-r", env="ds", doc="MEG dataset (SPM .mat or MNE .fif)"),
        ParamSpec("PDFName", p_str, short="-d", env="pdf", doc="4D/BTi PDF file"),
        ParamSpec("MRIDirectory", p_str, short="-i", env="mridir", default="mri",
                  doc="root of MRI-derived files (default 'mri')"),
        ParamSpec("MRIPattern", p_str, default="%M/%P/%s", doc="how MRI file names are built"),
        ParamSpec("PrefixLength", p_prefix_length, default="_",
                  doc="dataset-name prefix: a length or a delimiter (default '_')"),
        ParamSpec("ImageDirectory", p_str, short="-o", env="imagedir", doc="image output folder"),
        ParamSpec("HullName", p_str, short="-H", default="hull.shape", doc="inner-skull hull"),
        ParamSpec("CovName", p_str, short="-C", doc="covariance set name"),
        ParamSpec("WtsName", p_str, short="-W", doc="weight set name"),
        ParamSpec("OutName", p_str, short="-N", doc="name used in output files"),
        ParamSpec("XformName", p_str, doc="name of the transform file"),
        ParamSpec("TargetName", p_str, short="-t", doc="target list (x y z [value], cm)"),
        # markers and segments
        ParamSpec("NumMarkers", p_int(0), doc="deprecated, ignored"),
        ParamSpec("Marker", lambda a: a, None, cmdline=False, doc="NAME T0 T1 TRUE|FALSE [COVNAME]"),
        ParamSpec("SegFile", lambda a: a, None, cmdline=False, doc="NAME FILE TRUE|FALSE"),
        ParamSpec("DataSegment", p_window, 2, "s", doc="segment relative to markers"),
        ParamSpec("OutRange", p_window, 2, "s", doc="output time range (unused)"),
        ParamSpec("BlockName", p_str, doc="marker of blocks for ste_ers"),
        # event related
        ParamSpec("Baseline", p_window, 2, "s", doc="baseline window"),
        ParamSpec("SignSegment", p_window, 2, "s", doc="polarity window"),
        # image space
        ParamSpec("XBounds", p_window, 2, "cm", doc="ROI x extent (anterior +)"),
        ParamSpec("YBounds", p_window, 2, "cm", doc="ROI y extent (left +)"),
        ParamSpec("ZBounds", p_window, 2, "cm", doc="ROI z extent (superior +)"),
        ParamSpec("ImageStep", _PF(0, lo_open=True, unit="cm"), 1, "cm", doc="grid step"),
        ParamSpec("ImageFormat", p_image_format, None, cmdline=False,
                  default=ImageFormatSpec("ORIG"), doc="ORIG|TLRC [RES mm]"),
        ParamSpec("MaskName", p_str, doc="mask for TLRC"),
        ParamSpec("AtlasName", p_str, short="-A", doc="surface atlas (GIfTI mesh with normals)"),
        ParamSpec("Surface", p_choice("white", "smoothwm", "pial", "orig"), doc="atlas surface"),
        ParamSpec("Transform", p_transform, doc="apply the coregistration transform"),
        ParamSpec("Extent", _PF(0, unit="mm"), 1, "mm", doc="extent around targets"),
        ParamSpec("ROIList", p_str, doc="ROI list file"),
        _flag("Unconstrained", "solve orientations even with an atlas", "-s"),
        # frequency
        ParamSpec("CovBand", p_band(), 2, "Hz", doc="covariance pass band"),
        ParamSpec("ImageBand", p_band(), 2, "Hz", doc="imaging pass band (default CovBand)"),
        ParamSpec("OrientBand", p_band(), 2, "Hz", doc="orientation pass band"),
        ParamSpec("NoiseBand", p_band(), 2, "Hz", doc="noise pass band"),
        ParamSpec("SmoothBand", p_band(), 2, "Hz", doc="smoothing band of metrics"),
        _flag("Notch", "notch mains and harmonics"),
        ParamSpec("FilterType", p_choice("FFT", "IIR"), default="FFT", doc="FFT|IIR"),
        ParamSpec("Hz", _PF(0, lo_open=True, unit="Hz"), 1, "Hz", default=60.0, doc="mains"),
        # SAM
        ParamSpec("CovType", p_choice("GLOBAL", "SUM", "ALL"), doc="GLOBAL|SUM|ALL"),
        ParamSpec("Model", p_model, None, cmdline=False, doc="forward model"),
        ParamSpec("Order", p_int(1), default=16, doc="Nolte order (SAMsrcV5 default 16)"),
        _flag("doMultiSphere", "use the MultiSphere model"),
        _flag("doNolte", "use the Nolte model"),
        ParamSpec("Mu", p_mu, None, short="-u", doc="[+|*]MU regularisation"),
        ParamSpec("PropMu", _PF(0), 1, "", doc="proportional regularisation (x noise floor)"),
        ParamSpec("Pinv", p_int(0), doc="drop N smallest singular values"),
        ParamSpec("ImageMetric", p_metric, None, cmdline=False, doc="image metric"),
        ParamSpec("TimeStep", _PF(0, lo_open=True, unit="s"), 1, "s", doc="image time step"),
        ParamSpec("TimeInt", _PF(0, lo_open=True, unit="s"), 1, "s", doc="integration time"),
        ParamSpec("BoxWidth", _PF(0, lo_open=True, unit="s"), 1, "s", doc="boxcar width"),
        ParamSpec("MinSNR", _PF(0), 1, "", doc="minimum SNR written"),
        ParamSpec("RemoveBaseline", p_choice("NONE", "BYVOXEL", "GLOBAL"), default="NONE",
                  doc="NONE|BYVOXEL|GLOBAL"),
        _flag("Normalize", "divide weights by sqrt(noise)", "-n"),
        _flag("ZNormalize", "multi-target normalisation", "-Z"),
        _flag("Field", "write forward vectors", "-B"),
        _flag("Read_binary", "read binary targets", "-b"),
        _flag("Absolute", "absolute value of averages", "-a"),
        _flag("AUC", "area under the curve"),
        # coregistration (sam_coreg)
        ParamSpec("NumVerts", p_int(1), default=10000, doc="coreg vertices"),
        ParamSpec("MinZ", _PF(unit="cm"), 1, "cm", default=4.0, doc="coreg minimum z"),
        ParamSpec("MinSpan", _PF(0), 1, "", default=0.5, doc="coreg minimum span"),
        ParamSpec("MaxAngle", _PF(0), 1, "rad", doc="coreg maximum angle"),
        ParamSpec("MaxDot", _PF(0, 1), 1, "", default=0.2, doc="coreg maximum dot"),
        ParamSpec("DeltaTranslate", _PF(0, lo_open=True), 1, "mm", default=1.0, doc="coreg"),
        ParamSpec("DeltaRotate", _PF(0, lo_open=True), 1, "deg", doc="coreg rotation step"),
        ParamSpec("InitDisplacement", _PF(0, lo_open=True), 1, "mm", default=2.0, doc="coreg"),
        ParamSpec("EndDisplacement", _PF(0, lo_open=True), 1, "mm", default=0.1, doc="coreg"),
        ParamSpec("Offset", _PF(), 1, "mm", doc="coreg offset"),
        ParamSpec("Damping", _PF(0, 1, lo_open=True), 1, "", default=0.5, doc="coreg"),
        ParamSpec("LineSteps", p_int(2), default=8, doc="coreg line steps"),
        _flag("ShowPasses", "coreg progress"),
        # NIFTIPeak
        ParamSpec("Threshold", _PF(), 1, "", doc="peak threshold"),
        ParamSpec("SearchRadius", _PF(0, lo_open=True), 1, "cm", doc="peak search radius"),
        ParamSpec("NumMaxima", p_int(1), doc="number of peaks"),
        _flag("ShowPower", "report peak power"),
    ]
}
for _s in PARAMETERS.values():
    if _s.parse in _NARGS and _s.nargs == 1:
        object.__setattr__(_s, "nargs", _NARGS[_s.parse])

_LOWER = {k.lower(): k for k in PARAMETERS}
SHORT_FLAGS = {s.short: s.name for s in PARAMETERS.values() if s.short}
SHORT_FLAGS["-m"] = "%param"
ENV_VARS = {s.env: s.name for s in PARAMETERS.values() if s.env}

_COMMON_IO = {"DataSet", "PDFName", "Verbose", "help", "CovName", "WtsName", "OutName",
              "MRIDirectory", "MRIPattern", "PrefixLength", "ImageDirectory", "Marker", "SegFile"}
#: Parameters each program uses (others are accepted but ignored in files, and are errors on the
#: command line, as in SAMsrcV5).
PROGRAM_PARAMETERS: dict[str, frozenset[str]] = {
    "cov": frozenset(_COMMON_IO | {"CovBand", "ImageBand", "NoiseBand", "OrientBand",
                                   "FilterType", "DataSegment", "Notch", "Hz", "Pinv"}),
    "wts": frozenset(_COMMON_IO | {"CovBand", "NoiseBand", "OrientBand", "Mu", "PropMu",
                                   "XBounds", "YBounds", "ZBounds", "ImageStep", "HullName",
                                   "Normalize", "Field", "Pinv", "Model", "Order", "doMultiSphere",
                                   "doNolte", "AtlasName", "TargetName", "ImageFormat", "Extent",
                                   "Transform", "XformName", "Unconstrained", "Surface"}),
    "3d": frozenset(_COMMON_IO | {"CovType", "CovBand", "ImageBand", "NoiseBand", "FilterType",
                                  "Notch", "Hz", "AtlasName", "ImageFormat", "ImageMetric",
                                  "MinSNR"}),
    "4d": frozenset(_COMMON_IO | {"CovType", "CovBand", "ImageBand", "NoiseBand", "FilterType",
                                  "Notch", "Hz", "AtlasName", "ImageFormat", "ImageMetric",
                                  "DataSegment", "SignSegment", "Baseline", "SmoothBand",
                                  "BoxWidth", "TimeStep", "TimeInt", "MinSNR"}),
    "ers": frozenset(_COMMON_IO | {"CovType", "CovBand", "ImageBand", "FilterType", "Notch", "Hz",
                                   "AtlasName", "ImageFormat", "ImageMetric", "DataSegment",
                                   "SignSegment", "Baseline", "SmoothBand", "TimeStep", "TimeInt",
                                   "Absolute"}),
}


def lookup_key(given: str) -> str:
    """Resolve a (case-insensitive, possibly abbreviated) keyword to its canonical name.

    Raises
    ------
    KeyError
        With a message saying whether the key is unknown or ambiguous.
    """
    g = given.lower()
    if not g:
        raise KeyError("empty parameter name")
    if g in _LOWER:
        return _LOWER[g]
    if g.startswith("marker"):
        return "Marker"
    hits = [v for k, v in _LOWER.items() if k.startswith(g)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise KeyError(f"ambiguous parameter {given!r} (matches {', '.join(sorted(hits))})")
    raise KeyError(f"unknown parameter {given!r}")


# ----------------------------------------------------------------------------------------------
# The parameter set
# ----------------------------------------------------------------------------------------------

_UNIT_TO_SI = {"cm": 0.01, "mm": 0.001, "ms": 0.001, "s": 1.0, "Hz": 1.0, "": 1.0,
               "rad": 1.0, "deg": 3.141592653589793 / 180}


@dataclass
class SamParams(Mapping):
    """Parsed SAM parameters: a mapping of canonical names to values.

    Iteration and ``in`` cover the parameters that were *set*; indexing also returns documented
    defaults (``params['Hz']`` is 60.0 when unset) and accepts abbreviated, case-insensitive keys.
    ``ImageBand`` and ``OrientBand`` default to ``CovBand``, ``WtsName`` to ``CovName``, which
    defaults to the parameter-file name without ``.param``.

    Attributes
    ----------
    values : dict
        Set parameters, canonical name -> parsed value.
    markers : list of Marker
        Markers in order of appearance.
    origins : dict
        Where each parameter was set (``'file:line'``, ``'command line'`` or ``'environment $ds'``).
    param_file : Path or None
        The main parameter file.
    files : list of Path
        Every parameter file read, in order.
    """

    values: dict[str, Any] = field(default_factory=dict)
    markers: list[Marker] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    param_file: Path | None = None
    files: list[Path] = field(default_factory=list)
    cmdline_used: bool = False

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        name = self._canon(key)
        if name in self.values:
            return self.values[name]
        if name in ("ImageBand", "OrientBand") and "CovBand" in self.values:
            return self.values["CovBand"]
        if name == "CovName" and self.param_file is not None:
            stem = self.param_file.name
            return stem[: -len(".param")] if stem.endswith(".param") else stem
        if name == "WtsName":
            try:
                return self["CovName"]
            except KeyError:
                pass
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
        try:
            return lookup_key(key)
        except KeyError as e:
            raise KeyError(e.args[0]) from None

    # helpers ----------------------------------------------------------------------------------
    def is_set(self, key: str) -> bool:
        """Whether the parameter was set explicitly (not a default)."""
        return key in self

    def si(self, key: str) -> Any:
        """The value converted to SI units (cm and mm -> m, ms -> s, deg -> rad).

        Scalars and tuples of numbers are converted; other values are returned unchanged.
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
        """Return the value of a parameter a program needs, or raise a clear error."""
        try:
            return self[key]
        except KeyError:
            name = self._canon(key)
            raise LamegValueError(
                f"sam_{program} needs the parameter {name}: add a line '{name} "
                f"{PARAMETERS[name].doc}' to the parameter file or pass --{name} on the "
                "command line"
            ) from None

    def copy(self, **overrides) -> SamParams:
        """A copy with some parameters set (values already parsed, canonical names)."""
        new = replace(self, values=dict(self.values), markers=list(self.markers),
                      origins=dict(self.origins), files=list(self.files))
        for k, v in overrides.items():
            name = lookup_key(k)
            new.values[name] = v
            new.origins[name] = "python"
        return new

    def to_text(self, program: str | None = None) -> str:
        """The reconstituted parameter file: every set parameter, in table order, then markers.

        The text re-reads (with :func:`parse_param_text`) to the same values and markers.
        """
        lines = []
        for name, spec in PARAMETERS.items():
            if name not in self.values or name in ("Marker", "SegFile", "help"):
                continue
            v = self.values[name]
            if spec.boolean:
                lines.append(name if v else f"{name} FALSE")
            elif isinstance(v, tuple):
                lines.append(f"{name} " + " ".join(_fmt(x) for x in v))
            elif v is True:
                lines.append(name)
            else:
                lines.append(f"{name} {_fmt(v)}")
        lines.extend(m.to_line() for m in self.markers)
        return "\n".join(lines) + "\n"

    def write_log(self, path: str | os.PathLike, program: str) -> Path:
        """Append the reconstituted parameters to ``path`` (``<SAM dir>/<program>.param``).

        Each block starts with comment lines naming the program, the lameg version and the time.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        block = f"# lameg-sam {program} (lameg {__version__})\n# {stamp}\n" + self.to_text()
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(block)
        return path


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, params: SamParams, cwd: Path):
        self.p = params
        self.cwd = cwd
        self.stack: list[Path] = []

    def set(self, name: str, args: list[str], origin: str, loc: str) -> None:
        spec = PARAMETERS[name]
        if name == "NumMarkers":
            logger.info("%s: NumMarkers is deprecated and ignored", loc)
        if name in ("Marker", "SegFile"):
            self.p.markers.append(self._marker(name, args, loc))
            return
        try:
            value = spec.parse(args)
        except ValueError as e:
            raise LamegValueError(f"{loc}: {name}: {e}") from None
        if spec.nargs is not None and len(args) > spec.nargs and not (
            spec.boolean and not args
        ):
            logger.warning("%s: extra arguments for %s ignored: %s", loc, name,
                           " ".join(args[spec.nargs:]))
        if name in self.p.values:
            logger.info("%s: %s already set by %s; this setting is ignored", loc, name,
                        self.p.origins.get(name))
            return
        self.p.values[name] = value
        self.p.origins[name] = origin

    def _marker(self, kind: str, args: list[str], loc: str) -> Marker:
        try:
            if kind == "SegFile":
                _need(args, 3, "SegFile MARKNAME FILE TRUE|FALSE")
                if len(args) > 3:
                    logger.warning("%s: extra arguments for SegFile ignored", loc)
                return Marker(args[0], None, None, _bool_word(args[2]), args[0], args[1], loc)
            _need(args, 4, "Marker MARKNAME T0 T1 TRUE|FALSE [COVNAME]")
            t0, t1 = _float(args[1], "T0"), _float(args[2], "T1")
            if not t1 > t0:
                raise ValueError(f"T1 {t1:g} s must be greater than T0 {t0:g} s")
            cov = args[4] if len(args) > 4 else args[0]
            if len(args) > 5:
                logger.warning("%s: extra arguments for Marker ignored", loc)
            return Marker(args[0], t0, t1, _bool_word(args[3]), cov, None, loc)
        except ValueError as e:
            raise LamegValueError(f"{loc}: {kind}: {e}") from None

    def read_text(self, text: str, fname: str, folder: Path | None) -> None:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            loc = f"{fname}:{lineno}"
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            toks = line.split()
            key, args = toks[0], toks[1:]
            if key.startswith("%"):
                if key.lower() != "%include":
                    raise LamegFormatError(f"{loc}: unknown directive {key!r} (only %include)")
                if not args:
                    raise LamegFormatError(f"{loc}: %include needs a file name")
                self.include(args[0], folder, loc)
                continue
            try:
                name = lookup_key(key)
            except KeyError as e:
                raise LamegValueError(
                    f"{loc}: {e.args[0]}; see 'lameg-sam --help' for the parameter list"
                ) from None
            self.set(name, args, loc, loc)

    def read_file(self, path: Path, loc: str | None = None) -> None:
        path = path.resolve()
        if path in self.stack:
            chain = " -> ".join(str(p) for p in [*self.stack, path])
            raise LamegFormatError(f"{loc}: %include cycle: {chain}")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise LamegFileNotFoundError(f"{loc or path}: cannot read parameter file {path}: "
                                         f"{e.strerror}") from None
        self.p.files.append(path)
        self.stack.append(path)
        try:
            self.read_text(text, str(path), path.parent)
        finally:
            self.stack.pop()

    def include(self, name: str, folder: Path | None, loc: str) -> None:
        name = os.path.expanduser(name)
        cands = []
        for base in ([folder] if folder else []) + [self.cwd]:
            for n in (name, name + ".param"):
                cands.append(base / n)
        for c in cands:
            if c.is_file():
                self.read_file(c, loc)
                return
        raise LamegFileNotFoundError(
            f"{loc}: %include file {name!r} not found (looked for {name} and {name}.param "
            f"next to the including file and in {self.cwd})"
        )


def _find_param_file(name: str, cwd: Path) -> Path:
    p = Path(os.path.expanduser(name))
    if not p.is_absolute():
        p = cwd / p
    for c in (p, p.with_name(p.name + ".param")):
        if c.is_file():
            return c
    raise LamegFileNotFoundError(f"parameter file {name!r} not found (tried {p} and {p}.param)")


def _looks_like_value(tok: str) -> bool:
    if not tok.startswith("-") or tok == "-":
        return True
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _parse_argv(argv: Sequence[str], reader: _Reader, program: str | None) -> str | None:
    """Apply command-line settings; return the ``-m`` parameter-file name if any."""
    allowed = PROGRAM_PARAMETERS.get(program) if program else None
    param_name = None
    argv = list(argv)
    i = 0
    while i < len(argv):
        tok = argv[i]
        loc = f"command line argument {i + 1} ({tok!r})"
        if tok.startswith("--") and len(tok) > 2:
            try:
                name = lookup_key(tok[2:])
            except KeyError as e:
                raise LamegValueError(f"{loc}: {e.args[0]}") from None
            spec = PARAMETERS[name]
            if not spec.cmdline:
                raise LamegValueError(f"{loc}: {name} cannot be given on the command line; "
                                      "put it in the parameter file")
            j = i + 1
            while j < len(argv) and _looks_like_value(argv[j]):
                if spec.boolean and j > i + 1:
                    break
                j += 1
            args = argv[i + 1: j]
            if spec.boolean and args and not _is_bool_word(args[0]):
                args, j = [], i + 1
            i = j
        elif tok.startswith("-") and len(tok) == 2:
            if tok not in SHORT_FLAGS:
                raise LamegValueError(f"{loc}: unknown option {tok}")
            name = SHORT_FLAGS[tok]
            if name == "%param" or not PARAMETERS[name].boolean:
                if i + 1 >= len(argv):
                    raise LamegValueError(f"{loc}: option {tok} needs a value")
                args = [argv[i + 1]]
                i += 2
            else:
                args = []
                i += 1
            if name == "%param":
                param_name = args[0]
                continue
        else:
            raise LamegValueError(f"{loc}: unexpected argument; options are --Name value or "
                                  "a short flag such as -m FILE")
        if allowed is not None and name not in allowed and name not in ("help", "Verbose"):
            raise LamegValueError(f"{loc}: parameter {name} is not used by sam_{program}")
        reader.set(name, args, "command line", loc)
        reader.p.cmdline_used = True
    return param_name


def _is_bool_word(tok: str) -> bool:
    try:
        _bool_word(tok)
        return True
    except ValueError:
        return False


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
    """Read SAM parameters with the SAMsrcV5 precedence rules.

    Parameters
    ----------
    path : path-like, optional
        The parameter file (``NAME`` or ``NAME.param``). ``-m NAME`` in ``argv`` takes precedence,
        then the ``param`` environment variable.
    argv : sequence of str
        Command-line arguments (``--Name args``, ``-r DS``, ``-v``, ...), highest precedence.
    environ : mapping, optional
        Environment variables (default :data:`os.environ`); ``ds``, ``pdf``, ``param``,
        ``mridir`` and ``imagedir`` are used. Also ``HOME`` for ``~/.samrc``.
    program : {'cov', 'wts', '3d', '4d', 'ers'}, optional
        When given, command-line parameters that the program does not use are errors.
    cwd, home : path-like, optional
        Working and home directories for ``.samrc`` look-up (default: the process's).
    read_samrc : bool
        Whether to read ``./.samrc`` and ``~/.samrc``.

    Returns
    -------
    SamParams

    Raises
    ------
    LamegValueError
        Unknown/ambiguous keys or invalid values; the message starts with ``file:line``.
    LamegFormatError
        Malformed directives and ``%include`` cycles.
    LamegFileNotFoundError
        Missing parameter or include files.
    """
    environ = os.environ if environ is None else environ
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    if home is None:
        home = environ.get("HOME") or os.path.expanduser("~")
    params = SamParams()
    reader = _Reader(params, cwd)
    m_name = _parse_argv(argv, reader, program)
    for var, name in ENV_VARS.items():
        if var in environ and environ[var] != "":
            reader.set(name, [environ[var]], f"environment ${var}", f"environment variable ${var}")
    if m_name is None:
        m_name = os.fspath(path) if path is not None else environ.get("param") or None
    if m_name:
        pfile = _find_param_file(m_name, cwd)
        params.param_file = pfile
        reader.read_file(pfile)
    if read_samrc:
        seen = set()
        for folder in (cwd, Path(home)):
            rc = (folder / ".samrc")
            if rc.is_file() and rc.resolve() not in seen:
                seen.add(rc.resolve())
                reader.read_file(rc)
    _check_consistency(params)
    return params


def parse_param_text(text: str, name: str = "<text>", *, cwd: str | os.PathLike | None = None
                     ) -> SamParams:
    """Parse parameter-file text (no ``.samrc``, no environment): for tests and round trips."""
    params = SamParams()
    reader = _Reader(params, Path(cwd) if cwd is not None else Path.cwd())
    reader.read_text(text, name, Path(cwd) if cwd is not None else None)
    _check_consistency(params)
    return params


def _check_consistency(params: SamParams) -> None:
    segfiles = [m for m in params.markers if m.seg_file is not None]
    if segfiles and "DataSegment" in params.values:
        raise LamegValueError(
            f"{segfiles[0].origin}: SegFile markers cannot be combined with DataSegment "
            f"(set at {params.origins['DataSegment']}); remove one of them"
        )


def help_text() -> str:
    """The parameter table as text (for ``lameg-sam --help``)."""
    rows = []
    for s in PARAMETERS.values():
        flags = " ".join(x for x in (s.short, f"${s.env}" if s.env else None) if x)
        unit = f" [{s.unit}]" if s.unit else ""
        cl = "" if s.cmdline else " (file only)"
        rows.append(f"  {s.name:<18} {s.doc}{unit}{cl} {flags}".rstrip())
    return "\n".join(rows)
