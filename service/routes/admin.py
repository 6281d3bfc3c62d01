"""POST /admin/reload: verify a bundle and swap it in atomically (admin key)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from service import lifecycle
from service.body import read_json, validate
from service.deps import require_admin_key
from service.schemas import ERROR_RESPONSES, ReloadRequest

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin_key)])
_ADAPTER = TypeAdapter(ReloadRequest)


@router.post("/reload", responses=ERROR_RESPONSES, summary="Load and serve a bundle",
             openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                 "schema": ReloadRequest.model_json_schema(),
                 "example": {"bundle": "bundles/default"}}}}})
async def reload(request: Request) -> JSONResponse:
    """Verifies the bundle (the configured one, or `bundle`) and swaps it in; requests already running finish
    on the old bundle. A bundle that fails verification is refused (422 `bundle_rejected`) and the old one keeps
    serving."""
    body = await request.body()
    req = validate(_ADAPTER, await read_json(request)) if body.strip() else ReloadRequest()
    started = time.perf_counter()
    bundle, previous = await lifecycle.reload(request.app, req.bundle)
    request.state.model_version = bundle.model_version
    return JSONResponse({"model_version": bundle.model_version, "previous_model_version": previous,
                         "bundle": bundle.path.name, "load_seconds": round(time.perf_counter() - started, 3)})
