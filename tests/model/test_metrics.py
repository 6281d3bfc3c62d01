"""Pose metrics and Procrustes alignment: known values and the invariances each one promises."""

import numpy as np
import pytest

from model.pose.metrics import mpjpe, n_mpjpe, np_mpjpe, pa_mpjpe, pck_2d, procrustes_align, unit_rms_scale
from model.pose.normalization import denormalize_2d, normalize_2d


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.fixture
def poses(sample_db):
    return sample_db.poses[::1000].astype(np.float64)


def test_mpjpe_known_value():
    target = np.zeros((1, 2, 3))
    predicted = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert mpjpe(predicted, target)[0] == pytest.approx(3.0)


def test_pa_mpjpe_removes_rotation_scale_and_translation(poses):
    rng = np.random.default_rng(0)
    moved = np.stack([1.3 * p @ random_rotation(rng).T + rng.normal(size=3) * 100 for p in poses])
    assert mpjpe(moved, poses).min() > 10
    np.testing.assert_allclose(pa_mpjpe(moved, poses), 0.0, atol=1e-6)


def test_procrustes_never_reflects(poses):
    mirrored = poses * np.array([-1.0, 1.0, 1.0])
    aligned = procrustes_align(mirrored, poses)
    rotation_only = procrustes_align(mirrored, poses, scale=False)
    assert pa_mpjpe(mirrored, poses).min() > 1.0  # a mirror image is not a rotation of the pose
    assert np.isfinite(aligned).all() and np.isfinite(rotation_only).all()


def test_n_mpjpe_removes_scale_only(poses):
    centred = poses - poses[:, :1]
    np.testing.assert_allclose(n_mpjpe(0.7 * centred, centred), 0.0, atol=1e-9)
    shifted = centred + 50.0
    assert n_mpjpe(shifted, centred).min() > 1.0


def test_np_mpjpe_is_scale_and_rotation_free_and_unitless(poses):
    rng = np.random.default_rng(1)
    moved = np.stack([2.0 * p @ random_rotation(rng).T for p in poses])
    np.testing.assert_allclose(np_mpjpe(moved, poses), 0.0, atol=1e-9)
    rms = np.sqrt((unit_rms_scale(poses) ** 2).sum(-1).mean(-1))
    np.testing.assert_allclose(rms, 1.0)
    other = np.roll(poses, 1, axis=0)
    assert (np_mpjpe(other, poses) < 1.0).all()


def test_pck_counts_visible_joints_within_threshold():
    target = np.zeros((1, 4, 2))
    predicted = np.array([[[1.0, 0.0], [3.0, 0.0], [0.5, 0.0], [100.0, 0.0]]])
    visible = np.array([[True, True, True, False]])
    assert pck_2d(predicted, target, visible, np.array([2.0])) == pytest.approx(2 / 3)


def test_normalize_2d_maps_the_box_to_unit_half_side_and_back():
    rng = np.random.default_rng(2)
    kp = rng.uniform(100, 900, size=(5, 17, 2))
    visible = rng.random((5, 17)) > 0.2
    norm, centre, scale = normalize_2d(kp, visible)
    v = norm[visible]
    assert np.abs(v).max() == pytest.approx(1.0, abs=1e-6)
    assert (norm[~visible] == 0).all()
    back = denormalize_2d(norm.astype(np.float64), centre, scale)
    np.testing.assert_allclose(back[visible], kp[visible], atol=1e-3)
