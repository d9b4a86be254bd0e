"""Run every ``benchmarks/bench_*.py`` module in turn."""

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

failed = []
for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
    if not info.name.startswith("bench_"):
        continue
    print(f"=== {info.name}", flush=True)
    try:
        module = importlib.import_module(f"benchmarks.{info.name}")
        if hasattr(module, "main"):
            module.main()
    except Exception:  # report and go on with the next benchmark
        traceback.print_exc()
        failed.append(info.name)
sys.exit(1 if failed else 0)
