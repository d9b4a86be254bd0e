"""Values of SAM parameters and how SAMsrcV5 parses their arguments.

Each ``p_*`` function takes the argument words of one parameter (without the keyword) and returns
the parsed value or raises ``ValueError`` with SAMsrcV5's reason. The rules are SAMsrcV5's
(``Libs/samutil``): numbers are C ``strtod``/``strtol`` numbers that must use the whole word
(``1e3``, ``.5``, ``inf`` and hexadecimal floats included; ``1_0`` or ``2Hz`` rejected), switches
take no argument and ignore any (so ``Notch FALSE`` switches the notch *on*), bands and windows
need their first value below the second, choice words may be abbreviated where SAMsrcV5 allows it
(``CovType``, ``Model``, ``ImageMetric``, ``TRUE``/``FALSE``) and must be exact where it compares
whole words (``FilterType FFT|IIR``, ``ImageFormat TLRC``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Marker", "MuSpec", "ModelSpec", "MetricSpec", "ImageFormatSpec", "strtod",
           "strtol"]


@dataclass(frozen=True)
class Marker:
    """One ``Marker`` or ``SegFile`` line.

    Parameters
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
        """The parameter-file line that defines this marker.

        Returns
        -------
        str
        """
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

    Parameters
    ----------
    mode : {'add', 'mul'}
        ``'add'`` (``Mu MU`` or ``Mu +MU``): MU in fT/sqrt(Hz); ``(MU*1e-15)**2 * bandwidth`` (T^2) is
        added to the covariance diagonal and to the noise. ``'mul'`` (``Mu *MU``): ``MU x noise
        floor`` is added to both, as SAMsrcV5's ``sam_wts`` does.
    value : float
        MU.
    """

    mode: str
    value: float

    def __str__(self) -> str:
        return ("+" if self.mode == "add" else "*") + _fmt(self.value)


@dataclass(frozen=True)
class ModelSpec:
    """Forward model ``Model SingleSphere x y z | MultiSphere | Nolte [N]``.

    Parameters
    ----------
    kind : {'SingleSphere', 'MultiSphere', 'Nolte'}
    origin_cm : (float, float, float) or None
        Sphere origin, cm (SingleSphere).
    order : int or None
        Nolte order (None: ``Order``, default 16).
    """

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

    Parameters
    ----------
    name : str
        ``Signal``, ``Power``, ``Hilbert``, ``Kurtosis``, ``RankVectorEntropy``, ...
    tau : float or None
        Time constant (RankVectorEntropy, ConditionalEntropy).
    advance : float or None
        Lag (MutualInfo, TransferEntropy, ConditionalEntropy).
    dims : int or None
        Embedding dimension.
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
    """``ImageFormat ORIG|TLRC [RES]``.

    Parameters
    ----------
    kind : {'ORIG', 'TLRC'}
    res_mm : float or None
        TLRC voxel size, mm.
    """

    kind: str
    res_mm: float | None = None

    def __str__(self) -> str:
        return self.kind if self.res_mm is None else f"{self.kind} {_fmt(self.res_mm)}"


# ----------------------------------------------------------------------------------------------
# Argument parsers (raise ValueError with a short message; the caller adds file and line)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# C-style numbers
# ----------------------------------------------------------------------------------------------

_DEC = re.compile(r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$")
_SPECIAL = re.compile(r"^\s*([+-]?)(inf|infinity|nan(\([0-9a-z_]*\))?)$", re.I)
_HEX = re.compile(r"^\s*[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?$")
_INT = re.compile(r"^\s*[+-]?\d+$")


def strtod(tok: str) -> float:
    """A C ``strtod`` number that uses the whole word.

    Parameters
    ----------
    tok : str

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``badly formed number``.
    """
    if _DEC.match(tok):
        return float(tok)
    m = _SPECIAL.match(tok)
    if m:
        return float(m.group(1) + ("nan" if m.group(2).lower().startswith("nan") else "inf"))
    if _HEX.match(tok):
        t = tok.strip()
        sign = -1.0 if t.startswith("-") else 1.0
        t = t.lstrip("+-")
        if "p" not in t.lower():
            t += "p0"
        return sign * float.fromhex(t)
    raise ValueError(f"badly formed number '{tok}'")


def strtol(tok: str) -> int:
    """A C ``strtol`` (base 10) integer that uses the whole word.

    Parameters
    ----------
    tok : str

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``badly formed number``.
    """
    if not _INT.match(tok):
        raise ValueError(f"badly formed number '{tok}'")
    v = int(tok)
    return max(min(v, 2**63 - 1), -(2**63))


def _fmt(v: Any) -> str:
    """A value as SAMsrcV5's ``%g`` writes it."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _need(args: Sequence[str], n: int, what: str) -> None:
    if len(args) < n or any(_is_option(a) for a in args[:n]):
        raise ValueError(f"requires {['an argument', 'two arguments', 'three arguments'][n - 1]}"
                         f" ({what})")


def _is_option(tok: str) -> bool:
    return len(tok) > 1 and tok[0] == "-" and (tok[1].isalpha() or tok[1] == "-")


def prefix_of(word: str, full: str) -> bool:
    """SAMsrcV5's ``strncasecmp(full, word, strlen(word)) == 0``.

    Parameters
    ----------
    word : str
        The word as written (possibly abbreviated).
    full : str
        The full keyword.

    Returns
    -------
    bool
        True when ``word`` is a case-insensitive prefix of ``full``.
    """
    return full.lower().startswith(word.lower())


def sum_flag(tok: str) -> bool:
    if prefix_of(tok, "TRUE"):
        return True
    if prefix_of(tok, "FALSE"):
        return False
    raise ValueError("SUMFLAG must be TRUE or FALSE")


# ----------------------------------------------------------------------------------------------
# Argument parsers
# ----------------------------------------------------------------------------------------------


def p_flag(args):
    """A switch: set by its keyword, arguments ignored (SAMsrcV5's ``boolfn``)."""
    return True


def p_str(args):
    _need(args, 1, "NAME")
    return args[0]


def p_int(args):
    _need(args, 1, "N")
    return strtol(args[0])


def p_float(args):
    _need(args, 1, "VALUE")
    return strtod(args[0])


def p_pair(args):
    _need(args, 2, "A B")
    return (strtod(args[0]), strtod(args[1]))


def p_triple(args):
    _need(args, 3, "X Y Z")
    return tuple(strtod(a) for a in args[:3])


def _ordered_pair(rejects, message):
    """Parser of two C numbers ``A B`` that raises ``message`` when ``rejects(A, B)``."""
    def parse(args):
        a, b = p_pair(args)
        if rejects(a, b):
            raise ValueError(message)
        return (a, b)

    return parse


def p_band(name):
    return _ordered_pair(lambda lo, hi: not lo < hi,
                         f"{name} lowpass frequency must be greater than highpass frequency")


def p_window(name):
    return _ordered_pair(lambda a, b: not a < b, f"{name} start time must be less than end time")


def p_bounds(axis):
    return _ordered_pair(lambda a, b: a > b, f"starting {axis}Bound must be <= ending {axis}Bound")


def p_filter_type(args):
    _need(args, 1, "FFT|IIR")
    if args[0] not in ("FFT", "IIR"):
        raise ValueError("FilterType must be either 'FFT' or 'IIR'")
    return args[0]


def p_prefix_choice(name, choices):
    """Parser of a keyword chosen among ``choices``, which may be abbreviated.

    Parameters
    ----------
    name : str
        Parameter name, used in messages.
    choices : tuple of str
        The full keywords, in matching order.

    Returns
    -------
    callable
        ``parse(args) -> str``: the first choice of which ``args[0]`` is a case-insensitive prefix;
        raises ValueError when none matches.
    """
    def parse(args):
        _need(args, 1, "|".join(choices))
        for c in choices:
            if prefix_of(args[0], c):
                return c
        raise ValueError(f"{name} must be {', '.join(choices[:-1])}, or {choices[-1]}")

    return parse


def p_prefix_length(args):
    _need(args, 1, "N or a delimiter character")
    try:
        return strtol(args[0])
    except ValueError:
        if len(args[0]) == 1:
            return args[0]
        raise ValueError(f"badly formed Prefix '{args[0]}'") from None


def p_mu(args):
    _need(args, 1, "[+|*]MU")
    tok, mode = args[0], "add"
    if tok[:1] == "*":
        mode, tok = "mul", tok[1:]
    elif tok[:1] == "+":
        tok = tok[1:]
    value = 0.0 if tok == "" else strtod(tok)
    return MuSpec(mode, value)


def _loose_float(tok: str) -> float:
    """C ``strtod(s, NULL)``: the longest leading number, 0 when there is none."""
    m = re.match(r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)", tok)
    return float(m.group(0)) if m else 0.0


def _loose_int(tok: str) -> int:
    m = re.match(r"^\s*[+-]?\d+", tok)
    return int(m.group(0)) if m else 0


def p_model(args):
    if not args:
        raise ValueError("Model must be SingleSphere x y z (cm), MultiSphere, or Nolte")
    kind = args[0]
    if prefix_of(kind, "SingleSphere"):
        if len(args) != 4:
            raise ValueError("improper sphere specification")
        return ModelSpec("SingleSphere", tuple(_loose_float(a) for a in args[1:4]))
    if prefix_of(kind, "MultiSphere"):
        return ModelSpec("MultiSphere")
    if prefix_of(kind, "Nolte"):
        order = int(_loose_float(args[1])) if len(args) >= 2 else None
        return ModelSpec("Nolte", order=order if order and order > 0 else None)
    raise ValueError("Model must be SingleSphere x y z (cm), MultiSphere, or Nolte")


_METRIC_ARGS = {"MutualInfo": 2, "RankVectorEntropy": 2, "TransferEntropy": 2,
                "ConditionalEntropy": 3}


def p_metric(args):
    if not args:
        raise ValueError("unknown image metric ''")
    word = args[0]
    order = ["Signal", "Moment", "Power", "Hilbert", "Kurtosis", "MutualInfo",
             "RankVectorEntropy", "SpectEntropy", "TransferEntropy", "ConditionalEntropy"]
    name = next((c for c in order if prefix_of(word, c)), None)
    if name is None:
        raise ValueError(f"unknown image metric '{word}'")
    if name == "Moment":
        name = "Signal"
    n = _METRIC_ARGS.get(name, 0)
    if n and len(args) != n + 1:
        raise ValueError(f"{word} takes {n} arguments")
    rest = args[1:]
    if name in ("MutualInfo", "TransferEntropy"):
        return MetricSpec(name, advance=_loose_float(rest[0]), dims=_loose_int(rest[1]))
    if name == "RankVectorEntropy":
        return MetricSpec(name, tau=_loose_float(rest[0]), dims=_loose_int(rest[1]))
    if name == "ConditionalEntropy":
        return MetricSpec(name, tau=_loose_float(rest[0]), advance=_loose_float(rest[1]),
                          dims=_loose_int(rest[2]))
    return MetricSpec(name)


def p_image_format(args):
    """``ORIG``/``ORTHO`` or ``TLRC RES`` (whole words, any case); no argument: not set."""
    if not args:
        return None
    kind = args[0]
    if kind.lower() == "tlrc":
        if len(args) != 2:
            raise ValueError("image resolution required for ImageFormat TLRC")
        return ImageFormatSpec("TLRC", strtod(args[1]))
    if kind.lower() in ("orig", "ortho"):
        return ImageFormatSpec(kind.upper() if kind.lower() == "orig" else "ORIG")
    raise ValueError("ImageFormat must be ORIG or TLRC")


def p_marker(args):
    if len(args) < 4:
        raise ValueError("missing arguments for Marker")
    name = args[0]
    try:
        t0 = strtod(args[1])
    except ValueError:
        raise ValueError("badly formed T0 for Marker") from None
    try:
        t1 = strtod(args[2])
    except ValueError:
        raise ValueError("badly formed T1 for Marker") from None
    flag = sum_flag(args[3])
    cov = args[4] if len(args) >= 5 else None  # further words are ignored (SAMsrcV5 5.1)
    return Marker(name, t0, t1, flag, cov or name)


def p_segfile(args):
    if len(args) < 3:
        raise ValueError("usage: SegFile markname filename sumflag")
    return Marker(args[0], None, None, sum_flag(args[2]), args[0], args[1])
