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

import numpy as np

from model.pose.joint_combinations import finite_points
from model.pose.normalization import normalize_2d
from model.pose.perspective_crop import Intrinsics, perspective_crop
from model.pose.skeleton import root_centred
from model.pose.units import MM_PER_M

MODALITIES = ("image", "pose2d", "pose3d")  # the encoders' inputs, in the order every table lists them


def pose2d_features(keypoints: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """keypoints: (N, 17, 2) pixels (NaN where missing); confidence: (N, 17) in [0, 1], 0 = missing.

    returns: (N, 17, 3) float32 [x, y, confidence], x and y normalised over the joints with confidence > 0.
    """
    if confidence is None:
        confidence = np.ones(keypoints.shape[:2])
    finite = finite_points(keypoints)
    if not finite.all():  # nan_to_num and the masking cost more than the rest for a single pose: only when needed
        confidence = np.where(finite, confidence, 0.0)
        keypoints = np.nan_to_num(keypoints)
    normalised, _, _ = normalize_2d(keypoints, confidence > 0)
    return np.concatenate([normalised, confidence[..., None]], axis=-1).astype(np.float32)


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
