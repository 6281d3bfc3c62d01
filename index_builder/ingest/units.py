"""Length unit and up axis of a motion file, detected from the body when the file does not say.

Unit: the leg (hip to knee plus knee to ankle, in file units) is compared with an adult's, ``ADULT_LEG_MM``; the
unit of ``UNIT_TO_MM`` that brings it closest (by ratio) wins. The candidates differ by at least a factor 2.2, so
an adult leg of 0.6-1.1 m is never mistaken; a child under about 1.1 m tall in a centimetre file reads as inches
(pass ``--units``).

Up axis: the body axis (ankles to head top) averaged over the clip. Files are Y up unless that axis points along
+Z clearly (mean cosine above ``Z_UP_MIN_COSINE`` and more than along +Y), so a clip of floor work, whose body axis
lies flat, keeps the BVH default. Every pose is stored Y up (``ZUP_TO_YUP``, a proper rotation).
"""

from __future__ import annotations

import numpy as np

from index_builder.datasets.h36m import ZUP_TO_YUP
from index_builder.errors import DataFileError
from index_builder.ingest.config import UNIT_TO_MM
from model.pose.skeleton import H36M17

ADULT_LEG_MM = 850.0  # hip to knee to ankle of an adult of about 1.7 m
PLAUSIBLE_LEG_MM = (450.0, 1300.0)  # outside this, no unit fits and the clip is skipped
Z_UP_MIN_COSINE = 0.5
UP_ROTATIONS = {"y": np.eye(3), "z": ZUP_TO_YUP}  # file frame -> Y-up frame


def leg_length(joints: np.ndarray) -> float:
    """Mean over both legs of hip-knee plus knee-ankle, in the joints' units, at the first frame.

    joints: (T, 17, 3) h36m17 (or any array indexed like it).
    """
    j = H36M17.index
    total = 0.0
    for side in "lr":
        hip, knee, ankle = (joints[0, j(f"{side}_{part}")] for part in ("hip", "knee", "ankle"))
        total += np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee)
    return total / 2.0


def detect_unit(leg: float, source: str) -> str:
    """The unit of ``UNIT_TO_MM`` in which a leg of ``leg`` file units is closest to an adult's."""
    if not np.isfinite(leg) or leg <= 0:
        raise DataFileError(source, f"cannot measure the leg (length {leg}) to detect the unit")
    unit = min(UNIT_TO_MM, key=lambda u: abs(np.log(leg * UNIT_TO_MM[u] / ADULT_LEG_MM)))
    leg_mm = leg * UNIT_TO_MM[unit]
    if not PLAUSIBLE_LEG_MM[0] <= leg_mm <= PLAUSIBLE_LEG_MM[1]:
        raise DataFileError(source, f"leg of {leg:.4g} file units fits no unit ({', '.join(UNIT_TO_MM)}); "
                                    "pass --units")
    return unit


def detect_up_axis(joints: np.ndarray) -> str:
    """'y' or 'z': the file's up axis, from the body axis (see the module docstring).

    joints: (T, 17, 3) any length unit, file frame.
    """
    j = H36M17.index
    ankles = (joints[:, j("l_ankle")] + joints[:, j("r_ankle")]) / 2.0
    body = joints[:, j("head_top")] - ankles
    body = body / np.maximum(np.linalg.norm(body, axis=-1, keepdims=True), 1e-9)
    mean = body.mean(axis=0)
    return "z" if mean[2] > Z_UP_MIN_COSINE and mean[2] > mean[1] else "y"


def to_y_up(points: np.ndarray, up: str) -> np.ndarray:
    """points: (..., 3) in a file frame with ``up`` up; returns them in the Y-up frame (same units)."""
    return points @ UP_ROTATIONS[up].T
