"""Choosing the re-ranking weight and calibrating the expected error (index_builder/bundle/reranking.py), and the
helpers of retrieval over the library (index_builder/evaluation/retrieval/oracle_floor.py, calibration_metrics.py), on
hand-made cases with known answers."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from index_builder.bundle.reranking import (
    Gallery,
    QuerySet,
    Scored,
    calibrate,
    choose_weight,
    exact_search_of,
    gather,
    index_search_of,
    score_queries,
    top1_mean,
)
from index_builder.evaluation.retrieval.calibration_metrics import rankdata, reliability, spearman
from index_builder.evaluation.retrieval.oracle_floor import _signed_nuclear, oracle_floor, procrustes_sq
from model.pose.camera_rigs import virtual_view_rotations
from model.pose.features import box_frame
from model.pose.metrics import pa_mpjpe, procrustes_align


def unit(rng, n: int, d: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_and_index_searches_leave_out_the_query_clip_alike():
    rng = np.random.default_rng(0)
    views, poses = 4, 300
    vectors = unit(rng, poses * views)
    pose_clip = np.repeat(np.arange(30), 10)  # 30 clips of 10 poses
    queries = unit(rng, 12)
    exclude = rng.integers(0, 30, 12)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    for search in (exact_search_of(vectors, views, pose_clip), index_search_of(index, views, pose_clip)):
        scores, ids = search(queries, 20, exclude)
        assert ids.shape == (12, 20) and (ids >= 0).all()
        assert (pose_clip[ids // views] != exclude[:, None]).all()
        full = vectors @ queries.T  # brute force outside the clip
        for q in range(12):
            allowed = np.flatnonzero(pose_clip[np.arange(len(vectors)) // views] != exclude[q])
            best = allowed[np.argsort(-full[allowed, q], kind="stable")[:20]]
            np.testing.assert_allclose(scores[q], full[best, q], atol=1e-5)
        kept, _ = search(queries, 20, None)
        np.testing.assert_allclose(kept[:, 0], full.max(axis=0), atol=1e-5)


def scored(errors: np.ndarray, cosine: np.ndarray, residual: np.ndarray) -> Scored:
    q, c = errors.shape
    return Scored(np.tile(np.arange(c), (q, 1)), np.zeros((q, c), np.int64), cosine, residual, errors)


def test_the_weight_is_the_one_with_the_lowest_mean_top1_error():
    # the cosine prefers candidate 0; the residual knows candidate 1 is the right pose
    cosine = np.array([[0.95, 0.90, 0.5]] * 4)
    residual = np.array([[0.05, 0.001, 0.2]] * 4)
    errors = np.array([[30.0, 2.0, 50.0]] * 4)
    s = scored(errors, cosine, residual)
    weight, table = choose_weight("pose2d", [s, s])
    assert table["0"] == 30.0 and weight > 0 and table[f"{weight:g}"] == 2.0
    assert weight == min(float(w) for w, v in table.items() if v == 2.0)  # the first (smallest) on ties
    assert top1_mean(s, None) == 30.0 and top1_mean(s, weight) == 2.0
    # a residual that misleads (it favours the worst pose): the cosine order stays (weight 0, the first of ties)
    misleading = scored(errors, cosine, np.array([[0.05, 0.05, 0.0]] * 4))
    assert choose_weight("pose2d", [misleading])[0] == 0.0
    assert choose_weight("pose3d", [s])[0] <= 0.256  # the 3D grid is per mm


def test_calibration_fits_the_true_errors_of_the_top_results():
    rng = np.random.default_rng(1)
    q, c = 400, 20
    residual = rng.uniform(0, 0.05, (q, c))
    errors = 600 * residual + rng.normal(0, 2, (q, c)) + 3
    s = scored(errors, np.sort(rng.uniform(0.5, 1, (q, c)))[:, ::-1], residual)
    curve, pairs = calibrate(s, s, weight=64.0)
    assert pairs == 2 * q * 10  # the top 10 of every query, excluded and included
    top = s.take("residual", 64.0)[:, 0]
    predicted, true = curve.expected_error(top), s.take("error", 64.0)[:, 0]
    assert abs(predicted.mean() - true.mean()) < 0.15 * true.mean()
    assert curve.far_residual == pytest.approx(np.quantile(top, 0.99))
    empty = Scored(*(np.full((3, c), -1, np.int64),) * 2, *(np.full((3, c), x) for x in (-np.inf, np.inf, np.nan)))
    assert top1_mean(empty, 1.0) is None and choose_weight("pose2d", [empty]) == (0.0, {})


def test_gathered_candidates_are_poses_in_cosine_order_and_the_fit_finds_the_true_pose(sample_db):
    """A gallery of sample poses whose 'embeddings' are their own 3D (so cosine finds near poses), queried with the
    2D of gallery poses through a pinhole camera: re-ranking puts the pose itself first, clip excluded or not."""
    rows = np.arange(0, len(sample_db), 7)
    poses = sample_db.poses[rows].astype(np.float64)
    poses -= poses[:, :1]
    clip = sample_db.clip[rows].astype(np.int64)
    rotations = virtual_view_rotations(4)
    seen = np.einsum("vij,nkj->nvki", rotations, poses).reshape(len(poses) * 4, -1)
    vectors = (seen / np.linalg.norm(seen, axis=1, keepdims=True)).astype(np.float32)
    gallery = Gallery(poses, clip, rotations, exact_search_of(vectors, 4, clip))
    truth_rows = np.arange(0, len(poses), max(1, len(poses) // 12))[:12]
    camera = poses[truth_rows] @ rotations[1].T + np.array([0.0, 0.0, 4000.0])
    rays = camera[..., :2] / camera[..., 2:]
    frames = box_frame(rays)
    features = np.concatenate([(rays - frames[:, None, :2]) / frames[:, None, 2:], np.ones((12, 17, 1))], -1)
    queries = QuerySet("pose2d", features.astype(np.float32), frames, vectors[truth_rows * 4 + 1],
                       poses[truth_rows], clip[truth_rows])
    pose, view, cosine = gather(gallery, queries, exclude_clip=False, count=30)
    assert (np.diff(cosine, axis=1) <= 1e-6).all()
    assert all(len(set(p.tolist())) == 30 for p in pose)  # one entry per pose
    s = score_queries(gallery, queries, exclude_clip=False, count=30)
    assert (s.take("pose", 1e3)[:, 0] == truth_rows).all()
    assert np.nanmax(s.take("error", 1e3)[:, 0]) < 1e-6
    ex = score_queries(gallery, queries, exclude_clip=True, count=30)
    assert (clip[ex.pose] != clip[truth_rows][:, None]).all()


def test_the_oracle_is_the_exact_smallest_pa_mpjpe(sample_db):
    rng = np.random.default_rng(2)
    gallery = sample_db.poses[::9].astype(np.float64)
    clip = sample_db.clip[::9]
    picks = rng.choice(len(gallery), 15, replace=False)
    queries = gallery[picks] + rng.normal(0, 5, (15, 17, 3))  # near a gallery pose, not on it
    pairs = pa_mpjpe(np.repeat(gallery[None], 15, 0).reshape(-1, 17, 3),
                     np.repeat(queries, len(gallery), 0)).reshape(15, len(gallery))
    np.testing.assert_allclose(oracle_floor(queries, gallery, clip[picks], clip, exclude=False), pairs.min(1))
    outside = np.where(clip[None] == clip[picks][:, None], np.inf, pairs)
    np.testing.assert_allclose(oracle_floor(queries, gallery, clip[picks], clip, exclude=True), outside.min(1))
    # the closed form of the Procrustes sum of squares
    aligned = procrustes_align(np.repeat(gallery[None, :50], 15, 0).reshape(-1, 17, 3),
                               np.repeat(queries, 50, 0))
    direct = ((aligned - np.repeat(queries, 50, 0)) ** 2).sum((1, 2)).reshape(15, 50)
    np.testing.assert_allclose(procrustes_sq(queries, gallery[:50]), direct, rtol=1e-7, atol=1e-6)
    h = rng.normal(size=(500, 3, 3))
    s = np.linalg.svd(h, compute_uv=False)
    expected = s[:, 0] + s[:, 1] + np.sign(np.linalg.det(h)) * s[:, 2]
    np.testing.assert_allclose(_signed_nuclear(h.transpose(1, 2, 0)), expected, atol=1e-9)


def test_spearman_ranks_and_reliability_bins():
    np.testing.assert_allclose(rankdata(np.array([3.0, 1.0, 2.0, 2.0])), [4.0, 1.0, 2.5, 2.5])
    x = np.arange(20.0)
    assert spearman(x, x**3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x[:2], x[:2]) is None and spearman(x, np.ones(20)) is None
    bins = reliability(np.array([10.0] * 5 + [20.0] * 5), np.array([11.0] * 5 + [30.0] * 5), bins=2)
    assert [b["queries"] for b in bins] == [5, 5]
    assert [b["within_tolerance"] for b in bins] == [True, False]  # 11 vs 10 is within 25%, 30 vs 20 is not
