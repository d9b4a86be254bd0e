"""``sam_wts``: two-step scalar SAM beamformer weights.

For lead fields ``L(r)`` (n_channels x 3, T per A m) and a regularised covariance ``C``:

1. **Orientation** (from the Orient covariance ``C_o``): ``K1 = L' C_o^-1 L``,
   ``K2 = L' C_o^-2 L``; the orientation ``v`` is the eigenvector of the largest eigenvalue of the
   generalised problem ``K1 v = lambda K2 v`` (it maximises the output SNR
   ``v'K1v / v'K2v`` = pseudo-Z^2). Lead-field directions with singular values below
   ``1e-6 s_max`` (the radial direction of a spherical model) are excluded, as MNE's
   ``reduce_rank=True`` and FieldTrip's ``reducerank`` do. SAM's sign is arbitrary; here the sign
   makes ``v . n >= 0`` for a reference direction ``n`` (the atlas normal, else +z, as MNE does for
   volume source spaces). The *span* ``lambda_max / lambda_min`` is returned.
   With a surface atlas the orientation is the atlas normal, unless ``Unconstrained`` is set (the
   documented behaviour; the public SAMsrcV5 ``sam_wts`` ignores ``Unconstrained``).
2. **Weights** for each covariance (Global, Sum, markers, Noise): ``b = L v`` and the unit-gain
   LCMV ``w = C^-1 b / (b' C^-1 b)`` (A m per T). With ``Normalize``, ``w /= sqrt(noise)``.

Regularisation (SAMsrcV5's ``sam_wts``, applied to every covariance before inversion):
``Mu +MU`` / ``Mu MU`` adds ``(MU 1e-15)^2 * bandwidth`` (MU in fT/sqrt(Hz)) to the diagonal and to
the noise; ``Mu *MU`` adds ``MU x noise floor`` to both. The inverse is the pseudo-inverse dropping
singular values below ``1e-15`` of the largest, and the ``Pinv`` smallest ones.

Lead fields: for CTF datasets with ``Model SingleSphere``/``MultiSphere`` SAMsrcV5's own sphere
lead fields (:mod:`lameg.sam.ctf_forward`, spheres of ``default.hdm``); otherwise
:mod:`lameg.forward` (:mod:`lameg.sam.forward`) with the dataset's sensors (Nolte on the hull
inflated by 5 mm), or the head model of an SPM dataset co-registered with
:func:`lameg.invert.coregister` (``inversion_idx=``), or arrays / callables given by the caller.
Outputs (grids): SAMsrcV5's NIfTI weights ``<Name>.nii``, ``<Name>CN.dat``, ``<Name>_MuNoise`` and,
with ``Field`` (``-B``), ``<SAM>/<WtsName>.fwd``.

Normalised weights ``w / |w|`` equal MNE-Python's unit-noise-gain LCMV weights (``reg=0``,
``noise_cov=None``), and the max-SNR orientation equals MNE's ``pick_ori='max-power'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import logger
from ..exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegNotImplementedError,
    LamegValueError,
)
from ._docs import fill_doc
from .cov import SamCovariance, _get_data, read_covariances
from .forward import (
    fixed_lead_fields,
    free_lead_fields,
    model_spec,
    read_spm_forward,
    sam_head_model,
    sensor_array,
)
from .grid import SourceSet, grid_from_params, mri_path, read_hull
from .io import (
    SamData,
    band_folder,
    load_atlas,
    read_targets,
    sam_directory,
    write_text,
    write_weights_files,
)
from .params import SamParams

NOLTE_INFLATE = 0.005  # m, SAMsrcV5 inflates the hull along its normals for the Nolte model

__all__ = ["SamWeights", "regularise", "sam_pinv", "max_snr_orientations", "unit_gain_weights",
           "sam_wts", "load_weights", "load_weight_set"]

@dataclass
class SamWeights:
    """Result of :func:`sam_wts`.

    Parameters
    ----------
    weights : dict of str -> ndarray, shape (n_src, n_channels)
        Weights per covariance name (A m per T; divided by sqrt(noise) with ``Normalize``).
    noise : dict of str -> float
        (Regularised) noise floor per covariance, T^2.
    bandwidth : dict of str -> float
        Effective covariance bandwidth, Hz.
    band : dict of str -> (float, float)
        Covariance pass band, Hz.
    orientations : ndarray, shape (n_src, 3)
        Unit source orientations (solved or atlas normals); NaN for fixed lead fields.
    forward : ndarray, shape (n_channels, n_src)
        Oriented lead fields ``b = L v``, T per A m.
    span : ndarray, shape (n_src,) or None
        Ratio of the largest to the smallest generalised eigenvalue (solved orientations).
    sources : SourceSet
    chan_names : list of str
    normalized : bool
        Whether the weights were divided by sqrt(noise).
    covariances : dict of str -> ndarray
        Regularised covariances (T^2), used by the imaging programs.
    """

    weights: dict[str, np.ndarray]
    noise: dict[str, float]
    bandwidth: dict[str, float]
    band: dict[str, tuple[float, float]]
    orientations: np.ndarray
    forward: np.ndarray
    span: np.ndarray | None
    sources: SourceSet
    chan_names: list[str]
    normalized: bool = False
    covariances: dict[str, np.ndarray] = field(default_factory=dict)

    @fill_doc
    def pseudo_z2(self, name: str = "Global") -> np.ndarray:
        """Squared pseudo-Z per source: ``w'Cw / (noise w'w)``.

        Parameters
        ----------
        %(sam_set_values_body)s
        """
        W = self.weights[name]
        return self.power(name) / (self.noise[name] * np.einsum("vm,vm->v", W, W))

    @fill_doc
    def power(self, name: str = "Global") -> np.ndarray:
        """Source power ``w'Cw`` per source ((A m)^2, or S/N units when normalised).

        Parameters
        ----------
        %(sam_set_values_body)s
        """
        W = self.weights[name]
        return np.einsum("vm,vm->v", W @ self.covariances[name], W)


# ---------------------------------------------------------------------------------------------
# Maths
# ---------------------------------------------------------------------------------------------


def regularise(C: np.ndarray, noise: float, bandwidth: float, mu=None, prop_mu: float | None = None
               ) -> tuple[np.ndarray, float]:
    """Apply ``Mu`` to a covariance and its noise floor, as SAMsrcV5's ``sam_wts``.

    Parameters
    ----------
    C : ndarray, shape (n_channels, n_channels)
        Covariance, T^2.
    noise : float
        Noise floor, T^2.
    bandwidth : float
        Effective bandwidth of the covariance's filter, Hz.
    mu : MuSpec, optional
        ``Mu [+]MU`` adds ``(MU 1e-15)^2 * bandwidth`` (MU in fT/sqrt(Hz)); ``Mu *MU`` adds
        ``MU x noise``; to the diagonal and to the noise.
    prop_mu : float, optional
        Kept for callers of earlier lameg versions: acts like ``Mu *prop_mu``.

    Returns
    -------
    C_reg : ndarray, shape (n_channels, n_channels)
    noise_reg : float
    """
    C = np.array(C, float, copy=True)
    add = 0.0
    if mu is not None:
        if mu.mode == "add":
            add = (mu.value * 1e-15) ** 2 * bandwidth
        else:
            add = mu.value * noise
    if prop_mu:
        add += prop_mu * noise
    if add:
        C[np.diag_indices_from(C)] += add
    return C, noise + add


def sam_pinv(C: np.ndarray, drop: int = 0, rtol: float = 1e-15) -> np.ndarray:
    """SAMsrcV5's pseudo-inverse (``pinvN``).

    Parameters
    ----------
    C : ndarray, shape (n, n)
        Covariance.
    drop : int
        ``Pinv``: the ``drop`` smallest positions of the spectrum are zeroed whatever their value.
    rtol : float
        Singular values ``<= rtol * s_max`` are dropped.

    Returns
    -------
    ndarray, shape (n, n)
    """
    U, s, Vt = np.linalg.svd(C)
    keep = s > rtol * s[0]
    if 0 < drop < s.size:
        keep[s.size - drop:] = False
    if not keep.any():
        raise LamegDataError(f"Pinv {drop} leaves no singular value of the covariance to invert")
    inv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    return (Vt.T * inv) @ U.T


def max_snr_orientations(L: np.ndarray, Cinv: np.ndarray, sign_ref: np.ndarray | None = None,
                         rank_tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Two-step SAM orientations.

    Parameters
    ----------
    L : ndarray, shape (n_channels, n_src, 3)
        Lead fields (T per A m).
    Cinv : ndarray, shape (n_channels, n_channels)
        Inverse of the (regularised) Orient covariance.
    sign_ref : ndarray, shape (n_src, 3) or (3,), optional
        Reference directions for the sign (default +z).
    rank_tol : float
        Lead-field directions with singular value below ``rank_tol * s_max`` are excluded.

    Returns
    -------
    ori : ndarray, shape (n_src, 3)
        Unit orientations.
    span : ndarray, shape (n_src,)
        ``lambda_max / lambda_min`` of the generalised problem in the lead-field subspace.
    """
    m, v, _ = L.shape
    Lt = np.moveaxis(L, 0, 1)  # (v, m, 3)
    _, s, Vt = np.linalg.svd(Lt, full_matrices=False)  # Vt (v, 3, 3), rows = directions
    reduced = s[:, 2] < rank_tol * s[:, 0]
    ori = np.empty((v, 3))
    span = np.empty(v)
    for r, sel in ((3, ~reduced), (2, reduced)):
        idx = np.flatnonzero(sel)
        if idx.size == 0:
            continue
        if np.any(s[idx, 1] < rank_tol * s[idx, 0]):
            raise LamegDataError("some lead fields have rank < 2; cannot solve orientations")
        P = np.swapaxes(Vt[idx, :r, :], 1, 2)  # (n, 3, r) orthonormal basis
        Lr = np.einsum("nmk,nkr->mnr", Lt[idx], P).reshape(m, -1)  # (m, n*r)
        A = (Cinv @ Lr).reshape(m, idx.size, r)
        Lr = Lr.reshape(m, idx.size, r)
        K1 = np.einsum("mni,mnj->nij", Lr, A)
        K2 = np.einsum("mni,mnj->nij", A, A)
        K1 = (K1 + np.swapaxes(K1, 1, 2)) / 2
        K2 = (K2 + np.swapaxes(K2, 1, 2)) / 2
        R = np.linalg.cholesky(K2)
        Ri = np.linalg.inv(R)
        Mx = Ri @ K1 @ np.swapaxes(Ri, 1, 2)
        lam, U = np.linalg.eigh((Mx + np.swapaxes(Mx, 1, 2)) / 2)
        u = np.einsum("nji,nj->ni", Ri, U[:, :, -1])  # Ri^T u
        o = np.einsum("nkr,nr->nk", P, u)
        ori[idx] = o / np.linalg.norm(o, axis=1, keepdims=True)
        span[idx] = lam[:, -1] / lam[:, 0]
    ref = np.broadcast_to(np.array([0.0, 0.0, 1.0]) if sign_ref is None else sign_ref, (v, 3))
    flip = np.einsum("ij,ij->i", ori, ref) < 0
    ori[flip] *= -1
    return ori, span


def unit_gain_weights(B: np.ndarray, Cinv: np.ndarray) -> np.ndarray:
    """Unit-gain LCMV weights ``w = C^-1 b / (b' C^-1 b)`` for every column of ``B``.

    Parameters
    ----------
    B : ndarray, shape (n_channels, n_src)
        Oriented lead fields.
    Cinv : ndarray, shape (n_channels, n_channels)

    Returns
    -------
    ndarray, shape (n_src, n_channels)
    """
    CB = Cinv @ B
    den = np.einsum("mv,mv->v", B, CB)
    if np.any(den <= 0):
        raise LamegDataError(f"{int(np.sum(den <= 0))} sources have zero lead field in the "
                             "covariance's signal space (b'C^-1 b <= 0)")
    return (CB / den).T


# ---------------------------------------------------------------------------------------------
# The program
# ---------------------------------------------------------------------------------------------


def _source_set(params: SamParams, atlas, dataset: str | None, origin_m) -> SourceSet:
    if params.is_set("TargetName"):
        pos = read_targets(mri_path(params, params["TargetName"], dataset))
        return SourceSet("targets", pos, name=params["TargetName"])
    if atlas is None and params.is_set("AtlasName"):
        atlas = mri_path(params, params["AtlasName"], dataset)
    if atlas is not None:
        frame = "head"
        if hasattr(atlas, "get_mesh_path"):  # a LayerSurfaceSet: its multilayer mesh (MRI mm)
            atlas = atlas.get_mesh_path()
            frame = "mri"
        pos, nrm, faces = load_atlas(atlas)
        name = str(atlas) if isinstance(atlas, (str, os.PathLike)) else "atlas"
        if nrm is None and not params.get("Unconstrained", False):
            raise LamegValueError(f"atlas {name} has no orientation array (GIfTI VECTOR); set "
                                  "Unconstrained to solve orientations or use an oriented mesh")
        return SourceSet("atlas", pos, nrm, faces=faces, name=name, frame=frame)
    return grid_from_params(params, dataset, origin_m)


def _lead_fields(lead_field, sources: SourceSet, params: SamParams, data: SamData | None,
                 chan_names: list[str], fixed: bool, inversion_idx: int | None,
                 dataset: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Lead fields of the sources and the rotation from the source frame to their frame.

    Returns
    -------
    L : ndarray, shape (n_chan, n_src) (fixed orientations) or (n_chan, n_src, 3) (free)
        T (or T/m) per A m.
    rot : ndarray, shape (3, 3)
        Source-frame orientations ``n`` are ``n @ rot.T`` in the lead-field frame.
    """
    n_chan = len(chan_names)
    rot = np.eye(3)
    if callable(lead_field):
        L = np.asarray(lead_field(sources.positions), float)
    elif lead_field is not None:
        L = np.asarray(lead_field, float)
    elif inversion_idx is not None:
        L, rot = _spm_lead_fields(sources, data, chan_names, fixed, inversion_idx)
    else:
        if sources.frame == "mri":
            raise LamegValueError(
                "the LayerSurfaceSet meshes are in MRI (scanner RAS) space, not in the MEG head "
                "frame of the SAM head models: co-register the dataset with "
                "lameg.invert.coregister(...) and pass inversion_idx=, or pass lead_field=")
        if data is None:
            raise LamegValueError("the SAM head models need the dataset (its sensor geometry)")
        model = model_spec(params)
        if getattr(data, "ctf", None) is not None and model is not None and model.kind in (
                "SingleSphere", "MultiSphere"):
            return _ctf_sphere_lead_fields(data, sources, model, fixed), rot
        sensors = sensor_array(data, chan_names)
        hull = None
        if model is not None and model.kind in ("MultiSphere", "Nolte"):
            path = mri_path(params, params["HullName"], dataset)
            if not path.is_file():
                raise LamegFileNotFoundError(
                    f"Model {model.kind} needs the hull (inner skull) {path}; set HullName / "
                    "MRIDirectory, or use an SPM dataset co-registered with "
                    "lameg.invert.coregister (inversion_idx=)")
            hull = read_hull(path)
            if model.kind == "Nolte":  # SAMsrcV5 fits Nolte's expansion on the hull + 5 mm
                hull = (hull[0] + NOLTE_INFLATE * hull[1], hull[1])
        head = sam_head_model(model, sensors, hull)
        if fixed:
            L = fixed_lead_fields(sources.positions, sources.normals, sensors, head)
        else:
            L = free_lead_fields(sources.positions, sensors, head)
    if L.shape[0] != n_chan or L.shape[1] != sources.n_sources or L.ndim not in (2, 3) or (
            L.ndim == 3 and L.shape[2] != 3):
        raise LamegValueError(
            f"lead field has shape {L.shape}; expected ({n_chan}, {sources.n_sources}) or "
            f"({n_chan}, {sources.n_sources}, 3) (channels x sources [x xyz])")
    if not np.all(np.isfinite(L)):
        raise LamegDataError("the lead field contains NaN or infinite values")
    return L, rot


def _ctf_sphere_lead_fields(data: SamData, sources: SourceSet, model, fixed: bool) -> np.ndarray:
    """SAMsrcV5's sphere lead fields of a CTF dataset (:mod:`lameg.sam.ctf_forward`)."""
    from .ctf import read_hdm_spheres
    from .ctf_forward import sphere_lead_fields

    ds = data.ctf
    if model.kind == "SingleSphere":
        origin = np.asarray(model.origin_cm, float) * 0.01
    else:
        origin = read_hdm_spheres(ds.path / "default.hdm", ds)
    L = sphere_lead_fields(ds, sources.positions, origin).transpose(1, 0, 2)  # (M, V, 3)
    if fixed:
        return np.einsum("mvk,vk->mv", L, sources.normals)
    return L


def _spm_lead_fields(sources: SourceSet, data: SamData | None, chan_names: list[str],
                     fixed: bool, inversion_idx: int) -> tuple[np.ndarray, np.ndarray]:
    """Lead fields from the head model stored in an SPM dataset (see :mod:`lameg.sam.forward`)."""
    if data is None or data.fname is None or Path(data.fname).suffix != ".mat":
        raise LamegValueError("inversion_idx= needs an SPM dataset (.mat) as the data")
    fm = read_spm_forward(data.fname, inversion_idx)
    if sources.kind == "atlas":  # surface atlases: MRI mm -> head frame
        pos, nrm = fm.to_head(sources.positions * 1e3, sources.normals)
        rot = fm.mri_to_head[:3, :3] / np.cbrt(np.linalg.det(fm.mri_to_head[:3, :3]))
    else:  # grids and targets are defined in the head frame
        pos, nrm, rot = sources.positions, sources.normals, np.eye(3)
    sensors = fm.sensors.select(chan_names)
    if fixed:
        idx = fm.match_vertices(pos, nrm)
        if idx is not None:
            try:
                logger.info("using the stored gain matrix %s", fm.gain_path.name)
                return fm.gain(chan_names, idx), rot
            except LamegDataError as err:
                logger.warning("%s", err)
        return fixed_lead_fields(pos, nrm, sensors, fm.headmodel), rot
    return free_lead_fields(pos, sensors, fm.headmodel), rot


def sam_wts(
    params: SamParams,
    covariances: dict[str, SamCovariance] | None = None,
    *,
    lead_field: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    atlas: Any = None,
    data=None,
    inversion_idx: int | None = None,
    output_dir: str | os.PathLike | None = None,
    write: bool = True,
) -> SamWeights:
    """Compute SAM beamformer weights.

    Parameters
    ----------
    params : SamParams
        Uses ``Mu``, ``PropMu``, ``Pinv``, ``Normalize``, ``Unconstrained``, ``TargetName``,
        ``AtlasName``, ``X/Y/ZBounds``, ``ImageStep``, ``HullName``, ``Model``, ``CovName``,
        ``WtsName``, ``CovBand``.
    covariances : dict, optional
        Output of :func:`~lameg.sam.cov.sam_cov`; default: read from the covariance folder.
    lead_field : ndarray or callable, optional
        ``(n_channels, n_src, 3)`` free lead fields, ``(n_channels, n_src)`` fixed-orientation lead
        fields (used as they are: the orientation is already in them), or a callable mapping
        positions ``(n_src, 3)`` in m to free lead fields. Units T per A m. Default: computed
        with :mod:`lameg.forward` (see :mod:`lameg.sam.forward`) -- the head model of
        ``inversion_idx`` when given, else ``Model`` (``SingleSphere x y z``, ``MultiSphere`` or
        ``Nolte [N]`` on the hull ``HullName``) with the dataset's sensors.
    atlas : path, GiftiImage, LayerSurfaceSet or (positions_mm, orientations), optional
        Surface atlas (overrides ``AtlasName``); its VECTOR array gives the fixed orientations.
        A LayerSurfaceSet stands for its multilayer mesh (MRI mm), which needs
        ``inversion_idx``.
    data : optional
        Dataset (for the sensor geometry and the SAM folder); default ``DataSet``.
    inversion_idx : int, optional
        Use the head model of ``D.other.inv{inversion_idx + 1}`` of an SPM dataset
        co-registered with :func:`lameg.invert.coregister`: surface atlases are then in MRI
        (scanner RAS) mm and are mapped into the head frame with its registration, and when the
        sources are vertices of its mesh with its orientations the stored gain matrix is used
        (SPM's rank-2 lead field); otherwise lead fields come from its volume conductor. Grids
        and targets stay in the head frame.
    output_dir : path-like, optional
        SAM folder.
    write : bool
        Write ``<SAM>/<WtsName>,<lo>-<hi>Hz/`` with ``<Name>.npz`` (all results),
        ``<Name>.nii`` (SAMsrcV5's NIfTI weights for grids; GIfTI for atlases), ``<Name>CN.dat``
        (orientation eigenvalue spans), ``<Name>_MuNoise`` (with ``Mu``), ``weights.npz`` (all
        results, a lameg extra) and append ``<SAM>/sam_wts.param``.

    Returns
    -------
    SamWeights
    """
    from .cov import cov_set_name, input_sam_dir, output_sam_dir

    dataset = params.get("DataSet")
    if data is None and dataset is not None and (
            lead_field is None or covariances is None):
        data = _get_data(params, None)
    elif data is not None:
        from .io import as_sam_data

        data = as_sam_data(data)
    if data is not None:
        samdir = output_sam_dir(params, data, output_dir)
        indir = input_sam_dir(params, data, output_dir)
    else:
        samdir = indir = Path(output_dir) if output_dir else sam_directory(dataset)
    if covariances is None:
        band = params.require("CovBand", "wts")
        covariances = read_covariances(band_folder(indir, cov_set_name(params), band),
                                       list(data.chan_names) if data is not None else None)
        if data is not None:
            idx = next(iter(covariances.values())).chan_index
            if idx.size != data.n_channels or np.any(idx != data.chan_index):
                raise LamegDataError(
                    "the covariance files were computed on other channels than the dataset's "
                    "(channel indices differ); rerun sam_cov on this dataset")
    if "Global" not in covariances:
        raise LamegValueError("the covariance set has no Global covariance; run sam_cov first")
    glob = covariances["Global"]
    model = params.get("Model")
    origin = np.asarray(model.origin_cm) * 0.01 if model is not None and model.origin_cm else None
    sources = _source_set(params, atlas, str(data.fname) if data is not None and data.fname
                          else dataset, origin)
    chan_names = list(glob.chan_names)
    if data is not None and list(data.chan_names) != chan_names and lead_field is None:
        missing = sorted(set(chan_names) - set(data.chan_names))
        if missing:
            raise LamegDataError(f"the covariances use channels absent from the data: "
                                 f"{missing[:5]}")
    fixed = sources.normals is not None and not params.get("Unconstrained", False)
    L, rot = _lead_fields(lead_field, sources, params, data, chan_names, fixed, inversion_idx,
                          str(data.fname) if data is not None and data.fname else dataset)
    if params.is_set("Extent"):
        logger.warning("Extent is not used by sam_wts (no interpolation around voxels)")
    fmt = params.get("ImageFormat")
    if fmt is not None and getattr(fmt, "kind", "ORIG") == "TLRC":
        raise LamegNotImplementedError(
            "ImageFormat TLRC needs AFNI's @auto_tlrc and brain+tlrc (SAMsrcV5 runs them on the "
            "weights); use ImageFormat ORIG and transform the images with your AFNI/ANTs tools")
    if params.is_set("Transform"):
        raise LamegNotImplementedError("Transform (sam_coreg transforms) is not supported; "
                                       "co-register with lameg.invert.coregister instead")
    mu, prop = params.get("Mu"), params.get("PropMu")
    drop = int(params.get("Pinv", 0))

    def reg(c: SamCovariance):
        return regularise(c.C, c.noise, c.bandwidth, mu, prop)

    span = None
    if L.ndim == 2:
        B = L
        ori = np.full((sources.n_sources, 3), np.nan) if sources.normals is None else \
            sources.normals
    elif fixed:
        ori = sources.normals
        B = np.einsum("mvk,vk->mv", L, ori @ rot.T)
    else:
        orient = covariances.get("Orient", glob)
        Co, _ = reg(orient)
        ref = None if sources.normals is None else sources.normals @ rot.T
        ori_lf, span = max_snr_orientations(L, sam_pinv(Co, drop), ref)
        B = np.einsum("mvk,vk->mv", L, ori_lf)
        ori = ori_lf @ rot  # back to the source frame (rot is a rotation)
    weights, noise, covs = {}, {}, {}
    normalize = bool(params.get("Normalize", False))
    for name, c in covariances.items():
        if name == "Orient":
            continue
        Cr, nz = reg(c)
        W = unit_gain_weights(B, sam_pinv(Cr, drop))
        if normalize:
            W = W / np.sqrt(nz)
        weights[name], noise[name], covs[name] = W, nz, Cr
    result = SamWeights(weights, noise, {k: c.bandwidth for k, c in covariances.items()},
                        {k: c.band for k, c in covariances.items()}, ori, B, span, sources,
                        list(glob.chan_names), normalize, covs)
    if write:
        folder = band_folder(samdir, wts_set_name(params), glob.band)
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(result, folder)
        for name, W in weights.items():
            if sources.kind == "grid":
                write_sam_weights_nifti(folder / f"{name}.nii", W, sources, noise[name])
                if span is not None:
                    full = np.zeros(sources.grid_mask.size)
                    full[sources.grid_mask] = span
                    write_text(folder / f"{name}CN.dat", "".join(f"{x:g}\n" for x in full))
            else:
                write_weights_files(folder, name, W, sources, noise[name])
        if params.get("Field", False) and sources.kind == "grid":
            write_forward_file(samdir / f"{wts_set_name(params)}.fwd", B, sources,
                               getattr(data, "chan_index", None))
        if mu is not None or prop:
            for name in list(weights) + ["Orient"]:
                nz = noise.get(name)
                if nz is None and name in covariances:
                    nz = reg(covariances[name])[1]
                if nz is not None:
                    write_text(folder / f"{name}_MuNoise", f"{nz:e}\n")
        params.write_log(samdir / "sam_wts.param", "wts")
    return result


def write_forward_file(path, B: np.ndarray, sources: SourceSet, chan_index=None) -> Path:
    """SAMsrcV5's ``-B/--Field`` output ``<SAM>/<WtsName>.fwd``.

    The file holds ``SAMFWDSL``, a ``SAM_HDR`` (version 3, channels, voxels, ROI bounds and step in
    m), the channel indices and one float64 forward vector (T per A m, the solved orientation) per
    voxel, zero outside the ROI.

    Parameters
    ----------
    path : path
        Output file.
    B : ndarray, shape (n_src, M)
        Forward vectors of the sources inside the ROI, T per A m.
    sources : SourceSet
        The grid sources.
    chan_index : array_like of int, shape (M,), or None
        Channel indices stored in the file; None uses ``0 .. M - 1``.

    Returns
    -------
    Path
        ``path``.
    """
    import struct

    from .._utils import atomic_path

    m = B.shape[0]
    full = np.zeros((sources.grid_mask.size, m))
    full[sources.grid_mask] = B.T
    lo = np.asarray(sources.grid_origin, float)
    hi = lo + (np.asarray(sources.grid_shape) - 1) * sources.grid_step
    hdr = struct.pack("<i256siiI11d256s9iiiI", 3, b"", m, full.shape[0], 0, lo[0], hi[0], lo[1],
                      hi[1], lo[2], hi[2], float(sources.grid_step), 0.0, 0.0, 0.0, 0.0, b"",
                      *([0] * 9), 0, 0, 0)
    idx = np.arange(m) if chan_index is None else np.asarray(chan_index)
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as fh:
        fh.write(b"SAMFWDSL" + hdr + idx.astype("<i4").tobytes() + full.astype("<f8").tobytes())
    return Path(path)


@fill_doc
def wts_set_name(params: SamParams) -> str:
    """Name of the weights folder: ``WtsName``, else ``CovName``, else ``OutName``, else the
    parameter file's name (``cmdline`` without one), as SAMsrcV5.

    Parameters
    ----------
    %(sam_folder_name_body)s
    """
    from .cov import cov_set_name

    if params.is_set("WtsName"):
        return str(params["WtsName"])
    if params.is_set("CovName"):
        return str(params["CovName"])
    return cov_set_name(params)


def write_sam_weights_nifti(path, W: np.ndarray, sources: SourceSet, noise: float) -> Path:
    """SAMsrcV5's NIfTI weight file (``PutNIFTIWts``) for a grid.

    ``dim = (nZ, nY, nX, M)`` float32 with the Z index fastest (SAM's voxel order), zero weights
    outside the ROI, ``sform`` R = -y, A = x, S = z (mm), ``intent_name 'SAM Coefficients'`` and
    the noise power times 1e28 in the ``glmax`` slot, as SAMsrcV5 stores it.

    Parameters
    ----------
    path : path
        Output file (``.nii``).
    W : ndarray, shape (n_src, M)
        Weights of the sources inside the ROI, A m per T.
    sources : SourceSet
        The grid sources.
    noise : float
        Noise power, T^2.

    Returns
    -------
    Path
        ``path``.
    """
    import struct

    import nibabel as nib

    from .._utils import atomic_path

    nx, ny, nz = sources.grid_shape
    m = W.shape[1]
    full = np.zeros((sources.grid_mask.size, m), np.float32)
    full[sources.grid_mask] = W
    vol = full.reshape(nx, ny, nz, m).transpose(2, 1, 0, 3)
    step = float(sources.grid_step) * 1e3
    x0, y0, z0 = (np.asarray(sources.grid_origin, float) * 1e3).tolist()
    aff = np.array([[0.0, -step, 0.0, -y0], [0.0, 0.0, step, x0], [step, 0.0, 0.0, z0],
                    [0, 0, 0, 1.0]])
    img = nib.Nifti1Image(vol, None)
    h = img.header
    h.set_sform(aff, code=1)
    h.set_qform(None, code=0)
    h["pixdim"][1:5] = [step, step, step, 1.0]
    h["xyzt_units"] = 2
    h["intent_name"] = b"SAM Coefficients"
    h["cal_max"], h["cal_min"] = 1000.0, -1000.0
    h["vox_offset"] = 352.0
    raw = bytearray(h.binaryblock)
    struct.pack_into("<f", raw, 140, float(noise) * 1e28)
    with atomic_path(path, suffix=".tmp.nii") as tmp, open(tmp, "wb") as fh:
        fh.write(bytes(raw))
        fh.write(b"\0\0\0\0")
        fh.write(np.ascontiguousarray(vol.transpose(3, 2, 1, 0)).astype("<f4").tobytes())
    return Path(path)


def read_sam_weights_nifti(path) -> tuple[np.ndarray, float, np.ndarray, tuple[int, int, int]]:
    """Read a SAMsrcV5 NIfTI weight file (lameg's or SAMsrcV5's).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    W : ndarray, shape (n_voxels, n_channels)
        Weights in SAM's voxel order (X slowest, Z fastest), A m per T (zero outside the ROI).
    noise : float
        Noise power from the ``glmax`` slot, T^2 (float32 precision).
    affine : ndarray, shape (4, 4)
        The sform (mm).
    shape : (int, int, int)
        Grid (nX, nY, nZ).
    """
    import struct

    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"weights {path} not found; run sam_wts first")
    raw = path.read_bytes()
    if len(raw) < 352 or struct.unpack_from("<i", raw, 0)[0] != 348:
        raise LamegFormatError(f"{path} is not a (little-endian) NIfTI-1 file")
    dims = struct.unpack_from("<8h", raw, 40)
    dtype = struct.unpack_from("<h", raw, 70)[0]
    if dtype != 16:
        raise LamegFormatError(f"{path}: only float32 SAM weights are supported")
    off = int(struct.unpack_from("<f", raw, 108)[0])
    nz, ny, nx, m = dims[1], dims[2], dims[3], max(dims[4], 1)
    data = np.frombuffer(raw, "<f4", nz * ny * nx * m, off).reshape(m, nx, ny, nz)
    W = data.reshape(m, -1).T.astype(float)
    noise = struct.unpack_from("<f", raw, 140)[0] * 1e-28
    srow = np.array(struct.unpack_from("<12f", raw, 280), float).reshape(3, 4)
    return W, float(noise), np.vstack([srow, [0, 0, 0, 1]]), (nx, ny, nz)


def read_noise_file(folder, name: str) -> float:
    """SAMsrcV5's noise of a weight set (its ``GetNoise``).

    Parameters
    ----------
    folder : path-like
    name : str
        Covariance/weight name (``Global``, ``Sum``, a marker).

    Returns
    -------
    float
        ``<name>_MuNoise`` if present, else ``<name>_Noise``, T^2.
    """
    folder = Path(folder)
    for suffix in ("_MuNoise", "_Noise"):
        f = folder / f"{name}{suffix}"
        if f.is_file():
            try:
                return float(f.read_text().split()[0])
            except (ValueError, IndexError):
                raise LamegFormatError(f"{f}: cannot read the noise value") from None
    raise LamegFileNotFoundError(f"no noise file for {name} in {folder} (did you run sam_cov?)")


def load_weight_set(folder, chan_names: list[str] | None = None) -> SamWeights:
    """Weights of a folder written by lameg (``weights.npz``) or by SAMsrcV5 (``<Name>.nii``).

    For SAMsrcV5 folders the grid comes from the NIfTI affine, the ROI from the non-zero weight rows
    and each set's noise from ``<Name>_MuNoise`` or ``<Name>_Noise`` (SAMsrcV5's ``GetNoise``).

    Parameters
    ----------
    folder : path-like
        The weights folder.
    chan_names : list of str, optional
        Channel names (the files store none).

    Returns
    -------
    SamWeights
    """
    folder = Path(folder)
    if (folder / "weights.npz").is_file():
        return load_weights(folder)
    files = [f for f in sorted(folder.glob("*.nii")) if not f.stem.endswith("_at")]
    if not files:
        raise LamegFileNotFoundError(f"no SAM weights in {folder}; run sam_wts first")
    weights, noise = {}, {}
    shape = aff = None
    for f in files:
        W, _, aff, shape = read_sam_weights_nifti(f)
        weights[f.stem] = W
        noise[f.stem] = read_noise_file(folder, f.stem)
    step = abs(aff[2, 0]) * 1e-3
    origin = np.array([aff[1, 3], -aff[0, 3], aff[2, 3]]) * 1e-3
    mask = np.zeros(int(np.prod(shape)), bool)
    for W in weights.values():
        mask |= np.any(W != 0, axis=1)
    axes = [origin[i] + step * np.arange(shape[i]) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    src = SourceSet("grid", pts[mask], None, tuple(shape), mask, origin, step, name=str(folder))
    band = _folder_band(folder)
    m = next(iter(weights.values())).shape[1]
    names = list(chan_names) if chan_names is not None and len(chan_names) == m else [
        f"ch{i}" for i in range(m)]
    return SamWeights({k: W[mask] for k, W in weights.items()}, noise,
                      {k: np.nan for k in weights}, {k: band for k in weights},
                      np.full((mask.sum(), 3), np.nan), np.zeros((m, mask.sum())), None, src,
                      names, False, {})


def _folder_band(folder: Path) -> tuple[float, float]:
    import re

    m = re.search(r",(\d+)-(\d+)Hz$", folder.name)
    return (float(m.group(1)), float(m.group(2))) if m else (np.nan, np.nan)


def save_weights(w: SamWeights, folder: Path) -> Path:
    """Store a :class:`SamWeights` as ``<folder>/weights.npz``.

    Parameters
    ----------
    w : SamWeights
        The weights to store.
    folder : Path
        Output folder (must exist).

    Returns
    -------
    Path
        The file written.
    """
    from .._utils import atomic_path

    s = w.sources
    arrays = {f"W_{k}": v for k, v in w.weights.items()}
    arrays.update({f"C_{k}": v for k, v in w.covariances.items()})
    meta = {
        "names": np.array(list(w.weights)),
        "noise": np.array([w.noise[k] for k in w.weights]),
        "bandwidth": np.array([w.bandwidth[k] for k in w.weights]),
        "band": np.array([w.band[k] for k in w.weights]),
        "orientations": w.orientations, "forward": w.forward,
        "span": w.span if w.span is not None else np.zeros(0),
        "chan_names": np.array(w.chan_names), "normalized": np.array(w.normalized),
        "kind": np.array(s.kind), "positions": s.positions, "source_name": np.array(s.name),
        "normals": s.normals if s.normals is not None else np.zeros((0, 3)),
    }
    if s.kind == "grid":
        meta.update(grid_shape=np.array(s.grid_shape), grid_mask=s.grid_mask,
                    grid_origin=s.grid_origin, grid_step=np.array(s.grid_step))
    if s.faces is not None:
        meta["faces"] = s.faces
    path = folder / "weights.npz"
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays, **meta)
    return path


def load_weights(folder: str | os.PathLike) -> SamWeights:
    """Read the ``weights.npz`` written by :func:`sam_wts`.

    Parameters
    ----------
    folder : path-like
        The weights folder ``<SAM>/<WtsName>,<lo>-<hi>Hz``.

    Returns
    -------
    SamWeights
    """
    path = Path(folder) / "weights.npz"
    if not path.is_file():
        raise LamegFileNotFoundError(f"no SAM weights in {folder}; run 'lameg-sam wts' first")
    z = np.load(path, allow_pickle=False)
    names = [str(n) for n in z["names"]]
    kind = str(z["kind"])
    normals = z["normals"] if z["normals"].size else None
    if kind == "grid":
        src = SourceSet(kind, z["positions"], normals, tuple(int(x) for x in z["grid_shape"]),
                        z["grid_mask"], z["grid_origin"], float(z["grid_step"]),
                        name=str(z["source_name"]))
    else:
        src = SourceSet(kind, z["positions"], normals,
                        faces=z["faces"] if "faces" in z else None, name=str(z["source_name"]))
    return SamWeights(
        {n: z[f"W_{n}"] for n in names}, dict(zip(names, map(float, z["noise"]))),
        dict(zip(names, map(float, z["bandwidth"]))),
        {n: tuple(b) for n, b in zip(names, z["band"])}, z["orientations"], z["forward"],
        z["span"] if z["span"].size else None, src, [str(c) for c in z["chan_names"]],
        bool(z["normalized"]), {n: z[f"C_{n}"] for n in names if f"C_{n}" in z})
