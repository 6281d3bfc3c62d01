"""The artifact bundle: the one contract between the builder and the service (torch-free).

A bundle is a directory:
    manifest.json          a ``Manifest`` (below): what everything is, every file with its sha256 and size
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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
INDEX, POSES, VIEW_ROTATIONS, METADATA = "index.faiss", "poses.npy", "view_rotations.npy", "metadata.npz"
BLAZEPOSE = {
    "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
METADATA_KEYS = ("clip", "frame", "clip_name", "clip_dataset", "clip_content", "clip_style", "clip_source",
                 "clip_fps")
REBUILD_HINT = "rebuild it with `unihpr-build index --out DIR`"


class BundleError(Exception):
    """The bundle is missing, malformed or fails its hashes; the message names the file and the fault.

    field: the manifest field at fault (``index.operating_point.nprobe``), when one is.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------------------------------- graphs


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the bundle, batch dimension first on both sides.

    modality: the encoder's input modality ((J, 3) features -> (D,) embedding); None for a decoder
        ((D,) embedding -> (J, out_width)).
    """

    name: str
    modality: str | None = None
    out_width: int = 0

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"

    def shapes(self, joints: int, dim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(input shape, output shape) without the batch dimension."""
        if self.modality is not None:
            return (joints, 3), (dim,)
        return (dim,), (joints, self.out_width)


GRAPHS: dict[str, GraphSpec] = {g.name: g for g in (
    GraphSpec("encoder_image", modality="image"),
    GraphSpec("encoder_pose2d", modality="pose2d"),
    GraphSpec("encoder_pose3d", modality="pose3d"),
    GraphSpec("decoder3d", out_width=3),  # metres, root-relative camera frame
    GraphSpec("decoder2d", out_width=2),  # normalised 2D like the pose2d input
)}
ENCODERS = {g.modality: g.filename for g in GRAPHS.values() if g.modality is not None}  # modality -> file
DECODER3D, DECODER2D = GRAPHS["decoder3d"].filename, GRAPHS["decoder2d"].filename
REQUIRED_FILES = (*(g.filename for g in GRAPHS.values()), INDEX, POSES, VIEW_ROTATIONS, METADATA, *BLAZEPOSE)

# ---------------------------------------------------------------------------------------------------- manifest


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuilderInfo(_Section):
    python: str
    build_seconds: float | None = None


class JointsInfo(_Section):
    layout: str = Field(description="joint layout of every pose and graph (h36m17)")
    names: list[str]
    parents: list[int]
    formulas_version: str = Field(description="version of the shared joint formulas the features were made with")


class EmbeddingInfo(_Section):
    dim: int = Field(gt=0)
    metric: Literal["inner_product"]
    normalised: bool


class NormalisationInfo(_Section):
    """How the graphs' inputs were made and their outputs are read (the texts document it for people)."""

    pose2d: str
    image: str
    pose3d: str
    mm_per_unit: float = Field(gt=0, description="decoder3d outputs and pose3d features times this are mm")
    decoder3d_output: str
    decoder2d_output: str


class GraphInfo(_Section):
    input: list[int]
    output: list[int]
    parity_max_abs_diff: float = Field(description="largest |ONNX Runtime - torch| on held-out inputs")
    parity_samples: int


class OperatingPointInfo(_Section):
    nprobe: int = Field(ge=0, description="IVF lists probed; 0 for exact indexes")
    recall_at_10: float
    queries: int
    latency_ms_per_query: float
    ef_search: int = Field(0, ge=0, description="HNSW search depth; 0 for other indexes")


class IndexHistory(_Section):
    """How the index changed since its IVF lists were trained (``unihpr-build add`` and ``remove`` keep the
    trained lists): the more the library drifts from what k-means saw, the more a retrain is due."""

    trained_vectors: int = Field(ge=0, description="vectors of the build that trained the lists")
    added_vectors: int = Field(0, ge=0, description="vectors added since")
    removed_vectors: int = Field(0, ge=0, description="vectors removed since")
    recall_at_10: float | None = Field(None, description="recall@10 on independent queries at the stored operating "
                                                         "point, measured after the last change")


class MilvusInfo(_Section):
    """Where a bundle's vectors live when a Milvus collection holds them instead of index.faiss: one collection
    per bundle version; primary key = vector id (pose * views + view), scalar fields pose, view, clip, frame and
    the clip's name and labels (``index_builder.bundle.milvus_collection``)."""

    kind: Literal["milvus"] = "milvus"
    collection: str = Field(description="the collection of this bundle version")
    uri: str = Field(description="the server the builder wrote to, credentials left out (the service connects to "
                                 "its own UNIHPR_MILVUS_URI)")
    index_type: str = Field(description="Milvus index type: FLAT, IVF_FLAT or HNSW, from the same plan as FAISS")
    index_params: dict[str, int] = Field(default_factory=dict, description="build parameters (nlist, M, ...)")
    search_params: dict[str, int] = Field(default_factory=dict, description="operating point (nprobe, ef)")
    recall_at_10: float | None = Field(None, description="recall@10 of the collection at search_params against "
                                                         "exact search, on the queries of the operating point")


class IndexInfo(_Section):
    type: Literal["flat", "ivf", "hnsw"]
    factory: str
    metric: Literal["inner_product"]
    ntotal: int = Field(ge=0)
    params: dict[str, int]
    operating_point: OperatingPointInfo
    history: IndexHistory | None = None
    backend: MilvusInfo | None = Field(None, description="absent: the vectors are in index.faiss (FAISS, embedded)")


class DatabaseInfo(_Section):
    poses: int = Field(ge=0)
    views: int = Field(gt=0)
    clips: int = Field(ge=0)
    source: str
    fps: list[float] = Field(description="the frame rates the poses were indexed at (metadata's clip_fps is "
                                         "the source rate that frame numbers count in)")
    contents: list[str]
    styles: list[str]
    view_azimuths_deg: list[float]


class SourcesInfo(_Section):
    """The clips' source motion files kept in the bundle (``model.runtime.motion_sources``), compressed."""

    file: str
    clips: int = Field(ge=0, description="clips with a source")
    formats: list[str] = Field(description="source formats present, e.g. bvh")
    raw_bytes: int = Field(ge=0)
    stored_bytes: int = Field(ge=0)


class ErrorCurveInfo(_Section):
    """``model.retrieval.rerank.ErrorCurve``: the expected PA-MPJPE (mm) of a result from its fit residual."""

    residual: list[float] = Field(description="increasing residual knots (the method's residual unit)")
    expected_error_mm: list[float] = Field(description="non-decreasing expected error at the knots, mm; constant "
                                                       "beyond the first and last knots")
    far_residual: float = Field(ge=0, description="residuals above this: far from what the calibration saw")
    pairs: int = Field(ge=0, description="(residual, true error) pairs the curve was fitted on")


class RerankMethod(_Section):
    """The re-ranking of one query kind (``model.retrieval.rerank.METHODS``)."""

    weight: float = Field(ge=0, description="rank score = cosine - weight * residual")
    residual_unit: str
    calibration: ErrorCurveInfo
    validation: dict[str, Any] = Field(default_factory=dict, description="what the weight was chosen on and what "
                                                                          "it gave: queries, grid, mean top-1 "
                                                                          "PA-MPJPE per weight")


class RerankInfo(_Section):
    """Geometric re-ranking and the expected error of results (``model.retrieval.rerank``), chosen and calibrated on
    held-out validation queries when the bundle was built. Bundles without it serve results in cosine order with
    no confidence."""

    candidates: int = Field(gt=0, description="poses re-ranked per query (k when k is larger)")
    score: str = Field(description="how results are ordered")
    queries: str = Field(description="the validation queries the weights and curves come from")
    methods: dict[str, RerankMethod]


class BlazePoseInfo(_Section):
    licence: str
    source: str


class FileEntry(_Section):
    sha256: str
    bytes: int = Field(ge=0)


class Manifest(_Section):
    """manifest.json of schema version ``SCHEMA_VERSION``."""

    schema_version: Literal[1]
    created: str
    code_version: str
    model_version: str
    builder: BuilderInfo
    joints: JointsInfo
    embedding: EmbeddingInfo
    normalisation: NormalisationInfo
    graphs: dict[str, GraphInfo]
    index: IndexInfo
    database: DatabaseInfo
    licence: str
    blazepose: BlazePoseInfo
    model: dict[str, Any] = Field(description="the model config the graphs were exported from")
    evaluation: dict[str, Any] = Field(default_factory=dict, description="evaluation metrics of the model")
    files: dict[str, FileEntry] = Field(default_factory=dict)
    sources: SourcesInfo | None = Field(None, description="present when the bundle keeps the source motion")
    rerank: RerankInfo | None = Field(None, description="geometric re-ranking and result confidence; absent in "
                                                        "bundles built before it (served in cosine order)")

    def to_json(self) -> str:
        """The manifest's text; optional parts that are absent are left out (as bundles before them wrote it)."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True)


def required_files(manifest: Manifest | None = None) -> tuple[str, ...]:
    """The files a bundle must list: ``REQUIRED_FILES``, less index.faiss when a Milvus collection holds the
    vectors, plus the sources file when the manifest keeps one."""
    if manifest is None:
        return REQUIRED_FILES
    files = [f for f in REQUIRED_FILES if f != INDEX or manifest.index.backend is None]
    return (*files, *([manifest.sources.file] if manifest.sources is not None else []))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entries(folder: Path, names) -> dict[str, FileEntry]:
    """{name: FileEntry(sha256, bytes)} for the manifest."""
    return {name: FileEntry(sha256=sha256_of(folder / name), bytes=(folder / name).stat().st_size)
            for name in names}


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write manifest.json and its sidecar hash (inside a directory that is renamed into place afterwards)."""
    text = manifest.to_json()
    (folder / MANIFEST).write_text(text)
    (folder / MANIFEST_HASH).write_text(hashlib.sha256(text.encode()).hexdigest() + "\n")


def parse_manifest(data: object, where: str = MANIFEST) -> Manifest:
    """A manifest from its JSON value; BundleError naming the first field at fault."""
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"{where}: schema_version {data.get('schema_version')!r}, this service reads "
                          f"{SCHEMA_VERSION}; {REBUILD_HINT}", "schema_version")
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise BundleError(f"{where}: {field or 'manifest'}: {first['msg']} ({err.error_count()} fault(s)); "
                          f"{REBUILD_HINT}", field or None) from None


def read_manifest(folder: Path) -> Manifest:
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
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: not JSON: {err}") from err
    return parse_manifest(data, str(path))


# ---------------------------------------------------------------------------------------------------- verification


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
