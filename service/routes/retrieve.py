"""POST /retrieve: nearest database poses to a query (any /embed input, or an embedding)."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service import pipeline
from service.deps import RETRIEVE_BODY, BundleDep, MetricsDep, RetrieveBody, SettingsDep, require_read_key
from service.errors import OutOfRangeError
from service.openapi import body_doc
from service.schemas import RetrieveResponse

router = APIRouter(tags=["retrieve"], dependencies=[Depends(require_read_key)])


@router.post("/retrieve", response_model=RetrieveResponse, summary="Find the database poses nearest to a query",
             openapi_extra=body_doc(RETRIEVE_BODY))
async def retrieve(request: Request, req: RetrieveBody, bundle: BundleDep, settings: SettingsDep,
                   metrics: MetricsDep) -> JSONResponse:
    """Top-k poses by cosine score, one result per (clip, frame) (the best of its virtual views), or per clip
    with `group_by_clip`. `filters` restrict the search to clips by name or label. Each result's pose3d is in
    mm, root-relative, world Y-up by default or, with `align_to_query`, in the camera frame of the view that
    matched (it then faces like the query). A batch (`queries`) is answered as `batches`. Every response
    carries the data licence of the poses it returns."""
    if req.search_effort > settings.max_search_effort:
        raise OutOfRangeError(f"search_effort is at most {settings.max_search_effort:g}", "search_effort")
    pose_mask = bundle.catalog.pose_mask(req.filters)
    prepared, embeddings, timings = await pipeline.embed_request(request, "/retrieve", req, bundle, settings,
                                                                 metrics)
    hits = await pipeline.search(bundle, np.concatenate(embeddings), req.k, pose_mask, req.search_effort,
                                 req.group_by_clip, timings)

    def results(row_hits) -> list[dict]:
        return [bundle.catalog.result(h.pose, h.view, h.score, req.align_to_query, req.include_pose3d)
                for h in row_hits]

    starts = np.cumsum([0, *(len(e) for e in embeddings)])
    answers = []
    for item, p, row in zip(req.items, prepared, starts):
        answer: dict = {"results": results(hits[row])}
        people = pipeline.people_of(item, p, lambda j, row=row: {"results": results(hits[row + j])})
        if people is not None:
            answer["people"] = people
        answers.append(answer)
    body: dict = {"model_version": bundle.model_version}
    if req.query is not None:
        body.update(answers[0])
    else:
        body["batches"] = answers
    body.update(k=req.k, pose_frame="camera" if req.align_to_query else "world_yup", licence=bundle.licence)
    return JSONResponse(body)
