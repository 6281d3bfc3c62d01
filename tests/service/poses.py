"""Test inputs: database poses seen through the bundle's virtual views, and a synthetic COCO-17 person."""

from __future__ import annotations

import faiss
import numpy as np

FOCAL_PX, CENTRE_PX, DISTANCE_MM = 1145.0, 500.0, 5000.0

# A standing person, COCO-17 order, pixels (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_STANDING = np.array([
    [500, 250], [490, 240], [510, 240], [480, 250], [520, 250], [460, 320], [540, 320], [450, 400], [550, 400],
    [445, 470], [555, 470], [475, 500], [525, 500], [478, 620], [522, 620], [480, 740], [520, 740]], float)
COCO_TO_BLAZEPOSE = {0: 0, 1: 2, 2: 5, 3: 7, 4: 8, **{i: 6 + i for i in range(5, 11)},
                     **{i: 12 + i for i in range(11, 17)}}


def camera_pose(world: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(17, 3) root-relative world mm -> (17, 3) camera frame mm (root-relative), as the index stores views."""
    return world @ rotation.T


def project(world: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(17, 3) world mm -> (17, 2) pixels of a camera with that rotation, DISTANCE_MM from the pelvis."""
    cam = camera_pose(world, rotation) + np.array([0.0, 0.0, DISTANCE_MM])
    return cam[:, :2] / cam[:, 2:3] * FOCAL_PX + CENTRE_PX


def coco_to_blazepose(coco: np.ndarray) -> np.ndarray:
    """(17, C) COCO keypoints -> (33, C) BlazePose layout (landmarks BlazePose has beyond COCO copied from the
    nose; the joint formulas do not use them)."""
    out = np.repeat(coco[:1], 33, axis=0).copy()
    for c, b in COCO_TO_BLAZEPOSE.items():
        out[b] = coco[c]
    return out


def distinct_poses(bundle_dir, views: int, count: int = 1, candidates: int = 300) -> list[int]:
    """Poses whose indexed vectors stand clearly apart from every other pose's (so 'itself first' is decidable),
    best first, among ``candidates`` evenly spaced poses."""
    index = faiss.read_index(str(bundle_dir / "index.faiss"))
    vectors = index.reconstruct_n(0, index.ntotal)  # (N * V, D)
    poses = index.ntotal // views
    chosen = np.linspace(0, poses - 1, min(candidates, poses)).astype(int)
    ids = (chosen[:, None] * views + np.arange(views)).ravel()  # (C * V,)
    sims = vectors[ids] @ vectors.T  # (C * V, N * V)
    same = (ids // views)[:, None] == (np.arange(index.ntotal) // views)[None, :]
    sims[same] = -np.inf  # other views of the same pose do not count
    gap = 1.0 - sims.max(axis=1).reshape(-1, views).max(axis=1)  # per pose: its worst view's gap to the rest
    return [int(chosen[i]) for i in np.argsort(-gap)[:count]]
