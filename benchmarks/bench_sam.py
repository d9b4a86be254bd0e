"""Benchmarks of ``lameg.sam``.

1. ``--vs samsrc`` (default): lameg's sam_cov, sam_wts and sam_3d against the real SAMsrcV5 5.1
   programs (``pip install samsrc``) on the same simulated CTF dataset (real 151-channel geometry,
   one dipole; ``Model MultiSphere``, a 1 cm grid): wall time of each program (SAMsrcV5: the
   process; lameg: the function call in a running interpreter) and the ratio, plus the largest
   relative difference of the weights and images. Results in ``benchmarks/results/bench_sam.json``.
2. ``--vs mne``: ``lameg.sam.sam_wts`` vs ``mne.beamformer.make_lcmv`` on an 11-layer mesh-sized
   problem (below).

Both get the same fixed-orientation lead fields (MNE sphere-model forward, point magnetometers)
and the same covariance; MNE runs with ``reg=0, noise_cov=None, weight_norm='unit-noise-gain'``,
which is SAM's normalised weight ``w/|w|``. Reports wall times, the speed-up and the largest
relative weight difference.

Run: ``python benchmarks/bench_sam.py [--vs samsrc|mne] [--trials 60] [--step 1]
[--layers 11] [--per-layer 2000] [--channels 274]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _helmet(n, radius=0.12, origin=(0.0, 0.0, 0.04)):
    k = np.arange(3 * n)
    z = 1 - 2 * (k + 0.5) / (3 * n)
    keep = z > -0.2
    z, k = z[keep][:n], k[keep][:n]
    ga = np.pi * (3 - np.sqrt(5))
    r = np.sqrt(1 - z**2)
    ori = np.c_[r * np.cos(ga * k), r * np.sin(ga * k), z]
    return np.asarray(origin) + radius * ori, ori


def bench_samsrc(args) -> dict:
    """lameg vs the SAMsrcV5 binaries on one analysis (see the module docstring)."""
    import json
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from sam_reference import (
        Pair,
        compare_cov_folder,
        compare_weights_folder,
        have_samsrc,
        read_image,
        rel,
        simulated_dataset,
    )

    if not have_samsrc():
        raise SystemExit("SAMsrcV5 (pip install samsrc) or the CTF data are not available")
    text = ("Marker stim 0.0 0.15 TRUE\nCovBand 2 40\nModel MultiSphere\nMRIDirectory mri\n"
            f"XBounds -7 7\nYBounds -6 6\nZBounds 1 11\nImageStep {args.step}\n"
            "CovType GLOBAL\nImageMetric Power\nMu 5\n")
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds = simulated_dataset(tmp / "data", n_trials=args.trials)
        pair = Pair(tmp / "run", ds)
        pair.write("b.param", text)
        for prog in ("sam_cov", "sam_wts", "sam_3d"):
            t0 = time.perf_counter()
            pair.run_sam(prog, "b")
            t_ref = time.perf_counter() - t0
            t0 = time.perf_counter()
            pair.run_ours(prog, "b", svd="exact")
            t_ours = time.perf_counter() - t0
            res[prog] = {"samsrc_s": t_ref, "lameg_s": t_ours, "ratio": t_ours / t_ref}
        folder = "b,2-40Hz"
        cov = compare_cov_folder(pair.sam("ref") / folder, pair.sam("ours") / folder,
                                 noise_tol=np.inf)
        w = compare_weights_folder(pair.sam("ref") / folder, pair.sam("ours") / folder,
                                   tol=np.inf, noise_tol=np.inf)
        img = "subjA,b,stim,3D_PWR,Mean.nii"
        res["max_rel_cov_diff"] = cov["cov"]
        res["max_rel_weight_diff"] = w["weights"]
        a, b = read_image(pair.sam("ours") / img), read_image(pair.sam("ref") / img)
        # images scale with the noise floor: lameg's exact singular values differ from GSL's
        # Jacobi ones by a few per cent (svd="gsl" reproduces them, see lameg.sam.gsl)
        res["max_rel_image_diff"] = rel(a, b)
        res["image_correlation"] = float(np.corrcoef(a, b)[0, 1])
        res["n_voxels"] = int(read_image(pair.sam("ref") / img).size)
        res["n_trials"] = args.trials
    total_ref = sum(res[p]["samsrc_s"] for p in ("sam_cov", "sam_wts", "sam_3d"))
    total_ours = sum(res[p]["lameg_s"] for p in ("sam_cov", "sam_wts", "sam_3d"))
    res["total"] = {"samsrc_s": total_ref, "lameg_s": total_ours, "ratio": total_ours / total_ref}
    for k in ("sam_cov", "sam_wts", "sam_3d", "total"):
        r = res[k]
        print(f"{k:8s} SAMsrcV5 {r['samsrc_s']:7.2f} s   lameg {r['lameg_s']:7.2f} s   "
              f"lameg/SAMsrcV5 {r['ratio']:5.2f}")
    print(f"voxels {res['n_voxels']}, trials {args.trials}; max relative differences: covariance "
          f"{res['max_rel_cov_diff']:.1e}, weights {res['max_rel_weight_diff']:.1e}, image "
          f"{res['max_rel_image_diff']:.1e} (noise floor: exact vs GSL), image correlation "
          f"{res['image_correlation']:.8f}")
    out = Path(__file__).resolve().parent / "results" / "bench_sam.json"
    out.write_text(json.dumps(res, indent=2))
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vs", choices=("samsrc", "mne"), default="samsrc")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--layers", type=int, default=11)
    ap.add_argument("--per-layer", type=int, default=2000)
    ap.add_argument("--channels", type=int, default=274)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.vs == "samsrc":
        return bench_samsrc(args)

    import mne
    from mne.io.constants import FIFF

    from lameg.sam import parse_param_text, sam_wts
    from lameg.sam.cov import SamCovariance, noise_floor

    mne.set_log_level("error")
    origin = np.array([0.0, 0.0, 0.04])
    m = args.channels
    pos, ori = _helmet(m)
    info = mne.create_info([f"M{i:03d}" for i in range(m)], 600.0, "mag")
    for i, ch in enumerate(info["chs"]):
        ez = ori[i]
        ex = np.cross(ez, [0.3, 1, 0.2])
        ex /= np.linalg.norm(ex)
        ch["loc"][:3], ch["loc"][3:6], ch["loc"][6:9], ch["loc"][9:12] = pos[i], ex, np.cross(ez, ex), ez
        ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
    info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))

    # an 11-layer "mesh": the same columns at depths 7.0 .. 6.5 cm, tangential orientations
    rng = np.random.default_rng(0)
    d = rng.normal(size=(args.per_layer, 3))
    d[:, 2] = np.abs(d[:, 2]) + 0.2
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    radii = np.linspace(0.070, 0.065, args.layers)
    rr = np.concatenate([origin + r * d for r in radii])
    t = np.cross(d, [0.0, 0.0, 1.0]) + 0.3 * np.cross(d, [1.0, 0.0, 0.0])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    nn = np.tile(t, (args.layers, 1))
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn))
    fwd = mne.make_forward_solution(info, None, src, mne.make_sphere_model(origin, None))
    fwd = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, use_cps=False)
    G = fwd["sol"]["data"]
    n_src = G.shape[1]

    # covariance: a few active sources plus sensor noise
    X = G[:, rng.choice(n_src, 5)] * 1e-8 @ rng.normal(size=(5, 20000))
    X += 2e-14 * rng.normal(size=X.shape)
    C = X @ X.T / X.shape[1]
    cov = mne.Covariance(C, info.ch_names, [], [], X.shape[1])
    sc = SamCovariance("Global", C, (1.0, 40.0), 40.0, noise_floor(np.linalg.eigvalsh(C)),
                       1, X.shape[1], info.ch_names)
    params = parse_param_text("CovBand 1 40\n")

    def run_sam():
        return sam_wts(params, {"Global": sc}, lead_field=G, atlas=(rr * 1e3, nn), write=False)

    def run_mne():
        return mne.beamformer.make_lcmv(info, fwd, cov, reg=0.0, noise_cov=None, pick_ori=None,
                                        weight_norm="unit-noise-gain", rank=None)

    def best(f):
        times, out = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_sam, w = best(run_sam)
    t_mne, filt = best(run_mne)
    W = w.weights["Global"]
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    Wm = filt["weights"] @ filt["whitener"] @ filt["proj"]
    diff = np.abs(Wn - Wm).max() / np.abs(Wm).max()
    res = {"n_channels": m, "n_sources": n_src, "sam_wts_s": t_sam, "mne_make_lcmv_s": t_mne,
           "speedup": t_mne / t_sam, "max_rel_weight_diff": diff}
    print(f"sources {n_src} ({args.layers} layers x {args.per_layer}), channels {m}")
    print(f"lameg sam_wts      {t_sam:8.3f} s")
    print(f"mne make_lcmv      {t_mne:8.3f} s")
    print(f"speed-up           {t_mne / t_sam:8.1f} x")
    print(f"max |w/|w| - W_mne| / max|W_mne| = {diff:.2e}")
    return res


if __name__ == "__main__":
    main()
