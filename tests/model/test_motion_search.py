"""Motion search on synthetic embeddings (``model.retrieval.motion_search``) and the one-camera fit
(``model.retrieval.sequence_fit``): candidates only from the index, windows, distinct segments, speeds, and the fitted
camera."""

from __future__ import annotations

import numpy as np
import pytest

import model.retrieval.sequence_fit as sequence_fit
from model.retrieval.lifted_candidates import DescriptorIndex
from model.retrieval.motion_search import (
    MAX_STEP,
    MIN_COLUMNS,
    ClipLayout,
    DistinctSegments,
    LiftedQuery,
    QueryShape,
    SearchStats,
    Segment,
    candidate_windows,
    covered_span,
    descriptor_cost,
    search_motion,
    verify,
)
from model.retrieval.sequence_fit import (
    StackedPoses,
    camera_rotations,
    fit_rotation_2d,
    fit_sequence,
    pair_costs_2d,
    weak_perspective_sums,
)

VIEWS, DIM = 2, 16


class Library:
    """C clips of random-walk embeddings (unit vectors, V views each) with an exact search that counts calls."""

    def __init__(self, lengths: list[int], seed: int = 0):
        rng = np.random.default_rng(seed)
        self.clip = np.repeat(np.arange(len(lengths)), lengths)
        self.frame = np.concatenate([np.arange(n) * 3 for n in lengths])  # indexed at 10 fps from 30 fps clips
        walk = [np.cumsum(rng.normal(size=(n, VIEWS, DIM)) * 0.35, axis=0) + rng.normal(size=(1, VIEWS, DIM))
                for n in lengths]
        vectors = np.concatenate(walk).reshape(-1, DIM)
        self.vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        self.layout = ClipLayout.of(self.clip, self.frame, np.full(len(lengths), 30.0))
        self.read = 0

    def search(self, queries: np.ndarray, k: int):
        scores = queries @ self.vectors.T
        ids = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, ids, 1), ids

    def read_vectors(self, ids: np.ndarray) -> np.ndarray:
        self.read += len(ids)
        return self.vectors[ids]

    def query(self, clip: int, start: int, frames: int, speed: float, view: int = 1):
        """The clip's own view-``view`` vectors from ``start`` over ``frames`` library frames, played at
        ``speed`` and sampled at 30 fps: (embeddings, times)."""
        rows = np.flatnonzero(self.clip == clip)[start : start + frames]
        times = np.arange(0, (frames - 1) / 10.0 / speed + 1e-9, 1 / 30.0)
        source = np.minimum(np.round(times * speed * 10.0).astype(int), frames - 1)
        return self.vectors[rows[source] * VIEWS + view], times


def run(lib: Library, embeddings, times, present=None, k=5, group_by_clip=False, stats=None):
    present = np.ones(len(times), bool) if present is None else present
    return search_motion(embeddings, times, present, lib.layout, VIEWS, lib.search, lib.read_vectors, k,
                         group_by_clip, stats)


def test_the_indexed_rate_comes_from_the_frame_numbers():
    lib = Library([40, 60])
    assert lib.layout.rate.tolist() == [10.0, 10.0] and lib.layout.primary_rate == 10.0
    assert lib.layout.position[lib.layout.row(1, [5])[0]] == 5


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0])
def test_a_clip_played_at_another_speed_is_found_where_it_was_taken(speed):
    lib = Library([80, 120, 60, 100, 90])
    embeddings, times = lib.query(3, 30, 30, speed)
    segments = run(lib, embeddings, times)
    top = segments[0]
    assert top.clip == 3 and abs(top.first - 30) <= 1 and abs(top.last - 59) <= 1
    assert top.score > 0.99
    pairs = top.pairs  # query frame -> clip position, in order, monotone
    assert (np.diff(pairs[:, 1]) >= 0).all() and pairs[0, 0] == 0


def test_missing_frames_are_stepped_over():
    lib = Library([80, 120, 60])
    embeddings, times = lib.query(1, 40, 30, 1.0)
    present = np.ones(len(times), bool)
    present[20:50] = False
    embeddings = embeddings.copy()
    embeddings[~present] = 0.0
    top = run(lib, embeddings, times, present)[0]
    assert top.clip == 1 and abs(top.first - 40) <= 1 and abs(top.last - 69) <= 1


def test_cost_grows_with_candidates_not_with_the_library():
    small, big = Library([100] * 10, seed=1), Library([100] * 200, seed=1)
    stats_small, stats_big = SearchStats(), SearchStats()
    for lib, stats in ((small, stats_small), (big, stats_big)):
        embeddings, times = lib.query(5, 10, 30, 1.0)
        assert run(lib, embeddings, times, stats=stats)[0].clip == 5
    assert stats_big.columns <= MIN_COLUMNS and big.read <= VIEWS * MIN_COLUMNS
    assert big.read < 0.25 * len(big.vectors)  # the alignment read only the candidates' windows


def test_segments_of_one_clip_never_overlap_and_group_by_clip_keeps_one():
    lib = Library([300, 80])
    embeddings, times = lib.query(0, 100, 20, 1.0)
    segments = run(lib, embeddings, times, k=10)
    for i, a in enumerate(segments):
        assert not any(b.clip == a.clip and a.first <= b.last and b.first <= a.last for b in segments[:i])
    distinct = DistinctSegments()
    assert distinct.add((0, 10, 20)) and not distinct.add((0, 20, 25)) and distinct.add((0, 21, 30))
    assert distinct.add((1, 10, 20)) and len(distinct) == 3
    grouped = run(lib, embeddings, times, k=10, group_by_clip=True)
    assert len({s.clip for s in grouped}) == len(grouped) <= 2


def test_windows_cover_every_speed_the_alignment_allows_and_merge():
    lib = Library([500])
    rows = lib.layout.row(0, np.array([200, 201, 400]))
    hits = [(rows, np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]))]
    windows = candidate_windows(hits, np.array([10]), lib.layout, lambda rate: 30, 10.0, 10_000)
    assert len(windows) == 2  # 200 and 201 merge; 400 is apart
    first = min(windows, key=lambda w: w.lo)
    assert first.lo <= 200 - MAX_STEP * 10 and first.hi >= 201 + MAX_STEP * 19
    assert first.priority == pytest.approx(0.9) and first.views == (1, 0)  # best-scoring view first


def pose_sequence(rng, frames: int = 25) -> np.ndarray:
    """A moving body-sized point cloud: (frames, 17, 3) mm, root-relative."""
    base = rng.normal(size=(17, 3)) * np.array([250.0, 500.0, 150.0])
    drift = np.cumsum(rng.normal(size=(frames, 17, 3)) * 25.0, axis=0)
    poses = base + drift
    return poses - poses[:, :1]


def test_the_camera_of_a_2d_sequence_is_recovered():
    rng = np.random.default_rng(0)
    poses = pose_sequence(rng)
    rotation = camera_rotations(np.array([123.0]), np.array([27.0]), np.array([-6.0]))[0]
    points = (poses @ rotation[:2].T) * rng.uniform(0.002, 0.004, (len(poses), 1, 1)) + rng.normal(size=(25, 1, 2))
    weights = rng.uniform(0.3, 1.0, (25, 17))
    fitted, residual = fit_rotation_2d(points, weights, poses)
    angle = np.degrees(np.arccos(np.clip((np.trace(fitted.T @ rotation) - 1) / 2, -1, 1)))
    assert angle < 2.0 and residual < 1e-3
    # the moment form equals the direct weak-perspective residual
    costs = pair_costs_2d(points, weights, poses, fitted)
    direct = weak_perspective_sums(points[:, None], weights[:, None], (poses @ fitted[:2].T)[None])
    assert np.allclose(costs, direct / weights.sum(1)[:, None])


def test_the_fit_prefers_the_true_motion_and_repairs_a_shifted_alignment():
    rng = np.random.default_rng(1)
    true, other = pose_sequence(rng, 40), pose_sequence(rng, 40)
    rotation = camera_rotations(np.array([40.0]), np.array([10.0]), np.array([0.0]))[0]
    query = (true[10:30] @ rotation[:2].T) / 1000.0
    weights = np.ones((20, 17))
    present = np.ones(20, bool)
    shifted = np.arange(20) + 12  # two frames late
    good = fit_sequence(query, weights, present, true, shifted)
    bad = fit_sequence(query, weights, present, other, shifted)
    assert good.residual < 0.01 < bad.residual  # 0.01: the final rotation grid is about 1 degree
    assert (good.path == np.arange(10, 30)).all()
    query3d = true[10:30] @ rotation.T
    fit3d = fit_sequence(query3d, None, present, true, shifted)
    assert fit3d.residual < 1e-6 and np.allclose(fit3d.rotation, rotation, atol=1e-6)


def test_verification_reaches_past_a_path_that_held():
    """A 2x query whose alignment held on a few similar poses at its start lies shorter than the motion: the
    verified region (the segment grown by its length) holds the true start, and the re-alignment finds it."""
    rng = np.random.default_rng(7)
    poses = pose_sequence(rng, 80)
    layout = ClipLayout.of(np.zeros(80, np.int64), np.arange(80) * 3, np.array([30.0]))
    truth = 20 + 2 * np.arange(16)  # 2x: two library frames a query frame
    rotation = camera_rotations(np.array([70.0]), np.array([15.0]), np.array([0.0]))[0]
    shape = QueryShape((poses[truth] @ rotation[:2].T) / 1000.0, np.ones((16, 17)))
    held = np.concatenate([np.repeat(np.arange(34, 39), 2), [40, 42, 44, 46, 48, 50]])
    segment = Segment(0, 34, 50, 0.9, np.arange(16), held, np.zeros(16, np.int64), 10.0)
    verified = verify([segment], shape, layout, lambda rows: poses[rows])[0]
    assert (verified.first, verified.last) == (20, 50) and (verified.positions == truth).all()
    assert verified.residual < 0.01


def test_a_verified_segment_covers_the_motion_between_library_frames():
    """A 1x query sampled a quarter of a frame after each library frame: every path frame is the one before, and
    the last query frame falls a quarter past frame 39; the segment holds 20 through 40 (the frames on either side
    of where the first and last query frames fall, from the fit's sub-frame timing), not 20 through 39."""
    rng = np.random.default_rng(9)
    poses = pose_sequence(rng, 60)
    layout = ClipLayout.of(np.zeros(60, np.int64), np.arange(60) * 3, np.array([30.0]))
    where = 20.25 + np.arange(20)
    query = StackedPoses.of([poses]).interpolated(np.array([0]), where[None])[0]
    rotation = camera_rotations(np.array([40.0]), np.array([10.0]), np.array([0.0]))[0]
    shape = QueryShape((query @ rotation[:2].T) / 1000.0, np.ones((20, 17)))
    segment = Segment(0, 20, 39, 0.9, np.arange(20), 20 + np.arange(20), np.zeros(20, np.int64), 10.0)
    verified = verify([segment], shape, layout, lambda rows: poses[rows])[0]
    assert (verified.positions == 20 + np.arange(20)).all()
    assert (verified.first, verified.last) == (20, 40)
    assert covered_span(np.array([20.0, 39.0]), 60) == (20, 39)  # on the frames: nothing added
    assert covered_span(np.array([-0.25, 59.5]), 60) == (0, 59)  # within the clip


def test_stacked_poses_interpolate_between_frames_and_clamp_at_the_ends():
    rng = np.random.default_rng(8)
    a, b = pose_sequence(rng, 6), pose_sequence(rng, 4)
    stacked = StackedPoses.of([a, b])
    exact = stacked.interpolated(np.array([0, 1]), np.array([[0.0, 5.0], [3.0, 1.0]]))
    assert np.allclose(exact, np.stack([a[[0, 5]], b[[3, 1]]]))
    ends = stacked.interpolated(np.array([1, 1]), np.array([[-0.5, 3.5], [1.5, 1.5]]))
    assert np.allclose(ends[0], b[[0, 3]])
    assert np.allclose(ends[1, 0], stacked.interpolated(np.array([1]), np.array([[1.5]]))[0, 0])
    line = StackedPoses.of([np.arange(8, dtype=np.float64)[:, None, None] * np.ones((8, 17, 3))])
    assert np.allclose(line.interpolated(np.array([0]), np.array([[2.25, 4.5]]))[0, :, 0, 0], [2.25, 4.5])  # a line


def test_search_with_verification_orders_by_residual():
    lib = Library([80, 120, 60], seed=3)
    rng = np.random.default_rng(3)
    library_poses = np.concatenate([pose_sequence(rng, n) for n in (80, 120, 60)])
    embeddings, times = lib.query(1, 40, 30, 1.0)
    rotation = camera_rotations(np.array([200.0]), np.array([15.0]), np.array([0.0]))[0]
    rows = np.flatnonzero(lib.clip == 1)[40:70]
    source = np.minimum(np.round(times * 10.0).astype(int), 29)
    shape = QueryShape((library_poses[rows[source]] @ rotation[:2].T) / 1000.0, np.ones((len(times), 17)))
    segments = search_motion(embeddings, times, np.ones(len(times), bool), lib.layout, VIEWS, lib.search,
                             lib.read_vectors, 5, shape=shape, poses=lambda r: library_poses[r])
    assert segments[0].clip == 1 and segments[0].residual < 0.01
    assert all(a.residual <= b.residual for a, b in zip(segments, segments[1:]))


def crop_of(camera_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a perspective crop aimed at the root gives for camera-frame poses (F, 17, 3) mm, root in front: the
    normalised 2D (F, 17, 2) and the box half-side in ray units (F,)."""
    rays = camera_frame[..., :2] / camera_frame[..., 2:]
    centred = rays - rays[:, :1]
    half = np.abs(centred).max(axis=(1, 2))
    return centred / half[:, None, None], half


def test_a_close_camera_is_refined_under_perspective(monkeypatch):
    """A person 2.5 m from the camera: the weak-perspective camera is several degrees off and leaves a residual
    (as large as the difference between two takes of one move) that the perspective refinement removes."""
    rng = np.random.default_rng(4)
    poses = pose_sequence(rng, 30) * 0.6
    rotation = camera_rotations(np.array([63.0]), np.array([21.0]), np.array([4.0]))[0]
    points, half = crop_of(poses @ rotation.T + np.array([0.0, 0.0, 2500.0]))
    weights, present, path = np.ones((30, 17)), np.ones(30, bool), np.arange(30)
    refined = fit_sequence(points, weights, present, poses, path, half)
    monkeypatch.setattr(sequence_fit, "PERSPECTIVE_REFINE_DEG", ())
    weak = fit_sequence(points, weights, present, poses, path, half)
    def angle(fitted: np.ndarray) -> float:
        return float(np.degrees(np.arccos(np.clip((np.trace(fitted.T @ rotation) - 1) / 2, -1, 1))))

    assert refined.residual < 0.2 * weak.residual and angle(refined.rotation) < 0.5 < 3.0 < angle(weak.rotation)


def test_the_descriptor_cost_sees_the_pose_not_the_camera():
    rng = np.random.default_rng(5)
    poses = pose_sequence(rng, 40)
    index = DescriptorIndex(poses)
    turned = poses[[7, 20]] @ camera_rotations(np.array([150.0]), np.array([35.0]), np.array([10.0]))[0].T
    cost = descriptor_cost(index.describe(turned), index.descriptors(np.arange(40)))
    assert cost.shape == (2, 40) and cost.argmin(1).tolist() == [7, 20] and cost.min() < 1e-3


def test_the_lifted_path_finds_a_motion_the_embedding_cannot():
    """Embeddings that say nothing (the query's are noise): the lifted 3D alone brings the clip into the
    candidates and the alignment, and the fitted camera ranks it first."""
    lengths = [100] * 200
    lib = Library(lengths, seed=6)
    rng = np.random.default_rng(6)
    library_poses = np.concatenate([pose_sequence(rng, n) for n in lengths])
    _, times = lib.query(1, 40, 30, 1.0)
    noise = rng.normal(size=(len(times), DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    rows = np.flatnonzero(lib.clip == 1)[40:70]
    source = np.minimum(np.round(times * 10.0).astype(int), 29)
    rotation = camera_rotations(np.array([200.0]), np.array([15.0]), np.array([0.0]))[0]
    camera_frame = library_poses[rows[source]] @ rotation.T
    shape = QueryShape(camera_frame[..., :2] / 1000.0, np.ones((len(times), 17)))
    present = np.ones(len(times), bool)
    lifted = LiftedQuery(camera_frame, DescriptorIndex(library_poses), camera_rotations(np.array([0.0, 180.0]),
                                                                                        np.zeros(2), np.zeros(2)))
    without = search_motion(noise, times, present, lib.layout, VIEWS, lib.search, lib.read_vectors, 5, shape=shape,
                            poses=lambda r: library_poses[r])
    found = search_motion(noise, times, present, lib.layout, VIEWS, lib.search, lib.read_vectors, 5, shape=shape,
                          poses=lambda r: library_poses[r], lifted=lifted)
    assert not any(s.clip == 1 and s.residual < 0.01 for s in without)  # by chance at most a part of it
    top = found[0]
    assert top.clip == 1 and abs(top.first - 40) <= 1 and abs(top.last - 69) <= 1 and top.residual < 0.01
    allowed = lib.clip != 1  # a filter reaches the lifted path too

    def search_allowed(queries: np.ndarray, k: int):
        scores = np.where(np.repeat(allowed, VIEWS), queries @ lib.vectors.T, -np.inf)
        ids = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, ids, 1), ids

    filtered = search_motion(noise, times, present, lib.layout, VIEWS, search_allowed, lib.read_vectors, 5,
                             shape=shape, poses=lambda r: library_poses[r],
                             lifted=LiftedQuery(camera_frame, lifted.index, lifted.rotations, allowed))
    assert all(s.clip != 1 for s in filtered)
