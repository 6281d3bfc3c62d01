"""Joints as fixed affine combinations of other points, with missing points (numpy only).

The shared joint formulas (landmarks -> unihpr17, ``model.pose.joint_formulas``) and the convention conversions
(``model.pose.joint_conventions``) are both a weight matrix applied this way: a joint is missing where any point it uses
is missing, and its confidence is the smallest confidence among the points it uses.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def combine_points(weights: np.ndarray, points: np.ndarray, confidence: np.ndarray | None = None,
                   present: np.ndarray | None = None):
    """joints = weights @ points, per pose.

    weights: (J, K). points: (..., K, C), NaN where missing. confidence: optional (..., K) in [0, 1].
    present: optional (..., K) bool, the points to use; default: the finite ones.
    returns: (..., J, C) float64, NaN where a used point is missing, and, when ``confidence`` is given, (..., J)
        float64: the smallest confidence among the points each joint uses (0 where the joint is missing).
    """
    if present is None:
        present = finite_points(points)
    used = weights != 0  # (J, K)
    if present.all():  # every point given (nearly every request): nothing to mask
        joints = np.matmul(weights, points.astype(np.float64, copy=False))  # one BLAS call per pose, no einsum
        ok = None
    else:
        filled = np.where(present[..., None], points, 0.0)
        joints = np.matmul(weights, filled)
        ok = (~present).astype(np.float64) @ used.T.astype(np.float64) == 0  # (..., J): no used point is missing
        joints = np.where(ok[..., None], joints, np.nan)
    if confidence is None:
        return joints
    conf = smallest_used(used, confidence)
    return joints, conf if ok is None else np.where(ok, conf, 0.0)


def smallest_used(used: np.ndarray, values: np.ndarray) -> np.ndarray:
    """used: (J, K) bool, values: (..., K) -> (..., J) the smallest value among the points each row uses (inf for a
    row that uses none). Equal values (every confidence 1: keypoints sent as [x, y]) give that value; otherwise a
    row of one point takes its value as it is: conversions are mostly such rows, and the minimum over a
    (..., J, K) array costs several times more for a batch."""
    uses_any, single, source = _rows_of(used.tobytes(), used.shape)
    lowest = values.min(initial=np.inf)
    if lowest == values.max(initial=-np.inf):
        out = np.full((*values.shape[:-1], len(used)), lowest)
        out[..., ~uses_any] = np.inf
        return out
    out = values[..., source]
    if not single.all():
        out[..., ~single] = np.where(used[~single], values[..., None, :], np.inf).min(axis=-1)
    return out


@lru_cache(maxsize=64)
def _rows_of(used: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of a (J, K) bool matrix (as bytes): (J,) rows that use any point, (J,) rows that use exactly one, and (J,) the
    point each such row uses (0 for the others)."""
    matrix = np.frombuffer(used, bool).reshape(shape)
    counts = matrix.sum(axis=1)
    rows = counts > 0, counts == 1, np.where(counts == 1, matrix.argmax(axis=1), 0)
    for row in rows:
        row.setflags(write=False)  # shared by every call through the cache
    return rows


def finite_points(points: np.ndarray) -> np.ndarray:
    """points: (..., C) -> (...,) bool, True where every coordinate is finite. Coordinate by coordinate: numpy's
    reduction over a last axis of 2 or 3 costs several times the element-wise test."""
    finite = np.isfinite(points)
    out = finite[..., 0]
    for c in range(1, points.shape[-1]):
        out = out & finite[..., c]
    return out
