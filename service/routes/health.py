"""Probes and introspection: GET /healthz, /readyz, /metrics (open) and /info (read key)."""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from service.artifacts import bundle_info
from service.deps import BundleDep, MetricsDep, SettingsDep, require_read_key
from service.errors import IndexNotReadyError, IndexUnavailableError, error_response
from service.motion_search import motion_limits
from service.schemas.errors import error_responses
from service.schemas.requests import MAX_K

LOG = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(request: Request) -> JSONResponse:
    bundle = request.app.state.bundle
    return JSONResponse({"status": "ok", "model_version": bundle.model_version if bundle else None})


@router.get("/readyz", summary="Readiness: a bundle is loaded and its index backend answers",
            responses=error_responses(503))
async def readyz(request: Request) -> JSONResponse:
    bundle = request.app.state.bundle
    if bundle is None:
        return error_response(request, IndexNotReadyError("no bundle is loaded yet"))
    index = bundle.index
    problem = None if index.backend == "faiss" else await anyio.to_thread.run_sync(index.health)
    if problem is not None:
        LOG.warning("not ready: %s", problem)  # the details stay in the log: the probe is open
        return error_response(request, IndexUnavailableError(f"the {index.backend} index does not answer"))
    return JSONResponse({"status": "ready", "model_version": bundle.model_version, "index_backend": index.backend})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)


@router.get("/info", summary="The served bundle: manifest summary, licence, limits",
            dependencies=[Depends(require_read_key)], responses=error_responses(401, 503))
async def info(request: Request, bundle: BundleDep, settings: SettingsDep) -> JSONResponse:
    limits = {"max_body_bytes": settings.max_body_bytes, "max_batch": settings.max_batch,
              "max_image_pixels": settings.max_image_pixels, "max_people": settings.max_people,
              "min_visible_joints": settings.min_visible_joints, "k": [1, MAX_K],
              "max_search_effort": settings.max_search_effort, "image_formats": ["JPEG", "PNG"],
              **motion_limits(settings)}
    device = request.app.state.device
    return JSONResponse({**bundle_info(bundle), "limits": limits,
                         "device": {"onnx_providers": list(device.providers), "faiss_gpu": device.faiss_gpu}})
