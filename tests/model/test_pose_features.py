"""The encoders' 2D features (``model.pose.features``): a complete pose gets the same features whether its batch
takes the masking path (some pose misses a joint) or skips it (every joint given)."""

import numpy as np

from model.pose.features import pose2d_features


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
