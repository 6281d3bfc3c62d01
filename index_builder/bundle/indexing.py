"""The FAISS index of the pose database: its kind and parameters from its size, and the search operating point.

Inner product on L2-normalised embeddings (= cosine). Kinds (``plan_index``; measured choices in
benchmarks/README.md, "index_fidelity.py"):
- ``flat``: exact, below ``FLAT_LIMIT`` vectors.
- ``ivf-fp16``, the default from ``FLAT_LIMIT``: IVF with about sqrt(N) lists, k-means on
  ``TRAIN_POINTS_PER_LIST`` points per list (FAISS warns below 39; little is gained beyond about 64) for
  ``KMEANS_ITERATIONS``, the vectors stored in float16 (scalar quantiser ``SQfp16``); operating point: ``nprobe``.
  Against float32 (``ivf``, IVF-Flat) on 3.3M vectors: recall@10 0.969 vs 0.969 on independent queries, 866 vs
  1680 MiB, one query 0.28 vs 0.45 ms. 8-bit ``SQ8`` codes lose recall (below 0.95 at any nprobe); so do 32-byte
  PQ codes re-ranked on 4 x k full vectors (``IVF2048,PQ32,RFlat``: 0.80, and 1782 MiB with the full vectors).
- ``ivf``: the same with float32 vectors.
- ``hnsw``: ``IndexHNSWFlat`` (M = ``HNSW_M``), only when asked for: on these embeddings (database pose3d
  vectors, pose2d queries from noisy random views) it never won. At 250k and 500k vectors it needed efSearch 192
  and 512 for recall@10 0.95 (0.28 and 0.73 ms per query) and 20 and 37 s to build, where IVF took 2 and 4 s
  and answered in 0.09 and 0.12 ms; at 1M it stopped at 0.91. Operating point: ``efSearch``.

Every operating point is the smallest effort that reaches ``TARGET_RECALL`` recall@10 against exact search on
real query embeddings; recall on other, independent queries is what ``benchmarks/index_fidelity.py`` reports.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from index_builder.atomic_files import atomic_path
from index_builder.progress import progress_bar
from model.retrieval.exact_search import exact_search

LOG = logging.getLogger(__name__)

FLAT_LIMIT = 100_000  # below: exact search is fast enough and needs no training
MIN_POINTS_PER_LIST = 39  # below this FAISS warns that k-means training is unreliable
TRAIN_POINTS_PER_LIST = 64  # k-means sample per list: FAISS gains little beyond 64-100
KMEANS_ITERATIONS = 10  # FAISS's default 25 took 41 s more (3.3M vectors, 4096 lists) to save one nprobe step
HNSW_M = 32  # graph neighbours per vector
HNSW_EF_CONSTRUCTION = 40  # FAISS's default
TARGET_RECALL = 0.95
PLATEAU_GAIN = 0.002  # operating point: a step of effort that gains less recall than this is not rising ...
PLATEAU_STEPS = 3  # ... and this many such steps in a row end the search below the target
ADD_CHUNK = 65_536  # vectors per index.add: a progress step of about a second on 2 cores
HEARTBEAT_S = 5.0  # the index stages' bars write at least this often, in a log too (no silent stage > 10 s)
KINDS = ("flat", "hnsw", "ivf", "ivf-fp16")
_CODES = {"ivf": "Flat", "ivf-fp16": "SQfp16"}  # the IVF kinds' codes in factory strings
EF_SEARCH_CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


@dataclass(frozen=True)
class IndexPlan:
    """What to build. kind: one of ``KINDS``; nlist: IVF lists; train_points: k-means sample (0: all vectors);
    num_vectors: the size it was planned for; auto: chosen by size (else asked for)."""

    kind: str
    dim: int
    nlist: int = 0
    train_points: int = 0
    hnsw_m: int = HNSW_M
    num_vectors: int = 0
    auto: bool = False

    @property
    def reason(self) -> str:
        return explain(self.kind, self.auto, self.num_vectors)

    @property
    def ivf(self) -> bool:
        return self.kind.startswith("ivf")

    @property
    def manifest_type(self) -> str:
        """The manifest's ``index.type``: flat, ivf or hnsw (the code is in the factory string)."""
        return "ivf" if self.ivf else self.kind

    @property
    def factory(self) -> str:
        if self.kind == "flat":
            return "Flat"
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m},Flat"
        return f"IVF{self.nlist},{_CODES[self.kind]}"

    def bytes_per_vector(self) -> int:
        """Stored bytes per vector (codes, plus the full vectors of a refine index; ids and graph links apart)."""
        full = 4 * self.dim
        return {"flat": full, "hnsw": full, "ivf": full, "ivf-fp16": 2 * self.dim}[self.kind]

    def params(self) -> dict[str, int]:
        """The manifest's ``index.params``: the parameters, and the size limits that chose the kind."""
        out = {"auto": int(self.auto), "flat_limit": FLAT_LIMIT, "bytes_per_vector": self.bytes_per_vector()}
        if self.ivf:
            out.update(nlist=self.nlist, train_points=self.train_points, kmeans_iterations=KMEANS_ITERATIONS)
        if self.kind == "hnsw":
            out.update(hnsw_m=self.hnsw_m, ef_construction=HNSW_EF_CONSTRUCTION)
        return out


def ivf_lists(num_vectors: int) -> int:
    """About sqrt(N) lists (a power of two), never fewer than ``MIN_POINTS_PER_LIST`` vectors per list.

    Measured on 3.3M real vectors (2 cores): 2048 lists train in 5 s and add in 16 s and reach recall@10 0.97 at
    nprobe 12; 4096 lists take 22 s and 26 s for the same recall and latency (nprobe 16)."""
    nlist = 2 ** round(math.log2(math.sqrt(num_vectors)))
    return max(1, min(nlist, num_vectors // MIN_POINTS_PER_LIST))


def explain(kind: str, auto: bool, num_vectors: int) -> str:
    """Why an index of ``num_vectors`` is of ``kind``: the size rule of ``plan_index``, or asked for."""
    if not auto:
        return f"{kind} asked for"
    if kind == "flat":
        return f"{num_vectors} vectors < {FLAT_LIMIT}: exact search"
    return (f"{num_vectors} vectors >= {FLAT_LIMIT}: IVF with float16 vectors (half the memory of float32, faster "
            "search, same recall; HNSW builds slower and needs more search effort on these embeddings)")


def plan_reason(info) -> str:
    """``explain`` for a manifest's ``index`` section (``model.runtime.bundle_format.IndexInfo``)."""
    kind = info.type if info.type != "ivf" else "ivf-fp16" if _CODES["ivf-fp16"] in info.factory else "ivf"
    return explain(kind, bool(info.params.get("auto", 1)), info.ntotal)


def plan_index(num_vectors: int, dim: int, kind: str = "auto") -> IndexPlan:
    """The index for ``num_vectors`` of dimension ``dim``: ``kind`` (one of ``KINDS``), or by size for "auto"."""
    if kind not in ("auto", *KINDS):
        raise ValueError(f"unknown index kind {kind!r}: one of auto, {', '.join(KINDS)}")
    auto = kind == "auto"
    if auto:
        kind = "flat" if num_vectors < FLAT_LIMIT else "ivf-fp16"
    if kind in ("flat", "hnsw"):
        return IndexPlan(kind, dim, num_vectors=num_vectors, auto=auto)
    nlist = ivf_lists(num_vectors)
    return IndexPlan(kind, dim, nlist, min(num_vectors, TRAIN_POINTS_PER_LIST * nlist), num_vectors=num_vectors,
                     auto=auto)


def training_sample(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` rows of ``vectors`` (N, D) drawn without replacement (all of them when N <= count), in row order."""
    if count <= 0 or count >= len(vectors):
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), count, replace=False))
    return vectors[rows]


def with_heartbeat(desc: str, work: Callable[[], None], progress: bool = True) -> float:
    """Run ``work`` (one long FAISS call, which releases the GIL) in a thread while a bar counts its seconds;
    returns them. An exception of ``work`` is raised here."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread below
            failure.append(err)

    start = time.perf_counter()
    thread = threading.Thread(target=run, name=desc, daemon=True)
    thread.start()
    bar = progress_bar(desc=desc, enabled=progress, unit="s", mininterval=HEARTBEAT_S,
                       bar_format="{desc}: {elapsed}")
    while thread.is_alive():
        thread.join(HEARTBEAT_S)
        bar.update(0)
        bar.refresh()
    bar.close()
    if failure:
        raise failure[0]
    return time.perf_counter() - start


def build_index(vectors: np.ndarray, plan: IndexPlan, seed: int = 0, progress: bool = True) -> faiss.Index:
    """vectors: (N, D) float32, L2-normalised; ids are the row numbers.

    IVF k-means is announced with its sizes and timed, and reports its elapsed time while it runs (FAISS's own
    per-iteration lines too, where stdout is a terminal); adding the vectors shows a bar (HNSW builds its graph
    there).
    """
    assert vectors.dtype == np.float32 and vectors.shape[1] == plan.dim, (vectors.dtype, vectors.shape)
    if plan.kind == "hnsw":
        index = faiss.IndexHNSWFlat(plan.dim, plan.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = faiss.index_factory(plan.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.ivf:
        index = _train_ivf(index, vectors, plan, seed, progress)
    desc = f"{'linking' if plan.kind == 'hnsw' else 'adding'} {len(vectors)} vectors"
    for start in progress_bar(range(0, len(vectors), ADD_CHUNK), desc=desc, enabled=progress, unit="chunk",
                              mininterval=HEARTBEAT_S):
        index.add(vectors[start : start + ADD_CHUNK])
    return index


def _train_ivf(index: faiss.Index, vectors: np.ndarray, plan: IndexPlan, seed: int,
               progress: bool) -> faiss.Index:
    """``index`` trained on ``plan.train_points`` of ``vectors`` (its coarse lists, and the codes' quantiser)."""
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    ivf.cp.niter = KMEANS_ITERATIONS
    ivf.cp.verbose = sys.stdout.isatty()
    train = training_sample(vectors, plan.train_points, seed)
    gpus = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    LOG.info("IVF k-means: %d lists from %d training points (%d per list) of dim %d (of %d vectors), %d "
             "iterations, on %s", plan.nlist, len(train), len(train) // plan.nlist, plan.dim, len(vectors),
             KMEANS_ITERATIONS, f"{gpus} GPU(s)" if gpus else "the CPU")
    if gpus:
        # k-means is most of the build; faiss-gpu trains on the GPU and the index comes back for writing.
        gpu = faiss.index_cpu_to_all_gpus(index)
        seconds = with_heartbeat("IVF k-means", lambda: gpu.train(train), progress)
        index = faiss.index_gpu_to_cpu(gpu)
        ivf = faiss.extract_index_ivf(index)
    else:
        seconds = with_heartbeat("IVF k-means", lambda: index.train(train), progress)
    LOG.info("IVF k-means done in %.1f s", seconds)
    ivf.make_direct_map()  # lets filtered searches reconstruct a small subset and search it exactly
    return index


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, progress: bool = True) -> np.ndarray:
    """The exact top-k ids by inner product, the ground truth of recall@k.

    ``model.retrieval.exact_search`` (one ``faiss.knn`` call), reporting its elapsed time while it runs. Over 3.3M
    vectors, 1,000 queries: 6.7 s in one call against 9 s for each call of 256 queries.

    vectors: (N, D) float32; queries: (Q, D) float32. returns: (Q, min(k, N)) int64 row ids, best first.
    """
    k = min(k, len(vectors))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    found: list[np.ndarray] = []
    with_heartbeat(f"exact top-{k} of {len(queries)} queries over {len(vectors)}",
                   lambda: found.append(exact_search(queries, vectors, k)[1]),
                   progress)
    return found[0]


def search_kind(index: faiss.Index) -> str:
    """"ivf", "hnsw" or "flat": which search effort ``index`` takes."""
    if faiss.try_extract_index_ivf(index) is not None:
        return "ivf"
    return "hnsw" if isinstance(faiss.downcast_index(index), faiss.IndexHNSW) else "flat"


def set_search_effort(index: faiss.Index, nprobe: int = 0, ef_search: int = 0) -> None:
    """Set the IVF ``nprobe`` or the HNSW ``efSearch`` of ``index`` (0: leave it)."""
    kind = search_kind(index)
    if kind == "ivf" and nprobe:
        faiss.extract_index_ivf(index).nprobe = nprobe
    elif kind == "hnsw" and ef_search:
        faiss.downcast_index(index).hnsw.efSearch = ef_search


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """|approximate top-k and exact top-k| / k, averaged over queries. approx, exact: (Q, k) int64 ids."""
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)]))


def recall_at_effort(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, nprobe: int = 0,
                     ef_search: int = 0) -> float:
    """recall@k of ``index`` at an effort against the exact top-k ``truth`` (Q, k) of ``queries`` (Q, D)."""
    set_search_effort(index, nprobe, ef_search)
    return recall_at_k(index.search(queries, truth.shape[1])[1], truth)


def nprobe_candidates(nlist: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, ...: powers of two and the steps halfway, up to ``nlist``."""
    steps = sorted({m * 2**i for i in range(max(1, nlist.bit_length())) for m in (2, 3)} | {1})
    return [n for n in steps if n < nlist] + [nlist]


@dataclass(frozen=True)
class OperatingPoint:
    nprobe: int  # IVF lists probed; 0 for other indexes
    recall_at_10: float
    queries: int
    latency_ms_per_query: float
    ef_search: int = 0  # HNSW search depth; 0 for other indexes


def choose_operating_point(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray,
                           target: float = TARGET_RECALL, k: int = 10, progress: bool = True) -> OperatingPoint:
    """The smallest nprobe (``nprobe_candidates``) or efSearch (``EF_SEARCH_CANDIDATES``) whose recall@k against exact
    search reaches ``target``. When none does, the best one tried: the search stops once ``PLATEAU_STEPS`` steps in
    a row gained less than ``PLATEAU_GAIN`` (lossy codes cap recall; more effort only costs time), and a warning
    says so.

    vectors: the indexed (N, D) vectors, for the exact ground truth. queries: (Q, D) real query embeddings.
    """
    kind = search_kind(index)
    if kind == "flat":
        start = time.perf_counter()
        index.search(queries, k)
        return OperatingPoint(0, 1.0, len(queries), 1000 * (time.perf_counter() - start) / len(queries))
    truth = exact_top_k(vectors, queries, k, progress)
    if kind == "ivf":
        nlist = faiss.extract_index_ivf(index).nlist
        candidates = nprobe_candidates(nlist)
    else:
        candidates = [ef for ef in EF_SEARCH_CANDIDATES if ef >= k]
    name = "nprobe" if kind == "ivf" else "efSearch"
    bar = progress_bar(candidates, desc=f"choosing {name} (recall@{k} >= {target})", enabled=progress, unit=name,
                       mininterval=HEARTBEAT_S)
    best, flat_steps = None, 0
    for effort in bar:
        efforts = {"nprobe": effort, "ef_search": 0} if kind == "ivf" else {"nprobe": 0, "ef_search": effort}
        set_search_effort(index, **efforts)
        start = time.perf_counter()
        _, found = index.search(queries, k)
        point = OperatingPoint(**efforts, recall_at_10=recall_at_k(found, truth), queries=len(queries),
                               latency_ms_per_query=1000 * (time.perf_counter() - start) / len(queries))
        bar.set_postfix(recall=f"{point.recall_at_10:.3f}")
        if point.recall_at_10 >= target:
            best = point
            break
        flat_steps = flat_steps + 1 if best and point.recall_at_10 < best.recall_at_10 + PLATEAU_GAIN else 0
        best = point if best is None or point.recall_at_10 > best.recall_at_10 else best
        if flat_steps >= PLATEAU_STEPS:
            break
    bar.close()
    effort = best.nprobe or best.ef_search
    set_search_effort(index, best.nprobe, best.ef_search)
    if best.recall_at_10 < target:
        LOG.warning("recall@%d stops at %.3f < %.2f: this index cannot reach the target", k, best.recall_at_10,
                    target)
    LOG.info("operating point: %s %d, recall@%d %.3f, %.3f ms per query", name, effort, k, best.recall_at_10,
             best.latency_ms_per_query)
    return best


def write_index(index: faiss.Index, path: Path) -> None:
    with atomic_path(path, suffix=".faiss") as tmp:
        faiss.write_index(index, str(tmp))


def describe(plan: IndexPlan, point: OperatingPoint, ntotal: int) -> dict:
    """The manifest's ``index`` section (less its history)."""
    return {"type": plan.manifest_type, "factory": plan.factory, "metric": "inner_product", "ntotal": ntotal,
            "params": plan.params(), "operating_point": asdict(point)}
