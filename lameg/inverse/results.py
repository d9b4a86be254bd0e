"""Result containers of the inversion engines and their SPM ``inverse`` layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .._docs import fill_doc


@dataclass
class WindowResult:
    """Inversion of one time window.

    Shapes use Nd sources, Nc channels, Nm spatial modes, Nb samples, Nk DCT components,
    Nr temporal modes, K trials.

    Parameters
    ----------
    F : float
        Free energy of the final ReML (nats).
    R2 : float
        Percentage of the reduced data variance explained.
    VE : float
        ``R2`` times the fraction of temporal variance kept by the Nr modes (percent).
    woi : ndarray, shape (2,)
        Window of interest ``[start, end]``, ms.
    It : ndarray of int, shape (Nb,)
        0-based sample indices of the window.
    Ik : ndarray of int, shape (K,)
        0-based trials used, condition after condition.
    pst : ndarray, shape (Nb,)
        Peristimulus times of the window's samples, ms.
    dct : ndarray, shape (Nk,)
        Frequencies of the kept DCT components, Hz.
    S : ndarray (Nb, Nr)
        Temporal projector (SPM ``inverse.T``).
    V : ndarray, shape (Nk, Nr)
        Temporal modes in DCT space.
    tempU : ndarray, shape (Nk, Nk)
        All temporal singular vectors (SPM's ``tempU``).
    qV : ndarray, shape (Nb, Nb)
        Temporal correlation of the sources in the window, ``S pinv(S' K K' S) S'`` with
        ``K`` the Gaussian temporal smoother (SPM ``inverse.qV``).
    Nr : int
        Number of temporal modes.
    ve_temporal : float
        Fraction (0 to 1) of the windowed, band-passed data variance kept by the Nr modes.
    UY : list of ndarray (Nm, Nr)
        Reduced data per condition (classic: summed over trials; standard: scaled mean).
    J : list of ndarray (Nd, Nr)
        Source estimates per condition (``M @ UY``), internal scaling of the engine.
    Q : scipy.sparse matrix (Nd, Nd)
        Source prior covariance ``Qtot = sum_j h_j QP_j`` such that ``LCp = UL @ Q`` and the
        MAP operator is ``M = Q @ UL.T @ inv(Cy)``. Stored instead of ``M`` when many windows
        are kept.
    iCy : ndarray (Nm, Nm)
        ``inv(Cy)``.
    M : ndarray (Nd, Nm) or None
        MAP projector (kept for the first window, or when requested).
    qC : ndarray (Nd,) or None
        Posterior source variances (None for windows whose ``M`` was not kept: they cost as
        much as ``M``).
    Cp : ndarray (Nd,)
        Prior source variances.
    Cy : ndarray (Nm, Nm)
        Fitted reduced data covariance.
    h_stage1 : ndarray
        Hyperparameters of the first (prior-building) ReML of covariance-type priors (EBB,
        EBBlayer, IID, COH); empty for sparse priors (MSP, GS, ARD).
    h_stage2 : ndarray
        Hyperparameters of the final ReML (noise component first).
    Ph : ndarray
        Posterior precision of the final ReML's log-hyperparameters.
    AYYA : ndarray, shape (Nm, Nm)
        Reduced data covariance summed over temporal modes and trials, ``(A Y)(A Y)'``.
    Qe : ndarray, shape (Nm, Nm)
        Sensor-noise covariance component in mode space (``A A'``, normalised).
    Q0 : ndarray, shape (Nm, Nm)
        Noise floor of the ReML (``Qe`` scaled to the data).
    Y_last : ndarray, shape (Nm, Nr)
        Reduced data of the last trial.
    Nn : int
        Number of samples of the ReML (``Nr * K``).
    extras : dict
        Method-specific quantities (e.g. ``'F_stage1'``, ``'h_source'``, ``'InvCov'``,
        ``'MVB_F'``).
    """

    F: float
    R2: float
    VE: float
    woi: np.ndarray
    It: np.ndarray
    Ik: np.ndarray
    pst: np.ndarray
    dct: np.ndarray
    S: np.ndarray
    V: np.ndarray
    tempU: np.ndarray
    qV: np.ndarray
    Nr: int
    ve_temporal: float
    UY: list
    J: list
    Q: sp.spmatrix
    iCy: np.ndarray
    M: np.ndarray | None
    qC: np.ndarray | None
    Cp: np.ndarray
    Cy: np.ndarray
    h_stage1: np.ndarray
    h_stage2: np.ndarray
    Ph: np.ndarray
    AYYA: np.ndarray
    Qe: np.ndarray
    Q0: np.ndarray
    Y_last: np.ndarray
    Nn: int
    extras: dict = field(default_factory=dict)


@dataclass
class InversionResult:
    """All windows of one inversion sharing the spatial projector.

    Parameters
    ----------
    method : str
        Prior type ('EBB', 'EBBlayer', 'MSP', 'GS', 'ARD', 'IID', 'COH').
    engine : str
        'classic' (``spm_eeg_invert_classic``) or 'standard' (``spm_eeg_invert``).
    A : ndarray (Nm, Nc)
        Spatial projector (SPM ``inverse.U{1}``).
    UL : ndarray (Nm, Nd)
        Reduced lead field (SPM ``inverse.L``).
    Ic : ndarray (Nc,)
        0-based channel indices used (into the dataset's channels).
    Ip : ndarray
        0-based patch centres.
    windows : list of WindowResult
        One result per time window, in the order inverted.
    scale : float
        Data scale of the standard engine (1 for classic).
    settings : dict
        Engine settings stored with the result (e.g. ``lpf``, ``hpf`` in Hz, ``Han``, ``Np``).
    """

    method: str
    engine: str
    A: np.ndarray
    UL: np.ndarray
    Ic: np.ndarray
    Ip: np.ndarray
    windows: list
    scale: float = 1.0
    settings: dict = field(default_factory=dict)

    @property
    def F(self) -> np.ndarray:
        """Free energy per window, shape (n_windows,)."""
        return np.array([w.F for w in self.windows])

    @property
    def R2(self) -> np.ndarray:
        """Percentage of reduced data variance explained per window, shape (n_windows,)."""
        return np.array([w.R2 for w in self.windows])

    @property
    def VE(self) -> np.ndarray:
        """Variance explained (percent, ``R2`` x temporal variance kept) per window."""
        return np.array([w.VE for w in self.windows])

    @property
    def Nm(self) -> int:
        """Number of spatial modes (rows of ``A``)."""
        return int(self.A.shape[0])

    @property
    def Nd(self) -> int:
        """Number of sources (columns of ``UL``)."""
        return int(self.UL.shape[1])

    @fill_doc
    def window_operator(self, w: int = 0) -> np.ndarray:
        """MAP projector ``M`` of one window (recomputed from ``Q`` when it was not kept).

        Parameters
        ----------
        %(window_index_params_body)s

        Returns
        -------
        ndarray, shape (Nd, Nm)
            ``M``, mapping reduced (mode) data to sources.
        """
        win = self.windows[w]
        if win.M is not None:
            return win.M
        return np.asarray(win.Q @ (self.UL.T @ win.iCy))

    @fill_doc
    def mu_matrix(self, w: int = 0) -> np.ndarray:
        """Sensor-to-source operator ``M @ A`` of one window.

        Parameters
        ----------
        %(window_index_params_body)s

        Returns
        -------
        ndarray, shape (Nd, Nc)
            Maps the used channels' data (``Ic``) to source estimates.
        """
        return self.window_operator(w) @ self.A
