"""Rotation matrices from the parameterisations the mocap formats store (numpy, float64).

One implementation each, shared by every reader: quaternions (DeepMimic, the H36M camera file) and exponential
maps (CMU arrays). BVH Euler channels stay with the BVH parser (``index_builder.ingest.bvh.axis_rotation``).
"""

from __future__ import annotations

import numpy as np

EXPMAP_EPS = 1e-8  # below this angle (rad) the rotation is the identity


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions, real part first.

    q: (..., 4) float (w, x, y, z), normalised here (DeepMimic stores some that are not unit length).
    returns: (..., 3, 3) float64 R with ``R @ v`` equal to VideoPose3D's ``qrot(q, v)``.
    """
    q = np.asarray(q, dtype=np.float64)
    assert q.shape[-1] == 4, q.shape
    w, x, y, z = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def expmap_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: R = I + sin(theta) K + (1 - cos(theta)) K K, theta = |r|, K the cross matrix of r / theta.

    r: (..., 3) float, axis times angle in radians.
    returns: (..., 3, 3) float64.
    """
    r = np.asarray(r, dtype=np.float64)
    assert r.shape[-1] == 3, r.shape
    theta = np.linalg.norm(r, axis=-1)
    k = r / np.maximum(theta, EXPMAP_EPS)[..., None]
    zero = np.zeros_like(theta)
    cross = np.stack([
        np.stack([zero, -k[..., 2], k[..., 1]], axis=-1),
        np.stack([k[..., 2], zero, -k[..., 0]], axis=-1),
        np.stack([-k[..., 1], k[..., 0], zero], axis=-1),
    ], axis=-2)
    sin, cos = np.sin(theta)[..., None, None], np.cos(theta)[..., None, None]
    return np.eye(3) + sin * cross + (1.0 - cos) * (cross @ cross)
