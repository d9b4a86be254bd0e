"""Visualisation: cortical surfaces, colour maps, CSD images, co-registration and layer comparisons.

laMEG 0.2.1 ``lameg.viz`` API rendered with pyvista/VTK instead of k3d: the same calls draw an
interactive view in Jupyter (pyvista's notebook backend) and render off-screen anywhere else;
``screenshot=`` writes a PNG. On Linux machines without a display, VTK's EGL window is selected
automatically (set ``VTK_DEFAULT_OPENGL_WINDOW`` yourself to override).

Colour conventions follow laMEG: colours are integer RGB (0-255) arrays, as returned by
:func:`color_map`; an (n, 4) array's alpha column masks (alpha > 128 shows the colour, otherwise
the curvature/base grey). ``camera_view`` is laMEG's 9-number list
``[eye x, y, z, target x, y, z, up x, y, z]``.

Modules
-------
- :mod:`~lameg.viz.colors`: colour maps and laMEG's colour conventions;
- :mod:`~lameg.viz.surface`: 3-D surface rendering (:func:`render_mesh`, :func:`show_surface`);
- :mod:`~lameg.viz.plots`: 2-D figures (:func:`plot_csd`, :func:`plot_layer_comparison`);
- :mod:`~lameg.viz.coreg`: co-registration views (:func:`plot_coregistration`,
  :func:`verify_coregistration`);
- :mod:`~lameg.viz.backend`: pyvista set-up shared by the 3-D views.
"""

from __future__ import annotations

from .colors import color_map, data_to_rgb, rgbtoint
from .coreg import _similarity_transform as _similarity_transform
from .coreg import plot_coregistration, verify_coregistration
from .plots import plot_csd, plot_layer_comparison
from .surface import render_mesh, show_surface

__all__ = [
    "data_to_rgb",
    "rgbtoint",
    "color_map",
    "render_mesh",
    "show_surface",
    "plot_csd",
    "plot_layer_comparison",
    "plot_coregistration",
    "verify_coregistration",
]
