"""The dock's status as data: every slot, the clock, the fleet ratio, and the latest
decision for a badge read at the dock while it is fresh (what ``dock status``, ``dock
run``, the kiosk and a web page show)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.domain.fleet import ratio_verdict
from dock.evidence.shift_returns import not_returned
from dock.services.context import DockContext
from dock.services.handover_views import handover_in_slot

#: Slot states in which the last offload's outcome is no longer news.
_GONE = ("empty", "checked_out", "offloading", "identifying")


def _grant(dock: DockContext, custody: Any) -> dict[str, Any] | None:
    """A grant waiting in its slot: who, since when, and when it expires."""
    if custody is None:
        return None
    officer = dock.store.officer(custody.officer_id)
    return {
        "officer": custody.officer_id,
        "officer_name": officer.name if officer else None,
        "since_utc": utc_iso(custody.out_at),
        "expires_utc": utc_iso(custody.out_at + dock.grant_expiry_s),
    }


def _fleet(dock: DockContext) -> dict[str, Any]:
    """Recorders per officer against the policy's minimum, SHORTFALL below it (001 art.18)."""
    counts = dock.store.ratio()
    minimum = float(dock.policy.min_recorders_per_officer)
    return ratio_verdict(counts["recorders"], counts["officers"], minimum)


def status_report(dock: DockContext, views: Iterable[Any]) -> dict[str, Any]:
    """JSON-ready: slots as the last sweep saw them (``views``), times in UTC and local."""
    rows = []
    # read once for every row (each sweep): the grants still in their slots (what
    # awaiting_takeaway reads, slot by slot) and the offloads' progress
    grants = {c.slot_id: c for c in dock.store.open_grants()}
    outcomes = dock.offload_outcomes
    progress = dock.offload_progress
    for v in views:
        snap = v.snapshot
        state = dock.slot_status[v.slot_id].state.value
        rows.append(
            {
                "slot": v.slot_id,
                "port": v.port,
                "state": state,
                "device": v.serial,
                "ready": v.ready,
                # negative: not reported (a mass-storage camera): unknown, not a number
                "battery_percent": snap.battery_percent
                if snap and snap.battery_percent >= 0
                else None,
                "battery_health_percent": snap.battery_health_percent if snap else None,
                "storage_free_bytes": snap.storage_free_bytes if snap else None,
                "clock_offset_after_sync_s": snap.clock_offset_after_sync_s if snap else None,
                "failed": [{"code": r.code, "message": r.message} for r in v.failures],
                "awaiting_takeaway": v.slot_id in grants,
                "offload": progress.get(v.slot_id),
                "error": v.error,
                # the driver and which guarantees it allows (issue 14 section 3)
                "guarantees": getattr(v, "guarantees", None),
                "grant": _grant(dock, grants.get(v.slot_id)),
                # the last offload's outcome, while its recorder is still docked and idle
                "returned": outcomes.get(v.slot_id) if state not in _GONE else None,
                # who handed the docked recorder back, or that it waits to be signed for
                # (001 art.19(3)); a return by someone else or unsigned is flagged
                "handover": handover_in_slot(dock.store, v.serial),
            }
        )
    trusted, why = dock.clock.synchronised()
    now = dock.clock.now()
    return {
        "dock": dock.dock_id,
        "time_utc": utc_iso(now),  # stored and exchanged in UTC
        "time_local": local_display(now, dock.timezone),  # shown with its zone
        "clock": {"trusted": trusted, "reason": why},
        "slots": rows,
        "fleet": _fleet(dock),
        # recorders not back by the end of their shift (000 §14.1; 002 art.22; 003 art.21)
        "not_returned": not_returned(dock.store, dock.policy, dock.timezone, now),
        # for the kiosk: a badge read at the dock, decided (None once it is no longer news)
        "badge_decision": dock.badge_decision,
    }
