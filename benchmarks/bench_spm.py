"""The same operations through the native back end and through real SPM (GNU Octave), one run.

On the bundled test participant (decimated meshes: 2015 sources per layer, 274 CTF channels,
30 trials of 151 samples): EBB and MSP (4 fixed patches) on the pial mesh, EBB on the 2-layer
mesh, a 2-window sliding-window EBB, a single-vertex current-density simulation, and the
Single Sphere / Single Shell co-registration of a 152-source decimated cortex (2562-vertex
inner skull). Every operation runs on its own fresh copy of the dataset; each row reports wall
and CPU (this process) time of both back ends, their ratio native/SPM, and the free-energy
difference. SPM's m-code runs in a separate Octave process, so its CPU time is not in this
process's: compare wall times on an idle machine. The SPM reference README's runtimes (same
SPM, Octave 7.3, reference BLAS) are printed for scale.

Run: ``python -m benchmarks.bench_spm`` (needs Octave and an SPM tree: ``$LAMEG_SPM_DIR`` or
``../shared/spm``); writes ``benchmarks/results/bench_spm.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", REPO.parent / "shared"))
os.environ.setdefault("LAMEG_CACHE_DIR", str(REPO / ".lameg_cache"))


def _copy(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.parent.iterdir():
        if f.name.startswith((src.stem + ".", "SPMgainmatrix_" + src.stem)):
            shutil.copy(f, dest / f.name)
    return dest / src.name


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main(argv=None) -> int:
    from lameg.datasets import copy_test_participant
    from lameg.invert import (
        coregister,
        coregister_mesh,
        invert_ebb,
        invert_msp,
        invert_sliding_window_ebb,
    )
    from lameg.io.gifti import create_surf_gifti
    from lameg.io.spm_meeg import load_meeg
    from lameg.mesh.decimate import decimate_vertex_subset
    from lameg.simulate import run_current_density_simulation
    from lameg.spm import OctaveSPM
    from lameg.surf import LayerSurfaceSet

    tree = os.environ.get("LAMEG_SPM_DIR") or SHARED / "spm" / "spm-03564157-meeg.tar.xz"
    eng, start_wall, _ = _timed(lambda: OctaveSPM(tree))
    root = Path(tempfile.mkdtemp(prefix="bench_spm_"))
    rows = []
    try:
        p = copy_test_participant(root / "p", datasets=["sim_ctf_pial"])
        surf = LayerSurfaceSet(p.subj_id, 2, subjects_dir=p.subjects_dir)
        surf.create(verbose=False)
        base = Path(p.dataset("sim_ctf_pial"))
        models = {}
        for name, layer in (("single", "pial"), ("multi", None)):
            models[name] = _copy(base, root / f"model_{name}")
            coregister(p.fid_coords, models[name], surf, layer_name=layer, viz=False)

        def both(label, run, src):
            res = {}
            for backend in ("native", "spm"):
                d = _copy(src, root / f"{label.replace(' ', '_')}_{backend}")
                kw = {"backend": backend} | ({"spm_instance": eng} if backend == "spm" else {})
                out, wall, cpu = _timed(lambda d=d, kw=kw: run(d, kw))
                res[backend] = (out, wall, cpu)
            (on, wn, cn), (os_, ws, _) = res["native"], res["spm"]
            df = None
            if on is not None:
                df = float(np.max(np.abs(np.atleast_1d(os_) - np.atleast_1d(on))))
            row = {"operation": label, "native_wall_s": wn, "native_cpu_s": cn,
                   "spm_wall_s": ws, "ratio_native_over_spm_wall": wn / ws, "max_abs_dF": df}
            rows.append(row)
            print(f"{label:42s} native {wn:7.2f} s (cpu {cn:6.2f})  SPM {ws:7.2f} s  "
                  f"ratio {wn / ws:.3f}" + ("" if df is None else f"  |dF| {df:.2e}"),
                  flush=True)

        kw_inv = dict(n_temp_modes=4, n_spatial_modes=60, viz=False)
        both("EBB, pial (2015 sources)",
             lambda d, kw: invert_ebb(d, surf, layer_name="pial", **kw_inv, **kw)[0],
             models["single"])
        both("MSP, pial, 4 fixed patches",
             lambda d, kw: invert_msp(d, surf, layer_name="pial", priors=[10, 700, 1500, 2010],
                                      **kw_inv, **kw)[0], models["single"])
        both("EBB, 2 layers (4030 sources)",
             lambda d, kw: invert_ebb(d, surf, **kw_inv, **kw)[0], models["multi"])
        both("sliding-window EBB, 2 windows",
             lambda d, kw: invert_sliding_window_ebb(d, surf, layer_name="pial",
                                                     wois=[[-50, 0], [0, 50]],
                                                     n_spatial_modes=60, viz=False, **kw)[0],
             models["single"])
        t = np.asarray(load_meeg(models["single"]).time)
        sig = np.sin(2 * np.pi * 10 * t)[None, :]
        both("current-density simulation (1 vertex)",
             lambda d, kw: run_current_density_simulation(d, "b_", [321], sig, 10.0, 0.0, 0.0,
                                                          viz=False, seed=1, **kw) and None,
             models["single"])
        g = nib.load(surf.get_mesh_path("pial", stage="ds"))
        v, f, n = (a.data for a in g.darrays[:3])
        kept, faces = decimate_vertex_subset(v, f, target_faces=300)
        small = root / "small_pial.gii"
        nib.save(create_surf_gifti(v[kept], faces, n[kept]), str(small))
        ib = surf.load_head_mesh("iskull")
        ik, ifc = decimate_vertex_subset(ib.darrays[0].data, ib.darrays[1].data,
                                         target_faces=5120)
        iskull, scalp = root / "iskull.gii", root / "scalp.gii"
        nib.save(create_surf_gifti(ib.darrays[0].data[ik], ifc), str(iskull))
        nib.save(surf.load_head_mesh("scalp"), str(scalp))
        for model in ("Single Sphere", "Single Shell"):
            both(f"coregister {model}, {len(kept)} sources",
                 lambda d, kw, model=model: coregister_mesh(
                     p.fid_coords, d, str(small), iskull_fname=str(iskull),
                     scalp_fname=str(scalp), forward_model_type=model, **kw),
                 base)
    finally:
        eng.close()
        shutil.rmtree(root, ignore_errors=True)
    ref = SHARED / "spm_reference" / "summary.json"
    scale = json.loads(ref.read_text()).get("runtimes_s", {}) if ref.is_file() else {}
    print(f"Octave engine start (tree prepared): {start_wall:.1f} s")
    if scale:
        print("SPM reference runtimes (10242 sources, 274 channels, 60 trials):",
              ", ".join(f"{k} {v} s" for k, v in scale.items()))
    out = REPO / "benchmarks" / "results" / "bench_spm.json"
    out.write_text(json.dumps({"rows": rows, "engine_start_s": start_wall,
                               "spm_reference_runtimes_s": scale}, indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
