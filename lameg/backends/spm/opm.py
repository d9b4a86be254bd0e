"""SPM's OPM simulation (``backend='spm'`` of ``lameg.opm.setup_opm_simulation``).

laMEG 0.2.1 calls ``spm_opm_sim`` with the sensor spacing and offset, whole-head flag, axes,
trial count, sampling rate, sample count, the cortical mesh, the participant's MRI (``sMRI``),
the file name, the density checks, one channel of random data (``1 x n_samples x n_trials``)
and the optional layout and head meshes, in the current folder, then moves the files next to
``data_file``. The SPM back end sends the same settings, with these differences:

* the files are written where the native back end writes them (``data_file`` with ``.mat``)
  by running ``spm_opm_sim`` in that folder;
* the one-channel data are zeros: they only set the trial count, but ``spm_opm_sim`` clones
  the dataset onto the same ``.dat`` file, so laMEG's random values survive in the first
  ``n_samples * n_trials`` elements of the sensor data. With zeros the data are zeros, as
  written by the native back end;
* the density checks go in ``S.nDens``, the field ``spm_opm_sim`` reads (laMEG's ``S.Dens`` is
  ignored by SPM, so laMEG's ``density_checks`` has no effect);
* the head meshes default to the surface set's scalp, inner and outer skull (as the native back
  end), not SPM's template meshes warped by the segmentation, so both back ends place sensors on
  the same scalp; a missing outer skull is replaced by the inner skull (as in the SPM
  co-registration), so no template mesh is left in the dataset;
* ``sMRI`` needs SPM's segmentation and so ``tpm/TPM.nii``. When the SPM tree lacks it (the
  MEEG-only trees used for Octave), ``spm_opm_sim`` starts from its template meshes, which the
  participant's meshes above then replace: the sensors, cortex and head model are the
  participant's, in MRI space, and the co-registration is the identity, as with ``sMRI``;
  the dataset's fiducials are then SPM's template fiducials.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ...exceptions import LamegFileNotFoundError, LamegNotImplementedError
from . import _common

__all__ = ["setup_opm_simulation"]

logger = logging.getLogger("lameg")


def _head_mesh(given, surf_set, kind: str, folder: Path, stem: str):
    """File name of a head mesh: ``given`` (file or in-memory) or the surface set's; None if absent."""
    if given is None:
        try:
            given = surf_set.load_head_mesh(kind)
        except (LamegFileNotFoundError, FileNotFoundError):
            return None
    return _common.as_gifti_file(given, f"{stem}_{kind}", folder)


def setup_opm_simulation(data_file, surf_set, layer_name=None, stage="ds",
                         orientation="link_vector", fixed=True, s_rate=1000, wholehead=True,
                         sensor_spacing=35, sensor_offset=6.5, n_samples=1000, n_trials=1,
                         density_checks=40, axes=1, sensor_positions_file=None,
                         iskull_fname=None, oskull_fname=None, scalp_fname=None, viz=True,
                         spm_instance=None, noise_sd=0.0, seed=None, *, spm=None) -> str:
    """Create an OPM dataset with SPM's ``spm_opm_sim`` (laMEG 0.2.1 ``setup_opm_simulation``).

    The SPM implementation of :func:`lameg.opm.setup_opm_simulation` (arguments validated
    there); see the module docstring for what is sent to SPM.

    Parameters
    ----------
    data_file, surf_set, layer_name, stage, orientation, fixed, s_rate, wholehead, \
sensor_spacing, sensor_offset, n_samples, n_trials, sensor_positions_file, iskull_fname, \
oskull_fname, scalp_fname, spm_instance
        See :func:`lameg.opm.setup_opm_simulation`.
    density_checks : int
        SPM's density optimisations of the sensor packing (``S.nDens``).
    axes : {1, 2, 3}
        Axes per sensor.
    viz : bool
        Accepted for laMEG compatibility; no effect: SPM runs without figures.
    noise_sd : float
        Must be 0: ``spm_opm_sim`` writes zeros.
    seed : int, numpy.random.Generator or None
        Seeds the engine's generator (SPM's random sensor packing); None leaves it as it is.
    spm : lameg.spm.SPMEngine or None
        The engine the façade selected.

    Returns
    -------
    str
        Path of the ``.mat`` header.
    """
    if noise_sd:
        raise LamegNotImplementedError(
            "spm_opm_sim writes zero data: noise_sd needs backend='native' (or add noise to "
            "the SPM dataset afterwards)")
    from scipy.io import savemat

    out = Path(data_file).expanduser().with_suffix(".mat").resolve()
    folder = out.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = out.stem
    mesh = surf_set.get_mesh_path(layer_name, stage=stage, orientation=orientation, fixed=fixed)
    if not Path(mesh).is_file():
        raise LamegFileNotFoundError(f"mesh {mesh} does not exist; run surf_set.create()")
    S = {"space": float(sensor_spacing), "lead": 0.0, "wholehead": float(bool(wholehead)),
         "offset": float(sensor_offset), "axis": float(axes), "nTrials": float(n_trials),
         "fs": float(s_rate), "nSamples": float(n_samples),
         "cortex": _common.abspath(mesh), "fname": stem,
         "nDens": float(density_checks),
         "data": np.zeros((1, int(n_samples), int(n_trials)))}
    for kind, given in (("scalp", scalp_fname), ("iskull", iskull_fname),
                        ("oskull", oskull_fname)):
        name = _head_mesh(given, surf_set, kind, folder, stem)
        if name is not None:
            S[kind] = name
    if "oskull" not in S and "iskull" in S:
        S["oskull"] = S["iskull"]  # as the SPM co-registration: no template mesh left behind
    if sensor_positions_file is not None:
        S["positions"] = _common.abspath(sensor_positions_file)
    smri = getattr(surf_set, "mri_file", None)
    smri = "" if not smri else _common.abspath(smri)
    s = np.zeros((0, 0)) if seed is None else float(
        seed.integers(0, 2**31 - 1) if isinstance(seed, np.random.Generator) else int(seed))
    eng = _common.engine(spm, spm_instance)
    fd, sfile = tempfile.mkstemp(suffix=".mat", prefix="opm_sim_", dir=folder)
    os.close(fd)
    try:
        savemat(sfile, {"S": S})
        segmented = eng.call("lameg_spm_opm_sim", str(folder), sfile, smri, s, nargout=1)
    finally:
        Path(sfile).unlink(missing_ok=True)
    if not bool(np.asarray(segmented).ravel()[0]):
        logger.info("spm_opm_sim: this SPM has no tpm/TPM.nii; the head model starts from SPM's "
                    "template meshes, replaced by the participant's")
    return str(out)
