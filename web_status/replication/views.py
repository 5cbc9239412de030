"""The replication page: each target's backlog and each package's way to it."""

from __future__ import annotations

import time
from typing import Any

from flask import abort, render_template, request

from dock.services.replication_status import backlog_line, failed_reasons, replication_summary
from dock.storage.replication_table import OPEN_STATES, replication_rows
from web_status.auth import dock, require_role
from web_status.replication import ROLES, bp

#: The package list's filters: which queue states each shows.
FILTERS: dict[str, tuple[str, ...]] = {
    "all": (*OPEN_STATES, "replicated", "superseded"),
    "open": OPEN_STATES,
    "failed": ("failed",),
    "replicated": ("replicated",),
}
#: Most packages listed at once (newest seal last is the order of the queue: urgent and
#: oldest first, so the ones that matter are within it).
PACKAGES_MAX = 500


def status(now: float, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Targets, the one-line backlog and whether replication is configured at all; with
    the queue's ``rows`` (already read for the package list) each target's
    ``failed_reasons`` too."""
    cfg = dock().cfg.replication
    targets = replication_summary(dock().store, now, [t.name for t in cfg.targets])
    if rows is not None:
        reasons = failed_reasons(rows)
        targets = [{**t, "failed_reasons": reasons.get(t["name"], [])} for t in targets]
    return {
        "enabled": cfg.enabled,
        "deadline_hours": cfg.deadline_hours,
        "targets": targets,
        "backlog": backlog_line(targets, now, cfg.deadline_hours),
    }


def start_page_line(now: float) -> dict[str, Any] | None:
    """The start page's line (None: no target configured and nothing queued)."""
    found = status(now)
    if not found["enabled"] and not found["targets"]:
        return None
    return dict(found["backlog"])


def packages(state_filter: str, now: float, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Queue ``rows`` in the filter, at most :data:`PACKAGES_MAX`, with the age of each."""
    states = FILTERS[state_filter]
    chosen = [r for r in rows if r["state"] in states]
    out = []
    for r in chosen[:PACKAGES_MAX]:
        out.append(
            {
                "bag": r["bag"],
                "target": r["target"],
                "state": r["state"],
                "urgent": bool(r["urgent"]),
                "sealed_at": r["sealed_at"],
                "age_h": max(0.0, now - r["sealed_at"]) / 3600.0,
                "attempts": r["attempts"],
                "reason": r["reason"],
                "percent": r["percent"],
                "verified_at": r["verified_at"],
            }
        )
    return out


def chosen_filter() -> str:
    """``?state=``: one of :data:`FILTERS` (default ``all``); anything else is a 400."""
    value = request.args.get("state", "all")
    if value not in FILTERS:
        abort(400)
    return value


@bp.get("/")
@require_role(*ROLES)
def index() -> str:
    now = time.time()
    state_filter = chosen_filter()
    rows = replication_rows(dock().store)
    return render_template(
        "replication/index.html",
        now=now,
        status=status(now, rows),
        packages=packages(state_filter, now, rows),
        state_filter=state_filter,
        filters=list(FILTERS),
        packages_max=PACKAGES_MAX,
    )
