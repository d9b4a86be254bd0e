"""Back-end-neutral steps that the native and SPM back ends both take.

The façades in :mod:`lameg.invert` validate the public arguments; what is left here is the
interpretation both engines must agree on (which fiducial goes with which label, where a new
head model goes, how many layers the source mesh has), kept in one place so the back ends
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..exceptions import LamegValueError

#: laMEG's fiducial keys, in the order ``fid_labels`` names them.
FID_KEYS = ("nas", "lpa", "rpa")


def mri_fiducials(fid_coords: Mapping[str, Sequence[float]], fid_labels: Sequence[str]
                  ) -> dict[str, Sequence[float]]:
    """The MRI fiducials under the MEG file's labels.

    laMEG passes ``fid_coords`` keyed ``'nas'``, ``'lpa'``, ``'rpa'`` and the MEG file's labels
    in the same order in ``fid_labels``; a key equal to a label is taken as is.

    Parameters
    ----------
    fid_coords : dict of str to array-like, shape (3,)
        MRI fiducials, scanner RAS mm.
    fid_labels : sequence of str
        Fiducial labels of the MEG file, paired in order with ``'nas'``, ``'lpa'``, ``'rpa'``.

    Returns
    -------
    dict of str to array-like
        Coordinates of every label of ``fid_labels`` that ``fid_coords`` provides (a label with
        neither its own key nor a positional one is left out).
    """
    out = {}
    for i, lab in enumerate(fid_labels):
        if lab in fid_coords:
            out[lab] = fid_coords[lab]
        elif i < len(FID_KEYS) and FID_KEYS[i] in fid_coords:
            out[lab] = fid_coords[FID_KEYS[i]]
    return out


def head_model_index(inversion_idx: int, n_inv: int) -> int:
    """Check that a new head model can be written at ``inversion_idx``.

    Parameters
    ----------
    inversion_idx : int
        0-based head model index: an existing entry (replaced) or ``n_inv`` (appended).
    n_inv : int
        Number of entries in ``D.other.inv``.

    Returns
    -------
    int
        ``inversion_idx`` as an int.
    """
    k = int(inversion_idx)
    if k < 0 or k > n_inv:
        raise LamegValueError(
            f"inversion_idx={inversion_idx}: the file has {n_inv} head model(s); use an index "
            f"between 0 and {n_inv}")
    return k


def n_layers(surf_set, layer_name: str | None) -> int:
    """Number of layers of the source mesh an inversion runs on.

    Parameters
    ----------
    surf_set : lameg.surf.LayerSurfaceSet or None
        The surface set (None: a single-layer mesh).
    layer_name : str or None
        A single layer, or None for the multilayer mesh of all ``surf_set.n_layers`` layers.

    Returns
    -------
    int
        The layer count (>= 1).
    """
    if surf_set is None or layer_name is not None:
        return 1
    return int(surf_set.n_layers)
