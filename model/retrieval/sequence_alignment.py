"""Subsequence dynamic time warping (numpy only): align a query sequence to the best-matching stretch of any of
many library sequences at once.

Why this form. Motion search must find a query anywhere inside long clips (free start and end), at another speed,
and must stay cheap enough to run over thousands of candidate frames per request in numpy. So:

- **Query-driven steps.** Every query frame is matched to exactly one library frame; between two consecutive query
  frames the library frame advances by 1..``max_step`` frames, or stays (a *hold*) at most ``max_hold`` times in a
  row. Every path therefore sums exactly one cost per query frame, so path costs are comparable without length
  normalisation (the classic symmetric step pattern favours short paths), and the slope is bounded: with the
  query on the library's frame grid, library speed / query speed lies in [1 / (max_hold + 1), max_step]
  (defaults: 1/3x to 3x, a margin around the 0.5x-2x the service promises).
- **Free start and end** (subsequence DTW, as in Mueller, "Fundamentals of Music Processing", 7.2): the first
  query frame may sit on any library frame, the answer is read at every library frame the last query frame may
  end on.
- **Missing query frames** (a dropped or undetected frame) cost 0 at every library frame: the path still advances
  through them with the same slope limits, and the total is divided by the frames that are present.
- **Many sequences in one pass.** Library sequences (clips or candidate windows of clips) sit side by side in one
  array of columns, separated by ``max_step`` columns of infinite cost (``ColumnLayout``), so no step can cross
  from one sequence into the next and one vectorised recursion aligns against all of them: about ten numpy
  operations over the columns per query frame, so the cost is (query frames) x (columns).
- **No back-pointer arrays.** The forward pass keeps the accumulated cost of every (query frame, state, column);
  ``backtrack`` re-derives each step from those (the same minimum the forward pass took), so paths are only
  traced for the few ends that are reported.

States: a cell's state h in 0..max_hold is the number of holds that ended at it (h = 0: the library advanced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_STEP = 3  # library frames the path may advance per query frame (query up to 3x faster than the library)
MAX_HOLD = 2  # consecutive query frames that may stay on one library frame (query down to 1/3x)


@dataclass(frozen=True)
class ColumnLayout:
    """Library sequences side by side, separated by ``gap`` columns of infinite cost.

    lengths: (S,) frames of each sequence. starts: (S,) the column of each sequence's first frame.
    width: all columns, separators included. sequence: (width,) the sequence of each column (-1 for separators).
    offset: (width,) a column's frame within its sequence (-1 for separators).
    """

    lengths: np.ndarray
    starts: np.ndarray
    width: int
    sequence: np.ndarray
    offset: np.ndarray

    @classmethod
    def of(cls, lengths, gap: int = MAX_STEP) -> ColumnLayout:
        lengths = np.asarray(lengths, dtype=np.int64)
        starts = gap + np.concatenate([[0], np.cumsum(lengths + gap)[:-1]]) if len(lengths) else np.zeros(0, np.int64)
        width = int(gap + (lengths + gap).sum())
        sequence = np.full(width, -1, np.int64)
        offset = np.full(width, -1, np.int64)
        for s, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist())):
            sequence[start : start + length] = s
            offset[start : start + length] = np.arange(length)
        return cls(lengths, starts.astype(np.int64), width, sequence, offset)

    @property
    def columns(self) -> np.ndarray:
        """(sum of lengths,) the columns of every frame, sequence by sequence."""
        return np.flatnonzero(self.sequence >= 0)

    def place(self, cost: np.ndarray, fill: float = np.inf) -> np.ndarray:
        """cost: (M, sum of lengths) per query frame, the frames of every sequence in order -> (M, width) float32
        with ``fill`` in the separators."""
        out = np.full((cost.shape[0], self.width), fill, np.float32)
        out[:, self.columns] = cost
        return out


@dataclass(frozen=True)
class Alignment:
    """The forward pass of ``subsequence_dtw``.

    acc: (M, max_hold + 1, W) float32 accumulated cost of the best path ending at (query frame, state, column).
    present: (M,) bool, the query frames that count. max_step: as aligned.
    """

    acc: np.ndarray
    present: np.ndarray
    max_step: int

    @property
    def end_cost(self) -> np.ndarray:
        """(W,) the lowest total cost of a path whose last query frame sits on each column (inf: none)."""
        return self.acc[-1].min(axis=0)

    @property
    def mean_end_cost(self) -> np.ndarray:
        """(W,) ``end_cost`` per present query frame."""
        return self.end_cost / max(1, int(self.present.sum()))


def subsequence_dtw(cost: np.ndarray, present: np.ndarray | None = None, max_step: int = MAX_STEP,
                    max_hold: int = MAX_HOLD) -> Alignment:
    """The forward pass over every column at once.

    cost: (M, W) per (query frame, column) cost >= 0, +inf in separator columns (``ColumnLayout.place``), at least
        ``max_step`` of them before the first sequence and between sequences. Rows of missing query frames may hold
        anything: they are taken as 0 (separators stay inf).
    present: (M,) bool, the query frames present (default: all).
    """
    cost = np.asarray(cost, dtype=np.float32)
    m, w = cost.shape
    if m < 1:
        raise ValueError("the query has no frames")
    if max_step < 1 or max_hold < 0:
        raise ValueError(f"max_step >= 1 and max_hold >= 0, got {max_step}, {max_hold}")
    present = np.ones(m, bool) if present is None else np.asarray(present, bool)
    separator = ~np.isfinite(cost).all(axis=0)  # a column that is infinite for some frame is a separator
    blank = np.where(separator, np.inf, 0.0).astype(np.float32)
    acc = np.empty((m, max_hold + 1, w), np.float32)
    best = np.empty(w, np.float32)
    acc[0, 0] = cost[0] if present[0] else blank
    acc[0, 1:] = np.inf
    for i in range(1, m):
        row = cost[i] if present[i] else blank
        prev = acc[i - 1]
        reach = prev.min(axis=0)  # (W,) best over states at i - 1
        best[:] = np.inf
        for d in range(1, max_step + 1):  # arrive at column j from j - d
            np.minimum(best[d:], reach[:-d], out=best[d:])
        np.add(row, best, out=acc[i, 0])
        for h in range(1, max_hold + 1):  # hold: same column, one more hold than before
            np.add(row, prev[h - 1], out=acc[i, h])
    return Alignment(acc, present, max_step)


def backtrack(alignment: Alignment, end: int) -> np.ndarray:
    """(M,) int: the column of every query frame on the best path ending at column ``end`` (on the last frame)."""
    acc, max_step = alignment.acc, alignment.max_step
    m = acc.shape[0]
    path = np.empty(m, np.int64)
    j = int(end)
    state = int(np.argmin(acc[m - 1, :, j]))
    for i in range(m - 1, 0, -1):
        path[i] = j
        if state > 0:  # a hold: the previous frame sat on the same column, one hold fewer
            state -= 1
            continue
        lo = max(0, j - max_step)
        block = acc[i - 1, :, lo:j][:, ::-1]  # (states, d) for d = 1..max_step, nearest first
        flat = int(np.argmin(block.T.ravel()))  # ties: the smallest step, then the fewest holds
        d, state = divmod(flat, block.shape[0])
        j -= d + 1
    path[0] = j
    return path


def backtrack_many(alignment: Alignment, ends: np.ndarray) -> np.ndarray:
    """``backtrack`` of many ends at once: ends (E,) columns -> (E, M) paths (the same steps, ties alike)."""
    acc, max_step = alignment.acc, alignment.max_step
    m, states = acc.shape[0], acc.shape[1]
    j = np.asarray(ends, dtype=np.int64).copy()
    paths = np.empty((len(j), m), np.int64)
    if len(j) == 0:
        return paths
    state = acc[m - 1][:, j].argmin(axis=0)
    for i in range(m - 1, 0, -1):
        paths[:, i] = j
        prev = acc[i - 1]
        block = np.stack([prev[:, np.maximum(j - d, 0)] for d in range(1, max_step + 1)])  # (d, states, E)
        flat = block.reshape(max_step * states, len(j)).argmin(axis=0)  # d-major: smallest step, then state
        hold = state > 0
        j = np.where(hold, j, j - (flat // states + 1))
        state = np.where(hold, state - 1, flat % states)
    paths[:, 0] = j
    return paths


def local_minima(values: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Columns where finite ``values`` (W,) are no larger than both neighbours in the same sequence (a plateau
    keeps its first column), sorted by value: the candidate ends of distinct paths."""
    finite = np.isfinite(values)
    left = np.r_[np.inf, values[:-1]]
    right = np.r_[values[1:], np.inf]
    same_left = np.r_[False, sequence[1:] == sequence[:-1]]
    same_right = np.r_[sequence[:-1] == sequence[1:], False]
    keep = finite & (~same_left | (values < left)) & (~same_right | (values <= right))
    cols = np.flatnonzero(keep)
    return cols[np.argsort(values[cols], kind="stable")]


def grid_frames(times: np.ndarray, present: np.ndarray, rate: float, tolerance: float | None = None) -> np.ndarray:
    """The query resampled to the library's frame grid by nearest frame.

    times: (F,) seconds of the query's frames, increasing; present: (F,) bool; rate: the library's frames per second.
    tolerance: a grid point takes the nearest present frame within this many seconds (default: half a grid step, or
        half the query's median frame interval when that is larger, so a sparser query fills the grid).
    returns: (M,) int, per grid point t0 + m / rate the query frame it takes, or -1 (missing).
    """
    times = np.asarray(times, dtype=np.float64)
    present = np.asarray(present, bool)
    if len(times) == 0:
        return np.zeros(0, np.int64)
    if tolerance is None:
        spacing = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        tolerance = 0.5 * max(1.0 / rate, spacing) + 1e-9
    t0, t1 = times[0], times[-1]
    grid = t0 + np.arange(int(np.floor((t1 - t0) * rate + 1e-6)) + 1) / rate
    frames = np.flatnonzero(present)
    out = np.full(len(grid), -1, np.int64)
    if len(frames) == 0:
        return out
    ft = times[frames]
    right = np.clip(np.searchsorted(ft, grid), 0, len(ft) - 1)
    left = np.clip(right - 1, 0, len(ft) - 1)
    nearest = np.where(np.abs(ft[left] - grid) <= np.abs(ft[right] - grid), left, right)
    close = np.abs(ft[nearest] - grid) <= tolerance
    out[close] = frames[nearest[close]]
    return out
