"""POST /lift3d: a 2D pose or image (or any input) -> its 3D pose, mm, root-relative, camera frame."""

from __future__ import annotations

from typing import Union

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from service import pipeline
from service.body import attach_upload, check_batch, multipart_request, read_body, validate
from service.deps import BundleDep, MetricsDep, SettingsDep, require_read_key
from service.schemas import (
    ERROR_RESPONSES,
    IMAGE_FORM_FIELDS,
    LIFT_BATCH_ADAPTER,
    LIFT_EXAMPLES,
    LIFT_SINGLE_ADAPTER,
    ImageInput,
    LiftBatchRequest,
    LiftResponse,
    QueryInput,
    json_schema,
    openapi_body,
)

router = APIRouter(tags=["lift3d"], dependencies=[Depends(require_read_key)])
_SCHEMA = json_schema(TypeAdapter(Union[QueryInput, LiftBatchRequest]))


@router.post("/lift3d", response_model=LiftResponse, responses=ERROR_RESPONSES,
             summary="Lift a 2D pose or an image to 3D",
             openapi_extra=openapi_body(_SCHEMA, LIFT_EXAMPLES, IMAGE_FORM_FIELDS))
async def lift3d(request: Request, bundle: BundleDep, settings: SettingsDep, metrics: MetricsDep) -> JSONResponse:
    """Encoder, then the 3D decoder: `pose3d` is (17, 3) mm, root-relative (pelvis at 0), in the camera frame
    with OpenCV axes (x right, y down, z forward). A body with `inputs` is a batch, answered as `outputs`."""
    data, upload = await read_body(request)
    if upload is not None:
        data = multipart_request(data, lambda item, rest: {**rest, **item})
    batch = isinstance(data, dict) and "inputs" in data
    if batch and isinstance(data["inputs"], list):
        check_batch(len(data["inputs"]), settings.max_batch, "inputs")
    if batch:
        items = validate(LIFT_BATCH_ADAPTER, data).inputs
        fields = [f"inputs[{i}]" for i in range(len(items))]
    else:
        items, fields = [validate(LIFT_SINGLE_ADAPTER, data)], [""]
    if upload is not None:
        attach_upload(items[0], upload)
    metrics.observe_items("/lift3d", len(items))
    timings = request.state.timings = {}
    prepared = await pipeline.prepare(bundle, settings, items, fields, timings)
    embeddings = await pipeline.embed(bundle, prepared, timings)
    poses = await pipeline.lift(bundle, np.concatenate(embeddings), timings)
    outputs, row = [], 0
    for item, p, emb in zip(items, prepared, embeddings):
        output: dict = {"pose3d": pipeline.pose_list(poses[row]), "units": "mm", "frame": "camera"}
        if p.people is not None:
            people = [dict(person) for person in p.people]
            if isinstance(item, ImageInput) and item.all_people:
                for j, person in enumerate(people):
                    person["pose3d"] = pipeline.pose_list(poses[row + j])
            output["people"] = people
        outputs.append(output)
        row += len(emb)
    if batch:
        return JSONResponse({"model_version": bundle.model_version, "outputs": outputs})
    return JSONResponse({"model_version": bundle.model_version, **outputs[0]})
