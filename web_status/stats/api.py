"""``/api/v1/stats/<table>``: each statistics table as JSON, the numbers of the page
(same computation, same period and grouping parameters), one route per table so the
OpenAPI document says exactly what each row holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from dock.services.errors import RequestError
from dock.services.stats import COUNTS, GROUPINGS, RECORDER_COLUMNS, StatsUnavailable
from web_status.api import api_route, json_error
from web_status.stats.views import ROLES, compute

_DATE = {
    "type": "string",
    "format": "date",
    "pattern": r"^\d{4}-\d{2}-\d{2}$",
    "maxLength": 10,
}

#: The query parameters every table takes.
QUERY: dict[str, dict[str, Any]] = {
    "from": {
        **_DATE,
        "description": "first local date (the dock's zone), included; default 29 days before to",
    },
    "to": {**_DATE, "description": "last local date, included; default today"},
    "by": {"type": "string", "enum": list(GROUPINGS), "description": "default officer"},
}

_TEXT_OR_NULL = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}


def _row_schema(table: str) -> dict[str, Any]:
    if table == "recorders":
        props: dict[str, Any] = {
            "scope": {"type": "string", "enum": ["dock", "unit"]},
            "unit": _TEXT_OR_NULL,
            "officers": _COUNT,
            "recorders": _COUNT,
            "per_officer": {"type": ["number", "null"], "minimum": 0},
            "minimum": {"type": "number", "minimum": 0},
            "meets": {"type": ["boolean", "null"]},
        }
        required = list(RECORDER_COLUMNS)
    else:
        props = {"unit": _TEXT_OR_NULL, "officer": _TEXT_OR_NULL, "name": _TEXT_OR_NULL}
        for column in COUNTS[table]:
            props[column] = {"type": "string"} if column == "reason" else _COUNT
        required = ["unit", *COUNTS[table]]
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def table_schema(table: str) -> dict[str, Any]:
    """What ``/api/v1/stats/<table>`` answers."""
    return {
        "type": "object",
        "properties": {
            "period": {
                "type": "object",
                "properties": {
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "zone": {"type": "string"},
                },
                "required": ["from", "to", "zone"],
            },
            "by": {"type": "string", "enum": list(GROUPINGS)},
            "table": {"type": "string", "enum": [table]},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": _row_schema(table)},
            "truncated": {"type": "boolean"},
        },
        "required": ["period", "by", "table", "columns", "rows", "truncated"],
        "additionalProperties": False,
    }


SUMMARIES = {
    "checkouts": "check-outs, refused check-outs and overrides per officer or unit",
    "refusals": "refused check-outs by reason per officer or unit",
    "late_offloads": "recorders returned in the period against the offload deadline",
    "gaps": "gaps in recording opened in the period: open, closed, accounted for",
    "recorders": "recorders per officer (the dock now; each unit in the period) "
    "against the policy's minimum",
}


def _answer(table: str) -> Response:
    try:
        data = compute((table,))
    except RequestError as exc:
        return json_error(400, "bad_request", str(exc))
    except StatsUnavailable as exc:
        return json_error(503, "unavailable", str(exc))
    return jsonify({"period": data["period"], "by": data["by"], **data["tables"][table]})


def _route(table: str) -> Callable[[], Response]:
    def view() -> Response:
        return _answer(table)

    view.__name__ = f"stats_{table}"
    view.__qualname__ = view.__name__
    view.__module__ = __name__
    return api_route(
        f"/stats/{table}",
        summary=SUMMARIES[table],
        roles=ROLES,
        response_schema=table_schema(table),
        query=QUERY,
        name=view.__name__,
    )(view)


for _table in SUMMARIES:
    _route(_table)
