"""Optional single-layer boundary-element MEG model through MNE-Python.

MNE's linear-collocation BEM with one homogeneous compartment bounded by the inner skull is the
standard reference for realistic MEG forward models. :class:`BEMModel` wraps it behind the same
``coil_leadfield`` interface as the native models: every coil (integration point) is given to MNE
as a point magnetometer, so any :class:`~lameg.forward.sensors.SensorArray` (CTF, Neuromag, OPM)
works unchanged. Requires ``mne`` (``pip install lameg[mne]``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._utils import hash_arrays
from ..exceptions import LamegDataError, LamegValueError
from ..mesh.normals import signed_volume
from .conductor import ConductorModel

__all__ = ["BEMModel"]


def _require_mne():
    try:
        import mne
    except ImportError as err:  # pragma: no cover - exercised only without mne
        raise LamegValueError(
            "the BEM forward model needs MNE-Python; install it with `pip install mne`"
        ) from err
    return mne


@dataclass
class BEMModel(ConductorModel):
    """Single-compartment BEM (MNE) on an inner-skull mesh in the MEG head frame.

    Coil lead fields come from MNE's BEM with every coil a point magnetometer. Dipoles outside
    the inner skull are not supported by the BEM and raise an error.

    Parameters
    ----------
    bnd_pos : ndarray, shape (n_vertices, 3)
        Inner-skull vertices, m, head frame.
    bnd_tri : ndarray, shape (n_faces, 3)
        0-based triangles (either winding; MNE needs outward normals and the mesh is reoriented
        when needed).
    conductivity : float
        S/m (irrelevant for MEG with one compartment, kept for completeness).
    """

    bnd_pos: np.ndarray
    bnd_tri: np.ndarray
    conductivity: float = 0.3
    kind: str = field(default="MNE single-layer BEM", init=False)
    #: MNE sets up the coil/boundary coupling per call: give it all sources at once, one thread
    preferred_block: int = field(default=50000, init=False, repr=False)
    thread_safe: bool = field(default=False, init=False, repr=False)
    _solution: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.bnd_pos = np.asarray(self.bnd_pos, dtype=float)
        self.bnd_tri = np.asarray(self.bnd_tri, dtype=np.int64)
        if len(self.bnd_pos) > 6000:
            raise LamegDataError(
                f"the inner skull has {len(self.bnd_pos)} vertices; a single-layer BEM of this "
                "size needs a dense system matrix of several GB. Decimate it (ico-4, ~2562 "
                "vertices, is standard)"
            )

    def _cache_text(self) -> str:  # boundary mesh and conductivity
        return "bem1:" + hash_arrays(self.bnd_pos, self.bnd_tri, extra=str(self.conductivity))

    def _bem(self):
        if self._solution is not None:
            return self._solution
        mne = _require_mne()
        tri = self.bnd_tri
        # outward orientation (positive enclosed volume), as MNE expects
        v = self.bnd_pos
        if signed_volume(v, tri, origin=np.zeros(3)) < 0:
            tri = tri[:, [0, 2, 1]]
        with tempfile.TemporaryDirectory() as tmp:
            bem_dir = Path(tmp) / "lameg_bem" / "bem"
            bem_dir.mkdir(parents=True)
            mne.write_surface(bem_dir / "inner_skull.surf", v * 1e3, tri, overwrite=True)
            model = mne.make_bem_model("lameg_bem", ico=None, conductivity=(self.conductivity,),
                                       subjects_dir=tmp, verbose=False)
        self._solution = mne.make_bem_solution(model, verbose=False)
        return self._solution

    def _coil_leadfield(self, dip_pos: np.ndarray, sensors) -> np.ndarray:
        mne = _require_mne()
        from mne.io.constants import FIFF

        pos = np.atleast_2d(np.asarray(dip_pos, dtype=float))
        n_coil = sensors.n_coils
        info = mne.create_info([f"C{i:05d}" for i in range(n_coil)], 1000.0, "mag")
        for i, ch in enumerate(info["chs"]):
            ez = sensors.coilori[i]
            ex = np.cross(ez, [1.0, 0, 0] if abs(ez[0]) < 0.9 else [0, 1.0, 0])
            ex /= np.linalg.norm(ex)
            ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
            ch["loc"][:] = np.r_[sensors.coilpos[i], ex, np.cross(ez, ex), ez]
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
        src = mne.setup_volume_source_space(
            pos={"rr": pos, "nn": np.tile([0.0, 0.0, 1.0], (len(pos), 1))}, verbose=False
        )
        fwd = mne.make_forward_solution(info, trans=None, src=src, bem=self._bem(), meg=True,
                                        eeg=False, mindist=0.0, n_jobs=1, verbose=False)
        used = fwd["src"][0]["vertno"]
        if len(used) != len(pos):
            raise LamegDataError(
                f"{len(pos) - len(used)} sources lie outside the inner skull; the BEM cannot "
                "compute their fields"
            )
        sol = fwd["sol"]["data"]  # (n_coil, 3 * n_dip)
        return np.ascontiguousarray(sol.reshape(n_coil, len(pos), 3).transpose(1, 2, 0))
