"""
Laminar current source density
==============================

With a source model that spans all layers, the reconstructed activity of one cortical column
is a depth profile over time, like a recording from a laminar probe. Its current source density
(CSD), the second spatial derivative along depth, shows where current sinks and sources are.
This tutorial simulates a transient source in a chosen layer, reconstructs it with an EBB
inversion on the multilayer mesh, and computes and plots the CSD of the column with
:func:`lameg.laminar.compute_csd` and :func:`lameg.viz.plot_csd`.
"""

# %%
# Set-up
# ------


import matplotlib.pyplot as plt
import numpy as np

from lameg.datasets import copy_test_participant
from lameg.invert import coregister, invert_ebb
from lameg.laminar import compute_csd
from lameg.simulate import run_current_density_simulation
from lameg.source import load_source_time_series
from lameg.surf import LayerSurfaceSet
from lameg.viz import plot_csd

# A private copy of the test participant, since the analyses write next to their inputs
participant = copy_test_participant(datasets=["sim_ctf_noise"])
subj_id, subjects_dir = participant.subj_id, participant.subjects_dir
fid_coords = participant.fid_coords  # MRI fiducials (scanner RAS, mm)
# The noise-only recording (20 trials, -100 ... 150 ms) is the template of the simulations
base_file = str(participant.dataset("sim_ctf_noise"))

# %%
# A 15-layer forward model
# ------------------------
# laMEG uses 15 layers for CSD analyses.

n_layers = 15
surf_set = LayerSurfaceSet(subj_id, n_layers, subjects_dir=subjects_dir)
surf_set.create(verbose=False)
coregister(fid_coords, base_file, surf_set, viz=False)

# %%
# Simulating a transient source
# -----------------------------
# A Gaussian pulse (25 ms wide, peak at 20 ms, 5 nA m) in a 5 mm patch of the middle layer of
# a lateral column.

time_s = participant.ground_truth()["time_s"]  # s, the epoch's time axis
signal = np.exp(-((time_s - 0.02) ** 2) / (2 * 0.025**2))[None, :]
pial = surf_set.load("pial", stage="ds").darrays[0].data
thickness = surf_set.get_cortical_thickness()
lateral = np.flatnonzero((pial[:, 0] < -40) & (thickness > 3.0))
column = int(lateral[np.argmin(pial[lateral, 0])])
sim_layer = n_layers // 2
vertex = surf_set.get_multilayer_vertex(sim_layer, column)
print(f"column {column}, layer {sim_layer} (multilayer vertex {vertex})")
sim_file = run_current_density_simulation(
    base_file, "csd_", vertex, signal, dipole_moments=5.0, sim_patch_sizes=5.0,
    snr=-5.0, seed=3, viz=False)

# %%
# Reconstruction and the column's depth profile
# ---------------------------------------------
# An EBB inversion on the multilayer mesh, then the source time series of the column's
# vertices (one per layer), averaged over trials.

invert_ebb(sim_file, surf_set, patch_size=5, n_temp_modes=4, viz=False)
layer_vertices = surf_set.get_layer_vertices(column)
ts, time_ms, _ = load_source_time_series(sim_file, vertices=layer_vertices)
mean_ts = ts.mean(axis=-1) if ts.ndim == 3 else ts
print("source time series:", mean_ts.shape)

# %%
# Current source density
# ----------------------
# The column's thickness is the sum of its inter-layer distances.

col_thickness = float(np.sum(surf_set.get_interlayer_distance(column)))
csd = compute_csd(mean_ts, col_thickness, 600.0, method="KCSD1D")
print(f"thickness {col_thickness:.2f} mm; CSD grid {csd.shape}")

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
im = axes[0].imshow(mean_ts, aspect="auto", cmap="RdBu_r", origin="upper",
                    extent=[time_ms[0], time_ms[-1], n_layers + 0.5, 0.5])
fig.colorbar(im, ax=axes[0], label="source amplitude")
axes[0].set_xlabel("Time (ms)")
axes[0].set_ylabel("Layer (1 = pial)")
axes[0].axhline(sim_layer + 1, color="k", linestyle=":")
axes[0].set_title("Reconstructed column")
plot_csd(csd, time_ms, axes[1], n_layers=n_layers)
axes[1].set_xlabel("Time (ms)")
axes[1].set_title("KCSD1D")
fig.tight_layout()
plt.show()

# %%
# Clean up
# --------

participant.cleanup()
