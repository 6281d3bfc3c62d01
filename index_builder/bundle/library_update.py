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

Parts: ``library_bundle`` reads the bundle and writes the new version, ``library_index`` changes the index and
measures it; this module says what changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import model.runtime.bundle_format as fmt
from index_builder.bundle.library_bundle import index_history, open_bundle, vectors_index, write_changed_bundle
from index_builder.bundle.library_index import add_vectors, compact, retrain_reasons
from index_builder.bundle.milvus_collection import MilvusTarget
from index_builder.bundle.writer import embed_poses
from index_builder.datasets.motion_database import MotionDatabase
from index_builder.errors import ConfigError
from model.pose.skeleton import root_centred
from model.runtime.motion_sources import ClipSources
from model.runtime.onnx_sessions import cpu_session


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


def add_clips(bundle: Path, db: MotionDatabase, out: Path | None = None, progress: bool = True,
              milvus: MilvusTarget | None = None) -> LibraryChange:
    """A new bundle at ``out`` (default ``default_out``) with every clip of ``db`` appended.

    milvus: the server of a bundle whose vectors are in Milvus (the new version gets a collection of its own).
    db: poses (N, 17, 3) float32 mm, world frame, Y up (the frame the bundle's database is in).
    Raises LibraryError when a clip name of ``db`` is already in the bundle.
    """
    started = time.perf_counter()
    bundle = Path(bundle)
    verified, library, out = open_bundle(bundle, out)
    old, meta = verified.manifest, library.metadata
    names = db.clips.name.tolist()
    clash = sorted(set(names) & set(meta["clip_name"].tolist()))
    if clash:
        raise LibraryError(f"{bundle}: already has clip(s) {', '.join(clash[:5])}"
                           f"{f' and {len(clash) - 5} more' if len(clash) > 5 else ''}: remove them first "
                           "(`unihpr-build remove`) to replace them")
    if len(db) == 0:
        raise LibraryError(f"{bundle}: the database to add has no poses")
    poses = root_centred(db.poses.astype(np.float64))  # (N, 17, 3) mm, world frame
    session = cpu_session(bundle / fmt.ENCODERS["pose3d"], threads=2)
    vectors = embed_poses(session, poses, verified.rotations, desc="embedding new poses" if progress else None)
    index = vectors_index(verified, milvus)
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
    history = index_history(old)
    history = history.model_copy(update={"added_vectors": history.added_vectors + len(vectors)})
    licence = old.licence if db.licence in old.licence else f"{old.licence}\n\n{db.licence}"
    fps = sorted(set(old.database.fps) | {float(f) for f in db.clips.fps})  # new clips come at their own rate
    manifest, recall = write_changed_bundle(bundle, out, verified, library, index, history, licence, started, fps,
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
    verified, library, out = open_bundle(bundle, out)
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
    index = vectors_index(verified, milvus)
    compact(index, np.repeat(keep_pose, views))

    new_clip = (np.cumsum(~drop_clip) - 1).astype(meta["clip"].dtype)
    library.poses = library.poses[keep_pose]
    library.metadata = {"clip": new_clip[meta["clip"][keep_pose]], "frame": meta["frame"][keep_pose],
                        **{k: v[~drop_clip] for k, v in meta.items() if k.startswith("clip_")}}
    library.sources = library.sources.select(~drop_clip)
    removed = int((~keep_pose).sum()) * views
    history = index_history(old)
    history = history.model_copy(update={"removed_vectors": history.removed_vectors + removed})
    manifest, recall = write_changed_bundle(bundle, out, verified, library, index, history, old.licence, started,
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
    verified, library, out = open_bundle(bundle, out)
    old = verified.manifest
    if old.index.backend is not None:
        raise ConfigError(f"{bundle}: its vectors are already in Milvus collection {old.index.backend.collection}")
    manifest, recall = write_changed_bundle(bundle, out, verified, library, verified.index, index_history(old),
                                            old.licence, started, old.database.fps, milvus)
    return LibraryChange(out, manifest, [], int(old.index.ntotal), recall, retrain_reasons(manifest.index),
                         time.perf_counter() - started)
