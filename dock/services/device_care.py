"""Recorders maintained on a schedule (REQUIREMENTS.md §8; 000 §14.1; 002 art.22; 003
art.21): a maintenance due date per recorder, set (or cleared) by maintenance staff or a
supervisor and audited. Past it, the pre-shift check refuses the recorder ("maintenance
overdue since <date>", dock/daemon/inspection.py), shown and audited like any failing
check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from dock.domain.audit_kinds import AuditKind
from dock.services.context import DockContext
from dock.services.errors import RequestError
from dock.storage.retention_tables import MaintenanceDueTable


@dataclass(frozen=True)
class MaintenanceDue:
    serial: str
    #: The local date it falls due (ISO), None when cleared.
    due: str | None


def due_at(device: Any, policy: Any) -> float | None:
    """When a recorder's maintenance falls due: its own date, else (with a
    ``maintenance_interval_days`` in the policy) that long after its enrolment."""
    own = getattr(device, "maintenance_due", None)
    if own is not None:
        return float(own)
    days = getattr(policy, "maintenance_interval_days", None)
    if days and device is not None:
        return float(device.enrolled_at) + days * 86400
    return None


def after_repair(dock: DockContext, actor: str, serial: str) -> MaintenanceDue | None:
    """A recorder marked repaired falls due again ``maintenance_interval_days`` from now
    (audited as a due date set); None when the policy has no interval."""
    days = dock.policy.maintenance_interval_days
    if not days:
        return None
    at = dock.clock.now() + days * 86400
    due = local_date(at, dock.timezone)
    data: dict[str, Any] = {"due": due, "after": "repaired", "interval_days": days}
    MaintenanceDueTable(dock.store).set_due(
        serial, at, lambda: dock.audit.append(AuditKind.MAINTENANCE_DUE, actor, serial, data)
    )
    return MaintenanceDue(serial, due)


def local_date(t: float, tz: str) -> str:
    """The local calendar date of an instant, ISO (2026-12-31)."""
    return datetime.fromtimestamp(t, ZoneInfo(tz)).date().isoformat()


def set_due(dock: DockContext, actor: str, serial: str, due: str) -> MaintenanceDue:
    """``due``: an ISO date (due from the start of that local day), or ``none`` to clear."""
    if due.strip().lower() in ("none", "-", ""):
        at = None
    else:
        try:
            day = date.fromisoformat(due.strip())
        except ValueError:
            raise RequestError(f"{due!r} is not an ISO date (2027-01-31) or none") from None
        at = datetime.combine(day, time(), ZoneInfo(dock.timezone)).timestamp()
    data: dict[str, Any] = {"due": None if at is None else local_date(at, dock.timezone)}
    done = MaintenanceDueTable(dock.store).set_due(
        serial, at, lambda: dock.audit.append(AuditKind.MAINTENANCE_DUE, actor, serial, data)
    )
    if not done:
        raise RequestError(f"device {serial} is not enrolled")
    return MaintenanceDue(serial, data["due"])
