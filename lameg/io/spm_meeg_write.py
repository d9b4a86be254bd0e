"""Writing new SPM M/EEG datasets (:func:`write_meeg`) and clones of existing ones.

Reading, and the :class:`~lameg.io.spm_meeg.MEEG` object, live in :mod:`lameg.io.spm_meeg`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path
from ..exceptions import LamegValueError
from .matfile import MatCell, MatObject, StructArray, save_mat
from .spm_meeg import (
    _CHANNEL_FIELDS,
    _DATASET_TYPES,
    _GRAD_FIELDS,
    _TRIAL_FIELDS,
    _UNIT_TO_MM,
    MEEG,
    MEEG_FIELDS,
    _arr2,
    _as_list,
    _as_str,
    load_meeg,
)

__all__ = ["write_meeg"]


def _auto_type(labels: Sequence[str], n_trials: int, n_samples: int, fsample: float) -> str:
    """SPM ``checkmeeg`` rule for the dataset type."""
    if n_samples == 0 or (n_trials == 1 and n_samples / fsample > 10):
        return "continuous"
    if len(set(labels)) == n_trials:
        return "evoked"
    return "single"


def _make_trials(labels: Sequence[str], time_onset: float, n_trials: int,
                 onsets: Sequence[float] | None = None,
                 events: Sequence | None = None, repl: Sequence[int] | None = None
                 ) -> StructArray:
    elems = []
    for k in range(n_trials):
        elems.append({
            "label": str(labels[k]),
            "bad": 0.0,
            "tag": None,
            "events": events[k] if events is not None else None,
            "onset": float(onsets[k]) if onsets is not None else float(time_onset),
            "repl": float(repl[k]) if repl is not None else 1.0,
        })
    return StructArray(elems, (1, n_trials), _TRIAL_FIELDS)


def _broadcast_str(x, n: int, what: str) -> list[str]:
    if isinstance(x, str):
        return [x] * n
    x = [str(v) for v in x]
    if len(x) != n:
        raise LamegValueError(f"{what} has {len(x)} entries for {n} channels")
    return x


def _normalise_sensors(sens: Mapping, kind: str) -> dict:
    """A FieldTrip grad/elec dict in mm, with SPM's field types (cells as Nx1 columns)."""
    s = dict(sens)
    unit = _as_str(s.get("unit"), "mm")
    if unit not in _UNIT_TO_MM:
        raise LamegValueError(f"sensor unit {unit!r} not understood; use 'm', 'cm' or 'mm'")
    scale = _UNIT_TO_MM[unit]
    for k in ("coilpos", "chanpos", "elecpos"):
        if k in s and s[k] is not None:
            s[k] = _arr2(s[k]) * scale
    for k in ("coilori", "chanori"):
        if k in s and s[k] is not None:
            s[k] = _arr2(s[k])
    s["unit"] = "mm"
    labels = [str(v) for v in _as_list(s.get("label"))]
    if not labels:
        raise LamegValueError(f"{kind} sensors need a 'label' list")
    s["label"] = MatCell.column(labels)
    for k in ("chantype", "chanunit"):
        if k in s:
            s[k] = MatCell.column([str(v) for v in _as_list(s[k])])
    if kind == "meg":
        for k in ("coilpos", "coilori", "tra"):
            if k not in s:
                raise LamegValueError(f"MEG sensors need '{k}'")
        tra = s["tra"]
        tra = tra.toarray() if hasattr(tra, "toarray") else np.asarray(tra, dtype=np.float64)
        if tra.shape != (len(labels), s["coilpos"].shape[0]):
            raise LamegValueError(
                f"MEG sensors: tra has shape {tra.shape}; expected ({len(labels)} channels, "
                f"{s['coilpos'].shape[0]} coils)"
            )
        if s["coilori"].shape != s["coilpos"].shape:
            raise LamegValueError("MEG sensors: coilori and coilpos must have the same shape")
        s["tra"] = tra
        s.setdefault("balance", {"current": "none"})
        ordered = {k: s[k] for k in _GRAD_FIELDS if k in s}
        ordered.update({k: v for k, v in s.items() if k not in ordered})
        return ordered
    return s


def _normalise_fiducials(fid: Mapping) -> dict:
    unit = _as_str(fid.get("unit"), "mm")
    if unit not in _UNIT_TO_MM:
        raise LamegValueError(f"fiducial unit {unit!r} not understood; use 'm', 'cm' or 'mm'")
    scale = _UNIT_TO_MM[unit]
    inner = fid.get("fid") if isinstance(fid.get("fid"), Mapping) else {}
    fpnt = _arr2(inner.get("pnt")) * scale
    labels = [str(v) for v in _as_list(inner.get("label"))]
    if len(labels) != fpnt.shape[0]:
        raise LamegValueError(f"{fpnt.shape[0]} fiducial points but {len(labels)} labels")
    return {
        "fid": {"pnt": fpnt, "label": MatCell.column(labels)},
        "pnt": _arr2(fid.get("pnt")) * scale,
        "unit": "mm",
    }


def _write_dat(path: Path, data: np.ndarray) -> None:
    """Write float32-le, column-major (channel fastest, then sample, then trial), atomically."""
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as f:
        for k in range(data.shape[2]):
            block = np.asarray(data[:, :, k], dtype=np.float64).T
            f.write(np.ascontiguousarray(block, dtype="<f4").tobytes())


def _write_dataset(fname: Path, header: dict, data: np.ndarray, version: str) -> MEEG:
    dat = fname.with_suffix(".dat")
    header = dict(header)
    fa = MatObject(classname="file_array")
    fa.update({
        "fname": dat.name,
        "dim": np.array(data.shape[:2] if data.shape[2] == 1 else data.shape, dtype=np.float64),
        "dtype": 16.0,
        "be": 0.0,
        "offset": 0.0,
        "pos": np.ones(2 if data.shape[2] == 1 else 3),
        "scl_slope": np.zeros((0, 0)),
        "scl_inter": np.zeros((0, 0)),
        "permission": "rw",
    })
    header["data"] = fa
    header["fname"] = fname.name
    header["path"] = str(fname.parent.resolve())
    header = {k: header[k] for k in MEEG_FIELDS if k in header}
    _write_dat(dat, data)
    save_mat(fname, {"D": header}, version=version)
    return load_meeg(fname)  # the header exactly as any reader will see it


def write_meeg(
    fname: str | os.PathLike,
    data: np.ndarray,
    *,
    fsample: float,
    time_onset: float = 0.0,
    chanlabels: Sequence[str],
    chantypes: str | Sequence[str],
    chanunits: str | Sequence[str] = "fT",
    sensors: Mapping | None = None,
    fiducials: Mapping | None = None,
    conditions: Sequence[str] | None = None,
    badchannels: Sequence[int] = (),
    other: Mapping | None = None,
    version: str = "7",
    dataset_type: str | None = None,
    trial_onsets: Sequence[float] | None = None,
    trial_events: Sequence | None = None,
    trial_repl: Sequence[int] | None = None,
) -> MEEG:
    """Write a new SPM M/EEG dataset (``<fname>.mat`` header + ``<fname>.dat`` float32 data).

    Parameters
    ----------
    fname : str or path-like
        Header file name (``.mat`` is appended if missing); the data go to the ``.dat`` beside it.
    data : array, shape (n_channels, n_samples, n_trials) or (n_channels, n_samples)
        Data in physical units (MEG fT, planar fT/mm, EEG uV); stored as float32.
    fsample : float
        Sampling rate (Hz).
    time_onset : float
        Time of the first sample (s).
    chanlabels : sequence of str
        Channel labels (unique).
    chantypes : str or sequence of str
        SPM channel types (``'MEG'``, ``'MEGMAG'``, ``'MEGGRAD'``, ``'MEGPLANAR'``, ``'REFMAG'``,
        ``'REFGRAD'``, ``'EEG'``, ``'EOG'``, ``'ECG'``, ``'EMG'``, ``'LFP'``, ``'Other'`` ...).
    chanunits : str or sequence of str
        Channel units.
    sensors : dict, optional
        Either a FieldTrip ``grad`` dict (``coilpos``, ``coilori``, ``tra``, ``label``, ``unit``,
        optional ``chanpos``, ``chanori``, ``chantype``, ``chanunit``, ``type``, ``balance``), or a
        dict ``{'meg': grad, 'eeg': elec}``. Positions are converted to mm.
    fiducials : dict, optional
        FieldTrip headshape: ``fid`` = {``pnt`` (3, 3), ``label``}, ``pnt`` (n, 3), ``unit``;
        MEG head frame. Converted to mm.
    conditions : sequence of str, optional
        Condition label per trial (default ``'Undefined'``).
    badchannels : sequence of int
        0-based indices of bad channels.
    other : dict, optional
        Contents of ``D.other`` (e.g. ``{'inv': [...], 'val': 1}``).
    version : {'7', '6', '7.3'}
        MAT-file version of the header.
    dataset_type : {'continuous', 'single', 'evoked'}, optional
        Default: SPM's ``checkmeeg`` rule (continuous for one trial without ``conditions``).
    trial_onsets : sequence of float, optional
        Onset of each trial in the original recording (s); default ``time_onset``.
    trial_events : sequence, optional
        ``D.trials(k).events`` per trial (dicts with ``type``, ``value``, ``time``, ``duration``,
        ``offset``, or a StructArray of them).
    trial_repl : sequence of int, optional
        Number of averaged trials behind each trial (``D.trials(k).repl``; default 1).

    Returns
    -------
    MEEG
        The new dataset.

    Raises
    ------
    LamegValueError
        For inconsistent arguments (sizes, duplicate labels, bad sampling rate ...).
    """
    path = Path(fname)
    if path.suffix != ".mat":
        path = path.with_name(path.name + ".mat") if path.suffix != ".dat" else \
            path.with_suffix(".mat")
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise LamegValueError(
            f"data must be (n_channels, n_samples[, n_trials]); got shape {data.shape}")
    if data.dtype.kind not in "biuf":
        raise LamegValueError(f"data must be real numeric, got dtype {data.dtype}")
    n_chan, n_samp, n_trials = data.shape
    if not np.isfinite(fsample) or fsample <= 0:
        raise LamegValueError(f"fsample must be a positive number of Hz, got {fsample}")
    labels = [str(v) for v in chanlabels]
    if len(labels) != n_chan:
        raise LamegValueError(f"{len(labels)} channel labels for {n_chan} data rows")
    if len(set(labels)) != n_chan:
        dup = sorted({v for v in labels if labels.count(v) > 1})
        raise LamegValueError(f"duplicate channel labels: {dup[:10]}")
    types = _broadcast_str(chantypes, n_chan, "chantypes")
    units = _broadcast_str(chanunits, n_chan, "chanunits")
    bad = np.zeros(n_chan, bool)
    bidx = np.asarray(list(badchannels), dtype=int)
    if bidx.size and (bidx.min() < 0 or bidx.max() >= n_chan):
        raise LamegValueError(f"badchannels must be 0-based indices < {n_chan}")
    bad[bidx] = True
    if conditions is None:
        labels_t = ["Undefined"] * n_trials
    else:
        labels_t = [str(c) for c in conditions]
        if len(labels_t) != n_trials:
            raise LamegValueError(f"{len(labels_t)} conditions for {n_trials} trials")
    if dataset_type is None:
        dataset_type = ("continuous" if n_trials == 1 and conditions is None
                        else _auto_type(labels_t, n_trials, n_samp, fsample))
    if dataset_type not in _DATASET_TYPES:
        raise LamegValueError(f"dataset_type must be one of {_DATASET_TYPES}")
    if dataset_type == "continuous" and n_trials != 1:
        raise LamegValueError("continuous data must have exactly one trial")
    if trial_onsets is not None and len(trial_onsets) != n_trials:
        raise LamegValueError(f"{len(trial_onsets)} trial onsets for {n_trials} trials")
    if trial_repl is not None and len(trial_repl) != n_trials:
        raise LamegValueError(f"{len(trial_repl)} trial repl values for {n_trials} trials")
    if trial_events is not None and len(trial_events) != n_trials:
        raise LamegValueError(f"{len(trial_events)} trial event lists for {n_trials} trials")

    channels = StructArray([
        {"label": labels[i], "bad": float(bad[i]), "type": types[i], "X_plot2D": None,
         "Y_plot2D": None, "units": units[i]}
        for i in range(n_chan)
    ], (n_chan, 1), _CHANNEL_FIELDS)

    sens_out: dict[str, Any] = {}
    if sensors is not None:
        if not isinstance(sensors, Mapping):
            raise LamegValueError("sensors must be a dict (FieldTrip grad, or {'meg':..,'eeg':..})")
        if "meg" in sensors or "eeg" in sensors:
            for k in ("meg", "eeg"):
                if sensors.get(k) is not None:
                    sens_out[k] = _normalise_sensors(sensors[k], k)
        elif "elecpos" in sensors and "coilpos" not in sensors:
            sens_out["eeg"] = _normalise_sensors(sensors, "eeg")
        else:
            sens_out["meg"] = _normalise_sensors(sensors, "meg")
    header: dict[str, Any] = {
        "type": dataset_type,
        "Nsamples": float(n_samp),
        "Fsample": float(fsample),
        "timeOnset": float(time_onset),
        "trials": _make_trials(labels_t, float(time_onset), n_trials, trial_onsets,
                               trial_events, trial_repl),
        "channels": channels,
        "data": None,
        "fname": path.name,
        "path": "",
        "sensors": sens_out,
        "fiducials": _normalise_fiducials(fiducials) if fiducials is not None else {},
        "transform": {"ID": "time"},
        "condlist": MatCell(list(dict.fromkeys(labels_t))),
        "montage": {"M": None, "Mind": 0.0},
        "history": MatCell([], (0, 0)),
        "other": dict(other) if other is not None else {},
    }
    return _write_dataset(path, header, data, version)


