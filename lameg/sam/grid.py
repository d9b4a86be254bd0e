"""Source sets of the SAM programs: a volumetric grid, a surface atlas or a target list.

Grid rules (SAMsrcV5): the X/Y/Z bounds (cm, CTF head frame: x anterior, y left, z superior) are
snapped outwards to half-integer multiples of ``ImageStep`` so that voxel centres lie at
``(n + 1/2) * step``; voxels are ordered with X slowest and Z fastest. A voxel is inside the hull
when ``(voxel - v) . n < 0`` for the hull vertex ``v`` nearest to it and its outward normal ``n``.
With the single-sphere model and no hull, voxels between 5 mm and 120 mm from the sphere origin are
kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from .._utils import logger
from ..exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError

__all__ = ["SourceSet", "read_hull", "write_hull", "mri_path"]


@dataclass
class SourceSet:
    """Where beamformer weights are computed.

    Parameters
    ----------
    kind : {'grid', 'atlas', 'targets', 'sources'}
    positions : ndarray, shape (n_src, 3)
        Source positions, m (only inside-hull voxels for grids).
    normals : ndarray, shape (n_src, 3) or None
        Fixed orientations (surface atlases); None means orientations are solved.
    grid_shape : tuple (nX, nY, nZ) or None
    grid_mask : ndarray of bool, shape (nX*nY*nZ,) or None
        Which voxels of the full grid are in ``positions``.
    grid_origin : ndarray, shape (3,) or None
        Centre of the first voxel, m.
    grid_step : float or None
        Voxel size, m.
    faces : ndarray or None
        Triangles of an atlas mesh.
    name : str
        Description (file name) for logs and outputs.
    frame : {'head', 'mri'}
        Frame of ``positions``/``normals``: the MEG head frame (SAM's convention for grids,
        targets and atlases) or MRI scanner RAS (the meshes of a
        :class:`lameg.surf.LayerSurfaceSet`).
    """

    kind: str
    positions: np.ndarray
    normals: np.ndarray | None = None
    grid_shape: tuple[int, int, int] | None = None
    grid_mask: np.ndarray | None = None
    grid_origin: np.ndarray | None = None
    grid_step: float | None = None
    faces: np.ndarray | None = None
    name: str = ""
    frame: str = "head"

    @property
    def n_sources(self) -> int:
        """Number of sources (voxels inside the ROI for grids)."""
        return self.positions.shape[0]


def _snap(lo: float, hi: float, step: float) -> tuple[float, int]:
    start = step * (np.floor(lo / step - 0.5 + 1e-9) + 0.5)
    end = step * (np.ceil(hi / step - 0.5 - 1e-9) + 0.5)
    return start, int(round((end - start) / step)) + 1


def make_grid(xb, yb, zb, step: float, inside=None) -> SourceSet:
    """Regular grid from bounds and a step, restricted by an inside test.

    Parameters
    ----------
    xb, yb, zb : tuple of float, (2,)
        Lower and upper bounds along x, y and z, m.
    step : float
        Grid step, m (positive).
    inside : callable or None
        ``inside(points (n, 3) in m) -> bool mask (n,)``; None keeps every voxel.

    Returns
    -------
    SourceSet
        Grid sources (positions in m) with their grid shape, mask, origin and step.
    """
    if not step > 0:
        raise LamegValueError(f"ImageStep must be positive, got {step}")
    axes, starts = [], []
    for lo, hi in (xb, yb, zb):
        s, n = _snap(lo, hi, step)
        starts.append(s)
        axes.append(s + step * np.arange(n))
    shape = tuple(len(a) for a in axes)
    if np.prod(shape) > 5e6:
        raise LamegValueError(f"grid of {shape} voxels is too large; increase ImageStep")
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    mask = np.ones(len(pts), bool) if inside is None else np.asarray(inside(pts), bool)
    if not mask.any():
        raise LamegValueError("no grid voxel lies inside the hull; check the bounds and the hull")
    return SourceSet("grid", pts[mask], None, shape, mask, np.array(starts), float(step))


def read_hull(path) -> tuple[np.ndarray, np.ndarray]:
    """Hull vertices (m) and outward unit normals.

    Reads SAM's ``hull.shape`` (written by ``orthohull``/``meshnorm``): the vertex count, then
    ``x y z nx ny nz`` per vertex in **metres** (head frame), then a triangle section (count and
    ``i j k`` lines), which is not needed here. Vertices with zero-length normals are dropped, as
    SAMsrcV5 does (more than 100 of them means a corrupted file). GIfTI/FreeSurfer meshes (mm) are
    also accepted; their normals are computed.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    vertices : ndarray, shape (n, 3)
        m.
    normals : ndarray, shape (n, 3)
        Unit outward normals.

    Raises
    ------
    LamegFileNotFoundError, LamegFormatError
    """
    path = Path(path)
    if not path.is_file():
        raise LamegFileNotFoundError(f"hull {path} not found (set HullName / MRIDirectory)")
    if path.suffix == ".gii" or path.name.endswith((".surf", "skull", "inner_skull")):
        import nibabel as nib

        if path.suffix == ".gii":
            img = nib.load(str(path))
            v, f = (np.asarray(img.darrays[0].data, float), np.asarray(img.darrays[1].data, int))
        else:
            v, f = nib.freesurfer.read_geometry(str(path))
        return v * 1e-3, _outward_normals(v, f)
    toks = path.read_text(errors="replace").split()
    try:
        nv = int(toks[0])
    except (IndexError, ValueError):
        raise LamegFormatError(f"{path}: a hull.shape starts with its vertex count") from None
    if nv <= 0 or len(toks) < 1 + 6 * nv:
        raise LamegFormatError(f"{path}: expected {nv} vertex lines 'x y z nx ny nz' (m)")
    try:
        a = np.asarray(toks[1:1 + 6 * nv], float).reshape(nv, 6)
    except ValueError:
        raise LamegFormatError(f"{path}: non-numeric vertex line") from None
    if np.any(a[:, :3] > 0.2):
        raise LamegFormatError(f"{path}: vertex > 20 cm from the origin -- a corrupted hull.shape"
                               " (or a hull in cm/mm: hull.shape is in metres)")
    n = a[:, 3:]
    nrm = np.linalg.norm(n, axis=1, keepdims=True)
    keep = nrm[:, 0] > 0
    if keep.sum() < nv - 100:
        raise LamegFormatError(f"{path}: more than 100 zero-length normals -- a corrupted "
                               "hull.shape")
    return a[keep, :3], n[keep] / nrm[keep]


def write_hull(path, vertices: np.ndarray, normals: np.ndarray, faces: np.ndarray,
               decimals: int = 6) -> Path:
    """Write a SAM ``hull.shape`` as ``meshnorm`` does (vertices and normals in m, then triangles).

    Parameters
    ----------
    path : path-like
    vertices : ndarray, shape (n, 3)
        m, head frame.
    normals : ndarray, shape (n, 3)
        Unit outward normals.
    faces : ndarray of int, shape (n_faces, 3)
    decimals : int
        Decimals written (``meshnorm``: 6, i.e. micrometres; SAMsrcV5 reads any).

    Returns
    -------
    Path
    """
    from .._utils import atomic_path

    v = np.asarray(vertices, float)
    n = np.asarray(normals, float)
    f = np.asarray(faces, int)
    fmt = " ".join([f"{{:.{int(decimals)}f}}"] * 6)
    lines = [f"{len(v)}"] + [fmt.format(*a, *b) for a, b in zip(v, n)]
    lines += [f"{len(f)}"] + [f"{i} {j} {k}" for i, j, k in f]
    with atomic_path(path, suffix=".tmp") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return Path(path)


def _outward_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-300)
    if np.sum(np.einsum("ij,ij->i", vn, v - v.mean(0))) < 0:
        vn = -vn
    return vn


def hull_inside(hull_v: np.ndarray, hull_n: np.ndarray):
    """Inside test for :func:`make_grid` from hull vertices and outward normals.

    Parameters
    ----------
    hull_v : ndarray, shape (n_vertices, 3)
        Hull vertices, m.
    hull_n : ndarray, shape (n_vertices, 3)
        Outward unit normals at the vertices.

    Returns
    -------
    callable
        ``inside(points (n, 3) in m) -> bool mask (n,)``: True when a point lies behind the
        tangent plane of its nearest hull vertex.
    """
    tree = cKDTree(hull_v)

    def inside(pts):
        _, i = tree.query(pts)
        return np.einsum("ij,ij->i", pts - hull_v[i], hull_n[i]) < 0

    return inside


def sphere_inside(origin_m, r_min=0.005, r_max=0.120):
    """Inside test of the single-sphere model: ``r_min < |p - origin| < r_max``.

    Parameters
    ----------
    origin_m : array_like, shape (3,)
        Sphere origin, m.
    r_min, r_max : float
        Radial bounds, m.

    Returns
    -------
    callable
        ``inside(points (n, 3) in m) -> bool mask (n,)``.
    """
    o = np.asarray(origin_m, float)

    def inside(pts):
        r = np.linalg.norm(pts - o, axis=1)
        return (r > r_min) & (r < r_max)

    return inside


def mri_path(params, name: str, dataset: str | None) -> Path:
    """Resolve an MRI-derived file name as SAMsrcV5's ``GetMRIPath``.

    A name that is absolute, starts with ``~`` or contains ``%`` is itself the pattern; otherwise
    ``MRIPattern`` (default ``%M/%P/%s``) is expanded with ``%M`` = ``MRIDirectory`` (default
    ``mri``, relative to the working directory), ``%P`` = the dataset prefix (``PrefixLength``),
    ``%s`` = the name, ``%d`` = the dataset name, and ``%H %S %D %R`` = the ``_``-separated fields
    of the dataset name.

    Parameters
    ----------
    params : SamParams
    name : str
        File name (``hull.shape``, an atlas, a target list).
    dataset : str or None
        The dataset name as given to ``-r``.

    Returns
    -------
    Path
    """
    from .io import dataset_prefix

    ds = str(dataset).rstrip("/").rsplit("/", 1)[-1] if dataset else ""
    fields = (ds.split("_") + ["", "", "", ""])[:4]
    fields[3] = "_".join(ds.split("_")[3:]) if len(ds.split("_")) > 3 else fields[3]

    def expand(pat: str, name_sub: str) -> str:
        out, i = [], 0
        if pat.startswith("~"):
            out.append(os.path.expanduser("~"))
            i = 1
        subs = {"M": str(params["MRIDirectory"]), "P": dataset_prefix(ds, params["PrefixLength"]),
                "s": name_sub, "d": str(dataset or ""), "H": fields[0], "S": fields[1],
                "D": fields[2], "R": fields[3]}
        while i < len(pat):
            if pat[i] == "%" and i + 1 < len(pat):
                out.append(subs.get(pat[i + 1], ""))
                i += 2
            else:
                out.append(pat[i])
                i += 1
        return "".join(out)

    if "%" in name or name.startswith(("/", "~")):
        return Path(expand(name, ""))
    return Path(expand(str(params["MRIPattern"]), name))


def grid_from_params(params, dataset: str | None, origin_m=None) -> SourceSet:
    """The ROI grid of ``XBounds/YBounds/ZBounds/ImageStep`` and its voxels inside the head.

    As SAMsrcV5: with ``Model SingleSphere`` a voxel is used when it lies between 5 and 120 mm
    from the sphere origin; with ``MultiSphere``/``Nolte`` when it is inside the hull
    (``HullName``, default ``hull.shape`` under ``MRIDirectory``), which is then required. Without
    a ``Model`` the hull is used when found.

    Parameters
    ----------
    params : SamParams
        Parameters (bounds and step in cm, as in the parameter file).
    dataset : str or None
        Dataset name (locates MRI-derived files such as the hull).
    origin_m : array_like, shape (3,), or None
        Single-sphere origin, m (for ``Model SingleSphere``).

    Returns
    -------
    SourceSet
        Grid sources (positions in m) with their grid shape, mask, origin and step.
    """
    from .forward import model_spec

    for k in ("XBounds", "YBounds", "ZBounds", "ImageStep"):
        params.require(k, "wts")
    model = model_spec(params)
    inside = None
    hull_name = params["HullName"]
    hull = mri_path(params, hull_name, dataset)
    if model is not None and model.kind != "SingleSphere" and not params.is_set("MRIDirectory"):
        raise LamegValueError(f"Model {model.kind} needs the MRIDirectory root (for the hull); "
                              "set MRIDirectory (-i)")
    if model is not None and model.kind == "SingleSphere":
        inside = sphere_inside(np.asarray(model.origin_cm, float) * 0.01)
    elif hull.is_file():
        inside = hull_inside(*read_hull(hull))
    elif model is not None or params.is_set("HullName"):
        raise LamegFileNotFoundError(
            f"hull {hull} not found (HullName {hull_name}); Model {model.kind if model else ''} "
            "needs the hull (MRIDirectory/MRIPattern/PrefixLength locate it)")
    elif origin_m is not None:
        inside = sphere_inside(origin_m)
    else:
        logger.warning("no hull %s found: every grid voxel is used", hull)
    g = make_grid(params.si("XBounds"), params.si("YBounds"), params.si("ZBounds"),
                  params.si("ImageStep"), inside)
    g.name = "grid"
    return g
