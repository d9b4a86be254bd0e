"""Analysis-ready laminar source data in HDF5 (laMEG 0.2.1 schema 1.0, files are exchangeable).

File layout (``source_order='layer-major'``, depth 0 = pial, 1 = white)::

    attrs   lameg_schema_version='1.0', lameg_version, axis_order, source_order,
            n_layers, n_columns [, subject_id, orientation_method, fixed_orientation,
            source_geometry, n_windows, inversion_idx, overlap_combination, export_strategy]
    /source_ts        (layer, column, time[, trial])
    /time_ms          (time,) strictly increasing
    /layer_depth      (layer,) 0 ... 1, attrs depth_convention='0=pial,1=white'
    /source_vertices  (layer, column, 3)        optional, forward-model positions, mm
    /woi_ms           (window, 2)               optional, inversion windows, ms
    /window_count     (time,)                   optional, windows covering each sample
    /bigbrain/edges   (column, 7)               optional (add_bigbrain_mapping)
    /bigbrain/weights (column, 6, layer)
    /bigbrain/labels  (6,) 'I' ... 'VI'
    /bigbrain/valid_columns (column,)

:class:`LaminarSourceData` validates the schema on opening and reads slices lazily through h5py;
:func:`add_bigbrain_mapping` adds the laminae mapping of :mod:`lameg.bigbrain` without touching
the source data; :func:`lameg.source.export_source_time_series_hdf5` writes the files.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import h5py
import numpy as np

from .bigbrain import LAMINAE, surface_to_laminae
from .exceptions import (
    LamegClosedError,
    LamegFileExistsError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegIndexError,
    LamegTypeError,
    LamegValueError,
)

__all__ = ["SOURCE_SCHEMA_VERSION", "LAYER_DEPTH_CONVENTION", "LaminarSourceData",
           "add_bigbrain_mapping", "validate_source_file", "layer_depth_from_spacing"]

SOURCE_SCHEMA_VERSION = "1.0"
LAYER_DEPTH_CONVENTION = "0=pial,1=white"
_REQUIRED_ATTRS = ("lameg_version", "axis_order", "source_order", "n_layers", "n_columns")


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return str(value)


def _bad(msg: str):
    raise LamegFormatError(msg)


def check_layer_depth(depth, what: str = "`layer_depth`") -> np.ndarray:
    """Validate reconstructed depths: finite, in [0, 1], strictly increasing, 0 first, 1 last.

    Parameters
    ----------
    depth : array-like, shape (n_layers,)
        Depths (0 = pial, 1 = white).
    what : str
        Name used in messages.

    Returns
    -------
    ndarray, shape (n_layers,), float64
    """
    d = np.asarray(depth, dtype=float)
    if d.ndim != 1 or d.size < 1:
        raise LamegValueError(f"{what} must be one-dimensional with one value per layer.")
    if not np.all(np.isfinite(d)):
        raise LamegValueError(f"{what} contains non-finite values.")
    if np.any((d < 0.0) | (d > 1.0)):
        raise LamegValueError(f"{what} values must lie between 0 and 1.")
    if d.size > 1 and np.any(np.diff(d) <= 0):
        raise LamegValueError(f"{what} must increase strictly from pial (0) towards white "
                              "matter (1).")
    if not np.isclose(d[0], 0.0):
        raise LamegValueError(f"{what} must begin at the pial surface (0).")
    if not np.isclose(d[-1], 1.0):
        raise LamegValueError(f"{what} must end at the white-matter surface (1).")
    return d


def layer_depth_from_spacing(surf_set) -> np.ndarray:
    """Depths of a surface set's layers, ``1 - layer_spacing`` (0 = pial, 1 = white).

    Parameters
    ----------
    surf_set : lameg.surf.LayerSurfaceSet
        Surface set.

    Returns
    -------
    ndarray, shape (n_layers,)
    """
    return check_layer_depth(1.0 - np.asarray(surf_set.layer_spacing, dtype=float),
                             "The depth derived from surf_set.layer_spacing")


def validate_source_file(h5: h5py.File) -> None:
    """Check an open HDF5 file against the laminar source schema 1.0.

    Parameters
    ----------
    h5 : h5py.File
        Open file.

    Raises
    ------
    LamegFormatError
        (a ``ValueError``) naming the first violation.
    """
    version = h5.attrs.get("lameg_schema_version")
    if version is None:
        _bad("Not a valid laMEG source file: missing `lameg_schema_version`.")
    if _text(version) != SOURCE_SCHEMA_VERSION:
        _bad(f"Unsupported laMEG source schema version: {_text(version)!r}; this version reads "
             f"{SOURCE_SCHEMA_VERSION!r}.")
    missing = [k for k in ("source_ts", "time_ms") if k not in h5]
    if missing:
        _bad(f"Not a valid laMEG source file: missing dataset(s) {missing}.")
    src, tim = h5["source_ts"], h5["time_ms"]
    if src.ndim not in (3, 4):
        _bad(f"`source_ts` must be layer x column x time[ x trial]; got shape {src.shape}.")
    if tim.ndim != 1 or tim.shape[0] != src.shape[2]:
        _bad(f"`time_ms` must be one-dimensional with {src.shape[2]} samples (the time axis of "
             f"`source_ts`); got shape {tim.shape}.")
    t = np.asarray(tim, dtype=float)
    if t.size > 1 and np.any(np.diff(t) <= 0):
        _bad("`time_ms` must be strictly increasing.")
    missing = [k for k in _REQUIRED_ATTRS if k not in h5.attrs]
    if missing:
        _bad(f"laMEG source schema {SOURCE_SCHEMA_VERSION} requires attribute(s) {missing}.")
    expected_axes = "layer,column,time,trial" if src.ndim == 4 else "layer,column,time"
    if _text(h5.attrs["axis_order"]) != expected_axes:
        _bad(f"`axis_order` does not match `source_ts`: expected {expected_axes!r}, got "
             f"{_text(h5.attrs['axis_order'])!r}.")
    if _text(h5.attrs["source_order"]) != "layer-major":
        _bad(f"Schema {SOURCE_SCHEMA_VERSION} requires `source_order='layer-major'`; got "
             f"{_text(h5.attrs['source_order'])!r}.")
    for key, axis in (("n_layers", 0), ("n_columns", 1)):
        if int(h5.attrs[key]) != src.shape[axis]:
            _bad(f"`{key}` does not match `source_ts`: {int(h5.attrs[key])} != "
                 f"{src.shape[axis]}.")
    if not _text(h5.attrs["lameg_version"]).strip():
        _bad("`lameg_version` must be a non-empty string.")
    if "layer_depth" not in h5:
        _bad("laMEG source schema 1.0 requires the `layer_depth` dataset.")
    ld = h5["layer_depth"]
    if ld.shape != (src.shape[0],):
        _bad(f"`layer_depth` has incompatible shape: expected {(src.shape[0],)}, got "
             f"{ld.shape}.")
    try:
        check_layer_depth(ld[()])
    except LamegValueError as err:
        _bad(str(err))
    conv = ld.attrs.get("depth_convention")
    if conv is None or _text(conv) != LAYER_DEPTH_CONVENTION:
        _bad(f"`layer_depth` must define depth_convention={LAYER_DEPTH_CONVENTION!r}; got "
             f"{None if conv is None else _text(conv)!r}.")
    if "source_vertices" in h5 and h5["source_vertices"].shape != (*src.shape[:2], 3):
        _bad(f"`source_vertices` has incompatible shape: expected {(*src.shape[:2], 3)}, got "
             f"{h5['source_vertices'].shape}.")
    if "bigbrain" in h5:
        _validate_bigbrain(h5["bigbrain"], src.shape)


def _validate_bigbrain(group, shape) -> None:
    missing = [k for k in ("edges", "weights", "labels") if k not in group]
    if missing:
        _bad(f"Incomplete BigBrain mapping: missing dataset(s) {missing}.")
    labels = group["labels"]
    if labels.ndim != 1 or labels.shape[0] < 1:
        _bad(f"`bigbrain/labels` must be one-dimensional and non-empty; got {labels.shape}.")
    n_lam = labels.shape[0]
    expect = {"edges": (shape[1], n_lam + 1), "weights": (shape[1], n_lam, shape[0])}
    if "valid_columns" in group:
        expect["valid_columns"] = (shape[1],)
    for key, shp in expect.items():
        if group[key].shape != shp:
            _bad(f"`bigbrain/{key}` has incompatible shape: expected {shp}, got "
                 f"{group[key].shape}.")
    n_attr = group.attrs.get("n_laminae")
    if n_attr is not None and int(n_attr) != n_lam:
        _bad(f"`bigbrain` n_laminae attribute does not match labels: {int(n_attr)} != {n_lam}.")


def _axis_index(sel, size: int, name: str):
    """int (axis dropped) / slice (kept, positive step) / None (all)."""
    if sel is None:
        return slice(0, size, 1)
    if isinstance(sel, (int, np.integer)) and not isinstance(sel, (bool, np.bool_)):
        i = int(sel) + (size if int(sel) < 0 else 0)
        if not 0 <= i < size:
            raise LamegIndexError(f"{name} index {sel} out of range for size {size}.")
        return i
    if isinstance(sel, slice):
        start, stop, step = sel.indices(size)
        if step <= 0:
            raise LamegValueError(f"{name} slices must have a positive step.")
        return slice(start, stop, step)
    raise LamegTypeError(f"`{name}` must be an integer, slice, or None; got "
                         f"{type(sel).__name__}.")


class LaminarSourceData:
    """Lazy reader of a laminar source HDF5 file (laMEG 0.2.1 ``lameg.source`` API).

    Parameters
    ----------
    fname : str or path-like
        File written by ``export_source_time_series_hdf5`` (ours or laMEG's).

    Notes
    -----
    The file stays open (read-only) until :meth:`close` or the end of a ``with`` block; the
    readers fetch only the requested hyperslab. "layer" means a reconstructed surface,
    "lamina" a BigBrain lamina (I-VI, after :func:`add_bigbrain_mapping`).
    """

    def __init__(self, fname):
        if not isinstance(fname, (str, os.PathLike)):
            raise LamegTypeError(f"fname must be a path, got {type(fname).__name__}")
        self.fname = os.path.abspath(os.fspath(fname))
        if not os.path.isfile(self.fname):
            raise LamegFileNotFoundError(f"Source HDF5 file not found: {self.fname!r}.")
        try:
            self._file = h5py.File(self.fname, "r")
        except OSError as err:
            raise LamegFormatError(f"{self.fname} is not an HDF5 file ({err})") from None
        try:
            validate_source_file(self._file)
            self._time = np.asarray(self._file["time_ms"], dtype=float)
        except Exception:
            self.close()
            raise

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self):
        self._require_open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        if self.closed:
            return f"LaminarSourceData({self.fname!r}, closed)"
        return f"LaminarSourceData({self.fname!r}, shape={' x '.join(map(str, self.shape))}, open)"

    @property
    def closed(self) -> bool:
        """True once the file has been closed."""
        return self._file is None or not self._file.id.valid

    def _require_open(self):
        if self.closed:
            raise LamegClosedError("LaminarSourceData is closed; open the file again.")

    def close(self) -> None:
        """Close the HDF5 file (idempotent)."""
        f, self._file = getattr(self, "_file", None), None
        if f is not None:
            f.close()

    def _get(self, name):
        self._require_open()
        return self._file[name] if name in self._file else None

    # -- geometry ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """Shape of ``source_ts``: (layer, column, time[, trial])."""
        return self._get("source_ts").shape

    @property
    def dtype(self) -> np.dtype:
        """On-disk dtype of ``source_ts``."""
        return self._get("source_ts").dtype

    @property
    def n_layers(self) -> int:
        """Number of reconstructed layers."""
        return self.shape[0]

    @property
    def n_columns(self) -> int:
        """Number of cortical columns."""
        return self.shape[1]

    @property
    def n_times(self) -> int:
        """Number of time samples."""
        return self.shape[2]

    @property
    def has_trials(self) -> bool:
        """Whether ``source_ts`` has a trial axis."""
        return len(self.shape) == 4

    @property
    def n_trials(self) -> int:
        """Number of trials (1 without a trial axis)."""
        return self.shape[3] if len(self.shape) == 4 else 1

    @property
    def time(self) -> np.ndarray:
        """Time of each sample, ms (copy)."""
        self._require_open()
        return self._time.copy()

    def _optional(self, name, dtype=None):
        ds = self._get(name)
        return None if ds is None else np.asarray(ds, dtype=dtype)

    @property
    def woi(self):
        """Inversion windows (n_windows, 2), ms, or None."""
        return self._optional("woi_ms", float)

    @property
    def window_count(self):
        """Windows contributing to each sample (n_times,), or None."""
        return self._optional("window_count", np.int32)

    @property
    def vertices(self):
        """Source positions (layer, column, 3), mm, or None."""
        return self._optional("source_vertices")

    @property
    def layer_depth(self):
        """Depth of each layer (0 = pial, 1 = white)."""
        return self._optional("layer_depth", float)

    @property
    def axis_order(self) -> str:
        """The stored axis order, e.g. ``'layer,column,time'``."""
        self._require_open()
        return _text(self._file.attrs["axis_order"])

    @property
    def attrs(self) -> dict:
        """All file attributes (provenance), as Python values."""
        self._require_open()
        return {k: (_text(v) if isinstance(v, (bytes, str)) else v)
                for k, v in self._file.attrs.items()}

    # -- BigBrain ---------------------------------------------------------------------------
    @property
    def has_bigbrain_mapping(self) -> bool:
        """Whether ``/bigbrain`` holds edges, weights and labels."""
        g = self._get("bigbrain")
        return g is not None and all(k in g for k in ("edges", "weights", "labels"))

    def _require_mapping(self):
        if not self.has_bigbrain_mapping:
            raise LamegValueError("This source file has no BigBrain mapping; run "
                                  "`add_bigbrain_mapping(source_fname, surf_set)` first.")

    @property
    def laminae(self):
        """Lamina labels (tuple of str) or None."""
        if not self.has_bigbrain_mapping:
            return None
        return tuple(_text(v) for v in np.asarray(self._file["bigbrain/labels"][()]).ravel())

    @property
    def n_laminae(self) -> int:
        """Number of laminae (0 without a mapping)."""
        lab = self.laminae
        return 0 if lab is None else len(lab)

    def _bb(self, name, dtype=float):
        return self._optional(f"bigbrain/{name}", dtype) if self.has_bigbrain_mapping else None

    @property
    def bigbrain_edges(self):
        """Lamina boundaries (column, n_laminae + 1) or None."""
        return self._bb("edges")

    @property
    def bigbrain_weights(self):
        """Layer-to-lamina weights (column, lamina, layer) or None."""
        return self._bb("weights")

    @property
    def bigbrain_valid_columns(self):
        """Columns with a valid mapping (column,) bool, or None."""
        if not self.has_bigbrain_mapping:
            return None
        if "valid_columns" in self._file["bigbrain"]:
            return self._bb("valid_columns", bool)
        return (np.all(np.isfinite(self.bigbrain_edges), axis=1)
                & np.all(np.isfinite(self.bigbrain_weights), axis=(1, 2)))

    # -- selections -------------------------------------------------------------------------
    def _time_slice(self, time) -> slice:
        if time is None:
            return slice(0, self.n_times, 1)
        if not isinstance(time, (tuple, list, np.ndarray)) or len(time) != 2:
            raise LamegTypeError("`time` must be None or a (start_ms, stop_ms) pair.")
        t0, t1 = float(time[0]), float(time[1])
        if not (np.isfinite(t0) and np.isfinite(t1)):
            raise LamegValueError("Time limits must be finite.")
        if t0 > t1:
            raise LamegValueError(f"Time interval start ({t0}) exceeds stop ({t1}).")
        i0 = int(np.searchsorted(self._time, t0, side="left"))
        i1 = int(np.searchsorted(self._time, t1, side="right"))
        if i0 >= i1:
            raise LamegValueError(f"Time interval ({t0}, {t1}) ms contains no samples within "
                                  f"[{self._time[0]}, {self._time[-1]}] ms.")
        return slice(i0, i1, 1)

    def time_values(self, time=None) -> np.ndarray:
        """Sample times inside an inclusive interval.

        Parameters
        ----------
        time : (float, float) or None
            ``(start_ms, stop_ms)``; None = all samples.

        Returns
        -------
        ndarray, shape (n_selected,)
            Times, ms.
        """
        self._require_open()
        return self._time[self._time_slice(time)].copy()

    def layer(self, layer=None, column=None, time=None, trial=None) -> np.ndarray:
        """Read source data per reconstructed layer, loading only the selection.

        Parameters
        ----------
        layer, column : int, slice or None
            0-based selection (negative integers count from the end); an integer drops the
            axis, a slice (positive step) or None keeps it.
        time : (float, float) or None
            Inclusive interval ``(start_ms, stop_ms)``; None = all samples.
        trial : int, slice or None
            Trial selection (files with a trial axis only).

        Returns
        -------
        ndarray
            The selection, axes in (layer, column, time[, trial]) order minus dropped ones.
        """
        self._require_open()
        idx = (_axis_index(layer, self.n_layers, "layer"),
               _axis_index(column, self.n_columns, "column"), self._time_slice(time))
        if self.has_trials:
            idx += (_axis_index(trial, self.n_trials, "trial"),)
        elif trial is not None:
            raise LamegValueError("This source file has no trial axis; `trial` must be None.")
        return np.asarray(self._file["source_ts"][idx])

    def lamina(self, lamina=None, column=None, time=None, trial=None) -> np.ndarray:
        """Read source data mapped to BigBrain laminae (computed on demand).

        Parameters
        ----------
        lamina : str ('I' ... 'VI', case-insensitive), int, slice or None
            Laminae; a label or integer drops the axis.
        column, time, trial
            As in :meth:`layer`.

        Returns
        -------
        ndarray
            (lamina, column, time[, trial]) minus dropped axes: the mean, over each lamina,
            of the depth profile interpolated linearly between layers.
        """
        self._require_open()
        self._require_mapping()
        if isinstance(lamina, str):
            labels = self.laminae
            key = lamina.strip().upper()
            if key not in labels:
                raise LamegValueError(f"Unknown lamina {lamina!r}. Valid labels are {labels}.")
            lam = labels.index(key)
        else:
            lam = _axis_index(lamina, self.n_laminae, "lamina")
        col = _axis_index(column, self.n_columns, "column")
        data = self.layer(column=column, time=time, trial=trial)
        w = np.asarray(self._file["bigbrain/weights"][col], dtype=float)
        mapped = surface_to_laminae(data, w)  # int column: (lamina, layer) weights
        return np.asarray(mapped[lam])


def _h5_kwargs(compression) -> dict:
    if compression not in ("lzf", "gzip", None):
        raise LamegValueError(f"compression={compression!r} is not valid; choose 'lzf', "
                              "'gzip' or None")
    if compression is None:
        return {}
    out = {"compression": compression, "shuffle": True}
    if compression == "gzip":
        out["compression_opts"] = 4
    return out


def add_bigbrain_mapping(source_fname, surf_set, overwrite: bool = False,
                         compression: str | None = "lzf") -> str:
    """Store the BigBrain layer-to-lamina mapping in a laminar source file.

    Writes ``/bigbrain/{edges, weights, labels, valid_columns}`` (see the module docstring);
    the source data are not modified. The new group is written under a temporary name and
    renamed, so a failure leaves the file as it was.

    Parameters
    ----------
    source_fname : str or path-like
        Laminar source HDF5 file (schema 1.0).
    surf_set : lameg.surf.LayerSurfaceSet
        The surface set of the reconstruction (same layers; its ``layer_spacing`` must give the
        stored ``layer_depth``).
    overwrite : bool
        Replace an existing mapping.
    compression : {'lzf', 'gzip', None}
        HDF5 filter for edges and weights.

    Returns
    -------
    str
        Absolute path of the file.
    """
    kwargs = _h5_kwargs(compression)
    if not isinstance(source_fname, (str, os.PathLike)):
        raise LamegTypeError("source_fname must be a path")
    fname = str(Path(source_fname).resolve())
    with LaminarSourceData(fname) as src:
        n_layers, n_columns = src.n_layers, src.n_columns
        stored_depth = src.layer_depth
    spacing = np.asarray(surf_set.layer_spacing, dtype=float)
    if spacing.ndim != 1:
        raise LamegValueError("`surf_set.layer_spacing` must be one-dimensional.")
    if spacing.size != n_layers:
        raise LamegValueError(f"Layer-count mismatch between source file and surface set: the "
                              f"file has {n_layers} layers, `surf_set.layer_spacing` "
                              f"{spacing.size}.")
    depth = 1.0 - spacing
    if not np.allclose(depth, stored_depth, rtol=0.0, atol=1e-12):
        raise LamegValueError(f"Stored `layer_depth` {stored_depth.tolist()} does not match the "
                              f"surface set's depths {depth.tolist()}.")
    laminar = importlib.import_module("lameg.laminar")
    edges, weights = laminar.compute_bigbrain_laminar_weights(surf_set)
    edges = np.asarray(edges, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if edges.shape != (n_columns, len(LAMINAE) + 1):
        raise LamegValueError(f"BigBrain edge dimensions do not match the source file: expected "
                              f"{(n_columns, len(LAMINAE) + 1)}, got {edges.shape}.")
    if weights.shape != (n_columns, len(LAMINAE), n_layers):
        raise LamegValueError(f"BigBrain weight dimensions do not match the source file: "
                              f"expected {(n_columns, len(LAMINAE), n_layers)}, got "
                              f"{weights.shape}.")
    valid = np.all(np.isfinite(edges), axis=1)
    if not np.array_equal(valid, np.all(np.isfinite(weights), axis=(1, 2))):
        raise LamegValueError("BigBrain edges and weights disagree on which columns are valid.")
    if not valid.any():
        raise LamegValueError("BigBrain mapping contains no valid cortical columns.")
    tmp = "__bigbrain_tmp__"
    with h5py.File(fname, "r+") as h5:
        if "bigbrain" in h5 and not overwrite:
            raise LamegFileExistsError(f"BigBrain mapping already exists in {fname!r}; pass "
                                       "overwrite=True to replace it.")
        if tmp in h5:
            del h5[tmp]
        try:
            g = h5.create_group(tmp)
            g.create_dataset("edges", data=edges, **kwargs).attrs["axis_order"] = \
                "column,boundary"
            g.create_dataset("weights", data=weights, **kwargs).attrs["axis_order"] = \
                "column,lamina,layer"
            g.create_dataset("labels", data=np.asarray(LAMINAE, dtype="S3"))
            g.create_dataset("valid_columns", data=valid)
            g.attrs["n_laminae"] = len(LAMINAE)
            g.attrs["depth_convention"] = LAYER_DEPTH_CONVENTION
            subj = getattr(surf_set, "subj_id", None)
            if subj is not None:
                g.attrs["subject_id"] = str(subj)
            if "bigbrain" in h5:
                del h5["bigbrain"]
            h5.move(tmp, "bigbrain")
        except BaseException:
            if tmp in h5:
                del h5[tmp]
            raise
    return fname
