"""``/api/v1/keeper/...``: what the keeper's page shows and does, as JSON."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from dock.domain.roles import KEEPER
from web_status.api import api_route, json_error
from web_status.keeper.views import file_items, waiting
from web_status.officer.acting import IDS_MAX, Problem

_ITEM = {"type": "object", "additionalProperties": True}
_LIST = {"type": "array", "items": _ITEM}
WAITING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"items": _LIST, "filed": _LIST},
    "required": ["items", "filed"],
}
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": IDS_MAX},
        "note": {"type": "string", "maxLength": 2000},
        "pin": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    "required": ["ids", "pin"],
    "additionalProperties": False,
}


@api_route(
    "/keeper/gaps",
    summary="Reviewed explanation items waiting to be filed, and the last ones filed",
    roles=(KEEPER,),
    response_schema=WAITING_SCHEMA,
)
def gaps() -> Response:
    return jsonify(waiting())


@api_route(
    "/keeper/gaps/file",
    summary="File reviewed explanation items (on the keeper's PIN)",
    roles=(KEEPER,),
    methods=("POST",),
    request_schema=FILE_SCHEMA,
    response_schema=_LIST,
)
def file() -> Response:
    try:
        return jsonify(file_items(request.get_json()))
    except Problem as p:
        return json_error(p.status, "refused" if p.status < 500 else "unavailable", p.message)
