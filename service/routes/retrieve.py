"""POST /retrieve: nearest database poses to a query (any /embed input, or an embedding)."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service import pipeline
from service.body import attach_upload, check_batch, multipart_request, read_body, validate
from service.deps import BundleDep, MetricsDep, SettingsDep, require_read_key
from service.errors import OutOfRangeError
from service.schemas import (
    ERROR_RESPONSES,
    RETRIEVE_ADAPTER,
    RETRIEVE_EXAMPLES,
    RETRIEVE_FORM_FIELDS,
    ImageInput,
    RetrieveResponse,
    json_schema,
    openapi_body,
)

router = APIRouter(tags=["retrieve"], dependencies=[Depends(require_read_key)])


@router.post("/retrieve", response_model=RetrieveResponse, responses=ERROR_RESPONSES,
             summary="Find the database poses nearest to a query",
             openapi_extra=openapi_body(json_schema(RETRIEVE_ADAPTER), RETRIEVE_EXAMPLES, RETRIEVE_FORM_FIELDS))
async def retrieve(request: Request, bundle: BundleDep, settings: SettingsDep, metrics: MetricsDep) -> JSONResponse:
    """Top-k poses by cosine score, one result per (clip, frame) (the best of its virtual views), or per clip
    with `group_by_clip`. `filters` restrict the search to clips by name or label. Each result's pose3d is in
    mm, root-relative, world Y-up by default or, with `align_to_query`, in the camera frame of the view that
    matched (it then faces like the query). A batch (`queries`) is answered as `batches`. Every response
    carries the data licence of the poses it returns."""
    data, upload = await read_body(request)
    if upload is not None:
        data = multipart_request(data, lambda item, rest: {"query": item, **rest})
    if isinstance(data, dict) and isinstance(data.get("queries"), list):
        check_batch(len(data["queries"]), settings.max_batch, "queries")
    req = validate(RETRIEVE_ADAPTER, data)
    if upload is not None:
        attach_upload(req.query, upload)
    if req.search_effort > settings.max_search_effort:
        raise OutOfRangeError(f"search_effort is at most {settings.max_search_effort:g}", "search_effort")
    items = [req.query] if req.query is not None else req.queries
    fields = ["query"] if req.query is not None else [f"queries[{i}]" for i in range(len(items))]
    metrics.observe_items("/retrieve", len(items))
    timings = request.state.timings = {}
    pose_mask = bundle.catalog.pose_mask(req.filters)
    prepared = await pipeline.prepare(bundle, settings, items, fields, timings)
    embeddings = await pipeline.embed(bundle, prepared, timings)
    counts = [len(e) for e in embeddings]
    hits = await pipeline.search(bundle, np.concatenate(embeddings), req.k, pose_mask, req.search_effort,
                                 req.group_by_clip, timings)

    def results(row_hits) -> list[dict]:
        return [bundle.catalog.result(h.pose, h.view, h.score, req.align_to_query, req.include_pose3d)
                for h in row_hits]

    answers, row = [], 0
    for item, p, count in zip(items, prepared, counts):
        answer: dict = {"results": results(hits[row])}
        if p.people is not None:
            people = [dict(person) for person in p.people]
            if isinstance(item, ImageInput) and item.all_people:
                for j, person in enumerate(people):
                    person["results"] = results(hits[row + j])
            answer["people"] = people
        answers.append(answer)
        row += count
    body: dict = {"model_version": bundle.model_version}
    if req.query is not None:
        body.update(answers[0])
    else:
        body["batches"] = answers
    body["k"] = req.k
    body["pose_frame"] = "camera" if req.align_to_query else "world_yup"
    body["licence"] = bundle.licence
    return JSONResponse(body)
