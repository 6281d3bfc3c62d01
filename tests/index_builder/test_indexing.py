"""FAISS index planning, the measured operating point, and recall against exact search."""

import numpy as np
import pytest

from index_builder.indexing import (FLAT_LIMIT, MIN_POINTS_PER_LIST, build_index, choose_operating_point, plan_index,
                                    recall_at_k, set_search_effort)


def clustered(n, dim=32, clusters=200, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_plan_follows_the_size():
    assert plan_index(FLAT_LIMIT - 1, 128).kind == "flat"
    plan = plan_index(1_100_000, 128)
    assert plan.kind == "ivf" and plan.nlist == 4096
    assert plan_index(FLAT_LIMIT, 128).nlist <= FLAT_LIMIT // MIN_POINTS_PER_LIST


def test_recall_at_k_counts_the_overlap():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])
    assert recall_at_k(approx, exact) == pytest.approx((0.5 + 1.0) / 2)


def test_ivf_operating_point_reaches_the_target_recall():
    vectors = clustered(120_000)
    queries = clustered(300, seed=1)
    plan = plan_index(len(vectors), vectors.shape[1])
    assert plan.kind == "ivf"
    index = build_index(vectors, plan)
    point = choose_operating_point(index, vectors, queries)
    assert point.recall_at_10 >= 0.95 and 1 <= point.nprobe <= plan.nlist
    # Measured independently of the chooser: the stored nprobe really gives that recall.
    set_search_effort(index, point.nprobe)
    _, found = index.search(queries, 10)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert recall_at_k(found, truth) >= 0.95
    assert (found >= 0).all()


def test_flat_is_exact():
    vectors = clustered(2000)
    index = build_index(vectors, plan_index(len(vectors), 32))
    point = choose_operating_point(index, vectors, vectors[:50])
    assert point.nprobe == 0 and point.recall_at_10 == 1.0
    _, found = index.search(vectors[:50], 1)
    assert (found[:, 0] == np.arange(50)).all()
