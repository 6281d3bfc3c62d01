"""The matching segment of a clip: the contiguous frames around its best frame that match the query about as well.

For a grouped retrieval result (one per clip) the segment is the run of consecutive frames around the best frame
whose best-view score stays within ``SEGMENT_MARGIN`` of the best frame's score: where in the clip the queried
pose is held. Scores come from the index's stored vectors of the clip (exact, all views), so the segment does not
depend on which approximate candidates the search returned.
"""

from __future__ import annotations

import numpy as np

from service.artifacts import Bundle
from service.pose_search import Hit

SEGMENT_MARGIN = 0.02  # cosine: frames scoring at least best - margin belong to the segment


def segment_around(scores: np.ndarray, best: int, margin: float = SEGMENT_MARGIN) -> tuple[int, int]:
    """The inclusive run [lo, hi] of positions around ``best`` whose scores are >= scores[best] - margin.

    scores: (F,) per-frame scores of one clip, in frame order.
    """
    keep = scores >= scores[best] - margin
    lo = best
    while lo > 0 and keep[lo - 1]:
        lo -= 1
    hi = best
    while hi < len(scores) - 1 and keep[hi + 1]:
        hi += 1
    return lo, hi


def frame_scores(vectors: np.ndarray, query: np.ndarray, views: int) -> np.ndarray:
    """Best-view score of each frame: vectors (F * V, D) of F consecutive poses, query (D,) -> (F,)."""
    return (vectors @ query).reshape(-1, views).max(axis=1)


def clip_segments(bundle: Bundle, queries: np.ndarray, hits: list[list[Hit]]) -> list[list[tuple[float, float]]]:
    """(start, end) seconds of the matching segment of every hit's clip: queries (Q, D), hits per query."""
    catalog, views = bundle.catalog, bundle.views
    out = []
    for query, row in zip(queries, hits):
        spans = []
        for hit in row:
            clip = int(catalog.clip[hit.pose])
            rows = catalog.rows_of_clip(clip)
            ids = (rows[:, None] * views + np.arange(views)).ravel()
            scores = frame_scores(bundle.index.vectors(ids), query, views)
            lo, hi = segment_around(scores, int(np.flatnonzero(rows == hit.pose)[0]))
            fps = float(catalog.clip_fps[clip])
            start, end = catalog.frame[rows[[lo, hi]]] / fps
            spans.append((round(float(start), 6), round(float(end), 6)))
        out.append(spans)
    return out
