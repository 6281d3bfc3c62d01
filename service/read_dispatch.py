"""The read routes' POST requests answered without FastAPI's per-request machinery, by the same code.

For every request FastAPI matches the path against each route in turn, opens two exit stacks, wraps the endpoint
in an exception layer and resolves its parameters through the dependency tree: about 0.1 ms of a one-pose
`/embed`'s 0.5 ms in process (issue 18, `benchmarks/README.md`). A read route's endpoint takes only the
request, one ``ReadAccess`` dependency (key, query, body, bundle) and query parameters that have defaults, so a
POST to it without a query string needs none of that: ``ReadDispatch`` finds the route by its path, calls the
route's own ``ReadAccess`` and endpoint, and answers a raised error through the app's own exception handler.
Answers, headers and errors are the ones FastAPI gives (`tests/service/test_read_dispatch.py`).

Everything else goes to FastAPI: other methods and routes (routes with more dependencies, a required query
parameter, FastAPI's own body limit or an endpoint that returns anything but a ``Response`` included), any query
string (its parameters are FastAPI's to parse and check), and every request while FastAPI's OpenTelemetry
integration records one (it reads the request from inside the route).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.telemetry import get_telemetry_data
from starlette._exception_handler import _lookup_exception_handler
from starlette._utils import get_route_path  # the path FastAPI's own router matches (it imports the same)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.deps import ReadAccess


@dataclass(frozen=True)
class ReadRoute:
    """A route ``ReadDispatch`` answers: its endpoint is called as ``endpoint(**{request_name: request,
    read_name: await access.from_request(request)}, **defaults)``."""

    route: APIRoute  # the route as declared (FastAPI's ``scope["route"]``, also for its /v1 copy)
    access: ReadAccess
    request_name: str
    read_name: str
    defaults: dict[str, Any]


def read_route(context: RouteContext) -> ReadRoute | None:
    """A route (as included, with its prefix) as a ``ReadRoute`` when it is a POST route without a FastAPI body limit
    whose endpoint takes the request, exactly one ``ReadAccess`` and otherwise only query parameters with defaults,
    and returns a ``Response``; None for any other."""
    route = context.original_route
    if not isinstance(route, APIRoute) or context.methods != {"POST"} or context.max_body_size is not None:
        return None  # a route of FastAPI's own body limit keeps it
    dependant = context.dependant
    if (dependant.path_params or dependant.header_params or dependant.cookie_params or dependant.body_params
            or dependant.request_param_name is None or len(dependant.dependencies) != 1):
        return None
    (read,) = dependant.dependencies
    if not isinstance(read.call, ReadAccess) or read.name is None:
        return None
    if any(field.field_info.is_required() for field in dependant.query_params):
        return None
    returns = get_typed_return_annotation(route.endpoint)  # as FastAPI reads it (it resolved it to build the route)
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        return None  # FastAPI serialises any other return value; the dispatch sends the endpoint's response
    defaults = {field.name: field.field_info.get_default(call_default_factory=True)
                for field in dependant.query_params}
    return ReadRoute(route, read.call, dependant.request_param_name, read.name, defaults)


class ReadDispatch:
    """Pure ASGI, inside the app's middleware (so request ids, limits, metrics and the last-resort 500 apply as
    to any request) and outside FastAPI's router. The routes are read from the app on the first request, when
    every router is included."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.routes: dict[str, ReadRoute] | None = None

    def _routes_of(self, app: Any) -> dict[str, ReadRoute]:
        if self.routes is None:
            found = {context.path: read_route(context) for context in iter_route_contexts(app.routes)}
            self.routes = {path: target for path, target in found.items() if target is not None}
        return self.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]:
            target = self._routes_of(scope["app"]).get(get_route_path(scope))
            if target is not None and get_telemetry_data() is None:
                await self._answer(target, scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(target: ReadRoute, scope: Scope, receive: Receive, send: Send) -> None:
        # what FastAPI's router puts in the scope (the metrics label, the query check, request.url_for and
        # instrumentation read them)
        scope.setdefault("router", scope["app"].router)
        scope["route"], scope["endpoint"], scope["path_params"] = target.route, target.route.endpoint, {}
        request = Request(scope, receive, send)
        try:
            read = await target.access.from_request(request)
            response = await target.route.endpoint(**{target.request_name: request, target.read_name: read},
                                                   **target.defaults)
        except Exception as error:
            handler = _lookup_exception_handler(scope["app"].exception_handlers, error)  # Starlette's pick
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)
