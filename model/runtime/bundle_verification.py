"""Verifying and loading a bundle: every file's size and sha256 against the manifest, the arrays' shapes, the
index's size, dimension and metric, and every ONNX graph on a probe batch (see ``model.runtime.bundle_format``).

``verify_bundle`` checks everything and returns what it loaded (``VerifiedBundle``), so a service serves exactly
what was verified; a bundle that fails raises ``BundleError`` naming the file (and the manifest field) at fault.
faiss and onnxruntime are imported only by the functions that load the index and the graphs, so the torch-free
builder paths that only read or write manifests do not load them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.runtime.bundle_layout import (
    BLAZEPOSE,
    GRAPHS,
    INDEX,
    MANIFEST,
    METADATA,
    METADATA_KEYS,
    POSES,
    VIEW_ROTATIONS,
    BundleError,
)
from model.runtime.bundle_manifest import Manifest, read_manifest, required_files, sha256_of


@dataclass(frozen=True)
class VerifiedBundle:
    """What ``verify_bundle`` checked, loaded once: serve these, not a second read of the files.

    poses: (N, J, 3) float32 mm, root-relative, world Y-up. rotations: (V, 3, 3) world -> camera.
    metadata: the arrays of metadata.npz. index: the FAISS index (N * V vectors of dimension D); None when a
    Milvus collection holds the vectors (``manifest.index.backend``), which ``verify_bundle`` does not contact.
    sessions: graph name -> ONNX Runtime session, each run once on a probe batch; None without ``load_models``.
    """

    path: Path
    manifest: Manifest
    poses: np.ndarray
    rotations: np.ndarray
    metadata: dict[str, np.ndarray]
    index: Any
    sessions: dict[str, Any] | None


def verify_files(folder: Path, manifest: Manifest) -> None:
    """Every required file is listed and present with the listed size and sha256; BlazePose files are the
    published models."""
    required = required_files(manifest)
    missing = [name for name in required if name not in manifest.files]
    if missing:
        raise BundleError(f"{folder / MANIFEST}: does not list {missing}", "files")
    for name, entry in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: listed in the manifest but missing")
        if path.stat().st_size != entry.bytes:
            raise BundleError(f"{path}: {path.stat().st_size} bytes, manifest says {entry.bytes}")
        if sha256_of(path) != entry.sha256:
            raise BundleError(f"{path}: sha256 does not match the manifest")
    for name, digest in BLAZEPOSE.items():
        if manifest.files[name].sha256 != digest:
            raise BundleError(f"{folder / name}: not the published BlazePose model")


def load_arrays(folder: Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """poses (N, J, 3), view rotations (V, 3, 3) and metadata, with their shapes checked against the manifest."""
    poses = np.load(folder / POSES, allow_pickle=False)
    rotations = np.load(folder / VIEW_ROTATIONS, allow_pickle=False)
    with np.load(folder / METADATA, allow_pickle=False) as data:
        metadata = {k: data[k] for k in data.files}
    n, views, joints = manifest.database.poses, manifest.database.views, len(manifest.joints.names)
    if poses.shape != (n, joints, 3) or poses.dtype != np.float32:
        raise BundleError(f"{folder / POSES}: shape {poses.shape} {poses.dtype}, manifest says ({n}, {joints}, 3)")
    if rotations.shape != (views, 3, 3):
        raise BundleError(f"{folder / VIEW_ROTATIONS}: shape {rotations.shape}, expected ({views}, 3, 3)")
    if not np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-6):
        raise BundleError(f"{folder / VIEW_ROTATIONS}: not rotations")
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise BundleError(f"{folder / METADATA}: missing {missing}")
    if metadata["clip"].shape != (n,) or metadata["frame"].shape != (n,):
        raise BundleError(f"{folder / METADATA}: clip/frame must have {n} entries")
    return poses, rotations, metadata


def load_index(folder: Path, manifest: Manifest, mmap: bool = False):
    """The FAISS index, checked for dimension, size and metric against the manifest."""
    import faiss

    path = folder / INDEX
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
    except RuntimeError as err:
        raise BundleError(f"{path}: FAISS cannot read it: {err}") from err
    dim = manifest.embedding.dim
    expected_total = manifest.database.poses * manifest.database.views
    if index.d != dim or index.ntotal != expected_total:
        raise BundleError(f"{path}: d={index.d}, ntotal={index.ntotal}; expected d={dim}, ntotal={expected_total}")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise BundleError(f"{path}: the metric is not inner product")
    return index


def load_sessions(folder: Path, manifest: Manifest, options=None,
                  providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> dict[str, Any]:
    """Every graph of ``GRAPHS`` in ONNX Runtime (on ``providers``, in order of preference), each run on a probe
    batch of 2 and its output shape checked."""
    import onnxruntime as ort

    joints, dim = len(manifest.joints.names), manifest.embedding.dim
    sessions = {}
    for graph in GRAPHS.values():
        path = folder / graph.filename
        shape_in, shape_out = graph.shapes(joints, dim)
        try:
            session = ort.InferenceSession(str(path), options, providers=list(providers))
            out = session.run(None, {session.get_inputs()[0].name: np.zeros((2, *shape_in), np.float32)})[0]
        except Exception as err:  # ONNX Runtime raises its own exception types for malformed graphs
            raise BundleError(f"{path}: does not load in ONNX Runtime: {err}") from err
        if out.shape != (2, *shape_out):
            raise BundleError(f"{path}: output shape {out.shape[1:]}, expected {shape_out}")
        sessions[graph.name] = session
    return sessions


def verify_bundle(folder: Path, load_models: bool = True, session_options=None, mmap_index: bool = False,
                  providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> VerifiedBundle:
    """Everything a service checks before it serves a bundle; returns what it loaded or raises BundleError.

    Hashes of every file (the manifest by its sidecar), the manifest's fields and types, array shapes, the index's
    size, dimension and metric, and, with ``load_models``, that every ONNX graph loads in ONNX Runtime (with
    ``session_options``) and gives the manifest's shapes.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    poses, rotations, metadata = load_arrays(folder, manifest)
    index = load_index(folder, manifest, mmap=mmap_index) if manifest.index.backend is None else None
    sessions = load_sessions(folder, manifest, session_options, providers) if load_models else None
    return VerifiedBundle(folder, manifest, poses, rotations, metadata, index, sessions)
