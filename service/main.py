"""The FastAPI app: ``create_app(settings)`` assembles settings, middleware, error handlers and routers.

Run it with ``unihpr-serve`` (``service.cli``) or ``uvicorn --factory service.main:create_app``.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.config import Settings, get_settings
from service.deps import BODIES
from service.errors import register_exception_handlers
from service.lifecycle import lifespan
from service.metrics import ServiceMetrics
from service.middleware import RequestContextMiddleware
from service.openapi import build_openapi
from service.read_dispatch import ReadDispatch
from service.routes import admin, clips, embed, health, lift, pages, retrieve

DESCRIPTION = """Human-pose embeddings (UniHPR): one embedding space for images, 2D keypoints and 3D skeletons.

A web page for searching poses is at `/`. Every route is also served under `/v1`. Errors have the body
`{"error": {"code", "message", "field"}}`.
Responses carry `model_version` and the `X-Model-Version` and `X-Request-ID` headers. Retrieval results are
derived from their data set: see `licence` in each response and `/info`.

An embedding encodes a pose *as a camera sees it*: the same body seen from two sides embeds differently. Retrieval
is view-invariant nonetheless, because the database indexes every pose under several virtual views (a ring of
azimuths) and answers with the best view of each (clip, frame). 3D inputs: camera frame, OpenCV axes (x right,
y down, z forward), mm, unless they say `"frame": "world_yup"` or `"units": "m"`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app serving ``settings.bundle_path`` (the environment's settings when none are given)."""
    settings = settings or get_settings()
    app = FastAPI(title="UniHPR pose embedding service", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served by service.routes.pages with local assets
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.bundle = None
    app.state.reload_lock = asyncio.Lock()  # binds to the serving loop on first use
    register_exception_handlers(app)
    app.add_middleware(ReadDispatch)  # inside RequestContextMiddleware: added first
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "X-API-Key", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "X-Model-Version", "Server-Timing"])
    routers = [module.router for module in (health, embed, retrieve, lift, clips, admin)]
    for router in routers:  # first: routes are matched in order, and an unprefixed path never matches /v1/...
        app.include_router(router)
    for router in routers:
        app.include_router(router, prefix="/v1", include_in_schema=False)
    pages.mount(app)  # the web page at /, /docs and /redoc, and service/static
    app.openapi = lambda: build_openapi(app, BODIES)
    return app
