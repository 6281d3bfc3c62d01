"""The lifted candidates' parts (``model.retrieval.lifted_candidates``): a descriptor no rotation changes, an index that
finds a pose from any camera, a filter, the best view, one merged list."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from model.pose.camera_rigs import virtual_view_rotations
from model.pose.cameras import look_at
from model.retrieval.lifted_candidates import (
    EXACT_BELOW,
    DescriptorIndex,
    facing_views,
    merge_candidates,
    pose_descriptors,
    views_and_cosines,
)
from model.retrieval.sequence_fit import camera_rotations


def library(n: int, seed: int = 0) -> np.ndarray:
    """(n, 17, 3) mm: body-sized random poses, root at the origin."""
    rng = np.random.default_rng(seed)
    poses = rng.normal(size=(n, 17, 3)) * np.array([250.0, 450.0, 150.0])
    return poses - poses[:, :1]


def rotations(n: int, seed: int = 1) -> np.ndarray:
    """(n, 3, 3) cameras all around and above and below the origin."""
    rng = np.random.default_rng(seed)
    position = rng.normal(size=(n, 3)) * 3000.0
    return look_at(position, np.zeros((n, 3)), rng.uniform(-30, 30, n))


def test_the_descriptor_sees_no_rotation_or_translation_but_sees_the_pose():
    poses = library(5)
    seen = np.einsum("nij,nkj->nki", rotations(5), poses) + np.array([100.0, -2000.0, 4500.0])
    np.testing.assert_allclose(pose_descriptors(seen), pose_descriptors(poses), rtol=1e-5, atol=1e-2)
    assert pose_descriptors(poses).shape == (5, 136)
    bent = poses.copy()
    bent[:, 3] += 80.0  # one joint moved 8 cm
    assert np.abs(pose_descriptors(bent) - pose_descriptors(poses)).max() > 10.0


@pytest.mark.parametrize("n", [300, 2_000, EXACT_BELOW + 5_000])  # exact without and with the PCA, and IVF
def test_a_pose_is_found_from_any_camera(n):
    poses = library(n)
    index = DescriptorIndex(poses)
    assert isinstance(index.index, faiss.IndexIVF) == (n >= EXACT_BELOW) and len(index) == n
    rows = np.random.default_rng(2).choice(n, 50, replace=False)
    noisy = poses[rows] + np.random.default_rng(3).normal(size=(50, 17, 3)) * 5.0  # a lift is not exact
    seen = np.einsum("nij,nkj->nki", rotations(50), noisy)
    found = index.search(seen, 10)
    assert found.shape == (50, 10)
    assert np.mean(found[:, 0] == rows) >= 0.95


@pytest.mark.parametrize("n", [300, 2_000, EXACT_BELOW + 5_000])
def test_stored_descriptors_read_back_as_the_poses_describe(n):
    poses = library(n)
    index = DescriptorIndex(poses)
    rows = np.array([n - 1, 0, 17, 17])
    stored = index.descriptors(rows)
    assert stored.shape == (4, index.describe(poses[:1]).shape[1])
    np.testing.assert_allclose(stored, index.describe(poses[rows]), rtol=1e-4, atol=0.05)


def test_a_filter_keeps_the_search_to_the_allowed_poses():
    poses = library(3_000)
    index = DescriptorIndex(poses)
    allowed = np.zeros(len(poses), bool)
    allowed[::3] = True
    found = index.search(poses[:20], 30, allowed)
    assert (found >= 0).all() and allowed[found].all()
    assert (found[::3, 0] == np.arange(0, 20, 3)).all()  # the allowed queries find themselves


def test_the_facing_view_is_the_virtual_camera_nearest_the_query_camera():
    """A library pose seen by a camera close to view 5 (azimuth off by 10 degrees, a little higher): its lift is
    matched to view 5, whatever the other candidates; and the cosine is that view's stored vector's."""
    poses = library(4)
    views = virtual_view_rotations(8)
    camera = camera_rotations(np.array([5 * 45.0 + 10.0]), np.array([12.0]), np.array([3.0]))[0]
    lifted = (poses[2] @ camera.T)[None] + np.random.default_rng(5).normal(size=(1, 17, 3)) * 5.0
    assert facing_views(lifted, poses[None], views)[0, 2] == nearest_view(views, camera) == 5
    vectors = np.random.default_rng(6).normal(size=(4 * 8, 16))
    query = vectors[2 * 8 + 5][None]
    view, cosine = views_and_cosines(lifted, np.array([[2, -1]]), query, lambda rows: poses[rows], views,
                                     lambda ids: vectors[ids])
    assert view[0, 0] == 5 and cosine[0, 0] == pytest.approx(float(query[0] @ query[0]))
    assert cosine[0, 1] == -np.inf


def nearest_view(views: np.ndarray, camera: np.ndarray) -> int:
    """The view whose rotation is closest to ``camera`` (smallest angle between them)."""
    return int(np.argmax(np.einsum("vij,ij->v", views, camera)))


def test_merged_candidates_are_in_cosine_order_each_pose_or_group_once():
    pose, view, cosine = merge_candidates(
        [np.array([7, 3, 9]), np.array([3, 11, -1, 2])], [np.array([0, 1, 2]), np.array([5, 4, 0, 6])],
        [np.array([0.9, 0.8, 0.5]), np.array([0.85, 0.7, 0.99, 0.6])])
    assert pose.tolist() == [7, 3, 11, 2, 9]  # 3 once (its better entry, from the first list), -1 dropped
    assert view.tolist() == [0, 5, 4, 6, 2] and cosine.tolist() == [0.9, 0.85, 0.7, 0.6, 0.5]
    group = np.zeros(12, np.int64)
    group[[3, 11]] = 1
    pose, _, _ = merge_candidates([np.array([7, 3]), np.array([11, 2])], [np.zeros(2, np.int64)] * 2,
                                  [np.array([0.9, 0.8]), np.array([0.95, 0.6])], group)
    assert pose.tolist() == [11, 7]  # one per group: its best pose
