"""
Laminar model comparison with cross-validation error
====================================================

Free energy scores a layer model by its (approximate) log evidence. Cross-validation is a
model-free alternative: the inversion is fitted to some of the MEG channels, the fitted sources
predict the held-out channels, and the prediction error of the held-out channels scores the
model. The layer whose model predicts unseen channels best (**lowest error**) wins. This
tutorial repeats the free-energy tutorial's simulations and compares the pial and white models,
and then all layer models, by their cross-validation error.
"""

# %%
# Set-up
# ------

import os
from pathlib import Path

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
out_dir = Path(os.environ.get("LAMEG_TUTORIAL_OUTPUT", participant.root / "figures"))
out_dir.mkdir(parents=True, exist_ok=True)

# %%
# Layer sets and the simulation forward model
# -------------------------------------------
# As in the free-energy tutorial, the simulations use the forward model of a multilayer mesh
# (11 layers) and the first comparison
# uses the 2-layer set.

n_layers = 11
multi_set = LayerSurfaceSet(subj_id, n_layers, subjects_dir=subjects_dir)
multi_set.create(verbose=False)
two_set = LayerSurfaceSet(subj_id, 2, subjects_dir=subjects_dir)
two_set.create(verbose=False)

coregister(fid_coords, base_file, multi_set, viz=False)
n_columns = multi_set.get_vertices_per_layer()
column = int(np.argmax(anatomical_score(anatomical_predictors(base_file, multi_set))))
print(f"simulating at column {column} of {n_columns}")

# %%
# Cross-validation settings
# -------------------------
# ``n_folds`` inversions are run per layer model, each leaving out ``ideal_pc_test`` percent
# of the channels. When ``n_folds * ideal_pc_test`` is 100, as here, the held-out sets
# partition the channels (k-fold cross-validation): every channel is predicted once. laMEG's
# tutorial uses 10 folds of 10 %, as here. ``seed`` makes the
# random choice of test channels reproducible.
#
# For each fold, the error is the root mean square, over temporal modes, of the difference
# between the predicted and the measured data of each test channel, averaged over trials.
# :func:`lameg.laminar.model_comparison` returns these errors per layer model as an array
# (folds x test channels); their mean is the model's cross-validation error. The free energy
# of each fold (fitted to the training channels) is returned as well.

n_folds, pc_test = (10, 10)
invert_kwargs = dict(patch_size=5, n_temp_modes=4, n_folds=n_folds, ideal_pc_test=pc_test,
                     seed=0)


def cv_error(cv_errs):
    """Mean cross-validation error of each layer model (fT)."""
    return np.array([np.mean(e) for e in cv_errs])


# %%
# Simulating a pial and a white-matter source
# -------------------------------------------
# A 20 Hz sinusoid over the whole epoch, in a 5 mm patch of 10 nA m, with an SNR of -5 dB.

time_s = participant.ground_truth()["time_s"]  # s, the epoch's time axis
signal = np.sin(2 * np.pi * 20.0 * time_s)[None, :]
sim_kwargs = dict(sim_signals=signal, dipole_moments=10.0, sim_patch_sizes=5.0, snr=-5.0)

results = {}
for layer_name, seed in [("pial", 1), ("white", 2)]:
    vertex = multi_set.get_multilayer_vertex(layer_name, column)
    sim = run_current_density_simulation(base_file, f"{layer_name}_", vertex, seed=seed,
                                         viz=False, **sim_kwargs)
    f_folds, cv_errs = model_comparison(fid_coords, sim, two_set, viz=False,
                                        invert_kwargs=invert_kwargs)
    f_vals = f_folds.mean(axis=1)  # free energy per layer model and fold -> mean over folds
    cv = cv_error(cv_errs)
    results[layer_name] = (f_vals, cv)
    print(f"{layer_name} simulation: CV error pial {cv[0]:.4f}, white {cv[1]:.4f} fT; "
          f"CV(pial) - CV(white) = {cv[0] - cv[1]:.4f} fT; "
          f"F(pial) - F(white) = {f_vals[0] - f_vals[1]:.1f}")
print("CV errors per fold and test channel:", np.shape(cv_errs[0]), "; free energies:",
      f_folds.shape)

# %%
# A negative difference of the CV errors favours the pial model, a positive one the white
# model; the free energy agrees (positive: pial).

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for i, (layer_name, (f_vals, cv)) in enumerate(results.items()):
    color = "tab:red" if layer_name == "pial" else "tab:blue"
    axes[0].bar(i, cv[0] - cv[1], color=color)
    axes[1].bar(i, f_vals[0] - f_vals[1], color=color)
for ax, label in zip(axes, ["CV(pial) - CV(white) (fT)", "F(pial) - F(white)"]):
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xticks([0, 1])
    ax.set_xticklabels([f"{name} simulation" for name in results])
    ax.set_ylabel(label)
axes[0].set_title("Cross-validation error (lower is better)")
axes[1].set_title("Free energy (higher is better)")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_03_pial_white.png")
plt.show()

# %%
# Comparing all layers
# --------------------
# Each layer of the multilayer set in turn holds the simulated source, and every simulation is
# compared across all single-layer models. The matrix shows the CV error relative to the best
# model of each simulation (crosses: the model with the lowest error; circles: the simulated
# layer).

cv_all = np.zeros((n_layers, n_layers))
for layer in range(n_layers):
    vertex = multi_set.get_multilayer_vertex(layer, column)
    sim = run_current_density_simulation(base_file, f"layer{layer}_", vertex,
                                         seed=10 + layer, viz=False, **sim_kwargs)
    _, cv_errs = model_comparison(fid_coords, sim, multi_set, viz=False,
                                  invert_kwargs=invert_kwargs)
    cv_all[layer] = cv_error(cv_errs)
    print(f"simulated layer {layer}: lowest CV error for layer {np.argmin(cv_all[layer])}")
true_layers, names = np.arange(n_layers), [str(i + 1) for i in range(n_layers)]

best = np.argmin(cv_all, axis=1)
print("best model per simulation:", best.tolist(), "simulated:", list(true_layers))

fig, ax = plt.subplots(figsize=(6, 5))
# each row relative to its best model: the differences between models are much smaller than
# the differences between simulations
plot_layer_comparison(cv_all - cv_all.min(axis=1, keepdims=True), metric="cv_error", ax=ax,
                      true_layer=true_layers, layer_names=names)
fig.axes[-1].set_ylabel("CV error - lowest CV error (fT)")
ax.set_yticklabels(names)
ax.set_ylabel("Simulated layer")
ax.set_title("CV error by simulated layer and layer model")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_03_layers.png")
plt.show()

# %%
# Clean up
# --------

participant.cleanup()
