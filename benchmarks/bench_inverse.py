"""Benchmark of the native inversion engine.

1. Each SPM reference inversion (``../shared/spm_reference``) timed against SPM's own runtime
   (Octave 7.3, README section 11); target: >= 10x faster.
2. Kernel + EBB on an 11-layer fsaverage5-sized mesh (2 x 10242 vertices x 11 layers =
   225,324 sources, 274 channels, 60 trials x 100 samples; random lead field - the cost does
   not depend on its values). Targets: kernel < 30 s, inversion < 30 s, peak memory < 6 GB.

Run: ``python benchmarks/bench_inverse.py [--skip-large]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from lameg.inverse.engine import invert_classic, invert_standard
from lameg.inverse.kernels import geodesic_kernel

SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
REF = SHARED / "spm_reference"
SPM_SECONDS = {"classic_EBB": 4.3, "classic_IID": 3.7, "classic_GS": 4.7,
               "classic_EBB_Nm60_Nt4": 3.9, "EBB": 28.3}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_reference() -> None:
    g = np.asarray(scipy.io.loadmat(REF / "dataset" / "SPMgainmatrix_base_1.mat")["G"], float)
    y = np.fromfile(REF / "dataset" / "sim_base.dat", "<f4").reshape((274, 100, 60), order="F")
    qg = sp.load_npz(REF / "QG_smooth0.6.npz")
    t = (np.arange(100) - 30) / 600
    for name, spm_s in SPM_SECONDS.items():
        ref = np.load(REF / f"inv_spm_eeg_invert_{name}.npz")
        kw = dict(n_spatial_modes=60, n_temp_modes=4) if "Nm60" in name else {}
        t0 = time.perf_counter()
        if name.startswith("classic"):
            r = invert_classic(g, y, t, inv_type=name.split("_")[1], QG=qg, woi=[-50, 115],
                               hpf=48, fsample=600.0, **kw)
        else:
            r = invert_standard(g, y, t, inv_type="EBB", QG=qg, woi=[-50, 115], hpf=48,
                                fsample=600.0)
        dt = time.perf_counter() - t0
        print(f"{name:24s} {dt:6.2f} s  (SPM {spm_s:5.1f} s, x{spm_s / dt:5.1f})  "
              f"dF = {r.F[0] - float(ref['F']):+.2e}")


def bench_large() -> None:
    import nibabel as nib

    gi = nib.load(str(REF / "inputs" / "cortex_fs5_lh_pial.gii"))
    v = np.asarray(gi.darrays[0].data, float)
    f = np.asarray(gi.darrays[1].data, np.int64)
    v2 = v * [-1, 1, 1]
    verts = np.r_[v, v2]
    faces = np.r_[f, f[:, ::-1] + len(v)]
    nl = 11
    centre = verts.mean(axis=0)
    layers = [centre + (verts - centre) * (1 - 0.02 * k) for k in range(nl)]
    V = np.concatenate(layers)
    F = np.concatenate([faces + k * len(verts) for k in range(nl)])
    nd = len(V)
    print(f"mesh: {nd} sources, {len(F)} faces")
    t0 = time.perf_counter()
    qg = geodesic_kernel(V, F, 5.0, nl, use_cache=False)
    print(f"geodesic kernel (5 mm): {time.perf_counter() - t0:6.1f} s, nnz {qg.nnz}")
    rng = np.random.default_rng(0)
    g = rng.standard_normal((274, nd)) * 10
    y = rng.standard_normal((274, 100, 60)).astype(np.float32) * 20
    t = (np.arange(100) - 30) / 600
    t0 = time.perf_counter()
    r = invert_classic(g, y, t, inv_type="EBB", QG=qg, n_temp_modes=4, hpf=256,
                       hanning=False, fsample=600.0)
    print(f"EBB inversion: {time.perf_counter() - t0:6.1f} s (Nm = {r.Nm}), "
          f"peak RSS {_peak_gb():.2f} GB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    if not (REF / "README.md").exists():
        sys.exit(f"SPM reference folder not found: {REF}")
    bench_reference()
    if not args.skip_large:
        bench_large()
