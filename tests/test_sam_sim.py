"""Simulation helpers shared by the SAM tests (a helmet of point magnetometers around a sphere),
plus checks of the built-in single-sphere lead field against MNE-Python."""

from __future__ import annotations

import numpy as np
import pytest

from lameg.sam.forward import sphere_lead_field
from lameg.sam.io import SamData

ORIGIN = np.array([0.0, 0.0, 0.04])  # sphere centre, m


def helmet(n: int = 96, radius: float = 0.12, origin=ORIGIN):
    """Point magnetometers on the upper part of a sphere, radially oriented; (pos, ori) in m."""
    k = np.arange(3 * n)
    z = 1 - 2 * (k + 0.5) / (3 * n)
    keep = z > -0.2
    z, k = z[keep][:n], k[keep][:n]
    ga = np.pi * (3 - np.sqrt(5))
    r = np.sqrt(1 - z**2)
    ori = np.c_[r * np.cos(ga * k), r * np.sin(ga * k), z]
    return origin + radius * ori, ori


def simulate(
    src_pos,
    src_ori,
    *,
    n_chan: int = 96,
    n_trials: int = 30,
    fs: float = 250.0,
    tmin: float = -0.5,
    tmax: float = 1.0,
    freq: float = 20.0,
    amp: float = 20e-9,
    active=(0.0, 0.5),
    n_background: int = 30,
    noise_t: float = 10e-15,
    seed: int = 0,
    evoked: bool = False,
):
    """Epoched data with an oscillatory (or evoked) source active in ``active`` (s) after the event.

    Returns SamData (condition 'stim', events at t = 0) and the (n_chan, 3) lead field of the source.
    """
    rng = np.random.default_rng(seed)
    pos, ori = helmet(n_chan)
    time = np.arange(int(round(tmin * fs)), int(round(tmax * fs))) / fs
    src_pos = np.atleast_2d(src_pos)
    src_ori = np.atleast_2d(src_ori)
    Ls = np.einsum("mvk,vk->mv", sphere_lead_field(src_pos, pos, ori, None, ORIGIN), src_ori)
    bg = rng.normal(size=(n_background, 3))
    bg = ORIGIN + 0.07 * bg / np.linalg.norm(bg, axis=1)[:, None] * rng.uniform(0.3, 1, (n_background, 1))
    bg_ori = rng.normal(size=(n_background, 3))
    Lb = np.einsum("mvk,vk->mv", sphere_lead_field(bg, pos, ori, None, ORIGIN), bg_ori)
    win = (time >= active[0]) & (time < active[1])
    data = np.empty((n_chan, time.size, n_trials))
    for t in range(n_trials):
        if evoked:
            s = amp * np.sin(2 * np.pi * freq * time) * win
        else:
            s = amp * np.sin(2 * np.pi * freq * time + rng.uniform(0, 2 * np.pi)) * win
        s = np.tile(s, (src_pos.shape[0], 1))
        b = 5e-9 * rng.normal(size=(n_background, time.size))
        data[:, :, t] = Ls @ s + Lb @ b + noise_t * rng.normal(size=(n_chan, time.size))
    sd = SamData.from_arrays(data, fs, time, conditions=["stim"] * n_trials,
                             sensors={"coilpos": pos, "coilori": ori, "tra": np.eye(n_chan)})
    return sd, Ls


def point_magnetometer_info(pos: np.ndarray, ori: np.ndarray, sfreq: float = 250.0):
    """MNE ``Info`` of point magnetometers at ``pos`` (m) measuring along ``ori``, head = device."""
    import mne
    from mne.io.constants import FIFF

    info = mne.create_info([f"M{i:03d}" for i in range(len(pos))], sfreq, "mag")
    for i, ch in enumerate(info["chs"]):
        ez = ori[i]
        ex = np.cross(ez, [0.3, 1, 0.2])
        ex /= np.linalg.norm(ex)
        ch["loc"][:3], ch["loc"][3:6], ch["loc"][6:9], ch["loc"][9:12] = pos[i], ex, np.cross(ez, ex), ez
        ch["coil_type"] = FIFF.FIFFV_COIL_POINT_MAGNETOMETER
    info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
    return info


def test_sphere_lead_field_matches_mne():
    """Built-in Sarvas lead field = MNE's sphere-model forward for point magnetometers (1e-10)."""
    mne = pytest.importorskip("mne")

    mne.set_log_level("error")
    pos, ori = helmet(40)
    info = point_magnetometer_info(pos, ori)
    rng = np.random.default_rng(3)
    rr = ORIGIN + 0.05 * rng.uniform(-1, 1, (7, 3))
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=np.tile([0, 0, 1.0], (7, 1))))
    fwd = mne.make_forward_solution(info, None, src, mne.make_sphere_model(ORIGIN, None))
    G = fwd["sol"]["data"].reshape(40, 7, 3)
    L = sphere_lead_field(rr, pos, ori, None, ORIGIN)
    # both are the same closed-form expression: only rounding differs
    assert np.abs(L - G).max() <= 1e-10 * np.abs(G).max()
