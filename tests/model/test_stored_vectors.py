"""Reading an index's stored vectors by id (model/retrieval/stored_vectors.py): the numbers FAISS's
reconstruct_batch returns, for every index layout bundles use and one that falls back, and a clear error for ids
the index does not hold."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from model.retrieval.stored_vectors import StoredVectors

N, D = 6000, 32


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def built(vectors: np.ndarray, factory: str) -> faiss.Index:
    index = faiss.index_factory(D, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()
    return index


@pytest.mark.parametrize(("factory", "fast"), [("Flat", True), ("HNSW8,Flat", True), ("IVF32,Flat", True),
                                               ("IVF32,SQfp16", True), ("IVF32,SQ8", True), ("IVF32,PQ8", False)])
def test_reads_what_reconstruct_batch_returns(vectors, factory, fast):
    index = built(vectors, factory)
    stored = StoredVectors(index)
    ids = np.random.default_rng(1).integers(0, N, 2500)  # repeats and any order
    got = stored(ids)
    assert stored.fast == fast
    assert got.dtype == np.float32 and got.shape == (2500, D)
    np.testing.assert_array_equal(got, index.reconstruct_batch(ids))
    assert stored(ids[:0]).shape == (0, D)
    if factory == "IVF32,SQfp16":  # residual codes: the list centroid is added back
        assert faiss.try_extract_index_ivf(index).by_residual
        np.testing.assert_allclose(got, vectors[ids], atol=2e-3)


@pytest.mark.parametrize("factory", ["Flat", "IVF32,SQfp16", "IVF32,PQ8"])
@pytest.mark.parametrize("bad", [-1, N])
def test_ids_the_index_does_not_hold_are_refused(vectors, factory, bad):
    stored = StoredVectors(built(vectors, factory))
    with pytest.raises(IndexError, match="stored vectors"):
        stored(np.array([0, bad]))


def test_an_ivf_index_without_its_direct_map_falls_back_to_faiss(vectors):
    index = faiss.index_factory(D, "IVF32,SQfp16", faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    stored = StoredVectors(index)
    assert not stored.fast
    with pytest.raises(RuntimeError):  # FAISS's own refusal: reconstruct needs the direct map
        stored(np.arange(3))
