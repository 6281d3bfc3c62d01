"""The registry of keypoint layouts: every source layout's landmarks where the published layouts put them."""

import numpy as np

from model.pose.joint_formulas import landmarks_to_h36m17, layout_to_unihpr17
from model.pose.joint_layouts import LAYOUTS, REQUEST_LAYOUTS_2D, REQUEST_LAYOUTS_3D


def test_landmark_indices_of_the_published_layouts():
    # COCO: 0 nose, 3-4 ears, 5-16 limbs; BlazePose: 0 nose, 7-8 ears, 11-16 arms, 23-28 legs
    assert LAYOUTS["coco17"].landmark_index == (0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
    assert LAYOUTS["blazepose33"].landmark_index == (0, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
    assert LAYOUTS["crowdpose14"].landmark_index == (None, None, None, *range(12))
    assert LAYOUTS["mpii16"].landmark_index == (None, None, None, 13, 12, 14, 11, 15, 10, 3, 2, 4, 1, 5, 0)
    assert [LAYOUTS[n].size for n in ("coco17", "blazepose33", "crowdpose14", "mpii16", "h36m17", "unihpr17")] == \
        [17, 33, 14, 16, 17, 17]


def test_a_layout_without_a_landmark_leaves_the_joints_that_need_it_missing():
    rng = np.random.default_rng(0)
    mpii = rng.uniform(0, 100, (16, 2))
    joints, confidence = layout_to_unihpr17(mpii, "mpii16", np.ones(16))
    landmarks = np.full((15, 2), np.nan)
    for k, index in enumerate(LAYOUTS["mpii16"].landmark_index):
        if index is not None:
            landmarks[k] = mpii[index]
    expected, expected_confidence = landmarks_to_h36m17(landmarks, np.isfinite(landmarks[:, 0]).astype(float))
    np.testing.assert_array_equal(joints, expected)
    np.testing.assert_array_equal(confidence, expected_confidence)
    assert np.isnan(joints[[9, 10]]).all() and np.isfinite(np.delete(joints, [9, 10], axis=0)).all()


def test_the_service_accepts_registered_layouts_only():
    assert set(REQUEST_LAYOUTS_2D) <= set(LAYOUTS) and set(REQUEST_LAYOUTS_3D) <= set(REQUEST_LAYOUTS_2D)
