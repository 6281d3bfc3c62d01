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

REF_TEMPLATE = "#/components/schemas/{model}"


def _schema(kind) -> tuple[dict, dict]:
    """(schema or reference of ``kind``, the component schemas it needs)."""
    schema = TypeAdapter(kind).json_schema(ref_template=REF_TEMPLATE)
    components = schema.pop("$defs", {})
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        components[kind.__name__] = schema
        return {"$ref": REF_TEMPLATE.format(model=kind.__name__)}, components
    return schema, components


def body_components(body: RequestBody) -> dict:
    """The component schemas ``body_doc(body)`` refers to."""
    components = _schema(body.schema)[1]
    if body.form is not None:
        components.update(_schema(body.form)[1])
    return components


def body_doc(body: RequestBody) -> dict:
    """``openapi_extra`` of a route whose body ``body`` reads: its ``requestBody``."""
    content: dict = {"application/json": {"schema": _schema(body.schema)[0]}}
    if body.examples:
        content["application/json"]["examples"] = body.examples
    if body.form is not None:
        content["multipart/form-data"] = {"schema": _schema(body.form)[0]}
    return {"requestBody": {"required": not body.optional, "content": content}}


def build_openapi(app: FastAPI, bodies: tuple[RequestBody, ...]) -> dict:
    """The app's OpenAPI document (cached on the app), with the component schemas of ``bodies``."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for body in bodies:
        components.update(body_components(body))
    app.openapi_schema = schema
    return schema
