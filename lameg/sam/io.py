"""Inputs and outputs of the SAM programs.

* :class:`SamData` -- sensor data in tesla with sampling rate, time axis, channel names, trial
  conditions and events (markers), made from an SPM M/EEG dataset (:func:`lameg.io.spm_meeg.load_meeg`),
  an MNE ``Raw``/``Epochs`` object (or a ``.fif``/CTF ``.ds`` file) or plain arrays.
* SAM folders: ``<dataset folder>/<dataset stem>_SAM/`` (the role of a CTF dataset's ``SAM``
  folder), with covariance sets ``<CovName>,<hp>-<lp>Hz/`` and weight sets
  ``<WtsName>,<hp>-<lp>Hz/``.
* SAMsrcV5 ``.cov`` binary files (``"SAMCOVAR"`` + 568-byte header + channel indices + matrix),
  weight sets (NumPy ``.npz`` plus SAM-style NIfTI/GIfTI), and images: NIfTI on grids (SAM's
  ``sform``: R = -y, A = x, S = z of the head frame, mm) and GIfTI on surfaces.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path, logger
from ..exceptions import LamegDataError, LamegFileNotFoundError, LamegFormatError, LamegValueError
from ._docs import fill_doc

__all__ = ["SamData", "load_dataset", "dataset_prefix", "write_cov", "read_cov"]

_UNIT_SCALE = {"t": 1.0, "ft": 1e-15, "pt": 1e-12, "nt": 1e-9, "t/m": 1.0, "ft/mm": 1e-12,
               "ft/m": 1e-15, "ft/cm": 1e-13, "pt/m": 1e-12}


@dataclass
class SamData:
    """Sensor data for the SAM programs.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples, n_trials)
        Good MEG channels, in tesla (T/m for gradiometers).
    fs : float
        Sampling rate, Hz.
    time : ndarray, shape (n_samples,)
        Time of each sample within a trial, s (0 = the trial's event for epoched data).
    chan_names : list of str
    events : list of (int, float, str)
        Markers: (trial index, latency in s on ``time``, name). Epoched data get one event per
        trial at t = 0 named after the trial's condition.
    conditions : list of str
        Condition label per trial.
    fname : Path or None
        The dataset file (used to place the SAM folder).
    sensors : dict or None
        Sensor geometry for the SAM head models (:func:`lameg.sam.forward.sensor_array`):
        ``coilpos`` (n_coils, 3) m, ``coilori`` (n_coils, 3), ``tra`` (n_channels, n_coils), in the
        MEG head frame, plus the full SPM ``grad`` (key ``grad``) or MNE ``Info`` (key ``info``)
        when the data come from such a dataset (coil integration points and CTF balancing), or
        the :class:`lameg.sam.ctf.CtfDataset` (key ``ctf``).
    epoch_ok : ndarray of bool, shape (n_trials,), optional
        Trials that markers may use (CTF ``BAD`` trials are False); default all.
    chan_index : ndarray of int, shape (n_channels,), optional
        Dataset channel indices written in ``.cov`` files (CTF: ``res4`` indices).
    set_name : str, optional
        Dataset name written in ``.cov`` headers (default from ``fname``).
    analog_band : (float, float), optional
        Recorded band, Hz (bands outside it are errors, as in SAMsrcV5).
    ctf : CtfDataset, optional
        The CTF dataset the data were read from.
    """

    data: np.ndarray
    fs: float
    time: np.ndarray
    chan_names: list[str]
    events: list[tuple[int, float, str]] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    fname: Path | None = None
    sensors: dict | None = None
    epoch_ok: np.ndarray | None = None
    chan_index: np.ndarray | None = None
    set_name: str | None = None
    analog_band: tuple[float, float] | None = None
    ctf: Any = None

    def __post_init__(self):
        d = np.asarray(self.data)
        if d.ndim == 2:
            d = d[:, :, None]
        if d.ndim != 3:
            raise LamegValueError(f"data must be (n_channels, n_samples[, n_trials]), got {d.shape}")
        if not np.all(np.isfinite(d)):
            raise LamegDataError("data contain NaN or infinite values; clean them first")
        self.data = d
        self.time = np.asarray(self.time, float)
        if self.time.shape != (d.shape[1],):
            raise LamegValueError(f"time has {self.time.size} samples, data {d.shape[1]}")
        if len(self.chan_names) != d.shape[0]:
            raise LamegValueError(f"{len(self.chan_names)} channel names for {d.shape[0]} rows")
        if not self.fs > 0:
            raise LamegValueError(f"sampling rate must be positive, got {self.fs}")
        if not self.conditions:
            self.conditions = ["Global"] * d.shape[2]
        if self.epoch_ok is None:
            self.epoch_ok = np.ones(d.shape[2], bool)
        if self.chan_index is None:
            self.chan_index = np.arange(d.shape[0])
        if self.set_name is None:
            self.set_name = _set_name(self.fname)

    @property
    def pre_trig(self) -> int:
        """Samples before the trial's time zero (``-time[0] * fs``, rounded)."""
        return int(np.rint(-self.time[0] * self.fs))

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return self.data.shape[0]

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return self.data.shape[2]

    @classmethod
    def from_arrays(cls, data, fs, time=None, chan_names=None, conditions=None, events=None,
                    unit: str = "T", sensors=None, fname=None) -> SamData:
        """Wrap arrays.

        Parameters
        ----------
        data : ndarray, shape (n_channels, n_samples[, n_trials])
            Sensor data in ``unit``.
        fs : float
            Sampling rate, Hz.
        time : ndarray, shape (n_samples,), optional
            Sample times, s (default from 0).
        chan_names : list of str, optional
        conditions : list of str, optional
            Condition per trial; they define events at t = 0 unless ``events`` is given.
        events : list of (int, float, str), optional
            (trial, latency s, name).
        unit : str
            Unit of ``data`` (``T``, ``fT``, ``pT``, ``T/m``, ...).
        sensors : dict, optional
            Sensor geometry (see the class).
        fname : path-like, optional
            Dataset file (places the SAM folder).

        Returns
        -------
        SamData
        """
        data = np.asarray(data, float) * _unit_scale(unit)
        if data.ndim == 2:
            data = data[:, :, None]
        if time is None:
            time = np.arange(data.shape[1]) / fs
        chan_names = list(chan_names) if chan_names is not None else [
            f"MEG{i:03d}" for i in range(data.shape[0])]
        conditions = list(conditions) if conditions is not None else []
        if events is None:
            events = [(k, 0.0, c) for k, c in enumerate(conditions)] if conditions else []
        return cls(data, float(fs), np.asarray(time, float), chan_names, list(events), conditions,
                   Path(fname) if fname else None, sensors)

    @classmethod
    @fill_doc
    def from_ctf(cls, path) -> SamData:
        """From a CTF ``.ds`` dataset, read exactly as SAMsrcV5 reads it (:mod:`lameg.sam.ctf`).

        Parameters
        ----------
        %(sam_ds_path)s

        Returns
        -------
        SamData
        """
        from .ctf import check_no_data, read_ctf

        ds = read_ctf(path)
        check_no_data(ds)
        data = ds.read_primary().transpose(1, 2, 0)
        time = (np.arange(ds.n_samples) - ds.pre_trig) / ds.fs
        return cls(data, ds.fs, time, ds.primary_names, list(ds.markers),
                   ["Global"] * ds.n_epochs, ds.path, {"ctf": ds}, ds.epoch_ok.copy(),
                   ds.primary.copy(), ds.set_name, (ds.analog_hp, ds.analog_lp), ds)

    @classmethod
    def from_meeg(cls, meeg) -> SamData:
        """From an :class:`lameg.io.spm_meeg.MEEG` (good MEG channels only).

        Parameters
        ----------
        meeg : MEEG

        Returns
        -------
        SamData
        """
        idx = np.asarray(meeg.indchantype("MEG", "GOOD"), int)
        if idx.size == 0:
            raise LamegDataError(f"{meeg.fname}: no good MEG channels")
        units = [meeg.chanunits[i] for i in idx]
        scale = np.array([_unit_scale(u) for u in units])
        data = np.asarray(meeg.data[idx], float) * scale[:, None, None]
        conditions = [str(c) for c in meeg.conditions]
        events = _meeg_events(meeg, conditions)
        sensors = None
        try:
            sens = meeg.sensors("MEG")
            f = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}[str(sens.get("unit", "mm"))]
            labels = list(sens["label"])
            rows = [labels.index(meeg.chanlabels[i]) for i in idx]
            sensors = {"coilpos": np.asarray(sens["coilpos"], float) * f,
                       "coilori": np.asarray(sens["coilori"], float),
                       "tra": np.asarray(sens["tra"], float)[rows], "grad": sens}
        except Exception as e:  # sensors are optional (only the SAM head models need them)
            logger.debug("no usable sensor geometry in %s: %s", meeg.fname, e)
        return cls(data, float(meeg.fsample), np.asarray(meeg.time, float),
                   [meeg.chanlabels[i] for i in idx], events, conditions, Path(meeg.fname), sensors)

    @classmethod
    def from_mne(cls, inst, fname=None) -> SamData:
        """From an MNE ``Raw`` or ``Epochs`` (MEG channels, bad channels excluded).

        Parameters
        ----------
        inst : mne.io.Raw or mne.Epochs
        fname : path-like, optional
            Dataset file (default: the object's file).

        Returns
        -------
        SamData
        """
        import mne

        picks = mne.pick_types(inst.info, meg=True, ref_meg=False, exclude="bads")
        if len(picks) == 0:
            raise LamegDataError("the MNE object has no good MEG channels")
        names = [inst.ch_names[i] for i in picks]
        fs = float(inst.info["sfreq"])
        if isinstance(inst, mne.BaseEpochs):
            data = inst.get_data(picks=picks).transpose(1, 2, 0)
            inv = {v: k for k, v in inst.event_id.items()}
            conditions = [inv[c] for c in inst.events[:, 2]]
            events = [(k, 0.0, c) for k, c in enumerate(conditions)]
            time = inst.times
        else:
            data = inst.get_data(picks=picks)[:, :, None]
            time = inst.times
            conditions = ["Global"]
            events = [(0, float(a["onset"] - inst.first_time), str(a["description"]))
                      for a in inst.annotations]
        chs = [inst.info["chs"][i] for i in picks]
        dev_head = inst.info["dev_head_t"]
        t = np.eye(4) if dev_head is None else np.asarray(dev_head["trans"], float)
        sensors = {"coilpos": np.array([c["loc"][:3] for c in chs]) @ t[:3, :3].T + t[:3, 3],
                   "coilori": np.array([c["loc"][9:12] for c in chs]) @ t[:3, :3].T,
                   "tra": np.eye(len(chs)), "info": inst.info}
        fname = fname or (inst.filenames[0] if getattr(inst, "filenames", None) else None)
        return cls(data, fs, np.asarray(time, float), names, events, conditions,
                   Path(fname) if fname else None, sensors)


def _set_name(fname) -> str:
    if fname is None:
        return "NONE"
    p = Path(fname)
    return p.name[:-3] if p.name.endswith(".ds") else p.stem


def _unit_scale(unit: str) -> float:
    try:
        return _UNIT_SCALE[str(unit).strip().lower()]
    except KeyError:
        raise LamegValueError(f"unsupported channel unit {unit!r} (expected T, fT, pT or T/m)"
                              ) from None


def _meeg_events(meeg, conditions: list[str]) -> list[tuple[int, float, str]]:
    if meeg.n_trials > 1 or meeg.header.get("type", "") == "single":
        return [(k, 0.0, c) for k, c in enumerate(conditions)]
    events = []
    trials = meeg.header.get("trials", {})
    if isinstance(trials, list):
        trials = trials[0] if trials else {}
    evs = trials.get("events", []) if isinstance(trials, dict) else []
    if isinstance(evs, dict):
        keys = list(evs)
        n = np.size(evs.get("time", []))
        evs = [{k: np.atleast_1d(evs[k])[i] if np.size(evs[k]) == n else evs[k] for k in keys}
               for i in range(n)]
    for ev in evs or []:
        name = ev.get("value")
        if name is None or (isinstance(name, str) and not name) or np.size(name) == 0:
            name = ev.get("type", "event")
        events.append((0, float(np.asarray(ev.get("time", 0.0)).ravel()[0]), str(name)))
    return events


def load_dataset(path: str | os.PathLike) -> SamData:
    """Load a dataset named by ``DataSet``: CTF ``.ds`` (SAMsrcV5's reader), SPM ``.mat`` or MNE
    ``.fif``.

    Parameters
    ----------
    path : path-like
        The dataset (``.ds``/``.mat``/``.fif`` may be omitted).

    Returns
    -------
    SamData
    """
    p = Path(os.path.expanduser(str(path)))
    cands = [p] + ([p.with_name(p.name + ext) for ext in (".mat", ".ds", ".fif")]
                   if not p.suffix else [])
    found = next((c for c in cands if c.exists()), None)
    if found is None:
        raise LamegFileNotFoundError(
            f"dataset {path} not found; set DataSet (or -r) to an SPM .mat, a .fif or a CTF .ds")
    if found.suffix == ".mat":
        from ..io.spm_meeg import load_meeg

        return SamData.from_meeg(load_meeg(found))
    import mne

    if found.suffix == ".ds":
        return SamData.from_ctf(found)
    if found.suffix == ".fif":
        try:
            inst = mne.read_epochs(found, verbose="error")
        except Exception:
            inst = mne.io.read_raw_fif(found, verbose="error")
        return SamData.from_mne(inst, fname=found)
    raise LamegFormatError(f"{found}: unsupported dataset type {found.suffix!r}")


def as_sam_data(data: Any) -> SamData:
    """Coerce a SamData, MEEG, MNE object or path into :class:`SamData`."""
    if isinstance(data, SamData):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_dataset(data)
    if hasattr(data, "indchantype") and hasattr(data, "fsample"):
        return SamData.from_meeg(data)
    if hasattr(data, "info") and hasattr(data, "get_data"):
        return SamData.from_mne(data)
    raise LamegValueError(f"cannot use {type(data).__name__} as SAM data (give a SamData, MEEG, "
                          "MNE Raw/Epochs or a dataset path)")


def sam_directory(dataset: str | os.PathLike | None, fallback: str | os.PathLike = ".") -> Path:
    """The SAM output folder of a dataset.

    ``<dataset>.ds/SAM`` for CTF datasets, ``<dataset folder>/<dataset stem>_SAM`` otherwise, or
    ``<fallback>/SAM`` without a dataset.

    Parameters
    ----------
    dataset : path or None
        Dataset path.
    fallback : path
        Folder used when ``dataset`` is None.

    Returns
    -------
    Path
        The SAM folder (not created).
    """
    if dataset is None:
        return Path(fallback) / "SAM"
    p = Path(dataset)
    if p.suffix == ".ds":  # CTF datasets carry their own SAM folder
        return p / "SAM"
    return p.parent / f"{p.stem}_SAM"


def dataset_prefix(name: str, prefix_length: int | str = "_") -> str:
    """Dataset-name prefix (``%P`` of ``MRIPattern``), as SAMsrcV5 computes it.

    A number N takes the first N characters; a delimiter character takes the text before its first
    occurrence, or before the first ``.`` when the delimiter is absent (SAMsrcV5's default delimiter
    is ``_``), or the whole name when neither occurs.

    Parameters
    ----------
    name : str
        The dataset name as given (its last path component is used).
    prefix_length : int or str
        ``PrefixLength``.

    Returns
    -------
    str
    """
    base = str(name).rsplit("/", 1)[-1]
    if isinstance(prefix_length, str):
        i = base.find(prefix_length)
        if i < 0:
            i = base.find(".")
        return base if i < 0 else base[:i]
    return base[:max(int(prefix_length), 0)]


def band_folder(base: Path, name: str, band: tuple[float, float]) -> Path:
    """``<base>/<name>,<int(lo)>-<int(hi)>Hz``.

    Parameters
    ----------
    base : Path
        SAM folder.
    name : str
        Covariance set name.
    band : tuple of float, (2,)
        Pass band ``(lo, hi)``, Hz (truncated to integers in the name).

    Returns
    -------
    Path
        The band folder (not created).
    """
    return base / f"{name},{int(band[0])}-{int(band[1])}Hz"


# ---------------------------------------------------------------------------------------------
# .cov files
# ---------------------------------------------------------------------------------------------

_COV_HDR = struct.Struct("<i256s256siddddiiiI")
COV_TYPES = {"Global": 0, "Sum": 1, "Orient": 2, "Noise": 3}
SAM_REV = 3  # version written by SAMsrcV5 5.1


def write_cov(path, C, *, set_name: str, spec_name: str, band, bandwidth: float, noise: float,
              n_segments: int, n_samples: int, cov_type: int, chan_index=None) -> Path:
    """Write a SAMsrcV5 ``.cov`` file.

    Little endian: ``SAMCOVAR``, the 568-byte ``COV_HDR`` (version 3, dataset name, specification
    name, channels, band, bandwidth, noise, segments, samples, type), int32 channel indices and the
    float64 matrix.

    Parameters
    ----------
    path : path-like
    C : ndarray, shape (M, M)
        Covariance, T^2.
    set_name, spec_name : str
        Dataset and parameter (specification) names.
    band : (float, float)
        Pass band, Hz.
    bandwidth : float
        Effective bandwidth, Hz.
    noise : float
        Noise floor, T^2.
    n_segments, n_samples : int
    cov_type : int
        0 Global, 1 Sum, 2 Orient, 3 Noise, 4 + i marker i.
    chan_index : ndarray of int, shape (M,), optional
        Dataset channel indices (default 0..M-1).

    Returns
    -------
    Path
    """
    C = np.asarray(C, float)
    m = C.shape[0]
    idx = np.arange(m) if chan_index is None else np.asarray(chan_index)
    if idx.shape != (m,):
        raise LamegValueError(f"{m} channels but {idx.size} channel indices")
    hdr = _COV_HDR.pack(SAM_REV, set_name.encode()[:255], spec_name.encode()[:255], m,
                        float(band[0]), float(band[1]), float(bandwidth), float(noise),
                        int(n_segments), int(n_samples), int(cov_type), 0)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(b"SAMCOVAR")
        fh.write(hdr)
        fh.write(idx.astype("<i4").tobytes())
        fh.write(np.ascontiguousarray(C, dtype="<f8").tobytes())
    return Path(path)


def read_cov(path) -> dict:
    """Read a SAMsrcV5 ``.cov`` file (lameg's or SAMsrcV5's).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
        ``C`` (M, M) T^2, ``chan_index``, ``band``, ``bandwidth``, ``noise``, ``n_segments``,
        ``n_samples``, ``cov_type``, ``set_name``, ``spec_name``, ``version``.
    """
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"covariance file {path} not found; run sam_cov first")
    raw = path.read_bytes()
    if raw[:8] != b"SAMCOVAR" or len(raw) < 8 + 568:
        raise LamegFormatError(f"{path} is not a SAM covariance file")
    (ver, set_name, spec, m, hp, lp, bw, noise, nseg, nsamp, ctype, _) = _COV_HDR.unpack(
        raw[8:576])
    need = 576 + 4 * m + 8 * m * m
    if m <= 0 or len(raw) != need:
        raise LamegFormatError(f"{path}: truncated or corrupt covariance file ({len(raw)} bytes, "
                               f"expected {need})")
    idx = np.frombuffer(raw, "<i4", m, 576)
    C = np.frombuffer(raw, "<f8", m * m, 576 + 4 * m).reshape(m, m).copy()
    return {"C": C, "chan_index": idx.copy(), "band": (hp, lp), "bandwidth": bw, "noise": noise,
            "n_segments": nseg, "n_samples": nsamp, "cov_type": ctype,
            "set_name": set_name.split(b"\0", 1)[0].decode(errors="replace"),
            "spec_name": spec.split(b"\0", 1)[0].decode(errors="replace"), "version": ver}


def write_text(path, text: str) -> Path:
    """Write a UTF-8 text file atomically.

    Parameters
    ----------
    path : path
        Output file.
    text : str
        Content.

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Source sets
# ---------------------------------------------------------------------------------------------


def read_targets(path) -> np.ndarray:
    """Read a target file: one ``x y z [value]`` line per target, cm; returns (n, 3) metres."""
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"target file {path} not found")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        toks = line.replace(",", " ").split()
        if len(toks) not in (3, 4):
            raise LamegFormatError(f"{path}:{lineno}: expected 'x y z [value]' (cm), got {line!r}")
        try:
            rows.append([float(t) for t in toks[:3]])
        except ValueError:
            raise LamegFormatError(f"{path}:{lineno}: non-numeric target {line!r}") from None
    if not rows:
        raise LamegFormatError(f"{path}: no targets")
    return np.asarray(rows) * 0.01


def load_atlas(atlas: Any, unit: str = "mm") -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Positions (m), orientations (unit vectors or None) and faces of a surface atlas.

    ``atlas`` may be a GIfTI path or a ``nibabel.gifti.GiftiImage`` (POINTSET, TRIANGLE and an
    optional VECTOR array of orientations, as written by :class:`lameg.surf.LayerSurfaceSet`), or a
    tuple ``(positions, orientations)``. GIfTI coordinates are in ``unit`` (mm by default).

    Parameters
    ----------
    atlas : path, nibabel.gifti.GiftiImage or tuple
        The atlas (see above).
    unit : str
        Unit of GIfTI coordinates ('mm', 'cm' or 'm').

    Returns
    -------
    positions : ndarray, shape (n_src, 3)
        Source positions, m.
    orientations : ndarray, shape (n_src, 3), or None
        Unit orientations, when given.
    faces : ndarray of int, shape (n_faces, 3), or None
        Triangles, when given.
    """
    import nibabel as nib

    f = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}[unit]
    if isinstance(atlas, tuple):
        pos = np.asarray(atlas[0], float) * f
        ori = None if atlas[1] is None else np.asarray(atlas[1], float)
        faces = None
    else:
        if isinstance(atlas, (str, os.PathLike)):
            if not Path(atlas).is_file():
                raise LamegFileNotFoundError(f"atlas {atlas} not found")
            try:
                atlas = nib.load(str(atlas))
            except Exception as e:
                raise LamegFormatError(f"{atlas}: cannot read GIfTI atlas: {e}") from None
        pos = ori = faces = None
        for da in atlas.darrays:
            code = nib.nifti1.intent_codes.niistring[da.intent] if isinstance(da.intent, int) \
                else da.intent
            if code == "NIFTI_INTENT_POINTSET" and pos is None:
                pos = np.asarray(da.data, float) * f
            elif code == "NIFTI_INTENT_TRIANGLE" and faces is None:
                faces = np.asarray(da.data, int)
            elif code == "NIFTI_INTENT_VECTOR" and ori is None:
                ori = np.asarray(da.data, float)
        if pos is None:
            raise LamegFormatError("the atlas GIfTI has no POINTSET array")
    if ori is not None:
        if ori.shape != pos.shape:
            raise LamegFormatError(f"atlas orientations {ori.shape} do not match positions "
                                   f"{pos.shape}")
        nrm = np.linalg.norm(ori, axis=1, keepdims=True)
        if np.any(nrm == 0):
            raise LamegDataError("the atlas has zero-length orientation vectors")
        ori = ori / nrm
    return pos, ori, faces


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def grid_affine(origin_m: np.ndarray, step_m: float) -> np.ndarray:
    """SAM's NIfTI sform for a grid stored as (nZ, nY, nX): R = -y, A = x, S = z (mm).

    Parameters
    ----------
    origin_m : ndarray, shape (3,)
        Position of the first voxel (head frame x, y, z), m.
    step_m : float
        Grid step, m.

    Returns
    -------
    ndarray, shape (4, 4)
        Voxel-to-world affine, mm.
    """
    s = step_m * 1e3
    x0, y0, z0 = np.asarray(origin_m) * 1e3
    return np.array([[0, -s, 0, -y0], [0, 0, s, x0], [s, 0, 0, z0], [0, 0, 0, 1.0]])


def to_volume(values: np.ndarray, shape_xyz: tuple[int, int, int], mask: np.ndarray) -> np.ndarray:
    """Scatter per-source values onto a (nZ, nY, nX, ...) volume (zeros outside).

    Parameters
    ----------
    values : ndarray, shape (n_src, ...)
        Values of the sources inside the mask (any unit).
    shape_xyz : tuple of int, (3,)
        Grid shape ``(nX, nY, nZ)``.
    mask : ndarray of bool, shape (nX * nY * nZ,)
        Voxels holding a source, in x-major (C) order.

    Returns
    -------
    ndarray, shape (nZ, nY, nX, ...)
        The volume, float32.
    """
    nx, ny, nz = shape_xyz
    full = np.zeros((nx * ny * nz,) + values.shape[1:], np.float32)
    full[mask] = values
    full = full.reshape((nx, ny, nz) + values.shape[1:])
    return np.ascontiguousarray(np.swapaxes(full, 0, 2))


def write_image(path, values: np.ndarray, source_set, *, time_step: float | None = None,
                t0: float | None = None, intent: str = "NONE", description: str = "") -> Path:
    """Write per-source values as NIfTI (grids, targets) or GIfTI (surface atlases).

    ``values`` is (n_src,) or (n_src, n_times). GIfTI files get one float32 array per time point
    (intent ``NIFTI_INTENT_TIME_SERIES`` when there are several) and ``TimeStep``/``TimeOffset``
    metadata; NIfTI files get ``pixdim[4] = TimeStep`` and ``toffset = t0``.

    Parameters
    ----------
    path : path
        Output file (``.nii`` or ``.gii``).
    values : ndarray, shape (n_src,) or (n_src, n_times)
        Values per source (any unit).
    source_set : SourceSet
        The sources (grid, targets or atlas).
    time_step : float or None
        Time between columns of ``values``, s.
    t0 : float or None
        Time of the first column, s.
    intent : str
        NIfTI intent code name.
    description : str
        Text stored in the header / metadata.

    Returns
    -------
    Path
        The file written.
    """
    import nibabel as nib

    path = Path(path)
    values = np.asarray(values, np.float32)
    if source_set.kind == "atlas":
        path = path.with_suffix(".gii")
        meta = {"Description": description}
        if time_step is not None:
            meta["TimeStep"] = repr(float(time_step))
        if t0 is not None:
            meta["TimeOffset"] = repr(float(t0))
        cols = values[:, None] if values.ndim == 1 else values
        it = "NIFTI_INTENT_TIME_SERIES" if cols.shape[1] > 1 else intent_name(intent)
        img = nib.gifti.GiftiImage(meta=nib.gifti.GiftiMetaData(meta))
        for k in range(cols.shape[1]):
            img.add_gifti_data_array(nib.gifti.GiftiDataArray(
                np.ascontiguousarray(cols[:, k]), intent=it, datatype="NIFTI_TYPE_FLOAT32"))
        with atomic_path(path, suffix=".tmp.gii") as tmp:
            nib.save(img, str(tmp))
        return path
    path = path.with_suffix(".nii")
    if source_set.kind == "grid":
        vol = to_volume(values, source_set.grid_shape, source_set.grid_mask)
        aff = grid_affine(source_set.grid_origin, source_set.grid_step)
    else:
        vol = values.reshape((1, 1, values.shape[0]) + values.shape[1:])
        aff = np.eye(4)
    img = nib.Nifti1Image(vol, aff)
    img.header.set_sform(aff, code="scanner")
    img.header.set_qform(aff, code="scanner")
    img.header.set_xyzt_units("mm", "sec")
    if time_step is not None and vol.ndim == 4:
        z = list(img.header.get_zooms())
        z[3] = float(time_step)
        img.header.set_zooms(z)
    if t0 is not None:
        img.header["toffset"] = float(t0)
    img.header["descrip"] = description.encode()[:79]
    with atomic_path(path, suffix=".tmp.nii") as tmp:
        nib.save(img, str(tmp))
    return path


def intent_name(intent: str) -> str:
    return intent if intent.startswith("NIFTI_INTENT_") else f"NIFTI_INTENT_{intent}"


def write_weights_files(folder: Path, name: str, W: np.ndarray, source_set, noise: float) -> Path:
    """SAM-style weight file: GIfTI VECTOR (V x M) for atlases, NIfTI (nZ, nY, nX, M) otherwise.

    Parameters
    ----------
    folder : Path
        Output folder.
    name : str
        File stem (``.gii`` or ``.nii`` is appended).
    W : ndarray, shape (n_src, M)
        Beamformer weights, A m per T, one row per source.
    source_set : SourceSet
        The sources (grid, targets or atlas).
    noise : float
        Noise power, T^2 (stored in the metadata / header description).

    Returns
    -------
    Path
        The file written.
    """
    import nibabel as nib

    if source_set.kind == "atlas":
        path = folder / f"{name}.gii"
        img = nib.gifti.GiftiImage(meta=nib.gifti.GiftiMetaData({"noise": repr(float(noise))}))
        img.add_gifti_data_array(nib.gifti.GiftiDataArray(
            np.ascontiguousarray(W, np.float32), intent="NIFTI_INTENT_VECTOR",
            datatype="NIFTI_TYPE_FLOAT32"))
        with atomic_path(path, suffix=".tmp.gii") as tmp:
            nib.save(img, str(tmp))
        return path
    path = folder / f"{name}.nii"
    if source_set.kind == "grid":
        vol = to_volume(W, source_set.grid_shape, source_set.grid_mask)
        aff = grid_affine(source_set.grid_origin, source_set.grid_step)
    else:
        vol = W.reshape(1, 1, W.shape[0], W.shape[1]).astype(np.float32)
        aff = np.eye(4)
    img = nib.Nifti1Image(vol, aff)
    img.header.set_sform(aff, code="scanner")
    img.header["intent_name"] = b"SAM Coefficients"
    img.header["descrip"] = f"noise={float(noise):.9e} T^2".encode()
    with atomic_path(path, suffix=".tmp.nii") as tmp:
        nib.save(img, str(tmp))
    return path
