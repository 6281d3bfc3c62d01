"""Video uploads for motion search: decode with PyAV, sample frames, find and follow one person with BlazePose.

Decoding. The container is sniffed from its first bytes and only four demuxers are ever opened (MP4 / MOV /
3GP, Matroska / WebM, AVI), each named explicitly to FFmpeg, from memory (the upload never touches the disk and is
never logged). Before a frame is decoded the first video stream's width x height is checked against
``max_video_pixels`` and the container's duration against ``max_video_seconds``; decoding stops with the same
error when frame timestamps pass the limit (headers can lie). The decoder runs on one thread (the service's
cores belong to the event loop, ONNX Runtime and FAISS). Every frame is decoded (inter-coded video needs its
predecessors), but only the *sampled* frames are converted to RGB and seen by BlazePose: the first frame, then
the first frame at or after each multiple of 1 / sample_fps seconds (``video_sample_fps``, default 10 per
second: the library's rate, and what one core can detect on in a few seconds for a short clip). At most one
decoded RGB frame exists at a time.

Tracking. BlazePose (the bundle's detector pool, one instance held for the whole video) finds up to
``video_track_people`` people per sampled frame (the largest). Detections are linked into tracks frame by frame:
each track takes the detection whose box overlaps its last box most (IoU >= ``TRACK_MIN_IOU``), or, failing any
overlap, whose box centre is nearest within a gate that widens with the time since the track was last seen (half
its box diagonal, plus half a diagonal per second); a track unseen for more than ``TRACK_MAX_LOST_S`` ends, and a
detection no track takes starts one. The person searched for is the *largest*: the track whose boxes cover the
most area summed over its frames (a person near the camera and in view longest, not whoever happens to be found
first). A sampled frame without that person is a *missing* frame: motion search steps over it. No one in any frame
is a 422 ``no_person``.

Features are those of an image query (``model.pose.features.cropped_image_features`` through the perspective crop of
the video's camera: ``camera`` / ``fov_deg``, else a 60 degree horizontal field of view over the frame width).
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field

import numpy as np

from model.pose.features import cropped_image_features
from service.camera import CameraChoice, image_camera, intrinsics_of
from service.errors import NoPersonError, OutOfRangeError, UnihprError
from service.images import DetectorPool, person_to_h36m17

VIDEO_FIELD = "video"
PIXEL_DECIMALS = 2
TRACK_MIN_IOU = 0.05  # a detection overlapping a track's last box at least this much continues it
TRACK_GATE = 0.5  # without overlap: centre within this many box diagonals ...
TRACK_GATE_PER_SECOND = 0.5  # ... plus this many per second since the track was last seen
TRACK_MAX_LOST_S = 1.0  # a track unseen for longer ends


class InvalidVideoError(UnihprError):
    """Empty, truncated or undecodable video data, or a file without a video stream."""

    status_code, code = 422, "invalid_video"


class UnsupportedVideoFormatError(UnihprError):
    status_code, code = 415, "unsupported_video_format"


class VideoTooLargeError(UnihprError):
    """Over a video limit: bytes, frame pixels, duration or sampled frames (the message names it)."""

    status_code, code = 413, "video_too_large"


# FFmpeg demuxer names of the containers accepted, by their magic bytes
MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff_container(data: bytes) -> str:
    """The FFmpeg demuxer for ``data``: 'mov' (MP4, MOV, 3GP), 'matroska' (WebM, MKV) or 'avi'; domain errors for
    empty data and other formats."""
    if not data:
        raise InvalidVideoError("the video is empty", VIDEO_FIELD)
    if data[4:8] in MP4_BOXES:
        return "mov"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if data.startswith(b"RIFF") and data[8:12] == b"AVI ":
        return "avi"
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG")):
        raise UnsupportedVideoFormatError("this is an image: send it as `image`, or send a video (MP4, MOV, WebM, "
                                          "MKV or AVI)", VIDEO_FIELD)
    raise UnsupportedVideoFormatError("not an MP4, MOV, WebM, MKV or AVI video", VIDEO_FIELD)


@dataclass
class TrackedVideo:
    """One person followed through the sampled frames of a video.

    frames: (F,) the video's frame numbers (decode order, from 0) of the sampled frames; times: (F,) their
    seconds; present: (F,) bool, the person found; features: (P, 17, 3) float32 image-encoder features of the
    present frames (in order); track: per sampled frame {frame, time, box, score} or with box null.
    info: what the answer says about the video. timings: ms (decode, detector, landmarks, track).
    """

    frames: np.ndarray
    times: np.ndarray
    present: np.ndarray
    features: np.ndarray
    track: list[dict]
    info: dict
    camera: CameraChoice | None
    timings: dict[str, float] = field(default_factory=dict)
    scales: np.ndarray | None = None  # (P,) the perspective crop's box half-side in ray units, per present frame


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    """One person's detections: frame index -> (box (4,), keypoints (17, 2), visibility (17,), score)."""

    found: dict[int, tuple] = field(default_factory=dict)
    last_box: np.ndarray | None = None
    last_time: float = 0.0

    @property
    def area(self) -> float:
        return float(sum((b[2] - b[0]) * (b[3] - b[1]) for b, *_ in self.found.values()))


def _match(track: Track, box: np.ndarray, t: float) -> float | None:
    """How well a detection continues a track (higher is better), or None when it does not."""
    iou = _iou(track.last_box, box)
    if iou >= TRACK_MIN_IOU:
        return 1.0 + iou
    centre = (track.last_box[:2] + track.last_box[2:]) / 2
    diagonal = float(np.hypot(*(track.last_box[2:] - track.last_box[:2])))
    distance = float(np.hypot(*((box[:2] + box[2:]) / 2 - centre)))
    gate = diagonal * (TRACK_GATE + TRACK_GATE_PER_SECOND * (t - track.last_time))
    return 1.0 - distance / gate if distance <= gate else None


def link(tracks: list[Track], index: int, t: float, detections: list[tuple]) -> None:
    """Add one sampled frame's detections (box, keypoints, visibility, score) to the tracks (module docstring)."""
    live = [k for k, tr in enumerate(tracks) if t - tr.last_time <= TRACK_MAX_LOST_S]
    pairs = sorted(((score, k, d) for k in live for d, det in enumerate(detections)
                    if (score := _match(tracks[k], det[0], t)) is not None), reverse=True)
    taken_tracks, taken_detections = set(), set()
    for _, k, d in pairs:  # greedy one-to-one, best match first
        if k in taken_tracks or d in taken_detections:
            continue
        taken_tracks.add(k)
        taken_detections.add(d)
        tracks[k].found[index] = detections[d]
        tracks[k].last_box, tracks[k].last_time = detections[d][0], t
    for d, det in enumerate(detections):
        if d not in taken_detections:
            tracks.append(Track({index: det}, det[0], t))


def _open(data: bytes, container: str):
    import av  # imported on first use: the service starts without decoding any video

    try:
        return av.open(io.BytesIO(data), mode="r", format=container, metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError, EOFError) as err:
        raise InvalidVideoError(f"the video could not be opened ({type(err).__name__}): corrupt, truncated or "
                                "not what its first bytes say", VIDEO_FIELD) from err


def read_video(data: bytes, pool: DetectorPool, options, settings) -> TrackedVideo:
    """Decode, sample, detect and track (module docstring). options: ``service.schemas.inputs.VideoOptions``;
    settings: ``service.config.Settings`` (the video limits). Raises the domain errors above and NoPersonError."""
    import av

    if len(data) > settings.max_video_bytes:
        raise VideoTooLargeError(f"the video has {len(data)} bytes; at most {settings.max_video_bytes}", VIDEO_FIELD)
    kind = sniff_container(data)
    sample_fps = options.sample_fps or settings.video_sample_fps
    if not settings.min_sequence_fps <= sample_fps <= settings.max_sequence_fps:
        raise OutOfRangeError(f"sample_fps {sample_fps:g} is outside {settings.min_sequence_fps:g}.."
                              f"{settings.max_sequence_fps:g}", "sample_fps")
    timings = {"decode": 0.0, "detector": 0.0, "landmarks": 0.0, "track": 0.0}
    tick = time.perf_counter()
    container = _open(data, kind)
    try:
        if not container.streams.video:
            raise InvalidVideoError("the file has no video stream", VIDEO_FIELD)
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width * height > settings.max_video_pixels:
            raise VideoTooLargeError(f"{width}x{height} = {width * height} pixels a frame; at most "
                                     f"{settings.max_video_pixels}", VIDEO_FIELD)
        declared = float(container.duration) / av.time_base if container.duration else None
        if declared is not None and declared > settings.max_video_seconds + 0.5:
            raise VideoTooLargeError(f"the video lasts {declared:.1f} s; at most {settings.max_video_seconds:g} s",
                                     VIDEO_FIELD)
        rate = float(stream.average_rate) if stream.average_rate else None
        step = 1.0 / sample_fps
        camera = None
        frames, times, tracks = [], [], []
        next_time, decoded = 0.0, 0
        timings["decode"] += (time.perf_counter() - tick) * 1e3
        with pool.acquire() as blazepose:
            tick = time.perf_counter()
            for frame in _frames(container, stream):
                index = decoded
                decoded += 1
                t = frame.time if frame.time is not None else (index / rate if rate else None)
                if t is None:
                    raise InvalidVideoError("the video's frames carry no timestamps and no frame rate", VIDEO_FIELD)
                t = float(t)
                if not frames:
                    start = t
                t -= start
                if t > settings.max_video_seconds + 1e-6:
                    raise VideoTooLargeError(f"the video runs past {settings.max_video_seconds:g} s; at most "
                                             f"{settings.max_video_seconds:g} s", VIDEO_FIELD)
                if frames and t < next_time - 1e-6:
                    continue
                if len(frames) >= settings.max_sequence_frames:
                    raise VideoTooLargeError(f"more than {settings.max_sequence_frames} sampled frames; lower "
                                             "sample_fps or send a shorter video", VIDEO_FIELD)
                next_time = (math.floor(t / step + 1e-6) + 1) * step
                rgb = frame.to_ndarray(format="rgb24")
                if camera is None:
                    camera = image_camera(options, (rgb.shape[1], rgb.shape[0]), None)
                timings["decode"] += (time.perf_counter() - tick) * 1e3
                found, timing = blazepose.run(rgb, settings.video_track_people)
                del rgb
                timings["detector"] += timing.detector_ms
                timings["landmarks"] += float(sum(timing.landmark_ms))
                tick = time.perf_counter()
                detections = [(p.box.astype(np.float64), *person_to_h36m17(p), float(p.score)) for p in found]
                link(tracks, len(frames), t, detections)
                frames.append(index)
                times.append(t)
                timings["track"] += (time.perf_counter() - tick) * 1e3
                tick = time.perf_counter()
            timings["decode"] += (time.perf_counter() - tick) * 1e3
    finally:
        container.close()
    if not frames:
        raise InvalidVideoError("the video has no decodable frame", VIDEO_FIELD)
    if not tracks:
        raise NoPersonError(f"no person found in any of the {len(frames)} sampled frames of the video", VIDEO_FIELD)
    person = max(tracks, key=lambda tr: tr.area)
    present = np.array([i in person.found for i in range(len(frames))])
    detected = [person.found[i] for i in np.flatnonzero(present)]
    kp = np.stack([d[1] for d in detected])
    features, _, crop_frames = cropped_image_features(kp, np.stack([d[2] for d in detected]),
                                                      intrinsics_of([camera] * len(kp)), with_frame=True)
    track = []
    for i, (f, t) in enumerate(zip(frames, times)):
        box, score = (person.found[i][0], person.found[i][3]) if i in person.found else (None, None)
        track.append({"frame": f, "time": round(t, 6),
                      "box": None if box is None else np.round(box, PIXEL_DECIMALS).tolist(),
                      "score": None if score is None else round(score, 4)})
    info = {"container": kind, "codec": stream.codec_context.name, "width": width, "height": height,
            "fps": None if rate is None else round(rate, 6), "decoded_frames": decoded,
            "duration": round(times[-1], 6), "sample_fps": sample_fps, "sampled_frames": len(frames),
            "people_tracked": len(tracks), "person_frames": int(present.sum()), "track": track}
    return TrackedVideo(np.array(frames), np.array(times), present, features, track, info, camera, timings,
                        crop_frames[:, 2])


def _frames(container, stream):
    """The stream's decoded frames; decoding errors become InvalidVideoError."""
    import av

    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                yield frame
    except (av.FFmpegError, ValueError, OSError, EOFError, MemoryError) as err:
        raise InvalidVideoError(f"the video could not be decoded ({type(err).__name__}): corrupt or truncated",
                                VIDEO_FIELD) from err
