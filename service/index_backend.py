"""The retrieval interface the service searches through, as narrow as FAISS's own, and the choice of backend.

A ``VectorIndex`` holds the N x V vectors of a bundle (vector id = pose * V + view, scores = inner products of
L2-normalised vectors = cosines) and answers ``search`` with ``(D, I)`` like ``faiss.Index.search``. Everything
else (poses, metadata, labels, re-ranking, motion search) stays in the bundle and works on the ids it returns.

Backends (``Settings.index_backend``):
- ``faiss`` (default): ``service.index.PoseIndex``, the bundle's index.faiss in process.
- ``milvus``: ``service.milvus_index.MilvusIndex``, the bundle's Milvus collection (``manifest.index.backend``) on
  the server at ``UNIHPR_MILVUS_URI``, through pymilvus; filters as Milvus boolean expressions.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from model.runtime.bundle_format import BundleError, VerifiedBundle
from service.config import Settings


class VectorIndex(Protocol):
    """backend: "faiss" or "milvus"; kind: "flat", "ivf" or "hnsw"; views: V; ntotal: N * V; poses: N; nprobe:
    the IVF operating point (0 for others); max_k: the most vectors one search may ask for."""

    backend: str
    views: int
    ntotal: int
    poses: int
    nprobe: int
    max_k: int

    @property
    def kind(self) -> str: ...

    def search(self, queries: np.ndarray, k: int, vec_mask: np.ndarray | None = None, effort: float = 1.0,
               expr: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """queries (Q, D) float32, L2-normalised; vec_mask (ntotal,) bool and expr (a Milvus boolean expression)
        say the same filter, each backend reads the one it filters by. returns D (Q, k) float32 cosines and I
        (Q, k) int64 vector ids, best first, -1 (and -inf) where fewer were found. A backend that cannot answer
        raises ``service.errors.IndexUnavailableError`` (503)."""
        ...

    def vectors(self, ids: np.ndarray, cache: bool = True) -> np.ndarray:
        """(M, D) float32 stored vectors of the ids (M,) int64 (re-scoring the frames of a clip)."""
        ...

    def visited(self, effort: float = 1.0) -> int:
        """About how many vectors one unfiltered query compares."""
        ...

    def health(self) -> str | None:
        """None when searches can be answered, else the reason (for /readyz)."""
        ...

    def activate(self) -> None:
        """The bundle is about to be served (Milvus: point the serving alias at its collection)."""
        ...


def open_index(verified: VerifiedBundle, settings: Settings, faiss_gpu: bool) -> VectorIndex:
    """The verified bundle's vectors behind the configured backend; BundleError when the bundle and the backend
    do not go together (a FAISS bundle under ``milvus`` or a Milvus bundle under ``faiss``) or Milvus refuses."""
    manifest = verified.manifest
    info, point, views = manifest.index, manifest.index.operating_point, manifest.database.views
    where = info.backend
    if settings.index_backend == "faiss":
        if where is not None:
            raise BundleError(f"{verified.path}: its vectors are in Milvus collection {where.collection}: serve it "
                              "with UNIHPR_INDEX_BACKEND=milvus and UNIHPR_MILVUS_URI", "index.backend")
        from service.index import PoseIndex

        return PoseIndex(verified.index, views, nprobe=point.nprobe, ef_search=point.ef_search,
                         exact_fraction=settings.exact_filter_fraction, threads=settings.faiss_threads,
                         use_gpu=faiss_gpu)
    if where is None:
        raise BundleError(f"{verified.path}: its vectors are in index.faiss, not in Milvus: serve it with "
                          "UNIHPR_INDEX_BACKEND=faiss, or move them with `unihpr-build to-milvus`", "index.backend")
    from service.milvus_index import MilvusIndex

    return MilvusIndex.connect(verified, settings)
