"""Sliding-window source reconstruction written to a laminar source HDF5 file.

Public entry: :func:`export_source_time_series_hdf5` (re-exported by :mod:`lameg.source`). The
window operators are read lazily through :func:`_make_window_matrix_loaders`, which understands
the native factored storage (``inverse.M_win_storage = 'lameg_factored_v1'``) and laMEG's
``inverse.M_win`` (operators inside the header) and ``inverse.M_win_files`` (one MATLAB v7.3
file per window) layouts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from ._version import __version__
from .exceptions import (
    LamegFileExistsError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)
from .invert import check_inversion_exists, load_forward_model_vertices
from .source_data import LAYER_DEPTH_CONVENTION, SOURCE_SCHEMA_VERSION, check_layer_depth
from .util import load_meg_sensor_data

__all__ = ["export_source_time_series_hdf5"]

_WINDOW_KEYS = ("M_win_factored", "M_win", "M_win_files")


def _get_lameg_version() -> str:
    return f"lameg-native {__version__}"


def _first(x):
    return x[0] if isinstance(x, (list, tuple)) and len(x) else x


def _load_inverse_components(inv_fname, inversion_idx: int = 0) -> dict:
    """Inverse pieces needed to rebuild source time series, without the window operators.

    Returns a dict with ``U`` (modes x channels), ``Ic`` (0-based channels), ``woi`` (ms,
    (n_windows, 2)) and one of ``M_win_factored`` / ``M_win`` / ``M_win_files`` (+
    ``M_win_variable``) for sliding-window inversions, else ``M``.
    """
    from .io.spm_inv import read_inverse
    from .io.spm_meeg import load_meeg

    stored = read_inverse(Path(inv_fname), int(inversion_idx))
    inv = stored.fields
    meeg = load_meeg(Path(inv_fname))
    out = {"U": stored.spatial_projector, "Ic": stored.channels,
           "time_s": np.asarray(meeg.time, float), "fsample": meeg.fsample}
    if "woi" in inv and inv["woi"] is not None:
        out["woi"] = np.atleast_2d(np.asarray(inv["woi"], dtype=float))
    storage = str(_first(inv.get("M_win_storage", "")) or "")
    if storage == "lameg_factored_v1":
        out["M_win_factored"] = inv
    elif inv.get("M_win_files") is not None and len(inv.get("M_win_files")):
        files = inv["M_win_files"]
        out["M_win_files"] = [str(f) for f in (files if isinstance(files, (list, tuple))
                                               else np.asarray(files, dtype=object).ravel())]
        out["M_win_variable"] = str(_first(inv.get("M_win_variable")) or "M_window")
    elif inv.get("M_win") is not None:
        mw = inv["M_win"]
        out["M_win"] = list(mw) if isinstance(mw, (list, tuple)) else [mw]
    else:
        out["M"] = inv["M"]
    if any(k in out for k in _WINDOW_KEYS) and "woi" not in out:
        raise LamegFormatError("the sliding-window inverse has no `woi` field")
    return out


def _orient(m, n_modes: int):
    """Return ``m`` as (n_sources, n_modes) (MATLAB v7.3 dense arrays come transposed)."""
    if m.ndim != 2:
        raise LamegFormatError(f"expected a 2-D inverse operator, got shape {m.shape}")
    if m.shape[1] == n_modes:
        return m
    if m.shape[0] == n_modes:
        return m.T.tocsc() if sp.issparse(m) else m.T
    raise LamegFormatError(f"window operator of shape {m.shape} does not match inverse.U "
                           f"({n_modes} spatial modes)")


def _read_v73_matrix(path: Path, variable: str):
    with h5py.File(path, "r") as f:
        if variable not in f:
            raise LamegFormatError(f"{path} has no variable {variable!r}")
        obj = f[variable]
        if isinstance(obj, h5py.Group) and {"data", "ir", "jc"} <= set(obj):
            jc = np.asarray(obj["jc"]).astype(np.int64)
            ir = np.asarray(obj["ir"]).astype(np.int64)
            data = np.asarray(obj["data"], dtype=float)
            n_rows = int(obj.attrs.get("MATLAB_sparse", ir.max() + 1 if ir.size else 0))
            return sp.csc_matrix((data, ir, jc), shape=(n_rows, jc.size - 1))
        return np.asarray(obj, dtype=float)


def _resolve(stored: str, bases) -> Path:
    stored = stored.strip().replace("\\", "/")
    if not stored:
        raise LamegFormatError("empty entry in inverse.M_win_files")
    cands = [Path(stored)] if os.path.isabs(stored) else [
        Path(b).resolve().parent / stored for b in bases if b is not None]
    for c in cands:
        if c.is_file():
            return c
    raise LamegFileNotFoundError(f"window operator file {stored!r} not found (tried "
                                 f"{[str(c) for c in cands]})")


def _make_window_matrix_loaders(invc: dict, inv_fname, data_fname) -> dict:
    """Lazy per-window operators: ``{'n_windows', 'n_sources', 'load_full', 'load_rows'}``.

    ``load_full(w)`` returns window ``w``'s operator (n_sources, n_modes); ``load_rows(w,
    rows)`` only the given source rows.
    """
    n_modes = invc["U"].shape[0]
    if "M_win_factored" in invc:
        inv = invc["M_win_factored"]
        nd = int(np.asarray(inv["M_win_nd"]).ravel()[0])
        icy = np.asarray(inv["M_win_iCy"], dtype=float)
        icy = icy[None] if icy.ndim == 2 else icy
        lt = np.asarray(inv["L"], dtype=float).T  # (Nd, Nm)

        def q(w):
            if "M_win_qdiag" in inv:
                return sp.diags(np.asarray(inv["M_win_qdiag"], float).reshape(nd, -1)[:, w])
            ptr = np.asarray(inv["M_win_q_ptr"], dtype=float).astype(int).ravel()
            s = slice(ptr[w], ptr[w + 1])
            r = np.asarray(inv["M_win_q_row"]).ravel()[s].astype(int) - 1
            c = np.asarray(inv["M_win_q_col"]).ravel()[s].astype(int) - 1
            v = np.asarray(inv["M_win_q_val"], dtype=float).ravel()[s]
            return sp.csr_matrix((v, (r, c)), shape=(nd, nd))

        def rows_of(w, rows):
            qw = q(w).tocsr()
            qw = qw if rows is None else qw[np.asarray(rows, dtype=np.int64)]
            return np.asarray(qw @ (lt @ icy[w]))

        return {"n_windows": icy.shape[0], "n_sources": nd,
                "load_full": lambda w: rows_of(w, None), "load_rows": rows_of}
    if "M_win_files" in invc:
        files = [_resolve(f, (inv_fname, data_fname)) for f in invc["M_win_files"]]
        var = invc.get("M_win_variable", "M_window")

        def full(w):
            return _orient(_read_v73_matrix(files[w], var), n_modes)

        first = full(0)
        return {"n_windows": len(files), "n_sources": first.shape[0], "load_full": full,
                "load_rows": lambda w, rows: full(w)[np.asarray(rows, dtype=np.int64)]}
    mats = invc["M_win"]

    def emb(w):
        m = mats[w]
        return _orient(m if sp.issparse(m) else np.asarray(m, dtype=float), n_modes)

    return {"n_windows": len(mats), "n_sources": emb(0).shape[0], "load_full": emb,
            "load_rows": lambda w, rows: emb(w)[np.asarray(rows, dtype=np.int64)]}


def _window_samples(invc: dict, time_ms: np.ndarray) -> list[np.ndarray]:
    """Samples of each window: SPM's rule for native inversions, inclusive ms otherwise."""
    woi = np.asarray(invc["woi"], dtype=float)
    if "M_win_factored" in invc and "time_s" in invc:
        from .inverse.modes import woi_samples

        return [woi_samples(w, invc["time_s"], invc["fsample"]) for w in woi]
    lo, hi = np.minimum(woi[:, 0], woi[:, 1]), np.maximum(woi[:, 0], woi[:, 1])
    return [np.flatnonzero((time_ms >= a) & (time_ms <= b)) for a, b in zip(lo, hi)]


def _channel_aligned_u(invc: dict, data_fname, n_rows: int) -> np.ndarray:
    """U with one column per row of ``load_meg_sensor_data(data_fname)``."""
    u = invc["U"]
    u = u.toarray() if sp.issparse(u) else np.asarray(u, dtype=float)
    if "Ic" not in invc:
        if u.shape[1] != n_rows:
            raise LamegValueError(f"inverse.U has {u.shape[1]} channels, the data {n_rows}")
        return u
    from .io.spm_meeg import load_meeg

    good = np.asarray(load_meeg(Path(data_fname)).indchantype("MEGANY", "GOOD"), dtype=int)
    pos = {c: i for i, c in enumerate(good)}
    missing = [int(c) for c in invc["Ic"] if int(c) not in pos]
    if missing or good.size != n_rows:
        raise LamegValueError(f"the inversion's channels {missing[:5]} are not good MEG channels "
                              f"of {Path(data_fname).name}; export with the dataset that was "
                              "inverted")
    out = np.zeros((u.shape[0], n_rows))
    out[:, [pos[int(c)] for c in invc["Ic"]]] = u
    return out


def export_source_time_series_hdf5(data_fname, out_fname, surf_set, inv_fname=None,
                                   inversion_idx: int = 0, orientation: str = "link_vector",
                                   fixed: bool = True, block_size: int = 512,
                                   dtype="float32", compression: str | None = "lzf",
                                   compression_opts: int = 4, overwrite: bool = False,
                                   max_memory_gb: float = 16.0) -> str:
    """Reconstruct a sliding-window inversion into a laminar source HDF5 file.

    Each window's operator ``M_w`` is applied to the sensor data of its samples,
    ``M_w @ (U @ Y)``; overlapping windows are averaged sample by sample (samples in no window
    are 0). The output is ``source_ts`` (layer, column, time[, trial]) in the schema of
    :mod:`lameg.source_data` (readable by laMEG 0.2.1's ``LaminarSourceData``), written to a
    temporary file and renamed.

    Parameters
    ----------
    data_fname : str or path-like
        SPM dataset with the sensor data.
    out_fname : str or path-like
        HDF5 file to create.
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set of the forward model (number of layers, depths, columns).
    inv_fname : str, path-like or None
        Dataset holding the inversion (default ``data_fname``).
    inversion_idx : int
        0-based inversion index.
    orientation : str
        Orientation variant of the ds mesh (defines the number of columns).
    fixed : bool
        Fixed orientations (defines the number of columns).
    block_size : int
        Columns per block when the full accumulator exceeds ``max_memory_gb``.
    dtype : str or numpy dtype
        On-disk dtype (accumulation in float64).
    compression : {'lzf', 'gzip', None}
        HDF5 filter.
    compression_opts : int
        gzip level (0-9).
    overwrite : bool
        Replace an existing output file.
    max_memory_gb : float
        Largest accumulator (GB) for the one-pass (window-major) reconstruction; above it the
        columns are processed in blocks.

    Returns
    -------
    str
        Absolute path of the file.
    """
    out = Path(os.path.abspath(os.fspath(out_fname)))
    if out.exists() and not overwrite:
        raise LamegFileExistsError(f"Output file already exists: {str(out)!r}; pass "
                                   "overwrite=True to replace it.")
    n_layers = int(surf_set.n_layers)
    if n_layers < 1:
        raise LamegValueError("`surf_set.n_layers` must be a positive integer.")
    spacing = np.asarray(surf_set.layer_spacing, dtype=float)
    if spacing.ndim != 1 or spacing.size != n_layers:
        raise LamegValueError("`surf_set.layer_spacing` must hold one value per layer.")
    depth = check_layer_depth(1.0 - spacing, "The depth derived from surf_set.layer_spacing")
    n_columns = int(surf_set.get_vertices_per_layer(orientation=orientation, fixed=fixed))
    if n_columns < 1:
        raise LamegValueError("`surf_set` contains no cortical columns.")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise LamegValueError("`block_size` must be a positive integer.")
    if not float(max_memory_gb) > 0:
        raise LamegValueError("`max_memory_gb` must be > 0.")
    if compression not in ("lzf", "gzip", None):
        raise LamegValueError(f"compression={compression!r}; choose 'lzf', 'gzip' or None")
    out_dtype = np.dtype(dtype)
    inv_fname = data_fname if inv_fname is None else inv_fname

    sensor, time_ms, _ = load_meg_sensor_data(data_fname)
    time_ms = np.asarray(time_ms, dtype=float)
    check_inversion_exists(inv_fname, inversion_idx=inversion_idx)
    invc = _load_inverse_components(inv_fname, inversion_idx=inversion_idx)
    if not any(k in invc for k in _WINDOW_KEYS):
        raise LamegValueError("`export_source_time_series_hdf5` needs a sliding-window "
                              "inversion (invert_sliding_window_*); this one has one window")
    trials = sensor.ndim == 3
    y = sensor if trials else sensor[:, :, None]
    n_time, n_trials = y.shape[1], y.shape[2]
    u = _channel_aligned_u(invc, data_fname, y.shape[0])
    loaders = _make_window_matrix_loaders(invc, inv_fname, data_fname)
    woi = np.asarray(invc["woi"], dtype=float)
    if loaders["n_windows"] != woi.shape[0]:
        raise LamegFormatError(f"Sliding-window inverse has {loaders['n_windows']} operators "
                               f"but `woi` has {woi.shape[0]} rows.")
    n_src = n_layers * n_columns
    if loaders["n_sources"] != n_src:
        raise LamegValueError(f"Source geometry mismatch: the inverse has "
                              f"{loaders['n_sources']} sources, the surface set {n_layers} "
                              f"layers x {n_columns} columns = {n_src}.")
    wins = _window_samples(invc, time_ms)
    count = np.zeros(n_time, dtype=np.int32)
    for it in wins:
        count[it] += 1
    covered = count > 0
    reduced = [np.tensordot(u, y[:, it, :], axes=(1, 0)).reshape(u.shape[0], -1)
               for it in wins]  # (n_modes, nt * n_trials) per window

    def accumulate(rows):
        acc = np.zeros((n_src if rows is None else rows.size, n_time, n_trials))
        for w, it in enumerate(wins):
            if it.size == 0:
                continue
            m = loaders["load_full"](w) if rows is None else loaders["load_rows"](w, rows)
            acc[:, it, :] += np.asarray(m @ reduced[w]).reshape(-1, it.size, n_trials)
        acc[:, covered, :] /= count[covered][None, :, None]
        return acc if trials else acc[:, :, 0]

    vertices = np.asarray(load_forward_model_vertices(inv_fname, inversion_idx=inversion_idx),
                          dtype=float)
    if vertices.shape != (n_src, 3):
        raise LamegValueError(f"Forward-model vertex geometry does not match the surface set: "
                              f"expected {(n_src, 3)}, got {vertices.shape}.")
    fast = n_src * n_time * n_trials * 8 / 1024 ** 3 <= float(max_memory_gb)
    shape = (n_layers, n_columns, n_time) + ((n_trials,) if trials else ())
    filt = {} if compression is None else {"compression": compression, "shuffle": True}
    if compression == "gzip":
        filt["compression_opts"] = int(compression_opts)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.part", dir=out.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as h5:
            a = h5.attrs
            a["lameg_schema_version"] = SOURCE_SCHEMA_VERSION
            a["lameg_version"] = _get_lameg_version()
            a["subject_id"] = str(getattr(surf_set, "subj_id", ""))
            a["orientation_method"] = str(orientation)
            a["fixed_orientation"] = bool(fixed)
            a["source_geometry"] = "LayerSurfaceSet"
            a["axis_order"] = "layer,column,time,trial" if trials else "layer,column,time"
            a["n_layers"], a["n_columns"] = n_layers, n_columns
            a["n_windows"], a["inversion_idx"] = int(woi.shape[0]), int(inversion_idx)
            a["source_order"] = "layer-major"
            a["overlap_combination"] = "sample-wise mean"
            a["export_strategy"] = "window-major" if fast else "blockwise"
            chunks = (1, min(256, n_columns), min(256, n_time)) + ((1,) if trials else ())
            ds = h5.create_dataset("source_ts", shape=shape, dtype=out_dtype, chunks=chunks,
                                   **filt)
            ld = h5.create_dataset("layer_depth", data=depth)
            ld.attrs["axis_order"] = "layer"
            ld.attrs["depth_convention"] = LAYER_DEPTH_CONVENTION
            h5.create_dataset("time_ms", data=time_ms)
            h5.create_dataset("woi_ms", data=woi)
            h5.create_dataset("window_count", data=count)
            h5.create_dataset("source_vertices", data=vertices.reshape(n_layers, n_columns, 3)
                              .astype(np.float32), chunks=(1, min(1024, n_columns), 3), **filt)
            if fast:
                acc = accumulate(None)
                for k in range(n_layers):
                    ds[k] = acc[k * n_columns:(k + 1) * n_columns].astype(out_dtype)
            else:
                for c0 in range(0, n_columns, block_size):
                    c1 = min(c0 + block_size, n_columns)
                    rows = (np.arange(n_layers)[:, None] * n_columns
                            + np.arange(c0, c1)[None, :]).ravel()
                    ds[:, c0:c1] = accumulate(rows).reshape(
                        (n_layers, c1 - c0) + shape[2:]).astype(out_dtype)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return str(out)
