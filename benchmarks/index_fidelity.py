"""Index fidelity and speed on the full Bandai database with its virtual views (SPEC section 6, last item).

Builds a bundle of the whole pose cache at 10 fps x 8 views (about 1.1M vectors, so IVF is in use) with the given
weights, then measures on real query embeddings (pose2d of held-out poses through random cameras):
- recall@10 = |ANN top-10 and exact top-10| / 10 at the stored operating point, through raw FAISS;
- filtered queries at 0.1% and 10% selectivity through the service's PoseIndex: results per query, -1
  placeholders (must be none), recall against exact search over the same subset;
- build time, index size, search latency (p50 / p99, one query at a time) of raw FAISS vs PoseIndex.

    .venv/bin/python benchmarks/index_fidelity.py [--weights weights/unihpr_default.pt] [--out /tmp/full-bundle]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from index_builder.blazepose_assets import fetch_blazepose_models
from index_builder.bundle import build_bundle, held_out_views
from index_builder.checkpoint import load_unihpr
from index_builder.config import DEFAULT_WEIGHTS, get_paths
from index_builder.indexing import exact_top_k, recall_at_k
from index_builder.motion_database import MotionDatabase
from index_builder.onnx_export import cpu_session
from index_builder.progress import stage_lines
from model.bundle_format import ENCODERS, INDEX, METADATA, read_manifest
from service.index import PoseIndex
from service.pose_search import search_poses

K = 10


def percentiles(samples_ms: list[float]) -> str:
    p50, p99 = np.percentile(samples_ms, [50, 99])
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=Path("/tmp/unihpr-full-bundle"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="measure an existing bundle at --out")
    args = parser.parse_args()
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)

    cache = MotionDatabase.load(get_paths().bandai_cache)
    db = cache.every_nth_frame(3)
    if not args.reuse:
        model, config, _ = load_unihpr(args.weights)
        start = time.perf_counter()
        with stage_lines():  # the index build's k-means and operating-point lines
            manifest = build_bundle(model, config, db, args.out, fetch_blazepose_models())
        build_s = time.perf_counter() - start
    else:
        manifest = read_manifest(args.out)
        build_s = manifest.builder.build_seconds
    index = faiss.read_index(str(args.out / INDEX))
    views = manifest.database.views
    point = manifest.index.operating_point
    print(f"database: {len(db)} poses x {views} views = {index.ntotal} vectors, {manifest.index.factory}")
    print(f"bundle build: {build_s:.0f} s; index.faiss {(args.out / INDEX).stat().st_size / 2**20:.0f} MiB; "
          f"stored operating point nprobe {point.nprobe} (recall@10 {point.recall_at_10:.3f} when chosen)")

    probe = held_out_views(cache, args.queries, seed=2024)  # other poses and cameras than the builder's choice
    queries = cpu_session(args.out / ENCODERS["pose2d"], threads=2).run(None, {"features": probe.pose2d})[0]
    vectors = index.reconstruct_n(0, index.ntotal) if faiss.try_extract_index_ivf(index) is None else \
        faiss.extract_index_ivf(index).reconstruct_batch(np.arange(index.ntotal, dtype=np.int64))
    truth = exact_top_k(vectors, queries, K)
    faiss.extract_index_ivf(index).nprobe = point.nprobe
    _, found = index.search(queries, K)
    print(f"unfiltered recall@10 (raw FAISS, nprobe {point.nprobe}, {len(queries)} queries): "
          f"{recall_at_k(found, truth):.4f}")

    raw_ms, wrapped_ms = [], []
    pose_index = PoseIndex(index, views, nprobe=point.nprobe)
    for q in queries[:300]:
        t = time.perf_counter()
        index.search(q[None], K)
        raw_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        search_poses(pose_index, q[None], K)
        wrapped_ms.append(1000 * (time.perf_counter() - t))
    print(f"latency, one query, k={K}: raw FAISS {percentiles(raw_ms)}; search_poses (de-dup by pose) "
          f"{percentiles(wrapped_ms)}")

    with np.load(args.out / METADATA, allow_pickle=False) as meta:
        clip_of_pose = meta["clip"]
    rng = np.random.default_rng(0)
    for target in (0.001, 0.10):
        order = rng.permutation(clip_of_pose.max() + 1)
        counts = np.bincount(clip_of_pose)
        chosen = order[: np.searchsorted(np.cumsum(counts[order]), target * len(clip_of_pose)) + 1]
        mask = np.isin(clip_of_pose, chosen)
        subset = np.flatnonzero(np.repeat(mask, views))
        sub_truth = subset[exact_top_k(vectors[subset], queries, K, progress=False)]
        times, recalls, placeholders, short = [], [], 0, 0
        for q, t_ids in zip(queries[:300], sub_truth):
            t = time.perf_counter()
            hits = search_poses(pose_index, q[None], K, pose_mask=mask)[0]
            times.append(1000 * (time.perf_counter() - t))
            poses = {h.pose for h in hits}
            placeholders += sum(h.pose < 0 for h in hits)
            short += len(hits) < min(K, int(mask.sum()))
            assert all(mask[p] for p in poses), "a filtered search returned a pose outside the filter"
            true_poses = []
            for vid in t_ids:  # the exact top poses, de-duplicated like search_poses
                if vid // views not in true_poses:
                    true_poses.append(vid // views)
            recalls.append(len(poses & set(true_poses[:K])) / min(K, len(true_poses)))
        path = "exact subset" if mask.sum() * views < pose_index.exact_fraction * index.ntotal else "IDSelector"
        print(f"filtered {mask.mean():.2%} of poses ({len(chosen)} clips, {path}): pose recall@10 vs exact "
              f"{np.mean(recalls):.4f}, -1 placeholders {placeholders}, short result lists {short}, "
              f"{percentiles(times)}")


if __name__ == "__main__":
    main()
