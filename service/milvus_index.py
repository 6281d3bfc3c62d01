"""The Milvus backend of ``service.index_backend.VectorIndex``: a bundle's collection on a Milvus server.

The collection (``index_builder.bundle.milvus_collection``) holds vector id = pose * V + view as its primary key, the
vector, and scalar fields pose, view, clip, frame, clip_name and the labels. A search asks for the top-k ids with
the bundle's operating point (nprobe / ef, times the request's effort) and the filter as a boolean expression
(``PoseCatalog.expression``; a bare vector mask becomes ``clip in [...]`` or ``pose in [...]``). De-duplication
by (clip, frame), grouping, re-ranking and motion search run on the returned ids as for FAISS; re-scoring the
frames of a clip reads their vectors back by id (``vectors``).

Each bundle searches its own collection by name, so a request that took the old bundle during a reload finishes
on the old collection with the old metadata; ``activate`` then points the alias ``UNIHPR_MILVUS_ALIAS`` at the
new collection in one call (Milvus swaps aliases atomically) for anything else that addresses the served version.

Milvus errors (server down, deadline ``UNIHPR_MILVUS_TIMEOUT_S`` passed) become ``IndexUnavailableError`` (503,
JSON body); ``health`` feeds /readyz. The URI is logged without credentials; the token never.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import numpy as np
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from model.runtime.bundle_format import BundleError, VerifiedBundle
from service.config import Settings
from service.errors import IndexUnavailableError
from service.subset_cache import SubsetCache

LOG = logging.getLogger(__name__)
MAX_TOPK = 16_384  # Milvus's largest limit of one search
GET_CHUNK = 16_384  # ids per get()
SUBSET_CACHE_BYTES = 64 << 20
EXPRESSION_IDS = 50_000  # a mask that is not whole clips becomes "pose in [...]" up to this many poses


def _host(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else f"{parts.scheme}://{parts.hostname}"


class MilvusIndex:
    """client: a connected ``MilvusClient``; collection: the bundle's; kind: the plan's (flat, ivf, hnsw); nlist,
    nprobe, ef_search: its parameters and operating point; clip_of_pose: (N,) int64 (to turn masks into
    expressions); timeout: seconds per call."""

    backend = "milvus"
    max_k = MAX_TOPK

    def __init__(self, client: MilvusClient, collection: str, alias: str, kind: str, views: int, ntotal: int,
                 nlist: int, nprobe: int, ef_search: int, clip_of_pose: np.ndarray, timeout: float,
                 exact_fraction: float = 0.05):
        self.client, self.collection, self.alias = client, collection, alias
        self._kind = kind
        self.views, self.ntotal, self.poses = views, ntotal, ntotal // views
        self.nlist, self.nprobe, self.ef_search = nlist, nprobe if kind == "ivf" else 0, ef_search or 64
        self.clip_of_pose = clip_of_pose
        self.timeout = timeout
        self.exact_fraction = exact_fraction
        self.subsets = SubsetCache(SUBSET_CACHE_BYTES)

    @classmethod
    def connect(cls, verified: VerifiedBundle, settings: Settings) -> MilvusIndex:
        """Connect to ``settings.milvus_uri`` and check the bundle's collection: present, as many vectors as the
        manifest, loaded. BundleError (naming the URI without credentials) when any of it fails."""
        manifest = verified.manifest
        info = manifest.index
        name, host = info.backend.collection, _host(settings.milvus_uri)
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        try:
            # dedicated: this index's own gRPC connection, not one pymilvus shares with other clients of the same
            # server in the process (a shared one may have been closed by the server while idle)
            client = MilvusClient(uri=settings.milvus_uri, token=token, timeout=settings.milvus_timeout_s,
                                  dedicated=True)
            if not client.has_collection(name, timeout=settings.milvus_timeout_s):
                raise BundleError(f"{verified.path}: Milvus at {host} has no collection {name}; write it with "
                                  "`unihpr-build index --backend milvus` or `to-milvus`", "index.backend.collection")
            client.load_collection(name, timeout=max(settings.milvus_timeout_s, 60.0))
            count = int(client.query(name, filter="", output_fields=["count(*)"],
                                     timeout=settings.milvus_timeout_s)[0]["count(*)"])
        except MilvusException as err:
            raise BundleError(f"{verified.path}: Milvus at {host} does not answer: {err.message}") from err
        if count != info.ntotal:
            raise BundleError(f"{verified.path}: Milvus collection {name} holds {count} vectors, the manifest "
                              f"{info.ntotal}", "index.ntotal")
        point, search = info.operating_point, info.backend.search_params  # the builder's Milvus operating point
        LOG.info("bundle %s searches Milvus collection %s at %s (%s)", manifest.model_version, name, host,
                 info.backend.index_type)
        return cls(client, name, settings.milvus_alias, info.type, manifest.database.views, info.ntotal,
                   int(info.params.get("nlist", 0)), search.get("nprobe", point.nprobe),
                   search.get("ef", point.ef_search),
                   verified.metadata["clip"].astype(np.int64), settings.milvus_timeout_s,
                   settings.exact_filter_fraction)

    @property
    def kind(self) -> str:
        return self._kind

    def _params(self, effort: float, k: int) -> dict:
        if self._kind == "ivf":
            return {"nprobe": int(min(self.nlist, max(1, round(self.nprobe * effort))))}
        if self._kind == "hnsw":
            return {"ef": max(k, int(round(self.ef_search * effort)))}
        return {}

    def visited(self, effort: float = 1.0) -> int:
        if self._kind == "ivf":
            return int(self.ntotal * self._params(effort, 1)["nprobe"] / max(1, self.nlist))
        if self._kind == "hnsw":
            return int(self.ef_search * effort) * 32
        return self.ntotal

    def mask_expression(self, vec_mask: np.ndarray) -> str:
        """A vector mask as an expression: ``clip in [...]`` (or ``not in``) when it keeps whole clips, else
        ``pose in [...]``. Raises ValueError for a mask of single poses too long to spell out."""
        pose_mask = vec_mask.reshape(-1, self.views).any(axis=1)
        kept = np.unique(self.clip_of_pose[pose_mask])
        whole = np.isin(self.clip_of_pose, kept)
        if np.array_equal(whole, pose_mask):
            dropped = np.setdiff1d(np.unique(self.clip_of_pose), kept)
            if len(dropped) < len(kept):
                return f"clip not in {dropped.tolist()}"
            return f"clip in {kept.tolist()}"
        poses = np.flatnonzero(pose_mask)
        if len(poses) > EXPRESSION_IDS:
            raise ValueError(f"a filter of {len(poses)} single poses is too long for a Milvus expression")
        return f"pose in {poses.tolist()}"

    def search(self, queries: np.ndarray, k: int, vec_mask: np.ndarray | None = None, effort: float = 1.0,
               expr: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """See ``VectorIndex.search``: expr is used when given, else ``vec_mask`` spelled as an expression."""
        if expr is None and vec_mask is not None:
            expr = self.mask_expression(vec_mask)
        limit = min(k, MAX_TOPK)
        if vec_mask is not None and vec_mask.sum() < self.exact_fraction * self.ntotal:
            # as FAISS searches small subsets exactly: every IVF list (HNSW: a pool as large as the subset), else
            # a selective filter leaves the probed lists nearly empty
            effort = max(effort, self.nlist / max(1, self.nprobe) if self._kind == "ivf" else
                         min(MAX_TOPK, int(vec_mask.sum())) / max(1, self.ef_search))
        try:
            found = self.client.search(self.collection, data=np.asarray(queries, np.float32).tolist(), limit=limit,
                                       filter=expr or "", output_fields=[], timeout=self.timeout,
                                       search_params={"metric_type": "IP", "params": self._params(effort, limit)})
        except MilvusException as err:
            LOG.warning("Milvus search on %s failed: %s", self.collection, err.message)
            raise IndexUnavailableError("the vector database does not answer; retry later") from err
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, hits in enumerate(found):
            got = hits[:k]
            ids[row, : len(got)] = [h["id"] for h in got]
            scores[row, : len(got)] = [h["distance"] for h in got]
        return scores, ids

    def _fetch(self, ids: np.ndarray) -> np.ndarray:
        out = None
        for start in range(0, len(ids), GET_CHUNK):
            chunk = ids[start : start + GET_CHUNK]
            try:
                rows = self.client.get(self.collection, ids=chunk.tolist(), output_fields=["vector"],
                                       timeout=self.timeout)
            except MilvusException as err:
                raise IndexUnavailableError("the vector database does not answer; retry later") from err
            by_id = {int(r["id"]): r["vector"] for r in rows}
            if len(by_id) != len(set(chunk.tolist())):
                raise IndexUnavailableError(f"the vector database lacks {len(chunk) - len(by_id)} vectors of "
                                            f"{self.collection}")
            block = np.asarray([by_id[int(i)] for i in chunk], np.float32)
            out = block if out is None else np.concatenate([out, block])
        return out if out is not None else np.zeros((0, 0), np.float32)

    def vectors(self, ids: np.ndarray, cache: bool = True) -> np.ndarray:
        """(M, D) float32 vectors of the ids (M,) int64, read back from Milvus (through the subset cache)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        return self.subsets.get(ids, self._fetch) if cache else self._fetch(ids)

    def health(self) -> str | None:
        try:
            state = self.client.get_load_state(self.collection, timeout=self.timeout)
        except MilvusException as err:
            return f"Milvus does not answer ({err.message})"
        loaded = str(state.get("state", "")).lower()
        return None if "loaded" in loaded and "not" not in loaded else f"collection {self.collection}: {loaded}"

    def activate(self) -> None:
        """Point the serving alias at this bundle's collection (create it the first time)."""
        try:
            aliases = self.client.list_aliases(timeout=self.timeout).get("aliases", [])
            if self.alias in aliases:
                self.client.alter_alias(self.collection, self.alias, timeout=self.timeout)
            else:
                self.client.create_alias(self.collection, self.alias, timeout=self.timeout)
        except MilvusException as err:
            raise BundleError(f"Milvus alias {self.alias} cannot point at {self.collection}: {err.message}") from err
