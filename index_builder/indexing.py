"""The FAISS index of the pose database: type and parameters from its size, and the search operating point.

Inner product on L2-normalised embeddings (= cosine). Exact (Flat) below ``FLAT_LIMIT`` vectors; above it IVF-Flat
with about 4 sqrt(N) lists (never fewer than 39 training vectors per list), whose ``nprobe`` is chosen on real
query embeddings as the smallest that reaches the target recall@10 against exact search.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from index_builder.atomic_files import atomic_path

FLAT_LIMIT = 100_000
MIN_POINTS_PER_LIST = 39  # below this FAISS warns that k-means training is unreliable
TARGET_RECALL = 0.95


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


def build_index(vectors: np.ndarray, plan: IndexPlan, seed: int = 0) -> faiss.Index:
    """vectors: (N, D) float32, L2-normalised; ids are the row numbers."""
    assert vectors.dtype == np.float32 and vectors.shape[1] == plan.dim, (vectors.dtype, vectors.shape)
    index = faiss.index_factory(plan.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = seed
        train = vectors
        max_train = plan.nlist * 256  # FAISS's own cap on useful k-means points
        if len(vectors) > max_train:
            train = vectors[np.random.default_rng(seed).choice(len(vectors), max_train, replace=False)]
        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            # k-means is most of the build; faiss-gpu trains on the GPU and the index comes back for writing.
            gpu = faiss.index_cpu_to_all_gpus(index)
            gpu.train(train)
            index = faiss.index_gpu_to_cpu(gpu)
            ivf = faiss.extract_index_ivf(index)
        else:
            index.train(train)
        ivf.make_direct_map()  # lets filtered searches reconstruct a small subset and search it exactly
    index.add(vectors)
    return index


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
                           target: float = TARGET_RECALL, k: int = 10) -> OperatingPoint:
    """The smallest nprobe (powers of two) whose recall@k against exact search reaches ``target``.

    vectors: the indexed (N, D) vectors, for the exact ground truth. queries: (Q, D) real query embeddings.
    """
    if not isinstance(faiss.try_extract_index_ivf(index), faiss.IndexIVF):
        start = time.perf_counter()
        index.search(queries, k)
        return OperatingPoint(0, 1.0, len(queries), 1000 * (time.perf_counter() - start) / len(queries))
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    nlist = faiss.extract_index_ivf(index).nlist
    nprobe = 1
    while True:
        set_search_effort(index, nprobe)
        start = time.perf_counter()
        _, found = index.search(queries, k)
        latency = 1000 * (time.perf_counter() - start) / len(queries)
        recall = recall_at_k(found, truth)
        if recall >= target or nprobe >= nlist:
            return OperatingPoint(nprobe, recall, len(queries), latency)
        nprobe *= 2


def write_index(index: faiss.Index, path: Path) -> None:
    with atomic_path(path, suffix=".faiss") as tmp:
        faiss.write_index(index, str(tmp))


def describe(plan: IndexPlan, point: OperatingPoint, ntotal: int) -> dict:
    return {"type": plan.kind, "factory": plan.factory, "metric": "inner_product", "ntotal": ntotal,
            "params": {"nlist": plan.nlist} if plan.kind == "ivf" else {}, "operating_point": asdict(point)}
