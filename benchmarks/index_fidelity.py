"""Index fidelity, build time and memory on the full Bandai database with its virtual views (SPEC sections 6-7).

For each ``--fps`` builds a bundle of the whole pose cache at that rate x 8 views with the default index plan
(``unihpr-build index --fps F``) and reports the build split (export, embedding, everything after embedding),
then measures on independent query embeddings (pose2d of held-out poses through random cameras, other poses and
cameras than the builder's operating-point queries):
- recall@10 = |ANN top-10 and exact top-10| / 10 at the stored operating point, through raw FAISS;
- index.faiss size, one-query latency (p50 / p99) of raw FAISS and of the service's PoseIndex;
- filtered queries at 0.1% and 10% selectivity through PoseIndex: pose recall against exact search over the
  same subset, -1 placeholders (must be none), short result lists.
Then, on the first bundle's vectors, the other index kinds (``--kinds``) and HNSW against IVF on subsets
(``--hnsw-sizes``), each with its operating point chosen on the builder's queries and recall measured on the
independent ones; a table of all rows at the end.

    .venv/bin/python benchmarks/index_fidelity.py [--fps 30 10] [--kinds ivf]
        [--hnsw-sizes 250000 500000 1000000] [--weights weights/unihpr_default.pt] [--out /tmp/unihpr-index-bench]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch

from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.bundle.indexing import exact_top_k, recall_at_effort
from index_builder.bundle.writer import (
    PARITY_SAMPLES,
    build_bundle,
    held_out_views,
    index_vectors,
    run_encoder,
)
from index_builder.config import get_paths
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.progress import stage_lines
from index_builder.training.checkpoint import load_unihpr
from model.runtime.bundle_format import ENCODERS, INDEX, METADATA, read_manifest
from model.runtime.onnx_sessions import cpu_session
from service.index import PoseIndex
from service.pose_search import search_poses

K = 10
BUILDER_SEED = 7  # the builder's operating-point queries (bundle.build_bundle)
INDEPENDENT_SEED = 2024
LATENCY_QUERIES = 300


@dataclass
class Row:
    label: str
    vectors: int
    factory: str
    after_embedding_s: float
    effort: str
    chosen_recall: float
    independent_recall: float
    size_mib: float
    p50_ms: float

    def markdown(self) -> str:
        return (f"| {self.label} | {self.vectors:,} | `{self.factory}` | {self.after_embedding_s:.0f} | "
                f"{self.effort} | {self.chosen_recall:.3f} | {self.independent_recall:.4f} | {self.size_mib:.0f} | "
                f"{self.p50_ms:.2f} |")


def percentiles(samples_ms: list[float]) -> str:
    p50, p99 = np.percentile(samples_ms, [50, 99])
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"


def one_query_ms(index: faiss.Index, queries: np.ndarray) -> list[float]:
    times = []
    for q in queries[:LATENCY_QUERIES]:
        start = time.perf_counter()
        index.search(q[None], K)
        times.append(1000 * (time.perf_counter() - start))
    return times


def effort_text(nprobe: int, ef_search: int) -> str:
    return f"efSearch {ef_search}" if ef_search else f"nprobe {nprobe}" if nprobe else "exact"


def all_vectors(index: faiss.Index) -> np.ndarray:
    """(N, D) float32 stored vectors (IVF bundles keep a direct map)."""
    return index.reconstruct_batch(np.arange(index.ntotal, dtype=np.int64))


def filtered_checks(out: Path, index: faiss.Index, views: int, nprobe: int, ef_search: int, vectors: np.ndarray,
                    queries: np.ndarray) -> None:
    """Filters of 0.1% and 10% of the poses (whole clips) through the service's PoseIndex."""
    pose_index = PoseIndex(index, views, nprobe=nprobe, ef_search=ef_search)
    with np.load(out / METADATA, allow_pickle=False) as meta:
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
        for q, t_ids in zip(queries[:LATENCY_QUERIES], sub_truth):
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
        print(f"  filtered {mask.mean():.2%} of poses ({len(chosen)} clips, {path}): pose recall@10 vs exact "
              f"{np.mean(recalls):.4f}, -1 placeholders {placeholders}, short result lists {short}, "
              f"{percentiles(times)}")


def measure_bundle(out: Path, fps: float, after_embedding_s: float, independent: np.ndarray) -> tuple[Row, dict]:
    """Recall on independent queries, size and latency of the bundle at ``out``; its vectors for the
    comparisons."""
    manifest = read_manifest(out)
    index = faiss.read_index(str(out / INDEX))
    info, point = manifest.index, manifest.index.operating_point
    queries = run_encoder(cpu_session(out / ENCODERS["pose2d"], threads=2), independent)
    vectors = all_vectors(index)
    truth = exact_top_k(vectors, queries, K)
    recall = recall_at_effort(index, queries, truth, point.nprobe, point.ef_search)
    raw_ms = one_query_ms(index, queries)
    pose_index = PoseIndex(index, manifest.database.views, nprobe=point.nprobe, ef_search=point.ef_search)
    wrapped_ms = []
    for q in queries[:LATENCY_QUERIES]:
        t = time.perf_counter()
        search_poses(pose_index, q[None], K)
        wrapped_ms.append(1000 * (time.perf_counter() - t))
    size = (out / INDEX).stat().st_size / 2**20
    print(f"{fps:g} fps: {manifest.database.poses} poses x {manifest.database.views} views = {info.ntotal} vectors, "
          f"{info.factory}, params {info.params}")
    print(f"  recall@10 on {len(queries)} independent queries at {effort_text(point.nprobe, point.ef_search)}: "
          f"{recall:.4f} (builder's queries: {point.recall_at_10:.4f}); index.faiss {size:.0f} MiB")
    print(f"  one query, k={K}: raw FAISS {percentiles(raw_ms)}; PoseIndex + de-dup {percentiles(wrapped_ms)}")
    filtered_checks(out, index, manifest.database.views, point.nprobe, point.ef_search, vectors, queries)
    row = Row(f"{fps:g} fps, auto", info.ntotal, info.factory, after_embedding_s,
              effort_text(point.nprobe, point.ef_search), point.recall_at_10, recall, size,
              float(np.median(raw_ms)))
    return row, {"vectors": vectors, "queries": queries, "truth": truth}


def compare(label: str, kind: str, vectors: np.ndarray, builder_queries: np.ndarray, queries: np.ndarray,
            truth: np.ndarray) -> Row:
    """Build ``kind`` on ``vectors``, choose its operating point on ``builder_queries``, measure on ``queries``."""
    start = time.perf_counter()
    plan, index, point = index_vectors(vectors, builder_queries, kind)
    size = len(faiss.serialize_index(index)) / 2**20
    seconds = time.perf_counter() - start + size / 1024  # + about a second per GiB to write it
    recall = recall_at_effort(index, queries, truth, point.nprobe, point.ef_search)
    ms = one_query_ms(index, queries)
    row = Row(label, len(vectors), plan.factory, seconds, effort_text(point.nprobe, point.ef_search),
              point.recall_at_10, recall, size, float(np.median(ms)))
    print(f"  {row.markdown()}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=get_paths().default_weights)
    parser.add_argument("--out", type=Path, default=Path("/tmp/unihpr-index-bench"))
    parser.add_argument("--fps", type=float, nargs="*", default=[30.0, 10.0])
    parser.add_argument("--kinds", nargs="*", default=["ivf"],
                        help="other index kinds built on the first bundle's vectors")
    parser.add_argument("--hnsw-sizes", type=int, nargs="*", default=[250_000, 500_000, 1_000_000],
                        help="subset sizes at which HNSW and IVF are compared")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="measure existing bundles under --out")
    args = parser.parse_args()
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)

    cache = MotionDatabase.load(get_paths().bandai_cache)
    independent = held_out_views(cache, args.queries, seed=INDEPENDENT_SEED).pose2d
    builder_views = held_out_views(cache, PARITY_SAMPLES, seed=BUILDER_SEED).pose2d
    model, config, _ = load_unihpr(args.weights)
    rows, first = [], None
    for fps in args.fps:
        out = args.out / f"fps{fps:g}"
        if args.reuse:
            after = float("nan")  # the manifest keeps only the whole build time
            print(f"{fps:g} fps: reused {out} (built in {read_manifest(out).builder.build_seconds} s in all)")
        else:
            timings: dict[str, float] = {}
            start = time.perf_counter()
            with stage_lines():  # the builder's per-stage lines
                build_bundle(model, config, cache, out, fetch_blazepose_models(), fps=fps, timings=timings)
            total = time.perf_counter() - start
            after = total - timings["export"] - timings["embedding"]
            print(f"{fps:g} fps build: {total:.0f} s = export {timings['export']:.0f} s + embedding "
                  f"{timings['embedding']:.0f} s + after embedding {after:.0f} s (index {timings['index']:.0f} s; "
                  "the rest writes poses, metadata and sources)", flush=True)
        row, measured = measure_bundle(out, fps, after, independent)
        rows.append(row)
        first = first or {**measured, "out": out, "fps": fps}

    if first is not None and (args.kinds or args.hnsw_sizes):
        builder_queries = run_encoder(cpu_session(first["out"] / ENCODERS["pose2d"], threads=2), builder_views)
        vectors, queries, truth = first["vectors"], first["queries"], first["truth"]
        print(f"other index kinds on the {first['fps']:g} fps vectors ({len(vectors)}):")
        for kind in args.kinds:
            rows.append(compare(f"{first['fps']:g} fps, {kind}", kind, vectors, builder_queries, queries, truth))
        rng = np.random.default_rng(1)
        for size in args.hnsw_sizes:
            subset = vectors[np.sort(rng.choice(len(vectors), min(size, len(vectors)), replace=False))]
            sub_truth = exact_top_k(subset, queries, K, progress=False)
            print(f"HNSW vs IVF on {len(subset)} of them:")
            for kind in ("hnsw", "ivf"):
                rows.append(compare(f"subset, {kind}", kind, subset, builder_queries, queries, sub_truth))

    print("\n| build | vectors | index | after embedding s | operating point | recall@10 (builder's queries) | "
          "recall@10 (independent) | MiB | one query p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row.markdown())


if __name__ == "__main__":
    main()
