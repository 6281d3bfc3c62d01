"""The bundle side of a library change (``index_builder.bundle.library_update``): the bundle read into memory
(its poses, metadata, kept sources and vectors), where the new version goes and what it is called, and the new
version written beside the old one, verified before it is renamed into place."""

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
from index_builder.bundle.library_index import add_vectors, measure_recall, read_vectors
from index_builder.bundle.milvus_collection import MilvusTarget, publish
from index_builder.bundle.milvus_collection import read_vectors as read_collection
from index_builder.bundle.writer import code_version, random_views, run_encoder, write_bundle_sources
from index_builder.errors import ArtifactError, ConfigError
from model.pose.joint_formulas import FORMULAS_VERSION
from model.runtime.motion_sources import ClipSources, SourceStore
from model.runtime.onnx_sessions import cpu_session

RECALL_QUERIES = 1000
RECALL_SEED = 11
REVISION = re.compile(r"\+lib(\d+)$")
COPIED = (*(g.filename for g in fmt.GRAPHS.values()), fmt.VIEW_ROTATIONS, *fmt.BLAZEPOSE)


@dataclass
class BundleLibrary:
    """A bundle's library in memory: poses (N, 17, 3) float32 mm root-relative, world frame; the arrays of
    metadata.npz; the clips' kept sources (compressed, copied as they are)."""

    poses: np.ndarray
    metadata: dict[str, np.ndarray]
    sources: ClipSources


def vectors_index(verified: fmt.VerifiedBundle, milvus: MilvusTarget | None) -> faiss.Index:
    """The bundle's FAISS index; for a bundle whose vectors are in Milvus, an exact in-memory index holding them
    (read back from its collection at ``milvus``), which ``write_changed_bundle`` turns into the new version's
    collection."""
    info = verified.manifest.index
    if info.backend is None:
        return verified.index
    if milvus is None:
        raise ConfigError(f"{verified.path}: its vectors are in Milvus collection {info.backend.collection} (written "
                          f"to {info.backend.uri}): give --milvus-uri")
    index = faiss.IndexFlatIP(verified.manifest.embedding.dim)
    add_vectors(index, read_collection(milvus, info.backend.collection, info.ntotal, index.d))
    return index


def _load(bundle: Path) -> tuple[fmt.VerifiedBundle, BundleLibrary]:
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
    return verified, BundleLibrary(verified.poses, verified.metadata, sources)


def open_bundle(bundle: Path, out: Path | None) -> tuple[fmt.VerifiedBundle, BundleLibrary, Path]:
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


def write_changed_bundle(bundle: Path, out: Path, verified: fmt.VerifiedBundle, library: BundleLibrary,
                         index: faiss.Index, history: fmt.IndexHistory, licence: str, started: float,
                         fps: list[float], milvus: MilvusTarget | None = None) -> tuple[fmt.Manifest, float]:
    """Write the changed library as a new bundle at ``out`` (verified before it is renamed into place); ``fps``:
    the indexed frame rates (a bundle built with ``--fps`` indexes its clips below their own rates).

    milvus: the new version's vectors go into a Milvus collection of their own there (``index`` is then an exact
    index of them, see ``vectors_index``), the old version's collection stays as it was."""
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


def index_history(manifest: fmt.Manifest) -> fmt.IndexHistory:
    """The bundle's history; a bundle built before histories counts its vectors as trained."""
    return manifest.index.history or fmt.IndexHistory(trained_vectors=manifest.index.ntotal,
                                                      recall_at_10=manifest.index.operating_point.recall_at_10)
