"""Model comparison across layers: free energy and cross-validation of single-layer models."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..exceptions import LamegValueError


def _backend() -> dict:
    """The file-based co-registration and inversion functions (resolved at call time)."""
    from .. import invert as _inv

    return {"coregister": _inv.coregister, "invert_ebb": _inv.invert_ebb,
            "invert_msp": _inv.invert_msp,
            "invert_sliding_window_msp": _inv.invert_sliding_window_msp,
            "opm_headmodel": _inv.opm_headmodel}


def _forward_kwargs(forward_kwargs, coregister_kwargs) -> dict:
    out = dict(coregister_kwargs or {})
    out.update(forward_kwargs or {})
    return out


def _forward_per_layer(backend, device, fid_coords, data_fname, surf_set, layer_name, stage,
                       orientation, fixed, viz, spm_instance, fwd_kwargs):
    if device == "squid":
        backend["coregister"](fid_coords, data_fname, surf_set, layer_name=layer_name,
                              stage=stage, orientation=orientation, fixed=fixed, viz=viz,
                              spm_instance=spm_instance, **fwd_kwargs)
    elif device == "opm":
        backend["opm_headmodel"](data_fname, surf_set, layer_name=layer_name, stage=stage, orientation=orientation,
            fixed=fixed, viz=viz, spm_instance=spm_instance, **fwd_kwargs)
    else:
        raise LamegValueError(f"Unknown device {device!r}; expected 'squid' or 'opm'")


def _check_comparison(device, fid_coords, data_fname, surf_set, fwd_kwargs, inv_kwargs,
                      invert_name: str) -> None:
    """Everything a comparison needs, checked before the first head model is overwritten."""
    import inspect

    from .. import invert as _inv
    from .._validate import check_fid_coords, check_path, check_writable

    if device not in ("squid", "opm"):
        raise LamegValueError(f"Unknown device {device!r}; expected 'squid' or 'opm'")
    if device == "squid":
        check_fid_coords(fid_coords)
    elif "mri_fname" not in fwd_kwargs:
        raise LamegValueError("device='opm' requires forward_kwargs['mri_fname'] (the MRI whose "
                              "scalp carries the OPM array)")
    path = check_path(data_fname, "data_fname")
    check_writable(path, "dataset header")
    if not hasattr(surf_set, "get_layer_names"):
        raise LamegValueError("surf_set must be a lameg.surf.LayerSurfaceSet, got "
                              f"{type(surf_set).__name__}")
    for bad in ("layer_name", "stage", "orientation", "fixed", "inversion_idx"):
        if bad in inv_kwargs or bad in fwd_kwargs:
            raise LamegValueError(f"{bad!r} is set by the model comparison; remove it from the "
                                  "keyword dictionaries")
    forward_fn = _inv.coregister if device == "squid" else _inv.opm_headmodel
    for fn, kwargs, what in ((forward_fn, fwd_kwargs, "forward_kwargs"),
                             (getattr(_inv, invert_name), inv_kwargs, "invert_kwargs")):
        known = set(inspect.signature(fn).parameters)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise LamegValueError(f"{what} has unknown key(s) {unknown}; {fn.__name__} accepts "
                                  f"{sorted(known)}")


def model_comparison(
    fid_coords: Any,
    data_fname: str | os.PathLike,
    surf_set: Any,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    method: str = "EBB",
    device: str = "squid",
    viz: bool = True,
    spm_instance: Any = None,
    forward_kwargs: dict | None = None,
    invert_kwargs: dict | None = None,
    coregister_kwargs: dict | None = None,
) -> tuple[np.ndarray, list]:
    """Free-energy (and cross-validation) comparison of single-layer source models.

    For every layer of ``surf_set`` the dataset is coregistered to that layer's mesh (forward
    model at ``inversion_idx`` 0, overwritten each time as in laMEG; gain matrices and patch
    kernels are cached by content, so repeated comparisons reuse them) and inverted with EBB or
    MSP.

    Parameters
    ----------
    fid_coords : dict
        MRI fiducials (``{'nas': [x, y, z], 'lpa': ..., 'rpa': ...}``, scanner RAS mm).
    data_fname : str or path-like
        SPM dataset (its ``D.other.inv`` is rewritten).
    surf_set : LayerSurfaceSet
    stage, orientation, fixed
        Mesh selection (``surf_set.get_mesh_path``).
    method : {'EBB', 'MSP'}
    device : {'squid', 'opm'}
        ``'opm'`` uses ``lameg.invert.opm_headmodel`` (needs ``forward_kwargs['mri_fname']``).
    viz, spm_instance
        Passed on (laMEG compatibility).
    forward_kwargs : dict, optional
        Extra arguments of ``coregister`` (laMEG 0.2.1 name).
    invert_kwargs : dict, optional
        Extra arguments of ``invert_ebb`` / ``invert_msp``. ``n_spatial_modes`` defaults to
        ``'all'`` (laMEG's setting) and may be overridden here (laMEG raised ``TypeError``).
    coregister_kwargs : dict, optional
        laMEG 0.1.4 name of ``forward_kwargs`` (merged; ``forward_kwargs`` wins).

    Returns
    -------
    f_vals : ndarray, shape (n_layers,)
        Free energy of each layer model (higher is better), layer 0 = pial.
    cv_errs : list
        Cross-validation error of each layer model (lower is better; empty arrays without
        cross-validation).
    """
    if method not in ("EBB", "MSP"):
        raise LamegValueError(f"method must be 'EBB' or 'MSP', got {method!r}")
    backend = _backend()
    fwd_kwargs = _forward_kwargs(forward_kwargs, coregister_kwargs)
    inv_kwargs = dict(invert_kwargs or {})
    inv_kwargs.setdefault("n_spatial_modes", "all")
    _check_comparison(device, fid_coords, data_fname, surf_set, fwd_kwargs, inv_kwargs,
                      "invert_ebb" if method == "EBB" else "invert_msp")
    invert_fn = backend["invert_ebb"] if method == "EBB" else backend["invert_msp"]
    f_vals, cv_errs = [], []
    for layer_name in surf_set.get_layer_names():
        _forward_per_layer(backend, device, fid_coords, data_fname, surf_set, layer_name,
                           stage, orientation, fixed, viz, spm_instance, fwd_kwargs)
        out = invert_fn(data_fname, surf_set, layer_name=layer_name, stage=stage,
                        orientation=orientation, fixed=fixed, viz=viz,
                        spm_instance=spm_instance, **inv_kwargs)
        f_vals.append(float(np.asarray(out[0]).ravel()[0]) if np.size(out[0]) == 1
                      else np.asarray(out[0]))
        cv_errs.append(np.asarray(out[1]))
    return np.asarray(f_vals), cv_errs


def sliding_window_model_comparison(
    prior: int,
    fid_coords: Any,
    data_fname: str | os.PathLike,
    surf_set: Any,
    stage: str = "ds",
    orientation: str = "link_vector",
    fixed: bool = True,
    device: str = "squid",
    viz: bool = True,
    spm_instance: Any = None,
    forward_kwargs: dict | None = None,
    invert_kwargs: dict | None = None,
    coregister_kwargs: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window MSP free energy of each single-layer model.

    Parameters
    ----------
    prior : int
        0-based vertex (column) of the single MSP prior patch.
    fid_coords : dict
        As :func:`model_comparison`.
    data_fname : str or path-like
        As :func:`model_comparison`.
    surf_set : LayerSurfaceSet
        As :func:`model_comparison`.
    stage : str
        As :func:`model_comparison`.
    orientation : str
        As :func:`model_comparison`.
    fixed : bool
        As :func:`model_comparison`.
    device : {'squid', 'opm'}
        As :func:`model_comparison`.
    viz : bool
        As :func:`model_comparison`.
    spm_instance : object, optional
        As :func:`model_comparison`.
    forward_kwargs : dict, optional
        As :func:`model_comparison`.
    coregister_kwargs : dict, optional
        As :func:`model_comparison`.
    invert_kwargs : dict, optional
        Extra arguments of ``invert_sliding_window_msp`` (``patch_size``, ``n_temp_modes``,
        ``win_size``, ``win_overlap``, ``wois``, ``foi``, ``hann_windowing``...);
        ``n_spatial_modes`` defaults to ``'all'``.

    Returns
    -------
    f_vals : ndarray, shape (n_layers, n_windows)
    wois : ndarray, shape (n_windows, 2)
        Windows, ms.
    """
    from .._validate import check_int

    prior = check_int(prior, "prior (0-based vertex)", min_value=0)
    backend = _backend()
    fwd_kwargs = _forward_kwargs(forward_kwargs, coregister_kwargs)
    inv_kwargs = dict(invert_kwargs or {})
    inv_kwargs.setdefault("n_spatial_modes", "all")
    _check_comparison(device, fid_coords, data_fname, surf_set, fwd_kwargs, inv_kwargs,
                      "invert_sliding_window_msp")
    f_vals, wois = [], None
    for layer_name in surf_set.get_layer_names():
        _forward_per_layer(backend, device, fid_coords, data_fname, surf_set, layer_name,
                           stage, orientation, fixed, viz, spm_instance, fwd_kwargs)
        f, w = backend["invert_sliding_window_msp"](
            prior, data_fname, surf_set, layer_name=layer_name, stage=stage,
            orientation=orientation, fixed=fixed, viz=viz, spm_instance=spm_instance,
            **inv_kwargs)
        f_vals.append(np.atleast_1d(np.asarray(f, dtype=float)))
        wois = np.asarray(w)
    return np.stack(f_vals, axis=0), wois
