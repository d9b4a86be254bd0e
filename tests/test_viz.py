"""Tests of lameg.viz: colour helpers (laMEG conformance), off-screen renders, 2-D plots."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lameg import viz
from lameg.exceptions import LamegPermissionError, LamegValueError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


# ------------------------------------------------------------------------------------------
# Colours
# ------------------------------------------------------------------------------------------


def test_rgbtoint_conformance():
    assert viz.rgbtoint([255, 255, 255]) == 0xFFFFFF
    assert viz.rgbtoint([255, 0, 0]) == 0xFF0000
    assert viz.rgbtoint([0, 128, 255]) == 0x0080FF
    np.testing.assert_array_equal(viz.rgbtoint(np.array([[1, 2, 3], [0, 0, 1]])),
                                  [0x010203, 1])
    with pytest.raises(LamegValueError):
        viz.rgbtoint([256, 0, 0])
    with pytest.raises(LamegValueError):
        viz.rgbtoint([1, 2])


def test_data_to_rgb_and_color_map():
    rng = np.random.default_rng(0)
    data = rng.normal(size=100)
    assert viz.data_to_rgb(data, 50, "RdBu_r", -2, 2, norm="TS").shape == (100, 4)
    rgba, mappable = viz.data_to_rgb(data, 50, "viridis", -2, 2, norm="N", ret_map=True)
    assert rgba.shape == (100, 4) and mappable.norm.vmin == -2
    with pytest.raises(ValueError):
        viz.data_to_rgb(data, 50, "viridis", -2, 2, norm="XX")
    with pytest.raises(LamegValueError, match="vcenter"):
        viz.data_to_rgb(data, 50, "viridis", 1, 2, norm="TS")
    pos = np.abs(data) + 0.01
    assert viz.data_to_rgb(pos, 10, "viridis", 0.01, 3, norm="LOG").shape == (100, 4)
    # Quantisation: each value takes the colour of its bin's upper edge.
    vals = np.array([0.0, 0.1, 0.5, 0.99, 1.0])
    rgba = viz.data_to_rgb(vals, 2, "viridis", 0, 1, norm="N")
    import matplotlib as mpl

    ref = mpl.colormaps["viridis"](np.array([0.5, 0.5, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(rgba, ref)
    cols, _ = viz.color_map(vals, "viridis", 0, 1, n_bins=2, norm="N")
    assert cols.dtype.kind == "i" and cols.shape == (5, 3) and cols.max() <= 255
    np.testing.assert_array_equal(cols, np.round(ref[:, :3] * 255).astype(int))


# ------------------------------------------------------------------------------------------
# Renders
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fsavg5():
    datasets = pytest.importorskip("nilearn.datasets")
    f = datasets.fetch_surf_fsaverage("fsaverage5")
    out = {}
    for key in ("pial_left", "white_left", "infl_left", "curv_left", "thick_left"):
        img = nib.load(f[key])
        out[key] = (img.darrays[0].data, img.darrays[1].data) if len(img.darrays) > 1 else \
            img.darrays[0].data
    return out


def _read(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)[..., :3]


def _assert_picture(img: np.ndarray) -> None:
    assert img.std() > 0.05, "image is blank"
    non_white = img[(img < 0.95).any(-1)]
    assert non_white.shape[0] > 0.05 * img.shape[0] * img.shape[1]
    assert non_white.std(axis=0).max() > 0.05, "colours do not vary"


def test_render_mesh_colorbar_deterministic(fsavg5, tmp_path):
    v, f = fsavg5["pial_left"]
    thick = fsavg5["thick_left"]
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for p in paths:
        viz.render_mesh(v, f, scalars=thick, cmap="Spectral_r", colorbar=True,
                        colorbar_label="Thickness (mm)", title="fsaverage5", screenshot=p,
                        height=300)
    a, b = _read(paths[0]), _read(paths[1])
    _assert_picture(a)
    assert a.shape[0] == 300 and a.shape[1] > 400  # render + colour bar panel
    # Same scene, same pixels (tolerance for driver rounding).
    assert np.abs(a - b).max() < 2 / 255
    # The colour bar panel holds saturated colours from the colormap's ends.
    bar = a[:, 400:]
    assert (bar[..., 0] - bar[..., 2] > 0.3).any() and (bar[..., 2] - bar[..., 0] > 0.3).any()


def test_render_mesh_vertex_colors_and_markers(fsavg5, tmp_path):
    v, f = fsavg5["pial_left"]
    thick = fsavg5["thick_left"]
    cols, _ = viz.color_map(thick, "Reds", 0, 4, norm="N")
    rgba = np.hstack([cols, np.where(thick > 2.5, 255, 0)[:, None]])
    out = tmp_path / "c.png"
    viz.render_mesh(v, f, vertex_colors=rgba, marker_coords=v[[100, 2000]], marker_size=8,
                    marker_color=[0, 0, 255], screenshot=out, height=240,
                    camera_view=[-300, 0, 0, 0, -20, 10, 0, 0, 1])
    img = _read(out)
    _assert_picture(img)
    assert img.shape[:2] == (240, 320)
    grey = (np.abs(img[..., 0] - img[..., 1]) < 0.02) & (np.abs(img[..., 1] - img[..., 2]) < 0.02)
    grey &= img[..., 0] < 0.9
    reddish = (img[..., 0] - img[..., 2]) > 0.15
    assert grey.sum() > 1000 and reddish.sum() > 1000  # alpha mask shows both
    with pytest.raises(LamegValueError):
        viz.render_mesh(v, f, vertex_colors=rgba[:10])
    with pytest.raises(LamegValueError):
        viz.render_mesh(v, f[:, :2])
    with pytest.raises(LamegValueError):
        viz.render_mesh(v, f, camera_view=[1, 2, 3])


class _SurfSet:
    """Stand-in for LayerSurfaceSet exposing the methods show_surface uses (fsaverage5 lh)."""

    def __init__(self, root: Path, meshes: dict):
        self.surf_dir = root
        self.meshes = meshes

    def load(self, layer_name=None, stage="raw", hemi=None, orientation=None, fixed=None):
        key = (layer_name, stage)
        if key not in self.meshes:
            raise FileNotFoundError(key)
        v, f = self.meshes[key]
        return nib.gifti.GiftiImage(darrays=[
            nib.gifti.GiftiDataArray(v.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
            nib.gifti.GiftiDataArray(f.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"),
        ])


def test_show_surface_with_curvature(fsavg5, tmp_path, capsys):
    pial, infl = fsavg5["pial_left"], fsavg5["infl_left"]
    sub = np.arange(0, pial[0].shape[0])  # identity "ds" stage
    nib.freesurfer.write_morph_data(tmp_path / "lh.curv", fsavg5["curv_left"])
    meshes = {("pial", "converted"): pial, ("pial", "ds"): (pial[0][sub], pial[1]),
              ("inflated", "ds"): infl}
    surf_set = _SurfSet(tmp_path, meshes)
    out = tmp_path / "infl.png"
    data = fsavg5["thick_left"]
    cols, _ = viz.color_map(data, "RdBu_r", 0, 5, vcenter=2.5)
    rgba = np.hstack([cols, np.where(data > 3.2, 255, 0)[:, None]])
    viz.show_surface(surf_set, hemi="lh", vertex_colors=rgba, info=True, screenshot=out,
                     marker_vertices=[500], marker_size=10, height=300)
    assert "10242 vertices" in capsys.readouterr().out
    img = _read(out)
    _assert_picture(img)
    light = (np.abs(img - 166 / 255).max(-1) < 0.12).sum()
    dark = (np.abs(img - 64 / 255).max(-1) < 0.12).sum()
    assert light > 500 and dark > 500  # binary curvature shading visible
    # Without curvature files: plain base colour, no error.
    out2 = tmp_path / "nocurv.png"
    (tmp_path / "lh.curv").unlink()
    viz.show_surface(surf_set, hemi="lh", color=[200, 120, 40], screenshot=out2, height=200)
    img2 = _read(out2)
    assert ((np.abs(img2 - np.array([200, 120, 40]) / 255).max(-1)) < 0.25).sum() > 500


def test_show_surface_layer_surface_set(test_data_dir, tmp_path):
    """The laMEG call ``show_surface(surf_set)`` on a freshly created set of the test participant."""
    from lameg.datasets import copy_test_participant
    from lameg.surf import LayerSurfaceSet

    participant = copy_test_participant(tmp_path / "data", datasets=[])
    surf_set = LayerSurfaceSet(participant.subj_id, 2, subjects_dir=participant.subjects_dir)
    surf_set.create(verbose=False)
    out = tmp_path / "sub.png"
    viz.show_surface(surf_set, screenshot=out, height=256)
    _assert_picture(_read(out))


def test_plot_coregistration(tmp_path):
    pv = pytest.importorskip("pyvista")
    # Helmet of axial gradiometer channels and planar pairs on a 12 cm sphere (mm).
    rng = np.random.default_rng(1)
    d = rng.normal(size=(40, 3))
    d[:, 2] = np.abs(d[:, 2])
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    chanpos = 120 * d
    coilpos = np.vstack([chanpos, chanpos + 10 * np.roll(d, 1, axis=1)])
    tra = np.zeros((40, 80))
    tra[np.arange(40), np.arange(40)] = 1
    tra[np.arange(20, 40), np.arange(60, 80)] = -1
    sensors = {"coilpos": coilpos, "coilori": np.vstack([d, d]), "tra": tra,
               "chanpos": chanpos, "chanori": d,
               "chantype": ["meggrad"] * 20 + ["megplanar"] * 20}
    scalp = pv.Sphere(radius=95, theta_resolution=30, phi_resolution=30)
    brain = pv.Sphere(radius=70, center=(0, 0, 10))
    out = tmp_path / "coreg.png"
    viz.plot_coregistration(
        sensors, cortex=(brain.points, brain.faces.reshape(-1, 4)[:, 1:]),
        head_meshes={"scalp": (scalp.points, scalp.faces.reshape(-1, 4)[:, 1:])},
        fiducials={"nas": [0, 95, 0], "lpa": [-95, 0, 0], "rpa": [95, 0, 0]},
        screenshot=out, height=300)
    img = _read(out)
    _assert_picture(img)
    assert ((img[..., 2] > 0.6) & (img[..., 0] < 0.4)).sum() > 50  # blue sensors / nasion


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(50, 3)) * 30
    ang = 0.4
    rot = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    dst = 0.001 * src @ rot.T + np.array([0.01, -0.02, 0.04])  # mm -> m
    t, rmse = viz._similarity_transform(src, dst)
    assert rmse < 1e-12
    np.testing.assert_allclose(t[:3, :3], 0.001 * rot, atol=1e-12)


def test_plot_layer_comparison(tmp_path):
    import matplotlib.pyplot as plt

    f = np.array([-120.0, -100.0, -105.0, -130.0])
    ax = viz.plot_layer_comparison(f, true_layer=1)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), f - f.min())
    assert ax.lines[1].get_xdata()[0] == 1  # best = argmax
    ax2 = viz.plot_layer_comparison(np.array([3.0, 1.0, 2.0]), metric="cv_error")
    assert ax2.lines[1].get_xdata()[0] == 1  # best = argmin
    fig, ax3 = plt.subplots()
    mat = -np.abs(np.arange(4)[:, None] - np.arange(4)[None, :]).astype(float)
    viz.plot_layer_comparison(mat, ax=ax3, true_layer=np.arange(4),
                              layer_names=["pial", "0.667", "0.333", "white"])
    np.testing.assert_array_equal(ax3.lines[0].get_xdata(), np.arange(4))
    fig.savefig(tmp_path / "lc.png")
    plt.close("all")
    with pytest.raises(LamegValueError):
        viz.plot_layer_comparison(f, metric="F")


# ------------------------------------------------------------------------------------------
# Bad inputs: lameg errors that name the argument, raised before anything is drawn
# ------------------------------------------------------------------------------------------


def test_color_map_bad_inputs():
    data = np.linspace(-1, 1, 20)
    with pytest.raises(LamegValueError, match="unknown colour map 'RdBu_rr'.*did you mean"):
        viz.color_map(data, "RdBu_rr", -1, 1)
    with pytest.raises(LamegValueError, match="vmin must be smaller than vmax"):
        viz.color_map(data, "RdBu_r", 1, -1, norm="N")
    with pytest.raises(LamegValueError, match="vmin must be finite"):
        viz.color_map(data, "RdBu_r", float("nan"), 1)
    with pytest.raises(LamegValueError, match="n_bins must be an integer"):
        viz.color_map(data, "RdBu_r", -1, 1, n_bins=2.5)
    with pytest.raises(LamegValueError, match="cmap must be a matplotlib colour map"):
        viz.data_to_rgb(data, 10, 3, -1, 1)


def test_render_bad_inputs_before_drawing(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    f = np.array([[0, 1, 2]])
    with pytest.raises(LamegValueError, match="unknown colour map"):
        viz.render_mesh(v, f, scalars=np.arange(3.0), cmap="nope")
    with pytest.raises(LamegValueError, match="vmin must be smaller than vmax"):
        viz.render_mesh(v, f, scalars=np.arange(3.0), vmin=2, vmax=1)
    with pytest.raises(LamegValueError, match="opacity"):
        viz.render_mesh(v, f, opacity=2)
    with pytest.raises(LamegValueError, match="is a folder"):
        viz.render_mesh(v, f, screenshot=tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(LamegPermissionError, match="read-only"):
            viz.render_mesh(v, f, screenshot=ro / "x.png")
        with pytest.raises(LamegPermissionError, match="read-only"):
            viz.plot_coregistration({"coilpos": v}, screenshot=ro / "c.png")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_show_surface_checks_before_loading(tmp_path, subjects_dir):
    """A bad colour map or output folder is reported before the surfaces are read (this set
    has no surfaces: reading would raise LamegFileNotFoundError)."""
    from lameg.surf import LayerSurfaceSet

    s = LayerSurfaceSet("sub-01", 2, subjects_dir=subjects_dir)
    assert not Path(s.laminar_surf_dir).exists()
    with pytest.raises(LamegValueError, match="unknown colour map"):
        viz.show_surface(s, scalars=np.zeros(3), cmap="nope")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(LamegPermissionError):
            viz.show_surface(s, screenshot=ro / "s.png")
    finally:
        ro.chmod(0o755)
