"""What the routes share: inputs -> features -> embeddings -> (poses | search hits), on one bundle.

Every function takes the ``Bundle`` the request started with, so a reload never mixes two bundles in one answer.
CPU work (image decoding and BlazePose, ONNX, FAISS) runs in worker threads; ONNX calls go through the per-graph
micro-batchers. Stage timings (ms) accumulate in the ``timings`` dict the route passes (sent as Server-Timing).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
import numpy as np
from fastapi import Request

from model.pose.joint_conventions import exact_joints
from model.pose.perspective_crop import to_real_camera
from model.pose.skeleton import root_centred
from model.pose.units import MM_PER_M
from model.retrieval.rerank import candidate_count, method_of
from service.artifacts import Bundle
from service.camera import CameraChoice
from service.config import Settings
from service.encoder import ENCODER_OF
from service.errors import ImageTooLargeError, InvalidImageError, UnihprError, raise_first, subfield
from service.images import DetectedPeople, detect_people, image_pixels
from service.inputs import embedding_to_vector, pose2d_to_features, pose3d_to_features
from service.memory import release_memory
from service.metrics import ServiceMetrics
from service.plain_poses import PlainPose2D, plain_pose2d_features
from service.pose_search import Hit, QueryGeometry, rerank, search_candidates, search_poses, with_lifted
from service.schemas.inputs import EmbeddingInput, ImageInput, Pose2DInput, Pose3DInput

INLINE_CONVERSIONS = 64  # more pose inputs than this are converted in a worker thread (64 uniform poses: ~0.7 ms)
INLINE_SEARCH_VECTORS = 50_000  # unfiltered searches visiting fewer vectors run on the event loop (~0.1 ms)
INLINE_RERANK_ROWS = 2  # re-ranking this many query rows runs on the event loop (under a millisecond), more in a thread
MODALITY_OF = {graph: modality for modality, graph in ENCODER_OF.items()}
RELEASE_AFTER_PIXELS = 50_000_000  # after decoding more than this, give the freed memory back to the system
POSE_DECIMALS = 2


@dataclass
class Prepared:
    """One input ready for its graph.

    graph: the encoder to run, or None when ``rows`` already are embeddings.
    rows: (P, 17, 3) float32 features, or (P, D) float32 embeddings; P > 1 only for images with all_people.
    people: for images, the detected people (JSON-ready), aligned with the rows.
    crop: for 2D inputs, (P, 3, 3) the perspective crops' rotations (real -> virtual camera): what the encoder
        saw is in the virtual camera, ``model.pose.perspective_crop.to_real_camera`` takes a pose back. None for 3D
        poses and embeddings (their frame is the one they were given in: identity).
    camera: for 2D inputs, the camera assumed (``CameraChoice.as_json`` says it in an answer); None otherwise.
    frames: for 2D inputs, (P, 3) the crops' frames (``model.pose.features``; NaN rows on the optical axis: no rays);
    None otherwise.
    exact: for 2D inputs, (17,) the weight of each joint in geometric fits (``model.pose.joint_conventions
    .exact_joints``: 0 where the input's layout gives a joint only approximately); None: all 1.
    """

    graph: str | None
    rows: np.ndarray
    people: list[dict] | None = None
    crop: np.ndarray | None = None
    camera: CameraChoice | None = None
    frames: np.ndarray | None = None
    exact: np.ndarray | None = None

    @property
    def modality(self) -> str | None:
        """pose2d, pose3d or image; None for embeddings."""
        return MODALITY_OF.get(self.graph)

    @property
    def fit_rows(self) -> np.ndarray:
        """The rows as the geometric fits read them: 2D features with each joint's confidence times ``exact``."""
        if self.exact is None:
            return self.rows
        rows = self.rows.copy()
        rows[..., 2] *= self.exact
        return rows

    def geometry(self) -> list[QueryGeometry]:
        """What re-ranking fits each row with (``service.pose_search.QueryGeometry``)."""
        out = []
        for j, features in enumerate(self.fit_rows if self.graph is not None else [None] * len(self.rows)):
            frame = None if self.frames is None or not np.isfinite(self.frames[j]).all() else self.frames[j]
            method = None if features is None else method_of(self.modality, frame is not None)
            out.append(QueryGeometry(method, features, frame))
        return out


def crops_of(prepared: list[Prepared], embeddings: list[np.ndarray]) -> np.ndarray | None:
    """(M, 3, 3) the crop rotation of every embedding row (identity where an input has none), or None when no
    input has one."""
    if all(p.crop is None for p in prepared):
        return None
    return np.concatenate([p.crop if p.crop is not None else np.broadcast_to(np.eye(3), (len(e), 3, 3))
                           for p, e in zip(prepared, embeddings)])


def add_timing(timings: dict[str, float], name: str, ms: float) -> None:
    timings[name] = timings.get(name, 0.0) + ms


def _image_bytes(item: ImageInput, field: str) -> bytes:
    if item._data is not None:
        return item._data
    if item.image_b64 is None:
        raise InvalidImageError("an image input needs `image_b64` (or a multipart file field `image`)",
                                subfield(field, "image_b64"))
    text = item.image_b64
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]  # data:image/png;base64,....
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidImageError("image_b64 is not valid base64", subfield(field, "image_b64")) from err


def _owner(err: UnihprError, indices: list[int], fields: list[str]) -> int:
    """The input (among ``indices``) an error's field path belongs to, so the first bad input is reported."""
    for i in indices:
        if fields[i] and err.field and (err.field == fields[i] or err.field.startswith((f"{fields[i]}.",
                                                                                         f"{fields[i]}["))):
            return i
    return indices[0]


def _prepare_poses(bundle: Bundle, settings: Settings, items: list, fields: list[str],
                   indices: list[int]) -> dict[int, Prepared]:
    """Pose and embedding inputs (by their indices) -> Prepared; features computed per modality in one batch."""
    out: dict[int, Prepared] = {}
    by_kind: dict[type, list[int]] = {}
    for i in indices:
        by_kind.setdefault(type(items[i]), []).append(i)
    errors = []
    for kind, idx in by_kind.items():
        crop, cameras, frames = None, None, None
        try:
            if kind is Pose2DInput:
                rows, crop, cameras, frames = pose2d_to_features([items[i] for i in idx], [fields[i] for i in idx],
                                                                 settings.min_visible_joints)
                graph = ENCODER_OF["pose2d"]
            elif kind is Pose3DInput:
                rows = pose3d_to_features([items[i] for i in idx], [fields[i] for i in idx], bundle.world_to_camera)
                graph = ENCODER_OF["pose3d"]
            elif kind is EmbeddingInput:
                rows = np.concatenate([embedding_to_vector(items[i], fields[i], bundle.dim) for i in idx])
                graph = None
            else:
                raise TypeError(f"not a pose input: {kind.__name__}")
        except UnihprError as err:
            errors.append((_owner(err, idx, fields), err))
            continue
        layouts = {items[i].layout for i in idx} if kind is Pose2DInput else set()
        exact = {layout: exact_joints(layout) for layout in layouts}  # once per layout, not per pose (2 us each)
        for j, i in enumerate(idx):
            out[i] = Prepared(graph, rows[j : j + 1], crop=None if crop is None else crop[j : j + 1],
                              camera=None if cameras is None else cameras[j],
                              frames=None if frames is None else frames[j : j + 1],
                              exact=exact[items[i].layout] if kind is Pose2DInput else None)
    raise_first(errors)
    return out


def _image_sizes(items: list, fields: list[str], images: list[int],
                 max_pixels: int) -> tuple[dict[int, bytes], int]:
    """The image inputs' bytes (base64 decoded) and their total pixel count from the headers (nothing decoded);
    an image over ``max_pixels`` is refused here, before any waiting or decoding."""
    data, total = {}, 0
    for i in images:
        field = _image_field(items[i], fields[i])
        data[i] = _image_bytes(items[i], fields[i])
        pixels = image_pixels(data[i], field)
        if pixels > max_pixels:
            raise ImageTooLargeError(f"{pixels} pixels; at most {max_pixels} per image", field)
        total += pixels
    return data, total


def _image_field(item: ImageInput, field: str) -> str:
    return "image" if item._data is not None else subfield(field, "image_b64")


async def _detect(bundle: Bundle, settings: Settings, item: ImageInput, data: bytes, field: str) -> DetectedPeople:
    """Decode and detect once a BlazePose instance is free, so waiting images are never held decoded."""
    async with bundle.detectors.slots:
        return await anyio.to_thread.run_sync(detect_people, data, bundle.detectors, settings.max_image_pixels,
                                              settings.max_people if item.all_people else 1,
                                              _image_field(item, field), item, field)


async def prepare(bundle: Bundle, settings: Settings, items: list, fields: list[str],
                  timings: dict[str, float]) -> list[Prepared]:
    """Validate and featurise every input. A bad input raises its domain error and fails the whole request: the
    first bad pose (by position), checked before any image is decoded, else the first failing image."""
    out: list[Prepared | None] = [None] * len(items)
    poses = [i for i, item in enumerate(items) if not isinstance(item, ImageInput)]
    images = [i for i, item in enumerate(items) if isinstance(item, ImageInput)]

    if len(poses) > INLINE_CONVERSIONS:
        converted = await anyio.to_thread.run_sync(_prepare_poses, bundle, settings, items, fields, poses)
    else:
        converted = _prepare_poses(bundle, settings, items, fields, poses)
    for i, p in converted.items():
        out[i] = p
    if images:
        data, pixels = await anyio.to_thread.run_sync(_image_sizes, items, fields, images,
                                                      settings.max_image_pixels)
        if pixels > settings.max_request_pixels:
            raise ImageTooLargeError(f"the request's images hold {pixels} pixels; at most {settings.max_request_pixels}"
                                     " per request (send fewer or smaller images)", fields[images[0]] or None)
        try:
            detected = await asyncio.gather(*(_detect(bundle, settings, items[i], data[i], fields[i]) for i in images))
        finally:
            if pixels > RELEASE_AFTER_PIXELS:
                await anyio.to_thread.run_sync(release_memory)
        for i, found in zip(images, detected):
            out[i] = Prepared(ENCODER_OF["image"], found.features, found.people, found.crop, found.camera,
                              found.frames)
            for name, ms in found.timings.items():
                add_timing(timings, name, ms)
    return out  # type: ignore[return-value]


async def embed(bundle: Bundle, prepared: list[Prepared], timings: dict[str, float]) -> list[np.ndarray]:
    """Embeddings per input: (P, D) float32, L2-normalised; one (micro-batched) ONNX call per encoder."""
    started = time.perf_counter()
    out: list[np.ndarray | None] = [p.rows if p.graph is None else None for p in prepared]
    graphs = sorted({p.graph for p in prepared if p.graph is not None})

    async def run(graph: str) -> None:
        members = [i for i, p in enumerate(prepared) if p.graph == graph]
        rows = np.concatenate([prepared[i].rows for i in members])  # (sum P, 17, 3)
        result = await bundle.models.run(graph, rows)  # (sum P, D)
        start = 0
        for i in members:
            stop = start + len(prepared[i].rows)
            out[i] = result[start:stop]
            start = stop

    if len(graphs) == 1:  # the common request: awaited directly, gather would wrap it in a task (a loop pass)
        await run(graphs[0])
    else:
        await asyncio.gather(*(run(g) for g in graphs))
    if graphs:
        add_timing(timings, "encoder", (time.perf_counter() - started) * 1e3)
    return out  # type: ignore[return-value]


async def lift(bundle: Bundle, embeddings: np.ndarray, timings: dict[str, float],
               crop: np.ndarray | None = None) -> np.ndarray:
    """embeddings: (M, D); crop: (M, 3, 3) each row's perspective-crop rotation (``crops_of``) or None.

    returns: (M, 17, 3) float64 mm, root-relative (pelvis exactly 0), in each input's real camera frame (the
    decoder answers in the crop's virtual camera; ``to_real_camera`` turns it back).
    """
    started = time.perf_counter()
    out = await bundle.models.run("decoder3d", embeddings)  # (M, 17, 3) metres
    poses = out.astype(np.float64) * bundle.mm_per_unit
    poses = root_centred(poses)
    if crop is not None:
        poses = to_real_camera(poses, crop)
    add_timing(timings, "decoder", (time.perf_counter() - started) * 1e3)
    return poses


async def search(bundle: Bundle, queries: np.ndarray, k: int, pose_mask: np.ndarray | None, effort: float,
                 group_by_clip: bool, timings: dict[str, float], expr: str | None = None,
                 find: Callable = search_poses) -> list:
    """queries: (Q, D) -> per query at most k hits (poses de-duplicated by (clip, frame), or one per clip), as
    ``find`` gives them: ``search_poses`` (lists of ``Hit``) or ``search_candidates`` (arrays, for re-ranking).
    expr: the filter of ``pose_mask`` as a Milvus expression (``PoseCatalog.expression``)."""
    started = time.perf_counter()
    group = bundle.catalog.clip if group_by_clip else None
    if pose_mask is None and group is None and len(queries) * bundle.index.visited(effort) <= INLINE_SEARCH_VECTORS:
        hits = find(bundle.index, queries, k, None, effort, None)  # cheaper than a thread hop
    else:
        hits = await anyio.to_thread.run_sync(find, bundle.index, queries, k, pose_mask, effort, group, expr)
    add_timing(timings, "search", (time.perf_counter() - started) * 1e3)
    return hits


async def search_and_rerank(bundle: Bundle, queries: np.ndarray, prepared: list[Prepared], k: int,
                            pose_mask: np.ndarray | None, effort: float, group_by_clip: bool, rerank_on: bool,
                            timings: dict[str, float], expr: str | None = None) -> tuple[list[list[Hit]], bool]:
    """Top-k hits per query row, geometrically re-ranked (``service.pose_search.rerank``) when ``rerank_on`` and
    the bundle is calibrated for it: ``candidate_count(k)`` candidates searched, joined by the lifted candidates
    when the bundle has them (``service.pose_search.with_lifted``), fitted, k kept.

    prepared: the request's inputs, whose rows ``queries`` concatenates (what each row is fitted with, read only
    when re-ranking). returns: the hits and whether re-ranking was applied.
    """
    reranking = bundle.reranking if rerank_on else None
    if reranking is None:
        return await search(bundle, queries, k, pose_mask, effort, group_by_clip, timings, expr), False
    geometry = geometry_of(prepared)
    hits = await search(bundle, queries, candidate_count(k, reranking.candidates), pose_mask, effort, group_by_clip,
                        timings, expr, find=search_candidates)
    lifted = await lifted_poses(bundle, queries, geometry) if reranking.lifted else [None] * len(hits)
    started = time.perf_counter()
    poses, rotations = bundle.catalog.poses, bundle.catalog.rotations
    group = bundle.catalog.clip if group_by_clip else None

    def candidates_and_fit() -> list[list[Hit]]:
        joined = with_lifted(hits, lifted, queries, reranking, bundle.index, poses, rotations, pose_mask, group)
        return rerank(joined, geometry, poses, rotations, reranking, k)

    if len(hits) <= INLINE_RERANK_ROWS:
        out = candidates_and_fit()
    else:
        out = await anyio.to_thread.run_sync(candidates_and_fit)
    add_timing(timings, "rerank", (time.perf_counter() - started) * 1e3)
    return out, True


async def lifted_poses(bundle: Bundle, queries: np.ndarray, geometry: list[QueryGeometry]) -> list[np.ndarray | None]:
    """Per query row the 3D its lifted candidates are searched with: (17, 3) mm root-relative, the pose itself for a
    3D query, the decoder's lift of its embedding for 2D and images; None for rows that are not re-ranked."""
    out: list[np.ndarray | None] = [None] * len(geometry)
    lift = [i for i, g in enumerate(geometry) if g.method is not None and g.method != "pose3d"]
    if lift:
        decoded = await bundle.models.run("decoder3d", queries[lift])  # (L, 17, 3) metres
        for i, pose in zip(lift, root_centred(decoded.astype(np.float64) * bundle.mm_per_unit)):
            out[i] = pose
    for i, g in enumerate(geometry):
        if g.method == "pose3d":
            out[i] = np.asarray(g.features, np.float64) * MM_PER_M  # root-relative metres, camera frame
    return out


def geometry_of(prepared: list[Prepared]) -> list[QueryGeometry]:
    """Every query row's geometry, in the order of the concatenated embeddings."""
    return [g for p in prepared for g in p.geometry()]


async def embed_request(request: Request, endpoint: str, req, bundle: Bundle, settings: Settings,
                        metrics: ServiceMetrics) -> tuple[list[Prepared], list[np.ndarray], dict[str, float]]:
    """What every route starts with: count the request's items, then validate, featurise and embed them.

    req: a request model with ``items`` and ``item_fields`` (``service.schemas.requests``).
    returns: per item its Prepared and (P, D) embeddings, and the stage timings (also sent as Server-Timing).
    """
    metrics.observe_items(endpoint, len(req.items))
    timings = request.state.timings = {}
    prepared = await prepare(bundle, settings, req.items, req.item_fields, timings)
    return prepared, await embed(bundle, prepared, timings), timings


async def embed_plain_request(request: Request, endpoint: str, poses: PlainPose2D, bundle: Bundle, settings: Settings,
                              metrics: ServiceMetrics) -> np.ndarray:
    """``embed_request`` for a request of plain 2D poses (``service.plain_poses``): (N, D) float32 embeddings,
    one per pose, from one array of features."""
    metrics.observe_items(endpoint, len(poses))
    timings = request.state.timings = {}
    if len(poses) > INLINE_CONVERSIONS:
        features = await anyio.to_thread.run_sync(plain_pose2d_features, poses, settings.min_visible_joints)
    else:
        features = plain_pose2d_features(poses, settings.min_visible_joints)
    (embeddings,) = await embed(bundle, [Prepared(ENCODER_OF["pose2d"], features)], timings)  # one input of N rows
    return embeddings


def people_of(item, prepared: Prepared, per_person: Callable[[int], dict]) -> list[dict] | None:
    """The people found in an image input (JSON-ready), or None for other inputs. With ``all_people`` person j
    also gets ``per_person(j)`` (its own embedding, pose or results)."""
    if prepared.people is None:
        return None
    people = [dict(person) for person in prepared.people]
    if isinstance(item, ImageInput) and item.all_people:
        for j, person in enumerate(people):
            person.update(per_person(j))
    return people


def answer_embedding(vector: np.ndarray) -> np.ndarray:
    """(..., D) float32 as answered: each value written as the shortest text that reads back as the same float32
    (about 7 significant digits; ``service.responses`` writes arrays as lists)."""
    return vector.astype(np.float32, copy=False)


def rounded_pose(pose: np.ndarray) -> np.ndarray:
    """(..., 17, 3) float64 mm rounded for the answer (a batch's poses in one call: 1 us a pose in numpy's calls
    when rounded one by one)."""
    return np.round(pose, POSE_DECIMALS)
