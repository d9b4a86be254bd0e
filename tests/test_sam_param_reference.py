"""The SAM parameter reader against the real SAMsrcV5 5.1 parser (``pip install samsrc``).

Every case writes a parameter file (plus include, ``.samrc``/``.coregrc`` or SegFile files), runs
the real program on a copy of the real CTF dataset, and checks that lameg's
:func:`lameg.sam.read_params` for the same program accepts or rejects it the same way and -- for
sam_cov, which logs the parameters it used in ``SAM/sam_cov.param`` -- reaches the same effective
values (the logged lines, compared as lameg writes them with ``SamParams.log_lines``).

SAMsrcV5 reports an unknown or ambiguous parameter by printing its help and exiting with status 0;
such runs count as rejections. Its known defects are not run: an ``%include`` cycle (it loops
forever; lameg raises an error) -- checked on lameg's side only.
"""

from __future__ import annotations

import os

import pytest
from sam_reference import have_samsrc, real_dataset

from lameg.exceptions import LamegError
from lameg.sam import read_params

pytestmark = pytest.mark.skipif(not have_samsrc(), reason="SAMsrcV5 (samsrc) or the CTF data "
                                "are not available")

B = "CovBand 2 40\n"
M = "Marker stim -0.05 0.2 TRUE\n"

# (id, program, parameter text, extra argv, environment, extra files {name: text})
CASES = [
    # --- plain values and formatting
    ("base", "cov", B + M, [], {}, {}),
    ("no-markers", "cov", B, [], {}, {}),
    ("comment-lines", "cov", "# a comment\n   # indented\n\n" + B + M, [], {}, {}),
    ("trailing-comment", "cov", "CovBand 2 40 # band\n" + M, [], {}, {}),
    ("tabs", "cov", "CovBand\t2\t40\n" + M, [], {}, {}),
    ("sci-notation", "cov", "CovBand 2e0 4.0e1\n" + M, [], {}, {}),
    ("leading-dot", "cov", "CovBand 2 40\nHz .5e2\n" + M, [], {}, {}),
    ("hz", "cov", B + "Hz 50\n" + M, [], {}, {}),
    ("hz-bad", "cov", B + "Hz fifty\n" + M, [], {}, {}),
    ("hz-unit-suffix", "cov", B + "Hz 50Hz\n" + M, [], {}, {}),
    ("hz-underscore", "cov", B + "Hz 5_0\n" + M, [], {}, {}),
    ("hz-missing", "cov", B + "Hz\n" + M, [], {}, {}),
    ("band-reversed", "cov", "CovBand 40 2\n" + M, [], {}, {}),
    ("band-equal", "cov", "CovBand 10 10\n" + M, [], {}, {}),
    ("band-one-value", "cov", "CovBand 2\n" + M, [], {}, {}),
    ("band-extra-args", "cov", "CovBand 2 40 60\n" + M, [], {}, {}),
    ("band-bad-number", "cov", "CovBand 2 4x\n" + M, [], {}, {}),
    ("orient-band", "cov", B + "OrientBand 4 30\n" + M, [], {}, {}),
    ("orient-reversed", "cov", B + "OrientBand 30 4\n" + M, [], {}, {}),
    ("noise-band", "cov", B + "NoiseBand 60 120\n" + M, [], {}, {}),
    ("image-band", "cov", B + "ImageBand 4 30\n" + M, [], {}, {}),
    ("filter-iir", "cov", B + "FilterType IIR\n" + M, [], {}, {}),
    ("filter-lowercase", "cov", B + "FilterType fft\n" + M, [], {}, {}),
    ("filter-unknown", "cov", B + "FilterType FIR\n" + M, [], {}, {}),
    ("pinv", "cov", B + "Pinv 5\n" + M, [], {}, {}),
    ("pinv-float", "cov", B + "Pinv 5.5\n" + M, [], {}, {}),
    ("datasegment", "cov", B + "DataSegment -0.04 0.1\n" + M, [], {}, {}),
    ("datasegment-reversed", "cov", B + "DataSegment 0.1 -0.04\n" + M, [], {}, {}),
    # --- switches
    ("notch", "cov", B + "Notch\n" + M, [], {}, {}),
    ("notch-false", "cov", B + "Notch FALSE\n" + M, [], {}, {}),
    ("notch-zero", "cov", B + "Notch 0\n" + M, [], {}, {}),
    ("notch-cmdline", "cov", B + M, ["--Notch"], {}, {}),
    ("verbose-flag", "cov", B + M, ["-v"], {}, {}),
    # --- keyword matching
    ("lowercase-key", "cov", "covband 2 40\n" + M, [], {}, {}),
    ("upper-key", "cov", "COVBAND 2 40\n" + M, [], {}, {}),
    ("abbrev-cov", "cov", "CovB 2 40\n" + M, [], {}, {}),
    ("abbrev-or", "cov", B + "Or 4 30\n" + M, [], {}, {}),
    ("abbrev-no", "cov", B + "No 60 120\n" + M, [], {}, {}),
    ("abbrev-notc", "cov", B + "Notc\n" + M, [], {}, {}),
    ("abbrev-c-ambiguous", "cov", "C 2 40\n" + M, [], {}, {}),
    ("abbrev-h-ambiguous", "cov", B + "H 50\n" + M, [], {}, {}),
    ("abbrev-d", "cov", B + "D -0.04 0.1\n" + M, [], {}, {}),
    ("abbrev-fi", "cov", B + "Fi IIR\n" + M, [], {}, {}),
    ("abbrev-p-ambiguous", "cov", B + "P 3\n" + M, [], {}, {}),
    ("abbrev-pi", "cov", B + "Pi 3\n" + M, [], {}, {}),
    ("key-too-long", "cov", B + "Hzz 50\n" + M, [], {}, {}),
    ("unknown-key", "cov", B + "Foo 1\n" + M, [], {}, {}),
    ("unknown-propmu", "cov", B + "PropMu 1\n" + M, [], {}, {}),
    ("unknown-surface", "cov", B + "Surface pial\n" + M, [], {}, {}),
    ("other-program-key", "cov", B + "ImageStep 0.5\n" + M, [], {}, {}),
    ("other-program-bad-value", "cov", B + "ImageStep abc\n" + M, [], {}, {}),
    ("other-program-abbrev", "cov", B + "XB -5 5\n" + M, [], {}, {}),
    ("other-program-ambiguous", "cov", B + "X 1\n" + M, [], {}, {}),
    ("other-tlrc", "cov", B + "ImageFormat TLRC 5\n" + M, [], {}, {}),
    ("other-field", "cov", B + "Field\n" + M, [], {}, {}),
    ("other-xformname", "cov", B + "XformName xf\n" + M, [], {}, {}),
    ("other-pdfname", "cov", B + "PDFName c,rfhp0.1Hz\n" + M, [], {}, {}),
    ("other-model", "cov", B + "Model Nolte\n" + M, [], {}, {}),
    ("nummarkers", "cov", B + "NumMarkers 1\n" + M, [], {}, {}),
    ("first-setting-wins", "cov", "CovBand 2 40\nCovBand 3 30\n" + M, [], {}, {}),
    # --- markers
    ("marker-cov-name", "cov", B + "Marker stim -0.05 0.2 TRUE early\n", [], {}, {}),
    ("marker-false", "cov", B + "Marker stim -0.05 0.2 FALSE\n", [], {}, {}),
    ("marker-flag-prefix", "cov", B + "Marker stim -0.05 0.2 t\n", [], {}, {}),
    ("marker-flag-lower", "cov", B + "Marker stim -0.05 0.2 false\n", [], {}, {}),
    ("marker-flag-bad", "cov", B + "Marker stim -0.05 0.2 YES\n", [], {}, {}),
    ("marker-numbered", "cov", B + "Marker1 stim -0.05 0.2 TRUE\n", [], {}, {}),
    ("marker-lowercase", "cov", B + "marker stim -0.05 0.2 TRUE\n", [], {}, {}),
    ("marker-two", "cov", B + M + "Marker late -0.05 0.1 FALSE after\n", [], {}, {}),
    ("marker-missing-arg", "cov", B + "Marker stim -0.05 0.2\n", [], {}, {}),
    ("marker-bad-t0", "cov", B + "Marker stim x 0.2 TRUE\n", [], {}, {}),
    ("marker-extra-args", "cov", B + "Marker stim -0.05 0.2 TRUE a b\n", [], {}, {}),
    ("marker-unknown-name", "cov", B + "Marker nope -0.05 0.2 TRUE\n", [], {}, {}),
    ("segfile", "cov", B + "SegFile burst segs.txt TRUE\n", [], {},
     {"DS/segs.txt": "0 -0.04 0.1\n1 0.0 0.2\n"}),
    ("segfile-missing-flag", "cov", B + "SegFile burst segs.txt\n", [], {},
     {"DS/segs.txt": "0 -0.04 0.1\n"}),
    ("segfile-extra", "cov", B + "SegFile burst segs.txt TRUE x\n", [], {},
     {"DS/segs.txt": "0 -0.04 0.1\n"}),
    # --- includes
    ("include-after-file", "cov", "%include inc\nCovBand 2 40\n" + M, [], {},
     {"inc.param": "CovBand 3 30\nHz 50\n"}),
    ("include-fills", "cov", "%include inc\n" + M, [], {}, {"inc.param": "CovBand 3 30\n"}),
    ("include-with-suffix", "cov", "%include inc.param\n" + M, [], {},
     {"inc.param": "CovBand 3 30\n"}),
    ("include-missing", "cov", B + "%include nothere\n" + M, [], {}, {}),
    ("include-nested", "cov", "%include a\n" + M, [], {},
     {"a.param": "%include b\nHz 50\n", "b.param": "CovBand 3 30\nHz 55\n"}),
    ("include-relative-cwd", "cov", "%include sub/inc\n" + M, [], {},
     {"sub/inc.param": "CovBand 3 30\n"}),
    ("include-markers-order", "cov", "%include mk\n" + B + "Marker late -0.05 0.1 FALSE\n", [],
     {}, {"mk.param": M}),
    ("include-no-arg", "cov", B + "%include\n" + M, [], {}, {}),
    # --- .samrc / .coregrc
    ("samrc", "cov", M, [], {}, {".samrc": "CovBand 3 30\n"}),
    ("samrc-lower-precedence", "cov", B + M, [], {}, {".samrc": "CovBand 3 30\nHz 50\n"}),
    ("samrc-include-ignored", "cov", B + M, [], {}, {".samrc": "%include inc\n",
                                                      "inc.param": "Hz 50\n"}),
    ("coregrc", "cov", B + M, [], {}, {".coregrc": "Hz 50\n"}),
    ("samrc-before-coregrc", "cov", B + M, [], {}, {".samrc": "Hz 50\n", ".coregrc": "Hz 55\n"}),
    ("home-samrc", "cov", B + M, [], {}, {"HOME/.samrc": "Hz 50\n"}),
    ("cwd-samrc-before-home", "cov", B + M, [], {}, {".samrc": "Hz 50\n",
                                                      "HOME/.samrc": "Hz 55\n"}),
    ("samrc-unknown-key", "cov", B + M, [], {}, {".samrc": "Foo 1\n"}),
    # --- command line and environment
    ("cmdline-overrides", "cov", B + M, ["--CovBand", "3", "30"], {}, {}),
    ("cmdline-abbrev", "cov", B + M, ["--CovB", "3", "30"], {}, {}),
    ("cmdline-lower", "cov", B + M, ["--covband", "3", "30"], {}, {}),
    ("cmdline-hz", "cov", B + M, ["--Hz", "50"], {}, {}),
    ("cmdline-missing-arg", "cov", B + M, ["--Hz"], {}, {}),
    ("cmdline-unregistered", "cov", B + M, ["--ImageStep", "1"], {}, {}),
    ("cmdline-unknown", "cov", B + M, ["--Foo", "1"], {}, {}),
    ("cmdline-unknown-flag", "cov", B + M, ["-q"], {}, {}),
    ("cmdline-outname", "cov", B + M, ["-N", "other"], {}, {}),
    ("cmdline-covname", "cov", B + M, ["-C", "other"], {}, {}),
    ("cmdline-outname-long", "cov", B + M, ["--OutName", "other"], {}, {}),
    ("cmdline-stray-word", "cov", B + M, ["stray"], {}, {}),
    ("cmdline-marker", "cov", B, ["--Marker", "stim", "-0.05", "0.2", "TRUE"], {}, {}),
    ("cmdline-negative-value", "cov", B + M, ["--DataSegment", "-0.04", "0.1"], {}, {}),
    ("env-ds", "cov", B + M, [], {"ds": "DS"}, {}),
    ("env-param", "cov", B + M, [], {"param": "p"}, {}),
    ("param-without-suffix", "cov", B + M, [], {}, {}),
    # --- other programs: accepted or rejected by their parser
    ("wts-mu-add", "wts", B + M + "Mu 5\n", [], {}, {}),
    ("wts-mu-mul", "wts", B + M + "Mu *0.1\n", [], {}, {}),
    ("wts-mu-plus", "wts", B + M + "Mu +2\n", [], {}, {}),
    ("wts-mu-bad", "wts", B + M + "Mu x\n", [], {}, {}),
    ("wts-mu-negative", "wts", B + M + "Mu -1\n", [], {}, {}),
    ("wts-model-single", "wts", B + M + "Model SingleSphere 0 0 4\n", [], {}, {}),
    ("wts-model-single-short", "wts", B + M + "Model SingleSphere 0 0\n", [], {}, {}),
    ("wts-model-abbrev", "wts", B + M + "Model Nol 12\n", [], {}, {}),
    ("wts-model-bad", "wts", B + M + "Model Sphere\n", [], {}, {}),
    ("wts-bounds-reversed", "wts", B + M + "XBounds 5 -5\n", [], {}, {}),
    ("wts-image-format-tlrc", "wts", B + M + "ImageFormat TLRC 5\n", [], {}, {}),
    ("wts-image-format-no-res", "wts", B + M + "ImageFormat TLRC\n", [], {}, {}),
    ("wts-image-format-bad", "wts", B + M + "ImageFormat MNI\n", [], {}, {}),
    ("wts-prefix-number", "wts", B + M + "PrefixLength 4\n", [], {}, {}),
    ("wts-prefix-char", "wts", B + M + "PrefixLength -\n", [], {}, {}),
    ("wts-prefix-bad", "wts", B + M + "PrefixLength ab\n", [], {}, {}),
    ("wts-unknown-propmu", "wts", B + M + "PropMu 0.1\n", [], {}, {}),
    ("wts-unknown-surface", "wts", B + M + "Surface pial\n", [], {}, {}),
    ("wts-abbrev-m-ambiguous", "wts", B + M + "M 1\n", [], {}, {}),
    ("3d-covtype-prefix", "3d", B + M + "CovType g\n", [], {}, {}),
    ("3d-covtype-bad", "3d", B + M + "CovType NONE\n", [], {}, {}),
    ("3d-metric-power", "3d", B + M + "ImageMetric Power\n", [], {}, {}),
    ("3d-metric-abbrev", "3d", B + M + "ImageMetric p\n", [], {}, {}),
    ("3d-metric-bad", "3d", B + M + "ImageMetric Foo\n", [], {}, {}),
    ("3d-metric-rve-args", "3d", B + M + "ImageMetric RankVectorEntropy 1\n", [], {}, {}),
    ("3d-abbrev-imagem", "3d", B + M + "ImageM Power\n", [], {}, {}),
    ("3d-abbrev-image-ambiguous", "3d", B + M + "Image Power\n", [], {}, {}),
    ("4d-abbrev-time", "4d", B + M + "Time 0.01\n", [], {}, {}),
    ("4d-abbrev-t-ambiguous", "4d", B + M + "T 0.01\n", [], {}, {}),
    ("4d-boxwidth", "4d", B + M + "BoxWidth 0.02\n", [], {}, {}),
    ("4d-baseline-reversed", "4d", B + M + "Baseline 0 -0.1\n", [], {}, {}),
    ("ers-absolute", "ers", B + M + "Absolute\n", [], {}, {}),
    ("ers-segfile-unregistered", "ers", B + "SegFile burst segs.txt TRUE\n", [], {}, {}),
]

PARSE_ERRORS = ("unknown parameter", "ambiguous parameter", "not valid on the command line",
                "unknown option", "badly formed", "requires", "must be", "missing arguments",
                "SUMFLAG", "improper sphere", "unknown image metric", "takes", "file not found",
                "usage:", "image resolution required", "Usage:")


def _setup(tmp_path, ds, files):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for name, text in files.items():
        if name.startswith("HOME/"):
            path = home / name[5:]
        elif name.startswith("DS/"):
            path = ds / name[3:]
        else:
            path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return home


def _sam_outcome(prog, argv, cwd, home, env):
    import subprocess

    from sam_reference import sam_bin

    e = dict(os.environ, HOME=str(home), OMP_NUM_THREADS="1")
    for k in ("ds", "param", "mridir", "imagedir", "pdf"):
        e.pop(k, None)
    e.update(env)
    r = subprocess.run([str(sam_bin("sam_" + prog)), *argv], cwd=cwd, env=e, capture_output=True,
                       text=True, timeout=120)
    out = r.stdout + r.stderr
    return r.returncode, out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return real_dataset(tmp_path_factory.mktemp("params"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_parameters_like_samsrcv5(case, tmp_path, dataset):
    import shutil

    cid, prog, text, extra, env, files = case
    ds = tmp_path / dataset.name
    shutil.copytree(dataset, ds)
    home = _setup(tmp_path, ds, files)
    env = {k: (ds.name if v == "DS" else v) for k, v in env.items()}
    (tmp_path / "p.param").write_text(text)
    argv = ([] if "ds" in env else ["-r", ds.name]) + ([] if "param" in env else ["-m", "p"])
    argv += extra
    rc, out = _sam_outcome(prog, argv, tmp_path, home, env)
    log = ds / "SAM" / f"sam_{prog}.param"
    if prog == "cov":
        sam_ok = rc == 0 and log.is_file()
    else:
        sam_ok = not any(s in out for s in PARSE_ERRORS)
    try:
        p = read_params(None, argv, dict(env, HOME=str(home)), program=prog, cwd=tmp_path,
                        home=home)
        ours_ok, why = True, ""
    except LamegError as err:
        ours_ok, why = False, str(err)
    if prog == "cov" and ours_ok and not sam_ok:
        # program-level checks of sam_cov beyond the parser (marker names in the dataset)
        names = {m[2] for m in __import__("lameg.sam.ctf", fromlist=["x"]).read_ctf(ds).markers}
        if any(m.seg_file is None and m.name not in names for m in p.markers):
            ours_ok, why = False, "marker not in the dataset"
    assert ours_ok == sam_ok, f"SAMsrcV5 {'accepted' if sam_ok else 'rejected'}: {out[-400:]}" \
                              f"\nlameg: {why}"
    if prog == "cov" and sam_ok:
        block = log.read_text().split("\n# ")[-1].splitlines()
        sam_lines = [ln for ln in block[1:] if ln.strip()]
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            ours = p.log_lines("cov")
        finally:
            os.chdir(cwd)
        assert ours == sam_lines


def test_include_cycle_is_an_error(tmp_path):
    """SAMsrcV5 loops forever on an include cycle; lameg names the file read twice."""
    from lameg.exceptions import LamegFormatError

    (tmp_path / "a.param").write_text("%include b\nCovBand 2 40\n")
    (tmp_path / "b.param").write_text("%include a\n")
    with pytest.raises(LamegFormatError, match="%include cycle"):
        read_params("a", (), {}, program="cov", cwd=tmp_path, home=tmp_path)
