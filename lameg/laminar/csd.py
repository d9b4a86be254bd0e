"""Laminar current source density: StandardCSD and KCSD1D (native ports of elephant's estimators)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import integrate, interpolate

from ..exceptions import LamegDataError, LamegValueError

#: Conductivity used by the StandardCSD estimator (S/m), elephant's default.
STANDARD_CSD_SIGMA = 0.3


def _standard_csd(signal_: np.ndarray, spacing_m: float, sigma: float) -> np.ndarray:
    """Second spatial difference with Vaknin end electrodes and a 3-point Gaussian filter.

    ``csd_i = -sigma * (phi_{i-1} - 2 phi_i + phi_{i+1}) / h`` with the end potentials
    duplicated (Vaknin et al. 1988), then convolved across depth with the normalised window
    ``[e^-1/2, 1, e^-1/2]`` (zero padded), as elephant's ``StandardCSD`` does.
    """
    padded = np.concatenate([signal_[:1], signal_, signal_[-1:]], axis=0)
    second_diff = padded[:-2] - 2.0 * padded[1:-1] + padded[2:]
    raw = -sigma * second_diff / spacing_m
    window = np.array([np.exp(-0.5), 1.0, np.exp(-0.5)])
    window /= window.sum()
    filtered = np.zeros_like(raw)
    filtered += window[1] * raw
    filtered[1:] += window[0] * raw[:-1]
    filtered[:-1] += window[2] * raw[1:]
    return filtered


def _basis_1d(kind: str):
    """Basis source profile of KCSD1D as a function of (distance, R)."""
    if kind == "gauss":
        def fn(d, r):
            sd = r / 3.0
            return np.exp(-(d ** 2) / (2 * sd ** 2)) / (np.sqrt(2 * np.pi) * sd)
    elif kind == "gauss_lim":
        def fn(d, r):
            sd = r / 3.0
            g = np.exp(-(d ** 2) / (2 * sd ** 2)) / (np.sqrt(2 * np.pi) * sd)
            return g * (d < r)
    elif kind == "step":
        def fn(d, r):
            return (d <= r) / r
    else:
        raise LamegValueError(
            f"KCSD1D src_type must be 'gauss', 'gauss_lim' or 'step', got {kind!r}"
        )
    return fn


class _KCSD1D:
    """Kernel CSD in 1-D (Potworowski et al. 2012), the estimator of kCSD-python / elephant.

    Positions in mm, potentials in mV; the estimate is in uA/mm^3 (for sigma in S/m). The
    potential of a basis source is tabulated at 20 log-spaced distances and interpolated with a
    cubic spline, exactly as kCSD-python does, so results agree with elephant's ``KCSD1D``.
    """

    def __init__(self, ele_pos, pots, *, src_type="gauss", sigma=1.0, h=1.0, n_src_init=1000,
                 lambd=0.0, R_init=0.23, ext_x=0.0, xmin=None, xmax=None, gdx=None):
        self.ele = np.asarray(ele_pos, dtype=float).ravel()
        self.pots = np.asarray(pots, dtype=float)
        self.sigma, self.h, self.lambd = float(sigma), float(h), float(lambd)
        self.basis = _basis_1d(src_type)
        xmin = float(np.min(self.ele)) if xmin is None else float(xmin)
        xmax = float(np.max(self.ele)) if xmax is None else float(xmax)
        gdx = 0.01 * (xmax - xmin) if gdx is None else float(gdx)
        # Grid of estimation points: numpy's mgrid with a complex step truncates the count.
        n_est = int(abs((xmax - xmin) / gdx))
        self.estm_x = xmin + np.arange(n_est) * ((xmax - xmin) / (n_est - 1))
        lo, hi = self.estm_x.min() - ext_x, self.estm_x.max() + ext_x
        n_src = int(n_src_init)
        self.src_x = lo + np.arange(n_src) * ((hi - lo) / (n_src - 1))
        self.src_ele = np.abs(self.src_x[:, None] - self.ele[None, :])
        self.src_est = np.abs(self.src_x[:, None] - self.estm_x[None, :])
        self._update_r(float(R_init))

    def _potential_table(self, r: float):
        """Cubic interpolant of the potential of one basis source versus distance."""
        dist_max = max(self.src_ele.max(), self.src_est.max()) + r
        xs = np.logspace(0.0, np.log10(dist_max + 1.0), 20) - 1.0
        h, basis = self.h, self.basis

        def integrand(xp, x):
            return (np.sqrt((x - xp) ** 2 + h ** 2) - abs(x - xp)) * basis(abs(xp), r)

        table = np.array([integrate.quad(integrand, -r, r, args=(x,))[0] for x in xs])
        table /= 2.0 * self.sigma
        return interpolate.interp1d(xs, table, kind="cubic")

    def _update_r(self, r: float) -> None:
        self.r = r
        pot = self._potential_table(r)
        n_src = self.src_x.size
        b_pot = pot(self.src_ele)  # (n_src, n_ele)
        self.k_pot = b_pot.T @ b_pot / n_src
        b_src = self.basis(self.src_est, r).T  # (n_est, n_src)
        self.k_cross = b_src @ b_pot / n_src

    def _cv_error(self, lambd: float) -> float:
        """Leave-one-electrode-out prediction error (sum over electrodes of the L2 norm)."""
        n = self.k_pot.shape[0]
        train = np.array([np.delete(np.arange(n), i) for i in range(n)])  # (n, n-1)
        k_train = self.k_pot[train[:, :, None], train[:, None, :]]  # (n, n-1, n-1)
        k_inv = np.linalg.inv(k_train + lambd * np.eye(n - 1))
        v_train = self.pots[train]  # (n, n-1, T)
        k_test = self.k_pot[np.arange(n)[:, None], train]  # (n, n-1)
        pred = np.einsum("ij,ijt->it", k_test, k_inv @ v_train)
        return float(np.sum(np.linalg.norm(pred - self.pots, axis=1)))

    def cross_validate(self, lambdas=None, rs=None) -> tuple[float, float]:
        if lambdas is None:
            lambdas = np.hstack((np.logspace(-2, -25, 25, base=10.0), [0.0]))
        lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float)).ravel()
        rs = np.atleast_1d(np.asarray(self.r if rs is None else rs, dtype=float)).ravel()
        errs = np.zeros((rs.size, lambdas.size))
        for i, r in enumerate(rs):
            self._update_r(r)
            errs[i] = [self._cv_error(lam) for lam in lambdas]
        i_r, i_l = np.unravel_index(np.argmin(errs), errs.shape)
        self._update_r(rs[i_r])
        self.lambd = lambdas[i_l]
        self.cv_error = errs.min()
        return rs[i_r], self.lambd

    def values(self) -> np.ndarray:
        k_inv = np.linalg.inv(self.k_pot + self.lambd * np.eye(self.k_pot.shape[0]))
        return self.k_cross @ (k_inv @ self.pots)


_KCSD_KWARGS = {"src_type", "sigma", "h", "n_src_init", "lambd", "R_init", "ext_x", "xmin",
                "xmax", "gdx"}


def compute_csd(
    signal: np.ndarray,
    thickness: float,
    sfreq: float,
    method: str = "KCSD1D",
    smoothing: str | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Laminar current source density of a column of layer time series.

    Parameters
    ----------
    signal : ndarray, shape (n_layers, n_times)
        Source time series of one cortical column, layer 0 = pial ... last = white, equally
        spaced in depth (laMEG's equidistant layers).
    thickness : float
        Cortical thickness of the column in mm (e.g. the sum of the inter-layer distances).
    sfreq : float
        Sampling frequency in Hz (checked for positivity; the CSD is computed per sample).
    method : {'KCSD1D', 'StandardCSD'}
        Estimator. ``'StandardCSD'``: second spatial difference with duplicated end potentials
        and a three-point Gaussian spatial filter, values ``-sigma * (phi[i-1] - 2 phi[i] +
        phi[i+1]) / h`` (sigma = 0.3 S/m, h = spacing in metres; elephant's convention, i.e.
        ``-sigma * h * d2phi/dz2``); the first two and last two rows are set to 0 as in laMEG.
        ``'KCSD1D'``: kernel CSD with leave-one-out cross-validation of the regularisation
        (and of the basis width if ``Rs`` is given); the signal is read as volts and the result
        is in uA/mm^3 on ``int(100 * (1 - eps))`` or 100 evenly spaced depths (elephant's grid
        of 1 % of the thickness).
    smoothing : {'linear', 'quadratic', 'cubic', ...} or None
        StandardCSD only: interpolate across normalised depth (any ``scipy.interpolate.interp1d``
        kind) onto 500 rows. Ignored (with a warning) for KCSD1D, whose grid is already fine.
    **kwargs
        KCSD1D options: ``lambdas`` (regularisation values to cross-validate; default
        ``logspace(-2, -25, 25)`` and 0), ``Rs`` (basis widths in mm; default ``R_init``), and
        the estimator parameters ``R_init`` (0.23 mm), ``n_src_init`` (1000), ``sigma`` (1.0),
        ``h`` (1.0), ``src_type`` ('gauss'), ``ext_x``, ``xmin``, ``xmax``, ``gdx``.

    Returns
    -------
    csd : ndarray, shape (n_rows, n_times)
        ``n_rows`` = n_layers (StandardCSD), 500 (StandardCSD with smoothing) or the KCSD1D
        estimation grid; row 0 is the pial end.

    Raises
    ------
    LamegValueError
        For an unknown method, fewer than 3 layers, non-finite values or a non-positive
        thickness or sampling rate.
    """
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim == 1:
        sig = sig[:, None]
    if sig.ndim != 2:
        raise LamegValueError(f"signal must be (n_layers, n_times), got shape {sig.shape}")
    if sig.shape[0] < 3:
        raise LamegValueError(f"compute_csd needs at least 3 layers, got {sig.shape[0]}")
    if not np.all(np.isfinite(sig)):
        raise LamegDataError("signal contains NaN or infinite values")
    if not (np.isfinite(thickness) and thickness > 0):
        raise LamegValueError(f"thickness must be a positive number of mm, got {thickness!r}")
    if not (np.isfinite(sfreq) and sfreq > 0):
        raise LamegValueError(f"sfreq must be a positive frequency in Hz, got {sfreq!r}")
    n_layers = sig.shape[0]
    coords = np.linspace(0.0, float(thickness), n_layers)  # mm

    if method == "StandardCSD":
        if kwargs:
            raise LamegValueError(f"StandardCSD takes no extra options, got {sorted(kwargs)}")
        spacing_m = (coords[1] - coords[0]) * 1e-3
        csd = _standard_csd(sig, spacing_m, STANDARD_CSD_SIGMA)
        csd[:2] = 0.0
        csd[-2:] = 0.0
        if smoothing is not None:
            depth = np.linspace(0.0, 1.0, n_layers)
            fine = np.linspace(0.0, 1.0, 500)
            try:
                csd = interpolate.interp1d(depth, csd, kind=smoothing, axis=0)(fine)
            except (ValueError, NotImplementedError) as err:
                raise LamegValueError(
                    f"smoothing={smoothing!r} is not an interpolation kind: {err}"
                ) from err
        return csd

    if method == "KCSD1D":
        if smoothing is not None:
            warnings.warn("smoothing applies to StandardCSD only; ignored for KCSD1D",
                          UserWarning, stacklevel=2)
        lambdas = kwargs.pop("lambdas", None)
        rs = kwargs.pop("Rs", None)
        unknown = set(kwargs) - _KCSD_KWARGS
        if unknown:
            raise LamegValueError(
                f"Unknown KCSD1D option(s) {sorted(unknown)}; valid: lambdas, Rs, "
                f"{', '.join(sorted(_KCSD_KWARGS))}"
            )
        # laMEG passes the signal as microvolts (x 1e6) and kCSD works in mV.
        pots_mv = sig * 1e3
        est = _KCSD1D(coords, pots_mv, **kwargs)
        est.cross_validate(lambdas, rs)
        return est.values()

    raise LamegValueError(f"method must be 'StandardCSD' or 'KCSD1D', got {method!r}")
