"""Laminar inference benchmark on the bundled test participant (Szul et al. 2025, reduced scale).

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_laminar            # full run
    .venv/bin/python -m benchmarks.bench_laminar --quick    # a few columns

Steps: build an 11-layer surface set of ``test_data`` (in a scratch copy of the FreeSurfer
subject), coregister the CTF template to the multilayer mesh (Single Shell), then

1. time and memory of one 11-layer file-based model comparison (``lameg.laminar.model_comparison``,
   MSP with a single prior at the simulated column) on a simulated dataset;
2. a laminar-accuracy sweep in memory (``lameg.sweep.run_laminar_sweep``): columns x 11 layers x
   SNRs (perfect co-registration) plus fiducial jitter at 0 dB, on 2 cores with joblib;
   throughput in simulations (cells, each 11 inversions) per minute.

Writes ``benchmarks/results/laminar_sweep.csv``, ``laminar_sweep.png`` and
``laminar_summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-columns", type=int, default=20)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--snrs", type=float, nargs="+", default=None,
                    help="SNRs in dB (default -500 -40 -20 -10 0; -500 = noise only)")
    ap.add_argument("--jitters", type=float, nargs="+", default=None,
                    help="fiducial jitter levels in mm (default 0 2 5)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lameg_bench_laminar_"))
    os.environ.setdefault("LAMEG_CACHE_DIR", str(work / "cache"))
    summary: dict = {}
    try:
        _run(args, out, work, summary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / "laminar_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _run(args, out: Path, work: Path, summary: dict) -> None:
    from threadpoolctl import threadpool_limits

    from lameg.invert import coregister
    from lameg.io.spm_meeg import load_meeg
    from lameg.laminar import model_comparison
    from lameg.simulate import run_current_density_simulation
    from lameg.surf import LayerSurfaceSet
    from lameg.sweep import (
        FileForward,
        LaminarModel,
        SweepSettings,
        chance_error,
        plot_confusion,
        plot_error_vs_snr,
        run_laminar_sweep,
    )
    from lameg.util import get_fiducial_coords

    td = REPO / "test_data"
    if not (td / "participants.tsv").exists():
        raise SystemExit("test_data/ is missing (run tools/make_test_data.py)")
    subjects = work / "fs"
    shutil.copytree(td / "fs", subjects)
    spm_dir = work / "spm"
    spm_dir.mkdir()
    for ext in (".mat", ".dat"):
        shutil.copy(td / "sub-01/meg/ses-01/spm" / f"sim_ctf_noise{ext}", spm_dir / f"tmpl{ext}")
    template = spm_dir / "tmpl.mat"
    fid = get_fiducial_coords("sub-01", td / "participants.tsv")
    n_layers = 11
    t0 = time.perf_counter()
    surf_set = LayerSurfaceSet("sub-01", n_layers, subjects_dir=str(subjects))
    surf_set.create(ds_factor=0.1, orientation="link_vector", fix_orientation=True,
                    verbose=False)
    summary["surface_set_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    coregister(fid, template, surf_set, viz=False)
    summary["coregister_multilayer_s"] = time.perf_counter() - t0
    model = LaminarModel.from_dataset(
        template, n_layers=n_layers, fid_coords=fid,
        forward=FileForward.create(template, surf_set, work / "scratch"))
    nv = model.n_vertices
    summary.update(n_vertices_per_layer=nv, n_channels=int(model.gain.shape[0]),
                   n_trials=model.n_trials, n_samples=int(model.time.size))
    print(f"{n_layers} layers x {nv} vertices, {model.gain.shape[0]} channels, "
          f"{model.n_trials} trials x {model.time.size} samples", flush=True)

    settings = SweepSettings(method="MSP", patch_size=5.0, n_temp_modes=4)
    rs = settings.resolved(model.time)
    # columns: random (seed 42, as the protocol), restricted to columns thicker than 1 mm
    rng = np.random.default_rng(42)
    ok = np.flatnonzero(model.thickness > 1.0)
    n_cols = 4 if args.quick else args.n_columns
    columns = np.sort(rng.choice(ok, n_cols, replace=False))

    # 1. one file-based 11-layer model comparison: time and memory
    col = int(columns[0])
    with threadpool_limits(1, "blas"):
        sim = run_current_density_simulation(
            template, "sim_", 5 * nv + col, rs.signal, rs.dipole_moment, rs.sim_patch_size, 0.0,
            average_trials=True, seed=1)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        F, _ = model_comparison(fid, sim, surf_set, method="MSP", viz=False,
                                invert_kwargs=dict(priors=[col], patch_size=5.0,
                                                   n_temp_modes=4, woi=list(rs.woi),
                                                   hann_windowing=True))
        summary["model_comparison_11_layers_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        F2, _ = model_comparison(fid, sim, surf_set, method="MSP", viz=False,
                                 invert_kwargs=dict(priors=[col], patch_size=5.0,
                                                    n_temp_modes=4, woi=list(rs.woi),
                                                    hann_windowing=True))
        summary["model_comparison_11_layers_cached_s"] = time.perf_counter() - t0
    summary["model_comparison_peak_rss_mb"] = _rss_mb()
    summary["model_comparison_rss_growth_mb"] = _rss_mb() - rss0
    # laMEG/SPM peer (indicative, from the laMEG tutorial logs, 32-worker MATLAB pool): one
    # head model + forward ~1.5 min and one inversion ~5 min per layer model.
    summary["lameg_spm_indicative_11_layer_model_comparison_s"] = 11 * (1.5 + 5.0) * 60
    summary["speedup_vs_lameg_indicative"] = (
        summary["lameg_spm_indicative_11_layer_model_comparison_s"]
        / summary["model_comparison_11_layers_s"])
    summary["model_comparison_true_layer"] = 5
    summary["model_comparison_est_layer"] = int(np.argmax(F))
    load_meeg(sim)
    print(f"model comparison: {summary['model_comparison_11_layers_s']:.1f} s "
          f"(cached {summary['model_comparison_11_layers_cached_s']:.1f} s), "
          f"argmax F = {int(np.argmax(F))} (true 5)", flush=True)

    # 2. sweep: SNRs at perfect co-registration, then jitter at 0 dB
    snrs = args.snrs or ([-500.0, -40.0, -20.0, -10.0, 0.0] if not args.quick
                         else [-500.0, -10.0, 0.0])
    jit_cols = columns[: max(2, len(columns) // 2)]
    jitters = args.jitters or ([0.0, 2.0, 5.0] if not args.quick else [0.0, 5.0])
    t0 = time.perf_counter()
    tab = run_laminar_sweep(model, columns, snrs, settings=settings, seed=42, backend="joblib",
                            n_jobs=args.n_jobs)
    dt_snr = time.perf_counter() - t0
    t0 = time.perf_counter()
    tabj = run_laminar_sweep(model, jit_cols, [0.0], jitters=jitters, settings=settings,
                             seed=43, backend="joblib", n_jobs=args.n_jobs)
    dt_jit = time.perf_counter() - t0
    tabj = tabj[tabj["jitter"] > 0]
    import pandas as pd

    full = pd.concat([tab, tabj], ignore_index=True)
    full.to_csv(out / "laminar_sweep.csv", index=False)
    summary["sweep_cells_snr"] = int(len(tab))
    summary["sweep_snr_s"] = dt_snr
    summary["sweep_throughput_sims_per_min"] = 60.0 * len(tab) / dt_snr
    summary["sweep_inversions_per_s"] = len(tab) * n_layers / dt_snr
    summary["sweep_jitter_s"] = dt_jit
    summary["chance_error_layers"] = chance_error(n_layers)
    summary["mean_error_by_snr"] = {f"{k:g}": float(v) for k, v in
                                    tab.groupby("snr")["error_layers"].mean().items()}
    summary["mean_error_by_jitter_at_0dB"] = {
        f"{k:g}": float(v) for k, v in
        pd.concat([tab[(tab.snr == 0.0) & tab.column.isin(jit_cols)], tabj])
        .groupby("jitter")["error_layers"].mean().items()}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    plot_error_vs_snr(tab, ax=axes[0], n_layers=n_layers)
    axes[0].set_title("perfect co-registration")
    jt = pd.concat([tab[(tab.snr == 0.0) & tab.column.isin(jit_cols)], tabj])
    m = jt.groupby("jitter")["error_layers"].agg(["mean", "sem"])
    axes[1].errorbar(m.index, m["mean"], yerr=m["sem"], marker="o", capsize=3)
    axes[1].axhline(chance_error(n_layers), color="grey", ls="--")
    axes[1].set_xlabel("fiducial error (mm)")
    axes[1].set_ylabel("layer error (layers)")
    axes[1].set_title("co-registration error, 0 dB")
    plot_confusion(tab[tab.snr == max(snrs)], ax=axes[2], n_layers=n_layers)
    axes[2].set_title(f"SNR {max(snrs):g} dB")
    fig.tight_layout()
    fig.savefig(out / "laminar_sweep.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
