"""The dock's status as data: every slot, the clock, the fleet ratio (what ``dock
status``, ``dock run`` and a web page show)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.services.context import DockContext


def status_report(dock: DockContext, views: Iterable[Any]) -> dict[str, Any]:
    """JSON-ready: slots as the last sweep saw them (``views``), times in UTC and local."""
    rows = []
    for v in views:
        snap = v.snapshot
        rows.append(
            {
                "slot": v.slot_id,
                "port": v.port,
                "state": dock.slot_status[v.slot_id].state.value,
                "device": v.serial,
                "ready": v.ready,
                "battery_percent": snap.battery_percent if snap else None,
                "battery_health_percent": snap.battery_health_percent if snap else None,
                "storage_free_bytes": snap.storage_free_bytes if snap else None,
                "clock_offset_after_sync_s": snap.clock_offset_after_sync_s if snap else None,
                "failed": [{"code": r.code, "message": r.message} for r in v.failures],
                "awaiting_takeaway": dock.store.awaiting_takeaway(v.slot_id) is not None,
                "offload": dock.offload_progress.get(v.slot_id),
                "error": v.error,
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
        "fleet": dock.store.ratio(),
    }
