"""The OpenAPI document, generated from the routes and the request models their bodies validate with.

Routes read their bodies through a ``service.body.RequestBody`` dependency (JSON or multipart), which FastAPI does
not see as a body. Each such route passes ``openapi_extra=body_doc(BODY)``: its request body documented from that
dependency (the JSON schema of the same pydantic types that validate the request, its examples, its multipart
form model), with references into the components that ``build_openapi`` adds from the same dependencies.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter

from service.body import RequestBody
from service.config import Settings

REF_TEMPLATE = "#/components/schemas/{model}"


def _any_of(node):
    """``oneOf`` -> ``anyOf`` throughout: the inputs' discriminator is a function (``modality`` when given, else
    ``image_b64`` or ``embedding``, else pose2d), so one JSON object may fit several branches while the service
    reads it as exactly one of them."""
    if isinstance(node, dict):
        return {("anyOf" if key == "oneOf" else key): _any_of(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_any_of(value) for value in node]
    return node


def _schema(kind) -> tuple[dict, dict]:
    """(schema or reference of ``kind``, the component schemas it needs)."""
    schema = _any_of(TypeAdapter(kind).json_schema(ref_template=REF_TEMPLATE))
    components = schema.pop("$defs", {})
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        components[kind.__name__] = schema
        return {"$ref": REF_TEMPLATE.format(model=kind.__name__)}, components
    return schema, components


def body_components(body: RequestBody) -> dict:
    """The component schemas ``body_doc(body)`` refers to."""
    components = _schema(body.schema)[1]
    for form in (body.form, body.video_form):
        if form is not None:
            components.update(_schema(form)[1])
    return components


def body_doc(body: RequestBody) -> dict:
    """``openapi_extra`` of a route whose body ``body`` reads: its ``requestBody``."""
    content: dict = {"application/json": {"schema": _schema(body.schema)[0]}}
    if body.examples:
        content["application/json"]["examples"] = body.examples
    if body.form is not None:
        content["multipart/form-data"] = {"schema": _schema(body.form)[0]}
        if body.video_form is not None:  # an image upload or a video upload
            content["multipart/form-data"]["schema"] = {"anyOf": [_schema(body.form)[0], _schema(body.video_form)[0]]}
    return {"requestBody": {"required": not body.optional, "content": content}}


def _array_branch(schema: dict) -> dict:
    """The array schema of a field that may also be null (``anyOf``)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "array":
            return branch
    return schema


def apply_settings(document: dict, settings: Settings) -> None:
    """Make the document say what this configuration does: /admin only with an admin key, the key requirement
    only where keys are set, and the request limits that are settings (batch size, search effort)."""
    paths, schemas = document["paths"], document["components"]["schemas"]
    for path in [p for p in paths if p.startswith("/admin/")]:
        if settings.admin_key is None:
            del paths[path]
    if not settings.api_keys:
        for path, operations in paths.items():
            for operation in operations.values():
                if not path.startswith("/admin/"):
                    operation.pop("security", None)
    if settings.admin_key is None and not settings.api_keys:
        document["components"].pop("securitySchemes", None)
    for model, field in (("EmbedRequest", "inputs"), ("LiftBatchRequest", "inputs"), ("RetrieveRequest", "queries")):
        _array_branch(schemas[model]["properties"][field])["maxItems"] = settings.max_batch
    for model in ("RetrieveRequest", "RetrieveForm", "RetrieveVideoForm"):
        schemas[model]["properties"]["search_effort"]["maximum"] = settings.max_search_effort
    document["info"]["description"] += "\n\n" + limits_text(settings)


def limits_text(settings: Settings) -> str:
    """The per-request limits of this server, as the document's description lists them."""
    return "\n".join([
        "Limits of this server (over a limit: 413, or 422 for search_effort, with a message naming it):",
        f"- body: {settings.max_body_bytes} bytes, and at most {settings.max_json_items} JSON values",
        f"- inputs or queries per request: {settings.max_batch}",
        f"- image: {settings.max_image_pixels} pixels; all images of a request: {settings.max_request_pixels}",
        f"- results of one /retrieve (k x queries x people): {settings.max_results}",
        f"- search_effort: {settings.max_search_effort:g}; people per image: {settings.max_people}",
        f"- sequence: {settings.max_sequence_frames} frames, {settings.max_sequence_seconds:g} s, fps "
        f"{settings.min_sequence_fps:g}..{settings.max_sequence_fps:g}; video: {settings.max_video_bytes} bytes, "
        f"{settings.max_video_pixels} pixels a frame, {settings.max_video_seconds:g} s (MP4, MOV, WebM, MKV, AVI)",
    ])


def build_openapi(app: FastAPI, bodies: tuple[RequestBody, ...]) -> dict:
    """The app's OpenAPI document (cached on the app), with the component schemas of ``bodies``, for the app's
    settings."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for body in bodies:
        components.update(body_components(body))
    apply_settings(schema, app.state.settings)
    app.openapi_schema = schema
    return schema
