"""The library motion search is evaluated on (``index_builder.evaluation.motion.protocol``): the training and test
clips at ``LIBRARY_FPS``, every pose under the bundle's ``VIEWS`` virtual views, embedded with the run's pose3d
encoder and indexed as ``unihpr-build index`` indexes; and the search over that index restricted to allowed poses."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import faiss
import numpy as np

from index_builder.bundle.indexing import build_index, choose_operating_point, plan_index, search_kind
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.evaluation.adapters import encode
from index_builder.progress import progress_bar
from model.pose.camera_rigs import virtual_view_rotations
from model.pose.features import pose3d_features
from model.pose.skeleton import root_centred
from model.retrieval.lifted_candidates import DescriptorIndex
from model.retrieval.motion_search import ClipLayout

LIBRARY_FPS = 10.0
VIEWS = 8  # virtual views per library pose, as the bundle


def at_rate(db: MotionDatabase, fps: float) -> MotionDatabase:
    """Each clip at about ``fps``: frames whose number is a multiple of round(clip fps / fps) (frames keep their
    numbers, clips their fps: as ``unihpr-build index --fps`` indexes them)."""
    step = np.maximum(1, np.round(db.clips.fps / fps)).astype(np.int64)
    keep = db.frame % step[db.clip] == 0
    lengths = np.bincount(db.clip[keep], minlength=len(db.clips))
    clips = replace(db.clips, start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                    length=lengths.astype(np.int64))
    return db.take(keep, clips=clips, sources=None)


class IndexSearch:
    """``model.retrieval.motion_search.SearchFn`` over the library index, restricted to allowed poses (a FAISS
    selector); ``allowed``: (N,) bool per pose, or None."""

    def __init__(self, index: faiss.Index, views: int, nprobe: int, allowed: np.ndarray | None):
        self.index, self.nprobe, self.allowed = index, nprobe, allowed
        self.bitmap = None if allowed is None else np.packbits(np.repeat(allowed, views), bitorder="little")
        self.selector = None if allowed is None else faiss.IDSelectorBitmap(index.ntotal, faiss.swig_ptr(self.bitmap))

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if search_kind(self.index) == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.nprobe, sel=self.selector) if self.selector else \
                faiss.SearchParametersIVF(nprobe=self.nprobe)
        else:
            params = faiss.SearchParameters(sel=self.selector) if self.selector else None
        return self.index.search(queries, min(k, self.index.ntotal), params=params)


@dataclass
class Library:
    """Training and test clips at 10 fps. poses: (N, 17, 3) mm root-relative world; train: (C,) bool per clip;
    vectors: (N * V, D); layout over all poses; index and its nprobe; the descriptor index over the poses and the
    virtual views' rotations (V, 3, 3), for the lifted query (``model.retrieval.motion_search.LiftedQuery``)."""

    db: MotionDatabase
    poses: np.ndarray
    train: np.ndarray
    vectors: np.ndarray
    layout: ClipLayout
    index: faiss.Index
    nprobe: int
    info: dict
    descriptors: DescriptorIndex
    rotations: np.ndarray

    def clip_poses(self, clip: int, first: int = 0, last: int | None = None) -> np.ndarray:
        length = self.layout.length(clip)
        last = length - 1 if last is None else last
        return self.poses[self.layout.row(clip, np.arange(max(0, first), min(length - 1, last) + 1))]


def build_library(model, db: MotionDatabase, index_queries: np.ndarray, seed: int, progress: bool) -> Library:
    """The training and test clips at 10 fps, embedded under the virtual views and indexed (``protocol``
    docstring), and their descriptor index."""
    keep = np.isin(db.clips.split, ("train", "test"))
    lib = at_rate(db.select_clips(keep), LIBRARY_FPS)
    poses = root_centred(lib.poses).astype(np.float64)
    rotations = virtual_view_rotations(VIEWS)
    started = time.perf_counter()
    vectors = []
    for start in progress_bar(range(0, len(poses), 16384), desc="motion library embedding", enabled=progress):
        chunk = poses[start : start + 16384]
        viewed = np.einsum("vij,nkj->nvki", rotations, chunk).reshape(-1, chunk.shape[1], 3)
        vectors.append(encode(model, pose3d_features(viewed), "pose3d"))
    vectors = np.ascontiguousarray(np.concatenate(vectors), dtype=np.float32)
    embedded = time.perf_counter()
    plan = plan_index(len(vectors), vectors.shape[1])
    index = build_index(vectors, plan, seed=seed, progress=progress)
    point = choose_operating_point(index, vectors, index_queries, progress=progress)
    info = {"clips": int(len(lib.clips)), "train_clips": int((lib.clips.split == "train").sum()),
            "test_clips": int((lib.clips.split == "test").sum()), "poses": int(len(poses)),
            "train_poses": int(np.isin(lib.clip, np.flatnonzero(lib.clips.split == "train")).sum()),
            "views": VIEWS, "vectors": int(len(vectors)), "fps": LIBRARY_FPS, "index": plan.factory,
            "nprobe": int(point.nprobe), "recall_at_10": round(float(point.recall_at_10), 4),
            "embedding_s": round(embedded - started, 1), "index_s": round(time.perf_counter() - embedded, 1)}
    layout = ClipLayout.of(lib.clip, lib.frame, lib.clips.fps)
    return Library(lib, poses, lib.clips.split == "train", vectors, layout, index, int(point.nprobe), info,
                   DescriptorIndex(poses, seed), rotations)
