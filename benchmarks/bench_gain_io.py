"""Reading part of a full-resolution gain matrix: ``get_lead_field_rms_diff`` at S1 size.

An S1-sized 11-layer model (29,401 columns x 11 layers = 323,411 sources, Neuromag-306) has a
790 MB gain file. ``get_lead_field_rms_diff`` needs only the pial and the white columns; lameg
memory-maps them out of the uncompressed MAT-5 file it writes (and checks the file against the
size and time stamp recorded by the head model instead of re-hashing it). Peer, measured in
the same run: reading the whole file as before (``read_gainmat``) and computing the same RMS.

    python -m benchmarks.bench_gain_io [--columns 29401] [--layers 11] [--channels 306]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


class _Layers:
    def __init__(self, n_layers, n_per):
        self.n_layers, self._n = n_layers, n_per

    def get_vertices_per_layer(self, orientation="link_vector", fixed=True):
        return self._n


def main() -> None:
    from lameg.invert import get_lead_field_rms_diff
    from lameg.io.spm_inv import read_head_model, write_head_model
    from lameg.io.spm_meeg import read_gainmat, write_meeg

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", type=int, default=29401)
    ap.add_argument("--layers", type=int, default=11)
    ap.add_argument("--channels", type=int, default=306)
    args = ap.parse_args()
    n_src = args.columns * args.layers
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        labels = [f"MEG{i:04d}" for i in range(args.channels)]
        D = write_meeg(Path(tmp) / "d.mat", np.zeros((args.channels, 10, 1), np.float32),
                       fsample=1000.0, chanlabels=labels, chantypes=["MEGMAG"] * args.channels)
        G = rng.standard_normal((args.channels, n_src))
        vert = rng.standard_normal((n_src, 3))
        entry = {"mesh": {"tess_mni": {"vert": vert, "face": np.ones((1, 3))}},
                 "forward": {"mesh": {"vert": vert / 1000, "face": np.ones((1, 3))}}}
        t0 = time.perf_counter()
        write_head_model(D.fname, 0, entry, G, labels)
        t_write = time.perf_counter() - t0
        gain_path = read_head_model(D.fname, 0).gain_path
        size_mb = gain_path.stat().st_size / 2**20
        surf = _Layers(args.layers, args.columns)
        t0, c0 = time.perf_counter(), time.process_time()
        rms = get_lead_field_rms_diff(D.fname, surf)
        t_cols, c_cols = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        Gf, _ = read_gainmat(gain_path)
        layers = Gf.reshape(args.channels, args.layers, args.columns)
        rms_full = np.sqrt(np.mean((layers[:, -1] - layers[:, 0]) ** 2, axis=0))
        t_full, c_full = time.perf_counter() - t0, time.process_time() - c0
        np.testing.assert_allclose(rms, rms_full, rtol=1e-12)
    out = {"sources": n_src, "channels": args.channels, "gain_file_MB": round(size_mb, 1),
           "write_head_model_s": round(t_write, 2), "rms_diff_columns_s": round(t_cols, 3),
           "rms_diff_whole_file_s": round(t_full, 3),
           "rms_diff_columns_cpu_s": round(c_cols, 3), "rms_diff_whole_file_cpu_s": round(c_full, 3),
           "speed_ratio_whole_over_columns": round(t_full / t_cols, 1),
           "cpu_ratio_whole_over_columns": round(c_full / c_cols, 1),
           "load_average": round(__import__("os").getloadavg()[0], 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_gain_io.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
