"""
Anatomical predictors of laminar inference accuracy
===================================================

How well MEG can tell a superficial from a deep source is not the same everywhere on the
cortex. Even with perfect co-registration and a high signal-to-noise ratio, laminar model
comparison is more reliable in some places than in others (Szul et al., 2025, *Beyond deep versus
superficial: true laminar inference with MEG*). Four properties of a cortical column explain much
of this variation:

* **cortical thickness** -- thicker columns put their layers further apart;
* **lead-field RMS difference** -- how different the sensor patterns of the deepest and the most
  superficial source of the column are;
* **orientation** -- how radial the column is with respect to the scalp (MEG is blind to
  radial currents);
* **distance to the scalp** -- the closer to the sensors, the stronger and sharper the field.

This tutorial computes the four predictors for every column of an 11-layer mesh of the test
participant, draws each on the cortex, combines their z-scores into one *anatomical score* and
uses the score to pick the best prior location inside a region of interest.
"""

# %%
# Set-up
# ------
# The test participant ``sub-01`` ships with the package's repository
# (:mod:`lameg.datasets`). Everything this tutorial writes (the laminar meshes, the forward
# model, the inversion) goes to a private copy of it, so the bundled data are never modified.

import os
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from scipy.stats import zscore

from lameg.anatomy import anatomical_predictors, anatomical_score, select_prior_vertex
from lameg.datasets import copy_test_participant
from lameg.invert import coregister, get_lead_field_rms_diff, invert_ebb
from lameg.surf import LayerSurfaceSet
from lameg.sweep import LaminarModel, SweepSettings, laminar_accuracy_map, plot_accuracy_map
from lameg.viz import show_surface

n_layers = 11

# The FreeSurfer subject and the CTF recording of a pial source (header .mat + data .dat)
participant = copy_test_participant(datasets=["sim_ctf_pial"])
subj_id, subjects_dir = participant.subj_id, participant.subjects_dir
data_file = str(participant.dataset("sim_ctf_pial"))

# Figures go to LAMEG_TUTORIAL_OUTPUT if set (``make demo``), else next to the copy
out_dir = Path(os.environ.get("LAMEG_TUTORIAL_OUTPUT", participant.root / "figures"))
out_dir.mkdir(parents=True, exist_ok=True)

# MRI fiducials (scanner RAS, mm)
fid_coords = participant.fid_coords
print(fid_coords)

# %%
# The multilayer mesh
# -------------------
# :meth:`~lameg.surf.LayerSurfaceSet.create` builds the laminar surfaces between the white
# matter and pial surfaces, removes the medial wall, combines the hemispheres, decimates them
# with a common vertex subset and writes the layer-major multilayer mesh with link-vector
# orientations (white minus pial).

surf_set = LayerSurfaceSet(subj_id, n_layers, subjects_dir=subjects_dir)
surf_set.create(verbose=False)
n_columns = surf_set.get_vertices_per_layer()
print(f"{n_layers} layers, {n_columns} columns per layer")

# %%
# Forward model and source reconstruction
# ---------------------------------------
# The lead-field predictor needs the gain matrix of the multilayer mesh, which co-registration
# computes and stores next to the data. An EBB inversion on the multilayer mesh completes the
# usual workflow (its result is not needed for the predictors).

coregister(fid_coords, data_file, surf_set, viz=False)
free_energy, _ = invert_ebb(data_file, surf_set, patch_size=5,
                            n_temp_modes=4, viz=False)
print(f"Free energy of the multilayer EBB inversion: {float(free_energy):.1f}")

# %%
# Vertex-wise anatomical predictors
# ---------------------------------
# Each predictor is a vector with one value per cortical column.

thickness = surf_set.get_cortical_thickness()  # mm
lf_rms_diff = get_lead_field_rms_diff(data_file, surf_set)  # fT per nA m
radiality = surf_set.get_radiality_to_scalp()  # |cos|, 1 = radial, 0 = tangential
distance = surf_set.get_distance_to_scalp()  # mm, to the scalp surface

print("predictor          1%   median      99%")
for name, values in [("thickness", thickness), ("lf_rms_diff", lf_rms_diff),
                     ("radiality", radiality), ("distance", distance)]:
    p1, p50, p99 = np.percentile(values, [1, 50, 99])
    print(f"{name:<12} {p1:7.3f} {p50:8.3f} {p99:8.3f}")

# %%
# :func:`lameg.anatomy.anatomical_predictors` computes the same four vectors in one call.

predictors = anatomical_predictors(data_file, surf_set)
assert np.allclose(predictors["lf_rms_diff"], lf_rms_diff)
assert np.allclose(predictors["thickness"], thickness)

# %%
# Drawing the predictors on the cortex
# ------------------------------------
# :func:`lameg.viz.show_surface` colours the inflated surface by per-column values and, with
# ``screenshot=``, writes a PNG with a colour bar. The colour range spans the 1st to 99th
# percentile of each predictor.

inflated = surf_set.load("inflated", stage="ds").darrays[0].data
pial = surf_set.load("pial", stage="ds").darrays[0].data


def view(vertex=None):
    """Camera ``[eye, target, up]``: the left hemisphere from the side, or facing ``vertex``."""
    side = -1 if vertex is None or pial[vertex, 0] < 0 else 1
    target = inflated[np.sign(pial[:, 0]) == side].mean(axis=0)
    direction = np.array([side, 0.0, 0.0])
    if vertex is not None:  # lateral view tilted towards the vertex (at most 45 degrees)
        d = inflated[vertex] - target
        d /= np.linalg.norm(d)
        direction = np.array([side, 0.5 * d[1], d[2]])
        direction /= np.linalg.norm(direction)
    return [*(target + 420.0 * direction), *target, 0.0, 0.0, 1.0]


def draw(values, name, label, marker=None):
    """Render ``values`` on the inflated cortex, save the PNG and show it."""
    png = out_dir / f"tutorial_07_{name}.png"
    show_surface(
        surf_set, layer_name="inflated", scalars=values, cmap="Spectral_r",
        vmin=np.percentile(values, 1), vmax=np.percentile(values, 99),
        colorbar=True, colorbar_label=label, camera_view=view(marker),
        marker_vertices=None if marker is None else [marker], marker_size=6,
        marker_color="black", screenshot=png,
    )
    image = plt.imread(png)
    fig, ax = plt.subplots(figsize=(image.shape[1] / 100, image.shape[0] / 100))
    ax.imshow(image)
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    plt.show()


# %%
# **Cortical thickness** (mm): the distance between the pial and white surfaces of a column.

draw(thickness, "thickness", "cortical thickness (mm)")

# %%
# **Lead-field RMS difference**: the root mean square over sensors of the difference between
# the lead fields of the deepest and the pial vertex of a column. Larger values mean that the
# two layers produce more distinguishable sensor patterns.

draw(lf_rms_diff, "lf_rms_diff", "lead-field RMS difference (fT / nA m)")

# %%
# **Orientation**: the absolute cosine between the column orientation and the normal of the
# scalp at its closest point (1 = radial, 0 = tangential).

draw(radiality, "orientation", "radiality to the scalp")

# %%
# **Distance**: from the pial vertex to the scalp surface (mm). Smaller is better.

draw(distance, "distance", "distance to the scalp (mm)")

# %%
# The composite anatomical score
# ------------------------------
# Each predictor is z-scored over the columns; the distance enters with a negative sign because
# closer columns are better. The sum is the anatomical score.
# :func:`lameg.anatomy.anatomical_score` does this, with optional per-predictor weights.

score = anatomical_score(predictors)

# %%
# The same score with plain NumPy/SciPy, to show there is nothing hidden:

score_scipy = zscore(thickness) + zscore(lf_rms_diff) + zscore(radiality) + zscore(-distance)
max_diff = np.max(np.abs(score - score_scipy))
print(f"Largest difference between the two scores: {max_diff:.2e}")
assert np.allclose(score, score_scipy)

# %%
# The column with the highest score is the anatomically most favourable location for laminar
# inference over the whole cortex (black marker).

best_vertex = int(np.argmax(score))
hemisphere = "right" if pial[best_vertex, 0] > 0 else "left"
print(f"Highest anatomical score at vertex {best_vertex}")
print(f"({hemisphere} hemisphere, score {score[best_vertex]:.2f})")
draw(score, "anatomical_score", "anatomical score (sum of z-scores)",
     marker=best_vertex)

# %%
# Choosing a prior vertex inside a region of interest
# ---------------------------------------------------
# Laminar model comparison is usually run at one location, for instance in an anatomical region
# or where the task modulates power. Within such a region the anatomical score picks the column
# best suited to laminar inference. Here the region is the parcel of the ``aparc`` annotation
# that contains the simulated source of this dataset (left hemisphere, vertex 1897 of the
# FreeSurfer surface); :meth:`~lameg.surf.LayerSurfaceSet.get_roi_idx` maps it to the columns of
# the multilayer mesh.

labels, _, names = nib.freesurfer.read_annot(
    str(subjects_dir / subj_id / "label" / "lh.aparc.annot"))
region = names[labels[1897]].decode()
roi_idx = surf_set.get_roi_idx([region], hemi="lh")
prior = select_prior_vertex(score, roi_idx)
assert prior == roi_idx[np.argmax(score[roi_idx])]
print(f"Region {region}: {roi_idx.size} columns")
print(f"best prior column {prior} (score {score[prior]:.2f})")
print(f"pial multilayer vertex {surf_set.get_multilayer_vertex('pial', prior)}")

# %%
# Does the score track empirical accuracy?
# ----------------------------------------
# The score is a stand-in for what matters: how often laminar model comparison picks the
# right layer at a column. :func:`lameg.sweep.laminar_accuracy_map` measures that directly.
# For every requested column it simulates a patch in each layer of the co-registered
# forward model (SNR -20 dB per trial, perfect co-registration), inverts the average once per
# layer model (MSP with one prior patch at the column) and keeps the layer with the highest
# free energy. The layer models share the data reduction and their ReML steps run in a
# subspace of a few dimensions (:mod:`lameg.inverse.lowrank`), so each simulation with its
# 11 inversions takes about 0.1 s. Here a random subset of columns keeps the run short; leave
# ``columns`` out to map the whole cortex (``n_jobs`` processes, or ``backend='dask'`` on a
# cluster).

model = LaminarModel.from_dataset(data_file, n_layers=n_layers)
rng = np.random.default_rng(0)
mapped = np.sort(rng.choice(n_columns, 300, replace=False))
accuracy = laminar_accuracy_map(model, columns=mapped, snr=-20.0,
                                settings=SweepSettings(method="MSP", n_temp_modes=4),
                                seed=1, n_jobs=1)
print(f"mean layer error over {mapped.size} columns: {accuracy.error.mean():.2f} layers "
      f"(chance {accuracy.chance:.2f})")
corr = accuracy.correlation(score)
print(f"score vs layer error: Spearman r = {corr['spearman_r']:.2f} "
      f"(p = {corr['spearman_p']:.2g}, n = {corr['n']})")

# %%
# Columns with a higher anatomical score should have smaller errors (a negative
# correlation). The map is drawn on the pial surface next to the score.

pial_faces = surf_set.load("pial", stage="ds").darrays[1].data
fig = plot_accuracy_map(accuracy, pial, pial_faces, score=score)
fig.savefig(out_dir / "tutorial_07_accuracy_map.png", dpi=100)
plt.show()

# %%
# Clean up
# --------

# sphinx_gallery_thumbnail_number = 5

participant.cleanup()
