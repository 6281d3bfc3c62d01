"""The 3D alignment of motion search's evaluation (``index_builder.evaluation.motion.protocol``): a query's 3D
(world, root-relative) aligned to a sequence by subsequence DTW under one rotation about the vertical axis (a grid of
``YAW_GRID`` angles, then ``YAW_REFINEMENTS`` closed-form least-squares refinements on the path), and the
per-pair bound the oracle searches with."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.retrieval.sequence_alignment import MAX_HOLD, ColumnLayout, backtrack, subsequence_dtw

YAW_GRID = 12
YAW_REFINEMENTS = 2


def rotate_y(poses: np.ndarray, angle: float) -> np.ndarray:
    """(..., 3) rotated by ``angle`` (radians) about the vertical (Y) axis."""
    c, s = math.cos(angle), math.sin(angle)
    return poses @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]).T


def best_yaw(a: np.ndarray, b: np.ndarray) -> float:
    """The rotation about Y taking joints ``a`` (n, 17, 3) closest to ``b`` (n, 17, 3) in least squares."""
    c = float((a[..., 0] * b[..., 0] + a[..., 2] * b[..., 2]).sum())
    s = float((a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]).sum())
    return math.atan2(s, c)


def squared_costs(query: np.ndarray, library: np.ndarray, library_sq: np.ndarray | None = None) -> np.ndarray:
    """(M, n) mean squared joint distance (mm^2) of query (M, 17, 3) and library (n, 17, 3) poses."""
    q = query.reshape(len(query), -1)
    lib = library.reshape(len(library), -1)
    lib_sq = (lib * lib).sum(1) if library_sq is None else library_sq
    out = (q * q).sum(1)[:, None] + lib_sq[None, :] - 2.0 * (q @ lib.T)
    return np.maximum(out, 0.0) / query.shape[1]


def yaw_free_costs(query: np.ndarray, library: np.ndarray) -> np.ndarray:
    """(M, n) the same with the best rotation about Y per pair: a lower bound of ``squared_costs`` under any one
    rotation (closed form: |a|^2 + |b|^2 - 2 (a_y . b_y + |(C, S)|), C and S as in ``best_yaw``)."""
    q_xz = np.concatenate([query[..., 0], query[..., 2]], axis=1)  # (M, 34)
    q_zx = np.concatenate([query[..., 2], -query[..., 0]], axis=1)
    lib_xz = np.concatenate([library[..., 0], library[..., 2]], axis=1)  # (n, 34)
    c, s = q_xz @ lib_xz.T, q_zx @ lib_xz.T
    dot = query[..., 1] @ library[..., 1].T + np.sqrt(c * c + s * s)
    out = (query ** 2).sum((1, 2))[:, None] + (library ** 2).sum((1, 2))[None, :] - 2.0 * dot
    return np.maximum(out, 0.0) / query.shape[1]


@dataclass(frozen=True)
class Aligned3D:
    """The 3D alignment of a query to one sequence: cost (mean squared joint distance per frame, mm^2), MPJPE
    (mm) along the path, the rotation (radians), the path's first and last positions in the sequence."""

    cost: float
    mpjpe: float
    yaw: float
    first: int
    last: int


def _single_dtw(query: np.ndarray, sequence: np.ndarray, yaw: float) -> tuple[float, np.ndarray]:
    """(cost, path) of the query rotated by ``yaw`` on one sequence (n, 17, 3)."""
    columns = ColumnLayout.of([len(sequence)])
    alignment = subsequence_dtw(columns.place(squared_costs(rotate_y(query, yaw), sequence)))
    costs = alignment.mean_end_cost
    end = int(np.argmin(costs))
    return float(costs[end]), columns.offset[backtrack(alignment, end)]


def align_3d(query: np.ndarray, sequences: list[np.ndarray]) -> list[Aligned3D]:
    """``Aligned3D`` of the query (M, 17, 3) root-relative world on each sequence (n_i, 17, 3) (the module
    docstring: yaw grid, then closed-form refinements). A sequence too short for the step limits is lengthened
    by repeating its last frame."""
    need = math.ceil(len(query) / (MAX_HOLD + 1))
    sequences = [s if len(s) >= need else np.concatenate([s, np.repeat(s[-1:], need - len(s), 0)]) for s in sequences]
    columns = ColumnLayout.of([len(s) for s in sequences])
    library = np.concatenate(sequences).astype(np.float64)
    lib_sq = (library.reshape(len(library), -1) ** 2).sum(1)
    best = np.full(len(sequences), np.inf)
    best_yaw_of = np.zeros(len(sequences))
    starts = columns.starts
    for angle in np.arange(YAW_GRID) * 2 * math.pi / YAW_GRID:
        costs = subsequence_dtw(columns.place(squared_costs(rotate_y(query, angle), library, lib_sq))).mean_end_cost
        per_seq = np.minimum.reduceat(costs, starts)  # each sequence's columns start there; separators are inf
        better = per_seq < best
        best[better], best_yaw_of[better] = per_seq[better], angle
    out = []
    for i, sequence in enumerate(sequences):
        yaw = float(best_yaw_of[i])
        cost, path = _single_dtw(query, sequence, yaw)
        for _ in range(YAW_REFINEMENTS):
            refined = best_yaw(query, sequence[path])
            new_cost, new_path = _single_dtw(query, sequence, refined)
            if not new_cost < cost:
                break
            yaw, cost, path = refined, new_cost, new_path
        error = float(np.linalg.norm(rotate_y(query, yaw) - sequence[path], axis=-1).mean())
        out.append(Aligned3D(cost, error, yaw, int(path[0]), int(path[-1])))
    return out
