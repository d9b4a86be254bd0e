"""FreeSurfer file helpers: surfaces, per-vertex morphometry, annotations and MGH headers.

Thin, validating wrappers around :mod:`nibabel.freesurfer`. Readers raise
:class:`~lameg.exceptions.LamegFileNotFoundError` for missing files and
:class:`~lameg.exceptions.LamegFormatError` for files that cannot be parsed; writers are
atomic (temporary file in the destination folder, then rename).

Coordinate frames: FreeSurfer surfaces are stored in *tkRAS* (tkregister) millimetres. The
scanner-RAS position of a tkRAS point ``p`` is ``N @ inv(T) @ [p, 1]`` with
``N = vox2ras`` and ``T = vox2ras-tkr`` of the subject's ``mri/orig.mgz``
(:func:`tkras_to_scanner`).
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from .._utils import atomic_path
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError

__all__ = [
    "read_surface",
    "write_surface",
    "read_morph",
    "write_morph",
    "read_annot",
    "write_annot",
    "read_mgh_header",
    "tkras_to_scanner",
    "read_xfm",
    "apply_affine",
]

PathLike = str | os.PathLike


def _existing(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"{what} not found: {path}")
    return path


def read_surface(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a FreeSurfer binary surface (``lh.white``, ``rh.pial``, ...).

    Parameters
    ----------
    path : str or path-like
        Surface file.

    Returns
    -------
    vertices : ndarray, shape (n_vertices, 3), float64
        Vertex coordinates in FreeSurfer tkRAS millimetres.
    faces : ndarray, shape (n_faces, 3), int64
        Triangles (0-based vertex indices, FreeSurfer's outward winding).
    """
    path = _existing(path, "FreeSurfer surface")
    try:
        vertices, faces = nib.freesurfer.read_geometry(str(path))
    except Exception as exc:  # nibabel raises ValueError/struct.error on bad files
        raise LamegFormatError(f"cannot read FreeSurfer surface {path}: {exc}") from exc
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def write_surface(path: PathLike, vertices: np.ndarray, faces: np.ndarray,
                  create_stamp: str | None = None) -> None:
    """Write a FreeSurfer binary surface atomically.

    Parameters
    ----------
    path : str or path-like
        Output file.
    vertices : array_like, shape (n_vertices, 3)
        Coordinates in tkRAS millimetres.
    faces : array_like, shape (n_faces, 3)
        0-based triangle indices.
    create_stamp : str, optional
        Header comment line.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise LamegValueError("vertices and faces must both have shape (n, 3)")
    with atomic_path(path) as tmp:
        kwargs = {} if create_stamp is None else {"create_stamp": create_stamp}
        nib.freesurfer.write_geometry(str(tmp), vertices, faces.astype(np.int32), **kwargs)


def read_morph(path: PathLike) -> np.ndarray:
    """Read a per-vertex FreeSurfer morphometry file (``?h.curv``, ``?h.thickness``, ...).

    Parameters
    ----------
    path : str or path-like
        The morphometry file.

    Returns
    -------
    ndarray of float64, shape (n_vertices,)
        One value per surface vertex, in the file's unit (e.g. mm for ``?h.thickness``).
    """
    path = _existing(path, "FreeSurfer morphometry file")
    try:
        return np.asarray(nib.freesurfer.read_morph_data(str(path)), dtype=np.float64)
    except Exception as exc:
        raise LamegFormatError(f"cannot read FreeSurfer morphometry file {path}: {exc}") from exc


def write_morph(path: PathLike, values: np.ndarray) -> None:
    """Write a per-vertex morphometry file (curv format) atomically.

    Parameters
    ----------
    path : str or path-like
        Output file (replaced atomically if it exists).
    values : array-like, shape (n_vertices,)
        One value per surface vertex (stored as float32).
    """
    values = np.asarray(values, dtype=np.float32).ravel()
    with atomic_path(path) as tmp:
        nib.freesurfer.write_morph_data(str(tmp), values)


def read_annot(path: PathLike, n_vertices: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a FreeSurfer annotation (``label/?h.aparc.annot``).

    Parameters
    ----------
    path : str or path-like
        Annotation file.
    n_vertices : int, optional
        Expected number of surface vertices; a mismatch raises
        :class:`~lameg.exceptions.LamegFormatError` (the annotation belongs to another surface).

    Returns
    -------
    labels : ndarray, shape (n_vertices,), int64
        Index into ``names`` per vertex; -1 for vertices without a label.
    ctab : ndarray, shape (n_labels, 5)
        Colour table (RGBT + label value).
    names : list of str
        Label names.
    """
    path = _existing(path, "FreeSurfer annotation")
    try:
        labels, ctab, names = nib.freesurfer.read_annot(str(path))
    except Exception as exc:
        raise LamegFormatError(f"cannot read FreeSurfer annotation {path}: {exc}") from exc
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    labels = np.asarray(labels, dtype=np.int64)
    if n_vertices is not None and labels.shape[0] != n_vertices:
        raise LamegFormatError(
            f"annotation {path} has {labels.shape[0]} vertices but the surface has {n_vertices}; "
            "it belongs to another surface (re-run FreeSurfer's parcellation for this subject)")
    return labels, np.asarray(ctab), names


def write_annot(path: PathLike, labels: np.ndarray, ctab: np.ndarray, names: list[str]) -> None:
    """Write a FreeSurfer annotation atomically.

    Parameters
    ----------
    path : str or path-like
        Output file (replaced atomically if it exists).
    labels : array-like of int, shape (n_vertices,)
        Index into ``names`` per vertex; -1 for vertices without a label.
    ctab : array-like of int, shape (n_labels, 4) or (n_labels, 5)
        Colour table (RGBT, optionally + label value; the label values are recomputed).
    names : list of str
        Label names, one per row of ``ctab``.
    """
    with atomic_path(path) as tmp:
        nib.freesurfer.write_annot(str(tmp), np.asarray(labels, dtype=np.int32),
                                   np.asarray(ctab, dtype=np.int32), list(names),
                                   fill_ctab=True)


def read_mgh_header(path: PathLike) -> dict:
    """Geometry of an MGH/MGZ volume (``mri/orig.mgz``) without loading its voxels.

    Parameters
    ----------
    path : str or path-like
        The MGH/MGZ volume.

    Returns
    -------
    dict
        ``vox2ras`` (4, 4) scanner RAS mm, ``vox2ras_tkr`` (4, 4) tkRAS mm, ``shape`` (3,),
        ``zooms`` (3,) mm, ``c_ras`` (3,) mm.
    """
    path = _existing(path, "MGH/MGZ volume")
    try:
        img = nib.load(str(path))
        hdr = img.header
        vox2ras = np.asarray(hdr.get_vox2ras(), dtype=np.float64)
        tkr = np.asarray(hdr.get_vox2ras_tkr(), dtype=np.float64)
    except Exception as exc:
        raise LamegFormatError(f"cannot read the MGH header of {path}: {exc}") from exc
    shape = np.asarray(img.shape[:3])
    centre = vox2ras @ np.r_[shape / 2.0, 1.0]
    return {"vox2ras": vox2ras, "vox2ras_tkr": tkr, "shape": shape,
            "zooms": np.asarray(hdr.get_zooms()[:3], dtype=np.float64), "c_ras": centre[:3]}


def tkras_to_scanner(mgz_path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine from FreeSurfer tkRAS to scanner RAS for a subject's ``orig.mgz``.

    Parameters
    ----------
    mgz_path : str or path-like
        The subject's ``mri/orig.mgz`` (any MGH/MGZ volume of the subject's space).

    Returns
    -------
    affine : ndarray, shape (4, 4)
        ``N @ inv(T)``.
    t_orig : ndarray, shape (4, 4)
        ``vox2ras-tkr`` (``T``).
    n_orig : ndarray, shape (4, 4)
        ``vox2ras`` (``N``).
    """
    hdr = read_mgh_header(mgz_path)
    t_orig, n_orig = hdr["vox2ras_tkr"], hdr["vox2ras"]
    return n_orig @ np.linalg.inv(t_orig), t_orig, n_orig


def read_xfm(path: PathLike) -> np.ndarray:
    """Read the linear transform of an MNI ``.xfm`` file (e.g. ``mri/transforms/talairach.xfm``).

    The file (MINC transform format) holds ``Transform_Type = Linear;`` and
    ``Linear_Transform =`` followed by the 12 numbers of the first three rows of the affine.
    FreeSurfer's ``talairach.xfm`` maps the scanner RAS of ``orig.mgz`` onto MNI305 RAS, mm.

    Parameters
    ----------
    path : str or path-like
        The ``.xfm`` file.

    Returns
    -------
    ndarray of float64, shape (4, 4)
        The affine (last row ``[0, 0, 0, 1]``).
    """
    path = _existing(path, "MNI transform")
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise LamegFormatError(f"cannot read {path}: {exc}") from exc
    head, sep, tail = text.partition("Linear_Transform")
    if not sep or "MNI Transform File" not in head:
        raise LamegFormatError(f"{path} is not a linear MNI transform file (no 'MNI Transform "
                               "File' header or 'Linear_Transform =' entry)")
    body = tail.partition("=")[2].partition(";")[0]
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        values = np.empty(0)
    if values.size != 12 or not np.all(np.isfinite(values)):
        raise LamegFormatError(f"{path}: Linear_Transform must hold 12 finite numbers (3 rows "
                               f"of 4), found {body.split()[:16]}")
    out = np.eye(4)
    out[:3] = values.reshape(3, 4)
    return out


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to points.

    Parameters
    ----------
    points : array-like, shape (..., 3)
        Points (e.g. tkRAS mm).
    affine : array-like, shape (4, 4)
        Homogeneous transform; only its first three rows are used.

    Returns
    -------
    ndarray of float64, shape of ``points``
        The transformed points (e.g. scanner RAS mm).
    """
    points = np.asarray(points, dtype=np.float64)
    shape = points.shape
    points = points.reshape(-1, 3)
    affine = np.asarray(affine, dtype=np.float64)
    # element-wise rather than a (n, 3) @ (3, 3) product: no BLAS threading for a tiny
    # inner dimension (which is slower, and much slower on a loaded machine)
    out = points[:, 0:1] * affine[:3, 0] + affine[:3, 3]
    out += points[:, 1:2] * affine[:3, 1]
    out += points[:, 2:3] * affine[:3, 2]
    return out.reshape(shape)
