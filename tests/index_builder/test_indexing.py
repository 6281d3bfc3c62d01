"""FAISS index planning, the measured operating points, and recall against exact search on independent queries."""

import faiss
import numpy as np
import pytest

import model.runtime.bundle_format as fmt
from index_builder.bundle.indexing import (
    FLAT_LIMIT,
    MIN_POINTS_PER_LIST,
    TRAIN_POINTS_PER_LIST,
    build_index,
    choose_operating_point,
    exact_top_k,
    plan_index,
    recall_at_effort,
    recall_at_k,
    search_kind,
    set_search_effort,
    training_sample,
)
from index_builder.bundle.library_index import (
    compact,
    measure_recall,
    read_vectors,
    retrain_reasons,
)
from index_builder.bundle.writer import frames_at_rate, indexed_rates


def clustered(n, dim=32, clusters=200, seed=0, centre_seed=0):
    """L2-normalised points around shared centres (``centre_seed``): queries of another ``seed`` are independent
    of the database but from the same distribution, like real query embeddings."""
    centres = np.random.default_rng(centre_seed).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_plan_follows_the_size():
    assert plan_index(FLAT_LIMIT - 1, 128).kind == "flat"
    assert plan_index(FLAT_LIMIT, 128).kind == "ivf-fp16"
    assert plan_index(500_000, 128, "hnsw").kind == "hnsw"  # only when asked for
    plan = plan_index(3_334_760, 128)  # the whole Bandai library at 30 fps x 8 views
    assert plan.kind == "ivf-fp16" and plan.nlist == 2048 and plan.auto and plan.manifest_type == "ivf"
    assert plan.factory == "IVF2048,SQfp16" and "float16" in plan.reason
    params = plan.params()
    assert params["nlist"] == 2048 and params["auto"] == 1 and params["bytes_per_vector"] == 256
    assert plan_index(FLAT_LIMIT, 128, "ivf").nlist <= FLAT_LIMIT // MIN_POINTS_PER_LIST
    with pytest.raises(ValueError, match="unknown index kind"):
        plan_index(10, 8, "lsh")


def test_training_sample_is_sized_to_the_lists():
    plan = plan_index(3_334_760, 128, "ivf")
    assert not plan.auto and plan.reason == "ivf asked for"
    assert plan.train_points == TRAIN_POINTS_PER_LIST * plan.nlist  # 131,072 rather than 256 x nlist
    assert plan.train_points // plan.nlist >= MIN_POINTS_PER_LIST
    small = plan_index(3000, 16, "ivf")
    assert small.train_points == 3000 and small.nlist == 64  # fewer vectors than the cap: all of them
    vectors = clustered(5000, 8)
    sample = training_sample(vectors, 1000, seed=3)
    assert sample.shape == (1000, 8)
    np.testing.assert_array_equal(sample, training_sample(vectors, 1000, seed=3))
    rows = {tuple(r) for r in vectors.tolist()}
    assert all(tuple(r) in rows for r in sample.tolist()) and len({tuple(r) for r in sample.tolist()}) == 1000
    assert training_sample(vectors, 0, seed=3) is vectors


def test_recall_at_k_counts_the_overlap():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])
    assert recall_at_k(approx, exact) == pytest.approx((0.5 + 1.0) / 2)


def assert_independent_recall(index, vectors, point):
    """The stored effort reaches the target on queries the chooser never saw, against brute force."""
    other = clustered(300, vectors.shape[1], seed=2)
    truth = np.argsort(-(other @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(exact_top_k(vectors, other, 10, progress=False), truth)
    recall = recall_at_effort(index, other, truth, point.nprobe, point.ef_search)
    assert recall >= 0.93, recall  # 300 queries: a little sampling slack around the 0.95 target
    assert (index.search(other, 10)[1] >= 0).all()
    return recall


@pytest.fixture(scope="module")
def vectors():
    return clustered(120_000)


def test_ivf_operating_point_reaches_the_target_recall(vectors):
    plan = plan_index(len(vectors), vectors.shape[1], "ivf")
    index = build_index(vectors, plan, progress=False)
    assert search_kind(index) == "ivf" and faiss.extract_index_ivf(index).nlist == plan.nlist
    point = choose_operating_point(index, vectors, clustered(300, seed=1), progress=False)
    assert point.recall_at_10 >= 0.95 and 1 <= point.nprobe <= plan.nlist and point.ef_search == 0
    assert_independent_recall(index, vectors, point)
    # The direct map the service needs for exact filtered search and segments.
    np.testing.assert_array_equal(index.reconstruct_batch(np.arange(5, dtype=np.int64)), vectors[:5])


def test_hnsw_chooses_ef_search(vectors):
    subset = vectors[:20_000]
    plan = plan_index(len(subset), subset.shape[1], "hnsw")
    index = build_index(subset, plan, progress=False)
    assert search_kind(index) == "hnsw" and plan.factory == "HNSW32,Flat"
    point = choose_operating_point(index, subset, clustered(300, seed=1), progress=False)
    assert point.nprobe == 0 and point.ef_search >= 10 and point.recall_at_10 >= 0.95
    assert faiss.downcast_index(index).hnsw.efSearch == point.ef_search
    assert_independent_recall(index, subset, point)
    np.testing.assert_array_equal(index.reconstruct_batch(np.arange(5, dtype=np.int64)), subset[:5])


def test_float16_ivf_reaches_the_target_recall_in_half_the_memory(vectors):
    subset = vectors[:60_000]
    plan = plan_index(len(subset), subset.shape[1], "ivf-fp16")
    assert plan.factory == f"IVF{plan.nlist},SQfp16" and plan.bytes_per_vector() == 2 * 32
    index = build_index(subset, plan, progress=False)
    assert faiss.try_extract_index_ivf(index) is not None  # what the service's PoseIndex looks for
    point = choose_operating_point(index, subset, clustered(300, seed=1), progress=False)
    assert point.recall_at_10 >= 0.95
    assert_independent_recall(index, subset, point)
    size = len(faiss.serialize_index(index))
    assert plan.bytes_per_vector() * len(subset) <= size < (plan.bytes_per_vector() + 24) * len(subset)
    got = index.reconstruct_batch(np.arange(5, dtype=np.int64))
    np.testing.assert_allclose(got, subset[:5], atol=1e-3)  # float16 codes


def test_flat_is_exact():
    vectors = clustered(2000)
    index = build_index(vectors, plan_index(len(vectors), 32), progress=False)
    point = choose_operating_point(index, vectors, vectors[:50], progress=False)
    assert point.nprobe == 0 and point.recall_at_10 == 1.0
    set_search_effort(index, 4, 64)  # no effort to set: nothing happens
    _, found = index.search(vectors[:50], 1)
    assert (found[:, 0] == np.arange(50)).all()


def test_fps_keeps_frame_numbers(sample_db):
    db = sample_db.select_clips(np.arange(len(sample_db.clips)) < 5)
    assert set(db.clips.fps.tolist()) == {10.0}  # the shipped sample is the 30 fps library every third frame
    fast = type(db.clips)(**{**db.clips.__dict__, "fps": db.clips.fps * 3})  # pretend 30 fps
    db30 = type(db)(**{**db.__dict__, "clips": fast})
    slow = frames_at_rate(db30, 10)
    assert len(slow) < len(db30) and (slow.frame % 3 == 0).all()
    np.testing.assert_array_equal(slow.clips.fps, db30.clips.fps)  # frame numbers still count 30 fps frames
    want = db30.frame % 3 == 0
    np.testing.assert_array_equal(slow.frame, db30.frame[want])
    np.testing.assert_array_equal(slow.poses, db30.poses[want])
    np.testing.assert_array_equal(slow.clips.length, np.bincount(slow.clip, minlength=len(slow.clips)))
    first = slow.clips.start[2]
    assert slow.clip[first] == 2 and (first == 0 or slow.clip[first - 1] == 1)
    assert indexed_rates(db30, 10) == [10.0] and indexed_rates(db30, None) == [30.0]
    assert len(frames_at_rate(db30, 60)) == len(db30)  # never faster than the clip


def test_hnsw_library_changes_rebuild_the_graph(vectors):
    """`unihpr-build remove` on an HNSW bundle: the graph cannot drop vectors, so compaction rebuilds it over the
    kept ones; recall after the change is measured at the stored efSearch."""
    subset = vectors[:5000]
    index = build_index(subset, plan_index(len(subset), 32, "hnsw"), progress=False)
    queries = clustered(200, seed=2)
    point = choose_operating_point(index, subset, clustered(200, seed=1), progress=False)
    keep = np.random.default_rng(0).random(len(subset)) > 0.3
    compact(index, keep)
    assert index.ntotal == keep.sum()
    np.testing.assert_array_equal(read_vectors(index, np.arange(index.ntotal)), subset[keep])
    recall = measure_recall(index, 0, queries, ef_search=point.ef_search)
    assert recall >= 0.93 and faiss.downcast_index(index).hnsw.efSearch == point.ef_search
    _, found = index.search(subset[keep][:20], 1)
    np.testing.assert_array_equal(found[:, 0], np.arange(20))

    info = fmt.IndexInfo(type="hnsw", factory="HNSW32,Flat", metric="inner_product", ntotal=int(index.ntotal),
                         params={}, operating_point=fmt.OperatingPointInfo(
                             nprobe=0, recall_at_10=0.96, queries=200, latency_ms_per_query=0.1, ef_search=64),
                         history=fmt.IndexHistory(trained_vectors=5000, removed_vectors=4000, recall_at_10=0.9))
    assert retrain_reasons(info) == ["recall@10 0.900 < 0.95 at efSearch 64"]  # no list drift for a graph


def test_operating_point_stops_where_lossy_codes_cap_recall(caplog):
    vectors = clustered(5000)
    index = faiss.index_factory(32, "IVF16,SQ4", faiss.METRIC_INNER_PRODUCT)  # 4-bit codes: recall stays low
    index.train(vectors)
    index.add(vectors)
    point = choose_operating_point(index, vectors, clustered(200, seed=1), target=0.999, progress=False)
    assert point.recall_at_10 < 0.999 and faiss.extract_index_ivf(index).nprobe == point.nprobe
    assert "cannot reach the target" in caplog.text
