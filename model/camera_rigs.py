"""The two camera set-ups training and evaluation view poses through (SPEC section 4); numpy only.

Both aim at the subject's pelvis, and place cameras relative to its horizontal position in every frame, which
re-centres the trajectory: a subject walking 8 m across the capture floor stays in view of every camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.cameras import Camera, look_at

# A person, head to toe with arms up, fits in this many mm; the random rig keeps it inside the image.
BODY_EXTENT_MM = 2000.0


@dataclass(frozen=True)
class RingRig:
    """Fixed cameras on a ring around the subject, as in Human3.6M (4 cameras, about 5 m away)."""

    azimuth_deg: tuple[float, ...] = (42.0, 138.0, 226.0, 317.0)
    radius_mm: tuple[float, ...] = (4900.0, 5300.0, 4500.0, 5700.0)
    height_mm: tuple[float, ...] = (1550.0, 1300.0, 1850.0, 1650.0)
    focal_px: float = 1145.0
    image_size_px: int = 1000

    @property
    def num_cameras(self) -> int:
        return len(self.azimuth_deg)


H36M_LIKE_RIG = RingRig()


def ring_cameras(pelvis: np.ndarray, rig: RingRig = H36M_LIKE_RIG) -> Camera:
    """Every camera of the rig for every pose.

    pelvis: (N, 3) world, mm, Y up.
    returns: Camera with fields of shape (N, C, ...), C = rig.num_cameras.
    """
    n, c = pelvis.shape[0], rig.num_cameras
    az = np.deg2rad(np.asarray(rig.azimuth_deg))
    ring = np.stack([np.sin(az) * rig.radius_mm, np.zeros(c), np.cos(az) * rig.radius_mm], -1)  # (C, 3)
    position = pelvis[:, None, :] * np.array([1.0, 0.0, 1.0]) + ring
    position[..., 1] = np.asarray(rig.height_mm)
    target = np.broadcast_to(pelvis[:, None, :], (n, c, 3))
    return Camera(
        rotation=look_at(position, target),
        position=position,
        focal=np.full((n, c, 2), rig.focal_px),
        center=np.full((n, c, 2), rig.image_size_px / 2.0),
        size=np.full((n, c, 2), float(rig.image_size_px)),
    )


@dataclass(frozen=True)
class RandomCameraConfig:
    """Ranges of the random cameras, sampled uniformly (azimuth and elevation about the pelvis)."""

    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    elevation_deg: tuple[float, float] = (-10.0, 45.0)
    distance_mm: tuple[float, float] = (2500.0, 8000.0)
    focal_px: tuple[float, float] = (600.0, 2000.0)
    roll_deg: tuple[float, float] = (-10.0, 10.0)
    image_size_px: int = 1000
    fill: float = 0.9  # the body extent may cover at most this fraction of the image side


RANDOM_CAMERAS = RandomCameraConfig()


def random_cameras(pelvis: np.ndarray, rng: np.random.Generator, config: RandomCameraConfig = RANDOM_CAMERAS) -> Camera:
    """One random camera per pose.

    pelvis: (N, 3) world, mm, Y up.
    returns: Camera with fields of shape (N, ...). The focal length is capped so that BODY_EXTENT_MM at the
    sampled distance fits in ``fill`` of the image: close cameras get wide lenses, as they must to see a person.
    """
    n = pelvis.shape[0]
    az = np.deg2rad(rng.uniform(*config.azimuth_deg, n))
    el = np.deg2rad(rng.uniform(*config.elevation_deg, n))
    dist = rng.uniform(*config.distance_mm, n)
    direction = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], -1)
    position = pelvis + dist[:, None] * direction
    max_focal = config.fill * config.image_size_px * dist / BODY_EXTENT_MM
    focal = np.minimum(rng.uniform(*config.focal_px, n), max_focal)
    return Camera(
        rotation=look_at(position, pelvis, rng.uniform(*config.roll_deg, n)),
        position=position,
        focal=np.repeat(focal[:, None], 2, axis=1),
        center=np.full((n, 2), config.image_size_px / 2.0),
        size=np.full((n, 2), float(config.image_size_px)),
    )


VIRTUAL_VIEW_HEIGHT_MM = 1600.0  # camera height of the database's virtual views
VIRTUAL_VIEW_DISTANCE_MM = 5000.0
NOMINAL_PELVIS_HEIGHT_MM = 900.0


def virtual_view_rotations(count: int = 8) -> np.ndarray:
    """World -> camera rotations of ``count`` views on a ring (azimuths 0, 360/count, ...), aimed at a standing
    person's pelvis: the database indexes every pose as these cameras see it.

    returns: (count, 3, 3); a root-relative world pose p (17, 3) seen by view v is ``p @ R[v].T``.
    """
    az = np.deg2rad(np.arange(count) * 360.0 / count)
    position = np.stack([np.sin(az) * VIRTUAL_VIEW_DISTANCE_MM, np.full(count, VIRTUAL_VIEW_HEIGHT_MM),
                         np.cos(az) * VIRTUAL_VIEW_DISTANCE_MM], -1)
    target = np.broadcast_to([0.0, NOMINAL_PELVIS_HEIGHT_MM, 0.0], (count, 3))
    return look_at(position, target)
