"""Zero-phase band filters used by the SAM programs (FFT and IIR) and the mains notch.

* **FFT** (default), as SAMsrcV5's ``Butterworth``/``FFTfilter``: for a trial of ``N`` samples the
  gain of bin ``i < N/2`` (frequency ``i fs / N``) is that of an order-20 Butterworth magnitude,
  band-pass ``g = 1/sqrt(1 + (2 (f - fc)/fw)**40)`` with ``fc = (hp + lp)/2``, ``fw = lp - hp``, or
  low-pass ``g = 1/sqrt(1 + (f/lp)**40)`` when ``hp == 0``. SAMsrcV5 stores the gain of bin ``i``
  also at index ``N - 1 - i`` (one bin off the mirror frequency ``N - i``), leaves the middle bin of
  an odd ``N`` unfiltered and keeps the real part of the inverse transform; this module does the
  same, so filtered data agree with the real programs to rounding.
* **IIR**: a 4th-order Butterworth band-pass (low-pass when ``hp == 0``) run forwards and
  backwards (zero phase), so its amplitude gain is ``|H(f)|**2``. (SAMsrcV5 designs its own IIR
  coefficients; the two agree in the pass band but not to rounding -- see the differences page.)
* **Notch** (SAMsrcV5's ``mknotch``): every mains harmonic ``n * Hz`` (n = 1..20) inside the
  *covariance* band ``[CovHP, CovLP]`` is removed by an order-20 band-reject of half width 1 Hz,
  ``g = 1/sqrt(1 + (1/(f - fn))**40)``, applied after the band filter (FFT filters only).

The *effective bandwidth* of a filter is ``sum_{i < N/2} gain(i fs/N) fs/N`` (a sum of amplitude
gains over the bins of one trial, as SAMsrcV5 computes it); it scales the additive ``Mu``
regularisation and the projected noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..exceptions import LamegValueError

__all__ = ["BandFilter", "sam_gain_array"]

FFT_ORDER = 20
IIR_ORDER = 4
NOTCH_HALF_WIDTH = 1.0  # Hz
MAX_NOTCHES = 20
_BW_DF = 0.01  # Hz, grid step of the effective-bandwidth sum when no trial length is known


def notch_frequencies(hp: float, lp: float, mains: float) -> np.ndarray:
    """Mains harmonics ``n * mains`` (n = 1..20) inside ``[hp, lp]``.

    Parameters
    ----------
    hp, lp : float
        Lower and upper edges of the band, Hz.
    mains : float
        Mains frequency, Hz.

    Returns
    -------
    ndarray, shape (n_notches,)
        Notch frequencies, Hz.
    """
    f = np.arange(1, MAX_NOTCHES + 1) * float(mains)
    return f[(f >= hp) & (f <= lp)]


def _band_gain(f: np.ndarray, hp: float, lp: float, order: int = FFT_ORDER) -> np.ndarray:
    f = np.abs(np.asarray(f, float))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if hp <= 0:
            g = 1.0 / np.sqrt(1.0 + (f / lp) ** (2 * order))
        else:
            fc, fw = 0.5 * (hp + lp), lp - hp
            g = 1.0 / np.sqrt(1.0 + (2.0 * (f - fc) / fw) ** (2 * order))
    return np.nan_to_num(g)


def _notch_gain(f: np.ndarray, notches, order: int = FFT_ORDER) -> np.ndarray:
    f = np.abs(np.asarray(f, float))
    g = np.ones_like(f)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for fn in notches:
            ratio = NOTCH_HALF_WIDTH / (f - fn)
            g = g * np.nan_to_num(1.0 / np.sqrt(1.0 + ratio ** (2 * order)))
    return g


def fft_gain(freqs: np.ndarray, hp: float, lp: float, notches=(), order: int = FFT_ORDER
             ) -> np.ndarray:
    """Amplitude gain of the FFT filter (band and notches) at ``freqs``.

    Parameters
    ----------
    freqs : ndarray, shape (n,)
        Frequencies, Hz.
    hp, lp : float
        Lower and upper edges of the pass band, Hz.
    notches : sequence of float
        Notch frequencies, Hz.
    order : int
        Order of the band and notch edges.

    Returns
    -------
    ndarray, shape (n,)
        Amplitude gain (dimensionless, 0..1) at each frequency.
    """
    return _band_gain(freqs, hp, lp, order) * _notch_gain(freqs, notches, order)


def sam_gain_array(n: int, fs: float, hp: float, lp: float, notches=()) -> np.ndarray:
    """The multiplier SAMsrcV5's ``FFTfilter`` applies to a full complex spectrum.

    Parameters
    ----------
    n : int
        Samples of the record.
    fs : float
        Sampling rate, Hz.
    hp, lp : float
        Band edges, Hz (``hp <= 0``: low-pass).
    notches : sequence of float
        Notched frequencies, Hz.

    Returns
    -------
    ndarray, shape (n,)
        Gain per FFT index: bin ``i < n/2`` and index ``n - 1 - i`` get the gain at ``i fs/n``; the
        middle index of an odd ``n`` is 1.
    """
    half = n // 2
    g = fft_gain(np.arange(half) * fs / n, hp, lp, notches)
    m = np.ones(n)
    m[:half] = g
    m[n - 1 - np.arange(half)] = g
    return m


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
    notch_band : (float, float) or None
        Band whose mains harmonics are notched (SAMsrcV5 uses ``CovBand`` for every covariance);
        default ``(hp, lp)``.
    """

    fs: float
    hp: float
    lp: float
    kind: str = "FFT"
    mains: float | None = None
    notch_band: tuple[float, float] | None = None

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
        """Notched frequencies, Hz (FFT filters only, as in SAMsrcV5)."""
        if self.mains is None or self.kind != "FFT":
            return np.zeros(0)
        lo, hi = self.notch_band if self.notch_band is not None else (self.hp, self.lp)
        return notch_frequencies(lo, hi, self.mains)

    def _sos(self):
        nyq_lp = min(self.lp, 0.999 * self.fs / 2)
        if self.hp <= 0:
            return signal.butter(IIR_ORDER, nyq_lp, "lowpass", fs=self.fs, output="sos")
        return signal.butter(IIR_ORDER, [self.hp, nyq_lp], "bandpass", fs=self.fs, output="sos")

    def gain(self, freqs: np.ndarray, notch: bool = True) -> np.ndarray:
        """Amplitude gain of the complete (zero-phase) filter.

        Parameters
        ----------
        freqs : ndarray
            Frequencies, Hz.
        notch : bool
            Include the notches (FFT filters with ``mains``); False gives the band filter alone,
            as used for the effective bandwidth.

        Returns
        -------
        ndarray
            Shape of ``freqs``.
        """
        if self.kind == "FFT":
            return fft_gain(freqs, self.hp, self.lp, self.notches if notch else ())
        _, h = signal.sosfreqz(self._sos(), worN=np.asarray(freqs, float), fs=self.fs)
        return np.abs(h) ** 2

    def bandwidth_for(self, n: int | None) -> float:
        """Effective bandwidth (Hz) for trials of ``n`` samples (SAMsrcV5's bin sum).

        Parameters
        ----------
        n : int or None
            Samples per trial; None sums on a fine frequency grid (the limit of long trials).

        Returns
        -------
        float
        """
        if n is None or self.kind == "IIR":
            f = np.arange(0.0, self.fs / 2, _BW_DF)
            return float(self.gain(f, notch=False).sum() * _BW_DF)
        n = int(n)
        df = self.fs / n
        return float(self.gain(np.arange(n // 2) * df, notch=False).sum() * df)

    @property
    def bandwidth(self) -> float:
        """Effective bandwidth ``sum_f gain(f) df`` on a fine grid over ``[0, fs/2)``, Hz."""
        return self.bandwidth_for(None)

    @property
    def nominal_bandwidth(self) -> float:
        """``lp - hp``, Hz."""
        return self.lp - self.hp

    def apply(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Demean along ``axis`` and filter with zero phase (SAMsrcV5's FFT filter, then the notch).

        Parameters
        ----------
        x : ndarray
            Data.
        axis : int
            Time axis.

        Returns
        -------
        ndarray
            New float64 array, shape of ``x``.
        """
        x = np.asarray(x, dtype=float)
        x = x - x.mean(axis=axis, keepdims=True)
        n = x.shape[axis]
        if self.kind == "IIR":
            padlen = min(n - 1, 3 * (2 * len(self._sos()) + 1))
            return signal.sosfiltfilt(self._sos(), x, axis=axis, padlen=padlen)
        m = sam_gain_array(n, self.fs, self.hp, self.lp)
        shape = [1] * x.ndim
        shape[axis] = n
        y = np.fft.ifft(np.fft.fft(x, axis=axis) * m.reshape(shape), axis=axis).real
        if len(self.notches):
            notch = sam_gain_array(n, self.fs, 0.0, np.inf, self.notches)
            y = np.fft.ifft(np.fft.fft(y, axis=axis) * notch.reshape(shape), axis=axis).real
        return y
