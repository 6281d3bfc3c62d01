"""User poses and embeddings -> the encoders' inputs, validated with errors that name the field.

Features are made exactly as the builder made them for training (``model.pose.features``): 2D in any supported layout
goes to unihpr17 (``model.pose.joint_formulas.layout_to_unihpr17``: the shared joint formulas for coco17 and
blazepose33, the convention conversion for the field's h36m17), then the perspective crop with the input's camera
(``service.camera``) and the box normalisation with one confidence per joint; 3D goes root-relative, camera frame,
metres. Each pose is parsed and checked on its own (so an error names its field);
the joint formulas and features then run once per batch and layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import NamedTuple

import numpy as np

from model.pose.features import Pose2DRows, cropped_pose2d_features, pose2d_rows, pose3d_features
from model.pose.joint_conventions import CONVENTIONS, OURS, convert_joints
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.joint_layouts import LAYOUTS, REQUEST_LAYOUTS_2D
from model.pose.perspective_crop import UNDISTORT_TOLERANCE
from model.pose.skeleton import NUM_JOINTS, ROOT
from model.pose.units import MM_PER_M
from service.camera import CameraChoice, distortion_error, pose2d_cameras
from service.errors import (
    InvalidEmbeddingError,
    InvalidPoseError,
    UnihprError,
    UnknownSkeletonError,
    raise_first,
    subfield,
)
from service.schemas.inputs import EmbeddingInput, Pose2DInput, Pose3DInput

MAX_JOINT_DISTANCE_MM = 3000.0  # no joint of a person is 3 m from the pelvis
MIN_POSE_EXTENT_MM = 100.0  # a whole body spans far more; less means metres sent as mm
MIN_EXTENT_PX = 1e-6  # visible 2D joints must not all sit on one point
MAX_ABS_COORDINATE = 1e7  # pixels or mm: beyond this a value is an error, and squares would overflow
IDENTITY = np.eye(3)
IDENTITY.setflags(write=False)


def _check_values(rows: np.ndarray, present: np.ndarray, field: str) -> None:
    finite = np.isfinite(rows).all(axis=1) | ~present
    if not finite.all():
        raise InvalidPoseError("keypoints must be finite numbers (no NaN or Infinity)", f"{field}[{np.argmin(finite)}]")
    big = (np.abs(np.where(present[:, None], rows, 0.0)) > MAX_ABS_COORDINATE).any(axis=1)
    if big.any():
        raise InvalidPoseError(f"a coordinate exceeds {MAX_ABS_COORDINATE:g} in magnitude",
                               f"{field}[{np.argmax(big)}]")


def parse_keypoints(keypoints: list, widths: tuple[int, ...], field: str,
                    allow_missing: bool) -> tuple[np.ndarray, np.ndarray]:
    """(K, W) float64 rows, W = max(widths), and (K,) bool present; a short row [x, y] gets confidence 1.

    Missing joints (null) are NaN rows. Raises InvalidPoseError naming ``field[j]`` for a row of the wrong
    length, a non-finite or absurdly large value, or (``allow_missing=False``) a null.
    """
    width = max(widths)
    try:  # fast path: a regular list of lists of numbers
        rows = np.array(keypoints, dtype=np.float64)
    except (ValueError, TypeError):
        rows = None
    if rows is not None and rows.ndim == 2 and rows.shape[1] in widths:
        present = np.ones(len(rows), bool)
        if rows.shape[1] < width:
            rows = np.concatenate([rows, np.ones((len(rows), width - rows.shape[1]))], axis=1)
        _check_values(rows, present, field)
        return rows, present
    rows = np.full((len(keypoints), width), np.nan)
    present = np.zeros(len(keypoints), bool)
    for j, point in enumerate(keypoints):
        if point is None:
            if not allow_missing:
                raise InvalidPoseError("every 3D joint is required (no nulls)", f"{field}[{j}]")
            continue
        if len(point) not in widths:
            raise InvalidPoseError(f"a joint has {' or '.join(map(str, widths))} numbers, got {len(point)}",
                                   f"{field}[{j}]")
        rows[j, : len(point)] = point
        rows[j, len(point):] = 1.0  # [x, y] means confidence 1
        present[j] = True
    _check_values(rows, present, field)
    return rows, present


def _parse_pose2d(item: Pose2DInput, field: str) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) pixels (NaN where missing) and (K,) confidence in the item's own layout."""
    kp_field = subfield(field, "keypoints")
    if item.layout not in REQUEST_LAYOUTS_2D:
        raise UnknownSkeletonError(f"unknown layout {item.layout!r}", subfield(field, "layout"))
    expected = LAYOUTS[item.layout].size
    if len(item.keypoints) != expected:
        raise InvalidPoseError(f"{item.layout} has {expected} keypoints, got {len(item.keypoints)}", kp_field)
    rows, present = parse_keypoints(item.keypoints, (2, 3), kp_field, allow_missing=True)
    conf = np.where(present, rows[:, 2], 0.0)
    bad = np.flatnonzero((conf < 0) | (conf > 1))
    if len(bad):
        raise InvalidPoseError("confidence must lie in [0, 1]", f"{kp_field}[{bad[0]}]")
    if item.image_size is not None and not all(0 < side <= MAX_ABS_COORDINATE for side in item.image_size):
        raise InvalidPoseError(f"image_size must be positive and at most {MAX_ABS_COORDINATE:g} pixels",
                               subfield(field, "image_size"))
    xy = rows[:, :2]
    if item.coordinates == "normalized" and item.image_size is not None:
        xy = xy * np.asarray(item.image_size, dtype=np.float64)
    return np.where((conf > 0)[:, None], xy, np.nan), conf


def _parse_uniform(items: list[Pose2DInput]) -> tuple[np.ndarray, np.ndarray] | None:
    """What ``_parse_pose2d`` gives for every item, computed on one array, when the batch is uniform and valid:
    one layout, every keypoint given as [x, y] or every one as [x, y, c], finite, in range, confidences in
    [0, 1], image sizes in range. Returns (n, K, 2) pixels (NaN where c = 0) and (n, K) confidence; None
    otherwise: the per-item path then finds the fault and names its field."""
    layout = items[0].layout
    if layout not in REQUEST_LAYOUTS_2D or any(item.layout != layout for item in items):
        return None
    rows = _uniform_rows(items, LAYOUTS[layout].size)  # (n, K, W)
    parsed = None if rows is None else uniform_keypoints(rows)
    if parsed is None:
        return None
    xy, conf = parsed
    sized = [i for i, item in enumerate(items) if item.image_size is not None]
    for i in sized:
        if not all(0 < side <= MAX_ABS_COORDINATE for side in items[i].image_size):
            return None
    normalized = [i for i in sized if items[i].coordinates == "normalized"]
    if normalized:
        xy = xy.copy()
        xy[normalized] *= np.array([items[i].image_size for i in normalized])[:, None, :]
    return xy, conf


def uniform_keypoints(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(n, K, W) keypoints, W = 2 ([x, y]) or 3 ([x, y, c]), -> (n, K, 2) pixels (NaN where c = 0) and (n, K)
    confidence, when every value is finite and in range and every confidence in [0, 1] (what ``_parse_pose2d``
    accepts); None otherwise."""
    if rows.shape[2] not in (2, 3):
        return None
    if not np.abs(rows).max() <= MAX_ABS_COORDINATE:  # one pass for both: the maximum of a NaN is NaN
        return None
    if rows.shape[2] == 2:
        return rows, np.ones(rows.shape[:2])
    conf = rows[..., 2]
    if not (conf.min() >= 0 and conf.max() <= 1):
        return None
    return np.where((conf > 0)[..., None], rows[..., :2], np.nan), conf


def _uniform_rows(items: list[Pose2DInput], size: int) -> np.ndarray | None:
    """(n, size, W) float64 keypoints of a batch whose poses each give ``size`` joints, all with the same number W
    of values; None when one has another count, a joint of another width or a null joint. The values are read
    in one pass over the flattened lists (``np.array`` on the nested lists takes about twice as long)."""
    if any(len(item.keypoints) != size for item in items):
        return None
    joints = list(chain.from_iterable(item.keypoints for item in items))  # n * size lists of W numbers
    try:
        widths = set(map(len, joints))
    except TypeError:  # a null joint
        return None
    if len(widths) != 1:
        return None
    (width,) = widths
    values = np.fromiter(chain.from_iterable(joints), np.float64, count=len(joints) * width)
    return values.reshape(len(items), size, width)


def _parse_each(items: list[Pose2DInput], fields: list[str],
                errors: list[tuple[int, UnihprError]]) -> tuple[np.ndarray, np.ndarray]:
    """The per-item path: each pose parsed and checked on its own, its errors (naming its field) added to
    ``errors``; then converted to unihpr17 per layout. Returns (n, 17, 2) pixels and (n, 17) confidence."""
    parsed = []
    for i, (item, field) in enumerate(zip(items, fields)):
        try:
            parsed.append(_parse_pose2d(item, field))
        except UnihprError as err:
            errors.append((i, err))
            size = LAYOUTS[item.layout].size if item.layout in LAYOUTS else NUM_JOINTS
            parsed.append((np.full((size, 2), np.nan), np.zeros(size)))
    joints = np.empty((len(items), NUM_JOINTS, 2))
    confidence = np.empty((len(items), NUM_JOINTS))
    if errors:
        return joints, confidence
    for layout in sorted({item.layout for item in items}):
        idx = [i for i, item in enumerate(items) if item.layout == layout]
        xy = np.stack([parsed[i][0] for i in idx])  # (n, K, 2)
        conf = np.stack([parsed[i][1] for i in idx])  # (n, K)
        joints[idx], confidence[idx] = layout_to_unihpr17(xy, layout, conf)  # (n, 17, 2), (n, 17)
    return joints, confidence


class Pose2DBatch(NamedTuple):
    """2D poses ready for the pose2d encoder.

    features: (N, 17, 3) float32 of the perspective crop (``model.pose.features``). crop: (N, 3, 3) real -> virtual
    camera rotation (identity for poses on the optical axis). cameras: per pose, what was assumed. frames: (N, 3)
    the crop's frame (``model.pose.features``: its rays are the features' x, y * scale + centre), NaN for poses on the
    optical axis (no image geometry: no rays).
    """

    features: np.ndarray
    crop: np.ndarray
    cameras: list[CameraChoice]
    frames: np.ndarray


def visibility_errors(rows: Pose2DRows, fields: Sequence[str], min_visible: int,
                      errors: list[tuple[int, UnihprError]]) -> None:
    """Adds to ``errors`` each pose of ``rows`` (``model.pose.features.pose2d_rows``) with fewer than ``min_visible``
    visible joints or whose visible joints all lie on one point."""
    if rows.visible.min(initial=NUM_JOINTS) >= min_visible and rows.extent.min(initial=np.inf) > MIN_EXTENT_PX:
        return  # the common batch: two reductions instead of the four operations that find the faults
    for i in np.flatnonzero((rows.visible < min_visible) | ~(rows.extent > MIN_EXTENT_PX)):
        if rows.visible[i] < min_visible:
            errors.append((i, InvalidPoseError(f"{rows.visible[i]} of {NUM_JOINTS} h36m17 joints are visible; at "
                                               f"least {min_visible} needed", subfield(fields[i], "keypoints"))))
        else:
            errors.append((i, InvalidPoseError("the visible keypoints all lie on one point",
                                               subfield(fields[i], "keypoints"))))


def pose2d_to_features(items: list[Pose2DInput], fields: list[str], min_visible: int) -> Pose2DBatch:
    """2D poses -> pose2d-encoder features, each through the perspective crop of its camera (``service.camera``).

    ``normalized`` coordinates are multiplied back by ``image_size`` (when given) so the aspect ratio is right.
    A pose without image geometry (no ``image_size``, no ``camera.principal_point``) is taken as on the optical
    axis: its box-normalised pixels as they are, so their scale and offset do not matter. A pose needs
    ``min_visible`` visible h36m17 joints (after the joint formulas) that do not all sit on one point. The crop
    runs once for the whole batch.
    """
    n = len(items)
    cameras, errors = pose2d_cameras(items, fields)
    on_axis = cameras.on_axis
    uniform = _parse_uniform(items)
    if uniform is not None:
        xy, conf = uniform
        poses = pose2d_rows(xy, conf, items[0].layout)
    else:
        joints, confidence = _parse_each(items, fields, errors)
        raise_first(errors)
        poses = pose2d_rows(joints, confidence)  # already unihpr17
    visibility_errors(poses, fields, min_visible, errors)
    raise_first(errors)

    crop = np.repeat(IDENTITY[None], n, axis=0)
    frames = np.full((n, 3), np.nan)
    out = poses.features  # the box-normalised pixels, no crop: right for poses without image geometry
    if not on_axis.all():
        rows = np.flatnonzero(~on_axis)
        out[rows], crop[rows], residual, frames[rows] = cropped_pose2d_features(
            poses.joints[rows], poses.confidence[rows], cameras.intrinsics[rows], with_frame=True)
        for j in np.flatnonzero(residual > UNDISTORT_TOLERANCE):
            errors.append((rows[j], distortion_error(float(residual[j]), fields[rows[j]])))
    if not (np.isfinite(out).all() and np.isfinite(crop).all()):  # two passes when all is well, as it nearly always is
        for i in np.flatnonzero(~(np.isfinite(out).all(axis=(1, 2)) & np.isfinite(crop).all(axis=(1, 2)))):
            if not any(e[0] == i for e in errors):
                where, context = "keypoints", ""
                if not on_axis[i]:
                    where, context = "camera" if items[i].camera is not None else "image_size", " with this camera"
                errors.append((i, InvalidPoseError(f"the keypoints do not normalise to finite values{context}",
                                                   subfield(fields[i], where))))
    raise_first(errors)
    return Pose2DBatch(out, crop, [cameras.choice(i) for i in range(n)], frames)


def pose3d_to_camera_mm(item: Pose3DInput, field: str, world_to_camera: np.ndarray) -> np.ndarray:
    """A 3D pose -> (17, 3) float64 mm, root-relative, camera frame.

    ``frame: world_yup`` poses are rotated by ``world_to_camera`` (the bundle's first virtual view). The encoders
    read a pose as a camera sees it (OpenCV axes, y down): a Y-up world pose fed as it is would look upside down
    and lying in an unseen orientation. Any camera of the ring would do for retrieval, since the database holds
    every pose under all its virtual views; view 0 is one of exactly those views, so a database pose given in its
    own world frame reproduces that view's indexed vector (score 1) instead of a near miss from a new angle.
    """
    kp_field = subfield(field, "keypoints")
    if item.layout not in CONVENTIONS:
        raise UnknownSkeletonError(f"3D poses use {' or '.join(CONVENTIONS)}, got {item.layout!r}",
                                   subfield(field, "layout"))
    if len(item.keypoints) != NUM_JOINTS:
        raise InvalidPoseError(f"{item.layout} has {NUM_JOINTS} joints, got {len(item.keypoints)}", kp_field)
    rows, _ = parse_keypoints(item.keypoints, (3,), kp_field, allow_missing=False)
    pose = convert_joints(rows * (MM_PER_M if item.units == "m" else 1.0), item.layout, OURS)
    pose = pose - pose[ROOT]
    if item.frame == "world_yup":
        pose = pose @ world_to_camera.T
    reach = np.linalg.norm(pose, axis=-1).max()
    extent = np.ptp(pose, axis=0).max()
    if reach > MAX_JOINT_DISTANCE_MM:
        hint = " (are these mm sent with units: m?)" if item.units == "m" else ""
        raise InvalidPoseError(f"a joint lies {reach:.0f} mm from the pelvis; at most {MAX_JOINT_DISTANCE_MM:.0f} "
                               f"mm is plausible{hint}", kp_field)
    if extent < MIN_POSE_EXTENT_MM:
        raise InvalidPoseError(f"the pose spans only {extent:.1f} mm; metres need \"units\": \"m\"", kp_field)
    return pose


def pose3d_to_features(items: list[Pose3DInput], fields: list[str], world_to_camera: np.ndarray) -> np.ndarray:
    """3D poses -> (N, 17, 3) float32 pose3d-encoder features (metres, root-relative, camera frame); the range
    checks of ``pose3d_to_camera_mm`` keep them finite."""
    return pose3d_features(np.stack([pose3d_to_camera_mm(item, field, world_to_camera)
                                     for item, field in zip(items, fields)]))


def embedding_to_vector(item: EmbeddingInput, field: str, dim: int) -> np.ndarray:
    """A given embedding -> (1, D) float32, L2-normalised."""
    vec = np.asarray(item.embedding, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(vec))
    if len(bad):
        raise InvalidEmbeddingError("embedding values must be finite", subfield(field, f"embedding[{bad[0]}]"))
    if vec.shape != (dim,):
        raise InvalidEmbeddingError(f"the embedding has {vec.size} values; this bundle's dimension is {dim}",
                                    subfield(field, "embedding"))
    scale = np.abs(vec).max()
    if not scale > 0:
        raise InvalidEmbeddingError("the embedding is all zeros", subfield(field, "embedding"))
    vec = vec / scale  # first to [-1, 1]: the norm of values near 1e308 would overflow to inf
    return (vec / np.linalg.norm(vec)).astype(np.float32)[None]
