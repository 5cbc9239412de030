"""Replication to central storage as a person sees it: each package's state per target
(``dock replication``), and failed packages tried again now (``dock replication retry``).

The daemon's replication job does the sending (dock/evidence/replication.py); a retry
only makes the queue's failed rows due now, so the job takes them at its next turn.
"""

from __future__ import annotations

import os
from typing import Any

from dock.devices.clock import utc_iso
from dock.domain.audit_kinds import AuditKind
from dock.services.context import DockContext
from dock.services.errors import RequestError
from dock.storage.replication_table import ReplicationTable, replication_rows


def rows(dock: DockContext) -> list[dict[str, Any]]:
    """One row per package and target: state, percent sent, reason, times in UTC."""
    out = []
    for r in replication_rows(dock.store):
        out.append(
            {
                "package": r["bag"],
                "target": r["target"],
                "state": r["state"],
                "percent": r["percent"],
                "urgent": bool(r["urgent"]),
                "file": r["file"],
                "reason": r["reason"],
                "attempts": r["attempts"],
                "sealed_utc": utc_iso(r["sealed_at"]),
                "verified_utc": utc_iso(r["verified_at"]) if r["verified_at"] else None,
                "next_try_utc": utc_iso(r["next_try"]) if r["state"] == "failed" else None,
            }
        )
    return out


def retry(
    dock: DockContext, actor: str, package: str | None = None, all_failed: bool = False
) -> dict[str, Any]:
    """Failed packages (one, named by its path or folder name, or all) due again now."""
    if (package is None) == (not all_failed):
        raise RequestError("name one package, or ask for all failed ones (--all-failed)")
    table = ReplicationTable(dock.store)
    seal_id = None
    if package is not None:
        matches = {r["seal_id"] for r in replication_rows(dock.store)
                   if package in (r["bag"], os.path.basename(r["bag"]))}  # fmt: skip
        if not matches:
            raise RequestError(f"no replicated or queued package {package!r}")
        if len(matches) > 1:
            raise RequestError(f"{package!r} names several packages: give its path")
        seal_id = matches.pop()

    def entry(rows: list[dict[str, Any]]) -> object:  # who asked, which packages
        return dock.audit.append(
            AuditKind.REPLICATION_RETRY, actor, "",
            {"by": actor, "asked": package or "all failed",
             "packages": sorted({r["bag"] for r in rows}),
             "rows": [{"package": r["bag"], "target": r["target"], "reason": r["reason"]}
                      for r in rows]},
        )  # fmt: skip

    count = table.retry(seal_id, dock.clock.now(), audit=entry)
    return {"retried": count, "package": package, "by": actor}
