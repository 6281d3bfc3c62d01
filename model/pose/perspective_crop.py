"""Perspective crops: 2D seen by any real camera -> 2D as a camera aimed at the person would see it; numpy only.

Every 2D input (user keypoints, detector landmarks, training views) goes through ``perspective_crop`` before the
box normalisation of ``model.pose.normalization``: the pixels are undistorted (OpenCV's lens model), turned into rays
with the intrinsics, and rotated into a *virtual camera* whose optical axis passes through the centre of the
person's box (Yu et al., "PCLs: Geometry-aware Neural Reconstruction of 3D Pose with Perspective Crop Layers",
CVPR 2021). The encoders then see every person on the optical axis, as a camera aimed at them would, wherever they
stand in the real image; the lifted 3D comes out in the virtual camera's frame and ``crop_rotation``'s transpose
takes it back to the real camera's frame.

Why a crop and not ray features: the box normalisation, the database's virtual views and the detector noise model
all assume a person on the axis, and a rotation is exact and cheap to undo; ray inputs would change every encoder.

Units: "rays" are undistorted normalised image coordinates (x / z, y / z), OpenCV axes (x right, y down).
Distortion: OpenCV's order (k1, k2, p1, p2, k3), fewer values mean trailing zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_FOV_DEG = 60.0  # horizontal field of view assumed when neither the camera nor EXIF gives one
MM_35_FILM_WIDTH = 36.0  # EXIF FocalLengthIn35mmFilm is relative to this film width, mm
UNDISTORT_ITERATIONS = 20
UNDISTORT_TOLERANCE = 1e-6  # rays: a residual above this after the iterations means the model does not invert


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics with lens distortion, one row per pose.

    focal: (N, 2) fx, fy, pixels. principal_point: (N, 2) cx, cy, pixels. distortion: (N, 5) k1, k2, p1, p2, k3.
    """

    focal: np.ndarray
    principal_point: np.ndarray
    distortion: np.ndarray

    def __getitem__(self, index) -> Intrinsics:
        return Intrinsics(self.focal[index], self.principal_point[index], self.distortion[index])

    def __len__(self) -> int:
        return self.focal.shape[0]


def focal_from_fov(width: np.ndarray, fov_deg: np.ndarray | float = DEFAULT_FOV_DEG) -> np.ndarray:
    """width: (N,) image width, pixels; fov_deg: horizontal field of view -> (N,) focal length, pixels."""
    return np.asarray(width, dtype=np.float64) / 2.0 / np.tan(np.deg2rad(np.asarray(fov_deg, np.float64)) / 2.0)


def focal_from_35mm(width: np.ndarray, focal_35mm: np.ndarray | float) -> np.ndarray:
    """EXIF FocalLengthIn35mmFilm (mm) -> focal length, pixels: f35 / 36 mm of film width x the image width."""
    return np.asarray(focal_35mm, dtype=np.float64) / MM_35_FILM_WIDTH * np.asarray(width, dtype=np.float64)


def default_intrinsics(image_size: np.ndarray, fov_deg: np.ndarray | float = DEFAULT_FOV_DEG) -> Intrinsics:
    """image_size: (N, 2) width, height, pixels -> the principal point at the image centre, square pixels with the
    horizontal field of view ``fov_deg``, no distortion."""
    size = np.asarray(image_size, dtype=np.float64).reshape(-1, 2)
    focal = focal_from_fov(size[:, 0], fov_deg)
    return Intrinsics(np.stack([focal, focal], -1), size / 2.0, np.zeros((len(size), 5)))


def _coefficients(distortion: np.ndarray) -> tuple[np.ndarray, ...]:
    d = distortion[:, None, :]  # (N, 1, 5) against (N, J) points
    return d[..., 0], d[..., 1], d[..., 2], d[..., 3], d[..., 4]


def distort_rays(rays: np.ndarray, distortion: np.ndarray) -> np.ndarray:
    """OpenCV's lens model. rays: (N, J, 2) undistorted normalised coordinates; distortion: (N, 5).

    returns: (N, J, 2) distorted normalised coordinates.
    """
    k1, k2, p1, p2, k3 = _coefficients(distortion)
    x, y = rays[..., 0], rays[..., 1]
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    return np.stack([x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                     y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], -1)


def undistort_rays(distorted: np.ndarray, distortion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``distort_rays`` by fixed-point iteration, as OpenCV's ``undistortPoints`` does.

    distorted: (N, J, 2); distortion: (N, 5).
    returns: rays (N, J, 2) and the (N, J) residual |distort(rays) - distorted|: above UNDISTORT_TOLERANCE the
        lens model has no inverse near that point (a coefficient far outside any real lens).
    """
    if not distortion.any():
        return distorted.copy(), np.zeros(distorted.shape[:2])
    k1, k2, p1, p2, k3 = _coefficients(distortion)
    rays = distorted.copy()
    for _ in range(UNDISTORT_ITERATIONS):
        x, y = rays[..., 0], rays[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rays = np.stack([(distorted[..., 0] - dx) / radial, (distorted[..., 1] - dy) / radial], -1)
    with np.errstate(invalid="ignore", over="ignore"):
        residual = np.linalg.norm(distort_rays(rays, distortion) - distorted, axis=-1)
    return rays, np.where(np.isfinite(residual), residual, np.inf)


def pixels_to_rays(pixels: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """pixels: (N, J, 2) -> undistorted rays (N, J, 2) and the (N, J) undistortion residual (see ``undistort_rays``)."""
    distorted = (pixels - intrinsics.principal_point[:, None, :]) / intrinsics.focal[:, None, :]
    return undistort_rays(distorted, intrinsics.distortion)


def rays_to_pixels(rays: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """rays: (N, J, 2) undistorted -> (N, J, 2) pixels with the lens distortion applied."""
    distorted = distort_rays(rays, intrinsics.distortion)
    return distorted * intrinsics.focal[:, None, :] + intrinsics.principal_point[:, None, :]


def crop_rotation(direction: np.ndarray) -> np.ndarray:
    """Rotation of a camera onto a virtual camera whose optical axis is ``direction``, keeping the image's down
    direction in the plane of the axis and the real camera's y axis (no roll about the new axis).

    direction: (N, 3) camera frame, any length > 0.
    returns: (N, 3, 3) R with ``R @ direction`` on +z; a camera-frame point p is ``R @ p`` in the virtual camera.
    """
    forward = direction / np.sqrt((direction * direction).sum(-1, keepdims=True))
    fx, fy, fz = forward[..., 0], forward[..., 1], forward[..., 2]
    # right = image-down (0, 1, 0) x forward and down = forward x right, written out: np.cross and np.stack cost
    # tens of microseconds per call, a large part of a one-pose request. Degenerate only for a ray along image y.
    horizontal = np.sqrt(fx * fx + fz * fz)
    rotation = np.empty(forward.shape[:-1] + (3, 3))
    rotation[..., 0, 0], rotation[..., 0, 1], rotation[..., 0, 2] = fz / horizontal, 0.0, -fx / horizontal
    rotation[..., 1, 0] = -fx * fy / horizontal
    rotation[..., 1, 1] = horizontal
    rotation[..., 1, 2] = -fy * fz / horizontal
    rotation[..., 2, :] = forward
    return rotation


def box_centre(points: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """points: (N, J, 2); visible: (N, J) bool -> (N, 2) centre of the box of the visible points."""
    if visible is None:
        visible = np.ones(points.shape[:2], dtype=bool)
    lo = np.where(visible[..., None], points, np.inf).min(axis=1)
    hi = np.where(visible[..., None], points, -np.inf).max(axis=1)
    return (lo + hi) / 2.0


def rotate_rays(rays: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """rays: (N, J, 2) -> (N, J, 2) the same rays in the cameras ``rotation`` (N, 3, 3) turns to."""
    homogeneous = np.concatenate([rays, np.ones(rays.shape[:-1] + (1,))], axis=-1)
    turned = homogeneous @ np.swapaxes(rotation, -1, -2)  # each row's rotation (a matmul: einsum is ~20x slower here)
    return turned[..., :2] / turned[..., 2:3]


def crop_rays(rays: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotate rays into a virtual camera aimed at the centre of the visible ones' box.

    rays: (N, J, 2) undistorted; visible: (N, J) bool, default all.
    returns: crop (N, J, 2) ray coordinates in the virtual camera (invisible joints 0), rotation (N, 3, 3) real ->
        virtual camera (``crop_rotation``).
    """
    if visible is None:
        visible = np.ones(rays.shape[:2], dtype=bool)
    centre = box_centre(rays, visible)
    rotation = crop_rotation(np.concatenate([centre, np.ones((len(centre), 1))], axis=-1))
    safe = np.where(visible[..., None], rays, centre[:, None, :])
    return np.where(visible[..., None], rotate_rays(safe, rotation), 0.0), rotation


def perspective_crop(pixels: np.ndarray, intrinsics: Intrinsics,
                     visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2D keypoints in a real camera -> the same keypoints in a virtual camera aimed at the person.

    pixels: (N, J, 2) (missing joints may hold anything where ``visible`` is False); intrinsics: N rows;
    visible: (N, J) bool, default all.
    returns: crop (N, J, 2) and rotation (N, 3, 3) as ``crop_rays``, and residual (N,) the worst undistortion
        residual of the visible joints.
    """
    if visible is None:
        visible = np.ones(pixels.shape[:2], dtype=bool)
    safe = np.where(visible[..., None], pixels, intrinsics.principal_point[:, None, :])
    rays, residual = pixels_to_rays(safe, intrinsics)
    crop, rotation = crop_rays(rays, visible)
    return crop, rotation, np.where(visible, residual, 0.0).max(axis=1)


def to_real_camera(poses: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """poses: (N, J, 3) in the virtual cameras of ``perspective_crop`` -> (N, J, 3) in the real cameras' frames."""
    return poses @ rotation  # R^T per row, as row vectors (a matmul: einsum takes ~20x as long on 64 poses)


def off_axis_deg(points: np.ndarray) -> np.ndarray:
    """points: (N, 3) camera frame -> (N,) angle between each point's ray and the optical axis, degrees."""
    return np.rad2deg(np.arccos(np.clip(points[:, 2] / np.linalg.norm(points, axis=-1), -1.0, 1.0)))
