"""Helpers shared by the SPM back end: engine selection, file-only inputs, dataset access."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ..._docs import docdict
from ...exceptions import LamegFileNotFoundError, LamegValueError

# Entries of the SPM back end's docstrings (the public ones are in lameg._docs).
docdict["spm_engine"] = """
spm : lameg.spm.SPMEngine or None
    The engine the façade selected (:func:`lameg.backends.select_backend`); None uses
    ``spm_instance``, else the process-wide Octave engine (``$LAMEG_SPM_DIR``)."""
docdict["spm_instance_direct"] = """
spm_instance : lameg.spm.SPMEngine, oct2py.Oct2Py, spm_standalone instance or None
    For direct calls: the engine when ``spm`` is None (see :func:`lameg.spm.get_engine`)."""
docdict["spm_viz"] = """
viz : bool
    Accepted for laMEG compatibility; no effect: SPM runs in command-line mode, without
    figures."""
docdict["spm_verbose"] = """
verbose : bool
    Accepted for symmetry with the native back end; no effect: SPM's console output goes to
    the ``lameg`` logger at DEBUG level."""
docdict["spm_viz_verbose"] = docdict["spm_viz"] + docdict["spm_verbose"]
docdict["spm_seed"] = """
seed : int, numpy.random.Generator or None
    Seeds the engine's ``rand``/``randn`` (SPM draws the cross-validation channels with
    them); None leaves the engine's generator as it is."""


def _join(*keys: str) -> str:
    return "\n".join(docdict[k].strip("\n") for k in keys)


docdict["spm_inversion_tail"] = _join(
    "inversion_idx", "spm_viz", "return_mu_matrix", "spm_instance_direct", "spm_seed",
    "spm_verbose", "spm_engine")
docdict["surf_set_mesh"] = """
surf_set : lameg.surf.LayerSurfaceSet or None
    The participant's layer surface set; only its layer count is used here (with
    ``layer_name=None`` the source mesh has ``surf_set.n_layers`` layers), the mesh is the
    forward model's. None: a single-layer mesh.""" + docdict["mesh_selection"] + """
    ``stage``, ``orientation`` and ``fixed`` are checked against the forward model by the
    façade; they are not used here."""
docdict["spm_sim_engine"] = """
viz : bool
    Accepted for laMEG compatibility; no effect: SPM simulates without figures.""" + (
    docdict["spm_instance_direct"]) + """
seed : int, numpy.random.Generator or None
    Seeds the engine's ``randn`` (the sensor noise); None leaves the engine's generator as
    it is.
inversion_idx : int or None
    0-based forward model to use (None: ``D.other.val``, as SPM).""" + docdict["spm_engine"]
docdict["spm_sliding_windows"] = """
wois : array-like, shape (n_windows, 2) or None
    Explicit windows, ms (default: windows of ``win_size`` around every sample).
win_size : float
    Window length, ms.
win_overlap : bool
    One window per sample (overlapping) or consecutive windows."""
docdict["spm_sliding_params"] = _join(
    "data_fname", "surf_set_mesh", "patch_size", "n_temp_modes", "n_spatial_modes",
    "spm_sliding_windows", "foi", "hann_windowing", "inversion_idx", "spm_viz",
    "spm_instance_direct", "spm_verbose", "spm_engine")
docdict["spm_sliding_returns"] = """
free_energy : ndarray, shape (n_windows,)
    Free energy of each window (``inverse.crossF`` of the dataset).
wois : ndarray, shape (n_windows, 2)
    The windows, ms."""


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
