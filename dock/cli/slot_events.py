"""What changed in the dock between two sweeps of ``dock run``, as log lines (logger
``dock.slots``): a recorder docked or taken out, ready to hand out, not ready and why,
a fault, the clock trusted or not. In the journal these replace the status table.

What the daemon logs where it happens is not said again here: check-out decisions
(``dock.daemon.service``), offloads started and finished with "footage safe"
(``dock.daemon.offload_pool``), deadlines and recorders not returned
(``dock.daemon.maintenance``). Levels follow the rule in :mod:`common.logsetup`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("dock.slots")

Report = Mapping[str, Any]


def _reasons(row: Mapping[str, Any]) -> str:
    return "; ".join(str(f.get("message")) for f in row.get("failed") or ()) or "no reason given"


def _state_line(slot: str, row: Mapping[str, Any]) -> tuple[int, str] | None:
    """What a slot's new state says, or None for a passing state (identifying,
    charging, offloading: the offload says its own start and end)."""
    device, state = row.get("device"), row.get("state")
    if row.get("awaiting_takeaway"):
        return logging.INFO, f"slot {slot}: {device} granted, waiting to be taken"
    if state == "ready":
        return logging.INFO, f"slot {slot}: {device} ready to hand out"
    if state == "failed_check":
        return logging.INFO, f"slot {slot}: {device} not ready: {_reasons(row)}"
    if state == "fault":
        return logging.WARNING, f"slot {slot}: {device or 'recorder'} fault: {row.get('error')}"
    return None


def _state_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a slot's state news: its state and, when it is not ready, which checks
    failed (by code: a battery charging from 11 % to 12 % is not news)."""
    codes = tuple(sorted(str(f.get("code")) for f in row.get("failed") or ()))
    error = row.get("error") if row.get("state") == "fault" else None
    return (row.get("device"), row.get("state"), bool(row.get("awaiting_takeaway")), codes, error)


def changes(before: Report | None, after: Report) -> list[tuple[int, str]]:
    """(level, line) for each change that matters from ``before`` (None: the first sweep,
    taken as an empty dock) to ``after``, both :func:`dock.services.status.status_report`."""
    out: list[tuple[int, str]] = []
    clock = after.get("clock") or {}
    trusted_before = True if before is None else (before.get("clock") or {}).get("trusted")
    if clock.get("trusted") != trusted_before:  # said at start only when not trusted
        if clock.get("trusted"):
            out.append((logging.INFO, f"clock trusted again: {clock.get('reason')}"))
        else:
            level = logging.WARNING  # check-outs are refused until it is put right
            out.append((level, f"clock NOT trusted: {clock.get('reason')}"))
    old = {r["slot"]: r for r in (before or {}).get("slots", ())}
    for row in after.get("slots", ()):
        slot, prev = row["slot"], old.get(row["slot"], {})
        device, had = row.get("device"), prev.get("device")
        if had and had != device:
            out.append((logging.INFO, f"slot {slot}: recorder {had} taken out"))
        if device and device != had:
            out.append((logging.INFO, f"slot {slot}: recorder {device} docked"))
        said = _state_line(slot, row)
        if said is not None and (not prev or _state_key(row) != _state_key(prev)):
            out.append(said)
    return out


def log_changes(before: Report | None, after: Report) -> None:
    """Log each change that matters (:func:`changes`)."""
    for level, line in changes(before, after):
        log.log(level, "%s", line)


__all__ = ["changes", "log_changes"]
