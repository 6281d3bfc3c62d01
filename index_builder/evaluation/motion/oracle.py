"""The oracle of motion search's evaluation (``index_builder.evaluation.motion.protocol`` docstring): the segment of
least 3D alignment cost over every training clip, found exactly with a lower bound, and cached under the cache
folder (``motion_oracle_<hash>.npz``), written atomically."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from index_builder.atomic_files import atomic_path
from index_builder.evaluation.motion.aligned_error import YAW_GRID, YAW_REFINEMENTS, Aligned3D, align_3d, yaw_free_costs
from index_builder.evaluation.motion.library import Library
from index_builder.evaluation.motion.queries import Query
from index_builder.progress import progress_bar
from model.retrieval.sequence_alignment import MAX_HOLD, MAX_STEP, ColumnLayout, subsequence_dtw

ORACLE_BATCH = 32  # clips aligned exactly at a time, in order of their lower bound
ORACLE_MAX_CLIPS = 512
ORACLE_VERSION = 1


def oracle(q: Query, library: Library, train_poses: np.ndarray, columns: ColumnLayout,
           clips: np.ndarray) -> dict:
    """The best 3D segment over every training clip (module docstring). train_poses: (N, 17, 3) the training
    poses in ``columns`` order; clips: (S,) library clip of each sequence."""
    query = q.grid3d
    bound = subsequence_dtw(columns.place(yaw_free_costs(query, train_poses))).mean_end_cost
    per_clip = np.minimum.reduceat(bound, columns.starts)
    order = np.argsort(per_clip, kind="stable")
    best: tuple[float, int, Aligned3D] | None = None
    proven, tried = False, 0
    while tried < min(len(order), ORACLE_MAX_CLIPS):
        batch = order[tried : tried + ORACLE_BATCH]
        tried += len(batch)
        for s, aligned in zip(batch, align_3d(query, [library.clip_poses(int(clips[s])) for s in batch])):
            if best is None or aligned.cost < best[0]:
                best = (aligned.cost, int(s), aligned)
        if tried >= len(order) or best[0] <= per_clip[order[tried]]:
            proven = True
            break
    cost, s, aligned = best
    return {"clip": int(clips[s]), "first": aligned.first, "last": aligned.last, "cost": cost,
            "mpjpe": aligned.mpjpe, "yaw": aligned.yaw, "proven": proven, "clips_aligned": tried}


def oracle_key(library: Library, queries: list[Query]) -> str:
    digest = hashlib.sha256(f"motion-oracle v{ORACLE_VERSION} {YAW_GRID} {YAW_REFINEMENTS} {MAX_STEP} "
                            f"{MAX_HOLD}".encode())
    train_rows = np.isin(library.db.clip, np.flatnonzero(library.train))
    for array in (library.db.clips.name[library.train].astype("U"), library.poses[train_rows].astype(np.float32)):
        digest.update(np.ascontiguousarray(array).tobytes())
    for q in queries:
        digest.update(np.ascontiguousarray(q.grid3d, dtype=np.float32).tobytes())
    return digest.hexdigest()[:20]


ORACLE_FIELDS = ("clip", "first", "last", "cost", "mpjpe", "yaw", "proven", "clips_aligned")


def oracles(queries: list[Query], library: Library, cache_dir: Path, progress: bool) -> tuple[list[dict], dict]:
    """The oracle of every query, from the cache when it holds them (``oracle_key``), else computed and cached."""
    path = cache_dir / f"motion_oracle_{oracle_key(library, queries)}.npz"
    if path.is_file():
        with np.load(path) as data:
            arrays = {f: data[f] for f in ORACLE_FIELDS}
        if len(arrays["clip"]) == len(queries):
            return [{f: arrays[f][i].item() for f in ORACLE_FIELDS} for i in range(len(queries))], \
                {"cache": str(path.name), "cached": True}
    clips = np.flatnonzero(library.train)
    columns = ColumnLayout.of([library.layout.length(c) for c in clips])
    train_poses = np.concatenate([library.clip_poses(int(c)) for c in clips])
    started = time.perf_counter()
    out = [oracle(q, library, train_poses, columns, clips)
           for q in progress_bar(queries, desc="motion oracle", enabled=progress)]
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{f: np.array([o[f] for o in out]) for f in ORACLE_FIELDS})
    return out, {"cache": str(path.name), "cached": False, "seconds": round(time.perf_counter() - started, 1)}
