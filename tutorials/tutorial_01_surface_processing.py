"""
Surface processing
==================

Laminar inference needs a cortical source space with several layers between the white matter
and pial surfaces, with a known correspondence between the vertices of the layers. This
tutorial walks through the processing stages of :class:`lameg.surf.LayerSurfaceSet` on the test
participant: the layers themselves, the removal of the medial wall, the combination of the
hemispheres, the decimation and the dipole orientations (link vectors), and builds layer sets
of several sizes. No FreeSurfer binaries are needed: surfaces and annotations are read with
nibabel.
"""

# %%
# Set-up
# ------
# ``create()`` writes into ``<subject>/surf/laminar``, so we work on a copy of the test
# participant (:func:`lameg.datasets.copy_test_participant`); the bundled data stay untouched.

import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lameg.datasets import copy_test_participant
from lameg.surf import LayerSurfaceSet
from lameg.viz import render_mesh, show_surface

participant = copy_test_participant(datasets=[])  # the FreeSurfer subject only
subj_id, subjects_dir = participant.subj_id, participant.subjects_dir
out_dir = Path(os.environ.get("LAMEG_TUTORIAL_OUTPUT", participant.root / "figures"))
out_dir.mkdir(parents=True, exist_ok=True)


def show_png(png):
    """Show a PNG written by the renderer as a matplotlib figure."""
    image = plt.imread(png)
    fig, ax = plt.subplots(figsize=(image.shape[1] / 100, image.shape[0] / 100))
    ax.imshow(image)
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    plt.show()


# %%
# Building a layer set
# --------------------
# A :class:`~lameg.surf.LayerSurfaceSet` with ``n_layers`` layers places the layers at the
# fractions ``linspace(1, 0, n_layers)`` of the distance from the white surface to the pial
# surface (1 = pial), along the straight line joining corresponding white and pial vertices.

n_layers = 11
surf_set = LayerSurfaceSet(subj_id, n_layers, subjects_dir=subjects_dir)
print(surf_set)
print("layers:", surf_set.get_layer_names())

start = time.perf_counter()
surf_set.create(verbose=False)
print(f"create() took {time.perf_counter() - start:.1f} s")

# %%
# The stages
# ----------
# Every stage is written as GIfTI files following laMEG's naming scheme:
#
# * ``converted`` -- each hemisphere in scanner RAS millimetres;
# * ``nodeep`` -- the medial wall (vertices labelled 'unknown' in ``aparc``) removed;
# * ``combined`` -- left and right hemispheres in one mesh;
# * ``ds`` -- decimated, with the same vertex subset (and faces) in every layer;
# * ``multilayer`` -- all ds layers stacked, pial first.

for name in sorted(os.listdir(surf_set.laminar_surf_dir))[:12]:
    print(name)
print("...")

for stage, hemi in [("converted", "lh"), ("nodeep", "lh"), ("combined", None),
                    ("ds", None)]:
    n = surf_set.load("pial", stage=stage, hemi=hemi).darrays[0].data.shape[0]
    print(f"{stage:>9} {hemi or 'both':>4}: {n:6d} vertices")

# %%
# The layers of the left hemisphere
# ---------------------------------
# The converted layers, coloured from the pial surface (pink) to the white surface (cyan),
# seen from the left.

pngs = []
names = surf_set.get_layer_names()
colors = plt.cm.cool(np.linspace(0, 1, len(names)))
for name, c in zip(names, colors):
    png = out_dir / f"tutorial_01_layer_{name}.png"
    show_surface(surf_set, layer_name=name, stage="converted", hemi="lh",
                 color=c[:3], plot_curvature=False, height=300, screenshot=png)
    pngs.append(plt.imread(png))
fig, axes = plt.subplots(1, len(pngs), figsize=(3 * len(pngs), 2.4))
for ax, img, name in zip(np.atleast_1d(axes), pngs, names):
    ax.imshow(img)
    ax.set_title(name)
    ax.set_axis_off()
plt.show()

# %%
# Removing the medial wall
# ------------------------
# The vertices of the medial wall (red) have no cortex beneath them and are removed in the
# ``nodeep`` stage. The view is from the midline.

# ``map_between_stages`` from 'converted' to 'nodeep' lists the converted vertices that are kept
conv = surf_set.load("pial", stage="converted", hemi="lh").darrays[0].data
kept = surf_set.map_between_stages("pial", "converted", "lh", "nodeep", "lh")
removed = np.ones(len(conv), dtype=bool)
removed[kept] = False
print(f"{removed.sum()} of {removed.size} left-hemisphere vertices removed")
rgb = np.tile([166, 166, 166], (removed.size, 1))
rgb[removed] = [220, 30, 30]
target = conv.mean(axis=0)
medial = [*(target + [400.0, 0.0, 0.0]), *target, 0.0, 0.0, 1.0]
png = out_dir / "tutorial_01_medial_wall.png"
show_surface(surf_set, layer_name="pial", stage="converted", hemi="lh",
             vertex_colors=rgb, camera_view=medial, screenshot=png)
show_png(png)

# %%
# The decimated mesh and its link vectors
# ---------------------------------------
# Decimation keeps about a tenth of the faces; the kept vertices are original pial vertices,
# so every layer uses the same faces. Dipoles are oriented along the *link vectors*, from each
# pial vertex to its white vertex. Here the pial (transparent) and white surfaces of the
# decimated mesh, with the link vectors of the left hemisphere.

pial = surf_set.load("pial", stage="ds").darrays
pial_v, faces = pial[0].data, pial[1].data
white = surf_set.load("white", stage="ds").darrays[0].data
vectors = surf_set.compute_dipole_orientations("link_vector")[0]
# a 25 mm patch of the left lateral cortex, seen from the side
centre = pial_v[np.argmin(pial_v[:, 0])]
near = np.linalg.norm(pial_v - centre, axis=1) < 25.0
patch = faces[near[faces].all(axis=1)]
camera = [*(centre + [-110.0, 0.0, 0.0]), *centre, 0.0, 0.0, 1.0]
plotter = render_mesh(white, patch, color=(90, 140, 200), camera_view=camera)
render_mesh(pial_v, patch, color=(200, 200, 200), opacity=0.4, plotter=plotter,
            camera_view=camera)
length = np.linalg.norm(white - pial_v, axis=1)
plotter.add_arrows(pial_v[near], vectors[near], mag=float(np.median(length)),
                   color="red")
png = out_dir / "tutorial_01_link_vectors.png"
plotter.screenshot(str(png))
plotter.close()
show_png(png)

# %%
# Layer sets of several sizes
# ---------------------------
# laMEG's analyses use 2 layers (pial and white), 11 layers (model comparison across depth)
# and 15 layers (current source density). Each set writes its own multilayer mesh; the
# per-layer files of the layers they share are reused.

sizes = (2, 11, 15)
for n in sizes:
    start = time.perf_counter()
    layer_set = LayerSurfaceSet(subj_id, n, subjects_dir=subjects_dir)
    layer_set.create(verbose=False)
    print(f"{n:2d} layers: {Path(layer_set.get_mesh_path()).name}, "
          f"{layer_set.get_vertices_per_layer()} vertices per layer, "
          f"{time.perf_counter() - start:.1f} s")

# %%
# Clean up
# --------

# sphinx_gallery_thumbnail_number = 2

participant.cleanup()
