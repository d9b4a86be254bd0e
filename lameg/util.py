"""Utilities: fiducials, sensor data, statistics and file helpers (laMEG ``lameg.util`` API).

The names and signatures follow laMEG 0.2.1. Differences from laMEG, all deliberate:

- :func:`ttest_rel_corrected` returns correct right-tailed p-values for ``tail=1``
  (``t.sf(t, df)``); laMEG returned the left-tailed value for both one-sided tests.
- :func:`load_meg_sensor_data` reads the dataset through :func:`lameg.io.spm_meeg.load_meeg`
  (any SPM M/EEG format, the stored data type and scaling honoured) and keeps SPM's good MEG
  channels (``MEG``, ``MEGMAG``, ``MEGGRAD``, ``MEGPLANAR``; reference channels are excluded).
- :func:`get_fiducial_coords` raises clear errors for a malformed table and warns when the
  subject is absent (it still returns ``None`` then, as laMEG does).
- :func:`coregister_3d_scan_mri` needs no FreeSurfer binary and no ``talairach.xfm`` (template
  fiducials can reach the MRI through fsaverage's surfaces), fits a rigid transform (no MRI
  scale) with an exact, outlier-tolerant surface ICP run to convergence, and reads the STL
  itself (:mod:`lameg.io.stl`).
- :func:`spm_context`, :func:`init_spm_parallel_pool` and :func:`batch` drive real SPM through
  :mod:`lameg.spm` (spm-python's ``spm_standalone`` or GNU Octave with an SPM tree); the native
  engine needs none of them.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ._docs import fill_doc
from .exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegNotImplementedError,
    LamegValueError,
)

__all__ = [
    "spm_context",
    "init_spm_parallel_pool",
    "batch",
    "load_meg_sensor_data",
    "ctf_fif_spm_conversion",
    "check_many",
    "get_files",
    "get_directories",
    "make_directory",
    "ttest_rel_corrected",
    "calc_prop",
    "big_brain_proportional_layer_boundaries",
    "get_fiducial_coords",
    "coregister_3d_scan_mri",
    "check_freesurfer_setup",
]

_NO_SPM_MESSAGE = (
    "lameg runs natively in NumPy/SciPy and needs no SPM: call the lameg functions without "
    "spm_instance. Real SPM needs lameg.spm (spm-python with a MATLAB Runtime, or GNU Octave "
    "with an SPM source tree), which is not available in this installation."
)


# --------------------------------------------------------------------------------------------
# SPM runtime helpers (only meaningful with an SPM backend)
# --------------------------------------------------------------------------------------------


def _spm_backend():
    """Return the optional SPM backend module, or ``None`` when it is not available."""
    if importlib.util.find_spec("lameg.spm") is None:
        return None
    return importlib.import_module("lameg.spm")


@contextlib.contextmanager
def spm_context(spm: Any = None, n_jobs: int = 4) -> Iterator[Any]:
    """Context manager yielding an SPM runtime instance (SPM backend only).

    Parameters
    ----------
    spm : object, optional
        An existing runtime instance; it is yielded unchanged and not terminated on exit.
    n_jobs : int
        Number of parallel workers for a runtime started here.

    Raises
    ------
    LamegNotImplementedError
        If no SPM backend is installed (the native backend needs none).
    """
    backend = _spm_backend()
    if backend is None or not hasattr(backend, "spm_context"):
        raise LamegNotImplementedError("spm_context(): " + _NO_SPM_MESSAGE)
    with backend.spm_context(spm, n_jobs=n_jobs) as instance:
        yield instance


def init_spm_parallel_pool(spm: Any, n_workers: int) -> None:
    """Start a parallel pool in an SPM runtime (SPM backend only).

    Parameters
    ----------
    spm : object
        A running SPM runtime instance (e.g. from :func:`spm_context`).
    n_workers : int
        Number of parallel workers of the pool.

    Raises
    ------
    LamegNotImplementedError
        If no SPM backend is installed (the native backend needs none).
    """
    backend = _spm_backend()
    if backend is None or not hasattr(backend, "init_spm_parallel_pool"):
        raise LamegNotImplementedError("init_spm_parallel_pool(): " + _NO_SPM_MESSAGE)
    backend.init_spm_parallel_pool(spm, n_workers)


def batch(cfg: dict, viz: bool = True, spm_instance: Any = None) -> None:
    """Run an SPM batch job (SPM backend only).

    Parameters
    ----------
    cfg : dict
        One ``matlabbatch`` entry.
    viz : bool
        Show SPM's graphics.
    spm_instance : object, optional
        Runtime instance to reuse.

    Raises
    ------
    LamegNotImplementedError
        If no SPM backend is installed (the native backend needs none).
    """
    backend = _spm_backend()
    if backend is None or not hasattr(backend, "batch"):
        raise LamegNotImplementedError("batch(): " + _NO_SPM_MESSAGE)
    backend.batch(cfg, viz=viz, spm_instance=spm_instance)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def load_meg_sensor_data(data_fname: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list]:
    """Load the good MEG channels of an SPM M/EEG dataset.

    Parameters
    ----------
    data_fname : str or path-like
        SPM header file (``.mat``, any MATLAB version); its ``.dat`` is found as SPM does.

    Returns
    -------
    sensor_data : ndarray, shape (n_channels, n_samples[, n_trials])
        Data of the good MEG channels in physical units (fT for MEG), float64 copy. The trial
        axis is dropped for single-trial (continuous or averaged) datasets, as in laMEG.
    time : ndarray, shape (n_samples,)
        Time of each sample in **milliseconds**.
    ch_names : list of str
        Labels of the returned channels.

    Raises
    ------
    LamegFileNotFoundError
        If the header or the binary file does not exist.
    LamegDataError
        If the dataset has no good MEG channels.
    """
    from .io.spm_meeg import load_meeg

    path = Path(data_fname)
    if not path.exists():
        raise LamegFileNotFoundError(f"SPM dataset not found: {path}")
    meeg = load_meeg(path)
    idx = np.asarray(meeg.indchantype("MEGANY", "GOOD"), dtype=int)
    if idx.size == 0:
        raise LamegDataError(
            f"{path.name} has no good MEG channels (channel types: "
            f"{sorted(set(meeg.chantypes))}); mark channels good or set their types."
        )
    data = np.asarray(meeg.data[idx], dtype=np.float64)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    time = np.asarray(meeg.time, dtype=np.float64) * 1000.0
    labels = list(meeg.chanlabels)
    ch_names = [labels[i] for i in idx]
    return data, time, ch_names


@fill_doc
def ctf_fif_spm_conversion(
    mne_file: str | os.PathLike,
    res4_file: str | os.PathLike,
    output_path: str | os.PathLike,
    epoched: bool,
    prefix: str = "spm_",
    spm_instance: Any = None,
):
    """Convert an MNE FIF recording (from CTF) to an SPM M/EEG dataset.

    Thin re-export of :func:`lameg.io.mne.ctf_fif_spm_conversion`, imported on first use
    because it needs the ``mne`` extra (``pip install lameg[mne]``); laMEG 0.2.1 signature.

    Parameters
    ----------
    %(ctf_fif_conversion)s

    Returns
    -------
    lameg.io.spm_meeg.MEEG
        The new dataset ``<output_path>/<prefix><fif basename>.mat`` (+ ``.dat``).
    """
    try:
        module = importlib.import_module("lameg.io.mne")
    except ImportError as err:
        raise ImportError(
            "ctf_fif_spm_conversion needs MNE-Python: install it with `pip install lameg[mne]` "
            f"({err})"
        ) from err
    return module.ctf_fif_spm_conversion(
        mne_file, res4_file, output_path, epoched, prefix=prefix, spm_instance=spm_instance
    )


# --------------------------------------------------------------------------------------------
# File helpers
# --------------------------------------------------------------------------------------------


def check_many(multiple: Sequence[str], target: str, func: str | None = None) -> bool:
    """Check whether all / any of several substrings occur in ``target``.

    Parameters
    ----------
    multiple : sequence of str
        Substrings to look for.
    target : str
        String to search.
    func : {'all', 'any'}
        Combination rule. Any other value (including the default ``None``) raises, as in laMEG.

    Returns
    -------
    bool
        Whether all (``'all'``) or at least one (``'any'``) of the substrings occur.
    """
    if func == "all":
        return all(item in target for item in multiple)
    if func == "any":
        return any(item in target for item in multiple)
    raise LamegValueError(f"func must be 'all' or 'any', got {func!r}")


def _search(target_path, pattern: str, strings, depth: str):
    """Paths to test: ``target_path.glob(pattern)`` for ``depth='all'``, else its direct
    children; and ``strings`` as a sequence."""
    root = Path(target_path)
    if not root.is_dir():
        raise LamegFileNotFoundError(f"Folder not found: {root}")
    if depth == "all":
        candidates = root.glob(pattern)
    elif depth == "one":
        candidates = root.iterdir()
    else:
        raise LamegValueError(f"depth must be 'all' or 'one', got {depth!r}")
    return candidates, ((strings,) if isinstance(strings, str) else strings)


@fill_doc
def get_files(
    target_path: str | os.PathLike,
    suffix: str,
    strings: Sequence[str] = ("",),
    prefix: str | None = None,
    check: str = "all",
    depth: str = "all",
) -> list[Path]:
    """Find files by extension and name substrings.

    Parameters
    ----------
    target_path : str or path-like
        Folder to search.
    suffix : str
        Glob of the extension, e.g. ``'*.mat'`` (the part after the first character is the
        required ``Path.suffix``, i.e. ``'.mat'``).
    strings : sequence of str
        Substrings that the file name must contain (see ``check``).
    prefix : str, optional
        Required start of the file name.
    %(file_search)s

    Returns
    -------
    list of Path
        Matching files sorted by name.
    """
    candidates, strings = _search(target_path, "**/" + suffix, strings, depth)
    want_suffix = suffix[1:]
    files = [
        f
        for f in candidates
        if f.is_file() and f.suffix == want_suffix and check_many(strings, f.name, check)
    ]
    if prefix is not None:
        files = [f for f in files if f.name.startswith(prefix)]
    return sorted(files, key=lambda f: f.name)


@fill_doc
def get_directories(
    target_path: str | os.PathLike,
    strings: Sequence[str] = ("",),
    check: str = "all",
    depth: str = "all",
) -> list[Path]:
    """Find sub-folders whose path contains given substrings.

    Parameters
    ----------
    target_path : str or path-like
        Folder to search.
    strings : sequence of str
        Substrings tested against the full path string.
    %(file_search)s

    Returns
    -------
    list of Path
        Matching folders, sorted.
    """
    candidates, strings = _search(target_path, "**/", strings, depth)
    dirs = [d for d in candidates if d.is_dir() and check_many(strings, str(d), check)]
    return sorted(dirs)


def make_directory(root_path: str | os.PathLike, extended_dir: str | Sequence[str]) -> Path:
    """Create ``root_path/extended_dir`` (with parents) if needed and return it.

    Parameters
    ----------
    root_path : str or path-like
        Base folder.
    extended_dir : str or sequence of str
        Sub-folder, or a list of nested sub-folder names.

    Returns
    -------
    pathlib.Path
        The (now existing) folder.
    """
    if isinstance(extended_dir, (list, tuple)):
        path = Path(root_path).joinpath(*[str(p) for p in extended_dir])
    else:
        path = Path(root_path) / str(extended_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def ttest_rel_corrected(
    data: np.ndarray, correction: float = 0, tail: int = 0, axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sample t test with variance correction (Ridgway et al. 2012).

    Used on paired differences (hence the name). NaNs are ignored.

    ``t = mean / sqrt((var_pop + c) / n)`` with ``var_pop`` the population variance
    (``ddof=0``) and ``c = correction``, or ``c = 0.01 * max(var_pop)`` over all tests when
    ``correction`` is 0; ``df = max(n - 1, 0)``.

    Parameters
    ----------
    data : array_like
        Samples along ``axis``; any other axes index independent tests.
    correction : float
        Variance correction; 0 selects ``0.01 * max(var_pop)``.
    tail : {0, 1, -1}
        0 two-sided, 1 right-tailed (``mean > 0``), -1 left-tailed (``mean < 0``).
    axis : int
        Sample axis.

    Returns
    -------
    t : ndarray
        t statistics (shape of ``data`` without ``axis``).
    df : ndarray
        Degrees of freedom.
    p : ndarray
        p-values. Unlike laMEG, ``tail=1`` gives ``t.sf(t, df)`` (laMEG returned
        ``t.sf(-t, df)``, the left-tailed value).
    """
    if tail not in (0, 1, -1):
        raise LamegValueError(f"tail must be 0, 1 or -1, got {tail!r}")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 0:
        raise LamegValueError("ttest_rel_corrected needs at least one sample axis")
    n = np.sum(~np.isnan(data), axis=axis)
    df = np.maximum(n - 1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(data, axis=axis)
        var_pop = np.nanvar(data, axis=axis, ddof=0)
        if correction == 0:
            correction = 0.01 * np.nanmax(var_pop)
        t_stat = mean / (np.sqrt(var_pop + correction) / np.sqrt(n))
    if tail == 0:
        p = 2.0 * stats.t.sf(np.abs(t_stat), df)
    elif tail == -1:
        p = stats.t.cdf(t_stat, df)
    else:
        p = stats.t.sf(t_stat, df)
    return t_stat, df, p


def calc_prop(vec: np.ndarray) -> np.ndarray:
    """Cumulative proportion ``cumsum(vec) / sum(vec)``; returned unchanged if the sum is 0.

    Parameters
    ----------
    vec : array_like, shape (n,)
        Non-negative values (e.g. variances or eigenvalues).

    Returns
    -------
    ndarray, shape (n,)
        Cumulative proportions, ending at 1 (``vec`` itself when it sums to 0).
    """
    vec = np.asarray(vec)
    total = np.sum(vec)
    if total == 0:
        return vec
    return np.cumsum(vec) / total


# --------------------------------------------------------------------------------------------
# Fiducials
# --------------------------------------------------------------------------------------------


def _parse_xyz(cell: str, column: str, subj_id: str, val_delimiter: str) -> list[float]:
    parts = [p.strip() for p in (cell or "").strip().strip('"').split(val_delimiter)]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or not np.all(np.isfinite(values)):
        raise LamegFormatError(
            f"Fiducial {column!r} of subject {subj_id!r} is {cell!r}; expected three numbers "
            f"'x{val_delimiter}y{val_delimiter}z' (scanner RAS mm)."
        )
    return values


def get_fiducial_coords(
    subj_id: str,
    fname: str | os.PathLike,
    col_delimiter: str = "\t",
    subject_column: str = "subj_id",
    nas_column: str = "nas",
    lpa_column: str = "lpa",
    rpa_column: str = "rpa",
    val_delimiter: str = ",",
) -> dict[str, list[float]] | None:
    """Read a subject's fiducial coordinates from a ``participants.tsv``-style table.

    Parameters
    ----------
    subj_id : str
        Subject identifier (a value of ``subject_column``).
    fname : str or path-like
        Delimited text file with a header row.
    col_delimiter : str
        Column delimiter (tab by default).
    subject_column, nas_column, lpa_column, rpa_column : str
        Column names.
    val_delimiter : str
        Delimiter between x, y and z inside a cell.

    Returns
    -------
    dict or None
        ``{'nas': [x, y, z], 'lpa': [...], 'rpa': [...]}`` in MRI scanner-RAS millimetres, or
        ``None`` (with a :class:`UserWarning`) if the subject is not in the table — kept for
        compatibility with laMEG.

    Raises
    ------
    LamegFileNotFoundError
        If the file does not exist.
    LamegFormatError
        If a required column is missing or a cell is not ``x,y,z``.
    """
    path = Path(fname)
    if not path.is_file():
        raise LamegFileNotFoundError(f"Fiducial table not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=col_delimiter)
        header = reader.fieldnames or []
        missing = [
            c for c in (subject_column, nas_column, lpa_column, rpa_column) if c not in header
        ]
        if missing:
            raise LamegFormatError(
                f"{path.name} lacks column(s) {missing}; found {header}. Pass the column names "
                "(subject_column=, nas_column=, ...) or the right col_delimiter= "
                f"(currently {col_delimiter!r})."
            )
        for row in reader:
            if (row.get(subject_column) or "").strip() == str(subj_id):
                return {
                    "nas": _parse_xyz(row[nas_column], nas_column, subj_id, val_delimiter),
                    "lpa": _parse_xyz(row[lpa_column], lpa_column, subj_id, val_delimiter),
                    "rpa": _parse_xyz(row[rpa_column], rpa_column, subj_id, val_delimiter),
                }
    warnings.warn(
        f"Subject {subj_id!r} not found in {path}; returning None.", UserWarning, stacklevel=2
    )
    return None


def coregister_3d_scan_mri(
    subject_id: str,
    lpa: Sequence[float] | np.ndarray,
    rpa: Sequence[float] | np.ndarray,
    nas: Sequence[float] | np.ndarray,
    dig_face_fname: str | os.PathLike,
    dig_units: str = "mm",
    out_dir: str | os.PathLike | None = None,
    subjects_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-register a 3-D optical scan of the face to a FreeSurfer MRI; fiducials in MRI space.

    The scan (an STL mesh) and the NAS/LPA/RPA positions marked on it are brought into the
    subject's MRI by

    1. template fiducials in the MRI: the MNI305 fiducials of fsaverage (MNE-Python's
       ``fsaverage-fiducials.fif``) mapped through FreeSurfer's ``mri/transforms/talairach.xfm``
       when the subject has one (as MNE-Python and laMEG), otherwise through an affine fitted
       between fsaverage's and the subject's ``?h.white`` matched on ``?h.sphere.reg``
       (:func:`lameg.forward.headshape.atlas_to_subject_affine`; fsaverage, fsaverage6 or
       fsaverage5 in ``subjects_dir`` or ``$FREESURFER_HOME/subjects``);
    2. a rigid fit of the scan's fiducials to those (least squares, equal weights);
    3. a rigid iterative-closest-point fit of the scan (sampled evenly, one point per 2 mm
       cell, at most 20,000 points) onto the MRI scalp, with exact point-to-surface distances
       and up to 50 iterations; scan parts farther from the scalp than
       ``max(2 mm, 3 x median distance)`` (neck, shoulders, clothing) are left out
       (:func:`lameg.forward.headshape.fit_points_to_surface`). The fiducials do not enter
       this step, so marking errors do not bias the transform.

    The scalp is the subject's most detailed head surface: ``bem/<subject>-head-dense.fif``,
    ``surf/lh.seghead``, then ``bem/outer_skin.surf`` and the other surfaces of
    :meth:`lameg.surf.LayerSurfaceSet.load_head_mesh` (one is built from ``orig.mgz`` and saved
    in ``bem/`` if the subject has none).

    Parameters
    ----------
    subject_id : str
        FreeSurfer subject (a folder of ``subjects_dir``) with ``mri/orig.mgz`` and ``surf/``.
    lpa, rpa, nas : array_like, shape (3,)
        Left and right pre-auricular points and nasion marked on the scan, in the scan's frame,
        **millimetres** (also for a scan in metres, as in laMEG).
    dig_face_fname : str or path-like
        The scan: binary or ASCII STL (:func:`lameg.io.stl.read_stl`).
    dig_units : {'mm', 'm'}
        Unit of the scan file's coordinates.
    out_dir : str, path-like or None
        Folder (created if needed) for ``coreg-initial.png`` (the scan in its own frame),
        ``coreg-fit_fiducials.png`` (after step 2) and ``coreg-fit_icp.png`` (after step 3):
        the scan (blue) on the MRI scalp, template fiducials as large translucent spheres, the
        scan's fiducials as small ones. None writes no figure.
    subjects_dir : str, path-like or None
        FreeSurfer subjects folder (default ``$SUBJECTS_DIR``; see
        :func:`check_freesurfer_setup`).

    Returns
    -------
    lpa, rpa, nas : ndarray, shape (3,)
        The scan's fiducials in the MRI's **scanner RAS**, mm (tkRAS mapped through
        ``orig.mgz``'s ``vox2ras @ inv(vox2ras-tkr)``), as :func:`get_fiducial_coords` returns
        them and :func:`lameg.invert.coregister` expects them.

    Raises
    ------
    LamegValueError
        For arguments of the wrong type or shape, non-finite fiducials, ``dig_units`` other
        than ``'mm'``/``'m'``, fiducials that are not a head's in millimetres, or a scan whose
        size or position does not match them.
    LamegFileNotFoundError
        If the subjects folder, the subject, its ``surf/`` or ``mri/orig.mgz``, the scan, or
        both ``talairach.xfm`` and an fsaverage subject are missing.
    LamegFormatError
        If the scan is not a readable STL file.

    Warns
    -----
    UserWarning
        When the fit looks unreliable: the scan fits the scalp twice as closely when started
        with LPA and RPA exchanged (the fit is run both ways), the ICP moves the fiducials
        more than 25 mm from the fiducial fit, the scan lies more than 3 mm from the scalp
        (median), fewer than half of its points are used, the ICP has not converged in 50
        iterations, or the scan's shape does not pin the transform down (e.g. a smooth patch
        of the crown).

    Notes
    -----
    Files written (atomically, after every check has passed):

    - ``surf/head_to_mri-trans.fif``: MNE's head -> MRI transform, the head frame being the
      scan's frame in metres and the MRI frame FreeSurfer's tkRAS (written through
      ``mne.write_trans``; without MNE-Python installed this file is not written and a warning
      says so);
    - ``surf/face_3d.gii``: the scan's mesh in scanner RAS mm (drawn by
      :func:`lameg.viz.verify_coregistration` with ``display_3d_scan=True``).

    Differences from laMEG 0.2.1, which calls MNE-Python's ``Coregistration``: no FreeSurfer
    binary is needed (the RAS matrices come from ``orig.mgz``'s header) and neither is
    ``talairach.xfm`` (see step 1); the transform is rigid (laMEG lets MNE fit a uniform MRI
    scale as well but then uses only the rotation and translation, which misplaces the
    fiducials by ``(scale - 1) x`` their distance from the MRI origin); the ICP uses exact
    point-to-surface distances instead of the nearest scalp vertex and drops outlying scan
    parts; the fiducial fit weights the three fiducials equally (MNE weights the nasion 10).
    ``tests/test_coregister_scan.py`` checks the result against a known transform and against
    MNE-Python's ICP.
    """
    from . import _facescan as fsc
    from ._validate import check_array, check_option, check_path, check_writable, validate_type
    from .forward.coreg import apply_transform, rigid_transform
    from .forward.headshape import fit_points_to_surface, grid_subsample, rotation_angle_deg
    from .io import freesurfer as fsio
    from .io.gifti import write_surf_gifti
    from .io.stl import read_stl

    # ---- every argument and input is checked before anything is written
    validate_type(subject_id, str, "subject_id")
    if not subject_id or os.sep in subject_id or subject_id in (".", ".."):
        raise LamegValueError(f"subject_id must be a subject folder name, got {subject_id!r}")
    fids = {k: check_array(v, k, shape=(3,)) for k, v in (("lpa", lpa), ("nas", nas),
                                                           ("rpa", rpa))}
    face_path = check_path(dig_face_fname, "dig_face_fname")
    check_option(dig_units, ("mm", "m"), "dig_units")
    if out_dir is not None:
        out = check_path(out_dir, "out_dir", must_exist=False)
        if out.exists() and not out.is_dir():
            raise LamegValueError(f"out_dir {out} is a file; give a folder")
        check_writable(out, "out_dir")
    root = check_freesurfer_setup(subjects_dir)
    subj_dir, surf_dir, mgz = fsc.subject_folders(subject_id, root)
    check_writable(surf_dir, "FreeSurfer surf folder")
    fsc.check_fiducial_geometry(fids)
    scan_v, scan_f = read_stl(face_path)
    scan_mm = scan_v * (1000.0 if dig_units == "m" else 1.0)
    fsc.check_scan_extent(scan_mm, fids, face_path, dig_units)
    tk2sc = fsio.tkras_to_scanner(mgz)[0]
    source = fsc.locate_mri_fiducial_source(subj_dir, root)

    # ---- fit
    mri_fids = fsc.mri_fiducials(source, subj_dir, tk2sc)
    scalp_v, scalp_f, scalp_name = fsc.scalp_surface(subj_dir, subject_id)
    labels = fsc.FIDUCIAL_LABELS
    scan_fid = np.stack([fids[k] for k in labels])
    mri_fid = np.stack([mri_fids[k] for k in labels])
    t_fid = rigid_transform(scan_fid, mri_fid)
    points = grid_subsample(scan_mm)
    fit = fit_points_to_surface(points, scalp_v, scalp_f, t_fid)
    total = fit.transform
    # the same fit started with LPA and RPA exchanged (a left-right mix-up when marking the
    # scan turns the scan upside down in the fiducial fit, a local minimum of the ICP)
    swapped = fit_points_to_surface(points, scalp_v, scalp_f,
                                    rigid_transform(scan_fid[[2, 1, 0]], mri_fid))
    from ._utils import logger

    # how far the ICP moved the fiducials from where the fiducial fit put them
    moved = float(np.linalg.norm(apply_transform(scan_fid, total)
                                 - apply_transform(scan_fid, t_fid), axis=1).max())
    logger.info(
        "face scan on %s: %d ICP iterations, median distance %.2f mm, %.0f%% of the scan used; "
        "the ICP moved the fiducials by up to %.1f mm (%.1f deg) from the fiducial fit",
        scalp_name, fit.n_iterations, fit.median_distance_mm, 100 * fit.inlier_fraction, moved,
        rotation_angle_deg(total @ np.linalg.inv(t_fid)))
    problems = []
    if (swapped.median_distance_mm < 0.5 * fit.median_distance_mm
            and swapped.inlier_fraction >= fit.inlier_fraction - 0.05):
        problems.append(
            f"the scan fits the scalp better with lpa and rpa exchanged (median distance "
            f"{swapped.median_distance_mm:.2f} instead of {fit.median_distance_mm:.2f} mm), so "
            "they may be swapped")
    if moved > 25.0:
        problems.append(f"the scan's shape and its fiducials disagree: the ICP moved the "
                        f"fiducials by {moved:.0f} mm from the fiducial fit")
    if fit.median_distance_mm > 3.0:
        problems.append(f"the scan lies {fit.median_distance_mm:.1f} mm from the scalp (median)")
    if fit.inlier_fraction < 0.5:
        problems.append(f"only {100 * fit.inlier_fraction:.0f}% of the scan is near the scalp")
    if not fit.converged:
        problems.append(f"the ICP did not converge in {fit.n_iterations} iterations")
    if fit.conditioning < 1e-4:
        problems.append("the scan's shape does not determine the transform (it can slide "
                        "along the scalp)")
    if problems:
        warnings.warn("the face scan fit may be unreliable: " + "; ".join(problems)
                      + ". Check the figures (out_dir=) and the fiducials.", UserWarning,
                      stacklevel=2)
    out_fids = dict(zip(labels, apply_transform(scan_fid, total)))

    # ---- outputs
    if not fsc.write_head_to_mri_trans(surf_dir / "head_to_mri-trans.fif", total, tk2sc):
        warnings.warn("MNE-Python is not installed: surf/head_to_mri-trans.fif was not written "
                      "(pip install mne)", UserWarning, stacklevel=2)
    face_mri = apply_transform(scan_mm, total)
    write_surf_gifti(surf_dir / "face_3d.gii", face_mri, scan_f)
    if out_dir is not None:
        from .viz.coreg import _scan_alignment_screenshot

        out.mkdir(parents=True, exist_ok=True)
        scalp = (scalp_v, scalp_f)
        for name, transform, title in (
                ("coreg-initial.png", np.eye(4), "initial: scan frame"),
                ("coreg-fit_fiducials.png", t_fid, "fiducial fit"),
                ("coreg-fit_icp.png", total, "ICP fit")):
            _scan_alignment_screenshot(
                scalp, (apply_transform(scan_mm, transform), scan_f), mri_fids,
                dict(zip(labels, apply_transform(scan_fid, transform))), out / name, title)
    return out_fids["lpa"], out_fids["rpa"], out_fids["nas"]


# BigBrain atlas proportions (implemented in lameg.bigbrain; laMEG's name lives in util).
def check_freesurfer_setup(subjects_dir: str | os.PathLike | None = None) -> Path:
    """Check that the FreeSurfer subjects folder lameg reads is set up (laMEG name).

    laMEG checks for FreeSurfer's ``mris_convert`` and ``mri_info`` binaries; lameg reads
    FreeSurfer's files itself and needs no binaries, only the subjects folder of
    ``recon-all``'s outputs.

    Parameters
    ----------
    subjects_dir : str, path-like or None
        The folder (default ``$SUBJECTS_DIR``).

    Returns
    -------
    Path
        The subjects folder.

    Raises
    ------
    LamegFileNotFoundError
        (an ``OSError``, as laMEG's ``EnvironmentError``) when it is not set or does not exist.
    """
    folder = subjects_dir if subjects_dir is not None else os.environ.get("SUBJECTS_DIR")
    if not folder:
        raise LamegFileNotFoundError(
            "SUBJECTS_DIR is not set: point it to the folder of FreeSurfer subjects "
            "(export SUBJECTS_DIR=/path/to/subjects) or pass subjects_dir=; lameg needs no "
            "FreeSurfer binaries")
    path = Path(folder)
    if not path.is_dir():
        raise LamegFileNotFoundError(f"FreeSurfer subjects folder {path} does not exist")
    return path


from .bigbrain import big_brain_proportional_layer_boundaries  # noqa: E402
