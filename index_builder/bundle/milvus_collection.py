"""The builder's side of the Milvus backend: write a bundle version's vectors into a collection of their own, read
them back, measure its recall.

One collection per bundle version (``collection_name``: the model version, which ``unihpr-build add`` / ``remove``
bump), never changed after it is written, so a service still serving the previous version keeps its ids. Schema:
``id`` INT64 primary key = vector id (pose * views + view, as in index.faiss), ``vector`` FLOAT_VECTOR (D,) L2
normalised, metric IP; scalar fields ``pose``, ``view``, ``clip``, ``frame`` and the clip's ``clip_name``,
``content``, ``style``, ``dataset``, ``source`` (labels normalised as the service's filters normalise them), each
with an INVERTED index so the filters of SPEC section 8 run as boolean expressions inside the search.

The vector index comes from the same plan as FAISS (``milvus_index``): Flat -> FLAT, IVF (float16 or float32 codes
in FAISS) -> IVF_FLAT with the same nlist, HNSW -> HNSW with the same M and efConstruction; the search parameters
start at the FAISS operating point (nprobe, efSearch) and rise until recall@10 >= 0.95 in Milvus itself (its k-means
or graph differs from FAISS's). Milvus has no float16 scalar quantiser on IVF, so an IVF
collection stores float32 (twice FAISS's ivf-fp16 bytes). Everything goes through ``pymilvus`` with a URI, so the
same code writes to Milvus Lite, Standalone or Distributed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import numpy as np

import model.runtime.bundle_format as fmt
from index_builder.errors import ArtifactError, ConfigError
from model.runtime.labels import LABEL_FIELDS, normalise_label

LOG = logging.getLogger(__name__)

INSERT_ROWS = 8192  # rows per insert: 8192 x 128 float32 = 4 MiB (4.7 MB a message), below Milvus's 256 MiB limit
READ_ROWS = 8192  # rows per query when vectors are read back
MAX_TOPK = 16_384  # Milvus's largest limit (topk) of one search
VARCHAR_LENGTH = 512
SCALAR_FIELDS = ("pose", "view", "clip", "frame", "clip_name", *LABEL_FIELDS)
TIMEOUT_S = 60.0


def public_uri(uri: str) -> str:
    """``uri`` without user name and password (what may be logged and written into a manifest)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class MilvusTarget:
    """A Milvus server: uri (http://host:19530 for Lite, Standalone or Distributed), token ("user:password" or an
    API key; None without authentication)."""

    uri: str
    token: str | None = None

    def __post_init__(self):
        if urlsplit(self.uri).scheme not in ("http", "https", "tcp", "grpc"):
            raise ConfigError(f"--milvus-uri {public_uri(self.uri)!r}: expected http://HOST:PORT (or https://)")

    def client(self):
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        try:
            return MilvusClient(uri=self.uri, token=self.token or "", timeout=TIMEOUT_S)
        except MilvusException as err:
            raise ArtifactError(f"cannot reach Milvus at {public_uri(self.uri)}: {err.message}") from err


def collection_name(model_version: str) -> str:
    """The collection of a bundle version: letters, digits and underscores, starting with "unihpr"
    ("unihpr-default-20261126005127+lib1" -> "unihpr_default_20261126005127_lib1")."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", model_version)[:240]
    return name if name.startswith("unihpr") else f"unihpr_{name}"


def milvus_index(info: fmt.IndexInfo) -> tuple[str, dict[str, int], dict[str, int]]:
    """(index type, build parameters, search parameters) of the FAISS plan and operating point in ``info``."""
    point = info.operating_point
    if info.type == "ivf":
        return "IVF_FLAT", {"nlist": int(info.params["nlist"])}, {"nprobe": int(point.nprobe)}
    if info.type == "hnsw":
        return ("HNSW", {"M": int(info.params["hnsw_m"]), "efConstruction": int(info.params["ef_construction"])},
                {"ef": int(point.ef_search)})
    return "FLAT", {}, {}


def _schema(client, dim: int):
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True, description="vector id = pose * views + view")
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    for name in ("pose", "view", "clip", "frame"):
        schema.add_field(name, DataType.INT64)
    for name in ("clip_name", *LABEL_FIELDS):
        schema.add_field(name, DataType.VARCHAR, max_length=VARCHAR_LENGTH)
    return schema


def write_collection(target: MilvusTarget, name: str, vectors: np.ndarray, views: int,
                     metadata: dict[str, np.ndarray], info: fmt.IndexInfo) -> None:
    """Create collection ``name`` holding ``vectors`` (N * V, D) float32, L2-normalised (row = vector id) with the
    scalar fields of ``metadata`` (metadata.npz's arrays), build its vector index from ``info`` and load it.

    Raises ConfigError when the collection exists (a bundle version is written once), ArtifactError when Milvus
    fails.
    """
    from pymilvus.exceptions import MilvusException

    assert vectors.ndim == 2 and vectors.dtype == np.float32 and len(vectors) % views == 0, vectors.shape
    client = target.client()
    try:
        if client.has_collection(name):
            raise ConfigError(f"Milvus collection {name} exists at {public_uri(target.uri)} (this bundle version was "
                              "written before): drop it or build another version")
        index_type, build, _ = milvus_index(info)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type=index_type, metric_type="IP", params=build)
        for field in ("clip", "clip_name", *LABEL_FIELDS):
            params.add_index(field_name=field, index_type="INVERTED")
        client.create_collection(name, schema=_schema(client, vectors.shape[1]), index_params=params)
        clip = metadata["clip"].astype(np.int64)
        frame = metadata["frame"].astype(np.int64)
        names = [str(x) for x in metadata["clip_name"]]
        labels = {f: [normalise_label(str(x)) for x in metadata[f"clip_{f}"]] for f in LABEL_FIELDS}
        for start in range(0, len(vectors), INSERT_ROWS):
            ids = np.arange(start, min(len(vectors), start + INSERT_ROWS))
            pose = ids // views
            rows = [{"id": int(i), "vector": vectors[i], "pose": int(p), "view": int(i % views),
                     "clip": int(clip[p]), "frame": int(frame[p]), "clip_name": names[clip[p]],
                     **{f: labels[f][clip[p]] for f in LABEL_FIELDS}}
                    for i, p in zip(ids.tolist(), pose.tolist())]
            client.insert(name, rows)
        client.flush(name)
        settle(client, name)
        client.load_collection(name)
        count = collection_count(client, name)
        if count != len(vectors):
            raise ArtifactError(f"Milvus collection {name}: {count} vectors after writing {len(vectors)}")
    except MilvusException as err:
        raise ArtifactError(f"Milvus at {public_uri(target.uri)}: writing {name} failed: {err.message}") from err
    finally:
        client.close()
    LOG.info("Milvus collection %s: %d vectors, %s %s", name, len(vectors), index_type, build)


def settle(client, name: str, timeout: float = 600.0) -> None:
    """Merge the collection's segments and wait until its vector index covers every row, so that the recall
    measured next is the recall served (Milvus builds per-segment indexes in the background, and a search before
    they exist scans rows exactly)."""
    import time

    deadline = time.monotonic() + timeout
    job = client.compact(name)
    while str(client.get_compaction_state(job)).lower() not in ("completed", "compactionstate.completed"):
        if time.monotonic() > deadline:
            raise ArtifactError(f"Milvus collection {name}: compaction unfinished after {timeout:.0f} s")
        time.sleep(0.5)
    while True:
        info = client.describe_index(name, "vector")
        if int(info.get("pending_index_rows", 0)) == 0 and str(info.get("state", "Finished")) == "Finished":
            return
        if time.monotonic() > deadline:
            raise ArtifactError(f"Milvus collection {name}: index unfinished after {timeout:.0f} s")
        time.sleep(0.5)


def collection_count(client, name: str) -> int:
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def read_vectors(target: MilvusTarget, name: str, ntotal: int, dim: int) -> np.ndarray:
    """All (ntotal, D) float32 vectors of collection ``name`` in id order (ids 0..ntotal-1)."""
    from pymilvus.exceptions import MilvusException

    out = np.full((ntotal, dim), np.nan, np.float32)
    client = target.client()
    try:
        client.load_collection(name)
        for start in range(0, ntotal, READ_ROWS):
            rows = client.query(name, filter=f"id >= {start} and id < {min(ntotal, start + READ_ROWS)}",
                                output_fields=["id", "vector"])
            for row in rows:
                out[row["id"]] = row["vector"]
    except MilvusException as err:
        raise ArtifactError(f"Milvus at {public_uri(target.uri)}: reading {name} failed: {err.message}") from err
    finally:
        client.close()
    if np.isnan(out[:, 0]).any():
        raise ArtifactError(f"Milvus collection {name}: {int(np.isnan(out[:, 0]).sum())} of {ntotal} vectors missing")
    return out


def search_collection(client, name: str, queries: np.ndarray, k: int, search_params: dict[str, int],
                      expr: str = "") -> np.ndarray:
    """(Q, k) int64 vector ids, best first, -1 where fewer were found."""
    found = client.search(name, data=[q.tolist() for q in queries], limit=min(k, MAX_TOPK), filter=expr,
                          search_params={"metric_type": "IP", "params": search_params})
    ids = np.full((len(queries), k), -1, np.int64)
    for row, hits in enumerate(found):
        got = [h["id"] for h in hits][:k]
        ids[row, : len(got)] = got
    return ids


def measure_recall(target: MilvusTarget, name: str, vectors: np.ndarray, queries: np.ndarray,
                   search_params: dict[str, int], k: int = 10) -> float:
    """recall@k of the collection at ``search_params`` against exact search over ``vectors`` (its own)."""
    from index_builder.bundle.indexing import exact_top_k, recall_at_k

    truth = exact_top_k(vectors, queries, k, progress=False)
    client = target.client()
    try:
        return recall_at_k(search_collection(client, name, queries, k, search_params), truth)
    finally:
        client.close()


def operating_point(target: MilvusTarget, name: str, vectors: np.ndarray, queries: np.ndarray, index_type: str,
                    build: dict[str, int], search: dict[str, int]) -> tuple[dict[str, int], float]:
    """Milvus trains its own IVF lists (HNSW graph): from the FAISS operating point ``search``, the next nprobe
    (ef) steps of ``index_builder.bundle.indexing`` until recall@10 reaches the target; (search params, recall@10)."""
    from index_builder.bundle.indexing import EF_SEARCH_CANDIDATES, TARGET_RECALL, nprobe_candidates

    recall = measure_recall(target, name, vectors, queries, search)
    key, steps = (("nprobe", nprobe_candidates(build["nlist"])) if index_type == "IVF_FLAT" else
                  ("ef", list(EF_SEARCH_CANDIDATES)) if index_type == "HNSW" else (None, []))
    for effort in (s for s in steps if key and s > search[key]):
        if recall >= TARGET_RECALL:
            break
        search = {key: effort}
        recall = measure_recall(target, name, vectors, queries, search)
    return search, recall


def publish(target: MilvusTarget, model_version: str, vectors: np.ndarray, views: int,
            metadata: dict[str, np.ndarray], info: fmt.IndexInfo, queries: np.ndarray) -> fmt.MilvusInfo:
    """Write the collection of bundle version ``model_version`` and measure its recall@10 on ``queries`` (Q, D);
    returns the manifest's ``index.backend`` section."""
    name = collection_name(model_version)
    write_collection(target, name, vectors, views, metadata, info)
    index_type, build, search = milvus_index(info)
    search, recall = operating_point(target, name, vectors, queries, index_type, build, search)
    LOG.info("Milvus collection %s: recall@10 %.3f at %s", name, recall, search or "exact search")
    return fmt.MilvusInfo(collection=name, uri=public_uri(target.uri), index_type=index_type, index_params=build,
                          search_params=search, recall_at_10=round(recall, 4))
