"""File-name grammar, stage names and JSON sidecars of a laminar surface folder."""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np

from .._utils import atomic_path
from ..exceptions import (
    LamegFormatError,
)

STAGES = ("raw", "converted", "nodeep", "combined", "ds")
HEMI_STAGES = ("raw", "converted", "nodeep")
ORIENTATIONS = ("link_vector", "ds_surf_norm", "orig_surf_norm", "cps")
HEAD_MESHES = ("scalp", "iskull", "oskull")


def _pointset(img) -> np.ndarray:
    """Vertex coordinates (float64, (n, 3)) of a GIfTI surface without decoding its faces."""
    pts = next((da for da in img.darrays
                if int(da.intent) == nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]),
               img.darrays[0] if img.darrays else None)
    if pts is None:
        raise LamegFormatError("GIfTI image has no data arrays")
    return np.asarray(pts.data, dtype=np.float64).reshape(-1, 3)


def _layer_name(x: float) -> str:
    if x == 1:
        return "pial"
    if x == 0:
        return "white"
    return f"{x:.3f}"


def _encode_meta(meta: dict, memo: dict | None = None) -> str:
    """JSON text of a sidecar dict; integer arrays are encoded once per ``memo``.

    Values that are NumPy arrays are written as JSON lists. The index lists of a subject hold
    10^5 entries and are repeated in dozens of sidecars, so their text is cached in ``memo``
    (keyed by the array object, which the memo keeps alive) and ``json.dumps`` (the C encoder)
    is used throughout; ``json.dump`` to a file would go through the pure-Python encoder.
    """
    parts = []
    for key, val in meta.items():
        if isinstance(val, np.ndarray):
            hit = memo.get(id(val)) if memo is not None else None
            if hit is None or hit[0] is not val:
                hit = (val, json.dumps(val.tolist()))
                if memo is not None:
                    memo[id(val)] = hit
            text = hit[1]
        else:
            text = json.dumps(val)
        parts.append(f"{json.dumps(str(key))}: {text}")
    return "{" + ", ".join(parts) + "}"


def _write_json(path, meta, memo=None):
    text = _encode_meta(meta, memo)
    with atomic_path(path, suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


_BUILD_ID_HEAD = re.compile(rb'^\{"build_id": "([0-9a-f]{40})"')


def _read_build_id(json_path: str) -> str | None:
    """The ``build_id`` of a sidecar (written first by ``create``), or None without one."""
    try:
        with open(json_path, "rb") as fh:
            head = fh.read(64)
            m = _BUILD_ID_HEAD.match(head)
            if m:
                return m.group(1).decode()
            fh.seek(0)
            meta = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LamegFormatError(f"{json_path} is not a readable JSON sidecar ({exc}); "
                               "re-run create()") from exc
    bid = meta.get("build_id") if isinstance(meta, dict) else None
    return str(bid) if bid is not None else None
