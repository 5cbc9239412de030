"""Move new audit entries (and signed checkpoints) into the outbox as events.

The outbox's cursors say how far the audit log has been reported: the last entry (and
its hash) and the last checkpoint (and the head it signs). Each feed first checks that
the log still holds both. If it does not, the log went backwards under the reporter
(its newest entries cut off, rewritten, or the whole log replaced or emptied): that is
never skipped in silence. The feed logs an error, writes an ``audit_rewound`` entry
(which goes to headquarters as an ``audit.rewound`` event), reports on from where the
log now is, and reports its newest checkpoint again so headquarters can compare it.
"""

from __future__ import annotations

import logging
from itertools import islice
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.reporting.events import CHECKPOINT, AuditView, checkpoint_event, event_for
from dock.reporting.outbox import Outbox
from dock.storage.audit import GENESIS, AuditLog, as_text

log = logging.getLogger("dock.reporter")

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
        head_seq, head_hash = audit.head()
        cp_seq, cp_at_head = audit.checkpoint_before(head_seq + 1)
        outbox.start_cursors(head_seq, cp_seq, head_hash, cp_at_head)
        return 0
    expected: dict[str, int | None] = {"audit": entry_cursor, "checkpoint": cp_cursor}
    seen_hash, seen_head = outbox.mark("audit_hash"), outbox.mark("checkpoint_head")
    head_seq, head_hash, at_cursor, signed_at_cursor = audit.position(entry_cursor, cp_cursor)
    why = _went_back(entry_cursor, seen_hash, at_cursor, cp_cursor, seen_head, signed_at_cursor)
    if why is not None:
        return _rewound(audit, outbox, boot, expected, why, seen_hash, head_seq, head_hash)
    entries = list(islice(audit.entries(entry_cursor), BATCH))
    last_entry = entries[-1].seq if entries else entry_cursor
    # A checkpoint follows the entry it signs; never run ahead of the entries read.
    cps = [cp for cp in audit.checkpoints(cp_cursor) if cp.seq <= last_entry]
    cursors: dict[str, int | str] = {
        "audit": last_entry,
        "checkpoint": cps[-1].seq if cps else cp_cursor,
    }
    # The hashes the cursors now stand on (older outboxes kept none: adopted here).
    entry_hash: str | None = as_text(entries[-1].hash) if entries else (seen_hash or at_cursor)
    cp_head: str | None = cps[-1].head_hash if cps else (seen_head or signed_at_cursor)
    for name, value, before in (
        ("audit_hash", entry_hash, seen_hash),
        ("checkpoint_head", cp_head, seen_head),
    ):
        if value is not None and value != before:
            cursors[name] = value
    if not entries and not cps:
        if len(cursors) > 2:
            outbox.enqueue(boot, [], cursors, expected)
        return 0
    sources: list[tuple[int, int, AuditView, bool]] = [
        (e.seq, 0, AuditView(e.seq, e.time, e.kind, e.actor, e.subject, e.data), True)
        for e in entries
    ]
    previous = audit.checkpoint_before(cps[0].seq) if cps else (0, GENESIS)
    for cp in cps:
        data = {
            "head": cp.head_hash,
            "time": cp.time,
            "public_key": cp.public_key,
            "signature": cp.signature,
            "previous": {"seq": previous[0], "head": previous[1]},
        }
        view = AuditView(cp.seq, cp.time, CHECKPOINT, "dock", "audit", data)
        sources.append((cp.seq, 1, view, False))
        previous = (cp.seq, cp.head_hash)
    sources.sort(key=lambda s: (s[0], s[1]))
    items: list[tuple[str, AuditView, dict[str, Any], bool]] = []
    for _, _, view, is_entry in sources:
        found = event_for(view, drift_bound_s) if is_entry else checkpoint_event(view)
        if found is not None:
            items.append((found[0], view, found[1], is_entry))
    # Another reporter on this state directory may have fed meanwhile: then nothing.
    fed = [(e.seq, as_text(e.hash)) for e in entries]
    queued = outbox.enqueue(boot, items, cursors, expected, fed)
    return 0 if queued is None else len(entries) + len(cps)


def _went_back(
    entry_cursor: int,
    seen_hash: str | None,
    at_cursor: str | None,
    cp_cursor: int,
    seen_head: str | None,
    signed_at_cursor: str | None,
) -> str | None:
    """Why the log no longer holds what was reported, or None if it does."""
    if at_cursor is None:
        return f"entry {entry_cursor}, already reported, is no longer in the log"
    if seen_hash is not None and at_cursor != seen_hash:
        return f"entry {entry_cursor} is no longer the entry that was reported (rewritten)"
    if signed_at_cursor is None:
        return f"checkpoint {cp_cursor}, already reported, is no longer in the log"
    if seen_head is not None and signed_at_cursor != seen_head:
        return f"checkpoint {cp_cursor} no longer signs the head that was reported (rewritten)"
    return None


def _rewound(
    audit: AuditLog,
    outbox: Outbox,
    boot: str,
    expected: dict[str, int | None],
    why: str,
    seen_hash: str | None,
    head_seq: int,
    head_hash: str,
) -> int:
    """Say loudly that the log went backwards, then report on from where it agrees with
    what was reported: the entries the dock wrote since are reported, none is skipped."""
    entry_cursor, cp_cursor = int(expected["audit"] or 0), int(expected["checkpoint"] or 0)
    last_cp = audit.checkpoint_before(head_seq + 1)[0]
    resume, resume_hash = _agreed(audit, outbox, min(entry_cursor, head_seq))
    if resume_hash is None:  # a hole where the cursor stood: on after the head as it was
        resume, resume_hash = head_seq, head_hash
    log.error(
        "audit log went backwards: %s; it now ends at entry %d (checkpoint %d), entries up "
        "to %d (checkpoint %d) were reported to headquarters, the log holds them as "
        "reported up to entry %d. Run `dock audit verify`.",
        why, head_seq, last_cp, entry_cursor, cp_cursor, resume,
    )  # fmt: skip
    audit.append(
        AuditKind.AUDIT_REWOUND,
        "dock",
        "audit",
        {
            "head_seq": head_seq,
            "head": head_hash,
            "reported_seq": entry_cursor,
            "reported_head": seen_hash or "",
            "agreed_seq": resume,
            "checkpoint_seq": last_cp,
            "reported_checkpoint_seq": cp_cursor,
            "detail": why,
        },
    )
    # Report on after ``resume`` (the entries written since, and the one just written),
    # and the newest checkpoint up to there once more, for headquarters to compare.
    newest = audit.checkpoint_before(resume + 1)
    again = audit.checkpoint_before(newest[0]) if newest[0] else (0, GENESIS)
    cursors: dict[str, int | str] = {
        "audit": resume,
        "audit_hash": resume_hash,
        "checkpoint": again[0],
        "checkpoint_head": again[1],
    }
    outbox.enqueue(boot, [], cursors, expected, forget_fed_after=resume)
    return 1


def _agreed(audit: AuditLog, outbox: Outbox, upto: int) -> tuple[int, str | None]:
    """(seq, hash) of the newest entry up to ``upto`` that the log holds as it was fed.

    The log is a hash chain: where it agrees with what was fed, it agrees on every entry
    before too, so a binary search over the hashes the outbox kept finds the place. When
    even the oldest kept one differs, the log went back further than the outbox can see:
    on from the start (entries before reporting started, never reported, are reported
    then too) or, when older hashes were pruned, from the newest pruned one. With none
    kept at all (an outbox from before them), ``upto`` itself.
    """
    oldest = outbox.oldest_fed()
    if oldest is None or oldest > upto:
        return upto, audit.position(upto, 0)[2]

    def agrees(seq: int) -> bool:
        kept = outbox.fed_hash(seq)
        return kept is not None and audit.position(seq, 0)[2] == kept

    if agrees(upto):
        return upto, audit.position(upto, 0)[2]
    if not agrees(oldest):
        back = outbox.cursor("fed_pruned") or 0
        return back, audit.position(back, 0)[2]
    lo, hi = oldest, upto
    while hi - lo > 1:  # agrees(lo), not agrees(hi)
        mid = (lo + hi) // 2
        if agrees(mid):
            lo = mid
        else:
            hi = mid
    return lo, audit.position(lo, 0)[2]
