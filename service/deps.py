"""Dependencies the routes declare: settings, the served bundle, metrics, and the API-key checks.

The dependencies are ``async``: FastAPI would run plain functions in its thread pool, a thread hop each.

Keys: ``X-API-Key``. With no keys configured the API is open. With read keys, /embed, /retrieve, /lift3d and /info
need one of them (the admin key works too). /admin/* needs the admin key; when no admin key is configured it is
open only if the whole API is open. Probes (/healthz, /readyz, /metrics) are always open.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from service.artifacts import Bundle
from service.config import Settings
from service.errors import ForbiddenError, IndexNotReadyError, InvalidApiKeyError, MissingApiKeyError
from service.metrics import ServiceMetrics

ApiKeyHeader = Annotated[str | None, Header(alias="X-API-Key", description="API key, when the service has keys")]


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def app_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def served_bundle(request: Request) -> Bundle:
    """The bundle this request runs on, taken once: a reload during the request does not affect it."""
    bundle = request.app.state.bundle
    if bundle is None:
        raise IndexNotReadyError("no bundle is loaded yet")
    request.state.model_version = bundle.model_version
    return bundle


SettingsDep = Annotated[Settings, Depends(app_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(app_metrics)]
BundleDep = Annotated[Bundle, Depends(served_bundle)]


def _matches(key: str, candidates: list[str]) -> bool:
    found = False
    for candidate in candidates:  # compare with every key, in constant time each
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


async def require_read_key(settings: SettingsDep, x_api_key: ApiKeyHeader = None) -> None:
    if not settings.auth_enabled:
        return
    allowed = [*settings.api_keys, *([settings.admin_key] if settings.admin_key else [])]
    if not x_api_key:
        raise MissingApiKeyError("this service needs an X-API-Key header", "X-API-Key")
    if not _matches(x_api_key, allowed):
        raise InvalidApiKeyError("the X-API-Key is not valid", "X-API-Key")


async def require_admin_key(settings: SettingsDep, x_api_key: ApiKeyHeader = None) -> None:
    if not settings.auth_enabled:
        return
    if settings.admin_key is None:
        raise ForbiddenError("administration is disabled: no admin key is configured")
    if not x_api_key:
        raise MissingApiKeyError("this endpoint needs the admin X-API-Key", "X-API-Key")
    if not _matches(x_api_key, [settings.admin_key]):
        if _matches(x_api_key, settings.api_keys):
            raise ForbiddenError("a read key cannot administer the service", "X-API-Key")
        raise InvalidApiKeyError("the X-API-Key is not valid", "X-API-Key")
