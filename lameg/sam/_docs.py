"""The SAM package's entries of the shared documentation source (:mod:`lameg._docs`).

Modules of :mod:`lameg.sam` import :func:`fill_doc` from here, so that these entries are
registered before their docstrings are filled.
"""

from __future__ import annotations

from .._docs import docdict, fill_doc

__all__ = ["fill_doc"]

docdict["sam_ds_path"] = """
path : path-like
    The ``.ds`` folder."""
docdict["sam_set_values_body"] = """
name : str
    Covariance/weight set (``'Global'``, a marker's covariance name, ...).

Returns
-------
ndarray, shape (n_src,)
    The value of every source."""
docdict["sam_folder_name_body"] = """
params : SamParams
    The analysis parameters.

Returns
-------
str
    The folder name."""
docdict["sam_image_parameters_body"] = """
params : SamParams
    The analysis parameters.
data : SamData, MEEG, MNE object or path, optional
    The dataset (default ``DataSet``).
weights : SamWeights, optional
    Weights (default: read from ``<SAM>/<WtsName>,<lo>-<hi>Hz``, lameg's or SAMsrcV5's).
output_dir : path-like, optional
    SAM folder (default ``-o_SAMdir``/``-i_SAMdir`` or ``<dataset>.ds/SAM``).
write : bool
    Write the images (NIfTI for grids) and append ``<SAM>/sam_<program>.param``."""
