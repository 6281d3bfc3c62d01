"""Joints as fixed affine combinations of other points, with missing points (numpy only).

The shared joint formulas (landmarks -> unihpr17, ``model.pose.joint_formulas``) and the convention conversions
(``model.pose.joint_conventions``) are both a weight matrix applied this way: a joint is missing where any point it uses
is missing, and its confidence is the smallest confidence among the points it uses.
"""

from __future__ import annotations

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
        present = np.isfinite(points).all(axis=-1)
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
    conf = np.where(used, confidence[..., None, :], np.inf).min(axis=-1)
    return joints, conf if ok is None else np.where(ok, conf, 0.0)
