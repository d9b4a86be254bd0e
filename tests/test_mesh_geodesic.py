"""Exact local geodesic distances (lameg.mesh.geodesic) against analytic cases and tvb-gdist."""

from __future__ import annotations

import numpy as np
import pytest

from lameg.exceptions import LamegDataError, LamegValueError
from lameg.mesh.geodesic import _direct, _Topology, local_geodesic_distances


def _grid(n, spacing=1.0):
    x, y = np.meshgrid(np.arange(n) * spacing, np.arange(n) * spacing, indexing="ij")
    v = np.c_[x.ravel(), y.ravel(), np.zeros(n * n)]
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), \
        idx[:-1, 1:].ravel()
    return v, np.r_[np.c_[a, b, c], np.c_[a, c, d]]


def _icosphere(radius, n_sub):
    import pyvista as pv

    s = pv.Icosphere(radius=radius, nsub=n_sub)
    return np.asarray(s.points, float), np.asarray(s.faces).reshape(-1, 4)[:, 1:].astype(np.int64)


def _as_dict(s, t, d):
    return {(int(i), int(j)): float(x) for i, j, x in zip(s, t, d)}


def test_flat_mesh_is_euclidean():
    """In a plane every geodesic is the straight segment (exact to rounding)."""
    v, f = _grid(15, 1.1)
    s, t, d = local_geodesic_distances(v, f, 3.5)
    chord = np.linalg.norm(v[s] - v[t], axis=1)
    np.testing.assert_allclose(d, chord, rtol=1e-13)
    # every pair within the radius is found, and no other
    full = np.linalg.norm(v[:, None] - v[None], axis=2)
    expect = np.argwhere((full <= 3.5) & (full > 0))
    assert len(s) == len(expect)
    assert np.all(np.r_[np.diff(s) >= 0])  # sorted by source


def test_tvb_gdist_on_a_curved_saddle_mesh():
    """Against tvb-gdist (Kirsanov's exact algorithm) on a mesh with saddle vertices.

    Geodesics there bend at saddle vertices, so the bend relaxation must be exercised: some
    distances are shorter than every straight (unfolded) path. Tolerance 1e-12 mm: both are
    exact algorithms and differ only in rounding (observed ~1e-15).
    """
    gdist = pytest.importorskip("gdist")
    v, f = _grid(24, 1.0)
    v[:, 2] = 3.0 * np.sin(v[:, 0] / 2.0) * np.cos(v[:, 1] / 2.5)
    r = 4.0
    s, t, d = local_geodesic_distances(v, f, r)
    ref = gdist.local_gdist_matrix(v, f.astype(np.int32), max_distance=r).tocoo()
    keep = (ref.data > 0) & (ref.data <= r)
    mine, theirs = _as_dict(s, t, d), _as_dict(ref.row[keep], ref.col[keep], ref.data[keep])
    assert mine.keys() == theirs.keys()
    diff = max(abs(mine[k] - theirs[k]) for k in mine)
    assert diff < 1e-12
    # straight paths alone are longer for some pairs: the bends matter on this mesh
    ds, dt, dd = _direct(v, _Topology(v, f), np.arange(len(v)), r)
    direct = {}
    for k, x in zip(zip(ds.tolist(), dt.tolist()), dd.tolist()):
        direct[k] = min(direct.get(k, np.inf), x)
    assert sum(mine[k] < direct.get(k, np.inf) - 1e-9 for k in mine) > 10


def test_sphere_great_circle():
    """On a fine icosphere, geodesic distances approach great-circle arcs from above."""
    v, f = _icosphere(50.0, 4)
    s, t, d = local_geodesic_distances(v, f, 8.0)
    cosang = np.clip(np.einsum("ij,ij->i", v[s], v[t]) / 2500.0, -1, 1)
    arc = 50.0 * np.arccos(cosang)
    chord = np.linalg.norm(v[s] - v[t], axis=1)
    assert np.all(d >= chord - 1e-12)  # never shorter than the straight chord
    # the polyhedral sphere's geodesics are within 1% of the smooth sphere's arcs
    np.testing.assert_allclose(d, arc, rtol=1e-2)


def test_path_through_a_pinch_vertex():
    """Two triangles sharing only a vertex: the path must bend there (analytic)."""
    v = np.array([[0, 0, 0], [-1, 1, 0], [-1, -1, 0], [1, 1, 0.5], [1, -1, 0.5]], float)
    f = np.array([[0, 1, 2], [0, 3, 4]])
    s, t, d = local_geodesic_distances(v, f, 10.0)
    got = _as_dict(s, t, d)
    assert got[(1, 3)] == pytest.approx(np.linalg.norm(v[1]) + np.linalg.norm(v[3]), 1e-14)
    assert got[(4, 2)] == pytest.approx(np.linalg.norm(v[4]) + np.linalg.norm(v[2]), 1e-14)
    assert got[(1, 3)] == got[(3, 1)]


def test_paths_through_coincident_vertices():
    """Two vertices at the same place (a zero-area sliver joins them): paths pass through the
    zero-length edge, as in tvb-gdist (pairs at distance 0 are not returned)."""
    gdist = pytest.importorskip("gdist")
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]], float)
    f = np.array([[0, 1, 2], [1, 3, 2]])
    got = _as_dict(*local_geodesic_distances(v, f, 3.0))
    ref = gdist.compute_gdist(v, f.astype(np.int32), np.array([0], np.int32), None, 3.0)
    assert got[(0, 3)] == pytest.approx(ref[3], abs=1e-12) and got[(0, 3)] == pytest.approx(1.0)
    assert (1, 3) not in got and (3, 1) not in got


def test_validation():
    v, f = _grid(4)
    with pytest.raises(LamegValueError):
        local_geodesic_distances(v, f, 0.0)
    with pytest.raises(LamegValueError):
        local_geodesic_distances(v, f, np.nan)
    bad = np.r_[f, [[0, 1, 5]]]  # a third face on edge (0, 1)... and (1, 5)
    with pytest.raises(LamegDataError, match="more than two faces"):
        local_geodesic_distances(v, bad, 2.0)
    with pytest.raises(LamegDataError, match="repeat a vertex"):
        local_geodesic_distances(v, np.r_[f, [[0, 0, 5]]], 2.0)


@pytest.mark.parametrize("surface", ["pial", "white"])
def test_kirsanov_on_a_real_cortical_surface(subjects_dir, surface):
    """The test participant's folded cortex (10,242 vertices): same pairs within 5 mm and the
    same distances as pygeodesic (Kirsanov's exact algorithm) to 1e-11 mm (rounding: both are
    exact; observed 3e-13 mm on a full-resolution 28,609-vertex layer)."""
    pytest.importorskip("pygeodesic")
    import nibabel as nib

    from lameg.inverse.kernels import _layer_distances_pygeodesic

    v, f = nib.freesurfer.read_geometry(str(subjects_dir / "sub-01" / "surf" / f"lh.{surface}"))
    v, f = v.astype(float), f.astype(np.int64)
    mine = _as_dict(*local_geodesic_distances(v, f, 5.0))
    s, t, d = _layer_distances_pygeodesic(v, f, 5.0)
    keep = (s != t) & (d > 0) & (d <= 5.0)
    theirs = _as_dict(s[keep], t[keep], d[keep])
    assert mine.keys() == theirs.keys()
    assert max(abs(mine[k] - theirs[k]) for k in mine) < 1e-11
