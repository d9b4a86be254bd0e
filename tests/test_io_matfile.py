"""MAT-file reader/writer: type mapping, v7 and v7.3 round trips, MATLAB's HDF5 conventions."""

from __future__ import annotations

import mmap

import h5py
import numpy as np
import pytest
import scipy.io as sio
import scipy.sparse as sp

from lameg.exceptions import LamegFileNotFoundError, LamegFormatError, LamegValueError
from lameg.io.matfile import MatCell, MatObject, StructArray, load_mat, mat_version, save_mat


def _sample():
    return {
        "scalar": 3.5,
        "pyint": 7,
        "flag": True,
        "i16": np.array([[1, -2, 3]], dtype=np.int16),
        "u32scalar": np.uint32(9),
        "row": np.arange(4.0),
        "col": np.arange(3.0).reshape(3, 1),
        "mat": np.arange(12.0).reshape(3, 4),
        "cube": np.arange(24.0).reshape(2, 3, 4),
        "f32": np.ones((2, 2), np.float32),
        "cplx": np.array([[1 + 2j, 3 - 1j]]),
        "empty": np.zeros((0, 3)),
        "none": None,
        "text": "hello wörld",
        "emptytext": "",
        "charmat": np.array(["ab ", "cde"]),
        "logical": np.array([[True, False, True]]),
        "sparse": sp.csc_matrix(([1.0, 2.0], ([0, 2], [1, 1])), shape=(5, 3)),  # empty last rows
        "cell": ["a", 1.0, np.eye(2), ["nested", {"x": 1.0}]],
        "colcell": MatCell.column(["MLC11", "MLC12"]),
        "emptycell": MatCell([], (0, 0)),
        "struct": {"a": 1.0, "b": {"c": "deep", "d": np.arange(3.0)}},
        "sarr": StructArray([{"label": "x", "bad": 0.0}, {"label": "yy", "bad": 1.0}], (2, 1)),
        "esarr": StructArray([], (0, 0), fields=("label", "bad")),
        "obj": MatObject({"fname": "a.dat", "dim": np.array([3.0, 4.0])}, classname="file_array"),
    }


def _check(orig, back, version):
    assert back["scalar"] == 3.5 and isinstance(back["scalar"], np.float64)
    assert back["pyint"] == 7.0 and back["pyint"].dtype == np.float64  # Python int -> double
    assert bool(back["flag"]) is True
    assert back["i16"].dtype == np.int16 and list(back["i16"]) == [1, -2, 3]
    assert back["u32scalar"] == 9 and back["u32scalar"].dtype == np.uint32
    np.testing.assert_array_equal(back["row"], np.arange(4.0))
    assert back["col"].shape == (3,)  # vectors are squeezed to 1-D
    np.testing.assert_array_equal(back["mat"], orig["mat"])
    np.testing.assert_array_equal(back["cube"], orig["cube"])
    assert back["f32"].dtype == np.float32
    np.testing.assert_array_equal(back["cplx"], orig["cplx"].ravel())
    assert back["empty"].shape == (0, 3)
    assert back["none"].shape == (0, 0)
    assert back["text"] == "hello wörld" and back["emptytext"] == ""
    assert list(back["charmat"]) == ["ab ", "cde"]
    assert list(np.asarray(back["logical"]).astype(bool)) == [True, False, True]
    if version == "7.3":
        assert back["logical"].dtype == bool
    assert back["sparse"].shape == (5, 3)
    np.testing.assert_array_equal(back["sparse"].toarray(), orig["sparse"].toarray())
    c = back["cell"]
    assert isinstance(c, MatCell) and c.shape == (1, 4)
    assert c[0] == "a" and c[1] == 1.0 and c[3][0] == "nested" and c[3][1] == {"x": 1.0}
    np.testing.assert_array_equal(c[2], np.eye(2))
    assert back["colcell"] == ["MLC11", "MLC12"] and back["colcell"].shape == (2, 1)
    assert back["emptycell"] == [] and back["emptycell"].shape == (0, 0)
    assert back["struct"]["b"]["c"] == "deep" and list(back["struct"]) == ["a", "b"]
    sa = back["sarr"]
    assert isinstance(sa, StructArray) and sa.shape == (2, 1) and sa.fields == ("label", "bad")
    assert [e["label"] for e in sa] == ["x", "yy"] and sa[1]["bad"] == 1.0
    assert isinstance(back["esarr"], StructArray) and len(back["esarr"]) == 0
    assert back["esarr"].fields == ("label", "bad")
    obj = back["obj"]
    assert isinstance(obj, MatObject) and obj.classname == "file_array"
    assert obj["fname"] == "a.dat"


@pytest.mark.parametrize("version", ["7", "6", "7.3"])
def test_round_trip_types(tmp_path, version):
    orig = _sample()
    fn = save_mat(tmp_path / "x.mat", orig, version=version)
    assert mat_version(fn) == version
    _check(orig, load_mat(fn), version)
    assert load_mat(fn, variables=["text"]) == {"text": "hello wörld"}


def test_v7_is_plain_matlab_for_scipy(tmp_path):
    """The MAT-5 side is what scipy (an independent reader) sees as MATLAB types."""
    fn = save_mat(tmp_path / "x.mat", _sample(), version="7")
    m = sio.loadmat(fn, squeeze_me=False)
    assert m["pyint"].dtype == np.float64 and m["pyint"].shape == (1, 1)
    assert m["row"].shape == (1, 4) and m["mat"].shape == (3, 4)
    assert m["colcell"].dtype == object and m["colcell"].shape == (2, 1)
    assert m["sarr"].shape == (2, 1) and m["sarr"].dtype.names == ("label", "bad")
    assert type(m["obj"]).__name__ == "MatlabObject" and m["obj"].classname == "file_array"
    assert sp.issparse(m["sparse"]) and m["sparse"].shape == (5, 3)


def test_v73_follows_matlab_conventions(tmp_path):
    fn = save_mat(tmp_path / "x.mat", _sample(), version="7.3")
    head = fn.read_bytes()[:128]
    assert head.startswith(b"MATLAB 7.3 MAT-file") and head[124:128] == b"\x00\x02IM"
    with h5py.File(fn, "r") as f:
        assert f.userblock_size == 512
        mat = f["mat"]
        assert mat.shape == (4, 3) and mat.attrs["MATLAB_class"] == b"double"  # reversed dims
        assert f["text"].dtype == np.uint16 and f["text"].attrs["MATLAB_class"] == b"char"
        assert f["logical"].dtype == np.uint8 and f["logical"].attrs["MATLAB_class"] == b"logical"
        e = f["empty"]
        assert e.attrs["MATLAB_empty"] == 1 and list(e[()]) == [0, 3]
        s = f["sparse"]
        assert s.attrs["MATLAB_sparse"] == 5 and set(s) == {"data", "ir", "jc"}
        cell = f["cell"]
        assert cell.attrs["MATLAB_class"] == b"cell" and cell.dtype == h5py.ref_dtype
        assert f[cell[0, 0]].name.startswith("/#refs#/")
        sarr = f["sarr"]
        assert sarr.attrs["MATLAB_class"] == b"struct" and sarr["label"].shape == (1, 2)
        assert "MATLAB_class" not in sarr["label"].attrs
        assert f["obj"].attrs["MATLAB_class"] == b"file_array"


def test_read_handmade_v73(tmp_path):
    """A file laid out by hand the way MATLAB writes it (no lameg writer involved)."""
    fn = tmp_path / "hand.mat"
    with h5py.File(fn, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        D = f.create_group("D")
        D.attrs["MATLAB_class"] = np.bytes_("struct")
        ds = D.create_dataset("Fsample", data=np.array([[600.0]]))
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        ch = D.create_group("channels")
        ch.attrs["MATLAB_class"] = np.bytes_("struct")
        labels = []
        for i, lab in enumerate(["MLC11", "MRT44"]):
            r = refs.create_dataset(f"l{i}", data=np.array([ord(c) for c in lab],
                                                           np.uint16).reshape(-1, 1))
            r.attrs["MATLAB_class"] = np.bytes_("char")
            labels.append(r.ref)
        ch.create_dataset("label", data=np.array(labels, dtype=h5py.ref_dtype).reshape(2, 1))
        g = D.create_dataset("G", data=np.arange(6.0).reshape(3, 2))  # MATLAB 2x3
        g.attrs["MATLAB_class"] = np.bytes_("double")
        sp_ = D.create_group("S")
        sp_.attrs["MATLAB_class"] = np.bytes_("double")
        sp_.attrs["MATLAB_sparse"] = np.uint64(4)
        sp_.create_dataset("jc", data=np.array([0, 1, 1], np.uint64))
        sp_.create_dataset("ir", data=np.array([0], np.uint64))
        sp_.create_dataset("data", data=np.array([2.0]))
        e = D.create_dataset("empty", data=np.array([1, 0], np.uint64))
        e.attrs["MATLAB_class"] = np.bytes_("double")
        e.attrs["MATLAB_empty"] = np.uint8(1)
    with open(fn, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file".ljust(124) + b"\x00\x02IM")
    D = load_mat(fn)["D"]
    assert D["Fsample"] == 600.0
    assert [c["label"] for c in D["channels"]] == ["MLC11", "MRT44"]
    np.testing.assert_array_equal(D["G"], np.arange(6.0).reshape(3, 2).T)
    assert D["S"].shape == (4, 2) and D["S"][0, 0] == 2.0  # rows from MATLAB_sparse
    assert D["empty"].shape == (1, 0)


def test_errors(tmp_path):
    with pytest.raises(LamegFileNotFoundError):
        load_mat(tmp_path / "none.mat")
    (tmp_path / "t.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b" " * 97 + b"\0" * 8 + b"\x00\x01IM"
                                     + b"\x0e\x00\x00\x00\xff\xff\x00\x00garbage")
    with pytest.raises(LamegFormatError, match="t.mat"):
        load_mat(tmp_path / "t.mat")
    with pytest.raises(LamegValueError, match="version"):
        save_mat(tmp_path / "v.mat", {"a": 1.0}, version="8")
    with pytest.raises(LamegValueError, match="not a valid MATLAB"):
        save_mat(tmp_path / "v.mat", {"1a": 1.0})
    with pytest.raises(LamegValueError, match="not a valid MATLAB"):
        save_mat(tmp_path / "v.mat", {"a": {"bad key": 1.0}})
    with pytest.raises(LamegValueError, match="cannot store"):
        save_mat(tmp_path / "v.mat", {"a": object()}, version="7.3")
    with pytest.raises(LamegValueError, match="fields"):
        save_mat(tmp_path / "v.mat", {"a": StructArray([{"x": 1.0}, {"y": 2.0}])})
    assert not (tmp_path / "v.mat").exists()  # failed writes leave nothing behind
    save_mat(tmp_path / "keep.mat", {"a": 1.0})
    with pytest.raises(LamegValueError):
        save_mat(tmp_path / "keep.mat", {"a": object()})
    assert load_mat(tmp_path / "keep.mat") == {"a": 1.0}  # the old file is intact
    with pytest.raises(LamegFormatError, match="no variable"):
        load_mat(tmp_path / "keep.mat", variables=["b"])


def _same(x, y, path=""):
    """Recursive equality of two loaded MAT values (types, shapes, values)."""
    assert type(x) is type(y) or (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)), path
    if isinstance(x, dict):
        assert list(x) == list(y), path
        for k in x:
            _same(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list):
        assert len(x) == len(y) and getattr(x, "shape", None) == getattr(y, "shape", None), path
        for i, (u, v) in enumerate(zip(x, y)):
            _same(u, v, f"{path}[{i}]")
    elif isinstance(x, np.ndarray):
        assert x.shape == y.shape and x.dtype == y.dtype, path
        np.testing.assert_array_equal(x, y)
    elif sp.issparse(x):
        assert (x != y).nnz == 0, path
    else:
        assert x == y, (path, x, y)


def test_large_arrays_are_memory_mapped(tmp_path, monkeypatch):
    """Uncompressed MAT-5, ``map_under``: large real double arrays inside the named fields, at
    any depth (struct fields, cells, struct arrays, objects), come back as copy-on-write maps
    of the file, equal to SciPy's full read; everything else is unchanged; writing to a map
    never touches the file; nothing is mapped by default."""
    import lameg.io.matfile as mf
    from lameg.io.mat5map import prune_large_arrays

    rng = np.random.default_rng(0)
    big = {k: rng.standard_normal(s) for k, s in
           (("M", (3000, 78)), ("L", (78, 3000)), ("v", (5000,)), ("c", (40, 30, 25)))}
    data = _sample()
    inverse = {"M": big["M"], "L": big["L"], "tiny": 1.0, "cplx": big["M"][:50] * 1j,
               "sarr": StructArray([{"x": big["v"]}, {"x": 2.0}], (1, 2)),
               "cell": MatCell([big["c"], "s"], (2, 1)),
               "obj": MatObject({"dat": big["v"] + 1}, classname="file_array")}
    data["D"] = {"other": {"inv": [{"inverse": inverse, "mesh": {"vert": big["M"] + 1}}]}}
    fn = save_mat(tmp_path / "big.mat", data, version="6")  # uncompressed
    before = fn.read_bytes()
    pruned, found = prune_large_arrays(fn, min_bytes=10_000, under=("inverse",))
    assert len(pruned) < 0.4 * len(before)  # what is left: mostly the mesh (not mapped)
    assert [f[0] for f in found] == ["D"] * 5  # M, L, x, the cell's array, the object's
    assert len(prune_large_arrays(fn, min_bytes=10_000)[1]) == 6  # anywhere: the mesh too
    monkeypatch.setattr(mf, "LAZY_MIN_BYTES", 0)
    monkeypatch.setattr(mf, "prune_large_arrays",
                        lambda p, under: prune_large_arrays(p, min_bytes=10_000, under=under))
    lazy = load_mat(fn, map_under=("inverse",))
    full = load_mat(fn)
    _same(lazy, full)
    _check(data, lazy, "6")

    def is_mapped(a):  # a view (vectors are squeezed to 1-D views) of a memory map
        while a is not None and not isinstance(a, (np.memmap, mmap.mmap)):
            a = getattr(a, "base", None)
        return a is not None

    inv = lazy["D"]["other"]["inv"][0]["inverse"]
    mapped = [inv["M"], inv["L"], inv["sarr"][0]["x"], inv["cell"][0], inv["obj"]["dat"]]
    assert all(is_mapped(a) for a in mapped)
    assert not is_mapped(inv["cplx"])  # complex: read as usual
    assert not is_mapped(lazy["D"]["other"]["inv"][0]["mesh"]["vert"])  # not under 'inverse'
    assert not any(is_mapped(a) for a in (full["D"]["other"]["inv"][0]["inverse"]["M"],))
    inv["M"][:] = 0.0  # copy-on-write: the file keeps its values
    assert fn.read_bytes() == before
    np.testing.assert_array_equal(
        load_mat(fn, map_under=("inverse",))["D"]["other"]["inv"][0]["inverse"]["M"], big["M"])


def test_memory_mapping_falls_back_to_a_full_read(tmp_path, monkeypatch):
    """Compressed, truncated or big-endian files are read by SciPy as before."""
    import lameg.io.matfile as mf
    from lameg.io.mat5map import prune_large_arrays

    big = {"M": np.arange(40000.0).reshape(200, 200)}
    zipped = save_mat(tmp_path / "z.mat", big, version="7")
    assert prune_large_arrays(zipped, min_bytes=1000) is None
    plain = save_mat(tmp_path / "p.mat", big, version="6")
    assert prune_large_arrays(plain, min_bytes=10**9) is None  # nothing large
    cut = tmp_path / "cut.mat"
    cut.write_bytes(plain.read_bytes()[:-5000])
    assert prune_large_arrays(cut, min_bytes=1000) is None
    monkeypatch.setattr(mf, "LAZY_MIN_BYTES", 0)
    with pytest.raises(LamegFormatError):
        load_mat(cut, map_under=("M",))
    np.testing.assert_array_equal(load_mat(zipped)["M"], big["M"])


@pytest.mark.parametrize("version", ["6", "7"])
def test_column_major_arrays_are_written_without_a_copy(tmp_path, version):
    from lameg.io.matfile import _WriteThrough

    rng = np.random.default_rng(3)
    big_f = np.asfortranarray(rng.normal(size=(300, 500)))    # 1.2 MB: written through
    big_c = np.ascontiguousarray(rng.normal(size=(500, 300)))  # row-major: NumPy's bytes
    view = _WriteThrough.wrap(big_f)
    assert isinstance(view, _WriteThrough) and not isinstance(_WriteThrough.wrap(big_c),
                                                              _WriteThrough)
    assert np.shares_memory(np.frombuffer(view.tobytes(order="F"), dtype=float), big_f)
    assert view.tobytes(order="C") == big_f.tobytes(order="C")
    variables = {"G": big_f, "s": {"M": big_f[:, :200], "C": big_c, "v": np.arange(4.0)}}
    save_mat(tmp_path / "a.mat", variables, version=version)
    # the same values as plain C-ordered arrays go through SciPy's own copy: same file content
    plain = {"G": np.ascontiguousarray(big_f),
             "s": {"M": np.ascontiguousarray(big_f[:, :200]), "C": big_c, "v": np.arange(4.0)}}
    save_mat(tmp_path / "b.mat", plain, version=version)
    a, b = (tmp_path / "a.mat").read_bytes(), (tmp_path / "b.mat").read_bytes()
    if version == "6":  # uncompressed: identical after the time-stamped text header
        assert a[116:] == b[116:]
    got = load_mat(tmp_path / "a.mat")
    np.testing.assert_array_equal(got["G"], big_f)
    np.testing.assert_array_equal(got["s"]["M"], big_f[:, :200])
    np.testing.assert_array_equal(got["s"]["C"], big_c)


def test_mapped_writer_grows_and_is_cut_to_size(tmp_path):
    from lameg.io.mapped import MappedWriter

    # the 17 MB chunk is released from the process once written; the file keeps it
    chunks = [bytes([i]) * n for i, n in enumerate([10, 70_000, 3, 200_000, 17 * 2**20, 5])]
    with open(tmp_path / "m.bin", "w+b") as fh:
        w = MappedWriter(fh, 100)  # far too small: grows several times
        for c in chunks:
            w.write(c)
        end = w.tell()
        w.seek(5)
        w.write(b"xy")  # patch in place, as SciPy does for element sizes
        assert w.tell() == 7 and w.seek(0, 2) == end
        w.seek(300_000)
        w.write(b"inside the released pages")
        w.close()
    want = bytearray(b"".join(chunks))
    want[5:7] = b"xy"
    want[300_000:300_025] = b"inside the released pages"
    assert (tmp_path / "m.bin").read_bytes() == bytes(want)


def test_mapped_writer_grows_without_mremap(tmp_path, monkeypatch):
    # where mmap cannot be resized in place (macOS has no mremap) the file is mapped again
    import mmap as mmap_module

    from lameg.io import mapped

    class NoResize(mmap_module.mmap):
        def resize(self, newsize):
            raise SystemError("mmap: resizing not available--no mremap()")

    monkeypatch.setattr(mapped.mmap, "mmap", NoResize)
    with open(tmp_path / "m.bin", "w+b") as fh:
        w = mapped.MappedWriter(fh, 10)
        w.write(b"a" * 70_000)
        w.seek(3)
        w.write(b"b")
        w.seek(0, 2)
        w.write(b"c" * 200_000)
        w.close()
    want = bytearray(b"a" * 70_000 + b"c" * 200_000)
    want[3:4] = b"b"
    assert (tmp_path / "m.bin").read_bytes() == bytes(want)
