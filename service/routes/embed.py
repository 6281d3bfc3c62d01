"""POST /embed: inputs (2D poses, 3D poses, images) -> L2-normalised embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import pipeline
from service.deps import EMBED_BODY, EmbedRead
from service.openapi import body_doc
from service.plain_poses import PlainPose2D
from service.responses import json_response
from service.schemas.errors import READ_ERRORS
from service.schemas.responses import EmbedResponse

router = APIRouter(tags=["embed"])


@router.post("/embed", summary="Embed 2D poses, 3D poses or images",
             response_model=EmbedResponse, responses=READ_ERRORS, openapi_extra=body_doc(EMBED_BODY))
async def embed(request: Request, read: EmbedRead) -> Response:
    """One embedding per input (D floats, unit length). Images also return the people found (box, the h36m17
    keypoints used, visibilities), largest first; with `all_people` each person carries its own embedding and
    `embeddings` holds the largest person's."""
    req, bundle = read.body, read.bundle
    if isinstance(req, PlainPose2D):  # 2D poses as plain numbers, read as one array
        embeddings = await pipeline.embed_plain_request(request, "/embed", req, bundle, read.settings, read.metrics)
        return await json_response({"model_version": bundle.model_version, "dim": bundle.dim,
                                    "embeddings": pipeline.answer_embedding(embeddings), "people": [None] * len(req)})
    prepared, embeddings, _ = await pipeline.embed_request(request, "/embed", req, bundle, read.settings, read.metrics)
    people = [pipeline.people_of(item, p, lambda j, e=e: {"embedding": pipeline.answer_embedding(e[j])})
              for item, p, e in zip(req.items, prepared, embeddings)]
    return await json_response({
        "model_version": bundle.model_version,
        "dim": bundle.dim,
        "embeddings": [pipeline.answer_embedding(e[0]) for e in embeddings],
        "people": people,
    })
