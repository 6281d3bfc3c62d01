"""The FAISS index of the pose database: type and parameters from its size, and the search operating point.

Inner product on L2-normalised embeddings (= cosine). Exact (Flat) below ``FLAT_LIMIT`` vectors; above it IVF-Flat
with about 4 sqrt(N) lists (never fewer than 39 training vectors per list), whose ``nprobe`` is chosen on real
query embeddings as the smallest that reaches the target recall@10 against exact search.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from index_builder.atomic_files import atomic_path
from index_builder.progress import chunk_progress, progress_bar
from model.exact_search import exact_search

LOG = logging.getLogger(__name__)

FLAT_LIMIT = 100_000
MIN_POINTS_PER_LIST = 39  # below this FAISS warns that k-means training is unreliable
TARGET_RECALL = 0.95
ADD_CHUNK = 65_536  # vectors per index.add: a progress step of about a second on 2 cores
SCORE_BLOCK_BYTES = 64 << 20  # exact search: the (queries, N) float32 score block stays about this size


@dataclass(frozen=True)
class IndexPlan:
    kind: str  # "flat" or "ivf"
    dim: int
    nlist: int = 0

    @property
    def factory(self) -> str:
        return "Flat" if self.kind == "flat" else f"IVF{self.nlist},Flat"


def plan_index(num_vectors: int, dim: int) -> IndexPlan:
    if num_vectors < FLAT_LIMIT:
        return IndexPlan("flat", dim)
    nlist = 2 ** round(math.log2(4 * math.sqrt(num_vectors)))
    nlist = min(nlist, num_vectors // MIN_POINTS_PER_LIST)
    return IndexPlan("ivf", dim, nlist)


def build_index(vectors: np.ndarray, plan: IndexPlan, seed: int = 0, progress: bool = True) -> faiss.Index:
    """vectors: (N, D) float32, L2-normalised; ids are the row numbers.

    IVF k-means takes minutes on a full library: it is announced with its sizes and timed, and FAISS's own
    per-iteration lines are on where stdout is a terminal (they redraw with carriage returns); adding the
    vectors shows a bar.
    """
    assert vectors.dtype == np.float32 and vectors.shape[1] == plan.dim, (vectors.dtype, vectors.shape)
    index = faiss.index_factory(plan.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = seed
        ivf.cp.verbose = sys.stdout.isatty()
        train = vectors
        max_train = plan.nlist * 256  # FAISS's own cap on useful k-means points
        if len(vectors) > max_train:
            train = vectors[np.random.default_rng(seed).choice(len(vectors), max_train, replace=False)]
        gpus = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
        LOG.info("IVF k-means: %d lists from %d training points of dim %d (of %d vectors) on %s", plan.nlist,
                 len(train), plan.dim, len(vectors), f"{gpus} GPU(s)" if gpus else "the CPU")
        start = time.perf_counter()
        if gpus:
            # k-means is most of the build; faiss-gpu trains on the GPU and the index comes back for writing.
            gpu = faiss.index_cpu_to_all_gpus(index)
            gpu.train(train)
            index = faiss.index_gpu_to_cpu(gpu)
            ivf = faiss.extract_index_ivf(index)
        else:
            index.train(train)
        LOG.info("IVF k-means done in %.1f s", time.perf_counter() - start)
        ivf.make_direct_map()  # lets filtered searches reconstruct a small subset and search it exactly
    for start in progress_bar(range(0, len(vectors), ADD_CHUNK), desc=f"adding {len(vectors)} vectors",
                              enabled=progress, unit="chunk"):
        index.add(vectors[start : start + ADD_CHUNK])
    return index


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, progress: bool = True) -> np.ndarray:
    """The exact top-k ids by inner product, the ground truth of recall@k; the score block of each chunk of
    queries stays under ``SCORE_BLOCK_BYTES`` whatever N.

    vectors: (N, D) float32; queries: (Q, D) float32. returns: (Q, min(k, N)) int64 row ids.
    """
    chunk = max(1, SCORE_BLOCK_BYTES // (4 * max(1, len(vectors))))
    chunks = chunk_progress(f"exact top-{k} of {len(queries)} queries over {len(vectors)}", enabled=progress)
    return exact_search(queries, vectors, k, "ip", chunk=chunk, chunks=chunks)[1]


def set_search_effort(index: faiss.Index, nprobe: int) -> None:
    if nprobe:
        faiss.extract_index_ivf(index).nprobe = nprobe


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """|approximate top-k and exact top-k| / k, averaged over queries. approx, exact: (Q, k) int64 ids."""
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)]))


@dataclass(frozen=True)
class OperatingPoint:
    nprobe: int  # 0 for exact indexes
    recall_at_10: float
    queries: int
    latency_ms_per_query: float


def choose_operating_point(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray,
                           target: float = TARGET_RECALL, k: int = 10, progress: bool = True) -> OperatingPoint:
    """The smallest nprobe (powers of two) whose recall@k against exact search reaches ``target``.

    vectors: the indexed (N, D) vectors, for the exact ground truth. queries: (Q, D) real query embeddings.
    """
    if not isinstance(faiss.try_extract_index_ivf(index), faiss.IndexIVF):
        start = time.perf_counter()
        index.search(queries, k)
        return OperatingPoint(0, 1.0, len(queries), 1000 * (time.perf_counter() - start) / len(queries))
    truth = exact_top_k(vectors, queries, k, progress)
    nlist = faiss.extract_index_ivf(index).nlist
    candidates = [2**i for i in range(math.ceil(math.log2(nlist)) + 1)]  # 1, 2, 4, ... up to the first >= nlist
    bar = progress_bar(candidates, desc=f"choosing nprobe (recall@{k} >= {target})", enabled=progress,
                       unit="nprobe")
    for nprobe in bar:
        set_search_effort(index, nprobe)
        start = time.perf_counter()
        _, found = index.search(queries, k)
        point = OperatingPoint(nprobe, recall_at_k(found, truth), len(queries),
                               1000 * (time.perf_counter() - start) / len(queries))
        bar.set_postfix(recall=f"{point.recall_at_10:.3f}")
        if point.recall_at_10 >= target:
            break
    bar.close()
    LOG.info("operating point: nprobe %d of %d lists, recall@%d %.3f, %.3f ms per query", point.nprobe, nlist, k,
             point.recall_at_10, point.latency_ms_per_query)
    return point


def write_index(index: faiss.Index, path: Path) -> None:
    with atomic_path(path, suffix=".faiss") as tmp:
        faiss.write_index(index, str(tmp))


def describe(plan: IndexPlan, point: OperatingPoint, ntotal: int) -> dict:
    return {"type": plan.kind, "factory": plan.factory, "metric": "inner_product", "ntotal": ntotal,
            "params": {"nlist": plan.nlist} if plan.kind == "ivf" else {}, "operating_point": asdict(point)}
