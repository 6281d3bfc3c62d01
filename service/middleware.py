"""One pure-ASGI middleware for what every request shares: request id, version header, body limit, metrics, and
the last-resort 500.

- ``X-Request-ID``: the client's, when it is a short token, else a new one; echoed on every response.
- ``X-Model-Version``: the bundle that answered (``scope["state"]["model_version"]``, set by the routes' bundle
  dependency), else the loaded bundle's, so the header always agrees with the body's ``model_version``.
- Body limit: a declared Content-Length over the limit is answered 413 before the body is read; a chunked body is
  counted as it streams and the read fails with ``BodyTooLargeError`` (a 413 through the error handlers).
- ``Server-Timing``: the stage timings a route put into ``scope["state"]["timings"]`` (ms).
- Unexpected exceptions are logged with their traceback and the request id, and answered with a generic 500
  that never contains the exception's text.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BodyTooLargeError, error_body
from service.metrics import ServiceMetrics

LOG = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        client_id, declared = "", None
        for key, value in scope.get("headers", ()):  # the two it reads (the last of each, as a dict would keep)
            key = key.lower()
            if key == b"x-request-id":
                client_id = value.decode("latin-1")
            elif key == b"content-length":
                declared = value.decode("latin-1")
        request_id = client_id if REQUEST_ID.match(client_id) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        outcome = {"status": 500, "started": False}

        def version() -> str | None:
            if state.get("model_version"):
                return state["model_version"]
            bundle = getattr(scope["app"].state, "bundle", None) if "app" in scope else None
            return bundle.model_version if bundle is not None else None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"], outcome["started"] = message["status"], True
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                current = version()
                if current:
                    out["X-Model-Version"] = current
                timings = state.get("timings")
                if timings:
                    out["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items())
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(f"the body exceeds {self.max_body_bytes} bytes")
            return message

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                err = BodyTooLargeError(f"the body has {declared} bytes; at most {self.max_body_bytes}")
                await self._send_error(send_wrapper, err.status_code, error_body(err, version()))
            else:
                await self.app(scope, receive_limited, send_wrapper)
        except Exception:  # the last resort: log everything, tell the client nothing internal
            LOG.exception("unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"),
                          request_id)
            if not outcome["started"]:
                body = {"error": {"code": "internal_error", "message": "internal server error", "field": None},
                        "model_version": version()}
                await self._send_error(send_wrapper, 500, body)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(endpoint, scope.get("method", ""), outcome["status"],
                                         time.perf_counter() - started)

    @staticmethod
    async def _send_error(send: Send, status: int, body: dict) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
