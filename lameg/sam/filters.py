"""Zero-phase band filters used by the SAM programs (FFT and IIR) and the mains notch.

* **FFT** (default): the frequency-domain magnitude of an order-20 Butterworth filter applied with
  zero phase: band-pass gain ``g(f) = 1/sqrt(1 + (2 (f - fc)/fw)**40)`` with ``fc = (hp + lp)/2``,
  ``fw = lp - hp``; low-pass ``g(f) = 1/sqrt(1 + (f/lp)**40)`` when ``hp == 0``.
* **IIR**: a 4th-order Butterworth band-pass (low-pass when ``hp == 0``) run forwards and
  backwards (zero phase), so its amplitude gain is ``|H(f)|**2``.
* **Notch** (documented behaviour): up to 6 mains harmonics ``n * Hz`` inside the pass band, each
  removed by a power-complementary order-20 band-stop of width 4 Hz (-3 dB at ``fn +/- 2`` Hz),
  applied in the frequency domain for either filter type.

The *effective bandwidth* of a filter is ``sum_f gain(f) * df`` over ``0 <= f < fs/2`` (a sum of
amplitude gains, as SAMsrcV5 computes it); it scales the additive ``Mu`` regularisation and the
projected noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..exceptions import LamegValueError

__all__ = ["BandFilter", "fft_gain", "notch_frequencies"]

FFT_ORDER = 20
IIR_ORDER = 4
NOTCH_WIDTH = 4.0  # Hz
MAX_NOTCHES = 6
_BW_DF = 0.01  # Hz, grid step of the effective-bandwidth sum


def notch_frequencies(hp: float, lp: float, mains: float, fs: float) -> np.ndarray:
    """Mains harmonics (Hz) inside ``[hp, lp]`` and below Nyquist, at most 6."""
    n = np.arange(1, MAX_NOTCHES + 1)
    f = n * mains
    return f[(f >= hp) & (f <= lp) & (f < fs / 2)]


def fft_gain(freqs: np.ndarray, hp: float, lp: float, notches=(), order: int = FFT_ORDER
             ) -> np.ndarray:
    """Amplitude gain of the FFT filter at ``freqs`` (Hz), shape of ``freqs``."""
    f = np.abs(np.asarray(freqs, float))
    with np.errstate(over="ignore"):
        if hp <= 0:
            g = 1.0 / np.sqrt(1.0 + (f / lp) ** (2 * order))
        else:
            fc, fw = 0.5 * (hp + lp), lp - hp
            g = 1.0 / np.sqrt(1.0 + (2.0 * (f - fc) / fw) ** (2 * order))
        for fn in notches:
            x = (2.0 * (f - fn) / NOTCH_WIDTH) ** (2 * order)
            g = g * np.sqrt(x / (1.0 + x))
    return np.nan_to_num(g)


@dataclass(frozen=True)
class BandFilter:
    """A zero-phase pass-band filter.

    Parameters
    ----------
    fs : float
        Sampling rate, Hz.
    hp, lp : float
        High-pass and low-pass edges, Hz (``hp = 0`` for a low-pass filter); ``lp <= fs/2``.
    kind : {'FFT', 'IIR'}
        Filter type.
    mains : float or None
        Mains frequency (Hz) whose harmonics are notched, or None for no notch.
    """

    fs: float
    hp: float
    lp: float
    kind: str = "FFT"
    mains: float | None = None

    def __post_init__(self):
        if not (self.fs > 0 and 0 <= self.hp < self.lp):
            raise LamegValueError(f"invalid pass band {self.hp:g}-{self.lp:g} Hz")
        if self.lp > self.fs / 2 + 1e-9:
            raise LamegValueError(
                f"pass band upper edge {self.lp:g} Hz is above the Nyquist frequency "
                f"{self.fs / 2:g} Hz of the data; lower it in the parameter file"
            )
        if self.kind not in ("FFT", "IIR"):
            raise LamegValueError(f"FilterType must be FFT or IIR, not {self.kind!r}")

    @property
    def notches(self) -> np.ndarray:
        """Notched frequencies, Hz."""
        if self.mains is None:
            return np.zeros(0)
        return notch_frequencies(self.hp, self.lp, self.mains, self.fs)

    def _sos(self):
        nyq_lp = min(self.lp, 0.999 * self.fs / 2)
        if self.hp <= 0:
            return signal.butter(IIR_ORDER, nyq_lp, "lowpass", fs=self.fs, output="sos")
        return signal.butter(IIR_ORDER, [self.hp, nyq_lp], "bandpass", fs=self.fs, output="sos")

    def gain(self, freqs: np.ndarray) -> np.ndarray:
        """Amplitude gain of the complete (zero-phase) filter at ``freqs`` (Hz)."""
        if self.kind == "FFT":
            return fft_gain(freqs, self.hp, self.lp, self.notches)
        _, h = signal.sosfreqz(self._sos(), worN=np.asarray(freqs, float), fs=self.fs)
        return np.abs(h) ** 2 * fft_gain(freqs, 0.0, np.inf, self.notches)

    @property
    def bandwidth(self) -> float:
        """Effective bandwidth ``sum_f gain(f) df`` over ``[0, fs/2)``, Hz."""
        f = np.arange(0.0, self.fs / 2, _BW_DF)
        return float(self.gain(f).sum() * _BW_DF)

    @property
    def nominal_bandwidth(self) -> float:
        """``lp - hp``, Hz."""
        return self.lp - self.hp

    def apply(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Demean along ``axis`` and filter with zero phase; returns a new float64 array."""
        x = np.asarray(x, dtype=float)
        x = x - x.mean(axis=axis, keepdims=True)
        n = x.shape[axis]
        if self.kind == "IIR":
            padlen = min(n - 1, 3 * (2 * len(self._sos()) + 1))
            x = signal.sosfiltfilt(self._sos(), x, axis=axis, padlen=padlen)
            if self.mains is None or len(self.notches) == 0:
                return x
            g = fft_gain(np.fft.rfftfreq(n, 1 / self.fs), 0.0, np.inf, self.notches)
        else:
            g = self.gain(np.fft.rfftfreq(n, 1 / self.fs))
        shape = [1] * x.ndim
        shape[axis] = g.size
        spec = np.fft.rfft(x, axis=axis) * g.reshape(shape)
        return np.fft.irfft(spec, n=n, axis=axis)
