"""Load laMEG 0.2.1's own laminar-source reader (``lameg_reference/``) as ``lameg021ref``."""

from __future__ import annotations

import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent / "lameg_reference"
NAME = "lameg021ref"


def _exec(modname: str, fname: str) -> types.ModuleType:
    mod = types.ModuleType(f"{NAME}.{modname}")
    mod.__file__ = str(HERE / fname)
    src = (HERE / fname).read_text().replace("from lameg.", f"from {NAME}.") \
        .replace("from lameg import", f"from {NAME} import")
    sys.modules[mod.__name__] = mod
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


def load_reference() -> types.ModuleType:
    """laMEG 0.2.1's ``lameg.source`` (reader, schema checks, add_bigbrain_mapping)."""
    if f"{NAME}.source" in sys.modules:
        return sys.modules[f"{NAME}.source"]
    pkg = types.ModuleType(NAME)
    pkg.__path__ = []
    sys.modules[NAME] = pkg
    pkg._source_schema = _exec("_source_schema", "_source_schema.py")
    bigbrain = _exec("_bigbrain", "_bigbrain.py")
    laminar = types.ModuleType(f"{NAME}.laminar")  # laMEG's laminar re-exports these two
    laminar.compute_bigbrain_laminar_weights = bigbrain.compute_bigbrain_laminar_weights
    laminar.surface_to_laminae = bigbrain.surface_to_laminae
    sys.modules[laminar.__name__] = pkg.laminar = laminar
    for stub, names in (("_source_export", ["export_source_time_series_hdf5"]),
                        ("_source_io", ["load_source_time_series"])):
        m = types.ModuleType(f"{NAME}.{stub}")  # SPM-bound writers: not loaded
        for n in names:
            setattr(m, n, None)
        sys.modules[m.__name__] = m
        setattr(pkg, stub, m)
    pkg.source = _exec("source", "source.py")
    return pkg.source


def load_reference_source_io() -> types.ModuleType:
    """laMEG 0.2.1's ``_source_io`` (its ``load_source_time_series`` and inverse loaders).

    Its imports from laMEG's SPM-bound modules are served by small stand-ins: the two
    sparse-matrix converters and the presence check, written here from their documented
    behaviour, and ``load_meg_sensor_data`` from lameg (laMEG's own tests check that it equals
    laMEG's). The window-operator logic under test (``M_win_files`` resolution, orientation,
    per-window projection and averaging) is laMEG's code, unchanged.
    """
    name = f"{NAME}._source_io_full"
    if name in sys.modules:
        return sys.modules[name]
    load_reference()
    import numpy as np
    from scipy.sparse import csc_matrix, issparse

    from lameg.invert import check_inversion_exists as ours_check
    from lameg.util import load_meg_sensor_data

    inv = types.ModuleType(f"{NAME}.invert")

    def _h5_to_csc(group):  # MATLAB sparse in HDF5: data, row indices, column pointers
        ir = np.asarray(group["ir"][()])
        return csc_matrix((group["data"][()], ir, group["jc"][()]),
                          shape=(int(ir.max()) + 1 if ir.size else 0, len(group["jc"]) - 1))

    inv._h5_to_csc = _h5_to_csc
    inv._mat_to_csc = lambda m: m if issparse(m) else csc_matrix(m)
    inv.check_inversion_exists = lambda f, inversion_idx=0: ours_check(f, inversion_idx)
    util = types.ModuleType(f"{NAME}.util")
    util.load_meg_sensor_data = load_meg_sensor_data
    sys.modules[inv.__name__], sys.modules[util.__name__] = inv, util
    mod = types.ModuleType(name)
    mod.__file__ = str(HERE / "_source_io.py")
    src = (HERE / "_source_io.py").read_text().replace("from lameg.", f"from {NAME}.")
    sys.modules[name] = mod
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod
