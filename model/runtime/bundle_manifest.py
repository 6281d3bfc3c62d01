"""manifest.json: its schema (what a bundle is, section by section, with every file's sha256 and size), and
writing and reading it with its sidecar hash (manifest.sha256).

Every section refuses unknown fields and is frozen, so a manifest read back is exactly what the builder wrote; a
manifest that fails raises ``BundleError`` naming the first field at fault.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.runtime.bundle_layout import (
    INDEX,
    MANIFEST,
    MANIFEST_HASH,
    REBUILD_HINT,
    REQUIRED_FILES,
    SCHEMA_VERSION,
    BundleError,
)


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
    parity_max_abs_diff: float = Field(description="largest |ONNX Runtime - torch| on held-out inputs, of the "
                                                      "float32 export")
    parity_samples: int
    precision: Literal["float32", "int8"] = Field(
        "float32", description="int8: weights quantized per channel, activations per call, the layer that touches "
                               "coordinates kept float32 (`unihpr-build index --int8`)")
    int8_max_abs_diff: float | None = Field(
        None, description="int8 graphs: largest |int8 - float32 graph| on the parity inputs, in output units")
    int8_min_cosine: float | None = Field(
        None, description="int8 encoders: smallest cosine between their embeddings and the float32 graph's on the "
                          "parity inputs")


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
    lifted_candidates: int = Field(0, ge=0, description="poses added to them by the lifted query: the library poses "
                                                        "nearest its decoded 3D by joint distances "
                                                        "(model.retrieval.lifted_candidates; 0: none)")
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


# ---------------------------------------------------------------------------------------------------- files


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
