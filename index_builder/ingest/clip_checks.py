"""Sanity report of one clip (poses in mm, Y up), and the checks that skip it.

- Left/right: on upright frames (trunk within ``UPRIGHT_TRUNK_DEG`` of vertical) the facing direction is where the
  stance foot (the lower ankle) points (ankle to toe), flattened onto the floor, and its left is ``up x facing``. The
  score is the mean cosine between that left and the right-to-left hip vector on the floor: about 1 for a correct clip,
  about -1 for a mirrored one or one with left and right swapped. A clip with too few upright frames (crawling, floor
  work: feet then point anywhere) or a format without feet uses the face instead, in the body's own frame: facing
  is the nose ahead of the thorax, up is the spine (pelvis to thorax). Below ``LEFT_RIGHT_MIN_SCORE`` the clip is
  skipped.
- Standing height: ankle to head top, the median over the standing frames
  (``index_builder.datasets.pose_checks.standing_mask``); a clip without any (a walk rarely has both knees straight)
  takes the ``UPRIGHT_HEIGHT_PERCENTILE`` percentile over its upright frames. Outside ``PLAUSIBLE_HEIGHT_MM`` the clip
  is skipped (wrong unit, broken rig); a clip with no upright frame (floor work) has no height and passes.
- Rigid bones (SPEC section 4): thigh, shin, upper arm, forearm and the hip pair keep their length within
  ``RIGID_TOLERANCE_MM`` over the clip, for formats made by forward kinematics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index_builder.datasets.pose_checks import RIGID_BONES, angle_deg, bone_name, standing_heights, standing_mask
from index_builder.errors import ClipCheckError
from model.pose.skeleton import H36M17
from model.pose.units import MM_PER_M

LEFT_RIGHT_MIN_SCORE = 0.25
PLAUSIBLE_HEIGHT_MM = (1000.0, 2300.0)  # a person from a child to a very tall adult
RIGID_TOLERANCE_MM = 1.0
UPRIGHT_TRUNK_DEG = 15.0
MIN_UPRIGHT_FRACTION = 0.25  # of the frames, for the feet to give the facing direction
UPRIGHT_HEIGHT_PERCENTILE = 95.0
UP = np.array([0.0, 1.0, 0.0])
_FLAT_MIN_MM = 1.0  # vectors shorter than this on the floor say nothing about direction


@dataclass(frozen=True)
class ClipReport:
    """frames: poses at the file's rate; standing_frames: how many of them stand; height_mm: standing height (see
    the module docstring; None without upright frames); left_right: the left/right score (see module docstring);
    facing_from: ``feet`` or ``nose``; rigid_range_mm: the largest length range of a rigid bone; worst_bone: its
    name."""

    frames: int
    standing_frames: int
    height_mm: float | None
    left_right: float
    facing_from: str
    rigid_range_mm: float
    worst_bone: str


def _flat_unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) -> unit vectors on the floor (Y removed) and a mask of those long enough to have a direction."""
    flat = v * np.array([1.0, 0.0, 1.0])
    norm = np.linalg.norm(flat, axis=-1)
    return flat / np.maximum(norm, 1e-9)[:, None], norm > _FLAT_MIN_MM


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.linalg.norm(v, axis=-1)
    return v / np.maximum(norm, 1e-9)[:, None], norm > _FLAT_MIN_MM


def _score(left: np.ndarray, ok_left: np.ndarray, hips: np.ndarray, ok_hips: np.ndarray) -> float:
    ok = ok_left & ok_hips
    return float((left[ok] * hips[ok]).sum(-1).mean()) if ok.any() else float("nan")


def upright_mask(joints: np.ndarray) -> np.ndarray:
    """(T,) bool: the trunk (pelvis to thorax) within ``UPRIGHT_TRUNK_DEG`` of vertical."""
    j = H36M17.index
    return angle_deg(joints[:, j("thorax")] - joints[:, j("pelvis")], UP) < UPRIGHT_TRUNK_DEG


def left_right_score(joints: np.ndarray, toes: np.ndarray | None) -> tuple[float, str]:
    """joints: (T, 17, 3) mm Y up; toes: (T, 2, 3) mm or None. returns (score, ``feet`` or ``nose``)."""
    j = H36M17.index
    upright = upright_mask(joints)
    if toes is not None and upright.mean() >= MIN_UPRIGHT_FRACTION:
        poses = joints[upright]
        # The stance foot (the lower ankle) points where the body goes; a swinging foot may point anywhere (a
        # runner's rear foot points back and up).
        ankles = poses[:, [j("l_ankle"), j("r_ankle")]]  # (N, 2, 3)
        stance = np.argmin(ankles[:, :, 1], axis=1)  # (N,)
        rows = np.arange(len(poses))
        facing, ok_facing = _flat_unit(toes[upright][rows, stance] - ankles[rows, stance])
        hips, ok_hips = _flat_unit(poses[:, j("l_hip")] - poses[:, j("r_hip")])
        return _score(np.cross(UP, facing), ok_facing, hips, ok_hips), "feet"
    spine = joints[:, j("thorax")] - joints[:, j("pelvis")]
    left, ok_left = _unit(np.cross(spine, joints[:, j("neck_nose")] - joints[:, j("thorax")]))
    hips, ok_hips = _unit(joints[:, j("l_hip")] - joints[:, j("r_hip")])
    return _score(left, ok_left, hips, ok_hips), "nose"


def standing_height(joints: np.ndarray) -> tuple[float | None, int]:
    """(height mm or None, standing frames): see the module docstring. joints: (T, 17, 3) mm Y up."""
    stand = standing_mask(joints)
    if stand.any():
        return float(np.median(standing_heights(joints[stand])[0])), int(stand.sum())
    upright = upright_mask(joints)
    if upright.any():
        return float(np.percentile(standing_heights(joints[upright])[0], UPRIGHT_HEIGHT_PERCENTILE)), 0
    return None, 0


def report_clip(joints: np.ndarray, toes: np.ndarray | None) -> ClipReport:
    """Measure everything; raises nothing (see ``check_clip``)."""
    height, standing = standing_height(joints)
    score, facing_from = left_right_score(joints, toes)
    ranges = [np.ptp(np.linalg.norm(joints[:, b] - joints[:, a], axis=-1)) for a, b in RIGID_BONES]
    worst = int(np.argmax(ranges))
    return ClipReport(frames=len(joints), standing_frames=standing, height_mm=height, left_right=score,
                      facing_from=facing_from, rigid_range_mm=float(ranges[worst]),
                      worst_bone=bone_name(RIGID_BONES[worst]))


def check_clip(joints: np.ndarray, toes: np.ndarray | None, rigid: bool, source: str) -> ClipReport:
    """The report of a clip that passes; raises ClipCheckError naming the failed check otherwise.

    joints: (T, 17, 3) float mm, Y up; toes: (T, 2, 3) or None; rigid: whether bones must keep their length.
    """
    report = report_clip(joints, toes)
    if not report.left_right >= LEFT_RIGHT_MIN_SCORE:  # NaN fails too
        raise ClipCheckError(source, f"left/right check failed: the left hip is on the left of the facing direction "
                                     f"(from the {report.facing_from}) by a score of {report.left_right:.2f} "
                                     f"(< {LEFT_RIGHT_MIN_SCORE}; mirrored or left and right swapped?)")
    if report.height_mm is not None and not PLAUSIBLE_HEIGHT_MM[0] <= report.height_mm <= PLAUSIBLE_HEIGHT_MM[1]:
        low, high = (h / MM_PER_M for h in PLAUSIBLE_HEIGHT_MM)
        raise ClipCheckError(source, f"standing height {report.height_mm / MM_PER_M:.2f} m is not a person's "
                                     f"({low:.1f}-{high:.1f} m; wrong unit? pass --units)")
    if rigid and report.rigid_range_mm > RIGID_TOLERANCE_MM:
        raise ClipCheckError(source, f"rigid bone {report.worst_bone} changes length by "
                                     f"{report.rigid_range_mm:.2f} mm (> {RIGID_TOLERANCE_MM} mm)")
    return report
