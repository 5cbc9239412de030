"""The archive: its fixity check (audited ``fixity_check``), a second copy confirmed
(the recorder may then erase), and what it holds, as shown to a person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.evidence.fixity import FixityReport, Progress, verify_archive
from dock.services.context import DockContext
from dock.services.errors import RequestError
from dock.storage.store import StoreError


@dataclass(frozen=True)
class SecondCopy:
    serial: str
    recording: str
    where: str


def verify(
    dock: DockContext, actor: str, sample: float = 1.0, progress: Progress | None = None
) -> FixityReport:
    if not 0 < sample <= 1:
        raise RequestError("the sample must be in (0, 1]")
    return verify_archive(
        dock.store,
        dock.offloader.evidence_dir,
        dock.audit,
        sample_fraction=sample,
        progress=progress,
        actor=actor or "dock",
    )


def confirm_copy(
    dock: DockContext, actor: str, serial: str, recording: str, where: str
) -> SecondCopy:
    data = {"recording": recording, "where": where}
    try:
        dock.store.confirm_second_copy(
            serial, recording, where,
            audit=lambda: dock.audit.append(AuditKind.SECOND_COPY, actor, serial, data),
        )  # fmt: skip
    except StoreError as exc:
        raise RequestError(str(exc)) from None
    return SecondCopy(serial, recording, where)


def rows(dock: DockContext, officer: str | None = None) -> list[dict[str, Any]]:
    """The archive table as shown to a person: UTC stored, local time with its zone."""
    out = []
    for e in dock.store.archive_entries():
        if officer is not None and e["officer_id"] != officer:
            continue
        start = e["start_ms"] / 1000
        out.append(
            {
                "serial": e["serial"],
                "recording_id": e["recording_id"],
                "officer_id": e["officer_id"],
                "start_utc": utc_iso(start),
                "start_local": local_display(start, dock.timezone),
                "size": e["size"],
                "sha256": bytes(e["sha256"]).hex(),
                "erased_on_device": e["erased_at"] is not None,
                "path": e["path"],
            }
        )
    return out
