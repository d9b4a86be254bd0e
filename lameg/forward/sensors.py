"""MEG sensor models: coils (integration points) combined into channels by a linear map.

A :class:`SensorArray` holds coil positions (m) and normals and a matrix ``tra`` that maps the
field at the coils (T) to channel values in SI units (T for magnetometers and axial gradiometers,
T/m for planar gradiometers). Every MEG system is described this way, as in FieldTrip:

* CTF axial gradiometers: two coils per channel (pick-up and compensation coil, weights +1/-1);
  third-order synthetic gradiometers (reference compensation) add the reference coils with the
  balancing weights in ``tra`` (FieldTrip stores the balanced ``tra`` in ``grad.tra`` and the
  history in ``grad.balance``);
* Neuromag/MEGIN magnetometers (one or more points per coil) and planar gradiometers (two points,
  weights +-1/baseline in 1/m, channel unit T/m);
* OPMs: point magnetometers, one or more sensitive axes per cell (one channel per axis).

:meth:`SensorArray.from_grad` reads the FieldTrip ``grad`` structure SPM stores in ``D.sensors.meg``
(as returned by ``lameg.io.spm_meeg.MEEG.sensors('MEG')``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .._docs import fill_doc
from .._utils import hash_arrays
from ..exceptions import LamegValueError

__all__ = ["SensorArray", "unit_scale", "length_scale"]

_PREFIX = {
    "": 1.0, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6,
    "m": 1e-3, "c": 1e-2, "d": 1e-1, "k": 1e3,
}
_LENGTH = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "dm": 1e-1}


def length_scale(unit: str) -> float:
    """Metres per length unit.

    Parameters
    ----------
    unit : str
        ``'m'``, ``'dm'``, ``'cm'``, ``'mm'`` or ``'um'``.

    Returns
    -------
    float
        Length of one ``unit`` in metres (e.g. 1e-3 for ``'mm'``).
    """
    try:
        return _LENGTH[str(unit).strip()]
    except KeyError:
        raise LamegValueError(
            f"unknown length unit {unit!r}; expected one of {list(_LENGTH)}"
        ) from None


def _parse_unit(unit: str) -> tuple[float, str, float]:
    """Split a field unit like 'fT/mm' into (amplitude factor to T, base, per-length factor)."""
    u = str(unit).strip()
    if u.lower() in {"unknown", "snr", ""}:
        raise LamegValueError(f"cannot convert channel unit {unit!r} to tesla")
    num, _, den = u.partition("/")
    m = re.fullmatch(r"([fpnuµμmcdk]?)(T)", num)
    if m is None:
        raise LamegValueError(f"unsupported MEG channel unit {unit!r} (expected T, fT, T/m, fT/mm, ...)")
    amp = _PREFIX[m.group(1)]
    per = length_scale(den) if den else None
    return amp, "T/m" if den else "T", (1.0 / per if per else 1.0)


def unit_scale(from_unit: str, to_unit: str) -> float:
    """Factor converting a value in ``from_unit`` into ``to_unit`` (e.g. ``'T' -> 'fT'`` = 1e15).

    Supports magnetic fields (``T`` with SI prefixes) and gradients (``T/m``, ``fT/mm``, ...).

    Parameters
    ----------
    from_unit : str
        Unit of the values to convert (e.g. ``'T'``, ``'fT'``, ``'T/m'``, ``'fT/mm'``).
    to_unit : str
        Target unit of the same kind (field or gradient).

    Returns
    -------
    float
        Multiply a value in ``from_unit`` by this factor to express it in ``to_unit``.
    """
    a1, b1, l1 = _parse_unit(from_unit)
    a2, b2, l2 = _parse_unit(to_unit)
    if b1 != b2:
        raise LamegValueError(f"cannot convert {from_unit!r} to {to_unit!r} (field vs gradient)")
    # value_SI = value * a1 / len1 ; value_to = value_SI * len2 / a2  (len = metres per length unit)
    return (a1 * l1) / (a2 * l2)


def _as_list(x, n=None) -> list:
    if x is None:
        return [] if n is None else [""] * n
    out = [x] if isinstance(x, str) else [str(v) for v in np.asarray(x, dtype=object).ravel()]
    if n is not None and len(out) == 1:  # one value for every channel (spm_opm_sim's chantype)
        out = out * n
    return out


@dataclass
class SensorArray:
    """MEG coils and their linear combination into channels (SI units).

    Parameters
    ----------
    coilpos : ndarray, shape (n_coils, 3)
        Coil (integration point) positions, m, MEG head frame.
    coilori : ndarray, shape (n_coils, 3)
        Coil normals (unit vectors).
    tra : ndarray, shape (n_channels, n_coils)
        Map from coil fields (T) to channel values in ``chanunit`` (T or T/m).
    labels : list of str
        Channel labels (row order of ``tra``).
    chanunit : list of str
        SI unit of each channel, ``'T'`` or ``'T/m'`` (default: ``'T'`` for all).
    chantype : list of str
        Channel type strings (informative, e.g. ``'meggrad'``, ``'megplanar'``; default
        ``'meg'``).
    chanpos : ndarray, shape (n_channels, 3), optional
        Channel positions, m.
    chanori : ndarray, shape (n_channels, 3), optional
        Channel orientations (unit vectors).
    """

    coilpos: np.ndarray
    coilori: np.ndarray
    tra: np.ndarray
    labels: list
    chanunit: list = field(default_factory=list)
    chantype: list = field(default_factory=list)
    chanpos: np.ndarray | None = None
    chanori: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.coilpos = np.atleast_2d(np.asarray(self.coilpos, dtype=float))
        self.coilori = np.atleast_2d(np.asarray(self.coilori, dtype=float))
        self.tra = np.atleast_2d(np.asarray(self.tra, dtype=float))
        self.labels = [str(s) for s in self.labels]
        n_chan, n_coil = self.tra.shape
        if self.coilpos.shape != (n_coil, 3) or self.coilori.shape != (n_coil, 3):
            raise LamegValueError(
                f"coilpos/coilori must be ({n_coil}, 3) to match tra {self.tra.shape}; "
                f"got {self.coilpos.shape} and {self.coilori.shape}"
            )
        if len(self.labels) != n_chan:
            raise LamegValueError(f"{len(self.labels)} labels for {n_chan} channels in tra")
        if not self.chanunit:
            self.chanunit = ["T"] * n_chan
        if not self.chantype:
            self.chantype = ["meg"] * n_chan
        for arr in (self.coilpos, self.coilori, self.tra):
            if not np.all(np.isfinite(arr)):
                raise LamegValueError("sensor definition contains NaN or Inf")
        norms = np.linalg.norm(self.coilori, axis=1)
        if np.any(np.abs(norms - 1) > 1e-6):
            bad = int(np.sum(np.abs(norms - 1) > 1e-6))
            raise LamegValueError(f"{bad} coil orientations are not unit vectors")
        far = float(np.abs(self.coilpos).max()) if self.coilpos.size else 0.0
        if far > 2.0:
            raise LamegValueError(
                f"coil positions reach {far:g} from the origin; they do not look like metres "
                "(convert the sensors to metres first)"
            )

    @property
    def n_channels(self) -> int:
        """Number of channels (rows of ``tra``)."""
        return self.tra.shape[0]

    @property
    def n_coils(self) -> int:
        """Number of coils, i.e. integration points (columns of ``tra``)."""
        return self.tra.shape[1]

    def hash(self) -> str:
        """Content hash of the geometry and the channel map (for gain caches).

        Returns
        -------
        str
            Hex digest of the coil positions and normals, ``tra``, labels and channel units.
        """
        return hash_arrays(
            self.coilpos, self.coilori, self.tra,
            extra="|".join(self.labels) + "#" + "|".join(self.chanunit),
        )

    @cached_property
    def coil_key(self) -> str:
        """Hash of the coil geometry (computed once: treat a SensorArray as immutable)."""
        return hash_arrays(self.coilpos, self.coilori)

    @cached_property
    def tra_key(self) -> str:
        """Hash of the coil-to-channel map (computed once)."""
        return hash_arrays(self.tra)

    def select(self, channels: Sequence[str]) -> SensorArray:
        """Keep some channels, in a given order; coils that feed none of them are dropped.

        Parameters
        ----------
        channels : sequence of str
            Channel labels, all in ``labels``.

        Returns
        -------
        SensorArray
            A new array with these channels in this order.
        """
        index = {lab: i for i, lab in enumerate(self.labels)}
        missing = [c for c in channels if c not in index]
        if missing:
            raise LamegValueError(f"channels not in the sensor definition: {missing[:10]}")
        rows = np.array([index[c] for c in channels], dtype=int)
        tra = self.tra[rows]
        keep = np.any(tra != 0, axis=0)
        return SensorArray(
            coilpos=self.coilpos[keep], coilori=self.coilori[keep], tra=tra[:, keep],
            labels=[self.labels[r] for r in rows],
            chanunit=[self.chanunit[r] for r in rows],
            chantype=[self.chantype[r] for r in rows],
            chanpos=None if self.chanpos is None else self.chanpos[rows],
            chanori=None if self.chanori is None else self.chanori[rows],
        )

    def transformed(self, affine: np.ndarray) -> SensorArray:
        """Sensors moved by a rigid transform.

        Parameters
        ----------
        affine : array-like, shape (4, 4)
            Rigid transform, translation in m; positions move with the whole affine,
            orientations with its rotation part.

        Returns
        -------
        SensorArray
            A new array with moved coils (and channel positions/orientations when set).
        """
        a = np.asarray(affine, dtype=float)
        rot, t = a[:3, :3], a[:3, 3]
        return SensorArray(
            coilpos=self.coilpos @ rot.T + t, coilori=self.coilori @ rot.T, tra=self.tra,
            labels=list(self.labels), chanunit=list(self.chanunit), chantype=list(self.chantype),
            chanpos=None if self.chanpos is None else self.chanpos @ rot.T + t,
            chanori=None if self.chanori is None else self.chanori @ rot.T,
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_grad(cls, grad: dict, channels: Sequence[str] | None = None) -> SensorArray:
        """Build from a FieldTrip/SPM ``grad`` dict (``MEEG.sensors('MEG')``).

        Parameters
        ----------
        grad : dict
            Needs ``coilpos``, ``coilori``, ``label``; optional ``tra`` (identity when absent),
            ``unit`` (``'mm'``/``'cm'``/``'m'``; estimated from the geometry when absent),
            ``chanunit`` (``'T'`` when absent), ``chantype``, ``chanpos``, ``chanori``.
            Older SPM files use ``pnt``/``ori`` for the coils; these are accepted too.
        channels : sequence of str, optional
            Channels to keep, in this order (default: all).

        Returns
        -------
        SensorArray
            In metres and SI channel units.
        """
        if not isinstance(grad, dict):
            raise LamegValueError("grad must be a dict (FieldTrip gradiometer structure)")
        pos = grad.get("coilpos", grad.get("pnt"))
        ori = grad.get("coilori", grad.get("ori"))
        if pos is None or ori is None or "label" not in grad:
            raise LamegValueError(
                "the sensor structure has no coilpos/coilori/label; it is not a MEG grad "
                "(is this EEG data, or were the sensors never stored in the file?)"
            )
        pos = np.atleast_2d(np.asarray(pos, dtype=float))
        ori = np.atleast_2d(np.asarray(ori, dtype=float))
        labels = _as_list(grad["label"])
        n_chan = len(labels)
        tra = grad.get("tra")
        tra = np.eye(n_chan, len(pos)) if tra is None else np.atleast_2d(np.asarray(tra, float))
        if hasattr(tra, "toarray"):
            tra = tra.toarray()
        if tra.shape != (n_chan, len(pos)):
            if tra.shape == (len(pos), n_chan):
                tra = tra.T
            else:
                raise LamegValueError(
                    f"grad.tra has shape {tra.shape}, expected ({n_chan}, {len(pos)})"
                )
        unit = grad.get("unit")
        if unit is None or str(unit) == "":
            # estimate like FieldTrip: a helmet has a size of ~0.1 m / 10 cm / 100 mm
            size = np.linalg.norm(pos.max(0) - pos.min(0))
            unit = "m" if size < 1 else ("cm" if size < 100 else "mm")
        s = length_scale(str(unit))
        chanunit_in = _as_list(grad.get("chanunit"), n_chan) or ["T"] * n_chan
        chanunit_in = [u if u not in ("", "unknown") else "T" for u in chanunit_in]
        conv = {u: (_parse_unit(u)[1], unit_scale(u, _parse_unit(u)[1]))
                for u in set(chanunit_in)}  # channel value in u -> SI
        si_units = [conv[u][0] for u in chanunit_in]
        row_scale = np.array([conv[u][1] for u in chanunit_in])
        # a 'T/<len>' channel with coil weights +-1/baseline expressed in the grad length unit
        # is converted by the same factor (FieldTrip's ft_datatype_sens does the same)
        tra_si = tra * row_scale[:, None]
        ori_n = np.linalg.norm(ori, axis=1, keepdims=True)
        ori = ori / np.where(ori_n == 0, 1, ori_n)
        chanpos = grad.get("chanpos")
        chanori = grad.get("chanori")
        sens = cls(
            coilpos=pos * s, coilori=ori, tra=tra_si, labels=labels, chanunit=si_units,
            chantype=_as_list(grad.get("chantype"), n_chan) or ["meg"] * n_chan,
            chanpos=None if chanpos is None else np.atleast_2d(np.asarray(chanpos, float)) * s,
            chanori=None if chanori is None else np.atleast_2d(np.asarray(chanori, float)),
        )
        return sens if channels is None else sens.select(list(channels))

    @classmethod
    @fill_doc
    def point_magnetometers(
        cls, pos: np.ndarray, ori: np.ndarray, labels: Sequence[str] | None = None
    ) -> SensorArray:
        """One point coil per channel (e.g. an OPM axis).

        Parameters
        ----------
        pos : array-like, shape (n_channels, 3)
            Coil positions, m.
        ori : array-like, shape (n_channels, 3)
            Sensitive axes (unit vectors).
        %(channel_labels)s

        Returns
        -------
        SensorArray
            Magnetometers with channel unit T.
        """
        return cls._from_coil_sets(pos, ori, labels, [0.0], [1.0], "T", "megmag")

    @classmethod
    @fill_doc
    def axial_gradiometers(
        cls, pos: np.ndarray, ori: np.ndarray, baseline: float = 0.05,
        labels: Sequence[str] | None = None,
    ) -> SensorArray:
        """First-order axial gradiometers (CTF-like: two point coils, outward ``ori``).

        Parameters
        ----------
        pos : array-like, shape (n_channels, 3)
            Pick-up coil positions, m.
        ori : array-like, shape (n_channels, 3)
            Coil normals, pointing outward (unit vectors); the compensation coil sits at
            ``pos + baseline * ori``.
        %(coil_baseline)s
        %(channel_labels)s

        Returns
        -------
        SensorArray
            Gradiometers (weights +1/-1) with channel unit T.
        """
        ori = np.atleast_2d(np.asarray(ori, dtype=float))
        return cls._from_coil_sets(pos, ori, labels, [0.0, baseline * ori], [1.0, -1.0], "T",
                                   "meggrad")

    @classmethod
    @fill_doc
    def planar_gradiometers(
        cls, pos: np.ndarray, ori: np.ndarray, direction: np.ndarray, baseline: float = 0.0168,
        labels: Sequence[str] | None = None,
    ) -> SensorArray:
        """Planar gradiometers (Neuromag-like): two coils +-baseline/2 along ``direction``.

        The channel value is (B(+) - B(-)) / baseline in T/m.

        Parameters
        ----------
        pos : array-like, shape (n_channels, 3)
            Channel centres, m.
        ori : array-like, shape (n_channels, 3)
            Coil normals (unit vectors).
        direction : array-like, shape (n_channels, 3)
            Unit vectors along which the gradient is measured (tangential to the helmet).
        %(coil_baseline)s
        %(channel_labels)s

        Returns
        -------
        SensorArray
            Planar gradiometers with channel unit T/m.
        """
        d = np.atleast_2d(np.asarray(direction, dtype=float))
        return cls._from_coil_sets(pos, ori, labels, [0.5 * baseline * d, -0.5 * baseline * d],
                                   [1.0 / baseline, -1.0 / baseline], "T/m", "megplanar")

    @classmethod
    def _from_coil_sets(cls, pos, ori, labels, offsets, weights, unit: str, kind: str
                        ) -> SensorArray:
        """Channels made of the same point coils: coil set ``k`` of every channel sits at
        ``pos + offsets[k]`` (m), has the channel's normal ``ori`` and weight ``weights[k]``."""
        pos = np.atleast_2d(np.asarray(pos, dtype=float))
        ori = np.atleast_2d(np.asarray(ori, dtype=float))
        n = len(pos)
        labels = list(labels) if labels is not None else [f"MEG{i + 1:04d}" for i in range(n)]
        coilpos = np.vstack([pos + off for off in offsets])
        tra = np.hstack([w * np.eye(n) for w in weights])
        return cls(coilpos=coilpos, coilori=np.vstack([ori] * len(offsets)), tra=tra,
                   labels=labels, chanunit=[unit] * n, chantype=[kind] * n, chanpos=pos,
                   chanori=ori)

    @classmethod
    def from_mne_info(cls, info, picks=None, accuracy: str = "normal") -> SensorArray:
        """Build from an MNE ``Info`` with MNE's coil definitions (needs ``mne``).

        Coils are expressed in MNE's head frame (``info['dev_head_t']`` applied). CTF
        compensation grades in ``info['comps']`` are applied to ``tra`` when the channels carry a
        non-zero grade (reference channels must be present in ``info``).

        Parameters
        ----------
        info : mne.Info
            Measurement info holding the MEG channels (and CTF reference channels).
        picks : str | list | None
            MEG channels to use (default: all MEG channels, references excluded).
        accuracy : {'point', 'normal', 'accurate'}
            MNE coil integration accuracy.
        """
        try:
            import mne
            from mne._fiff.compensator import get_current_comp, make_compensator
            from mne.forward._make_forward import _create_meg_coils
        except ImportError as err:  # pragma: no cover - exercised only without mne
            raise LamegValueError("from_mne_info needs mne (pip install mne)") from err
        acc = {"point": 0, "normal": 1, "accurate": 2}[accuracy]
        if picks is None:
            picks = mne.pick_types(info, meg=True, ref_meg=False, exclude=[])
        else:
            picks = mne.io.pick._picks_to_idx(info, picks)
        picks = np.asarray(picks, dtype=int)
        grade = int(get_current_comp(info) or 0)
        refs = mne.pick_types(info, meg=False, ref_meg=True, exclude=[]) if grade else []
        used = np.union1d(picks, refs).astype(int)  # coils of the channels and the references
        chs = [info["chs"][i] for i in used]
        coils = _create_meg_coils(chs, acc, t=info["dev_head_t"])
        counts = np.array([len(c["rmag"]) for c in coils])
        rmag = np.vstack([c["rmag"] for c in coils])
        cosmag = np.vstack([c["cosmag"] for c in coils])
        cnorm = np.linalg.norm(cosmag, axis=1)
        weights = np.concatenate([c["w"] for c in coils]) * cnorm
        tra_used = np.zeros((len(coils), len(rmag)))
        tra_used[np.repeat(np.arange(len(coils)), counts), np.arange(len(rmag))] = weights
        if grade:
            # CTF synthetic gradiometers: compensated = comp @ uncompensated (all channels)
            comp = make_compensator(info, 0, grade)
            tra = comp[np.ix_(picks, used)] @ tra_used
        else:
            tra = tra_used[np.searchsorted(used, picks)]
        chs = [info["chs"][i] for i in picks]
        units = ["T/m" if c["unit"] == mne.io.constants.FIFF.FIFF_UNIT_T_M else "T" for c in chs]
        kinds = ["megplanar" if u == "T/m" else "megmag" for u in units]
        return cls(coilpos=rmag, coilori=cosmag / cnorm[:, None], tra=tra,
                   labels=[c["ch_name"] for c in chs], chanunit=units, chantype=kinds)
