"""POST /retrieve with a ``sequence`` (poses over time) or a ``video`` upload: motion search.

The request's frames become per-frame embeddings (pose2d / pose3d frames through their encoders exactly as single
queries; a video through ``service.video``: sampled frames, one tracked person, the image encoder), and
``model.retrieval.motion_search.search_motion`` finds the best distinct segments of library clips (its docstring has the
design: anchor frames search the index, subsequence DTW on the candidate windows only). The answer's results are
segments ``{id, clip, start, end, score, alignment, metadata}``; ``sequence`` says how the query was read, and for
videos ``video`` describes the file and the tracked person.

Limits (``service.config``, listed by ``GET /info``): k at most ``MAX_SEGMENTS`` (each segment answered is
fitted with its own camera); at most ``max_sequence_frames`` frames and ``max_sequence_seconds`` from the first to
the last frame; ``fps`` within ``min_sequence_fps..max_sequence_fps``; videos: ``max_video_bytes``,
``max_video_pixels`` a frame, ``max_video_seconds``. A sequence of fewer than two frames, without a pose in any
frame, with a rate out of range, irregular ``times``, or over a limit is answered with a 4xx naming the field
(``sequence.frames``, ``sequence.fps``, ``sequence.times``, ``video``).
"""

from __future__ import annotations

import time
import weakref

import anyio.to_thread
import numpy as np
from fastapi import Request
from fastapi.responses import Response

from model.pose.skeleton import root_centred
from model.pose.units import MM_PER_M
from model.retrieval.motion_search import ClipLayout, LiftedQuery, QueryShape, SearchStats, Segment, search_motion
from service import pipeline
from service.artifacts import Bundle
from service.catalog import PoseCatalog
from service.config import Settings
from service.errors import InvalidRequestError, OutOfRangeError, UnihprError
from service.metrics import ServiceMetrics
from service.responses import json_response
from service.video import VIDEO_FIELD, read_video

ENDPOINT = "/retrieve"
MAX_SEGMENTS = 100  # k of a sequence or video query: every segment answered is fitted with its own camera
TIME_DECIMALS = 6
_LAYOUTS: weakref.WeakKeyDictionary[PoseCatalog, ClipLayout] = weakref.WeakKeyDictionary()


class InvalidSequenceError(UnihprError):
    """A sequence that cannot be aligned: too few frames, none with a pose, irregular times."""

    status_code, code = 422, "invalid_sequence"


class SequenceTooLongError(UnihprError):
    status_code, code = 413, "sequence_too_long"


def motion_limits(settings: Settings) -> dict:
    """The limits of sequence and video queries, as ``GET /info`` lists them."""
    return {"max_sequence_frames": settings.max_sequence_frames,
            "max_sequence_seconds": settings.max_sequence_seconds,
            "sequence_fps": [settings.min_sequence_fps, settings.max_sequence_fps],
            "max_video_bytes": settings.max_video_bytes, "max_video_pixels": settings.max_video_pixels,
            "max_video_seconds": settings.max_video_seconds, "video_sample_fps": settings.video_sample_fps,
            "video_formats": ["MP4", "MOV", "WebM", "MKV", "AVI"], "max_segments": MAX_SEGMENTS}


def check_sequence_size(data: object, settings: Settings) -> None:
    """Refuse a JSON body whose ``sequence.frames`` is over the limit before any frame is validated."""
    sequence = data.get("sequence") if isinstance(data, dict) else None
    frames = sequence.get("frames") if isinstance(sequence, dict) else None
    if isinstance(frames, list) and len(frames) > settings.max_sequence_frames:
        raise SequenceTooLongError(f"{len(frames)} frames; at most {settings.max_sequence_frames} per sequence",
                                   "sequence.frames")


def clip_layout(catalog: PoseCatalog) -> ClipLayout:
    """Where every pose of the catalog sits in its clip, computed once per loaded bundle."""
    layout = _LAYOUTS.get(catalog)
    if layout is None:
        layout = _LAYOUTS[catalog] = ClipLayout.of(catalog.clip, catalog.frame, catalog.clip_fps)
    return layout


def sequence_times(sequence, settings: Settings) -> np.ndarray:
    """(F,) seconds of the frames of a ``SequenceInput``; the domain errors of its limits."""
    count = len(sequence.frames)
    if count == 0:
        raise InvalidSequenceError("the sequence has no frames", "sequence.frames")
    if count < 2:
        raise InvalidSequenceError("a sequence needs at least 2 frames (send one pose as `query`)", "sequence.frames")
    if count > settings.max_sequence_frames:
        raise SequenceTooLongError(f"{count} frames; at most {settings.max_sequence_frames} per sequence",
                                   "sequence.frames")
    if not settings.min_sequence_fps <= sequence.fps <= settings.max_sequence_fps:
        raise OutOfRangeError(f"fps {sequence.fps:g} is outside {settings.min_sequence_fps:g}.."
                              f"{settings.max_sequence_fps:g}", "sequence.fps")
    if sequence.times is None:
        times = np.arange(count) / float(sequence.fps)
        field = "sequence.frames"
    else:
        times = np.asarray(sequence.times, dtype=np.float64)
        field = "sequence.times"
        if len(times) != count:
            raise InvalidSequenceError(f"{len(times)} times for {count} frames", field)
        bad = np.flatnonzero(~np.isfinite(times))
        if len(bad):
            raise InvalidSequenceError("times must be finite numbers", f"{field}[{bad[0]}]")
        back = np.flatnonzero(np.diff(times) <= 0)
        if len(back):
            raise InvalidSequenceError("times must increase strictly", f"{field}[{back[0] + 1}]")
        rate = (count - 1) / (times[-1] - times[0])
        if not settings.min_sequence_fps <= rate <= settings.max_sequence_fps:
            raise OutOfRangeError(f"the times give {rate:.3g} frames per second on average; the rate must lie in "
                                  f"{settings.min_sequence_fps:g}..{settings.max_sequence_fps:g}", field)
    duration = float(times[-1] - times[0])
    if duration > settings.max_sequence_seconds:
        raise SequenceTooLongError(f"the sequence lasts {duration:.2f} s; at most {settings.max_sequence_seconds:g} s",
                                   field)
    if all(frame is None for frame in sequence.frames):
        raise InvalidSequenceError("every frame is null: at least one needs a pose", "sequence.frames")
    return times


def _vector_mask(pose_mask: np.ndarray | None, views: int) -> np.ndarray | None:
    return None if pose_mask is None else np.repeat(pose_mask, views)


def query_shape(features: np.ndarray, graphs: list[str | None], present: np.ndarray,
                scales: np.ndarray | None = None) -> QueryShape | None:
    """What the geometric verification fits, from the encoder features of the present frames (in order): 2D
    (pose2d or image: normalised x, y and the confidence or visibility as weights, and the perspective crop's
    box half-side in ray units where the frame had image geometry, NaN where not) or 3D (pose3d, mm); None when
    a sequence mixes 2D and 3D frames (it is then ranked by embedding similarity alone)."""
    kinds = {"3d" if g == pipeline.ENCODER_OF["pose3d"] else "2d" for g in graphs}
    if len(kinds) != 1:
        return None
    width = 2 if kinds == {"2d"} else 3
    points = np.zeros((len(present), features.shape[1], width), np.float64)
    if width == 2:
        weights = np.zeros((len(present), features.shape[1]), np.float64)
        points[present], weights[present] = features[..., :2], features[..., 2]
        full = np.full(len(present), np.nan)
        if scales is not None:
            full[present] = scales
        return QueryShape(points, weights, full)
    points[present] = features.astype(np.float64) * MM_PER_M
    return QueryShape(points, None)


def lifts_of(bundle: Bundle, decoded: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(F, 17, 3) mm root-relative per query frame (zeros where missing) from the decoder's output (P, 17, 3) for
    the present frames."""
    lifts = np.zeros((len(present), *decoded.shape[1:]), np.float64)
    lifts[present] = root_centred(decoded.astype(np.float64) * bundle.mm_per_unit)
    return lifts


async def sequence_lifts(bundle: Bundle, embeddings: np.ndarray, present: np.ndarray,
                         shape: QueryShape | None) -> np.ndarray | None:
    """Every frame's 3D for the lifted path of motion search (``model.retrieval.motion_search.LiftedQuery``): the
    frames' own 3D for a pose3d sequence, else the decoder's lift of each frame's embedding (as ``/lift3d``);
    None when the bundle has no descriptor index (no lifted candidates in its re-ranking)."""
    if bundle.reranking is None or bundle.reranking.descriptors is None:
        return None
    if shape is not None and shape.weights is None:
        return shape.points
    return lifts_of(bundle, await bundle.models.run("decoder3d", embeddings[present]), present)


def run_search(bundle: Bundle, embeddings: np.ndarray, times: np.ndarray, present: np.ndarray,
               pose_mask: np.ndarray | None, effort: float, k: int, group_by_clip: bool,
               shape: QueryShape | None = None, expr: str | None = None,
               lifts: np.ndarray | None = None) -> tuple[list[Segment], SearchStats]:
    """``model.retrieval.motion_search.search_motion`` on the bundle's index, verified geometrically against the
    bundle's poses when ``shape`` is given, with the lifted path when ``lifts`` (``sequence_lifts``) are (blocking:
    run it in a worker thread)."""
    index, views = bundle.index, bundle.views
    vec_mask = _vector_mask(pose_mask, views)
    selected = index.ntotal if vec_mask is None else int(vec_mask.sum())

    def search(queries: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        if selected == 0:
            return np.full((len(queries), 1), -np.inf, np.float32), np.full((len(queries), 1), -1, np.int64)
        return index.search(queries, min(kk, selected, index.max_k), vec_mask, effort, expr=expr)

    def vectors(ids: np.ndarray) -> np.ndarray:
        return index.vectors(ids, cache=False)

    stats = SearchStats()
    poses = bundle.catalog.poses
    lifted = None
    if lifts is not None and bundle.reranking is not None and bundle.reranking.descriptors is not None:
        lifted = LiftedQuery(lifts, bundle.reranking.descriptors, bundle.catalog.rotations, pose_mask)
    segments = search_motion(embeddings, times, present, clip_layout(bundle.catalog), views, search, vectors, k,
                             group_by_clip, stats, shape, lambda rows: poses[rows], lifted)
    return segments, stats


def segment_result(bundle: Bundle, segment: Segment, query_frames: np.ndarray) -> dict:
    """One segment as answered. query_frames: (F,) what the answer calls each query frame (sequence index or the
    video's frame number)."""
    catalog, layout = bundle.catalog, clip_layout(bundle.catalog)
    clip = segment.clip
    pairs = segment.pairs
    rows = layout.row(clip, pairs[:, 1])
    clip_frames = catalog.frame[rows]
    first, last = (int(f) for f in catalog.frame[layout.row(clip, [segment.first, segment.last])])
    fps = float(catalog.clip_fps[clip])
    name = catalog.clip_name[clip]
    view = segment.view
    return {
        "id": f"{name}#{first}-{last}", "clip": name,
        "start": round(first / fps, TIME_DECIMALS) if fps > 0 else None,
        "end": round(last / fps, TIME_DECIMALS) if fps > 0 else None,
        "score": round(segment.score, 6),
        "fit_residual": None if segment.residual is None else round(segment.residual, 6),
        "alignment": np.stack([query_frames[pairs[:, 0]], clip_frames], axis=1).astype(np.int64),
        "metadata": {"clip": name, "fps": fps, "labels": catalog.clip_label_dicts[clip],
                     "source": catalog.clip_sources[clip], "first_frame": first, "last_frame": last,
                     "view": view, "view_azimuth_deg": float(catalog.view_azimuths[view])},
    }


async def _sequence_embeddings(bundle: Bundle, settings: Settings, sequence, metrics: ServiceMetrics,
                               timings: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   QueryShape | None]:
    """(F, D) embeddings (zero rows where missing), (F,) times, (F,) present and the query's shape."""
    times = sequence_times(sequence, settings)
    present = np.array([frame is not None for frame in sequence.frames])
    index = np.flatnonzero(present)
    items = [sequence.frames[i] for i in index]
    metrics.observe_items(ENDPOINT, len(items))
    prepared = await pipeline.prepare(bundle, settings, items, [f"sequence.frames[{i}]" for i in index], timings)
    embedded = np.concatenate(await pipeline.embed(bundle, prepared, timings))
    embeddings = np.zeros((len(times), bundle.dim), np.float32)
    embeddings[index] = embedded
    features = np.concatenate([p.fit_rows for p in prepared])
    scales = np.array([p.frames[0, 2] if p.frames is not None else np.nan for p in prepared])
    return embeddings, times, present, query_shape(features, [p.graph for p in prepared], present, scales)


async def _video_embeddings(bundle: Bundle, settings: Settings, video, metrics: ServiceMetrics,
                            timings: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, np.ndarray,
                                                                QueryShape | None]:
    data = video._data
    if data is None:
        raise InvalidRequestError("a video is sent as the multipart file field `video`", VIDEO_FIELD)
    metrics.observe_items(ENDPOINT, 1)
    async with bundle.detectors.slots:  # one BlazePose instance for the whole video
        tracked = await anyio.to_thread.run_sync(read_video, data, bundle.detectors, video, settings)
    for name, ms in tracked.timings.items():
        pipeline.add_timing(timings, name, ms)
    started = time.perf_counter()
    embedded = await bundle.models.run(pipeline.ENCODER_OF["image"], tracked.features)
    pipeline.add_timing(timings, "encoder", (time.perf_counter() - started) * 1e3)
    embeddings = np.zeros((len(tracked.times), bundle.dim), np.float32)
    embeddings[tracked.present] = embedded
    shape = query_shape(tracked.features, [pipeline.ENCODER_OF["image"]], tracked.present, tracked.scales)
    return embeddings, tracked.times, tracked.present, tracked.info, tracked.frames, shape


async def answer(request: Request, req, bundle: Bundle, settings: Settings, metrics: ServiceMetrics) -> Response:
    """The /retrieve answer for a request with ``sequence`` or ``video``
    (``service.schemas.requests.RetrieveRequest``)."""
    timings = request.state.timings = {}
    if req.search_effort > settings.max_search_effort:
        raise OutOfRangeError(f"search_effort is at most {settings.max_search_effort:g}", "search_effort")
    if req.k > min(MAX_SEGMENTS, settings.max_results):
        raise OutOfRangeError(f"k = {req.k}: a sequence or video query answers at most "
                              f"{min(MAX_SEGMENTS, settings.max_results)} segments", "k")
    pose_mask = bundle.catalog.pose_mask(req.filters)
    expr = bundle.catalog.expression(req.filters)
    video_info = None
    if req.video is not None:
        embeddings, times, present, video_info, query_frames, shape = await _video_embeddings(
            bundle, settings, req.video, metrics, timings)
    else:
        embeddings, times, present, shape = await _sequence_embeddings(bundle, settings, req.sequence, metrics,
                                                                       timings)
        query_frames = np.arange(len(times))
    started = time.perf_counter()
    lifts = await sequence_lifts(bundle, embeddings, present, shape)
    pipeline.add_timing(timings, "lift", (time.perf_counter() - started) * 1e3)
    segments, stats = await anyio.to_thread.run_sync(run_search, bundle, embeddings, times, present, pose_mask,
                                                     req.search_effort, req.k, req.group_by_clip, shape, expr, lifts)
    for name, ms in stats.timings.items():
        pipeline.add_timing(timings, name, ms)
    results = [segment_result(bundle, s, query_frames) for s in segments]
    rate = clip_layout(bundle.catalog).primary_rate
    body: dict = {"model_version": bundle.model_version, "results": results,
                  "sequence": {"frames": int(len(times)), "present_frames": int(present.sum()),
                               "duration": round(float(times[-1] - times[0]), TIME_DECIMALS), "rate": rate,
                               "grid_frames": stats.grid_frames, "grid_present": stats.present_frames,
                               "anchors": stats.anchors, "windows": stats.windows, "columns": stats.columns}}
    if video_info is not None:
        body["video"] = video_info
    body.update(k=req.k, licence=bundle.licence)
    return await json_response(body)
