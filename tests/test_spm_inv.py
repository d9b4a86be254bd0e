"""The one owner of ``D.other.inv`` (``lameg.io.spm_inv``): architecture, scale, verification."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from lameg.exceptions import InversionNotFoundError, LamegDataError
from lameg.io.spm_inv import (
    apply_inverse,
    head_model_writer,
    read_head_model,
    read_inverse,
    write_head_model,
)
from lameg.io.spm_meeg import load_meeg, read_gainmat, write_gainmat

LAMEG = Path(__file__).resolve().parents[1] / "lameg"


def test_no_module_outside_the_owner_reads_d_other_inv():
    """Only lameg/io/spm_inv.py (and the MEEG header class it uses) touch ``D.other.inv``."""
    owners = {LAMEG / "io" / "spm_inv.py", LAMEG / "io" / "spm_inv_write.py",
              LAMEG / "io" / "spm_meeg.py"}
    pattern = re.compile(r"""(\.inv\b(?!\w)(?!\s*\()|\[["']inv["']\]|\.save_inv\(|["']gainmat["'])""")
    offenders = []
    for path in LAMEG.rglob("*.py"):
        if path in owners:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            code = re.sub(r"np\.linalg\.inv|scipy\.linalg\.inv|``[^`]*``", "", code)
            # MATLAB code sent to SPM (string literals with spaces) is SPM's business
            code = re.sub(r"""f?"[^"]*\s[^"]*"|f?'[^']*\s[^']*'""", '""', code)
            if pattern.search(code):
                offenders.append(f"{path.relative_to(LAMEG.parent)}:{i}: {line.strip()}")
    assert not offenders, "D.other.inv read outside lameg.io.spm_inv:\n" + "\n".join(offenders)


def test_no_module_over_1000_lines():
    sizes = {str(p.relative_to(LAMEG.parent)): len(p.read_text().splitlines())
             for p in LAMEG.rglob("*.py")}
    assert not {k: v for k, v in sizes.items() if v > 1000}


@pytest.fixture()
def dataset(spm_reference, tmp_path):
    shutil.copytree(spm_reference / "dataset", tmp_path / "dataset")
    for p in tmp_path.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return tmp_path / "dataset" / "sim_base.mat"


def _rescaled_copy(dataset: Path, scale: float) -> Path:
    """A copy of ``dataset`` whose stored gain is ``scale`` x the physical one, as SPM stores
    gains conditioned by ``spm_cond_units`` (``forward.scale = scale``)."""
    new = dataset.parent / "scaled" / dataset.name
    new.parent.mkdir()
    for suffix in (".mat", ".dat"):
        shutil.copy(dataset.with_suffix(suffix), new.with_suffix(suffix))
    hm = read_head_model(dataset, 0)
    G, labels = read_gainmat(hm.gain_path)
    entry = dict(hm.entry)
    entry["forward"] = dict(hm.forward, scale=float(scale))
    write_head_model(new, 0, entry, G * scale, labels)
    return new


@pytest.mark.spmref
def test_rescaled_dataset_gives_the_same_lead_field_everywhere(dataset, tmp_path):
    """forward.scale != 1: simulation, inversion, SAM and the RMS predictor see one lead field."""
    from lameg.invert import get_lead_field_rms_diff, invert
    from lameg.sam.forward import read_spm_forward
    from lameg.simulate import run_current_density_simulation

    scaled = _rescaled_copy(dataset, 1000.0)
    a, b = read_head_model(dataset, 0), read_head_model(scaled, 0)
    assert a.scale == 1.0 and b.scale == 1000.0
    labels = a.channels
    # the lead field itself (x1000 then /1000: exact up to one rounding)
    np.testing.assert_allclose(b.gain(labels), a.gain(labels), rtol=1e-15, atol=0)
    # SAM's SI lead fields
    np.testing.assert_allclose(read_spm_forward(scaled).gain(labels[:20], np.arange(50)),
                               read_spm_forward(dataset).gain(labels[:20], np.arange(50)),
                               rtol=1e-14)

    # the lead-field RMS predictor (two 'layers' of 5121 sources)
    class TwoLayers:
        n_layers = 2

        def get_vertices_per_layer(self, orientation="link_vector", fixed=True):
            return 5121

    np.testing.assert_allclose(get_lead_field_rms_diff(scaled, TwoLayers()),
                               get_lead_field_rms_diff(dataset, TwoLayers()), rtol=1e-13)
    # simulations: same data
    sig = np.sin(np.linspace(0, 6, load_meeg(dataset).n_samples))[None]
    kw = dict(sim_vertices=[1025], sim_signals=sig, dipole_moments=[10.0],
              sim_patch_sizes=[5.0], snr=-5.0, seed=4)
    sa = run_current_density_simulation(dataset, "s_", **kw)
    sb = run_current_density_simulation(scaled, "s_", **kw)
    np.testing.assert_allclose(load_meeg(sb).data, load_meeg(sa).data, rtol=1e-6, atol=1e-6)
    # inversions: the same free energy and source estimates
    fa = invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[-50, 115],
                foi=[0, 48], return_mu_matrix=True)
    fb = invert(scaled, method="EBB", smoothing=("green", 0.6), woi=[-50, 115],
                foi=[0, 48], return_mu_matrix=True)
    assert abs(float(fa.F) - float(fb.F)) < 1e-6 * abs(float(fa.F))
    np.testing.assert_allclose(fb.mu_matrix, fa.mu_matrix, rtol=1e-6,
                               atol=1e-9 * np.abs(fa.mu_matrix).max())


@pytest.mark.spmref
def test_gain_is_verified_against_the_header(dataset):
    new = _rescaled_copy(dataset, 1.0)  # written by lameg: name, size and hash recorded
    hm = read_head_model(new, 0)
    assert re.fullmatch(r"SPMgainmatrix_sim_base_1_[0-9a-f]{12}\.mat", hm.gain_name)
    assert hm.entry["gainmat_hash"] and hm.gain(hm.channels[:3]).shape == (3, 10242)
    # flip bytes in the middle of the file (same size): detected by the hash
    raw = bytearray(hm.gain_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    hm.gain_path.write_bytes(bytes(raw))
    with pytest.raises(LamegDataError, match="checksum"):
        read_head_model(new, 0).gain()
    # truncated: detected by the size
    hm.gain_path.write_bytes(bytes(raw[:-10]))
    with pytest.raises(LamegDataError, match="bytes"):
        read_head_model(new, 0).gain()


def test_a_gain_written_in_place_commits_as_one_transaction(dataset):
    new = _rescaled_copy(dataset, 1.0)
    old = read_head_model(new, 0)
    old_path = old.gain_path
    G, labels = read_gainmat(old_path)
    before = {p.name: p.read_bytes() for p in new.parent.iterdir() if p.is_file()}

    def debris():
        return sorted(p.name for p in new.parent.glob(".SPMgainmatrix_*.tmp"))

    # a block left by an error: the partly written gain file is removed, nothing else changes
    with pytest.raises(RuntimeError, match="stop"):
        with head_model_writer(new, labels, G.shape[1]) as pending:
            assert pending.gain.flags.f_contiguous and len(debris()) == 1
            pending.gain[:, :100] = G[:, :100]
            raise RuntimeError("stop")
    assert debris() == []
    assert {p.name: p.read_bytes() for p in new.parent.iterdir() if p.is_file()} == before
    # an interrupted process leaves its temporary: the next writer removes it
    crashed = new.parent / ".SPMgainmatrix_sim_base_crashed.tmp"
    crashed.write_bytes(b"partial")
    with head_model_writer(new, labels, G.shape[1]) as pending:
        pending.gain[...] = 3 * G
        hm = pending.commit(0, old.entry)
        with pytest.raises(ValueError, match="read-only"):
            pending.gain[0, 0] = 1.0  # the map is the committed file
    assert debris() == [] and not old_path.exists()
    np.testing.assert_array_equal(read_head_model(new, 0).gain(), hm.gain())
    np.testing.assert_array_equal(read_gainmat(hm.gain_path)[0], 3 * G)
    # the same values through write_head_model (copied into the file): the same content name
    write_head_model(new, 0, old.entry, 3 * G, labels)
    assert read_head_model(new, 0).gain_name == hm.gain_name
    # non-finite values are refused before anything is committed
    with pytest.raises(LamegDataError, match="NaN or Inf"):
        with head_model_writer(new, labels, G.shape[1]) as pending:
            pending.gain[...] = G
            pending.gain[0, 5] = np.nan
            pending.commit(0, old.entry)
    assert debris() == [] and read_head_model(new, 0).gain_name == hm.gain_name


@pytest.mark.spmref
def test_rewriting_a_head_model_removes_the_old_gain_and_the_inverse(dataset):
    from lameg.invert import invert

    new = _rescaled_copy(dataset, 1.0)
    invert(new, method="EBB", smoothing=("green", 0.6), woi=[-50, 115], foi=[0, 48])
    assert read_inverse(new, 0).n_sources == 10242
    old = read_head_model(new, 0)
    old_path = old.gain_path
    G, labels = read_gainmat(old_path)
    write_head_model(new, 0, old.entry, 2 * G, labels)
    hm = read_head_model(new, 0)
    assert hm.gain_name != old.gain_name and not old_path.exists()
    with pytest.raises(InversionNotFoundError, match="no inversion"):
        read_inverse(new, 0)  # the old inverse belonged to the old head model
    files = sorted(p.name for p in new.parent.iterdir())
    assert files == sorted([".sim_base.mat.lock", "sim_base.dat", "sim_base.mat",
                            hm.gain_name]), files


@pytest.mark.spmref
def test_apply_inverse_is_the_stored_operator(dataset):
    from lameg.invert import invert

    invert(dataset, method="EBB", smoothing=("green", 0.6), woi=[-50, 115], foi=[0, 48])
    inv = read_inverse(dataset, 0)
    D = load_meeg(dataset)
    src, t = apply_inverse(inv, D.data, D.time, D.fsample, vertices=[3, 1025])
    S = inv.temporal_basis
    y = np.asarray(D.data[inv.channels], float)[:, inv.samples, 0]
    want = (np.asarray(inv.M)[[3, 1025]] @ inv.spatial_projector) @ y @ S @ S.T
    np.testing.assert_allclose(src[:, :, 0], want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    assert t.shape == (inv.samples.size,)


def test_corrupted_cache_entries_are_recomputed(tmp_path, monkeypatch):
    """A damaged gain block and a damaged kernel are detected, evicted and recomputed."""
    from lameg.forward.gain import compute_gain
    from lameg.forward.sensors import SensorArray
    from lameg.forward.sphere import SphereModel
    from lameg.inverse.cache import clear_cache as clear_memory
    from lameg.inverse.kernels import geodesic_kernel

    monkeypatch.setenv("LAMEG_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    # -- gain block
    coil = rng.normal(size=(30, 3))
    coil = 0.12 * coil / np.linalg.norm(coil, axis=1, keepdims=True)
    sens = SensorArray(coilpos=coil, coilori=coil / 0.12, tra=np.eye(30),
                       labels=[f"M{i}" for i in range(30)], chantype=["megmag"] * 30,
                       chanunit=["T"] * 30)
    pos = rng.normal(size=(40, 3)) * 0.02
    ori = rng.normal(size=(40, 3))
    ori /= np.linalg.norm(ori, axis=1, keepdims=True)
    head = SphereModel(np.zeros(3), 0.09)
    G1 = compute_gain(pos, ori, sens, head, cache=True)
    (entry,) = list((tmp_path / "gain").glob("*.npz"))
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    entry.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="removed and will be recomputed"):
        G2 = compute_gain(pos, ori, sens, head, cache=True)
    np.testing.assert_array_equal(G2, G1)
    assert list((tmp_path / "gain").glob("*.npz"))  # recomputed and stored again
    # -- geodesic kernel
    x, y = np.meshgrid(np.arange(12.0), np.arange(12.0))
    v = np.c_[x.ravel(), y.ravel(), np.zeros(144)] * 2.0
    idx = np.arange(144).reshape(12, 12)
    f = np.r_[np.c_[idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel()],
              np.c_[idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()]]
    q1 = geodesic_kernel(v, f, 4.0)
    clear_memory()
    (kentry,) = list((tmp_path / "kernels").glob("*.npz"))
    kentry.write_bytes(kentry.read_bytes()[:-40])  # truncated
    with pytest.warns(RuntimeWarning, match="removed and will be recomputed"):
        q2 = geodesic_kernel(v, f, 4.0)
    assert abs(q2 - q1).max() == 0
    import lameg

    assert lameg.clear_cache() >= 2 and not any(tmp_path.rglob("*.npz"))


@pytest.mark.spmref
def test_a_copied_dataset_is_self_contained(spm_reference, tmp_path):
    """The inversion of a copied dataset reads nothing from the original folder or mesh file."""
    from lameg.exceptions import LamegDataError
    from lameg.invert import coregister_mesh, invert

    with pytest.raises(LamegDataError, match="flat"):  # all-zero data: no NaN free energy
        invert(_zero_copy(spm_reference, tmp_path), method="EBB", smoothing=("green", 0.6))
    src = tmp_path / "orig"
    src.mkdir()
    for ext in ("mat", "dat"):  # SPM's simulated dataset (base.mat's data are all zero)
        shutil.copy(spm_reference / "dataset" / f"sim_base.{ext}", src / f"base.{ext}")
        (src / f"base.{ext}").chmod(0o644)
    for name in ("cortex_fs5_lh_pial.gii", "iskull_fsaverage.gii"):
        shutil.copy(spm_reference / "inputs" / name, src / name)
    g = np.load(spm_reference / "inputs" / "geometry_inputs.npz")
    fid = {k: g["fid_mri"][i] for i, k in enumerate(("nas", "lpa", "rpa"))}
    coregister_mesh(fid, src / "base.mat", src / "cortex_fs5_lh_pial.gii",
                    iskull_fname=src / "iskull_fsaverage.gii",
                    forward_model_type="Single Sphere", cache_dir=False)
    # clones written to other folders take their gain with them (same name and a new one)
    G = read_head_model(src / "base.mat", 0).gain()
    for new in (tmp_path / "elsewhere" / "base.mat", tmp_path / "elsewhere" / "renamed.mat"):
        new.parent.mkdir(exist_ok=True)
        clone = load_meeg(src / "base.mat").clone(new, version="7.3")
        np.testing.assert_array_equal(read_head_model(clone.fname, 0).gain(), G)
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    shutil.rmtree(src)  # the original folder, its mesh and its gain are gone
    for new in (tmp_path / "elsewhere" / "base.mat", tmp_path / "elsewhere" / "renamed.mat"):
        np.testing.assert_array_equal(read_head_model(new, 0).gain(), G)
    s = invert(dst / "base.mat", method="EBB", smoothing=("geodesic", 5.0), n_temp_modes=2,
               woi=[-50, 100])
    assert np.isfinite(s.F) and read_inverse(dst / "base.mat", 0).n_sources == 10242


def _zero_copy(spm_reference, tmp_path):
    d = tmp_path / "zero"
    d.mkdir()
    for name in ("base.mat", "base.dat", "SPMgainmatrix_base_1.mat"):
        shutil.copy(spm_reference / "dataset" / name, d / name)
        (d / name).chmod(0o644)
    return d / "base.mat"


@pytest.mark.spmref
def test_v73_header_keeps_its_version_and_spm_layout(dataset):
    """A MAT v7.3 header (laMEG's SPM writes them) stays v7.3 and is laid out as SPM's:
    ``inverse.T`` one column per temporal mode, ``U`` a cell holding ``A`` as a MATLAB sparse
    matrix (laMEG's v7.3 reader reads a sparse ``U`` with its logical shape), ``Ic`` a cell."""
    import h5py

    from lameg.invert import invert

    D = load_meeg(dataset)
    D.save(version="7.3")
    invert(dataset, method="EBB", smoothing=("green", 0.6), n_temp_modes=1, woi=[0, 100])
    assert load_meeg(dataset).mat_version == "7.3"
    with h5py.File(dataset, "r") as f:
        inv = f[f["D"]["other"]["inv"][0][0]]["inverse"]
        n_it = inv["It"].shape
        t = inv["T"][()].T  # HDF5 holds MATLAB arrays transposed
        assert t.shape == (max(n_it), 1)
        u = f[inv["U"][0][0]]
        assert isinstance(u, h5py.Group) and {"data", "ir", "jc"} <= set(u)
        assert u.attrs["MATLAB_class"] == b"double" and "MATLAB_sparse" in u.attrs
    stored = read_inverse(dataset, 0)
    assert stored.spatial_projector.shape[1] == stored.channels.size
    assert stored.temporal_basis.shape == (stored.samples.size, 1)


@pytest.mark.spmref
def test_gain_columns_are_read_without_the_whole_file(dataset, tmp_path):
    """Uncompressed MAT-5 (memory map) and v7.3 (HDF5 slices) give exactly the full read's
    columns; a compressed file (SPM's) falls back to reading it whole."""
    from lameg.io.spm_gainmat import read_gain_columns

    hm = read_head_model(dataset, 0)
    full = hm.gain()
    cols = np.array([10241, 0, 5, 5, 4000])
    assert read_gain_columns(hm.gain_path, cols) is None  # SPM's file is compressed
    np.testing.assert_array_equal(hm.gain(columns=cols), full[:, cols])
    G, labels = read_gainmat(hm.gain_path)
    for version in ("6", "7.3"):
        p = tmp_path / f"g{version}.mat"
        write_gainmat(p, G, labels, version=version)
        part, n = read_gain_columns(p, cols)
        assert n == 10242
        np.testing.assert_array_equal(part, G[:, cols])
        whole, n = read_gain_columns(p)  # all columns: one copy out of the mapped file
        assert n == 10242
        np.testing.assert_array_equal(whole, G)
    new = _rescaled_copy(dataset, 1.0)  # lameg's own (uncompressed) gain file
    np.testing.assert_array_equal(read_head_model(new, 0).gain(labels[:7], cols),
                                  full[:7][:, cols])
    np.testing.assert_array_equal(read_head_model(new, 0).gain(), full)
    np.testing.assert_array_equal(read_head_model(new, 0).gain(labels[::-1]), full[::-1])


@pytest.mark.spmref
def test_a_simulation_keeps_its_head_model_when_the_template_changes(dataset):
    """A clone links the gain files it borrows under its own name: co-registering the template
    again (which removes the template's old gain) leaves the simulated dataset intact."""
    from lameg.simulate import run_current_density_simulation

    new = _rescaled_copy(dataset, 1.0)
    sig = np.ones((1, load_meeg(new).n_samples))
    sim = run_current_density_simulation(new, "s_", [1025], sig, 10.0, 5.0, 0.0, seed=1)
    hm_sim = read_head_model(sim, 0)
    assert hm_sim.gain_name.startswith("SPMgainmatrix_s_sim_base_1_")
    before = hm_sim.gain(hm_sim.channels[:4], np.arange(6))
    tmpl = read_head_model(new, 0)
    G, labels = read_gainmat(tmpl.gain_path)
    write_head_model(new, 0, tmpl.entry, 3 * G, labels)  # the template's old gain is removed
    np.testing.assert_array_equal(read_head_model(sim, 0).gain(hm_sim.channels[:4],
                                                                np.arange(6)), before)


def test_a_gain_too_large_for_mat5_is_written_from_memory(dataset, monkeypatch):
    # beyond MAT-5's 2 GB (or where a mapped file cannot be renamed) the gain is filled in
    # memory and written as MAT v7.3 at the commit; small here, by pretending it does not fit
    from lameg.io.matfile import mat_version
    from lameg.io.spm_gainmat import GainFileMap

    new = _rescaled_copy(dataset, 1.0)
    old = read_head_model(new, 0)
    G, labels = read_gainmat(old.gain_path)
    monkeypatch.setattr(GainFileMap, "fits", staticmethod(lambda n_chan, n_src: False))
    with head_model_writer(new, labels, G.shape[1]) as pending:
        assert not isinstance(pending.gain, np.memmap)
        pending.gain[...] = 2 * G  # new content (the same would keep the existing file)
        hm = pending.commit(0, old.entry)
    assert mat_version(hm.gain_path) == "7.3"
    np.testing.assert_array_equal(read_head_model(new, 0).gain(), 2 * G)
    assert not list(new.parent.glob(".SPMgainmatrix_*.tmp"))
