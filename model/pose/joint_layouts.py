"""Every keypoint layout a source or a request may use, in one registry (SPEC section 3).

A layout is the names of its keypoints in array order (left = the person's left) and, for the layouts the shared
joint formulas read (``model.pose.joint_formulas``), where each of the 15 shared ``LANDMARKS`` sits in it. The two
17-joint conventions, ``h36m17`` (the field's) and ``unihpr17`` (ours), share the H36M joint order and are converted
into each other by ``model.pose.joint_conventions``, not through landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.pose.joint_conventions import FIELD, OURS
from model.pose.skeleton import H36M17

# The points every source is first reduced to (nose, ears, shoulders, elbows, wrists, hips, knees, ankles).
LANDMARKS = (
    "nose", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip",
    "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
NUM_LANDMARKS = len(LANDMARKS)


@dataclass(frozen=True)
class KeypointLayout:
    """keypoints: names in array order. landmark_index: for each of ``LANDMARKS``, its index in this layout (None
    where the layout lacks it); None for the two 17-joint conventions."""

    name: str
    keypoints: tuple[str, ...]
    landmark_index: tuple[int | None, ...] | None = None

    @property
    def size(self) -> int:
        return len(self.keypoints)


def _short_name(name: str) -> str:
    return name.replace("left_", "l_").replace("right_", "r_")


def _landmark_layout(name: str, keypoints: tuple[str, ...]) -> KeypointLayout:
    """A layout whose landmarks are found by name (``left_knee`` and ``l_knee`` both name ``l_knee``)."""
    position = {_short_name(k): i for i, k in enumerate(keypoints)}
    return KeypointLayout(name, keypoints, tuple(position.get(landmark) for landmark in LANDMARKS))


LAYOUTS: dict[str, KeypointLayout] = {layout.name: layout for layout in (
    KeypointLayout(FIELD, H36M17.names),
    KeypointLayout(OURS, H36M17.names),
    _landmark_layout("coco17", (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
        "left_ankle", "right_ankle",
    )),
    _landmark_layout("blazepose33", (
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
        "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
        "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    )),
    _landmark_layout("crowdpose14", (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    )),
    _landmark_layout("mpii16", (
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck", "head_top",
        "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
    )),
)}

# What the service accepts: 2D in any of these, 3D in the two conventions.
REQUEST_LAYOUTS_2D = (FIELD, OURS, "coco17", "blazepose33")
REQUEST_LAYOUTS_3D = (FIELD, OURS)
