"""The web page at ``/`` and the API docs at ``/docs`` and ``/redoc``, every asset served from ``service/static``.

Nothing is fetched from another origin: the page's modules, three.js, Swagger UI and ReDoc are package data
(``service/static/vendor/VERSIONS.md`` pins them), and each HTML answer carries a Content-Security-Policy that
allows only this origin plus the hashes of the page's own inline scripts (the page's import map, Swagger UI's
start-up call). ``StaticFiles`` answers files only: a folder is a 404, never a listing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_PREFIX = "/static"
VENDOR = f"{STATIC_PREFIX}/vendor"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)
# The page: scripts and styles from this origin only (inline: the import map's hash), images also from the
# photo the user picked (blob:); the docs: their libraries style elements inline and ReDoc's search runs in a
# worker it creates from a blob.
PAGE_POLICY = ("default-src 'self'; script-src 'self' {scripts}; style-src 'self'; img-src 'self' blob: data:; "
               "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")
DOCS_POLICY = ("default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
               "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

router = APIRouter(include_in_schema=False)


def content_security_policy(html: str, template: str) -> str:
    """``template`` with ``{scripts}`` replaced by the sha256 sources of every inline ``<script>`` of ``html``."""
    hashes = [base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() for body in INLINE_SCRIPT.findall(html)]
    return template.format(scripts=" ".join(f"'sha256-{h}'" for h in hashes)).replace("  ", " ")


def secured(html: str, template: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html, template),
                                       "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                                       "Cache-Control": "no-cache"})


@lru_cache(maxsize=1)
def page_html() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


@router.get("/")
async def page() -> HTMLResponse:
    """The search page: photo and skeleton search with 3D results (``service/static``)."""
    return secured(page_html(), PAGE_POLICY)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    html = get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    ).body.decode()
    return secured(html, DOCS_POLICY)


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app = request.app
    html = get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc",
                          redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
                          redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
                          with_google_fonts=False).body.decode()
    return secured(html, DOCS_POLICY)


class StaticAssets(StaticFiles):
    """Files under ``service/static`` with ``nosniff`` and a short cache; folders are 404 (no listing)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff"),
                                      (b"cache-control", b"public, max-age=300")]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Serve the page, the docs and ``service/static`` on ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    app.include_router(router)
    app.mount(STATIC_PREFIX, StaticAssets(directory=STATIC_DIR, html=False), name="static")
