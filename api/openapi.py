"""The OpenAPI document, made to say what the API does: every error is problem+json.

FastAPI documents its validation errors as ``application/json`` (HTTPValidationError);
this API answers every error as ``application/problem+json``. The generated
document is post-processed once: each operation lists the errors every route
can give (400, 401, 403, 404, 422, 429, 503; 409 on changes) with the
Problem schema, and the bearer scheme.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import MEDIA_TYPE

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}
_COMMON = {
    "400": "Bad request (a parameter's value)",
    "401": "Not authenticated",
    "403": "Your role does not allow this",
    "404": "Not found, or not in your scope",
    "422": "Invalid request",
    "429": "Too many requests",
    "503": "Overloaded; retry shortly",
}
_PUBLIC = {"/auth/token", "/auth/refresh"}


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)  # fmt: skip
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = _PROBLEM
    components["schemas"].pop("HTTPValidationError", None)
    components["schemas"].pop("ValidationError", None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "an access token from /auth/token, or an API key"},
    }  # fmt: skip
    problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for code, description in _COMMON.items():
                responses.setdefault(code, {"description": description})
            if method != "get":
                responses.setdefault("409", {"description": "Conflicts with the current state"})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = problem
            if path not in _PUBLIC:
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = doc
    return doc


def install(app: FastAPI) -> None:
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
