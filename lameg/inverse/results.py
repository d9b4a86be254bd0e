"""Result containers of the inversion engines and their SPM ``inverse`` layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class WindowResult:
    """Inversion of one time window.

    Shapes use Nd sources, Nm spatial modes, Nb samples, Nr temporal modes, K trials.

    Attributes
    ----------
    F : float
        Free energy of the final ReML.
    R2 : float
        Percentage of the reduced data variance explained.
    VE : float
        ``R2`` times the fraction of temporal variance kept by the Nr modes (percent).
    Q : scipy.sparse matrix (Nd, Nd)
        Source prior covariance ``Qtot = sum_j h_j QP_j`` such that ``LCp = UL @ Q`` and the
        MAP operator is ``M = Q @ UL.T @ inv(Cy)``. Stored instead of ``M`` when many windows
        are kept.
    iCy : ndarray (Nm, Nm)
        ``inv(Cy)``.
    M : ndarray (Nd, Nm) or None
        MAP projector (kept for the first window, or when requested).
    J : list of ndarray (Nd, Nr)
        Source estimates per condition (``M @ UY``), internal scaling of the engine.
    UY : list of ndarray (Nm, Nr)
        Reduced data per condition (classic: summed over trials; standard: scaled mean).
    qC : ndarray (Nd,) or None
        Posterior source variances (None for windows whose ``M`` was not kept: they cost as
        much as ``M``).
    Cp : ndarray (Nd,)
        Prior source variances.
    Cy : ndarray (Nm, Nm)
        Fitted reduced data covariance.
    S : ndarray (Nb, Nr)
        Temporal projector (SPM ``inverse.T``).
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

    Attributes
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
    scale : float
        Data scale of the standard engine (1 for classic).
    smooth : float
        SPM's ``inverse.smooth`` value (negative = geodesic FWHM in mm).
    """

    method: str
    engine: str
    A: np.ndarray
    UL: np.ndarray
    Ic: np.ndarray
    Ip: np.ndarray
    windows: list
    scale: float = 1.0
    smooth: float = 0.6
    settings: dict = field(default_factory=dict)

    @property
    def F(self) -> np.ndarray:
        """Free energy per window, shape (n_windows,)."""
        return np.array([w.F for w in self.windows])

    @property
    def R2(self) -> np.ndarray:
        return np.array([w.R2 for w in self.windows])

    @property
    def VE(self) -> np.ndarray:
        return np.array([w.VE for w in self.windows])

    @property
    def Nm(self) -> int:
        return int(self.A.shape[0])

    @property
    def Nd(self) -> int:
        return int(self.UL.shape[1])

    def window_operator(self, w: int = 0) -> np.ndarray:
        """MAP projector ``M`` (Nd, Nm) of window ``w``."""
        win = self.windows[w]
        if win.M is not None:
            return win.M
        return np.asarray(win.Q @ (self.UL.T @ win.iCy))

    def mu_matrix(self, w: int = 0) -> np.ndarray:
        """Sensor-to-source operator ``M @ A`` (Nd, Nc) of window ``w``."""
        return self.window_operator(w) @ self.A
