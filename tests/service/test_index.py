"""PoseIndex and search_poses against brute force: unfiltered, filtered through an ID selector, filtered exactly
over a subset, grouped; on exact (Flat) and IVF indexes, with the operating point and without -1 placeholders."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from service.index import PoseIndex
from service.pose_search import FIRST_ASK, GROWTH, search_poses

POSES, VIEWS, DIM = 3000, 4, 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(POSES * VIEWS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(20, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    groups = np.repeat(np.arange(POSES // 50), 50)  # 60 "clips" of 50 poses
    return vectors, queries, groups


def make_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
    else:
        index = faiss.index_factory(DIM, "IVF32,Flat", faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    index.add(vectors)
    return index


def brute_force(vectors, query, k, pose_mask=None, groups=None):
    """Top-k poses (best view each; or best pose per group): [(pose, view, score)]."""
    scores = vectors @ query
    pose_best = scores.reshape(POSES, VIEWS)
    best_view = pose_best.argmax(1)
    best = pose_best.max(1)
    if pose_mask is not None:
        best = np.where(pose_mask, best, -np.inf)
    order = np.argsort(-best, kind="stable")
    out, seen = [], set()
    for p in order:
        if not np.isfinite(best[p]):
            break
        key = p if groups is None else groups[p]
        if key in seen:
            continue
        seen.add(key)
        out.append((int(p), int(best_view[p]), float(best[p])))
        if len(out) == k:
            break
    return out


def as_tuples(hits):
    return [(h.pose, h.view, h.score) for h in hits]


@pytest.mark.parametrize("selectivity", [None, 0.5, 0.01])
@pytest.mark.parametrize("grouped", [False, True])
def test_flat_index_matches_brute_force(data, selectivity, grouped):
    vectors, queries, groups = data
    index = PoseIndex(make_index(vectors, "flat"), VIEWS, exact_fraction=0.05)
    mask = None if selectivity is None else np.random.default_rng(1).random(POSES) < selectivity
    group = groups if grouped else None
    found = search_poses(index, queries, 10, mask, group_of_pose=group)
    for q, hits in zip(queries, found):
        expected = brute_force(vectors, q, 10, mask, group)
        assert [h[:2] for h in as_tuples(hits)] == [e[:2] for e in expected]
        np.testing.assert_allclose([h.score for h in hits], [e[2] for e in expected], atol=1e-5)


@pytest.mark.parametrize("selectivity", [None, 0.5])
def test_poses_whose_views_look_alike_are_found_by_asking_again(data, selectivity, monkeypatch):
    """Each pose's views nearly one vector: the first ask (``FIRST_ASK`` vectors a wanted pose) holds about half the
    poses wanted, and the search asks again: the same poses as brute force, every search counted."""
    _, queries, _ = data
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(POSES, 1, DIM)).astype(np.float32)
    vectors = (centres + rng.normal(size=(POSES, VIEWS, DIM)).astype(np.float32) * 0.01).reshape(-1, DIM)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = PoseIndex(make_index(vectors, "flat"), VIEWS, exact_fraction=0.0)
    asked = []
    search = index.search
    monkeypatch.setattr(index, "search", lambda q, k, *a, **kw: asked.append(k) or search(q, k, *a, **kw))
    mask = None if selectivity is None else np.random.default_rng(1).random(POSES) < selectivity
    found = search_poses(index, queries, 10, mask)
    assert asked == [10 * FIRST_ASK, 10 * FIRST_ASK * GROWTH]
    for q, hits in zip(queries, found):
        expected = brute_force(vectors, q, 10, mask)
        assert [h[:2] for h in as_tuples(hits)] == [e[:2] for e in expected]


def test_an_hnsw_index_is_asked_for_every_view(data, monkeypatch):
    """HNSW searches deeper for a larger k: asking it for fewer vectors would change the poses it finds."""
    vectors, queries, _ = data
    hnsw = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(vectors)
    index = PoseIndex(hnsw, VIEWS)
    asked = []
    search = index.search
    monkeypatch.setattr(index, "search", lambda q, k, *a, **kw: asked.append(k) or search(q, k, *a, **kw))
    assert index.kind == "hnsw" and len(search_poses(index, queries[:2], 10)[0]) == 10
    assert asked == [10 * VIEWS]


@pytest.mark.parametrize("selectivity", [None, 0.3, 0.02])
def test_ivf_index_recall_filters_and_no_placeholders(data, selectivity):
    vectors, queries, _ = data
    index = PoseIndex(make_index(vectors, "ivf"), VIEWS, nprobe=8, exact_fraction=0.05)
    assert index.kind == "ivf" and index.nprobe == 8
    mask = None if selectivity is None else np.random.default_rng(2).random(POSES) < selectivity
    found = search_poses(index, queries, 10, mask)
    recall = []
    for q, hits in zip(queries, found):
        expected = brute_force(vectors, q, 10, mask)
        assert all(h.pose >= 0 and 0 <= h.view < VIEWS for h in hits)
        assert len({h.pose for h in hits}) == len(hits)
        if mask is not None:
            assert all(mask[h.pose] for h in hits)
        recall.append(len({h.pose for h in hits} & {e[0] for e in expected}) / 10)
        if selectivity == 0.02:  # below the threshold: exact search over the subset
            assert [h.pose for h in hits] == [e[0] for e in expected]
    assert np.mean(recall) >= (0.99 if selectivity == 0.02 else 0.6)
    exhaustive = search_poses(index, queries, 10, mask, effort=index.ivf.nlist / index.nprobe)  # nprobe = nlist
    for q, hits in zip(queries, exhaustive):
        assert [h.pose for h in hits] == [e[0] for e in brute_force(vectors, q, 10, mask)]


def test_more_than_available_returns_only_real_hits(data):
    vectors, queries, _ = data
    index = PoseIndex(make_index(vectors, "ivf"), VIEWS, nprobe=1)
    mask = np.zeros(POSES, bool)
    mask[[5, 17, 2999]] = True
    hits = search_poses(index, queries[:3], 10, mask)
    assert all(sorted(h.pose for h in row) == [5, 17, 2999] for row in hits)
    assert search_poses(index, queries[:2], 10, np.zeros(POSES, bool)) == [[], []]
    # an unfiltered IVF search with nprobe 1 may find fewer than k * views vectors: still no -1 in the results
    few = search_poses(PoseIndex(make_index(vectors, "ivf"), VIEWS, nprobe=1), queries, 1000)
    assert all(h.pose >= 0 for row in few for h in row)


def test_selector_path_is_used_above_the_threshold(data, monkeypatch):
    vectors, queries, _ = data
    index = PoseIndex(make_index(vectors, "flat"), VIEWS, exact_fraction=0.05)
    calls = []
    monkeypatch.setattr(index.subsets, "get", lambda *a: calls.append("subset") or (_ for _ in ()).throw(
        AssertionError("exact subset search used above the threshold")))
    search_poses(index, queries[:1], 5, np.random.default_rng(3).random(POSES) < 0.5)
    assert calls == []


def test_a_repeated_small_filter_reuses_its_vectors(data, monkeypatch):
    vectors, queries, groups = data
    index = PoseIndex(make_index(vectors, "ivf"), VIEWS, nprobe=8, exact_fraction=0.05)
    mask = groups == 3  # 50 of 3,000 poses: the exact-subset path
    first = search_poses(index, queries, 5, pose_mask=mask)
    calls = []
    real = index.stored
    monkeypatch.setattr(index, "stored", lambda ids: calls.append(len(ids)) or real(ids))
    again = search_poses(index, queries, 5, pose_mask=mask)
    assert calls == [] and again == first  # served from the cache, same answers
    search_poses(index, queries, 5, pose_mask=groups == 4)
    assert calls == [50 * VIEWS]  # another filter reads its own subset
    for p, hits in zip(queries, first):
        assert [h.pose for h in hits] == [p_ for p_, _, _ in brute_force(vectors, p, 5, mask)]


@pytest.mark.parametrize("selectivity", [None, 0.5, 0.01])
def test_index_search_returns_what_faiss_returns(data, selectivity):
    vectors, queries, _ = data
    flat = make_index(vectors, "flat")
    index = PoseIndex(flat, VIEWS, exact_fraction=0.05)
    mask = None if selectivity is None else np.repeat(np.random.default_rng(2).random(POSES) < selectivity, VIEWS)
    D, I = index.search(queries, 40, mask)
    assert D.shape == I.shape == (len(queries), 40) and I.dtype == np.int64
    params = None if mask is None else faiss.SearchParameters(
        sel=faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64)))
    D_ref, I_ref = flat.search(queries, 40, params=params)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, D_ref, atol=1e-5)


def test_a_subset_smaller_than_k_is_padded_like_faiss(data):
    vectors, queries, _ = data
    index = PoseIndex(make_index(vectors, "flat"), VIEWS, exact_fraction=0.05)
    mask = np.zeros(POSES * VIEWS, bool)
    mask[[3, 99, 4000]] = True
    D, I = index.search(queries[:2], 5, mask)
    assert (np.sort(I[:, :3], axis=1) == [3, 99, 4000]).all() and (I[:, 3:] == -1).all()
