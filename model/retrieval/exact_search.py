"""Exact k-nearest-neighbour search, returning what FAISS ``index.search`` returns.

The one brute-force search of the project: evaluation protocols, the builder's recall ground truth, the
service's exact search over small filtered subsets and the index-fidelity benchmark all call it, so "exact" means
the same everywhere. Without groups it is one ``faiss.knn`` call (blocked BLAS and a heap per query: over 1M
vectors, 1,000 queries took 2.5 s where sorting each score block took 18.9 s); with groups (rows of the query's
own group left out) it scores in numpy blocks.
"""

from __future__ import annotations

import faiss
import numpy as np

METRICS = ("ip", "l2")


def _top_k(score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row the k largest of ``score`` (c, G), best first (ties by lower column): values and columns."""
    if k < score.shape[1]:
        top = np.argpartition(-score, k - 1, axis=1)[:, :k]  # (c, k) unordered
    else:
        top = np.broadcast_to(np.arange(score.shape[1]), score.shape).copy()
    values = np.take_along_axis(score, top, 1)
    order = np.lexsort((top, -values), axis=1)
    return np.take_along_axis(values, order, 1), np.take_along_axis(top, order, 1)


def exact_search(queries: np.ndarray, gallery: np.ndarray, k: int, metric: str = "ip",
                 query_groups: np.ndarray | None = None, gallery_groups: np.ndarray | None = None,
                 chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of every query over the gallery.

    queries: (Q, ...) float, flattened to (Q, d); gallery: (G, ...) with the same d.
    k: results per query; at most G are returned.
    metric: "ip" (inner product, highest first: L2-normalised embeddings) or "l2" (squared Euclidean, lowest
        first).
    query_groups, gallery_groups: (Q,), (G,) int; gallery rows in the query's own group are left out (the
        clip-excluded protocols).
    chunk: queries scored per numpy block (grouped searches).
    returns: D (Q, min(k, G)) float32 scores (ip) or squared distances (l2); I (Q, min(k, G)) int64 gallery rows,
        -1 (with D = -inf for ip, +inf for l2) where fewer rows remain after exclusion.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if (query_groups is None) != (gallery_groups is None):
        raise ValueError("give both query_groups and gallery_groups, or neither")
    q = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
    g = np.ascontiguousarray(gallery, dtype=np.float32).reshape(len(gallery), -1)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query dim {q.shape[1]} != gallery dim {g.shape[1]}")
    k = min(int(k), len(g))
    D = np.empty((len(q), k), np.float32)
    I = np.empty((len(q), k), np.int64)
    if k == 0 or len(q) == 0:
        return D, I
    if query_groups is None:
        return faiss.knn(q, g, k, metric=faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2)
    g_sq = (g * g).sum(1) if metric == "l2" else None
    for start in range(0, len(q), chunk):
        qc = q[start : start + chunk]
        score = qc @ g.T  # (c, G)
        if metric == "l2":  # negated squared distance, so that larger is nearer for both metrics
            score = 2 * score - (qc * qc).sum(1, keepdims=True) - g_sq
        if query_groups is not None:
            same = np.asarray(query_groups)[start : start + chunk, None] == np.asarray(gallery_groups)[None, :]
            score[same] = -np.inf
        values, cols = _top_k(score, k)
        cols[~np.isfinite(values)] = -1
        D[start : start + chunk] = values if metric == "ip" else np.maximum(-values, 0.0)
        I[start : start + chunk] = cols
    return D, I
