"""Mapping tables from mocap skeletons to the shared landmarks, and from there to h36m17.

Limb landmarks are joints of the mocap skeleton. Mocap has no ears or nose, so they are placed rigidly in the
head joint's frame at anthropometric offsets from the skull base (the head joint of both tables below):
ears 55 mm up, 5 mm forward and 72 mm to each side; nose tip 40 mm up and 110 mm forward. These put the ears
about 120 mm above the base of the neck, as in an adult. The head top then
follows from the shared formula (``model.pose.joint_formulas``), so Bandai's head, which has no end site, gets its top
the same way a COCO detection does.

The field's convention (``model.pose.joint_conventions``) needs two more things of a rig: its neck-base joint (the
field's thorax) and the head joint's own up axis (along which the field's neck/nose and head top lie). Per rig:
Bandai ``Neck`` and the head's local +X; CMU ``Neck`` and +Y; MocapBank ``Neck`` and +Y; iClone
``CC_Base_NeckTwist01`` and +Y (the ``up`` of each ``HeadFrame``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from index_builder.ingest.bvh import BvhClip, JointTransforms, forward_kinematics
from model.pose.joint_conventions import field_derived_joints
from model.pose.joint_formulas import landmarks_to_h36m17
from model.pose.joint_layouts import LANDMARKS

_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


@dataclass(frozen=True)
class HeadFrame:
    """Which signed axis of the head joint's local frame points up, forward and to the character's left."""

    up: str
    forward: str
    left: str

    def basis(self) -> np.ndarray:
        """(3, 3): columns are the local-frame vectors of (left, up, forward)."""
        out = np.zeros((3, 3))
        for col, axis in enumerate((self.left, self.up, self.forward)):
            sign = -1.0 if axis[0] == "-" else 1.0
            out[_AXIS_INDEX[axis[-1]], col] = sign
        return out


FACE_OFFSETS_MM = {
    "nose": (0.0, 40.0, 110.0),
    "l_ear": (72.0, 55.0, 5.0),
    "r_ear": (-72.0, 55.0, 5.0),
}


@dataclass(frozen=True)
class MocapMapping:
    """How one mocap skeleton provides the shared landmarks.

    limbs: landmark name -> mocap joint name, for every landmark except nose and ears.
    head: the joint whose frame carries the face landmarks.
    head_frame: orientation of that joint's local axes.
    face_offsets_mm: landmark -> (left, up, forward) offset in mm from the head joint.
    neck: the neck-base joint, the field convention's thorax; None where the rig has none named.
    """

    name: str
    limbs: dict[str, str]
    head: str
    head_frame: HeadFrame
    face_offsets_mm: dict[str, tuple[float, float, float]] = field(default_factory=lambda: dict(FACE_OFFSETS_MM))
    neck: str | None = None


def limb_joints(hip: str, knee: str, ankle: str, shoulder: str, elbow: str, wrist: str, left: str,
                right: str) -> dict[str, str]:
    """Landmark -> joint name for the twelve limb landmarks, from name patterns with a ``{side}`` field."""
    out = {}
    for side, tag in (("l", left), ("r", right)):
        for part, joint in (
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
        ):
            out[f"{side}_{part}"] = joint.format(side=tag)
    return out


# Identity joint frames at rest, Y up, facing +Z: CMU-style files and most T-pose rigs (checked on the real files
# in tests/index_builder).
TPOSE_HEAD = HeadFrame(up="+Y", forward="+Z", left="+X")

BANDAI = MocapMapping(
    name="bandai",
    limbs=limb_joints(
        "UpperLeg_{side}", "LowerLeg_{side}", "Foot_{side}", "UpperArm_{side}", "LowerArm_{side}", "Hand_{side}",
        left="L", right="R",
    ),
    head="Head",
    # Bandai joints carry Maya-style joint orients: along the neck the local X axis points to the child.
    head_frame=HeadFrame(up="+X", forward="+Y", left="+Z"),
    neck="Neck",
)

CMU = MocapMapping(
    name="cmu",
    limbs=limb_joints(
        "{side}UpLeg", "{side}Leg", "{side}Foot", "{side}Arm", "{side}ForeArm", "{side}Hand",
        left="Left", right="Right",
    ),
    head="Head",
    head_frame=TPOSE_HEAD,
    neck="Neck",
)

# 3ds-Max / MocapBank naming: the "Shoulder" is the upper-arm joint, the "Collar" the clavicle.
MOCAPBANK = MocapMapping(
    name="mocapbank",
    limbs=limb_joints(
        "{side}Hip", "{side}Knee", "{side}Ankle", "{side}Shoulder", "{side}Elbow", "{side}Wrist",
        left="Left", right="Right",
    ),
    head="Head",
    head_frame=TPOSE_HEAD,
    neck="Neck",
)

# iClone / Character Creator (CC3 base): bone-local OFFSETs, but the head joint's frame is Y up, facing +Z.
ICLONE = MocapMapping(
    name="iclone",
    limbs=limb_joints(
        "CC_Base_{side}_Thigh", "CC_Base_{side}_Calf", "CC_Base_{side}_Foot", "CC_Base_{side}_Upperarm",
        "CC_Base_{side}_Forearm", "CC_Base_{side}_Hand", left="L", right="R",
    ),
    head="CC_Base_Head",
    head_frame=TPOSE_HEAD,
    neck="CC_Base_NeckTwist01",
)

MAPPINGS = {m.name: m for m in (BANDAI, CMU)}


def detect_mapping(clip: BvhClip) -> MocapMapping:
    """The mapping whose joint names the clip's skeleton has; raises KeyError naming what is missing."""
    names = set(clip.skeleton.names)
    for mapping in MAPPINGS.values():
        if set(mapping.limbs.values()) | {mapping.head} <= names:
            return mapping
    raise KeyError(
        f"{clip.source}: skeleton matches no known mapping ({', '.join(MAPPINGS)}); joints: {sorted(names)}"
    )


def mocap_landmarks(transforms: JointTransforms, names: tuple[str, ...], mapping: MocapMapping) -> np.ndarray:
    """The 15 shared landmarks of every frame.

    transforms: world transforms of the clip's joints (positions in mm).
    returns: (T, 15, 3) float64 mm, world frame, in ``LANDMARKS`` order.
    """
    frames = transforms.positions.shape[0]
    out = np.empty((frames, len(LANDMARKS), 3))
    head = names.index(mapping.head)
    basis = mapping.head_frame.basis()
    for k, landmark in enumerate(LANDMARKS):
        if landmark in mapping.face_offsets_mm:
            local = basis @ np.asarray(mapping.face_offsets_mm[landmark])
            out[:, k] = transforms.positions[:, head] + transforms.rotations[:, head] @ local
        else:
            out[:, k] = transforms.positions[:, names.index(mapping.limbs[landmark])]
    return out


def mocap_field_joints(transforms: JointTransforms, names: tuple[str, ...], mapping: MocapMapping,
                       joints: np.ndarray) -> np.ndarray | None:
    """The field convention's spine, thorax, neck/nose and head top of every frame.

    joints: (T, 17, 3) mm, the frames' unihpr17 joints (for the pelvis).
    returns: (T, 4, 3) float32 mm in ``model.pose.joint_conventions.DERIVED`` order, or None when the mapping names
        no neck joint.
    """
    if mapping.neck is None:
        return None
    head = names.index(mapping.head)
    head_up = transforms.rotations[:, head] @ mapping.head_frame.basis()[:, 1]
    neck = transforms.positions[:, names.index(mapping.neck)]
    return field_derived_joints(joints[:, 0], neck, head_up).astype(np.float32)


def clip_to_h36m17(clip: BvhClip, scale: float, mapping: MocapMapping | None = None) -> np.ndarray:
    """unihpr17 joints of every frame of a BVH clip: (T, 17, 3) float32 mm, world frame of the file (Bandai: Y up).

    scale: file unit -> mm.
    """
    return clip_to_conventions(clip, scale, mapping)[0]


def clip_to_conventions(clip: BvhClip, scale: float, mapping: MocapMapping | None = None):
    """Joints of every frame of a BVH clip in both conventions.

    scale: file unit -> mm.
    returns: (T, 17, 3) float32 mm unihpr17 joints, world frame of the file (Bandai: Y up), and the field
        convention's four derived joints, (T, 4, 3) float32 mm (``mocap_field_joints``; None without a neck).
    """
    mapping = mapping or detect_mapping(clip)
    transforms = forward_kinematics(clip, scale)
    landmarks = mocap_landmarks(transforms, clip.skeleton.names, mapping)
    joints = landmarks_to_h36m17(landmarks)
    return joints.astype(np.float32), mocap_field_joints(transforms, clip.skeleton.names, mapping, joints)
