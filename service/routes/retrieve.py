"""POST /retrieve: nearest database poses to a query (any /embed input, or an embedding)."""

from __future__ import annotations

import asyncio

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import motion_search, pipeline
from service.deps import RETRIEVE_BODY, OutputLayout, RetrieveRead
from service.errors import OutOfRangeError, ResultTooLargeError
from service.openapi import body_doc
from service.responses import json_response
from service.schemas.errors import READ_ERRORS
from service.schemas.responses import RetrieveResponse
from service.segments import clip_segments

router = APIRouter(tags=["retrieve"])
STEP_RESULTS = 256  # results built between two passes through the event loop


@router.post("/retrieve", summary="Find the database poses nearest to a query",
             response_model=RetrieveResponse, responses=READ_ERRORS, openapi_extra=body_doc(RETRIEVE_BODY))
async def retrieve(request: Request, read: RetrieveRead, layout: OutputLayout = "h36m17") -> Response:
    """Top-k poses, one result per (clip, frame) (the best of its virtual views), or per clip with
    `group_by_clip`, ordered by `rank_score`: the 100 best by cosine `score` (k when larger), with the poses
    nearest the query's lifted 3D by joint distances (`/info`'s `rerank.lifted_candidates`), are re-ranked by how
    well each one's 3D explains the query (`fit_residual`: a camera fitted to a 2D query, a similarity to a 3D
    query) and the k best kept, each with its `confidence` (the expected PA-MPJPE to the query's true pose,
    calibrated on held-out queries). `rerank: false`, embedding queries and bundles built without a calibration
    keep the cosine order. `filters` restrict the search to clips by name or label. Each result's pose3d is in
    mm, root-relative, world Y-up by default or, with `align_to_query`, as the view that matched sees it, in the
    query's camera frame (it then faces like the query: for a 2D query, the matched view stands for the virtual
    camera aimed at the person and is turned back into the query's real camera). Poses come in the joint
    convention `layout` (the field's `h36m17` by default, converted from the library's `unihpr17`). A batch
    (`queries`) is answered as `batches`. Every response carries the data licence of the poses it returns.

    Motion search: a `sequence` of poses (or a multipart `video` upload) is answered with the best-matching
    segments of library clips (`{id, clip, start, end, score, alignment, metadata}`, no two of one clip
    overlapping), found at any speed from 1/3x to 3x (`service.motion_search`)."""
    req, bundle, settings, metrics = read.body, read.bundle, read.settings, read.metrics
    if req.sequence is not None or req.video is not None:
        return await motion_search.answer(request, req, bundle, settings, metrics)
    if req.search_effort > settings.max_search_effort:
        raise OutOfRangeError(f"search_effort is at most {settings.max_search_effort:g}", "search_effort")
    check_result_count(req.k, len(req.items), settings.max_results)
    pose_mask = bundle.catalog.pose_mask(req.filters)
    expr = bundle.catalog.expression(req.filters)
    prepared, embeddings, timings = await pipeline.embed_request(request, "/retrieve", req, bundle, settings,
                                                                 metrics)
    rows = sum(len(e) for e in embeddings)  # images with all_people add a query per person
    check_result_count(req.k, rows, settings.max_results)
    queries = np.concatenate(embeddings)
    hits, reranked = await pipeline.search_and_rerank(bundle, queries, prepared, req.k, pose_mask, req.search_effort,
                                                      req.group_by_clip, req.rerank, timings, expr)

    crops = pipeline.crops_of(prepared, embeddings) if req.align_to_query else None
    results = await hit_results(bundle, hits, req.align_to_query, req.include_pose3d, crops, layout)  # per row
    if req.group_by_clip:
        spans = await anyio.to_thread.run_sync(clip_segments, bundle, queries, hits)
        for row_results, row_spans in zip(results, spans):
            for result, (start, end) in zip(row_results, row_spans):
                result["start"], result["end"] = start, end
    starts = np.cumsum([0, *(len(e) for e in embeddings)])
    answers = []
    for item, p, row in zip(req.items, prepared, starts):
        answer: dict = {"results": results[row]}
        people = pipeline.people_of(item, p, lambda j, row=row: {"results": results[row + j]})
        if people is not None:
            answer["people"] = people
        answers.append(answer)
    body: dict = {"model_version": bundle.model_version}
    if req.query is not None:
        body.update(answers[0])
    else:
        body["batches"] = answers
    body.update(k=req.k, reranked=reranked, pose_frame="camera" if req.align_to_query else "world_yup",
                layout=layout, licence=bundle.licence)
    return await json_response(body)


async def hit_results(bundle, hits: list[list], align_to_query: bool, include_pose3d: bool,
                      crops: np.ndarray | None = None, layout: str = "h36m17") -> list[list[dict]]:
    """The results of every row of hits, built on the event loop about STEP_RESULTS at a time with a pass through
    the loop between steps (see ``service.responses`` for why not in a thread).

    crops: (rows, 3, 3) each query row's perspective-crop rotation (aligned poses are turned back into the query's
    real camera frame), or None for identity. layout: the joint convention of the poses."""
    out = []
    done = 0
    for i, row in enumerate(hits):
        crop = None if crops is None else crops[i]
        out.append(bundle.catalog.results(row, align_to_query, include_pose3d, crop, layout))
        done += len(row)
        if done >= STEP_RESULTS:
            done = 0
            await asyncio.sleep(0)
    return out


def check_result_count(k: int, queries: int, limit: int) -> None:
    """Refuse, before any work, an answer of more than ``limit`` results."""
    if k * queries > limit:
        raise ResultTooLargeError(f"the answer would hold k x queries = {k} x {queries} = {k * queries} results; "
                                  f"at most {limit} per request (lower k or split the queries)", "k")
