"""The request path's small-array steps, each against the numpy formulation it replaced, on a bundle.

    .venv/bin/python benchmarks/request_kernels.py [--bundle bundles/default] [--queries 300]

Prints, in this process on one thread (medians of repeated calls, microseconds), with a check that both give the
same answer:

1. **2D features of one pose** (``model.pose.features.pose2d_rows``, one compiled pass) against the joint formulas
   and the box normalisation in numpy (``layout_to_unihpr17`` + ``normalize_2d``), an ``h36m17`` pose.
2. **The first view of each pose among a query's hits** (``model.retrieval.rerank.first_per_key``) against numpy's
   ``unique``, for 80 hits (k = 10) and 800 (a re-ranked query's 100 candidates).
3. **The lifted candidates' descriptor search** (``model.retrieval.lifted_candidates.DescriptorIndex``): the IVF the
   bundle's library now gets against an exact scan of the same descriptors, 100 neighbours of held-out test poses
   (the pose cache's test split): time, recall@100 and the share whose nearest pose is the same.
4. **The pose search's first ask** (``service.pose_search.FIRST_ASK``): queries are database poses of the bundle
   seen through random virtual views with 3 px of noise (``benchmarks.service_harness.pose_keypoints``), embedded by
   the bundle's encoder; how many distinct poses their best k x FIRST_ASK and k x V vectors hold, FAISS's time for
   each ask, and whether ``search_candidates`` answers with the same candidates as asking for every view.

Sections 3 and 4 use our own poses and virtual views: real cameras put the query further from every indexed view,
which can only lower the share of distinct poses among the first vectors (the search then asks again: the answer
stays the same, the time grows by one more search).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script: the repository's modules before anything installed

from benchmarks.service_harness import pose_keypoints  # noqa: E402


def median_us(call, repeats: int = 2000) -> float:
    """Median time of ``call()`` in microseconds over ``repeats`` calls, after a warm-up."""
    for _ in range(50):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def unique_first(ids: np.ndarray, views: int, count: int) -> np.ndarray:
    """The numpy formulation ``first_per_key`` replaced: positions of the first id of each pose, at most count."""
    keep = np.flatnonzero(ids >= 0)
    pose = ids[keep] // views
    return keep[np.sort(np.unique(pose, return_index=True)[1])[:count]]


def feature_rows(bundle: Path) -> None:
    from model.pose.features import pose2d_rows
    from model.pose.joint_formulas import layout_to_unihpr17
    from model.pose.normalization import normalize_2d

    keypoints = pose_keypoints(bundle, 1)

    def in_numpy() -> np.ndarray:
        joints = layout_to_unihpr17(keypoints, "h36m17")
        normalised, _, _ = normalize_2d(joints)
        return np.concatenate([normalised, np.ones((1, 17, 1))], axis=-1).astype(np.float32)

    same = np.array_equal(pose2d_rows(keypoints, None, "h36m17").features, in_numpy())
    compiled = median_us(lambda: pose2d_rows(keypoints, None, "h36m17"))
    print(f"1. 2D features of one pose: numpy {median_us(in_numpy):.1f} us, compiled rows {compiled:.1f} us "
          f"(same features: {same})")


def hit_selection(index, embeddings: np.ndarray, views: int) -> None:
    from model.retrieval.rerank import first_of_each

    for count in (10, 100):
        _, ids = index.search(embeddings[:1], count * views)
        row = ids[0]
        same = np.array_equal(first_of_each(row, views, count), unique_first(row, views, count))
        print(f"2. first view of each pose among {row.size} hits: numpy unique "
              f"{median_us(lambda: unique_first(row, views, count)):.1f} us, compiled "
              f"{median_us(lambda: first_of_each(row, views, count)):.1f} us (same positions: {same})")


def descriptor_search(poses: np.ndarray, queries: int) -> None:
    import faiss

    from index_builder.config import get_paths
    from index_builder.datasets.sample import load_poses
    from model.pose.skeleton import root_centred
    from model.retrieval.lifted_candidates import LIFTED_CANDIDATES, DescriptorIndex

    db, _ = load_poses(get_paths(), prefer_cache=True)
    test = db.split("test")
    picked = np.random.default_rng(0).choice(len(test), min(queries, len(test)), replace=False)
    held_out = root_centred(test.poses[picked].astype(np.float64))
    library = DescriptorIndex(poses)
    exact = faiss.IndexFlatL2(library.reduced.shape[1])
    exact.add(library.reduced)
    described = library.describe(held_out)
    truth = exact.search(described, LIFTED_CANDIDATES)[1]
    found = library.search(held_out, LIFTED_CANDIDATES)
    recall = np.mean([len(set(a) & set(b)) / LIFTED_CANDIDATES for a, b in zip(found, truth)])
    one = held_out[:1]
    print(f"3. descriptor search, {len(poses):,} library poses, {len(held_out)} held-out test poses, "
          f"{LIFTED_CANDIDATES} neighbours: {type(library.index).__name__} "
          f"{median_us(lambda: library.search(one, LIFTED_CANDIDATES), 500):.1f} us, exact scan "
          f"{median_us(lambda: exact.search(library.describe(one), LIFTED_CANDIDATES), 500):.1f} us; recall@100 "
          f"{recall:.4f}, same nearest pose {np.mean(found[:, 0] == truth[:, 0]):.3f}")


def first_ask(index, embeddings: np.ndarray, views: int, nprobe: int) -> None:
    import faiss

    import service.pose_search as pose_search
    from service.index import PoseIndex

    params = faiss.SearchParametersIVF(nprobe=nprobe) if nprobe else None
    for k in (10, 100):
        first, every = k * pose_search.FIRST_ASK, k * views
        _, ids = index.search(embeddings, every, params=params)
        held = [len(np.unique(row[:first] // views)) for row in ids]
        print(f"4. k = {k}: the best {first} vectors hold >= {k} poses for {np.mean(np.array(held) >= k):.3f} of "
              f"{len(ids)} queries; of the best {every}, a median "
              f"{np.median([len(np.unique(row // views)) for row in ids]):.0f} distinct poses; FAISS "
              f"{median_us(lambda: index.search(embeddings[:1], first, params=params), 300):.1f} us for {first}, "
              f"{median_us(lambda: index.search(embeddings[:1], every, params=params), 300):.1f} us for {every}")
    served = PoseIndex(index, views, nprobe)
    shipped = {k: pose_search.search_candidates(served, embeddings, k) for k in (10, 100)}
    asked, pose_search.FIRST_ASK = pose_search.FIRST_ASK, views  # every view first, as before
    try:
        before = {k: pose_search.search_candidates(served, embeddings, k) for k in (10, 100)}
    finally:
        pose_search.FIRST_ASK = asked
    same = all(np.array_equal(a.pose, b.pose) and np.array_equal(a.view, b.view) and np.array_equal(a.score, b.score)
               for k in shipped for a, b in zip(shipped[k], before[k]))
    print(f"   search_candidates at k = 10 and 100: the same candidates, views and scores as asking for every view: "
          f"{same}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "bundles" / "default")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)

    import faiss

    from model.pose.features import pose2d_features
    from model.pose.joint_formulas import layout_to_unihpr17
    from model.runtime.bundle_format import read_manifest
    from model.runtime.onnx_sessions import cpu_session
    from service.lifecycle import compile_service_kernels

    faiss.omp_set_num_threads(1)
    compile_service_kernels()
    manifest = read_manifest(args.bundle)
    views, nprobe = manifest.database.views, manifest.index.operating_point.nprobe
    index = faiss.read_index(str(args.bundle / "index.faiss"))
    encoder = cpu_session(args.bundle / "encoder_pose2d.onnx", threads=1, errors_only=True)
    keypoints = pose_keypoints(args.bundle, args.queries, seed=5)
    keypoints = keypoints + np.random.default_rng(1).normal(size=keypoints.shape) * 3.0  # not exactly a view
    features = pose2d_features(layout_to_unihpr17(keypoints, "h36m17"))
    embeddings = encoder.run(None, {encoder.get_inputs()[0].name: features})[0]

    feature_rows(args.bundle)
    hit_selection(index, embeddings, views)
    descriptor_search(np.load(args.bundle / "poses.npy"), args.queries)
    first_ask(index, embeddings, views, nprobe)


if __name__ == "__main__":
    main()
