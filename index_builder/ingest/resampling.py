"""Frame rate: every clip is resampled to the database rate by linear interpolation of joint positions in time.

A clip already at that rate (within ``SAME_RATE_TOLERANCE``, e.g. BVH ``Frame Time: 0.0333333``) is kept frame for
frame. Integer ratios (120 -> 30 Hz) pick original frames; other ratios blend the two nearest frames, which shortens
a bone by at most a fraction of a millimetre at normal speeds (the rigid-bone check runs before resampling).
"""

from __future__ import annotations

import numpy as np

SAME_RATE_TOLERANCE = 1e-3  # relative
_TIME_EPS_S = 1e-9


def resample(joints: np.ndarray, times_s: np.ndarray, fps: float) -> np.ndarray:
    """joints: (T, ...) float at times ``times_s`` (T,) seconds, increasing; returns (T', ...) at ``k / fps``
    for every k with ``k / fps <= times_s[-1]``."""
    assert len(joints) == len(times_s) and len(joints) > 0
    steps = np.diff(times_s)
    if len(steps) == 0:
        return joints
    if np.ptp(steps) <= SAME_RATE_TOLERANCE * steps.mean() and abs(steps.mean() * fps - 1.0) <= SAME_RATE_TOLERANCE:
        return joints
    duration = times_s[-1] - times_s[0]
    target = times_s[0] + np.arange(int(np.floor(duration * fps + _TIME_EPS_S)) + 1) / fps
    before = np.clip(np.searchsorted(times_s, target + _TIME_EPS_S, side="right") - 1, 0, len(times_s) - 2)
    span = times_s[before + 1] - times_s[before]
    weight = np.clip((target - times_s[before]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    weight = weight.reshape((-1,) + (1,) * (joints.ndim - 1))
    return joints[before] * (1.0 - weight) + joints[before + 1] * weight
