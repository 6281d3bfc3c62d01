"""Exact k-NN search (model/retrieval/exact_search.py): parity with faiss IndexFlatIP / IndexFlatL2 on seeded data,
group exclusion with the -1 placeholder, and k larger than the gallery."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from model.retrieval.exact_search import exact_search


def unit_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def faiss_search(queries: np.ndarray, gallery: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    index = (faiss.IndexFlatIP if metric == "ip" else faiss.IndexFlatL2)(gallery.shape[1])
    index.add(gallery)
    return index.search(queries, k)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_matches_faiss_flat_index(metric):
    rng = np.random.default_rng(0)
    queries, gallery = unit_vectors(rng, 203, 32), unit_vectors(rng, 2000, 32)
    D, I = exact_search(queries, gallery, 10, metric, chunk=64)  # chunks that do not divide the query count
    D_ref, I_ref = faiss_search(queries, gallery, 10, metric)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (203, 10)
    assert (I != I_ref).mean() < 1e-3  # near-ties may order differently in the last bits
    np.testing.assert_allclose(D, D_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_matches_brute_force_on_flattened_poses(metric):
    rng = np.random.default_rng(2)
    q, g = rng.normal(size=(37, 17, 2)), rng.normal(size=(300, 17, 2))
    D, I = exact_search(q, g, 5, metric, chunk=8)
    flat_q, flat_g = q.reshape(37, -1), g.reshape(300, -1)
    if metric == "ip":
        full = flat_q @ flat_g.T
        expected = np.argsort(-full, axis=1)[:, :5]
    else:
        full = ((flat_q[:, None] - flat_g[None]) ** 2).sum(-1)
        expected = np.argsort(full, axis=1)[:, :5]
    np.testing.assert_array_equal(I, expected)
    np.testing.assert_allclose(D, np.take_along_axis(full, expected, 1), rtol=1e-4, atol=1e-3)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (37, 5)


def test_group_exclusion_never_returns_the_query_group():
    rng = np.random.default_rng(3)
    gallery = unit_vectors(rng, 400, 16)
    groups = rng.integers(0, 10, 400)
    rows = rng.choice(400, 50, replace=False)
    _, I_all = exact_search(gallery[rows], gallery, 3)
    assert (I_all[:, 0] == rows).all()  # with its group, a query finds itself
    _, I = exact_search(gallery[rows], gallery, 3, query_groups=groups[rows], gallery_groups=groups)
    assert (I >= 0).all() and (groups[I] != groups[rows][:, None]).all()
    # the same as faiss on the gallery without the query's group
    for r, found in zip(rows[:5], I[:5]):
        keep = np.flatnonzero(groups != groups[r])
        _, ref = faiss_search(gallery[r][None], gallery[keep], 3, "ip")
        np.testing.assert_array_equal(found, keep[ref[0]])


@pytest.mark.parametrize("metric, empty", [("ip", -np.inf), ("l2", np.inf)])
def test_minus_one_padding_where_too_few_rows_remain(metric, empty):
    rng = np.random.default_rng(4)
    gallery = unit_vectors(rng, 6, 8)
    groups = np.array([0, 0, 0, 0, 1, 1])
    D, I = exact_search(gallery[:2], gallery, 4, metric, query_groups=np.zeros(2, int), gallery_groups=groups)
    assert I.shape == (2, 4)
    assert set(I[:, :2].ravel()) <= {4, 5} and (I[:, 2:] == -1).all()  # 2 rows outside group 0, then padding
    assert np.isfinite(D[:, :2]).all() and (D[:, 2:] == empty).all()
    # a query whose group is the whole gallery gets only placeholders, as faiss does
    _, I_none = exact_search(gallery[:2], gallery[:4], 2, metric, query_groups=np.zeros(2), gallery_groups=groups[:4])
    assert (I_none == -1).all()


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_k_larger_than_the_gallery_returns_every_row_in_order(metric):
    rng = np.random.default_rng(5)
    queries, gallery = unit_vectors(rng, 7, 12), unit_vectors(rng, 5, 12)
    D, I = exact_search(queries, gallery, 50, metric)
    assert D.shape == I.shape == (7, 5)  # min(k, G) columns, like the result of a full sort
    D_ref, I_ref = faiss_search(queries, gallery, 5, metric)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, D_ref, rtol=1e-5, atol=1e-5)
    assert (np.sort(I, axis=1) == np.arange(5)).all()


def test_grouped_blocks_without_exclusions_equal_one_faiss_call():
    rng = np.random.default_rng(6)
    queries, gallery = unit_vectors(rng, 25, 4), unit_vectors(rng, 30, 4)
    groups = np.arange(30) % 5
    _, I_blocks = exact_search(queries, gallery, 3, query_groups=np.full(25, -1), gallery_groups=groups, chunk=10)
    np.testing.assert_array_equal(I_blocks, exact_search(queries, gallery, 3)[1])  # blocks of 10 = one faiss call
