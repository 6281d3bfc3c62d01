"""Retrieval, paper protocol (SPEC 6): 2D or image features of a held-out view query the pose3d embeddings of all
rig views of the held-out poses; top-1 errors (mm) with and without the query's clip, the oracle floor of the
clip-excluded gallery, next to the 2D-keypoint nearest-neighbour baseline."""

from __future__ import annotations

import numpy as np

from index_builder.evaluation.held_out import HeldOut
from index_builder.evaluation.pose_errors import nearest_by_mpjpe, summary, top1_errors
from index_builder.progress import progress_bar
from index_builder.training.config import EvalSettings
from model.retrieval.exact_search import exact_search


def retrieval_paper(emb: dict[str, np.ndarray], held: HeldOut, query_rows: np.ndarray, query_cams: np.ndarray,
                    settings: EvalSettings, progress: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """Query 2D or image features of one rig view; gallery = the pose3d embeddings of all rig views of all held-out
    poses (the query's own pose in its own view included). Top-1 errors against the query's true 3D, with and
    without the query's clip, the oracle floor of the clip-excluded gallery and the 2D-keypoint NN baseline.

    emb: modality -> (C, N, D) (``rig_embeddings``). query_rows, query_cams: (Q,) held-out pose and rig camera.
    returns: the summary and per-query clip-excluded errors (mm), for plots and tests.
    """
    cams, n = len(held.rig), len(held.clip)
    gallery3d = np.concatenate([v.pose3d for v in held.rig])  # (C*N, 17, 3), row c*N + i
    gallery2d = np.concatenate([v.clean2d for v in held.rig])  # (C*N, 17, 2)
    groups = np.tile(held.clip, cams)
    truth = query_cams * n + query_rows
    query3d, query_groups = gallery3d[truth], held.clip[query_rows]
    g_emb = emb["pose3d"].reshape(cams * n, -1)
    _, nearest = nearest_by_mpjpe(query3d, gallery3d, query_groups, groups, progress=progress)
    floor = top1_errors(query3d, gallery3d, nearest)
    out = {"queries": int(len(query_rows)), "gallery": int(len(gallery3d)),
           "oracle_floor_clip_excluded": summary(floor)}
    per_query = {"oracle_floor_clip_excluded": floor["mpjpe"]}
    for modality in ("pose2d", "image"):
        q_emb = emb[modality][query_cams, query_rows]
        q_2d = np.stack([getattr(v, modality) for v in held.rig])[query_cams, query_rows, :, :2]  # (Q, 17, 2)
        searches = {
            "unihpr": lambda **kw: exact_search(q_emb, g_emb, 1, "ip", chunk=settings.chunk, **kw),
            "nn_2d": lambda **kw: exact_search(q_2d, gallery2d, 1, "l2", chunk=settings.chunk, **kw),
        }
        result = {}
        for method, search in progress_bar(searches.items(), desc=f"paper retrieval ({modality} queries)",
                                           enabled=progress):
            _, top = search()
            _, top_x = search(query_groups=query_groups, gallery_groups=groups)
            errs_x = top1_errors(query3d, gallery3d, top_x[:, 0])
            per_query[f"{modality}/{method}/clip_excluded"] = errs_x["mpjpe"]
            result[method] = {"top1": summary(top1_errors(query3d, gallery3d, top[:, 0])),
                              "top1_true_view_rate": float((top[:, 0] == truth).mean()),
                              "top1_clip_excluded": summary(errs_x)}
        out[modality] = result
    return out, per_query
