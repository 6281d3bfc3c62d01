"""Load an artifact bundle into one immutable ``Bundle``: verified, cross-checked, ready to serve.

``load_bundle`` runs ``model.runtime.bundle_format.verify_bundle`` (manifest sidecar hash and fields, every file's
sha256 and size, array shapes, view rotations, the index's size, dimension and metric, every ONNX graph's shapes on
a probe batch, the published BlazePose files) and serves exactly what it loaded: the sessions, index and arrays are
read once. It adds what only the service relies on (h36m17 joint order) and the BlazePose pool. Any failure raises
``BundleError``; nothing is half-loaded.

A ``Bundle`` is never mutated after loading. The app holds one reference (``app.state.bundle``); a reload builds a
new bundle and swaps that reference, so a request that took the old one finishes on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.pose.skeleton import H36M17
from model.runtime.bundle_format import BundleError, Manifest, verify_bundle
from model.runtime.motion_sources import SourceStore
from model.runtime.onnx_sessions import session_options
from service.catalog import PoseCatalog
from service.config import Settings
from service.device import Device
from service.encoder import OnnxModels, onnx_slices
from service.images import DetectorPool
from service.index_backend import VectorIndex, open_index
from service.pose_search import Reranking

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    """Everything one bundle serves with.

    world_to_camera: (3, 3) rotation of the first virtual view, used for ``frame: world_yup`` 3D inputs.
    mm_per_unit: decoder3d outputs times this are mm. reranking: the manifest's geometric re-ranking and result
    confidence, None for bundles built without it (results then stay in cosine order, without confidence).
    """

    path: Path
    manifest: Manifest
    models: OnnxModels
    index: VectorIndex
    catalog: PoseCatalog
    detectors: DetectorPool
    world_to_camera: np.ndarray
    sources: SourceStore | None = None  # the clips' source motion, when the bundle keeps it
    reranking: Reranking | None = None
    loaded_at: float = field(default_factory=time.time)

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def dim(self) -> int:
        return self.manifest.embedding.dim

    @property
    def views(self) -> int:
        return self.manifest.database.views

    @property
    def mm_per_unit(self) -> float:
        return self.manifest.normalisation.mm_per_unit

    @property
    def licence(self) -> str:
        return self.manifest.licence


def load_bundle(path: Path, settings: Settings, device: Device,
                on_batch: Callable[[str, int, int], None] | None = None) -> Bundle:
    """Verify and load the bundle at ``path`` on ``device``; raises BundleError naming the file and the fault."""
    started = time.perf_counter()
    options = session_options(settings.ort_threads, errors_only=True)
    verified = verify_bundle(Path(path), session_options=options, providers=device.providers)
    path, manifest = verified.path, verified.manifest
    if manifest.joints.names != list(H36M17.names):
        raise BundleError(f"{path}: joint order {manifest.joints.names} is not h36m17", "joints.names")
    pose_index = open_index(verified, settings, device.faiss_gpu)
    models = OnnxModels(verified.sessions, len(manifest.joints.names), manifest.embedding.dim, settings.microbatch,
                        settings.microbatch_max_rows, on_batch, onnx_slices(settings.onnx_slices, device.onnx_on_gpu))
    catalog = PoseCatalog(verified.poses, verified.rotations, verified.metadata, manifest.database.view_azimuths_deg)
    try:
        detectors = DetectorPool(path / "pose_detection.tflite", path / "pose_landmark_full.tflite",
                                 settings.detector_instances, settings.detector_threads)
    except (ValueError, RuntimeError, OSError) as err:
        raise BundleError(f"{path}: BlazePose models do not load: {err}") from err
    sources = SourceStore(path / manifest.sources.file) if manifest.sources is not None else None
    bundle = Bundle(path=path, manifest=manifest, models=models, index=pose_index, catalog=catalog,
                    detectors=detectors, world_to_camera=verified.rotations[0].copy(), sources=sources,
                    reranking=Reranking.of(manifest.rerank, catalog.poses))
    pose_index.activate()  # last: a bundle that fails anything before does not take the Milvus alias
    LOG.info("loaded bundle %s (%s): %d poses x %d views, %s %s index, D=%d, in %.2f s", path, bundle.model_version,
             len(catalog), bundle.views, pose_index.backend, pose_index.kind, bundle.dim, time.perf_counter() - started)
    return bundle


def bundle_info(bundle: Bundle) -> dict:
    """The manifest summary /info returns."""
    m = bundle.manifest
    return {
        "model_version": bundle.model_version,
        "created": m.created,
        "code_version": m.code_version,
        "schema_version": m.schema_version,
        "bundle": bundle.path.name,
        **m.model_dump(mode="json", include={"joints", "embedding", "normalisation", "evaluation", "blazepose",
                                              "graphs"}),
        "index": {**m.index.model_dump(mode="json"), "kind": bundle.index.kind, "nprobe": bundle.index.nprobe,
                  "served_by": bundle.index.backend},
        "database": m.database.model_dump(mode="json"),
        "rerank": None if m.rerank is None else m.rerank.model_dump(mode="json"),
        "labels": bundle.catalog.known,
        "licence": bundle.licence,
    }
