"""Datasets survive crashes and concurrent writers.

Fault injection: a child process runs ``coregister_mesh`` or an inversion and is killed with
SIGKILL at a seeded random moment; afterwards the dataset must be readable and hold the old or
the new complete state (the gain verified against the header), and the next successful run must
leave no debris. Concurrent writers: two processes updating one dataset never lose an update.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lameg.exceptions import InversionNotFoundError
from lameg.io.spm_inv import dataset_lock, read_head_model, read_inverse
from lameg.io.spm_meeg import load_meeg

pytestmark = pytest.mark.spmref
LABELS = ("nas", "lpa", "rpa")

_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from lameg import invert as li
    cfg = json.loads(sys.argv[1])
    fid = {k: np.asarray(v) for k, v in cfg["fid"].items()}
    for step in cfg["steps"]:
        if step["op"] == "coregister":
            li.coregister_mesh(fid, cfg["data"], cfg["cortex"], iskull_fname=cfg["iskull"],
                               forward_model_type=step["model"],
                               inversion_idx=step.get("idx", 0), cache_dir=False)
        else:
            li.invert(cfg["data"], method="EBB", smoothing=("green", 0.6),
                      n_temp_modes=step["nt"], inversion_idx=step.get("idx", 0))
        print("done", step, flush=True)
""")


@pytest.fixture()
def setup(spm_reference, tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    for ext in ("mat", "dat"):
        shutil.copy(spm_reference / "dataset" / f"sim_base.{ext}", d / f"sim.{ext}")
        (d / f"sim.{ext}").chmod(0o644)
    g = np.load(spm_reference / "inputs" / "geometry_inputs.npz")
    cfg = {"data": str(d / "sim.mat"),
           "cortex": str(spm_reference / "inputs" / "cortex_fs5_lh_pial.gii"),
           "iskull": str(spm_reference / "inputs" / "iskull_fsaverage.gii"),
           "fid": {k: g["fid_mri"][i].tolist() for i, k in enumerate(LABELS)}}
    # the dataset's own (SPM) head model is replaced by a lameg one: the 'old' state
    _run(cfg, [{"op": "coregister", "model": "Single Sphere"}])
    return cfg


def _run(cfg, steps, kill_after=None, env=None):
    args = [sys.executable, "-c", _CHILD, json.dumps(dict(cfg, steps=steps))]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **(env or {}))
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if kill_after is None:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
        return out.decode()
    time.sleep(kill_after)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    return None


def _state(cfg):
    """('none' | gain fingerprint, inverse F or None), verifying the gain on the way."""
    hm = read_head_model(cfg["data"], 0)
    g = hm.gain(hm.channels[:5], np.arange(5))  # raises if the gain does not match
    try:
        f = float(read_inverse(cfg["data"], 0).free_energy[0])
    except InversionNotFoundError:
        f = None
    return round(float(g.sum()), 9), f


def _debris(folder: Path, cfg) -> list[str]:
    keep = {"sim.mat", "sim.dat", ".sim.mat.lock", read_head_model(cfg["data"], 0).gain_name}
    return sorted(p.name for p in folder.iterdir() if p.name not in keep and
                  not p.name.startswith("s_"))


def _fault_injection(cfg, n_kills, seed):
    rng = np.random.default_rng(seed)
    folder = Path(cfg["data"]).parent
    old = _state(cfg)
    _run(cfg, [{"op": "coregister", "model": "Single Shell"}])
    new = _state(cfg)
    assert old[0] != new[0]
    t0 = time.perf_counter()
    _run(cfg, [{"op": "coregister", "model": "Single Sphere"}])
    duration = time.perf_counter() - t0
    states = {old[0]: "Single Sphere", new[0]: "Single Shell"}
    survived = 0
    for k in range(n_kills):
        want = "Single Shell" if k % 2 == 0 else "Single Sphere"
        before = _state(cfg)
        _run(cfg, [{"op": "coregister", "model": want}],
             kill_after=float(rng.uniform(0.2, 1.1) * duration))
        load_meeg(cfg["data"])  # the header is always readable
        after = _state(cfg)
        assert after[0] in states, "the head model is neither the old nor the new one"
        survived += after[0] in (before[0], old[0] if want == "Single Sphere" else new[0])
    assert survived == n_kills
    # the next complete run succeeds and cleans what the killed ones left
    _run(cfg, [{"op": "coregister", "model": "Single Sphere"}])
    assert _state(cfg)[0] == old[0]
    assert _debris(folder, cfg) == []


def test_killed_coregistration_leaves_old_or_new_state(setup):
    _fault_injection(setup, n_kills=3, seed=1)


@pytest.mark.slow
def test_killed_coregistration_many(setup):
    _fault_injection(setup, n_kills=30, seed=2)


def test_killed_inversion_keeps_the_dataset_consistent(setup):
    cfg = setup
    _run(cfg, [{"op": "invert", "nt": 2}])
    f_old = _state(cfg)[1]
    t0 = time.perf_counter()
    _run(cfg, [{"op": "invert", "nt": 3}])
    duration = time.perf_counter() - t0
    f_new = _state(cfg)[1]
    assert f_old != f_new
    rng = np.random.default_rng(5)
    for k in range(3):
        _run(cfg, [{"op": "invert", "nt": 2 + k % 2}],
             kill_after=float(rng.uniform(0.3, 1.1) * duration))
        assert _state(cfg)[1] in (f_old, f_new)
    _run(cfg, [{"op": "invert", "nt": 2}])
    assert _state(cfg)[1] == pytest.approx(f_old, abs=1e-9)
    assert _debris(Path(cfg["data"]).parent, cfg) == []


def test_concurrent_writers_lose_no_update(setup):
    """An inversion at index 0 and a new head model at index 1, written at the same time."""
    cfg = setup
    p1 = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(
        dict(cfg, steps=[{"op": "invert", "nt": 2}]))], stderr=subprocess.PIPE)
    p2 = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(
        dict(cfg, steps=[{"op": "coregister", "model": "Single Shell", "idx": 1}]))],
        stderr=subprocess.PIPE)
    for p in (p1, p2):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    D = load_meeg(cfg["data"])
    assert len(D.inv) == 2
    assert read_inverse(cfg["data"], 0).n_sources == 10242  # the inversion was kept
    assert read_head_model(cfg["data"], 1).n_sources == 10242  # and the new head model


def test_a_writer_waits_for_the_lock_and_applies_its_update_on_top(setup):
    cfg = setup
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from lameg.io.spm_inv import dataset_lock
        from lameg.io.spm_meeg import load_meeg
        with dataset_lock({cfg['data']!r}):
            print('locked', flush=True)
            D = load_meeg({cfg['data']!r})
            invs = [dict(v) for v in D.inv]
            invs[0]['comment'] = 'written while locked'
            time.sleep(3)
            D.save_inv(invs, val=1)
        """)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"locked"
    t0 = time.perf_counter()
    _run(cfg, [{"op": "invert", "nt": 2}])
    holder.wait(timeout=60)
    assert time.perf_counter() - t0 >= 1.0
    entry = load_meeg(cfg["data"]).inv[0]
    assert entry["comment"] == "written while locked"  # the first writer's update survived
    assert read_inverse(cfg["data"], 0).n_sources == 10242  # and the second one's too


def test_lock_timeout_is_a_clear_error(setup):
    from lameg.exceptions import LamegDataError

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from lameg.io.spm_inv import dataset_lock
        with dataset_lock({setup['data']!r}):
            print('locked', flush=True)
            time.sleep(5)
        """)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"locked"
    with pytest.raises(LamegDataError, match="being written by another process"), \
            dataset_lock(setup["data"], timeout=0.5):
        pass
    holder.wait(timeout=60)


def test_modes_and_read_only_headers(setup):
    from lameg.exceptions import LamegPermissionError
    from lameg.invert import invert

    data = Path(setup["data"])
    data.chmod(0o640)
    invert(data, method="EBB", smoothing=("green", 0.6), n_temp_modes=2)
    assert (data.stat().st_mode & 0o777) == 0o640  # the mode of the replaced header is kept
    gain = read_head_model(data, 0).gain_path
    assert gain.stat().st_mode & 0o044  # new files get the umask's mode, not 0600
    data.chmod(0o444)
    before = data.read_bytes()
    with pytest.raises(LamegPermissionError, match="read-only"):
        invert(data, method="EBB", smoothing=("green", 0.6), n_temp_modes=3)
    assert data.read_bytes() == before
