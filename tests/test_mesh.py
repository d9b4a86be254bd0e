"""Tests of lameg.mesh: normals, topology, decimation, exact point-to-mesh distance."""

from __future__ import annotations

import numpy as np
import pytest

from lameg import surf
from lameg.exceptions import LamegDataError, LamegValueError
from lameg.mesh import (
    decimate_vertex_subset,
    edge_face_counts,
    face_normals,
    find_non_manifold_edges,
    is_consistently_oriented,
    mesh_adjacency,
    normit,
    orient_outward,
    remove_unconnected_vertices,
    remove_vertices,
    signed_volume,
    split_connected_components,
    vertex_normals,
)
from lameg.mesh.distance import (
    closest_point_on_triangles,
    distance_lower_bound,
    point_to_mesh,
    radiality_to_surface,
)
from lameg.mesh.repair import fix_non_manifold_edges


def icosphere(nsub=4, radius=1.0):
    import pyvista as pv

    s = pv.Icosphere(radius=radius, nsub=nsub)
    return np.asarray(s.points, float), np.asarray(s.faces).reshape(-1, 4)[:, 1:].astype(np.int64)


# --- laMEG parity values (lameg-api.md §6.1) ---------------------------------------------------

def test_normit_reference_values():
    np.testing.assert_allclose(normit([[3, 4, 0], [1, 1, 1]]),
                               [[0.6, 0.8, 0], [1 / np.sqrt(3)] * 3])
    np.testing.assert_array_equal(normit([[0, 0, 0]]), [[0, 0, 0]])
    tiny = np.array([[1e-20] * 3, [1e-20, 0, 0]])
    np.testing.assert_array_equal(normit(tiny), tiny)
    assert normit(np.zeros((0, 3))).shape == (0, 3)


def test_vertex_normal_vectors_tetrahedron_reference():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [0, 2, 3]])
    vn, fn = surf._vertex_normal_vectors(v, f)
    a, b = 0.57735026, 0.42264974
    np.testing.assert_allclose(vn, [[-1, 1, -1], [-a, b, -1 - a], [-1 - a, -a, -1 - a],
                                    [-1 - a, b, -a]], atol=1e-7)
    np.testing.assert_allclose(fn, [[0, 0, -1], [0, 1, 0], [-a, -a, -a], [-1, 0, 0]], atol=1e-7)
    vn_u, fn_u = surf._vertex_normal_vectors(v, f, unit=True)
    np.testing.assert_allclose(vn_u, normit(vn))


def test_remove_vertices_square_reference():
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    n = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], float)
    v2, f2, n2, kept = remove_vertices(v, f, [1], n)
    np.testing.assert_array_equal(v2, [[0, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(f2, [[0, 1, 2]])
    np.testing.assert_array_equal(n2, [[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(kept, [0, 2, 3])
    assert len(remove_vertices(v, f, [0, 2])[1]) == 0
    assert len(remove_vertices(v, f, np.arange(4))[0]) == 0
    v_extra = np.r_[v, [[5, 5, 5]]]
    assert len(remove_unconnected_vertices(v_extra, f)[0]) == 4


def test_non_manifold_edges_reference():
    assert find_non_manifold_edges([[0, 1, 2]]) == {}
    f = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4], [4, 1, 2]])
    assert find_non_manifold_edges(f) == {(1, 2): [0, 1, 3]}
    _, f2 = fix_non_manifold_edges(np.zeros((5, 3)), f)
    np.testing.assert_array_equal(f2, [[2, 3, 4]])
    assert fix_non_manifold_edges(np.zeros((0, 3)), np.zeros((0, 3), int))[1].size == 0


def test_adjacency_and_components_reference():
    a = mesh_adjacency([[0, 1, 2]]).toarray()
    np.testing.assert_array_equal(a, 1 - np.eye(3))
    b = mesh_adjacency([[0, 1, 2], [2, 3, 4]]).toarray()
    assert b.shape == (5, 5) and b[0, 3] == 0 and b[2].sum() == 4
    comps = split_connected_components([[0, 1, 2], [2, 4, 5], [6, 7, 2], [8, 9, 10]],
                                       np.zeros((11, 3)))
    assert len(comps) == 2
    np.testing.assert_array_equal(comps[0]["faces"], [[0, 1, 2], [2, 3, 4], [5, 6, 2]])
    np.testing.assert_array_equal(comps[0]["vertices"], [0, 1, 2, 4, 5, 6, 7])
    np.testing.assert_array_equal(comps[1]["faces"], [[0, 1, 2]])


def test_shared_face_helpers_reference():
    from lameg.mesh.adjacency import as_faces, used_vertices

    f = as_faces([0, 1, 2, 2, 3, 4])
    assert f.dtype == np.int64 and f.shape == (2, 3)
    assert as_faces([]).shape == (0, 3)
    np.testing.assert_array_equal(used_vertices(f, 7), [1, 1, 1, 1, 1, 0, 0])
    # a face repeating a vertex makes that vertex its own neighbour (SPM's spm_mesh_adjacency)
    a = mesh_adjacency([[0, 1, 1]], 3).toarray()
    np.testing.assert_array_equal(a, [[0, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_check_mesh_names_the_problem():
    from lameg._validate import check_mesh

    v, f = check_mesh(np.zeros((3, 3)), np.array([[0.0, 1.0, 2.0]]))
    assert f.dtype == np.int64 and v.dtype == np.float64
    for verts, faces, msg in [
        (np.zeros((3, 2)), [[0, 1, 2]], "vertices must have shape"),
        (np.zeros((3, 3)), [0, 1, 2], "faces must have shape"),
        (np.zeros((3, 3)), [[0, 1, 2.5]], "integer vertex indices"),
        (np.zeros((3, 3)), [[1, 2, 3]], "0-based"),
    ]:
        with pytest.raises(LamegValueError, match=msg):
            check_mesh(verts, faces)
    bad = np.zeros((3, 3))
    bad[0, 0] = np.nan
    check_mesh(bad, [[0, 1, 2]])  # finite=False: positions are not inspected
    with pytest.raises(LamegValueError, match="NaN or Inf"):
        check_mesh(bad, [[0, 1, 2]], finite=True)


# --- normals and orientation -------------------------------------------------------------------

def test_normals_outward_and_signed_volume():
    v, f = icosphere(3, radius=10.0)
    vn = vertex_normals(v, f)
    assert (np.einsum("ij,ij->i", vn, v) > 0).all()          # outward for outward winding
    vol = signed_volume(v, f)
    assert vol == pytest.approx(4 / 3 * np.pi * 1000, rel=0.02)
    f_flipped = f[:, ::-1]
    assert signed_volume(v, f_flipped) == pytest.approx(-vol)
    fixed, flipped = orient_outward(v, f_flipped)
    assert flipped.all() and signed_volume(v, fixed) == pytest.approx(vol)


# --- decimation --------------------------------------------------------------------------------

def _check_decimated(v, f, kept, f_ds, ratio):
    assert abs(len(f_ds) / len(f) - ratio) <= 0.02 * ratio
    _, counts = edge_face_counts(f_ds)
    assert counts.max() <= 2                                  # no non-manifold edges
    assert np.array_equal(np.unique(f_ds), np.arange(len(kept)))   # no isolated vertices
    assert is_consistently_oriented(f_ds)
    # no flipped faces with respect to the original surface normals at the corners
    ref = vertex_normals(v, f)[kept[f_ds]].sum(axis=1)
    assert (np.einsum("ij,ij->i", face_normals(v, kept[f_ds]), ref) > 0).all()


@pytest.mark.parametrize("ratio", [0.1, 0.3])
def test_decimation_sphere(ratio):
    rng = np.random.default_rng(0)
    v, f = icosphere(4, radius=50.0)
    v = v * (1 + 0.05 * rng.standard_normal((len(v), 1)))      # bumpy sphere
    kept, f_ds = decimate_vertex_subset(v, f, ratio)
    _check_decimated(v, f, kept, f_ds, ratio)
    assert signed_volume(v[kept], f_ds) > 0.9 * signed_volume(v, f)


def test_decimation_compaction_is_exact(monkeypatch):
    """Dropping unused vertices between rounds changes nothing (same kept set, same faces)."""
    from lameg.mesh import decimate

    rng = np.random.default_rng(1)
    v, f = icosphere(4, radius=50.0)
    v = v * (1 + 0.05 * rng.standard_normal((len(v), 1)))
    v2, f2, _, _ = remove_vertices(v, f, np.flatnonzero(v[:, 0] > 30))   # with a boundary
    fast = decimate_vertex_subset(v2, f2, 0.1)
    monkeypatch.setattr(decimate, "COMPACT_BELOW", 0.0)                    # never compact
    slow = decimate_vertex_subset(v2, f2, 0.1)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])


def _bumpy_sphere(nsub, radius, seed, shift=(0.0, 0.0, 0.0)):
    v, f = icosphere(nsub, radius=radius)
    rng = np.random.default_rng(seed)
    return v * (1 + 0.05 * rng.standard_normal((len(v), 1))) + np.asarray(shift), f


def _same_decimation(a, b):
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kw", [{}, {"target_faces": 777}, {"preserve_boundary": True}])
def test_decimation_threads_over_components_bit_identical(kw, caplog):
    """Components decimated in lockstep threads give exactly the whole-mesh result: same kept
    vertices, same faces in the same order, including the round whose collapses are trimmed
    jointly over all components to hit the target."""
    from lameg.mesh import decimate

    parts = [_bumpy_sphere(4, 50.0, 0), _bumpy_sphere(4, 40.0, 1, (200.0, 0, 0))]
    v, f = _bumpy_sphere(3, 30.0, 2, (0, 200.0, 0))
    parts.append(remove_vertices(v, f, np.flatnonzero(v[:, 0] > 15))[:2])   # with a boundary
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    v = np.concatenate([p[0] for p in parts])
    f = np.concatenate([p[1] + o for p, o in zip(parts, offsets)])
    # interleave the components' vertices and faces, so that ties and orders matter
    rng = np.random.default_rng(3)
    perm = rng.permutation(len(v))
    v, f = v[perm], np.argsort(perm)[f][rng.permutation(len(f))]
    serial = decimate_vertex_subset(v, f, 0.1, n_jobs=1, **kw)
    with caplog.at_level("DEBUG", logger="lameg"):
        threaded = decimate_vertex_subset(v, f, 0.1, n_jobs=2, **kw)
    assert any("collapses kept to reach the target" in r.getMessage() for r in caplog.records)
    _same_decimation(serial, threaded)
    _same_decimation(serial, decimate_vertex_subset(v, f, 0.1, n_jobs=3, **kw))
    _same_decimation(serial, decimate_vertex_subset(v, f, 0.1, n_jobs=-1, **kw))
    # automatic choice: serial below the size threshold, threads above it
    _same_decimation(serial, decimate_vertex_subset(v, f, 0.1, **kw))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decimate, "PARALLEL_MIN_FACES", 100)
        _same_decimation(serial, decimate_vertex_subset(v, f, 0.1, **kw))
    assert abs(len(serial[1]) - kw.get("target_faces", round(0.1 * len(f)))) <= 1


def test_decimation_shortcuts_change_nothing(monkeypatch):
    """Carrying unchanged collapse costs over between rounds and validating each vertex's
    edges cheapest first give exactly the result of recomputing every cost and validating
    every edge (the plain rounds)."""
    from lameg.mesh import decimate

    v, f = _bumpy_sphere(4, 50.0, 5)
    v2, f2, _, _ = remove_vertices(v, f, np.flatnonzero(v[:, 0] > 30))   # with a boundary
    fast = decimate_vertex_subset(v2, f2, 0.1)
    monkeypatch.setattr(decimate, "_REUSE_COSTS", False)
    monkeypatch.setattr(decimate, "_LAZY_EDGES", 0)
    _same_decimation(fast, decimate_vertex_subset(v2, f2, 0.1))


def test_decimation_threads_single_component_bit_identical():
    """One component plus a vertex of no face: the threaded path drops the isolated vertex up
    front and still matches the whole-mesh rounds exactly."""
    v, f = _bumpy_sphere(4, 50.0, 4)
    v = np.r_[v[:100], [[0.0, 0.0, 999.0]], v[100:]]
    f = np.where(f >= 100, f + 1, f)
    serial = decimate_vertex_subset(v, f, 0.2, n_jobs=1)
    assert 100 not in serial[0]
    _same_decimation(serial, decimate_vertex_subset(v, f, 0.2, n_jobs=2))


def test_decimation_threads_with_a_degenerate_face():
    """A face with a repeated vertex (still edge-manifold) keeps the mesh in one piece: the
    result is the whole-mesh one."""
    v, f = _bumpy_sphere(4, 50.0, 0)
    far = int(np.argmax(np.linalg.norm(v - v[7], axis=1)))
    f = np.r_[f[:1000], [[7, 7, far]], f[1000:]]
    v2, f2 = _bumpy_sphere(4, 40.0, 1, (200.0, 0, 0))
    v, f = np.r_[v, v2], np.r_[f, f2 + len(v)]
    _same_decimation(decimate_vertex_subset(v, f, 0.1, n_jobs=1),
                     decimate_vertex_subset(v, f, 0.1, n_jobs=2))


def test_decimation_n_jobs_validation():
    v, f = icosphere(2)
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(LamegValueError, match="n_jobs"):
            decimate_vertex_subset(v, f, 0.5, n_jobs=bad)
    # a non-manifold edge is found inside a group of components as well
    v2, f2 = _bumpy_sphere(2, 1.0, 0, (5.0, 0, 0))
    nm = np.r_[f, [[f[0, 0], f[0, 1], len(v) - 1]], f2 + len(v)]
    with pytest.raises(LamegDataError, match="1 non-manifold"):
        decimate_vertex_subset(np.r_[v, v2], nm, 0.5, n_jobs=2)


def test_decimation_open_surface_keeps_boundary_manifold():
    v, f = icosphere(4, radius=50.0)
    v2, f2, _, _ = remove_vertices(v, f, np.flatnonzero(v[:, 0] > 30))   # cut a cap
    kept, f_ds = decimate_vertex_subset(v2, f2, 0.1)
    _check_decimated(v2, f2, kept, f_ds, 0.1)


def test_decimation_bad_input():
    v, f = icosphere(2)
    with pytest.raises(LamegValueError):
        decimate_vertex_subset(v, f, 0.0)
    bad = v.copy()
    bad[3] = np.nan
    with pytest.raises(LamegDataError):
        decimate_vertex_subset(bad, f, 0.5)
    nm = np.r_[f, [[f[0, 0], f[0, 1], len(v) - 1]]]
    with pytest.raises(LamegDataError, match="non-manifold"):
        decimate_vertex_subset(v, nm, 0.5)


# --- distances ---------------------------------------------------------------------------------

def _brute_force(points, v, f):
    n = len(points)
    m = len(f)
    p = np.repeat(points, m, axis=0)
    tri = np.tile(v[f], (n, 1, 1))
    cp, _ = closest_point_on_triangles(p, tri[:, 0], tri[:, 1], tri[:, 2])
    return np.linalg.norm(cp - p, axis=1).reshape(n, m).min(axis=1)


def test_closest_point_regions():
    a, b, c = np.array([[0, 0, 0.]]), np.array([[1, 0, 0.]]), np.array([[0, 1, 0.]])
    cases = {(0.2, 0.2, 1.0): (0.2, 0.2, 0), (-1, -1, 0): (0, 0, 0), (2, -1, 0): (1, 0, 0),
             (0.5, -1, 0): (0.5, 0, 0), (1, 1, 3): (0.5, 0.5, 0), (-1, 0.5, 0): (0, 0.5, 0)}
    for p, expected in cases.items():
        cp, _ = closest_point_on_triangles(np.array([p], float), a, b, c)
        np.testing.assert_allclose(cp[0], expected, atol=1e-12)


def test_point_to_mesh_exact_vs_brute_force():
    rng = np.random.default_rng(1)
    v, f = icosphere(2, radius=80.0)
    v = v * (1 + 0.1 * rng.random((len(v), 1)))
    pts = rng.uniform(-120, 120, (200, 3))
    d, cp, face, bary = point_to_mesh(pts, v, f, k=2)
    # tolerance: both are the same closed-form projection in float64 -> 1e-6 mm is ample
    np.testing.assert_allclose(d, _brute_force(pts, v, f), atol=1e-6)
    np.testing.assert_allclose(np.einsum("ij,ijk->ik", bary, v[f[face]]), cp, atol=1e-9)


def test_radiality_on_sphere():
    v, f = icosphere(5, radius=90.0)
    rng = np.random.default_rng(2)
    d = normit(rng.standard_normal((50, 3)))
    pts = 60.0 * d
    # radial source: along the scalp normal at its closest point -> 1 (faceted sphere: 1e-3)
    r = radiality_to_surface(pts, d, v, f)
    assert ((r > 1 - 1e-3) & (r <= 1)).all()
    tang = normit(np.cross(d, [0, 0, 1.0]))
    assert (radiality_to_surface(pts, tang, v, f) < 2e-2).all()


def _brute_force_full(points, v, f):
    """Brute-force distance and face (all point-face pairs)."""
    n, m = len(points), len(f)
    p = np.repeat(points, m, axis=0)
    tri = np.tile(v[f], (n, 1, 1))
    cp, _ = closest_point_on_triangles(p, tri[:, 0], tri[:, 1], tri[:, 2])
    d = np.linalg.norm(cp - p, axis=1).reshape(n, m)
    return d.min(axis=1)


def test_point_to_mesh_deep_inside_closed_surface():
    """Cortex-in-scalp geometry: points far inside a fine, bumpy closed surface."""
    rng = np.random.default_rng(3)
    v, f = icosphere(4, radius=1.0)
    axes = np.array([85.0, 115.0, 100.0])
    v = v * axes * (1 + 0.04 * np.sin(7 * v[:, :1]) * np.cos(5 * v[:, 1:2]))
    u = normit(rng.standard_normal((150, 3)))
    pts = u * axes * rng.uniform(0.0, 0.95, (150, 1))       # includes the very centre region
    brute = _brute_force_full(pts, v, f)
    for k in (2, 4, 32):                                     # small k forces retries
        d, cp, face, bary = point_to_mesh(pts, v, f, k=k)
        # both sides are closed-form projections in float64: 1e-6 mm is ample
        np.testing.assert_allclose(d, brute, atol=1e-6)
        np.testing.assert_allclose(np.einsum("ij,ijk->ik", bary, v[f[face]]), cp, atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(cp - pts, axis=1), d, atol=1e-9)
        assert (bary >= -1e-12).all() and np.allclose(bary.sum(1), 1)


def test_distance_lower_bound():
    """Never above the exact distance (it is a proof that a ball is surface-free), and not
    vacuous: far from the surface the bound is a sizeable part of the distance (it loses the
    factor 1.5 of the approximate nearest-site query and the piece radius)."""
    rng = np.random.default_rng(5)
    v, f = icosphere(3, radius=1.0)
    v = v * [85.0, 115.0, 100.0]
    v[:40] *= 1.6  # a few outsized faces: subdivided into sites
    pts = rng.uniform(-140, 140, (400, 3))
    exact = point_to_mesh(pts, v, f)[0]
    lower = distance_lower_bound(pts, v, f)
    assert (lower <= exact + 1e-9).all()
    deep = exact > 30
    assert deep.sum() > 50 and np.median(lower[deep] / exact[deep]) > 0.4
    with pytest.raises(LamegValueError):
        distance_lower_bound(pts, v, np.zeros((0, 3), int))


def test_point_to_mesh_large_and_degenerate_faces():
    """Outsized faces (bounding-sphere path), slivers, zero-area faces, unused vertices."""
    rng = np.random.default_rng(4)
    v, f = icosphere(3, radius=50.0)
    n0 = len(v)
    # a big quad far away, a collinear (zero-area) face, a repeated-vertex face, a sliver and
    # an unused vertex
    extra_v = np.array([[-200, -200, 80], [200, -200, 80], [200, 200, 80], [-200, 200, 80],
                        [0, 0, 70], [10, 0, 70], [20, 0, 70], [0, 30, 60], [60, 30, 60.0],
                        [30, 30.001, 60], [500, 500, 500]], float)
    v = np.r_[v, extra_v]
    b = n0
    extra_f = np.array([[b, b + 1, b + 2], [b, b + 2, b + 3], [b + 4, b + 5, b + 6],
                        [b + 4, b + 4, b + 5], [b + 7, b + 8, b + 9]])
    f = np.r_[f, extra_f]
    from lameg.mesh.distance import _TriangleData

    meb = _TriangleData(v, f).meb
    assert (meb > 1.5 * np.percentile(meb, 99)).sum() >= 3     # the large-face path is used
    pts = np.r_[rng.uniform(-120, 120, (300, 3)), v[f[-3:]].mean(1), v[:5]]
    d, cp, face, bary = point_to_mesh(pts, v, f)
    np.testing.assert_allclose(d, _brute_force_full(pts, v, f), atol=1e-6)
    assert np.all(d[-5:] < 1e-9)                             # mesh vertices: distance 0
    np.testing.assert_allclose(np.einsum("ij,ijk->ik", bary, v[f[face]]), cp, atol=1e-9)


def test_second_order_vertex_bound():
    """The pruning bound dist^2 >= min_i d_i^2 - R^2 (R = smallest enclosing ball radius)."""
    from lameg.mesh.distance import _TriangleData

    rng = np.random.default_rng(5)
    tri = rng.standard_normal((2000, 3, 3)) * rng.uniform(0.1, 5, (2000, 1, 1))
    tri[::7, 2] = tri[::7, 0] + 2.0 * (tri[::7, 1] - tri[::7, 0])        # collinear faces
    v = tri.reshape(-1, 3)
    f = np.arange(len(v)).reshape(-1, 3)
    td = _TriangleData(v, f)
    # the enclosing radius covers every corner from the enclosing-ball centre: it is at least
    # half the longest edge and at most the largest centroid-to-corner distance
    longest = np.sqrt(np.max([td.d00, td.d11, td.d00 - 2 * td.d01 + td.d11], axis=0))
    cent = tri.mean(1, keepdims=True)
    assert (td.meb >= 0.5 * longest - 1e-12).all()
    assert (td.meb <= np.linalg.norm(tri - cent, axis=2).max(1) + 1e-9).all()
    p = rng.standard_normal((2000, 3)) * 4
    d2 = td.sq_distance(p, np.arange(2000))
    cp, _ = closest_point_on_triangles(p, tri[:, 0], tri[:, 1], tri[:, 2])
    np.testing.assert_allclose(d2, ((cp - p) ** 2).sum(1), atol=1e-9)
    dmin2 = (np.linalg.norm(tri - p[:, None], axis=2) ** 2).min(1)
    assert (d2 >= dmin2 - td.meb ** 2 - 1e-9).all()


def test_point_to_mesh_bad_input():
    v, f = icosphere(1)
    with pytest.raises(LamegValueError):
        point_to_mesh(np.zeros((1, 3)), v, np.zeros((0, 3), int))
    with pytest.raises(LamegValueError):
        point_to_mesh(np.zeros((1, 3)), v, f + len(v))
    with pytest.raises(LamegDataError):
        point_to_mesh(np.full((1, 3), np.nan), v, f)


def test_edge_keys_match_row_unique():
    from lameg.mesh.adjacency import directed_edges, unique_edges

    rng = np.random.default_rng(6)
    f = rng.integers(0, 500, (3000, 3))
    e = np.sort(directed_edges(f), axis=1)
    ref, ref_cnt = np.unique(e, axis=0, return_counts=True)
    edges, cnt = edge_face_counts(f)
    np.testing.assert_array_equal(edges, ref)
    np.testing.assert_array_equal(cnt, ref_cnt)
    np.testing.assert_array_equal(unique_edges(f), ref)


def test_point_to_mesh_irregular_mesh_ties():
    """Irregular (decimated) mesh: faces above 1.5x the median size are covered by subdivision
    sites, whose corner sites coincide with vertex sites; equidistant sites come back in a
    different order when k grows, and every point must still get its exact distance."""
    v, f = icosphere(4)
    axes = np.array([85.0, 115.0, 100.0])
    v = v * axes
    v = v * (1 + 0.05 * np.sin(6 * v[:, :1] / 50))
    kept, f = decimate_vertex_subset(v, f, 0.3)
    v = v[kept]
    rng = np.random.default_rng(3)
    pts = normit(rng.standard_normal((800, 3))) * axes * rng.uniform(0.3, 0.95, (800, 1))
    brute = _brute_force_full(pts, v, f)
    for k in (2, 8):                                   # k=2: many points need retries
        d = point_to_mesh(pts, v, f, k=k)[0]
        np.testing.assert_allclose(d, brute, atol=1e-6)
