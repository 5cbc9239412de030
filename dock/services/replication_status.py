"""Replication status per target, as people see it: the status pages, ``/api/v1`` and
the health message to headquarters all read it here, so they cannot disagree.

Built from the queue's own reader (:func:`dock.storage.replication_table.replication_rows`,
owned by the replication engine); nothing here writes or decides what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dock.storage.replication_table import OPEN_STATES, replication_rows
from dock.storage.store import Store

DAY_S = 24 * 3600.0
#: States of a package that is being sent or checked at the target right now.
SENDING_STATES = ("sending", "verifying")
#: Distinct failure reasons kept per target.
REASONS_MAX = 5


def replication_summary(
    store: Store, now: float, targets: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One dict per target (the configured ``targets`` first, then any other the queue
    names): ``pending`` (packages still owing a verified copy: waiting, being sent or
    failed and waiting to be tried again), ``sending``, ``failed``, ``replicated_24h``,
    ``oldest_pending_at`` and ``last_success_at`` (epoch seconds or None) and
    ``last_error`` (the newest failure's reason when no success came after it), and
    ``failed_reasons`` (each reason of the failed ones once, newest first, at most
    :data:`REASONS_MAX`)."""
    by_target: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for row in replication_rows(store):
        by_target.setdefault(row["target"], []).append(row)
    return [_one(name, rows, now) for name, rows in by_target.items()]


def _one(name: str, rows: list[dict[str, Any]], now: float) -> dict[str, Any]:
    open_rows = [r for r in rows if r["state"] in OPEN_STATES]
    done = [r["verified_at"] for r in rows if r["state"] == "replicated" and r["verified_at"]]
    failed = [r for r in rows if r["state"] == "failed"]
    last_success = max(done, default=None)
    newest_failure = max(failed, key=lambda r: r["updated_at"] or 0.0, default=None)
    last_error = None
    if newest_failure is not None and (
        last_success is None or (newest_failure["updated_at"] or 0.0) > last_success
    ):
        last_error = newest_failure["reason"] or "failed"
    return {
        "name": name,
        "pending": len(open_rows),
        "sending": sum(1 for r in open_rows if r["state"] in SENDING_STATES),
        "failed": len(failed),
        "replicated_24h": sum(1 for t in done if t >= now - DAY_S),
        "oldest_pending_at": min((r["sealed_at"] for r in open_rows), default=None),
        "last_success_at": last_success,
        "last_error": last_error,
        # why the failed ones failed, newest first, each once (the page shows them)
        "failed_reasons": list(
            dict.fromkeys(
                r["reason"] or "failed"
                for r in sorted(failed, key=lambda r: -(r["updated_at"] or 0.0))
            )
        )[:REASONS_MAX],
    }


def backlog_line(
    targets: list[dict[str, Any]], now: float, deadline_hours: float
) -> dict[str, Any]:
    """The start page's one line: packages waiting over all targets, the oldest one's
    age in hours, and whether it is past the deadline."""
    waiting = sum(t["pending"] for t in targets)
    oldest = min((t["oldest_pending_at"] for t in targets if t["oldest_pending_at"]), default=None)
    age_h = None if oldest is None else max(0.0, now - oldest) / 3600.0
    return {
        "waiting": waiting,
        "failed": sum(t["failed"] for t in targets),
        "oldest_age_h": age_h,
        "deadline_hours": deadline_hours,
        "late": age_h is not None and age_h > deadline_hours,
    }
