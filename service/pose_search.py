"""From vector hits to pose results: the best view of each (clip, frame), optionally the best pose of each group,
and their geometric re-ranking.

The index holds every database pose under V virtual views (vector id = pose * V + view) and answers in vectors
(``PoseIndex.search`` returns ``(D, I)`` like FAISS). A query wants k *poses*, or k groups (clips): this module asks
for ``FIRST_ASK`` vectors a pose (all V for a group, or from an HNSW index, whose search depth grows with what it is
asked for), keeps the first view of each pose, and asks again with a larger pool while the vectors found hold fewer
than k poses (groups) and the index has more. The poses are those of one search for k x V vectors, which always
holds k poses: the first vectors an IVF or flat index is asked for are that search's first ones.

Re-ranking (``rerank``, ``model.retrieval.rerank``): the route asks ``search_candidates`` for
``model.retrieval.rerank.candidate_count(k)`` poses (groups) as arrays (``Candidates``), adds the bundle's lifted
candidates (``with_lifted``: the library poses nearest the query's lifted 3D by joint distances,
``model.retrieval.lifted_candidates``), fits each candidate's 3D, as its matched view sees it, to the query, orders
them by the rank score (cosine - weight * residual, the bundle's weight for the query's method) and keeps k; each
kept hit carries its residual, rank score and expected error (the bundle's calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from model.retrieval.lifted_candidates import DescriptorIndex, merge_candidates, views_and_cosines
from model.retrieval.rerank import ErrorCurve, first_per_key, fit_residuals, rank_order, rank_scores
from model.runtime.bundle_format import RerankInfo
from service.index_backend import VectorIndex

GROWTH = 4  # candidate pool growth when the vectors found hold fewer than k poses (or groups)
# vectors first asked per pose wanted: a query's best vectors are nearly all of distinct poses (of a re-ranked query's
# 800 best on the sample library, a median 739 poses; its 200 best held the 100 poses it wants for 300 of 300
# queries), and FAISS keeps a heap of every vector asked for (IVF, nprobe 6: 42 us for 200, 77 us for 800;
# benchmarks/request_kernels.py)
FIRST_ASK = 2


@dataclass(slots=True)
class Hit:
    """A pose hit. residual, rank, expected_error, far: set by ``rerank`` (None: not re-ranked; rank = score).

    Not frozen: a frozen dataclass costs 2.5 us to build against 0.3 us, and re-ranking builds 100 a query."""

    pose: int
    view: int
    score: float
    residual: float | None = None
    rank: float | None = None
    expected_error: float | None = None
    far: bool | None = None


class Candidates(NamedTuple):
    """One query's pose hits as arrays, best first: pose, view (H,) int64 and score (H,) float (cosines). What
    re-ranking reads and writes: ``Hit`` objects are built only for the hits a query answers with (re-ranking takes
    a few hundred candidates to keep k)."""

    pose: np.ndarray
    view: np.ndarray
    score: np.ndarray

    def hits(self, k: int | None = None, ranked: bool = False) -> list[Hit]:
        """The first k (all) as ``Hit``; ``ranked``: with rank = score (the cosine order kept)."""
        rows = zip(self.pose[:k].tolist(), self.view[:k].tolist(), self.score[:k].tolist())
        return [Hit(p, v, s, rank=s) for p, v, s in rows] if ranked else [Hit(p, v, s) for p, v, s in rows]


NO_CANDIDATES = Candidates(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


def best_per_pose(scores: np.ndarray, ids: np.ndarray, views: int, k: int,
                  group_of_pose: np.ndarray | None = None) -> Candidates:
    """One query's vector hits -> at most k pose hits, best first (``model.retrieval.rerank.first_per_key``).

    scores, ids: (kk,) one row of ``(D, I)``, best first; -1 placeholders are dropped.
    group_of_pose: (N,) int; when given, at most one hit per group (its best pose).
    """
    return Candidates(*first_per_key(scores, ids, views, k, group_of_pose))


def search_poses(index: VectorIndex, queries: np.ndarray, k: int, pose_mask: np.ndarray | None = None,
                 effort: float = 1.0, group_of_pose: np.ndarray | None = None,
                 expr: str | None = None) -> list[list[Hit]]:
    """Top-k poses per query.

    queries: (Q, D) float32, L2-normalised. pose_mask: (N,) bool, the poses a filter keeps (None = all); expr: the
    same filter as a Milvus expression, for backends that filter by expressions.
    group_of_pose: (N,) int; when given, at most one hit per group, up to k groups. Asks the backend for at most
    ``index.max_k`` vectors a query (Milvus: 16,384).
    returns: per query a list of at most k hits, best first; scores are cosines.
    """
    return [found.hits() for found in search_candidates(index, queries, k, pose_mask, effort, group_of_pose, expr)]


def search_candidates(index: VectorIndex, queries: np.ndarray, k: int, pose_mask: np.ndarray | None = None,
                      effort: float = 1.0, group_of_pose: np.ndarray | None = None,
                      expr: str | None = None) -> list[Candidates]:
    """``search_poses`` as arrays (``Candidates``), what re-ranking starts from."""
    vec_mask = None if pose_mask is None else np.repeat(pose_mask, index.views)
    selected = index.ntotal if vec_mask is None else int(vec_mask.sum())
    if selected == 0 or len(queries) == 0:
        return [NO_CANDIDATES] * len(queries)
    limit = min(selected, index.max_k)
    # an HNSW search looks deeper for a larger k (efSearch at least k): asking it for fewer would find other poses
    every_view = group_of_pose is not None or index.kind == "hnsw"
    kk = min(limit, k * (index.views if every_view else min(FIRST_ASK, index.views)))
    while True:
        scores, ids = index.search(queries, kk, vec_mask, effort, expr=expr)
        found = [best_per_pose(s, i, index.views, k, group_of_pose) for s, i in zip(scores, ids)]
        exhausted = kk >= limit or all((i < 0).any() for i in ids)  # nothing more to find
        if exhausted or all(len(c.pose) >= k for c in found):
            return found
        kk = min(limit, kk * GROWTH)


@dataclass(frozen=True)
class Reranking:
    """A bundle's re-ranking (manifest ``rerank``): candidates per query, per method its weight and expected-error
    curve, and the lifted candidates: how many, and the descriptor index over the bundle's poses (None: none)."""

    candidates: int
    weights: dict[str, float]
    curves: dict[str, ErrorCurve]
    lifted: int = 0
    descriptors: DescriptorIndex | None = None

    @classmethod
    def of(cls, info: RerankInfo | None, poses: np.ndarray | None = None) -> Reranking | None:
        """poses: (N, 17, 3) mm, the bundle's poses, indexed by joint distances when the manifest asks for lifted
        candidates."""
        if info is None:
            return None
        curves = {m: ErrorCurve(np.asarray(e.calibration.residual, np.float64),
                                np.asarray(e.calibration.expected_error_mm, np.float64), e.calibration.far_residual)
                  for m, e in info.methods.items()}
        lifted = info.lifted_candidates if poses is not None and len(poses) else 0
        return cls(info.candidates, {m: e.weight for m, e in info.methods.items()}, curves, lifted,
                   DescriptorIndex(poses) if lifted else None)


@dataclass(frozen=True)
class QueryGeometry:
    """What a query row is fitted with: method (``model.retrieval.rerank.METHODS``, None: no geometry, e.g. an
    embedding), features (17, 3) its encoder features, frame (3,) its crop's frame or None."""

    method: str | None
    features: np.ndarray
    frame: np.ndarray | None = None


RERANK_CHUNK = 64  # query rows fitted per vectorised call


def with_lifted(rows: list[Candidates], lifted: list[np.ndarray | None], queries: np.ndarray, reranking: Reranking,
                index: VectorIndex, poses: np.ndarray, rotations: np.ndarray, pose_mask: np.ndarray | None = None,
                group_of_pose: np.ndarray | None = None) -> list[Candidates]:
    """Each query row's cosine candidates joined by its lifted candidates (``model.retrieval.lifted_candidates``):
    the ``reranking.lifted`` poses (allowed by ``pose_mask``) nearest its lifted 3D, each at the view that sees it as
    the query's camera sees the lift, with that view's cosine; one list in cosine order, each pose (or group, with
    ``group_of_pose``) once.

    lifted: per row (17, 3) mm, its lifted 3D (camera frame), or None (the row keeps its candidates); queries: (Q,
    D); poses: (N, 17, 3) mm world, rotations: (V, 3, 3), the catalog's.
    """
    members = [i for i, pose in enumerate(lifted) if pose is not None]
    if not members or reranking.descriptors is None:
        return rows
    lifted_poses = np.stack([lifted[i] for i in members])
    near = reranking.descriptors.search(lifted_poses, reranking.lifted, pose_mask)
    lifted_view, lifted_cosine = views_and_cosines(
        lifted_poses, near, queries[members], lambda rows: poses[rows], rotations,
        lambda ids: index.vectors(ids, cache=False))  # one query's vectors: not worth keeping in the filter cache
    out = list(rows)
    for i, p, v, c in zip(members, near, lifted_view, lifted_cosine):
        found = p >= 0
        pose, view, score = rows[i]
        out[i] = Candidates(*merge_candidates([pose, p[found]], [view, v[found]], [score, c[found]], group_of_pose))
    return out


def rerank(rows: list[Candidates], geometry: list[QueryGeometry], poses: np.ndarray, rotations: np.ndarray,
           reranking: Reranking, k: int) -> list[list[Hit]]:
    """Every query row's candidate hits (cosine order) -> its k best by rank score, each with residual, rank score
    and expected error. Rows of one method are fitted together (``RERANK_CHUNK`` at a time, candidates padded);
    rows without geometry (or of a method the bundle has no weight for) keep the cosine order.

    rows: per query its candidates (cosine order); geometry: per query (aligned). poses: (N, 17, 3) mm world Y-up;
    rotations: (V, 3, 3) world -> virtual view.
    """
    out: list[list[Hit] | None] = [None] * len(rows)
    methods = {g.method for g, found in zip(geometry, rows) if len(found.pose) and g.method in reranking.weights}
    for method in sorted(methods):
        members = [i for i, (g, found) in enumerate(zip(geometry, rows)) if len(found.pose) and g.method == method]
        for start in range(0, len(members), RERANK_CHUNK):
            chunk = members[start : start + RERANK_CHUNK]
            for i, ranked in zip(chunk, _rerank_method([rows[i] for i in chunk], [geometry[i] for i in chunk],
                                                       method, poses, rotations, reranking, k)):
                out[i] = ranked
    return [found.hits(k, ranked=True) if done is None else done for found, done in zip(rows, out)]


def _rerank_method(rows: list[Candidates], geometry: list[QueryGeometry], method: str, poses: np.ndarray,
                   rotations: np.ndarray, reranking: Reranking, k: int) -> list[list[Hit]]:
    """``rerank`` of rows of one method, in one vectorised fit."""
    count = max(len(found.pose) for found in rows)
    pose = np.zeros((len(rows), count), np.int64)
    view = np.zeros((len(rows), count), np.int64)
    cosine = np.full((len(rows), count), -np.inf)
    for r, found in enumerate(rows):
        n = len(found.pose)
        pose[r, :n], view[r, :n], cosine[r, :n] = found
    seen = poses[pose].astype(np.float64) @ np.swapaxes(rotations[view], -1, -2)  # as the matched views see them
    features = np.stack([g.features for g in geometry])
    frames = None if geometry[0].frame is None else np.stack([g.frame for g in geometry])
    residual = fit_residuals(method, features, seen, frames)  # (R, count); padded columns score -inf below
    rank = np.where(np.isfinite(cosine), rank_scores(cosine, residual, reranking.weights[method]), -np.inf)
    order = rank_order(rank)
    curve = reranking.curves[method]
    out = []
    for r, found in enumerate(rows):
        keep = order[r, : min(k, len(found.pose))]
        expected, far = curve.expected_error(residual[r, keep]), curve.far(residual[r, keep])
        out.append([Hit(int(pose[r, i]), int(view[r, i]), float(cosine[r, i]), float(residual[r, i]), float(rank[r, i]),
                        e, f) for i, e, f in zip(keep.tolist(), expected.tolist(), far.tolist())])
    return out
