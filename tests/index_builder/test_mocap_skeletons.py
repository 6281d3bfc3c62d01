"""Mocap skeleton -> shared landmarks -> h36m17, on a CMU-style file written here with known joint positions."""

import numpy as np
import pytest

from index_builder.ingest.bvh import parse_bvh
from index_builder.ingest.mocap_skeletons import BANDAI, CMU, FACE_OFFSETS_MM, clip_to_h36m17, detect_mapping
from model.pose.skeleton import H36M17
from model.pose.units import MM_PER_CM

# name, parent, offset (cm); a T-pose with identity joint frames, Y up, facing +Z, the character's left at +X.
CMU_JOINTS = [
    ("Hips", None, (0, 90, 0)),
    ("LeftUpLeg", "Hips", (9, -5, 0)), ("LeftLeg", "LeftUpLeg", (0, -40, 0)), ("LeftFoot", "LeftLeg", (0, -40, 0)),
    ("RightUpLeg", "Hips", (-9, -5, 0)), ("RightLeg", "RightUpLeg", (0, -40, 0)),
    ("RightFoot", "RightLeg", (0, -40, 0)),
    ("Spine", "Hips", (0, 20, 0)), ("Neck", "Spine", (0, 30, 0)), ("Head", "Neck", (0, 10, 0)),
    ("LeftArm", "Spine", (18, 25, 0)), ("LeftForeArm", "LeftArm", (28, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightArm", "Spine", (-18, 25, 0)), ("RightForeArm", "RightArm", (-28, 0, 0)),
    ("RightHand", "RightForeArm", (-25, 0, 0)),
]


def cmu_bvh(head_yaw_deg: float = 0.0) -> str:
    children = {name: [c for c, p, _ in CMU_JOINTS if p == name] for name, _, _ in CMU_JOINTS}
    offsets = {name: off for name, _, off in CMU_JOINTS}
    order = []

    def block(name: str, depth: int, root: bool) -> str:
        order.append(name)
        pad = "  " * depth
        rotations = "Zrotation Xrotation Yrotation"
        channels = f"6 Xposition Yposition Zposition {rotations}" if root else f"3 {rotations}"
        inner = "".join(block(c, depth + 1, False) for c in children[name]) or (
            f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET 0 5 0\n{pad}  }}\n"
        )
        kind = "ROOT" if root else "JOINT"
        off = " ".join(str(v) for v in offsets[name])
        return f"{pad}{kind} {name}\n{pad}{{\n{pad}  OFFSET {off}\n{pad}  CHANNELS {channels}\n{inner}{pad}}}\n"

    hierarchy = block("Hips", 0, True)
    values = []
    for name in order:
        if name == "Hips":
            values += [0, 90, 0, 0, 0, 0]
        elif name == "Head":
            values += [0, 0, head_yaw_deg]  # Z X Y: yaw about the vertical axis
        else:
            values += [0, 0, 0]
    motion = " ".join(str(v) for v in values)
    return f"HIERARCHY\n{hierarchy}MOTION\nFrames: 1\nFrame Time: 0.0333333\n{motion}\n"


def test_cmu_skeleton_maps_to_known_h36m17_positions():
    clip = parse_bvh(cmu_bvh(), "cmu.bvh")
    assert detect_mapping(clip) is CMU
    joints = clip_to_h36m17(clip, MM_PER_CM)[0]
    j = H36M17.index
    np.testing.assert_allclose(joints[j("l_hip")], [90, 850, 0], atol=1e-3)
    np.testing.assert_allclose(joints[j("r_ankle")], [-90, 50, 0], atol=1e-3)
    np.testing.assert_allclose(joints[j("pelvis")], [0, 850, 0], atol=1e-3)
    np.testing.assert_allclose(joints[j("l_wrist")], [180 + 280 + 250, 1350, 0], atol=1e-3)
    np.testing.assert_allclose(joints[j("thorax")], [0, 1350, 0], atol=1e-3)
    np.testing.assert_allclose(joints[j("spine")], [0, 1100, 0], atol=1e-3)
    head = np.array([0.0, 1500.0, 0.0])
    left, up, forward = FACE_OFFSETS_MM["nose"]
    np.testing.assert_allclose(joints[j("neck_nose")], head + [left, up, forward], atol=1e-3)
    ears = head + [0.0, FACE_OFFSETS_MM["l_ear"][1], FACE_OFFSETS_MM["l_ear"][2]]
    np.testing.assert_allclose(joints[j("head_top")], 2 * ears - joints[j("thorax")], atol=1e-3)


def test_face_follows_the_head_joint_rotation():
    # Turning the head 90 degrees to the character's left (about +Y) moves the nose from +Z to +X.
    joints = clip_to_h36m17(parse_bvh(cmu_bvh(head_yaw_deg=90.0), "cmu.bvh"), MM_PER_CM)[0]
    nose = joints[H36M17.index("neck_nose")]
    assert nose[0] == pytest.approx(FACE_OFFSETS_MM["nose"][2], abs=1e-3)
    assert nose[2] == pytest.approx(0.0, abs=1e-3)


def test_unknown_skeleton_is_named():
    text = cmu_bvh().replace("LeftUpLeg", "Thigh_L")
    with pytest.raises(KeyError, match="matches no known mapping"):
        detect_mapping(parse_bvh(text, "odd.bvh"))


def test_head_frame_bases_are_proper_rotations():
    for mapping in (BANDAI, CMU):
        basis = mapping.head_frame.basis()
        np.testing.assert_allclose(basis.T @ basis, np.eye(3))
        # (left, up, forward) must be right-handed in a Y-up, Z-forward world where +X is the left.
        assert np.linalg.det(basis) == pytest.approx(1.0)
