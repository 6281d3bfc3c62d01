"""The camera behind each 2D input: the intrinsics of its perspective crop, and what the answer says was assumed.

Every 2D input (keypoints or an image's detected joints) is undistorted with its camera's intrinsics and seen from
a virtual camera aimed at the centre of the person's box (``model.pose.perspective_crop``), so the same body embeds
alike wherever it stands in the frame. The rules, in pixels (x right, y down), as the README's API section says:

- focal length: ``camera.focal``; else from ``fov_deg`` (horizontal, degrees) over the image width; else, for
  images only, the EXIF ``FocalLengthIn35mmFilm`` (tag 0xA405 of the Exif IFD): f35 / 36 mm x the long side of the
  EXIF-upright image (36 mm is the long side of the 35 mm frame, so a portrait photo's film width is its height);
  else the default horizontal field of view ``DEFAULT_FOV_DEG`` (60 degrees) over the image width.
- principal point: ``camera.principal_point``; else the image centre (``image_size`` / 2; an image's EXIF-upright
  size / 2).
- image width (for a field of view): ``image_size[0]``; else 2 x the principal point's x.
- distortion: ``camera.distortion`` in OpenCV's order (k1, k2, p1, p2[, k3]); else none. A model that does not
  invert (undistortion residual above ``UNDISTORT_TOLERANCE``) at a visible keypoint is refused.
- a 2D pose with neither ``camera.principal_point`` nor ``image_size`` has no known optical axis: it is taken as
  on the axis (no rotation; the box-normalised pixels as they are) and answered with source ``none``; ``camera``
  or ``fov_deg`` without a way to place the axis is refused, naming the field.
- ``coordinates: "normalized"`` with a ``camera`` needs ``image_size`` (the camera is in pixels).

``source`` names where the focal length came from: ``request`` (camera.focal), ``fov_deg``, ``exif``,
``default_fov``, or ``none`` (on the axis, no image geometry known).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from model.pose.perspective_crop import DEFAULT_FOV_DEG, Intrinsics, focal_from_35mm, focal_from_fov
from service.errors import InvalidCameraError, UnihprError, subfield
from service.schemas.inputs import CameraInput, ImageInput, Pose2DInput

EXIF_IFD = 0x8769
FOCAL_LENGTH_IN_35MM_FILM = 0xA405
MAX_FOCAL_35MM = 10_000.0  # mm; beyond any lens, so a value past it is a broken tag and is ignored
CAMERA_DECIMALS = 4

Source = Literal["request", "fov_deg", "exif", "default_fov", "none"]
NO_DISTORTION = np.zeros(5)


@dataclass(frozen=True)
class CameraChoice:
    """The intrinsics assumed for one input, or none (on the optical axis).

    focal, principal_point: (2,) pixels, or None when ``source`` is ``none``. distortion: (5,) k1, k2, p1, p2, k3.
    """

    focal: np.ndarray | None
    principal_point: np.ndarray | None
    distortion: np.ndarray
    source: Source

    @property
    def on_axis(self) -> bool:
        """No image geometry known: the pose is read as on the optical axis (identity crop)."""
        return self.focal is None

    def as_json(self) -> dict:
        """What a /lift3d answer says was assumed (focal, principal point and distortion null when on the axis)."""
        if self.on_axis:
            return {"focal": None, "principal_point": None, "distortion": None, "source": self.source}
        return {"focal": np.round(self.focal, CAMERA_DECIMALS).tolist(),
                "principal_point": np.round(self.principal_point, CAMERA_DECIMALS).tolist(),
                "distortion": self.distortion.tolist(), "source": self.source}


ON_AXIS = CameraChoice(None, None, NO_DISTORTION, "none")


def _distortion(camera: CameraInput | None) -> np.ndarray:
    if camera is None or camera.distortion is None:
        return NO_DISTORTION
    out = np.zeros(5)
    out[: len(camera.distortion)] = camera.distortion
    return out


def _focal(camera: CameraInput | None, fov_deg: float | None, width: float | None,
           exif_focal: float | None = None) -> tuple[np.ndarray, Source]:
    """(2,) focal, pixels, and its source; ``width`` may be None only when camera.focal is given."""
    if camera is not None and camera.focal is not None:
        return np.asarray(camera.focal, np.float64), "request"
    if fov_deg is not None:
        f, source = float(focal_from_fov(width, fov_deg)), "fov_deg"
    elif exif_focal is not None:
        f, source = exif_focal, "exif"
    else:
        f, source = float(focal_from_fov(width, DEFAULT_FOV_DEG)), "default_fov"
    return np.array([f, f]), source


@dataclass(frozen=True)
class PoseCameras:
    """The cameras of N 2D pose inputs, as arrays.

    intrinsics: N rows (rows on the axis hold NaN). source: (N,) per input. on_axis: (N,) bool, no image geometry.
    """

    intrinsics: Intrinsics
    source: list[Source]
    on_axis: np.ndarray

    def choice(self, i: int) -> CameraChoice:
        if self.on_axis[i]:
            return ON_AXIS
        return CameraChoice(self.intrinsics.focal[i], self.intrinsics.principal_point[i],
                            self.intrinsics.distortion[i], self.source[i])


def _without_geometry(items: list[Pose2DInput]) -> bool:
    """No pose of the batch gives a camera, an image size or a field of view: every one is on the optical axis,
    with no camera to work out and nothing to refuse."""
    return all(item.camera is None and item.image_size is None and item.fov_deg is None for item in items)


def pose2d_cameras(items: list[Pose2DInput], fields: list[str]) -> tuple[PoseCameras, list[tuple[int, UnihprError]]]:
    """The cameras of 2D pose inputs by the module's rules, computed as arrays (a batch of plain poses costs a
    loop over the items and a few array operations), and (index, InvalidCameraError naming the field) per input
    whose camera cannot be used."""
    n = len(items)
    if _without_geometry(items):  # the common request: every pose on the axis, nothing to read or check
        return PoseCameras(Intrinsics(np.full((n, 2), np.nan), np.full((n, 2), np.nan), np.zeros((n, 5))),
                           ["none"] * n, np.ones(n, bool)), []
    size, pp, focal = np.full((n, 2), np.nan), np.full((n, 2), np.nan), np.full((n, 2), np.nan)
    fov, distortion = np.full(n, DEFAULT_FOV_DEG), np.zeros((n, 5))
    on_axis, failed = np.zeros(n, bool), np.zeros(n, bool)
    source: list[Source] = ["default_fov"] * n
    errors: list[tuple[int, UnihprError]] = []
    for i, item in enumerate(items):
        camera = item.camera
        if item.image_size is not None:
            size[i] = item.image_size
        if item.fov_deg is not None:
            fov[i], source[i] = item.fov_deg, "fov_deg"
        if camera is not None:
            if camera.principal_point is not None:
                pp[i] = camera.principal_point
            if camera.focal is not None:
                focal[i], source[i] = camera.focal, "request"
            if camera.distortion is not None:
                distortion[i, : len(camera.distortion)] = camera.distortion
            if item.coordinates == "normalized" and item.image_size is None:
                errors.append((i, InvalidCameraError("a camera is in pixels: with normalized coordinates give "
                                                     "image_size too", subfield(fields[i], "image_size"))))
                failed[i] = True
                continue
        if item.image_size is None and (camera is None or camera.principal_point is None):
            on_axis[i], source[i] = True, "none"
            if camera is not None:
                errors.append((i, InvalidCameraError(
                    "the camera cannot be placed: give camera.principal_point or image_size (without either the "
                    "pose is taken as on the optical axis)", subfield(fields[i], "camera"))))
            elif item.fov_deg is not None:
                errors.append((i, InvalidCameraError("fov_deg needs image_size (or camera.principal_point) to "
                                                     "place the optical axis", subfield(fields[i], "fov_deg"))))
    if on_axis.all():  # no image geometry anywhere (the old clients' requests): nothing to compute
        return PoseCameras(Intrinsics(focal, pp, distortion), source, on_axis), errors
    pp = np.where(np.isnan(pp), size / 2.0, pp)
    width = np.where(np.isnan(size[:, 0]), 2.0 * pp[:, 0], size[:, 0])
    from_fov = np.isnan(focal[:, 0]) & ~on_axis
    for i in np.flatnonzero(from_fov & ~failed & ~(width > 0)):
        errors.append((int(i), InvalidCameraError(
            "without image_size the image width is 2 x camera.principal_point x, which must be positive; give "
            "image_size or camera.focal", subfield(fields[i], "camera.principal_point"))))
    with np.errstate(invalid="ignore"):
        focal = np.where(from_fov[:, None], focal_from_fov(width, fov)[:, None], focal)
    return PoseCameras(Intrinsics(focal, pp, distortion), source, on_axis), errors


def image_camera(item: ImageInput, size: tuple[int, int], focal_35mm: float | None) -> CameraChoice:
    """The camera of an image input: size (width, height) of the EXIF-upright image, pixels; focal_35mm the
    EXIF FocalLengthIn35mmFilm (mm) or None."""
    camera = item.camera
    width, height = float(size[0]), float(size[1])
    if camera is not None and camera.principal_point is not None:
        principal_point = np.asarray(camera.principal_point, np.float64)
    else:
        principal_point = np.array([width, height]) / 2.0
    exif = float(focal_from_35mm(max(width, height), focal_35mm)) if focal_35mm is not None else None
    focal, source = _focal(camera, item.fov_deg, width, exif)
    return CameraChoice(focal, principal_point, _distortion(camera), source)


def intrinsics_of(choices: list[CameraChoice]) -> Intrinsics:
    """N cameras (none on the axis) -> the N-row Intrinsics of ``model.pose.perspective_crop``."""
    return Intrinsics(np.stack([c.focal for c in choices]), np.stack([c.principal_point for c in choices]),
                      np.stack([c.distortion for c in choices]))


def distortion_error(residual: float, field: str) -> InvalidCameraError:
    return InvalidCameraError(
        f"the lens distortion cannot be undone at a keypoint (residual {residual:.3g} in normalised image "
        "coordinates): check the coefficients' order (OpenCV: k1, k2, p1, p2, k3) and that they are for "
        "normalised coordinates (pixels / focal)", subfield(field, "camera.distortion"))


def exif_focal_35mm(image: Image.Image) -> float | None:
    """EXIF FocalLengthIn35mmFilm (mm) of an opened image, or None when absent, zero (unknown) or unreadable.

    The tag belongs to the Exif IFD; some writers put it into IFD0, which is read too."""
    try:
        exif = image.getexif()
        value = exif.get_ifd(EXIF_IFD).get(FOCAL_LENGTH_IN_35MM_FILM, exif.get(FOCAL_LENGTH_IN_35MM_FILM))
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        focal = float(value) if value is not None else None
    except Exception:  # a broken EXIF block only means no focal length
        return None
    if focal is None or not np.isfinite(focal) or not 0 < focal <= MAX_FOCAL_35MM:
        return None
    return focal
