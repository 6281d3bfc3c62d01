"""Per-pose 3D errors of what a protocol found (mm), their means for the report, and the oracle: the gallery pose
nearest in MPJPE, the floor any retrieval from that gallery stays above."""

from __future__ import annotations

import math

import numpy as np
import torch

from index_builder.progress import progress_bar
from model.pose.metrics import mpjpe, pa_mpjpe


def nearest_by_mpjpe(queries: np.ndarray, gallery: np.ndarray, query_groups: np.ndarray | None = None,
                     gallery_groups: np.ndarray | None = None, progress: bool = False,
                     budget_bytes: int = 64 << 20) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: for each query the gallery pose with the lowest MPJPE, optionally outside the query's group.

    queries: (Q, 17, 3) mm; gallery: (G, 17, 3) mm, same frame. groups as in ``exact_search``.
    returns: error (Q,) mm, recomputed exactly for the chosen pose; index (Q,) int64.
    The search sums per-joint ``torch.cdist`` in float64 (matrix-product form, about 1e-4 mm from the direct
    difference and 8x faster); the (c, G) distance blocks stay under ``budget_bytes``.
    """
    q = torch.from_numpy(np.asarray(queries, dtype=np.float64)).transpose(0, 1).contiguous()  # (17, Q, 3)
    g = torch.from_numpy(np.asarray(gallery, dtype=np.float64)).transpose(0, 1).contiguous()  # (17, G, 3)
    qg = None if query_groups is None else torch.from_numpy(np.asarray(query_groups, dtype=np.int64))
    gg = None if gallery_groups is None else torch.from_numpy(np.asarray(gallery_groups, dtype=np.int64))
    chunk = max(1, budget_bytes // (2 * g.shape[1] * 8))  # the running sum and one joint's distances
    best = []
    for start in progress_bar(range(0, q.shape[1], chunk), desc="oracle floor", enabled=progress, leave=False):
        qc = q[:, start : start + chunk]
        err = torch.zeros(qc.shape[1], g.shape[1], dtype=torch.float64)  # (c, G) sum over joints
        for j in range(len(q)):
            err += torch.cdist(qc[j], g[j], compute_mode="use_mm_for_euclid_dist")
        if qg is not None:
            err.masked_fill_(qg[start : start + chunk, None] == gg[None, :], math.inf)
        best.append(err.argmin(1))
    index = torch.cat(best).numpy()
    return mpjpe(gallery[index].astype(np.float64), queries.astype(np.float64)), index


def top1_errors(query3d: np.ndarray, gallery3d: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """MPJPE and PA-MPJPE (mm) of each query's top-1. query3d: (Q, 17, 3) mm; gallery3d: (G, 17, 3); index: (Q,)."""
    assert (index >= 0).all(), "a query has no result (its group is the whole gallery)"
    found = gallery3d[index].astype(np.float64)
    target = query3d.astype(np.float64)
    return {"mpjpe": mpjpe(found, target), "pa_mpjpe": pa_mpjpe(found, target)}


def summary(errors: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-pose error arrays -> their means, with ``_mm`` appended to the names."""
    return {f"{name}_mm": float(np.mean(values)) for name, values in errors.items()}
