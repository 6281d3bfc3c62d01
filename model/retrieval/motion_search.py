"""Motion search: a sequence of per-frame embeddings in, the best-matching segments of library clips out.

The service (``service.motion_search``) and the evaluation (``index_builder.evaluation.motion.protocol``) run this
same function; they differ only in how they search vectors and read them back (the two callables).

Design, and why:

1. **Per-frame embeddings on the library's frame grid.** The query's frames (any rate, with gaps) are resampled by
   nearest frame onto the library's frame rate (``model.retrieval.sequence_alignment.grid_frames``), so one step of the
   alignment is one library frame whatever the query's rate; grid points without a frame are *missing*.
2. **Candidates from the index, not the library.** A few *anchor* frames (``ANCHORS``, evenly spread over the
   query) each ask the index for their ``ANCHOR_POSES`` best poses (all virtual views, so any camera azimuth finds
   them), and, with the query's lifted 3D (``LiftedQuery``: the decoder's lift of each frame, as ``/lift3d``
   gives it; a 3D query's own poses), the descriptor index (``model.retrieval.lifted_candidates``) for the
   ``LIFTED_ANCHOR_POSES`` poses nearest each anchor's lift by joint distances, which no camera changes: the
   embedding encodes a pose as one camera sees it, and from a camera unlike the indexed views the right clip was
   often among no anchor's hits. A hit on pose p of a clip for anchor i says the query may sit on the clip
   around p; with speeds bounded
   by the alignment's slope limits (``MAX_STEP``), the whole query then lies within ``[p - MAX_STEP * i,
   p + MAX_STEP * (M - 1 - i)]`` of that clip: a *window*. Windows of one clip are merged, ranked by the sum over
   anchors of their best hit score (a window several anchors agree on comes first), and kept up to a column
   budget. The library is only ever touched through the indexes and these windows, so the cost grows with the
   candidates, not with the library's size.
3. **Subsequence DTW over cosine distances** (``model.retrieval.sequence_alignment``) on the windows, each aligned once
   per view among the ``VIEWS_PER_WINDOW`` virtual views its anchor hits came from, the view fixed along the path: a
   fixed camera sees the whole motion from one side (the person turning is part of the motion, and the library
   clip turns alike). Letting the view change per frame was measured worse (held-out content hit@1 0.63 -> 0.73
   on the sample at 1x) and aligning all 8 views costs 4x the vectors read for views the query never matched.
   Free start and end inside each window; speeds from 1/3x to 3x; missing frames cost nothing. With the lifted 3D
   the cost of a pair adds the RMS difference of its joint-pair distances over ``LIFTED_COST_MM`` (the library's
   descriptors read back from the descriptor index, one read per window frame for all its views): the cosines
   place a motion's phase only coarsely, and a path in the wrong phase sends the verification's camera fit astray.
   A segment's ``score`` is the mean cosine along its path over the present query frames, in [-1, 1] like
   single-pose scores; segments are ranked for the verification by the path's mean cost.
4. **Distinct segments.** Candidate ends are the local minima of the end cost within each window, best first;
   they are traced back (all at once) and a segment that overlaps one already kept from the same clip is dropped
   (with ``group_by_clip``, any second segment of a clip), so a clip's neighbouring frames, which end paths of
   almost the same cost, do not crowd the list. Distinct cycles of periodic motion (steps of a walk) do not
   overlap and stay.
5. **Geometric verification** (when the caller gives the query's 2D or 3D and the library's poses): the best
   ``VERIFY`` segments by the alignment's cost are each fitted with one camera (``model.retrieval.sequence_fit``:
   found under weak perspective, then refined under perspective), re-aligned under it in their clip, grown by
   ``VERIFY_MARGIN`` of its length on each side (a path that held on a few similar poses, as a wave at 2x does,
   lies shorter than the motion, and the true path must be inside the region to be found), and ordered by the
   fit's residual. Per-frame embeddings tell a held-out pose from similar ones only coarsely across viewpoints
   (on the sample, a query frame's own library pose ranks about 50th among 14k by cosine), while one camera for a
   whole motion is a strong constraint. Every candidate is verified: a quick screen (one weak-perspective camera
   fitted to each path found, and the lift turned onto each segment's 3D) dropped the query's own take for 11 of
   200 own-clip queries at 1x, most of them runs, whose 10 fps path misplaces fast limbs.

Measured with the query's clip in the library (``unihpr-build evaluate``'s own-clip protocol, clean 2D, at 0.5x /
1x / 2x), its own segment at top-1: 0.62 / 0.60 / 0.48 of queries with the cosine path and the weak-perspective
verification (50 queries a speed); 0.91 / 0.88 / 0.835 with the lifted path, the perspective refinement and the
re-alignment, 20 of 60 segments verified, each grown by half its length (200 queries a speed); 0.925 / 0.95 /
0.915 with 48 segments verified, each grown by its length, and 8 cameras refined under perspective (at 2x,
growing by the length instead of half: 0.835 -> 0.865; at 1x with that growth and 8 cameras: 40 segments 0.94, 48
or 60 segments 0.95; 60 segments with 4 cameras 0.93). A verified segment's ends are the frames around where the
query's ends fall (``covered_span``), not the nearest path frames: 0.925 / 0.95 / 0.925 clean, and with simulated
detector features 0.665 / 0.615 / 0.485 -> 0.665 / 0.63 / 0.54 (own segments a frame short at an end failed the
protocol's rule, within 1.1x the true segment's aligned error, where the true one is under a millimetre off). Twice
the column budget (``MIN_COLUMNS``): 0.95 / 0.95 / 0.925 clean, 0.73 / 0.67 / 0.57 with detector features.
What still loses: takes of one move by one actor whose 2D differ less than the 10 fps library samples them,
people so close to the camera that the weak-perspective camera starts too far off for the refinement, and clips
no anchor finds (``reports/eval.md`` for the held-out rows).

Cost per query, M grid frames (library rate x duration): ``ANCHORS`` searches of the index (fixed), then
(M x columns) for the cosines (D multiply-adds each) and the DTW (about ten numpy operations per row over the
columns), where the columns are the windows' frames times their views, the windows' frames at most
max(``MIN_COLUMNS``, ``COLUMNS_PER_FRAME`` x M); so the alignment grows about as M^2 for long queries and the index
search does not grow with M; the lifted path adds the decoder on every frame, ``ANCHORS`` descriptor searches and
a (M x window frames) distance over 32 dimensions; the verification is ``VERIFY`` fits of M frames and the
perspective refinement of the best ``sequence_fit.REFINE_SEQUENCES`` on at most ``sequence_fit.REFINE_FRAMES``
frames. Measured in ``benchmarks/motion_search.py`` (``benchmarks/README.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from model.retrieval.lifted_candidates import PAIRS, DescriptorIndex, merge_candidates, views_and_cosines
from model.retrieval.sequence_alignment import (
    MAX_HOLD,
    MAX_STEP,
    ColumnLayout,
    backtrack_many,
    grid_frames,
    local_minima,
    subsequence_dtw,
)
from model.retrieval.sequence_fit import fit_sequences

ANCHORS = 8  # query frames that search the index
ANCHOR_POSES = 64  # poses (best view each) every anchor asks for
LIFTED_ANCHOR_POSES = 64  # poses every anchor's lifted 3D brings from the descriptor index, on top
LIFTED_COST_MM = 100.0  # an RMS joint-pair difference of the lifted 3D that costs as much as a cosine distance of 1
WINDOW_MARGIN = 2  # library frames added on both sides of a window
# The own take of a noisy query often ranks low among its sibling takes' windows (one anchor found it): twice the
# budget of 4,096 / 48 finds it more often (benchmarks/README.md, issue 19's budget) now that reading the windows'
# vectors is cheap (``model.retrieval.stored_vectors``).
MIN_COLUMNS = 8192  # library frames the alignment may visit per query, at least ...
COLUMNS_PER_FRAME = 96  # ... or this many per grid frame of the query (about 32 windows of 3M frames)
ENDS_PER_RESULT = 20  # candidate ends traced per requested result, at most
VIEWS_PER_WINDOW = 2  # virtual views a window is aligned in (those its anchor hits scored best in)
READ_CHUNK = 1024  # stored vectors read at a time: a few hundred kB that the allocator reuses, not fresh pages
VERIFY = 48  # the best segments by the alignment's cost verified geometrically (at least k)
VERIFY_MARGIN = 1.0  # frames a verified segment may grow by on each side, as a fraction of its length (>= 2)

PosesFn = Callable[[np.ndarray], np.ndarray]  # pose rows (n,) -> (n, J, 3) mm root-relative, world Y-up
SearchFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (queries (A, D), k) -> (scores, vector ids)
VectorsFn = Callable[[np.ndarray], np.ndarray]  # vector ids (n,) -> (n, D) float32


@dataclass(frozen=True)
class LiftedQuery:
    """The query frames' lifted 3D and the library's descriptor index (``model.retrieval.lifted_candidates``).

    poses: (F, J, 3) mm root-relative in the query camera's frame, one per query frame (the decoder's lift of its
    embedding; a 3D query's own pose; rows of missing frames are ignored); index: the library's descriptor index;
    rotations: (V, 3, 3) world -> virtual view cameras; allowed: (N,) bool, the poses a filter keeps (None: all).
    """

    poses: np.ndarray
    index: DescriptorIndex
    rotations: np.ndarray
    allowed: np.ndarray | None = None


@dataclass(frozen=True)
class ClipLayout:
    """Where every indexed pose sits in its clip.

    clip: (N,) clip of each pose row; rows: (N,) pose rows clip by clip, each clip's in frame order; bounds: (C + 1,)
    clip c is rows[bounds[c]:bounds[c + 1]]; position: (N,) a pose row's rank in its clip's frame order; rate: (C,)
    the rate the clip is *indexed* at, frames per second: its fps over the step between its indexed frame numbers
    (a bundle indexed at 10 fps from 30 fps clips keeps frames 0, 3, 6, ... at fps 30: rate 10).
    """

    clip: np.ndarray
    rows: np.ndarray
    bounds: np.ndarray
    position: np.ndarray
    rate: np.ndarray

    @classmethod
    def of(cls, clip: np.ndarray, frame: np.ndarray, fps: np.ndarray) -> ClipLayout:
        clip = np.asarray(clip, dtype=np.int64)
        frame = np.asarray(frame, dtype=np.int64)
        rows = np.lexsort((frame, clip))
        bounds = np.searchsorted(clip[rows], np.arange(len(fps) + 1))
        position = np.empty(len(clip), np.int64)
        position[rows] = np.arange(len(clip)) - bounds[clip[rows]]
        steps = np.diff(frame[rows])  # clip c's own steps: steps[bounds[c]:bounds[c + 1] - 1]
        step = np.ones(len(fps))
        for c in np.flatnonzero(np.diff(bounds) > 1):
            step[c] = max(1.0, float(np.median(steps[bounds[c] : bounds[c + 1] - 1])))
        return cls(clip, rows, bounds, position, np.asarray(fps, dtype=np.float64) / step)

    def length(self, clip: int) -> int:
        return int(self.bounds[clip + 1] - self.bounds[clip])

    def row(self, clip: int, position) -> np.ndarray:
        """Pose rows of positions (array) in a clip."""
        return self.rows[self.bounds[clip] + np.asarray(position)]

    @property
    def primary_rate(self) -> float:
        """The rate most poses are indexed at: the grid anchors are chosen on."""
        rates, counts = np.unique(self.rate[self.clip], return_counts=True)
        return float(rates[np.argmax(counts)]) if len(rates) else 1.0


@dataclass(frozen=True)
class Window:
    clip: int
    lo: int  # first position in the clip (inclusive)
    hi: int  # last position (inclusive)
    priority: float
    views: tuple[int, ...] = (0,)  # the virtual views aligned, best first


@dataclass
class Segment:
    """One matching segment.

    clip: clip index; first, last: positions in the clip's frame order of the first and last present query frame's
    library frames (verified segments: the frames on either side of where those query frames fall,
    ``covered_span``); score: mean cosine along the path over present frames. grid: (M,) the query frame of each grid
    point (-1: missing); positions: (M,) the clip position of each grid point on the path; views: (M,) the best view
    at each. rate: the grid's frames per second (the clip's).
    """

    clip: int
    first: int
    last: int
    score: float
    grid: np.ndarray
    positions: np.ndarray
    views: np.ndarray
    rate: float
    residual: float | None = None  # the geometric verification's residual (``sequence_fit``), when verified
    cost: float = 0.0  # the alignment's mean cost along the path (cosine distance, plus the lifted term)

    @property
    def pairs(self) -> np.ndarray:
        """(P, 2) int: [query frame, clip position] for every present grid point, in order."""
        keep = self.grid >= 0
        return np.stack([self.grid[keep], self.positions[keep]], axis=1)

    @property
    def view(self) -> int:
        """The view that matched most present frames."""
        views = self.views[self.grid >= 0]
        return int(np.bincount(views).argmax()) if len(views) else 0


@dataclass(frozen=True)
class QueryShape:
    """What the geometric verification fits: points (F, J, 2) normalised 2D per query frame with weights (F, J)
    (confidence or visibility), or points (F, J, 3) camera-frame mm with weights None; rows of missing frames are
    ignored."""

    points: np.ndarray
    weights: np.ndarray | None = None
    scales: np.ndarray | None = None  # (F,) 2D from a perspective crop: its box half-side in ray units (NaN: none)


@dataclass
class SearchStats:
    anchors: int = 0
    hits: int = 0
    windows: int = 0
    columns: int = 0
    grid_frames: int = 0
    present_frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # ms: candidates, alignment


def choose_anchors(grid: np.ndarray, count: int = ANCHORS) -> np.ndarray:
    """Up to ``count`` grid rows with a frame, evenly spread from the first to the last."""
    rows = np.flatnonzero(grid >= 0)
    if len(rows) <= count:
        return rows
    return rows[np.unique(np.round(np.linspace(0, len(rows) - 1, count)).astype(np.int64))]


def anchor_hits(scores: np.ndarray, ids: np.ndarray, views: int,
                poses: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per anchor its best ``poses`` poses (best view each): (pose rows, scores, views), best first."""
    out = []
    for s, i in zip(scores, ids):
        keep = i >= 0
        s, pose, view = s[keep], i[keep] // views, i[keep] % views
        first = np.sort(np.unique(pose, return_index=True)[1])[:poses]
        out.append((pose[first], s[first], view[first]))
    return out


def descriptor_cost(query: np.ndarray, library: np.ndarray) -> np.ndarray:
    """(M, n) float32: the RMS difference of joint-pair distances (mm) between query (M, d) and library (n, d)
    descriptors (``DescriptorIndex.describe`` / ``descriptors``), over ``LIFTED_COST_MM``."""
    a, b = query.astype(np.float64), library.astype(np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
    return (np.sqrt(np.maximum(d2, 0.0) / PAIRS) / LIFTED_COST_MM).astype(np.float32)


def lifted_anchor_hits(hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]], frames: np.ndarray,
                       embeddings: np.ndarray, lifted: LiftedQuery, poses: PosesFn, vectors: VectorsFn,
                       count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each anchor's hits joined by the ``count`` library poses nearest its lifted 3D by joint distances, each at the
    view that sees it as the query's camera sees the lift and with that view's cosine; one list per anchor in cosine
    order, each pose once. frames: (A,) the anchors' query frames."""
    lift = lifted.poses[frames]
    near = lifted.index.search(lift, count, lifted.allowed)
    view, cosine = views_and_cosines(lift, near, embeddings[frames], poses, lifted.rotations, vectors)
    out = []
    for (pose, score, v), p, lv, c in zip(hits, near, view, cosine):
        found = p >= 0
        merged_pose, merged_view, merged_score = merge_candidates([pose, p[found]], [v, lv[found]], [score, c[found]])
        out.append((merged_pose, merged_score, merged_view))
    return out


def candidate_windows(hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]], anchor_rows: np.ndarray,
                      layout: ClipLayout, grid_length: Callable[[float], int], primary_rate: float,
                      budget: int) -> list[Window]:
    """Merged windows of the clips the anchors hit, best first, within ``budget`` columns in all; each with the
    ``VIEWS_PER_WINDOW`` views its hits scored best in.

    hits: per anchor (pose rows, scores, views); anchor_rows: (A,) the anchors' grid rows on the primary grid;
    grid_length(rate): the query's grid length M at a clip rate. Vectorised over the hits (a thousand a query).
    """
    counts = [len(h[0]) for h in hits]
    if not sum(counts):
        return []
    row = np.concatenate([h[0] for h in hits]).astype(np.int64)
    score = np.concatenate([h[1] for h in hits]).astype(np.float64)
    view = np.concatenate([h[2] for h in hits]).astype(np.int64)
    anchor = np.repeat(np.arange(len(hits)), counts)
    clip = layout.clip[row]
    rate = layout.rate[clip]
    rates, rate_of = np.unique(rate, return_inverse=True)
    m = np.array([grid_length(float(r)) for r in rates], np.int64)[rate_of]
    i = np.minimum(m - 1, np.round(anchor_rows[anchor] * rate / primary_rate).astype(np.int64))
    position = layout.position[row]
    lo = np.maximum(0, position - MAX_STEP * i - WINDOW_MARGIN)
    hi = np.minimum(layout.bounds[clip + 1] - layout.bounds[clip] - 1,
                    position + MAX_STEP * (m - 1 - i) + WINDOW_MARGIN)
    # merge the spans of each clip: sorted by (clip, lo), a span opens a window when it starts after every earlier
    # span of its clip has ended (the running maximum of hi, kept within a clip by an offset per clip)
    order = np.lexsort((lo, clip))
    clip, lo, hi, anchor, score, view = clip[order], lo[order], hi[order], anchor[order], score[order], view[order]
    offset = clip * (int(hi.max()) + 2)
    reach = np.maximum.accumulate(hi + offset)
    opens = np.ones(len(lo), bool)
    opens[1:] = lo[1:] + offset[1:] > reach[:-1] + 1
    window = np.cumsum(opens) - 1
    count = int(window[-1]) + 1
    w_lo = lo[opens]
    w_hi = np.full(count, -1, np.int64)
    np.maximum.at(w_hi, window, hi)
    best_anchor = np.full((count, len(hits)), -np.inf)
    np.maximum.at(best_anchor, (window, anchor), score)
    priority = np.where(np.isfinite(best_anchor), best_anchor, 0.0).sum(1)
    best_view = np.full((count, int(view.max()) + 1), -np.inf)
    np.maximum.at(best_view, (window, view), score)
    w_clip = clip[opens]
    ranked = np.lexsort((w_lo, w_clip, -priority))
    windows, used = [], 0
    for w in ranked.tolist():
        width = int(w_hi[w] - w_lo[w] + 1)
        if used + width <= budget:
            seen = np.flatnonzero(np.isfinite(best_view[w]))
            chosen = seen[np.argsort(-best_view[w][seen], kind="stable")][:VIEWS_PER_WINDOW]
            windows.append(Window(int(w_clip[w]), int(w_lo[w]), int(w_hi[w]), float(priority[w]),
                                  tuple(int(v) for v in chosen)))
            used += width
    return windows


class DistinctSegments:
    """The segments kept so far, no two of one clip sharing a frame (with ``group_by_clip``, one per clip); segments
    are ``Segment`` or (clip, first, last) tuples. Kept by clip: candidates are checked against their clip's only."""

    def __init__(self, group_by_clip: bool = False):
        self.group_by_clip = group_by_clip
        self.kept: list = []
        self._spans: dict[int, list[tuple[int, int]]] = {}

    def __len__(self) -> int:
        return len(self.kept)

    def admits(self, clip: int, first: int, last: int) -> bool:
        """Whether a segment of ``clip`` over first..last would be kept."""
        spans = self._spans.get(clip, ())
        return not any(self.group_by_clip or (first <= o_last and o_first <= last) for o_first, o_last in spans)

    def add(self, segment) -> bool:
        """Keep ``segment`` unless it overlaps a kept one of its clip; whether it was kept."""
        clip, first, last = ((segment.clip, segment.first, segment.last) if isinstance(segment, Segment)
                             else tuple(segment))
        if not self.admits(clip, first, last):
            return False
        self._spans.setdefault(clip, []).append((first, last))
        self.kept.append(segment)
        return True


def align_windows(embeddings: np.ndarray, grid: np.ndarray, windows: list[Window], layout: ClipLayout, views: int,
                  vectors: VectorsFn, rate: float, k: int, group_by_clip: bool,
                  lifted: LiftedQuery | None = None) -> list[Segment]:
    """Subsequence DTW of the query (its frames on the grid) over the windows, each once per view of the window,
    the view fixed along a path (a fixed camera sees the clip from one side); at most k distinct segments."""
    present = grid >= 0
    present_rows = np.flatnonzero(present)
    pairs = [(w, v) for w in windows for v in w.views]  # the sequences: (window, view)
    lengths = np.array([w.hi - w.lo + 1 for w, _ in pairs], np.int64)
    rows = np.concatenate([layout.row(w.clip, np.arange(w.lo, w.hi + 1)) for w, _ in pairs])
    view_of = np.repeat([v for _, v in pairs], lengths)
    ids = rows * views + view_of  # only the views the windows' hits came from
    query = embeddings[grid[present_rows]]
    cosine = np.empty((len(present_rows), len(ids)), np.float32)  # (P, n)
    for start in range(0, len(ids), READ_CHUNK):
        cosine[:, start : start + READ_CHUNK] = query @ vectors(ids[start : start + READ_CHUNK]).T
    cost = np.zeros((len(grid), len(rows)), np.float32)  # missing rows: 0 (``subsequence_dtw`` ignores them)
    cost[present_rows] = 1.0 - cosine
    if lifted is not None:  # the lifted 3D's joint-pair distances: the same in every view, so read once a window
        unique, where = np.unique(rows, return_inverse=True)
        cost[present_rows] += descriptor_cost(lifted.index.describe(lifted.poses[grid[present_rows]]),
                                              lifted.index.descriptors(unique))[:, where]
    columns = ColumnLayout.of(lengths)
    first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # each sequence's first column of ``cost``
    alignment = subsequence_dtw(columns.place(cost), present, MAX_STEP, MAX_HOLD)
    end_cost = alignment.mean_end_cost
    out = DistinctSegments(group_by_clip)
    ends = local_minima(end_cost, columns.sequence)[: ENDS_PER_RESULT * k]
    for end, path in zip(ends.tolist(), backtrack_many(alignment, ends)):
        sequence = int(columns.sequence[end])
        w, view = pairs[sequence]
        positions = w.lo + columns.offset[path]
        first, last = int(positions[present_rows[0]]), int(positions[present_rows[-1]])
        if not out.admits(w.clip, first, last):  # most ends: a neighbour of a kept one
            continue
        score = float(cosine[np.arange(len(present_rows)), first_row[sequence] + columns.offset[path[present_rows]]]
                      .mean())
        out.add(Segment(w.clip, first, last, score, grid, positions, np.full(len(grid), view, np.int64), rate,
                        cost=float(end_cost[end])))
        if len(out) >= k:
            break
    return out.kept


def verify(segments: list[Segment], shape: QueryShape, layout: ClipLayout, poses: PosesFn) -> list[Segment]:
    """Each segment fitted with one camera (``model.retrieval.sequence_fit.fit_sequences``) and re-aligned under it
    within its clip, grown by ``VERIFY_MARGIN`` on each side; returned ordered by the fit's residual (best first)."""
    segments = [s for s in segments if (s.grid >= 0).any()]
    if not segments:
        return []
    out = []
    for rate in sorted({s.rate for s in segments}):
        group = [s for s in segments if s.rate == rate]
        grid = group[0].grid  # every segment of one rate group shares the grid; groups are verified apart
        present = grid >= 0
        rows = np.where(present, grid, 0)
        regions, libraries, starts = [], [], []
        need = -(-len(grid) // (MAX_HOLD + 1))  # the fewest library frames a path over the grid can use
        for s in group:
            margin = max(2, int(round(VERIFY_MARGIN * (s.last - s.first + 1))))
            margin = max(margin, -(-(need - (s.last - s.first + 1)) // 2))
            lo, hi = max(0, s.first - margin), min(layout.length(s.clip) - 1, s.last + margin)
            regions.append(lo)
            libraries.append(poses(layout.row(s.clip, np.arange(lo, hi + 1))))
            starts.append(np.clip(s.positions - lo, 0, hi - lo))
        weights = None if shape.weights is None else shape.weights[rows]
        scales = None if shape.scales is None else shape.scales[rows]
        fits = fit_sequences(shape.points[rows], weights, present, libraries, starts, scales)
        keep = np.flatnonzero(present)
        for s, lo, fit in zip(group, regions, fits):
            positions = np.where(present, lo + fit.path, s.positions)
            first, last = covered_span(lo + fit.timing[keep[[0, -1]]], layout.length(s.clip))
            out.append(Segment(s.clip, first, last, s.score, s.grid, positions, s.views, s.rate, fit.residual,
                               s.cost))
    out.sort(key=lambda s: s.residual)
    return out


def covered_span(ends: np.ndarray, length: int) -> tuple[int, int]:
    """The clip frames a verified segment spans: from the frame at or before where its first present query frame
    falls to the frame at or after where its last one falls. ends: (2,) those two places in clip frames (path
    frame plus sub-frame offset, ``SequenceFit.timing``); length: the clip's frames.

    Why not the path frames themselves: a query frame between two 10 fps library frames is matched to the nearer,
    so a segment of path frames can stop up to half a frame inside the motion the query shows.
    """
    first = int(np.clip(np.floor(ends[0] + 1e-9), 0, length - 1))
    last = int(np.clip(np.ceil(ends[1] - 1e-9), first, length - 1))
    return first, last


def search_motion(embeddings: np.ndarray, times: np.ndarray, present: np.ndarray, layout: ClipLayout, views: int,
                  search: SearchFn, vectors: VectorsFn, k: int, group_by_clip: bool = False,
                  stats: SearchStats | None = None, shape: QueryShape | None = None,
                  poses: PosesFn | None = None, lifted: LiftedQuery | None = None) -> list[Segment]:
    """The k best distinct segments for a query sequence.

    embeddings: (F, D) float32 L2-normalised, one row per query frame (rows of missing frames are ignored);
    times: (F,) seconds, increasing; present: (F,) bool. search(queries, kk): the index's top kk vectors (scores,
    ids; -1 for none) for each query, already restricted to the poses a filter keeps; vectors(ids): stored vectors.
    shape, poses: the query's 2D or 3D and the library's poses, for the geometric verification of the best
    ``max(k, VERIFY)`` segments (without them: no verification).
    returns: at most k segments, best first (by the verification's residual, else by the alignment's cost).
    """
    stats = stats if stats is not None else SearchStats()
    started = time.perf_counter()
    primary = layout.primary_rate
    grids: dict[float, np.ndarray] = {}

    def grid_at(rate: float) -> np.ndarray:
        if rate not in grids:
            grids[rate] = grid_frames(times, present, rate)
        return grids[rate]

    grid = grid_at(primary)
    anchor_rows = choose_anchors(grid)
    stats.grid_frames, stats.present_frames, stats.anchors = len(grid), int((grid >= 0).sum()), len(anchor_rows)
    if len(anchor_rows) == 0:
        return []
    scores, ids = search(np.ascontiguousarray(embeddings[grid[anchor_rows]], dtype=np.float32),
                         ANCHOR_POSES * views)
    hits = anchor_hits(scores, ids, views, ANCHOR_POSES)
    if lifted is not None and poses is not None:
        hits = lifted_anchor_hits(hits, grid[anchor_rows], embeddings, lifted, poses, vectors, LIFTED_ANCHOR_POSES)
    stats.hits = int(sum(len(h[0]) for h in hits))
    budget = max(MIN_COLUMNS, COLUMNS_PER_FRAME * len(grid))
    windows = candidate_windows(hits, anchor_rows, layout, lambda r: len(grid_at(r)), primary, budget)
    stats.windows, stats.columns = len(windows), int(sum(w.hi - w.lo + 1 for w in windows))
    aligned = time.perf_counter()
    stats.timings["candidates"] = (aligned - started) * 1e3
    verifying = shape is not None and poses is not None
    wanted = max(k, VERIFY) if verifying else k
    segments: list[Segment] = []
    for rate in sorted({float(layout.rate[w.clip]) for w in windows}):
        group = [w for w in windows if float(layout.rate[w.clip]) == rate]
        segments += align_windows(embeddings, grid_at(rate), group, layout, views, vectors, rate, wanted,
                                  group_by_clip, lifted)
    segments.sort(key=lambda s: s.cost)
    segments = segments[:wanted]
    stats.timings["alignment"] = (time.perf_counter() - aligned) * 1e3
    if verifying:
        verified = time.perf_counter()
        kept = DistinctSegments(group_by_clip)
        for segment in verify(segments, shape, layout, poses):  # re-aligned segments may now overlap
            kept.add(segment)
        segments = kept.kept
        stats.timings["verification"] = (time.perf_counter() - verified) * 1e3
    return segments[:k]
