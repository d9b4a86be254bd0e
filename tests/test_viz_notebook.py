"""3-D views in Jupyter: the interactive trame widget in a kernel, PNGs everywhere else.

The notebook tests run real cells in a real IPython kernel (nbclient), so the widget is the one
a user gets; only the browser side is absent. Rendering is off screen (EGL).
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lameg.exceptions import LamegValueError
from lameg.viz import backend

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def _run_notebook(cells: list[str], cwd) -> list[list[dict]]:
    """Execute ``cells`` in a fresh python3 kernel; outputs per cell."""
    import lameg

    # the kernel imports the lameg under test (this checkout), whatever its working folder
    repo = str(Path(lameg.__file__).resolve().parents[1])
    first = f"import sys\nsys.path.insert(0, {repo!r})\n"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(first + textwrap.dedent(c)) for c in cells]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return [c.outputs for c in nb.cells]


def _stdout(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")


def _displays(outputs) -> list[dict]:
    return [o["data"] for o in outputs if o.get("output_type") in ("display_data",
                                                                   "execute_result")]


def _png_picture(data: bytes) -> np.ndarray:
    from matplotlib.image import imread

    img = imread(io.BytesIO(data), format="png")[..., :3]
    assert img.shape[0] > 50 and img.shape[1] > 50
    return img


def _assert_not_blank(img: np.ndarray) -> None:
    # a white background with a drawn object: a sizeable share of non-white pixels
    drawn = (img < 0.9).any(-1).mean()
    assert 0.02 < drawn < 0.95, drawn


@pytest.fixture(scope="module")
def participant(tmp_path_factory, test_data_dir):
    """A 2-layer set of the test participant and a dataset co-registered to its pial mesh."""
    from lameg.datasets import copy_test_participant
    from lameg.invert import coregister
    from lameg.surf import LayerSurfaceSet

    root = tmp_path_factory.mktemp("nb")
    p = copy_test_participant(root / "data", datasets=["sim_ctf_pial"])
    s = LayerSurfaceSet(p.subj_id, 2, subjects_dir=p.subjects_dir)
    s.create(verbose=False)
    coregister(p.fid_coords, p.dataset("sim_ctf_pial"), s, layer_name="pial", viz=False)
    return p, s


@pytest.fixture(scope="module")
def surf_set(participant):
    return participant[1]


# ------------------------------------------------------------------------------ selection


def test_scripts_are_not_notebooks_and_backend_choice():
    assert backend.in_notebook() is False          # pytest: no IPython kernel
    assert backend.notebook_backend() == "trame"   # trame is installed in the test environment
    assert backend.notebook_backend("static") == "static"
    assert backend.notebook_backend("CLIENT") == "client"
    with pytest.raises(LamegValueError, match="choose one of"):
        backend.notebook_backend("k3d")


def test_without_trame_the_static_view_is_chosen():
    """An environment without trame (its import hidden) falls back to the PNG view."""
    code = textwrap.dedent("""
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('trame', 'trame_vtk'):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, Hide())
        import logging; logging.basicConfig()
        from lameg.viz import backend
        print(backend.notebook_backend(), backend.notebook_backend('static'))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["static", "static"]
    assert "pyvista[jupyter]" in out.stderr        # the warning says how to get the widget


# ------------------------------------------------------------------------------ in a kernel


def test_views_in_jupyter_are_interactive_and_png_stays(participant, tmp_path):
    p, surf_set = participant
    png = tmp_path / "nb.png"
    png_static = tmp_path / "static.png"
    setup = f"""
        from lameg.surf import LayerSurfaceSet
        from lameg.viz import backend, show_surface
        import numpy as np, pyvista as pv
        s = LayerSurfaceSet({surf_set.subj_id!r}, 2, subjects_dir={str(surf_set.subjects_dir)!r})
        print(backend.in_notebook(), backend.notebook_backend())
    """
    interactive = f"""
        p = show_surface(s, layer_name='pial', height=200, screenshot={str(png)!r})
    """
    coreg = f"""
        from lameg.viz import verify_coregistration
        q = verify_coregistration({str(p.dataset("sim_ctf_pial"))!r}, s, layer_name='pial',
                                  fid_coords={p.fid_coords!r})
    """
    static = f"""
        pv.set_jupyter_backend('static')
        p2 = show_surface(s, layer_name='pial', height=200, screenshot={str(png_static)!r})
    """
    out = _run_notebook([setup, interactive, coreg, static], tmp_path)
    assert _stdout(out[0]).split() == ["True", "trame"]
    for cell in (out[1], out[2]):
        widgets = [d for d in _displays(cell)
                   if "application/vnd.jupyter.widget-view+json" in d]
        assert len(widgets) == 1, cell
        assert "trame_pyvista" in widgets[0]["text/plain"]
    # the PNG for scripts/docs is still written from the notebook
    _assert_not_blank(_png_picture(png.read_bytes()))
    # pyvista's static back end: an image in the notebook, equal to the screenshot's view
    images = [d["image/png"] for d in _displays(out[3]) if "image/png" in d]
    assert len(images) == 1
    shown = _png_picture(base64.b64decode(images[0]))
    _assert_not_blank(shown)
    _assert_not_blank(_png_picture(png_static.read_bytes()))


def test_show_surface_in_script_writes_png_only(surf_set, tmp_path):
    from lameg.viz import show_surface

    png = tmp_path / "script.png"
    plotter = show_surface(surf_set, layer_name="pial", height=200, screenshot=png)
    _assert_not_blank(_png_picture(png.read_bytes()))
    assert plotter.render_window is None or plotter._closed   # closed after the screenshot


def test_verify_coregistration_png(participant, tmp_path):
    """The co-registration view of a real co-registered dataset, as a script draws it."""
    from lameg.viz import verify_coregistration

    p, surf_set = participant
    png = tmp_path / "coreg.png"
    verify_coregistration(p.dataset("sim_ctf_pial"), surf_set, layer_name="pial",
                          fid_coords=p.fid_coords, screenshot=png)
    img = _png_picture(png.read_bytes())
    _assert_not_blank(img)
    # dark-blue sensor discs of the CTF helmet (axial gradiometers) around the head
    discs = (img[..., 2] > 0.25) & (img[..., 0] < 0.2) & (img[..., 1] < 0.2)
    assert discs.sum() > 500
    # the default view (front left) shows the nasion (blue) and LPA (red) fiducial spheres
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    assert ((b > 0.7) & (r < 0.3) & (g < 0.3)).sum() > 10
    assert ((r > 0.6) & (g < 0.3) & (b < 0.3)).sum() > 10
    with pytest.raises(LamegValueError, match="vertices"):   # not the mesh co-registered
        verify_coregistration(p.dataset("sim_ctf_pial"), surf_set, layer_name="white",
                              stage="combined", orientation=None, fixed=None)


def test_verify_coregistration_draws_the_face_scan(participant, tmp_path):
    """``display_3d_scan=True`` draws the ``face_3d.gii`` that coregister_3d_scan_mri writes."""
    from lameg.exceptions import LamegFileNotFoundError
    from lameg.io import freesurfer as fsio
    from lameg.io.stl import write_stl
    from lameg.util import coregister_3d_scan_mri
    from lameg.viz import verify_coregistration

    p, surf_set = participant
    subj = p.subjects_dir / p.subj_id
    face = subj / "surf" / "face_3d.gii"
    face.unlink(missing_ok=True)
    with pytest.raises(LamegFileNotFoundError, match="coregister_3d_scan_mri"):
        verify_coregistration(p.dataset("sim_ctf_pial"), surf_set, layer_name="pial",
                              display_3d_scan=True)
    # the scalp's face as the scan, in scanner RAS (so the scan frame is the MRI's); the
    # template fiducials come from a talairach.xfm (this participant's tkRAS is MNI305)
    v, f = fsio.read_surface(subj / "bem" / "outer_skin.surf")
    tk2sc = fsio.tkras_to_scanner(subj / "mri" / "orig.mgz")[0]
    cen = v[f].mean(axis=1)
    f = f[(cen[:, 1] > -20) & (cen[:, 2] > -90)]
    write_stl(tmp_path / "face.stl", fsio.apply_affine(v, tk2sc), f)
    xfm = subj / "mri" / "transforms" / "talairach.xfm"
    xfm.parent.mkdir(parents=True, exist_ok=True)
    rows = np.linalg.inv(tk2sc)[:3]
    xfm.write_text("MNI Transform File\n\nTransform_Type = Linear;\nLinear_Transform =\n"
                   + "\n".join(" ".join(map(str, r)) for r in rows) + ";\n")
    fids = p.fid_coords
    coregister_3d_scan_mri(p.subj_id, fids["lpa"], fids["rpa"], fids["nas"],
                           tmp_path / "face.stl", subjects_dir=p.subjects_dir)
    assert face.is_file()
    blue = []
    for show in (False, True):
        png = tmp_path / f"coreg_{show}.png"
        verify_coregistration(p.dataset("sim_ctf_pial"), surf_set, layer_name="pial",
                              display_3d_scan=show, screenshot=png)
        img = _png_picture(png.read_bytes())
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        blue.append(int(((b > 0.6) & (g > 0.3) & (g < 0.6) & (r < 0.5)).sum()))
    # the blue scan covers the face in the front-left view
    assert blue[1] > 2000 and blue[1] > 10 * max(blue[0], 1)
