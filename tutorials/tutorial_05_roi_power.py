"""
Laminar ROI power analysis
==========================

Free-energy model comparison asks which layer model explains the whole recording best. A
complementary approach (Bonaiuto et al., 2018, *eLife*) looks at **power**: after an EBB
inversion on a two-layer mesh (pial and white surfaces together), the change in band-limited
power between a baseline and a window of interest is computed for every column on each surface.
The columns with the strongest change form a region of interest (ROI), and a paired t test
across trials compares the magnitude of the change on the pial and the white surface within
it: a positive t statistic means the change is larger on the pial surface, a negative one on the
white surface.

This tutorial simulates a 20 Hz burst on the pial surface, runs
:func:`lameg.laminar.roi_power_comparison` (t > 0), then simulates the same burst on the white
surface and tests it in the same ROI (t < 0). Finally, it looks at the power change in every
layer of a multilayer inversion.
"""

# %%
# Set-up
# ------

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.signal import hilbert

from lameg.anatomy import anatomical_predictors, anatomical_score
from lameg.datasets import copy_test_participant
from lameg.invert import coregister, invert_ebb
from lameg.laminar import roi_power_comparison
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
# The simulations use the forward model of a multilayer mesh (11 layers), so that a source can be placed in any layer. The ROI
# analysis uses the 2-layer set, whose mesh holds the pial and the white surface.

n_layers = 11
multi_set = LayerSurfaceSet(subj_id, n_layers, subjects_dir=subjects_dir)
multi_set.create(verbose=False)
two_set = LayerSurfaceSet(subj_id, 2, subjects_dir=subjects_dir)
two_set.create(verbose=False)

coregister(fid_coords, base_file, multi_set, viz=False)
n_columns = multi_set.get_vertices_per_layer()

# %%
# The source column is the one with the highest anatomical score (see the
# anatomical-predictors tutorial).

column = int(np.argmax(anatomical_score(anatomical_predictors(base_file, multi_set))))
print(f"simulating at column {column} of {n_columns}")

# %%
# A 20 Hz burst on the pial surface
# ---------------------------------
# The epochs run from -100 to 150 ms. The source is silent before 0 ms and oscillates at
# 20 Hz afterwards (10 nA m in a 5 mm patch); the noise gives an SNR of -5 dB.

time_s = participant.ground_truth()["time_s"]  # s, the epoch's time axis
signal = (np.sin(2 * np.pi * 20.0 * time_s) * (time_s >= 0))[None, :]
sim_kwargs = dict(sim_signals=signal, dipole_moments=10.0, sim_patch_sizes=5.0, snr=-5.0)

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(1000 * time_s, 10.0 * signal[0], color="k")
ax.set_xlabel("Time (ms)")
ax.set_ylabel("Dipole moment (nA m)")
ax.set_title("Simulated burst")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_05_signal.png")
plt.show()

pial_sim = run_current_density_simulation(
    base_file, "pial_", multi_set.get_multilayer_vertex("pial", column), seed=1, viz=False,
    **sim_kwargs)

# %%
# Inversion on the two-layer mesh
# -------------------------------
# The simulated dataset is co-registered to the 2-layer mesh and inverted with EBB. ``foi``
# restricts the temporal modes to a frequency band, so that the source time series are
# band-pass filtered. laMEG's tutorial uses the beta band 17.5-22.5 Hz on 1 s epochs; in the
# 250 ms epochs of the test data the discrete cosine basis has a resolution of 2 Hz, and such a
# narrow band (three basis functions) would smear the burst over the whole epoch, so a wider
# band around 20 Hz is used here. ``return_mu_matrix=True`` also returns the inverse operator,
# which saves recomputing it for every column.

woi = [0, 150]  # ms, window of interest
baseline = [-100, 0]  # ms
invert_kwargs = dict(patch_size=5, n_temp_modes=4, foi=[10, 30], return_mu_matrix=True,
                     viz=False)

coregister(fid_coords, pial_sim, two_set, viz=False)
f_pial, _, mu_pial = invert_ebb(pial_sim, two_set, **invert_kwargs)
print(f"free energy of the 2-layer inversion: {float(f_pial):.1f}; "
      f"inverse operator {mu_pial.shape}")

# %%
# The ROI power comparison
# ------------------------
# For every column, the power (mean Hilbert amplitude) in the window of interest minus the
# power in the baseline is computed per trial on the pial and the white surface. Columns whose
# t statistic of this change exceeds the 99.99th percentile on either surface form the ROI.
# The ROI-mean changes are then compared across trials with a paired t test of
# ``|pial| - |white|``.

t_pial, p_pial, df, roi_idx = roi_power_comparison(
    pial_sim, woi, baseline, 99.99, two_set, mu_matrix=mu_pial, chunk_size=1000)
print(f"pial simulation:  t({df}) = {t_pial:.3f}, p = {p_pial:.3g}, ROI of {roi_idx.size} "
      f"column(s) {roi_idx.tolist()}")

# %%
# The ROI lies at (or right next to) the simulated column, and the positive t statistic
# shows that the power change is larger on the pial surface.
#
# A burst on the white surface
# ----------------------------
# The same burst is now simulated on the white surface of the same column. The comparison
# reuses the ROI found above (``roi_mode='direct'``), as one would with an independently
# defined ROI.

white_sim = run_current_density_simulation(
    base_file, "white_", multi_set.get_multilayer_vertex("white", column), seed=2, viz=False,
    **sim_kwargs)
coregister(fid_coords, white_sim, two_set, viz=False)
f_white, _, mu_white = invert_ebb(white_sim, two_set, **invert_kwargs)
t_white, p_white, df, _ = roi_power_comparison(
    white_sim, woi, baseline, 99.99, two_set, mu_matrix=mu_white, chunk_size=1000,
    roi_idx=roi_idx, roi_mode="direct")
print(f"white simulation: t({df}) = {t_white:.3f}, p = {p_white:.3g}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar([0, 1], [t_pial, t_white], color=["tab:red", "tab:blue"])
ax.axhline(0, color="k", linewidth=0.8)
ax.set_xticks([0, 1])
ax.set_xticklabels(["pial simulation", "white simulation"])
ax.set_ylabel("t (|pial| - |white| power change)")
ax.set_title("ROI power comparison")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_05_roi_t.png")
plt.show()

# %%
# The pial and white source time series in the ROI
# ------------------------------------------------
# The reconstructed (beta-band) activity of the ROI columns, averaged over trials, and its
# Hilbert envelope, on the pial and the white surface of the two inversions.

n2 = two_set.get_vertices_per_layer()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, sim, mu, title in [(axes[0], pial_sim, mu_pial, "pial simulation"),
                           (axes[1], white_sim, mu_white, "white simulation")]:
    # rows: the ROI columns on the pial surface, then on the white surface
    ts, time_ms, _ = load_source_time_series(
        sim, mu_matrix=mu, vertices=np.concatenate([roi_idx, n2 + roi_idx]))
    ts = ts.reshape(2, roi_idx.size, *ts.shape[1:])  # (surface, column, time, trial)
    envelope = np.abs(hilbert(ts, axis=2))
    for layer, color in [(0, "tab:red"), (1, "tab:blue")]:
        ax.plot(time_ms, ts[layer].mean(axis=(0, 2)), color=color, alpha=0.5, linewidth=0.8)
        ax.plot(time_ms, envelope[layer].mean(axis=(0, 2)), color=color,
                label=["pial", "white"][layer] + " surface")
    ax.axvspan(*baseline, color="0.9", zorder=0)
    ax.set_xlabel("Time (ms)")
    ax.set_title(title)
axes[0].set_ylabel("ROI source activity")
axes[0].legend(loc="upper left")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_05_roi_time_series.png")
plt.show()

# %%
# Power change in every layer
# ---------------------------
# The 2-layer comparison only contrasts the outermost surfaces. Inverting the pial simulation
# with the multilayer mesh instead gives a depth profile of the power change in the ROI: the
# mean Hilbert amplitude in the window of interest minus the baseline, averaged over trials,
# for each layer's vertices of the ROI columns.

coregister(fid_coords, pial_sim, multi_set, viz=False)
_, _, mu_multi = invert_ebb(pial_sim, multi_set, **invert_kwargs)
vertices = [multi_set.get_multilayer_vertex(layer, c) for layer in range(n_layers)
            for c in roi_idx]
ts, time_ms, _ = load_source_time_series(pial_sim, mu_matrix=mu_multi, vertices=vertices)
envelope = np.abs(hilbert(ts, axis=1)).reshape(n_layers, roi_idx.size, *ts.shape[1:])
in_woi = (time_ms >= woi[0]) & (time_ms < woi[1])
in_base = (time_ms >= baseline[0]) & (time_ms < baseline[1])
# (layer, column, trial) -> mean over columns and trials
roi_change = (envelope[:, :, in_woi].mean(axis=2)
              - envelope[:, :, in_base].mean(axis=2)).mean(axis=(1, 2))
print("ROI power change per layer (pial first):", np.array2string(roi_change, precision=3))

fig, ax = plt.subplots(figsize=(4, 4))
ax.plot(roi_change, np.arange(1, n_layers + 1), "o-", color="k")
ax.invert_yaxis()
ax.set_yticks(np.arange(1, n_layers + 1))
ax.set_ylabel("Layer (1 = pial)")
ax.set_xlabel("Power change (woi - baseline)")
ax.set_title("Pial simulation")
fig.tight_layout()
fig.savefig(out_dir / "tutorial_05_layer_power.png")
plt.show()

# %%
# Clean up
# --------

# sphinx_gallery_thumbnail_number = 2

participant.cleanup()
