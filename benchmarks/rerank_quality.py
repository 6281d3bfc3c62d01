"""Geometric re-ranking: what the number of candidates and the kind of fit buy, on the whole library.

    .venv/bin/python benchmarks/rerank_quality.py [--weights weights/unihpr_default.pt] [--sample]
                                                  [--queries 300] [--candidates 100 200 400 800]

The setting of ``unihpr-build evaluate``'s retrieval over the library
(``index_builder.evaluation.retrieval.real_cameras``): the whole database at 10 fps under the 8 virtual views, embedded
by the model and searched exactly; queries = clean 2D of test poses through the fixed real rig and through random
cameras, the query's clip excluded from the gallery and included; the weight chosen on validation queries (random
cameras) with 100 candidates. For each candidate count: the mean re-ranked top-1 PA-MPJPE, its ratio to the oracle floor
(clip excluded), the share within 10 mm, the best of the candidates (what a perfect re-ranker would return), and the
time of the fit of one query's candidates (``model.retrieval.rerank.fit_residuals``, median of 200 calls, this process,
one thread). Then, at 100 candidates, the pinhole fit (``pose2d``: the crop's rays) against the weak-perspective fit of
the same normalised 2D (``pose2d_on_axis``), each at its own weight chosen on the validation queries.

``--elevated-views DEG`` adds a second ring of 8 virtual views seen from DEG degrees above the pelvis to the
gallery (16 views: issue 16's "view-tolerant database", measured only: bundles index the 8 of the ring).
``--lifted`` adds the lifted candidates to every count, as bundles do (``model.retrieval.lifted_candidates``: the
``LIFTED_CANDIDATES`` poses nearest the decoder's lift of the query by joint distances); without it the counts are
cosine candidates alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np

from index_builder.bundle.reranking import Gallery, LiftedPath, choose_weight, exact_search_of, score_queries
from index_builder.bundle.writer import DEFAULT_VIEWS, frames_at_rate
from index_builder.config import get_paths
from index_builder.datasets.sample import load_poses
from index_builder.evaluation.retrieval.oracle_floor import oracle_floor
from index_builder.evaluation.retrieval.real_cameras import (
    GALLERY_FPS,
    embed_gallery,
    random_camera_set,
    real_rig_set,
    split_rows,
)
from index_builder.training.checkpoint import load_unihpr
from model.pose.camera_rigs import NOMINAL_PELVIS_HEIGHT_MM, VIRTUAL_VIEW_DISTANCE_MM, virtual_view_rotations
from model.pose.cameras import look_at
from model.pose.skeleton import root_centred
from model.retrieval.lifted_candidates import LIFTED_CANDIDATES, DescriptorIndex
from model.retrieval.rerank import fit_residuals


def fit_ms(queries, gallery: Gallery, count: int, repeats: int = 200) -> float:
    """Median ms of fitting one query's ``count`` candidates (the first query's, gathered by cosine)."""
    scored = score_queries(gallery, replace(queries, features=queries.features[:1], embeddings=queries.embeddings[:1],
                                            truth=queries.truth[:1], clip=queries.clip[:1],
                                            frames=None if queries.frames is None else queries.frames[:1],
                                            lifted=None if queries.lifted is None else queries.lifted[:1]),
                           False, count)
    found = scored.pose[0] >= 0
    pose, view = scored.pose[0][found], scored.view[0][found]
    seen = gallery.poses[pose] @ np.swapaxes(gallery.rotations[view], -1, -2)
    frame = None if queries.frames is None else queries.frames[0]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit_residuals(queries.method, queries.features[0], seen, frame)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def elevated_ring(elevation_deg: float, count: int = DEFAULT_VIEWS) -> np.ndarray:
    """(count, 3, 3) world -> camera rotations of views at the ring's azimuths, ``elevation_deg`` above the pelvis
    at the ring's distance."""
    az = np.deg2rad(np.arange(count) * 360.0 / count)
    height = NOMINAL_PELVIS_HEIGHT_MM + VIRTUAL_VIEW_DISTANCE_MM * np.tan(np.deg2rad(elevation_deg))
    position = np.stack([np.sin(az) * VIRTUAL_VIEW_DISTANCE_MM, np.full(count, height),
                         np.cos(az) * VIRTUAL_VIEW_DISTANCE_MM], -1)
    return look_at(position, np.broadcast_to([0.0, NOMINAL_PELVIS_HEIGHT_MM, 0.0], (count, 3)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights/unihpr_default.pt")
    parser.add_argument("--sample", action="store_true", help="the shipped sample instead of the full cache")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--elevated-views", type=float, default=None, metavar="DEG",
                        help="add 8 virtual views DEG degrees above the pelvis to the gallery")
    parser.add_argument("--lifted", action="store_true",
                        help="add the lifted candidates to every count, as bundles do")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # shared cores: torch's second thread only waits (see retrieval_real's oracle)
    model, _, _ = load_unihpr(args.weights)
    model.eval()
    db, path = load_poses(get_paths(), prefer_cache=not args.sample)
    gallery_db = frames_at_rate(db, GALLERY_FPS)
    poses = root_centred(gallery_db.poses.astype(np.float64))
    rotations = virtual_view_rotations(DEFAULT_VIEWS)
    if args.elevated_views is not None:
        rotations = np.concatenate([rotations, elevated_ring(args.elevated_views)])
    clip = gallery_db.clip.astype(np.int64)
    start = time.perf_counter()
    vectors = embed_gallery(model, poses, rotations)
    lifted = LiftedPath(DescriptorIndex(poses), lambda ids: vectors[ids]) if args.lifted else None
    gallery = Gallery(poses, clip, rotations, exact_search_of(vectors, len(rotations), clip), lifted)
    seconds = time.perf_counter() - start
    print(f"{path}: gallery {len(poses)} poses x {len(rotations)} views ({vectors.nbytes / 2**20:.0f} MiB of float32 "
          f"vectors) embedded in {seconds:.0f} s; {args.queries} queries per set")

    rng = np.random.default_rng([args.seed, 16])
    val = random_camera_set(model, gallery_db, poses, split_rows(gallery_db, "val", args.queries, rng), rng)
    weights = {}
    for method in ("pose2d", "pose2d_on_axis"):
        q = val if method == "pose2d" else replace(val, method=method, frames=None)
        weights[method], _ = choose_weight(method, [score_queries(gallery, q, e) for e in (True, False)])
    print(f"weights chosen on {len(val)} validation queries (100 candidates): {weights}")
    sets = {"random": random_camera_set(model, gallery_db, poses, split_rows(gallery_db, "test", args.queries, rng),
                                        rng)}
    sets["real_rig"], _ = real_rig_set(model, gallery_db, poses, "test", args.queries, rng, "S9", args.seed)

    plus = f" (+ {LIFTED_CANDIDATES} lifted)" if args.lifted else ""
    print(f"\ncandidates{plus} | cameras | clip | top-1 re-ranked mm | / floor | within 10 mm | best of candidates "
          "mm | fit ms a query")
    for name, q in sets.items():
        floors = {e: oracle_floor(q.truth, poses, q.clip, clip, e) for e in (True, False)}
        for count in args.candidates:
            ms = fit_ms(q, gallery, count)
            for exclude in (True, False):
                s = score_queries(gallery, q, exclude, count)
                top1 = s.take("error", weights["pose2d"])[:, 0]
                floor = floors[exclude].mean()
                ratio = f"{np.nanmean(top1) / floor:.2f}" if floor > 1 else "-"
                best = np.nanmean(np.nanmin(s.error, axis=1))
                print(f"{count} | {name} | {'excluded' if exclude else 'included'} | {np.nanmean(top1):.2f} | "
                      f"{ratio} | {np.mean(top1 <= 10):.3f} | {best:.2f} | {ms:.3f}", flush=True)

    print("\nfit (100 candidates) | cameras | clip | top-1 re-ranked mm | within 10 mm | fit ms a query")
    for method in ("pose2d", "pose2d_on_axis"):
        for name, q in sets.items():
            q = q if method == "pose2d" else replace(q, method=method, frames=None)
            ms = fit_ms(q, gallery, 100)
            for exclude in (True, False):
                top1 = score_queries(gallery, q, exclude).take("error", weights[method])[:, 0]
                print(f"{method} | {name} | {'excluded' if exclude else 'included'} | {np.nanmean(top1):.2f} | "
                      f"{np.mean(top1 <= 10):.3f} | {ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
