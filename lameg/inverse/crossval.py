"""Channel cross-validation of an inversion (``spm_cfg_eeg_inv_invertiter`` / laMEG).

Test channels are drawn with an explicit :class:`numpy.random.Generator` (SPM uses MATLAB's
unseeded global generator, which cannot be reproduced); they can also be given directly.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import LamegValueError


def draw_test_channels(n_channels: int, n_folds: int = 1, ideal_pc_test: float = 0.0,
                      seed: int | np.random.Generator | None = None
                      ) -> tuple[np.ndarray, float]:
    """Test-channel blocks (``spm_eeg_inv_prep_modes_xval`` rules).

    Parameters
    ----------
    n_channels : int
        Number of good channels.
    n_folds : int
        Number of blocks.
    ideal_pc_test : float
        Percentage of channels held out per block. ``n_folds * pc == 100`` means k-fold
        with disjoint blocks from one permutation; otherwise every block draws its own
        permutation (Monte-Carlo cross-validation).
    seed : int, Generator or None
        Random source.

    Returns
    -------
    testchans : ndarray (n_folds, n_test), int
        0-based indices into the good channels.
    pc_test : float
        The percentage actually used.
    """
    if n_folds < 1 or int(n_folds) != n_folds:
        raise LamegValueError(f"n_folds must be a positive integer, got {n_folds}")
    if not 0 <= ideal_pc_test < 100:
        raise LamegValueError(f"ideal_pc_test must be in [0, 100), got {ideal_pc_test}")
    rng = np.random.default_rng(seed)
    pc = float(ideal_pc_test)
    if round(n_folds * pc) == 100:
        pc = np.floor(n_channels / n_folds) / n_channels * 100
        n_test = int(round(pc * n_channels / 100))
        perm = rng.permutation(n_channels)
        sets = perm[: n_folds * n_test].reshape(n_folds, n_test)
    else:
        n_test = int(round(pc * n_channels / 100))
        sets = np.stack([rng.permutation(n_channels)[:n_test] for _ in range(n_folds)])
    if n_test >= n_channels:
        raise LamegValueError("no training channels would be left; lower ideal_pc_test")
    return sets.astype(int), pc


def crossval_error(L_full: np.ndarray, M: np.ndarray, A: np.ndarray, data, it: np.ndarray,
                   ik: np.ndarray, S: np.ndarray, train: np.ndarray, test: np.ndarray,
                   hann: np.ndarray | None) -> np.ndarray:
    """RMS prediction error of held-out channels, averaged over trials.

    ``Ypred = L_full[test] M A (Y_train,t o W) S`` and ``Ymeas = (Y_test,t o W) S`` for each
    trial t; the error is ``sqrt(mean over temporal modes of (Ypred - Ymeas)^2)``.

    Parameters
    ----------
    L_full : ndarray, shape (n_channels, n_sources)
        Lead field of all channels (training and test).
    M : ndarray, shape (n_sources, n_modes)
        MAP projector of the inversion fitted on the training channels.
    A : ndarray, shape (n_modes, n_train)
        Spatial projector of the training channels.
    data : array-like, shape (n_channels, n_samples, n_trials)
        Sensor data (e.g. a memory map), in the units of the lead field's rows.
    it : ndarray of int, shape (n_window_samples,)
        0-based samples of the window.
    ik : ndarray of int, shape (n_used_trials,)
        0-based trials to average over.
    S : ndarray, shape (n_window_samples, n_temp_modes)
        Temporal projector of the window.
    train : ndarray of int, shape (n_train,)
        0-based rows of ``data`` and ``L_full`` used for training.
    test : ndarray of int, shape (n_test,)
        0-based held-out rows.
    hann : ndarray, shape (n_window_samples,), or None
        Hanning weights of the window (None: none).

    Returns
    -------
    ndarray, shape (n_test,)
        RMS error per held-out channel, data units (empty without held-out channels).
    """
    if len(test) == 0:
        return np.zeros(0)
    op = (L_full[test] @ M) @ A  # (n_test, n_train)
    w = np.ones(len(it)) if hann is None else hann
    err = np.zeros(len(test))
    for t in ik:
        y = np.asarray(data[:, it, t], dtype=float) * w[None, :]
        ypred = op @ (y[train] @ S)
        ymeas = y[test] @ S
        err += np.sqrt(np.mean((ypred - ymeas) ** 2, axis=1))
    return err / len(ik)
