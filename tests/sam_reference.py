"""Differential harness: run a SAMsrcV5 program (``pip install samsrc``) and lameg on the same
inputs and compare every output file.

Used by ``tests/test_sam_reference.py`` and ``benchmarks/bench_sam.py``. Each side works on its own
copy of the dataset (SAMsrcV5 writes into ``<dataset>.ds/SAM``), with ``HOME`` pointed at the work
folder so that no ``~/.samrc`` leaks in.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

# ../shared/ctf beside the repository (as in CI), or LAMEG_SHARED_DIR/ctf, or LAMEG_CTF_DIR
_SHARED = Path(os.environ.get("LAMEG_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
CTF_DIR = Path(os.environ.get("LAMEG_CTF_DIR", _SHARED / "ctf"))
REAL_DS = CTF_DIR / "somMDYO-18av.ds"
REAL_275 = CTF_DIR / "testdata_ctf_short_discontinuous.ds"


def sam_bin(name: str) -> Path | None:
    """The SAMsrcV5 program ``name`` installed by the ``samsrc`` package, or None."""
    cand = Path(sys.executable).parent / name
    if cand.is_file():
        return cand
    found = shutil.which(name)
    return Path(found) if found else None


def have_samsrc() -> bool:
    return sam_bin("sam_cov") is not None and REAL_DS.is_dir()


def run_sam(prog: str, args: list[str], cwd: Path, check: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess:
    """Run a SAMsrcV5 program in ``cwd`` (``HOME=cwd``); raise with its output when it fails."""
    env = dict(os.environ, HOME=str(cwd), OMP_NUM_THREADS="1")
    for k in ("ds", "param", "mridir", "imagedir", "pdf"):
        env.pop(k, None)
    r = subprocess.run([str(sam_bin(prog))] + list(args), cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{prog} {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}"
                           f"\n{r.stderr[-2000:]}")
    return r


def copy_dataset(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """Copy a ``.ds`` folder (without its SAM folder) into ``dst_dir``."""
    dst = dst_dir / (name or src.name)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("SAM"))
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dst


def real_dataset(dst_dir: Path) -> Path:
    """A writable copy of the 151-channel real CTF dataset with a ``MarkerFile.mrk`` added
    (``stim`` at 0 s in both trials, ``late`` at 0.1 s in trial 1)."""
    from lameg.sam.ctf import write_marker_file

    ds = copy_dataset(REAL_DS, dst_dir)
    write_marker_file(ds / "MarkerFile.mrk", {"stim": [(0, 0.0), (1, 0.0)], "late": [(1, 0.1)]})
    return ds


SIM_POS = np.array([0.005, 0.025, 0.065])  # a voxel centre of the 1 cm grids below


def simulated_dataset(dst_dir: Path, n_trials: int = 30, seed: int = 0) -> Path:
    """A CTF dataset with one tangential dipole at ``SIM_POS`` (20 Hz bursts after ``stim``) in
    white sensor noise, on the geometry of the real 151-channel dataset, plus the multiple-sphere
    head model (``default.hdm``) and ``mri/subjA/hull.shape`` (a sphere of 8 cm) that
    ``Model MultiSphere`` needs."""
    from scipy.spatial import ConvexHull

    from lameg.sam.ctf import read_ctf, write_hdm
    from lameg.sam.grid import write_hull
    from lameg.sam.sim import simulate_ctf_dataset

    origin = np.array([0.0, 0.0, 0.04])
    r = SIM_POS - origin
    ori = np.cross(r, [0.0, 0.0, 1.0])
    ds = simulate_ctf_dataset(REAL_DS, dst_dir / "subjA_sim.ds", position=SIM_POS,
                              orientation=ori, n_trials=n_trials, origin=origin, seed=seed,
                              moment=30e-9)
    info = read_ctf(ds)
    chans = list(info.primary) + list(info.reference)
    pos = np.array([info.coils[c][0].pos for c in chans])
    d = pos - origin
    d /= np.linalg.norm(d, axis=1)[:, None]
    rng = np.random.default_rng(seed + 1)
    write_hdm(ds / "default.hdm", info, origin + 0.008 * d + rng.normal(0, 0.002, d.shape))
    n = 642
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (3 - np.sqrt(5)) * k
    rr = np.sqrt(1 - z ** 2)
    nrm = np.c_[rr * np.cos(phi), rr * np.sin(phi), z]
    (dst_dir / "mri" / "subjA").mkdir(parents=True, exist_ok=True)
    write_hull(dst_dir / "mri" / "subjA" / "hull.shape", origin + 0.08 * nrm, nrm,
               ConvexHull(nrm).simplices)
    return ds


class Pair:
    """Two work folders (``ref`` for SAMsrcV5, ``ours`` for lameg) holding the same inputs."""

    def __init__(self, base: Path, dataset: Path, extra: tuple[str, ...] = ("mri",)):
        self.ref = base / "ref"
        self.ours = base / "ours"
        for side in (self.ref, self.ours):
            side.mkdir(parents=True)
            copy_dataset(dataset, side)
            for e in extra:
                if (dataset.parent / e).exists():
                    shutil.copytree(dataset.parent / e, side / e)
        self.ds_name = dataset.name

    def write(self, name: str, text: str) -> None:
        for side in (self.ref, self.ours):
            (side / name).write_text(text)

    def sam(self, side: str = "ours") -> Path:
        return getattr(self, side) / self.ds_name / "SAM"

    def run_sam(self, prog: str, param: str, *extra: str) -> subprocess.CompletedProcess:
        return run_sam(prog, ["-r", self.ds_name, "-m", param, *extra], self.ref)

    def run_ours(self, prog: str, param: str, *extra: str, svd: str = "gsl"):
        from lameg.sam import read_params
        from lameg.sam.cov import sam_cov
        from lameg.sam.imaging import sam_3d, sam_4d, sam_ers
        from lameg.sam.power import sam_power
        from lameg.sam.weights import sam_wts

        cwd = os.getcwd()
        os.chdir(self.ours)
        try:
            p = read_params(param, ["-r", self.ds_name, *extra], {}, cwd=self.ours,
                            home=self.ours, program=prog.replace("sam_", ""))
            if prog == "sam_cov":
                return sam_cov(p, svd=svd)
            return {"sam_wts": sam_wts, "sam_3d": sam_3d, "sam_4d": sam_4d,
                    "sam_power": sam_power, "sam_ers": sam_ers}[prog](p)
        finally:
            os.chdir(cwd)


# ------------------------------------------------------------------------------------------
# comparisons
# ------------------------------------------------------------------------------------------

def rel(a, b) -> float:
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    den = np.abs(b).max()
    return float(np.abs(a - b).max() / den) if den > 0 else float(np.abs(a).max())


def compare_cov_folder(ref: Path, ours: Path, cov_tol=1e-6, noise_tol=1e-5) -> dict:
    """Compare a covariance folder file by file; returns the worst relative differences."""
    from lameg.sam.io import read_cov

    def cov_files(folder):
        return sorted(p.name for p in folder.iterdir() if p.name.endswith(
            (".cov", "_Noise", "_Eigenvalues")) or p.name == "SAMcov-Segments")

    ref_files, our_files = cov_files(ref), cov_files(ours)
    assert our_files == ref_files, (our_files, ref_files)
    worst = {"cov": 0.0, "noise": 0.0, "eig": 0.0}
    for f in ref_files:
        if f.endswith(".cov"):
            a, b = read_cov(ours / f), read_cov(ref / f)
            worst["cov"] = max(worst["cov"], rel(a["C"], b["C"]))
            for key in ("version", "set_name", "spec_name", "band", "n_segments", "n_samples",
                        "cov_type"):
                assert a[key] == b[key], (f, key, a[key], b[key])
            np.testing.assert_array_equal(a["chan_index"], b["chan_index"])
            assert abs(a["bandwidth"] / b["bandwidth"] - 1) < 1e-12, (f, "bandwidth")
            worst["noise"] = max(worst["noise"], abs(a["noise"] / b["noise"] - 1))
        elif f.endswith("_Noise"):
            a, b = float((ours / f).read_text()), float((ref / f).read_text())
            worst["noise"] = max(worst["noise"], abs(a / b - 1))
        elif f.endswith("_Eigenvalues"):
            ta, tb = (ours / f).read_text().splitlines(), (ref / f).read_text().splitlines()
            assert ta[:4] == tb[:4] and len(ta) == len(tb), f
            va = np.array([float(x) for x in ta[4:-2]])
            vb = np.array([float(x) for x in tb[4:-2]])
            worst["eig"] = max(worst["eig"], rel(va, vb))
        elif f == "SAMcov-Segments":
            assert (ours / f).read_text() == (ref / f).read_text()
    assert worst["cov"] < cov_tol, worst
    assert worst["noise"] < noise_tol, worst
    assert worst["eig"] < noise_tol, worst
    return worst


def compare_weights_folder(ref: Path, ours: Path, tol=1e-5, noise_tol=1e-5) -> dict:
    """Compare the NIfTI weights (up to the arbitrary sign of each voxel's orientation), their
    ROI, ``_MuNoise`` and the noise stored in the headers."""
    from lameg.sam.weights import read_sam_weights_nifti

    worst = {"weights": 0.0, "noise": 0.0}

    def wts_files(folder):
        return sorted(p.name for p in folder.iterdir() if p.name.endswith(
            (".nii", "CN.dat", "_MuNoise")))

    assert wts_files(ours) == wts_files(ref), (wts_files(ours), wts_files(ref))
    names = sorted(p.name for p in ref.glob("*.nii"))
    assert names and names == sorted(p.name for p in ours.glob("*.nii")), names
    for f in names:
        Wa, na, affa, sha = read_sam_weights_nifti(ours / f)
        Wb, nb, affb, shb = read_sam_weights_nifti(ref / f)
        assert sha == shb and np.allclose(affa, affb)
        roi_a, roi_b = np.any(Wa != 0, 1), np.any(Wb != 0, 1)
        np.testing.assert_array_equal(roi_a, roi_b)
        s = np.sign(np.sum(Wa * Wb, 1))[:, None]
        d = np.abs(s * Wa - Wb).max(1)[roi_b] / np.abs(Wb).max(1)[roi_b]
        worst["weights"] = max(worst["weights"], float(d.max()))
        worst["noise"] = max(worst["noise"], abs(na / nb - 1))
    for f in sorted(p.name for p in ref.glob("*_MuNoise")):
        a, b = float((ours / f).read_text()), float((ref / f).read_text())
        worst["noise"] = max(worst["noise"], abs(a / b - 1))
    assert worst["weights"] < tol, worst
    assert worst["noise"] < noise_tol, worst
    return worst


def read_image(path: Path) -> np.ndarray:
    """Voxel values of a SAM NIfTI image (float32 data after the header and extension)."""
    raw = path.read_bytes()
    off = int(struct.unpack_from("<f", raw, 108)[0])
    return np.frombuffer(raw, "<f4", (len(raw) - off) // 4, off).astype(float)
