"""The table of SAM parameters and the parameters each SAMsrcV5 program registers.

Names, argument forms, single-dash flags and environment variables are those of SAMsrcV5 5.1
(its ``-h`` output and ``Libs/samutil``). A program only *uses* the parameters it registers
(``PROGRAM_PARAMETERS``); keys of other programs are accepted in files and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .param_types import (
    ImageFormatSpec,
    p_band,
    p_bounds,
    p_filter_type,
    p_flag,
    p_float,
    p_image_format,
    p_int,
    p_marker,
    p_metric,
    p_model,
    p_mu,
    p_prefix_choice,
    p_prefix_length,
    p_segfile,
    p_str,
    p_triple,
    p_window,
)

__all__ = ["ParamSpec", "PARAMETERS", "PROGRAM_PARAMETERS", "PROGRAMS", "lookup_key",
           "help_text", "SHORT_FLAGS", "ENV_VARS"]


@dataclass(frozen=True)
class ParamSpec:
    """One entry of the parameter table.

    Parameters
    ----------
    name : str
        Canonical name (as SAMsrcV5 spells it).
    parse : callable
        ``parse(args: list[str]) -> value``; raises ``ValueError`` with SAMsrcV5's reason.
    nargs : int or None
        Arguments used (None = variable); more are reported as extra arguments and ignored.
    unit : str
        Unit of the value as written ('' if dimensionless); see :meth:`SamParams.si`.
    short : str or None
        Single-dash flag (``-r``, ``-i_SAMdir``, ...).
    env : str or None
        Environment variable that sets it.
    default : Any
        SAMsrcV5's default (None = none).
    doc : str
        One-line description (SAMsrcV5's help text).
    arg_help : str
        The argument form shown by ``-h``.
    boolean : bool
        A switch (no argument).
    cmdline : bool
        Whether ``--Name`` is allowed on the command line (all are in SAMsrcV5 5.1).
    """

    name: str
    parse: Callable[[list[str]], Any]
    nargs: int | None = 1
    unit: str = ""
    short: str | None = None
    env: str | None = None
    default: Any = None
    doc: str = ""
    arg_help: str = ""
    boolean: bool = False
    cmdline: bool = True


def _b(name, doc, short=None):
    return ParamSpec(name, p_flag, 0, "", short, None, False, doc, "", True)


def _s(name, arg, doc, short=None, env=None, default=None):
    return ParamSpec(name, p_str, 1, "", short, env, default, doc, arg)


def _d(name, arg, doc, unit="", default=None, short=None):
    return ParamSpec(name, p_float, 1, unit, short, None, default, doc, arg)


def _i(name, arg, doc, default=None):
    return ParamSpec(name, p_int, 1, "", None, None, default, doc, arg)


def _w(name, parse, arg, doc, unit):
    return ParamSpec(name, parse, 2, unit, None, None, None, doc, arg)


PARAMETERS: dict[str, ParamSpec] = {s.name: s for s in [
    _b("help", "show this help", "-h"),
    _b("verbose", "verbose output", "-v"),
    _s("DataSet", "DSNAME", "MEG dataset name", "-r", "ds"),
    _s("PDFName", "PDFNAME", "MEG PDF file (4D only)", "-d", "pdf"),
    _s("param", "PFILE", "parameter file name (optionally ending in \".param\")", "-m", "param"),
    ParamSpec("%include", p_str, 1, doc="read another parameter file (after this one)",
              arg_help="FILE"),
    _s("InputSAMDirectory", "SAMDIR", "SAM root directory for input products", "-i_SAMdir"),
    _s("OutputSAMDirectory", "SAMDIR", "SAM root directory for output products", "-o_SAMdir"),
    _i("NumMarkers", "N", "number of markers (deprecated)"),
    ParamSpec("Marker", p_marker, None, "s", doc="marker name, time window relative to marker, "
              "SUM flag and optional covariance name",
              arg_help="MARKNAME T0 T1 SUMFLAG [COVNAME]"),
    ParamSpec("SegFile", p_segfile, None, doc="file containing 'trial T0 T1' lines for a "
              "segment", arg_help="MARKNAME FILE SUMFLAG"),
    _w("Baseline", p_window("Baseline window"), "T0 T1", "baseline time window relative to "
       "Marker", "s"),
    _w("DataSegment", p_window("DataSegment"), "T0 T1", "allows expanding time windows relative "
       "to all markers", "s"),
    _w("SignSegment", p_window("SignSegment"), "T0 T1", "polarity time window relative to "
       "Marker", "s"),
    _w("OutRange", p_window("OutRange"), "T0 T1", "output time range", "s"),
    ParamSpec("FilterType", p_filter_type, 1, default="FFT",
              doc="Fast Fourier (default) or Infinite Impulse Response", arg_help="FFT|IIR"),
    _w("CovBand", p_band("CovBand"), "LO HI", "covariance bandwidth limits in Hz", "Hz"),
    _w("ImageBand", p_band("ImageBand"), "LO HI", "imaging covariance bandwidth limits in Hz",
       "Hz"),
    _w("OrientBand", p_band("OrientBand"), "LO HI", "band to use for orientation instead of "
       "Global (Hz)", "Hz"),
    _w("NoiseBand", p_band("NoiseBand"), "LO HI", "bandwidth limits for estimating noise (Hz)",
       "Hz"),
    _w("SmoothBand", p_band("SmoothBand"), "LO HI", "used to smooth Hilbert envelope, kurtosis, "
       "or RVE (Hz)", "Hz"),
    _b("Notch", "apply a powerline notch (including harmonics)"),
    _d("Hz", "HZ", "frequency for powerline (Hz, default 60)", "Hz", 60.0),
    _w("XBounds", p_bounds("X"), "START END", "ROI X bounds in cm (positive is anterior)", "cm"),
    _w("YBounds", p_bounds("Y"), "START END", "ROI Y bounds in cm (positive is left)", "cm"),
    _w("ZBounds", p_bounds("Z"), "START END", "ROI Z bounds in cm (positive is superior)", "cm"),
    _d("ImageStep", "STEP", "image voxel size (cm)", "cm"),
    _s("TargetName", "TARGETFILE", "file containing target coordinates", "-t"),
    _s("ROIList", "ROILISTFILE", "file containing regions of interest"),
    _s("AtlasName", "ATLASFILE", "file containing target coordinates and orientations", "-A"),
    _s("XformName", "XFORMNAME", "Optional name root for transform file"),
    _s("Transform", "XFORM", "apply the transform in $ds/SAM/XFORM.xfm"),
    _s("MRIDirectory", "MRIDIR", "MRI directory root", "-i", "mridir", "mri"),
    _s("ImageDirectory", "IMAGEDIR", "image output directory", "-o", "imagedir"),
    _s("HullName", "HULL", "hull name, default 'hull.shape'", "-H", default="hull.shape"),
    _s("MRIPattern", "PATTERN", "MRI pathname pattern, default '%M/%P/%s'",
       default="%M/%P/%s"),
    ParamSpec("PrefixLength", p_prefix_length, 1, default="_",
              doc="DataSet prefix may be specified as a number or as a prefix delimiter "
              "(default \"_\")", arg_help="N"),
    _s("CovName", "NAME", "use this name for covariance file names", "-C"),
    _s("WtsName", "NAME", "use this name for weights file names", "-W"),
    _s("OutName", "NAME", "use this name instead of the parameter file name in output file "
       "names", "-N"),
    ParamSpec("ImageFormat", p_image_format, None, default=ImageFormatSpec("ORIG"),
              doc="original (default) or TLRC transform with RES (mm) sized voxels",
              arg_help="ORIG|TLRC RES"),
    _s("MaskName", "MASKFILE", "mask filename for TLRC transform"),
    _b("Normalize", "normalize the output", "-n"),
    _b("ZNormalize", "convert the output to z-scores", "-Z"),
    _b("Field", "output primary sensor forward solutions (along with weights)", "-B"),
    _b("Read_binary", "read binary instead of recomputing", "-b"),
    _b("Absolute", "take absolute value of voxels", "-a"),
    _b("AUC", "area under the curve mode", "-u"),
    _b("Unconstrained", "compute unconstrained moment vector", "-s"),
    _d("Extent", "DIST", "radial extent from ROI voxels or centroid (mm)", "mm"),
    ParamSpec("CovType", p_prefix_choice("CovType", ("GLOBAL", "SUM", "ALL")), 1,
              doc="which covariance matrix to use for the analysis",
              arg_help="GLOBAL|SUM|ALL"),
    ParamSpec("Mu", p_mu, 1, short="-u", doc="regularization adds a constant (+) or scaled (*) "
              "noise to the diagonal of the covariance matrix", arg_help="[+|*]MU"),
    ParamSpec("Model", p_model, None, doc="forward solution type",
              arg_help="SingleSphere x y z|MultiSphere|Nolte [ORDER]"),
    ParamSpec("ImageMetric", p_metric, None, doc="imaging metric", arg_help="METRICSPEC"),
    _b("doMultiSphere", "set Model to MultiSphere"),
    _b("doNolte", "set Model to Nolte"),
    _i("Order", "ORDER", "spherical harmonic order for Nolte solution", 16),
    _i("Pinv", "NDIM", "use a pseudo-inverse that removes the smallest NDIM dimensions"),
    _d("TimeStep", "STEP", "time step", "s"),
    _d("TimeInt", "TIME", "integration time", "s"),
    _d("BoxWidth", "TIME", "time window for boxcar smoothing", "s"),
    ParamSpec("RemoveBaseline", p_prefix_choice("RemoveBaseline", ("NONE", "BYVOXEL", "GLOBAL")),
              1, default="NONE", doc="baseline removal method", arg_help="NONE|BYVOXEL|GLOBAL"),
    _s("BlockName", "MARKNAME", "epoch marker name"),
    _d("Threshold", "THRESH", "image threshold", short="-t"),
    _d("SearchRadius", "RADIUS", "search radius in cm", "cm", short="-s"),
    _i("NumMaxima", "N", "number of maxima to list (default 10)"),
    _b("ShowPower", "whether to list power value", "-p"),
    _i("NumVerts", "NVERT", "number of vertices to use per pass"),
    _d("MinZ", "Z", "only consider vertices above this z-axis cutoff (cm)", "cm"),
    _d("MinSpan", "SPAN", "minimum eigenvalue span"),
    _d("MaxAngle", "ANGLE", "maximum angular error (rad)", "rad"),
    _d("MaxDot", "THRESH", "threshold to remove vertices with near-radial normals (0..1)"),
    _d("MinSNR", "SNR", "minimum signal/noise ratio"),
    _b("ShowPasses", "output scatterplot files", "-p"),
    _d("DeltaTranslate", "TRANS", "line-search & partial derivative translation delta (mm)",
       "mm"),
    _d("DeltaRotate", "ANGLE", "line-search & partial derivative rotation delta (degrees)",
       "deg"),
    _d("InitDisplacement", "TRANS", "initial translation step-size (mm/mrad)", "mm"),
    _d("EndDisplacement", "TRANS", "ending translation step-size (mm/mrad)", "mm"),
    ParamSpec("Offset", p_triple, 3, "mm", "-o", doc="optional translation offset for testing "
              "convergence (mm)", arg_help="x y z"),
    _d("Damping", "DAMPING", "sequential line-search damping factor"),
    _i("LineSteps", "NSTEP", "sequential line-search steps (+/-)"),
]}

_STD = ("help", "DataSet", "InputSAMDirectory", "OutputSAMDirectory", "param", "verbose",
        "%include")

#: Parameters each program registers, in SAMsrcV5's order (its ``-h`` lists them so).
PROGRAM_PARAMETERS: dict[str, tuple[str, ...]] = {
    "cov": _STD + ("Marker", "SegFile", "CovBand", "ImageBand", "NoiseBand", "OrientBand",
                   "FilterType", "DataSegment", "Notch", "Hz", "Pinv", "OutName", "CovName"),
    "wts": _STD + ("Marker", "SegFile", "CovBand", "NoiseBand", "Mu", "XBounds", "YBounds",
                   "ZBounds", "ImageStep", "MRIDirectory", "MRIPattern", "PrefixLength",
                   "HullName", "Normalize", "Field", "Pinv", "Model", "Order", "doMultiSphere",
                   "doNolte", "AtlasName", "TargetName", "ImageFormat", "Extent", "Transform",
                   "CovName", "WtsName", "OutName"),
    "3d": _STD + ("Marker", "SegFile", "CovType", "CovBand", "ImageBand", "NoiseBand",
                  "FilterType", "Notch", "Hz", "AtlasName", "ImageFormat", "ImageMetric",
                  "ImageDirectory", "PrefixLength", "CovName", "WtsName", "OutName"),
    "4d": _STD + ("Marker", "DataSegment", "SignSegment", "Baseline", "CovType", "CovBand",
                  "ImageBand", "SmoothBand", "NoiseBand", "TimeStep", "BoxWidth", "FilterType",
                  "Notch", "Hz", "AtlasName", "ImageFormat", "ImageMetric", "ImageDirectory",
                  "PrefixLength", "CovName", "WtsName", "OutName"),
    "ers": _STD + ("Marker", "Baseline", "DataSegment", "SignSegment", "CovType", "CovBand",
                   "ImageBand", "SmoothBand", "TimeStep", "FilterType", "Notch", "Hz",
                   "ImageFormat", "ImageMetric", "ImageDirectory", "PrefixLength", "Absolute",
                   "CovName", "WtsName", "OutName"),
    "power": _STD + ("Marker", "SegFile", "CovType", "CovBand", "ImageBand", "SmoothBand",
                     "FilterType", "Notch", "Hz", "AtlasName", "ImageFormat", "ImageMetric",
                     "TimeStep", "RemoveBaseline", "ImageDirectory", "PrefixLength", "WtsName",
                     "OutName"),
    "epi": _STD + ("CovType", "CovBand", "ImageBand", "Notch", "Hz", "TimeInt",
                   "ImageDirectory", "MRIDirectory", "MRIPattern", "PrefixLength",
                   "ImageMetric", "WtsName", "OutName"),
}
PROGRAMS = tuple(PROGRAM_PARAMETERS)

#: Metrics each imaging program accepts (SAMsrcV5 5.1).
PROGRAM_METRICS = {"3d": ("Power",), "4d": ("Signal", "Power", "RankVectorEntropy"),
                   "ers": ("Signal", "Power"), "power": ("Hilbert",), "epi": ("Kurtosis",)}

SHORT_FLAGS = {s.short: s.name for s in PARAMETERS.values() if s.short}
ENV_VARS = {s.env: s.name for s in PARAMETERS.values() if s.env}


def lookup_key(given: str, registered=None) -> str:
    """Resolve a keyword as SAMsrcV5 does: a case-insensitive prefix of a parameter name.

    ``Marker...`` always means ``Marker`` and ``SegFile...`` ``SegFile``.

    Parameters
    ----------
    given : str
        The keyword as written.
    registered : iterable of str, optional
        Candidate names (default: the whole table).

    Returns
    -------
    str
        The canonical name.

    Raises
    ------
    KeyError
        ``('unknown', key)`` when no candidate matches, ``('ambiguous', key, hits)`` when several
        do.
    """
    g = given.lower()
    if g.startswith("marker"):
        g = "marker"
    elif g.startswith("segfile"):
        g = "segfile"
    names = PARAMETERS if registered is None else registered
    hits = [n for n in names if n.lower().startswith(g)]
    if len(hits) == 1 and g:
        return hits[0]
    if hits and g:
        raise KeyError("ambiguous", given, hits)
    raise KeyError("unknown", given)


def help_text(program: str | None = None) -> str:
    """The ``-h`` text of a program (its registered parameters), or of the whole table.

    Parameters
    ----------
    program : str, optional
        ``'cov'``, ``'wts'``, ...; None for every parameter.

    Returns
    -------
    str
    """
    names = PROGRAM_PARAMETERS.get(program, tuple(PARAMETERS)) if program else tuple(PARAMETERS)
    rows = []
    for n in names:
        s = PARAMETERS[n]
        if n.startswith("%"):
            continue
        arg = f" {s.arg_help}" if s.arg_help else ""
        if s.short:
            head = f"{s.short}{arg}, --{n}{arg}"
        else:
            head = f"--{n}{arg}"
        env = f" [env_var = {s.env}]" if s.env else ""
        if len(head) >= 25:
            rows.append(f"    {head}\n{'':29}{s.doc}{env}")
        else:
            rows.append(f"    {head:<25}{s.doc}{env}")
    return "\n".join(rows)
