"""pyvista set-up shared by the 3-D views: VTK window selection, notebook detection, mesh and camera conversion."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from ..exceptions import LamegValueError


def _prepare_vtk_env() -> None:
    """Select VTK's EGL window on display-less Linux before VTK is imported."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def _pyvista():
    _prepare_vtk_env()
    import pyvista as pv

    return pv


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _faces_to_pv(faces: np.ndarray) -> np.ndarray:
    faces = np.asarray(faces, dtype=np.int64)
    return np.hstack([np.full((faces.shape[0], 1), 3, dtype=np.int64), faces]).ravel()


def _camera(camera_view: Any):
    if camera_view is None:
        return None
    if isinstance(camera_view, str):
        return camera_view
    arr = np.asarray(camera_view, dtype=float).ravel()
    if arr.size != 9:
        raise LamegValueError("camera_view must be 9 numbers [eye xyz, target xyz, up xyz] "
                              "or a pyvista view name such as 'xy'")
    return [tuple(arr[0:3]), tuple(arr[3:6]), tuple(arr[6:9])]
