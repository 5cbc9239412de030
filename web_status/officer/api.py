"""``/api/v1/officer/...``: what the officer's page shows and does, as JSON."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from dock.domain.roles import OFFICER
from web_status.api import api_route, json_error
from web_status.auth import person
from web_status.officer.acting import Problem
from web_status.officer.views import add_account, mine

_ITEM = {"type": "object", "additionalProperties": True}
ME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "officer_id": {"type": "string"},
        "now": {"type": ["object", "null"]},
        "footage": {"type": "object"},
        "returns": {"type": "array", "items": _ITEM},
        "gaps": {"type": "array", "items": _ITEM},
    },
    "required": ["officer_id", "now", "footage", "returns", "gaps"],
}
ACCOUNT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 2000},
        "pin": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    "required": ["text", "pin"],
    "additionalProperties": False,
}


@api_route(
    "/officer/me",
    summary="The logged-in officer's recorder now, returns, offload state and open gap items",
    roles=(OFFICER,),
    response_schema=ME_SCHEMA,
)
def me() -> Response:
    return jsonify(mine(person().id))


@api_route(
    "/officer/gaps/<int:item_id>/account",
    summary="The officer's own account of one of their open gap items (on their PIN)",
    roles=(OFFICER,),
    methods=("POST",),
    request_schema=ACCOUNT_SCHEMA,
    response_schema=_ITEM,
    params={"item_id": "the explanation item's number"},
)
def account(item_id: int) -> Response:
    try:
        return jsonify(add_account(item_id, request.get_json()))
    except Problem as p:
        return json_error(p.status, "refused" if p.status < 500 else "unavailable", p.message)
