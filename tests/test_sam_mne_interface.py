"""In-memory SAM weights from MNE objects (``lameg.sam.make_sam_beamformer``) against
``samsrc.mne.make_sam_beamformer`` (the SAMsrcV5 package's own MNE interface) and used through
``mne.beamformer.apply_lcmv_cov``."""

from __future__ import annotations

import numpy as np
import pytest

mne = pytest.importorskip("mne")
samsrc_mne = pytest.importorskip("samsrc.mne")

from lameg.sam import make_sam_beamformer  # noqa: E402
from lameg.sam.mne_interface import SAMNoise, estimate_sam_noise  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    from test_sam_sim import ORIGIN, helmet, point_magnetometer_info

    mne.set_log_level("error")
    pos, ori = helmet(60)
    info = point_magnetometer_info(pos, ori)
    rng = np.random.default_rng(0)
    rr = rng.normal(size=(25, 3))
    rr = ORIGIN + 0.07 * rr / np.linalg.norm(rr, axis=1)[:, None] * rng.uniform(0.3, 1, (25, 1))
    src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=np.tile([0, 0, 1.0], (25, 1))))
    fwd = mne.make_forward_solution(info, None, src, mne.make_sphere_model(ORIGIN, None))
    G = fwd["sol"]["data"]
    X = G[:, :6] * 1e-8 @ rng.normal(size=(6, 4000)) + 2e-14 * rng.normal(size=(60, 4000))
    C = X @ X.T / X.shape[1]
    Xo = G[:, 6:9] * 1e-8 @ rng.normal(size=(3, 4000)) + 2e-14 * rng.normal(size=(60, 4000))
    cov = mne.Covariance(C, info.ch_names, [], [], X.shape[1])
    ocov = mne.Covariance(Xo @ Xo.T / 4000, info.ch_names, [], [], 4000)
    return info, fwd, cov, ocov


@pytest.mark.parametrize("kw", [
    {},
    {"mu": 5.0, "mu_kind": "additive"},
    {"mu": 0.5, "mu_kind": "proportional", "normalize": True},
    {"n_nulls": 3},
])
def test_weights_equal_samsrc_mne(setup, kw):
    """Same weights (1e-8 relative, up to rounding of two exact closed forms), orientations and
    effective noise as samsrc.mne, with a separate orientation covariance."""
    info, fwd, cov, ocov = setup
    noise = estimate_sam_noise(cov, 40.0)
    onoise = estimate_sam_noise(ocov, 40.0)
    ref_noise = samsrc_mne.estimate_sam_noise(cov, 40.0)
    assert noise.variance == pytest.approx(ref_noise.variance, rel=1e-12)
    ours = make_sam_beamformer(info, fwd, cov, orient_cov=ocov, data_noise=noise,
                               orient_noise=onoise, **kw)
    ref = samsrc_mne.make_sam_beamformer(
        info, fwd, cov, orient_cov=ocov,
        data_noise=samsrc_mne.SAMNoise(noise.variance, 40.0),
        orient_noise=samsrc_mne.SAMNoise(onoise.variance, 40.0), **kw)
    W, R = ours["weights"], ref["weights"]
    s = np.sign(np.sum(W * R, 1))[:, None]
    assert np.abs(s * W - R).max() < 1e-8 * np.abs(R).max()
    np.testing.assert_allclose(np.abs(np.sum(ours["sam_orientations"] * ref["sam_orientations"],
                                             1)), 1, atol=1e-9)
    if ref["sam_effective_noise"] is not None:
        assert ours["sam_effective_noise"] == pytest.approx(ref["sam_effective_noise"], rel=1e-12)


def test_apply_lcmv_cov(setup):
    info, fwd, cov, _ = setup
    bf = make_sam_beamformer(info, fwd, cov)
    stc = mne.beamformer.apply_lcmv_cov(cov, bf)
    W = bf["weights"]
    np.testing.assert_allclose(stc.data[:, 0], np.einsum("vm,mn,vn->v", W, cov["data"], W),
                               rtol=1e-10)
    # unit gain: w . (L v) = 1 for the solved orientations
    L = fwd["sol"]["data"].reshape(60, -1, 3)
    B = np.einsum("mvk,vk->mv", L, bf["max_power_ori"])
    np.testing.assert_allclose(np.einsum("vm,mv->v", W, B), 1, rtol=1e-10)


def test_errors(setup):
    from lameg.exceptions import LamegValueError

    info, fwd, cov, _ = setup
    with pytest.raises(LamegValueError, match="data_noise is needed"):
        make_sam_beamformer(info, fwd, cov, mu=1.0)
    with pytest.raises(LamegValueError, match="mu_kind"):
        make_sam_beamformer(info, fwd, cov, mu_kind="x")
    with pytest.raises(LamegValueError, match="normalize=True needs"):
        make_sam_beamformer(info, fwd, cov, normalize=True)
    with pytest.raises(LamegValueError):
        SAMNoise(-1.0)
