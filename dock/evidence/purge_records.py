"""What was purged, and what a purge under way is taking: the bookkeeping every other
part of the dock asks about (holds and case links refuse a recording that is gone,
fixity stops expecting it, ``dock archive verify`` reports an interrupted purge).

Read-only views of the ``purges``, ``purge_batches`` and ``purge_members`` tables;
:mod:`.purging` writes them.
"""

from __future__ import annotations

import os
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.storage.audit import AuditLog
from dock.storage.evidence_tables import PurgeTable
from dock.storage.store import Store

__all__ = ["gone_or_going", "purge_state", "purges", "retired_bags", "unfinished"]


def purge_state(store: Store, serial: str, recording_id: str) -> str | None:
    """Why a recording can no longer be held or attached to a case ("was already
    purged", "is being purged (...)"), or None when it is in the archive to stay."""
    table = PurgeTable(store)
    if table.is_purged(serial, recording_id):
        return "was already purged"
    going = table.batch_of(serial, recording_id)
    if going is None:
        return None
    if going["state"] == "done":
        return "was already purged"
    return f"is being purged (purge {going['token']}, completed by `dock purge --apply`)"


def purges(store: Store) -> list[dict[str, Any]]:
    """The purge records, oldest first (hash as hex)."""
    return [r | {"sha256": bytes(r["sha256"]).hex()} for r in PurgeTable(store).records()]


def gone_or_going(store: Store) -> set[tuple[str, str]]:
    """Recordings purged, or in a purge under way: no longer expected in the archive."""
    return PurgeTable(store).gone_or_going()


def unfinished(store: Store) -> list[dict[str, Any]]:
    """Purge batches not yet ``done``, oldest first."""
    return PurgeTable(store).unfinished()


def retired_bags(audit: AuditLog) -> dict[str, int]:
    """Packages a purge replaced or removed -> the audit entry saying so: a ``seal``
    that ``supersedes`` it, or the ``purge`` entry that removed it. Their absence from
    the disk is expected."""
    retired: dict[str, int] = {}
    for e in audit.entries():
        if e.kind == AuditKind.SEAL and isinstance(e.data.get("supersedes"), dict):
            bag = e.data["supersedes"].get("bag")
        elif e.kind == AuditKind.PURGE and "purge" in e.data:
            bag = e.data.get("bag")
        else:
            continue
        if isinstance(bag, str):
            retired.setdefault(os.path.normpath(bag), e.seq)
    return retired
