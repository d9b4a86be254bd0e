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

import numpy as np

from ..exceptions import (
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)
from .matfile import MatCell, load_mat, mat_version, save_mat

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

    Parameters
    ----------
    fname : str or path-like
        The header ``.mat`` file (stored resolved, as a :class:`pathlib.Path`).
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
            0-based channel indices, sorted.
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

        Parameters
        ----------
        labels : str or sequence of str
            Channel label(s).

        Returns
        -------
        ndarray of int, shape (n_labels,)
            0-based channel index of each label (SPM's ``D.indchannel`` minus 1).

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
            The selected data in the file's units (e.g. fT for MEG), a copy.
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
        from .spm_meeg_write import _auto_type, _make_trials, _write_dataset

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
        out = _write_dataset(new, header, data, version or self.mat_version)
        if out.inv:  # own links to the borrowed gain files: the clone stays self-contained
            from .spm_inv import adopt_gain_files

            adopt_gain_files(out, source_dir=self.path)
            out = load_meeg(out.fname)
        return out

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


def load_meeg(fname: str | os.PathLike, lazy_inverse: bool = False) -> MEEG:
    """Open an SPM M/EEG dataset.

    Parameters
    ----------
    fname : str or path-like
        The header ``.mat`` (MAT v5/v6/v7 or v7.3); a ``.dat`` name is accepted too.
    lazy_inverse : bool
        Memory-map (copy-on-write) the large arrays of the stored inversions (``inverse.M``,
        ``inverse.L``, ... : hundreds of MB at full resolution) instead of reading them, when
        the header is a large uncompressed MAT-5 file (see :func:`lameg.io.matfile.load_mat`):
        for readers of the head model.

    Returns
    -------
    MEEG
        The dataset (header parsed, data memory-mapped on first access).

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
        m = load_mat(path, variables=["D"], map_under=("inverse",) if lazy_inverse else ())
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


from .spm_gainmat import read_gainmat, write_gainmat  # noqa: E402  (re-exported)
from .spm_meeg_write import write_meeg  # noqa: E402  (re-exported)
