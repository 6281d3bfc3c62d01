"""Subsequence DTW (``model.retrieval.sequence_alignment``): planted segments at other speeds, missing frames,
separators, the optimum against brute force, back-pointers re-derived, and the query's grid."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from model.retrieval.sequence_alignment import (
    MAX_HOLD,
    MAX_STEP,
    ColumnLayout,
    backtrack,
    backtrack_many,
    grid_frames,
    local_minima,
    subsequence_dtw,
)


def align(query: np.ndarray, library: list[np.ndarray], present=None):
    columns = ColumnLayout.of([len(x) for x in library])
    cost = np.abs(query[:, None] - np.concatenate(library)[None, :])
    alignment = subsequence_dtw(columns.place(cost), present)
    end = int(np.argmin(alignment.end_cost))
    return columns, alignment, end, backtrack(alignment, end)


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0, 3.0, 1 / 3])
def test_a_planted_segment_is_found_at_any_speed_in_range(speed):
    rng = np.random.default_rng(0)
    library = [rng.normal(size=60), rng.normal(size=90), rng.normal(size=50)]
    source = library[1][30:60]
    positions = np.arange(0, len(source) - 1e-9, speed)  # the segment replayed at this speed
    query = source[np.floor(positions).astype(int)]
    columns, alignment, end, path = align(query, library)
    assert columns.sequence[end] == 1 and alignment.end_cost[end] == pytest.approx(0.0, abs=1e-6)
    assert columns.offset[path[0]] == 30 and columns.offset[path[-1]] == 30 + int(np.floor(positions[-1]))


def test_speeds_beyond_the_step_limits_cannot_align_exactly():
    rng = np.random.default_rng(1)
    library = [rng.normal(size=120)]
    fast = library[0][10 : 10 + 4 * 20 : 4]  # 4x: more than MAX_STEP frames per query frame
    assert MAX_STEP < 4
    _, alignment, end, _ = align(fast, library)
    assert alignment.end_cost[end] > 0.1


def test_paths_never_cross_from_one_sequence_into_the_next():
    # the query is the end of sequence 0 followed by the start of sequence 1: no path may join them
    library = [np.array([0.0, 0.0, 0.0, 5.0, 6.0]), np.array([7.0, 8.0, 0.0, 0.0])]
    query = np.array([5.0, 6.0, 7.0, 8.0])
    columns, alignment, end, path = align(query, library)
    assert len(set(columns.sequence[path].tolist())) == 1
    assert alignment.end_cost[end] > 1.0


def test_missing_frames_cost_nothing_and_the_path_steps_over_them():
    rng = np.random.default_rng(2)
    library = [rng.normal(size=80)]
    query = library[0][20:50].copy()
    present = np.ones(len(query), bool)
    present[10:16] = False
    query[~present] = 1e6  # what a missing frame holds does not matter
    columns, alignment, end, path = align(query, library, present)
    assert alignment.end_cost[end] == pytest.approx(0.0, abs=1e-6)
    assert columns.offset[path[present]].tolist() == list(range(20, 50))[:10] + list(range(36, 50))
    assert alignment.mean_end_cost[end] == pytest.approx(alignment.end_cost[end] / present.sum())


def brute_force(cost: np.ndarray) -> float:
    """The least cost of every path the step rules allow on one sequence (small cases)."""
    m, n = cost.shape
    best = np.inf
    for start in range(n):
        for steps in itertools.product(range(MAX_STEP + 1), repeat=m - 1):
            holds, j, total, ok = 0, start, cost[0, start], True
            for i, d in enumerate(steps, 1):
                holds = holds + 1 if d == 0 else 0
                j += d
                if holds > MAX_HOLD or j >= n:
                    ok = False
                    break
                total += cost[i, j]
            if ok:
                best = min(best, total)
    return best


def test_the_forward_pass_finds_the_optimum_of_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        cost = rng.random((5, 7))
        columns = ColumnLayout.of([7])
        alignment = subsequence_dtw(columns.place(cost))
        end = int(np.argmin(alignment.end_cost))
        path = columns.offset[backtrack(alignment, end)]
        assert alignment.end_cost[end] == pytest.approx(brute_force(cost), rel=1e-5)
        assert cost[np.arange(5), path].sum() == pytest.approx(alignment.end_cost[end], rel=1e-5)


def test_backtrack_many_equals_backtrack_one_by_one():
    rng = np.random.default_rng(4)
    columns = ColumnLayout.of([30, 45, 12, 60])
    alignment = subsequence_dtw(columns.place(rng.random((15, 147)).astype(np.float32)))
    ends = local_minima(alignment.end_cost, columns.sequence)
    assert len(ends) > 5 and np.all(np.diff(alignment.end_cost[ends]) >= 0)  # best first
    assert (backtrack_many(alignment, ends) == np.stack([backtrack(alignment, e) for e in ends])).all()


def test_grid_resamples_by_nearest_frame_and_marks_gaps_missing():
    times = np.arange(90) / 30.0  # 3 s at 30 fps
    assert grid_frames(times, np.ones(90, bool), 10.0).tolist() == list(range(0, 90, 3))
    present = np.ones(90, bool)
    present[30:60] = False  # one second dropped
    grid = grid_frames(times, present, 10.0)
    assert (grid[11:20] == -1).all() and grid[10] == 29 and grid[20] == 60  # nearest within half a step
    assert (grid[:11] >= 0).all() and (grid[20:] >= 0).all()
    sparse = grid_frames(np.arange(10) / 5.0, np.ones(10, bool), 10.0)  # 5 fps fills a 10 fps grid
    assert (sparse >= 0).all() and len(sparse) == 19
