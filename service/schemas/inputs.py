"""The inputs a request carries: a 2D pose, a 3D pose, an image, a ready embedding, a motion (a sequence of poses)
or the options of a video upload, with the camera they were seen by; shapes and units are in the Field descriptions.

Unknown fields are refused everywhere (``StrictModel``) so a misspelt option fails loudly instead of being ignored.
An input's ``modality`` may be left out when it is implied (``image_b64`` -> image, ``embedding`` -> embedding,
otherwise pose2d).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from model.pose.joint_layouts import REQUEST_LAYOUTS_2D, REQUEST_LAYOUTS_3D
from model.pose.perspective_crop import DEFAULT_FOV_DEG

MAX_CAMERA_PX = 1e7  # focal lengths and principal points beyond this many pixels are refused
MIN_FOV_DEG, MAX_FOV_DEG = 1.0, 179.0
DISTORTION_LENGTHS = (4, 5)  # OpenCV's k1, k2, p1, p2[, k3]

Layout2D = Literal[REQUEST_LAYOUTS_2D]  # the registry's request layouts (model.pose.joint_layouts)
Layout3D = Literal[REQUEST_LAYOUTS_3D]
LAYOUT_DESCRIPTION = ("`h36m17`: the field's convention (Human3.6M ground truth as VideoPose3D, MotionBERT and mmpose "
                      "give it: thorax at the neck base, spine 0.47 of the way up, neck/nose and head top on the "
                      "head's axis); `unihpr17`: our shared-formula convention (thorax = mid-shoulders, spine "
                      "halfway, neck/nose = the nose, head top from the ears), what `h36m17` meant before 0.2. Same "
                      "joint order; the 13 pelvis and limb joints agree")


class StrictModel(BaseModel):
    """A part of a request: unknown fields are refused (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- camera

Focal = Annotated[float, Field(gt=0, le=MAX_CAMERA_PX, allow_inf_nan=False)]
Pixel = Annotated[float, Field(ge=-MAX_CAMERA_PX, le=MAX_CAMERA_PX, allow_inf_nan=False)]
Coefficient = Annotated[float, Field(allow_inf_nan=False)]


class CameraInput(StrictModel):
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

class Pose2DInput(StrictModel):
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


class Pose3DInput(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_modality_required)

    modality: Literal["pose3d"] = "pose3d"
    keypoints: list[list[float] | None] = Field(
        description="(17, 3) [x, y, z] joints in h36m17 order; every joint required")
    layout: Layout3D = Field("h36m17", description="joint convention of `keypoints`. " + LAYOUT_DESCRIPTION)
    units: Literal["mm", "m"] = Field("mm", description="millimetres or metres")
    frame: Literal["camera", "world_yup"] = Field(
        "camera", description="`camera`: OpenCV camera axes (x right, y down, z forward); `world_yup`: a world "
                              "frame with Y up, rotated into the bundle's first virtual view before encoding")


class ImageInput(StrictModel):
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


class EmbeddingInput(StrictModel):
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


class SequenceInput(StrictModel):
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


class VideoOptions(StrictModel):
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

