"""Search of the bundle's FAISS index: top-k poses by cosine score, de-duplicated, optionally filtered.

The index holds every database pose under V virtual views: vector id = pose * V + view. Scores are inner products
of L2-normalised vectors, i.e. cosine similarities. A search returns, per query, at most k *poses* (the best view
of each), or with grouping at most k groups (e.g. clips, the best pose of each).

Filters arrive as a boolean mask over poses. Above ``exact_fraction`` of the index they become a FAISS
``IDSelectorBitmap`` inside the search (``SearchParametersIVF`` / ``SearchParameters``), so the approximate search
only ever visits selected vectors; below it the selected vectors are reconstructed (IVF bundles keep a direct map)
and searched exactly, which is both faster and exact for small subsets. FAISS's -1 placeholders (fewer hits than
asked) are dropped, never returned.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import faiss
import numpy as np

from model.bundle_format import BundleError

LOG = logging.getLogger(__name__)
GROWTH = 4  # candidate pool growth when grouping leaves fewer than k groups
SUBSET_CACHE_BYTES = 64 << 20  # vectors of recently used small filters, kept so a repeated filter skips reconstruction


@dataclass(frozen=True)
class Hit:
    pose: int
    view: int
    score: float


def _gpu_copy(index: faiss.Index):
    """The index on GPU 0 when faiss-gpu and a GPU are present, else None. faiss-gpu has no HNSW and ignores ID
    selectors, so filtered and HNSW searches always run on the CPU copy."""
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return None
    try:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    except RuntimeError as err:  # an index type this faiss-gpu build cannot hold: search on the CPU
        LOG.warning("index stays on the CPU: %s", err)
        return None


class PoseIndex:
    """A loaded FAISS index over N poses x V views.

    index: a Flat, IVF or HNSW index with inner-product metric. views: V. nprobe: the IVF operating point
    (recall@10 >= 0.95 as chosen by the builder; ignored for other types). ef_search: HNSW operating point.
    exact_fraction: filters selecting less than this fraction of the vectors are searched exactly.
    """

    def __init__(self, index: faiss.Index, views: int, nprobe: int = 0, ef_search: int = 0,
                 exact_fraction: float = 0.05, use_gpu: bool = True):
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise BundleError("the index metric is not inner product")
        if index.ntotal % views:
            raise BundleError(f"index size {index.ntotal} is not a multiple of {views} views")
        self.index = index
        self.views = views
        self.ntotal = index.ntotal
        self.poses = index.ntotal // views
        self.ivf = faiss.try_extract_index_ivf(index)
        self.hnsw = isinstance(faiss.downcast_index(index), faiss.IndexHNSW)
        if self.ivf is not None:
            if self.ivf.direct_map.type == faiss.DirectMap.NoMap:
                self.ivf.make_direct_map()  # needed by reconstruct_batch for exact filtered search
            self.nprobe = max(1, min(int(nprobe) or 1, self.ivf.nlist))
        else:
            self.nprobe = 0
        self.ef_search = int(ef_search) or 64
        self.exact_fraction = exact_fraction
        self.gpu_index = _gpu_copy(index) if use_gpu and self.kind != "hnsw" else None
        self._gpu_lock = threading.Lock()
        self._subsets: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._subsets_lock = threading.Lock()

    @property
    def kind(self) -> str:
        return "ivf" if self.ivf is not None else "hnsw" if self.hnsw else "flat"

    def _params(self, effort: float, sel: faiss.IDSelector | None, k: int):
        if self.ivf is not None:
            nprobe = int(min(self.ivf.nlist, max(1, round(self.nprobe * effort))))
            return faiss.SearchParametersIVF(sel=sel, nprobe=nprobe) if sel else faiss.SearchParametersIVF(
                nprobe=nprobe)
        if self.hnsw:
            ef = max(k, int(round(self.ef_search * effort)))
            return faiss.SearchParametersHNSW(sel=sel, efSearch=ef) if sel else faiss.SearchParametersHNSW(
                efSearch=ef)
        return faiss.SearchParameters(sel=sel) if sel else None

    def _search_all(self, queries: np.ndarray, kk: int, effort: float, vec_mask: np.ndarray | None):
        """(Q, kk) scores and vector ids over all vectors, or those in ``vec_mask`` through an ID selector."""
        if vec_mask is None and self.gpu_index is not None:
            with self._gpu_lock:  # nprobe is an attribute of the shared GPU index
                if self.ivf is not None:
                    self.gpu_index.nprobe = int(min(self.ivf.nlist, max(1, round(self.nprobe * effort))))
                return self.gpu_index.search(queries, kk)
        if vec_mask is None:
            return self.index.search(queries, kk, params=self._params(effort, None, kk))
        bitmap = np.packbits(vec_mask, bitorder="little")  # must outlive the search
        selector = faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(bitmap))
        scores, ids = self.index.search(queries, kk, params=self._params(effort, selector, kk))
        del selector, bitmap
        return scores, ids

    def _subset_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (M,), from a small LRU cache keyed by the id set: users repeat filters."""
        key = hashlib.blake2b(ids.tobytes(), digest_size=16).digest()
        with self._subsets_lock:
            if key in self._subsets:
                self._subsets.move_to_end(key)
                return self._subsets[key]
        vectors = self.index.reconstruct_batch(ids)
        with self._subsets_lock:
            self._subsets[key] = vectors
            while sum(v.nbytes for v in self._subsets.values()) > SUBSET_CACHE_BYTES and len(self._subsets) > 1:
                self._subsets.popitem(last=False)
        return vectors

    def _search_subset(self, queries: np.ndarray, kk: int, ids: np.ndarray):
        """Exact search over the vectors ``ids`` (M,): (Q, min(kk, M)) scores and ids, best first."""
        vectors = self._subset_vectors(ids)  # (M, D)
        scores = queries @ vectors.T  # (Q, M)
        kk = min(kk, len(ids))
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < len(ids) else np.tile(np.arange(len(ids)),
                                                                                             (len(queries), 1))
        top_scores = np.take_along_axis(scores, top, 1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return np.take_along_axis(top_scores, order, 1), ids[np.take_along_axis(top, order, 1)]

    def search(self, queries: np.ndarray, k: int, pose_mask: np.ndarray | None = None, effort: float = 1.0,
               group_of_pose: np.ndarray | None = None) -> list[list[Hit]]:
        """Top-k poses per query.

        queries: (Q, D) float32, L2-normalised. k: results per query.
        pose_mask: (N,) bool, the poses a filter keeps (None = all).
        group_of_pose: (N,) int; when given, at most one hit per group (its best pose), up to k groups.
        returns: per query a list of at most k hits, best first; scores are cosines.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        vec_mask = None if pose_mask is None else np.repeat(pose_mask, self.views)
        selected = self.ntotal if vec_mask is None else int(vec_mask.sum())
        if selected == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        exact_ids = None
        if vec_mask is not None and selected < self.exact_fraction * self.ntotal:
            exact_ids = np.flatnonzero(vec_mask).astype(np.int64)
        kk = min(selected, k * self.views)
        while True:
            if exact_ids is not None:
                scores, ids = self._search_subset(queries, kk, exact_ids)
            else:
                scores, ids = self._search_all(queries, kk, effort, vec_mask)
            hits = [self._dedupe(s, i, k, group_of_pose) for s, i in zip(scores, ids)]
            exhausted = kk >= selected or all((i < 0).any() for i in ids)  # nothing more to find
            if group_of_pose is None or exhausted or all(len(h) >= k for h in hits):
                return hits
            kk = min(selected, kk * GROWTH)

    def _dedupe(self, scores: np.ndarray, ids: np.ndarray, k: int, group_of_pose: np.ndarray | None) -> list[Hit]:
        """Best view per pose (and best pose per group), dropping -1 placeholders; at most k."""
        out: list[Hit] = []
        seen: set[int] = set()
        for score, vid in zip(scores.tolist(), ids.tolist()):
            if vid < 0:
                continue
            pose, view = divmod(vid, self.views)
            key = pose if group_of_pose is None else int(group_of_pose[pose])
            if key in seen:
                continue
            seen.add(key)
            out.append(Hit(pose, view, float(score)))
            if len(out) == k:
                break
        return out
