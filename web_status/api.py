"""The JSON API under ``/api/v1/``: each area declares its routes with :func:`api_route`
(summary, roles, JSON schemas), and ``/api/v1/openapi.json`` is assembled from those
declarations, so the document cannot drift from the routes.

A request body is checked against its schema before the view runs (a small validator
for the subset of JSON Schema used here: type, properties, required,
additionalProperties, enum, string and array bounds, numeric bounds); errors are JSON
``{"error": {"code", "message"}}``. Machines authenticate with ``Authorization: Bearer
TOKEN`` (``dock web-token add``); a browser's session works too (with ``X-CSRF-Token``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, jsonify, request

from web_status.auth import PUBLIC, public, require_role

bp = Blueprint("api", __name__, url_prefix="/api/v1")

Schema = Mapping[str, Any]
OPENAPI_VERSION = "3.1.0"


@dataclass(frozen=True)
class ApiRoute:
    """One declared route: what the OpenAPI document says of it."""

    rule: str  # Flask's, e.g. "/slots/<slot>"
    methods: tuple[str, ...]
    endpoint: str
    summary: str
    roles: tuple[str, ...]
    request: Schema | None = None
    response: Schema | None = None
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> description
    query: dict[str, Schema] = field(default_factory=dict)  # query parameter -> its schema


#: Every route declared, in declaration order.
ROUTES: list[ApiRoute] = []

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def json_error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def api_route(
    rule: str,
    *,
    summary: str,
    roles: tuple[str, ...],
    methods: tuple[str, ...] = ("GET",),
    request_schema: Schema | None = None,
    response_schema: Schema | None = None,
    params: dict[str, str] | None = None,
    name: str | None = None,
    query: Mapping[str, Schema] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``/api/v1`` + ``rule``: who may call it (``roles``, or ``PUBLIC``), what it
    takes (``request_schema``, checked before the view runs; the view reads the checked
    body with ``request.get_json()``) and answers (``response_schema``)."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        area = view.__module__.split(".")[-2] if view.__module__.count(".") >= 2 else "api"
        endpoint = name or f"{area}_{view.__name__}"

        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if request_schema is not None:
                body = request.get_json(silent=True)
                if body is None:
                    return json_error(400, "bad_request", "send a JSON body")
                problem = validate(body, request_schema)
                if problem is not None:
                    return json_error(400, "bad_request", problem)
            return view(*args, **kwargs)

        marked = public(checked) if roles == PUBLIC else require_role(*roles)(checked)
        bp.add_url_rule(rule, endpoint=endpoint, view_func=marked, methods=list(methods))
        ROUTES.append(
            ApiRoute(rule, tuple(methods), f"api.{endpoint}", summary, tuple(roles),
                     request_schema, response_schema, dict(params or {}), dict(query or {}))
        )  # fmt: skip
        return marked

    return register


# --------------------------------------------------------------------------- validation
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(value: Any, schema: Schema, where: str = "body") -> str | None:
    """The first way ``value`` breaks ``schema``, in one line; None when it fits."""
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds):
            return f"{where} must be {' or '.join(kinds)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", 10_000):
            return f"{where} is longer than {schema.get('maxLength', 10_000)} characters"
        if len(value) < schema.get("minLength", 0):
            return f"{where} is shorter than {schema['minLength']} characters"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where} must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where} must be at most {schema['maximum']}"
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", 1000):
            return f"{where} has more than {schema.get('maxItems', 1000)} items"
        items = schema.get("items")
        for i, item in enumerate(value):
            problem = validate(item, items, f"{where}[{i}]") if items else None
            if problem:
                return problem
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                return f"{where}.{key} is required"
        for key, item in value.items():
            if key in props:
                problem = validate(item, props[key], f"{where}.{key}")
                if problem:
                    return problem
            elif schema.get("additionalProperties", True) is False:
                return f"{where}.{key} is not a known field"
    return None


# --------------------------------------------------------------------------- the document
def _path(rule: str) -> tuple[str, list[str]]:
    """Flask's ``/slots/<slot>`` (or ``<int:id>``) as OpenAPI's ``/slots/{slot}``."""
    out, names = [], []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            name = part[1:-1].split(":")[-1]
            names.append(name)
            out.append("{" + name + "}")
        else:
            out.append(part)
    return "/".join(out), names


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 of every declared route."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        path, names = _path(route.rule)
        for method in route.methods:
            op: dict[str, Any] = {
                "operationId": f"{route.endpoint.replace('.', '_')}_{method.lower()}",
                "summary": route.summary,
                "x-roles": list(route.roles),
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": route.response or {}}},
                    },
                    "default": {
                        "description": "an error",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}},
                    },
                },
            }
            if route.roles != PUBLIC:
                op["security"] = [{"bearer": []}, {"session": []}]
            else:
                op["security"] = []
            if names:
                op["parameters"] = [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"},
                     "description": route.params.get(n, n)}
                    for n in names
                ]  # fmt: skip
            if route.query:  # optional; the view checks them (a 400 says what is wrong)
                op.setdefault("parameters", []).extend(
                    {"name": n, "in": "query", "required": False, "schema": dict(schema),
                     "description": str(schema.get("description", n))}
                    for n, schema in route.query.items()
                )  # fmt: skip
            if route.request is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": route.request}},
                }
            paths.setdefault("/api/v1" + path, {})[method.lower()] = op
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "bwc-dock local site API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a machine's token from `dock web-token add`",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "dock_session",
                    "description": "a logged-in browser (send X-CSRF-Token to change)",
                },
            }
        },
    }


@bp.get("/openapi.json")
@public
def openapi() -> Response:
    """The OpenAPI document of this API (public: it holds no data)."""
    return jsonify(openapi_document())
