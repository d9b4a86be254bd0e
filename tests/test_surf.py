"""Tests of lameg.surf.LayerSurfaceSet on the test participant.

Uses the committed participant (``test_data/fs/sub-01``, copied into ``tmp_path``) when it
exists, otherwise an equivalent subject built from nilearn's fsaverage5 surfaces:
white/pial/inflated/sphere.reg, an ``aparc.annot`` whose 'unknown' label is a medial cap, an
``orig.mgz`` with a non-zero c_ras holding a solid ellipsoidal "head", and a FreeSurfer
``bem/outer_skin.surf``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import TEST_DATA

from lameg import surf
from lameg.exceptions import (
    LamegDataError,
    LamegFileNotFoundError,
    LamegFormatError,
    LamegValueError,
)
from lameg.io.gifti import create_surf_gifti, gifti_arrays
from lameg.mesh import edge_face_counts, is_consistently_oriented, signed_volume
from lameg.mesh.adjacency import connected_components
from lameg.mesh.distance import closest_point_on_triangles
from lameg.surf import LayerSurfaceSet

C_RAS = np.array([2.0, -15.0, 10.0])
HEAD_CENTRE_TK = np.array([0.0, -15.0, 10.0])
HEAD_AXES = np.array([85.0, 115.0, 100.0])


def _gii(path):
    img = nib.load(str(path))
    return (np.asarray(img.darrays[0].data, float),
            np.asarray(img.darrays[1].data, np.int64) if len(img.darrays) > 1 else None)


def _icosphere(n_sub: int = 4):
    import pyvista as pv

    s = pv.Icosphere(radius=1.0, nsub=n_sub)
    return np.asarray(s.points, float), np.asarray(s.faces).reshape(-1, 4)[:, 1:].astype(np.int64)


def ellipsoid_mesh(n_sub=4):
    v, f = _icosphere(n_sub)
    return v * HEAD_AXES + HEAD_CENTRE_TK, f


def build_subject(subjects_dir: Path, subj: str = "sub-01") -> Path:
    """Write the synthetic subject (and ``fsaverage/surf/?h.sphere.reg``) into subjects_dir."""
    from nilearn import datasets

    d = datasets.fetch_surf_fsaverage("fsaverage5")
    sd = Path(subjects_dir) / subj
    for sub in ("surf", "label", "mri", "bem"):
        (sd / sub).mkdir(parents=True, exist_ok=True)
    (Path(subjects_dir) / "fsaverage" / "surf").mkdir(parents=True, exist_ok=True)
    for h, side in (("lh", "left"), ("rh", "right")):
        w, f = _gii(d[f"white_{side}"])
        p, _ = _gii(d[f"pial_{side}"])
        infl, _ = _gii(d[f"infl_{side}"])
        sph, _ = _gii(d[f"sphere_{side}"])
        for name, v in (("white", w), ("pial", p), ("inflated", infl), ("sphere", sph),
                        ("sphere.reg", sph)):
            nib.freesurfer.write_geometry(str(sd / "surf" / f"{h}.{name}"), v, f.astype(np.int32))
        nib.freesurfer.write_geometry(
            str(Path(subjects_dir) / "fsaverage" / "surf" / f"{h}.sphere.reg"), sph,
            f.astype(np.int32))
        thick = np.linalg.norm(p - w, axis=1)
        nib.freesurfer.write_morph_data(str(sd / "surf" / f"{h}.thickness"), thick)
        u = sph / np.linalg.norm(sph, axis=1, keepdims=True)
        medial = (u[:, 0] > 0.55) if h == "lh" else (u[:, 0] < -0.55)
        labels = np.where(medial, 0, np.where(u[:, 1] > 0.2, 1, np.where(u[:, 2] > 0, 2, 3)))
        names = [b"unknown", b"frontal", b"parietal", b"temporal"]
        ctab = np.array([[25, 5, 25, 0, 0], [100, 0, 0, 0, 0], [0, 100, 0, 0, 0],
                         [0, 0, 100, 0, 0]], np.int32)
        nib.freesurfer.write_annot(str(sd / "label" / f"{h}.aparc.annot"), labels.astype(np.int32),
                                   ctab, names, fill_ctab=True)
    # orig.mgz: 64^3, 4 mm, LIA (conformed orientation), c_ras != 0, ellipsoidal head inside
    n, dx = 64, 4.0
    aff = np.array([[-dx, 0, 0, dx * n / 2 + C_RAS[0]], [0, 0, dx, -dx * n / 2 + C_RAS[1]],
                    [0, -dx, 0, dx * n / 2 + C_RAS[2]], [0, 0, 0, 1.0]])
    ijk = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3)
    tk = np.array([[-dx, 0, 0, dx * n / 2], [0, 0, dx, -dx * n / 2], [0, -dx, 0, dx * n / 2],
                   [0, 0, 0, 1.0]])
    xyz = ijk @ tk[:3, :3].T + tk[:3, 3]
    r = (((xyz - HEAD_CENTRE_TK) / HEAD_AXES) ** 2).sum(1)
    vol = np.where(r <= 1, 100, 0).astype(np.uint8).reshape(n, n, n)
    nib.save(nib.MGHImage(vol, aff), str(sd / "mri" / "orig.mgz"))
    v, f = ellipsoid_mesh(4)
    nib.freesurfer.write_geometry(str(sd / "bem" / "outer_skin.surf"), v, f.astype(np.int32))
    return sd


def make_subjects_dir(tmp_root: Path, committed: Path | None = None, subj: str = "sub-01"
                      ) -> Path:
    """A writable SUBJECTS_DIR in tmp_root: a copy of the committed subject, else synthetic."""
    sdir = Path(tmp_root) / "subjects"
    if committed is not None and (committed / subj / "surf" / "lh.pial").exists():
        shutil.copytree(committed / subj, sdir / subj,
                        ignore=shutil.ignore_patterns("laminar"))
        if (committed / "fsaverage").exists():
            shutil.copytree(committed / "fsaverage", sdir / "fsaverage")
        else:  # the participant is fsaverage5-based: its sphere.reg stands in for fsaverage's
            (sdir / "fsaverage" / "surf").mkdir(parents=True)
            for h in ("lh", "rh"):
                shutil.copy(sdir / subj / "surf" / f"{h}.sphere.reg",
                            sdir / "fsaverage" / "surf" / f"{h}.sphere.reg")
        return sdir
    build_subject(sdir, subj)
    return sdir


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    """A writable SUBJECTS_DIR with sub-01 (copy of test_data/fs or synthetic)."""
    return make_subjects_dir(tmp_path_factory.mktemp("fs"), TEST_DATA / "fs")


@pytest.fixture(scope="module")
def created(subjects):
    """Sets created for 2, 11 and 15 layers (link vectors, fixed)."""
    out = {}
    for n in (2, 11, 15):
        s = LayerSurfaceSet("sub-01", n, subjects_dir=subjects)
        s.create(ds_factor=0.1, verbose=False)
        out[n] = s
    return out


@pytest.fixture
def fresh(tmp_path):
    """A private SUBJECTS_DIR for tests that break inputs."""
    return make_subjects_dir(tmp_path, TEST_DATA / "fs")


def arrays(s, layer, stage="ds", hemi=None, ori=None, fixed=None):
    return gifti_arrays(s.load(layer, stage, hemi, ori, fixed))


# ----------------------------------------------------------------------------------------------
# naming and bookkeeping
# ----------------------------------------------------------------------------------------------

def test_names_and_paths(subjects):
    s = LayerSurfaceSet("sub-01", 11, subjects_dir=subjects)
    assert s.get_layer_names() == ["pial", "0.900", "0.800", "0.700", "0.600", "0.500", "0.400",
                                   "0.300", "0.200", "0.100", "white"]
    assert LayerSurfaceSet("sub-01", 3, subjects_dir=subjects).get_layer_names() == [
        "pial", "0.500", "white"]
    assert s.get_mesh_path().endswith("surf/laminar/multilayer.11.ds.link_vector.fixed.gii")
    assert s.get_mesh_path("pial", fixed=False).endswith("pial.ds.link_vector.not_fixed.gii")
    assert s._get_fname("pial", "nodeep", "lh").endswith("laminar/lh.pial.nodeep.gii")
    assert "n_layers=11" in repr(s)
    with pytest.raises(LamegFileNotFoundError):
        LayerSurfaceSet("nobody", 2, subjects_dir=subjects)
    with pytest.raises(LamegValueError):
        LayerSurfaceSet("sub-01", 1, subjects_dir=subjects)


def test_subjects_dir_from_environment(subjects, monkeypatch):
    monkeypatch.setenv("SUBJECTS_DIR", str(subjects))
    assert LayerSurfaceSet("sub-01", 2).subj_dir == os.path.join(str(subjects), "sub-01")
    monkeypatch.delenv("SUBJECTS_DIR")
    with pytest.raises(OSError, match="SUBJECTS_DIR"):
        LayerSurfaceSet("sub-01", 2)


@pytest.mark.parametrize("n_layers", [2, 11, 15])
def test_created_set_is_valid(created, n_layers):
    s = created[n_layers]
    names = s.get_layer_names()
    s.validate(orientations=["link_vector"], fixed=True)
    # every stage: equal vertex counts across layers; ds: identical faces
    for h in ("lh", "rh"):
        counts = {len(arrays(s, n, "nodeep", h)[0]) for n in names}
        assert len(counts) == 1
    v_pial, f_ds, _ = arrays(s, "pial")
    n_v = len(v_pial)
    for n in names + ["inflated"]:
        v, f, _ = arrays(s, n)
        assert len(v) == n_v and np.array_equal(f, f_ds)
    # decimation: requested face fraction within 2 %, manifold, no isolated vertex, outward
    _, f_comb, _ = arrays(s, "pial", "combined")
    assert abs(len(f_ds) / len(f_comb) - 0.1) <= 0.002
    _, cnt = edge_face_counts(f_ds)
    assert cnt.max() <= 2
    assert np.array_equal(np.unique(f_ds), np.arange(n_v))
    assert is_consistently_oriented(f_ds)
    lab = connected_components(f_ds, n_v)
    for comp in np.unique(lab):
        fc = f_ds[np.isin(f_ds[:, 0], np.flatnonzero(lab == comp))]
        assert signed_volume(v_pial, fc) > 0
    # ds vertices are original pial vertices (exact subset)
    v_comb, _, _ = arrays(s, "pial", "combined")
    kept = s.map_between_stages_exact("pial", "ds", None, "combined")
    np.testing.assert_array_equal(v_comb[kept], v_pial)
    # multilayer: layer-major concatenation, orientations
    v_ml, f_ml, o_ml = arrays(s, None, "ds", None, "link_vector", True)
    assert len(v_ml) == n_layers * n_v and s.get_vertices_per_layer() == n_v
    for li, n in enumerate(names):
        v, _, o = arrays(s, n, "ds", None, "link_vector", True)
        np.testing.assert_allclose(v_ml[li * n_v:(li + 1) * n_v], v)
        np.testing.assert_allclose(o_ml[li * n_v:(li + 1) * n_v], o)
    np.testing.assert_array_equal(f_ml[:len(f_ds)], f_ds)
    np.testing.assert_array_equal(f_ml[-len(f_ds):], f_ds + (n_layers - 1) * n_v)
    meta = s.load_meta(None, "ds", None, "link_vector", True)
    assert meta["n_layers"] == n_layers and meta["ds_factor"] == 0.1
    assert {"t_orig", "n_orig", "modified_at", "lh_pial_deep_vertices_removed",
            "white_ds_removed_vertices"} <= set(meta)


def test_thickness_orientation_and_layers(created):
    s = created[11]
    names = s.get_layer_names()
    p, _, o = arrays(s, "pial", "ds", None, "link_vector", True)
    w, _, _ = arrays(s, "white")
    th = s.get_cortical_thickness()
    # stored as float32 in the GIfTI files: 1e-4 mm
    np.testing.assert_allclose(th, np.linalg.norm(p - w, axis=1), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(o, axis=1), 1, atol=1e-6)
    ok = th > 1e-3
    # link vectors point pial -> white
    np.testing.assert_allclose(np.einsum("ij,ij->i", o[ok], (w - p)[ok]), th[ok], rtol=1e-4)
    # equidistant layers: consecutive distances are th / 10 and sum to the thickness
    for v in (0, 17, len(p) - 1):
        d = s.get_interlayer_distance(v)
        np.testing.assert_allclose(d, th[v] / 10, atol=1e-4)
    assert s.get_multilayer_vertex("white", 10) == s.get_multilayer_vertex(10, 10) == \
        10 * len(p) + 10
    np.testing.assert_array_equal(s.get_layer_vertices(5), np.arange(11) * len(p) + 5)
    # FreeSurfer thickness on the full-resolution combined stage: same definition
    th_c = s.get_cortical_thickness(stage="combined")
    assert th_c.shape[0] == len(arrays(s, "pial", "combined")[0])
    mid = arrays(s, "0.500")[0]
    np.testing.assert_allclose(mid, (p + w) / 2, atol=1e-4)
    assert names[5] == "0.500"


def test_tkras_to_scanner_conversion(created, subjects):
    s = created[2]
    raw, _, _ = arrays(s, "pial", "raw", "lh")
    conv, _, _ = arrays(s, "pial", "converted", "lh")
    img = nib.load(str(Path(subjects) / "sub-01" / "mri" / "orig.mgz"))
    m = img.header.get_vox2ras() @ np.linalg.inv(img.header.get_vox2ras_tkr())
    np.testing.assert_allclose(conv, raw @ m[:3, :3].T + m[:3, 3], atol=1e-4)
    meta = s.load_meta("pial", "converted", "lh")
    np.testing.assert_allclose(meta["n_orig"], img.header.get_vox2ras(), atol=1e-5)


@pytest.mark.parametrize("method", ["ds_surf_norm", "orig_surf_norm", "cps"])
def test_normal_orientations_consistent(created, method):
    s = created[2]
    ori = s.compute_dipole_orientations(method, fixed=False)
    lv = s.compute_dipole_orientations("link_vector")
    assert ori.shape == lv.shape
    np.testing.assert_allclose(np.linalg.norm(ori, axis=2), 1, atol=1e-9)
    # inward like the link vectors: nearly all columns agree in sign
    assert (np.einsum("lij,lij->li", ori, lv) > 0).mean() > 0.97
    fixed = s.compute_dipole_orientations(method, fixed=True)
    np.testing.assert_allclose(fixed[1], fixed[0])
    np.testing.assert_allclose(fixed[0], ori[0])
    # inward: pial normals point towards the inside of each hemisphere (signed-volume check)
    v, f, _ = arrays(s, "pial")
    c = np.where(v[:, :1] < 0, v[v[:, 0] < 0].mean(0), v[v[:, 0] >= 0].mean(0))
    assert (np.einsum("ij,ij->i", ori[0], c - v) > 0).mean() > 0.75
    with pytest.raises(LamegValueError, match="method='bogus' is not valid"):
        s.compute_dipole_orientations("bogus")


def test_map_between_stages_exact(created):
    s = created[11]
    for layer in ("pial", "0.500"):
        conv_lh, _, _ = arrays(s, layer, "converted", "lh")
        conv_rh, _, _ = arrays(s, layer, "converted", "rh")
        ds, _, _ = arrays(s, layer)
        m_lh = s.map_between_stages_exact(layer, "ds", None, "converted", "lh")
        m_rh = s.map_between_stages_exact(layer, "ds", None, "converted", "rh")
        assert ((m_lh >= 0) ^ (m_rh >= 0)).all()               # each ds vertex in one hemi
        np.testing.assert_array_equal(ds[m_lh >= 0], conv_lh[m_lh[m_lh >= 0]])
        np.testing.assert_array_equal(ds[m_rh >= 0], conv_rh[m_rh[m_rh >= 0]])
        back = s.map_between_stages_exact(layer, "converted", "lh", "ds")
        ok = back >= 0
        np.testing.assert_array_equal(m_lh[back[ok]], np.flatnonzero(ok))
    removed = s.load_meta("pial", "nodeep", "lh")["deep_vertices_removed"]
    m = s.map_between_stages_exact("pial", "converted", "lh", "nodeep", "lh")
    assert (m[removed] == -1).all() and (m >= 0).sum() == len(arrays(s, "pial", "nodeep", "lh")[0])
    with pytest.raises(LamegValueError):
        s.map_between_stages_exact("pial", "ds", "lh", "converted", "lh")
    with pytest.raises(LamegValueError):
        s.map_between_stages_exact("pial", "converted", "lh", "nodeep", "rh")


def test_medial_wall_removed(created, subjects):
    s = created[2]
    lab, _, names = nib.freesurfer.read_annot(str(Path(subjects) / "sub-01" / "label" /
                                                  "lh.aparc.annot"))
    removed = np.asarray(s.load_meta("pial", "nodeep", "lh")["deep_vertices_removed"])
    unknown = np.flatnonzero(lab <= 0)
    assert set(unknown) <= set(removed)
    assert len(removed) - len(unknown) < 0.01 * len(lab)        # only isolated leftovers


def test_distance_to_scalp_exact(created):
    s = created[2]
    v, _, _ = arrays(s, "pial")
    d = s.get_distance_to_scalp()
    sv, sf = s._head_arrays("scalp")
    rng = np.random.default_rng(0)
    idx = rng.choice(len(v), 40, replace=False)
    p = np.repeat(v[idx], len(sf), axis=0)
    tri = np.tile(sv[sf], (len(idx), 1, 1))
    cp, _ = closest_point_on_triangles(p, tri[:, 0], tri[:, 1], tri[:, 2])
    brute = np.linalg.norm(cp - p, axis=1).reshape(len(idx), -1).min(1)
    np.testing.assert_allclose(d[idx], brute, atol=1e-6)
    dv = s.get_distance_to_scalp(method="vertex")
    assert (dv >= d - 1e-9).all()                                # vertex distance >= exact
    assert np.all((d > 0) & (d < 100))
    with pytest.raises(LamegValueError):
        s.get_distance_to_scalp(method="nearest")


def test_radiality_range(created):
    r = created[2].get_radiality_to_scalp()
    assert r.shape == (created[2].get_vertices_per_layer(),)
    assert np.all((r >= 0) & (r <= 1))
    assert r.mean() > 0.3                                        # link vectors partly radial


def test_radiality_methods_and_shared_query(created, monkeypatch):
    s = LayerSurfaceSet("sub-01", 11, subjects_dir=created[11].subjects_dir)
    calls = []
    real = surf.predictors.point_to_mesh

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(surf.predictors, "point_to_mesh", counting)
    r = s.get_radiality_to_scalp()
    d = s.get_distance_to_scalp()
    assert len(calls) == 1                          # one closest-point query for both
    d[:] = -1                                       # the caller's copy, not the cache
    assert (s.get_distance_to_scalp() > 0).all() and len(calls) == 1
    # 'vertex' = laMEG's definition, re-derived here: normal of the nearest scalp vertex as the
    # normalised sum of its unit face normals; |cos| with the stored orientation
    v, _, o = arrays(s, "pial", "ds", None, "link_vector", True)
    sv, sf = s._head_arrays("scalp")
    fn = np.cross(sv[sf[:, 1]] - sv[sf[:, 0]], sv[sf[:, 2]] - sv[sf[:, 0]])
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)
    vn = np.zeros_like(sv)
    for k in range(3):
        np.add.at(vn, sf[:, k], fn)
    vn /= np.linalg.norm(vn, axis=1, keepdims=True)
    from scipy.spatial import cKDTree

    ref = np.abs(np.einsum("ij,ij->i", vn[cKDTree(sv).query(v)[1]], o))
    rv = s.get_radiality_to_scalp(method="vertex")
    np.testing.assert_allclose(rv, ref, atol=1e-6)   # float32 orientations on disk
    # exact and vertex-based normals agree closely on a smooth scalp (about 1 edge of tilt)
    assert np.median(np.abs(r - rv)) < 0.05 and r.shape == rv.shape
    with pytest.raises(LamegValueError):
        s.get_radiality_to_scalp(method="nearest")


def test_sidecar_encoding_matches_json():
    arr = np.arange(5, dtype=np.int64) * 7
    meta = {"a": arr, "b": arr, "t": [[1.5, 2.0]], "s": "x", "n": None, "f": True, "i": 3}
    memo = {}
    text = surf.files._encode_meta(meta, memo)
    assert json.loads(text) == {**meta, "a": arr.tolist(), "b": arr.tolist()}
    assert len(memo) == 1 and surf.files._encode_meta(meta, memo) == text
    assert json.loads(surf.files._encode_meta({"a": arr})) == {"a": arr.tolist()}


def test_scalp_from_mri_fine_voxels(tmp_path):
    """1 mm voxels take the block-averaged path (2 mm blocks): still sub-voxel accurate."""
    n, dx = 120, 1.0
    axes = np.array([45.0, 55.0, 50.0])
    aff = np.array([[-dx, 0, 0, 60.0], [0, 0, dx, -60.0], [0, -dx, 0, 60.0], [0, 0, 0, 1.0]])
    ijk = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3)
    xyz = ijk @ aff[:3, :3].T + aff[:3, 3]
    r = np.sqrt(((xyz / axes) ** 2).sum(1))
    vol = np.where(r <= 1, 100, 0).astype(np.uint8).reshape(n, n, n)
    nib.save(nib.MGHImage(vol, aff), str(tmp_path / "orig.mgz"))
    v, f = surf.scalp_from_mri(tmp_path / "orig.mgz", n_faces=4000)
    err = np.abs(np.sqrt(((v / axes) ** 2).sum(1)) - 1) * axes.min()
    # voxel-boundary surface (+-0.5 voxel) after block averaging and light smoothing
    assert np.median(err) < 0.6 and err.max() < 1.5
    assert signed_volume(v, f) > 0 and len(f) <= 4000 * 1.05
    _, cnt = edge_face_counts(f)
    assert (cnt == 2).all()


def test_load_head_mesh_frames(created, subjects):
    s = created[2]
    g = s.load_head_mesh("scalp")
    v, f, _ = gifti_arrays(g)
    assert signed_volume(v, f) > 0
    tk, _ = nib.freesurfer.read_geometry(str(Path(subjects) / "sub-01" / "bem" /
                                             "outer_skin.surf"))
    img = nib.load(str(Path(subjects) / "sub-01" / "mri" / "orig.mgz"))
    m = img.header.get_vox2ras() @ np.linalg.inv(img.header.get_vox2ras_tkr())
    np.testing.assert_allclose(v, tk @ m[:3, :3].T + m[:3, 3], atol=1e-3)
    with pytest.raises(LamegFileNotFoundError, match="oskull"):
        s.load_head_mesh("oskull")
    with pytest.raises(LamegValueError):
        s.load_head_mesh("skull")


def test_scalp_from_mri_accuracy(tmp_path):
    """Native scalp of an analytic ellipsoidal head (4 mm voxels) lies within ~1 voxel."""
    n, dx = 48, 5.0
    aff = np.array([[-dx, 0, 0, dx * n / 2 + C_RAS[0]], [0, 0, dx, -dx * n / 2 + C_RAS[1]],
                    [0, -dx, 0, dx * n / 2 + C_RAS[2]], [0, 0, 0, 1.0]])
    ijk = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3)
    xyz = ijk @ aff[:3, :3].T + aff[:3, 3]
    centre = C_RAS + HEAD_CENTRE_TK
    r = np.sqrt((((xyz - centre) / HEAD_AXES) ** 2).sum(1))
    vol = np.where(r <= 1, 100, 0).astype(np.uint8).reshape(n, n, n)
    nib.save(nib.MGHImage(vol, aff), str(tmp_path / "orig.mgz"))
    v, f = surf.scalp_from_mri(tmp_path / "orig.mgz", n_faces=4000)
    rv = np.sqrt((((v - centre) / HEAD_AXES) ** 2).sum(1))
    err = np.abs(rv - 1) * HEAD_AXES.min()            # radial error in mm (conservative)
    # binary voxelisation + light smoothing: median within half a voxel, max within a voxel
    assert np.median(err) < 0.5 * dx and err.max() < 1.2 * dx
    assert signed_volume(v, f) > 0 and len(f) <= 4000 * 1.05
    _, cnt = edge_face_counts(f)
    assert (cnt == 2).all()                            # closed surface


def test_interpolate_data(created):
    s = created[2]
    ds, _, _ = arrays(s, "pial")
    comb, _, _ = arrays(s, "pial", "combined")
    const = s.interpolate_layer_data("pial", np.full(len(ds), 3.5))
    np.testing.assert_allclose(const, 3.5)
    lin = s.interpolate_layer_data("pial", ds[:, 1])
    # smooth field: interpolation error well below the ds vertex spacing (~5 mm)
    assert np.median(np.abs(lin - comb[:, 1])) < 2.0
    with pytest.raises(LamegValueError):
        surf.interpolate_data((comb, arrays(s, "pial", "combined")[1]), (ds, None),
                              np.zeros(3))


def test_roi_and_fsaverage_mapping(created):
    s = created[2]
    annot = Path(s.subj_dir) / "label" / "lh.aparc.annot"
    lab, _, names = nib.freesurfer.read_annot(str(annot))
    region = names[int(np.bincount(lab[lab > 0]).argmax())].decode()
    roi = s.get_roi_idx(region, hemi="lh")
    assert roi.size and np.all(np.diff(roi) > 0)
    # exact: the ds vertices of the ROI are exactly the surviving converted ROI vertices
    m = s.map_between_stages_exact("pial", "converted", "lh", "ds")
    sel = m[lab == names.index(region.encode())]
    np.testing.assert_array_equal(roi, np.unique(sel[sel >= 0]))
    both = s.get_roi_idx([region])
    assert set(roi) <= set(both)
    with pytest.raises(LamegValueError, match="available"):
        s.get_roi_idx("nowhere", hemi="lh")
    # synthetic subject: sphere.reg == fsaverage sphere, so fsaverage vertex i == native i
    conv, _, _ = arrays(s, "pial", "converted", "lh")
    m = s.map_between_stages_exact("pial", "converted", "lh", "ds")
    i = int(np.flatnonzero(m >= 0)[3])
    assert surf.convert_fsaverage_to_native(s, "pial", "lh", i) == m[i]
    assert surf.convert_native_to_fsaverage(s, "pial", conv[i]) == ("lh", i)
    hemis, idx = surf.convert_native_to_fsaverage(s, "pial")
    assert len(idx) == s.get_vertices_per_layer() and set(hemis) == {"lh", "rh"}
    with pytest.raises(IndexError):
        surf.convert_fsaverage_to_native(s, "pial", "lh", 10 ** 7)
    bb = s.get_bigbrain_layer_boundaries()  # lameg.bigbrain (tests/test_bigbrain.py)
    assert bb.shape == (6, s.get_vertices_per_layer())


def test_equivolume_layers(fresh):
    s = LayerSurfaceSet("sub-01", 3, subjects_dir=fresh)
    s.create(layer_model="equivolume", scalp=False, verbose=False)
    p, f, _ = arrays(s, "pial", "converted", "lh")
    w, _, _ = arrays(s, "white", "converted", "lh")
    m, _, _ = arrays(s, "0.500", "converted", "lh")
    t = np.linalg.norm(m - w, axis=1) / np.maximum(np.linalg.norm(p - w, axis=1), 1e-9)
    from lameg.mesh.normals import vertex_areas

    aw, ap = vertex_areas(w, f), vertex_areas(p, f)
    # volume below the layer (linear area model) is half the total
    vol = aw * t + (ap - aw) * t ** 2 / 2
    ok = np.linalg.norm(p - w, axis=1) > 0.1
    # float32 storage of the coordinates: 1e-3
    np.testing.assert_allclose((vol / ((aw + ap) / 2))[ok], 0.5, atol=1e-3)
    # where the pial side is larger (gyral crowns) the deep half is thinner in volume per mm,
    # so the mid-volume layer lies beyond the mid-distance (towards pial), and vice versa
    bigger = ok & (ap > 1.5 * aw)
    smaller = ok & (aw > 1.5 * ap)
    assert bigger.any() and (t[bigger] > 0.5).all()
    assert smaller.any() and (t[smaller] < 0.5).all()
    assert s.load_meta("pial", "combined")["layer_model"] == "equivolume"


# ----------------------------------------------------------------------------------------------
# bad input: clear errors, nothing half-written
# ----------------------------------------------------------------------------------------------

def _no_partial_output(subjects_dir):
    surf_dir = Path(subjects_dir) / "sub-01" / "surf"
    lam = surf_dir / "laminar"
    assert not lam.exists() or not any(lam.iterdir())
    assert not list(surf_dir.glob(".laminar_tmp_*"))
    assert not list(surf_dir.glob(".laminar-*"))


def test_missing_surfaces_listed(fresh):
    (fresh / "sub-01" / "surf" / "lh.pial").unlink()
    (fresh / "sub-01" / "label" / "rh.aparc.annot").unlink()
    s = LayerSurfaceSet("sub-01", 2, subjects_dir=fresh)
    with pytest.raises(LamegFileNotFoundError) as exc:
        s.create(verbose=False)
    msg = str(exc.value)
    assert "lh.pial" in msg and "rh.aparc.annot" in msg and "recon-all" in msg
    _no_partial_output(fresh)


def _rewrite(path, fn):
    v, f = nib.freesurfer.read_geometry(str(path))
    v, f = fn(v, f)
    nib.freesurfer.write_geometry(str(path), v, f)


def test_white_pial_mismatch(fresh):
    _rewrite(fresh / "sub-01" / "surf" / "rh.pial", lambda v, f: (v[:-5], f[(f < len(v) - 5)
                                                                            .all(1)]))
    with pytest.raises(LamegDataError, match="vertex counts differ"):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    _no_partial_output(fresh)


def test_nan_coordinates(fresh):
    def nan(v, f):
        v = v.copy()
        v[7] = np.nan
        return v, f
    _rewrite(fresh / "sub-01" / "surf" / "lh.white", nan)
    with pytest.raises(LamegDataError, match="NaN"):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    _no_partial_output(fresh)


def test_annot_mismatch(fresh):
    path = fresh / "sub-01" / "label" / "lh.aparc.annot"
    lab, ctab, names = nib.freesurfer.read_annot(str(path))
    nib.freesurfer.write_annot(str(path), lab[:-10], ctab, names, fill_ctab=True)
    with pytest.raises(LamegFormatError, match="another surface"):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    _no_partial_output(fresh)


def test_bad_arguments(fresh):
    s = LayerSurfaceSet("sub-01", 2, subjects_dir=fresh)
    with pytest.raises(LamegValueError, match="orientation=.normal. is not valid"):
        s.create(orientation="normal", verbose=False)
    with pytest.raises(LamegValueError, match="ds_factor"):
        s.create(ds_factor=1.5, verbose=False)
    with pytest.raises(LamegFileNotFoundError, match="create"):
        s.load("pial", "ds")
    _no_partial_output(fresh)


def test_failure_late_leaves_nothing(fresh, monkeypatch):
    def boom(*a, **k):
        raise LamegDataError("decimation failed")
    monkeypatch.setattr(surf.build, "decimate_vertex_subset", boom)
    with pytest.raises(LamegDataError):
        LayerSurfaceSet("sub-01", 2, subjects_dir=fresh).create(verbose=False)
    _no_partial_output(fresh)


def test_save_meta_roundtrip(fresh):
    s = LayerSurfaceSet("sub-01", 2, subjects_dir=fresh)
    g = create_surf_gifti(np.eye(3), [[0, 1, 2]])
    s.save(g, "pial", "raw", "lh", meta={"a": 1})
    s.update_meta("pial", "raw", "lh", updates={"b": [1, 2]})
    meta = s.load_meta("pial", "raw", "lh")
    assert meta["a"] == 1 and meta["b"] == [1, 2] and "modified_at" in meta
    with open(s._get_fname("pial", "raw", "lh")[:-4] + ".json") as fh:
        assert json.load(fh) == meta
    assert s.load_meta("white", "raw", "lh") == {}
    shutil.rmtree(s.laminar_surf_dir)


def test_map_between_stages_has_lamegs_meaning(created):
    """laMEG 0.2.1's semantics: index selections for the medial-wall cut and the hemisphere
    split/concatenation, nearest neighbours otherwise (consistent with the exact maps)."""
    s = created[2]
    n_lh = len(arrays(s, "pial", "nodeep", "lh")[0])
    n_rh = len(arrays(s, "pial", "nodeep", "rh")[0])
    sel = s.map_between_stages("pial", "converted", "lh", "nodeep", "lh")
    exact = s.map_between_stages_exact("pial", "converted", "lh", "nodeep", "lh")
    assert sel.size == n_lh and np.all(np.diff(sel) > 0)
    np.testing.assert_array_equal(sel, np.flatnonzero(exact >= 0))
    np.testing.assert_array_equal(
        s.map_between_stages("pial", "nodeep", "rh", "combined"), np.arange(n_rh) + n_lh)
    np.testing.assert_array_equal(
        s.map_between_stages("pial", "combined", None, "nodeep", "rh"),
        np.arange(n_lh, n_lh + n_rh))
    nn = s.map_between_stages("pial", "combined", None, "ds")
    assert nn.size == n_lh + n_rh and nn.min() >= 0
    kept = s.map_between_stages_exact("pial", "combined", None, "ds")
    np.testing.assert_array_equal(nn[kept >= 0], kept[kept >= 0])  # kept vertices map exactly
    with pytest.raises(ValueError):
        s.map_between_stages("pial", "converted", "lh", "nodeep", "rh")
