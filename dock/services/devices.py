"""Recorders: enrol, flag (lost, found, maintenance, repaired), offload now, list.

``device.flag`` is the one rule behind ``dock device flag`` and headquarters' ``flag``
and ``lost`` commands: the flag and its ``device_flag`` entry in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.services.context import DockContext, Progress
from dock.services.device_care import after_repair, due_at, local_date
from dock.services.errors import RequestError
from dock.storage.store import StoreError


@dataclass(frozen=True)
class Enrolled:
    serial: str
    slot: str


@dataclass(frozen=True)
class Flagged:
    serial: str
    #: What changed: "lost" and/or "maintenance", each True or False.
    changes: dict[str, bool]
    note: str | None

    def describe(self) -> str:
        words = {
            ("lost", True): "lost",
            ("lost", False): "found",
            ("maintenance", True): "in maintenance",
            ("maintenance", False): "repaired",
        }
        return ", ".join(words[item] for item in self.changes.items())


@dataclass(frozen=True)
class DeviceRow:
    """A recorder as listed: never its secret."""

    serial: str
    model: str
    firmware: str
    enrolled_at: float
    lost: bool
    maintenance: bool
    note: str
    #: The local date its maintenance falls due (000 §14.1), None: none set.
    maintenance_due: str | None = None
    #: That date has come: the pre-shift check refuses the recorder.
    maintenance_overdue: bool = False


@dataclass(frozen=True)
class OffloadSummary:
    serial: str
    archived: list[str]
    already_archived: list[str]
    erased: list[str]
    failed: dict[str, str]
    not_enough_room: bool
    #: archived and verified but left on the recorder, by design: not a failure
    kept_on_device: list[str]
    kept_reason: str | None
    sealed_in: str | None
    seal: str | None
    #: archived and verified, but not yet in a package: sealed at the next offload
    seal_failed: list[str]
    #: archived copies that no longer match: not erased from the recorder
    damaged: dict[str, str]
    ok: bool = field(default=True)


def enrol(dock: DockContext, actor: str, slot: str) -> Enrolled:
    """Agree a secret with the recorder in ``slot`` (audited ``enrol`` by the dock)."""
    if slot not in dock.views:
        raise RequestError(f"no slot {slot}")
    return Enrolled(dock.enrol(slot, actor), slot)


def enrol_vendor(
    dock: DockContext, actor: str, slot: str, password: str, model: str | None = None
) -> Enrolled:
    """Enrol the camera of the vendor command set in ``slot`` with its password, which
    becomes its secret once the camera accepted it (docs/VENDOR-CAMERAS.md)."""
    if slot not in dock.views:
        raise RequestError(f"no slot {slot}")
    return Enrolled(dock.enrol_vendor(slot, actor, password, model or "generic"), slot)


def flag(
    dock: DockContext,
    actor: str,
    serial: str,
    lost: bool | None = None,
    maintenance: bool | None = None,
    note: str | None = None,
) -> Flagged:
    changes: dict[str, bool] = {}
    if lost is not None:
        changes["lost"] = lost
    if maintenance is not None:
        changes["maintenance"] = maintenance
    if not changes:
        raise RequestError("give lost/found or maintenance/repaired")
    data = changes | {"note": note}
    try:
        dock.store.flag_device(
            serial, note=note or "", **changes,
            audit=lambda: dock.audit.append(AuditKind.DEVICE_FLAG, actor, serial, data),
        )  # fmt: skip
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    if maintenance is False:  # repaired: the next maintenance falls due an interval ahead
        after_repair(dock, actor, serial)
    return Flagged(serial, changes, note)


def listing(dock: DockContext) -> list[DeviceRow]:
    now, tz = dock.clock.now(), dock.timezone
    rows = []
    for d in dock.store.devices():
        due = due_at(d, dock.policy)
        rows.append(DeviceRow(d.serial, d.model, d.firmware, d.enrolled_at, d.lost, d.maintenance,
                              d.note, None if due is None else local_date(due, tz),
                              due is not None and now >= due))  # fmt: skip
    return rows


def offload(dock: DockContext, actor: str, slot: str, progress: Progress | None = None) -> Any:
    """Offload, verify, seal and erase the recorder in ``slot`` now (each step audited by
    the offloader). None when the link failed: the footage stays on the device."""
    if slot not in dock.views:
        raise RequestError(f"no slot {slot!r}")
    report = dock.offload(slot, progress=progress)
    if report is None:
        return None
    return OffloadSummary(
        serial=report.serial,
        archived=list(report.archived),
        already_archived=list(report.already_archived),
        erased=list(report.erased),
        failed=dict(report.failed),
        not_enough_room=report.not_enough_room,
        kept_on_device=list(report.kept),
        kept_reason=report.kept_reason,
        sealed_in=report.bag,
        seal=report.seal,
        seal_failed=list(report.seal_failed),
        damaged=dict(report.damaged),
        ok=report.ok,
    )
