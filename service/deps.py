"""Dependencies the routes declare: settings, the served bundle, metrics, and the API-key checks.

The dependencies are ``async``: FastAPI would run plain functions in its thread pool, a thread hop each. A read
route takes everything through one of them, ``ReadAccess`` (key, query, body, bundle, settings and metrics as a
``ReadContext``): FastAPI's resolution costs about 10-20 us per dependency and request, and the read routes had
nine.

Keys: ``X-API-Key``. With no read keys configured reading is open. With read keys, /embed, /retrieve, /lift3d and /info
need one of them (the admin key works too). /admin/* exists only when an admin key is configured (404 otherwise,
as for any unknown route); then a missing or wrong key is 401 and a read key 403. Probes (/healthz, /readyz,
/metrics) are always open.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader

from service.artifacts import Bundle
from service.body import RequestBody, validate
from service.config import Settings
from service.errors import (
    MAX_ECHO,
    ForbiddenError,
    IndexNotReadyError,
    InvalidApiKeyError,
    MissingApiKeyError,
    NotFoundError,
    UnknownFieldError,
)
from service.examples import EMBED_EXAMPLES, LIFT_EXAMPLES, RELOAD_EXAMPLES, RETRIEVE_EXAMPLES
from service.metrics import ServiceMetrics
from service.motion_search import check_sequence_size
from service.plain_poses import PlainPose2D, read_plain_embed, read_plain_lift
from service.schemas.inputs import Layout3D
from service.schemas.requests import (
    EMBED_ADAPTER,
    LIFT_BATCH_ADAPTER,
    LIFT_SINGLE_ADAPTER,
    RELOAD_ADAPTER,
    RETRIEVE_ADAPTER,
    EmbedRequest,
    ImageForm,
    LiftBatchRequest,
    LiftRequestSchema,
    ReloadRequest,
    RetrieveForm,
    RetrieveRequest,
    RetrieveVideoForm,
)

API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                       description="a read key (or the admin key) for the read routes, the admin key for /admin")
ApiKeyHeader = Annotated[str | None, Security(API_KEY)]


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


def _lift_request(data: object) -> LiftBatchRequest:
    """{"inputs": [...]} is a batch; anything else is one input."""
    if isinstance(data, dict) and "inputs" in data:
        return validate(LIFT_BATCH_ADAPTER, data)
    return LiftBatchRequest.of_one(validate(LIFT_SINGLE_ADAPTER, data))


EMBED_BODY = RequestBody(lambda data: validate(EMBED_ADAPTER, data), EmbedRequest, EMBED_EXAMPLES,
                         batch_field="inputs", form=ImageForm,
                         from_upload=lambda item, rest: {"inputs": [item], **rest}, read_plain=read_plain_embed)
RETRIEVE_BODY = RequestBody(lambda data: validate(RETRIEVE_ADAPTER, data), RetrieveRequest, RETRIEVE_EXAMPLES,
                            batch_field="queries", form=RetrieveForm,
                            from_upload=lambda item, rest: {"query": item, **rest},
                            video_form=RetrieveVideoForm, from_video=lambda options, rest: {"video": options, **rest},
                            precheck=check_sequence_size)
LIFT_BODY = RequestBody(_lift_request, LiftRequestSchema, LIFT_EXAMPLES, batch_field="inputs", form=ImageForm,
                        from_upload=lambda item, rest: {**rest, **item}, read_plain=read_plain_lift)
RELOAD_BODY = RequestBody(lambda data: validate(RELOAD_ADAPTER, data), ReloadRequest, RELOAD_EXAMPLES,
                          optional=True)
BODIES = (EMBED_BODY, RETRIEVE_BODY, LIFT_BODY, RELOAD_BODY)

SettingsDep = Annotated[Settings, Depends(app_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(app_metrics)]
BundleDep = Annotated[Bundle, Depends(served_bundle)]
ReloadBody = Annotated[ReloadRequest, Depends(RELOAD_BODY)]
OutputLayout = Annotated[Layout3D, Query(description="joint convention of the returned poses: `h36m17` (the "
                                                     "field's, default) or `unihpr17` (ours)")]


def _matches(key: str, candidates: list[str]) -> bool:
    found = False
    for candidate in candidates:  # compare with every key, in constant time each
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


def check_read_key(settings: Settings, x_api_key: str | None) -> None:
    """Refuse a request without a read key (or the admin key) when read keys are configured."""
    if not settings.api_keys:
        return
    allowed = [*settings.api_keys, *([settings.admin_key] if settings.admin_key else [])]
    if not x_api_key:
        raise MissingApiKeyError("this service needs an X-API-Key header", "X-API-Key")
    if not _matches(x_api_key, allowed):
        raise InvalidApiKeyError("the X-API-Key is not valid", "X-API-Key")


async def require_read_key(settings: SettingsDep, x_api_key: ApiKeyHeader = None) -> None:
    check_read_key(settings, x_api_key)


def _query_names(route) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included (read off FastAPI's dependant tree)."""
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(field.alias for field in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


_ROUTE_QUERIES: dict[int, frozenset[str]] = {}


async def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not declare is a 422 naming it, as an unknown body field is: a typo such
    as `?layuot=unihpr17` must not silently give the default."""
    if not request.scope.get("query_string"):  # nearly every request: no parsing of an empty query
        return
    route = request.scope["route"]
    known = _ROUTE_QUERIES.get(id(route))
    if known is None:
        known = _ROUTE_QUERIES[id(route)] = _query_names(route)
    for name in request.query_params.keys():
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise UnknownFieldError(f"unknown query parameter {name[:MAX_ECHO]!r} (this route takes: {listed})",
                                    name[:MAX_ECHO] or "query")


RequestT = TypeVar("RequestT")


@dataclass(frozen=True, slots=True)
class ReadContext(Generic[RequestT]):
    """What a read route works with. body: the validated request model (None for routes without a body);
    bundle: the bundle the request runs on (``served_bundle``); settings, metrics: the app's."""

    body: RequestT
    bundle: Bundle
    settings: Settings
    metrics: ServiceMetrics


@dataclass(frozen=True, eq=False)  # hashed by identity: FastAPI caches dependencies by their callable
class ReadAccess:
    """The one dependency of a read route: the read key (the ``ApiKey`` security scheme the OpenAPI document
    shows), no unknown query parameter, the body (``body``, a ``RequestBody``; None for routes without one), then
    the served bundle, checked in that order (the first failure is the answer)."""

    body: RequestBody | None = None

    async def __call__(self, request: Request, x_api_key: ApiKeyHeader = None) -> ReadContext[Any]:
        state = request.app.state
        check_read_key(state.settings, x_api_key)
        await reject_unknown_query(request)
        body = None if self.body is None else await self.body(request)
        return ReadContext(body, await served_bundle(request), state.settings, state.metrics)

    async def from_request(self, request: Request) -> ReadContext[Any]:
        """The same checks for a caller other than FastAPI (``service.read_dispatch``): the key from its header."""
        return await self(request, await API_KEY(request))


EmbedRead = Annotated[ReadContext[EmbedRequest | PlainPose2D], Depends(ReadAccess(EMBED_BODY))]
RetrieveRead = Annotated[ReadContext[RetrieveRequest], Depends(ReadAccess(RETRIEVE_BODY))]
LiftRead = Annotated[ReadContext[LiftBatchRequest | PlainPose2D], Depends(ReadAccess(LIFT_BODY))]
Read = Annotated[ReadContext[None], Depends(ReadAccess())]


async def require_admin_key(request: Request, settings: SettingsDep, x_api_key: ApiKeyHeader = None) -> None:
    if settings.admin_key is None:
        raise NotFoundError(f"no route {request.url.path}")
    if not x_api_key:
        raise MissingApiKeyError("this endpoint needs the admin X-API-Key", "X-API-Key")
    if not _matches(x_api_key, [settings.admin_key]):
        if _matches(x_api_key, settings.api_keys):
            raise ForbiddenError("a read key cannot administer the service", "X-API-Key")
        raise InvalidApiKeyError("the X-API-Key is not valid", "X-API-Key")
