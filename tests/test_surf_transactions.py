"""``LayerSurfaceSet.create`` is all-or-nothing: kills, leftovers, mixed sets, bad inputs.

The fault-injection tests run ``create`` in a child process and kill it with SIGKILL, either
after a random delay or at a random file-system operation (``os.replace``/``os.rename``/
``os.link`` and the atomic folder exchange), seeded. After each kill the folder must hold the
old or the new set **exactly** (every GIfTI byte-identical, every sidecar equal apart from its
time stamp), and the next ``create`` must succeed and leave no temporary file or folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import TEST_DATA

from lameg.exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegPermissionError,
    LamegValueError,
)
from lameg.surf import LayerSurfaceSet
from lameg.surf import commit as surf_commit

OLD = {"n_layers": 3, "ds_factor": 0.1}      # the set on disk before the interrupted run
NEW = {"n_layers": 2, "ds_factor": 0.2}      # what the interrupted run builds
ATOMIC_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)+$")

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    args = json.loads(sys.argv[1])
    from lameg.surf import LayerSurfaceSet, commit
    kill_at, after = args["kill_at"], args["after"]
    count = [0]

    def wrap(owner, name):
        real = getattr(owner, name)

        def op(*a, **k):
            count[0] += 1
            if count[0] == kill_at and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            out = real(*a, **k)
            if count[0] == kill_at and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        setattr(owner, name, op)

    if not args["exchange"]:
        commit._exchange = lambda a, b: False
    for owner, name in ((os, "replace"), (os, "rename"), (os, "link"),
                        (commit, "_exchange")):
        wrap(owner, name)
    s = LayerSurfaceSet("sub-01", args["n_layers"], subjects_dir=args["subjects_dir"])
    s.create(ds_factor=args["ds_factor"], verbose=False)
    print(json.dumps({"ops": count[0]}))
""")


def _copy_subject(src: Path, dst: Path) -> Path:
    """SUBJECTS_DIR at ``dst`` with a copy of ``src``'s sub-01 (laminar folder included)."""
    shutil.copytree(src / "sub-01", dst / "sub-01", symlinks=True)
    return dst


def _run_child(subjects_dir: Path, spec: dict, kill_at: int = 0, after: bool = False,
               exchange: bool = True, delay: float | None = None) -> dict | None:
    args = json.dumps({**spec, "subjects_dir": str(subjects_dir), "kill_at": kill_at,
                       "after": after, "exchange": exchange})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(Path(__file__).resolve().parents[1]))
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        return json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == -signal.SIGKILL, err
    return None


def _signature(laminar: Path) -> dict:
    """Content of a laminar folder: GIfTI bytes hashed, sidecars without their time stamp."""
    sig = {}
    for p in sorted(laminar.iterdir()):
        if p.suffix == ".json":
            meta = json.loads(p.read_text())
            meta.pop("modified_at", None)
            sig[p.name] = json.dumps(meta, sort_keys=True)
        else:
            sig[p.name] = hashlib.sha1(p.read_bytes()).hexdigest()
    return sig


def _leftovers(subj_dir: Path) -> list[str]:
    """Temporary folders and interrupted atomic writes anywhere in the subject."""
    out = []
    for root, dirs, files in os.walk(subj_dir):
        for d in dirs:
            if d.startswith((".laminar-", ".laminar_tmp_")):
                out.append(os.path.join(root, d))
        out += [os.path.join(root, f) for f in files if ATOMIC_TMP.match(f)]
    return out


@pytest.fixture(scope="module")
def states(tmp_path_factory, test_data_dir):
    """The old set on disk, and the signatures of the old and the new state."""
    root = tmp_path_factory.mktemp("tx")
    base = root / "base"
    base.mkdir()
    shutil.copytree(TEST_DATA / "fs" / "sub-01", base / "sub-01",
                    ignore=shutil.ignore_patterns("laminar"))
    LayerSurfaceSet("sub-01", OLD["n_layers"], subjects_dir=base).create(
        ds_factor=OLD["ds_factor"], verbose=False)
    ref = _copy_subject(base, root / "ref")
    res = _run_child(ref, NEW)                   # an uninterrupted run: the new state
    assert res is not None and res["ops"] > 50
    old = _signature(base / "sub-01" / "surf" / "laminar")
    new = _signature(ref / "sub-01" / "surf" / "laminar")
    assert old != new
    # the two-rename switch-over (systems without the atomic exchange) gives the same state
    ref2 = _copy_subject(base, root / "ref2")
    res2 = _run_child(ref2, NEW, exchange=False)
    assert res2 is not None and res2["ops"] == res["ops"] + 2      # + the two renames
    assert _signature(ref2 / "sub-01" / "surf" / "laminar") == new
    # files the new run does not write (the 3-layer set's middle layer) are carried over
    assert new["0.500.ds.gii"] == old["0.500.ds.gii"]
    return {"base": base, "root": root, "old": old, "new": new,
            "ops": {True: res["ops"], False: res2["ops"]}}


def _check_kill(states, name, **kill) -> str:
    sd = _copy_subject(states["base"], states["root"] / name)
    res = _run_child(sd, NEW, **kill)
    laminar = sd / "sub-01" / "surf" / "laminar"
    # the next LayerSurfaceSet finishes an update interrupted between its two renames
    s = LayerSurfaceSet("sub-01", NEW["n_layers"], subjects_dir=sd)
    sig = _signature(laminar)
    outcome = "new" if sig == states["new"] else "old" if sig == states["old"] else "mixed"
    assert outcome != "mixed", (name, kill, res)
    if outcome == "old":
        LayerSurfaceSet("sub-01", OLD["n_layers"], subjects_dir=sd).validate()
    else:
        s.validate()
    # the next run succeeds, gives the new state and leaves nothing behind
    s.create(ds_factor=NEW["ds_factor"], verbose=False)
    assert _signature(laminar) == states["new"]
    assert _leftovers(sd / "sub-01") == []
    shutil.rmtree(sd)
    return outcome


def _kill_plan(n_ops: int, seed: int, n: int) -> list[dict]:
    """Kill points: random file operations (with and without the atomic exchange, before or
    after the operation), the last operations of the switch-over, and random delays."""
    rng = np.random.default_rng(seed)
    plan = []
    for i in range(n):
        kind = i % 3
        if kind == 2:
            plan.append({"delay": float(rng.uniform(0.3, 4.0))})
        else:
            exchange = kind == 0
            last = n_ops[exchange]
            # half of the operation kills fall into the switch-over (the last ~8 operations)
            k = int(rng.integers(last - 8, last + 1)) if rng.random() < 0.5 else \
                int(rng.integers(1, last + 1))
            plan.append({"kill_at": k, "after": bool(rng.random() < 0.5),
                         "exchange": exchange})
    return plan


def test_kill_inside_create_leaves_old_or_new(states):
    """Small seeded run: 4 random kills, one just after the atomic exchange, and one between
    the two renames of the fallback protocol (no ``surf/laminar`` at that moment: the next
    open finishes the switch). Each old-or-new, no leftovers after the next run."""
    plan = _kill_plan(states["ops"], seed=11, n=4) + [
        {"kill_at": states["ops"][True], "after": True, "exchange": True},
        {"kill_at": states["ops"][False] - 1, "after": True, "exchange": False}]
    outcomes = [_check_kill(states, f"k{i}", **kill) for i, kill in enumerate(plan)]
    print({o: outcomes.count(o) for o in ("old", "new")})
    assert set(outcomes) <= {"old", "new"}
    assert outcomes[-2:] == ["new", "new"]


@pytest.mark.slow
def test_kill_inside_create_many(states):
    """Longer seeded run: 36 kills (statistics in the output)."""
    outcomes = [_check_kill(states, f"m{i}", **kill)
                for i, kill in enumerate(_kill_plan(states["ops"], seed=2026, n=36))]
    print({o: outcomes.count(o) for o in ("old", "new")})
    assert set(outcomes) <= {"old", "new"} and "old" in outcomes and "new" in outcomes


@pytest.mark.slow
@pytest.mark.parametrize("exchange", [True, False])
def test_kills_at_every_switch_over_step(states, exchange):
    """Deterministic: a kill just before and just after each of the last file operations."""
    outcomes = []
    last = states["ops"][exchange]
    for k in range(last - 3, last + 1):
        for after in (False, True):
            outcomes.append(_check_kill(states, f"s{int(exchange)}{k}{int(after)}",
                                        kill_at=k, after=after, exchange=exchange))
    # the last operation switches over: killed after it, the new set is in place
    assert outcomes[-1] == "new" and "old" in outcomes


# ---------------------------------------------------------------------------- recovery


def _stage(surf: Path, name: str, files: dict, complete: bool) -> Path:
    d = surf / name
    d.mkdir()
    for f, text in files.items():
        (d / f).write_text(text)
    if complete:
        (surf / (name + surf_commit.COMPLETE_SUFFIX)).write_text("complete\n")
    return d


def test_recover_rolls_forward_back_and_cleans(tmp_path):
    surf = tmp_path / "surf"
    surf.mkdir()
    laminar = surf / "laminar"
    # killed between the two renames, staging complete: the new generation is put in place
    _stage(surf, ".laminar-retired-a", {"x.gii": "old"}, complete=False)
    _stage(surf, ".laminar-staging-b", {"x.gii": "new"}, complete=True)
    surf_commit.recover(str(surf), str(laminar))
    assert (laminar / "x.gii").read_text() == "new"
    assert sorted(p.name for p in surf.iterdir()) == ["laminar"]
    # killed while the new generation was being staged: the old one is put back
    shutil.rmtree(laminar)
    _stage(surf, ".laminar-retired-c", {"x.gii": "old"}, complete=False)
    _stage(surf, ".laminar-staging-d", {"x.gii": "half"}, complete=False)
    surf_commit.recover(str(surf), str(laminar))
    assert (laminar / "x.gii").read_text() == "old"
    assert sorted(p.name for p in surf.iterdir()) == ["laminar"]
    # interrupted atomic writes (here and in mri/) and folders of earlier versions are removed
    mri = tmp_path / "mri"
    mri.mkdir()
    (mri / ".orig.nii.ab12cd34.nii").write_text("partial")
    (mri / "orig.nii").write_text("kept")
    (laminar / ".pial.ds.gii.x1y2z3w4.gii").write_text("partial")
    (surf / ".laminar_tmp_old").mkdir()
    removed = surf_commit.recover(str(surf), str(laminar), (str(mri),))
    assert len(removed) == 3
    assert sorted(p.name for p in mri.iterdir()) == ["orig.nii"]
    assert sorted(p.name for p in laminar.iterdir()) == ["x.gii"]


def test_laminar_folder_restored_on_open(tmp_path, test_data_dir):
    """A LayerSurfaceSet opened after a kill between the renames finds its files."""
    sd = tmp_path / "fs"
    shutil.copytree(TEST_DATA / "fs" / "sub-01", sd / "sub-01",
                    ignore=shutil.ignore_patterns("laminar"))
    s = LayerSurfaceSet("sub-01", 2, subjects_dir=sd)
    s.create(verbose=False)
    surf = Path(s.surf_dir)
    os.rename(s.laminar_surf_dir, surf / ".laminar-retired-zz")
    s2 = LayerSurfaceSet("sub-01", 2, subjects_dir=sd)
    s2.validate()
    assert [p.name for p in surf.iterdir() if p.name.startswith(".laminar-")] == []


# ---------------------------------------------------------------------------- mixed sets


def test_validate_detects_mixed_set(tmp_path, test_data_dir):
    """Two complete builds differing only in the middle layer's placement, mixed file-wise:
    vertex counts and faces agree, so only the recorded build identifies the mix."""
    a, b = tmp_path / "a", tmp_path / "b"
    for sd, model in ((a, "equidistant"), (b, "equivolume")):
        shutil.copytree(TEST_DATA / "fs" / "sub-01", sd / "sub-01",
                        ignore=shutil.ignore_patterns("laminar"))
        LayerSurfaceSet("sub-01", 3, subjects_dir=sd).create(layer_model=model, verbose=False)
    sa = LayerSurfaceSet("sub-01", 3, subjects_dir=a)
    sa.validate(orientations=["link_vector"], fixed=True)
    for f in Path(b / "sub-01" / "surf" / "laminar").glob("*0.500.*"):
        shutil.copy2(f, Path(sa.laminar_surf_dir) / f.name)
    with pytest.raises(LamegDataError, match="mixed surface set.*re-run create"):
        sa.validate(orientations=["link_vector"], fixed=True)


# ---------------------------------------------------------------------------- bad inputs


@pytest.fixture
def fresh(tmp_path, test_data_dir):
    sd = tmp_path / "fs"
    shutil.copytree(TEST_DATA / "fs" / "sub-01", sd / "sub-01",
                    ignore=shutil.ignore_patterns("laminar"))
    return sd


@pytest.mark.parametrize("n_layers", [None, "abc", float("nan"), 2.5, 1, True])
def test_bad_n_layers(fresh, n_layers):
    with pytest.raises(LamegValueError, match="n_layers"):
        LayerSurfaceSet("sub-01", n_layers, subjects_dir=fresh)


def test_bad_hemi_and_stage_name_the_argument(fresh):
    s = LayerSurfaceSet("sub-01", 2, subjects_dir=fresh)
    with pytest.raises(LamegValueError, match="hemi='left' is not valid"):
        s.load("pial", "converted", hemi="left")
    with pytest.raises(LamegValueError, match="stage='bogus' is not valid"):
        s.load("pial", "bogus")
    with pytest.raises(LamegValueError, match="per hemisphere: pass hemi"):
        s.load("pial", "converted")
    with pytest.raises(LamegValueError, match="pass hemi=None"):
        s.load("pial", "ds", hemi="lh")


def _write_surfaces(sd: Path, fn):
    for h in ("lh", "rh"):
        for name in ("white", "pial", "inflated"):
            path = sd / "sub-01" / "surf" / f"{h}.{name}"
            v, f = nib.freesurfer.read_geometry(str(path))
            nib.freesurfer.write_geometry(str(path), fn(h, name, v), f)


def test_pial_equal_white_is_degenerate(fresh):
    white = {}

    def same(h, name, v):
        if name == "white":
            white[h] = v
        return white[h] if name == "pial" else v
    _write_surfaces(fresh, same)
    with pytest.raises(LamegDataError, match="coincide.*degenerate geometry"):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    assert _leftovers(fresh / "sub-01") == []


def test_surfaces_in_metres_rejected(fresh):
    _write_surfaces(fresh, lambda h, name, v: v / 1000.0)
    with pytest.raises(LamegDataError, match="must be in mm.*metres"):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)


def test_read_only_output_reported_before_computing(fresh):
    surf = fresh / "sub-01" / "surf"
    mode = surf.stat().st_mode
    surf.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        with pytest.raises(LamegPermissionError, match="read-only.*chmod u\\+w"):
            LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    finally:
        surf.chmod(mode)
    assert not (surf / "laminar").exists() and _leftovers(fresh / "sub-01") == []


def test_read_only_orig_nii_reported_before_computing(fresh):
    nii = fresh / "sub-01" / "mri" / "orig.nii"
    nii.write_bytes(b"")
    nii.chmod(0o444)
    with pytest.raises(LamegPermissionError, match="orig.nii"):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    assert not (fresh / "sub-01" / "surf" / "laminar").exists()


def test_bad_create_arguments(fresh):
    s = LayerSurfaceSet("sub-01", 2, subjects_dir=fresh)
    for kwargs, match in (({"ds_factor": float("nan")}, "ds_factor"),
                          ({"ds_factor": 0}, "ds_factor"),
                          ({"layer_model": "bok"}, "layer_model"),
                          ({"fix_orientation": "yes"}, "fix_orientation")):
        with pytest.raises(LamegValueError, match=match):
            s.create(verbose=False, **kwargs)
    with pytest.raises(LamegFileNotFoundError):
        s.load("pial", "ds")


def test_downsample_switches_over_and_drops_stale_ds_files(fresh):
    from lameg.io.gifti import gifti_arrays

    s = LayerSurfaceSet("sub-01", 2, subjects_dir=fresh)
    s.create(ds_factor=0.2, verbose=False)
    n_before = len(gifti_arrays(s.load("pial", "ds"))[0])
    s.downsample(0.1)
    laminar = Path(s.laminar_surf_dir)
    vp, fp, _ = gifti_arrays(s.load("pial", "ds"))
    vw, fw, _ = gifti_arrays(s.load("white", "ds"))
    assert len(vp) == len(vw) < n_before and np.array_equal(fp, fw)
    # the stored maps still describe the new decimation exactly
    to_comb = s.map_between_stages("pial", "ds", None, "combined", None)
    comb = gifti_arrays(s.load("pial", "combined"))[0]
    np.testing.assert_array_equal(vp, comb[to_comb])
    assert s.load_meta("pial", "ds")["ds_factor"] == 0.1
    # oriented ds files and the multilayer mesh of the old decimation are gone
    assert not list(laminar.glob("*.ds.link_vector.*")) and not list(laminar.glob("multilayer*"))
    assert _leftovers(fresh / "sub-01") == []
    with pytest.raises(LamegValueError, match="ds_factor"):
        s.downsample(0)
