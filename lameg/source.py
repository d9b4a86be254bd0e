"""Source time series from stored inversions (laMEG 0.2.1 ``lameg.source``).

Single window: ``J = (M A) Y (S S')`` on the good channels and the inverted samples, with no
Hanning weighting. Unlike laMEG, inversions restricted to a ``woi`` work: the returned time
axis is the window's. Several windows (sliding-window inversions): each window's operator is
applied to the raw sensor data of its samples and overlapping windows are averaged
sample-wise; samples outside every window are 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from .inverse.modes import woi_samples

__all__ = ["load_source_time_series"]


def _first(x):
    return x[0] if isinstance(x, (list, tuple)) else x


def _inverse(fname: Path, idx: int) -> dict:
    from .io.spm_meeg import load_meeg

    if not fname.exists():
        raise LamegFileNotFoundError(f"{fname} not found")
    invs = load_meeg(fname).inv
    if idx < 0 or idx >= len(invs) or "inverse" not in invs[idx]:
        raise LamegValueError(f"{fname.name} has no inversion at inversion_idx={idx}; "
                              "run an inversion first")
    return invs[idx]["inverse"]


def _window_q(inv: dict, w: int, nd: int):
    if "M_win_qdiag" in inv:
        qd = np.asarray(inv["M_win_qdiag"], dtype=float).reshape(nd, -1)
        return sp.diags(qd[:, w])
    ptr = np.asarray(inv["M_win_q_ptr"], dtype=float).astype(int).ravel()
    sl = slice(ptr[w], ptr[w + 1])
    r = np.asarray(inv["M_win_q_row"]).ravel()[sl].astype(int) - 1
    c = np.asarray(inv["M_win_q_col"]).ravel()[sl].astype(int) - 1
    v = np.asarray(inv["M_win_q_val"], dtype=float).ravel()[sl]
    return sp.csr_matrix((v, (r, c)), shape=(nd, nd))


def load_source_time_series(data_fname: str | os.PathLike, mu_matrix: np.ndarray | None = None,
                            inv_fname: str | os.PathLike | None = None, vertices=None,
                            inversion_idx: int = 0):
    """Project sensor data through a stored inverse operator.

    Parameters
    ----------
    data_fname : path
        SPM dataset whose data are projected.
    mu_matrix : ndarray (Nd, Nc) or None
        Precomputed ``M @ A`` (single window); rows are selected by ``vertices``.
    inv_fname : path or None
        Dataset holding the inversion (default ``data_fname``).
    vertices : sequence of int or None
        0-based sources to return (default all).
    inversion_idx : int
        0-based inversion index.

    Returns
    -------
    source_ts : ndarray (n_vertices, n_times[, n_trials])
        Source time series (trial axis dropped for a single trial).
    time_ms : ndarray (n_times,)
        Time axis, ms.
    mu_matrix : ndarray or None
        The operator used (single window), None for sliding windows.
    """
    from .io.spm_meeg import load_meeg

    data_fname = Path(data_fname)
    if not data_fname.exists():
        raise LamegFileNotFoundError(f"{data_fname} not found")
    inv = _inverse(Path(inv_fname) if inv_fname is not None else data_fname, int(inversion_idx))
    D = load_meeg(data_fname)
    ic = np.asarray(_first(inv["Ic"]), dtype=float).ravel().astype(int) - 1
    if ic.size and ic.max() >= D.n_channels:
        raise LamegFormatError("the inversion's channels do not exist in this dataset")
    A = np.asarray(_first(inv["U"]), dtype=float)
    A = A.reshape(-1, ic.size) if A.ndim < 2 else A
    L = np.asarray(inv["L"], dtype=float)
    nd = int(np.asarray(inv["Nd"]).ravel()[0])
    verts = np.arange(nd) if vertices is None else np.asarray(vertices, dtype=int).ravel()
    if verts.size and (verts.min() < 0 or verts.max() >= nd):
        raise LamegValueError(f"vertices must be in 0..{nd - 1}")
    y = np.asarray(D.data[ic], dtype=float)  # (Nc, n_samples, n_trials)
    time_s = np.asarray(D.time, dtype=float)
    if str(inv.get("M_win_storage", "")) == "lameg_factored_v1":
        icy = np.asarray(inv["M_win_iCy"], dtype=float)
        if icy.ndim == 2:
            icy = icy[None]
        wois = np.atleast_2d(np.asarray(inv["woi"], dtype=float))
        out = np.zeros((verts.size, y.shape[1], y.shape[2]))
        count = np.zeros(y.shape[1])
        lt = L.T
        for w in range(len(wois)):
            it = woi_samples(wois[w], time_s, D.fsample)
            q = _window_q(inv, w, nd).tocsr()[verts]
            mu = np.asarray(q @ (lt @ icy[w])) @ A
            out[:, it, :] += np.einsum("vc,ctk->vtk", mu, y[:, it, :])
            count[it] += 1
        out[:, count > 0] /= count[count > 0][None, :, None]
        res = out[:, :, 0] if out.shape[2] == 1 else out
        return res, 1000.0 * time_s, None
    if mu_matrix is not None:
        mu = np.asarray(mu_matrix, dtype=float)[verts]
    else:
        M = np.asarray(inv["M"], dtype=float)
        mu = M[verts] @ A
    if mu.shape[1] != ic.size:
        raise LamegValueError(f"mu_matrix has {mu.shape[1]} channels, the inversion {ic.size}")
    it = np.asarray(inv["It"], dtype=float).ravel().astype(int) - 1
    S = np.asarray(inv["T"], dtype=float).reshape(it.size, -1)
    tt = S @ S.T
    src = np.einsum("vc,ctk->vtk", mu, np.einsum("cbk,bt->ctk", y[:, it, :], tt))
    res = src[:, :, 0] if src.shape[2] == 1 else src
    return res, 1000.0 * time_s[it], mu
