"""The image path: decode an upload safely, find people with BlazePose, and make the image encoder's features.

Decoding accepts JPEG and PNG only (sniffed from the magic bytes, and Pillow is only allowed those two plugins),
checks width x height against the service's pixel limit from the header *before* decoding (Pillow's
``Image.MAX_IMAGE_PIXELS`` is set to the same limit by ``service.main``), refuses truncated files, reads the EXIF
35 mm focal length, applies the EXIF orientation and converts to RGB. Nothing here stores or logs the bytes. The
detected joints go through the perspective crop of the image's camera (``service.camera``); the people's
keypoints and boxes stay in the image's pixels.

A LiteRT interpreter is not thread-safe and costs memory, so BlazePose instances live in a small pool: a worker
thread takes one, uses it alone, and puts it back. Requests wait for a free instance (``DetectorPool.slots``)
*before* their image is decoded, so at most one decoded image per instance exists at a time, whatever the number
of concurrent image requests; waiting images hold only their compressed bytes.
"""

from __future__ import annotations

import asyncio
import io
import queue
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model.pose.features import cropped_image_features
from model.pose.joint_formulas import layout_to_unihpr17
from model.pose.perspective_crop import UNDISTORT_TOLERANCE, pixels_to_rays
from model.runtime.blazepose import BlazePose, Person
from service.camera import CameraChoice, distortion_error, exif_focal_35mm, image_camera, intrinsics_of
from service.errors import ImageTooLargeError, InvalidImageError, NoPersonError, UnsupportedImageFormatError
from service.schemas.inputs import ImageInput

SUPPORTED = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n"}
# other formats people send, named so the error can say what was received
OTHER_MAGIC = ((b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
               (b"\x00\x00\x01\x00", "ICO"), (b"8BPS", "PSD"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"))
# what Pillow raises on corrupt or truncated data
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                 struct.error, zlib.error)
PIXEL_DECIMALS = 2


def sniff_format(data: bytes) -> str | None:
    """'JPEG', 'PNG', another format's name, or None when the bytes are no image format we know."""
    for name, magic in SUPPORTED.items():
        if data.startswith(magic):
            return name
    for magic, name in OTHER_MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "HEIF/AVIF"
    return None


def supported_format(data: bytes, field: str | None) -> str:
    """'JPEG' or 'PNG'; domain errors for empty data and other formats."""
    if not data:
        raise InvalidImageError("the image is empty", field)
    kind = sniff_format(data)
    if kind is None:
        raise InvalidImageError("not a JPEG or PNG image", field)
    if kind not in SUPPORTED:
        raise UnsupportedImageFormatError(f"{kind} images are not supported; send JPEG or PNG", field)
    return kind


def image_pixels(data: bytes, field: str | None = None) -> int:
    """width x height from the image's header, without decoding it; domain errors for what cannot be read."""
    kind = supported_format(data, field)
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError("the image has more pixels than the service's limit", field) from err
    except DECODE_ERRORS as err:
        raise InvalidImageError(f"the {kind} data could not be decoded (corrupt or truncated)", field) from err
    return width * height


@dataclass
class DecodedImage:
    """rgb: (H, W, 3) uint8, upright by EXIF. focal_35mm: EXIF FocalLengthIn35mmFilm (mm), or None."""

    rgb: np.ndarray
    focal_35mm: float | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright image, pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]


def decode_image(data: bytes, max_pixels: int, field: str | None = None) -> DecodedImage:
    """JPEG/PNG bytes -> RGB upright by EXIF, and the EXIF 35 mm focal length; domain errors for anything else."""
    kind = supported_format(data, field)
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"{width}x{height} = {width * height} pixels; at most {max_pixels}", field)
            if width < 1 or height < 1:
                raise InvalidImageError(f"the image has no pixels ({width}x{height})", field)
            img.load()  # decodes now: a truncated file raises here
            focal_35mm = exif_focal_35mm(img)
            upright = ImageOps.exif_transpose(img)
            return DecodedImage(np.asarray(upright.convert("RGB"), dtype=np.uint8), focal_35mm)
    except Image.DecompressionBombError as err:  # Pillow's own check (2 x MAX_IMAGE_PIXELS) fired first
        raise ImageTooLargeError(f"the image has more than {max_pixels} pixels", field) from err
    except DECODE_ERRORS as err:
        raise InvalidImageError(f"the {kind} data could not be decoded (corrupt or truncated)", field) from err


class DetectorPool:
    """Up to ``size`` BlazePose instances (one LiteRT interpreter pair each), created on demand."""

    def __init__(self, detector: Path, landmarks: Path, size: int, threads: int):
        self.slots = asyncio.Semaphore(size)  # taken by a request before it decodes its image
        self._paths = (detector, landmarks)
        self._threads = threads
        self._size = size
        self._free: queue.LifoQueue[BlazePose] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._free.put(self._new())  # one now, so a broken model file fails the bundle load

    def _new(self) -> BlazePose:
        self._created += 1
        return BlazePose(*self._paths, num_threads=self._threads)

    @contextmanager
    def acquire(self):
        try:
            instance = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                instance = self._new() if self._created < self._size else None
            if instance is None:
                instance = self._free.get()
        try:
            yield instance
        finally:
            self._free.put(instance)


@dataclass
class DetectedPeople:
    """People in one image, largest first.

    features: (P, 17, 3) float32 image-encoder input (of the perspective crop). people: JSON-ready dicts (box,
    keypoints, visibility, score; pixels of the upright image). timings: ms of decode, the detector and landmark
    models' invocations, and BlazePose's pre/post. crop: (P, 3, 3) real -> virtual camera rotations. camera: the
    camera assumed (``service.camera``). frames: (P, 3) the crops' frames (``model.pose.features``: the rays of the
    virtual camera are the features' x, y * scale + centre), what re-ranking fits a pinhole camera to.
    """

    features: np.ndarray
    people: list[dict]
    timings: dict[str, float]
    crop: np.ndarray
    camera: CameraChoice
    frames: np.ndarray | None = None


def person_to_h36m17(person: Person) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose's 33 landmarks -> (17, 2) h36m17 pixels and (17,) visibility, by the shared joint formulas
    (a joint's visibility is the smallest of the landmarks it uses)."""
    joints, vis = layout_to_unihpr17(person.keypoints[None].astype(np.float64), "blazepose33",
                                   person.visibility[None].astype(np.float64))
    return joints[0], vis[0]


def detect_people(data: bytes, pool: DetectorPool, max_pixels: int, max_people: int,
                  field: str | None, item: ImageInput | None = None, item_field: str = "") -> DetectedPeople:
    """Decode, detect (at most ``max_people``, largest first) and featurise through the perspective crop with the
    image's camera (``service.camera.image_camera`` of ``item``'s camera and fov_deg, the upright size and the
    EXIF focal length); NoPersonError when nobody is found, InvalidCameraError naming ``item_field``'s
    camera.distortion when the lens model does not invert at a detected joint."""
    start = time.perf_counter()
    image = decode_image(data, max_pixels, field)
    decoded = time.perf_counter()
    camera = image_camera(item if item is not None else ImageInput(), image.size, image.focal_35mm)
    with pool.acquire() as blazepose:
        found, timing = blazepose.run(image.rgb, max_people)
    if not found:
        raise NoPersonError("no person found in the image", field)
    keypoints, visibility = zip(*(person_to_h36m17(p) for p in found))
    keypoints, visibility = np.stack(keypoints), np.stack(visibility)  # (P, 17, 2), (P, 17)
    intrinsics = intrinsics_of([camera] * len(keypoints))
    if camera.distortion.any():
        residual = pixels_to_rays(keypoints, intrinsics)[1].max()
        if not residual <= UNDISTORT_TOLERANCE:
            raise distortion_error(float(residual), item_field)
    features, crop, frames = cropped_image_features(keypoints, visibility, intrinsics, with_frame=True)
    people = [{"box": np.round(p.box.astype(np.float64), PIXEL_DECIMALS).tolist(),
               "keypoints": np.round(kp, PIXEL_DECIMALS).tolist(),
               "visibility": np.round(vis, 4).tolist(), "score": round(float(p.score), 4)}
              for p, kp, vis in zip(found, keypoints, visibility)]
    landmarks = float(sum(timing.landmark_ms))
    timings = {"decode": (decoded - start) * 1e3, "detector": timing.detector_ms, "landmarks": landmarks,
               # BlazePose outside its two models: crops (letterbox, rotated ROI), SSD decoding, NMS, heatmap
               # refinement
               "blazepose_prepost": max(0.0, timing.total_ms - timing.detector_ms - landmarks)}
    return DetectedPeople(features, people, timings, crop, camera, frames)
