"""
Laminar inference with optically pumped magnetometers (OPMs)
============================================================

OPMs sit on the scalp instead of in a helmet a few centimetres away, so they pick up stronger
and spatially richer fields from the cortex -- which helps to tell apart sources a few
millimetres apart in depth. This tutorial builds an on-scalp OPM array on the test
participant's head (a native counterpart of SPM's ``spm_opm_sim``), simulates a source on the
pial and on the white-matter end of one cortical column, and recovers the simulated layer by
free-energy model comparison, with the head model of each layer built by
:func:`lameg.invert.opm_headmodel` (``device='opm'``).
"""

# %%
# Set-up
# ------

import matplotlib.pyplot as plt
import numpy as np

from lameg.anatomy import anatomical_predictors, anatomical_score
from lameg.datasets import copy_test_participant
from lameg.io.spm_meeg import load_meeg
from lameg.laminar import model_comparison
from lameg.simulate import run_current_density_simulation, setup_opm_simulation
from lameg.surf import LayerSurfaceSet

# A private copy of the test participant (FreeSurfer subject only: the OPM data are simulated)
participant = copy_test_participant(datasets=[])
surf_set = LayerSurfaceSet(participant.subj_id, 2, subjects_dir=participant.subjects_dir)
surf_set.create(verbose=False)

# %%
# An OPM array on the scalp
# -------------------------
# Sensors are spread about 35 mm apart over a surface 6.5 mm outside the scalp; each measures
# the field along the inward normal of the head (``axes=2`` or ``3`` adds tangential axes).
# The dataset gets 30 trials of 250 samples at 600 Hz and, because the sensors are already in
# the MRI's space, its head model needs no fiducial co-registration. With ``layer_name=None``
# the head model covers both layers, so that a source can be placed in either.

opm_file = setup_opm_simulation(participant.root / "opm.mat", surf_set, s_rate=600,
                                n_samples=250, n_trials=30, sensor_spacing=35,
                                sensor_offset=6.5, axes=1, viz=False)
grad = load_meeg(opm_file).sensors("MEG")
pos, ori = grad["coilpos"], grad["coilori"]
print(f"{len(pos)} OPM sensors")

scalp = surf_set.load_head_mesh("scalp").darrays[0].data
fig = plt.figure(figsize=(7, 6))
ax = fig.add_subplot(projection="3d")
ax.scatter(*scalp.T, s=2, c="0.75", alpha=0.5)  # scalp vertices
ax.quiver(*pos.T, *(15 * ori).T, color="tab:red", linewidth=1)  # 15 mm along each axis
ax.scatter(*pos.T, s=15, c="tab:red")
ax.set_box_aspect(np.ptp(scalp, axis=0))
ax.view_init(elev=15, azim=160)  # from the front left
ax.set_axis_off()
ax.set_title("OPM positions and sensitive axes (scalp in grey)")
fig.subplots_adjust(0, 0, 1, 0.95)
plt.show()

# %%
# Where to simulate: the column with the highest anatomical score (see the
# anatomical-predictors tutorial), computed with the OPM head model.

column = int(np.argmax(anatomical_score(anatomical_predictors(opm_file, surf_set))))
print(f"simulating at column {column} of {surf_set.get_vertices_per_layer()}")

# %%
# Pial and white-matter sources
# -----------------------------
# A 20 Hz burst of 20 nA m in a 5 mm patch, with white sensor noise at a signal-to-noise ratio
# of 0 dB (SPM's definition: noise as strong as the signal over the trial).

time_s = np.arange(250) / 600.0 - 0.1
burst = np.exp(-(time_s - 0.1) ** 2 / (2 * 0.03 ** 2)) * np.sin(2 * np.pi * 20 * time_s)
sim_kwargs = dict(sim_signals=burst[None, :], dipole_moments=20.0, sim_patch_sizes=5.0,
                  snr=0.0, viz=False)
forward_kwargs = {"mri_fname": surf_set.mri_file}  # sensors are in the MRI's space

delta_f = {}
for seed, layer in enumerate(("pial", "white"), start=1):
    vertex = surf_set.get_multilayer_vertex(layer, column)
    sim = run_current_density_simulation(opm_file, f"{layer}_", vertex, seed=seed,
                                         **sim_kwargs)
    f_vals, _ = model_comparison(None, sim, surf_set, device="opm", viz=False,
                                 forward_kwargs=forward_kwargs,
                                 invert_kwargs={"n_temp_modes": 4})
    delta_f[layer] = f_vals[0] - f_vals[1]
    print(f"{layer} simulation: F(pial) - F(white) = {delta_f[layer]:.1f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar([0, 1], [delta_f["pial"], delta_f["white"]], color=["tab:red", "tab:blue"])
ax.axhline(0, color="k", linewidth=0.8)
ax.set_xticks([0, 1])
ax.set_xticklabels(["pial simulation", "white simulation"])
ax.set_ylabel("F(pial) - F(white)")
fig.tight_layout()
plt.show()

# %%
# A positive difference favours the pial model, a negative one the white model; differences
# larger than 3 are conventionally strong evidence.
#
# Clean up
# --------

participant.cleanup()
