"""Reading request bodies: JSON or multipart (image uploads) into validated schema models.

Routes parse their bodies here rather than through FastAPI's body parameters so that one endpoint accepts both
JSON and ``multipart/form-data`` and every failure (empty body, malformed JSON, a field of the wrong type, an
unknown field, an oversized batch) becomes a domain error naming the field. Multipart bodies are parsed in memory
(the body is bounded by ``max_body_bytes``): uploads never touch the disk, and nothing here logs their bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from service.errors import (
    BatchTooLargeError,
    EmptyBodyError,
    InvalidRequestError,
    MalformedJsonError,
    UnsupportedMediaTypeError,
    from_validation_error,
)

IMAGE_FIELD = "image"
INPUT_FORM_FIELDS = frozenset({"all_people"})  # multipart fields that belong to the image input, not the request


@dataclass
class FormData:
    """A parsed multipart body: the `image` file's bytes and the other fields (JSON-decoded when they parse)."""

    image: bytes | None = None
    fields: dict[str, object] = field(default_factory=dict)


def _form_value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_multipart(body: bytes, content_type: str) -> FormData:
    """Parse ``multipart/form-data`` in memory; at most one `image` file part, other parts are text fields."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequestError("multipart body without a boundary")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    state = {"header_field": b"", "header_value": b""}

    def on_part_begin() -> None:
        parts.append(({}, bytearray()))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][state["header_field"].lower()] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    callbacks = {"on_part_begin": on_part_begin, "on_part_data": on_part_data,
                 "on_header_field": on_header_field, "on_header_value": on_header_value,
                 "on_header_end": on_header_end}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as err:
        raise InvalidRequestError(f"malformed multipart body: {err}") from err
    form = FormData()
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise InvalidRequestError("multipart part without a name")
        if name == IMAGE_FIELD:
            if form.image is not None:
                raise InvalidRequestError("more than one `image` part", IMAGE_FIELD)
            form.image = bytes(data)
        else:
            form.fields[name] = _form_value(bytes(data).decode("utf-8", "replace"))
    return form


async def read_json(request: Request) -> object:
    """The body as JSON (NaN and Infinity parse, to be refused per field later); errors for empty and malformed."""
    body = await request.body()
    if not body.strip():
        raise EmptyBodyError("the request body is empty")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        raise MalformedJsonError(f"malformed JSON: {err}") from err


async def read_body(request: Request) -> tuple[object, bytes | None]:
    """(JSON value, None) for JSON bodies; for multipart (fields dict, image bytes)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        body = await request.body()
        if not body:
            raise EmptyBodyError("the request body is empty")
        form = parse_multipart(body, content_type)
        if form.image is None:
            raise InvalidRequestError("a multipart request needs a file field `image`", IMAGE_FIELD)
        return form.fields, form.image
    if media in ("", "application/json") or media.endswith("+json"):
        return await read_json(request), None
    raise UnsupportedMediaTypeError(f"content type {media!r}; send application/json or multipart/form-data")


def validate(adapter: TypeAdapter, data: object):
    """``adapter.validate_python(data)`` with pydantic errors mapped onto domain errors (field paths kept)."""
    if not isinstance(data, dict):
        raise InvalidRequestError(f"the body must be a JSON object, got {type(data).__name__}")
    try:
        return adapter.validate_python(data)
    except ValidationError as err:
        raise from_validation_error(err) from None


def multipart_request(fields: dict, wrap) -> dict:
    """The JSON-shaped request for a multipart upload: the image input (with its own form fields, e.g.
    all_people) is placed by ``wrap(image_input, other_fields)``; the upload's bytes are attached after
    validation with ``attach_upload``."""
    item = {"modality": "image", **{k: v for k, v in fields.items() if k in INPUT_FORM_FIELDS}}
    rest = {k: v for k, v in fields.items() if k not in INPUT_FORM_FIELDS}
    return wrap(item, rest)


def attach_upload(item, upload: bytes) -> None:
    """Give the validated image input its uploaded bytes (kept out of the model's fields and its repr)."""
    item._data = upload


def check_batch(count: int, limit: int, field_name: str) -> None:
    if count > limit:
        raise BatchTooLargeError(f"{count} items; at most {limit} per request", field_name)
