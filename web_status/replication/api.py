"""``/api/v1/replication``: the replication page as JSON."""

from __future__ import annotations

import time

from flask import jsonify
from werkzeug.wrappers import Response

from dock.storage.replication_table import replication_rows
from web_status.api import api_route
from web_status.auth import dock
from web_status.replication import ROLES
from web_status.replication.views import FILTERS, chosen_filter, packages, status

_TIME = {"type": ["number", "null"], "description": "seconds since the epoch (UTC)"}
_TARGET = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "pending": {"type": "integer", "minimum": 0},
        "sending": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "replicated_24h": {"type": "integer", "minimum": 0},
        "oldest_pending_at": _TIME,
        "last_success_at": _TIME,
        "last_error": {"type": ["string", "null"]},
        "failed_reasons": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "pending", "sending", "failed", "replicated_24h",
                 "oldest_pending_at", "last_success_at", "last_error"],
}  # fmt: skip
_PACKAGE = {
    "type": "object",
    "properties": {
        "bag": {"type": "string"},
        "target": {"type": "string"},
        "state": {"type": "string"},
        "urgent": {"type": "boolean"},
        "sealed_at": {"type": "number"},
        "age_h": {"type": "number"},
        "attempts": {"type": "integer"},
        "reason": {"type": ["string", "null"]},
        "percent": {"type": "integer"},
        "verified_at": _TIME,
    },
    "required": ["bag", "target", "state", "sealed_at", "attempts"],
}


@api_route(
    "/replication",
    summary="replication to central storage: each target's backlog (waiting, sending, "
    "failed, verified in 24 h, oldest waiting seal, last success, last error), the backlog "
    "over all targets against the deadline, and the packages (filter with ?state=)",
    roles=ROLES,
    query={
        "state": {
            "type": "string",
            "enum": list(FILTERS),
            "description": "which packages: all (default), open, failed or replicated",
        }
    },
    response_schema={
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "deadline_hours": {"type": "number"},
            "targets": {"type": "array", "items": _TARGET},
            "backlog": {
                "type": "object",
                "properties": {
                    "waiting": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "oldest_age_h": {"type": ["number", "null"]},
                    "deadline_hours": {"type": "number"},
                    "late": {"type": "boolean"},
                },
                "required": ["waiting", "failed", "oldest_age_h", "deadline_hours", "late"],
            },
            "packages": {"type": "array", "items": _PACKAGE},
        },
        "required": ["enabled", "deadline_hours", "targets", "backlog", "packages"],
    },
)
def replication() -> Response:
    now = time.time()
    state_filter = chosen_filter()
    rows = replication_rows(dock().store)
    return jsonify({**status(now, rows), "packages": packages(state_filter, now, rows)})
