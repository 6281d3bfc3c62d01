"""Pinhole cameras: world -> camera -> pixels, OpenCV axes (x right, y down, z forward); numpy only.

World frames here are Y up (as BVH files are), millimetres. A ``Camera`` may hold a batch: every field then
carries the same leading dimensions, and points broadcast against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORLD_UP = np.array([0.0, 1.0, 0.0])
CAMERA_FIELDS = ("rotation", "position", "focal", "center", "size", "distortion")


@dataclass(frozen=True)
class Camera:
    """A pinhole camera, with OpenCV's lens distortion where ``distortion`` is set.

    rotation: (*B, 3, 3) world -> camera rotation (rows are the camera's x, y, z axes in world coordinates).
    position: (*B, 3) camera centre in world coordinates, mm.
    focal: (*B, 2) focal lengths (fx, fy), pixels.
    center: (*B, 2) principal point (cx, cy), pixels.
    size: (*B, 2) image width and height, pixels.
    distortion: (*B, 5) k1, k2, p1, p2, k3 (``model.pose.perspective_crop``), or None for none.
    ``project_to_pixels`` is the pinhole projection; ``model.pose.perspective_crop.rays_to_pixels`` applies the lens.
    """

    rotation: np.ndarray
    position: np.ndarray
    focal: np.ndarray
    center: np.ndarray
    size: np.ndarray
    distortion: np.ndarray | None = None

    def __getitem__(self, index) -> Camera:
        return Camera(*(None if getattr(self, f) is None else getattr(self, f)[index] for f in CAMERA_FIELDS))

    def __len__(self) -> int:
        return self.position.shape[0]


def world_to_camera(points: np.ndarray, camera: Camera) -> np.ndarray:
    """points: (*B, J, 3) world, mm -> (*B, J, 3) camera frame, mm."""
    assert points.shape[-1] == 3, points.shape
    return np.einsum("...ij,...nj->...ni", camera.rotation, points - camera.position[..., None, :])


def camera_to_world(points: np.ndarray, camera: Camera) -> np.ndarray:
    """points: (*B, J, 3) camera frame, mm -> (*B, J, 3) world, mm."""
    assert points.shape[-1] == 3, points.shape
    return np.einsum("...ji,...nj->...ni", camera.rotation, points) + camera.position[..., None, :]


def project_to_pixels(points: np.ndarray, camera: Camera) -> np.ndarray:
    """points: (*B, J, 3) camera frame, mm, z > 0 -> (*B, J, 2) pixels."""
    assert points.shape[-1] == 3, points.shape
    return points[..., :2] / points[..., 2:3] * camera.focal[..., None, :] + camera.center[..., None, :]


def project_world(points: np.ndarray, camera: Camera) -> np.ndarray:
    """points: (*B, J, 3) world, mm -> (*B, J, 2) pixels."""
    return project_to_pixels(world_to_camera(points, camera), camera)


def look_at(position: np.ndarray, target: np.ndarray, roll_deg: np.ndarray | float = 0.0) -> np.ndarray:
    """Rotation of a camera at ``position`` looking at ``target`` with the world's up pointing up in the image.

    position, target: (*B, 3) world, mm. roll_deg: (*B,) rotation about the viewing axis, degrees.
    returns: (*B, 3, 3) world -> camera rotation, OpenCV axes.
    """
    forward = target - position
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    # Image y points down, so x (right) = forward x up; degenerate only when looking straight up or down.
    right = np.cross(forward, WORLD_UP)
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward], axis=-2)
    roll = np.deg2rad(np.asarray(roll_deg, dtype=np.float64))
    c, s = np.cos(roll), np.sin(roll)
    zero, one = np.zeros_like(c), np.ones_like(c)
    roll_matrix = np.stack(
        [np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2
    )
    return roll_matrix @ rotation
