"""The shared joint formulas and the source layouts."""

import numpy as np
import pytest

from model.pose.joint_formulas import (
    FORMULA_WEIGHTS,
    landmarks_to_h36m17,
    layout_to_unihpr17,
)
from model.pose.joint_layouts import LANDMARKS, LAYOUTS
from model.pose.skeleton import H36M17


def test_every_formula_is_an_affine_combination():
    # Rows summing to one make the formulas commute with translation, and (to first order) with projection.
    np.testing.assert_allclose(FORMULA_WEIGHTS.sum(axis=1), 1.0)


def coco_person() -> np.ndarray:
    kp = np.zeros((17, 2))
    kp[0] = [50, 10]  # nose
    kp[3], kp[4] = [60, 12], [40, 12]  # ears
    kp[5], kp[6] = [70, 40], [30, 40]  # shoulders
    kp[7], kp[8] = [75, 70], [25, 70]
    kp[9], kp[10] = [78, 95], [22, 95]
    kp[11], kp[12] = [60, 100], [40, 100]  # hips
    kp[13], kp[14] = [61, 150], [39, 150]
    kp[15], kp[16] = [62, 200], [38, 200]
    return kp


def test_coco17_gives_the_documented_joints():
    kp = coco_person()
    joints = layout_to_unihpr17(kp, "coco17")
    j = H36M17.index
    np.testing.assert_allclose(joints[j("pelvis")], [50, 100])
    np.testing.assert_allclose(joints[j("thorax")], [50, 40])
    np.testing.assert_allclose(joints[j("spine")], [50, 70])
    np.testing.assert_allclose(joints[j("neck_nose")], [50, 10])
    np.testing.assert_allclose(joints[j("head_top")], [50, 2 * 12 - 40])  # 2 * mid_ears - thorax
    np.testing.assert_allclose(joints[j("l_wrist")], kp[9])
    np.testing.assert_allclose(joints[j("r_ankle")], kp[16])


def test_blazepose33_and_coco17_agree_on_the_same_landmarks():
    coco = coco_person()
    blaze = np.full((33, 2), 999.0)  # joints the formulas do not use must not matter
    for landmark, (ci, bi) in enumerate(zip(LAYOUTS["coco17"].landmark_index, LAYOUTS["blazepose33"].landmark_index)):
        blaze[bi] = coco[ci]
    np.testing.assert_allclose(layout_to_unihpr17(blaze, "blazepose33"), layout_to_unihpr17(coco, "coco17"))


def test_a_missing_landmark_removes_exactly_the_joints_that_use_it():
    kp = coco_person()
    conf = np.ones(17)
    conf[3] = 0.0  # l_ear unlabelled
    kp[3] = np.nan
    joints, joint_conf = layout_to_unihpr17(kp, "coco17", conf)
    missing = {H36M17.names[i] for i in np.nonzero(joint_conf == 0)[0]}
    assert missing == {"head_top"}
    assert np.isnan(joints[H36M17.index("head_top")]).all()
    assert np.isfinite(np.delete(joints, H36M17.index("head_top"), axis=0)).all()


def test_joint_confidence_is_the_weakest_landmark_used():
    lm = np.zeros((len(LANDMARKS), 3))
    conf = np.ones(len(LANDMARKS))
    conf[LANDMARKS.index("r_hip")] = 0.3
    _, joint_conf = landmarks_to_h36m17(lm, conf)
    j = H36M17.index
    assert joint_conf[j("pelvis")] == pytest.approx(0.3)
    assert joint_conf[j("spine")] == pytest.approx(0.3)
    assert joint_conf[j("l_hip")] == pytest.approx(1.0)


def test_unknown_layout_is_named():
    with pytest.raises(KeyError, match="unknown layout 'openpose25'"):
        layout_to_unihpr17(np.zeros((25, 2)), "openpose25")


def test_mirror_permutation_swaps_sides_and_is_an_involution():
    perm = H36M17.mirror_permutation()
    assert H36M17.names[perm[H36M17.index("l_wrist")]] == "r_wrist"
    np.testing.assert_array_equal(perm[perm], np.arange(17))
    assert len(H36M17.bones) == 16
