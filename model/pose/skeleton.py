"""The canonical h36m17 skeleton: joint names, parents, bones and left/right pairs (numpy only).

Every pose in the product, whatever its source, is expressed in this layout and order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """Joint topology.

    names: joint names in array order.
    parents: (J,) int, parent index, -1 for the root.
    left, right: indices of mirrored joints, ``left[i]`` mirrors ``right[i]``.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    def __post_init__(self) -> None:
        assert len(self.names) == len(self.parents), "one parent per joint"
        assert len(self.left) == len(self.right), "left/right pairs must match"
        assert all(p < j for j, p in enumerate(self.parents)), "parents must precede their children"

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) index pairs, one per non-root joint."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def mirror_permutation(self) -> np.ndarray:
        """(J,) int: the joint order of the left/right mirrored skeleton."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm


H36M17 = Skeleton(
    names=(
        "pelvis",
        "r_hip",
        "r_knee",
        "r_ankle",
        "l_hip",
        "l_knee",
        "l_ankle",
        "spine",
        "thorax",
        "neck_nose",
        "head_top",
        "l_shoulder",
        "l_elbow",
        "l_wrist",
        "r_shoulder",
        "r_elbow",
        "r_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)

NUM_JOINTS = H36M17.num_joints
ROOT = H36M17.index("pelvis")


def root_centred(poses: np.ndarray) -> np.ndarray:
    """(..., 17, C) poses -> the same with the pelvis (``ROOT``) at the origin, in the input's dtype."""
    return poses - poses[..., ROOT : ROOT + 1, :]
