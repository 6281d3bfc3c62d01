"""Request bodies: JSON or multipart (image uploads) into the validated request model, as one dependency.

Read routes take it through ``service.deps.ReadAccess(EMBED_BODY)``, the admin route as ``Depends(RELOAD_BODY)``;
the ``RequestBody`` reads the body, parses it (JSON, or ``multipart/form-data`` with the file field `image`),
checks the batch size before validating the items, validates with the request model and attaches the upload to its
image input. Every failure (empty body, malformed JSON, a field of the wrong type, an unknown or ambiguous field,
an oversized batch) is a domain error naming the field. Large bodies are parsed and validated in a worker thread so
that probes and other requests keep being answered. Multipart bodies are parsed in memory (bounded by
``max_body_bytes``): uploads never touch the disk, and nothing here logs their bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio.to_thread
import orjson
from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from service.config import Settings
from service.errors import (
    MAX_ECHO,
    BatchTooLargeError,
    BodyTooLargeError,
    EmptyBodyError,
    InvalidRequestError,
    MalformedJsonError,
    UnknownFieldError,
    UnsupportedMediaTypeError,
    from_validation_error,
)
from service.schemas.inputs import ImageInput

IMAGE_FIELD = "image"
VIDEO_FIELD = "video"
# multipart fields that belong to the image input, not the request (`camera` is JSON text, decoded like every field)
INPUT_FORM_FIELDS = frozenset({"all_people", "camera", "fov_deg"})
VIDEO_FORM_FIELDS = frozenset({"sample_fps", "camera", "fov_deg"})  # multipart fields of the `video` options
INLINE_BODY_BYTES = 64 * 1024  # larger bodies are parsed and validated off the event loop
JSON_ITEM_BYTES = b",[{"  # one per JSON value after a container's first, and one per container
NOT_JSON_ITEM_BYTES = bytes(sorted(set(range(256)) - set(JSON_ITEM_BYTES)))


@dataclass
class FormData:
    """A parsed multipart body: the `image` or `video` file's bytes and the other fields (JSON-decoded when they
    parse)."""

    image: bytes | None = None
    video: bytes | None = None
    fields: dict[str, object] = field(default_factory=dict)


def _form_value(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
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
        elif name == VIDEO_FIELD:
            if form.video is not None:
                raise InvalidRequestError("more than one `video` part", VIDEO_FIELD)
            form.video = bytes(data)
        elif name in form.fields:
            raise InvalidRequestError(f"the field {name!r} is given twice", name[:MAX_ECHO])
        else:
            form.fields[name] = _form_value(bytes(data).decode("utf-8", "replace"))
    return form


def parse_json(body: bytes) -> object:
    """The body as JSON (NaN and Infinity parse, to be refused per field later); errors for empty and malformed.

    orjson parses standard JSON several times faster; what it refuses (NaN and Infinity literals, which clients
    do send, deep nesting, malformed text) goes through ``json``, so such bodies get the same answers as before.
    """
    if not body.strip():
        raise EmptyBodyError("the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        raise MalformedJsonError(f"malformed JSON: {str(err)[:200]}") from err


def check_json_items(body: bytes, limit: int) -> None:
    """Refuse, before parsing, a body of more than ``limit`` JSON values and containers (commas and brackets
    counted in the raw bytes: a few milliseconds, where parsing millions of tiny values takes seconds). The three
    bytes are counted in one pass that keeps only them (at most a copy of the body, for a body of nothing else):
    ``bytes.count`` three times took four times as long (0.14 ms for 64 poses)."""
    items = len(body.translate(None, NOT_JSON_ITEM_BYTES))
    if items > limit:
        raise BodyTooLargeError(f"the body holds about {items} JSON values; at most {limit} per request")


def validate(adapter: TypeAdapter, data: object):
    """``adapter.validate_python(data)`` with pydantic errors mapped onto domain errors (field paths kept)."""
    if not isinstance(data, dict):
        raise InvalidRequestError(f"the body must be a JSON object, got {type(data).__name__}")
    try:
        return adapter.validate_python(data)
    except ValidationError as err:
        raise from_validation_error(err) from None


def check_batch(data: object, name: str, limit: int) -> None:
    """Refuse a batch over ``limit`` items before validating any of them."""
    if isinstance(data, dict) and isinstance(data.get(name), list):
        refuse_batch(len(data[name]), name, limit)


def refuse_batch(count: int, name: str | None, limit: int) -> None:
    """A batch (the request field ``name``) of ``count`` items over ``limit`` is a BatchTooLargeError."""
    if count > limit:
        raise BatchTooLargeError(f"{count} items; at most {limit} per request", name)


@dataclass(frozen=True, eq=False)  # hashed by identity: FastAPI caches dependencies by their callable
class RequestBody:
    """A FastAPI dependency: the body of one route as its validated request model.

    validate: the JSON value (a dict) -> the request model; raises domain errors.
    schema, examples: the type the OpenAPI document shows for a JSON body (``service.openapi``), and examples.
    batch_field: the list field whose length ``max_batch`` bounds.
    form: the pydantic model documenting the multipart form (its fields other than `image` are the only form
        fields accepted); None when the route takes no uploads.
    from_upload: (image input fields, other form fields) -> the JSON-shaped request an upload stands for.
    video_form, from_video: likewise for a `video` upload (None: the route takes no video).
    precheck(data, settings): refuses an oversized JSON body (its domain error) before it is validated.
    read_plain(body): a JSON body of plain 2D poses as one ``service.plain_poses.PlainPose2D`` (what the route then
        receives instead of the request model), None for any other body, which is parsed and validated as above.
    """

    validate: Callable[[object], Any]
    schema: Any
    examples: dict = field(default_factory=dict)
    batch_field: str | None = None
    form: type[BaseModel] | None = None
    from_upload: Callable[[dict, dict], dict] | None = None
    optional: bool = False  # an empty body means the model's defaults
    video_form: type[BaseModel] | None = None
    from_video: Callable[[dict, dict], dict] | None = None
    precheck: Callable[[object, Settings], None] | None = None
    read_plain: Callable[[bytes], Any] | None = None

    async def __call__(self, request: Request) -> Any:
        settings: Settings = request.app.state.settings
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        if self.optional and not body.strip():
            return self.validate({})
        if media == "multipart/form-data" and self.form is not None:
            parse = partial(self._from_form, body, content_type, settings)
        elif media in ("", "application/json") or media.endswith("+json"):
            parse = partial(self._from_json, body, settings)
        else:
            accepted = "application/json or multipart/form-data" if self.form is not None else "application/json"
            raise UnsupportedMediaTypeError(f"content type {media[:60]!r}; send {accepted}")
        if len(body) > INLINE_BODY_BYTES:
            return await anyio.to_thread.run_sync(parse)
        return parse()

    def _from_json(self, body: bytes, settings: Settings) -> Any:
        check_json_items(body, settings.max_json_items)
        plain = None if self.read_plain is None else self.read_plain(body)
        if plain is not None:
            refuse_batch(len(plain), self.batch_field, settings.max_batch)
            return plain
        data = parse_json(body)
        if self.batch_field is not None:
            check_batch(data, self.batch_field, settings.max_batch)
        if self.precheck is not None:
            self.precheck(data, settings)
        return self.validate(data)  # every body's validate refuses a value that is not an object

    def _from_form(self, body: bytes, content_type: str, settings: Settings) -> Any:
        if not body:
            raise EmptyBodyError("the request body is empty")
        form = parse_multipart(body, content_type)
        if form.video is not None:
            return self._from_video_form(form)
        if form.image is None:
            raise InvalidRequestError("a multipart request needs a file field `image`", IMAGE_FIELD)
        allowed = set(self.form.model_fields) - {IMAGE_FIELD}
        for name in form.fields:
            if name not in allowed:
                raise UnknownFieldError(f"the multipart field {name[:MAX_ECHO]!r} is not accepted with an `image` "
                                        f"upload (accepted: {', '.join(sorted(allowed))}); send JSON for other "
                                        "inputs", name[:MAX_ECHO])
        item = {"modality": "image", **{k: v for k, v in form.fields.items() if k in INPUT_FORM_FIELDS}}
        rest = {k: v for k, v in form.fields.items() if k not in INPUT_FORM_FIELDS}
        request = self.validate(self.from_upload(item, rest))
        upload_target(request)._data = form.image
        return request

    def _from_video_form(self, form: FormData) -> Any:
        if self.video_form is None or self.from_video is None:
            raise InvalidRequestError("this route takes no video", VIDEO_FIELD)
        if form.image is not None:
            raise InvalidRequestError("send an `image` or a `video`, not both", VIDEO_FIELD)
        allowed = set(self.video_form.model_fields) - {VIDEO_FIELD}
        for name in form.fields:
            if name not in allowed:
                raise UnknownFieldError(f"the multipart field {name[:MAX_ECHO]!r} is not accepted with a `video` "
                                        f"upload (accepted: {', '.join(sorted(allowed))})", name[:MAX_ECHO])
        options = {k: v for k, v in form.fields.items() if k in VIDEO_FORM_FIELDS}
        rest = {k: v for k, v in form.fields.items() if k not in VIDEO_FORM_FIELDS}
        request = self.validate(self.from_video(options, rest))
        request.video._data = form.video
        return request


def upload_target(request: Any) -> ImageInput:
    """The one image input a multipart request stands for (the first of its items)."""
    item = request.items[0]
    assert isinstance(item, ImageInput), type(item)
    return item
