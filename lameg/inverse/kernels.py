"""Source-prior smoothing kernels ("patches").

* :func:`green_kernel` - SPM's graph-Laplacian Green function (``smooth = s``, 0 <= s < 1):
  ``QG = (sum_{i<8} GL^i / i!)`` thresholded at ``exp(-8)`` and squared, with
  ``GL = (A - diag(A 1)) s / 2`` and ``A`` the binary adjacency of the mesh. It depends only on
  the mesh topology.
* :func:`geodesic_kernel` - laMEG's geodesic Gaussian patches
  (``spm_eeg_smoothmesh_multilayer_mm``): within each layer, ``q = exp(-d^2 / 2 sigma^2)`` for
  exact geodesic distance ``d <= FWHM`` (sigma = FWHM / 2.355), columns normalised to sum to
  1, no smoothing across layers. Exact geodesics (the distances of the algorithm behind
  ``spm_mesh_geodesic``) are computed only within ``FWHM`` of each vertex, so a kernel takes
  seconds instead of SPM's minutes. Kernels are cached on disk by the hash of the mesh and the
  FWHM.

Geodesic back ends (same distances up to rounding, ~1e-13 mm):

* ``'native'`` (default): :func:`lameg.mesh.geodesic.local_geodesic_distances`, all sources
  of a layer at once as NumPy arrays, ~30-40 us per vertex (28,609-vertex layer: ~1 s).
* ``'pygeodesic'`` (optional package): Kirsanov's exact algorithm, sources propagated in
  groups whose members are more than ``2 FWHM`` apart, so that one multi-source propagation
  gives all of that group's patches at once (~120 us per vertex).
* ``'gdist'``: ``tvb-gdist``'s ``local_gdist_matrix``, which resets and scans the whole mesh
  for every source vertex (O(n^2): ~4 s for 10k vertices, ~16 s for 20k).

Layers are computed in parallel (``n_jobs``): threads for the native back end (NumPy releases
the GIL in its kernels; no process start-up, no copies), processes for the others.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import scipy.sparse as sp

from .. import _cache
from .._utils import hash_arrays, logger, progress
from .._validate import check_mesh
from ..exceptions import LamegValueError
from ..mesh.adjacency import mesh_adjacency
from ..mesh.geodesic import local_geodesic_distances
from ..mesh.normals import face_areas


def green_kernel(faces, n_vertices: int, s: float = 0.6) -> sp.csc_matrix:
    """SPM's Green-function smoother ``QG`` (``msp_smooth``), shape (n, n), sparse.

    Parameters
    ----------
    faces : array_like (m, 3)
        0-based triangles.
    n_vertices : int
        Number of vertices.
    s : float
        Smoothness, 0 <= s < 1 (SPM default 0.6).

    Returns
    -------
    scipy.sparse.csc_matrix, shape (n_vertices, n_vertices)
        ``QG``, a fresh copy (callers may modify it).
    """
    if not 0 <= s < 1:
        raise LamegValueError(f"Green-function smoothness must be in [0, 1), got {s}")
    from .cache import array_key, cached

    faces = np.asarray(faces, dtype=np.int64)
    key = array_key(faces, int(n_vertices), float(s), extra="green_kernel")
    # topology only: computed once per mesh and process (copy: callers may modify it)
    return cached(key, lambda: _green_kernel(faces, n_vertices, s)).copy()


def _green_kernel(faces, n_vertices: int, s: float) -> sp.csc_matrix:
    a = mesh_adjacency(faces, n_vertices)
    gl = (a - sp.diags(np.asarray(a.sum(axis=1)).ravel())) * (s / 2.0)
    gl = gl.tocsr()
    qi = sp.identity(n_vertices, format="csr")
    qg = sp.csr_matrix((n_vertices, n_vertices))
    for i in range(1, 9):
        qg = qg + qi
        qi = (qi @ gl) / i
    qg = qg.multiply(qg > np.exp(-8)).tocsr()
    qg = qg @ qg
    return qg.tocsc()


def _mean_vertex_spacing(vertices, faces) -> float:
    # a units check (x0.01..x100): an even sample of 20,000 faces is plenty
    step = max(1, len(faces) // 20_000)
    return float(np.mean(np.sqrt(face_areas(vertices, faces[::step]))))




def _separated_groups(vertices: np.ndarray, sep: float) -> list[np.ndarray]:
    """Greedy colouring: groups of vertices whose pairwise distances all exceed ``sep``."""
    from scipy.spatial import cKDTree

    n = len(vertices)
    pairs = cKDTree(vertices).query_pairs(sep, output_type="ndarray")
    a = sp.coo_matrix((np.ones(len(pairs), dtype=bool), (pairs[:, 0], pairs[:, 1])),
                      shape=(n, n))
    a = (a + a.T).tocsr()
    color = np.full(n, -1, dtype=np.int64)
    ind, ptr = a.indices, a.indptr
    for i in range(n):  # sequential by nature; ~5 us per vertex
        nb = color[ind[ptr[i]:ptr[i + 1]]]
        used = np.zeros(len(nb) + 1, dtype=bool)
        used[nb[(nb >= 0) & (nb < len(used))]] = True
        color[i] = int(np.argmin(used))
    order = np.argsort(color, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(color[order])) + 1)


class _Int64Zeros:
    """Stand-in for ``numpy`` inside ``pygeodesic.geodesic`` during a call.

    ``geodesicDistances`` stores ``best_source`` in an int32 array; for vertices the
    propagation never reached the (unused) index is an uninitialised unsigned value that can
    overflow int32 and abort the call. Allocating that array as int64 avoids the overflow; the
    index is only read where the distance is finite (then it is valid).
    """

    def __init__(self, module):
        self._np = module

    def __getattr__(self, name):
        return getattr(self._np, name)

    def zeros(self, shape, dtype=float, **kw):
        if np.dtype(dtype) == np.int32:
            dtype = np.int64
        return self._np.zeros(shape, dtype=dtype, **kw)


_PYGEO_LOCK = threading.Lock()
# With a process-based back end, layers of at least this many vertices are computed in
# parallel by default.
PARALLEL_MIN_VERTICES = 10_000


def _layer_distances_pygeodesic(vertices, faces, fwhm):
    import pygeodesic.geodesic as pgeo

    alg = pgeo.PyGeodesicAlgorithmExact(vertices, np.ascontiguousarray(faces, dtype=np.int32))
    with _PYGEO_LOCK:
        orig = pgeo.numpy
        pgeo.numpy = _Int64Zeros(np)
        try:
            return _grouped_propagation(alg, vertices, fwhm)
        finally:
            pgeo.numpy = orig


def _grouped_propagation(alg, vertices, fwhm):
    """(source, target, distance) of every pair within ``fwhm`` by grouped propagation."""
    src_l, dst_l, d_l = [], [], []
    for grp in _separated_groups(vertices, 2.0 * fwhm * (1 + 1e-9)):
        d, best = alg.geodesicDistances(grp.astype(np.int32), None, float(fwhm))
        if d is None:
            raise RuntimeError("pygeodesic rejected the mesh or the sources")
        hit = np.flatnonzero(d <= fwhm)
        src_l.append(grp[np.asarray(best[hit], dtype=np.int64)])
        dst_l.append(hit)
        d_l.append(d[hit])
    return np.concatenate(src_l), np.concatenate(dst_l), np.concatenate(d_l)


def _layer_distances_gdist(vertices, faces, fwhm):
    import gdist

    d = gdist.local_gdist_matrix(vertices, np.ascontiguousarray(faces, dtype=np.int32),
                                 max_distance=float(fwhm))
    d = sp.coo_matrix(d)
    return d.row.astype(np.int64), d.col.astype(np.int64), d.data


def _layer_kernel(vertices, faces, fwhm, backend):
    """One layer's normalised kernel in CSC form: (data, indices, indptr); column = source."""
    nv = len(vertices)
    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    if backend == "native":
        src, dst, dist = local_geodesic_distances(vertices, faces, fwhm)
    elif backend == "pygeodesic":
        try:
            src, dst, dist = _layer_distances_pygeodesic(vertices, faces, fwhm)
        except Exception as exc:  # any failure of the optional library: use tvb-gdist
            logger.warning("pygeodesic failed (%s); using tvb-gdist for this layer", exc)
            src, dst, dist = _layer_distances_gdist(vertices, faces, fwhm)
    else:
        src, dst, dist = _layer_distances_gdist(vertices, faces, fwhm)
    # tvb-gdist semantics: only positive off-diagonal distances within FWHM, plus the vertex
    keep = (dist <= fwhm) & (src != dst) & (dist > 0)
    src, dst, dist = src[keep], dst[keep], dist[keep]
    key = src * nv + dst
    if np.any(key[1:] <= key[:-1]):  # column-major order (lameg's distances come sorted)
        order = np.argsort(key, kind="stable")
        src, dst, dist, key = src[order], dst[order], dist[order], key[order]
    # each vertex's own entry, inserted in place: the pairs stay sorted by (column, row)
    diag = np.arange(nv)
    at = np.searchsorted(key, diag * (nv + 1))
    src, dst = np.insert(src, at, diag), np.insert(dst, at, diag)
    dist = np.insert(dist, at, 0.0)
    sigma = fwhm / 2.355
    q = np.exp(-(dist**2) / (2 * sigma**2))
    keep = q > np.exp(-8)
    src, dst, q = src[keep], dst[keep], q[keep]
    counts = np.bincount(src, minlength=nv)
    tot = np.bincount(src, weights=q, minlength=nv)
    indptr = np.zeros(nv + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return q / tot[src], dst, indptr


def _geodesic_backend(requested: str) -> str:
    if requested not in ("auto", "native", "pygeodesic", "gdist"):
        raise LamegValueError("backend must be 'auto', 'native', 'pygeodesic' or 'gdist'")
    if requested == "pygeodesic":
        try:
            import pygeodesic.geodesic  # noqa: F401
        except ImportError as exc:
            raise LamegValueError("backend='pygeodesic' needs the optional pygeodesic package "
                                  "(pip install pygeodesic); the default back end needs "
                                  "nothing") from exc
    return "native" if requested == "auto" else requested


def geodesic_kernel(vertices, faces, fwhm: float, n_layers: int = 1, *,
                    cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                    verbose: bool = False, n_jobs: int | None = None,
                    backend: str = "auto") -> sp.csc_matrix:
    """Geodesic Gaussian patch kernel in mm, block-diagonal by layer, columns summing to 1.

    Parameters
    ----------
    vertices : array_like (n, 3)
        Mesh vertices, mm (layer-major for multilayer meshes).
    faces : array_like (m, 3)
        0-based triangles; no triangle may join two layers.
    fwhm : float
        Patch FWHM, mm (support is cut at ``d <= fwhm``).
    n_layers : int
        Number of layers (``n`` must be divisible by it).
    cache_dir : path or None
        Where kernels are cached (default ``<cache root>/kernels``, see :mod:`lameg._cache`).
    use_cache : bool
        Read/write the cache.
    verbose : bool
        Show a progress bar over layers.
    n_jobs : int or None
        Layers computed in parallel (joblib threads for the native back end, processes for the
        others; 1 = serial, -1 = all cores). Default: all cores when there are several layers
        and either the native back end (threads cost nothing to start) or at least
        :data:`PARALLEL_MIN_VERTICES` vertices per layer; else 1 (process start-up would cost
        more than it saves).
    backend : {'auto', 'native', 'pygeodesic', 'gdist'}
        Exact-geodesic implementation (module docstring): lameg's vectorised one ('auto'), or
        the Kirsanov implementations in ``pygeodesic`` (grouped multi-source propagation) and
        ``tvb-gdist``. All give the same distances up to rounding.

    Returns
    -------
    scipy.sparse.csc_matrix, shape (n, n)
        ``QG[:, j]`` is the normalised patch centred on vertex ``j``.
    """
    vertices, faces = check_mesh(vertices, faces, finite=True)
    n = len(vertices)
    if not np.isfinite(fwhm) or fwhm <= 0:
        raise LamegValueError(f"patch FWHM must be a positive number of mm, got {fwhm}")
    if n_layers < 1 or n % n_layers:
        raise LamegValueError(f"{n} vertices cannot be split into {n_layers} equal layers")
    spacing = _mean_vertex_spacing(vertices, faces)
    if not (spacing / 100 <= fwhm <= 100 * spacing):
        raise LamegValueError(
            f"FWHM {fwhm} mm is incompatible with the mean vertex spacing {spacing:.3g} mm "
            "(must be within x0.01..x100); check the mesh units (mm expected)")
    key = hash_arrays(vertices, faces, extra=f"geodesic|{fwhm!r}|{n_layers}|v1")
    cache_file = _cache.cache_dir("kernels", cache_dir) / f"QG_geodesic_{key}.npz"
    from .cache import lookup, store

    mem_key = f"geodesic_kernel|{key}"
    if use_cache:
        hit = lookup(mem_key)  # this process already built or read it
        if hit is not None:
            return hit.copy()
    if use_cache:
        qg = _cache.load_sparse_entry(cache_file)  # verified; corrupted entries are evicted
        if qg is not None:
            store(mem_key, qg.copy())
            return qg
    backend = _geodesic_backend(backend)
    nv = n // n_layers
    layer_of_face = faces // nv
    if np.any(layer_of_face.min(axis=1) != layer_of_face.max(axis=1)):
        raise LamegValueError("some triangles join two layers; the multilayer mesh is invalid")
    if n_jobs is None:
        big = backend == "native" or nv >= PARALLEL_MIN_VERTICES
        n_jobs = -1 if n_layers > 1 and big else 1
    jobs = []
    for layer in range(n_layers):
        lf = faces[layer_of_face[:, 0] == layer] - layer * nv
        jobs.append((vertices[layer * nv:(layer + 1) * nv], lf))
    if n_jobs != 1 and n_layers > 1:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs, prefer="threads" if backend == "native" else None)(
            delayed(_layer_kernel)(lv, lf, float(fwhm), backend) for lv, lf in jobs)
    else:
        parts = [_layer_kernel(lv, lf, float(fwhm), backend)
                 for lv, lf in progress(jobs, verbose, desc="geodesic kernel", unit="layer")]
    # block-diagonal by layer: the layers' CSC arrays, offset, side by side
    starts = np.cumsum([0] + [len(d) for d, _, _ in parts])
    data = np.concatenate([d for d, _, _ in parts])
    indices = np.concatenate([i + k * nv for k, (_, i, _) in enumerate(parts)])
    indptr = np.concatenate([p[:-1] + starts[k] for k, (_, _, p) in enumerate(parts)]
                            + [starts[-1:]])
    qg = sp.csc_matrix((data, indices, indptr), shape=(n, n))
    qg.has_sorted_indices = True  # rows ascend within every column, no duplicates
    if use_cache:
        store(mem_key, qg.copy())
        _cache.save_sparse_entry(cache_file, qg)
    return qg
