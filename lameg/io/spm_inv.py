"""SPM's stored head models and inversions (``D.other.inv{k}``): the one reader and writer.

Modelled on MNE-Python's ``Forward``/``InverseOperator``:

* :class:`HeadModel` is ``D.other.inv{k}`` minus its inverse: the cortical mesh in MRI mm with
  0-based faces, source orientations, the co-registration transforms, the sensors, the volume
  conductor and -- through :meth:`HeadModel.gain` -- the lead field. :meth:`HeadModel.gain` is the
  only place that knows where the gain file is, which rows belong to which channel and how
  ``forward.scale`` (SPM's conditioning factor, ``spm_cond_units``) is undone, so simulations,
  inversions, SAM and the lead-field predictors all see the same lead field, in data units per
  nA m.
* :class:`StoredInverse` is ``D.other.inv{k}.inverse`` exactly as SPM lays it out (``M`` dense or
  MATLAB-sparse, ``U``, ``Ic``, ``It``, ``T``, ...) plus lameg's factored sliding-window storage;
  :func:`apply_inverse` projects sensor data through it.
* :func:`write_head_model` and :func:`write_inverse` update a dataset as one transaction: under a
  per-dataset lock, the gain file is written first under a content-addressed name, the header --
  which records the gain file's name, size and hash -- is renamed into place last (the commit
  point), then files no longer referenced and debris of interrupted writes are removed. A reader
  verifies the gain it loads against the header.

Indices are 0-based in Python (``inversion_idx``, faces, channels, samples) and 1-based in the
file, converted here and nowhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import numpy as np
import scipy.sparse as sp

from .._utils import digest_file, logger
from ..exceptions import (
    InversionNotFoundError,
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)

__all__ = [
    "HeadModel",
    "StoredInverse",
    "read_head_model",
    "write_head_model",
    "head_model_writer",
    "read_inverse",
    "write_inverse",
    "apply_inverse",
    "n_inversions",
    "dataset_lock",
    "gain_file_name",
    "adopt_gain_files",
]

#: How long a writer waits for another process holding the dataset lock (s).
LOCK_TIMEOUT_S = float(os.environ.get("LAMEG_LOCK_TIMEOUT", "600"))
_GAIN_RE = re.compile(r"^SPMgainmatrix_(?P<base>.+)_(?P<val>\d+)(?:_(?P<hash>[0-9a-f]{12}))?\.mat$")


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _first(x):
    """MATLAB struct arrays of length 1 come back as lists: take the element."""
    if isinstance(x, (list, tuple)):
        return x[0] if x else {}
    return x


def _str(x) -> str:
    x = _first(x)
    if isinstance(x, np.ndarray):
        x = x.tolist()
        x = x[0] if isinstance(x, list) and x else x
    return x if isinstance(x, str) else ""


def _float(x, default: float) -> float:
    try:
        a = np.asarray(x, dtype=float).ravel()
    except (TypeError, ValueError):
        return default
    return float(a[0]) if a.size == 1 and np.isfinite(a[0]) else default


def _faces0(face) -> np.ndarray:
    """MATLAB 1-based faces -> 0-based int64 (SPM always stores them 1-based)."""
    f = np.asarray(face, dtype=np.int64).reshape(-1, 3)
    return f - 1 if f.size else f


def _labels(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return [_str(v) if not isinstance(v, str) else v for v in np.ravel(np.asarray(x, dtype=object))]


def _load(dataset, lazy_inverse: bool = False):
    from .spm_meeg import MEEG, load_meeg

    if isinstance(dataset, MEEG):
        return dataset
    path = Path(dataset)
    if not path.is_file():
        raise LamegFileNotFoundError(f"MEG dataset not found: {path}")
    return load_meeg(path, lazy_inverse=lazy_inverse)


def _entry(meeg, inversion_idx: int) -> dict:
    invs = meeg.inv
    if not 0 <= inversion_idx < len(invs) or not invs[inversion_idx]:
        raise InversionNotFoundError(
            f"{meeg.fname.name} has no head model (forward model) / inversion with inversion_idx="
            f"{inversion_idx} (it has {len(invs)}); run lameg.invert.coregister(..., "
            f"inversion_idx={inversion_idx}) first")
    return dict(invs[inversion_idx])


def gain_file_name(meeg, inversion_idx: int, digest: str | None = None) -> str:
    """SPM's gain-file name ``SPMgainmatrix_<base>_<val>[_<hash>].mat``.

    Parameters
    ----------
    meeg : lameg.io.spm_meeg.MEEG
        The dataset.
    inversion_idx : int
        0-based head-model index (the file carries SPM's 1-based ``val``).
    digest : str or None
        Content hash; its first 12 characters make the name content-addressed.

    Returns
    -------
    str
    """
    tail = f"_{digest.split(':')[-1][:12]}" if digest else ""
    return f"SPMgainmatrix_{meeg.fname.stem}_{inversion_idx + 1}{tail}.mat"


# ---------------------------------------------------------------------------------------------
# HeadModel
# ---------------------------------------------------------------------------------------------

# verified gain files of this process: (path, size, mtime, inode) -> digest
_VERIFIED: dict[tuple, str] = {}


@dataclass(eq=False)
class HeadModel:
    """A stored forward model, ``D.other.inv{index + 1}`` without its inverse.

    Create with :func:`read_head_model`.

    Parameters
    ----------
    dataset : Path
        The dataset header (``.mat``).
    index : int
        0-based position in ``D.other.inv``.
    entry : dict
        The raw SPM struct (read-only use).
    """

    dataset: Path
    index: int
    entry: dict

    # -- geometry ---------------------------------------------------------------------------

    @property
    def forward(self) -> dict:
        """``D.other.inv{k}.forward`` (the first modality)."""
        fwd = _first(self.entry.get("forward"))
        return fwd if isinstance(fwd, Mapping) else {}

    @property
    def mesh(self) -> dict:
        """``D.other.inv{k}.mesh``."""
        m = self.entry.get("mesh")
        return m if isinstance(m, Mapping) else {}

    @property
    def vertices_mm(self) -> np.ndarray:
        """Source positions, ``mesh.tess_mni.vert``, shape (n_sources, 3), mm.

        MRI (scanner RAS) space for head models made by lameg and by SPM's custom-mesh route;
        SPM's template-warped cortex otherwise (see :attr:`is_mri_space`).
        """
        mni = self.mesh.get("tess_mni")
        if not isinstance(mni, Mapping) or "vert" not in mni:
            raise InversionNotFoundError(
                f"{self.dataset.name}: D.other.inv{{{self.index + 1}}} has no mesh.tess_mni; "
                "run lameg.invert.coregister first")
        return np.asarray(mni["vert"], dtype=float).reshape(-1, 3)

    @property
    def faces(self) -> np.ndarray:
        """Triangles of the source mesh, 0-based, shape (n_faces, 3)."""
        mni = self.mesh.get("tess_mni") or {}
        if "face" in mni:
            return _faces0(mni["face"])
        fmesh = self.forward.get("mesh") or {}
        return _faces0(fmesh.get("face", np.zeros((0, 3))))

    @property
    def n_sources(self) -> int:
        """Number of sources (gain columns)."""
        return len(self.vertices_mm)

    @property
    def is_mri_space(self) -> bool:
        """True when ``tess_mni`` holds the cortex in the participant's MRI space (no warp)."""
        affine = np.asarray(self.mesh.get("Affine", np.eye(4)), dtype=float)
        template = _float(self.mesh.get("template", 0.0), 0.0)
        return affine.shape == (4, 4) and np.allclose(affine, np.eye(4)) and template == 0.0

    def cortex_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """The source mesh in the participant's MRI space, mm, with 0-based faces.

        For lameg's head models (and SPM's custom-mesh route) this is ``tess_mni``; for SPM's
        template route the native mesh ``tess_ctx`` is read when it is present beside the dataset
        (or at its stored path) with the same number of vertices.

        Returns
        -------
        vertices : ndarray, shape (n_sources, 3)
        faces : ndarray, shape (n_faces, 3)
        """
        v, f = self.vertices_mm, self.faces
        if self.is_mri_space:
            return v, f
        ctx = _str(self.mesh.get("tess_ctx"))
        if ctx:
            p = Path(ctx.replace("\\", "/"))
            for cand in dict.fromkeys([self.dataset.parent / p.name,
                                       p if p.is_absolute() else self.dataset.parent / p]):
                if cand.is_file():
                    from .gifti import read_surf_gifti

                    cv, cf, _ = read_surf_gifti(cand)
                    if cv.shape == v.shape:
                        return cv, cf
        logger.warning("%s: native cortical mesh (tess_ctx) not readable; using tess_mni",
                       self.dataset.name)
        return v, f

    @property
    def cortex_file(self) -> str:
        """The cortical mesh file recorded by co-registration (``mesh.tess_ctx``; '' if none)."""
        return _str(self.mesh.get("tess_ctx"))

    @property
    def mri_to_head(self) -> np.ndarray:
        """MRI mm -> MEG head frame **m** (``forward.fromMNI``), shape (4, 4)."""
        m = self.forward.get("fromMNI")
        if m is None:
            reg = _first(self.entry.get("datareg")) or {}
            mm = np.asarray(reg.get("fromMNI", np.eye(4)), dtype=float)
            return np.diag([1e-3, 1e-3, 1e-3, 1.0]) @ mm
        return np.asarray(m, dtype=float).reshape(4, 4)

    @property
    def mri_to_head_mm(self) -> np.ndarray:
        """MRI mm -> MEG head frame mm (``datareg.fromMNI``), shape (4, 4)."""
        return np.diag([1e3, 1e3, 1e3, 1.0]) @ self.mri_to_head

    @property
    def cortex_head_m(self) -> np.ndarray:
        """Source positions in the MEG head frame, m, shape (n_sources, 3)."""
        mesh = self.forward.get("mesh")
        if isinstance(mesh, Mapping) and "vert" in mesh:
            s = 1.0 if _float(self.forward.get("siunits", 1.0), 1.0) else 1e-3
            return np.asarray(mesh["vert"], dtype=float).reshape(-1, 3) * s
        from ..forward.coreg import apply_transform

        return apply_transform(self.vertices_mm, self.mri_to_head)

    def _rotation(self) -> np.ndarray:
        rot = self.mri_to_head[:3, :3]
        return rot / np.cbrt(np.linalg.det(rot))

    @property
    def orientations_head(self) -> np.ndarray:
        """Unit source orientations the gain was computed with, head frame, (n_sources, 3)."""
        from ..forward.normals import normalize_rows, spm_mesh_normals

        ori = self.forward.get("orientations")
        v = self.cortex_head_m
        if ori is not None and np.size(ori) == v.size:
            return normalize_rows(np.asarray(ori, dtype=float).reshape(-1, 3))
        return spm_mesh_normals(v, self.faces)  # SPM: the gain is along its vertex normals

    @property
    def orientations_mri(self) -> np.ndarray:
        """Unit source orientations in the MRI frame, (n_sources, 3)."""
        return self.to_mri_orientations(self.orientations_head)

    def to_mri_orientations(self, orientations_head: np.ndarray) -> np.ndarray:
        """Head-frame orientations -> unit vectors in the MRI frame.

        Parameters
        ----------
        orientations_head : ndarray, shape (n, 3)
            Orientations in the MEG head frame.

        Returns
        -------
        ndarray, shape (n, 3)
        """
        from ..forward.normals import normalize_rows

        return normalize_rows(np.asarray(orientations_head, float) @ self._rotation())

    def to_head(self, positions_mm: np.ndarray, orientations=None):
        """MRI mm positions (and orientations) -> head frame m (and unit vectors).

        Parameters
        ----------
        positions_mm : ndarray, shape (n, 3)
            Positions in MRI mm.
        orientations : ndarray, shape (n, 3), optional
            Orientations in the MRI frame.

        Returns
        -------
        positions_m : ndarray, shape (n, 3)
        orientations : ndarray, shape (n, 3) or None
        """
        from ..forward.coreg import apply_transform
        from ..forward.normals import normalize_rows

        pos = apply_transform(np.asarray(positions_mm, float), self.mri_to_head)
        if orientations is None:
            return pos, None
        return pos, normalize_rows(np.asarray(orientations, float) @ self._rotation().T)

    # -- sensors and conductor ----------------------------------------------------------------

    @property
    def sensors(self) -> dict:
        """FieldTrip ``grad`` struct of the forward model (head frame; ``forward.sensors``)."""
        s = self.forward.get("sensors")
        if not isinstance(s, Mapping):
            reg = _first(self.entry.get("datareg")) or {}
            s = reg.get("sensors")
        if not isinstance(s, Mapping):
            raise LamegFormatError(f"{self.dataset.name}: the head model has no sensors")
        return dict(s)

    @property
    def vol(self) -> dict:
        """The volume conductor struct (``forward.vol``)."""
        vol = _first(self.forward.get("vol"))
        return dict(vol) if isinstance(vol, Mapping) else {}

    @property
    def voltype(self) -> str:
        """SPM's head-model name (``'Single Shell'``, ``'Single Sphere'``, ...)."""
        return _str(self.forward.get("voltype"))

    @property
    def channels(self) -> list[str]:
        """Channels of the forward model (``forward.channels``)."""
        return _labels(self.forward.get("channels"))

    @property
    def scale(self) -> float:
        """SPM's conditioning factor of the stored gain (``forward.scale``; 1 when absent)."""
        s = _float(self.forward.get("scale", 1.0), 1.0)
        return s if s > 0 else 1.0

    # -- gain --------------------------------------------------------------------------------

    @property
    def gain_name(self) -> str:
        """File name of the gain matrix recorded in the header ('' when none)."""
        return _str(self.entry.get("gainmat")) or _str(self.forward.get("gainmat"))

    @property
    def gain_path(self) -> Path:
        """The gain file, beside the dataset.

        Raises
        ------
        LamegFileNotFoundError
            When the header records no gain file or it is missing.
        """
        name = self.gain_name
        folder = self.dataset.parent
        cands = []
        if name:
            base = PureWindowsPath(name).name if "\\" in name else Path(name).name
            cands.append(folder / base)
        else:
            cands.append(folder / f"SPMgainmatrix_{self.dataset.stem}_{self.index + 1}.mat")
        for c in cands:
            if c.is_file():
                return c
        raise LamegFileNotFoundError(
            f"gain matrix of {self.dataset.name} (inversion_idx={self.index}) not found: looked "
            f"for {', '.join(str(c) for c in cands)}; re-run lameg.invert.coregister")

    def _verify_gain(self, path: Path) -> None:
        """Check the gain file against the size and hash recorded by :func:`write_head_model`."""
        want_size = _float(self.entry.get("gainmat_bytes", -1), -1)
        want_hash = _str(self.entry.get("gainmat_hash"))
        if want_size < 0 and not want_hash:
            return  # written by SPM: nothing recorded to check against
        st = path.stat()
        if want_size >= 0 and st.st_size != int(want_size):
            raise LamegDataError(
                f"gain matrix {path.name} has {st.st_size} bytes but {self.dataset.name} records "
                f"{int(want_size)}: the file was damaged or replaced; re-run coregister")
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        want_mtime = _str(self.entry.get("gainmat_mtime_ns"))
        if want_mtime.isdigit() and int(want_mtime) == st.st_mtime_ns:
            return  # untouched since it was written (same size and time stamp): no re-hash
        if want_hash and _VERIFIED.get(key) != want_hash:
            got = digest_file(path, like=want_hash)
            if got != want_hash:
                raise LamegDataError(
                    f"gain matrix {path.name} does not match the checksum recorded in "
                    f"{self.dataset.name}: the file was damaged or replaced; re-run coregister")
            _VERIFIED[key] = got

    def gain(self, channels: Sequence[str] | None = None,
             columns: np.ndarray | None = None, copy: bool = True) -> np.ndarray:
        """The lead field, in data units per nA m (``forward.scale`` undone).

        Parameters
        ----------
        channels : sequence of str or None
            Row order (default: the file's).
        columns : ndarray of int or None
            0-based sources to keep (default all).
        copy : bool
            False allows a read-only memory map of the gain file to be returned when no
            reordering or rescaling is needed (no copy of a gain that can be gigabytes).

        Returns
        -------
        ndarray, shape (n_channels, n_columns)
        """
        from .spm_gainmat import read_gain_columns, read_gain_labels
        from .spm_meeg import read_gainmat

        path = self.gain_path
        self._verify_gain(path)
        cols = None if columns is None else np.asarray(columns, dtype=np.int64).ravel()
        if cols is not None and cols.size and (cols.min() < 0 or cols.max() >= self.n_sources):
            raise LamegValueError(f"gain columns must be 0-based sources in 0..{self.n_sources - 1}")
        part = read_gain_columns(path, cols, copy=copy)
        if part is not None:  # mapped: only the needed columns are copied out of the file
            G, n_total = part
            labels = read_gain_labels(path)
        else:
            G, labels = read_gainmat(path)
            n_total = G.shape[1]
            G = G if cols is None else G[:, cols]
        if n_total != self.n_sources:
            raise LamegDataError(
                f"gain matrix {path.name} has {n_total} sources but the head model's mesh "
                f"{self.n_sources}; re-run coregister")
        if len(labels) != G.shape[0]:
            raise LamegFormatError(f"{path.name}: {G.shape[0]} gain rows for {len(labels)} labels")
        if channels is not None:
            pos = {lab: i for i, lab in enumerate(labels)}
            missing = [c for c in channels if c not in pos]
            if missing:
                raise LamegFormatError(
                    f"gain matrix {path.name} lacks channels {missing[:5]}; re-run coregister")
            rows = np.fromiter((pos[c] for c in channels), dtype=np.int64, count=len(channels))
            if not np.array_equal(rows, np.arange(len(labels))):
                G = G[rows]
        s = self.scale
        if s != 1.0:  # in place on the fresh copy read above (saves a gain-sized temporary)
            G = np.divide(G, s, out=G) if G.flags.writeable and G.dtype == np.float64 else G / s
        return G

    def gain_labels(self) -> list[str]:
        """Channel labels of the stored gain's rows.

        Returns
        -------
        list of str
        """
        from .spm_gainmat import read_gain_labels

        return read_gain_labels(self.gain_path)

    @property
    def has_inverse(self) -> bool:
        """True when an inversion is stored with this head model."""
        inv = self.entry.get("inverse")
        return isinstance(_first(inv), Mapping) and bool(_first(inv))

    def __repr__(self) -> str:
        return (f"<HeadModel {self.dataset.name}[{self.index}] {self.voltype or '?'}, "
                f"{self.n_sources} sources, {len(self.channels)} channels>")


def n_inversions(dataset) -> int:
    """Number of entries of ``D.other.inv``.

    Parameters
    ----------
    dataset : path-like or MEEG
        The dataset.

    Returns
    -------
    int
    """
    return len(_load(dataset, lazy_inverse=True).inv)


def read_head_model(dataset, inversion_idx: int | None = 0) -> HeadModel:
    """Read the head model ``D.other.inv{inversion_idx + 1}`` of a dataset.

    Parameters
    ----------
    dataset : path-like or lameg.io.spm_meeg.MEEG
        The dataset header.
    inversion_idx : int or None
        0-based index; None means SPM's current one (``D.other.val``).

    Returns
    -------
    HeadModel

    Raises
    ------
    InversionNotFoundError
        (a ``KeyError`` and ``ValueError``) when there is no head model at that index.
    """
    from .._validate import check_int

    meeg = _load(dataset, lazy_inverse=True)  # inversion arrays mapped, not read
    if inversion_idx is None:
        val = meeg.val
        n = len(meeg.inv)
        inversion_idx = val - 1 if val is not None and 1 <= val <= n else 0
    k = check_int(inversion_idx, "inversion_idx", min_value=0)
    entry = _entry(meeg, k)
    fwd = _first(entry.get("forward"))
    if not isinstance(fwd, Mapping) or not fwd or "mesh" not in entry:
        raise InversionNotFoundError(
            f"D.other.inv{{{k + 1}}} of {meeg.fname.name} has no forward model; run "
            "lameg.invert.coregister first")
    return HeadModel(meeg.fname, k, entry)


# ---------------------------------------------------------------------------------------------
# StoredInverse
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class StoredInverse:
    """An inversion, ``D.other.inv{index + 1}.inverse``, as SPM stores it.

    Create with :func:`read_inverse`. 1-based MATLAB indices are returned 0-based.

    Parameters
    ----------
    dataset : Path
        The dataset header it was read from.
    index : int
        0-based position in ``D.other.inv``.
    fields : dict
        The raw ``inverse`` struct.
    """

    dataset: Path
    index: int
    fields: dict

    def _get(self, name: str):
        if name not in self.fields:
            raise LamegFormatError(f"{self.dataset.name}: inverse.{name} is missing")
        return self.fields[name]

    @property
    def method(self) -> str:
        """Prior type (``inverse.type``: ``'EBB'``, ``'MSP'``, ...)."""
        return _str(self.fields.get("type"))

    @property
    def n_sources(self) -> int:
        """``inverse.Nd``."""
        return int(_float(self._get("Nd"), 0))

    @property
    def channels(self) -> np.ndarray:
        """0-based channel indices of the inversion (``inverse.Ic``)."""
        return np.asarray(_first(self._get("Ic")), dtype=float).ravel().astype(np.int64) - 1

    @property
    def samples(self) -> np.ndarray:
        """0-based samples of the (first) window (``inverse.It``)."""
        return np.asarray(self._get("It"), dtype=float).ravel().astype(np.int64) - 1

    @property
    def spatial_projector(self) -> np.ndarray:
        """``A`` (``inverse.U{1}``), shape (n_modes, n_channels)."""
        a = _first(self._get("U"))
        a = a.toarray() if sp.issparse(a) else np.asarray(a, dtype=float)
        return a.reshape(-1, self.channels.size) if a.ndim < 2 else a

    @property
    def temporal_basis(self) -> np.ndarray:
        """``S`` (``inverse.T``), shape (n_samples, n_temporal_modes)."""
        return np.asarray(self._get("T"), dtype=float).reshape(self.samples.size, -1)

    @property
    def M(self):
        """MAP projector ``inverse.M`` (sources x modes), dense or sparse as stored."""
        m = self._get("M")
        return m if sp.issparse(m) else np.asarray(m, dtype=float)

    @property
    def woi(self) -> np.ndarray:
        """Window(s) inverted, ms, shape (n_windows, 2)."""
        return np.atleast_2d(np.asarray(self._get("woi"), dtype=float))

    @property
    def free_energy(self) -> np.ndarray:
        """``inverse.F`` (one per window)."""
        return np.atleast_1d(np.asarray(self._get("F"), dtype=float)).ravel()

    @property
    def is_windowed(self) -> bool:
        """True for lameg's factored sliding-window storage (one operator per window)."""
        return _str(self.fields.get("M_win_storage")) == "lameg_factored_v1"

    def _window_q(self, w: int):
        nd = self.n_sources
        f = self.fields
        if "M_win_qdiag" in f:
            qd = np.asarray(f["M_win_qdiag"], dtype=float).reshape(nd, -1)
            return sp.diags(qd[:, w])
        ptr = np.asarray(f["M_win_q_ptr"], dtype=float).astype(np.int64).ravel()
        sl = slice(ptr[w], ptr[w + 1])
        r = np.asarray(f["M_win_q_row"]).ravel()[sl].astype(np.int64) - 1
        c = np.asarray(f["M_win_q_col"]).ravel()[sl].astype(np.int64) - 1
        v = np.asarray(f["M_win_q_val"], dtype=float).ravel()[sl]
        return sp.csr_matrix((v, (r, c)), shape=(nd, nd))

    @property
    def n_windows(self) -> int:
        """Number of windows (1 for a single-window inversion)."""
        if not self.is_windowed:
            return 1
        icy = np.asarray(self.fields["M_win_iCy"])
        return 1 if icy.ndim == 2 else int(icy.shape[0])

    def window_M(self, window: int, vertices: np.ndarray | None = None) -> np.ndarray:
        """MAP projector of one window (sources x modes), SPM's ``M`` of that window.

        Parameters
        ----------
        window : int
            0-based window.
        vertices : ndarray of int or None
            0-based sources (rows) to return (default all).

        Returns
        -------
        ndarray, shape (n_vertices, n_modes)
        """
        if not self.is_windowed:
            if window != 0:
                raise LamegValueError(f"{self.dataset.name}: a single-window inversion has no "
                                      f"window {window}")
            M = self.M
            M = M if vertices is None else M[np.asarray(vertices, dtype=np.int64)]
            return M.toarray() if sp.issparse(M) else np.asarray(M)
        if not 0 <= window < self.n_windows:
            raise LamegValueError(f"window {window} outside 0..{self.n_windows - 1}")
        icy = np.asarray(self.fields["M_win_iCy"], dtype=float)
        icy = icy[None] if icy.ndim == 2 else icy
        L = np.asarray(self._get("L"), dtype=float)
        q = self._window_q(window).tocsr()
        if vertices is not None:
            q = q[np.asarray(vertices, dtype=np.int64)]
        return np.asarray(q @ (L.T @ icy[window]))

    def operator(self, vertices: np.ndarray | None = None, window: int = 0) -> np.ndarray:
        """The source operator ``M A`` (sources x channels) of one window.

        Parameters
        ----------
        vertices : ndarray of int or None
            0-based sources (rows) to return (default all).
        window : int
            0-based window (factored sliding-window storage only).

        Returns
        -------
        ndarray, shape (n_vertices, n_channels)
        """
        A = self.spatial_projector
        if self.is_windowed:
            return self.window_M(window, vertices) @ A
        M = self.M
        if vertices is not None:
            M = M[np.asarray(vertices, dtype=np.int64)]
        out = M @ A
        return out.toarray() if sp.issparse(out) else np.asarray(out)

    def __repr__(self) -> str:
        return (f"<StoredInverse {self.dataset.name}[{self.index}] {self.method}, "
                f"{self.n_sources} sources, {self.channels.size} channels, "
                f"{len(self.woi)} window(s)>")


def read_inverse(dataset, inversion_idx: int = 0) -> StoredInverse:
    """Read the inversion ``D.other.inv{inversion_idx + 1}.inverse`` of a dataset.

    Parameters
    ----------
    dataset : path-like or lameg.io.spm_meeg.MEEG
        The dataset header.
    inversion_idx : int
        0-based index.

    Returns
    -------
    StoredInverse

    Raises
    ------
    InversionNotFoundError
        When there is no inversion at that index.
    """
    from .._validate import check_int

    meeg = _load(dataset)
    k = check_int(inversion_idx, "inversion_idx", min_value=0)
    entry = _entry(meeg, k)
    inv = _first(entry.get("inverse"))
    if not isinstance(inv, Mapping) or not inv:
        raise InversionNotFoundError(
            f"{meeg.fname.name} has no inversion at inversion_idx={k}; run an inversion "
            "(e.g. lameg.invert.invert_ebb) first")
    return StoredInverse(meeg.fname, k, dict(inv))


def apply_inverse(inverse: StoredInverse, data: np.ndarray, time_s: np.ndarray,
                  fsample: float, vertices: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Project sensor data through a stored inversion.

    One window: ``J = (M A) Y (S S')`` on the inversion's channels and samples (no Hanning
    weighting), as laMEG. Several windows: each window's operator is applied to the samples of
    that window and overlapping windows are averaged sample-wise; samples outside every window
    are 0.

    Parameters
    ----------
    inverse : StoredInverse
        The inversion.
    data : ndarray, shape (n_channels_total, n_samples, n_trials)
        Sensor data of the whole dataset (all channels; rows picked by ``inverse.channels``).
    time_s : ndarray, shape (n_samples,)
        Time axis, s.
    fsample : float
        Sampling rate, Hz.
    vertices : ndarray of int or None
        0-based sources to return (default all).

    Returns
    -------
    source : ndarray, shape (n_vertices, n_times, n_trials)
        Source time series (source units of the gain: nA m).
    time_ms : ndarray, shape (n_times,)
        Their time axis, ms.
    """
    from ..inverse.modes import woi_samples

    nd = inverse.n_sources
    verts = np.arange(nd) if vertices is None else np.asarray(vertices, dtype=np.int64).ravel()
    if verts.size and (verts.min() < 0 or verts.max() >= nd):
        raise LamegValueError(f"vertices must be 0-based sources in 0..{nd - 1}")
    ic = inverse.channels
    if ic.size and ic.max() >= data.shape[0]:
        raise LamegFormatError("the inversion's channels do not exist in this dataset")
    y = np.asarray(data[ic], dtype=float)
    if inverse.is_windowed:
        wois = inverse.woi
        out = np.zeros((verts.size, y.shape[1], y.shape[2]))
        count = np.zeros(y.shape[1])
        for w in range(len(wois)):
            it = woi_samples(wois[w], time_s, fsample)
            mu = inverse.operator(verts, window=w)
            out[:, it, :] += np.einsum("vc,ctk->vtk", mu, y[:, it, :])
            count[it] += 1
        out[:, count > 0] /= count[count > 0][None, :, None]
        return out, 1000.0 * np.asarray(time_s, dtype=float)
    it = inverse.samples
    S = inverse.temporal_basis
    mu = inverse.operator(verts)
    yt = np.einsum("cbk,bt->ctk", y[:, it, :], S @ S.T)
    src = np.einsum("vc,ctk->vtk", mu, yt)
    return src, 1000.0 * np.asarray(time_s, dtype=float)[it]


# The writers (transactions under the dataset lock) live beside, in spm_inv_write.
from .spm_inv_write import (  # noqa: E402  (re-exported)
    adopt_gain_files,
    dataset_lock,
    head_model_writer,
    write_head_model,
    write_inverse,
)
