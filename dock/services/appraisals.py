"""Appraisals before destruction (004 att.2 §6): a keeper or supervisor proposes
recordings (listed, or the retention-expired candidates of a dry-run purge) with a reason;
another supervisor approves or rejects it. ``dock.evidence.appraisals`` audits each step;
a purge that deletes cites an approved one (``dock.services.purge``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dock.evidence.access import parse_recording
from dock.evidence.appraisals import Appraisal, AppraisalError, AppraisalRegister
from dock.services.context import DockContext
from dock.services.errors import Refused, RequestError
from dock.services.purge import purge
from dock.storage.retention_tables import AppraisalTable
from dock.storage.store import Store


def register(dock: DockContext) -> AppraisalRegister:
    return AppraisalRegister(dock.store, dock.audit, dock.clock.now)


def propose(
    dock: DockContext,
    actor: str,
    proposer: str,
    pin: str,
    reason: str,
    recordings: Sequence[str] | None = None,
    candidates: bool = False,
) -> Appraisal:
    """Recordings listed (SERIAL:RECORDING), or ``candidates``: every recording a purge
    now would take (retention run out, no hold, no open case)."""
    if bool(recordings) == bool(candidates):
        raise RequestError("give the recordings (SERIAL:RECORDING ...) or --candidates")
    if candidates:
        listed = [parse_recording(r) for r in purge(dock, actor, apply=False).purged]
        if not listed:
            raise RequestError("no recording is past its retention and free to purge")
    else:
        try:
            listed = [parse_recording(r) for r in recordings or ()]
        except ValueError as exc:
            raise RequestError(str(exc)) from None
    try:
        return register(dock).propose(proposer, pin, reason, listed)
    except AppraisalError as exc:
        raise Refused(str(exc)) from None


def approve(
    dock: DockContext, actor: str, appraisal_id: int, supervisor: str, pin: str
) -> Appraisal:
    try:
        return register(dock).approve(appraisal_id, supervisor, pin)
    except AppraisalError as exc:
        raise Refused(str(exc)) from None


def reject(
    dock: DockContext, actor: str, appraisal_id: int, supervisor: str, pin: str, reason: str
) -> Appraisal:
    try:
        return register(dock).reject(appraisal_id, supervisor, pin, reason)
    except AppraisalError as exc:
        raise Refused(str(exc)) from None


def listing(dock: DockContext) -> list[Appraisal]:
    """Every appraisal, oldest first (read-only)."""
    return register(dock).every()


def rows(store: Store) -> list[dict[str, Any]]:
    """Every appraisal as the pages show it, newest first (read-only: the web process
    reads the dock database, the daemon writes it)."""
    table = AppraisalTable(store)
    out = []
    for row in reversed(table.every()):
        members = table.members(row["id"])
        out.append(row | {"recordings": [f"{s}:{r}" for s, r in members]})
    return out
