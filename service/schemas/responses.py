"""The response bodies of the routes; shapes and units are in the Field descriptions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.schemas.inputs import Layout3D


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
    start: float = Field(description="seconds (clip frame / fps) where the matching segment starts: the clip frame "
                                     "at or before where the query's first frame falls")
    end: float = Field(description="seconds where it ends: the clip frame at or after where the query's last frame "
                                   "falls")
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
