"""The artifact bundle: the one contract between the builder and the service (torch-free).

A bundle is a directory:
    manifest.json          a ``Manifest``: what everything is, every file with its sha256 and size
    manifest.sha256        sha256 of manifest.json, so a changed byte in the manifest is caught too
    encoder_{image,pose2d,pose3d}.onnx, decoder3d.onnx (metres), decoder2d.onnx   (the ``GRAPHS`` table)
    pose_detection.tflite, pose_landmark_full.tflite   (BlazePose, Apache-2.0)
    index.faiss            vector id = pose * views + view (absent when ``index.backend`` names a Milvus collection
                           that holds the vectors under the same ids)
    poses.npy              (N, 17, 3) float32 mm, root-relative, world frame (Y up)
    view_rotations.npy     (V, 3, 3) float64 world -> camera of the virtual views
    metadata.npz           per pose: clip, frame; per clip: name, dataset, content, style, source, fps
The builder writes it under a temporary name and renames it into place. ``verify_bundle`` checks everything and
returns what it loaded (``VerifiedBundle``), so a service serves exactly what was verified; a bundle that fails
raises ``BundleError`` naming the file (and the manifest field) at fault.

This module is the contract's public face, one import for the builder and the service: the names come from
``bundle_layout`` (file names, graphs, ``BundleError``), ``bundle_manifest`` (manifest.json's schema, hashing,
writing and reading it) and ``bundle_verification`` (verifying and loading the bundle).
"""

from model.runtime.bundle_layout import (
    BLAZEPOSE,
    DECODER2D,
    DECODER3D,
    ENCODERS,
    GRAPHS,
    INDEX,
    MANIFEST,
    MANIFEST_HASH,
    METADATA,
    METADATA_KEYS,
    POSES,
    REBUILD_HINT,
    REQUIRED_FILES,
    SCHEMA_VERSION,
    VIEW_ROTATIONS,
    BundleError,
    GraphSpec,
)
from model.runtime.bundle_manifest import (
    BlazePoseInfo,
    BuilderInfo,
    DatabaseInfo,
    EmbeddingInfo,
    ErrorCurveInfo,
    FileEntry,
    GraphInfo,
    IndexHistory,
    IndexInfo,
    JointsInfo,
    Manifest,
    MilvusInfo,
    NormalisationInfo,
    OperatingPointInfo,
    RerankInfo,
    RerankMethod,
    SourcesInfo,
    file_entries,
    parse_manifest,
    read_manifest,
    required_files,
    sha256_of,
    write_manifest,
)
from model.runtime.bundle_verification import (
    VerifiedBundle,
    load_arrays,
    load_index,
    load_sessions,
    verify_bundle,
    verify_files,
)

__all__ = [
    # bundle_layout
    "BLAZEPOSE", "DECODER2D", "DECODER3D", "ENCODERS", "GRAPHS", "INDEX", "MANIFEST", "MANIFEST_HASH", "METADATA",
    "METADATA_KEYS", "POSES", "REBUILD_HINT", "REQUIRED_FILES", "SCHEMA_VERSION", "VIEW_ROTATIONS", "BundleError",
    "GraphSpec",
    # bundle_manifest
    "BlazePoseInfo", "BuilderInfo", "DatabaseInfo", "EmbeddingInfo", "ErrorCurveInfo", "FileEntry", "GraphInfo",
    "IndexHistory", "IndexInfo", "JointsInfo", "Manifest", "MilvusInfo", "NormalisationInfo", "OperatingPointInfo",
    "RerankInfo", "RerankMethod", "SourcesInfo", "file_entries", "parse_manifest", "read_manifest", "required_files",
    "sha256_of", "write_manifest",
    # bundle_verification
    "VerifiedBundle", "load_arrays", "load_index", "load_sessions", "verify_bundle", "verify_files",
]
