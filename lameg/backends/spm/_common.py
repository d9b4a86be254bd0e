"""Helpers shared by the SPM back end: engine selection, file-only inputs, dataset access."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ...exceptions import LamegFileNotFoundError, LamegValueError


def engine_from(spm_instance=None):
    """The SPM engine for the public ``spm_instance=`` argument (see :func:`lameg.spm.get_engine`).

    Parameters
    ----------
    spm_instance : lameg.spm.SPMEngine, oct2py.Oct2Py, spm_standalone instance or None
        None: the process-wide Octave engine (``$LAMEG_SPM_DIR``).

    Returns
    -------
    lameg.spm.SPMEngine
    """
    from ...spm import get_engine

    return get_engine(spm_instance)


def engine(spm=None, spm_instance=None):
    """The engine: ``spm`` (from the façade), else ``spm_instance``, else the shared default."""
    from ...spm import get_engine

    return get_engine(spm if spm is not None else spm_instance)


def abspath(p) -> str:
    return str(Path(p).expanduser().resolve())


def as_gifti_file(obj, what: str, folder: Path) -> str:
    """A GIfTI file name for ``obj`` (path, GiftiImage or (vertices, faces[, normals])).

    SPM reads meshes from files only; in-memory meshes are written into ``folder`` as
    ``lameg_spm_<what>.gii``.
    """
    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj).expanduser()
        if not p.is_file():
            raise LamegFileNotFoundError(f"{what}: {p} does not exist")
        return abspath(p)
    if isinstance(obj, nib.gifti.GiftiImage):
        img = obj
    elif isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
        from ...io.gifti import create_surf_gifti  # noqa: PLC0415

        img = create_surf_gifti(np.asarray(obj[0], float), np.asarray(obj[1], int),
                                *(() if len(obj) == 2 else (np.asarray(obj[2], float),)))
    else:
        raise LamegValueError(
            f"{what} must be a GIfTI file name, a nibabel GiftiImage or (vertices, faces), got "
            f"{type(obj).__name__}")
    out = Path(folder) / f"lameg_spm_{what}.gii"
    nib.save(img, str(out))
    return abspath(out)


def without_normals(mesh_file: str, folder: Path) -> str:
    """A copy of ``mesh_file`` without its VECTOR (normals) array, so SPM uses vertex normals."""
    img = nib.load(mesh_file)
    keep = [d for d in img.darrays
            if d.intent != nib.nifti1.intent_codes["NIFTI_INTENT_VECTOR"]]
    if len(keep) == len(img.darrays):
        return mesh_file
    out = Path(folder) / (Path(mesh_file).name.replace(".gii", "") + ".spmnormals.gii")
    nib.save(nib.gifti.GiftiImage(darrays=keep), str(out))
    return abspath(out)


def mat_index(x) -> np.ndarray:
    """0-based -> MATLAB 1-based, as a float row."""
    return np.atleast_1d(np.asarray(x, dtype=float)) + 1.0
