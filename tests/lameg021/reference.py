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
