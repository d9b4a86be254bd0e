"""Benchmark of ``LayerSurfaceSet.create`` and the per-vertex predictors against laMEG 0.2.1.

Usage::

    python -m benchmarks.bench_surf [--source pycortex|synthetic] [--n-layers 11]
                                    [--no-lameg] [--workdir DIR] [--repeats 3]

Subjects:

* ``pycortex`` (default): the individual subject "S1" of the pycortex sdist (about 150k
  vertices per hemisphere, white/pial with vertex correspondence, and its 1 mm T1), fetched at
  run time with ``pip download --no-deps --no-binary pycortex pycortex`` into
  ``benchmarks/_cache`` (never committed). The scalp is extracted from the T1 by ``create``.
* ``synthetic`` (offline): nilearn's fsaverage5 hemispheres linearly subdivided twice (163842
  vertices per hemisphere) with a medial 'unknown' cap and an ellipsoidal scalp.

Measured:

1. ``create()`` for ``--n-layers`` layers (ds_factor 0.1), in a child process: wall time and
   peak resident memory (targets: < 2 min and < 4 GB on 2 cores).
2. The predictors thickness, distance to the scalp and radiality to the scalp on the created
   set, against laMEG 0.2.1's own implementations on the same files: ``lameg==0.2.1`` is
   fetched from PyPI (``pip download --no-deps``) and its ``lameg/surf.py`` imported with
   stand-ins for the MATLAB runtime and ``lameg.util`` imports (the predictors do not use
   them). Values are compared where the definitions agree (thickness; nearest-scalp-vertex
   distance and radiality, ``method='vertex'``); the exact point-to-surface distance and the
   normal at the closest scalp point (``method='exact'``, the default) are timed against
   laMEG's vertex-based values and checked against brute force on a random subset.

Timings are the best of ``--repeats`` runs, each on a fresh ``LayerSurfaceSet`` (no cached
query). Results are printed and written to ``benchmarks/results/bench_surf.txt``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
import time
import types
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "_cache"


def _subdivide(v, f, n=2):
    import pyvista as pv

    m = pv.PolyData(v, np.c_[np.full(len(f), 3), f].ravel()).subdivide(n, "linear")
    return np.asarray(m.points, float), np.asarray(m.faces).reshape(-1, 4)[:, 1:]


def _write_common(sd: Path, head_centre, head_axes):
    import pyvista as pv

    s = pv.Icosphere(radius=1.0, nsub=5)
    v = np.asarray(s.points) * head_axes + head_centre
    f = np.asarray(s.faces).reshape(-1, 4)[:, 1:]
    (sd / "bem").mkdir(parents=True, exist_ok=True)
    nib.freesurfer.write_geometry(str(sd / "bem" / "outer_skin.surf"), v, f.astype(np.int32))
    n, dx = 64, 4.0
    aff = np.array([[-dx, 0, 0, dx * n / 2 + 2], [0, 0, dx, -dx * n / 2 - 15],
                    [0, -dx, 0, dx * n / 2 + 10], [0, 0, 0, 1.0]])
    (sd / "mri").mkdir(parents=True, exist_ok=True)
    nib.save(nib.MGHImage(np.zeros((n, n, n), np.uint8), aff), str(sd / "mri" / "orig.mgz"))


def _annot(path, sphere, hemi):
    u = sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
    medial = (u[:, 0] > 0.55) if hemi == "lh" else (u[:, 0] < -0.55)
    labels = np.where(medial, 0, 1).astype(np.int32)
    ctab = np.array([[25, 5, 25, 0, 0], [100, 0, 0, 0, 0]], np.int32)
    nib.freesurfer.write_annot(str(path), labels, ctab, [b"unknown", b"cortex"], fill_ctab=True)


def make_synthetic(root: Path) -> Path:
    from nilearn import datasets

    d = datasets.fetch_surf_fsaverage("fsaverage5")
    sd = root / "bench-synth"
    for sub in ("surf", "label"):
        (sd / sub).mkdir(parents=True, exist_ok=True)
    for h, side in (("lh", "left"), ("rh", "right")):
        surfs = {}
        for name, key in (("white", "white"), ("pial", "pial"), ("inflated", "infl"),
                          ("sphere.reg", "sphere")):
            img = nib.load(d[f"{key}_{side}"])
            v, f = _subdivide(np.asarray(img.darrays[0].data, float),
                              np.asarray(img.darrays[1].data))
            surfs[name] = (v, f)
            nib.freesurfer.write_geometry(str(sd / "surf" / f"{h}.{name}"), v,
                                          f.astype(np.int32))
        _annot(sd / "label" / f"{h}.aparc.annot", surfs["sphere.reg"][0], h)
    _write_common(sd, np.array([0, -15, 10.0]), np.array([85, 115, 100.0]))
    return sd


def make_pycortex(root: Path) -> Path:
    """FreeSurfer-like subject folder from pycortex's "S1" (surfaces, T1; fetched at run time).

    The pycortex surfaces are in the scanner RAS frame of ``anatomicals/raw.nii.gz`` (a
    conformed 256^3, 1 mm, LIA volume); they are written as FreeSurfer tkRAS surfaces next to an
    ``orig.mgz`` made from that volume, so ``create`` converts them back. No scalp surface is
    provided: ``create`` extracts it from the T1 (:func:`lameg.surf.scalp_from_mri`).
    """
    from lameg.io import freesurfer as fsio

    dl = root / "dl"
    dl.mkdir(exist_ok=True)
    if not list(dl.glob("pycortex-*.tar.gz")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        "pycortex", "pycortex", "-d", str(dl)], check=True)
    sdist = next(dl.glob("pycortex-*.tar.gz"))
    sd = root / "S1"
    if sd.exists():            # start from the FreeSurfer-like inputs only (no scalp, no sets)
        shutil.rmtree(sd)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if "/filestore/db/S1/surfaces/" in m.name
                   or m.name.endswith("/filestore/db/S1/anatomicals/raw.nii.gz")]
        tar.extractall(root / "x", members=members)  # noqa: S202 (trusted registry sdist)
    db = next((root / "x").rglob("db")) / "S1"
    for sub in ("surf", "label", "mri"):
        (sd / sub).mkdir(parents=True, exist_ok=True)
    t1 = nib.load(str(db / "anatomicals" / "raw.nii.gz"))
    mgz = sd / "mri" / "orig.mgz"
    nib.save(nib.MGHImage(np.asarray(t1.dataobj, dtype=np.uint8), t1.affine), str(mgz))
    scanner_to_tk = np.linalg.inv(fsio.tkras_to_scanner(mgz)[0])
    for h in ("lh", "rh"):
        for name, key in (("white", "wm"), ("pial", "pia"), ("inflated", "inflated")):
            img = nib.load(str(db / "surfaces" / f"{key}_{h}.gii"))
            v = np.asarray(img.darrays[0].data, float)
            if name != "inflated":
                v = fsio.apply_affine(v, scanner_to_tk)
            f = np.asarray(img.darrays[1].data)
            nib.freesurfer.write_geometry(str(sd / "surf" / f"{h}.{name}"), v, f.astype(np.int32))
        infl = nib.freesurfer.read_geometry(str(sd / "surf" / f"{h}.inflated"))[0]
        _annot(sd / "label" / f"{h}.aparc.annot", infl - infl.mean(0), h)
    return sd


def import_lameg_surf(root: Path):
    """laMEG 0.2.1's ``surf.py`` from PyPI, with stand-ins for the imports it cannot satisfy.

    ``import matlab`` (MATLAB runtime) and ``from lameg.util import ...`` (which starts the SPM
    runtime) are replaced by inert modules; VTK, MNE, nibabel, SciPy and joblib are real.
    """
    dl = root / "lameg_pkg"
    dl.mkdir(parents=True, exist_ok=True)
    if not list(dl.glob("lameg-0.2.1*")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "lameg==0.2.1",
                        "-d", str(dl)], check=True)
    pkg = next(dl.glob("lameg-0.2.1*"))
    if pkg.suffix == ".whl":
        with zipfile.ZipFile(pkg) as z:
            src = z.read("lameg/surf.py").decode()
    else:
        with tarfile.open(pkg) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("lameg/surf.py"))
            src = t.extractfile(member).read().decode()

    def _unavailable(*_a, **_k):
        raise RuntimeError("not available in the benchmark (needs MATLAB/FreeSurfer)")

    util = types.ModuleType("lameg_ref_util")
    for name in ("spm_context", "big_brain_proportional_layer_boundaries",
                 "check_freesurfer_setup"):
        setattr(util, name, _unavailable)
    sys.modules["lameg_ref_util"] = util
    sys.modules.setdefault("matlab", types.ModuleType("matlab"))
    src = src.replace("from lameg.util import", "from lameg_ref_util import")
    path = root / "lameg_ref_surf.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("lameg_ref_surf", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_CREATE = """
import json, resource, sys, time
from lameg.surf import LayerSurfaceSet
s = LayerSurfaceSet(sys.argv[1], int(sys.argv[2]), subjects_dir=sys.argv[3])
t0 = time.perf_counter()
s.create(ds_factor=0.1, verbose=False)
print(json.dumps({"time_s": time.perf_counter() - t0,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}))
"""


def _best(fn, repeats):
    """(best wall time in s, last result) of ``fn()`` over ``repeats`` runs."""
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, np.asarray(out, dtype=np.float64)


def _brute_force_distance(points, v, f, block=64):
    from lameg.mesh.distance import closest_point_on_triangles

    out = np.empty(len(points))
    tri = v[f]
    for s0 in range(0, len(points), block):
        p = points[s0:s0 + block]
        pp = np.repeat(p, len(f), axis=0)
        tt = np.tile(tri, (len(p), 1, 1))
        cp, _ = closest_point_on_triangles(pp, tt[:, 0], tt[:, 1], tt[:, 2])
        out[s0:s0 + block] = np.linalg.norm(cp - pp, axis=1).reshape(len(p), -1).min(axis=1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("pycortex", "synthetic"), default="pycortex")
    ap.add_argument("--n-layers", type=int, default=11)
    ap.add_argument("--no-lameg", action="store_true", help="skip the laMEG 0.2.1 comparison")
    ap.add_argument("--workdir", type=Path, default=CACHE / "bench_surf")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    root = args.workdir
    root.mkdir(parents=True, exist_ok=True)
    lines = []

    def report(msg):
        print(msg, flush=True)
        lines.append(msg)

    sd = make_synthetic(root) if args.source == "synthetic" else make_pycortex(root)
    n_vert = [len(nib.freesurfer.read_geometry(str(sd / "surf" / f"{h}.pial"))[0])
              for h in ("lh", "rh")]
    report(f"subject {sd.name} ({args.source}): {n_vert} vertices per hemisphere")

    # 1. create, in a child process (own peak memory)
    res = subprocess.run([sys.executable, "-c", _CREATE, sd.name, str(args.n_layers),
                          str(root)], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"create failed:\n{res.stderr}")
    c = json.loads(res.stdout.strip().splitlines()[-1])
    report(f"create({args.n_layers} layers, ds_factor=0.1): {c['time_s']:.1f} s, "
           f"peak RSS {c['peak_rss_gb']:.2f} GB  (targets < 120 s, < 4 GB)")

    from lameg.surf import LayerSurfaceSet

    def ours():
        return LayerSurfaceSet(sd.name, args.n_layers, subjects_dir=root)

    s = ours()
    sv, sf = s._head_arrays("scalp")
    pial = s._mesh("pial", "ds")[0]
    report(f"ds layer: {len(pial)} vertices; scalp: {len(sv)} vertices, {len(sf)} faces")
    # laMEG reads the scalp from bem/outer_skin.converted.gii: make sure both use the same one
    conv = sd / "bem" / "outer_skin.converted.gii"
    if not conv.exists():
        from lameg.io.gifti import write_surf_gifti
        write_surf_gifti(conv, sv, sf)

    r = args.repeats
    t = {
        "thickness": _best(lambda: ours().get_cortical_thickness(), r),
        "distance_exact": _best(lambda: ours().get_distance_to_scalp(), r),
        "distance_vertex": _best(lambda: ours().get_distance_to_scalp(method="vertex"), r),
        "radiality_exact": _best(lambda: ours().get_radiality_to_scalp(), r),
        "radiality_vertex": _best(lambda: ours().get_radiality_to_scalp(method="vertex"), r),
    }

    def both():
        x = ours()
        return x.get_radiality_to_scalp(), x.get_distance_to_scalp()

    t_both = min(_best(lambda: both()[0], 1)[0] for _ in range(r))
    for name, (dt, val) in t.items():
        report(f"lameg (this library) {name:17s}: {dt:7.3f} s   median {np.median(val):.3f}")
    report(f"lameg radiality + distance (exact, one shared closest-point query): {t_both:.3f} s")

    # exactness of the point-to-surface distance on a random subset (brute force)
    rng = np.random.default_rng(0)
    sub = rng.choice(len(pial), size=min(200, len(pial)), replace=False)
    err = np.abs(_brute_force_distance(pial[sub], sv, sf) - t["distance_exact"][1][sub]).max()
    gap = t["distance_vertex"][1] - t["distance_exact"][1]
    report(f"exact distance vs brute force ({len(sub)} vertices): max |diff| {err:.2e} mm")
    report(f"nearest-vertex minus exact distance: min {gap.min():.3f}, median "
           f"{np.median(gap):.3f}, max {gap.max():.3f} mm")

    if not args.no_lameg:
        ref = import_lameg_surf(CACHE)

        def theirs():
            return ref.LayerSurfaceSet(sd.name, args.n_layers, subjects_dir=str(root))

        cmp = {
            "thickness": (lambda: theirs().get_cortical_thickness(), "thickness"),
            "distance_to_scalp": (lambda: theirs().get_distance_to_scalp(), "distance"),
            "radiality_to_scalp": (lambda: theirs().get_radiality_to_scalp(), "radiality"),
        }
        results = {}
        for name, (call, key) in cmp.items():
            dt, val = _best(call, r)
            results[key] = dt
            same = t[key if key == "thickness" else f"{key}_vertex"]
            exact = t.get(f"{key}_exact", same)
            report(f"laMEG 0.2.1 {name:18s}: {dt:7.3f} s | ours exact {exact[0]:7.3f} s "
                   f"({dt / exact[0]:5.2f}x), same definition {same[0]:7.3f} s "
                   f"({dt / same[0]:5.2f}x); max |diff| same definition "
                   f"{np.abs(val - same[1]).max():.2e}")
        ours_all = t["thickness"][0] + t_both
        theirs_all = sum(results.values())
        report(f"all three predictors: laMEG 0.2.1 {theirs_all:.3f} s, this library (exact "
               f"distance and radiality, shared query) {ours_all:.3f} s "
               f"({theirs_all / ours_all:.2f}x)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_surf.txt"
    out.write_text("\n".join(lines) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
