"""Change a bundle's library without retraining: add the clips of a pose database, remove clips by name.

Both write a new bundle beside the old one (atomically, verified before it is renamed into place) with the same
graphs and the same trained index lists:
- add: the new poses are embedded by the bundle's own pose3d encoder under its own virtual views
  (``bundle.embed_poses``) and appended; vector ids continue (``pose * views + view``), so every existing id and
  vector is unchanged.
- remove: compaction. The live vectors are read back from the index (IVF bundles keep a direct map), the index is
  emptied keeping its trained quantizer, and the live vectors are added again in their order (an HNSW graph
  cannot drop vectors: it is rebuilt from the live ones); poses, metadata and
  sources drop the removed clips. Result ids shown to users (``<clip>#<frame>``) are data, so they stay stable.

IVF lists keep the centroids k-means found at build time; after each change recall@10 at the stored nprobe (HNSW:
efSearch) is
measured on independent queries (random cameras with detector noise over the library's poses) and kept in the
manifest's ``index.history``. ``retrain_reasons`` says when a rebuild (``unihpr-build index``) is due.
"""

from __future__ import annotations

import platform
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

import model.runtime.bundle_format as fmt
from index_builder.atomic_files import atomic_directory
from index_builder.bundle.indexing import (
    ADD_CHUNK,
    FLAT_LIMIT,
    TARGET_RECALL,
    exact_top_k,
    recall_at_effort,
    search_kind,
)
from index_builder.bundle.milvus_collection import MilvusTarget, publish
from index_builder.bundle.milvus_collection import read_vectors as read_collection
from index_builder.bundle.writer import (
    code_version,
    embed_poses,
    random_views,
    run_encoder,
    write_bundle_sources,
)
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ArtifactError, ConfigError
from model.nn.onnx_export import cpu_session
from model.pose.joint_formulas import FORMULAS_VERSION
from model.pose.normalization import root_relative
from model.runtime.motion_sources import ClipSources, SourceStore

RECALL_QUERIES = 1000
RECALL_SEED = 11
DRIFT_LIMIT = 0.5  # (added + removed) / trained vectors above this: the IVF lists no longer describe the library
REVISION = re.compile(r"\+lib(\d+)$")
COPIED = (*(g.filename for g in fmt.GRAPHS.values()), fmt.VIEW_ROTATIONS, *fmt.BLAZEPOSE)
RECONSTRUCT_CHUNK = 262_144


class LibraryError(ConfigError):
    """A clip to add is already in the bundle, or a clip to remove is not."""


@dataclass(frozen=True)
class LibraryChange:
    """What ``add_clips`` / ``remove_clips`` wrote: the new bundle, its manifest, the clips and vectors changed,
    recall@10 after the change, the reasons to retrain (empty: none) and the seconds it took."""

    out: Path
    manifest: fmt.Manifest
    clips: list[str]
    vectors: int
    recall_at_10: float
    retrain: list[str]
    seconds: float


# ---------------------------------------------------------------------------------------------------- index


def read_vectors(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """The stored vectors of ``ids`` (M,) int64 -> (M, D) float32 (Flat, HNSW, or IVF with a direct map)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
        ivf.make_direct_map()
    out = np.empty((len(ids), index.d), dtype=np.float32)
    for start in range(0, len(ids), RECONSTRUCT_CHUNK):
        out[start : start + RECONSTRUCT_CHUNK] = index.reconstruct_batch(ids[start : start + RECONSTRUCT_CHUNK])
    return out


def add_vectors(index: faiss.Index, vectors: np.ndarray) -> None:
    """Append (M, D) float32 vectors; they get the ids ntotal, ntotal + 1, ..."""
    for start in range(0, len(vectors), ADD_CHUNK):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK]))


def compact(index: faiss.Index, keep: np.ndarray) -> None:
    """Keep the vectors where ``keep`` (ntotal,) bool is true, renumbered 0.. in their order; IVF lists keep their
    trained centroids (each vector goes back to the list it was in); an HNSW graph is rebuilt over the kept
    vectors."""
    assert keep.shape == (index.ntotal,), (keep.shape, index.ntotal)
    live = read_vectors(index, np.flatnonzero(keep).astype(np.int64))
    index.reset()
    add_vectors(index, live)


def measure_recall(index: faiss.Index, nprobe: int, queries: np.ndarray, k: int = 10, ef_search: int = 0) -> float:
    """recall@k of ``index`` at ``nprobe`` (IVF) or ``ef_search`` (HNSW) against exact search over its own
    vectors; 1.0 for exact indexes.

    queries: (Q, D) float32 query embeddings.
    """
    if search_kind(index) == "flat":
        return 1.0
    vectors = read_vectors(index, np.arange(index.ntotal, dtype=np.int64))
    truth = exact_top_k(vectors, queries, k, progress=False)
    del vectors
    return recall_at_effort(index, queries, truth, nprobe, ef_search)


def retrain_reasons(info: fmt.IndexInfo) -> list[str]:
    """Why the index should be rebuilt with ``unihpr-build index``: for IVF and HNSW, recall@10 at the stored
    nprobe / efSearch below ``TARGET_RECALL``; for IVF, (added + removed) / trained vectors above
    ``DRIFT_LIMIT``; for Flat, more vectors than ``FLAT_LIMIT`` (an approximate index would serve them faster)."""
    history, reasons = info.history, []
    if info.type == "flat":
        if info.ntotal >= FLAT_LIMIT:
            reasons.append(f"{info.ntotal} vectors in an exact index (approximate from {FLAT_LIMIT})")
        return reasons
    if history is None:
        return reasons
    if history.recall_at_10 is not None and history.recall_at_10 < TARGET_RECALL:
        point = info.operating_point
        effort = f"efSearch {point.ef_search}" if info.type == "hnsw" else f"nprobe {point.nprobe}"
        reasons.append(f"recall@10 {history.recall_at_10:.3f} < {TARGET_RECALL} at {effort}")
    if info.type == "hnsw":  # no trained lists to drift from
        return reasons
    drift = (history.added_vectors + history.removed_vectors) / max(1, history.trained_vectors)
    if drift > DRIFT_LIMIT:
        reasons.append(f"{drift:.0%} of the {history.trained_vectors} trained vectors changed (limit "
                       f"{DRIFT_LIMIT:.0%})")
    return reasons


# ---------------------------------------------------------------------------------------------------- bundle


@dataclass
class _Library:
    """A bundle's library in memory: poses (N, 17, 3) float32 mm root-relative, world frame; the arrays of
    metadata.npz; the clips' kept sources (compressed, copied as they are)."""

    poses: np.ndarray
    metadata: dict[str, np.ndarray]
    sources: ClipSources


def _vectors_index(verified: fmt.VerifiedBundle, milvus: MilvusTarget | None) -> faiss.Index:
    """The bundle's FAISS index; for a bundle whose vectors are in Milvus, an exact in-memory index holding them
    (read back from its collection at ``milvus``), which ``_write`` turns into the new version's collection."""
    info = verified.manifest.index
    if info.backend is None:
        return verified.index
    if milvus is None:
        raise ConfigError(f"{verified.path}: its vectors are in Milvus collection {info.backend.collection} (written "
                          f"to {info.backend.uri}): give --milvus-uri")
    index = faiss.IndexFlatIP(verified.manifest.embedding.dim)
    add_vectors(index, read_collection(milvus, info.backend.collection, info.ntotal, index.d))
    return index


def _load(bundle: Path) -> tuple[fmt.VerifiedBundle, _Library]:
    try:
        verified = fmt.verify_bundle(bundle, load_models=False)
    except fmt.BundleError as err:
        raise ArtifactError(str(err)) from err
    manifest = verified.manifest
    if manifest.joints.formulas_version != FORMULAS_VERSION:
        raise ArtifactError(f"{bundle}: made with joint formulas v{manifest.joints.formulas_version}, this code has "
                            f"v{FORMULAS_VERSION}: rebuild it with `unihpr-build index`")
    unknown = sorted(set(verified.metadata) - set(fmt.METADATA_KEYS))
    if unknown:
        raise ArtifactError(f"{bundle / fmt.METADATA}: has {unknown}, which this builder does not know how to "
                            "carry over; rebuild it with `unihpr-build index`")
    names = verified.metadata["clip_name"].tolist()
    sources = ClipSources.none(len(names))
    if manifest.sources is not None:
        store = SourceStore(bundle / manifest.sources.file)
        by_name = dict(zip(store.names, range(len(store.names))))
        rows = [by_name.get(name) for name in names]
        sources = ClipSources.from_blobs([str(store.sources.format[r]) if r is not None else "" for r in rows],
                                         [store.sources.blob(r) if r is not None else None for r in rows])
    return verified, _Library(verified.poses, verified.metadata, sources)


def _open(bundle: Path, out: Path | None) -> tuple[fmt.VerifiedBundle, _Library, Path]:
    """The bundle to change, its library, and where the new version goes."""
    verified, library = _load(bundle)
    return verified, library, _output(bundle, verified.manifest, None if out is None else Path(out))


def _revision(model_version: str) -> tuple[str, int]:
    """'unihpr-default-2026+lib3' -> ('unihpr-default-2026', 3)."""
    found = REVISION.search(model_version)
    return (model_version[: found.start()], int(found.group(1))) if found else (model_version, 0)


def default_out(bundle: Path, manifest: fmt.Manifest) -> Path:
    """``<bundle name without -libN>-lib<N + 1>`` beside ``bundle``: inside the same bundles root, so
    ``/admin/reload {"bundle": "<that name>"}`` finds it."""
    base = re.sub(r"-lib\d+$", "", bundle.resolve().name)
    return bundle.resolve().parent / f"{base}-lib{_revision(manifest.model_version)[1] + 1}"


def _output(bundle: Path, manifest: fmt.Manifest, out: Path | None) -> Path:
    """``out``, or the default one when it is free; never ``bundle`` itself."""
    if out is None:
        out = default_out(bundle, manifest)
        if out.exists():
            raise ConfigError(f"{out} exists (made from {bundle} before?): give --out")
    if out.resolve() == bundle.resolve():
        raise ConfigError(f"{out}: the new bundle must not replace the one it is made from (a service may be "
                          "serving it); give another --out")
    return out


def _queries(folder: Path, poses: np.ndarray) -> np.ndarray:
    """(Q, D) pose2d embeddings of random views of the library's poses (the build's kind of query)."""
    views = random_views(poses, RECALL_QUERIES, RECALL_SEED)
    return run_encoder(cpu_session(folder / fmt.ENCODERS["pose2d"], threads=2), views.pose2d)


def _write(bundle: Path, out: Path, verified: fmt.VerifiedBundle, library: _Library, index: faiss.Index,
           history: fmt.IndexHistory, licence: str, started: float,
           fps: list[float], milvus: MilvusTarget | None = None) -> tuple[fmt.Manifest, float]:
    """Write the changed library as a new bundle at ``out`` (verified before it is renamed into place); ``fps``:
    the indexed frame rates (a bundle built with ``--fps`` indexes its clips below their own rates).

    milvus: the new version's vectors go into a Milvus collection of their own there (``index`` is then an exact
    index of them, see ``_vectors_index``), the old version's collection stays as it was."""
    old = verified.manifest
    meta = library.metadata
    base, revision = _revision(old.model_version)
    with atomic_directory(out) as tmp:
        for name in COPIED:
            shutil.copyfile(bundle / name, tmp / name)
        point = old.index.operating_point
        queries = _queries(tmp, library.poses)
        backend = None
        if milvus is None:
            recall = measure_recall(index, point.nprobe, queries, ef_search=point.ef_search)
            faiss.write_index(index, str(tmp / fmt.INDEX))
        else:
            vectors = read_vectors(index, np.arange(index.ntotal, dtype=np.int64))
            backend = publish(milvus, f"{base}+lib{revision + 1}", vectors, old.database.views, meta,
                              old.index.model_copy(update={"ntotal": int(index.ntotal)}), queries)
            recall = backend.recall_at_10
            del vectors
        np.save(tmp / fmt.POSES, library.poses)
        np.savez(tmp / fmt.METADATA, **meta)
        sources = write_bundle_sources(tmp, meta["clip_name"].tolist(), library.sources)
        history = history.model_copy(update={"recall_at_10": recall})
        clip_sources = sorted(set(meta["clip_source"].tolist()))
        manifest = old.model_copy(update={
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "model_version": f"{base}+lib{revision + 1}",
            "builder": fmt.BuilderInfo(python=platform.python_version(),
                                       build_seconds=round(time.perf_counter() - started, 1)),
            "index": old.index.model_copy(update={"ntotal": int(index.ntotal), "history": history,
                                                  "backend": backend}),
            "database": old.database.model_copy(update={
                "poses": len(library.poses), "clips": len(meta["clip_name"]),
                "source": ", ".join(clip_sources),
                "fps": fps,
                "contents": sorted(set(meta["clip_content"].tolist())),
                "styles": sorted(set(meta["clip_style"].tolist()))}),
            "licence": licence,
            "sources": sources,
        })
        manifest = manifest.model_copy(update={"files": fmt.file_entries(tmp, fmt.required_files(manifest))})
        fmt.write_manifest(tmp, manifest)
        try:
            fmt.verify_bundle(tmp)
        except fmt.BundleError as err:
            raise ArtifactError(f"{out}: the new bundle fails verification, nothing written: {err}") from err
    return manifest, recall


def _history(manifest: fmt.Manifest) -> fmt.IndexHistory:
    """The bundle's history; a bundle built before histories counts its vectors as trained."""
    return manifest.index.history or fmt.IndexHistory(trained_vectors=manifest.index.ntotal,
                                                      recall_at_10=manifest.index.operating_point.recall_at_10)


def add_clips(bundle: Path, db: MotionDatabase, out: Path | None = None, progress: bool = True,
              milvus: MilvusTarget | None = None) -> LibraryChange:
    """A new bundle at ``out`` (default ``default_out``) with every clip of ``db`` appended.

    milvus: the server of a bundle whose vectors are in Milvus (the new version gets a collection of its own).
    db: poses (N, 17, 3) float32 mm, world frame, Y up (the frame the bundle's database is in).
    Raises LibraryError when a clip name of ``db`` is already in the bundle.
    """
    started = time.perf_counter()
    bundle = Path(bundle)
    verified, library, out = _open(bundle, out)
    old, meta = verified.manifest, library.metadata
    names = db.clips.name.tolist()
    clash = sorted(set(names) & set(meta["clip_name"].tolist()))
    if clash:
        raise LibraryError(f"{bundle}: already has clip(s) {', '.join(clash[:5])}"
                           f"{f' and {len(clash) - 5} more' if len(clash) > 5 else ''}: remove them first "
                           "(`unihpr-build remove`) to replace them")
    if len(db) == 0:
        raise LibraryError(f"{bundle}: the database to add has no poses")
    poses = root_relative(db.poses.astype(np.float64))  # (N, 17, 3) mm, world frame
    session = cpu_session(bundle / fmt.ENCODERS["pose3d"], threads=2)
    vectors = embed_poses(session, poses, verified.rotations, desc="embedding new poses" if progress else None)
    index = _vectors_index(verified, milvus)
    add_vectors(index, vectors)

    clips_before = len(meta["clip_name"])
    library.poses = np.concatenate([library.poses, poses.astype(np.float32)])
    library.metadata = {
        "clip": np.concatenate([meta["clip"], db.clip.astype(meta["clip"].dtype) + clips_before]),
        "frame": np.concatenate([meta["frame"], db.frame.astype(meta["frame"].dtype)]),
        "clip_name": np.concatenate([meta["clip_name"], db.clips.name]),
        "clip_dataset": np.concatenate([meta["clip_dataset"], db.clips.dataset]),
        "clip_content": np.concatenate([meta["clip_content"], db.clips.content]),
        "clip_style": np.concatenate([meta["clip_style"], db.clips.style]),
        "clip_source": np.concatenate([meta["clip_source"], np.full(len(db.clips), db.source)]),
        "clip_fps": np.concatenate([meta["clip_fps"], db.clips.fps.astype(meta["clip_fps"].dtype)]),
    }
    library.sources = library.sources.concat(db.sources or ClipSources.none(len(db.clips)))
    history = _history(old)
    history = history.model_copy(update={"added_vectors": history.added_vectors + len(vectors)})
    licence = old.licence if db.licence in old.licence else f"{old.licence}\n\n{db.licence}"
    fps = sorted(set(old.database.fps) | {float(f) for f in db.clips.fps})  # new clips come at their own rate
    manifest, recall = _write(bundle, out, verified, library, index, history, licence, started, fps,
                              _target(old, milvus))
    return LibraryChange(out, manifest, names, len(vectors), recall, retrain_reasons(manifest.index),
                         time.perf_counter() - started)


def remove_clips(bundle: Path, clips: list[str], out: Path | None = None,
                 milvus: MilvusTarget | None = None) -> LibraryChange:
    """A new bundle at ``out`` (default ``default_out``) without the named clips; the rest keep their order.

    milvus: the server of a bundle whose vectors are in Milvus (the new version gets a collection of its own).
    Raises LibraryError naming clips the bundle does not have, or when nothing would be left.
    """
    started = time.perf_counter()
    bundle = Path(bundle)
    verified, library, out = _open(bundle, out)
    old, meta = verified.manifest, library.metadata
    names = meta["clip_name"].tolist()
    unknown = sorted(set(clips) - set(names))
    if unknown:
        raise LibraryError(f"{bundle}: has no clip(s) {', '.join(unknown[:5])}"
                           f"{f' and {len(unknown) - 5} more' if len(unknown) > 5 else ''}")
    drop_clip = np.isin(meta["clip_name"], list(clips))
    keep_pose = ~drop_clip[meta["clip"]]
    if not keep_pose.any():
        raise LibraryError(f"{bundle}: removing {len(set(clips))} clip(s) would leave no poses")
    views = old.database.views
    index = _vectors_index(verified, milvus)
    compact(index, np.repeat(keep_pose, views))

    new_clip = (np.cumsum(~drop_clip) - 1).astype(meta["clip"].dtype)
    library.poses = library.poses[keep_pose]
    library.metadata = {"clip": new_clip[meta["clip"][keep_pose]], "frame": meta["frame"][keep_pose],
                        **{k: v[~drop_clip] for k, v in meta.items() if k.startswith("clip_")}}
    library.sources = library.sources.select(~drop_clip)
    removed = int((~keep_pose).sum()) * views
    history = _history(old)
    history = history.model_copy(update={"removed_vectors": history.removed_vectors + removed})
    manifest, recall = _write(bundle, out, verified, library, index, history, old.licence, started,
                              old.database.fps, _target(old, milvus))
    return LibraryChange(out, manifest, sorted(set(clips)), removed, recall, retrain_reasons(manifest.index),
                         time.perf_counter() - started)


def _target(manifest: fmt.Manifest, milvus: MilvusTarget | None) -> MilvusTarget | None:
    """Where the new version's vectors go: Milvus when the bundle's are there, else index.faiss."""
    return milvus if manifest.index.backend is not None else None


def copy_to_milvus(bundle: Path, milvus: MilvusTarget, out: Path | None = None) -> LibraryChange:
    """A new version of a FAISS bundle with the same library whose vectors are in a Milvus collection (read from
    its index.faiss, indexed by the same plan and operating point) instead of index.faiss."""
    started = time.perf_counter()
    bundle = Path(bundle)
    verified, library, out = _open(bundle, out)
    old = verified.manifest
    if old.index.backend is not None:
        raise ConfigError(f"{bundle}: its vectors are already in Milvus collection {old.index.backend.collection}")
    manifest, recall = _write(bundle, out, verified, library, verified.index, _history(old), old.licence, started,
                              old.database.fps, milvus)
    return LibraryChange(out, manifest, [], int(old.index.ntotal), recall, retrain_reasons(manifest.index),
                         time.perf_counter() - started)
