"""The service's error model: domain exceptions and the handlers that turn them into one JSON shape.

Every error response has the body ``{"error": {"code", "message", "field"}, "model_version"}``: ``code`` is a
stable machine-readable name, ``message`` a sentence for people, ``field`` the path of the offending request field
(``inputs[0].keypoints[3]``) or null. Routes raise these exceptions and never ``HTTPException``; anything else that
escapes a route is logged with its traceback by ``service.middleware`` and answered with a generic 500 that never
echoes the exception.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

LOG = logging.getLogger(__name__)

# The modality tags of the discriminated unions; pydantic puts them into error locations, the API does not.
UNION_TAGS = frozenset({"pose2d", "pose3d", "image", "embedding"})
MAX_ECHO = 40  # characters of a client's value quoted back in a message


class UnihprError(Exception):
    """Base of every error the API reports; ``status_code`` and ``code`` are class attributes."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequestError(UnihprError):
    status_code, code = 422, "invalid_request"


class MalformedJsonError(UnihprError):
    status_code, code = 400, "malformed_json"


class EmptyBodyError(UnihprError):
    status_code, code = 400, "empty_body"


class UnsupportedMediaTypeError(UnihprError):
    status_code, code = 415, "unsupported_media_type"


class BodyTooLargeError(UnihprError):
    status_code, code = 413, "body_too_large"


class BatchTooLargeError(UnihprError):
    status_code, code = 413, "batch_too_large"


class ResultTooLargeError(UnihprError):
    """The answer would exceed the service's result limit (k x queries)."""

    status_code, code = 413, "result_too_large"


class UnknownFieldError(UnihprError):
    status_code, code = 422, "unknown_field"


class OutOfRangeError(UnihprError):
    status_code, code = 422, "out_of_range"


class InvalidPoseError(UnihprError):
    """Wrong joint count, non-finite values, too few visible joints or an implausible mm range."""

    status_code, code = 422, "invalid_pose"


class InvalidCameraError(UnihprError):
    """A camera that cannot be used: no way to place its optical axis, or a lens model that does not invert."""

    status_code, code = 422, "invalid_camera"


class UnknownSkeletonError(UnihprError):
    """A keypoint layout the service does not know."""

    status_code, code = 422, "unknown_layout"


class UnknownModalityError(UnihprError):
    status_code, code = 422, "unknown_modality"


class InvalidEmbeddingError(UnihprError):
    status_code, code = 422, "invalid_embedding"


class UnknownLabelError(UnihprError):
    status_code, code = 422, "unknown_label"


class InvalidImageError(UnihprError):
    """Empty, undecodable or truncated image data."""

    status_code, code = 422, "invalid_image"


class UnsupportedImageFormatError(UnihprError):
    status_code, code = 415, "unsupported_image_format"


class ImageTooLargeError(UnihprError):
    status_code, code = 413, "image_too_large"


class NoPersonError(UnihprError):
    status_code, code = 422, "no_person"


class MissingApiKeyError(UnihprError):
    status_code, code = 401, "missing_api_key"


class InvalidApiKeyError(UnihprError):
    status_code, code = 401, "invalid_api_key"


class ForbiddenError(UnihprError):
    status_code, code = 403, "forbidden"


class NotFoundError(UnihprError):
    status_code, code = 404, "not_found"


class MethodNotAllowedError(UnihprError):
    status_code, code = 405, "method_not_allowed"


class NoSourceMotionError(UnihprError):
    """The clip's source motion is not kept as BVH in the bundle."""

    status_code, code = 409, "no_source_motion"


class IndexNotReadyError(UnihprError):
    """No bundle is loaded (yet)."""

    status_code, code = 503, "not_ready"


class IndexUnavailableError(UnihprError):
    """The index backend (a Milvus server) does not answer: the request may be retried later."""

    status_code, code = 503, "index_unavailable"


class BundleRejectedError(UnihprError):
    """A bundle offered to /admin/reload failed verification; the loaded one keeps serving."""

    status_code, code = 422, "bundle_rejected"


class ArtifactMismatchError(UnihprError):
    """The bundle's parts disagree (dimensions, joint order, metric); raised while loading."""

    status_code, code = 500, "artifact_mismatch"


def raise_first(errors: list[tuple[int, UnihprError]]) -> None:
    """Raise the error of the earliest input among ``(input index, error)`` pairs, if any: a batch with several bad
    inputs answers for the first, whichever check found it."""
    if errors:
        raise min(errors, key=lambda e: e[0])[1]


def subfield(parent: str, name: str) -> str:
    """The path of ``name`` inside ``parent``: ("inputs[0]", "keypoints") -> "inputs[0].keypoints"; a root parent
    ("") gives the name itself."""
    return f"{parent}.{name}" if parent else name


def field_path(loc: tuple | list) -> str | None:
    """A pydantic error location as the API names fields: ("inputs", 0, "keypoints", 3) -> inputs[0].keypoints[3].

    The union tags pydantic inserts after a list index, at the root or after ``query`` are dropped.
    """
    parts: list[str] = []
    previous: object = None
    for i, item in enumerate(loc):
        is_tag = isinstance(item, str) and item in UNION_TAGS and (i == 0 or isinstance(previous, int)
                                                                 or previous == "query")
        previous = item
        if is_tag:
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{str(item)[:MAX_ECHO]}" if parts else str(item)[:MAX_ECHO])
    return "".join(parts) or None


def from_validation_error(err: ValidationError | RequestValidationError, prefix: tuple = ()) -> UnihprError:
    """The first pydantic error as a domain error with its field path and the matching code."""
    errors = err.errors()
    first = errors[0] if errors else {"type": "value_error", "loc": (), "msg": "invalid request"}
    loc = tuple(first.get("loc", ()))
    if isinstance(err, RequestValidationError) and loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]  # where FastAPI found the parameter; the API names the parameter itself
    loc = tuple(prefix) + loc
    kind, message = first.get("type", ""), first.get("msg", "invalid value")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = first.get("ctx") or {}
        tag = repr(ctx.get("tag"))[:MAX_ECHO]
        return UnknownModalityError(f"unknown modality {tag}; expected one of {ctx.get('expected_tags', '')}",
                                    field_path(loc + ("modality",)))
    name = loc[-1] if loc else None
    if kind == "literal_error" and name == "layout":
        return UnknownSkeletonError(f"unknown layout: {message}", field_path(loc))
    if kind == "literal_error" and name == "modality":
        return UnknownModalityError(f"unknown modality: {message}", field_path(loc))
    if kind == "extra_forbidden":
        return UnknownFieldError(f"unknown field {str(name)[:MAX_ECHO]!r}", field_path(loc))
    if kind == "json_invalid":
        return MalformedJsonError(f"malformed JSON: {(first.get('ctx') or {}).get('error', message)}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return OutOfRangeError(message, field_path(loc))
    return InvalidRequestError(message, field_path(loc))


def error_body(err: UnihprError, model_version: str | None) -> dict:
    return {"error": {"code": err.code, "message": err.message, "field": err.field}, "model_version": model_version}


def current_model_version(request: Request) -> str | None:
    """The version of the bundle that served this request, else of the loaded bundle, else None."""
    version = getattr(request.state, "model_version", None)
    if version is None:
        bundle = getattr(request.app.state, "bundle", None)
        version = bundle.model_version if bundle is not None else None
    return version


def error_response(request: Request, err: UnihprError) -> JSONResponse:
    headers = {"WWW-Authenticate": "ApiKey"} if err.status_code == 401 else None
    return JSONResponse(error_body(err, current_model_version(request)), status_code=err.status_code,
                        headers=headers)


async def _unihpr_error(request: Request, err: UnihprError) -> JSONResponse:
    if err.status_code >= 500:
        LOG.error("%s: %s", err.code, err.message)
    return error_response(request, err)


async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    return error_response(request, from_validation_error(err))


async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
    if err.status_code == 404:
        domain: UnihprError = NotFoundError(f"no route {request.url.path}")
    elif err.status_code == 405:
        domain = MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}")
    else:
        domain = UnihprError(str(err.detail) if err.status_code < 500 else "internal error")
        domain.status_code, domain.code = err.status_code, "http_error"
    response = error_response(request, domain)
    for name, value in (err.headers or {}).items():
        response.headers[name] = value
    return response


def register_exception_handlers(app: FastAPI) -> None:
    """Map every domain error, request-validation error and routing error onto the error body."""
    app.add_exception_handler(UnihprError, _unihpr_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
