"""MNE-Python -> SPM M/EEG conversion.

:func:`mne_to_spm` turns ``mne.Epochs`` / ``mne.Evoked`` / ``mne.io.Raw`` objects (or ``.fif``
files holding them) into SPM M/EEG datasets; :func:`ctf_fif_spm_conversion` is laMEG's entry
point for CTF recordings that were preprocessed in MNE.

Conventions (those of SPM and FieldTrip):

* Data units: magnetometers and axial gradiometers T -> **fT** (x 1e15); planar gradiometers
  T/m -> **fT/mm** (x 1e12); EEG, EOG, ECG and EMG V -> **uV** (x 1e6); other channels unchanged.
* SPM channel types: Neuromag/OPM/4D magnetometers ``MEGMAG``; axial gradiometers (CTF, KIT,
  4D) ``MEGGRAD``; planar gradiometers ``MEGPLANAR``; reference magnetometers/gradiometers
  ``REFMAG``/``REFGRAD``; ``EEG``, ``EOG``, ``ECG``, ``EMG``; everything else ``Other``.
* Sensors (``D.sensors.meg``, a FieldTrip ``grad``) in the MEG **head** frame in **mm**: every
  integration point of MNE's coil definitions (accuracy ``'normal'``, the one MNE's forward
  models use) is one coil, with its position, orientation and weight; ``tra`` maps coil
  fluxes (T) to channel outputs in T (``chanunit 'T'``) or T/mm (planar, ``'T/mm'``), so the
  gradiometer baselines are in ``tra``. When the data carry CTF software compensation
  (grade 1/2/3), ``tra`` includes it (``tra = C @ tra_uncompensated`` with MNE's compensator
  ``C``, reference channels' coils included) and ``balance.current`` names it.
* Fiducials (nas/lpa/rpa from ``info['dig']``) and head-shape points in the head frame in mm.
* CTF channel-name suffixes (``MLC11-2908`` -> ``MLC11``) are removed as laMEG does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import logger
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from .spm_meeg import MEEG, write_meeg

__all__ = ["mne_to_spm", "ctf_fif_spm_conversion", "info_to_grad"]

# MNE coil-type numbers (FIFF) by family
_CTF_COILS = {5001, 5002, 5003, 5004}
_NEUROMAG_COILS = {2, 3012, 3013, 3014, 3015, 3022, 3023, 3024, 3025}
_BTI_COILS = {4001, 4002, 4003, 4004, 4005}
_KIT_COILS = {6001, 6002}
_AXIAL_GRAD_CLASSES = {2, 4}  # FWD_COILC_AXIAL_GRAD, FWD_COILC_AXIAL_GRAD2
_PLANAR_CLASS = 3
_UNIT_T, _UNIT_T_M, _UNIT_V = 112, 201, 107
_FIFFV_MEG_CH, _FIFFV_REF_MEG_CH = 1, 301
_FIFFV_POINT_CARDINAL = 1
_FIFFV_COORD_DEVICE, _FIFFV_COORD_HEAD = 1, 4
_BALANCE_NAMES = {1: "G1BR", 2: "G2BR", 3: "G3BR"}
_CTF_SUFFIX = re.compile(r"-\d{4}$")


def _require_mne():
    try:
        import mne
    except ImportError as err:  # pragma: no cover - mne is an optional dependency
        raise ImportError(
            "MNE-Python is needed for this function: pip install 'lameg[mne]'"
        ) from err
    return mne


# ---------------------------------------------------------------------------------------------
# Sensors
# ---------------------------------------------------------------------------------------------


def _system_type(coil_types: set[int], n_meg: int) -> str:
    if coil_types & _CTF_COILS:
        return "ctf275" if n_meg > 200 else "ctf151" if n_meg > 100 else "ctf"
    if coil_types & _NEUROMAG_COILS:
        return "neuromag306" if n_meg > 200 else "neuromag122" if n_meg > 100 else "neuromag"
    if coil_types & _BTI_COILS:
        return f"bti{n_meg}" if n_meg in (148, 248) else "bti"
    if coil_types & _KIT_COILS:
        return "yokogawa"
    return "unknown"


def _strip_ctf(labels: list[str], coil_types: Sequence[int]) -> list[str]:
    out = [(_CTF_SUFFIX.sub("", lab) if (ct & 0xFFFF) in _CTF_COILS else lab)
           for lab, ct in zip(labels, coil_types)]
    if len(set(out)) != len(out):
        return list(labels)
    return out


def _mm(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) * 1e3


def info_to_grad(info, accuracy: str = "normal", labels: Sequence[str] | None = None
                 ) -> tuple[dict, np.ndarray]:
    """FieldTrip ``grad`` (head frame, mm) of the MEG and reference channels of an MNE Info.

    Parameters
    ----------
    info : mne.Info
        Measurement info with channel locations (device frame) and ``dev_head_t``.
    accuracy : {'point', 'normal', 'accurate'}
        MNE coil-definition accuracy (``'normal'`` is what MNE's forward models use).
    labels : sequence of str, optional
        Channel labels to store, one per channel of ``info`` (default: ``info['ch_names']``).

    Returns
    -------
    grad : dict
        ``coilpos``, ``coilori`` (n_coils, 3), ``tra`` (n_channels, n_coils), ``label``,
        ``chanpos``, ``chanori``, ``chantype``, ``chanunit``, ``unit = 'mm'``, ``type``,
        ``balance``.
    picks : numpy.ndarray of int
        Indices (into ``info['chs']``) of the channels in ``grad``, its row order.
    """
    from mne.forward._make_forward import _create_meg_coils

    mne = _require_mne()
    chs = info["chs"]
    labels = list(labels) if labels is not None else list(info["ch_names"])
    picks = np.array([i for i, c in enumerate(chs)
                      if c["kind"] in (_FIFFV_MEG_CH, _FIFFV_REF_MEG_CH)], dtype=int)
    if picks.size == 0:
        raise LamegValueError("the data have no MEG channels; no MEG sensor geometry to convert")
    locs = np.array([chs[i]["loc"][:12] for i in picks])
    if not np.all(np.isfinite(locs)) or np.any(np.all(locs[:, 9:12] == 0, axis=1)):
        raise LamegValueError(
            "some MEG channels have no location/orientation in info['chs'][i]['loc']; "
            "the sensor geometry is needed (read the original recording or pass res4_file)"
        )
    dev_head_t = info.get("dev_head_t")
    if dev_head_t is None:
        logger.warning("info['dev_head_t'] is missing; sensors are left in the device frame")
        trans = None
    else:
        trans = dev_head_t
        if dev_head_t["from"] != _FIFFV_COORD_DEVICE:
            trans = mne.transforms.invert_transform(dev_head_t)
    try:
        coils = _create_meg_coils([chs[i] for i in picks], accuracy, t=trans)
    except RuntimeError as err:
        raise LamegValueError(f"MNE has no coil definition for a channel: {err}") from err
    n_points = [c["rmag"].shape[0] for c in coils]
    start = np.concatenate([[0], np.cumsum(n_points)])
    n_coil = int(start[-1])
    coilpos = _mm(np.concatenate([c["rmag"] for c in coils]))
    coilori = np.concatenate([c["cosmag"] for c in coils]).astype(np.float64)
    norm = np.linalg.norm(coilori, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    coilori = coilori / norm
    weights = np.concatenate([np.asarray(c["w"], np.float64) for c in coils]) * norm[:, 0]
    per_m = np.array([chs[i]["unit"] == _UNIT_T_M or c["coil_class"] == _PLANAR_CLASS
                      for i, c in zip(picks, coils)])
    rows = np.repeat(np.arange(len(picks)), n_points)
    tra = np.zeros((len(picks), n_coil))
    # T/m channels become T/mm in a mm-based grad (FieldTrip's ft_datatype_sens convention)
    tra[rows, np.arange(n_coil)] = weights * np.where(per_m[rows], 1e-3, 1.0)

    grade = int(chs[picks[0]]["coil_type"] >> 16) if picks.size else 0
    grades = {int(chs[i]["coil_type"] >> 16) for i in picks if chs[i]["kind"] == _FIFFV_MEG_CH}
    if len(grades) > 1:
        raise LamegValueError(f"MEG channels have mixed CTF compensation grades {sorted(grades)}")
    grade = grades.pop() if grades else 0
    balance: dict[str, Any] = {"current": "none"}
    if grade:
        from mne._fiff.compensator import make_compensator

        try:
            comp = make_compensator(info, 0, grade)
        except Exception as err:
            raise LamegValueError(
                f"the data use CTF compensation grade {grade} but info['comps'] cannot build "
                f"it ({err}); keep the reference channels and compensation data"
            ) from err
        C = comp[np.ix_(picks, picks)]
        outside = np.delete(comp[picks], picks, axis=1)
        if np.any(outside != 0):
            raise LamegValueError("the compensation uses channels that are not MEG references")
        tra = C @ tra
        name = _BALANCE_NAMES.get(grade, f"G{grade}BR")
        lab = [labels[i] for i in picks]
        balance = {"current": name, name: {"tra": C, "labelold": lab, "labelnew": lab}}

    types, units = [], []
    for i, c in zip(picks, coils):
        ref = chs[i]["kind"] == _FIFFV_REF_MEG_CH
        if c["coil_class"] == _PLANAR_CLASS:
            t = "megplanar"
        elif c["coil_class"] in _AXIAL_GRAD_CLASSES:
            t = "refgrad" if ref else "meggrad"
        else:
            t = "refmag" if ref else "megmag"
        types.append(t)
        units.append("T/mm" if per_m[list(picks).index(i)] else "T")
    if trans is not None:
        T = trans["trans"]
        chanpos = _mm(locs[:, :3] @ T[:3, :3].T + T[:3, 3])
        chanori = locs[:, 9:12] @ T[:3, :3].T
    else:
        chanpos, chanori = _mm(locs[:, :3]), locs[:, 9:12].copy()
    n_meg = int(sum(chs[i]["kind"] == _FIFFV_MEG_CH for i in picks))
    grad = {
        "balance": balance,
        "chanori": chanori,
        "chanpos": chanpos,
        "chantype": types,
        "chanunit": units,
        "coilori": coilori,
        "coilpos": coilpos,
        "label": [labels[i] for i in picks],
        "tra": tra,
        "type": _system_type({int(chs[i]["coil_type"]) & 0xFFFF for i in picks}, n_meg),
        "unit": "mm",
    }
    return grad, picks


def _eeg_elec(info, labels: list[str]) -> dict | None:
    chs = info["chs"]
    idx = [i for i, c in enumerate(chs) if c["kind"] == 2]  # FIFFV_EEG_CH
    if not idx:
        return None
    pos = np.array([chs[i]["loc"][:3] for i in idx], dtype=np.float64)
    if not np.all(np.isfinite(pos)) or np.allclose(pos, 0):
        return None
    if any(chs[i]["coord_frame"] not in (_FIFFV_COORD_HEAD, 0) for i in idx):
        logger.warning("EEG electrode positions are not in the head frame; not stored")
        return None
    return {"chanpos": _mm(pos), "elecpos": _mm(pos), "label": [labels[i] for i in idx],
            "chantype": ["eeg"] * len(idx), "chanunit": ["V"] * len(idx), "unit": "mm",
            "type": "eeg"}


def _fiducials(info) -> dict | None:
    dig = info.get("dig") or []
    head = None
    if info.get("dev_head_t") is not None:
        head = info["dev_head_t"]["trans"]
    fid: dict[str, np.ndarray] = {}
    shape = []
    for d in dig:
        r = np.asarray(d["r"], dtype=np.float64)
        frame = int(d.get("coord_frame", _FIFFV_COORD_HEAD))
        if frame == _FIFFV_COORD_DEVICE and head is not None:
            r = head[:3, :3] @ r + head[:3, 3]
        elif frame != _FIFFV_COORD_HEAD:
            continue
        if int(d["kind"]) == _FIFFV_POINT_CARDINAL:
            name = {1: "lpa", 2: "nas", 3: "rpa"}.get(int(d["ident"]))
            if name:
                fid[name] = r
        else:
            shape.append(r)
    if not all(k in fid for k in ("nas", "lpa", "rpa")):
        if dig:
            logger.warning("info['dig'] has no nas/lpa/rpa in the head frame; no fiducials stored")
        return None
    return {
        "fid": {"pnt": _mm(np.array([fid["nas"], fid["lpa"], fid["rpa"]])),
                "label": ["nas", "lpa", "rpa"]},
        "pnt": _mm(np.array(shape).reshape(-1, 3)),
        "unit": "mm",
    }


# ---------------------------------------------------------------------------------------------
# Channels and data
# ---------------------------------------------------------------------------------------------


def _channel_table(info, grad_types: dict[int, str]) -> tuple[list[str], list[str], np.ndarray]:
    """SPM channel types, units and data scale factors for every channel of ``info``."""
    mne = _require_mne()
    types, units, scale = [], [], []
    for i, ch in enumerate(info["chs"]):
        kind = mne.channel_type(info, i)
        if i in grad_types:
            ft = grad_types[i]
            spm_type = {"megplanar": "MEGPLANAR", "meggrad": "MEGGRAD", "megmag": "MEGMAG",
                        "refmag": "REFMAG", "refgrad": "REFGRAD"}[ft]
            if ch["unit"] == _UNIT_T_M or ft == "megplanar":
                types.append(spm_type), units.append("fT/mm"), scale.append(1e12)
            else:
                types.append(spm_type), units.append("fT"), scale.append(1e15)
        elif kind in ("eeg", "eog", "ecg", "emg"):
            types.append(kind.upper()), units.append("uV"), scale.append(1e6)
        else:
            unit = {_UNIT_V: "V", _UNIT_T: "T", _UNIT_T_M: "T/m"}.get(int(ch["unit"]), "unknown")
            types.append("Other"), units.append(unit), scale.append(1.0)
    return types, units, np.asarray(scale)


def _read_fif(path: Path):
    mne = _require_mne()
    if not path.exists():
        raise LamegFileNotFoundError(f"MNE file not found: {path}")
    name = path.name.lower()
    readers = []
    if re.search(r"[-_]epo\.fif(\.gz)?$", name):
        readers = ["epochs"]
    elif re.search(r"[-_]ave\.fif(\.gz)?$", name):
        readers = ["evoked"]
    elif re.search(r"\.fif(\.gz)?$", name):
        readers = ["epochs", "raw", "evoked"]
    else:
        raise LamegFormatError(f"{path} is not a .fif file; read it with MNE and pass the object")
    errors = []
    for kind in readers:
        try:
            if kind == "epochs":
                return mne.read_epochs(path, preload=True, verbose="error")
            if kind == "raw":
                return mne.io.read_raw_fif(path, preload=True, verbose="error")
            ev = mne.read_evokeds(path, verbose="error")
            return ev[0] if len(ev) == 1 else ev
        except Exception as err:  # try the next kind of fif content
            errors.append(f"{kind}: {err}")
    raise LamegFormatError(f"cannot read {path} with MNE ({'; '.join(errors)})")


def _gather(inst):
    """-> info, data (n_ch, n_samp, n_trials) in SI units, sfreq, tmin, conditions, type,
    onsets, repl, events."""
    mne = _require_mne()
    if isinstance(inst, (list, tuple)) and inst and all(isinstance(e, mne.Evoked) for e in inst):
        first = inst[0]
        for e in inst[1:]:
            if e.ch_names != first.ch_names or not np.allclose(e.times, first.times):
                raise LamegValueError("all Evoked objects must share channels and times")
        data = np.stack([e.data for e in inst], axis=2)
        conds = [e.comment or f"condition{k + 1}" for k, e in enumerate(inst)]
        return (first.info, data, first.info["sfreq"], float(first.times[0]), conds, "evoked",
                None, [float(e.nave) for e in inst], None)
    if isinstance(inst, mne.Evoked):
        return (inst.info, inst.data[:, :, None], inst.info["sfreq"], float(inst.times[0]),
                [inst.comment or "Undefined"], "evoked", None, [float(inst.nave)], None)
    if isinstance(inst, mne.BaseEpochs):
        if not inst.preload:
            inst = inst.copy().load_data()
        data = np.transpose(inst.get_data(), (1, 2, 0))
        inv = {}
        for name, code in inst.event_id.items():
            inv.setdefault(int(code), name)
        codes = inst.events[:, 2]
        conds = [inv.get(int(c), str(int(c))) for c in codes]
        sf = inst.info["sfreq"]
        onsets = inst.events[:, 0] / sf + inst.tmin
        return (inst.info, data, sf, float(inst.times[0]), conds, "single", onsets, None, None)
    if isinstance(inst, mne.io.BaseRaw):
        sf = inst.info["sfreq"]
        data = inst.get_data()[:, :, None]
        events = None
        ann = inst.annotations
        if len(ann):
            t0 = inst.first_time if ann.orig_time is not None else 0.0
            events = [[{"type": str(d), "value": None, "time": float(o - t0),
                        "duration": float(du), "offset": 0.0}
                       for o, du, d in zip(ann.onset, ann.duration, ann.description)]]
        return (inst.info, data, sf, float(inst.times[0]), ["Undefined"], "continuous",
                [inst.first_samp / sf], None, events)
    raise LamegValueError(
        f"expected mne.Epochs, mne.Evoked (or a list of them), mne.io.Raw or a .fif file; got "
        f"{type(inst).__name__}"
    )


def mne_to_spm(inst_or_fif, output_fname: str | os.PathLike, *, version: str = "7",
               accuracy: str = "normal", strip_ctf_suffix: bool = True) -> MEEG:
    """Convert MNE-Python data to an SPM M/EEG dataset.

    Parameters
    ----------
    inst_or_fif : mne.Epochs, mne.Evoked, list of mne.Evoked, mne.io.Raw, or path
        The data (a ``.fif`` path is read with MNE: ``*-epo.fif`` as epochs, ``*-ave.fif`` as
        evoked, other ``.fif`` files as epochs, raw or evoked, whichever reads).
    output_fname : str or path-like
        Header file of the new dataset (``.mat``; the ``.dat`` goes beside it).
    version : {'7', '7.3'}
        MAT-file version of the header.
    accuracy : {'normal', 'accurate', 'point'}
        MNE coil-definition accuracy used for the coils in ``D.sensors.meg``.
    strip_ctf_suffix : bool
        Remove CTF ``-xxxx`` suffixes from channel names (as laMEG's conversion does).

    Returns
    -------
    MEEG
        The written dataset: Epochs -> ``'single'`` (conditions from ``event_id``), Evoked ->
        ``'evoked'``, Raw -> ``'continuous'``; ``timeOnset`` = first time of the MNE object.
        See the module docstring for units, channel types and sensor conventions.
    """
    mne = _require_mne()
    inst = _read_fif(Path(inst_or_fif)) if isinstance(inst_or_fif, (str, os.PathLike)) \
        else inst_or_fif
    info, data, sfreq, tmin, conds, dtype, onsets, repl, events = _gather(inst)
    labels = list(info["ch_names"])
    if strip_ctf_suffix:
        labels = _strip_ctf(labels, [int(c["coil_type"]) for c in info["chs"]])
    has_meg = any(c["kind"] in (_FIFFV_MEG_CH, _FIFFV_REF_MEG_CH) for c in info["chs"])
    sensors: dict[str, Any] = {}
    grad_types: dict[int, str] = {}
    if has_meg:
        grad, picks = info_to_grad(info, accuracy=accuracy, labels=labels)
        sensors["meg"] = grad
        grad_types = {int(i): t for i, t in zip(picks, grad["chantype"])}
    elec = _eeg_elec(info, labels)
    if elec is not None:
        sensors["eeg"] = elec
    types, units, scale = _channel_table(info, grad_types)
    active = [p for p in info.get("projs", []) if p.get("active")]
    if active:
        logger.warning("%d SSP projector(s) are applied to the data but are not part of the "
                       "sensor definition", len(active))
    data = data * scale[:, None, None]
    bads = [labels[info["ch_names"].index(b)] for b in info["bads"] if b in info["ch_names"]]
    bad_idx = [labels.index(b) for b in bads]
    trial_events = None
    if events is not None:
        from .matfile import StructArray

        trial_events = [StructArray(ev, (1, len(ev))) for ev in events]
    meeg = write_meeg(
        output_fname, data, fsample=float(sfreq), time_onset=tmin, chanlabels=labels,
        chantypes=types, chanunits=units, sensors=sensors or None,
        fiducials=_fiducials(info), conditions=conds, badchannels=bad_idx, version=version,
        dataset_type=dtype, trial_onsets=onsets, trial_events=trial_events, trial_repl=repl,
    )
    del mne
    return meeg


def _ctf_ds_path(res4_file) -> Path:
    p = Path(res4_file)
    if p.is_dir() and p.suffix.lower() == ".ds":
        return p
    if p.suffix.lower() == ".res4" and p.parent.suffix.lower() == ".ds":
        return p.parent
    if not p.exists():
        raise LamegFileNotFoundError(f"res4 file not found: {p}")
    raise LamegValueError(
        f"{p} is not a CTF .ds folder nor a .res4 file inside one; a stand-alone .res4 cannot be "
        "read. Pass the .ds folder, or res4_file=None when the .fif already holds the sensor "
        "geometry"
    )


@fill_doc
def ctf_fif_spm_conversion(mne_file, res4_file, output_path, epoched, prefix: str = "spm_",
                           spm_instance=None) -> MEEG:
    """Convert a CTF recording preprocessed in MNE (``.fif``) to an SPM dataset (laMEG API).

    Parameters
    ----------
    %(ctf_fif_conversion)s

    Returns
    -------
    MEEG
        ``<output_path>/<prefix><fif basename>.mat`` (+ ``.dat``).
    """
    mne = _require_mne()
    path = Path(mne_file)
    if not path.exists():
        raise LamegFileNotFoundError(f"MNE file not found: {path}")
    try:
        if epoched:
            inst = mne.read_epochs(path, preload=True, verbose="error")
        else:
            inst = mne.io.read_raw_fif(path, preload=True, verbose="error")
    except Exception as err:
        kind = "epochs" if epoched else "raw data"
        raise LamegFormatError(f"cannot read {path} as MNE {kind}: {err}") from err
    if res4_file:
        ds = _ctf_ds_path(res4_file)
        try:
            ctf = mne.io.read_raw_ctf(ds, preload=False, verbose="error")
        except Exception as err:
            raise LamegFormatError(f"cannot read the CTF dataset {ds}: {err}") from err
        _apply_ctf_geometry(inst.info, ctf.info)
    base = path.name
    for ext in (".gz", ".fif"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    out = Path(output_path) / f"{prefix}{base}.mat"
    return mne_to_spm(inst, out)


def _apply_ctf_geometry(info, ctf_info) -> None:
    """Copy sensor locations, head position, dig and compensation data from a CTF recording."""
    def key(name):
        return _CTF_SUFFIX.sub("", name)

    lut = {key(c["ch_name"]): c for c in ctf_info["chs"]}
    n = 0
    with info._unlock():
        for ch in info["chs"]:
            src = lut.get(key(ch["ch_name"]))
            if src is None or ch["kind"] not in (_FIFFV_MEG_CH, _FIFFV_REF_MEG_CH):
                continue
            grade = int(ch["coil_type"]) >> 16
            ch["loc"] = np.array(src["loc"], dtype=np.float64)
            ch["coil_type"] = (int(src["coil_type"]) & 0xFFFF) | (grade << 16)
            ch["coord_frame"] = src["coord_frame"]
            n += 1
        if n == 0:
            raise LamegValueError("no MEG channel of the .fif matches the CTF recording")
        info["dev_head_t"] = ctf_info["dev_head_t"]
        if ctf_info.get("dig"):
            info["dig"] = ctf_info["dig"]
        if not info.get("comps") and ctf_info.get("comps"):
            info["comps"] = ctf_info["comps"]
    logger.info("took the geometry of %d MEG channels from the CTF recording", n)
