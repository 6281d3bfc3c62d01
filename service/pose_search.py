"""From vector hits to pose results: the best view of each (clip, frame), optionally the best pose of each group.

The index holds every database pose under V virtual views (vector id = pose * V + view) and answers in vectors
(``PoseIndex.search`` returns ``(D, I)`` like FAISS). A query wants k *poses*, or k groups (clips): this module asks
for enough vectors, keeps the first view of each pose, and asks again with a larger pool when grouping left fewer
than k groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.index import PoseIndex

GROWTH = 4  # candidate pool growth when grouping leaves fewer than k groups


@dataclass(frozen=True)
class Hit:
    pose: int
    view: int
    score: float


def best_per_pose(scores: np.ndarray, ids: np.ndarray, views: int, k: int,
                  group_of_pose: np.ndarray | None = None) -> list[Hit]:
    """One query's vector hits -> at most k pose hits, best first.

    scores, ids: (kk,) one row of ``(D, I)``, best first; -1 placeholders are dropped.
    group_of_pose: (N,) int; when given, at most one hit per group (its best pose).
    """
    keep = ids >= 0
    scores, ids = scores[keep], ids[keep]
    pose, view = np.divmod(ids, views)
    key = pose if group_of_pose is None else group_of_pose[pose]
    first = np.sort(np.unique(key, return_index=True)[1])[:k]  # the best (first) hit of each pose or group
    return [Hit(p, v, s) for p, v, s in zip(pose[first].tolist(), view[first].tolist(), scores[first].tolist())]


def search_poses(index: PoseIndex, queries: np.ndarray, k: int, pose_mask: np.ndarray | None = None,
                 effort: float = 1.0, group_of_pose: np.ndarray | None = None) -> list[list[Hit]]:
    """Top-k poses per query.

    queries: (Q, D) float32, L2-normalised. pose_mask: (N,) bool, the poses a filter keeps (None = all).
    group_of_pose: (N,) int; when given, at most one hit per group, up to k groups.
    returns: per query a list of at most k hits, best first; scores are cosines.
    """
    vec_mask = None if pose_mask is None else np.repeat(pose_mask, index.views)
    selected = index.ntotal if vec_mask is None else int(vec_mask.sum())
    if selected == 0 or len(queries) == 0:
        return [[] for _ in range(len(queries))]
    kk = min(selected, k * index.views)
    while True:
        scores, ids = index.search(queries, kk, vec_mask, effort)
        hits = [best_per_pose(s, i, index.views, k, group_of_pose) for s, i in zip(scores, ids)]
        exhausted = kk >= selected or all((i < 0).any() for i in ids)  # nothing more to find
        if group_of_pose is None or exhausted or all(len(h) >= k for h in hits):
            return hits
        kk = min(selected, kk * GROWTH)
