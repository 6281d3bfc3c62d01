"""Centre- and scale-normalised 2D poses, the form every 2D input takes before a network sees it; numpy only.

The person box (of the visible joints) is mapped to [-1, 1] along its longer side, keeping the aspect ratio,
which is how the image path normalises BlazePose landmarks to the person box too.
"""

from __future__ import annotations

import numpy as np


def normalize_2d(keypoints: np.ndarray, visible: np.ndarray | None = None):
    """Map each pose's visible joints so their box is centred at 0 with the longer half-side 1.

    keypoints: (N, J, 2) pixels. visible: (N, J) bool; default all visible. Every pose needs >= 2 visible joints
    that are not all at one point (callers validate user input before this).
    returns: normalised (N, J, 2) float32 (invisible joints set to 0), centre (N, 2) pixels, scale (N,) pixels
        such that ``pixels = normalised * scale + centre``.
    """
    assert keypoints.ndim == 3 and keypoints.shape[-1] == 2, keypoints.shape
    every = visible is None or visible.all()  # nothing to mask (a few microseconds a call saved per pose batch)
    lo = keypoints.min(axis=1) if every else np.where(visible[..., None], keypoints, np.inf).min(axis=1)
    hi = keypoints.max(axis=1) if every else np.where(visible[..., None], keypoints, -np.inf).max(axis=1)
    centre = (lo + hi) / 2.0
    scale = (hi - lo).max(axis=-1) / 2.0
    normalised = (keypoints - centre[:, None, :]) / scale[:, None, None]
    if not every:
        normalised = np.where(visible[..., None], normalised, 0.0)
    return normalised.astype(np.float32), centre, scale


def denormalize_2d(normalised: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of ``normalize_2d``: (N, J, 2) normalised -> (N, J, 2) pixels."""
    return normalised * scale[:, None, None] + centre[:, None, :]
