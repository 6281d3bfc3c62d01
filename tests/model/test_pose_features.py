"""The encoders' 2D features (``model.pose.features``): a complete pose gets the same features whether its batch
takes the masking path (some pose misses a joint) or skips it (every joint given); the compiled rows give what the
joint formulas and the box normalisation give in numpy, for every layout."""

import numpy as np
import pytest

from model.pose.features import pose2d_features, pose2d_rows
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.joint_layouts import LAYOUTS
from model.pose.normalization import normalize_2d


def test_complete_poses_get_the_same_features_beside_an_incomplete_one():
    rng = np.random.default_rng(5)
    keypoints, confidence = rng.uniform(100, 900, (3, 17, 2)), rng.uniform(0.1, 1, (3, 17))
    alone = pose2d_features(keypoints[:2], confidence[:2])
    keypoints[2, 4] = np.nan
    confidence[2, 9] = 0.0
    beside = pose2d_features(keypoints, confidence)
    np.testing.assert_array_equal(beside[:2], alone)
    assert beside.dtype == np.float32 and alone.dtype == np.float32
    assert beside[2, 4].tolist() == [0, 0, 0] and beside[2, 9].tolist() == [0, 0, 0]
    seen = np.delete(np.arange(17), [4, 9])
    assert np.abs(beside[2, seen, :2]).max() == 1.0  # the box of the seen joints has half-side 1


def test_features_without_confidence_are_those_of_confidence_one():
    keypoints = np.random.default_rng(6).uniform(100, 900, (2, 17, 2))
    np.testing.assert_array_equal(pose2d_features(keypoints), pose2d_features(keypoints, np.ones((2, 17))))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compiled_rows_are_the_joint_formulas_and_the_box_normalisation(layout):
    rng = np.random.default_rng(7)
    size = LAYOUTS[layout].size
    keypoints, confidence = rng.uniform(100, 900, (40, size, 2)), rng.uniform(0.05, 1, (40, size))
    confidence[rng.random((40, size)) < 0.15] = 0.0  # unseen keypoints ...
    keypoints[confidence == 0] = np.nan  # ... as requests arrive: NaN where the confidence is 0
    keypoints[3, 1] = np.nan  # and a NaN position with a confidence
    joints, conf = layout_to_unihpr17(keypoints, layout, confidence)
    visible = (conf > 0) & np.isfinite(joints).all(axis=-1)
    rows = pose2d_rows(keypoints, confidence, layout)

    np.testing.assert_array_equal(rows.visible, visible.sum(axis=1))
    np.testing.assert_array_equal(np.isnan(rows.joints).any(axis=-1), ~visible)
    np.testing.assert_allclose(rows.joints[visible], joints[visible], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(rows.confidence, np.where(visible, conf, 0.0))
    lo = np.where(visible[..., None], joints, np.inf).min(axis=1)
    hi = np.where(visible[..., None], joints, -np.inf).max(axis=1)
    np.testing.assert_allclose(rows.extent, (hi - lo).max(axis=1), rtol=1e-12)
    normalised, _, _ = normalize_2d(np.nan_to_num(joints), visible)
    expected = np.concatenate([normalised, np.where(visible, conf, 0.0)[..., None]], axis=-1).astype(np.float32)
    np.testing.assert_array_equal(rows.features, expected)


def test_a_pose_without_visible_joints_has_no_box():
    rows = pose2d_rows(np.full((1, 17, 2), np.nan), np.zeros((1, 17)))
    assert rows.visible.tolist() == [0] and rows.extent.tolist() == [-np.inf]
    assert not rows.features.any()
