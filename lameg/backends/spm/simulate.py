"""SPM simulations (``backend='spm'`` of ``lameg.simulate``).

laMEG calls ``spm_eeg_simulate`` (its fork's 13-argument version) and, for averaged output,
SPM's averaging batch. Stock SPM differs in ways the back end handles explicitly:

* ``spm_eeg_simulate`` draws figures before it saves, and Octave without a display has no
  graphics toolkit. lameg's ``mfiles/lameg_spm_simulate.m`` runs the same steps with SPM's own
  building blocks and no figures: clone the template (``meeg/clone``), snap the sources to the
  nearest ``tess_mni`` vertex, gain matrix (``spm_eeg_lgainmat``, divided by ``forward.scale``),
  patches (``spm_eeg_invert_setuppatches``, summing to the dipole moment), signal on the
  samples with ``woi(1) <= t <= woi(2)``, white noise of SD ``mean_c std_t(Y) * 10^(-SNR/20)``
  added to every channel of every trial. Averaging uses SPM's batch, as laMEG.
* stock patches with ``sim_patch_sizes > 0`` are built from first-order (neighbour) distances,
  not geodesic ones as in laMEG's fork and the native back end, so only single-vertex patches
  (size 0) agree between back ends; a warning says so.
* ``noise_color='pink'`` and trial-varying signals are fork-only:
  :class:`~lameg.exceptions.LamegNotImplementedError`.
* dipole simulations: stock ``spm_eeg_simulate``'s dipole branch refers to undefined variables
  (``goodchans``, ``usedind``) and cannot run:
  :class:`~lameg.exceptions.LamegNotImplementedError`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..._docs import fill_doc
from ...exceptions import LamegFileNotFoundError, LamegNotImplementedError, LamegValueError
from ...io.spm_inv import read_head_model
from . import _common

__all__ = ["run_current_density_simulation", "run_dipole_simulation"]


def _list(x, n, what):
    a = np.atleast_1d(np.asarray(x, dtype=float)).ravel()
    if a.size == 1 and n > 1:
        a = np.repeat(a, n)
    if a.size != n:
        raise LamegValueError(f"{what} needs one value per source ({n}), got {a.size}")
    return a


@fill_doc
def run_current_density_simulation(data_file, prefix, sim_vertices, sim_signals, dipole_moments,
                                   sim_patch_sizes, snr, noise_color="white", sim_woi=None,
                                   average_trials=False, viz=True, spm_instance=None, seed=None,
                                   inversion_idx=None, *, spm=None):
    """Simulate current-density patches with SPM (laMEG 0.2.1 ``run_current_density_simulation``).

    The SPM implementation of :func:`lameg.simulate.run_current_density_simulation`
    (arguments validated there). See the module docstring for what stock SPM supports:
    ``noise_color='pink'`` and trial-varying ``sim_signals`` (3-D) raise
    :class:`~lameg.exceptions.LamegNotImplementedError`, and patches larger than one vertex
    are built from neighbour distances (a warning says so).

    Parameters
    ----------
    %(sim_template)s
    %(sim_moments_sizes)s
    %(sim_options)s
    %(spm_sim_engine)s

    Returns
    -------
    %(sim_returns)s
    """
    from ...io.spm_meeg import load_meeg

    del viz
    if noise_color != "white":
        raise LamegNotImplementedError(
            f"noise_color={noise_color!r} needs laMEG's SPM fork; stock SPM simulates white noise "
            "(use backend='native' for pink noise)")
    data_file = Path(data_file).expanduser().resolve()
    if not data_file.is_file():
        raise LamegFileNotFoundError(f"template dataset {data_file} not found")
    if not isinstance(prefix, str) or not prefix:
        raise LamegValueError("prefix must be a non-empty string")
    D = load_meeg(data_file)
    hm = read_head_model(D, inversion_idx)  # None: SPM's current one (D.val)
    k = hm.index
    verts = hm.vertices_mm
    idx = np.atleast_1d(np.asarray(sim_vertices)).ravel()
    if idx.size == 0 or np.any(idx != np.floor(idx)) or idx.min() < 0 or idx.max() >= len(verts):
        raise LamegValueError(f"sim_vertices must be 0-based vertices in 0..{len(verts) - 1}")
    idx = idx.astype(int)
    sig = np.asarray(sim_signals, dtype=float)
    if sig.ndim == 1:
        sig = sig[None, :]
    if sig.ndim == 3:
        raise LamegNotImplementedError("trial-varying signals (n_sources, n_times, n_trials) need "
                                       "laMEG's SPM fork; use backend='native'")
    if sig.shape[0] != idx.size or not np.isfinite(sig).all():
        raise LamegValueError(f"sim_signals must be finite, shape ({idx.size}, n_times)")
    moments = _list(dipole_moments, idx.size, "dipole_moments")
    sizes = _list(sim_patch_sizes, idx.size, "sim_patch_sizes")
    if np.any(sizes < 0):
        raise LamegValueError("sim_patch_sizes must be >= 0 mm")
    if np.any(sizes > 0):
        warnings.warn("stock SPM builds simulated patches from first-order neighbour distances, "
                      "not geodesic ones (laMEG's fork, native back end): patch shapes differ",
                      stacklevel=2)
    t = np.asarray(D.time, dtype=float)
    woi = np.array([t[0], t[-1]]) if sim_woi is None else np.asarray(sim_woi, float).ravel()
    woi = np.array([max(woi[0], t[0]), min(woi[1], t[-1])])
    snr = float(snr)
    if not np.isfinite(snr):
        raise LamegValueError("snr must be finite (dB)")
    s = np.zeros((0, 0)) if seed is None else float(
        np.random.default_rng(seed).integers(0, 2**31 - 1)
        if isinstance(seed, np.random.Generator) else int(seed))
    eng = _common.engine(spm, spm_instance)
    out = eng.call("lameg_spm_simulate", str(data_file), float(k + 1), str(prefix),
                   verts[idx], sig, woi, snr, sizes, moments, s, nargout=1)
    out = str(out).strip()
    if average_trials:
        cell = np.empty((1,), dtype=object)
        cell[0] = out
        eng.run_batch({"spm": {"meeg": {"averaging": {"average": {
            "D": cell, "userobust": {"standard": 0.0}, "plv": 0.0, "prefix": "m"}}}}})
        out = str(Path(out).with_name("m" + Path(out).name))
    return os.fspath(out)


@fill_doc
def run_dipole_simulation(data_file, prefix, sim_vertices, sim_signals, dipole_orientations,
                          dipole_moments, sim_patch_sizes, snr, noise_color="white",
                          sim_woi=None, average_trials=False, viz=True, spm_instance=None,
                          seed=None, inversion_idx=None, *, spm=None):
    """Not available with stock SPM: raises :class:`~lameg.exceptions.LamegNotImplementedError`.

    Stock ``spm_eeg_simulate``'s dipole branch cannot run (see the module docstring); use
    ``backend='native'``. The signature is :func:`lameg.simulate.run_dipole_simulation`'s.

    Parameters
    ----------
    %(sim_template)s
    dipole_orientations : ndarray, shape (n_sources, 3)
        Orientations in the MRI frame of the mesh.
    %(sim_moments_sizes)s
    %(sim_options)s
    %(spm_sim_engine)s

    Returns
    -------
    str
        Never returns.
    """
    raise LamegNotImplementedError(
        "dipole simulations need laMEG's SPM fork: stock spm_eeg_simulate's dipole branch uses "
        "undefined variables (goodchans, usedind) and fails; use backend='native'")
