"""Benchmark of the native inversion engine against SPM's own runtimes.

1. Each SPM reference inversion (``shared/spm_reference``) timed against SPM's runtime
   (Octave 7.3, single-threaded reference BLAS, README section 11); target: >= 10x faster.
   Each is run twice: "cold" (empty in-memory cache: ``L L'`` and its SVD, ``A L``, ``A L QG``
   computed) and "warm" (the same gain matrix again, as in simulation sweeps, sliding windows
   and repeated analyses).
2. Geodesic kernel + EBB on an 11-layer fsaverage5-sized mesh: fsaverage5 white and pial
   (left hemisphere and its mirror image), 11 layers interpolated between them = 225,324
   sources; 274 channels, 60 trials x 100 samples, random lead field (the cost does not
   depend on its values). Targets: kernel < 30 s, inversion < 30 s, peak memory < 6 GB.

Times are given as wall clock and as CPU time of this process (``time.process_time``); on a
shared, loaded machine the CPU time is the meaningful number. BLAS runs single-threaded
(``threadpoolctl``) unless ``--threads`` is given: on a loaded 2-core machine OpenBLAS
threads mostly spin (the same reference inversion costs 5-10x more CPU with 2 threads).
The kernel's layers run in ``--jobs`` worker threads (lameg's native geodesics; default 1,
so that the CPU time of this process is the whole cost).

Run: ``python -m benchmarks.bench_inverse [--skip-large] [--threads N] [--jobs N]``; a summary
is written to ``benchmarks/results/bench_inverse.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from lameg.inverse.cache import clear_cache
from lameg.inverse.engine import invert_classic, invert_standard
from lameg.inverse.kernels import geodesic_kernel

SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
REF = SHARED / "spm_reference"
OUT = Path(__file__).resolve().parent / "results"
# SPM's runtimes of the same calls (README section 11, seconds)
SPM_SECONDS = {"classic_EBB": 4.3, "classic_IID": 3.7, "classic_GS": 4.7,
               "classic_EBB_Nm60_Nt4": 3.9, "EBB": 28.3}
SPM_GEODESIC_NOTE = "SPM's spm_eeg_smoothmesh_multilayer_mm takes minutes per layer"


def _peak_gb() -> float:
    """Peak resident memory of this process, GB (Linux ``ru_maxrss`` is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class _Timer:
    def __enter__(self):
        self.w0, self.c0, self.k0 = time.perf_counter(), time.process_time(), _children_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0
        self.child_cpu = _children_cpu() - self.k0


def _run_reference(name, g, y, t, qg):
    kw = dict(n_spatial_modes=60, n_temp_modes=4) if "Nm60" in name else {}
    if name.startswith("classic"):
        return invert_classic(g, y, t, inv_type=name.split("_")[1], QG=qg, woi=[-50, 115],
                              hpf=48, fsample=600.0, **kw)
    return invert_standard(g, y, t, inv_type="EBB", QG=qg, woi=[-50, 115], hpf=48,
                           fsample=600.0)


def bench_reference() -> list[dict]:
    g = np.asarray(scipy.io.loadmat(REF / "dataset" / "SPMgainmatrix_base_1.mat")["G"], float)
    y = np.fromfile(REF / "dataset" / "sim_base.dat", "<f4").reshape((274, 100, 60), order="F")
    qg = sp.load_npz(REF / "QG_smooth0.6.npz")
    t = (np.arange(100) - 30) / 600
    rows = []
    print(f"{'inversion':22s} {'cold cpu':>9s} {'warm cpu':>9s} {'warm wall':>9s} "
          f"{'SPM':>6s} {'SPM/cold':>9s} {'SPM/warm':>9s}  dF vs SPM")
    for name, spm_s in SPM_SECONDS.items():
        ref = np.load(REF / f"inv_spm_eeg_invert_{name}.npz")
        clear_cache()
        with _Timer() as cold:
            r = _run_reference(name, g, y, t, qg)
        with _Timer() as warm:
            r = _run_reference(name, g, y, t, qg)
        df = r.F[0] - float(ref["F"])
        print(f"{name:22s} {cold.cpu:8.3f}s {warm.cpu:8.3f}s {warm.wall:8.3f}s {spm_s:5.1f}s "
              f"{spm_s / cold.cpu:8.1f}x {spm_s / warm.cpu:8.1f}x  {df:+.2e}", flush=True)
        rows.append(dict(name=name, cold_cpu_s=cold.cpu, cold_wall_s=cold.wall,
                         warm_cpu_s=warm.cpu, warm_wall_s=warm.wall, spm_s=spm_s, dF=df))
    return rows


def large_mesh(n_layers: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Multilayer fsaverage5 mesh (both hemispheres, layer-major, pial first), mm."""
    import nibabel as nib

    def _read(name):
        gi = nib.load(str(REF / "inputs" / name))
        return np.asarray(gi.darrays[0].data, float), np.asarray(gi.darrays[1].data, np.int64)

    pial, f = _read("cortex_fs5_lh_pial.gii")
    white, _ = _read("cortex_fs5_lh_white.gii")
    mirror = np.array([-1.0, 1.0, 1.0])
    pial2 = np.r_[pial, pial * mirror]
    white2 = np.r_[white, white * mirror]
    faces = np.r_[f, f[:, ::-1] + len(pial)]
    fr = np.linspace(1, 0, n_layers)  # pial ... white
    verts = np.concatenate([white2 + (pial2 - white2) * a for a in fr])
    allf = np.concatenate([faces + k * len(pial2) for k in range(n_layers)])
    return verts, allf


def bench_large(jobs: int) -> dict:
    verts, faces = large_mesh(11)
    nd = len(verts)
    print(f"\nmulti-layer mesh: {nd} sources, {len(faces)} faces, 11 layers")
    with _Timer() as tk:
        qg = geodesic_kernel(verts, faces, 5.0, 11, use_cache=False, n_jobs=jobs)
    print(f"geodesic kernel (5 mm, n_jobs={jobs}): wall {tk.wall:6.1f} s, cpu {tk.cpu:6.1f} s "
          f"+ workers {tk.child_cpu:6.1f} s, nnz {qg.nnz}  (target < 30 s; "
          f"{SPM_GEODESIC_NOTE})", flush=True)
    rng = np.random.default_rng(0)
    g = rng.standard_normal((274, nd)) * 10
    y = rng.standard_normal((274, 100, 60)).astype(np.float32) * 20
    t = (np.arange(100) - 30) / 600
    out = dict(n_sources=nd, kernel_wall_s=tk.wall, kernel_cpu_s=tk.cpu,
               kernel_worker_cpu_s=tk.child_cpu, kernel_nnz=int(qg.nnz))
    clear_cache()
    for label in ("cold", "warm"):
        with _Timer() as ti:
            r = invert_classic(g, y * (1.0 if label == "cold" else 1.1), t, inv_type="EBB",
                               QG=qg, n_temp_modes=4, hpf=256, hanning=False, fsample=600.0)
        print(f"EBB inversion ({label}): wall {ti.wall:6.1f} s, cpu {ti.cpu:6.1f} s "
              f"(Nm = {r.Nm}), peak RSS {_peak_gb():.2f} GB  (targets < 30 s, < 6 GB)",
              flush=True)
        out.update({f"ebb_{label}_wall_s": ti.wall, f"ebb_{label}_cpu_s": ti.cpu})
    out["peak_rss_gb"] = _peak_gb()
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-large", action="store_true", help="only the reference inversions")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="kernel worker threads (default 1, so that CPU time is measurable)")
    args = ap.parse_args([] if argv is None else argv)
    if not (REF / "README.md").exists():
        print(f"SPM reference folder not found: {REF}; skipping bench_inverse")
        return
    from threadpoolctl import threadpool_limits

    summary: dict = {"blas_threads": args.threads}
    with threadpool_limits(args.threads):
        summary["reference"] = bench_reference()
        if not args.skip_large:
            summary["large"] = bench_large(args.jobs)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_inverse.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
