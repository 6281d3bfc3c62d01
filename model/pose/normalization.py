"""Centre- and scale-normalised 2D poses, the form every 2D input takes before a network sees it; numpy only.

The person box (of the visible joints) is mapped to [-1, 1] along its longer side, keeping the aspect ratio,
which is how the image path normalises BlazePose landmarks to the person box too.
"""

from __future__ import annotations

import numpy as np

CONTIGUOUS_FROM = 8  # poses from which ``point_bounds`` reduces a contiguous copy


def normalize_2d(keypoints: np.ndarray, visible: np.ndarray | None = None):
    """Map each pose's visible joints so their box is centred at 0 with the longer half-side 1.

    keypoints: (N, J, 2) pixels. visible: (N, J) bool; default all visible. Every pose needs >= 2 visible joints
    that are not all at one point (callers validate user input before this).
    returns: normalised (N, J, 2) float32 (invisible joints set to 0), centre (N, 2) pixels, scale (N,) pixels
        such that ``pixels = normalised * scale + centre``.
    """
    assert keypoints.ndim == 3 and keypoints.shape[-1] == 2, keypoints.shape
    every = visible is None or visible.all()  # nothing to mask (a few microseconds a call saved per pose batch)
    lo, hi = point_bounds(keypoints, None if every else visible)
    centre = (lo + hi) / 2.0
    scale = (hi - lo).max(axis=-1) / 2.0
    normalised = (keypoints - centre[:, None, :]) / scale[:, None, None]
    if not every:
        normalised = np.where(visible[..., None], normalised, 0.0)
    return normalised.astype(np.float32), centre, scale


def point_bounds(points: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """points: (N, J, C), visible: (N, J) bool (default all) -> the smallest and the largest coordinate over each
    pose's visible points, (N, C) each (inf and -inf for a pose with none). A batch is reduced on a contiguous
    (N, C, J) copy: over the joint axis of a (N, J, 2) array numpy takes several times as long (64 poses: 61 -> 17
    us), where for a few poses the copy costs more than it saves."""
    axis, mask = 1, None if visible is None else visible[..., None]
    if len(points) >= CONTIGUOUS_FROM:
        points, axis = np.ascontiguousarray(np.moveaxis(points, 1, -1)), -1
        mask = None if visible is None else visible[:, None, :]
    if mask is None:
        return points.min(axis=axis), points.max(axis=axis)
    return np.where(mask, points, np.inf).min(axis=axis), np.where(mask, points, -np.inf).max(axis=axis)


def denormalize_2d(normalised: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of ``normalize_2d``: (N, J, 2) normalised -> (N, J, 2) pixels."""
    return normalised * scale[:, None, None] + centre[:, None, :]
