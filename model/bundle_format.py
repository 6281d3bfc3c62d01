"""The artifact bundle: the one contract between the builder and the service (torch-free).

A bundle is a directory:
    manifest.json          what everything is (schema below), every file with its sha256 and size
    manifest.sha256        sha256 of manifest.json, so a changed byte in the manifest is caught too
    encoder_{image,pose2d,pose3d}.onnx, decoder3d.onnx (metres), decoder2d.onnx
    pose_detection.tflite, pose_landmark_full.tflite   (BlazePose, Apache-2.0)
    index.faiss            vector id = pose * views + view
    poses.npy              (N, 17, 3) float32 mm, root-relative, world frame (Y up)
    view_rotations.npy     (V, 3, 3) float64 world -> camera of the virtual views
    metadata.npz           per pose: clip, frame; per clip: name, dataset, content, style, source, fps
The builder writes it under a temporary name and renames it into place; the service refuses a bundle that fails
``verify_bundle`` and keeps serving the one it has.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
ENCODERS = {m: f"encoder_{m}.onnx" for m in ("image", "pose2d", "pose3d")}
DECODER3D, DECODER2D = "decoder3d.onnx", "decoder2d.onnx"
INDEX, POSES, VIEW_ROTATIONS, METADATA = "index.faiss", "poses.npy", "view_rotations.npy", "metadata.npz"
BLAZEPOSE = {
    "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
REQUIRED_FILES = (*ENCODERS.values(), DECODER3D, DECODER2D, INDEX, POSES, VIEW_ROTATIONS, METADATA, *BLAZEPOSE)
METADATA_KEYS = ("clip", "frame", "clip_name", "clip_dataset", "clip_content", "clip_style", "clip_source",
                 "clip_fps")


class BundleError(Exception):
    """The bundle is missing, malformed or fails its hashes; the message names the file and the fault."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entries(folder: Path, names) -> dict[str, dict]:
    """{name: {"sha256", "bytes"}} for the manifest."""
    return {name: {"sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size} for name in names}


def write_manifest(folder: Path, manifest: dict) -> None:
    """Write manifest.json and its sidecar hash (inside a directory that is renamed into place afterwards)."""
    text = json.dumps(manifest, indent=2, sort_keys=True)
    (folder / MANIFEST).write_text(text)
    (folder / MANIFEST_HASH).write_text(hashlib.sha256(text.encode()).hexdigest() + "\n")


def read_manifest(folder: Path) -> dict:
    """The manifest, after checking it against its sidecar hash."""
    folder = Path(folder)
    path, sidecar = folder / MANIFEST, folder / MANIFEST_HASH
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a bundle directory")
    for needed in (path, sidecar):
        if not needed.is_file():
            raise BundleError(f"{needed}: missing")
    expected = sidecar.read_text().strip()
    if sha256_of(path) != expected:
        raise BundleError(f"{path}: sha256 does not match {MANIFEST_HASH} (manifest changed or corrupt)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{path}: not JSON: {err}") from err
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"{path}: schema version {manifest.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return manifest


def verify_files(folder: Path, manifest: dict) -> None:
    """Every required file is listed and present with the listed size and sha256; BlazePose files are the
    published models."""
    listed = manifest.get("files", {})
    missing = [name for name in REQUIRED_FILES if name not in listed]
    if missing:
        raise BundleError(f"{folder / MANIFEST}: does not list {missing}")
    for name, entry in listed.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: listed in the manifest but missing")
        if path.stat().st_size != entry["bytes"]:
            raise BundleError(f"{path}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
        if sha256_of(path) != entry["sha256"]:
            raise BundleError(f"{path}: sha256 does not match the manifest")
    for name, digest in BLAZEPOSE.items():
        if listed[name]["sha256"] != digest:
            raise BundleError(f"{folder / name}: not the published BlazePose model")


def load_arrays(folder: Path, manifest: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """poses (N, 17, 3), view rotations (V, 3, 3) and metadata, with their shapes checked against the manifest."""
    poses = np.load(folder / POSES, allow_pickle=False)
    rotations = np.load(folder / VIEW_ROTATIONS, allow_pickle=False)
    with np.load(folder / METADATA, allow_pickle=False) as data:
        metadata = {k: data[k] for k in data.files}
    n, views = manifest["database"]["poses"], manifest["database"]["views"]
    joints = len(manifest["joints"]["names"])
    if poses.shape != (n, joints, 3) or poses.dtype != np.float32:
        raise BundleError(f"{folder / POSES}: shape {poses.shape} {poses.dtype}, manifest says ({n}, {joints}, 3)")
    if rotations.shape != (views, 3, 3):
        raise BundleError(f"{folder / VIEW_ROTATIONS}: shape {rotations.shape}, expected ({views}, 3, 3)")
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise BundleError(f"{folder / METADATA}: missing {missing}")
    if metadata["clip"].shape != (n,) or metadata["frame"].shape != (n,):
        raise BundleError(f"{folder / METADATA}: clip/frame must have {n} entries")
    return poses, rotations, metadata


def verify_bundle(folder: Path, load_models: bool = True) -> dict:
    """Everything a service checks before it serves a bundle; returns the manifest or raises BundleError.

    Hashes of every file (the manifest by its sidecar), array shapes, the index's size and dimension, and,
    with ``load_models``, that every ONNX graph loads in ONNX Runtime with the manifest's dimensions.
    """
    import faiss
    import onnxruntime as ort

    folder = Path(folder)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    load_arrays(folder, manifest)
    index = faiss.read_index(str(folder / INDEX), faiss.IO_FLAG_MMAP)
    dim = manifest["embedding"]["dim"]
    expected_total = manifest["database"]["poses"] * manifest["database"]["views"]
    if index.d != dim or index.ntotal != expected_total:
        raise BundleError(f"{folder / INDEX}: d={index.d}, ntotal={index.ntotal}; expected d={dim}, ntotal={expected_total}")
    if load_models:
        joints = len(manifest["joints"]["names"])
        for name, shape_in, shape_out in [*((f, (joints, 3), (dim,)) for f in ENCODERS.values()),
                                          (DECODER3D, (dim,), (joints, 3)), (DECODER2D, (dim,), (joints, 2))]:
            try:
                session = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
                out = session.run(None, {session.get_inputs()[0].name: np.zeros((2, *shape_in), np.float32)})[0]
            except Exception as err:  # ONNX Runtime raises its own exception types for malformed graphs
                raise BundleError(f"{folder / name}: does not load in ONNX Runtime: {err}") from err
            if out.shape != (2, *shape_out):
                raise BundleError(f"{folder / name}: output shape {out.shape[1:]}, expected {shape_out}")
    return manifest
