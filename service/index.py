"""Search of the bundle's FAISS index, filtered or not, returning ``(D, I)`` like FAISS.

The index holds every database pose under V virtual views: vector id = pose * V + view. Scores are inner products
of L2-normalised vectors, i.e. cosine similarities. ``service.pose_search`` turns vector hits into pose results.

Filters arrive as a boolean mask over vectors. Above ``exact_fraction`` of the index they become a FAISS
``IDSelectorBitmap`` inside the search (``SearchParametersIVF`` / ``SearchParameters``), so the approximate search
only ever visits selected vectors; below it the selected vectors are read back (``StoredVectors``: IVF bundles keep a
direct map) and searched exactly (``model.retrieval.exact_search``), which is both faster and exact for small
subsets; their vectors are kept in a ``SubsetCache``.
"""

from __future__ import annotations

import logging
import threading

import faiss
import numpy as np

from model.retrieval.exact_search import exact_search
from model.retrieval.stored_vectors import StoredVectors
from model.runtime.bundle_format import BundleError
from service.subset_cache import SubsetCache

LOG = logging.getLogger(__name__)
SUBSET_CACHE_BYTES = 64 << 20  # vectors of recently used small filters, kept so a repeated filter skips reconstruction


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
    """A loaded FAISS index over N poses x V views: the embedded backend of ``service.index_backend.VectorIndex``.

    index: a Flat, IVF or HNSW index with inner-product metric. views: V. nprobe: the IVF operating point
    (recall@10 >= 0.95 as chosen by the builder; ignored for other types). ef_search: HNSW operating point.
    exact_fraction: filters selecting less than this fraction of the vectors are searched exactly.
    threads: FAISS OpenMP threads per search.
    """

    backend = "faiss"
    max_k = 1 << 40  # FAISS has no limit on k

    def __init__(self, index: faiss.Index, views: int, nprobe: int = 0, ef_search: int = 0,
                 exact_fraction: float = 0.05, use_gpu: bool = True, threads: int = 1):
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
        self.threads = threads
        self.gpu_index = _gpu_copy(index) if use_gpu and self.kind != "hnsw" else None
        self._gpu_lock = threading.Lock()
        self.subsets = SubsetCache(SUBSET_CACHE_BYTES)
        self.stored = StoredVectors(index)  # after the direct map: the reader holds views of the index's memory

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

    def visited(self, effort: float = 1.0) -> int:
        """About how many vectors one unfiltered query compares (the cost of a search)."""
        if self.ivf is not None:
            nprobe = min(self.ivf.nlist, max(1, round(self.nprobe * effort)))
            return int(self.ntotal * nprobe / self.ivf.nlist)
        if self.hnsw:
            return int(self.ef_search * effort) * 32  # efSearch candidates, each with its M neighbours
        return self.ntotal

    def vectors(self, ids: np.ndarray, cache: bool = True) -> np.ndarray:
        """(M, D) float32 stored vectors of the ids (M,) int64, through the subset cache unless ``cache`` is off."""
        if not cache:
            return self.stored(ids)
        return self.subsets.get(ids, self.stored)

    def health(self) -> str | None:
        """None: ready (an in-process index is always); else what is wrong."""
        return None

    def activate(self) -> None:
        """Called once the bundle is about to be served; nothing to do in process."""

    def search(self, queries: np.ndarray, k: int, vec_mask: np.ndarray | None = None,
               effort: float = 1.0, expr: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k vectors per query, over all vectors or those ``vec_mask`` keeps.

        queries: (Q, D) float32, L2-normalised. vec_mask: (ntotal,) bool or None. effort: multiplies nprobe / ef.
        expr: the filter as a Milvus expression (``service.catalog.PoseCatalog.expression``); FAISS filters by the
        mask, which says the same.
        returns: D (Q, k) float32 cosines and I (Q, k) int64 vector ids, best first; -1 where fewer than k
            vectors were found (filters may select fewer).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        # OpenMP's thread count belongs to the calling thread: set it in whichever thread searches
        faiss.omp_set_num_threads(self.threads)
        selected = self.ntotal if vec_mask is None else int(vec_mask.sum())
        if vec_mask is not None and selected < self.exact_fraction * self.ntotal:
            ids = np.flatnonzero(vec_mask).astype(np.int64)
            scores, rows = exact_search(queries, self.vectors(ids), k)
            found = np.where(rows >= 0, ids[np.maximum(rows, 0)], -1)
            pad = k - scores.shape[1]  # the subset holds fewer than k vectors
            return (np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf),
                    np.pad(found, ((0, 0), (0, pad)), constant_values=-1))
        return self._search_all(queries, k, effort, vec_mask)
