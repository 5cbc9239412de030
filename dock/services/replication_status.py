"""Replication status per target, as people see it: the status pages, ``/api/v1`` and
the health message to headquarters all read it here, so they cannot disagree.

Built on the queue's own readers (:mod:`dock.storage.replication_table`, owned by the
replication engine); nothing here writes or decides what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dock.storage.replication_table import replication_targets
from dock.storage.store import Store

#: Distinct failure reasons kept per target.
REASONS_MAX = 5


def _nothing(name: str) -> dict[str, Any]:
    return {"name": name, "pending": 0, "sending": 0, "failed": 0, "replicated_24h": 0,
            "oldest_pending_at": None, "last_success_at": None, "last_error": None}  # fmt: skip


def replication_summary(
    store: Store, now: float, targets: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One dict per target (the configured ``targets`` first, then any other the queue
    names), with ``name`` and what health's ``replication`` object carries per target
    (:func:`dock.storage.replication_table.replication_targets`): ``pending`` (packages
    still owing a verified copy, sending and failed included), ``sending``, ``failed``,
    ``replicated_24h``, ``oldest_pending_at`` and ``last_success_at`` (epoch seconds or
    None) and ``last_error``."""
    found = replication_targets(store, now)
    names = list(dict.fromkeys([*targets, *found]))
    return [{**_nothing(name), **found.get(name, {})} for name in names]


def failed_reasons(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Per target, why its failed packages failed: each reason once, newest first, at
    most :data:`REASONS_MAX` (from :func:`replication_rows` rows the caller has read)."""
    failed = sorted(
        (r for r in rows if r["state"] == "failed"), key=lambda r: -(r["updated_at"] or 0.0)
    )
    out: dict[str, list[str]] = {}
    for r in failed:
        reasons = out.setdefault(r["target"], [])
        reason = r["reason"] or "failed"
        if reason not in reasons and len(reasons) < REASONS_MAX:
            reasons.append(reason)
    return out


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
