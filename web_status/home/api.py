"""``/api/v1/session`` (who am I) and ``/api/v1/slots`` (the slot grid): the first two
routes of the API, the pattern the other areas copy."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from web_status.api import api_route
from web_status.auth import ANY_ROLE, dock, person

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "roles": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "name", "roles"],
}

SLOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "slot": {"type": "string"},
        "state": {"type": "string"},
        "device": {"type": ["string", "null"]},
        "ready": {"type": "boolean"},
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "error": {"type": ["string", "null"]},
        "battery_percent": {"type": ["integer", "number", "null"]},
        "awaiting_takeaway": {"type": "boolean"},
        "guarantees": {
            "type": ["object", "null"],
            "description": "the recorder's driver and which guarantees it allows: hash "
            "(capture|offload), erase (erase|keep), clock (set|read|none), identity "
            "(proven|claimed), battery (reported|unknown)",
        },
        "offload": {
            "type": ["object", "null"],
            "description": "progress while offloading: bytes done and in all, recordings",
        },
    },
    "required": ["slot", "state", "device", "ready", "reasons", "error", "offload"],
}


@api_route(
    "/session",
    summary="who the session or token is: id, name, roles",
    roles=ANY_ROLE,
    response_schema={"type": "object", "properties": {"person": PERSON_SCHEMA}},
)
def session_info() -> Response:
    who = person()
    return jsonify({"person": {"id": who.id, "name": who.name, "roles": list(who.roles)}})


def slot_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The slot grid from the daemon's status report: state, why not ready, progress."""
    rows = []
    for s in report.get("slots", []):
        rows.append(
            {
                "slot": s.get("slot"),
                "state": s.get("state"),
                "device": s.get("device"),
                "ready": bool(s.get("ready")),
                "reasons": s.get("failed") or [],
                "error": s.get("error"),
                "battery_percent": s.get("battery_percent"),
                "awaiting_takeaway": bool(s.get("awaiting_takeaway")),
                "guarantees": s.get("guarantees"),
                "offload": s.get("offload"),
            }
        )
    return rows


@api_route(
    "/slots",
    summary="every slot: state, why it is not ready, offload progress (the last sweep)",
    roles=ANY_ROLE,
    response_schema={
        "type": "object",
        "properties": {
            "time_utc": {"type": "string"},
            "slots": {"type": "array", "items": SLOT_SCHEMA},
        },
        "required": ["slots"],
    },
)
def slots() -> Response:
    report = dock().status()
    return jsonify({"time_utc": report.get("time_utc"), "slots": slot_rows(report)})
