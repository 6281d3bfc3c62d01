"""DeepMimic motion files (``{"Loop": ..., "Frames": [[duration, root pos, root quat, joint values...], ...]}``)
with their humanoid skeleton file (``humanoid3d.txt``) -> ``MotionClip``.

Forward kinematics as DeepMimic's ``KinTree.cpp``: child-to-parent = Translate(attach) . R(joint), with R a
quaternion (w, x, y, z; normalised, as DeepMimic does on load) for spherical joints and the root, a rotation about
local z for revolute joints, and none for fixed joints. Metres, Y up, the character faces +x, its left is -z.

Face: DeepMimic's ``neck`` joint sits at the base of the neck, at shoulder height. Its head is a sphere of
diameter 205 mm centred 175 mm above that joint, so the top of the head is about 277 mm above it. The shared face
offsets (``FACE_OFFSETS_MM``) are measured from the skull base; with the skull base ``NECK_TO_SKULL_BASE_MM``
above the neck joint, the head-top formula (``2 * mid_ears - thorax``) lands on that sphere's top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index_builder.errors import DataFileError
from index_builder.ingest.bvh import JointTransforms, axis_rotation, chain_transforms
from index_builder.ingest.config import UNIT_TO_MM, IngestConfig
from index_builder.ingest.mocap_skeletons import FACE_OFFSETS_MM, HeadFrame, MocapMapping, limb_joints, mocap_landmarks
from index_builder.ingest.motion_clip import MotionClip
from index_builder.ingest.rotations import quaternion_to_matrix
from index_builder.ingest.skeleton_files import require_finite, skeleton_for
from model.pose.joint_formulas import landmarks_to_h36m17

SKELETON_FILE = "humanoid3d.txt"
NECK_TO_SKULL_BASE_MM = 95.0
VALUES_PER_TYPE = {"none": 7, "spherical": 4, "revolute": 1, "fixed": 0}  # root: position 3 + quaternion 4
DURATION_COLUMN = 1  # column 0 is the frame's duration in seconds

DEEPMIMIC = MocapMapping(
    name="deepmimic",
    limbs=limb_joints("{side}_hip", "{side}_knee", "{side}_ankle", "{side}_shoulder", "{side}_elbow",
                      "{side}_wrist", left="left", right="right"),
    head="neck",
    head_frame=HeadFrame(up="+Y", forward="+X", left="-Z"),
    face_offsets_mm={k: (x, y + NECK_TO_SKULL_BASE_MM, z) for k, (x, y, z) in FACE_OFFSETS_MM.items()},
)


@dataclass(frozen=True)
class DeepMimicSkeleton:
    """names, parents (J,), types (``none``/``spherical``/``revolute``/``fixed``), attach (J, 3) m in the parent's
    frame, feet: joint name -> (3,) m, the foot body's centre in the ankle's frame."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    types: tuple[str, ...]
    attach: np.ndarray
    feet: dict[str, np.ndarray]

    @property
    def values_per_frame(self) -> int:
        return DURATION_COLUMN + sum(VALUES_PER_TYPE[t] for t in self.types)


def find_skeleton(motion: Path) -> Path | None:
    """``humanoid3d.txt`` in the motion's folder or an ancestor, or in a ``characters`` folder beside one."""
    for folder in motion.parents:
        for candidate in (folder / SKELETON_FILE, folder / "characters" / SKELETON_FILE):
            if candidate.is_file():
                return candidate
    return None


def load_skeleton(path: Path) -> DeepMimicSkeleton:
    try:
        data = json.loads(path.read_text())
        joints = sorted(data["Skeleton"]["Joints"], key=lambda j: j["ID"])
        bodies = {b["Name"]: b for b in data.get("BodyDefs", [])}
        names = tuple(j["Name"] for j in joints)
        types = tuple(j["Type"] for j in joints)
        parents = tuple(int(j["Parent"]) for j in joints)
        attach = np.array([[j["AttachX"], j["AttachY"], j["AttachZ"]] for j in joints], dtype=np.float64)
        feet = {n: np.array([bodies[n]["AttachX"], bodies[n]["AttachY"], bodies[n]["AttachZ"]], dtype=np.float64)
                for n in ("left_ankle", "right_ankle") if n in bodies}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataFileError(str(path), f"not a DeepMimic skeleton: {err}") from err
    unknown = set(types) - set(VALUES_PER_TYPE)
    if unknown or any(p >= i for i, p in enumerate(parents)):
        raise DataFileError(str(path), f"unsupported skeleton (joint types {sorted(unknown)} or parent order)")
    return DeepMimicSkeleton(names, parents, types, attach, feet)


def forward_kinematics(skeleton: DeepMimicSkeleton, frames: np.ndarray, scale: float) -> JointTransforms:
    """frames: (T, values_per_frame) float64; scale: m -> output unit. returns positions (T, J, 3) in that unit."""
    count = len(frames)
    translations = np.zeros((count, len(skeleton.names), 3))
    local = np.zeros((count, len(skeleton.names), 3, 3))
    column = DURATION_COLUMN
    for j, kind in enumerate(skeleton.types):
        values = frames[:, column : column + VALUES_PER_TYPE[kind]]
        column += VALUES_PER_TYPE[kind]
        if kind == "none":
            local[:, j], translations[:, j] = quaternion_to_matrix(values[:, 3:7]), values[:, 0:3] * scale
            continue
        if kind == "spherical":
            local[:, j] = quaternion_to_matrix(values)
        elif kind == "revolute":
            local[:, j] = axis_rotation("Z", np.degrees(values[:, 0]))
        else:
            local[:, j] = np.eye(3)
        translations[:, j] = skeleton.attach[j] * scale
    return chain_transforms(skeleton.parents, translations, local)


def read_deepmimic_clip(path: Path, config: IngestConfig) -> MotionClip:
    """One DeepMimic motion file; its skeleton is found with ``find_skeleton``."""
    skeleton = skeleton_for(path, find_skeleton, load_skeleton, "DeepMimic motion", SKELETON_FILE)
    try:
        frames = np.array(json.loads(path.read_text())["Frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataFileError(str(path), f"not a DeepMimic motion: {err}") from err
    if frames.size == 0:
        frames = frames.reshape(0, skeleton.values_per_frame)
    if frames.ndim != 2 or frames.shape[1] != skeleton.values_per_frame:
        raise DataFileError(str(path), f"frames of {frames.shape[1:] or '?'} values; the skeleton needs "
                                       f"{skeleton.values_per_frame}")
    require_finite(path, frames, "frames")
    scale = UNIT_TO_MM["m"]
    transforms = forward_kinematics(skeleton, frames, scale)
    toes = None
    if len(skeleton.feet) == 2:
        toes = np.stack([transforms.positions[:, skeleton.names.index(n)]
                         + transforms.rotations[:, skeleton.names.index(n)] @ (skeleton.feet[n] * scale)
                         for n in ("left_ankle", "right_ankle")], axis=1)
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])]) if len(frames) else np.zeros(0)
    return MotionClip(
        joints=landmarks_to_h36m17(mocap_landmarks(transforms, skeleton.names, DEEPMIMIC)),
        toes=toes, times_s=times, kind="deepmimic", unit="m", up="y", rigid=True,
    )
