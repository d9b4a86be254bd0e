"""pyvista set-up shared by the 3-D views: window selection, plotters, notebook display, PNGs.

Three ways a view is delivered:

* **Jupyter** (an IPython kernel): an interactive 3-D widget through pyvista's trame back end
  (``pip install 'pyvista[jupyter]'``); if trame is not installed, or pyvista's theme asks for
  ``'static'``, a PNG image is shown in the notebook instead;
* **scripts and documentation**: off-screen rendering, with ``screenshot=`` writing a PNG;
* ``show=True`` outside a notebook: pyvista's desktop window.

On Linux machines without a display, VTK's EGL window is selected before VTK is imported (set
``VTK_DEFAULT_OPENGL_WINDOW`` yourself to override).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path, logger
from .._validate import check_writable, validate_type
from ..exceptions import LamegValueError

__all__ = ["in_notebook", "notebook_backend", "NOTEBOOK_BACKENDS"]

#: pyvista Jupyter back ends accepted by :func:`notebook_backend` ('trame' is interactive with
#: server-side rendering, 'client' renders in the browser with vtk.js, 'server' streams images,
#: 'html' embeds a standalone vtk.js scene, 'static' shows a PNG).
NOTEBOOK_BACKENDS = ("trame", "client", "server", "html", "static")
_TRAME_MODULES = ("trame", "trame_vtk", "trame_vuetify", "ipywidgets")


def _prepare_vtk_env() -> None:
    """Select VTK's EGL window on display-less Linux before VTK is imported."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def _pyvista():
    _prepare_vtk_env()
    import pyvista as pv

    return pv


def in_notebook() -> bool:
    """Whether the code runs inside a Jupyter (IPython) kernel.

    Returns
    -------
    bool
        True in a Jupyter notebook or console kernel, False in scripts and plain IPython.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _trame_available() -> bool:
    """Whether pyvista's trame widget can be built (its packages import)."""
    try:
        for name in _TRAME_MODULES:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def notebook_backend(requested: str | None = None) -> str:
    """The pyvista Jupyter back end used for views shown in a notebook.

    Parameters
    ----------
    requested : str or None
        One of :data:`NOTEBOOK_BACKENDS`; None uses pyvista's theme
        (``pyvista.set_jupyter_backend``), else ``'trame'``.

    Returns
    -------
    str
        The back end. An interactive one needs trame (``pip install 'pyvista[jupyter]'``);
        without it the static PNG view is used and a warning is logged.
    """
    if requested is None:
        requested = _pyvista().global_theme.jupyter_backend or "trame"
    requested = str(requested).lower()
    if requested not in NOTEBOOK_BACKENDS:
        raise LamegValueError(f"notebook back end {requested!r} is not valid; choose one of "
                              f"{list(NOTEBOOK_BACKENDS)}")
    if requested != "static" and not _trame_available():
        logger.warning("interactive notebook views need trame: pip install 'pyvista[jupyter]'; "
                       "showing a static image")
        return "static"
    return requested


def _new_plotter(show: bool, screenshot: Any, window_size: tuple[int, int]):
    """A white-background plotter: off screen unless a desktop window is to be shown."""
    pv = _pyvista()
    notebook = bool(show) and in_notebook()
    plotter = pv.Plotter(off_screen=notebook or not show or screenshot is not None,
                         window_size=(int(window_size[0]), int(window_size[1])),
                         notebook=notebook)
    plotter.set_background("white")
    return plotter


def _save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an RGB(A) image array as a PNG, atomically."""
    from matplotlib.image import imsave

    with atomic_path(Path(path)) as tmp:
        imsave(tmp, image, format="png", metadata={"Software": None})


def _finish(plotter: Any, show: bool, close: bool) -> None:
    """Show the plotter (notebook widget or window), or close it when ``close``."""
    if show:
        if in_notebook():
            plotter.show(jupyter_backend=notebook_backend())
        else:
            plotter.show()
    elif close:
        plotter.close()


def _check_screenshot(screenshot: Any) -> Path | None:
    """Validate a PNG output path before anything is rendered (None: no screenshot)."""
    if screenshot is None:
        return None
    validate_type(screenshot, "path-like", "screenshot")
    path = Path(screenshot)
    if path.is_dir():
        raise LamegValueError(f"screenshot {path} is a folder; give a file name such as "
                              f"'{path / 'view.png'}'")
    check_writable(path, "screenshot folder" if not path.exists() else "screenshot")
    return path


def _faces_to_pv(faces: np.ndarray) -> np.ndarray:
    faces = np.asarray(faces, dtype=np.int64)
    return np.hstack([np.full((faces.shape[0], 1), 3, dtype=np.int64), faces]).ravel()


def _camera(camera_view: Any):
    if camera_view is None:
        return None
    if isinstance(camera_view, str):
        return camera_view
    arr = np.asarray(camera_view, dtype=float).ravel()
    if arr.size != 9 or not np.all(np.isfinite(arr)):
        raise LamegValueError("camera_view must be 9 finite numbers [eye xyz, target xyz, up xyz] "
                              "or a pyvista view name such as 'xy'")
    return [tuple(arr[0:3]), tuple(arr[3:6]), tuple(arr[6:9])]
