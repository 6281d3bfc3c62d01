"""Load an artifact bundle into one immutable ``Bundle``: verified, cross-checked, ready to serve.

``load_bundle`` first runs ``model.bundle_format.verify_bundle`` (manifest sidecar hash, every file's sha256 and
size, array shapes, the index's size and dimension, the published BlazePose files), then checks what the service
relies on beyond that (joint order, metric, view rotations, every ONNX graph's shapes on a probe batch) and builds
the sessions, index, catalog and BlazePose pool. Any failure raises ``BundleError``; nothing is half-loaded.

A ``Bundle`` is never mutated after loading. The app holds one reference (``app.state.bundle``); a reload builds a
new bundle and swaps that reference, so a request that took the old one finishes on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from model.bundle_format import INDEX, BundleError, load_arrays, verify_bundle
from model.skeleton import H36M17
from service.catalog import PoseCatalog
from service.config import Settings
from service.encoder import OnnxModels
from service.images import DetectorPool
from service.index import PoseIndex

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    """Everything one bundle serves with.

    world_to_camera: (3, 3) rotation of the first virtual view, used for ``frame: world_yup`` 3D inputs.
    mm_per_unit: decoder3d outputs times this are mm.
    """

    path: Path
    manifest: dict
    model_version: str
    dim: int
    views: int
    mm_per_unit: float
    licence: str
    models: OnnxModels
    index: PoseIndex
    catalog: PoseCatalog
    detectors: DetectorPool
    world_to_camera: np.ndarray
    loaded_at: float = field(default_factory=time.time)


def _get(manifest: dict, *keys: str):
    node = manifest
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise BundleError(f"manifest.json: missing {'.'.join(keys)}")
        node = node[key]
    return node


def load_bundle(path: Path, settings: Settings,
                on_batch: Callable[[str, int, int], None] | None = None) -> Bundle:
    """Verify and load the bundle at ``path``; raises BundleError naming the file and the fault."""
    started = time.perf_counter()
    path = Path(path)
    manifest = verify_bundle(path, load_models=False)  # the graphs are loaded (and probed) once, below
    names = _get(manifest, "joints", "names")
    if list(names) != list(H36M17.names):
        raise BundleError(f"{path}: joint order {names} is not h36m17")
    dim = int(_get(manifest, "embedding", "dim"))
    if _get(manifest, "embedding", "metric") != "inner_product":
        raise BundleError(f"{path}: embedding metric must be inner_product")
    views = int(_get(manifest, "database", "views"))
    mm_per_unit = float(_get(manifest, "normalisation", "mm_per_unit"))
    poses, rotations, metadata = load_arrays(path, manifest)
    if not np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-6):
        raise BundleError(f"{path}: view rotations are not rotations")
    index = faiss.read_index(str(path / INDEX))
    point = manifest.get("index", {}).get("operating_point", {})
    pose_index = PoseIndex(index, views, nprobe=int(point.get("nprobe", 0) or 0),
                           ef_search=int(point.get("ef_search", 0) or 0),
                           exact_fraction=settings.exact_filter_fraction)
    if pose_index.poses != len(poses):
        raise BundleError(f"{path}: index holds {pose_index.poses} poses, poses.npy {len(poses)}")
    models = OnnxModels(path, len(names), dim, settings.ort_threads, settings.microbatch,
                        settings.microbatch_max_rows, on_batch)
    catalog = PoseCatalog(poses, rotations, metadata, manifest["database"].get("view_azimuths_deg", []))
    try:
        detectors = DetectorPool(path / "pose_detection.tflite", path / "pose_landmark_full.tflite",
                                 settings.detector_instances, settings.detector_threads)
    except (ValueError, RuntimeError, OSError) as err:
        raise BundleError(f"{path}: BlazePose models do not load: {err}") from err
    bundle = Bundle(path=path, manifest=manifest, model_version=str(_get(manifest, "model_version")), dim=dim,
                    views=views, mm_per_unit=mm_per_unit, licence=str(_get(manifest, "licence")), models=models,
                    index=pose_index, catalog=catalog, detectors=detectors, world_to_camera=rotations[0].copy())
    LOG.info("loaded bundle %s (%s): %d poses x %d views, %s index, D=%d, in %.2f s", path, bundle.model_version,
             len(poses), views, pose_index.kind, dim, time.perf_counter() - started)
    return bundle


def bundle_info(bundle: Bundle) -> dict:
    """The manifest summary /info returns."""
    m = bundle.manifest
    db = m.get("database", {})
    return {
        "model_version": bundle.model_version,
        "created": m.get("created"),
        "code_version": m.get("code_version"),
        "schema_version": m.get("schema_version"),
        "bundle": bundle.path.name,
        "joints": m.get("joints"),
        "embedding": m.get("embedding"),
        "normalisation": m.get("normalisation"),
        "index": {**m.get("index", {}), "kind": bundle.index.kind, "nprobe": bundle.index.nprobe},
        "database": {k: db.get(k) for k in ("poses", "views", "clips", "source", "fps", "contents", "styles",
                                            "view_azimuths_deg")},
        "labels": bundle.catalog.known,
        "evaluation": m.get("evaluation", {}),
        "licence": bundle.licence,
        "blazepose": m.get("blazepose"),
    }
