"""``/api/v1/supervisor/...``: what the supervisor's pages show and do, as JSON (the same
``actions`` and reads as the pages)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from dock.domain.roles import SUPERVISOR
from dock.services import custody_views
from web_status.api import api_route, json_error
from web_status.auth import dock
from web_status.officer.acting import Problem
from web_status.supervisor import actions

SUP = (SUPERVISOR,)
_OBJ: dict[str, Any] = {"type": "object"}
_LIST: dict[str, Any] = {"type": "array", "items": _OBJ}
_S = {"type": "string", "minLength": 1, "maxLength": 64}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 2000}


def _body(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}  # fmt: skip


def _run(step: Callable[[], Any]) -> Response:
    try:
        return jsonify(step())
    except Problem as p:
        return json_error(p.status, "refused" if p.status < 500 else "unavailable", p.message)


def _fields() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@api_route("/supervisor/gaps", summary="Open explanation items of every officer", roles=SUP,
           response_schema=_LIST)  # fmt: skip
def gaps() -> Response:
    return jsonify(custody_views.gap_items(dock().store))


@api_route("/supervisor/gaps/close", summary="Accept several accounts with one explanation (PIN)",
           roles=SUP, methods=("POST",), response_schema=_LIST,
           request_schema=_body({"ids": {"type": "array", "items": {"type": "integer"},
                                         "maxItems": 500}, "text": _TEXT, "pin": _S},
                                ["ids", "text", "pin"]))  # fmt: skip
def close_gaps() -> Response:
    return _run(lambda: actions.close_gaps(_fields()))


@api_route("/supervisor/gaps/return", summary="Return accounts to their officers with a reason",
           roles=SUP, methods=("POST",), response_schema=_LIST,
           request_schema=_body({"ids": {"type": "array", "items": {"type": "integer"},
                                         "maxItems": 500}, "text": _TEXT, "pin": _S},
                                ["ids", "text", "pin"]))  # fmt: skip
def return_gaps() -> Response:
    return _run(lambda: actions.return_gaps(_fields()))


@api_route("/supervisor/alerts", summary="Recording that could not continue, not yet reviewed",
           roles=SUP, response_schema=_LIST)  # fmt: skip
def alerts() -> Response:
    return jsonify(custody_views.gap_alerts(dock().store))


@api_route("/supervisor/holds", summary="Every hold, newest first", roles=SUP,
           response_schema=_LIST)  # fmt: skip
def holds() -> Response:
    return jsonify(custody_views.holds(dock().store, time.time()))


@api_route("/supervisor/holds", summary="Place a hold on a recording, case, officer or episode",
           roles=SUP, methods=("POST",), name="supervisor_place_hold", response_schema=_OBJ,
           request_schema=_body({"scope": {"enum": list(actions.HOLD_SCOPES)},
                                 "kind": {"enum": list(actions.HOLD_KINDS)},
                                 "target": {"type": "string", "maxLength": 200},
                                 "reference": {"type": "string", "maxLength": 200},
                                 "date_from": _S, "date_to": _S, "until": _S},
                                ["scope", "kind", "target", "reference"]))  # fmt: skip
def place_hold() -> Response:
    return _run(lambda: actions.place_hold(_fields()))


@api_route("/supervisor/holds/<int:hold_id>/release", summary="Release a hold (reason, PIN)",
           roles=SUP, methods=("POST",), response_schema=_OBJ,
           request_schema=_body({"reason": _TEXT, "pin": _S}, ["reason", "pin"]),
           params={"hold_id": "the hold's number"})  # fmt: skip
def release_hold(hold_id: int) -> Response:
    return _run(lambda: actions.release_hold(hold_id, _fields()))


@api_route("/supervisor/purge/preview", summary="What a purge would do now (dry run)",
           roles=SUP, methods=("POST",), response_schema=_OBJ)  # fmt: skip
def purge_preview() -> Response:
    return _run(actions.purge_preview)


@api_route("/supervisor/purge/apply",
           summary="Purge now: this supervisor and a second, PINs, and the approved appraisal",
           roles=SUP, methods=("POST",), response_schema=_OBJ,
           request_schema=_body({"pin": _S, "second": _S, "second_pin": _S,
                                 "appraisal": {"type": "integer", "minimum": 1}},
                                ["pin", "second", "second_pin", "appraisal"]))  # fmt: skip
def purge_apply() -> Response:
    return _run(lambda: actions.purge_apply(_fields()))


@api_route("/supervisor/access", summary="Every access request, newest first", roles=SUP,
           response_schema=_LIST)  # fmt: skip
def access() -> Response:
    return jsonify(custody_views.access_requests(dock().store, time.time()))


@api_route("/supervisor/access", summary="Ask to view, copy or export recordings", roles=SUP,
           methods=("POST",), name="supervisor_request_access", response_schema=_OBJ,
           request_schema=_body({"kind": {"enum": list(actions.ACCESS_KINDS)}, "purpose": _TEXT,
                                 "recordings": {"type": "array", "items": _S, "maxItems": 200}},
                                ["kind", "purpose", "recordings"]))  # fmt: skip
def request_access() -> Response:
    return _run(lambda: actions.request_access(_fields()))


@api_route("/supervisor/access/<int:request_id>/approve", summary="Approve a request (PIN)",
           roles=SUP, methods=("POST",), response_schema=_OBJ,
           request_schema=_body({"pin": _S, "days": {"type": "string", "maxLength": 4}},
                                ["pin"]),
           params={"request_id": "the request's number"})  # fmt: skip
def approve(request_id: int) -> Response:
    return _run(lambda: actions.approve(request_id, _fields()))


@api_route("/supervisor/access/<int:request_id>/refuse", summary="Refuse a request (reason, PIN)",
           roles=SUP, methods=("POST",), response_schema=_OBJ,
           request_schema=_body({"pin": _S, "reason": _TEXT}, ["pin", "reason"]),
           params={"request_id": "the request's number"})  # fmt: skip
def refuse(request_id: int) -> Response:
    return _run(lambda: actions.refuse(request_id, _fields()))


@api_route("/supervisor/access/<int:request_id>/export",
           summary="Start the export of an approved export request (progress: exports/<id>)",
           roles=SUP, methods=("POST",), response_schema=_OBJ,
           request_schema=_body({"extractor": _S, "place": {"type": "string", "maxLength": 200},
                                 "iso": {"type": "boolean"}}, ["extractor", "place"]),
           params={"request_id": "the request's number"})  # fmt: skip
def export(request_id: int) -> Response:
    return _run(lambda: actions.start_export(request_id, _fields()))


@api_route("/supervisor/exports/<export_id>", summary="An export's state and progress",
           roles=SUP, response_schema=_OBJ, params={"export_id": "the export's id"})  # fmt: skip
def export_progress(export_id: str) -> Response:
    found = actions.exports().progress(export_id)
    if found is None:
        return json_error(404, "not_found", "no such export")
    return jsonify(found)


@api_route("/supervisor/override", summary="Override a refused check-out (both PINs, reason)",
           roles=SUP, methods=("POST",), response_schema=_OBJ,
           request_schema=_body({"officer": _S, "officer_pin": _S, "pin": _S, "reason": _TEXT},
                                ["officer", "officer_pin", "pin", "reason"]))  # fmt: skip
def override() -> Response:
    return _run(lambda: actions.override(_fields()))


@api_route("/supervisor/chain/<serial>", summary="The custody chain of a recorder",
           roles=SUP, response_schema=_OBJ, params={"serial": "the recorder"})  # fmt: skip
def chain(serial: str) -> Response:
    return jsonify(custody_views.chain_of_recorder(dock().store, serial[:64], time.time()))
