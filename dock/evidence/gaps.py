"""Gaps in recording within a custody episode, and the explanation items a supervisor closes.

REQUIREMENTS.md §5: recording must run without interruption from arrival to departure
(002 art.19; 003 art.9, 11); an interruption needs an explanation afterwards (002 art.20;
001 art.19(2)), and the dock finds gaps and device faults in the recorder's logs and opens
an item that a supervisor closes. Three parts:

* ``find_gaps`` (:mod:`.gap_detection`) is pure: the recorder's event log and recording
  list in, the items out, in a deterministic order, so every rule is a row of a table test.
* ``GapRegister`` keeps the items in the dock database (table ``explanation_items``) and
  audits every opening and closing; re-reading the same log opens nothing twice.
* ``scan_episode`` reads one recorder through an authenticated client and opens the
  items of one custody episode.

The rules (what counts, and why) are in :mod:`.gap_detection`.

Closing: the officer writes an account of the item on their own PIN (``add_account``,
once, before the review), and a supervisor closes it with a written explanation on
theirs (``close_item``; ``close_items`` closes several with one explanation, all or
none): 001 art.19(2), the officer writes the account, the unit head reviews it.

Event times are the recorder's clock, which the dock sets at every inspection before a
check-out; the episode bounds are the dock's custody times (epoch seconds, here ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dock.devices.recorder_client import EventLog, RecorderClient
from dock.domain.audit_kinds import AuditKind
from dock.evidence.gap_detection import (
    FAULT,
    INTERRUPTED,
    KINDS,
    MANUAL_STOP,
    Gap,
    RecordingLike,
    find_gaps,
)
from dock.storage.audit import AuditLog
from dock.storage.pins import verify as verify_pin
from dock.storage.register_tables import GapTable
from dock.storage.store import Custody, Store
from firmware_protocol.messages import Capability

__all__ = [
    "FAULT",
    "INTERRUPTED",
    "KINDS",
    "MANUAL_STOP",
    "MIN_EXPLANATION",
    "ExplanationItem",
    "Gap",
    "GapError",
    "GapRegister",
    "RecordingLike",
    "find_gaps",
    "scan_episode",
]


#: Shortest written explanation accepted when closing an item (002 art.20: written).
MIN_EXPLANATION = 10


class GapError(Exception):
    """A request the register refuses (unknown or closed item, unverified supervisor, ...)."""


# --- the register -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplanationItem:
    id: int
    serial: str
    officer_id: str
    custody_id: int | None
    kind: str
    reason: str
    start_ms: int
    end_ms: int | None
    recording_id: str | None
    detail: str
    opened_at: float
    closed_at: float | None
    closed_by: str | None
    explanation: str | None
    #: The officer's own account (001 art.19(2)), written before the review.
    account: str | None = None
    account_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _item(row: Any) -> ExplanationItem:
    d = dict(row)
    d["recording_id"] = d["recording_id"] or None  # stored as '' so UNIQUE sees it
    return ExplanationItem(**d)


class GapRegister:
    """Explanation items in the dock database, each opening and closing audited.

    Rows are written and audited in one store transaction: if the audit append fails the
    row is rolled back and the next scan opens it again, so no item exists unaudited.
    """

    def __init__(
        self, store: Store, audit: AuditLog, clock: Callable[[], float] | None = None
    ) -> None:
        self.store = store
        self.audit = audit
        fallback: Callable[[], float] = getattr(store, "clock", time.time)
        self._clock: Callable[[], float] = clock or fallback
        self.table = GapTable(store)

    def open_items(
        self, serial: str, officer_id: str, custody_id: int | None, gaps: Iterable[Gap]
    ) -> int:
        """Open an item per gap not yet in the register; returns how many were new."""
        opened = 0
        with self.table.transaction():  # every item with its audit entry, or none
            for g in gaps:
                item_id = self.table.open_item(
                    {"serial": serial, "officer_id": officer_id, "custody_id": custody_id,
                     "kind": g.kind, "reason": g.reason, "start_ms": g.start_ms,
                     "end_ms": g.end_ms, "recording_id": g.recording_id or "",
                     "detail": g.detail, "opened_at": self._clock()}
                )  # fmt: skip
                if item_id is None:
                    continue
                opened += 1
                self.audit.append(
                    AuditKind.GAP_OPENED,
                    "dock",
                    serial,
                    {
                        "item": item_id,
                        "officer": officer_id,
                        "custody": custody_id,
                        "kind": g.kind,
                        "reason": g.reason,
                        "start_ms": g.start_ms,
                        "end_ms": g.end_ms,
                        "recording": g.recording_id,
                    },
                )
        return opened

    def events_from(self, serial: str, custody_id: int) -> int | None:
        """Where to read ``serial``'s event log for this episode: where its own earlier
        scan started, else where the last scan of the device ended; None: never read."""
        since = self.table.read_since(serial, custody_id)
        if since is not None:
            return since
        return self.table.last_read_end(serial)

    def note_events_read(self, serial: str, custody_id: int, log: EventLog) -> None:
        self.table.note_read(serial, custody_id, log.since, log.next, log.complete, self._clock())

    def item(self, item_id: int) -> ExplanationItem | None:
        row = self.table.item(item_id)
        return None if row is None else _item(row)

    def list_items(
        self, officer_id: str | None = None, open_only: bool = True
    ) -> list[ExplanationItem]:
        """Items, oldest first; of one officer when given; only open ones unless told."""
        return [_item(r) for r in self.table.items(officer_id, open_only)]

    def close_item(
        self, item_id: int, supervisor_id: str, supervisor_pin: str, explanation: str
    ) -> ExplanationItem:
        """Close an item with a written explanation, on a supervisor's own PIN.

        Raises GapError for a short explanation, an unverified supervisor (audited as
        ``gap_explain_refused``, so guessing shows), an unknown or an already closed item.
        """
        return self.close_items([item_id], supervisor_id, supervisor_pin, explanation)[0]

    def close_items(
        self, item_ids: Iterable[int], supervisor_id: str, supervisor_pin: str, explanation: str
    ) -> list[ExplanationItem]:
        """Close several items with one written explanation (one incident, several cuts),
        on one check of the supervisor's PIN: all of them, or none (GapError naming every
        item that is unknown or already closed). Each is audited as its own
        ``gap_explained``, with the whole ``batch``."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            raise GapError("no item to close")
        text = explanation.strip()
        if len(text) < MIN_EXPLANATION:
            raise GapError(f"the explanation must be at least {MIN_EXPLANATION} characters")
        check = verify_pin(self.store, self.audit, supervisor_id, supervisor_pin, "gap_explain")
        sup = self.store.officer(supervisor_id)
        if not check.ok or sup is None or sup.role != "supervisor" or sup.disabled:
            self.audit.append(
                AuditKind.GAP_EXPLAIN_REFUSED, supervisor_id, ",".join(map(str, ids)),
                {"why": "PIN locked" if check.locked else "not verified", "items": ids},
            )  # fmt: skip
            if check.locked:
                raise GapError("supervisor PIN locked: another supervisor unlocks it")
            raise GapError("supervisor not verified (wrong PIN, not a supervisor or disabled)")
        with self.table.transaction():  # all closed with their entries, or none
            rows, problems = [], []
            for item_id in ids:
                row = self.table.item(item_id)
                if row is None:
                    problems.append(f"no explanation item {item_id}")
                elif row["closed_at"] is not None:
                    problems.append(f"item {item_id} was already closed by {row['closed_by']}")
                else:
                    rows.append(row)
            if problems:
                what = "; ".join(problems)
                raise GapError(what + ("; nothing was closed" if len(ids) > 1 else ""))
            now = self._clock()
            for row in rows:
                self.table.close(row["id"], now, supervisor_id, text)
                self.audit.append(
                    AuditKind.GAP_EXPLAINED,
                    supervisor_id,
                    row["serial"],
                    {
                        "item": row["id"],
                        "officer": row["officer_id"],
                        "custody": row["custody_id"],
                        "kind": row["kind"],
                        "reason": row["reason"],
                        "start_ms": row["start_ms"],
                        "recording": row["recording_id"] or None,
                        "explanation": text,
                        "account": row["account"] is not None,
                        "batch": ids,
                    },
                )
        return [self.item(i) for i in ids]  # type: ignore[misc]

    def add_account(self, item_id: int, officer_id: str, pin: str, account: str) -> ExplanationItem:
        """The officer's own account of an item (001 art.19(2): the officer writes it, the
        unit head reviews it), on their own PIN, stored with the item and audited
        (``gap_account``). Only the item's officer; once; before the item is closed.

        A wrong PIN and an unknown officer number are refused in the same words, and
        audited (``gap_account_refused``)."""
        text = account.strip()
        if len(text) < MIN_EXPLANATION:
            raise GapError(f"the account must be at least {MIN_EXPLANATION} characters")
        check = verify_pin(self.store, self.audit, officer_id, pin, "gap_account")
        officer = self.store.officer(officer_id)
        if not check.ok or officer is None:
            why = "PIN locked" if check.locked else "not verified"
            self.audit.append(AuditKind.GAP_ACCOUNT_REFUSED, officer_id, str(item_id), {"why": why})
            if check.locked:
                raise GapError("PIN locked: ask a supervisor (dock officer unlock)")
            raise GapError(f"officer number or PIN not recognised ({check.tries_left} tries left)")
        if officer.disabled:
            raise GapError(f"officer {officer_id} is disabled")
        with self.table.transaction():  # the account with its audit entry
            row = self.table.item(item_id)
            if row is None:
                raise GapError(f"no explanation item {item_id}")
            if row["officer_id"] != officer_id:
                raise GapError(
                    f"item {item_id} is officer {row['officer_id']}'s: only they write its account"
                )
            if row["account"] is not None:
                raise GapError(f"item {item_id} already has an account (written once, audited)")
            if row["closed_at"] is not None:
                raise GapError(
                    f"item {item_id} was already closed by {row['closed_by']}: an account "
                    "comes before the review"
                )
            self.table.set_account(item_id, text, self._clock())
            self.audit.append(
                AuditKind.GAP_ACCOUNT,
                officer_id,
                row["serial"],
                {
                    "item": item_id,
                    "custody": row["custody_id"],
                    "kind": row["kind"],
                    "reason": row["reason"],
                    "start_ms": row["start_ms"],
                    "recording": row["recording_id"] or None,
                    "account": text,
                },
            )
        return self.item(item_id)  # type: ignore[return-value]


def scan_episode(
    client: RecorderClient,
    store: Store,
    audit: AuditLog,
    serial: str,
    custody: Custody,
    report_manual_stops: bool = False,
) -> int:
    """Open the items of ``custody``'s episode from the recorder's logs; returns how many.

    ``client`` must be open and authenticated: a log read from a recorder that has not
    proved who it is could hide gaps. Safe to call again: nothing is opened twice.
    """
    if not client.authenticated:
        raise GapError("scan_episode needs an authenticated recorder client")
    ident = client.identity
    if custody.serial != serial or (ident is not None and ident.serial != serial):
        seen = ident.serial if ident else "?"
        raise GapError(f"custody {custody.id} is of {custody.serial}, client of {seen}")
    register = GapRegister(store, audit)
    no_log = ident is not None and not client.has(Capability.EVENT_LOG)
    events: list[dict[str, Any]] = []
    if not no_log:
        log = client.read_events(_events_since(client, register, serial, custody.id))
        register.note_events_read(serial, custody.id, log)
        if not log.complete:
            audit.append(
                AuditKind.EVENT_LOG_PARTLY_READ, "dock", serial,
                {"custody": custody.id, "since": log.since, "next": log.next},
            )  # fmt: skip
        events = log.events
    recordings = client.list_recordings()
    start = round(custody.out_at * 1000)
    end = None if custody.in_at is None else round(custody.in_at * 1000)
    gaps = find_gaps(events, recordings, start, end, report_manual_stops)
    return register.open_items(serial, custody.officer_id, custody.id, gaps)


def _events_since(client: RecorderClient, register: GapRegister, serial: str, custody: int) -> int:
    """Where to read the event log from: on from the last scan, but never further back
    than the client reads in one go from the end the recorder announces (the episode is
    at the end); from the start when the log is shorter than where we were (reset)."""
    since = register.events_from(serial, custody) or 0
    count = (client.last_status or client.status()).event_count
    if count is not None:
        if count < since:
            since = 0  # the log restarted
        since = max(since, count - client.bounds.max_events)
    return since
