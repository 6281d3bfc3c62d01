"""A living library on the Bandai data: build from 90% of the clips, `add` the other 10%, remove and re-add them.

The pose cache at 10 fps (every 3rd frame, as ``index_fidelity.py``: about 1.0M vectors for 90% at 8 views, so the
index is IVF) with the given weights. The 10% are every tenth clip in the order of a hash of their names
(``name_hash_order``: the same on every machine). Prints:
- the time of the 90% build (``build_bundle``: export, embedding, k-means, operating point, writing) and of the
  10% add (``add_clips``: verifying the bundle, embedding, adding, recall, writing, verifying the result), and
  their ratio (target < 1/5);
- recall@10 at the unchanged stored nprobe on independent queries (pose2d of random views with detector noise),
  over the whole library and over the added clips only (target >= 0.95);
- after removing the 10% and adding them again: whether the index file is byte-identical, and whether the
  top-10 (clip, frame, view) ids and scores of a set of queries are identical.

    .venv/bin/python benchmarks/library_update.py [--weights weights/unihpr_default.pt] [--out /tmp/unihpr-library]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import faiss
import numpy as np
import torch

import model.runtime.bundle_format as fmt
from index_builder.bundle.blazepose_assets import fetch_blazepose_models
from index_builder.bundle.indexing import set_search_effort
from index_builder.bundle.library_index import measure_recall
from index_builder.bundle.library_update import add_clips, remove_clips
from index_builder.bundle.writer import build_bundle, random_views, run_encoder
from index_builder.config import get_paths
from index_builder.datasets.motion_database import MotionDatabase, name_hash_order
from index_builder.progress import stage_lines
from index_builder.training.checkpoint import load_unihpr
from model.pose.skeleton import root_centred
from model.runtime.onnx_sessions import cpu_session

K = 10
ADDED_EVERY = 10  # every tenth clip in hash order is added later: 10%
FRAME_STEP = 3  # 30 fps -> 10 fps


def split_clips(db: MotionDatabase) -> np.ndarray:
    """(C,) bool: the clips added later."""
    order = name_hash_order(list(range(len(db.clips))), db.clips.name)
    later = np.zeros(len(db.clips), dtype=bool)
    later[order[::ADDED_EVERY]] = True
    return later


def queries(bundle: Path, poses: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(Q, D) pose2d embeddings of random views of ``poses`` (N, 17, 3) mm."""
    views = random_views(root_centred(poses.astype(np.float64)), count, seed)
    return run_encoder(cpu_session(bundle / fmt.ENCODERS["pose2d"], threads=2), views.pose2d)


def top_k(bundle: Path, embedded: np.ndarray) -> tuple[list, np.ndarray]:
    """Top-K (clip name, frame, view) per query and the scores, at the bundle's stored nprobe."""
    verified = fmt.verify_bundle(bundle, load_models=False)
    set_search_effort(verified.index, verified.manifest.index.operating_point.nprobe)
    scores, ids = verified.index.search(embedded, K)
    views, meta = verified.manifest.database.views, verified.metadata
    names = meta["clip_name"][meta["clip"][ids // views]]
    return [list(zip(n.tolist(), meta["frame"][i // views].tolist(), (i % views).tolist()))
            for n, i in zip(names, ids)], scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=get_paths().default_weights)
    parser.add_argument("--out", type=Path, default=Path("/tmp/unihpr-library"), help="folder for the bundles")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--frame-step", type=int, default=FRAME_STEP)
    args = parser.parse_args()
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    shutil.rmtree(args.out, ignore_errors=True)

    db = MotionDatabase.load(get_paths().bandai_cache).every_nth_frame(args.frame_step)
    later = split_clips(db)
    first, rest = db.select_clips(~later), db.select_clips(later)
    print(f"library: {len(db.clips)} clips, {len(db)} poses at {db.clips.fps[0]:g} fps; build {len(first.clips)} "
          f"clips ({len(first)} poses), add {len(rest.clips)} clips ({len(rest)} poses)")
    model, config, _ = load_unihpr(args.weights)
    base = args.out / "bandai90"
    with stage_lines():
        start = time.perf_counter()
        manifest = build_bundle(model, config, first, base, fetch_blazepose_models())
        build_s = time.perf_counter() - start
        point = manifest.index.operating_point
        print(f"build 90%: {build_s:.1f} s, {manifest.index.ntotal} vectors, {manifest.index.factory}, nprobe "
              f"{point.nprobe} (recall@10 {point.recall_at_10:.3f} at build)")

        added = add_clips(base, rest, args.out / "bandai100", progress=False)
        add_s = added.seconds
        print(f"add 10%: {add_s:.1f} s, {added.vectors} vectors -> {added.manifest.index.ntotal}; ratio "
              f"{add_s / build_s:.3f} (target < 0.2)")
        index = fmt.verify_bundle(added.out, load_models=False).index
        on_added = measure_recall(index, point.nprobe, queries(added.out, rest.poses, args.queries, seed=21))
        print(f"recall@10 at nprobe {point.nprobe}: {added.recall_at_10:.4f} on {args.queries} queries over the "
              f"whole library, {on_added:.4f} on queries of the added clips only (target >= 0.95)")
        print(f"retrain advice: {'; '.join(added.retrain) or 'none'}")

        removed = remove_clips(added.out, rest.clips.name.tolist(), args.out / "bandai90-again")
        print(f"remove 10%: {removed.seconds:.1f} s, {removed.manifest.index.ntotal} vectors")
        readded = add_clips(removed.out, rest, args.out / "bandai100-again", progress=False)
        print(f"re-add 10%: {readded.seconds:.1f} s, {readded.manifest.index.ntotal} vectors")

    same_file = (added.out / fmt.INDEX).read_bytes() == (readded.out / fmt.INDEX).read_bytes()
    probe = queries(added.out, db.poses, args.queries, seed=33)
    want_ids, want_scores = top_k(added.out, probe)
    got_ids, got_scores = top_k(readded.out, probe)
    same_ids = got_ids == want_ids
    same_scores = bool(np.array_equal(got_scores, want_scores))
    print(f"remove + re-add: index file identical {same_file}; top-{K} (clip, frame, view) ids of {len(probe)} "
          f"queries identical {same_ids}; scores identical {same_scores}")
    summary = {"build_90_s": round(build_s, 1), "add_10_s": round(add_s, 1), "ratio": round(add_s / build_s, 4),
               "vectors_built": manifest.index.ntotal, "vectors_added": added.vectors,
               "factory": manifest.index.factory, "nprobe": point.nprobe,
               "recall_at_10_library": round(added.recall_at_10, 4), "recall_at_10_added": round(on_added, 4),
               "remove_s": round(removed.seconds, 1), "readd_s": round(readded.seconds, 1),
               "identical_index_file": same_file, "identical_ids": same_ids, "identical_scores": same_scores}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
