"""What each encoder reads: (N, 17, 3) float32 features per modality (numpy; the service uses this too).

- pose2d: keypoints normalised to their box (``model.pose.normalization``), then a confidence in [0, 1] per joint;
  a missing joint has confidence 0 and coordinates 0.
- image: BlazePose landmarks mapped to h36m17, normalised the same way over all joints, then the sigmoid
  visibility per joint.
- pose3d: root-relative (pelvis = 0) camera-frame joints in metres.

2D from a real camera first goes through the perspective crop (``model.pose.perspective_crop``): the ``cropped_*``
functions take pixels and the camera's intrinsics and also return the rotation that takes the lifted 3D back to
the real camera (its transpose), and on request the crop's *frame*: (N, 3) the centre x, y and the scale of the
box normalisation in ray units of the virtual camera, so that its rays (x / z, y / z) are ``x, y * scale +
centre`` (what the geometric re-ranking fits a pinhole camera to, ``model.retrieval.rerank``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from model.pose.joint_combinations import finite_points
from model.pose.joint_conventions import OURS
from model.pose.joint_formulas import layout_weights
from model.pose.normalization import normalize_2d
from model.pose.perspective_crop import Intrinsics, perspective_crop
from model.pose.skeleton import root_centred
from model.pose.units import MM_PER_M
from model.runtime.compiled_loops import kernel

MODALITIES = ("image", "pose2d", "pose3d")  # the encoders' inputs, in the order every table lists them


def pose2d_features(keypoints: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """keypoints: (N, 17, 2) pixels (NaN where missing); confidence: (N, 17) in [0, 1], 0 = missing.

    returns: (N, 17, 3) float32 [x, y, confidence], x and y normalised over the joints with confidence > 0
        (``model.pose.normalization.normalize_2d``'s box), 0 for the others.
    """
    return pose2d_rows(keypoints, confidence).features


class Pose2DRows(NamedTuple):
    """2D keypoints as the pose2d encoder reads them (``pose2d_rows``): joints (N, 17, 2) float64 unihpr17 pixels,
    NaN where not visible; confidence (N, 17) float64, 0 where not visible; features (N, 17, 3) float32, as
    ``pose2d_features`` of those two; visible (N,) int64 the visible joints; extent (N,) float64 the longer side of
    their box in pixels (-inf for a pose with none)."""

    joints: np.ndarray
    confidence: np.ndarray
    features: np.ndarray
    visible: np.ndarray
    extent: np.ndarray


def pose2d_rows(keypoints: np.ndarray, confidence: np.ndarray | None = None, layout: str = OURS) -> Pose2DRows:
    """Keypoints of a layout -> unihpr17 joints, their visibility and the pose2d features, in one compiled pass per
    pose (``model.pose.joint_formulas.layout_weights``; a request's pose took about 40 numpy calls this way).

    keypoints: (..., K, 2) in the layout's order (K its size), NaN where missing; confidence: (..., K) in [0, 1],
    0 = missing (default: all 1); the outputs keep the leading axes. A joint is visible where every keypoint it
    uses has a finite position and a confidence > 0; its confidence is the smallest of theirs
    (``model.pose.joint_combinations``). A pose whose visible joints do not span a box gets NaN features: callers
    check ``visible`` and ``extent`` first.
    """
    lead = keypoints.shape[:-2]
    points = np.ascontiguousarray(keypoints, np.float64).reshape(-1, *keypoints.shape[-2:])
    n = len(points)
    conf = np.ones(points.shape[:2]) if confidence is None else np.ascontiguousarray(confidence, np.float64)
    weights, unavailable = layout_weights(layout)
    assert points.shape[1:] == (weights.shape[1], 2), f"{layout} has {weights.shape[1]} keypoints of (x, y)"
    out = Pose2DRows(np.empty((n, len(weights), 2)), np.empty((n, len(weights))),
                     np.empty((n, len(weights), 3), np.float32), np.empty(n, np.int64), np.empty(n))
    _pose2d_rows(weights, unavailable, points, conf.reshape(n, -1), *out)
    return out if len(lead) == 1 else Pose2DRows(*(a.reshape(lead + a.shape[1:]) for a in out))


@kernel
def _pose2d_rows(weights, unavailable, points, confidence, joints, joint_confidence, features, visible, extent):
    """``pose2d_rows``' arithmetic, written into its outputs."""
    for n in range(points.shape[0]):
        lo_x, lo_y, hi_x, hi_y = np.inf, np.inf, -np.inf, -np.inf
        count = 0
        for j in range(weights.shape[0]):
            x, y, c = 0.0, 0.0, np.inf
            seen = not unavailable[j]
            for k in range(points.shape[1]):
                w = weights[j, k]
                if w == 0.0 or not seen:
                    continue
                px, py, pc = points[n, k, 0], points[n, k, 1], confidence[n, k]
                if pc > 0.0 and np.isfinite(px) and np.isfinite(py):
                    x += w * px
                    y += w * py
                    c = min(c, pc)
                else:
                    seen = False
            if seen and np.isfinite(x) and np.isfinite(y):
                joints[n, j, 0], joints[n, j, 1], joint_confidence[n, j] = x, y, c
                lo_x, lo_y, hi_x, hi_y = min(lo_x, x), min(lo_y, y), max(hi_x, x), max(hi_y, y)
                count += 1
            else:
                joints[n, j, 0], joints[n, j, 1], joint_confidence[n, j] = np.nan, np.nan, 0.0
        visible[n] = count
        extent[n] = max(hi_x - lo_x, hi_y - lo_y)
        centre_x, centre_y, scale = (lo_x + hi_x) / 2.0, (lo_y + hi_y) / 2.0, extent[n] / 2.0
        for j in range(weights.shape[0]):
            if joint_confidence[n, j] > 0.0:
                if scale > 0.0:
                    features[n, j, 0] = (joints[n, j, 0] - centre_x) / scale
                    features[n, j, 1] = (joints[n, j, 1] - centre_y) / scale
                else:
                    features[n, j, 0], features[n, j, 1] = np.nan, np.nan
                features[n, j, 2] = joint_confidence[n, j]
            else:
                features[n, j, 0], features[n, j, 1], features[n, j, 2] = 0.0, 0.0, 0.0


def compile_kernels() -> None:
    """Compile (or load from numba's cache) the feature rows, so that no request pays for it."""
    pose2d_rows(np.zeros((1, 17, 2)))


def image_features(keypoints: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """keypoints: (N, 17, 2) pixels from the detector (always all joints); visibility: (N, 17) in [0, 1].

    returns: (N, 17, 3) float32 [x, y, visibility], x and y normalised over all joints (the person box).
    """
    normalised, _, _ = normalize_2d(keypoints)
    return np.concatenate([normalised, visibility[..., None]], axis=-1).astype(np.float32)


def pose3d_features(poses: np.ndarray) -> np.ndarray:
    """poses: (N, 17, 3) mm, camera frame -> (N, 17, 3) float32 metres, pelvis at the origin."""
    return (root_centred(poses) / MM_PER_M).astype(np.float32)


def box_frame(points: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """The box normalisation of ``model.pose.normalization.normalize_2d`` as a frame: points (N, J, 2), visible (N, J)
    bool -> (N, 3) float64 centre x, y and scale, so that ``points = normalised * scale + centre``."""
    _, centre, scale = normalize_2d(points, visible)
    return np.concatenate([centre, scale[:, None]], axis=-1).astype(np.float64)


def cropped_pose2d_features(pixels: np.ndarray, confidence: np.ndarray, intrinsics: Intrinsics, *,
                            with_frame: bool = False) -> tuple[np.ndarray, ...]:
    """pixels: (N, 17, 2) (NaN where missing); confidence: (N, 17), 0 = missing; intrinsics: N rows.

    returns: (N, 17, 3) float32 ``pose2d_features`` of the perspective crop, (N, 3, 3) real -> virtual camera
        rotation, (N,) undistortion residual (``model.pose.perspective_crop.undistort_rays``), and with ``with_frame``
        the crop's frame (N, 3) (module docstring).
    """
    visible = (confidence > 0) & finite_points(pixels)
    crop, rotation, residual = perspective_crop(pixels, intrinsics, visible)
    features = pose2d_features(np.where(visible[..., None], crop, np.nan), confidence)
    if not with_frame:
        return features, rotation, residual
    return features, rotation, residual, box_frame(np.where(visible[..., None], crop, 0.0), visible)


def cropped_image_features(pixels: np.ndarray, visibility: np.ndarray, intrinsics: Intrinsics, *,
                           with_frame: bool = False) -> tuple[np.ndarray, ...]:
    """pixels: (N, 17, 2) detector joints; visibility: (N, 17); intrinsics: N rows.

    returns: (N, 17, 3) float32 ``image_features`` of the perspective crop (of all joints, as the detector
        always gives them), (N, 3, 3) real -> virtual camera rotation, and with ``with_frame`` the crop's frame
        (N, 3) (module docstring).
    """
    crop, rotation, _ = perspective_crop(pixels, intrinsics)
    features = image_features(crop, visibility)
    return (features, rotation, box_frame(crop)) if with_frame else (features, rotation)
