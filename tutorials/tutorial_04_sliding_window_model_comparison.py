"""
Sliding-window laminar model comparison
=======================================

Transient events such as beta bursts last a few tens of milliseconds, and their laminar origin
may change within that time (Bonaiuto et al., 2021, *Laminar dynamics of high amplitude beta
bursts in human motor cortex*). A sliding-window model comparison inverts short, overlapping
time windows separately and compares the free energy of the layer models in each window, which
gives the laminar preference as a function of time.

This tutorial simulates a transient source, locates it with an EBB inversion on the multilayer
mesh, and runs :func:`lameg.laminar.sliding_window_model_comparison` with an MSP prior at the
located column: first comparing the pial and white models, then all layers.
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
from lameg.invert import coregister, invert_ebb
from lameg.laminar import sliding_window_model_comparison
from lameg.simulate import run_current_density_simulation
from lameg.source import load_source_time_series
from lameg.surf import LayerSurfaceSet

# A private copy of the test participant, since the analyses write next to their inputs
participant = copy_test_participant(datasets=["sim_ctf_noise"])
subj_id, subjects_dir = participant.subj_id, participant.subjects_dir
fid_coords = participant.fid_coords  # MRI fiducials (scanner RAS, mm)
# The noise-only recording (20 trials, -100 ... 150 ms) is the template of the simulations
base_file = str(participant.dataset("sim_ctf_noise"))
out_dir = Path(os.environ.get("LAMEG_TUTORIAL_OUTPUT", participant.root / "figures"))
out_dir.mkdir(parents=True, exist_ok=True)

# %%
# Layer sets
# ----------
# The multilayer mesh (11 layers)
# carries the simulation and the localiser; the 2-layer set the first comparison.

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
# A transient pial source
# -----------------------
# A Gaussian pulse (standard deviation 25 ms, peak at 0 ms, 10 nA m) in a 5 mm patch on the
# pial surface, with an SNR of -10 dB.

time_s = participant.ground_truth()["time_s"]  # s, the epoch's time axis
signal = np.exp(-(time_s**2) / (2 * 0.025**2))[None, :]
pial_vertex = multi_set.get_multilayer_vertex("pial", column)
sim_file = run_current_density_simulation(
    base_file, "pial_", pial_vertex, signal, dipole_moments=10.0, sim_patch_sizes=5.0,
    snr=-10.0, seed=4, viz=False)

# %%
# Localiser: where is the source?
# -------------------------------
# In a real experiment the source location is unknown. An EBB inversion on the whole
# multilayer mesh reconstructs the activity of every vertex; the prior of the sliding-window
# analysis is the column whose pial vertex has the largest trial-averaged activity.
# ``return_mu_matrix=True`` returns the inverse operator, which
# :func:`lameg.source.load_source_time_series` applies to the sensor data.

_, _, mu_matrix = invert_ebb(sim_file, multi_set, patch_size=5, n_temp_modes=4,
                             return_mu_matrix=True, viz=False)
pial_ts, time_ms, _ = load_source_time_series(sim_file, mu_matrix=mu_matrix,
                                              vertices=np.arange(n_columns))
peak = np.max(np.abs(pial_ts.mean(axis=-1)), axis=-1)  # (n_columns,)
prior = int(np.argmax(peak))
print(f"localiser peak at column {prior} (simulated: {column})")

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(time_ms, pial_ts[prior].mean(axis=-1), color="k")
ax.set_xlabel("Time (ms)")
ax.set_ylabel("Source activity")
ax.set_title(f"Localiser: pial vertex of column {prior}")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_04_localiser.png")
plt.show()

# %%
# Pial versus white, window by window
# -----------------------------------
# ``sliding_window_model_comparison`` coregisters the data to each layer's mesh and runs an
# MSP inversion with a single prior patch at ``prior`` in 50 ms windows. With
# ``win_overlap=True`` there is one window centred on every sample (151 windows per layer
# model; windows can also be given explicitly with ``wois``). It returns the free energy of each layer model in each window.

invert_kwargs = dict(patch_size=5, n_temp_modes=4, win_size=50, win_overlap=True)

f_two, wois = sliding_window_model_comparison(prior, fid_coords, sim_file, two_set,
                                              viz=False, invert_kwargs=invert_kwargs)
win_centres = wois.mean(axis=1)
print(f"{f_two.shape[1]} windows from {wois[0].tolist()} to {wois[-1].tolist()} ms")

in_burst = (win_centres >= -20) & (win_centres <= 20)
dF = f_two[0] - f_two[1]
print(f"F(pial) - F(white) averaged over windows centred in -20 ... 20 ms: "
      f"{dF[in_burst].mean():.1f}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(win_centres, dF, ".-", color="k")
ax.axhline(0, color="k", linewidth=0.8)
ax.axhline(3, color="k", linestyle=":", linewidth=0.8)
ax.axhline(-3, color="k", linestyle=":", linewidth=0.8)
ax.axvspan(-20, 20, color="0.9", zorder=0)
ax.set_xlabel("Window centre (ms)")
ax.set_ylabel("F(pial) - F(white)")
ax.set_title("Sliding-window comparison of the pial and white models")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_04_two_layers.png")
plt.show()

# %%
# A difference above 3 (dotted lines) is usually taken as strong evidence for one of two
# models. Around the peak of the pulse the pial model wins clearly; far from it there is little
# signal and the two models explain the data almost equally well.
#
# All layers
# ----------
# The same analysis with every layer of the multilayer set. Free energies are shown relative
# to the worst layer model of each window.

f_all, wois = sliding_window_model_comparison(prior, fid_coords, sim_file, multi_set,
                                              viz=False, invert_kwargs=invert_kwargs)
rel = f_all - f_all.min(axis=0, keepdims=True)  # (n_layers, n_windows)
burst_mean = rel[:, in_burst].mean(axis=1)
print("mean ΔF in -20 ... 20 ms per layer (pial first):",
      np.array2string(burst_mean, precision=1))
print(f"best layer in -20 ... 20 ms: {int(np.argmax(burst_mean))} (simulated: 0)")

fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
half_step = np.median(np.diff(win_centres)) / 2
im = axes[0].imshow(rel, aspect="auto", origin="upper", cmap="viridis", interpolation="none",
                    extent=[win_centres[0] - half_step, win_centres[-1] + half_step,
                            n_layers + 0.5, 0.5])
fig.colorbar(im, ax=axes[0], label="ΔF")
axes[0].set_xlabel("Window centre (ms)")
axes[0].set_ylabel("Layer model (1 = pial)")
axes[0].set_yticks(np.arange(1, n_layers + 1))
axes[0].set_title("ΔF over time")
axes[1].barh(np.arange(1, n_layers + 1), burst_mean, color="tab:purple")
axes[1].invert_yaxis()
axes[1].set_xlabel("mean ΔF, -20 ... 20 ms")
axes[1].set_yticks(np.arange(1, n_layers + 1))
fig.tight_layout()
fig.savefig(out_dir / "tutorial_04_all_layers.png")
plt.show()

# %%
# Clean up
# --------

participant.cleanup()
