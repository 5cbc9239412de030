"""Access to footage: requests, a supervisor's approval or refusal, viewing and copying
(registered before the bytes exist), the export of an approved request, and
confidentiality marks. ``dock.evidence.access``, ``.working_copies`` and ``.export`` audit
each; this binds them to the dock. The person who runs a view, copy or export is the
actor: the one the approved request names (REQUIREMENTS section 7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dock.devices.clock import utc_iso
from dock.evidence.access import ACTIONS, AccessRegister, AccessRequest, parse_recording
from dock.evidence.access import CATEGORIES as CATEGORIES  # for the pages (web_status)
from dock.evidence.access import KINDS as KINDS  # may not import dock.evidence
from dock.evidence.export import ExportResult
from dock.evidence.export import export as export_request
from dock.evidence.working_copies import WorkingCopies, produce
from dock.services.context import DockContext
from dock.storage.store import Store


def register(dock: DockContext) -> AccessRegister:
    return AccessRegister(dock.store, dock.audit, clock=dock.clock.now)


def _place(dock: DockContext) -> str:
    unit = getattr(dock.offloader, "organization", "")
    return f"{unit + ', ' if unit else ''}dock {dock.dock_id}"


def request(
    dock: DockContext,
    actor: str,
    purpose: str,
    kind: str,
    recordings: Sequence[str],
    extractor: str | None = None,
) -> AccessRequest:
    pairs = [parse_recording(r) for r in recordings]
    return register(dock).request(actor, purpose, pairs, kind, extractor=extractor)


def _working(
    action: str,
    dock: DockContext,
    actor: str,
    request_id: int,
    to: str,
    recordings: Sequence[str] | None,
    place: str | None,
    confirm_confidential: bool,
) -> WorkingCopies:
    pairs = None if not recordings else [parse_recording(r) for r in recordings]
    return produce(
        register(dock), request_id, action, to, who=actor,
        evidence_dir=dock.offloader.evidence_dir, recordings=pairs,
        place=" ".join((place or "").split()) or _place(dock),
        confirm_confidential=confirm_confidential,
    )  # fmt: skip


def view(
    dock: DockContext,
    actor: str,
    request_id: int,
    to: str,
    recordings: Sequence[str] | None = None,
    place: str | None = None,
) -> WorkingCopies:
    """A working copy to view (never the sealed original), registered first."""
    return _working("view", dock, actor, request_id, to, recordings, place, False)


def copy(
    dock: DockContext,
    actor: str,
    request_id: int,
    to: str,
    recordings: Sequence[str] | None = None,
    place: str | None = None,
    confirm_confidential: bool = False,
) -> WorkingCopies:
    """A copy to keep, registered first; confidential recordings need the confirmation."""
    return _working("copy", dock, actor, request_id, to, recordings, place, confirm_confidential)


def mark(
    dock: DockContext,
    actor: str,
    by: str,
    pin: str,
    category: str,
    reason: str,
    recordings: Sequence[str] | None = None,
    case: str | None = None,
) -> list[int]:
    """A supervisor or the keeper marks recordings (or a case) confidential."""
    return register(dock).mark(by, pin, category, reason, recordings=recordings or (), case=case)


def unmark(
    dock: DockContext, actor: str, mark_id: int, supervisor: str, pin: str, reason: str
) -> int:
    """A supervisor releases a confidentiality mark."""
    register(dock).release_mark(mark_id, supervisor, pin, reason)
    return mark_id


def marks(store: Store, active_only: bool = True) -> list[dict[str, Any]]:
    """The confidentiality marks, times in UTC text (read-only: the CLI and the pages)."""
    out = []
    for m in AccessRegister(store, None).marks(active_only):
        for key in ("marked_at", "released_at"):
            m[key] = None if m[key] is None else utc_iso(m[key])
        out.append(m)
    return out


def recordings_for(store: Store, who: str) -> list[dict[str, Any]]:
    """The archived recordings ``who`` may see listed (to ask for): an officer does not
    see another officer's recordings marked confidential (003 art.20)."""
    reg = AccessRegister(store, None)
    out = []
    for e in store.archive_entries():
        pair = (e["serial"], e["recording_id"])
        if not reg.visible_to(who, pair, e["officer_id"]):
            continue
        out.append({
            "recording": f"{pair[0]}:{pair[1]}",
            "officer_id": e["officer_id"],
            "start_utc": utc_iso(e["start_ms"] / 1000),
            "size": e["size"],
            "confidential": sorted({m["category"] for m in reg.marks_on(pair)}),
        })  # fmt: skip
    return out


def requests_of(store: Store, who: str, now: float) -> list[dict[str, Any]]:
    """The requests ``who`` made or is named to run, newest first, with what they may do
    under each now (``may``: the actions, when approved and theirs to run)."""
    out = []
    for req in reversed(AccessRegister(store, None).requests()):
        if who not in (req.requester, req.runner):
            continue
        row = req.as_dict(now)
        allowed = req.state(now) == "approved" and req.runner == who
        row["may"] = sorted(ACTIONS[req.kind]) if allowed else []
        out.append(row)
    return out


def approve(
    dock: DockContext,
    actor: str,
    request_id: int,
    supervisor: str,
    pin: str,
    days: float | None = None,
) -> AccessRequest:
    valid = None if days is None else days * 86400
    return register(dock).approve(request_id, supervisor, pin, valid_for_s=valid)


def refuse(
    dock: DockContext, actor: str, request_id: int, supervisor: str, pin: str, reason: str
) -> AccessRequest:
    return register(dock).refuse(request_id, supervisor, pin, reason)


def export(
    dock: DockContext,
    actor: str,
    request_id: int,
    to: str,
    extractor: str | None = None,
    place: str | None = None,
    iso: str | None = None,
    confirm_confidential: bool = False,
) -> ExportResult:
    return export_request(
        register(dock),
        request_id,
        to,
        extractor=extractor or "",
        place=place or _place(dock),
        confirm_confidential=confirm_confidential,
        evidence_dir=dock.offloader.evidence_dir,
        dock_id=dock.dock_id,
        iso_path=iso,
        unit=getattr(dock.offloader, "organization", ""),
        timezone=dock.timezone,
        actor=actor,
    )
