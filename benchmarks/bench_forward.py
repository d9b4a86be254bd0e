"""Benchmark of the native forward models (gain matrices).

1. Single Shell (Nolte) gain of SPM's reference geometry (274 CTF channels, 548 coils, 10242
   sources, ``../shared/spm_reference``) against SPM's own ``spm_eeg_lgainmat`` run time
   (370.8 s, Octave 7.3; README section 11). Target: >= 100x faster. The accuracy against SPM's
   matrix is printed alongside.
2. Single Sphere gain of an 11-layer fsaverage5 mesh (both hemispheres: 2 x 10242 x 11 = 225,324
   sources, link-vector orientations) for the same CTF-275 array, against
   ``mne.make_forward_solution`` with a sphere model on the same sources and the same point
   coils, measured in the same run. Targets: >= 5x faster than MNE; peak memory of the gain
   computation < 2x the size of the gain matrix (Python allocations, ``tracemalloc``).

Run: ``python -m benchmarks.bench_forward [--n-layers N] [--skip-mne]``. Needs the shared
reference folder (``LAMEG_SHARED_DIR`` or ``../shared``), nilearn (fsaverage5) and mne.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy.io

from lameg.forward.coreg import apply_transform, register_fiducials
from lameg.forward.gain import compute_gain
from lameg.forward.normals import normalize_rows, spm_mesh_normals
from lameg.forward.sensors import SensorArray
from lameg.forward.singleshell import SingleShellModel
from lameg.forward.sphere import SphereModel, fit_sphere

SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
REF = SHARED / "spm_reference"
RESULTS = Path(__file__).resolve().parent / "results"
SPM_SINGLESHELL_S = 370.8
SPM_SINGLESPHERE_S = 272.3


def _geometry():
    g = np.load(REF / "inputs" / "geometry_inputs.npz")
    reg = register_fiducials(g["fid_head"], g["fid_mri"])
    to_head_m = np.diag([1e-3, 1e-3, 1e-3, 1.0]) @ reg.fromMNI
    sens = SensorArray.from_grad({"coilpos": g["coilpos"], "coilori": g["coilori"],
                                  "tra": g["tra"], "label": list(g["label"]), "unit": "mm"})
    return g, to_head_m, sens


def bench_spm_reference() -> dict:
    g, to_head, sens = _geometry()
    img = nib.load(str(REF / "inputs" / "cortex_fs5_lh_pial.gii"))
    cortex = apply_transform(img.agg_data("pointset").astype(float), to_head)
    faces = img.agg_data("triangle")
    nrm = spm_mesh_normals(cortex, faces)
    out = {}
    for name, model_fn, spm_s, ref_file in [
        ("Single Shell", lambda: SingleShellModel(apply_transform(g["iskull_vert"], to_head),
                                                  g["iskull_face"]),
         SPM_SINGLESHELL_S, "SPMgainmatrix_base_1.mat"),
        ("Single Sphere", lambda: SphereModel(*fit_sphere(apply_transform(g["scalp_vert"],
                                                                          to_head))),
         SPM_SINGLESPHERE_S, "SPMgainmatrix_base_sphere_1.mat"),
    ]:
        times, cpu = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            G = compute_gain(cortex, nrm, sens, model_fn())  # includes the model preparation
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        G_spm = scipy.io.loadmat(REF / "dataset" / ref_file)["G"]
        rel = float(np.linalg.norm(G - G_spm) / np.linalg.norm(G_spm))
        best = min(times)
        out[name] = {"seconds": best, "cpu_seconds": min(cpu), "spm_seconds": spm_s,
                     "speedup": spm_s / best, "rel_fro_vs_spm": rel,
                     "load_average": os.getloadavg()[0]}
        print(f"{name:14s} 10242 sources: {best:6.2f} s wall, {min(cpu):6.2f} s CPU (SPM "
              f"{spm_s} s, 1 thread) -> {spm_s / best:6.0f}x faster; rel. Frobenius vs SPM "
              f"{rel:.1e} (load average {os.getloadavg()[0]:.1f})")
    return out


def _multilayer_fsaverage5(n_layers: int, to_head: np.ndarray):
    from nilearn import datasets

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    pial, white, nrm = [], [], []
    for hemi in ("left", "right"):
        img = nib.load(fs[f"pial_{hemi}"])
        pial.append(img.agg_data("pointset").astype(float))
        white.append(nib.load(fs[f"white_{hemi}"]).agg_data("pointset").astype(float))
        nrm.append(spm_mesh_normals(pial[-1], img.agg_data("triangle")))
    pial, white, nrm = np.vstack(pial), np.vstack(white), np.vstack(nrm)
    link = normalize_rows(white - pial)
    zero = np.linalg.norm(link, axis=1) < 0.5  # medial wall: pial == white -> normals
    link[zero] = nrm[zero]
    fractions = np.linspace(1, 0, n_layers)  # 1 = pial ... 0 = white
    verts = np.vstack([white + f * (pial - white) for f in fractions])
    ori = np.tile(link, (n_layers, 1))
    # rotate orientations with the registration (MRI -> head) and move vertices to metres
    return apply_transform(verts, to_head), ori @ to_head[:3, :3].T / 1e-3


def _mne_sphere_forward(pos, ori, sens, origin):
    import mne
    from mne.io.constants import FIFF

    info = mne.create_info([f"C{i:04d}" for i in range(sens.n_coils)], 1000.0, "mag")
    for i, ch in enumerate(info["chs"]):
        ez = sens.coilori[i]
        ex = np.cross(ez, [1.0, 0, 0] if abs(ez[0]) < 0.9 else [0, 1.0, 0])
        ex /= np.linalg.norm(ex)
        ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
        ch["loc"][:] = np.r_[sens.coilpos[i], ex, np.cross(ez, ex), ez]
    info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
    src = mne.setup_volume_source_space(pos={"rr": pos, "nn": ori}, verbose=False)
    bem = mne.make_sphere_model(r0=origin, head_radius=None, verbose=False)
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=bem, meg=True, eeg=False,
                                    n_jobs=1, verbose=False)
    return fwd["sol"]["data"]  # (n_coils, 3 n_src), T/(A m)


def bench_multilayer(n_layers: int, skip_mne: bool) -> dict:
    g, to_head, sens = _geometry()
    pos, ori = _multilayer_fsaverage5(n_layers, to_head)
    ori = normalize_rows(ori)
    o, r = fit_sphere(apply_transform(g["scalp_vert"], to_head))
    model = SphereModel(o, r)
    n_src = len(pos)
    tracemalloc.start()
    t0 = time.perf_counter()
    G = compute_gain(pos, ori, sens, model, reducerank=None)  # MNE does not rank-reduce
    t_ours = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gain_bytes = G.nbytes
    res = {"n_sources": n_src, "n_channels": G.shape[0], "seconds": t_ours,
           "peak_bytes": peak, "gain_bytes": gain_bytes, "peak_over_gain": peak / gain_bytes}
    print(f"Single Sphere {n_src} sources x {G.shape[0]} channels: {t_ours:.2f} s, peak "
          f"{peak / 2**20:.0f} MB = {peak / gain_bytes:.2f} x gain ({gain_bytes / 2**20:.0f} MB)")
    if not skip_mne:
        tracemalloc.start()
        t0 = time.perf_counter()
        L = _mne_sphere_forward(pos, ori, sens, o)
        t_mne = time.perf_counter() - t0
        _, peak_mne = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # same quantity: channels = tra @ coils, projected on the orientations, fT/(nA m)
        L = L.reshape(sens.n_coils, n_src, 3)
        G_mne = (sens.tra @ np.einsum("csk,sk->cs", L, ori)) * 1e6
        rel = float(np.linalg.norm(G - G_mne) / np.linalg.norm(G_mne))
        res.update({"mne_seconds": t_mne, "speedup_vs_mne": t_mne / t_ours,
                    "mne_peak_bytes": peak_mne, "rel_fro_vs_mne": rel})
        print(f"mne.make_forward_solution (sphere), same sources/coils: {t_mne:.2f} s, peak "
              f"{peak_mne / 2**20:.0f} MB -> ours {t_mne / t_ours:.1f}x faster; "
              f"rel. Frobenius difference {rel:.1e}")
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-layers", type=int, default=11)
    ap.add_argument("--skip-mne", action="store_true")
    args = ap.parse_args(argv)
    if not (REF / "README.md").exists():
        print(f"SPM reference folder {REF} not found; set LAMEG_SHARED_DIR")
        return
    results = {"spm_reference": bench_spm_reference(),
               "multilayer": bench_multilayer(args.n_layers, args.skip_mne)}
    RESULTS.mkdir(exist_ok=True)
    name = "bench_forward_nomne.json" if args.skip_mne else "bench_forward.json"
    (RESULTS / name).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
