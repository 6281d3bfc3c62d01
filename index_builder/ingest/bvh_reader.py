"""BVH files of any recognised rig -> ``MotionClip``.

Parsing and forward kinematics are ``index_builder.ingest.bvh``; the rig family (``rigs``) says which joints are the
landmarks; the unit comes from ``--units`` or the leg length (``units``), measured by a forward kinematics pass
over the first frame at scale 1.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from index_builder.errors import ClipCheckError
from index_builder.ingest.bvh import BvhClip, JointTransforms, forward_kinematics, read_bvh
from index_builder.ingest.config import UNIT_TO_MM, IngestConfig
from index_builder.ingest.mocap_skeletons import mocap_landmarks
from index_builder.ingest.motion_clip import MotionClip
from index_builder.ingest.rigs import RigFamily, recognise_rig
from index_builder.ingest.units import detect_unit, leg_length
from model.pose.joint_formulas import landmarks_to_h36m17


def _joints(transforms: JointTransforms, names: tuple[str, ...], family: RigFamily) -> np.ndarray:
    """(T, 17, 3) float64 in the transforms' units (face landmarks are placed in mm)."""
    return landmarks_to_h36m17(mocap_landmarks(transforms, names, family.mapping))


def _toe_points(clip: BvhClip, transforms: JointTransforms, names: tuple[str, ...], family: RigFamily,
                scale: float) -> np.ndarray | None:
    """(T, 2, 3) mm: the family's toe joints, else each ankle's end site, else its first child joint."""
    points = []
    for side in "lr":
        if family.toes is not None:
            points.append(transforms.positions[:, names.index(family.toes["lr".index(side)])])
            continue
        ankle = names.index(family.mapping.limbs[f"{side}_ankle"])
        if ankle in clip.skeleton.end_sites:
            local = clip.skeleton.end_sites[ankle] * scale
            points.append(transforms.positions[:, ankle] + transforms.rotations[:, ankle] @ local)
            continue
        children = np.flatnonzero(clip.skeleton.parents == ankle)
        if len(children) == 0:
            return None
        points.append(transforms.positions[:, children[0]])
    return np.stack(points, axis=1)


def read_bvh_clip(path: Path, config: IngestConfig) -> MotionClip:
    """One BVH file: rig recognised, unit detected (or ``config.units``), joints and toes in mm, file axes."""
    clip = read_bvh(path)
    if clip.num_frames == 0:
        raise ClipCheckError(str(path), "zero frames")
    family, names = recognise_rig(clip.skeleton, str(path), config.families)
    unit = config.units
    if unit == "auto":
        first = replace(clip, motion=clip.motion[:1])
        unit = detect_unit(leg_length(_joints(forward_kinematics(first, 1.0), names, family)), str(path))
    scale = UNIT_TO_MM[unit]
    transforms = forward_kinematics(clip, scale)
    return MotionClip(
        joints=_joints(transforms, names, family),
        toes=_toe_points(clip, transforms, names, family, scale),
        times_s=np.arange(clip.num_frames) * clip.frame_time,
        kind=family.name,
        unit=unit,
        up=None if config.up == "auto" else config.up,
        rigid=True,
    )
