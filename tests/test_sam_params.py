"""The SAM parameter reader: SAMsrcV5's rules, checked without the real programs (the
differential test against them is ``test_sam_param_reference.py``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lameg.exceptions import LamegError, LamegFileNotFoundError, LamegFormatError, LamegValueError
from lameg.sam import parse_param_text, read_params
from lameg.sam.param_table import PARAMETERS, PROGRAM_PARAMETERS, help_text, lookup_key
from lameg.sam.param_types import ImageFormatSpec, MetricSpec, ModelSpec, MuSpec, strtod, strtol


@pytest.mark.parametrize("tok,value", [
    ("2", 2.0), ("-0.05", -0.05), (".5", 0.5), ("1e3", 1000.0), ("+3", 3.0), ("0x10", 16.0),
    ("0x1p-2", 0.25), ("inf", float("inf")),
])
def test_strtod_accepts_c_numbers(tok, value):
    assert strtod(tok) == value


@pytest.mark.parametrize("tok", ["", "1_0", "2Hz", "1e", "x", "1.2.3", "--1"])
def test_strtod_rejects(tok):
    with pytest.raises(ValueError, match="badly formed number"):
        strtod(tok)


def test_strtol():
    assert strtol("-7") == -7
    for bad in ("5.5", "1_0", "0x10", ""):
        with pytest.raises(ValueError):
            strtol(bad)


@pytest.mark.parametrize("line,key,value", [
    ("CovBand 2 40", "CovBand", (2.0, 40.0)),
    ("Notch", "Notch", True),
    ("Notch FALSE", "Notch", True),  # SAMsrcV5's switches ignore their argument
    ("Mu 5", "Mu", MuSpec("add", 5.0)),
    ("Mu *0.1", "Mu", MuSpec("mul", 0.1)),
    ("Mu -2", "Mu", MuSpec("add", -2.0)),
    ("Model Nol 12", "Model", ModelSpec("Nolte", order=12)),
    ("Model Nolte", "Model", ModelSpec("Nolte")),
    ("Model s 1 2 x", "Model", ModelSpec("SingleSphere", (1.0, 2.0, 0.0))),
    ("ImageMetric p", "ImageMetric", MetricSpec("Power")),
    ("ImageMetric M", "ImageMetric", MetricSpec("Signal")),
    ("ImageMetric RankVectorEntropy 2 4", "ImageMetric",
     MetricSpec("RankVectorEntropy", tau=2.0, dims=4)),
    ("ImageFormat TLRC 5", "ImageFormat", ImageFormatSpec("TLRC", 5.0)),
    ("CovType s", "CovType", "SUM"),
    ("PrefixLength 4", "PrefixLength", 4),
    ("PrefixLength -", "PrefixLength", "-"),
    ("FilterType IIR", "FilterType", "IIR"),
])
def test_values(line, key, value):
    assert parse_param_text(line)[key] == value


@pytest.mark.parametrize("line,message", [
    ("CovBand 40 2", "CovBand lowpass frequency must be greater"),
    ("CovBand 2", "requires two arguments"),
    ("Hz 5x", "badly formed number '5x'"),
    ("FilterType fft", "FilterType must be either 'FFT' or 'IIR'"),
    ("Model Sphere", "Model must be SingleSphere"),
    ("Model SingleSphere 0 0", "improper sphere specification"),
    ("ImageMetric Foo", "unknown image metric 'Foo'"),
    ("ImageMetric RankVectorEntropy 1", "takes 2 arguments"),
    ("ImageFormat TLRC", "image resolution required"),
    ("ImageFormat MNI", "ImageFormat must be ORIG or TLRC"),
    ("Marker r0 0 0.1", "missing arguments"),
    ("Marker r0 0 0.1 MAYBE", "SUMFLAG must be TRUE or FALSE"),
    ("SegFile r0 segs.txt", "usage: SegFile"),
    ("PrefixLength ab", "badly formed Prefix 'ab'"),
    ("XBounds 5 -5", "starting XBound must be <= ending XBound"),
    ("DataSegment 0.2 0.1", "DataSegment start time must be less than end time"),
    ("Foo 1", "unknown parameter 'Foo'"),
    ("PropMu 1", "unknown parameter 'PropMu'"),
    ("Surface pial", "unknown parameter 'Surface'"),
    ("C 1", "ambiguous parameter 'C'"),
])
def test_invalid_values_name_the_line(line, message):
    with pytest.raises(LamegValueError, match=re.escape(message)) as e:
        parse_param_text("# first\n" + line, "x.param")
    assert str(e.value).startswith("x.param:2:")


def test_abbreviations_follow_the_program():
    # 'Or' is OrientBand for sam_cov; in sam_3d (no OrientBand, no Order) it matches two
    # parameters of the table: unknown. A full name of another program is ignored.
    assert parse_param_text("Or 4 30", program="cov")["OrientBand"] == (4.0, 30.0)
    with pytest.raises(LamegValueError, match="unknown parameter 'Or'"):
        parse_param_text("Or 4 30", program="3d")
    assert "OrientBand" not in parse_param_text("OrientBand 4 30", program="3d")
    # 'Time' is TimeStep in sam_4d (which registers no TimeInt) but ambiguous in the whole table
    assert parse_param_text("Time 0.01", program="4d")["TimeStep"] == 0.01
    with pytest.raises(LamegValueError, match="ambiguous"):
        parse_param_text("Time 0.01")
    # an unused key of another program is ignored, its value unchecked
    assert len(parse_param_text("ImageStep abc", program="cov")) == 0
    assert lookup_key("covb") == "CovBand" and lookup_key("Marker12") == "Marker"
    with pytest.raises(KeyError):
        lookup_key("Zzz")


def test_markers_in_order_and_first_setting_wins():
    p = parse_param_text("CovBand 2 40\nCovBand 3 30\nMarker a 0 1 TRUE\nmarker3 b -1 0 f c\n"
                         "SegFile s f.txt TRUE extra\n")
    assert p["CovBand"] == (2.0, 40.0)
    assert [(m.name, m.cov_name, m.in_sum, m.seg_file) for m in p.markers] == [
        ("a", "a", True, None), ("b", "c", False, None), ("s", "s", True, "f.txt")]


def test_includes_after_the_file_from_the_working_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.param").write_text("%include sub/a\nCovBand 2 40\n")
    (tmp_path / "sub" / "a.param").write_text("CovBand 3 30\nHz 50\n%include b\n")
    (tmp_path / "b.param").write_text("Hz 55\nPinv 2\n")  # relative to the working directory
    p = read_params("main", (), {}, program="cov", cwd=tmp_path, home=tmp_path)
    assert p["CovBand"] == (2.0, 40.0) and p["Hz"] == 50.0 and p["Pinv"] == 2
    assert [f.name for f in p.files] == ["main.param", "a.param", "b.param"]
    (tmp_path / "b.param").write_text("%include main\n")
    with pytest.raises(LamegFormatError, match="%include cycle"):
        read_params("main", (), {}, program="cov", cwd=tmp_path, home=tmp_path)
    with pytest.raises(LamegFileNotFoundError, match="file not found: nothere"):
        parse_param_text("%include nothere", cwd=tmp_path)


def test_rc_files_order_and_their_includes_ignored(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "p.param").write_text("CovBand 2 40\n")
    (tmp_path / ".samrc").write_text("Hz 50\n%include x\n")
    (tmp_path / ".coregrc").write_text("Hz 51\nPinv 3\n")
    (home / ".samrc").write_text("Pinv 4\nOrientBand 4 30\n")
    (tmp_path / "x.param").write_text("NoiseBand 60 120\n")
    p = read_params("p", (), {}, program="cov", cwd=tmp_path, home=home)
    assert p["Hz"] == 50.0 and p["Pinv"] == 3 and p["OrientBand"] == (4.0, 30.0)
    assert "NoiseBand" not in p


def test_command_line_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.param").write_text("CovBand 2 40\nHz 50\n")
    (tmp_path / "d.ds").mkdir()
    p = read_params(None, ["-m", "p", "--hz", "55", "-N", "out", "stray", "-i_SAMdir", "in"],
                    {"ds": "d"}, program="cov", cwd=tmp_path, home=tmp_path)
    assert p["Hz"] == 55.0 and p["OutName"] == "out" and p["DataSet"] == "d"
    assert p["InputSAMDirectory"] == "in" and p.param_name == "p"
    assert "DataSet d.ds" in p.log_lines()  # SAMsrcV5 logs the dataset with .ds
    for argv, msg in [(["--ImageStep", "1"], 'parameter "ImageStep" is not valid'),
                      (["-q"], 'unknown option "-q"'), (["--Hz"], "--Hz requires an argument"),
                      (["--CovBand", "2", "--Notch"], "requires two arguments")]:
        with pytest.raises(LamegValueError, match=re.escape(msg)):
            read_params(None, argv, {}, program="cov", cwd=tmp_path, home=tmp_path)
    q = read_params(None, ["--CovBand", "2", "40", "--Marker", "stim", "-0.1", "0", "TRUE"], {},
                    program="cov", cwd=tmp_path, home=tmp_path)
    assert q.param_name is None and q.markers[0].t0 == -0.1


def test_help_lists_the_program_parameters():
    h = help_text("cov")
    assert "--CovBand LO HI" in h and "-i_SAMdir SAMDIR, --InputSAMDirectory SAMDIR" in h
    assert "ImageStep" not in h
    assert set(PROGRAM_PARAMETERS["cov"]) <= set(PARAMETERS)


_WORDS = st.sampled_from(
    ["CovBand", "covb", "Marker", "Marker3", "SegFile", "Notch", "Mu", "Model", "ImageMetric",
     "%include", "#", "TRUE", "FALSE", "Nolte", "SingleSphere", "RankVectorEntropy", "*", "+",
     "-1", "0", "3.5", "1e400", "nan", "x", "Min", "Image", "ImageFormat", "TLRC", "DataSegment",
     "PrefixLength", "Hz", "Pinv", "", "\t"])
_LINE = st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE, max_size=8))
def test_random_text_never_crashes(tmp_path_factory, lines):
    """Random text gives values or a lameg error naming the line, never a traceback; what
    parses re-reads from its log lines to the same values."""
    folder = tmp_path_factory.mktemp("prop")
    text = "\n".join(lines)
    try:
        p = parse_param_text(text, "r.param", cwd=folder)
    except LamegError as e:
        assert re.match(r"r\.param:\d+: ", str(e)) or "file not found" in str(e), str(e)
    else:
        q = parse_param_text("\n".join(p.log_lines()), cwd=folder)
        assert q.values.keys() == p.values.keys()
