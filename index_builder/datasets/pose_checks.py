"""Sanity checks of a motion database that a person would otherwise do by eye (SPEC section 4).

- Rigid bones: h36m17 bones that map onto one rigid segment of the mocap skeleton keep their length.
- Flexible links: bones through the clavicle, the spine or the neck bend; their length range is reported.
- Standing frames measure like an adult: ankle to head top, pelvis below head top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index_builder.datasets.motion_database import MotionDatabase
from model.pose.skeleton import H36M17

# Bones whose two ends lie on one rigid mocap segment (thigh, shin, upper arm, forearm) or on one rigid pair of
# segments (the hips hang off the same pelvis joint).
RIGID_BONES = tuple(
    (H36M17.index(a), H36M17.index(b))
    for a, b in [
        ("pelvis", "r_hip"), ("pelvis", "l_hip"),
        ("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
        ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
    ]
)
FLEXIBLE_BONES = tuple(b for b in H36M17.bones if b not in RIGID_BONES)

STANDING_KNEE_DEG = 165.0  # hip-knee-ankle angle above which a leg counts as straight
STANDING_TRUNK_DEG = 15.0  # pelvis -> thorax at most this far from vertical
STANDING_FEET_MM = 150.0  # both ankles within this height of each other
STANDING_HEAD_DEG = 20.0  # thorax -> head top at most this far from vertical (a bowed head is not standing tall)


def bone_name(bone: tuple[int, int]) -> str:
    return f"{H36M17.names[bone[0]]}-{H36M17.names[bone[1]]}"


@dataclass(frozen=True)
class BoneRange:
    """Length statistics of one bone over the database, mm: the mean length and the largest within-clip range."""

    name: str
    rigid: bool
    mean_mm: float
    min_mm: float
    max_mm: float
    worst_clip_range_mm: float
    worst_clip: str


def bone_ranges(db: MotionDatabase) -> list[BoneRange]:
    """Per bone: the mean length and the largest (max - min) length within any clip."""
    out = []
    starts = db.clips.start
    for bone in H36M17.bones:
        length = np.linalg.norm(db.poses[:, bone[1]] - db.poses[:, bone[0]], axis=-1)
        ranges = np.maximum.reduceat(length, starts) - np.minimum.reduceat(length, starts)
        worst = int(np.argmax(ranges))
        out.append(
            BoneRange(
                name=bone_name(bone),
                rigid=bone in RIGID_BONES,
                mean_mm=float(length.mean()),
                min_mm=float(length.min()),
                max_mm=float(length.max()),
                worst_clip_range_mm=float(ranges[worst]),
                worst_clip=str(db.clips.name[worst]),
            )
        )
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors, degrees: a, b (..., 3) -> (...)."""
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def standing_mask(poses: np.ndarray, up_axis: int = 1) -> np.ndarray:
    """Frames where a person stands upright: both legs straight, trunk and head vertical, feet level.

    poses: (N, 17, 3) mm, world frame with ``up_axis`` up. returns: (N,) bool.
    """
    j = H36M17.index
    up = np.zeros(3)
    up[up_axis] = 1.0
    straight = np.ones(len(poses), dtype=bool)
    for side in ("l", "r"):
        hip, knee, ankle = poses[:, j(f"{side}_hip")], poses[:, j(f"{side}_knee")], poses[:, j(f"{side}_ankle")]
        straight &= angle_deg(hip - knee, ankle - knee) > STANDING_KNEE_DEG
    trunk_upright = angle_deg(poses[:, j("thorax")] - poses[:, j("pelvis")], up) < STANDING_TRUNK_DEG
    head_upright = angle_deg(poses[:, j("head_top")] - poses[:, j("thorax")], up) < STANDING_HEAD_DEG
    feet_level = np.abs(poses[:, j("l_ankle"), up_axis] - poses[:, j("r_ankle"), up_axis]) < STANDING_FEET_MM
    return straight & trunk_upright & head_upright & feet_level


def standing_heights(poses: np.ndarray, up_axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """For every pose: (ankle to head top, pelvis below head top), both (N,) mm along the up axis."""
    j = H36M17.index
    top = poses[:, j("head_top"), up_axis]
    ankle = np.minimum(poses[:, j("l_ankle"), up_axis], poses[:, j("r_ankle"), up_axis])
    return top - ankle, top - poses[:, j("pelvis"), up_axis]


def check_report(db: MotionDatabase) -> dict:
    """A JSON-ready summary of every check, written beside the cache and printed by ``unihpr-build cache``."""
    stand = standing_mask(db.poses)
    height, pelvis_drop = standing_heights(db.poses[stand])
    return {
        "clips": len(db.clips),
        "frames": len(db),
        "bones": [vars(b) for b in bone_ranges(db)],
        "standing_frames": int(stand.sum()),
        "standing_height_mm": {"min": float(height.min()), "median": float(np.median(height)),
                               "max": float(height.max())},
        "standing_pelvis_below_head_top_mm": {"min": float(pelvis_drop.min()),
                                              "median": float(np.median(pelvis_drop)),
                                              "max": float(pelvis_drop.max())},
    }
