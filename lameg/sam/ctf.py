"""CTF ``.ds`` datasets read the way the SAMsrcV5 programs read them.

SAMsrcV5 reads a CTF dataset itself (``GetDsInfo``/``GetDsData``/``GetMarkers``); this module
reproduces what those readers select and compute, so that covariances and lead fields agree with
the real programs:

* **channels** -- primary sensors are the ``res4`` channels of sensor type 4..7 (MEG sensors),
  references types 0..3; a line of ``BadChannels`` removes the first channel whose name starts
  with that line. Primary and reference order is the ``res4`` order.
* **data** -- ``<set>.meg4`` (and ``<set>.N_meg4`` spill files), big-endian int32 per trial and
  channel, times ``1 / (qGain * ioGain * properGain)`` (tesla).
* **epochs** -- trials listed in the ``BAD`` class of ``ClassFile.cls`` are flagged bad (marker
  segments in them are skipped; the whole-trial covariances keep them, as SAMsrcV5 does).
* **markers** -- ``MarkerFile.mrk``: (trial, latency in s from the trial's trigger, name), in the
  order ``1000 * trial + latency``.
* **geometry** -- coils in the head frame (``res4`` head-coil table, cm -> m), orientations times
  the sign of ``properGain``, coil radius ``sqrt(area / pi)`` and turns from the device table;
  the synthetic-gradient balancing of each primary for its recorded grade (``grad_order_no``):
  weight ``coef * properGain(ref) / properGain(primary)``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exceptions import LamegDataError, LamegFileNotFoundError, LamegFormatError
from ._docs import fill_doc

__all__ = ["CtfDataset", "read_ctf", "read_marker_file", "write_marker_file", "ctf_set_name"]

_REF_TYPES = (0, 1, 2, 3)
_MEG_TYPES = (4, 5, 6, 7)
# grad_order_no -> coefficient-record type (ASCII tags of CoeffTypes.h)
_GRADE_TAG = {0: 0, 1: 0x47314252, 2: 0x47324252, 3: 0x47334252, 10: 0x47304152,
              11: 0x47314152, 12: 0x47324152, 13: 0x47334152}


@dataclass
class Coil:
    """One sensing coil: position (m, head frame), unit normal, radius (m), turns."""

    pos: np.ndarray
    ori: np.ndarray
    radius: float
    turns: int


@dataclass
class CtfDataset:
    """A CTF dataset as SAMsrcV5 sees it (see the module docstring).

    Parameters
    ----------
    path : Path
        The ``.ds`` folder.
    set_name : str
        Dataset name without ``.ds``.
    fs : float
        Sampling rate, Hz.
    n_samples, n_epochs, pre_trig : int
        Samples per trial, trials, pre-trigger samples.
    analog_hp, analog_lp : float
        Recorded band (Hz): first Butterworth high/low-pass of the ``res4`` filters, else 0 and
        ``fs / 4``.
    chan_names : list of str
        All channels.
    primary, reference : ndarray of int
        Indices of the good primary sensors and references.
    scale : ndarray, shape (n_channels,)
        Integer-to-tesla factors.
    coils : list of list of Coil
        Coils of every MEG/reference channel (empty for others).
    balance : ndarray, shape (n_primary, n_reference)
        Synthetic-gradient weights (field of a primary = own field - balance @ reference fields).
    epoch_ok : ndarray of bool, shape (n_epochs,)
    markers : list of (int, float, str)
        (trial, latency s, name), sorted as SAMsrcV5 sorts them.
    _res4 : dict
        The raw ``res4`` fields.
    """

    path: Path
    set_name: str
    fs: float
    n_samples: int
    n_epochs: int
    pre_trig: int
    analog_hp: float
    analog_lp: float
    chan_names: list[str]
    primary: np.ndarray
    reference: np.ndarray
    scale: np.ndarray
    coils: list[list[Coil]]
    balance: np.ndarray
    epoch_ok: np.ndarray
    markers: list[tuple[int, float, str]] = field(default_factory=list)
    _res4: dict = field(default_factory=dict, repr=False)

    @property
    def primary_names(self) -> list[str]:
        """Names of the good primary sensors."""
        return [self.chan_names[i] for i in self.primary]

    def read_primary(self) -> np.ndarray:
        """Primary-sensor data in tesla.

        Returns
        -------
        ndarray, shape (n_epochs, n_primary, n_samples)
        """
        return self.read_channels(self.primary)

    def read_channels(self, idx) -> np.ndarray:
        """Data of some channels in tesla.

        Parameters
        ----------
        idx : array-like of int
            Channel indices (``res4`` order).

        Returns
        -------
        ndarray, shape (n_epochs, len(idx), n_samples)
        """
        idx = np.asarray(idx, int)
        nch, T, E = len(self.chan_names), self.n_samples, self.n_epochs
        files = _meg4_files(self.path, self.set_name)
        per_file = [(os.path.getsize(f) - 8) // (4 * nch * T) for f in files]
        if sum(per_file) < E:
            raise LamegFormatError(f"{self.path}: the .meg4 data hold {sum(per_file)} of {E} "
                                   "trials; the dataset is truncated")
        out = np.empty((E, idx.size, T))
        e0 = 0
        for f, n in zip(files, per_file):
            n = min(n, E - e0)
            if n <= 0:
                break
            raw = np.memmap(f, dtype=">i4", mode="r", offset=8, shape=(n, nch, T))
            out[e0:e0 + n] = raw[:, idx, :] * self.scale[idx][None, :, None]
            e0 += n
        return out


def ctf_set_name(path: str | os.PathLike) -> str:
    """Dataset name of a ``.ds`` folder (``.ds`` removed).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
    """
    name = Path(path).name
    return name[:-3] if name.endswith(".ds") else name


def _meg4_files(path: Path, set_name: str) -> list[Path]:
    files = [path / f"{set_name}.meg4"]
    k = 1
    while (path / f"{set_name}.{k}_meg4").is_file():
        files.append(path / f"{set_name}.{k}_meg4")
        k += 1
    if not files[0].is_file():
        raise LamegFileNotFoundError(f"{files[0]} not found; is {path} a complete CTF dataset?")
    with open(files[0], "rb") as fh:
        magic = fh.read(8)
    if not magic.startswith(b"MEG4"):
        raise LamegFormatError(f"{files[0]} is not a CTF .meg4 file (header {magic!r})")
    return files


@fill_doc
def read_ctf(path: str | os.PathLike) -> CtfDataset:
    """Read a CTF ``.ds`` dataset's header, geometry, bad trials/channels and markers.

    Parameters
    ----------
    %(sam_ds_path)s

    Returns
    -------
    CtfDataset

    Raises
    ------
    LamegFileNotFoundError
        No such dataset or no ``.res4``.
    LamegFormatError
        A ``res4``/``meg4``/``MarkerFile.mrk`` that cannot be read.
    """
    path = Path(os.path.expanduser(str(path)))
    if not path.is_dir():
        raise LamegFileNotFoundError(f"CTF dataset {path} not found (expected a .ds folder)")
    set_name = ctf_set_name(path)
    if not (path / f"{set_name}.res4").is_file():
        raise LamegFileNotFoundError(f"{path}: no {set_name}.res4; not a CTF dataset")
    import mne
    from mne.io.ctf.res4 import _read_res4

    try:
        with mne.utils.use_log_level("error"):
            res = _read_res4(str(path))
    except Exception as e:  # malformed res4
        raise LamegFormatError(f"{path}: cannot read {set_name}.res4 ({e})") from None
    chs = res["chs"]
    names = list(res["ch_names"])
    fs = float(res["sfreq"])
    hp, lp = 0.0, fs / 4.0
    lows = [f for f in res["filters"] if int(f["class"]) == 1 and int(f["type"]) == 1]
    highs = [f for f in res["filters"] if int(f["class"]) == 1 and int(f["type"]) == 2]
    if lows:
        lp = float(lows[0]["freq"])
    if highs:
        hp = float(highs[0]["freq"])
    types = np.array([int(c["sensor_type_index"]) for c in chs])
    gain = np.array([float(c["proper_gain"]) for c in chs])
    scale = np.zeros(len(chs))
    for k, c in enumerate(chs):
        g = float(c["qgain"]) * float(c["io_gain"]) * float(c["proper_gain"])
        scale[k] = 1.0 / g if g != 0 else 0.0
    coils: list[list[Coil]] = []
    for k, c in enumerate(chs):
        if types[k] not in _REF_TYPES + _MEG_TYPES:
            coils.append([])
            continue
        pol = np.sign(gain[k]) if gain[k] != 0 else 1.0
        lst = []
        for j in range(int(c["num_coils"])):
            dev, head = c["coil"][j], c["head_coil"][j]
            lst.append(Coil(np.array(head["pos"], float), pol * np.array(head["norm"], float),
                            float(np.sqrt(float(dev["area"]) / np.pi)), int(dev["turns"])))
        coils.append(lst)
    good = np.ones(len(chs), bool)
    bad_file = path / "BadChannels"
    if bad_file.is_file():
        for line in bad_file.read_text(errors="replace").splitlines():
            if not line:
                continue
            for k, n in enumerate(names):
                if n.startswith(line):
                    good[k] = False
                    break
    primary = np.array([k for k in range(len(chs)) if types[k] in _MEG_TYPES and good[k]], int)
    reference = np.array([k for k in range(len(chs)) if types[k] in _REF_TYPES and good[k]], int)
    balance = np.zeros((primary.size, reference.size))
    ref_pos = {int(r): i for i, r in enumerate(reference)}
    prim_pos = {int(p): i for i, p in enumerate(primary)}
    for comp in res.get("comp", []):
        m = next((k for k, n in enumerate(names) if n.startswith(comp["sensor_name"])), None)
        if m is None or m not in prim_pos:
            continue
        grade = int(chs[m]["grad_order_no"])
        if grade not in _GRADE_TAG or int(comp["coeff_type"]) != _GRADE_TAG[grade]:
            continue
        for sname, coef in zip(comp["sensors"], comp["coeffs"]):
            n = next((k for k, nm in enumerate(names) if nm.startswith(sname)), None)
            if n is None:
                break
            if n in ref_pos:
                balance[prim_pos[m], ref_pos[n]] += float(coef) * gain[n] / gain[m]
    epoch_ok = np.ones(int(res["no_trials"]), bool)
    for e in _bad_trials(path / "ClassFile.cls"):
        if 0 <= e < epoch_ok.size:
            epoch_ok[e] = False
    mrk = path / "MarkerFile.mrk"
    markers = read_marker_file(mrk) if mrk.is_file() else []
    return CtfDataset(path, set_name, fs, int(res["nsamp"]), int(res["no_trials"]),
                      int(res["pre_trig_pts"]), hp, lp, names, primary, reference, scale, coils,
                      balance, epoch_ok, markers, res)


def _bad_trials(cls_file: Path) -> list[int]:
    if not cls_file.is_file():
        return []
    lines = cls_file.read_text(errors="replace").splitlines()
    out: list[int] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("NAME:") and i + 1 < len(lines) and lines[i + 1].startswith("BAD"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("TRIAL NUMBER"):
                j += 1
            j += 1
            while j < len(lines) and re.match(r"^\s*[+-]?\d+\s*$", lines[j]):
                out.append(int(lines[j]))
                j += 1
            i = j
        i += 1
    return out


def read_marker_file(path: str | os.PathLike) -> list[tuple[int, float, str]]:
    """Markers of a CTF ``MarkerFile.mrk`` in SAMsrcV5's order (``1000 * trial + latency``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of (int, float, str)
        (trial, latency s, name).

    Raises
    ------
    LamegFormatError
        When the file has no ``NUMBER OF MARKERS`` section or a class is incomplete.
    """
    path = Path(path)
    text = path.read_text(errors="replace")
    if "NUMBER OF MARKERS:" not in text:
        raise LamegFormatError(f"{path}: not a CTF marker file (no 'NUMBER OF MARKERS:')")
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("NAME:"):
            name = lines[i + 1].split()[0] if i + 1 < len(lines) and lines[i + 1].split() else ""
            j = i + 1
            while j < len(lines) and not lines[j].startswith("NUMBER OF SAMPLES:"):
                j += 1
            if j + 1 >= len(lines):
                raise LamegFormatError(f"{path}: marker class {name!r} has no sample count")
            n = int(lines[j + 1].split()[0])
            while j < len(lines) and not lines[j].startswith("TRIAL NUMBER"):
                j += 1
            vals = " ".join(lines[j + 1:]).split()[: 2 * n]
            if len(vals) < 2 * n:
                raise LamegFormatError(f"{path}: marker class {name!r} lists fewer than {n} samples")
            for k in range(n):
                out.append((int(float(vals[2 * k])), float(vals[2 * k + 1]), name))
            i = j
        i += 1
    # SAMsrcV5 bubble-sorts on 1000 * trial + latency (stable)
    return sorted(out, key=lambda m: 1000.0 * m[0] + m[1])


def write_marker_file(path: str | os.PathLike, markers: dict[str, list[tuple[int, float]]]
                      ) -> Path:
    """Write a CTF ``MarkerFile.mrk`` with one marker class per name.

    Parameters
    ----------
    path : path-like
        The file (``<dataset>.ds/MarkerFile.mrk``).
    markers : dict of str -> list of (int, float)
        ``{name: [(trial (0-based), latency s from the trial's time zero), ...]}``.

    Returns
    -------
    Path
    """
    path = Path(path)
    parts = [f"PATH OF DATASET:\n{path.parent.name}\n\n\nNUMBER OF MARKERS:\n{len(markers)}\n\n\n"]
    for cid, (name, samples) in enumerate(markers.items(), 1):
        rows = "".join(f"                  {int(t):+d}\t\t\t\t     {float(lat):+.10e}\n"
                       for t, lat in samples)
        parts.append(f"CLASSGROUPID:\n3\nNAME:\n{name}\nCOMMENT:\n\nCOLOR:\nred\nEDITABLE:\nYes\n"
                     f"CLASSID:\n{cid}\nNUMBER OF SAMPLES:\n{len(samples)}\nLIST OF SAMPLES:\n"
                     f"TRIAL NUMBER\t\tTIME FROM SYNC POINT (in seconds)\n{rows}\n\n")
    path.write_text("".join(parts))
    return path


def check_no_data(ds: CtfDataset) -> None:
    """Raise when the dataset has no primary sensors or samples (SAMsrcV5: 'no valid data')."""
    if ds.primary.size == 0 or ds.n_epochs == 0 or ds.n_samples == 0:
        raise LamegDataError(f"{ds.path}: no valid data (no good MEG sensors or no samples)")


def write_ctf_dataset(template: str | os.PathLike, out: str | os.PathLike, data: np.ndarray,
                      markers: dict[str, list[tuple[int, float]]] | None = None) -> Path:
    """Write a CTF dataset with the header and geometry of ``template`` and new data.

    Used to build simulated datasets (known sources) that the SAMsrcV5 programs and lameg both
    read. The ``res4`` is copied with its trial count (and epoch time) changed; the data are
    quantised to the template's integer steps.

    Parameters
    ----------
    template : path-like
        A CTF ``.ds`` folder.
    out : path-like
        The new ``.ds`` folder (must not exist).
    data : ndarray, shape (n_trials, n_channels, n_samples)
        Data of every channel of the template, tesla (other channel types in their stored units
        times their scale); ``n_samples`` must equal the template's samples per trial.
    markers : dict, optional
        ``{name: [(trial, latency s), ...]}`` written to ``MarkerFile.mrk``.

    Returns
    -------
    Path
        The new dataset folder.
    """
    import shutil
    import struct

    src = read_ctf(template)
    out = Path(out)
    if out.exists():
        raise LamegFormatError(f"{out} exists; choose a new dataset name")
    data = np.asarray(data, float)
    if data.ndim != 3 or data.shape[1:] != (len(src.chan_names), src.n_samples):
        raise LamegDataError(f"data must be (n_trials, {len(src.chan_names)}, {src.n_samples}), "
                             f"got {data.shape}")
    name = ctf_set_name(out)
    out.mkdir(parents=True)
    res4 = bytearray((src.path / f"{src.set_name}.res4").read_bytes())
    n_trials = data.shape[0]
    struct.pack_into(">h", res4, 1312, n_trials)
    struct.pack_into(">d", res4, 1304, n_trials * src.n_samples / src.fs)
    (out / f"{name}.res4").write_bytes(bytes(res4))
    for extra in ("BadChannels", "ClassFile.cls"):
        if (src.path / extra).is_file() and extra == "BadChannels":
            shutil.copy(src.path / extra, out / extra)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(src.scale != 0, 1.0 / src.scale, 0.0)
    ints = np.rint(data * inv[None, :, None])
    if np.abs(ints).max(initial=0) >= 2**31:
        raise LamegDataError("data exceed the int32 range of the template's channel gains")
    with open(out / f"{name}.meg4", "wb") as fh:
        fh.write(b"MEG41CP\x00")
        fh.write(ints.astype(">i4").tobytes())
    if markers:
        write_marker_file(out / "MarkerFile.mrk", markers)
    return out


def read_hdm_spheres(path: str | os.PathLike, ds: CtfDataset) -> np.ndarray:
    """Per-sensor sphere origins (m) of a CTF ``default.hdm`` (the multiple-local-spheres model).

    Every entry ``NAME: x y z r`` (cm) after the header gives its origin to each channel whose
    name starts with ``NAME`` minus its last character (SAMsrcV5's matching). The file must list
    as many sensors as the dataset has good primaries and references.

    Parameters
    ----------
    path : path
        The ``.hdm`` file.
    ds : CtfDataset
        The dataset whose primary and reference channels are matched.

    Returns
    -------
    ndarray, shape (n_primary + n_reference, 3)
        Origins of the primaries then the references (the rows of
        :func:`lameg.sam.ctf_forward.sphere_lead_fields`).
    """
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"{path} not found; Model MultiSphere needs the dataset's "
                                     "default.hdm (multiple local spheres)")
    toks = path.read_text(errors="replace").split()
    try:
        start = next(i for i, t in enumerate(toks) if t.startswith("Radius")) + 1
    except StopIteration:
        raise LamegFormatError(f"{path}: no multisphere table (header ending in 'Radius')"
                               ) from None
    entries = []
    i = start
    while i + 4 < len(toks) + 0 and len(entries) < 500:
        try:
            xyz = [float(t) for t in toks[i + 1:i + 5]]
        except ValueError:
            break
        entries.append((toks[i], np.array(xyz[:3]) * 0.01))
        i += 5
    n_rows = ds.primary.size + ds.reference.size
    if len(entries) != n_rows:
        raise LamegFormatError(f"{path}: number of sensors in the .hdm file ({len(entries)}) does "
                               f"not match that of the dataset ({n_rows})")
    chans = list(ds.primary) + list(ds.reference)
    origins = np.full((n_rows, 3), np.nan)
    for name, o in entries:
        pre = name[:-1]
        hit = False
        for r, ch in enumerate(chans):
            if ds.chan_names[ch].startswith(pre):
                origins[r] = o
                hit = True
        if not hit and not any(n.startswith(pre) for n in ds.chan_names):
            raise LamegFormatError(f"{path}: could not find a channel matching {name!r}")
    if np.isnan(origins).any():
        missing = [ds.chan_names[chans[r]] for r in np.flatnonzero(np.isnan(origins[:, 0]))]
        raise LamegFormatError(f"{path}: no sphere for {missing[:5]}")
    return origins


def write_hdm(path: str | os.PathLike, ds: CtfDataset, origins: np.ndarray,
              radius: float = 0.08) -> Path:
    """Write a minimal CTF ``default.hdm`` (multiple local spheres).

    Parameters
    ----------
    path : path-like
    ds : CtfDataset
        The dataset whose good primaries and references get a sphere each.
    origins : ndarray, shape (n_primary + n_reference, 3)
        Sphere origins, m (primaries then references).
    radius : float
        Sphere radius, m.

    Returns
    -------
    Path
    """
    path = Path(path)
    chans = list(ds.primary) + list(ds.reference)
    o = np.asarray(origins, float)
    mean = o.mean(0) * 100
    rows = "".join(f"\t{ds.chan_names[ch].split('-')[0]}:\t{o[r, 0] * 100:.4f}\t"
                   f"{o[r, 1] * 100:.4f}\t{o[r, 2] * 100:.4f}\t{radius * 100:.4f}\n"
                   for r, ch in enumerate(chans))
    path.write_text(
        "// CTF head model (multiple local spheres)\nFILE_INFO\n{\n\tVERSION:\t5.0\n}\n"
        "MODEL\n{\n\tMRI_FILE:\t/none/none.mri\n\tMODEL_TYPE:\tMULTI_SPHERE\n"
        f"\tORIGIN_X:\t{mean[0]:.4f}\n\tORIGIN_Y:\t{mean[1]:.4f}\n\tORIGIN_Z:\t{mean[2]:.4f}\n"
        f"\tRADIUS:\t{radius * 100:.4f}\n\tSAGITTAL:\t1.0\n\tCORONAL:\t1.0\n\tAXIAL:\t1.0\n"
        "\tNASION:\t0 0 0\n\tLEFT_EAR:\t0 0 0\n\tRIGHT_EAR:\t0 0 0\n\tSEARCH_RADIUS:\t10.0\n"
        "\tHEADSHAPE_FILE:\t/none/none.shape\n\tSURFACE_TYPE:\tINNERSKULL\n}\n"
        "MULTI_SPHERE_DATA\n{\n\t// Sensor\tX\tY\tZ\tRadius\n" + rows + "}\n")
    return path
