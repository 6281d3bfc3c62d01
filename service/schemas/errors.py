"""The documented error body (``service.errors.error_body`` writes it) and what each error status means, for the
routes' ``responses=``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="e.g. inputs[0].keypoints")


class ErrorResponse(BaseModel):
    error: ErrorDetail
    model_version: str | None = None


ERROR_MEANINGS = {
    400: "empty body or malformed JSON",
    401: "missing or wrong X-API-Key (only when the service has keys)",
    403: "a read key on an admin route",
    404: "no such route (/admin/* without an admin key) or clip",
    409: "the clip's source motion is not kept as BVH in this bundle",
    413: "over a limit: body, batch, image pixels, JSON values or results (the message names it)",
    415: "unsupported media type or image format",
    422: "invalid input; `field` names it",
    503: "no bundle loaded yet",
}


def error_responses(*statuses: int) -> dict:
    """``responses=`` of a route: the error statuses it can answer, each with the error body."""
    return {status: {"model": ErrorResponse, "description": ERROR_MEANINGS[status]} for status in statuses}


READ_ERRORS = error_responses(400, 401, 413, 415, 422, 503)  # /embed, /retrieve, /lift3d
