"""Access to footage: requests, a supervisor's approval or refusal, and the export of an
approved request. ``dock.evidence.access`` and ``.export`` audit each; this binds them to the
dock."""

from __future__ import annotations

from collections.abc import Sequence

from dock.evidence.access import AccessRegister, AccessRequest, parse_recording
from dock.evidence.export import ExportResult
from dock.evidence.export import export as export_request
from dock.services.context import DockContext


def register(dock: DockContext) -> AccessRegister:
    return AccessRegister(dock.store, dock.audit, clock=dock.clock.now)


def request(
    dock: DockContext, actor: str, purpose: str, kind: str, recordings: Sequence[str]
) -> AccessRequest:
    pairs = [parse_recording(r) for r in recordings]
    return register(dock).request(actor, purpose, pairs, kind)


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
    extractor: str,
    place: str,
    iso: str | None = None,
) -> ExportResult:
    return export_request(
        register(dock),
        request_id,
        to,
        extractor=extractor,
        place=place,
        evidence_dir=dock.offloader.evidence_dir,
        dock_id=dock.dock_id,
        iso_path=iso,
        unit=getattr(dock.offloader, "organization", ""),
        timezone=dock.timezone,
        actor=actor,
    )
