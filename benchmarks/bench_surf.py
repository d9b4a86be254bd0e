"""Benchmark of ``LayerSurfaceSet.create`` and the surface predictors.

Usage::

    python benchmarks/bench_surf.py [--source synthetic|pycortex] [--n-layers 11]
                                    [--with-lameg] [--workdir DIR]

* ``synthetic`` (default, offline): nilearn's fsaverage5 hemispheres linearly subdivided twice
  (163842 vertices per hemisphere, about the size of a FreeSurfer subject), with a medial
  'unknown' cap in ``aparc.annot`` and an ellipsoidal scalp.
* ``pycortex``: the individual subject "S1" of the pycortex sdist, fetched at run time with
  ``pip download --no-deps --no-binary pycortex pycortex`` (not committed).
* ``--with-lameg``: fetches ``lameg==0.2.1`` from PyPI (``pip download --no-deps``), imports its
  ``lameg/surf.py`` with stand-ins for the VTK / SPM imports it does not need here, and runs
  its pure-Python predictors (``get_cortical_thickness``, ``get_distance_to_scalp``) on the
  set created by this library (same file layout), reporting agreement and timings.

Reports wall time and peak resident memory of ``create``.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import types
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


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
    dl = root / "dl"
    dl.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                    "pycortex", "pycortex", "-d", str(dl)], check=True)
    sdist = next(dl.glob("pycortex-*.tar.gz"))
    sd = root / "S1"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/filestore/db/S1/surfaces/" in m.name]
        tar.extractall(root / "x", members=members)  # noqa: S202 (trusted registry sdist)
    surf_dir = next((root / "x").rglob("surfaces"))
    (sd / "surf").mkdir(parents=True, exist_ok=True)
    (sd / "label").mkdir(parents=True, exist_ok=True)
    for h, side in (("lh", "lh"), ("rh", "rh")):
        for name, key in (("white", "wm"), ("pial", "pia"), ("inflated", "inflated")):
            img = nib.load(str(surf_dir / f"{key}_{side}.gii"))
            v = np.asarray(img.darrays[0].data, float)
            f = np.asarray(img.darrays[1].data)
            nib.freesurfer.write_geometry(str(sd / "surf" / f"{h}.{name}"), v, f.astype(np.int32))
        infl = nib.freesurfer.read_geometry(str(sd / "surf" / f"{h}.inflated"))[0]
        _annot(sd / "label" / f"{h}.aparc.annot", infl - infl.mean(0), h)
    _write_common(sd, np.array([0, -15, 10.0]), np.array([95, 125, 110.0]))
    return sd


def import_lameg_surf(root: Path):
    """laMEG 0.2.1's surf.py from PyPI with stand-ins for the imports it cannot satisfy."""
    dl = root / "lameg_pkg"
    dl.mkdir(exist_ok=True)
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
    stubs = {"vtkmodules": None, "vtkmodules.util": None, "vtkmodules.util.numpy_support":
             {"vtk_to_numpy": None, "numpy_to_vtk": None},
             "vtkmodules.vtkCommonCore": {"vtkPoints": None},
             "vtkmodules.vtkCommonDataModel": {"vtkPolyData": None, "vtkCellArray": None},
             "vtkmodules.vtkFiltersCore": {"vtkDecimatePro": None},
             "vtkmodules.vtkFiltersModeling": {"vtkFillHolesFilter": None},
             "lameg_ref_util": {"big_brain_proportional_layer_boundaries": None}}
    for name, attrs in stubs.items():
        mod = types.ModuleType(name)
        for k, val in (attrs or {}).items():
            setattr(mod, k, val)
        sys.modules.setdefault(name, mod)
    src = src.replace("from lameg.util import", "from lameg_ref_util import")
    src = src.replace("import spm_standalone", "spm_standalone = None")
    path = root / "lameg_ref_surf.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("lameg_ref_surf", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("synthetic", "pycortex"), default="synthetic")
    ap.add_argument("--n-layers", type=int, default=11)
    ap.add_argument("--with-lameg", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench_surf_"))
    root.mkdir(parents=True, exist_ok=True)
    sd = make_synthetic(root) if args.source == "synthetic" else make_pycortex(root)
    n_vert = [len(nib.freesurfer.read_geometry(str(sd / "surf" / f"{h}.pial"))[0])
              for h in ("lh", "rh")]
    print(f"subject {sd.name}: {n_vert} vertices per hemisphere")

    from lameg.surf import LayerSurfaceSet

    s = LayerSurfaceSet(sd.name, args.n_layers, subjects_dir=root)
    t0 = time.perf_counter()
    s.create(ds_factor=0.1, verbose=False)
    t_create = time.perf_counter() - t0
    print(f"create({args.n_layers} layers): {t_create:.1f} s, peak RSS {_peak_rss_gb():.2f} GB")
    timings = {}
    for name, fn in (("thickness", s.get_cortical_thickness),
                     ("distance_exact", s.get_distance_to_scalp),
                     ("distance_vertex", lambda: s.get_distance_to_scalp(method="vertex")),
                     ("radiality", s.get_radiality_to_scalp)):
        t0 = time.perf_counter()
        out = fn()
        timings[name] = (time.perf_counter() - t0, out)
        print(f"{name}: {timings[name][0]:.2f} s, median {np.median(out):.3f}")
    if args.with_lameg:
        ref = import_lameg_surf(root)
        rs = ref.LayerSurfaceSet(sd.name, args.n_layers, subjects_dir=str(root))
        for name, ours, call in (
                ("thickness", timings["thickness"], lambda: rs.get_cortical_thickness()),
        ):
            t0 = time.perf_counter()
            theirs = call()
            dt = time.perf_counter() - t0
            print(f"laMEG {name}: {dt:.2f} s (ours {ours[0]:.2f} s), max |diff| "
                  f"{np.abs(np.asarray(theirs) - ours[1]).max():.2e}")


if __name__ == "__main__":
    main()
