"""POST /embed: inputs (2D poses, 3D poses, images) -> L2-normalised embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service import pipeline
from service.body import attach_upload, check_batch, multipart_request, read_body, validate
from service.deps import BundleDep, MetricsDep, SettingsDep, require_read_key
from service.schemas import (
    EMBED_ADAPTER,
    EMBED_EXAMPLES,
    ERROR_RESPONSES,
    IMAGE_FORM_FIELDS,
    EmbedResponse,
    ImageInput,
    json_schema,
    openapi_body,
)

router = APIRouter(tags=["embed"], dependencies=[Depends(require_read_key)])


@router.post("/embed", response_model=EmbedResponse, responses=ERROR_RESPONSES,
             summary="Embed 2D poses, 3D poses or images",
             openapi_extra=openapi_body(json_schema(EMBED_ADAPTER), EMBED_EXAMPLES, IMAGE_FORM_FIELDS))
async def embed(request: Request, bundle: BundleDep, settings: SettingsDep, metrics: MetricsDep) -> JSONResponse:
    """One embedding per input (D floats, unit length). Images also return the people found (box, the h36m17
    keypoints used, visibilities), largest first; with `all_people` each person carries its own embedding and
    `embeddings` holds the largest person's."""
    data, upload = await read_body(request)
    if upload is not None:
        data = multipart_request(data, lambda item, rest: {"inputs": [item], **rest})
    if isinstance(data, dict) and isinstance(data.get("inputs"), list):
        check_batch(len(data["inputs"]), settings.max_batch, "inputs")
    req = validate(EMBED_ADAPTER, data)
    if upload is not None:
        attach_upload(req.inputs[0], upload)
    metrics.observe_items("/embed", len(req.inputs))
    timings = request.state.timings = {}
    fields = [f"inputs[{i}]" for i in range(len(req.inputs))]
    prepared = await pipeline.prepare(bundle, settings, req.inputs, fields, timings)
    embeddings = await pipeline.embed(bundle, prepared, timings)
    people = []
    for item, p, emb in zip(req.inputs, prepared, embeddings):
        if p.people is None:
            people.append(None)
            continue
        entries = [dict(person) for person in p.people]
        if isinstance(item, ImageInput) and item.all_people:
            for entry, vector in zip(entries, emb):
                entry["embedding"] = pipeline.embedding_list(vector)
        people.append(entries)
    return JSONResponse({
        "model_version": bundle.model_version,
        "dim": bundle.dim,
        "embeddings": [pipeline.embedding_list(e[0]) for e in embeddings],
        "people": people,
    })
