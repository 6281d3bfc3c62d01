"""Pinhole cameras and the two rigs, against positions computed by hand."""

import numpy as np
import pytest

from model.pose.camera_rigs import BODY_EXTENT_MM, H36M_LIKE_RIG, RANDOM_CAMERAS, random_cameras, ring_cameras
from model.pose.cameras import Camera, camera_to_world, look_at, project_to_pixels, project_world, world_to_camera


def camera_at_origin_looking_along_z(focal=1000.0) -> Camera:
    position = np.zeros(3)
    return Camera(rotation=look_at(position, np.array([0.0, 0.0, 1000.0])), position=position,
                  focal=np.array([focal, focal]), center=np.array([500.0, 400.0]), size=np.array([1000.0, 800.0]))


def test_opencv_axes_by_hand():
    # Looking along +Z with Y up, the world's +X is on the camera's left (X = Y x Z), and world up is image up.
    cam = camera_at_origin_looking_along_z()
    point = np.array([[100.0, 50.0, 1000.0]])
    np.testing.assert_allclose(world_to_camera(point, cam), [[-100.0, -50.0, 1000.0]], atol=1e-9)
    np.testing.assert_allclose(project_world(point, cam), [[500 - 100.0, 400 - 50.0]], atol=1e-9)


def test_rotation_is_proper_and_round_trips():
    rng = np.random.default_rng(0)
    positions = rng.normal(size=(20, 3)) * 3000
    rotation = look_at(positions, np.zeros((20, 3)), roll_deg=rng.uniform(-10, 10, 20))
    np.testing.assert_allclose(rotation @ np.swapaxes(rotation, -1, -2), np.broadcast_to(np.eye(3), (20, 3, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotation), 1.0)
    cam = Camera(rotation, positions, np.full((20, 2), 1000.0), np.full((20, 2), 500.0), np.full((20, 2), 1000.0))
    points = rng.normal(size=(20, 17, 3)) * 500
    np.testing.assert_allclose(camera_to_world(world_to_camera(points, cam), cam), points, atol=1e-9)


def test_target_projects_to_the_principal_point():
    cam = camera_at_origin_looking_along_z()
    np.testing.assert_allclose(project_to_pixels(np.array([[0.0, 0.0, 5000.0]]), cam), [[500.0, 400.0]])


def test_ring_rig_matches_its_description(sample_db):
    poses = sample_db.poses[::500].astype(np.float64)
    cams = ring_cameras(poses[:, 0])
    assert cams.position.shape == (len(poses), H36M_LIKE_RIG.num_cameras, 3)
    horizontal = np.linalg.norm((cams.position - poses[:, None, 0])[..., [0, 2]], axis=-1)
    assert ((horizontal >= 4000) & (horizontal <= 6000)).all()
    assert ((cams.position[..., 1] >= 1200) & (cams.position[..., 1] <= 1900)).all()
    pelvis_px = project_world(poses[:, None, :1, :].repeat(4, axis=1), cams)[..., 0, :]
    np.testing.assert_allclose(pelvis_px, 500.0, atol=1e-6)  # aimed at the pelvis
    px = project_world(np.repeat(poses[:, None], 4, axis=1), cams)
    assert ((px > 0) & (px < 1000)).all()


def test_random_cameras_keep_the_subject_in_view(sample_db):
    rng = np.random.default_rng(1)
    poses = sample_db.poses.astype(np.float64)
    cams = random_cameras(poses[:, 0], rng)
    depth = world_to_camera(poses, cams)[..., 2]
    assert (depth > 0).all()
    px = project_to_pixels(world_to_camera(poses, cams), cams)
    assert ((px >= 0) & (px <= RANDOM_CAMERAS.image_size_px)).all()
    dist = np.linalg.norm(cams.position - poses[:, 0], axis=-1)
    assert dist.min() >= 2500 - 1e-6 and dist.max() <= 8000 + 1e-6
    elevation = np.degrees(np.arcsin((cams.position[:, 1] - poses[:, 0, 1]) / dist))
    assert elevation.min() >= -10 - 1e-6 and elevation.max() <= 45 + 1e-6
    assert cams.focal.max() <= 2000 and cams.focal.min() > 0
    assert (cams.focal[:, 0] <= RANDOM_CAMERAS.fill * 1000 * dist / BODY_EXTENT_MM + 1e-6).all()


@pytest.mark.parametrize("roll", [-10.0, 10.0])
def test_roll_turns_the_image(roll):
    rotation = look_at(np.zeros(3), np.array([0.0, 0.0, 1.0]), roll_deg=roll)
    up_in_image = rotation @ np.array([0.0, 1.0, 0.0])
    assert abs(np.degrees(np.arctan2(up_in_image[0], -up_in_image[1]))) == pytest.approx(abs(roll))
    assert up_in_image[2] == pytest.approx(0.0, abs=1e-12)  # roll turns about the viewing axis only
