"""The perspective crop: lens model, rotation into a camera aimed at the person, and its undoing."""

import numpy as np
import pytest

from index_builder.training.batches import TrainingViews, real_cameras
from index_builder.training.config import AugmentConfig
from index_builder.training.detector_noise import DetectorNoise
from model.pose.camera_rigs import fixed_rig_cameras, inside_image, off_axis, random_cameras
from model.pose.cameras import world_to_camera
from model.pose.perspective_crop import (
    Intrinsics,
    crop_rotation,
    default_intrinsics,
    distort_rays,
    focal_from_35mm,
    focal_from_fov,
    off_axis_deg,
    perspective_crop,
    rays_to_pixels,
    to_real_camera,
    undistort_rays,
)

H36M_LENS = np.array([[-0.20709891, 0.24777518, -0.00142447, -0.0009757, -0.00307515]])  # camera 54138969


def pose_in_front(rng, n=8, offset=(800.0, -300.0, 4000.0)) -> np.ndarray:
    """(n, 17, 3) mm, camera frame: a body-sized cloud of joints away from the optical axis."""
    return rng.normal(size=(n, 17, 3)) * 250.0 + np.asarray(offset)


def test_opencv_lens_model_by_hand():
    # x_d = x (1 + k1 r2 + k2 r4 + k3 r6) + 2 p1 x y + p2 (r2 + 2 x^2), and y likewise (OpenCV's documentation)
    k1, k2, p1, p2, k3 = 0.1, 0.01, 0.001, 0.002, 0.0001
    x, y = 0.3, -0.2
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    expected = [x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y]
    got = distort_rays(np.array([[[x, y]]]), np.array([[k1, k2, p1, p2, k3]]))
    np.testing.assert_allclose(got[0, 0], expected, rtol=0, atol=1e-15)


def test_undistortion_inverts_a_real_lens_and_flags_one_that_cannot_invert():
    rays = np.random.default_rng(0).uniform(-0.45, 0.45, (1, 200, 2))  # a 1000 px image at f 1145 spans +-0.44
    back, residual = undistort_rays(distort_rays(rays, H36M_LENS), H36M_LENS)
    np.testing.assert_allclose(back, rays, atol=1e-9)
    assert residual.max() < 1e-9
    wild = np.array([[-5.0, 40.0, 0.0, 0.0, 0.0]])
    _, residual = undistort_rays(np.array([[[0.9, 0.8]]]), wild)
    assert residual.max() > 1e-6


def test_crop_rotation_aims_the_virtual_camera_along_the_ray_without_roll():
    direction = np.array([[0.3, -0.2, 1.0], [0.0, 0.0, 1.0], [-0.6, 0.4, 0.8]])
    rotation = crop_rotation(direction)
    np.testing.assert_allclose(rotation @ rotation.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (3, 3, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0, atol=1e-12)
    unit = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", rotation, unit), [[0, 0, 1]] * 3, atol=1e-12)
    np.testing.assert_allclose(rotation[1], np.eye(3), atol=1e-12)  # on the axis: no rotation at all
    assert np.abs(rotation[:, 0, 1]).max() < 1e-12  # the virtual x axis stays horizontal in the real camera


def test_the_crop_is_what_a_camera_aimed_at_the_person_sees_and_rotates_back_exactly():
    rng = np.random.default_rng(1)
    poses = pose_in_front(rng)
    intrinsics = Intrinsics(np.full((8, 2), 1145.0), np.full((8, 2), [512.0, 515.0]), np.repeat(H36M_LENS, 8, 0))
    pixels = rays_to_pixels(poses[..., :2] / poses[..., 2:], intrinsics)
    crop, rotation, residual = perspective_crop(pixels, intrinsics)
    assert residual.max() < 1e-9
    virtual = np.einsum("nij,nkj->nki", rotation, poses)
    np.testing.assert_allclose(crop, virtual[..., :2] / virtual[..., 2:], atol=1e-9)
    np.testing.assert_allclose(to_real_camera(virtual, rotation), poses, atol=1e-9)
    # the person is centred in the virtual camera: its box straddles the axis
    assert (crop.min(axis=1) < 0).all() and (crop.max(axis=1) > 0).all()


def test_missing_joints_neither_move_the_crop_nor_leak_into_it():
    rng = np.random.default_rng(2)
    poses = pose_in_front(rng, n=2)
    intrinsics = default_intrinsics(np.array([[1920, 1080]] * 2))
    pixels = rays_to_pixels(poses[..., :2] / poses[..., 2:], intrinsics)
    visible = np.ones((2, 17), bool)
    visible[0, [3, 6]] = False
    garbage = pixels.copy()
    garbage[0, [3, 6]] = 1e9
    crop, _, residual = perspective_crop(garbage, intrinsics, visible)
    assert np.all(crop[0, [3, 6]] == 0) and np.isfinite(crop).all() and np.isfinite(residual).all()


def test_focal_lengths_from_a_field_of_view_and_from_35mm_film():
    np.testing.assert_allclose(focal_from_fov(np.array([1000.0]), 60.0), [500 / np.tan(np.pi / 6)])
    np.testing.assert_allclose(focal_from_fov(np.array([1000.0]), 90.0), [500.0])
    np.testing.assert_allclose(focal_from_35mm(np.array([4032.0]), 26.0), [26 / 36 * 4032])
    default = default_intrinsics(np.array([[1000, 800]]))
    np.testing.assert_allclose(default.principal_point, [[500, 400]])
    assert default.focal[0, 0] == default.focal[0, 1] and not default.distortion.any()


def test_training_cameras_put_people_off_axis_inside_the_image_and_views_rotate_back(sample_db):
    rng = np.random.default_rng(3)
    world = sample_db.poses[rng.integers(0, len(sample_db), 400)].astype(np.float64)
    turned = off_axis(world, random_cameras(world[:, 0], rng), rng)
    assert inside_image(world, turned).all()
    assert np.median(off_axis_deg(world_to_camera(world, turned)[:, 0])) > 3.0
    moved, rig = fixed_rig_cameras(world, rng)
    np.testing.assert_allclose(moved[:, :, 1], world[:, :, 1])  # only moved along the floor
    assert np.hypot(moved[:, 0, 0], moved[:, 0, 2]).max() <= 1500.0 + 1e-6
    placed, cameras = real_cameras(world, rng, AugmentConfig())
    assert inside_image(placed, cameras).all()
    assert (cameras.distortion != 0).any(axis=1).mean() == pytest.approx(0.5, abs=0.1)

    views = TrainingViews(world, 0, AugmentConfig(), DetectorNoise.load()).batch(64)
    real = to_real_camera(views.pose3d.astype(np.float64), views.crop.astype(np.float64))
    lengths = np.linalg.norm(real, axis=-1)
    np.testing.assert_allclose(lengths, np.linalg.norm(views.pose3d, axis=-1), atol=1e-2)  # a rotation
    assert np.isfinite(views.rays).all() and np.abs(views.rays).max() < 2.0
