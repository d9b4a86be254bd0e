"""SPM's gain-matrix files (``SPMgainmatrix_<base>_<k>.mat``: ``G`` channels x sources, ``label``).

Which gain file belongs to which head model, and how ``forward.scale`` is undone, is decided by
:mod:`lameg.io.spm_inv`; this module only reads and writes the file format.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._utils import logger
from ..exceptions import LamegDataError, LamegFileNotFoundError, LamegFormatError, LamegValueError
from .mat5map import locate_double_matrix
from .matfile import MatCell, load_mat, save_mat

__all__ = ["read_gainmat", "read_gain_columns", "read_gain_labels", "write_gainmat",
           "GainFileMap"]


def _as_list(x) -> list:
    from .spm_meeg import _as_list as as_list

    return as_list(x)


def _as_str(x) -> str:
    from .spm_meeg import _as_str as as_str

    return as_str(x)


_V7_LIMIT = 2 ** 31 - 1024


def _check_finite(G: np.ndarray) -> None:
    # a finite sum proves every value finite without a gain-sized temporary
    if not np.isfinite(G.sum()) and not np.all(np.isfinite(G)):
        raise LamegDataError("G contains NaN or Inf values")


def read_gain_columns(fname: str | os.PathLike, columns: np.ndarray | None = None,
                      copy: bool = True) -> tuple[np.ndarray, int] | None:
    """Read some columns of a gain file without loading it whole, when its layout allows.

    Uncompressed MAT-5 files (what lameg writes) are memory-mapped (MATLAB stores matrices
    column-major, so a source's column is contiguous); MAT v7.3 files are sliced in HDF5.

    Parameters
    ----------
    fname : str or path-like
        The gain-matrix file.
    columns : ndarray of int, shape (n,), optional
        0-based sources; default all (one contiguous copy out of the mapped file).
    copy : bool
        With ``columns=None`` and a mappable file, False returns the read-only memory map
        itself (no copy: pages are read when used; the file is replaced, never rewritten in
        place, by lameg, so the map stays valid).

    Returns
    -------
    (columns, n_sources) or None
        The columns, ndarray of shape (n_channels, n) in column-major order, and the file's
        number of sources; None for a compressed (or otherwise unmappable) MAT-5 file.
    """
    path = Path(fname)
    if columns is not None:
        columns = np.asarray(columns, dtype=np.int64).ravel()
    from .matfile import mat_version

    if mat_version(path) == "7.3":
        import h5py

        with h5py.File(path, "r") as f:
            ds = f["G"]  # HDF5 holds the transpose: (n_sources, n_channels)
            if columns is None:
                return np.asarray(ds[...], dtype=np.float64).T, int(ds.shape[0])
            if columns.size and (columns.min() < 0 or columns.max() >= ds.shape[0]):
                raise LamegValueError(f"gain columns must be in 0..{ds.shape[0] - 1}")
            uniq, inv = np.unique(columns, return_inverse=True)
            return np.asarray(ds[uniq, :], dtype=np.float64)[inv].T, int(ds.shape[0])
    found = locate_double_matrix(path, "G")
    if found is None or len(found[1]) != 2:
        return None
    offset, shape = found
    mm = np.memmap(path, dtype="<f8", mode="r", offset=offset, shape=shape, order="F")
    if columns is None:
        return (np.array(mm, order="F") if copy else mm), shape[1]
    if columns.size and (columns.min() < 0 or columns.max() >= shape[1]):
        raise LamegValueError(f"gain columns must be in 0..{shape[1] - 1}")
    out = np.empty((shape[0], columns.size), order="F")  # as the file: contiguous copies
    # runs of consecutive columns are contiguous in the file: copy them as slices
    breaks = np.flatnonzero(np.diff(columns) != 1) + 1
    start = 0
    for stop in (*breaks.tolist(), columns.size):
        c0 = int(columns[start])
        out[:, start:stop] = mm[:, c0:c0 + (stop - start)]
        start = stop
    return out, shape[1]


def read_gain_labels(fname: str | os.PathLike) -> list[str]:
    """Channel labels of a gain file (its rows), without reading ``G``.

    Parameters
    ----------
    fname : str or path-like
        The gain-matrix file.

    Returns
    -------
    list of str
    """
    m = load_mat(Path(fname), variables=["label"])
    return [_as_str(v) for v in _as_list(m["label"])]


def read_gainmat(fname: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read SPM's ``SPMgainmatrix_<base>_<k>.mat``.

    Parameters
    ----------
    fname : str or path-like
        The gain-matrix file.

    Returns
    -------
    G : numpy.ndarray, shape (n_channels, n_sources), float64
        Lead field (fT per nA m for SPM files).
    labels : list of str
        Channel labels, the row order of ``G``.

    Raises
    ------
    LamegFileNotFoundError, LamegFormatError
    """
    path = Path(fname)
    if not path.is_file():
        raise LamegFileNotFoundError(f"gain matrix file not found: {path}")
    try:
        m = load_mat(path, variables=["G", "label"])
    except LamegFormatError as err:
        if "has no variable" in str(err):
            raise LamegFormatError(
                f"{path} is not an SPM gain-matrix file (it needs variables 'G' and 'label')"
            ) from err
        raise
    G = m["G"]
    if hasattr(G, "toarray"):
        G = G.toarray()
    G = np.asarray(G)
    if G.dtype.kind not in "biuf":
        raise LamegFormatError(f"{path}: G is not a real numeric matrix")
    labels = [_as_str(v) for v in _as_list(m["label"])]
    if not all(isinstance(v, str) for v in labels):
        raise LamegFormatError(f"{path}: 'label' is not a list of channel names")
    G = np.asarray(G, dtype=np.float64)
    if G.ndim == 1:
        G = G.reshape(len(labels), -1) if labels and G.size % max(len(labels), 1) == 0 \
            else G.reshape(1, -1)
    if G.ndim != 2:
        raise LamegFormatError(f"{path}: G has {G.ndim} dimensions; expected a matrix")
    if G.shape[0] != len(labels):
        if G.shape[1] == len(labels) and G.shape[0] != G.shape[1]:
            logger.warning("%s: G is stored sources x channels; transposing", path)
            G = G.T
        else:
            raise LamegFormatError(
                f"{path}: G has {G.shape[0]} rows but there are {len(labels)} channel labels"
            )
    return G, labels


def write_gainmat(fname: str | os.PathLike, G: np.ndarray, labels: Sequence[str],
                  version: str | None = None) -> Path:
    """Write an SPM gain-matrix file (``G``, ``label``), atomically.

    Parameters
    ----------
    fname : str or path-like
        Output file (replaced atomically if it exists).
    G : array, shape (n_channels, n_sources)
        Lead field (fT per nA m).
    labels : sequence of str
        Channel labels (rows of ``G``); saved as a column cell array.
    version : {'7', '7.3'}, optional
        Default ``'7'``, or ``'7.3'`` when ``G`` exceeds 2 GB (the MAT-5 limit).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    G = np.asarray(G, dtype=np.float64)
    labels = [str(v) for v in labels]
    if G.ndim != 2 or G.shape[0] != len(labels):
        raise LamegValueError(
            f"G must be (n_channels, n_sources) with one row per label; got {G.shape} and "
            f"{len(labels)} labels"
        )
    _check_finite(G)
    if version is None:
        version = "7.3" if G.nbytes > _V7_LIMIT else "7"
    elif str(version) != "7.3" and G.nbytes > _V7_LIMIT:
        raise LamegValueError(f"G is {G.nbytes / 2**30:.1f} GB; MAT v{version} cannot hold more "
                              "than 2 GB per variable: use version='7.3'")
    return save_mat(fname, {"G": G, "label": MatCell.column(labels)}, version=str(version))


class GainFileMap:
    """A gain-matrix file written in place: ``G`` is a writable memory map of its matrix.

    The file (uncompressed MAT-5, what :func:`write_gainmat` writes below 2 GB) is created with
    every byte but the values of ``G``; whatever is written into ``G`` goes straight to the
    file's pages, with no gain-sized array in memory and no copy when it is saved. The caller
    owns the file: it renames it into place once ``G`` is complete, or removes it.

    Parameters
    ----------
    path : path-like
        The file to create (replaced if it exists).
    labels : sequence of str
        Channel labels (rows of ``G``).
    n_sources : int
        Number of columns of ``G``.

    Attributes
    ----------
    G : numpy.memmap, shape (n_channels, n_sources)
        The matrix, column-major (as MATLAB stores it), initially zero.
    """

    def __init__(self, path: str | os.PathLike, labels: Sequence[str], n_sources: int) -> None:
        from scipy.io import savemat

        labels = [str(v) for v in labels]
        shape = (len(labels), int(n_sources))
        nbytes = 8 * shape[0] * shape[1]
        if not nbytes:
            raise LamegValueError(f"a gain needs at least one channel and one source, got shape "
                                  f"{shape}")
        if not self.fits(*shape):
            raise LamegValueError(f"a gain of {nbytes / 2**30:.1f} GB does not fit a MAT-5 file "
                                  "(2 GB per variable); write it with write_gainmat "
                                  "(version '7.3')")
        # file header and the label cell as SciPy writes them; the matrix element by hand:
        # array flags (double), dimensions, the one-letter name and the real part's tag
        cell = np.empty((len(labels), 1), dtype=object)
        cell[:, 0] = [np.array(v) for v in labels]
        buf = io.BytesIO()
        savemat(buf, {"label": cell}, format="5", oned_as="row")
        raw = buf.getvalue()
        name = struct.pack("<I", (1 << 16) | 1) + b"G\0\0\0"
        body = (struct.pack("<4I", 6, 8, 6, 0) + struct.pack("<2I2i", 5, 8, *shape) + name
                + struct.pack("<2I", 9, nbytes))
        head = raw[:128] + struct.pack("<2I", 14, len(body) + nbytes) + body
        self.path = Path(path)
        with open(self.path, "wb") as fh:
            fh.write(head)
            fh.seek(len(head) + nbytes)  # the values: a hole, filled through the map
            fh.write(raw[128:])
        self.G = np.memmap(self.path, dtype="<f8", mode="r+", offset=len(head), shape=shape,
                           order="F")

    @staticmethod
    def fits(n_channels: int, n_sources: int) -> bool:
        """Whether a (n_channels, n_sources) gain fits an uncompressed MAT-5 file.

        Parameters
        ----------
        n_channels, n_sources : int
            Shape of the gain.

        Returns
        -------
        bool
            False beyond MAT-5's 2 GB per variable (MAT v7.3 then).
        """
        return 8 * int(n_channels) * int(n_sources) <= _V7_LIMIT

    def finish(self) -> None:
        """Check that the values are finite.

        The written pages are the file's own (a shared map), so other readers see them at once;
        no ``msync`` is forced (a synchronous write-back of the whole gain), as no other lameg
        file write waits for the disk either.

        Raises
        ------
        LamegDataError
            If ``G`` holds NaN or Inf values.
        """
        _check_finite(self.G)
