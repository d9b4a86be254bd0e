"""Sphinx configuration for the lameg documentation."""

import os
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# The published gallery runs the tutorials as written: the settings their text describes (11
# layers, every simulation; tens of minutes). Tests build from reduced copies of the tutorials
# (tools/tutorial_settings.py) by pointing LAMEG_DOCS_TUTORIALS at them.

import lameg  # noqa: E402

project = "lameg"
author = "lameg developers"
copyright = "lameg developers"
release = lameg.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# Links to the Python and NumPy documentation need their inventories from the network; the
# build works offline unless LAMEG_DOCS_INTERSPHINX=1 asks for them.
if os.environ.get("LAMEG_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")

autosummary_generate = True
autosummary_ignore_module_all = False  # document what each module lists in __all__
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
}
intersphinx_disabled_reftypes = ["*"]

REPO = Path(__file__).resolve().parents[1]
sphinx_gallery_conf = {
    "examples_dirs": os.environ.get("LAMEG_DOCS_TUTORIALS", str(REPO / "tutorials")),
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"tutorial_",
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"] if (Path(__file__).parent / "_static").is_dir() else []
html_title = "lameg"
nitpicky = False
suppress_warnings = ["config.cache"]
# An explicit default colour mode (the theme logs a console error when none is stored yet)
html_context = {"default_mode": "light"}
