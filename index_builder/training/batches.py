"""Views of mocap poses as the three modalities see them: the training and evaluation batches.

A batch takes world poses, optionally changes their proportions, joint angles, upper bodies and tilt
(``index_builder.training.pose_augmentation``) and mirrors them, puts a camera in front of each
(a random camera aimed at the pelvis or turned so the person sits anywhere in the frame, a camera of the H36M-like
ring, or a camera of a sampled studio rig with the subject somewhere on its floor; with or without lens
distortion), projects the joints to pixels, and takes the perspective crop (``model.pose.perspective_crop``) with the
camera's intrinsics, or with the service's default field of view for a share of poses, as a request without a
camera gets. It returns for every pose: the root-relative 3D in the crop's virtual camera, the clean 2D,
2D with Gaussian noise and missing joints (what users send), and detector-like image features.

Poses are ``unihpr17`` (``model.pose.joint_conventions``). Where the database has the field's joints too, a share of
the pose2d and pose3d inputs is made from the field's ``h36m17`` convention instead, converted to ``unihpr17`` as
the service converts a request, with the field's thorax (and the head joints above it) moved along the head axis
by a random amount, so the encoders learn both conventions and do not depend on where a rig puts its neck base.
Targets and detector features stay ``unihpr17``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index_builder.datasets.motion_database import MotionDatabase
from index_builder.training.config import AugmentConfig
from index_builder.training.detector_noise import DetectorNoise
from index_builder.training.pose_augmentation import (
    NUM_EXTENDED,
    mix_upper_bodies,
    perturb_joint_angles,
    scale_bones,
    tilt_bodies,
)
from model.pose.camera_rigs import (
    H36M_LIKE_RIG,
    RANDOM_CAMERAS,
    RandomCameraConfig,
    RingRig,
    choose,
    fixed_rig_cameras,
    inside_image,
    intrinsics_of,
    lens_distortion,
    off_axis,
    pixels_of,
    random_cameras,
    ring_cameras,
)
from model.pose.cameras import Camera, world_to_camera
from model.pose.features import image_features, pose2d_features, pose3d_features
from model.pose.joint_conventions import DERIVED_INDEX, FIELD, OURS, SPINE_FRACTION, convert_joints
from model.pose.normalization import normalize_2d
from model.pose.perspective_crop import crop_rays, default_intrinsics, pixels_to_rays, rotate_rays
from model.pose.skeleton import H36M17, ROOT, root_centred

NO_AUGMENT = AugmentConfig(rig_fraction=0.0, fixed_rig_fraction=0.0, off_axis_fraction=0.0, distortion_fraction=0.0,
                           default_fov_fraction=0.0, bone_scale=0.0, global_scale=0.0, mirror=False,
                           noise_2d_prob=0.0, missing_2d_prob=0.0, field_convention_fraction=0.0)


@dataclass(frozen=True)
class Views:
    """One camera view of N poses, after the perspective crop.

    pose3d: (N, 17, 3) float32 mm, root-relative, in the crop's virtual camera. clean2d: (N, 17, 2) float32
    normalised. pose2d, image: (N, 17, 3) float32 encoder features (see ``model.pose.features``). pose3d_features
    likewise. crop: (N, 3, 3) real camera -> virtual camera; ``pose3d`` in the real camera is
    ``model.pose.perspective_crop.to_real_camera(pose3d, crop)``. rays: (N, 17, 2) float32, the 2D before the crop as
    undistorted normalised image coordinates (x / z, y / z): absolute positions with the intrinsics applied.
    frame, image_frame: (N, 3) centre x, y and scale of the box normalisation of clean2d (also of pose2d where it
    has no noise or missing joints) and of the image features, in ray units of the crop's virtual camera:
    its rays are ``x, y * scale + centre`` (``model.pose.features.box_frame``).
    """

    pose3d: np.ndarray
    clean2d: np.ndarray
    pose2d: np.ndarray
    image: np.ndarray
    pose3d_features: np.ndarray
    crop: np.ndarray
    rays: np.ndarray
    frame: np.ndarray | None = None
    image_frame: np.ndarray | None = None


def mirror(poses: np.ndarray) -> np.ndarray:
    """Left-right mirror image: negate world x and swap left and right joints. (N, J, 3) -> (N, J, 3), J = 17 or
    21 (the field's derived joints lie on the midline and keep their place)."""
    perm = np.concatenate([H36M17.mirror_permutation(), np.arange(H36M17.num_joints, poses.shape[1])])
    return (poses * np.array([-1.0, 1.0, 1.0]))[:, perm]


def shift_neck(field: np.ndarray, shift_mm: np.ndarray) -> np.ndarray:
    """Field-convention poses with the thorax, neck/nose and head top moved ``shift_mm`` along the head axis
    (thorax -> head top), the spine kept at its fraction of pelvis -> thorax.

    field: (N, 17, 3) mm h36m17; shift_mm: (N,). returns: (N, 17, 3) mm.
    """
    spine, thorax, nose, top = DERIVED_INDEX
    axis = field[:, top] - field[:, thorax]
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    out = field.copy()
    out[:, [thorax, nose, top]] += shift_mm[:, None, None] * axis[:, None]
    out[:, spine] = out[:, 0] + SPINE_FRACTION * (out[:, thorax] - out[:, 0])
    return out


def view_poses(world: np.ndarray, camera: Camera, rng: np.random.Generator, noise: DetectorNoise,
               augment: AugmentConfig, default_fov: np.ndarray | None = None,
               field: tuple[np.ndarray, np.ndarray] | None = None) -> Views:
    """Project world poses through one camera each, crop, and build every modality's features.

    world: (N, 17, 3) mm, world frame (Y up), unihpr17. camera: fields of shape (N, ...), every joint in front of it.
    default_fov: (N,) bool, crop those poses with ``default_intrinsics`` of the image size (the lens unknown)
        instead of the camera's own intrinsics.
    field: the same poses in the field's h36m17 convention (N, 17, 3) mm and an (N,) bool mask: the pose2d and
        pose3d inputs of those poses are made from them, converted to unihpr17 (2D after the lens, as the
        service converts a request), in the same virtual camera.
    """
    n = world.shape[0]
    intrinsics = intrinsics_of(camera)
    if default_fov is not None and default_fov.any():
        assumed = default_intrinsics(camera.size)
        intrinsics = type(intrinsics)(*(np.where(default_fov[:, None], a, b) for a, b in
                                        zip((assumed.focal, assumed.principal_point, assumed.distortion),
                                            (intrinsics.focal, intrinsics.principal_point, intrinsics.distortion))))
    rays, _ = pixels_to_rays(pixels_of(world, camera), intrinsics)
    crop_2d, crop = crop_rays(rays)
    cam3d = np.einsum("nij,nkj->nki", crop, world_to_camera(world, camera))
    clean, centre, scale = normalize_2d(crop_2d)
    input_clean, input3d = clean, cam3d
    if field is not None and field[1].any():
        rows = np.flatnonzero(field[1])  # only these poses' inputs come from the field's joints
        field_world, seen_by = field[0][rows], camera[rows]
        field_rays = convert_joints(pixels_to_rays(pixels_of(field_world, seen_by), intrinsics[rows])[0], FIELD, OURS)
        input_clean, input3d = clean.copy(), cam3d.copy()
        input_clean[rows] = normalize_2d(rotate_rays(field_rays, crop[rows]))[0]
        input3d[rows] = convert_joints(np.einsum("nij,nkj->nki", crop[rows], world_to_camera(field_world, seen_by)),
                                       FIELD, OURS)

    noisy = input_clean.astype(np.float64)
    sigma = np.where(rng.random(n) < augment.noise_2d_prob, rng.uniform(0, augment.noise_2d_sigma, n), 0.0)
    noisy = noisy + rng.normal(size=noisy.shape) * sigma[:, None, None]
    confidence = np.ones((n, H36M17.num_joints))
    with_missing = np.nonzero(rng.random(n) < augment.missing_2d_prob)[0]
    for i in with_missing:
        confidence[i, rng.choice(H36M17.num_joints, size=rng.integers(1, 4), replace=False)] = 0.0

    detected, visibility = noise.apply(clean, rng)
    _, image_centre, image_scale = normalize_2d(detected.astype(np.float64))  # as image_features normalises
    return Views(
        pose3d=root_centred(cam3d).astype(np.float32),
        clean2d=clean,
        pose2d=pose2d_features(noisy, confidence),
        image=image_features(detected, visibility),
        pose3d_features=pose3d_features(input3d),
        crop=crop.astype(np.float32),
        rays=rays.astype(np.float32),
        frame=np.concatenate([centre, scale[:, None]], -1),
        image_frame=np.concatenate([image_centre * scale[:, None] + centre, (image_scale * scale)[:, None]], -1),
    )


def augment_poses(world: np.ndarray, rng: np.random.Generator, augment: AugmentConfig) -> np.ndarray:
    """Proportions and bone lengths, joint angles, upper bodies mixed within the batch, body tilt, then mirroring
    (``index_builder.training.pose_augmentation``). A part that is off draws nothing, so the rest see the same
    random stream.

    world: (N, J, 3) mm, J = 17 or 21 (``NUM_EXTENDED``) -> (N, J, 3) float64 mm.
    """
    out = world.astype(np.float64)
    widths = tuple(augment.width_scale) != (1.0, 1.0)
    if widths and augment.body_fraction < 1:
        wide = rng.random(len(out)) < augment.body_fraction
        out[wide] = scale_bones(out[wide], rng, augment.bone_scale, augment.global_scale, augment.width_scale)
        out[~wide] = scale_bones(out[~wide], rng, augment.bone_scale, augment.global_scale)
    elif augment.bone_scale or augment.global_scale or widths:
        out = scale_bones(out, rng, augment.bone_scale, augment.global_scale, augment.width_scale)
    if augment.joint_angle_deg:
        out = perturb_joint_angles(out, rng, augment.joint_angle_deg)
    if augment.part_mix_fraction:
        out = mix_upper_bodies(out, rng, augment.part_mix_fraction)
    if augment.tilt_fraction:
        out = tilt_bodies(out, rng, augment.tilt_fraction, augment.tilt_deg)
    if augment.mirror:
        flip = rng.random(len(out)) < 0.5
        out[flip] = mirror(out[flip])
    return out


def sample_cameras(pelvis: np.ndarray, rng: np.random.Generator, rig_fraction: float,
                   rig: RingRig = H36M_LIKE_RIG, random_config: RandomCameraConfig = RANDOM_CAMERAS) -> Camera:
    """One camera aimed at each pelvis: a random H36M-like ring camera with probability ``rig_fraction``, else a
    random camera."""
    n = pelvis.shape[0]
    rnd = random_cameras(pelvis, rng, random_config)
    use_rig = rng.random(n) < rig_fraction
    if not use_rig.any():
        return rnd
    return choose(use_rig, ring_cameras(pelvis, rig)[np.arange(n), rng.integers(0, rig.num_cameras, n)], rnd)


def real_cameras(world: np.ndarray, rng: np.random.Generator, augment: AugmentConfig) -> tuple[np.ndarray, Camera]:
    """Cameras as real ones are: aimed at the pelvis (the ring and some random cameras), turned so the person is
    anywhere in the frame, or fixed studio rigs with the subject somewhere on the floor; lenses with distortion
    for a share. A pose a rig camera cannot see whole keeps its random camera.

    world: (N, 17, 3) mm. returns: the poses (moved onto the studio floor where a rig sees them) and N cameras.
    """
    n = world.shape[0]
    camera = sample_cameras(world[:, ROOT], rng, augment.rig_fraction / max(1e-9, 1 - augment.fixed_rig_fraction))
    turn = rng.random(n) < augment.off_axis_fraction
    if turn.any():
        camera = choose(turn, off_axis(world, camera, rng), camera)
    use_rig = rng.random(n) < augment.fixed_rig_fraction
    if use_rig.any():
        moved, rig = fixed_rig_cameras(world, rng)
        use_rig &= inside_image(moved, rig)
        world = np.where(use_rig[:, None, None], moved, world)
        camera = choose(use_rig, rig, camera)
    lens = rng.random(n) < augment.distortion_fraction
    if lens.any():
        distorted = Camera(camera.rotation, camera.position, camera.focal, camera.center, camera.size,
                           lens_distortion(n, rng))
        camera = choose(lens & inside_image(world, distorted), distorted, camera)
    return world, camera


class TrainingViews:
    """Endless random batches of views of a pose set (for training)."""

    def __init__(self, world: np.ndarray, seed: int, augment: AugmentConfig, noise: DetectorNoise,
                 field_joints: np.ndarray | None = None):
        """world: (N, 17, 3) mm, the training poses; field_joints: (N, 4, 3) mm, their field-convention derived
        joints (``MotionDatabase.field_joints``), or None to train on unihpr17 inputs only."""
        self.world = world if field_joints is None else np.concatenate([world, field_joints], axis=1)
        self.rng = np.random.default_rng(seed)
        self.augment = augment
        self.noise = noise

    def batch(self, size: int) -> Views:
        rows = self.rng.integers(0, len(self.world), size)
        world = augment_poses(self.world[rows], self.rng, self.augment)
        world, camera = real_cameras(world, self.rng, self.augment)
        default_fov = self.rng.random(size) < self.augment.default_fov_fraction
        field = None
        if world.shape[1] == NUM_EXTENDED:
            world, derived = world[:, : H36M17.num_joints], world[:, H36M17.num_joints :]
            field_world = world.copy()
            field_world[:, list(DERIVED_INDEX)] = derived
            field_world = shift_neck(field_world, self.rng.uniform(*self.augment.neck_shift_mm, size))
            field = (field_world, self.rng.random(size) < self.augment.field_convention_fraction)
        return view_poses(world, camera, self.rng, self.noise, self.augment, default_fov, field)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def validation_views(db: MotionDatabase, count: int, seed: int = 1234) -> Views:
    """A fixed set of views of held-out poses through the H36M-like rig, clean 2D, for progress checks."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(db), size=min(count, len(db)), replace=False))
    world = db.poses[rows].astype(np.float64)
    camera = sample_cameras(world[:, 0], rng, rig_fraction=1.0)
    return view_poses(world, camera, rng, DetectorNoise(), NO_AUGMENT)
