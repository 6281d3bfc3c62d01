"""The camera set-ups training and evaluation view poses through (SPEC section 4); numpy only.

The H36M-like ring and the random cameras aim at the subject's pelvis, and place cameras relative to its
horizontal position in every frame, which re-centres the trajectory: a subject walking 8 m across the capture
floor stays in view of every camera. Real cameras do not follow the person: ``off_axis`` turns cameras so the
person sits anywhere in the frame, and ``fixed_rig_cameras`` samples studio rigs aimed at the floor centre with
the subject somewhere on the floor. ``lens_distortion`` samples lenses for either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.pose.cameras import CAMERA_FIELDS, Camera, look_at, world_to_camera
from model.pose.perspective_crop import Intrinsics, crop_rotation, rays_to_pixels

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


@dataclass(frozen=True)
class FixedRigConfig:
    """Studio rigs: each camera on its own ring about the floor centre, aimed near it, and the subject anywhere in
    a disc of the floor (sampled uniformly; heights and distances in mm, angles in degrees)."""

    radius_mm: tuple[float, float] = (3000.0, 7000.0)
    height_mm: tuple[float, float] = (1000.0, 2500.0)
    aim_height_mm: tuple[float, float] = (500.0, 1300.0)
    aim_offset_mm: float = 500.0  # the aim point lies within this of the floor centre
    floor_radius_mm: float = 1500.0  # where the subject's pelvis may stand
    fov_deg: tuple[float, float] = (35.0, 80.0)  # horizontal field of view
    roll_deg: tuple[float, float] = (-5.0, 5.0)
    image_width_px: int = 1000
    aspects: tuple[float, ...] = (1.0, 0.75, 0.5625)  # height / width
    principal_offset: float = 0.02  # the principal point within this fraction of the image side of its centre


FIXED_RIGS = FixedRigConfig()


@dataclass(frozen=True)
class LensConfig:
    """Lens distortion, OpenCV's model, each coefficient uniform in its range (real lenses: k1 -0.3..0.1)."""

    k1: tuple[float, float] = (-0.3, 0.1)
    k2: tuple[float, float] = (-0.1, 0.3)
    tangential: float = 0.002  # p1, p2 uniform in +-this
    k3: tuple[float, float] = (-0.01, 0.01)


LENSES = LensConfig()


def disc(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """(n, 2) points uniform in a disc of ``radius``."""
    r = radius * np.sqrt(rng.random(n))
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a)], -1)


def lens_distortion(n: int, rng: np.random.Generator, config: LensConfig = LENSES) -> np.ndarray:
    """(n, 5) k1, k2, p1, p2, k3."""
    return np.stack([rng.uniform(*config.k1, n), rng.uniform(*config.k2, n),
                     rng.uniform(-config.tangential, config.tangential, n),
                     rng.uniform(-config.tangential, config.tangential, n), rng.uniform(*config.k3, n)], -1)


def intrinsics_of(camera: Camera) -> Intrinsics:
    """The camera's intrinsics as ``model.pose.perspective_crop`` reads them (N rows)."""
    distortion = np.zeros(camera.focal.shape[:-1] + (5,)) if camera.distortion is None else camera.distortion
    return Intrinsics(camera.focal, camera.center, distortion)


def pixels_of(world: np.ndarray, camera: Camera) -> np.ndarray:
    """world: (N, J, 3) mm -> (N, J, 2) pixels through each pose's camera, lens included; NaN behind it."""
    cam3d = world_to_camera(world, camera)
    with np.errstate(divide="ignore", invalid="ignore"):
        rays = np.where(cam3d[..., 2:3] > 1.0, cam3d[..., :2] / cam3d[..., 2:3], np.nan)
    return rays_to_pixels(rays, intrinsics_of(camera))


def inside_image(world: np.ndarray, camera: Camera) -> np.ndarray:
    """(N,) True where every joint of the pose is in front of its camera and projects inside the image."""
    px = pixels_of(world, camera)
    with np.errstate(invalid="ignore"):
        return ((px >= 0) & (px <= camera.size[:, None, :])).all(axis=(1, 2))


def choose(mask: np.ndarray, a: Camera, b: Camera) -> Camera:
    """Per pose, camera ``a`` where ``mask`` (N,) is True, else ``b`` (both hold N cameras)."""
    def pick(x, y):
        if x is None and y is None:
            return None
        x = np.zeros_like(y) if x is None else x
        y = np.zeros_like(x) if y is None else y
        return np.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
    return Camera(*(pick(getattr(a, f), getattr(b, f)) for f in CAMERA_FIELDS))


def off_axis(world: np.ndarray, camera: Camera, rng: np.random.Generator, tries: int = 3) -> Camera:
    """Turn each camera about its centre so the pelvis lands on a uniformly drawn pixel instead of the image
    centre; a draw that takes a joint out of the image is drawn again nearer the centre (halving the offset,
    ``tries`` times), else the camera stays as it was.

    world: (N, 17, 3) mm; camera: N cameras aimed at the pelvis. returns: N cameras.
    """
    n = world.shape[0]
    target = rng.uniform(0, 1, (n, 2)) * camera.size
    out = camera
    pending = np.ones(n, dtype=bool)
    for attempt in range(tries):
        shift = (target - camera.center) / 2.0**attempt
        ray = np.concatenate([shift / camera.focal, np.ones((n, 1))], -1)
        turned = Camera(crop_rotation(ray).transpose(0, 2, 1) @ camera.rotation, camera.position, camera.focal,
                        camera.center, camera.size, camera.distortion)
        ok = pending & inside_image(world, turned)
        out = choose(ok, turned, out)
        pending &= ~ok
    return out


def fixed_rig_cameras(world: np.ndarray, rng: np.random.Generator,
                      config: FixedRigConfig = FIXED_RIGS) -> tuple[np.ndarray, Camera]:
    """Place each pose on a studio floor and draw one camera of a fixed rig for it.

    world: (N, 17, 3) mm, Y up. returns: the poses moved so the pelvis stands at a uniform point of the floor disc
    (N, 17, 3) and N cameras (the lens left undistorted; see ``lens_distortion``). Poses may fall partly outside
    their image: callers keep what ``inside_image`` accepts.
    """
    n = world.shape[0]
    spot = disc(rng, n, config.floor_radius_mm)
    moved = world.copy()
    moved[..., 0] += (spot[:, 0] - world[:, 0, 0])[:, None]
    moved[..., 2] += (spot[:, 1] - world[:, 0, 2])[:, None]
    az = rng.uniform(0, 2 * np.pi, n)
    radius = rng.uniform(*config.radius_mm, n)
    position = np.stack([np.sin(az) * radius, rng.uniform(*config.height_mm, n), np.cos(az) * radius], -1)
    aim_xz = disc(rng, n, config.aim_offset_mm)
    target = np.stack([aim_xz[:, 0], rng.uniform(*config.aim_height_mm, n), aim_xz[:, 1]], -1)
    width = float(config.image_width_px)
    size = np.stack([np.full(n, width), width * rng.choice(config.aspects, n)], -1)
    focal = width / 2.0 / np.tan(np.deg2rad(rng.uniform(*config.fov_deg, n)) / 2.0)
    center = size / 2.0 + rng.uniform(-config.principal_offset, config.principal_offset, (n, 2)) * size
    camera = Camera(rotation=look_at(position, target, rng.uniform(*config.roll_deg, n)), position=position,
                    focal=np.repeat(focal[:, None], 2, axis=1), center=center, size=size)
    return moved, camera
