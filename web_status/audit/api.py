"""``/api/v1/audit/...``: the log's entries (filtered, paged by seq), its verification
and the signed export, as JSON."""

from __future__ import annotations

from flask import jsonify, request
from werkzeug.wrappers import Response

from dock.storage.audit.reader import PAGE_MAX, AuditQueryTooSlow
from web_status.api import api_route, json_error
from web_status.audit.views import (
    ROLES,
    BadFilter,
    page_of,
    read_before,
    read_filter,
    run_export,
    verify_report,
)

_ENTRY = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"}, "time": {"type": "string"}, "kind": {"type": "string"},
        "actor": {"type": "string"}, "subject": {"type": "string"}, "data": {"type": "object"},
        "hash": {"type": "string"},
    },
    "required": ["seq", "time", "kind", "actor", "subject", "data"],
}  # fmt: skip


@api_route(
    "/audit/entries",
    summary="audit entries newest first, filtered by query parameters kind, actor, subject, "
    "from, to (local time in the dock's zone); page with before=<older> and limit (<= 200)",
    roles=ROLES,
    response_schema={
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": _ENTRY},
            "older": {"type": ["integer", "null"]},
            "head_seq": {"type": "integer"},
        },
        "required": ["entries", "older", "head_seq"],
    },
)
def entries() -> Response:
    try:
        where, _given = read_filter(request.args)
    except BadFilter as exc:
        return json_error(400, "bad_request", str(exc))
    raw = str(request.args.get("limit", "50"))
    limit = min(int(raw), PAGE_MAX) if raw.isdigit() and len(raw) < 6 else 50
    try:
        page = page_of(where, read_before(request.args), limit=max(limit, 1))
    except AuditQueryTooSlow as exc:
        return json_error(400, "too_slow", str(exc))
    return jsonify(
        {
            "entries": [
                {
                    "seq": e.seq,
                    "time": e.time,
                    "kind": e.kind,
                    "actor": e.actor,
                    "subject": e.subject,
                    "data": e.data,
                    "hash": e.hash,
                }
                for e in page.entries
            ],
            "older": page.older,
            "head_seq": page.head_seq,
        }
    )


@api_route(
    "/audit/verify",
    summary="verify the chain (every hash, link and signed checkpoint) in the dock service",
    roles=ROLES,
    methods=("POST",),
    response_schema={
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "first_bad": {"type": ["integer", "null"]},
            "reason": {"type": ["string", "null"]},
            "summary": {"type": "string"},
        },
        "required": ["ok", "first_bad"],
    },
)
def verify() -> Response:
    return jsonify(verify_report())


@api_route(
    "/audit/export",
    summary="write a signed export of the log (audited with the caller); download it "
    "from the returned address",
    roles=ROLES,
    methods=("POST",),
    response_schema={
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "entries": {"type": "integer"},
            "download": {"type": "string"},
        },
        "required": ["id", "download"],
    },
)
def export() -> Response:
    return jsonify(run_export())
