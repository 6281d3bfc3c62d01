"""Retrieval, Pr-VIPE protocol (SPEC 6): 2D from one rig camera queries the pose2d embeddings of the same
held-out poses seen by the other cameras; Hit@k with a hit when NP-MPJPE <= the threshold, next to the
2D-keypoint nearest-neighbour baseline."""

from __future__ import annotations

import numpy as np

from index_builder.evaluation.held_out import HeldOut
from index_builder.progress import progress_bar
from index_builder.training.config import EvalSettings
from model.pose.metrics import np_mpjpe
from model.retrieval.exact_search import exact_search


def hit_rates(errors: np.ndarray, threshold: float) -> np.ndarray:
    """errors: (Q, K) NP-MPJPE of each query's top-K results in rank order -> (K,) Hit@1..K: the fraction of
    queries with at least one of their first k results within ``threshold``."""
    return np.logical_or.accumulate(errors <= threshold, axis=1).mean(0)


def retrieval_prvipe(emb2d: np.ndarray, held: HeldOut, query_rows: np.ndarray, settings: EvalSettings,
                     progress: bool = False) -> dict:
    """Each rig camera in turn gives the query 2D; the gallery is the pose2d embeddings of every held-out pose seen
    by the other cameras. Hit@k: a top-k result within NP-MPJPE ``hit_threshold`` of the query's 3D.

    emb2d: (C, N, D) pose2d embeddings of the rig views.
    """
    cams = len(held.rig)
    errors = {"unihpr": [], "nn_2d": []}
    for c in progress_bar(range(cams), desc="Pr-VIPE query cameras", enabled=progress):
        others = [o for o in range(cams) if o != c]
        g3d = np.concatenate([held.rig[o].pose3d for o in others])
        query3d = held.rig[c].pose3d[query_rows].astype(np.float64)
        _, i_emb = exact_search(emb2d[c, query_rows], np.concatenate(emb2d[others]), settings.hit_k,
                                chunk=settings.chunk)
        _, i_2d = exact_search(held.rig[c].clean2d[query_rows],
                               np.concatenate([held.rig[o].clean2d for o in others]), settings.hit_k, "l2",
                               chunk=settings.chunk)
        for method, index in (("unihpr", i_emb), ("nn_2d", i_2d)):
            q, k = index.shape
            found = g3d[index.reshape(-1)].astype(np.float64)
            errors[method].append(np_mpjpe(found, np.repeat(query3d, k, axis=0)).reshape(q, k))
    curves = {m: hit_rates(np.concatenate(e), settings.hit_threshold) for m, e in errors.items()}
    return {
        "query_cameras": cams,
        "queries_per_camera": int(len(query_rows)),
        "gallery": int((cams - 1) * len(held.clip)),
        "threshold": settings.hit_threshold,
        "hit_at_k": {m: {str(k): float(curve[k - 1]) for k in (1, 10, 20) if k <= len(curve)}
                     for m, curve in curves.items()},
        "curve": {m: [float(x) for x in curve] for m, curve in curves.items()},
    }
