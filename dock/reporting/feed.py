"""Move new audit entries (and signed checkpoints) into the outbox as events."""

from __future__ import annotations

from itertools import islice
from typing import Any

from ..audit import AuditLog
from .events import AuditView, event_for
from .outbox import Outbox

#: Audit entries read per call: a long backlog is fed over several calls.
BATCH = 1000


def feed(audit: AuditLog, outbox: Outbox, boot: str, drift_bound_s: float) -> int:
    """Queue events for audit entries not seen yet; returns how many entries and
    checkpoints it moved past (0: nothing new), whether or not they made events.

    Entries and checkpoints each have a cursor; both move in the transaction that
    queues the events, so a crash in between repeats nothing and skips nothing.
    """
    entry_cursor = outbox.cursor("audit")
    cp_cursor = outbox.cursor("checkpoint")
    if entry_cursor is None or cp_cursor is None:
        cps = audit.checkpoints()
        outbox.start_cursors(audit.head()[0], cps[-1].seq if cps else 0)
        return 0
    entries = list(islice(audit.entries(entry_cursor), BATCH))
    last_entry = entries[-1].seq if entries else entry_cursor
    # A checkpoint follows the entry it signs; never run ahead of the entries read.
    cps = [cp for cp in audit.checkpoints(cp_cursor) if cp.seq <= last_entry]
    if not entries and not cps:
        return 0
    sources: list[tuple[int, int, AuditView, bool]] = [
        (e.seq, 0, AuditView(e.seq, e.time, e.kind, e.actor, e.subject, e.data), True)
        for e in entries
    ]
    for cp in cps:
        view = AuditView(cp.seq, cp.time, "checkpoint", "dock", "audit", {"head": cp.head_hash})
        sources.append((cp.seq, 1, view, False))
    sources.sort(key=lambda s: (s[0], s[1]))
    items: list[tuple[str, AuditView, dict[str, Any], bool]] = []
    for _, _, view, is_entry in sources:
        found = event_for(view, drift_bound_s)
        if found is not None:
            items.append((found[0], view, found[1], is_entry))
    cursors = {"audit": last_entry, "checkpoint": cps[-1].seq if cps else cp_cursor}
    # Another reporter on this state directory may have fed meanwhile: then nothing.
    queued = outbox.enqueue(boot, items, cursors, {"audit": entry_cursor, "checkpoint": cp_cursor})
    return 0 if queued is None else len(entries) + len(cps)
