"""Source time series from stored inversions (laMEG 0.2.1 ``lameg.source``).

Single window: ``J = (M A) Y (S S')`` on the good channels and the inverted samples, with no
Hanning weighting. Unlike laMEG, inversions restricted to a ``woi`` work: the returned time
axis is the window's. Several windows (sliding-window inversions): each window's operator is
applied to the raw sensor data of its samples and overlapping windows are averaged
sample-wise; samples outside every window are 0.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from ._validate import check_path
from .exceptions import LamegValueError
from .io.spm_inv import apply_inverse, read_inverse

__all__ = ["load_source_time_series", "LaminarSourceData", "add_bigbrain_mapping",
           "export_source_time_series_hdf5", "export_window_operators"]


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

    data_fname = check_path(data_fname, "data_fname")
    inv_path = data_fname if inv_fname is None else check_path(inv_fname, "inv_fname")
    inverse = read_inverse(inv_path, inversion_idx)
    D = load_meeg(data_fname)
    nd = inverse.n_sources
    verts = np.arange(nd) if vertices is None else np.asarray(vertices, dtype=int).ravel()
    if verts.size and (verts.min() < 0 or verts.max() >= nd):
        raise LamegValueError(f"vertices must be in 0..{nd - 1}")
    if inverse.is_windowed:
        src, time_ms = apply_inverse(inverse, D.data, D.time, D.fsample, verts)
        mu = None
    else:
        if mu_matrix is None:
            mu = inverse.operator(verts)
        else:
            mu = (mu_matrix.toarray() if sp.issparse(mu_matrix)
                  else np.asarray(mu_matrix, dtype=float))[verts]
        ic = inverse.channels
        if mu.shape[1] != ic.size:
            raise LamegValueError(f"mu_matrix has {mu.shape[1]} channels, the inversion "
                                  f"{ic.size}")
        it = inverse.samples
        S = inverse.temporal_basis
        y = np.asarray(D.data[ic], dtype=float)[:, it, :]
        src = np.einsum("vc,ctk->vtk", mu, np.einsum("cbk,bt->ctk", y, S @ S.T))
        time_ms = 1000.0 * np.asarray(D.time, dtype=float)[it]
    res = src[:, :, 0] if src.shape[2] == 1 else src
    return res, time_ms, mu


def export_window_operators(data_fname: str | os.PathLike, inversion_idx: int = 0) -> list:
    """Make a sliding-window inversion readable by laMEG 0.2.1's own readers.

    lameg stores the per-window operators of a sliding-window inversion factored; laMEG
    0.2.1 reads ``inverse.M_win_files`` (one MATLAB v7.3 file per window). This writes those
    files next to the dataset and records them in the inversion (lameg's own readers are not
    affected). Each file is as large as a single-window ``M`` (sources x spatial modes x 8
    bytes), so this is a step for handing a dataset to laMEG, not a default. For exchanging
    source time series, :func:`export_source_time_series_hdf5` is the compact format both
    read.

    Parameters
    ----------
    data_fname : str or path-like
        SPM dataset header (``.mat``) holding a sliding-window inversion.
    inversion_idx : int
        0-based index of the inversion (default 0).

    Returns
    -------
    list of pathlib.Path
        The window files, in window order.

    Raises
    ------
    LamegFileNotFoundError
        If the dataset does not exist.
    LamegValueError
        If the inversion is not a sliding-window inversion.
    """
    from ._validate import check_int
    from .io.spm_inv_write import write_window_operator_files

    data_fname = check_path(data_fname, "data_fname", must_exist=True)
    inversion_idx = check_int(inversion_idx, "inversion_idx", min_value=0)
    return write_window_operator_files(data_fname, inversion_idx)


# Laminar source data (HDF5, laMEG 0.2.1 schema): see lameg.source_data and lameg._source_export.
from ._source_export import export_source_time_series_hdf5  # noqa: E402
from .source_data import LaminarSourceData, add_bigbrain_mapping  # noqa: E402
