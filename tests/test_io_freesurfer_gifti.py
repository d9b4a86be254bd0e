"""Tests of lameg.io.freesurfer and lameg.io.gifti."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from lameg.exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from lameg.io import freesurfer as fsio
from lameg.io import gifti


@pytest.fixture
def tri():
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    return v, f


def test_surface_roundtrip(tmp_path, tri):
    v, f = tri
    fsio.write_surface(tmp_path / "lh.white", v, f)
    v2, f2 = fsio.read_surface(tmp_path / "lh.white")
    np.testing.assert_allclose(v2, v, atol=1e-5)             # stored as float32
    np.testing.assert_array_equal(f2, f)
    assert not list(tmp_path.glob(".*"))                     # no temporary leftovers
    with pytest.raises(LamegFileNotFoundError):
        fsio.read_surface(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"not a surface")
    with pytest.raises(LamegFormatError):
        fsio.read_surface(tmp_path / "junk")


def test_morph_and_annot_roundtrip(tmp_path):
    vals = np.linspace(0, 4, 7)
    fsio.write_morph(tmp_path / "lh.thickness", vals)
    np.testing.assert_allclose(fsio.read_morph(tmp_path / "lh.thickness"), vals, atol=1e-6)
    labels = np.array([0, 1, 1, 2, 0, 2, 1])
    ctab = np.array([[25, 5, 25, 0, 0], [100, 0, 0, 0, 0], [0, 100, 0, 0, 0]])
    fsio.write_annot(tmp_path / "lh.aparc.annot", labels, ctab, ["unknown", "a", "b"])
    lab, _, names = fsio.read_annot(tmp_path / "lh.aparc.annot", n_vertices=7)
    np.testing.assert_array_equal(lab, labels)
    assert names == ["unknown", "a", "b"]
    with pytest.raises(LamegFormatError, match="belongs to another surface"):
        fsio.read_annot(tmp_path / "lh.aparc.annot", n_vertices=8)


def test_mgh_header_and_tkras_to_scanner(tmp_path):
    # a conformed (LIA) 0.8 mm volume with a non-zero c_ras: tkRAS -> scanner is a translation
    c = np.array([2.02538, 36.91534, 16.88278])
    aff = np.array([[-0.8, 0, 0, 0], [0, 0, 0.8, 0], [0, -0.8, 0, 0], [0, 0, 0, 1.0]])
    shape = np.array([8, 8, 8])
    aff[:3, 3] = c - aff[:3, :3] @ (shape / 2)
    nib.save(nib.MGHImage(np.zeros(tuple(shape), np.uint8), aff), str(tmp_path / "small.mgz"))
    hdr = fsio.read_mgh_header(tmp_path / "small.mgz")
    assert hdr["vox2ras"].shape == (4, 4) and hdr["vox2ras_tkr"].shape == (4, 4)
    m, t, n = fsio.tkras_to_scanner(tmp_path / "small.mgz")
    np.testing.assert_allclose(m, n @ np.linalg.inv(t))
    # independent check: the voxel centre maps to the same point in both frames
    ijk = np.array([3.0, 5.0, 1.0, 1.0])
    np.testing.assert_allclose(fsio.apply_affine((t @ ijk)[None, :3], m)[0], (n @ ijk)[:3])
    np.testing.assert_allclose(m[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(m[:3, 3], c, atol=1e-5)
    np.testing.assert_allclose(hdr["c_ras"], c, atol=1e-5)


def test_gifti_layout_and_roundtrip(tmp_path, tri):
    v, f = tri
    ori = np.tile([0, 0, 1.0], (4, 1))
    gifti.write_surf_gifti(tmp_path / "m.gii", v, f, ori)
    img = nib.load(str(tmp_path / "m.gii"))
    assert [int(d.intent) for d in img.darrays] == [
        nib.nifti1.intent_codes[k] for k in
        ("NIFTI_INTENT_POINTSET", "NIFTI_INTENT_TRIANGLE", "NIFTI_INTENT_VECTOR")]
    assert img.darrays[0].data.dtype == np.float32 and img.darrays[1].data.dtype == np.int32
    v2, f2, n2 = gifti.read_surf_gifti(tmp_path / "m.gii")
    np.testing.assert_allclose(v2, v)
    np.testing.assert_array_equal(f2, f)
    np.testing.assert_allclose(n2, ori)
    gifti.write_surf_gifti(tmp_path / "nonormals.gii", v, f)
    assert gifti.read_surf_gifti(tmp_path / "nonormals.gii")[2] is None
    assert not list(tmp_path.glob(".*"))
    with pytest.raises(LamegValueError):
        gifti.create_surf_gifti(v, f, ori[:2])
    with pytest.raises(LamegFileNotFoundError):
        gifti.read_surf_gifti(tmp_path / "nope.gii")
    bad = gifti.create_surf_gifti(v, f + 10)
    with pytest.raises(LamegFormatError, match="outside"):
        gifti.gifti_arrays(bad)


def test_apply_affine_shapes():
    rng = np.random.default_rng(0)
    a = np.r_[rng.standard_normal((3, 4)), [[0, 0, 0, 1.0]]]
    p = rng.standard_normal((20, 3))
    ref = p @ a[:3, :3].T + a[:3, 3]
    np.testing.assert_allclose(fsio.apply_affine(p, a), ref, atol=1e-12)
    np.testing.assert_allclose(fsio.apply_affine(p[0], a), ref[0], atol=1e-12)
    assert fsio.apply_affine(np.zeros((0, 3)), a).shape == (0, 3)


def test_gifti_n_vertices_from_the_header(tmp_path):
    """The POINTSET's Dim0 from the header equals the decoded count, for lameg's and
    nibabel's encodings; a file without a readable header falls back to a full read."""
    import nibabel as nib

    from lameg.io.gifti import create_surf_gifti, gifti_n_vertices, read_surf_gifti, save_gifti

    rng = np.random.default_rng(0)
    v = rng.standard_normal((1234, 3))
    f = rng.integers(0, 1234, (2000, 3))
    save_gifti(create_surf_gifti(v, f), tmp_path / "a.gii")
    assert gifti_n_vertices(tmp_path / "a.gii") == 1234
    img = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(f.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE",
                                 encoding="GIFTI_ENCODING_B64GZ"),
        nib.gifti.GiftiDataArray(v.astype(np.float32), intent="NIFTI_INTENT_POINTSET",
                                 encoding="GIFTI_ENCODING_B64GZ")])
    nib.save(img, str(tmp_path / "b.gii"))  # triangles first, compressed
    assert gifti_n_vertices(tmp_path / "b.gii") == len(read_surf_gifti(tmp_path / "b.gii")[0])
    # a header that does not fit the first 64 kB (huge metadata): read whole
    meta = nib.gifti.GiftiMetaData({"note": "x" * 70000})
    img = nib.gifti.GiftiImage(meta=meta, darrays=[
        nib.gifti.GiftiDataArray(v.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(f.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE")])
    nib.save(img, str(tmp_path / "c.gii"))
    assert gifti_n_vertices(tmp_path / "c.gii") == 1234


@pytest.mark.parametrize("with_normals", [False, True])
def test_written_surface_is_nibabels_xml(tmp_path, with_normals):
    # lameg assembles the XML around the encoded arrays; it must be byte for byte what
    # nibabel writes for the same surface (so any GIfTI reader sees nibabel's file)
    from lameg.io.gifti import create_surf_gifti, write_surf_gifti

    rng = np.random.default_rng(4)
    for n_v, n_f in ((1, 1), (7, 10), (1234, 2461)):
        v = rng.normal(size=(n_v, 3)) * 50
        f = rng.integers(0, n_v, size=(n_f, 3))
        nrm = rng.normal(size=(n_v, 3)) if with_normals else None
        write_surf_gifti(tmp_path / "a.gii", v, f, nrm)
        assert (tmp_path / "a.gii").read_bytes() == create_surf_gifti(v, f, nrm).to_xml()
        img = nib.load(str(tmp_path / "a.gii"))
        np.testing.assert_array_equal(img.darrays[0].data, v.astype(np.float32))
        np.testing.assert_array_equal(img.darrays[1].data, f)
