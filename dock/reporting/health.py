"""What the dock says about itself and its slots in health and slot messages."""

from __future__ import annotations

import os
from typing import Any

import psutil

from mqtt_contract.contract import (
    REPLICATION_ERROR_MAX,
    REPLICATION_MAX_TARGETS,
    REPLICATION_NAME_MAX,
    one_line,
    utc,
)


def cpu_temperature() -> float | None:
    """The SoC's temperature (a Pi's cpu_thermal, a PC's coretemp/k10temp), or None."""
    try:
        sensors = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        return None
    for name in ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "acpitz"):
        if sensors.get(name):
            return round(float(sensors[name][0].current), 1)
    for readings in sensors.values():
        if readings:
            return round(float(readings[0].current), 1)
    return None


def _free(path: str) -> int | None:
    try:
        return int(psutil.disk_usage(path).free)
    except OSError:
        return None


def dock_health(state_dir: str, evidence_dir: str, now: float) -> dict[str, Any]:
    return {
        "uptime_s": round(now - psutil.boot_time(), 1),
        "load_1m": round(os.getloadavg()[0], 2),
        "cpu_temp_c": cpu_temperature(),
        "memory_used_pct": round(psutil.virtual_memory().percent, 1),
        "disk_free_bytes": _free(state_dir),
        "evidence_free_bytes": _free(evidence_dir),
    }


def slot_summary(slot_id: str, state: str, view: Any) -> dict[str, Any]:
    """One slot as headquarters sees it; ``view`` is the service's SlotView."""
    status = view.status if view.serial else None
    snap = view.snapshot if view.serial else None
    return {
        "slot": slot_id,
        "state": state,
        "serial": view.serial,
        "battery_pct": status.battery_percent if status else None,
        "battery_health_pct": status.battery_health_percent if status else None,
        "storage_free_bytes": status.storage_free_bytes if status else None,
        "drift_s": snap.clock_offset_after_sync_s if snap else None,
        "recordings_pending": snap.recordings_pending if snap else None,
        "failed": [r.code for r in view.failures] if view.serial else [],
    }


def replication_health(targets: list[dict[str, Any]], deadline_hours: float) -> dict[str, Any]:
    """Health's ``replication`` object (MQTT.md) from
    :func:`dock.services.replication_status.replication_summary`: times in UTC, the last
    error one bounded line, at most the contract's number of targets."""

    def when(t: float | None) -> str | None:
        return None if t is None else utc(t)

    return {
        "deadline_hours": deadline_hours,
        "targets": [
            {
                "name": one_line(t["name"], REPLICATION_NAME_MAX),
                **{k: int(t[k]) for k in ("pending", "sending", "failed", "replicated_24h")},
                "oldest_pending_at": when(t["oldest_pending_at"]),
                "last_success_at": when(t["last_success_at"]),
                "last_error": None
                if t["last_error"] is None
                else one_line(t["last_error"], REPLICATION_ERROR_MAX),
            }
            for t in targets[:REPLICATION_MAX_TARGETS]
        ],
    }
