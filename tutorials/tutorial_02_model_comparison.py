"""
Laminar model comparison with free energy
=========================================

Which layer does a signal come from? Bonaiuto et al. (2018, NeuroImage) answered this by
inverting the same MEG data with source models restricted to one layer each and comparing the
models' free energy, an approximation of their log evidence: the layer whose model has the
highest free energy best explains the data. This tutorial simulates a source on the pial
surface and then on the white matter surface of the test participant, and shows that the
comparison of a pial and a white model recovers the simulated layer; then it repeats the
comparison across all layers of a multilayer set.
"""

# %%
# Set-up
# ------


import matplotlib.pyplot as plt
import numpy as np

from lameg.anatomy import anatomical_predictors, anatomical_score
from lameg.datasets import copy_test_participant
from lameg.invert import coregister
from lameg.laminar import model_comparison
from lameg.simulate import run_current_density_simulation
from lameg.surf import LayerSurfaceSet
from lameg.viz import plot_layer_comparison

# A private copy of the test participant, since the analyses write next to their inputs
participant = copy_test_participant(datasets=["sim_ctf_noise"])
subj_id, subjects_dir = participant.subj_id, participant.subjects_dir
fid_coords = participant.fid_coords  # MRI fiducials (scanner RAS, mm)
# The noise-only recording (20 trials, -100 ... 150 ms) is the template of the simulations
base_file = str(participant.dataset("sim_ctf_noise"))

# %%
# Layer sets and the simulation forward model
# -------------------------------------------
# Simulations need a forward model of the multilayer mesh, so that a source can be placed in
# any layer. The comparison itself uses the 2-layer set (pial and white).

n_layers = 11
multi_set = LayerSurfaceSet(subj_id, n_layers, subjects_dir=subjects_dir)
multi_set.create(verbose=False)
two_set = LayerSurfaceSet(subj_id, 2, subjects_dir=subjects_dir)
two_set.create(verbose=False)

coregister(fid_coords, base_file, multi_set, viz=False)
n_columns = multi_set.get_vertices_per_layer()

# %%
# Where to simulate: the column with the highest anatomical score (see the
# anatomical-predictors tutorial), where laminar inference is expected to work best.

column = int(np.argmax(anatomical_score(anatomical_predictors(base_file, multi_set))))
print(f"simulating at column {column} of {n_columns}")

# %%
# Simulating a pial source
# ------------------------
# A 20 Hz sinusoid over the whole epoch, in a 5 mm patch of 10 nA m, with a signal-to-noise
# ratio of -5 dB on top of the recording's own noise.

time_s = participant.ground_truth()["time_s"]  # s, the epoch's time axis
signal = np.sin(2 * np.pi * 20.0 * time_s)[None, :]
sim_kwargs = dict(sim_signals=signal, dipole_moments=10.0, sim_patch_sizes=5.0, snr=-5.0)
invert_kwargs = dict(patch_size=5, n_temp_modes=4)

pial_vertex = multi_set.get_multilayer_vertex("pial", column)
pial_sim = run_current_density_simulation(base_file, "pial_", pial_vertex, seed=1,
                                          viz=False, **sim_kwargs)
f_pial, _ = model_comparison(fid_coords, pial_sim, two_set, viz=False,
                             invert_kwargs=invert_kwargs)
print(f"pial simulation:  F(pial) - F(white) = {f_pial[0] - f_pial[1]:.1f}")

# %%
# Simulating a white-matter source
# --------------------------------

white_vertex = multi_set.get_multilayer_vertex("white", column)
white_sim = run_current_density_simulation(base_file, "white_", white_vertex, seed=2,
                                           viz=False, **sim_kwargs)
f_white, _ = model_comparison(fid_coords, white_sim, two_set, viz=False,
                              invert_kwargs=invert_kwargs)
print(f"white simulation: F(pial) - F(white) = {f_white[0] - f_white[1]:.1f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar([0, 1], [f_pial[0] - f_pial[1], f_white[0] - f_white[1]],
       color=["tab:red", "tab:blue"])
ax.axhline(0, color="k", linewidth=0.8)
ax.set_xticks([0, 1])
ax.set_xticklabels(["pial simulation", "white simulation"])
ax.set_ylabel("F(pial) - F(white)")
fig.tight_layout()
plt.show()

# %%
# A positive difference favours the pial model, a negative one the white model.
#
# Comparing all layers
# --------------------
# Now a source is simulated in each layer of the multilayer set in turn, and each simulation
# is compared across all single-layer models. Free energies are shown relative to the worst
# model; crosses mark the best model and circles the simulated layer.

f_all = np.zeros((n_layers, n_layers))
for layer in range(n_layers):
    vertex = multi_set.get_multilayer_vertex(layer, column)
    sim = run_current_density_simulation(base_file, f"layer{layer}_", vertex,
                                         seed=10 + layer, viz=False, **sim_kwargs)
    f_all[layer], _ = model_comparison(fid_coords, sim, multi_set, viz=False,
                                       invert_kwargs=invert_kwargs)
    print(f"simulated layer {layer}: best model {np.argmax(f_all[layer])}")
true_layers, names = np.arange(n_layers), [str(i + 1) for i in range(n_layers)]

fig, ax = plt.subplots(figsize=(6, 5))
plot_layer_comparison(f_all, ax=ax, true_layer=true_layers, layer_names=names)
ax.set_title("ΔF by simulated layer (rows) and layer model (columns)")
fig.tight_layout()
plt.show()

# %%
# Clean up
# --------

participant.cleanup()
