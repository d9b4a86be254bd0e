"""File side of :func:`lameg.util.coregister_3d_scan_mri`: MRI fiducials, scalp, checks, outputs.

The array work (template fiducials, atlas affine, ICP) is in :mod:`lameg.forward.headshape`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ._utils import atomic_path, logger
from .exceptions import LamegFileNotFoundError, LamegValueError
from .forward.headshape import MNI_FIDUCIALS, atlas_to_subject_affine
from .io import freesurfer as fsio

FIDUCIAL_LABELS = ("lpa", "nas", "rpa")


def check_fiducial_geometry(fids: dict[str, np.ndarray]) -> None:
    """Reject fiducials that cannot be a head's NAS/LPA/RPA in millimetres."""
    lpa, nas, rpa = (fids[k] for k in FIDUCIAL_LABELS)
    ear = float(np.linalg.norm(rpa - lpa))
    mid = (lpa + rpa) / 2.0
    depth = float(np.linalg.norm(nas - mid))
    hint = ("lpa, rpa and nas are millimetres in the scan's frame (laMEG's convention, whatever "
            "dig_units says about the scan file)")
    if not 50.0 <= ear <= 300.0:
        raise LamegValueError(f"the LPA-RPA distance is {ear:.4g} mm, not a head's (50-300 mm): "
                              f"{hint}")
    if not 30.0 <= depth <= 250.0:
        raise LamegValueError(f"the nasion is {depth:.4g} mm from the LPA-RPA midpoint, not a "
                              f"head's (30-250 mm): {hint}; check the nas/lpa/rpa order")
    axis = (rpa - lpa) / ear
    off = (nas - mid) - np.dot(nas - mid, axis) * axis
    if np.linalg.norm(off) < 0.2 * depth:
        raise LamegValueError("the nasion lies almost on the LPA-RPA line; check the fiducials "
                              "and their order (lpa, rpa, nas)")


def check_scan_extent(scan_mm: np.ndarray, fids: dict[str, np.ndarray], path: Path,
                      dig_units: str) -> None:
    """Reject a scan whose size or position does not fit the fiducials (unit mix-ups)."""
    lo, hi = scan_mm.min(axis=0), scan_mm.max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if not 20.0 <= diag <= 1000.0:
        raise LamegValueError(
            f"{path.name} spans {diag:.4g} mm with dig_units={dig_units!r}, not a face or head "
            "(20-1000 mm): pass dig_units='m' for a scan in metres, 'mm' for millimetres")
    centre = np.mean([fids[k] for k in FIDUCIAL_LABELS], axis=0)
    gap = float(np.linalg.norm(np.maximum(0.0, np.maximum(lo - centre, centre - hi))))
    if gap > 100.0:
        raise LamegValueError(
            f"the fiducials' centre is {gap:.4g} mm outside the scan {path.name} (dig_units="
            f"{dig_units!r}): the fiducials must be millimetres in the scan's own frame")


def subject_folders(subject_id: str, root: Path) -> tuple[Path, Path, Path]:
    """(subject, surf, orig.mgz) of a FreeSurfer subject, all required to exist."""
    subj_dir = root / subject_id
    if not subj_dir.is_dir():
        raise LamegFileNotFoundError(f"FreeSurfer subject {subject_id!r} not found in {root} "
                                     "(pass subjects_dir= or set SUBJECTS_DIR)")
    surf_dir = subj_dir / "surf"
    if not surf_dir.is_dir():
        raise LamegFileNotFoundError(f"FreeSurfer surf directory not found: {surf_dir}")
    mgz = subj_dir / "mri" / "orig.mgz"
    if not mgz.is_file():
        raise LamegFileNotFoundError(f"{mgz} not found: it defines the subject's scanner RAS "
                                     "frame (FreeSurfer recon-all writes it)")
    return subj_dir, surf_dir, mgz


def _hemisphere_pairs(surf_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for h in ("lh", "rh"):
        out.append((fsio.read_surface(surf_dir / f"{h}.white")[0],
                    fsio.read_surface(surf_dir / f"{h}.sphere.reg")[0]))
    return out


def locate_mri_fiducial_source(subj_dir: Path, root: Path) -> tuple[str, Path]:
    """Where the MNI -> subject map comes from: ``('talairach', xfm)`` or ``('fsaverage', dir)``.

    FreeSurfer's ``mri/transforms/talairach.xfm`` is used when present (as MNE-Python and
    laMEG do); otherwise an affine fitted between fsaverage's and the subject's white surfaces
    through ``?h.sphere.reg`` (fsaverage, fsaverage6 or fsaverage5 in the subjects folder or
    ``$FREESURFER_HOME/subjects``).
    """
    xfm = subj_dir / "mri" / "transforms" / "talairach.xfm"
    if xfm.is_file():
        return "talairach", xfm
    from .bigbrain import _fsaverage_surf_dir

    try:
        fs_surf = _fsaverage_surf_dir(root, None)
    except LamegFileNotFoundError as exc:
        raise LamegFileNotFoundError(
            f"cannot place the template fiducials in {subj_dir.name}'s MRI: there is no "
            f"{xfm.relative_to(subj_dir.parent)} and {exc}") from None
    missing = [p for p in (
        [fs_surf / f"{h}.white" for h in ("lh", "rh")]
        + [subj_dir / "surf" / f"{h}.{s}" for h in ("lh", "rh") for s in ("white", "sphere.reg")])
        if not p.is_file()]
    if missing:
        raise LamegFileNotFoundError(
            "the template fiducials are carried into the MRI through ?h.white and "
            f"?h.sphere.reg of fsaverage and of the subject; missing: {[str(p) for p in missing]}"
            f" (or provide {xfm})")
    return "fsaverage", fs_surf


def mri_fiducials(source: tuple[str, Path], subj_dir: Path, tk2sc: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """MNI305 template fiducials mapped into the subject's scanner RAS, mm."""
    kind, path = source
    mni = np.stack([MNI_FIDUCIALS[k] for k in FIDUCIAL_LABELS])
    if kind == "talairach":
        sc = fsio.apply_affine(mni, np.linalg.inv(fsio.read_xfm(path)))
        logger.info("template fiducials placed through %s", path)
    else:
        affine, rms = atlas_to_subject_affine(_hemisphere_pairs(path),
                                              _hemisphere_pairs(subj_dir / "surf"))
        sc = fsio.apply_affine(fsio.apply_affine(mni, affine), tk2sc)
        logger.info("template fiducials placed through %s (cortex affine, residual %.2f mm)",
                    path.parent.name, rms)
    return dict(zip(FIDUCIAL_LABELS, sc))


def scalp_surface(subj_dir: Path, subject_id: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The subject's scalp in scanner RAS mm, preferring the detailed heads (as MNE's ICP).

    ``bem/<subject>-head-dense.fif`` (MNE's ``make_scalp_surfaces``, needs mne), then
    ``surf/lh.seghead`` (FreeSurfer ``mkheadsurf``), then :func:`lameg.surf.head._find_head_mesh`
    (``bem/outer_skin.surf``, the watershed surface, ``bem/<subject>-head.fif``, SPM's scalp,
    or one built from ``orig.mgz``).
    """
    from .surf.head import _find_head_mesh

    mgz = subj_dir / "mri" / "orig.mgz"
    tk2sc = fsio.tkras_to_scanner(mgz)[0]
    dense = subj_dir / "bem" / f"{subject_id}-head-dense.fif"
    if dense.is_file() and importlib.util.find_spec("mne") is not None:
        import mne

        # as MNE's Coregistration with laMEG's on_defects="ignore": dense heads often have a
        # few defects that do not matter to distances
        surf = mne.read_bem_surfaces(str(dense), on_defects="ignore", verbose=False)[0]
        return (fsio.apply_affine(surf["rr"] * 1000.0, tk2sc),
                np.asarray(surf["tris"], np.int64), dense.name)
    seghead = subj_dir / "surf" / "lh.seghead"
    if seghead.is_file():
        v, f = fsio.read_surface(seghead)
        return fsio.apply_affine(v, tk2sc), np.asarray(f, np.int64), seghead.name
    v, f = _find_head_mesh(SimpleNamespace(subj_dir=str(subj_dir), subj_id=subject_id), "scalp")
    return np.asarray(v, float), np.asarray(f, np.int64), "scalp"


def write_head_to_mri_trans(path: Path, scan_to_scanner: np.ndarray, tk2sc: np.ndarray
                            ) -> bool:
    """Write MNE's head -> MRI transform (scan frame in m -> tkRAS in m); False without mne."""
    if importlib.util.find_spec("mne") is None:
        return False
    import mne

    head_mri = np.linalg.inv(tk2sc) @ scan_to_scanner
    head_mri[:3, 3] /= 1000.0
    with atomic_path(path, suffix="-trans.fif") as tmp:
        mne.write_trans(str(tmp), mne.transforms.Transform("head", "mri", head_mri),
                        overwrite=True, verbose=False)
    return True
