"""One documentation source for recurring parameters (MNE-Python's ``docdict``/``fill_doc``).

A docstring writes ``%(data_fname)s`` where the shared entry belongs; :func:`fill_doc` substitutes
it when the module is imported, so every function documents ``surf_set``, ``woi`` and the rest in
the same words, units and shapes.
"""

from __future__ import annotations

import textwrap

__all__ = ["docdict", "fill_doc"]

docdict: dict[str, str] = {}

docdict["data_fname"] = """
data_fname : str or path-like
    SPM M/EEG header (``.mat``) of the dataset; its ``.dat`` sits beside it."""
docdict["surf_set"] = """
surf_set : lameg.surf.LayerSurfaceSet
    The participant's layer surface set (``LayerSurfaceSet.create`` must have run)."""
docdict["layer_name"] = """
layer_name : str or None
    Layer of the surface set (``'pial'``, ``'0.900'``, ..., ``'white'``); None selects the
    multilayer mesh (all layers, layer-major)."""
docdict["stage"] = """
stage : str
    Processing stage of the mesh (``'raw'``, ``'converted'``, ``'nodeep'``, ``'combined'``,
    ``'ds'``; default ``'ds'``, the downsampled mesh)."""
docdict["orientation"] = """
orientation : str
    Dipole orientation method stored with the mesh (``'link_vector'``, ``'ds_surf_norm'``,
    ``'orig_surf_norm'``, ``'cps'``)."""
docdict["fixed"] = """
fixed : bool
    Orientations fixed across layers (the same vector for every vertex of a column)."""
docdict["mesh_selection"] = (docdict["layer_name"] + docdict["stage"] + docdict["orientation"]
                             + docdict["fixed"])
docdict["hemi"] = """
hemi : {'lh', 'rh'} or None
    Hemisphere; required by the per-hemisphere stages ``'raw'``, ``'converted'`` and
    ``'nodeep'``, None for ``'combined'`` and ``'ds'`` (both hemispheres, lh first)."""
docdict["orientation_opt"] = """
orientation : str or None
    Dipole orientation method of an oriented ``ds`` file (``'link_vector'``,
    ``'ds_surf_norm'``, ``'orig_surf_norm'``, ``'cps'``); None selects the file without
    orientations."""
docdict["fixed_opt"] = """
fixed : bool or None
    With ``orientation``: the file with orientations fixed across layers (True) or per layer
    (False)."""
docdict["mesh_file"] = (docdict["layer_name"] + docdict["stage"] + docdict["hemi"]
                        + docdict["orientation_opt"] + docdict["fixed_opt"])
docdict["ds_orientation"] = """
orientation : str
    Orientation method of the multilayer ``ds`` mesh whose vertex count is used
    (default ``'link_vector'``).
fixed : bool
    Fixed (True) or per-layer (False) orientations of that mesh."""
docdict["column"] = """
vertex : int
    0-based column index, i.e. vertex of one ``ds`` layer, in ``[0, n_vertices_per_layer)``."""
docdict["inversion_idx"] = """
inversion_idx : int
    0-based index of the head model / inversion in ``D.other.inv`` (SPM's ``val`` is
    ``inversion_idx + 1``)."""
docdict["patch_size"] = """
patch_size : float
    FWHM of the geodesic Gaussian source patches, mm (laMEG's smoothing; default 5)."""
docdict["n_temp_modes"] = """
n_temp_modes : int or None
    Number of temporal modes of the data reduction (>= 1), or None for SPM's automatic
    choice (at most 16)."""
docdict["n_spatial_modes"] = """
n_spatial_modes : 'auto', 'all' or int
    Spatial reduction of the channels: SPM's automatic choice, no reduction, or that many
    modes (>= 1)."""
docdict["foi"] = """
foi : array-like, shape (2,), optional
    Frequency band of the temporal basis ``[low, high]``, Hz (default ``[0, 256]``);
    truncated to integer Hz as SPM does."""
docdict["woi"] = """
woi : array-like, shape (2,) or (n_windows, 2), optional
    Time window(s) of interest ``[start, end]`` in **ms** (default: the whole epoch);
    truncated to integer ms as SPM's batch does."""
docdict["hann_windowing"] = """
hann_windowing : bool
    Weight samples with a Hanning window when choosing the temporal modes."""
docdict["n_folds"] = """
n_folds : int
    Cross-validation folds (>= 1); 1 with ``ideal_pc_test=0`` means no cross-validation."""
docdict["ideal_pc_test"] = """
ideal_pc_test : float
    Percentage of channels held out per fold for the cross-validation error (0 to < 100)."""
docdict["return_mu_matrix"] = """
return_mu_matrix : bool
    Also return the source operator ``M @ A`` (sources x good channels) as a
    ``scipy.sparse.csc_matrix``."""
docdict["viz"] = """
viz : bool
    laMEG shows SPM's figures when True. Accepted for compatibility: lameg draws nothing here
    with either back end (SPM runs without figures); use :mod:`lameg.viz` for views."""
docdict["backend"] = """
backend : {'native', 'spm'} or None
    Engine that does the work: lameg's own (default) or real SPM (through spm-python or GNU
    Octave, see :mod:`lameg.spm`). None means ``'spm'`` when ``spm_instance`` is given,
    ``'native'`` otherwise."""
docdict["spm_instance"] = """
spm_instance : object or None
    A running SPM engine (laMEG's ``spm_standalone`` instance or a :class:`lameg.spm.SPM`);
    passing one selects the SPM back end."""
docdict["seed"] = """
seed : int, numpy.random.Generator or None
    Source of randomness (None: fresh entropy)."""
docdict["verbose"] = """
verbose : bool
    Show progress bars and log progress messages."""
docdict["fid_coords"] = """
fid_coords : dict of str to array-like, shape (3,)
    MRI fiducials in scanner RAS **mm**, e.g. ``{'nas': [x, y, z], 'lpa': ..., 'rpa': ...}``
    (``lameg.util.get_fiducial_coords``)."""
docdict["fid_labels"] = """
fid_labels : sequence of str
    Fiducial labels as in the MEG file, paired in order with ``'nas'``, ``'lpa'``, ``'rpa'``."""
docdict["forward_model_type"] = """
forward_model_type : {'Single Shell', 'Single Sphere', 'MEG Local Spheres', 'MNE BEM'}
    Volume conductor (SPM names; ``'MNE BEM'`` is a single-layer BEM through MNE-Python)."""
docdict["free_energy_cv"] = """
free_energy : float or ndarray
    Negative variational free energy (log model evidence, nats), one per fold.
cv_err : ndarray, shape (n_folds, n_test_channels)
    Cross-validation RMS error of the held-out channels (empty without held-out channels)."""


# Triangle meshes (lameg.mesh, lameg.forward, lameg.io.gifti)
docdict["vertices"] = """
vertices : array-like, shape (n_vertices, 3)
    Vertex positions of the triangle mesh, in any length unit (lameg's cortical meshes: mm);
    lengths, areas and volumes derived from them are in that unit."""
docdict["query_points"] = """
points : array_like, shape (n_points, 3)
    Query points, in the mesh's unit."""
docdict["gii_path"] = """
path : str or path-like
    The ``.gii`` file."""
docdict["faces"] = """
faces : array-like of int, shape (n_faces, 3)
    0-based vertex indices of each triangle."""
docdict["n_vertices"] = """
n_vertices : int or None
    Number of vertices of the mesh (None: ``faces.max() + 1``)."""
docdict["mesh_params_body"] = docdict["vertices"] + docdict["faces"]
docdict["faces_params_body"] = docdict["faces"]
docdict["faces_n_vertices_params_body"] = docdict["faces"] + docdict["n_vertices"]
docdict["normals"] = """
normals : array-like, shape (n_vertices, 3), or None
    Per-vertex normals carried along with the vertices (None: no normals)."""
docdict["mesh_removal_returns"] = """
vertices : ndarray, shape (n_kept, 3)
    The kept vertices, in their original order.
faces : ndarray of int, shape (n_kept_faces, 3)
    The faces whose three vertices are kept, re-indexed into the kept vertices.
normals : ndarray, shape (n_kept, 3), or None
    The kept rows of ``normals`` (None when no normals were given).
kept : ndarray of int, shape (n_kept,)
    Original index of every kept vertex."""

# MEG forward models (lameg.forward)
docdict["sensors"] = """
sensors : lameg.forward.sensors.SensorArray
    MEG coils (positions in m, unit normals) and the coil-to-channel map ``tra``."""
docdict["channel_labels"] = """
labels : sequence of str, optional
    Channel labels (default ``MEG0001``, ``MEG0002``, ...)."""
docdict["coil_baseline"] = """
baseline : float
    Distance between the two coils, m."""
docdict["dip_pos"] = """
dip_pos : array-like, shape (n_dipoles, 3)
    Dipole positions in the sensors' head frame, m."""
docdict["coil_leadfield"] = """
ndarray, shape (n_dipoles, 3, n_coils)
    Field at every coil (along its normal) of a unit dipole along x, y and z, T/(A m)."""
docdict["cache_key_returns"] = """
str
    Text that identifies the model's geometry and parameters; equal keys give equal lead
    fields (part of the gain cache key)."""


# Simulations (lameg.simulate and its SPM back end)
docdict["noise_color"] = """
noise_color : {'white', 'pink'}
    Spectrum of the simulated sensor noise: white, or 1/f power (SPM's recipe, see
    :func:`lameg.simulate.sensor_noise`)."""
docdict["snr"] = """
snr : float
    Per-trial signal-to-noise ratio, dB (SPM's definition, see :mod:`lameg.simulate`)."""
docdict["sim_template"] = """
data_file : str or path-like
    Template SPM dataset holding a forward model (``coregister``) and its gain matrix; it is
    never modified.
prefix : str
    Prefix of the new file name (e.g. ``'sim_'``).
sim_vertices : int or sequence of int
    0-based source vertices of the forward mesh (for a multilayer mesh,
    ``surf_set.get_multilayer_vertex(layer, column)``).
sim_signals : ndarray, shape (n_sources, n_times[, n_trials])
    Source waveforms over the samples of ``sim_woi``; multiplied by ``dipole_moments``."""
docdict["sim_moments_sizes"] = """
dipole_moments : float or sequence of float
    Total moment of each source, nA m.
sim_patch_sizes : float or sequence of float
    Patch FWHM, mm (0 = a single vertex)."""
docdict["sim_options"] = (docdict["snr"] + docdict["noise_color"] + """
sim_woi : (float, float), optional
    Window in **seconds** receiving the signal (``woi[0] < t <= woi[1]``); default the whole
    epoch.
average_trials : bool
    Also write the per-condition average ``m<prefix><name>`` and return its name.""")
docdict["sim_engine"] = """
viz : bool
    Passed to SPM with the SPM back end; natively nothing is drawn.
spm_instance : object or None
    A running SPM engine; selects the SPM back end.
seed : int, numpy.random.Generator or None
    Noise source (``numpy.random.default_rng(seed)``).
inversion_idx : int, optional
    0-based forward model to use (default: ``D.other.val``, as SPM).
backend : {'native', 'spm'} or None
    Engine (None: ``'spm'`` when ``spm_instance`` is given, else ``'native'``)."""
docdict["sim_returns"] = """
str
    Path of the simulated (or, with ``average_trials``, averaged) ``.mat`` file."""


# Inversion results (lameg.inverse.results)
docdict["window_index_params_body"] = """
w : int
    0-based window index."""

# Conversions (lameg.io.mne and its laMEG-API re-export in lameg.util)
docdict["ctf_fif_conversion"] = """
mne_file : str or path-like
    The MNE ``.fif`` file (epochs if ``epoched``, else raw).
res4_file : str or path-like or None
    The original CTF recording (``.ds`` folder or the ``.res4`` inside it), whose sensor
    geometry, head position, compensation matrices and fiducials replace those of the
    ``.fif``. None: use the geometry stored in the ``.fif``.
output_path : str or path-like
    Output folder.
epoched : bool
    Whether ``mne_file`` holds epochs (True) or continuous data (False).
prefix : str
    Output name prefix.
spm_instance : object, optional
    Accepted for compatibility; not used (no MATLAB is needed)."""

# File search (lameg.util)
docdict["file_search"] = """
check : {'all', 'any'}
    Whether all or any of ``strings`` must occur.
depth : {'all', 'one'}
    Search recursively or only in ``target_path`` itself."""

docdict["inversion_modes"] = "\n".join(docdict[k].strip("\n") for k in (
    "patch_size", "n_temp_modes", "n_spatial_modes", "foi", "woi", "hann_windowing", "n_folds",
    "ideal_pc_test"))
docdict["inversion_tail"] = "\n".join(docdict[k].strip("\n") for k in (
    "inversion_idx", "viz", "return_mu_matrix", "spm_instance", "seed", "verbose", "backend"))
docdict["inversion_returns"] = docdict["free_energy_cv"] + """
mu_matrix : scipy.sparse.csc_matrix, shape (n_sources, n_channels)
    Only with ``return_mu_matrix=True``."""


def fill_doc(obj):
    """Substitute ``%(name)s`` entries of :data:`docdict` into ``obj.__doc__``.

    Parameters
    ----------
    obj : callable or class
        Object whose docstring holds ``%(name)s`` placeholders. Each entry is indented to the
        placeholder's column. For a class, the docstrings of the functions, properties,
        static and class methods it defines are filled as well.

    Returns
    -------
    obj
        The same object, with its docstring filled.
    """
    if isinstance(obj, type):
        for member in vars(obj).values():
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            elif isinstance(member, property):
                member = member.fget
            if callable(member) and "%(" in (getattr(member, "__doc__", None) or ""):
                fill_doc(member)
    doc = obj.__doc__
    if not doc:
        return obj
    lines = doc.splitlines()
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("%(") and stripped.rstrip().endswith(")s"):
            key = stripped.strip()[2:-2]
            try:
                entry = docdict[key]
            except KeyError:
                raise KeyError(f"docdict has no entry {key!r} (in {obj.__qualname__})") from None
            indent = line[: len(line) - len(stripped)]
            out.append(textwrap.indent(entry.strip("\n"), indent))
        else:
            out.append(line)
    obj.__doc__ = "\n".join(out)
    return obj
