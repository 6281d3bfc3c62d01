"""The methods motion search's evaluation compares (``index_builder.evaluation.motion.protocol`` docstring), each
returning up to ``K`` segments (library clip, first position, last position), best first: UniHPR's motion search,
per-frame retrieval with voting, and subsequence DTW over normalised 2D."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index_builder.evaluation.motion.library import VIEWS, IndexSearch, Library
from index_builder.evaluation.motion.queries import Query
from model.pose.camera_rigs import virtual_view_rotations
from model.pose.normalization import normalize_2d
from model.retrieval.motion_search import DistinctSegments, LiftedQuery, QueryShape, anchor_hits, search_motion
from model.retrieval.sequence_alignment import ColumnLayout, backtrack, local_minima, subsequence_dtw

K = 10  # segments per query
VOTE_POSES = 50
VIEW_DISTANCE_MM = 5000.0  # the 2D baseline projects library poses from this far
METHODS = ("unihpr", "voting", "dtw_2d")


Found = list[tuple[int, int, int]]  # (library clip, first position, last position), best first


def unihpr_search(q: Query, condition: str, library: Library, search: IndexSearch, verify: bool = True) -> Found:
    shape = QueryShape(q.keypoints[condition], q.weights[condition], q.scales) if verify else None
    lifted = LiftedQuery(q.lifts[condition], library.descriptors, library.rotations, search.allowed)
    segments = search_motion(q.embeddings[condition], q.times, np.ones(len(q.times), bool), library.layout, VIEWS,
                             search, lambda ids: library.vectors[ids], K, shape=shape,
                             poses=lambda rows: library.poses[rows], lifted=lifted)
    return [(s.clip, s.first, s.last) for s in segments]


def voting_search(q: Query, condition: str, library: Library, search: IndexSearch) -> Found:
    frames = q.embeddings[condition][q.grid]
    hits = anchor_hits(*search(frames, VOTE_POSES * VIEWS), VIEWS, VOTE_POSES)
    score: dict[int, float] = {}
    span: dict[int, list[int]] = {}
    for rows, scores, _ in hits:
        best: dict[int, tuple[float, int]] = {}
        for row, s in zip(rows.tolist(), scores.tolist()):
            c = int(library.layout.clip[row])
            if c not in best or s > best[c][0]:
                best[c] = (s, int(library.layout.position[row]))
        for c, (s, p) in best.items():
            score[c] = score.get(c, 0.0) + s / len(frames)
            span.setdefault(c, []).append(p)
    order = sorted(score, key=lambda c: -score[c])[:K]
    return [(c, min(span[c]), max(span[c])) for c in order]


@dataclass
class Baseline2D:
    """Normalised 2D of the training poses under the virtual views, for ``dtw_2d``: keypoints (N, V, 34),
    their squared norms (N, V), the training clips' column layout and where each column's pose sits."""

    keypoints: np.ndarray
    squares: np.ndarray
    columns: ColumnLayout
    clips: np.ndarray  # (S,) library clip of each sequence of ``columns``

    @classmethod
    def of(cls, library: Library) -> Baseline2D:
        clips = np.flatnonzero(library.train)
        rows = np.concatenate([library.layout.row(c, np.arange(library.layout.length(c))) for c in clips])
        poses = library.poses[rows]
        cams = np.einsum("vij,nkj->nvki", virtual_view_rotations(VIEWS), poses)  # (N, V, 17, 3)
        cams[..., 2] += VIEW_DISTANCE_MM
        flat = (cams[..., :2] / cams[..., 2:3]).reshape(-1, cams.shape[2], 2)
        norm = normalize_2d(flat)[0].reshape(len(poses), VIEWS, -1)
        return cls(norm, (norm.astype(np.float64) ** 2).sum(-1).astype(np.float32),
                   ColumnLayout.of([library.layout.length(c) for c in clips]), clips)

    def cost(self, query: np.ndarray, chunk: int = 32768) -> np.ndarray:
        """(M, N) the smallest mean squared joint distance over the views; query (M, 17, 2) normalised."""
        q = query.reshape(len(query), -1).astype(np.float32)
        q_sq = (q * q).sum(1)[:, None]
        out = np.empty((len(q), len(self.keypoints)), np.float32)
        for start in range(0, len(self.keypoints), chunk):
            lib = self.keypoints[start : start + chunk]
            dots = (q @ lib.reshape(-1, lib.shape[-1]).T).reshape(len(q), len(lib), VIEWS)
            d = q_sq[..., None] + self.squares[None, start : start + chunk] - 2 * dots
            out[:, start : start + chunk] = d.min(axis=2) / (q.shape[1] / 2)
        return np.maximum(out, 0.0)


def top_segments(cost: np.ndarray, columns: ColumnLayout, clips: np.ndarray, k: int) -> Found:
    """The k best distinct segments of a subsequence DTW over ``columns`` (sequence s is library clip clips[s])."""
    alignment = subsequence_dtw(columns.place(cost))
    end_cost = alignment.mean_end_cost
    out = DistinctSegments()
    for end in local_minima(end_cost, columns.sequence)[: 20 * k]:
        path = columns.offset[backtrack(alignment, end)]
        if out.add((int(clips[columns.sequence[end]]), int(path[0]), int(path[-1]))) and len(out) >= k:
            break
    return out.kept


def dtw_2d_search(q: Query, condition: str, baseline: Baseline2D) -> Found:
    return top_segments(baseline.cost(q.keypoints[condition][q.grid]), baseline.columns, baseline.clips, K)
