"""Request and response models of the API; shapes and units are in the Field descriptions.

Requests are parsed by ``service.body`` (JSON or multipart) and validated here; unknown fields are refused
everywhere (``extra="forbid"``) so a misspelt option fails loudly instead of being ignored. A 2D pose, a 3D pose,
an image or (for /retrieve and /lift3d) a ready embedding is one *input*; its ``modality`` may be left out when
it is implied (``image_b64`` -> image, ``embedding`` -> embedding, otherwise pose2d).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from model.pose.perspective_crop import DEFAULT_FOV_DEG

MAX_K = 1000
MAX_CAMERA_PX = 1e7  # focal lengths and principal points beyond this many pixels are refused
MIN_FOV_DEG, MAX_FOV_DEG = 1.0, 179.0
DISTORTION_LENGTHS = (4, 5)  # OpenCV's k1, k2, p1, p2[, k3]

Layout2D = Literal["h36m17", "unihpr17", "coco17", "blazepose33"]
Layout3D = Literal["h36m17", "unihpr17"]
LAYOUT_DESCRIPTION = ("`h36m17`: the field's convention (Human3.6M ground truth as VideoPose3D, MotionBERT and mmpose "
                      "give it: thorax at the neck base, spine 0.47 of the way up, neck/nose and head top on the "
                      "head's axis); `unihpr17`: our shared-formula convention (thorax = mid-shoulders, spine "
                      "halfway, neck/nose = the nose, head top from the ears), what `h36m17` meant before 0.2. Same "
                      "joint order; the 13 pelvis and limb joints agree")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- camera

Focal = Annotated[float, Field(gt=0, le=MAX_CAMERA_PX, allow_inf_nan=False)]
Pixel = Annotated[float, Field(ge=-MAX_CAMERA_PX, le=MAX_CAMERA_PX, allow_inf_nan=False)]
Coefficient = Annotated[float, Field(allow_inf_nan=False)]


class CameraInput(_Strict):
    """The camera that took the image the 2D comes from (pixels; every field optional). ``service.camera`` says
    what is assumed for what is left out."""

    focal: tuple[Focal, Focal] | None = Field(
        None, description="[fx, fy] focal lengths in pixels (> 0). Default: from `fov_deg`, else (images) the "
                          f"EXIF 35 mm focal length, else a {DEFAULT_FOV_DEG:g} degree horizontal field of view over "
                          "the image width")
    principal_point: tuple[Pixel, Pixel] | None = Field(
        None, description="[cx, cy] pixels where the optical axis meets the image. Default: the image centre "
                          "(`image_size` / 2; for images their EXIF-upright size / 2)")
    distortion: list[Coefficient] | None = Field(
        None, description="lens distortion in OpenCV's order: [k1, k2, p1, p2] or [k1, k2, p1, p2, k3] "
                          "(exactly 4 or 5 values; pad with zeros). The keypoints are undistorted with it; a model "
                          "that cannot be inverted at a visible keypoint is refused. Default: none")

    @field_validator("distortion")
    @classmethod
    def _distortion_length(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) not in DISTORTION_LENGTHS:
            raise PydanticCustomError(
                "distortion_length", "distortion takes 4 values [k1, k2, p1, p2] or 5 [k1, k2, p1, p2, k3] "
                "(OpenCV's order), got {count}; pad with zeros", {"count": len(value)})
        return value


CAMERA_DESCRIPTION = ("the camera's intrinsics, pixels (see CameraInput); what is left out is assumed as follows. "
                      "The 2D is undistorted and seen from a virtual camera aimed at the person (a perspective "
                      "crop), so the same body embeds alike anywhere in the frame")
FOV_DESCRIPTION = (f"horizontal field of view in degrees ({MIN_FOV_DEG:g}..{MAX_FOV_DEG:g}) over the image width, "
                   f"when `camera.focal` is not given (giving both is an error). Default {DEFAULT_FOV_DEG:g}")


def _fov_without_focal(value: float | None, info: ValidationInfo) -> float | None:
    """`fov_deg` and `camera.focal` say the same thing: refuse both."""
    camera = info.data.get("camera")
    if value is not None and camera is not None and camera.focal is not None:
        raise PydanticCustomError("camera_conflict", "give camera.focal or fov_deg, not both")
    return value


# ---------------------------------------------------------------- inputs

class Pose2DInput(_Strict):
    modality: Literal["pose2d"] = "pose2d"
    keypoints: list[list[float] | None] = Field(
        description="(K, 2) [x, y] or (K, 3) [x, y, c] in the layout's joint order; K = 33 for blazepose33, else "
                    "17. Pixels (x right, y down) unless `coordinates` is `normalized`. "
                    "A missing joint is null or has c = 0; c in [0, 1].")
    layout: Layout2D = Field("h36m17", description="joint layout of `keypoints`. " + LAYOUT_DESCRIPTION + "; coco17 "
                                                   "and blazepose33 are mapped with the shared joint formulas")
    image_size: tuple[float, float] | None = Field(
        None, description="[width, height] of the image in pixels: its centre is the default principal point and "
                          "its width the span of the field of view (without it, or camera.principal_point, the "
                          "pose is taken as on the optical axis); also undoes `normalized` coordinates")
    coordinates: Literal["pixels", "normalized"] = Field(
        "pixels", description="`pixels`, or `normalized` = x / width and y / height in [0, 1] (with a `camera`, "
                              "`image_size` is then required)")
    camera: CameraInput | None = Field(
        None, description=CAMERA_DESCRIPTION + ". The optical axis is `camera.principal_point`, else the centre of "
                          "`image_size`; with neither, the person is taken as on the optical axis (no crop) and "
                          "`camera` / `fov_deg` are refused")
    fov_deg: float | None = Field(None, ge=MIN_FOV_DEG, le=MAX_FOV_DEG, allow_inf_nan=False,
                                  description=FOV_DESCRIPTION)

    _fov = field_validator("fov_deg")(_fov_without_focal)


def _modality_required(schema: dict) -> None:
    """Without `modality` an object is read as a 2D pose: the document says so by requiring it."""
    schema["required"] = ["modality", *schema.get("required", [])]


class Pose3DInput(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_modality_required)

    modality: Literal["pose3d"] = "pose3d"
    keypoints: list[list[float] | None] = Field(
        description="(17, 3) [x, y, z] joints in h36m17 order; every joint required")
    layout: Layout3D = Field("h36m17", description="joint convention of `keypoints`. " + LAYOUT_DESCRIPTION)
    units: Literal["mm", "m"] = Field("mm", description="millimetres or metres")
    frame: Literal["camera", "world_yup"] = Field(
        "camera", description="`camera`: OpenCV camera axes (x right, y down, z forward); `world_yup`: a world "
                              "frame with Y up, rotated into the bundle's first virtual view before encoding")


class ImageInput(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": ["modality"]}, {"required": ["image_b64"]}]})  # else it is read as a 2D pose

    modality: Literal["image"] = "image"
    image_b64: str | None = Field(None, description="JPEG or PNG bytes, base64 (a data: URL prefix is accepted). "
                                                    "Multipart requests send the file field `image` instead.")
    all_people: bool = Field(False, description="every detected person (up to the service's max_people), largest "
                                                "first; default only the largest")
    camera: CameraInput | None = Field(
        None, description=CAMERA_DESCRIPTION + ". The optical axis is `camera.principal_point`, else the centre of "
                          "the EXIF-upright image; the focal length `camera.focal`, else `fov_deg`, else the EXIF "
                          "FocalLengthIn35mmFilm (f35 / 36 mm x the image's long side), else "
                          f"{DEFAULT_FOV_DEG:g} degrees")
    fov_deg: float | None = Field(None, ge=MIN_FOV_DEG, le=MAX_FOV_DEG, allow_inf_nan=False,
                                  description=FOV_DESCRIPTION)

    _fov = field_validator("fov_deg")(_fov_without_focal)
    _data: bytes | None = PrivateAttr(None)  # the multipart upload, attached by service.body


class EmbeddingInput(_Strict):
    modality: Literal["embedding"] = "embedding"
    embedding: list[float] = Field(description="(D,) a vector of the bundle's dimension; it is L2-normalised")


def _modality(value: Any) -> str | None:
    if isinstance(value, dict):
        if "modality" in value:
            return value["modality"]
        if "image_b64" in value:
            return "image"
        return "embedding" if "embedding" in value else "pose2d"
    return getattr(value, "modality", None)


EmbedInput = Annotated[
    Union[Annotated[Pose2DInput, Tag("pose2d")], Annotated[Pose3DInput, Tag("pose3d")],
          Annotated[ImageInput, Tag("image")]],
    Discriminator(_modality),
]
QueryInput = Annotated[
    Union[Annotated[Pose2DInput, Tag("pose2d")], Annotated[Pose3DInput, Tag("pose3d")],
          Annotated[ImageInput, Tag("image")], Annotated[EmbeddingInput, Tag("embedding")]],
    Discriminator(_modality),
]

# ---------------------------------------------------------------- sequences (motion search)

SequenceFrame = Annotated[
    Union[Annotated[Pose2DInput, Tag("pose2d")], Annotated[Pose3DInput, Tag("pose3d")]],
    Discriminator(_modality),
]


class SequenceInput(_Strict):
    """A motion: poses over time. Limits (frames, duration, frame rate) are the service's settings (`GET /info`)."""

    frames: list[SequenceFrame | None] = Field(
        description="one pose2d or pose3d input per frame, in time order (each validated like a single query, "
                    "its field named `sequence.frames[i]`); null = a missing frame (not detected, dropped): the "
                    "alignment steps over it. At least 2 frames, at least 1 of them a pose")
    fps: float = Field(30.0, gt=0, allow_inf_nan=False,
                       description="frames per second of `frames` (frame i is at i / fps seconds); within the "
                                   "service's min_sequence_fps..max_sequence_fps")
    times: list[float] | None = Field(None, description="seconds of each frame, strictly increasing, one per "
                                                         "frame (instead of `fps`, for irregular timing)")


class VideoOptions(_Strict):
    """How a video upload (multipart file field `video`) is read: the fields other than `video` of the form."""

    sample_fps: float | None = Field(None, gt=0, allow_inf_nan=False,
                                     description="frames per second taken from the video for person detection "
                                                 "(default the service's video_sample_fps; at most the video's own "
                                                 "rate)")
    camera: CameraInput | None = Field(None, description=CAMERA_DESCRIPTION + ", as for images; default a "
                                                          f"{DEFAULT_FOV_DEG:g} degree horizontal field of view "
                                                          "over the frame width")
    fov_deg: float | None = Field(None, ge=MIN_FOV_DEG, le=MAX_FOV_DEG, allow_inf_nan=False,
                                  description=FOV_DESCRIPTION)

    _fov = field_validator("fov_deg")(_fov_without_focal)
    _data: bytes | None = PrivateAttr(None)  # the multipart upload, attached by service.body


# ---------------------------------------------------------------- requests


class FilterSet(_Strict):
    clip: list[str] | None = Field(None, description="clip names, exact")
    content: list[str] | None = Field(None, description="content labels (e.g. walk, wave-left-hand); case, spaces "
                                                        "and underscores are normalised")
    style: list[str] | None = Field(None, description="style labels (e.g. normal, elderly)")
    source: list[str] | None = Field(None, description="data sources (e.g. bandai-namco-motion)")
    dataset: list[str] | None = Field(None, description="dataset of the source (e.g. dataset-1)")


class Filters(_Strict):
    include: FilterSet | None = Field(None, description="keep poses matching every listed field (any value)")
    exclude: FilterSet | None = Field(None, description="drop poses matching any listed value")


class EmbedRequest(_Strict):
    inputs: list[EmbedInput] = Field(min_length=1, description="one or more inputs (at most the service's "
                                                               "max_batch)")

    @property
    def items(self) -> list:
        return self.inputs

    @property
    def item_fields(self) -> list[str]:
        return [f"inputs[{i}]" for i in range(len(self.inputs))]


class RetrieveRequest(_Strict):
    query: QueryInput | None = Field(None, description="one input or {\"embedding\": [...]}")
    queries: list[QueryInput] | None = Field(None, description="a batch of queries; answered as `batches`")
    k: int = Field(10, ge=1, le=MAX_K, description="results per query, 1..1000")
    filters: Filters | None = None
    search_effort: float = Field(1.0, gt=0, description="multiplies the index's operating point (IVF nprobe "
                                                        "chosen for recall@10 >= 0.95); ignored by exact indexes")
    group_by_clip: bool = Field(False, description="at most one result per clip (its best frame)")
    align_to_query: bool = Field(False, description="return pose3d as the matched view sees it, in the query's "
                                                    "camera frame (facing like the query; a 2D query's matched "
                                                    "view stands for the virtual camera aimed at the person, "
                                                    "turned back into its real camera); default root-relative "
                                                    "world Y-up")
    include_pose3d: bool = Field(True, description="include each result's pose3d")
    rerank: bool = Field(True, description="geometric re-ranking (default on): the 100 best poses by cosine (k "
                                           "when larger) are fitted to the query and the k best by `rank_score` "
                                           "returned, each with `fit_residual` and `confidence`; false: the k best "
                                           "by cosine `score`, as before, without fit or confidence (faster)")
    sequence: SequenceInput | None = Field(None, description="a motion (poses over time): answered with the "
                                                             "best-matching segments of library clips (motion "
                                                             "search), any speed from 1/3x to 3x")
    video: VideoOptions | None = Field(None, description="multipart only: the options of a `video` file upload "
                                                         "(motion search on the tracked person)")

    @model_validator(mode="after")
    def _one_of(self):
        given = [name for name in ("query", "queries", "sequence", "video") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `query`, `queries` and `sequence` (or upload a `video`)")
        if self.queries is not None and not self.queries:
            raise ValueError("`queries` is empty")
        return self

    @property
    def items(self) -> list:
        return [self.query] if self.query is not None else list(self.queries or [])

    @property
    def item_fields(self) -> list[str]:
        return ["query"] if self.query is not None else [f"queries[{i}]" for i in range(len(self.items))]


class LiftBatchRequest(_Strict):
    inputs: list[QueryInput] = Field(min_length=1, description="inputs to lift; answered as `outputs`")
    _single: bool = PrivateAttr(False)  # the body was one input, not {"inputs": [...]}

    @classmethod
    def of_one(cls, item) -> "LiftBatchRequest":
        request = cls.model_construct(inputs=[item])
        request._single = True
        return request

    @property
    def single(self) -> bool:
        return self._single

    @property
    def items(self) -> list:
        return self.inputs

    @property
    def item_fields(self) -> list[str]:
        return [""] if self._single else [f"inputs[{i}]" for i in range(len(self.inputs))]


class ReloadRequest(_Strict):
    bundle: str | None = Field(None, description="bundle directory on the server; default the configured one")


EMBED_ADAPTER = TypeAdapter(EmbedRequest)
RETRIEVE_ADAPTER = TypeAdapter(RetrieveRequest)
LIFT_SINGLE_ADAPTER = TypeAdapter(QueryInput)
LIFT_BATCH_ADAPTER = TypeAdapter(LiftBatchRequest)
RELOAD_ADAPTER = TypeAdapter(ReloadRequest)
LiftRequestSchema = Union[QueryInput, LiftBatchRequest]  # what the OpenAPI document shows for /lift3d

# ------------------------------------------------ multipart forms (documented, and the fields accepted)


class ImageForm(_Strict):
    image: bytes = Field(description="JPEG or PNG file")
    all_people: bool = Field(False, description="every person, not only the largest")
    camera: CameraInput | None = Field(None, description="JSON text of a CameraInput, as for `image_b64` inputs")
    fov_deg: float | None = Field(None, ge=MIN_FOV_DEG, le=MAX_FOV_DEG, allow_inf_nan=False,
                                  description=FOV_DESCRIPTION)


RetrieveForm = create_model(
    "RetrieveForm", __base__=ImageForm,
    **{name: (info.annotation, info) for name, info in RetrieveRequest.model_fields.items()
       if name not in ("query", "queries", "sequence", "video")})
RetrieveVideoForm = create_model(
    "RetrieveVideoForm", __base__=_Strict,
    video=(bytes, Field(description="MP4 / MOV, WebM / Matroska or AVI file: motion search on its tracked person "
                                    "(the largest in the first frame with someone in it)")),
    **{name: (info.annotation, info) for name, info in VideoOptions.model_fields.items()},
    **{name: (info.annotation, info) for name, info in RetrieveRequest.model_fields.items()
       if name in ("k", "filters", "search_effort", "group_by_clip")})

# ---------------------------------------------------------------- responses


class Person(BaseModel):
    box: list[float] = Field(description="(4,) [x0, y0, x1, y1] pixels of the person's landmarks, in the "
                                         "EXIF-upright image")
    keypoints: list[list[float]] = Field(description="(17, 2) h36m17 joints in pixels, the 2D the encoder used")
    visibility: list[float] = Field(description="(17,) per-joint visibility in [0, 1]")
    score: float = Field(description="pose presence in [0, 1]")


class Versioned(BaseModel):
    model_version: str = Field(description="the bundle that answered")


class EmbedResponse(Versioned):
    dim: int
    embeddings: list[list[float]] = Field(description="(inputs, D) L2-normalised; an image gives its largest "
                                                      "person's")
    people: list[list[dict] | None] = Field(description="per input: null for poses; for images the people "
                                                        "(Person fields; with all_people each has `embedding`)")


class ResultMetadata(BaseModel):
    clip: str
    frame: int
    time: float | None = Field(description="seconds, frame / fps (null when the clip has no frame rate)")
    fps: float
    labels: dict[str, str] = Field(description="content, style, dataset")
    source: str
    view: int = Field(description="the virtual view whose embedding matched")
    view_azimuth_deg: float


class Confidence(BaseModel):
    expected_error_mm: float = Field(
        description="the expected PA-MPJPE (mm) between this result's pose and the query's true pose, predicted "
                    "from `fit_residual` (a monotone curve calibrated on held-out queries when the bundle was built; "
                    "on clip-excluded test queries its rank correlation with the true error and its calibration are "
                    "in reports/eval.md)")
    far_from_library: bool = Field(
        description="the pose fits the query worse than the best result did for 99% of the calibration queries: "
                    "the query is far from everything in the library (or its 2D is far from what a camera sees of "
                    "a body); expected_error_mm is then a lower bound. The first result's flag speaks for the query")


class Result(BaseModel):
    id: str = Field(description="`<clip>#<frame>`, stable across rebuilds of the same data")
    score: float = Field(description="cosine similarity in [-1, 1]")
    rank_score: float = Field(description="what results are ordered by, best first: `score - weight * fit_residual` "
                                          "(the bundle's weight for the query kind, chosen on held-out queries), or "
                                          "`score` itself when not re-ranked (`rerank: false`, embedding queries, "
                                          "bundles without a calibration)")
    fit_residual: float | None = Field(
        None, description="how badly this pose explains the query: for 2D (pose2d, image) queries the RMS 2D "
                          "distance over the visible joints after fitting a camera (free rotation, translation, "
                          "distance; a pinhole in the perspective crop's camera, weak perspective for 2D without "
                          "image geometry), in units of half the longer side of the person box; for 3D queries the "
                          "Procrustes residual, PA-MPJPE in mm. Null when not re-ranked")
    confidence: Confidence | None = Field(None, description="null when not re-ranked")
    start: float | None = Field(None, description="with group_by_clip: seconds, the start of the matching segment "
                                                  "(the frames around the best one scoring within 0.02 of it)")
    end: float | None = Field(None, description="with group_by_clip: seconds, the end of the matching segment")
    pose3d: list[list[float]] | None = Field(None, description="(17, 3) mm root-relative; world Y-up, or with "
                                                               "align_to_query the matched view's pose in the "
                                                               "query's camera frame")
    metadata: ResultMetadata


class SegmentMetadata(BaseModel):
    clip: str
    fps: float
    labels: dict[str, str] = Field(description="content, style, dataset")
    source: str
    first_frame: int = Field(description="the clip's frame number at `start`")
    last_frame: int = Field(description="the clip's frame number at `end`")
    view: int = Field(description="the virtual view that matched most of the aligned frames")
    view_azimuth_deg: float


class SegmentResult(BaseModel):
    """A motion-search result: where in a library clip the query's motion is."""

    id: str = Field(description="`<clip>#<first frame>-<last frame>`")
    clip: str
    start: float = Field(description="seconds (clip frame / fps) where the matching segment starts")
    end: float = Field(description="seconds where it ends")
    score: float = Field(description="mean cosine similarity over the aligned frames (the query's frames with a "
                                     "pose), in [-1, 1]")
    alignment: list[list[int]] = Field(
        description="[query frame, clip frame] for every aligned query frame, in order: the query frame is an "
                    "index into `sequence.frames` (for a video, the video's frame number), the clip frame the "
                    "clip's frame number (as in GET /clips/{clip}/motion); the query is taken on the library's "
                    "frame grid, so a faster query skips frames of it and a slower one repeats clip frames")
    metadata: SegmentMetadata


class RetrieveResponse(Versioned):
    results: list[Result | SegmentResult] | None = Field(
        None, description="pose results; for a `sequence` or `video`: segments (SegmentResult), best first, no two "
                          "of one clip overlapping")
    sequence: dict | None = Field(None, description="sequence and video queries: how the query was read (frames, "
                                                    "frames with a pose, duration s, the grid rate it was aligned "
                                                    "at, and the search's candidates)")
    video: dict | None = Field(None, description="video queries: the decoded video and the tracked person per "
                                                 "sampled frame (frame, time s, box or null)")
    batches: list[dict] | None = Field(None, description="for `queries`: [{\"results\": [...]}, ...]")
    people: list[dict] | None = Field(None, description="image queries: the people detected")
    reranked: bool = Field(description="re-ranking was on for this request (asked for, and the bundle is "
                                       "calibrated for it): results are ordered by `rank_score`")
    pose_frame: Literal["world_yup", "camera"]
    layout: Layout3D = Field(description="joint convention of every `pose3d` (the `layout` query parameter)")
    licence: str


class CameraUsed(BaseModel):
    focal: list[float] | None = Field(description="[fx, fy] pixels; null when on the optical axis")
    principal_point: list[float] | None = Field(description="[cx, cy] pixels; null when on the optical axis")
    distortion: list[float] | None = Field(description="[k1, k2, p1, p2, k3]; null when on the optical axis")
    source: Literal["request", "fov_deg", "exif", "default_fov", "none"] = Field(
        description="where the focal length came from: `request` (camera.focal), `fov_deg`, `exif` (the image's "
                    "FocalLengthIn35mmFilm), `default_fov` (60 degrees over the image width), or `none` (no image "
                    "geometry known: the pose was taken as on the optical axis)")


class LiftResponse(Versioned):
    pose3d: list[list[float]] | None = Field(None, description="(17, 3) mm, root-relative (pelvis 0), in the real "
                                                               "camera's frame, OpenCV axes (x right, y down, z "
                                                               "forward)")
    units: Literal["mm"] | None = None
    frame: Literal["camera"] | None = None
    layout: Layout3D | None = Field(None, description="joint convention of `pose3d` (the `layout` query "
                                                      "parameter)")
    camera: CameraUsed | None = Field(None, description="the camera assumed for a 2D pose or image (the lift "
                                                        "is made in a virtual camera aimed at the person and "
                                                        "turned back into this one); null for 3D poses and "
                                                        "embeddings")
    people: list[dict] | None = None
    outputs: list[dict] | None = Field(None, description="batch form: one {pose3d, units, frame, layout, camera} "
                                                         "per input")


class ClipInfo(Versioned):
    clip: str
    fps: float = Field(description="frames per second of the indexed poses")
    frames: int = Field(description="indexed frames of the clip")
    first_frame: int | None
    last_frame: int | None
    duration: float | None = Field(description="seconds from the first to the last indexed frame")
    labels: dict[str, str] = Field(description="content, style, dataset")
    source: str
    motion_formats: list[str] = Field(description="formats of GET /clips/{clip}/motion: json, and bvh when the "
                                                  "bundle keeps the clip's source BVH")
    licence: str


class ClipMotion(Versioned):
    clip: str
    fps: float
    start: float = Field(description="seconds of the first frame returned")
    end: float = Field(description="seconds of the last frame returned")
    frames: list[int] = Field(description="(T,) frame numbers")
    pose3d: list[list[list[float]]] = Field(description="(T, 17, 3) mm, root-relative, world Y-up, in `layout`")
    layout: Layout3D
    units: Literal["mm"]
    frame: Literal["world_yup"]
    licence: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="e.g. inputs[0].keypoints")


class ErrorResponse(BaseModel):
    error: ErrorDetail
    model_version: str | None = None


ERROR_MEANINGS = {
    400: "empty body or malformed JSON",
    401: "missing or wrong X-API-Key (only when the service has keys)",
    403: "a read key on an admin route",
    404: "no such route (/admin/* without an admin key) or clip",
    409: "the clip's source motion is not kept as BVH in this bundle",
    413: "over a limit: body, batch, image pixels, JSON values or results (the message names it)",
    415: "unsupported media type or image format",
    422: "invalid input; `field` names it",
    503: "no bundle loaded yet",
}


def error_responses(*statuses: int) -> dict:
    """``responses=`` of a route: the error statuses it can answer, each with the error body."""
    return {status: {"model": ErrorResponse, "description": ERROR_MEANINGS[status]} for status in statuses}


READ_ERRORS = error_responses(400, 401, 413, 415, 422, 503)  # /embed, /retrieve, /lift3d
