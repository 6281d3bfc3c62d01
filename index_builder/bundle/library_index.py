"""The index side of a library change (``index_builder.bundle.library_update``): reading stored vectors back,
appending, compacting, recall@10 against exact search, and when the index is due for a rebuild."""

from __future__ import annotations

import faiss
import numpy as np

import model.runtime.bundle_format as fmt
from index_builder.bundle.indexing import (
    ADD_CHUNK,
    FLAT_LIMIT,
    TARGET_RECALL,
    exact_top_k,
    recall_at_effort,
    search_kind,
)
from model.retrieval.stored_vectors import StoredVectors

DRIFT_LIMIT = 0.5  # (added + removed) / trained vectors above this: the IVF lists no longer describe the library


def read_vectors(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """The stored vectors of ``ids`` (M,) int64 -> (M, D) float32 (Flat, HNSW, or IVF with a direct map)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
        ivf.make_direct_map()
    return StoredVectors(index)(ids)


def add_vectors(index: faiss.Index, vectors: np.ndarray) -> None:
    """Append (M, D) float32 vectors; they get the ids ntotal, ntotal + 1, ..."""
    for start in range(0, len(vectors), ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK]))


def compact(index: faiss.Index, keep: np.ndarray) -> None:
    """Keep the vectors where ``keep`` (ntotal,) bool is true, renumbered 0.. in their order; IVF lists keep their
    trained centroids (each vector goes back to the list it was in); an HNSW graph is rebuilt over the kept
    vectors."""
    assert keep.shape == (index.ntotal,), (keep.shape, index.ntotal)
    live = read_vectors(index, np.flatnonzero(keep).astype(np.int64))
    index.reset()
    add_vectors(index, live)


def measure_recall(index: faiss.Index, nprobe: int, queries: np.ndarray, k: int = 10, ef_search: int = 0) -> float:
    """recall@k of ``index`` at ``nprobe`` (IVF) or ``ef_search`` (HNSW) against exact search over its own
    vectors; 1.0 for exact indexes.

    queries: (Q, D) float32 query embeddings.
    """
    if search_kind(index) == "flat":
        return 1.0
    vectors = read_vectors(index, np.arange(index.ntotal, dtype=np.int64))
    truth = exact_top_k(vectors, queries, k, progress=False)
    del vectors
    return recall_at_effort(index, queries, truth, nprobe, ef_search)


def retrain_reasons(info: fmt.IndexInfo) -> list[str]:
    """Why the index should be rebuilt with ``unihpr-build index``: for IVF and HNSW, recall@10 at the stored
    nprobe / efSearch below ``TARGET_RECALL``; for IVF, (added + removed) / trained vectors above
    ``DRIFT_LIMIT``; for Flat, more vectors than ``FLAT_LIMIT`` (an approximate index would serve them faster)."""
    history, reasons = info.history, []
    if info.type == "flat":
        if info.ntotal >= FLAT_LIMIT:
            reasons.append(f"{info.ntotal} vectors in an exact index (approximate from {FLAT_LIMIT})")
        return reasons
    if history is None:
        return reasons
    if history.recall_at_10 is not None and history.recall_at_10 < TARGET_RECALL:
        point = info.operating_point
        effort = f"efSearch {point.ef_search}" if info.type == "hnsw" else f"nprobe {point.nprobe}"
        reasons.append(f"recall@10 {history.recall_at_10:.3f} < {TARGET_RECALL} at {effort}")
    if info.type == "hnsw":  # no trained lists to drift from
        return reasons
    drift = (history.added_vectors + history.removed_vectors) / max(1, history.trained_vectors)
    if drift > DRIFT_LIMIT:
        reasons.append(f"{drift:.0%} of the {history.trained_vectors} trained vectors changed (limit "
                       f"{DRIFT_LIMIT:.0%})")
    return reasons
