"""SPM M/EEG datasets (``.mat`` header + ``.dat`` binary), MAT v5/v7 and v7.3.

An SPM M/EEG dataset is a header file ``<name>.mat`` holding the struct ``D`` and a raw binary
``<name>.dat`` holding the data, channels x samples x trials in column-major order (float32
little endian for every file SPM writes). :func:`load_meeg` opens one as a :class:`MEEG`
(the header as nested Python objects, the data memory-mapped); :func:`write_meeg` writes a new
one that SPM can load; :meth:`MEEG.save_inv` stores source-reconstruction results in
``D.other.inv``; :func:`read_gainmat` / :func:`write_gainmat` handle SPM's
``SPMgainmatrix_<base>_<k>.mat`` lead-field files.

Units follow SPM: MEG data in fT (planar gradiometers fT/mm), EEG in uV, sensor geometry in the
MEG head frame in mm (FieldTrip ``grad`` struct), time in seconds, ``Fsample`` in Hz.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from .._utils import atomic_path, logger
from ..exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)
from .matfile import MatCell, MatObject, StructArray, load_mat, mat_version, save_mat

__all__ = [
    "MEEG",
    "load_meeg",
    "write_meeg",
    "read_gainmat",
    "write_gainmat",
    "DTYPE_CODES",
]

#: SPM ``file_array`` datatype codes -> NumPy dtype (native byte order; ``be`` selects the order).
DTYPE_CODES: dict[int, np.dtype] = {
    2: np.dtype(np.uint8), 256: np.dtype(np.int8), 4: np.dtype(np.int16),
    512: np.dtype(np.uint16), 8: np.dtype(np.int32), 768: np.dtype(np.uint32),
    1024: np.dtype(np.int64), 1280: np.dtype(np.uint64), 16: np.dtype(np.float32),
    64: np.dtype(np.float64),
}
_DTYPE_NAMES = {
    "uint8": 2, "int8": 256, "int16": 4, "uint16": 512, "int32": 8, "uint32": 768,
    "int64": 1024, "uint64": 1280, "float32": 16, "float64": 64, "single": 16, "double": 64,
}

#: Field order of ``D`` enforced by SPM's ``checkmeeg``.
MEEG_FIELDS = ("type", "Nsamples", "Fsample", "timeOnset", "trials", "channels", "data", "fname",
               "path", "sensors", "fiducials", "transform", "condlist", "montage", "history",
               "other")
_TRIAL_FIELDS = ("label", "bad", "tag", "events", "onset", "repl")
_CHANNEL_FIELDS = ("label", "bad", "type", "X_plot2D", "Y_plot2D", "units")
_GRAD_FIELDS = ("balance", "chanori", "chanpos", "chantype", "chanunit", "coilori", "coilpos",
                "label", "tra", "type", "unit")
_MEG_TYPES = ("MEG", "MEGMAG", "MEGGRAD", "MEGPLANAR")
_DATASET_TYPES = ("continuous", "single", "evoked")
_UNIT_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "dm": 100.0}


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _as_list(x) -> list:
    """A struct array / cell / single dict / scalar as a Python list."""
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "US":
        return [str(v) for v in x.reshape(-1)]
    if isinstance(x, np.ndarray) and x.size == 0:
        return []
    return [x]


def _as_str(x, default: str = "") -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind in "US":
        return "".join(str(v) for v in x.reshape(-1)) if x.size else default
    if isinstance(x, (list, tuple)) and len(x) == 1:
        return _as_str(x[0], default)
    if x is None or (isinstance(x, (list, tuple, np.ndarray)) and len(x) == 0):
        return default
    return str(x)


def _as_float(x, what: str, fname) -> float:
    try:
        a = np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise LamegFormatError(f"{fname}: D.{what} is not numeric ({x!r})") from err
    if a.size != 1:
        raise LamegFormatError(f"{fname}: D.{what} should be a scalar, got {a.size} values")
    return float(a[0])


def _bad_flag(x) -> bool:
    a = np.asarray(x if x is not None else 0).reshape(-1)
    return bool(a.size and a.dtype.kind in "biuf" and a[0] != 0)


def _arr2(x, ncol: int = 3) -> np.ndarray:
    """Numeric value as a 2-D (n, ncol) float array (empties -> (0, ncol))."""
    a = np.asarray(x if x is not None else np.zeros((0, ncol)), dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, ncol))
    if a.ndim == 1:
        a = a.reshape(-1, ncol) if a.size % ncol == 0 else a.reshape(1, -1)
    return a


def _resolve_dtype(data: Mapping, fname) -> np.dtype:
    code = data.get("dtype", 16)
    be = data.get("be", None)
    if isinstance(code, str):
        m = re.fullmatch(r"([a-z]+\d*)(?:-(le|be))?", code.strip().lower())
        if not m or m.group(1) not in _DTYPE_NAMES:
            raise LamegFormatError(
                f"{fname}: unknown data type {code!r} in D.data.dtype; supported: "
                f"{sorted(_DTYPE_NAMES)} with optional '-le'/'-be'"
            )
        icode = _DTYPE_NAMES[m.group(1)]
        if m.group(2):
            be = 1 if m.group(2) == "be" else 0
    else:
        try:
            icode = int(np.asarray(code).reshape(-1)[0])
        except (TypeError, ValueError, IndexError) as err:
            raise LamegFormatError(f"{fname}: D.data.dtype is not a type code ({code!r})") from err
        if icode not in DTYPE_CODES:
            raise LamegFormatError(
                f"{fname}: unsupported data type code {icode} in D.data.dtype (supported SPM "
                f"file_array codes: {sorted(DTYPE_CODES)})"
            )
    dt = DTYPE_CODES[icode]
    big = _bad_flag(be) if be is not None else False
    return dt.newbyteorder(">" if big else "<")


# ---------------------------------------------------------------------------------------------
# MEEG
# ---------------------------------------------------------------------------------------------


class MEEG:
    """An SPM M/EEG dataset: header ``D`` plus memory-mapped data.

    Create with :func:`load_meeg` or :func:`write_meeg`.

    Attributes
    ----------
    fname : pathlib.Path
        The header ``.mat`` file.
    header : dict
        The whole ``D`` struct as nested Python objects (see :mod:`lameg.io.matfile`).
    mat_version : str
        MAT-file format of the header (``'7.3'``, ``'7'``, ``'6'``); kept by :meth:`save_inv`.
    """

    def __init__(self, fname: str | os.PathLike, header: dict, mat_version: str = "7"):
        self.fname = Path(fname).resolve()
        self.header = header
        self.mat_version = mat_version
        self._data = None
        self._validate()

    # -- validation ---------------------------------------------------------------------------

    def _validate(self) -> None:
        D, fn = self.header, self.fname
        missing = [k for k in ("Nsamples", "Fsample", "channels", "data") if k not in D]
        if missing:
            raise LamegFormatError(f"{fn}: not an SPM M/EEG header (D has no field(s) {missing})")
        data = D["data"]
        if not isinstance(data, Mapping) or "dim" not in data:
            raise LamegFormatError(f"{fn}: D.data has no 'dim'; not an SPM M/EEG header")
        self._n_samples = int(round(_as_float(D["Nsamples"], "Nsamples", fn)))
        self._fsample = _as_float(D["Fsample"], "Fsample", fn)
        if not np.isfinite(self._fsample) or self._fsample <= 0:
            raise LamegFormatError(f"{fn}: D.Fsample = {self._fsample} is not a valid rate")
        try:
            dim = [int(v) for v in np.asarray(data["dim"], dtype=np.float64).reshape(-1)]
        except (TypeError, ValueError, OverflowError) as err:
            raise LamegFormatError(f"{fn}: D.data.dim is not numeric") from err
        if len(dim) == 2:
            dim.append(1)
        if len(dim) != 3 or min(dim) < 0:
            raise LamegFormatError(f"{fn}: D.data.dim = {dim} is not [Nchannels Nsamples Ntrials]")
        self._dim = tuple(dim)
        channels = _as_list(D["channels"])
        if not all(isinstance(c, Mapping) for c in channels):
            raise LamegFormatError(f"{fn}: D.channels is not a struct array")
        if len(channels) != dim[0]:
            raise LamegFormatError(
                f"{fn}: header/data size mismatch: {len(channels)} channels in D.channels but "
                f"D.data.dim[0] = {dim[0]}"
            )
        if self._n_samples != dim[1]:
            raise LamegFormatError(
                f"{fn}: header/data size mismatch: D.Nsamples = {self._n_samples} but "
                f"D.data.dim[1] = {dim[1]}"
            )
        trials = _as_list(D.get("trials"))
        if trials and len(trials) != dim[2]:
            raise LamegFormatError(
                f"{fn}: header/data size mismatch: {len(trials)} trials in D.trials but "
                f"D.data.dim[2] = {dim[2]}"
            )
        self._dtype = _resolve_dtype(data, fn)
        off = data.get("offset", 0)
        if off is None or (isinstance(off, np.ndarray) and off.size == 0):
            off = 0
        self._offset = int(_as_float(off, "data.offset", fn))
        if self._offset < 0:
            raise LamegFormatError(f"{fn}: negative data offset {self._offset}")

    # -- basic properties ---------------------------------------------------------------------

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return self._dim[0]

    @property
    def n_samples(self) -> int:
        """Number of samples per trial."""
        return self._dim[1]

    @property
    def n_trials(self) -> int:
        """Number of trials (1 for continuous and single-average data)."""
        return self._dim[2]

    @property
    def fsample(self) -> float:
        """Sampling rate (Hz)."""
        return self._fsample

    @property
    def time_onset(self) -> float:
        """Time of the first sample (s)."""
        return _as_float(self.header.get("timeOnset", 0.0), "timeOnset", self.fname)

    @property
    def time(self) -> np.ndarray:
        """Sample times (s), shape (n_samples,): ``arange(n)/Fsample + timeOnset``."""
        return np.arange(self.n_samples) / self.fsample + self.time_onset

    @property
    def type(self) -> str:
        """Dataset type: ``'continuous'``, ``'single'`` or ``'evoked'``."""
        return _as_str(self.header.get("type"), "single")

    @property
    def path(self) -> Path:
        """Folder of the dataset."""
        return self.fname.parent

    @property
    def _channels(self) -> list[dict]:
        return _as_list(self.header["channels"])

    @property
    def chanlabels(self) -> list[str]:
        """Channel labels, length n_channels."""
        return [_as_str(c.get("label")) for c in self._channels]

    @property
    def chantypes(self) -> list[str]:
        """Channel types (``'MEG'``, ``'MEGGRAD'``, ``'MEGPLANAR'``, ``'EEG'``, ``'Other'`` ...)."""
        return [_as_str(c.get("type"), "Other") for c in self._channels]

    @property
    def chanunits(self) -> list[str]:
        """Channel units (``'fT'``, ``'fT/mm'``, ``'uV'``, ``'unknown'`` ...)."""
        return [_as_str(c.get("units"), "unknown") for c in self._channels]

    @property
    def badchannels(self) -> np.ndarray:
        """0-based indices of the channels marked bad (int array)."""
        return np.flatnonzero([_bad_flag(c.get("bad")) for c in self._channels]).astype(int)

    @property
    def _trials(self) -> list[dict]:
        return [t for t in _as_list(self.header.get("trials")) if isinstance(t, Mapping)]

    @property
    def conditions(self) -> list[str]:
        """Condition label of every trial, length n_trials."""
        trials = self._trials
        if not trials:
            return ["Undefined"] * self.n_trials
        return [_as_str(t.get("label"), "Undefined") for t in trials]

    @property
    def condlist(self) -> list[str]:
        """Unique condition labels in order of first occurrence."""
        stored = [str(c) for c in _as_list(self.header.get("condlist")) if isinstance(c, str)]
        if stored:
            return stored
        return list(dict.fromkeys(self.conditions))

    @property
    def badtrials(self) -> np.ndarray:
        """0-based indices of the trials marked bad."""
        return np.flatnonzero([_bad_flag(t.get("bad")) for t in self._trials]).astype(int)

    @property
    def inv(self) -> list[dict]:
        """``D.other.inv`` as a list of dicts (``[]`` when there is none)."""
        other = self.header.get("other")
        if not isinstance(other, Mapping) or "inv" not in other:
            return []
        return [v if isinstance(v, Mapping) else {} for v in _as_list(other["inv"])]

    @property
    def val(self) -> int | None:
        """``D.other.val`` (1-based MATLAB index of the current inversion), or None."""
        other = self.header.get("other")
        if isinstance(other, Mapping) and "val" in other:
            try:
                return int(np.asarray(other["val"]).reshape(-1)[0])
            except (IndexError, TypeError, ValueError):
                return None
        return None

    # -- channel selection --------------------------------------------------------------------

    def indchantype(self, types: str | Sequence[str], flag: str = "ALL") -> np.ndarray:
        """0-based indices of channels of the given type(s), sorted.

        Parameters
        ----------
        types : str or sequence of str
            Channel types (case-insensitive). ``'MEG'`` and ``'MEGANY'`` both select
            MEG, MEGMAG, MEGGRAD and MEGPLANAR channels.
        flag : {'ALL', 'GOOD'}
            ``'GOOD'`` excludes bad channels.

        Returns
        -------
        numpy.ndarray of int
        """
        if isinstance(types, str):
            types = [types]
        wanted = {t.upper() for t in types}
        if wanted & {"MEG", "MEGANY"}:
            wanted |= set(_MEG_TYPES)
        flag = str(flag).upper()
        if flag not in ("ALL", "GOOD"):
            raise LamegValueError(f"flag must be 'ALL' or 'GOOD', got {flag!r}")
        ct = np.array([t.upper() for t in self.chantypes])
        ind = np.flatnonzero(np.isin(ct, sorted(wanted))) if ct.size else np.zeros(0, int)
        if flag == "GOOD":
            ind = np.setdiff1d(ind, self.badchannels)
        return ind.astype(int)

    def indchannel(self, labels: str | Sequence[str]) -> np.ndarray:
        """0-based indices of the channels with the given labels (in the order given).

        Raises
        ------
        LamegValueError
            If a label is not in the dataset.
        """
        if isinstance(labels, str):
            labels = [labels]
        lut = {lab: i for i, lab in enumerate(self.chanlabels)}
        missing = [lab for lab in labels if lab not in lut]
        if missing:
            raise LamegValueError(f"{self.fname.name}: no channel(s) {missing[:10]}")
        return np.array([lut[lab] for lab in labels], dtype=int)

    # -- sensors and fiducials ----------------------------------------------------------------

    def sensors(self, modality: str = "MEG") -> dict | None:
        """The FieldTrip sensor struct of a modality (``D.sensors.meg`` / ``.eeg``).

        Parameters
        ----------
        modality : {'MEG', 'EEG'}

        Returns
        -------
        dict or None
            A copy with ``coilpos``/``coilori`` (n_coils, 3), ``tra`` (n_channels, n_coils),
            ``chanpos``/``chanori`` (n_channels, 3), ``label``/``chantype``/``chanunit`` lists,
            ``unit`` (``'mm'`` for files written by SPM or lameg) and any other stored fields
            (EEG: ``elecpos``). None when the dataset has no such sensors.
        """
        key = str(modality).lower()
        if key not in ("meg", "eeg"):
            raise LamegValueError(f"modality must be 'MEG' or 'EEG', got {modality!r}")
        sens = self.header.get("sensors")
        if not isinstance(sens, Mapping) or not isinstance(sens.get(key), Mapping):
            return None
        s = dict(copy.deepcopy(sens[key]))
        for k in ("coilpos", "coilori", "chanpos", "chanori", "elecpos", "optopos"):
            if k in s:
                s[k] = _arr2(s[k])
        if "tra" in s:
            tra = s["tra"]
            if hasattr(tra, "toarray"):
                tra = tra.toarray()
            tra = np.asarray(tra, dtype=np.float64)
            if tra.ndim < 2:
                n_chan = len(_as_list(s.get("label")))
                tra = tra.reshape(n_chan, -1) if n_chan else tra.reshape(1, -1)
            s["tra"] = tra
        for k in ("label", "chantype", "chanunit"):
            if k in s:
                s[k] = [_as_str(v) for v in _as_list(s[k])]
        if "unit" in s:
            s["unit"] = _as_str(s["unit"], "mm")
        return s

    def fiducials(self) -> dict:
        """MEG-frame fiducials and head shape (``D.fiducials``).

        Returns
        -------
        dict
            ``pnt`` (n, 3) head-shape points, ``fid`` = {``pnt`` (k, 3), ``label`` list of k str},
            ``unit`` (str, ``'mm'`` normally). Empty arrays when absent.
        """
        fid = self.header.get("fiducials")
        fid = fid if isinstance(fid, Mapping) else {}
        inner = fid.get("fid") if isinstance(fid.get("fid"), Mapping) else {}
        return {
            "pnt": _arr2(fid.get("pnt")),
            "fid": {
                "pnt": _arr2(inner.get("pnt")),
                "label": [_as_str(v) for v in _as_list(inner.get("label"))],
            },
            "unit": _as_str(fid.get("unit"), "mm"),
        }

    # -- data ---------------------------------------------------------------------------------

    @property
    def datafile(self) -> Path:
        """The ``.dat`` file: looked for next to the header first, then at the stored path.

        Raises
        ------
        LamegFileNotFoundError
            If neither exists.
        """
        stored = _as_str(self.header["data"].get("fname"), "")
        candidates = []
        if stored:
            base = PureWindowsPath(stored).name if "\\" in stored else Path(stored).name
            candidates.append(self.fname.parent / base)
            sp_ = Path(stored)
            candidates.append(sp_ if sp_.is_absolute() else self.fname.parent / sp_)
        candidates.append(self.fname.with_suffix(".dat"))
        for c in candidates:
            if c.is_file():
                return c
        raise LamegFileNotFoundError(
            f"data file of {self.fname} not found: looked for "
            f"{', '.join(str(c) for c in dict.fromkeys(candidates))}. Put the .dat file next to "
            "the .mat header (with the name stored in D.data.fname)"
        )

    @property
    def _scaling(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        data = self.header["data"]
        out = []
        for k in ("scl_slope", "scl_inter"):
            v = data.get(k)
            a = np.asarray(v if v is not None else [], dtype=np.float64).reshape(-1)
            if a.size == 0:
                out.append(None)
                continue
            if a.size not in (1, self.n_channels):
                raise LamegFormatError(
                    f"{self.fname}: D.data.{k} has {a.size} values; expected 1 or "
                    f"{self.n_channels} (one per channel)"
                )
            out.append(a)
        return out[0], out[1]

    @property
    def data(self) -> np.ndarray:
        """The data, shape (n_channels, n_samples, n_trials), physical units, read-only.

        A read-only ``numpy.memmap`` of the ``.dat`` file (float32 for SPM files) when the file
        stores no scaling; otherwise a float64 array with ``raw * scl_slope + scl_inter``.

        Raises
        ------
        LamegFileNotFoundError
            If the ``.dat`` file is missing.
        LamegFormatError
            If it is shorter than the header says (truncated) or the scaling is malformed.
        """
        if self._data is None:
            self._data = self._open_data()
        return self._data

    def _open_data(self) -> np.ndarray:
        dat = self.datafile
        shape = self._dim
        n = int(np.prod(shape))
        need = self._offset + n * self._dtype.itemsize
        size = dat.stat().st_size
        if size < need:
            raise LamegFormatError(
                f"{dat} is truncated: {size} bytes, but the header ({self.fname.name}) needs "
                f"{need} bytes for {shape[0]} channels x {shape[1]} samples x {shape[2]} trials of "
                f"{self._dtype.name} (offset {self._offset}). Re-copy the file or fix D.data.dim"
            )
        if size > need:  # SPM writes exactly the header's size: anything else shifts trials
            raise LamegFormatError(
                f"{dat} has {size} bytes but the header ({self.fname.name}) describes {need} "
                f"({shape[0]} channels x {shape[1]} samples x {shape[2]} trials of "
                f"{self._dtype.name}, offset {self._offset}): D.Nsamples/D.data.dim do not "
                "match the data file. Fix the header or re-copy the matching .mat/.dat pair")
        if n == 0:
            arr = np.zeros(shape, dtype=self._dtype)
        else:
            arr = np.memmap(dat, dtype=self._dtype, mode="r", offset=self._offset, shape=shape,
                            order="F")
        slope, inter = self._scaling
        if slope is not None or inter is not None:
            out = np.asarray(arr, dtype=np.float64)
            if slope is not None:
                out = out * slope.reshape(-1, 1, 1) if slope.size > 1 else out * slope[0]
            if inter is not None:
                out = out + (inter.reshape(-1, 1, 1) if inter.size > 1 else inter[0])
            out.flags.writeable = False
            return out
        return arr

    def get_data(self, channels=None, samples=None, trials=None,
                 dtype=np.float64) -> np.ndarray:
        """A copy of (part of) the data as a regular array (float64 by default, as SPM's ``D(...)``).

        Parameters
        ----------
        channels, samples, trials : index, slice or array of int, optional
            0-based selections (all by default).
        dtype : numpy dtype
            Output dtype.

        Returns
        -------
        numpy.ndarray, shape (n_sel_channels, n_sel_samples, n_sel_trials)
        """
        idx = []
        for sel in (channels, samples, trials):
            if sel is None:
                idx.append(slice(None))
            elif isinstance(sel, (int, np.integer)):
                idx.append([int(sel)])
            else:
                idx.append(sel)
        d = self.data
        out = d[idx[0]][:, idx[1]][:, :, idx[2]]
        return np.array(out, dtype=dtype)

    # -- writing ------------------------------------------------------------------------------

    def save(self, version: str | None = None) -> None:
        """Rewrite the header ``.mat`` from :attr:`header` (atomically; the ``.dat`` is untouched).

        Parameters
        ----------
        version : str, optional
            MAT-file version; default: the version the header was read with.
        """
        version = version or self.mat_version
        save_mat(self.fname, {"D": self.header}, version=version)
        self.mat_version = version

    def save_inv(self, inv_list: Sequence[Mapping], val: int | None = None) -> None:
        """Store ``inv_list`` as ``D.other.inv`` and rewrite the header (the ``.dat`` is untouched).

        Parameters
        ----------
        inv_list : sequence of dict
            One dict per head model / inversion, SPM layout (``mesh``, ``datareg``, ``forward``,
            ``inverse``, ...). Saved as a 1 x n MATLAB cell array.
        val : int, optional
            1-based ``D.other.val``. Default: keep the stored value if it is still valid,
            else ``len(inv_list)``.
        """
        if isinstance(inv_list, Mapping) or not isinstance(inv_list, Sequence):
            raise LamegValueError("inv_list must be a list of dicts (one per inversion)")
        for i, v in enumerate(inv_list):
            if not isinstance(v, Mapping):
                raise LamegValueError(f"inv_list[{i}] is a {type(v).__name__}, not a dict")
        n = len(inv_list)
        if val is None:
            cur = self.val
            val = cur if cur is not None and 1 <= cur <= n else n
        if n and not 1 <= int(val) <= n:
            raise LamegValueError(f"val = {val} is outside 1..{n}")
        header = dict(self.header)
        other = dict(header.get("other")) if isinstance(header.get("other"), Mapping) else {}
        other["inv"] = MatCell(list(inv_list), (1, n))
        if n:
            other["val"] = float(val)
        else:
            other.pop("val", None)
        header["other"] = other
        save_mat(self.fname, {"D": header}, version=self.mat_version)
        self.header = header

    def clone(self, new_fname: str | os.PathLike, data: np.ndarray | None = None, *,
              conditions: Sequence[str] | None = None,
              version: str | None = None) -> MEEG:
        """Copy the dataset to a new ``.mat``/``.dat`` pair.

        Parameters
        ----------
        new_fname : str or path-like
            New header name; a bare file name is placed next to this dataset (as SPM does).
        data : array, optional
            New data, shape (n_channels, n_samples', n_trials') or (n_channels, n_samples');
            default: a copy of this dataset's data. The number of channels must not change.
        conditions : sequence of str, optional
            Trial labels when ``data`` changes the number of trials (default ``'Undefined'``).
        version : str, optional
            MAT version of the new header (default: this header's).

        Returns
        -------
        MEEG
            The new dataset. The original is not modified.
        """
        new = Path(new_fname)
        if not new.is_absolute() and new.parent == Path("."):
            new = self.path / new
        if new.suffix != ".mat":
            new = new.with_suffix(".mat")
        if new.resolve() == self.fname:
            raise LamegValueError(f"clone target {new} is the dataset itself")
        if data is None:
            data = self.data
        data = np.asarray(data)
        if data.ndim == 2:
            data = data[:, :, None]
        if data.ndim != 3 or data.shape[0] != self.n_channels:
            raise LamegValueError(
                f"clone data must have shape ({self.n_channels}, n_samples, n_trials); "
                f"got {data.shape}"
            )
        header = copy.deepcopy(self.header)
        header["Nsamples"] = float(data.shape[1])
        trials = self._trials
        if data.shape[2] != len(trials) or conditions is not None:
            labels = list(conditions) if conditions is not None else (
                [t for t in self.conditions] if data.shape[2] == self.n_trials
                else ["Undefined"] * data.shape[2])
            if len(labels) != data.shape[2]:
                raise LamegValueError(
                    f"{len(labels)} conditions for {data.shape[2]} trials")
            header["trials"] = _make_trials(labels, self.time_onset, data.shape[2])
            header["condlist"] = MatCell(list(dict.fromkeys(labels)))
            if _as_str(header.get("type")) != "continuous":
                header["type"] = _auto_type(labels, data.shape[2], data.shape[1], self.fsample)
        return _write_dataset(new, header, data, version or self.mat_version)

    def __repr__(self) -> str:
        types: dict[str, int] = {}
        for t in self.chantypes:
            types[t] = types.get(t, 0) + 1
        tdesc = ", ".join(f"{n} {t}" for t, n in types.items())
        t = self.time
        span = f"{t[0] * 1e3:.1f}..{t[-1] * 1e3:.1f} ms" if t.size else "empty"
        conds = self.condlist
        cdesc = ", ".join(conds[:5]) + (", ..." if len(conds) > 5 else "")
        return (
            f"<MEEG {self.fname.name!r} ({self.type}, MAT v{self.mat_version}): "
            f"{self.n_channels} channels ({tdesc}), {self.n_samples} samples x {self.n_trials} "
            f"trials at {self.fsample:g} Hz ({span}), conditions [{cdesc}], "
            f"{len(self.badchannels)} bad channels, {len(self.inv)} inversion(s)>"
        )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_meeg(fname: str | os.PathLike) -> MEEG:
    """Open an SPM M/EEG dataset.

    Parameters
    ----------
    fname : str or path-like
        The header ``.mat`` (MAT v5/v6/v7 or v7.3); a ``.dat`` name is accepted too.

    Returns
    -------
    MEEG

    Raises
    ------
    LamegFileNotFoundError
        If the header does not exist.
    LamegFormatError
        If it is not a MAT-file or not an SPM M/EEG header, or the header is inconsistent.
    """
    path = Path(fname)
    if path.suffix == ".dat":
        path = path.with_suffix(".mat")
    if not path.is_file():
        raise LamegFileNotFoundError(f"SPM M/EEG header not found: {path}")
    version = mat_version(path)
    try:
        m = load_mat(path, variables=["D"])
    except LamegFormatError as err:
        if "has no variable" in str(err):
            raise LamegFormatError(
                f"{path} is a MAT-file but not an SPM M/EEG dataset (no variable 'D')"
            ) from err
        raise
    D = m["D"]
    if not isinstance(D, Mapping):
        raise LamegFormatError(f"{path}: variable 'D' is not a struct; not an SPM M/EEG dataset")
    return MEEG(path, dict(D), mat_version=version)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Gain matrices
# ---------------------------------------------------------------------------------------------

_V7_LIMIT = 2 ** 31 - 1024


def read_gainmat(fname: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read SPM's ``SPMgainmatrix_<base>_<k>.mat``.

    Parameters
    ----------
    fname : str or path-like

    Returns
    -------
    G : numpy.ndarray, shape (n_channels, n_sources), float64
        Lead field (fT per nA m for SPM files).
    labels : list of str
        Channel labels, the row order of ``G``.

    Raises
    ------
    LamegFileNotFoundError, LamegFormatError
    """
    path = Path(fname)
    if not path.is_file():
        raise LamegFileNotFoundError(f"gain matrix file not found: {path}")
    try:
        m = load_mat(path, variables=["G", "label"])
    except LamegFormatError as err:
        if "has no variable" in str(err):
            raise LamegFormatError(
                f"{path} is not an SPM gain-matrix file (it needs variables 'G' and 'label')"
            ) from err
        raise
    G = m["G"]
    if hasattr(G, "toarray"):
        G = G.toarray()
    G = np.asarray(G)
    if G.dtype.kind not in "biuf":
        raise LamegFormatError(f"{path}: G is not a real numeric matrix")
    labels = [_as_str(v) for v in _as_list(m["label"])]
    if not all(isinstance(v, str) for v in labels):
        raise LamegFormatError(f"{path}: 'label' is not a list of channel names")
    G = np.asarray(G, dtype=np.float64)
    if G.ndim == 1:
        G = G.reshape(len(labels), -1) if labels and G.size % max(len(labels), 1) == 0 \
            else G.reshape(1, -1)
    if G.ndim != 2:
        raise LamegFormatError(f"{path}: G has {G.ndim} dimensions; expected a matrix")
    if G.shape[0] != len(labels):
        if G.shape[1] == len(labels) and G.shape[0] != G.shape[1]:
            logger.warning("%s: G is stored sources x channels; transposing", path)
            G = G.T
        else:
            raise LamegFormatError(
                f"{path}: G has {G.shape[0]} rows but there are {len(labels)} channel labels"
            )
    return G, labels


def write_gainmat(fname: str | os.PathLike, G: np.ndarray, labels: Sequence[str],
                  version: str | None = None) -> Path:
    """Write an SPM gain-matrix file (``G``, ``label``), atomically.

    Parameters
    ----------
    fname : str or path-like
    G : array, shape (n_channels, n_sources)
        Lead field (fT per nA m).
    labels : sequence of str
        Channel labels (rows of ``G``); saved as a column cell array.
    version : {'7', '7.3'}, optional
        Default ``'7'``, or ``'7.3'`` when ``G`` exceeds 2 GB (the MAT-5 limit).

    Returns
    -------
    pathlib.Path
    """
    G = np.asarray(G, dtype=np.float64)
    labels = [str(v) for v in labels]
    if G.ndim != 2 or G.shape[0] != len(labels):
        raise LamegValueError(
            f"G must be (n_channels, n_sources) with one row per label; got {G.shape} and "
            f"{len(labels)} labels"
        )
    if not np.all(np.isfinite(G)):
        raise LamegDataError("G contains NaN or Inf values")
    if version is None:
        version = "7.3" if G.nbytes > _V7_LIMIT else "7"
    elif str(version) != "7.3" and G.nbytes > _V7_LIMIT:
        raise LamegValueError(f"G is {G.nbytes / 2**30:.1f} GB; MAT v{version} cannot hold more "
                              "than 2 GB per variable: use version='7.3'")
    return save_mat(fname, {"G": G, "label": MatCell.column(labels)}, version=str(version))
