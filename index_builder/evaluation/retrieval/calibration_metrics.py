"""How well a predicted error matches the true one (the confidence of retrieval over the library,
``index_builder.evaluation.retrieval.real_cameras``): Spearman's rank correlation and equal-count reliability bins."""

from __future__ import annotations

import numpy as np

RELIABILITY_BINS = 5
TARGET_BIN_TOLERANCE = 0.25  # each reliability bin's mean true error within this of its mean prediction


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..N, ties sharing their mean rank (as scipy.stats.rankdata)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (None with fewer than 3 pairs or a constant side)."""
    if len(a) < 3:
        return None
    ra, rb = rankdata(np.asarray(a, np.float64)), rankdata(np.asarray(b, np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def reliability(predicted: np.ndarray, actual: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Equal-count bins of the prediction: mean predicted and mean true error (mm), and whether the true mean lies
    within ``TARGET_BIN_TOLERANCE`` of the predicted one."""
    out = []
    for part in np.array_split(np.argsort(predicted, kind="stable"), min(bins, len(predicted))):
        pred, true = float(predicted[part].mean()), float(actual[part].mean())
        out.append({"queries": int(len(part)), "predicted_mm": round(pred, 3), "actual_mm": round(true, 3),
                    "within_tolerance": bool(abs(true - pred) <= TARGET_BIN_TOLERANCE * pred)})
    return out
