"""``/api/v1/maintenance/...``: what the maintenance pages show and do, as JSON."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from werkzeug.wrappers import Response

from web_status.api import api_route, json_error
from web_status.auth import dock, person
from web_status.maintenance.views import (
    ROLES,
    device_rows,
    faults,
    firmware_rows,
    reads,
    slot_rows,
)

_NUM = {"type": ["integer", "number", "null"]}
_DEVICE = {
    "type": "object",
    "properties": {
        "serial": {"type": "string"}, "model": {"type": "string"},
        "firmware": {"type": "string"}, "lost": {"type": "boolean"},
        "maintenance": {"type": "boolean"}, "note": {"type": "string"},
        "battery_percent": _NUM, "health": _NUM, "cycles": _NUM, "temp": _NUM, "at": _NUM,
    },
    "required": ["serial", "model", "firmware", "lost", "maintenance"],
}  # fmt: skip
_SLOT_RESULT = {"type": "object", "properties": {"slot": {"type": "string"}}}


@api_route(
    "/maintenance/devices",
    summary="enrolled recorders with their flags and last battery, health, cycles, temperature",
    roles=ROLES,
    response_schema={
        "type": "object",
        "properties": {"devices": {"type": "array", "items": _DEVICE}},
    },
)
def devices() -> Response:
    return jsonify({"devices": device_rows()})


@api_route(
    "/maintenance/devices/<serial>/history",
    summary="a recorder's status history (oldest first), its fault and refusal entries, "
    "its event log reads and the gaps they found",
    roles=ROLES,
    params={"serial": "the recorder's serial"},
    response_schema={
        "type": "object",
        "properties": {
            "serial": {"type": "string"},
            "status": {"type": "array", "items": {"type": "object"}},
            "faults": {"type": "array", "items": {"type": "object"}},
            "event_log_reads": {"type": "array", "items": {"type": "object"}},
            "gaps": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["serial", "status", "faults"],
    },
)
def history(serial: str) -> Response:
    if dock().store.device(serial) is None:
        return json_error(404, "not_found", "no such recorder")
    found, _slow = faults(serial)
    return jsonify(
        {
            "serial": serial,
            "status": reads().status_series(serial),
            "faults": [
                {"seq": e.seq, "time": e.time, "kind": e.kind, "actor": e.actor, "data": e.data}
                for e in found
            ],
            "event_log_reads": reads().event_log_reads(serial),
            "gaps": reads().gaps(serial),
        }
    )


@api_route(
    "/maintenance/firmware",
    summary="firmware inventory: model, firmware, how many recorders, allowed by policy",
    roles=ROLES,
    response_schema={"type": "object", "properties": {"firmware": {"type": "array"}}},
)
def firmware() -> Response:
    return jsonify({"firmware": firmware_rows()})


@api_route(
    "/maintenance/slots",
    summary="each slot's state and its link error counters (link, timeout, auth, "
    "protocol, refused)",
    roles=ROLES,
    response_schema={
        "type": "object",
        "properties": {"slots": {"type": "array"}, "daemon": {"type": "boolean"}},
    },
)
def slots() -> Response:
    rows, up = slot_rows()
    return jsonify({"slots": rows, "daemon": up})


def _slot_known(slot: str) -> None:
    if slot not in {s.id for s in dock().cfg.slots}:
        abort(404)


@api_route(
    "/maintenance/slots/<slot>/self-test",
    summary="inspect the slot now: the recorder's self-test and every check (audited)",
    roles=ROLES,
    methods=("POST",),
    params={"slot": "the slot's id"},
    response_schema=_SLOT_RESULT,
)
def self_test(slot: str) -> Response:
    _slot_known(slot)
    result: Any = dock().act(person().token, "slot.self_test", {"slot": slot})
    return jsonify(result)


@api_route(
    "/maintenance/slots/<slot>/indicator-test",
    summary="show the slot's LED patterns in turn, beep, and a test line on the screen (audited)",
    roles=ROLES,
    methods=("POST",),
    params={"slot": "the slot's id"},
    response_schema=_SLOT_RESULT,
)
def indicator_test(slot: str) -> Response:
    _slot_known(slot)
    result: Any = dock().act(person().token, "slot.indicator_test", {"slot": slot})
    return jsonify(result)


@api_route(
    "/maintenance/devices/<serial>/flag",
    summary="take a recorder out of service for maintenance, or back in as repaired (audited)",
    roles=ROLES,
    methods=("POST",),
    params={"serial": "the recorder's serial"},
    request_schema={
        "type": "object",
        "properties": {
            "maintenance": {"type": "boolean"},
            "note": {"type": "string", "maxLength": 500},
        },
        "required": ["maintenance"],
        "additionalProperties": False,
    },
    response_schema={"type": "object"},
)
def flag(serial: str) -> Response:
    body = request.get_json()
    args: dict[str, Any] = {"serial": serial, "maintenance": body["maintenance"]}
    if body.get("note"):
        args["note"] = body["note"]
    return jsonify(dock().act(person().token, "device.flag", args))
