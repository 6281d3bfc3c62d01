"""What every format reader delivers: one clip in h36m17, in mm, before the shared steps (axes, checks,
resampling) that ``index_builder.ingest.clip_steps`` applies alike to all of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MotionClip:
    """One clip as read from its file.

    joints: (T, 17, 3) float64 mm, h36m17 by the shared joint formulas, in the file's axes.
    toes: (T, 2, 3) float64 mm, a point ahead of the left and of the right ankle (where each foot points), same
        axes; None when the format has no feet (the nose then gives the facing direction).
    times_s: (T,) float64, seconds from the first frame.
    kind: the rig family or the format (``bandai``, ``mixamo``, ``deepmimic``, ``cmu-expmap``, ``joint-array``).
    unit: the file's length unit, a key of ``index_builder.ingest.config.UNIT_TO_MM``.
    up: ``y`` or ``z`` when the file or its format says; None to detect it from the body.
    rigid: True when the joints come from forward kinematics, so limb bones must keep their length.
    """

    joints: np.ndarray
    toes: np.ndarray | None
    times_s: np.ndarray
    kind: str
    unit: str
    up: str | None
    rigid: bool

    def __post_init__(self) -> None:
        assert self.joints.ndim == 3 and self.joints.shape[1:] == (17, 3), self.joints.shape
        assert self.times_s.shape == self.joints.shape[:1], (self.times_s.shape, self.joints.shape)
        assert self.toes is None or self.toes.shape == (len(self.joints), 2, 3), self.toes.shape

    @property
    def num_frames(self) -> int:
        return self.joints.shape[0]

    @property
    def source_fps(self) -> float:
        """Frames per second of the file (the mean rate when frame durations vary)."""
        if self.num_frames < 2:
            return 0.0
        return float((self.num_frames - 1) / (self.times_s[-1] - self.times_s[0]))
