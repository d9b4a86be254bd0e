"""The SAM package's entries of the shared documentation source (:mod:`lameg._docs`).

Modules of :mod:`lameg.sam` import :func:`fill_doc` from here, so that these entries are
registered before their docstrings are filled.
"""

from __future__ import annotations

from .._docs import docdict, fill_doc

__all__ = ["fill_doc"]

docdict["sam_params"] = """
params : SamParams
    The analysis parameters."""
docdict["sam_ds_path"] = """
path : path-like
    The ``.ds`` folder."""
docdict["sam_set"] = """
name : str
    Covariance/weight set (``'Global'``, a marker's covariance name, ...)."""
docdict["sam_image_inputs"] = """
data : SamData, MEEG, MNE object or path, optional
    The dataset (default ``DataSet``).
weights : SamWeights, optional
    Weights (default: read from ``<SAM>/<WtsName>,<lo>-<hi>Hz``, lameg's or SAMsrcV5's).
output_dir : path-like, optional
    SAM folder (default ``-o_SAMdir``/``-i_SAMdir`` or ``<dataset>.ds/SAM``).
write : bool
    Write the images (NIfTI for grids) and append ``<SAM>/sam_<program>.param``."""
