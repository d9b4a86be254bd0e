"""Small laminar source HDF5 files for laMEG 0.2.1's reader tests.

laMEG's sdist imports ``make_source_file`` from ``tests/source_test_utils.py`` and uses the
``source_file``/``trial_source_file`` fixtures, neither of which it ships. This module writes
them with plain h5py following the documented schema 1.0 (not with lameg's writer), so the
tests exercise our reader on independently written files: 3 layers (depth 0, 0.5, 1), 4
columns, 6 samples at -100 ... 150 ms (50 ms apart), optionally 2 trials.
"""

from __future__ import annotations

import h5py
import numpy as np


def make_source_file(fname, include_vertices=True, n_trials=None):
    """Write a valid schema-1.0 source file and return the values it holds."""
    n_layers, n_columns, n_times = 3, 4, 6
    time = np.arange(n_times) * 50.0 - 100.0
    shape = (n_layers, n_columns, n_times) + ((n_trials,) if n_trials else ())
    source = (np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 7.0
              - 3.0).astype(np.float32)
    layer_depth = np.array([0.0, 0.5, 1.0])
    woi = np.array([[-100.0, 50.0], [0.0, 150.0]])
    window_count = np.array([1, 1, 2, 2, 1, 1], dtype=np.int32)
    vertices = np.arange(n_layers * n_columns * 3, dtype=np.float32).reshape(
        n_layers, n_columns, 3)
    with h5py.File(fname, "w") as h5:
        h5.attrs["lameg_schema_version"] = "1.0"
        h5.attrs["lameg_version"] = "test"
        h5.attrs["axis_order"] = ("layer,column,time,trial" if n_trials
                                  else "layer,column,time")
        h5.attrs["source_order"] = "layer-major"
        h5.attrs["n_layers"] = n_layers
        h5.attrs["n_columns"] = n_columns
        h5.create_dataset("source_ts", data=source)
        h5.create_dataset("time_ms", data=time)
        ld = h5.create_dataset("layer_depth", data=layer_depth)
        ld.attrs["axis_order"] = "layer"
        ld.attrs["depth_convention"] = "0=pial,1=white"
        h5.create_dataset("woi_ms", data=woi)
        h5.create_dataset("window_count", data=window_count)
        if include_vertices:
            h5.create_dataset("source_vertices", data=vertices)
    return {"source": source, "time": time, "woi": woi, "window_count": window_count,
            "vertices": vertices if include_vertices else None, "layer_depth": layer_depth}
