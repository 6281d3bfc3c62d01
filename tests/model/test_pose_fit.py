"""Geometric re-ranking (model/pose/pose_fit.py, model/retrieval/rerank.py): the fits recover known cameras on noiseless
data and rank the true pose first among distractors; Procrustes; the expected-error curve; the crop's frame."""

from __future__ import annotations

import numpy as np
import pytest

from index_builder.training.batches import NO_AUGMENT, view_poses
from index_builder.training.detector_noise import DetectorNoise
from model.pose.camera_rigs import random_cameras, virtual_view_rotations
from model.pose.features import box_frame
from model.pose.metrics import pa_mpjpe
from model.pose.perspective_crop import rotate_rays
from model.pose.pose_fit import best_rotations, perspective_fit, procrustes_residual, rodrigues, weak_perspective_fit
from model.retrieval.rerank import (
    ErrorCurve,
    candidate_count,
    first_per_key,
    fit_error_curve,
    fit_residuals,
    isotonic,
    method_of,
    rank_order,
    rank_scores,
)


@pytest.fixture(scope="module")
def bodies(sample_db) -> np.ndarray:
    """(200, 17, 3) root-relative world poses (mm) spread over the sample."""
    rows = np.linspace(0, len(sample_db) - 1, 200).astype(int)
    poses = sample_db.poses[rows].astype(np.float64)
    return poses - poses[:, :1]


def random_rotations(rng, n: int) -> np.ndarray:
    return rodrigues(rng.normal(size=(n, 3)))


def test_rodrigues_gives_rotations_and_inverts_with_the_negated_vector():
    w = np.random.default_rng(0).normal(size=(50, 3))
    r = rodrigues(w)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(rodrigues(-w) @ r, np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(rodrigues(np.zeros(3)), np.eye(3))


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The reference: the proper rotation from the SVD of the cross-covariance (Kabsch, with the sign fix)."""
    u, _, vt = np.linalg.svd(np.swapaxes(source, -1, -2) @ target)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    flip = np.ones(u.shape[:-1])
    flip[..., -1] = d
    return np.swapaxes(vt, -1, -2) @ (flip[..., None] * np.swapaxes(u, -1, -2))


def test_best_rotations_are_kabschs_and_proper(bodies):
    """Horn's quaternion gives the rotation the SVD gives: on poses turned and perturbed, on unrelated poses (a poor
    fit, where the SVD needs its reflection fix) and broadcast one target against many sources."""
    rng = np.random.default_rng(8)
    source = bodies - bodies.mean(axis=1, keepdims=True)
    rotation = random_rotations(rng, len(source))
    turned = source @ np.swapaxes(rotation, -1, -2) + rng.normal(0, 20, source.shape)
    turned -= turned.mean(axis=1, keepdims=True)
    unrelated = source[::-1]
    for target in (turned, unrelated, source[:1]):
        got = best_rotations(source, target)
        np.testing.assert_allclose(got, kabsch(*np.broadcast_arrays(source, target)), atol=1e-9)
        np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-12)
    np.testing.assert_allclose(best_rotations(source, source @ np.swapaxes(rotation, -1, -2)), rotation, atol=1e-9)


def test_best_rotations_of_collinear_points_still_turn_them_onto_their_target():
    """Points on a line leave the turn about the line free (Horn's largest eigenvalue is repeated, the adjugate
    vanishes and Jacobi sweeps take over): any rotation that lays the line onto its target is right, and a proper
    one comes back."""
    rng = np.random.default_rng(9)
    line = np.outer(np.linspace(-1.0, 1.0, 17), [300.0, 100.0, 50.0])
    rotation = random_rotations(rng, 5)
    target = line @ np.swapaxes(rotation, -1, -2)
    got = best_rotations(line, target)
    np.testing.assert_allclose(line @ np.swapaxes(got, -1, -2), target, atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-12)


def test_weak_perspective_fit_recovers_a_known_rotation_scale_and_translation_exactly(bodies):
    rng = np.random.default_rng(1)
    n = len(bodies)
    rotation = random_rotations(rng, n)
    scale = rng.uniform(5e-4, 3e-3, n)
    shift = rng.normal(size=(n, 2))
    points = scale[:, None, None] * (bodies @ np.swapaxes(rotation, -1, -2))[..., :2] + shift[:, None]
    fit = weak_perspective_fit(points, np.ones((n, 17)), bodies, iterations=5)
    assert fit.residual.max() < 1e-6  # of a body about 2 units tall
    np.testing.assert_allclose(fit.scale, scale, rtol=1e-9)
    np.testing.assert_allclose(fit.rotation, rotation, atol=1e-9)
    np.testing.assert_allclose(fit.translation, shift, atol=1e-9)
    np.testing.assert_allclose(fit.project(bodies), points, atol=1e-9)


def camera_rotations(rng, n: int) -> np.ndarray:
    """Cameras as real ones see an upright person: any azimuth, tilted up to about 30 degrees (world Y-up ->
    camera, y down)."""
    ring = virtual_view_rotations(36)[rng.integers(0, 36, n)]
    return rodrigues(rng.uniform(-0.5, 0.5, (n, 3))) @ ring


def test_perspective_fit_recovers_a_known_camera_exactly(bodies):
    rng = np.random.default_rng(2)
    n = len(bodies)
    rotation = camera_rotations(rng, n)
    # a person near the optical axis, as the perspective crop's virtual camera sees them, 2.5-8 m away
    translation = np.stack([rng.normal(0, 50, n), rng.normal(0, 50, n), rng.uniform(2500, 8000, n)], -1)
    camera = bodies @ np.swapaxes(rotation, -1, -2) + translation[:, None]
    rays = camera[..., :2] / camera[..., 2:]
    fit = perspective_fit(rays, np.ones((n, 17)), bodies, rounds=30, iterations=2)  # POSIT converges linearly
    assert fit.residual.max() < 1e-9  # rays: about 0.3 across the body
    np.testing.assert_allclose(fit.rotation, rotation, atol=1e-6)
    np.testing.assert_allclose(fit.translation, translation, atol=1e-2)
    np.testing.assert_allclose(fit.project(bodies), rays, atol=1e-9)
    default = perspective_fit(rays, np.ones((n, 17)), bodies)  # the service's rounds: close, not exact
    assert np.median(default.residual) < 1e-4


def test_missing_joints_are_ignored(bodies):
    rng = np.random.default_rng(3)
    rotation = random_rotations(rng, 1)[0]
    points = 1e-3 * (bodies[0] @ rotation.T)[:, :2]
    weights = np.ones(17)
    weights[[3, 13, 16]] = 0.0
    garbage = points.copy()
    garbage[[3, 13, 16]] = 1e6
    for fit in (weak_perspective_fit(garbage, weights, bodies[0], iterations=5),
                weak_perspective_fit(points, weights, bodies[0], iterations=5)):
        assert fit.residual < 1e-7
    np.testing.assert_allclose(weak_perspective_fit(garbage, weights, bodies[0], iterations=5).rotation, rotation,
                               atol=1e-8)


@pytest.mark.parametrize("method", ["pose2d", "pose2d_on_axis"])
def test_the_fit_ranks_the_true_pose_first_among_distractors(bodies, method):
    """A pose seen by a camera the index never used (a pinhole 2.5-6 m away for the perspective fit, scaled
    orthographic for the weak one), against itself in one of the virtual views (another frame: the fit's rotation
    is free) and 199 other poses of the sample, each in a random view."""
    rng = np.random.default_rng(4)
    views = virtual_view_rotations(8)
    for query in range(0, len(bodies), 20):
        view = views[rng.integers(0, 8, len(bodies))]  # (C, 3, 3) each candidate's matched view
        candidates = bodies @ np.swapaxes(view, -1, -2)
        camera = bodies[query] @ camera_rotations(rng, 1)[0].T
        if method == "pose2d":
            camera = camera + np.array([0.0, 0.0, rng.uniform(2500, 6000)])
            rays = camera[:, :2] / camera[:, 2:]
        else:
            rays = camera[:, :2] / 4000.0
        frame = box_frame(rays[None])[0]
        features = np.concatenate([(rays - frame[:2]) / frame[2], np.ones((17, 1))], -1)
        residual = fit_residuals(method, features, candidates, frame if method == "pose2d" else None)
        assert np.argmin(residual) == query, (method, query)
        # the true pose is explained (nearly: the service's 2 POSIT rounds) exactly, in normalised units
        assert residual[query] < 5e-3 and np.sort(residual)[1] > 3 * residual[query]


def test_procrustes_residual_is_zero_for_a_rotated_scaled_copy_and_is_pa_mpjpe(bodies):
    rng = np.random.default_rng(5)
    rotation = random_rotations(rng, 5)
    copies = 1.3 * bodies[:5] @ np.swapaxes(rotation, -1, -2) + rng.normal(size=(5, 1, 3)) * 100
    np.testing.assert_allclose(procrustes_residual(bodies[:5], copies), 0.0, atol=1e-9)
    others = procrustes_residual(bodies[0], bodies[:20])  # one query against 20 candidates
    np.testing.assert_allclose(others, pa_mpjpe(bodies[:20], np.broadcast_to(bodies[0], (20, 17, 3))), atol=1e-9)
    assert others[0] < 1e-9 and (others[1:] > 0).all()
    features = np.asarray(bodies[0] / 1000.0, np.float32)  # pose3d features are metres
    np.testing.assert_allclose(fit_residuals("pose3d", features, copies), procrustes_residual(bodies[0], copies),
                               atol=1e-3)


def test_view_frames_give_the_crop_rays(sample_db):
    """Views carry the frame of their normalised 2D: clean 2D and image features times the scale plus the centre
    are the rays of the crop's virtual camera (what the perspective fit reads)."""
    world = sample_db.poses[:64].astype(np.float64)
    rng = np.random.default_rng(6)
    v = view_poses(world, random_cameras(world[:, 0], rng), rng, DetectorNoise.load(), NO_AUGMENT)
    crop_rays = rotate_rays(v.rays.astype(np.float64), v.crop.astype(np.float64))
    np.testing.assert_allclose(v.clean2d * v.frame[:, None, 2:] + v.frame[:, None, :2], crop_rays, atol=1e-6)
    np.testing.assert_allclose(v.pose2d[..., :2] * v.frame[:, None, 2:] + v.frame[:, None, :2], crop_rays, atol=1e-6)
    # the image features are detector-noisy: their frame maps them near the clean rays, not onto them
    image_rays = v.image[..., :2] * v.image_frame[:, None, 2:] + v.image_frame[:, None, :2]
    assert np.median(np.abs(image_rays - crop_rays)) < 0.05 * np.median(v.frame[:, 2])


def test_ranking_order_and_candidate_count():
    cosine = np.array([0.9, 0.8, 0.7, 0.6])
    residual = np.array([0.05, 0.0, 0.01, 0.0])
    np.testing.assert_allclose(rank_scores(cosine, residual, 10.0), [0.4, 0.8, 0.6, 0.6])
    np.testing.assert_array_equal(rank_order(rank_scores(cosine, residual, 10.0)), [1, 2, 3, 0])  # ties: cosine
    np.testing.assert_array_equal(rank_order(rank_scores(cosine, residual, 0.0)), [0, 1, 2, 3])
    assert candidate_count(10) == 100 and candidate_count(500) == 500
    assert method_of("pose2d", True) == "pose2d" and method_of("pose2d", False) == "pose2d_on_axis"
    assert method_of("image", True) == "image" and method_of("pose3d", False) == "pose3d"
    assert method_of("embedding", False) is None


def test_first_per_key_keeps_the_best_view_of_each_pose_and_drops_placeholders():
    scores = np.array([0.9, 0.85, 0.8, 0.7, 0.6, -np.inf])
    ids = np.array([17, 16, 9, 3, 30, -1])  # views = 8: poses 2, 2, 1, 0, 3
    pose, view, score = first_per_key(scores, ids, 8, 10)
    np.testing.assert_array_equal(pose, [2, 1, 0, 3])
    np.testing.assert_array_equal(view, [1, 1, 3, 6])
    np.testing.assert_allclose(score, [0.9, 0.8, 0.7, 0.6])
    assert len(first_per_key(scores, ids, 8, 2)[0]) == 2
    groups = np.array([0, 0, 1, 1])  # poses 0, 1 in group 0; 2, 3 in group 1
    np.testing.assert_array_equal(first_per_key(scores, ids, 8, 10, groups)[0], [2, 1])
    np.testing.assert_array_equal(first_per_key(scores, ids, 8, 1, groups)[0], [2])
    np.testing.assert_array_equal(first_per_key(scores[-1:], ids[-1:], 8, 10)[0], [])  # placeholders only


def test_first_per_key_is_numpys_first_occurrences():
    rng = np.random.default_rng(3)
    ids = rng.integers(-1, 400, 800)
    scores = np.sort(rng.random(800))[::-1]
    groups = rng.integers(0, 20, 50)
    for group_of_pose in (None, groups):
        key = np.divmod(ids[ids >= 0], 8)[0]
        key = key if group_of_pose is None else group_of_pose[key]
        first = np.sort(np.unique(key, return_index=True)[1])[:100]
        pose, view, score = first_per_key(scores, ids, 8, 100, group_of_pose)
        np.testing.assert_array_equal(pose * 8 + view, ids[ids >= 0][first])
        np.testing.assert_array_equal(score, scores[ids >= 0][first])


def test_isotonic_regression_is_the_nearest_non_decreasing_sequence():
    np.testing.assert_allclose(isotonic(np.array([1.0, 3.0, 2.0, 4.0])), [1.0, 2.5, 2.5, 4.0])
    np.testing.assert_allclose(isotonic(np.array([3.0, 2.0, 1.0])), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(isotonic(np.array([3.0, 1.0]), np.array([3.0, 1.0])), [2.5, 2.5])
    y = np.random.default_rng(7).normal(size=200).cumsum()
    fit = isotonic(y)
    assert (np.diff(fit) >= -1e-12).all()
    np.testing.assert_allclose(fit.mean(), y.mean())  # pooling keeps the weighted mean


def test_error_curve_is_monotone_and_calibrated_on_its_own_pairs():
    rng = np.random.default_rng(8)
    residual = rng.uniform(0, 0.1, 5000)
    error = 400 * residual + rng.normal(0, 3, 5000)  # mm, rising with the residual
    curve = fit_error_curve(residual, error, far_residual=0.099)
    assert (np.diff(curve.error_mm) >= 0).all() and (np.diff(curve.residual) > 0).all()
    predicted = curve.expected_error(residual)
    for part in np.array_split(np.argsort(predicted), 5):  # reliability in bins of the prediction
        assert abs(error[part].mean() - predicted[part].mean()) < 0.1 * predicted[part].mean() + 1.0
    flat = ErrorCurve(np.array([0.0, 1.0]), np.array([5.0, 15.0]), far_residual=0.5)
    np.testing.assert_allclose(flat.expected_error(np.array([-1.0, 0.5, 9.0])), [5.0, 10.0, 15.0])
    np.testing.assert_array_equal(flat.far(np.array([0.4, 0.6])), [False, True])
