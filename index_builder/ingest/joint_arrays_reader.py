"""h36m17 joint arrays -> ``MotionClip``.

``.npz`` keys (only ``poses`` is required):

=========  =====================================================================================================
key        meaning
=========  =====================================================================================================
poses      (T, 17, 3) float, h36m17 joints in ``model.pose.skeleton.H36M17`` order, world frame (not root-relative)
fps        scalar, frames per second (default: ``--array-fps``)
units      ``mm``, ``cm``, ``m``, ``inch`` or ``cmu`` (default: ``--units``, else detected from the leg length)
up         ``y`` or ``z``: the up axis of a right-handed frame (default: ``--up``, else detected)
=========  =====================================================================================================

A ``.npy`` file is the ``poses`` array alone. Arrays carry no feet: the left/right check takes the facing
direction from the nose, and their bones are not required to be rigid (they may be estimates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.errors import DataFileError
from index_builder.ingest.config import UNIT_TO_MM, UP_AXES, IngestConfig
from index_builder.ingest.motion_clip import MotionClip
from index_builder.ingest.units import detect_unit, leg_length
from model.pose.skeleton import NUM_JOINTS

POSES_KEY = "poses"


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npy":
            return {POSES_KEY: np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise DataFileError(str(path), f"cannot read array file: {err}") from err


def read_joint_array_clip(path: Path, config: IngestConfig) -> MotionClip:
    """One ``.npz`` / ``.npy`` file of h36m17 joints (see the module docstring for keys and defaults)."""
    arrays = _load(path)
    if POSES_KEY not in arrays:
        raise DataFileError(str(path), f"no {POSES_KEY!r} array (keys: {', '.join(sorted(arrays))})")
    poses = arrays[POSES_KEY]
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or not np.issubdtype(poses.dtype, np.number):
        raise DataFileError(str(path), f"{POSES_KEY} must be (T, {NUM_JOINTS}, 3) numbers, got {poses.shape} "
                                       f"{poses.dtype}")
    poses = poses.astype(np.float64)
    if not np.isfinite(poses).all():
        raise DataFileError(str(path), f"{POSES_KEY} holds NaN or inf")
    unit = str(arrays["units"]) if "units" in arrays else config.units
    if unit not in UNIT_TO_MM and unit != "auto":
        raise DataFileError(str(path), f"units {unit!r}: use one of {', '.join(UNIT_TO_MM)}")
    if unit == "auto" and len(poses):
        unit = detect_unit(leg_length(poses), str(path))
    up = str(arrays["up"]) if "up" in arrays else None if config.up == "auto" else config.up
    if up is not None and up not in UP_AXES:
        raise DataFileError(str(path), f"up {up!r}: use y or z")
    fps = float(arrays["fps"]) if "fps" in arrays else config.array_fps
    if fps <= 0:
        raise DataFileError(str(path), f"fps must be positive, got {fps}")
    return MotionClip(
        joints=poses * UNIT_TO_MM.get(unit, 1.0), toes=None, times_s=np.arange(len(poses)) / fps,
        kind="joint-array", unit=unit, up=up, rigid=False,
    )
