"""POST /admin/reload: verify a bundle and swap it in atomically (admin key)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service import lifecycle
from service.deps import RELOAD_BODY, ReloadBody, require_admin_key
from service.openapi import body_doc
from service.schemas.errors import error_responses

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin_key)])


@router.post("/reload", summary="Load and serve a bundle",
             responses=error_responses(400, 401, 403, 404, 413, 415, 422), openapi_extra=body_doc(RELOAD_BODY))
async def reload(request: Request, req: ReloadBody) -> JSONResponse:
    """Verifies the bundle (the configured one, or `bundle`) and swaps it in; requests already running finish
    on the old bundle. A bundle that fails verification is refused (422 `bundle_rejected`) and the old one keeps
    serving."""
    started = time.perf_counter()
    bundle, previous = await lifecycle.reload(request.app, req.bundle)
    request.state.model_version = bundle.model_version
    return JSONResponse({"model_version": bundle.model_version, "previous_model_version": previous,
                         "bundle": bundle.path.name, "load_seconds": round(time.perf_counter() - started, 3)})
