"""Laminar inference benchmark on the bundled test participant (Szul et al. 2025 protocol).

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_laminar                   # throughput + reduced runs
    .venv/bin/python -m benchmarks.bench_laminar --map-columns all --szul   # full scale
    .venv/bin/python -m benchmarks.bench_laminar --quick           # a few columns
    .venv/bin/python -m benchmarks.bench_laminar --participant s1 --szul   # S1, after bench_fullres

Steps: build an 11-layer surface set of ``test_data`` (in a scratch copy of the FreeSurfer
subject, ``ds_factor=0.1``: 2,015 columns), coregister the CTF template to the multilayer mesh
(Single Shell), then

1. one file-based 11-layer model comparison (``lameg.laminar.model_comparison``, MSP with a
   single prior at the simulated column): time and memory;
2. sweep throughput in simulations (each 11 inversions) per minute on ``--n-jobs`` processes
   with the compressed-frame free energies, the same cells through the reference engine
   (``SweepSettings(fast=False)``, one process, fewer cells) for the speed-up and the equality
   of free energies and layer picks; process CPU time is reported beside wall time because the
   machine may be shared (the load average is recorded);
3. a whole-cortex laminar-accuracy map (``--map-columns``, ``all`` = every column) at -20 dB
   against the anatomical score (Spearman correlation, figure);
4. with ``--szul``, the Szul et al. protocol: ``--szul-columns`` random columns x 11 layers at
   SNR -500 (noise only), -100, -50, -35, -20, -10, 0 dB, and fiducial jitter 0.5-5 mm at 0 dB;
   mean layer error against SNR and co-registration error, with the qualitative expectations
   of the simulation-protocols reference checked.

Writes ``benchmarks/results/laminar_summary.json`` (the previous numbers are kept under
``previous``), ``laminar_table.md`` (targets, previous and new numbers, ratios),
``laminar_sweep.csv``/``.png``, ``laminar_map.csv``/``.png`` and ``laminar_szul.csv``/``.png``.
Results are written after every step. ``--participant s1`` runs only step 4 on the
full-resolution S1 participant built by ``benchmarks.bench_fullres`` (~29k columns x 11 layers,
Neuromag-306) and writes ``laminar_szul_s1.{csv,png,json}``.
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
SZUL_SNRS = [-500.0, -100.0, -50.0, -35.0, -20.0, -10.0, 0.0]
SZUL_JITTERS = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0]
# earlier measurements of this benchmark (same participant and settings) before the
# compressed-frame free energies
PREVIOUS = {"sweep_throughput_sims_per_min": 30.8, "sweep_inversions_per_s": 5.65,
            "full_map_min_extrapolated": 2015 * 11 / 30.8}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load() -> float:
    return float(os.getloadavg()[0])


class _Clock:
    """Wall time and CPU time of this process and its worker processes (joblib's loky
    workers outlive a call, so their CPU is read with psutil, per process)."""

    def __enter__(self):
        self.w0 = time.perf_counter()
        self.c0 = self._cpu()
        self.load0 = _load()
        return self

    @staticmethod
    def _cpu() -> dict:
        import psutil

        me = psutil.Process()
        out = {}
        for p in [me] + me.children(recursive=True):
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        c1 = self._cpu()
        self.cpu = sum(v - self.c0.get(pid, 0.0) for pid, v in c1.items())
        self.load = 0.5 * (self.load0 + _load())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--throughput-columns", type=int, default=20)
    ap.add_argument("--map-columns", default="200",
                    help="columns of the accuracy map: a number (random subset) or 'all'")
    ap.add_argument("--szul", action="store_true", help="run the Szul et al. protocol")
    ap.add_argument("--szul-columns", type=int, default=100)
    ap.add_argument("--skip-file", action="store_true",
                    help="skip the file-based model comparison")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--participant", choices=("test", "s1"), default="test",
                    help="'s1': only the Szul et al. protocol, on the full-resolution S1 "
                         "participant left by benchmarks.bench_fullres")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lameg_bench_laminar_"))
    os.environ.setdefault("LAMEG_CACHE_DIR", str(work / "cache"))
    if args.participant == "s1":
        try:
            _run_s1(args, out, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    old = out / "laminar_summary.json"
    summary: dict = {"previous": PREVIOUS}
    if old.exists():
        try:
            prev = json.loads(old.read_text())
            summary["previous_run"] = {k: v for k, v in prev.items()
                                       if not isinstance(v, dict)}
        except ValueError:
            pass
    try:
        _run(args, out, work, summary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _write(out, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "previous_run"}, indent=2))
    return 0


def _write(out: Path, summary: dict) -> None:
    (out / "laminar_summary.json").write_text(json.dumps(summary, indent=2))
    (out / "laminar_table.md").write_text(_table(summary))


def _fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.{nd}f}" if abs(x) < 1e5 else f"{x:.3g}"


def _table(s: dict) -> str:
    p = s["previous"]
    rows = [("Sweep throughput, sims/min (11 inversions each), wall", ">= 300",
             p["sweep_throughput_sims_per_min"], s.get("sweep_throughput_sims_per_min")),
            ("Sweep throughput, sims per CPU-minute", "-", None,
             s.get("sweep_sims_per_cpu_min")),
            ("Inversions per second (wall)", "-", p["sweep_inversions_per_s"],
             s.get("sweep_inversions_per_s")),
            ("Reference engine, sims per CPU-minute (same cells)", "-", None,
             s.get("reference_sims_per_cpu_min")),
            ("Full accuracy map 2,015 x 11, min" + (
                " (extrapolated from the mapped subset)" if s.get("map_full_is_extrapolated")
                else ""), "<= 20",
             p["full_map_min_extrapolated"], s.get("map_full_min")),
            ("Full accuracy map at its CPU rate on 2 idle cores, min", "<= 20", None,
             (22165 / (2 * s["map_sims_per_cpu_min"])) if s.get("map_sims_per_cpu_min")
             else None),
            ("11-layer file-based model comparison, s", "-", None,
             s.get("model_comparison_11_layers_s"))]
    lines = ["# Laminar benchmark (test participant, 2,015 columns x 11 layers, CTF 274)", "",
             f"Load average during the run: {_fmt(s.get('load_average'), 2)} "
             "(2 cores shared; CPU-time rates are the load-independent numbers).", "",
             "| quantity | target | previous | now | now / previous |",
             "|---|---|---|---|---|"]
    for name, target, prev, now in rows:
        ratio = now / prev if (now is not None and prev) else None
        if name.startswith("Full") and ratio:
            ratio = prev / now
        lines.append(f"| {name} | {target} | {_fmt(prev)} | {_fmt(now)} | "
                     f"{_fmt(ratio, 1) + 'x' if ratio else '-'} |")
    lines += ["", "Peer ratios measured in this run:", ""]
    if s.get("speedup_vs_reference_engine"):
        lines.append(f"* compressed frame vs the reference engine (same cells, CPU time): "
                     f"{s['speedup_vs_reference_engine']:.1f}x; largest relative free-energy "
                     f"difference {s.get('fast_vs_reference_max_rel_dF', float('nan')):.1e}, "
                     f"same layer picks: {s.get('fast_vs_reference_same_picks')}")
    if s.get("speedup_vs_lameg_indicative"):
        lines.append(f"* file-based 11-layer model comparison vs laMEG/SPM (indicative, from "
                     f"laMEG logs): {s['speedup_vs_lameg_indicative']:.0f}x")
    if "map_spearman_r" in s:
        lines += ["", f"Accuracy map ({s['map_columns']} columns, SNR {s['map_snr']:g} dB): "
                  f"mean error {s['map_mean_error']:.2f} layers (chance "
                  f"{s['chance_error_layers']:.2f}); Spearman r(anatomical score, error) = "
                  f"{s['map_spearman_r']:.3f} (p = {s['map_spearman_p']:.2g}); "
                  f"{_fmt(s.get('map_wall_min'), 1)} min wall on {s.get('n_jobs')} processes."]
    if "szul_error_by_snr" in s:
        lines += ["", "Szul et al. protocol (mean layer error, layers):", "",
                  "| SNR (dB) | " + " | ".join(s["szul_error_by_snr"]) + " |",
                  "|---" * (len(s["szul_error_by_snr"]) + 1) + "|",
                  "| error | " + " | ".join(f"{v:.2f}" for v in
                                             s["szul_error_by_snr"].values()) + " |", ""]
        if "szul_error_by_jitter" in s:
            lines += ["| jitter (mm, 0 dB) | " + " | ".join(s["szul_error_by_jitter"]) + " |",
                      "|---" * (len(s["szul_error_by_jitter"]) + 1) + "|",
                      "| error | " + " | ".join(f"{v:.2f}" for v in
                                                 s["szul_error_by_jitter"].values()) + " |",
                      ""]
        for k, v in s.get("szul_expectations", {}).items():
            lines.append(f"* {k}: {'yes' if v else 'NO'}")
    return "\n".join(lines) + "\n"


def _run(args, out: Path, work: Path, summary: dict) -> None:
    import matplotlib
    from threadpoolctl import threadpool_limits

    from lameg.anatomy import anatomical_predictors, anatomical_score
    from lameg.invert import coregister
    from lameg.laminar import model_comparison
    from lameg.simulate import run_current_density_simulation
    from lameg.surf import LayerSurfaceSet
    from lameg.sweep import (
        FileForward,
        LaminarModel,
        SweepSettings,
        chance_error,
        laminar_accuracy_map,
        plot_accuracy_map,
        run_laminar_sweep,
    )
    from lameg.util import get_fiducial_coords

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

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
    summary.update(n_jobs=args.n_jobs, chance_error_layers=chance_error(n_layers))
    loads = [_load()]
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
    rng = np.random.default_rng(42)
    ok = np.flatnonzero(model.thickness > 1.0)
    n_cols = 4 if args.quick else args.throughput_columns
    columns = np.sort(rng.choice(ok, n_cols, replace=False))

    # 1. one file-based 11-layer model comparison
    if not args.skip_file:
        col = int(columns[0])
        with threadpool_limits(1, "blas"):
            sim = run_current_density_simulation(
                template, "sim_", 5 * nv + col, rs.signal, rs.dipole_moment,
                rs.sim_patch_size, 0.0, average_trials=True, seed=1)
            kw = dict(priors=[col], patch_size=5.0, n_temp_modes=4, woi=list(rs.woi),
                      hann_windowing=True)
            t0 = time.perf_counter()
            F, _ = model_comparison(fid, sim, surf_set, method="MSP", viz=False,
                                    invert_kwargs=kw)
            summary["model_comparison_11_layers_s"] = time.perf_counter() - t0
        summary["model_comparison_peak_rss_mb"] = _rss_mb()
        # laMEG/SPM peer (indicative, from the laMEG tutorial logs, 32-worker MATLAB pool):
        # one head model + forward ~1.5 min and one inversion ~5 min per layer model.
        summary["lameg_spm_indicative_11_layer_model_comparison_s"] = 11 * (1.5 + 5.0) * 60
        summary["speedup_vs_lameg_indicative"] = (
            summary["lameg_spm_indicative_11_layer_model_comparison_s"]
            / summary["model_comparison_11_layers_s"])
        summary["model_comparison_est_layer"] = int(np.argmax(F))
        print(f"file-based model comparison: {summary['model_comparison_11_layers_s']:.1f} s, "
              f"argmax F = {int(np.argmax(F))} (true 5)", flush=True)
        _write(out, summary)

    # 2. throughput: compressed frame on n_jobs processes, reference engine on the same cells
    snrs = [-20.0, 0.0]
    run_laminar_sweep(model, columns[:1], [0.0], layers=[0], settings=settings, seed=0,
                      backend="serial")  # kernels into the cache
    with _Clock() as c:
        tab = run_laminar_sweep(model, columns, snrs, settings=settings, seed=42,
                                backend="joblib", n_jobs=args.n_jobs)
    summary.update(sweep_cells=int(len(tab)), sweep_wall_s=c.wall,
                   sweep_throughput_sims_per_min=60.0 * len(tab) / c.wall,
                   sweep_inversions_per_s=len(tab) * n_layers / c.wall,
                   sweep_sims_per_cpu_min=60.0 * len(tab) / c.cpu, load_average=c.load)
    loads.append(c.load)
    print(f"sweep: {len(tab)} simulations in {c.wall:.1f} s on {args.n_jobs} processes = "
          f"{summary['sweep_throughput_sims_per_min']:.0f}/min "
          f"({summary['sweep_sims_per_cpu_min']:.0f} per CPU-minute, load {c.load:.1f})",
          flush=True)
    ref_cols = columns[: 1 if args.quick else 2]
    with _Clock() as c:
        ref = run_laminar_sweep(model, ref_cols, snrs, settings=SweepSettings(
            method="MSP", patch_size=5.0, n_temp_modes=4, fast=False), seed=42,
            backend="serial", blas_threads=1)
    fast = tab[tab.column.isin(ref_cols)].reset_index(drop=True)
    fcols = [f"F_{e}" for e in range(n_layers)]
    summary.update(reference_cells=int(len(ref)),
                   reference_sims_per_cpu_min=60.0 * len(ref) / c.cpu,
                   fast_vs_reference_same_picks=bool(np.array_equal(fast.est_layer,
                                                                    ref.est_layer)),
                   fast_vs_reference_max_rel_dF=float(np.max(np.abs(
                       fast[fcols].to_numpy() - ref[fcols].to_numpy())
                       / np.abs(ref[fcols].to_numpy()))))
    summary["speedup_vs_reference_engine"] = (summary["sweep_sims_per_cpu_min"]
                                              / summary["reference_sims_per_cpu_min"])
    print(f"reference engine: {summary['reference_sims_per_cpu_min']:.1f} sims per CPU-minute; "
          f"speed-up {summary['speedup_vs_reference_engine']:.1f}x; max rel dF "
          f"{summary['fast_vs_reference_max_rel_dF']:.1e}", flush=True)
    tab.to_csv(out / "laminar_sweep.csv", index=False)
    summary["mean_error_by_snr"] = {f"{k:g}": float(v) for k, v in
                                    tab.groupby("snr")["error_layers"].mean().items()}
    _write(out, summary)

    # 3. accuracy map against the anatomical score
    if args.map_columns == "all":
        mcols = np.arange(nv)
    else:
        k = min(nv, 20 if args.quick else int(args.map_columns))
        mcols = np.sort(np.random.default_rng(7).choice(nv, k, replace=False))
    score = anatomical_score(anatomical_predictors(str(template), surf_set))
    with _Clock() as c:
        acc = laminar_accuracy_map(model, columns=mcols, snr=-20.0, settings=settings,
                                   seed=3, backend="joblib", n_jobs=args.n_jobs,
                                   verbose=True)
    loads.append(c.load)
    corr = acc.correlation(score)
    full_min = c.wall / 60.0 * nv / mcols.size
    summary.update(map_columns=int(mcols.size), map_snr=-20.0, map_wall_min=c.wall / 60.0,
                   map_sims_per_cpu_min=60.0 * len(acc.table) / c.cpu,
                   map_full_min=full_min if mcols.size < nv else c.wall / 60.0,
                   map_full_is_extrapolated=bool(mcols.size < nv),
                   map_mean_error=float(acc.error.mean()),
                   map_spearman_r=corr["spearman_r"], map_spearman_p=corr["spearman_p"],
                   map_pearson_r=corr["pearson_r"], map_load=c.load)
    pd.DataFrame(dict(column=acc.columns, error=acc.error, error_mm=acc.error_mm,
                      bias=acc.bias, accuracy=acc.accuracy,
                      anatomical_score=score[acc.columns])).to_csv(out / "laminar_map.csv",
                                                                   index=False)
    pial = surf_set.load("pial", stage="ds")
    fig = plot_accuracy_map(acc, pial.darrays[0].data, pial.darrays[1].data, score=score)
    fig.savefig(out / "laminar_map.png", dpi=110)
    plt.close(fig)
    print(f"accuracy map: {mcols.size} columns in {c.wall / 60:.1f} min; Spearman r = "
          f"{corr['spearman_r']:.3f}", flush=True)
    summary["load_average"] = float(np.mean(loads))
    _write(out, summary)

    # 4. Szul et al. protocol
    if args.szul:
        _szul_protocol(model, args, out, summary, "laminar_szul")


def _run_s1(args, out: Path, work: Path) -> None:
    """The Szul et al. protocol on S1 (~29k columns x 11 layers, Neuromag-306).

    Uses what ``python -m benchmarks.bench_fullres`` leaves in its work folder: the 11-layer
    surface set, the co-registered Neuromag dataset and the fiducials it derived.
    """
    from lameg.surf import LayerSurfaceSet
    from lameg.sweep import FileForward, LaminarModel, chance_error

    root = REPO / "benchmarks" / "_cache" / "bench_fullres"
    info = RESULTS / "bench_fullres.json"
    template = root / "meg" / "neuromag.mat"
    if not (template.exists() and info.exists()):
        raise SystemExit("run python -m benchmarks.bench_fullres first (it builds S1)")
    fid = json.loads(info.read_text())["fiducials"]
    surf_set = LayerSurfaceSet("S1", 11, subjects_dir=str(root))
    t0 = time.perf_counter()
    model = LaminarModel.from_dataset(
        template, n_layers=11, fid_coords=fid,
        forward=FileForward.create(template, surf_set, work / "scratch"))
    summary = {"participant": "S1 (pycortex), Neuromag-306", "n_vertices_per_layer":
               model.n_vertices, "n_channels": int(model.gain.shape[0]), "n_jobs": args.n_jobs,
               "model_load_s": time.perf_counter() - t0,
               "chance_error_layers": chance_error(11)}
    print(f"S1: 11 layers x {model.n_vertices} vertices, {model.gain.shape[0]} channels",
          flush=True)
    def save():
        (out / "laminar_szul_s1.json").write_text(json.dumps(summary, indent=1))

    try:
        _szul_protocol(model, args, out, summary, "laminar_szul_s1", save=save)
    finally:
        save()


def _szul_protocol(model, args, out: Path, summary: dict, name: str, save=None) -> None:
    """Szul et al. (2025): SNR and fiducial-error sweeps on random columns; table and figure.

    ``save()`` writes the summary after each step (default: the test participant's table).
    """
    save = save or (lambda: _write(out, summary))
    import matplotlib.pyplot as plt
    import pandas as pd

    from lameg.sweep import (
        SweepSettings,
        chance_error,
        plot_confusion,
        plot_error_vs_snr,
        run_laminar_sweep,
    )

    n_layers, nv = model.n_layers, model.n_vertices
    settings = SweepSettings(method="MSP", patch_size=5.0, n_temp_modes=4)
    scols = np.sort(np.random.default_rng(42).choice(nv, 10 if args.quick
                                                     else args.szul_columns, replace=False))
    with _Clock() as c:
        snr_tab = run_laminar_sweep(model, scols, SZUL_SNRS, settings=settings, seed=42,
                                    backend="joblib", n_jobs=args.n_jobs, verbose=True)
    summary["szul_snr_wall_min"] = c.wall / 60.0
    summary["szul_error_by_snr"] = {f"{k:g}": float(v) for k, v in
                                    snr_tab.groupby("snr")["error_layers"].mean().items()}
    snr_tab.to_csv(out / f"{name}.csv", index=False)
    save()
    with _Clock() as c:
        jit_tab = run_laminar_sweep(model, scols, [0.0], jitters=SZUL_JITTERS,
                                    settings=settings, seed=43, backend="joblib",
                                    n_jobs=args.n_jobs, verbose=True)
    summary["szul_jitter_wall_min"] = c.wall / 60.0
    full = pd.concat([snr_tab, jit_tab], ignore_index=True)
    full.to_csv(out / f"{name}.csv", index=False)
    jt = pd.concat([snr_tab[snr_tab.snr == 0.0], jit_tab], ignore_index=True)
    by_jit = jt.groupby("jitter")["error_layers"].mean()
    summary["szul_error_by_jitter"] = {f"{k:g}": float(v) for k, v in by_jit.items()}
    by_snr = pd.Series(summary["szul_error_by_snr"]).astype(float)
    by_snr.index = by_snr.index.astype(float)
    by_snr = by_snr.sort_index()
    chance = chance_error(n_layers)
    summary["szul_expectations"] = {
        "error decreases with SNR (0 dB < -20 dB < noise only)":
            bool(by_snr[0.0] < by_snr[-20.0] < by_snr[-500.0]),
        "noise only at or above ~chance (extreme layers win)":
            bool(by_snr[-500.0] >= 0.9 * chance),
        "error at 0 dB, perfect co-registration, below 1 layer": bool(by_snr[0.0] < 1.0),
        "error grows with fiducial error (5 mm > 0.5 mm)": bool(by_jit[5.0] > by_jit[0.5]),
    }
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    plot_error_vs_snr(snr_tab, ax=axes[0], n_layers=n_layers)
    axes[0].set_title(f"{scols.size} columns, perfect co-registration")
    m = jt.groupby("jitter")["error_layers"].agg(["mean", "sem"])
    axes[1].errorbar(m.index, m["mean"], yerr=m["sem"], marker="o", capsize=3)
    axes[1].axhline(chance, color="grey", ls="--", label="chance")
    axes[1].set_xlabel("fiducial error (mm)")
    axes[1].set_ylabel("layer error (layers)")
    axes[1].set_title("co-registration error, 0 dB")
    axes[1].legend(fontsize=8)
    plot_confusion(snr_tab[snr_tab.snr == -20.0], ax=axes[2], n_layers=n_layers)
    axes[2].set_title("SNR -20 dB")
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)
    save()




if __name__ == "__main__":
    sys.exit(main())
