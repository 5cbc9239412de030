"""Gaps in recording within a custody episode, and the explanation items a supervisor closes.

REQUIREMENTS.md §5: recording must run without interruption from arrival to departure
(002 art.19; 003 art.9, 11); an interruption needs an explanation afterwards (002 art.20;
001 art.19(2)), and the dock finds gaps and device faults in the recorder's logs and opens
an item for three steps (001 art.19(2)). Three parts:

* ``find_gaps`` (:mod:`.gap_detection`) is pure: the recorder's event log and recording
  list in, the items out, in a deterministic order, so every rule is a row of a table test.
* ``GapRegister`` keeps the items in the dock database (table ``explanation_items``) and
  audits every opening and closing; re-reading the same log opens nothing twice.
* ``scan_episode`` reads one recorder through an authenticated client and opens the
  items of one custody episode.

The rules (what counts, and why) are in :mod:`.gap_detection`.

The three steps (001 art.19(2); the order and who may take each step are one table in
:mod:`dock.domain.explanations`): the item's officer writes the account on their own PIN
(``add_account``); a supervisor who is not that officer reviews it on theirs, accepting
it (``close_items``/``review_items``: one review may cover several items, all or none) or
returning it with a reason, when the officer writes it again; the records keeper files
the reviewed item (``file_items``). Each step is stored with who, when and the text, and
audited in the same transaction; a step out of order or by the wrong person is refused
in one line and audited (``gap_step_refused``). Items a supervisor closed before the
three steps existed keep that state (``closed``).

At once (002 art.20; 003 art.11; 004 att.1 art.3): an interruption where recording could
not continue (battery, storage full, device fault: ``could_not_continue``) raises an
alert (``gap_alert``, once per item, in the transaction that opens the item): shown to
supervisors and sent to headquarters (``gap.alert``). The dock learns of it when it reads
the recorder's log, so "at once" is at docking: the officer in the field still reports by
radio or phone; the dock makes sure the head hears of every such stop.

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
from dock.domain.explanations import State, Step, after, refusal, state_of
from dock.domain.roles import roles_of
from dock.evidence.gap_detection import (
    FAULT,
    INTERRUPTED,
    KINDS,
    MANUAL_STOP,
    Gap,
    RecordingLike,
    could_not_continue,
    file_gaps,
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
    "TEXT_MAX",
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
#: Longest account, review, reason or filing note accepted (the pages' bound too).
TEXT_MAX = 2000
#: What a written text may hold besides printable characters.
_TEXT_CONTROLS = frozenset("\n\t")


def _written(text: str, what: str, minimum: int = MIN_EXPLANATION) -> str:
    """A person's text for an item, stripped; GapError in one line when it is too short,
    too long or holds control characters (a line break and a tab are text)."""
    if not isinstance(text, str):
        raise GapError(f"the {what} must be text")
    value = text.strip().replace("\r\n", "\n")
    if len(value) < minimum:
        raise GapError(f"the {what} must be at least {minimum} characters")
    if len(value) > TEXT_MAX:
        raise GapError(f"the {what} must be at most {TEXT_MAX} characters")
    if any(not ch.isprintable() and ch not in _TEXT_CONTROLS for ch in value):
        raise GapError(f"the {what} holds a control character: write plain text")
    return value


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
    #: The review (``explanation`` holds the reviewer's words), the last return, the
    #: keeper's filing, and the at-once alert (dock/domain/explanations.py).
    reviewed_at: float | None = None
    reviewed_by: str | None = None
    returned_at: float | None = None
    returned_by: str | None = None
    return_reason: str | None = None
    filed_at: float | None = None
    filed_by: str | None = None
    filing: str | None = None
    alerted_at: float | None = None

    @property
    def is_open(self) -> bool:
        """Not done: neither filed nor closed (before the three steps)."""
        return self.closed_at is None

    @property
    def state(self) -> State:
        return state_of(self.__dict__)

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
                if could_not_continue(g.kind, g.reason):
                    self._alert(item_id, serial, officer_id, custody_id, g)
        return opened

    def _alert(
        self, item_id: int, serial: str, officer_id: str, custody_id: int | None, g: Gap
    ) -> None:
        """Recording could not continue: the head told at once (002 art.20; 003 art.11;
        004 att.1 art.3), once per item; headquarters hears it as ``gap.alert``."""
        if not self.table.set_alerted(item_id, self._clock()):
            return
        self.audit.append(
            AuditKind.GAP_ALERT,
            "dock",
            serial,
            {
                "item": item_id,
                "officer": officer_id,
                "custody": custody_id,
                "kind": g.kind,
                "reason": g.reason,
                "start_ms": g.start_ms,
                "recording": g.recording_id,
            },
        )

    def alerts(self) -> list[ExplanationItem]:
        """Items whose at-once alert stands: recording could not continue, and no
        supervisor has accepted the account yet (oldest first)."""
        return [
            i
            for i in self.list_items()
            if i.alerted_at is not None and i.state in (State.OPEN, State.ACCOUNTED)
        ]

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
        """A supervisor's review of one item, accepting its account (``close_items``)."""
        return self.close_items([item_id], supervisor_id, supervisor_pin, explanation)[0]

    def close_items(
        self, item_ids: Iterable[int], supervisor_id: str, supervisor_pin: str, explanation: str
    ) -> list[ExplanationItem]:
        """A supervisor reviews items and accepts their accounts with one written review
        (one incident, several cuts), on one check of their PIN (001 art.19(2): the unit
        head reviews); each then waits for the keeper to file it. All or none: GapError
        naming every item that is unknown, not waiting for review (no account yet,
        reviewed, filed or closed) or the supervisor's own. Each is audited as its own
        ``gap_explained``, with the whole ``batch``."""
        return self.review_items(item_ids, supervisor_id, supervisor_pin, explanation, True)

    def review_items(
        self,
        item_ids: Iterable[int],
        supervisor_id: str,
        supervisor_pin: str,
        text: str,
        accept: bool,
    ) -> list[ExplanationItem]:
        """The review of items with an account (001 art.19(2)): ``accept`` them (then the
        keeper files them), or return them to their officer with ``text`` as the reason
        (then the officer writes the account again). By a supervisor on their own PIN,
        never of their own items; all or none."""
        step = Step.ACCEPT if accept else Step.RETURN
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            raise GapError("no item to review")
        if accept:
            text = _written(text, "explanation")
        else:
            text = _written(text, "reason for returning it", minimum=3)
        check = verify_pin(self.store, self.audit, supervisor_id, supervisor_pin, "gap_explain")
        sup = self.store.officer(supervisor_id)
        if not check.ok or sup is None or sup.role != "supervisor" or sup.disabled:
            self.audit.append(
                AuditKind.GAP_EXPLAIN_REFUSED, supervisor_id, ",".join(map(str, ids)),
                {"why": "PIN locked" if check.locked else "not verified", "items": ids,
                 "step": str(step)},
            )  # fmt: skip
            if check.locked:
                raise GapError("supervisor PIN locked: another supervisor unlocks it")
            raise GapError("supervisor not verified (wrong PIN, not a supervisor or disabled)")
        with self.table.transaction():  # all reviewed with their entries, or none
            rows = self._steppable(ids, step, supervisor_id, roles_of(sup.role))
            now = self._clock()
            for row in rows:
                if accept:
                    done = self.table.accept(row["id"], now, supervisor_id, text)
                else:
                    done = self.table.return_account(row["id"], now, supervisor_id, text)
                if not done:  # the table holds to the order too: someone was first
                    raise GapError(f"item {row['id']} changed meanwhile: nothing was reviewed")
                data = {
                    "item": row["id"],
                    "officer": row["officer_id"],
                    "custody": row["custody_id"],
                    "kind": row["kind"],
                    "reason": row["reason"],
                    "start_ms": row["start_ms"],
                    "recording": row["recording_id"] or None,
                    "account": row["account"],
                    "batch": ids,
                    "state": str(after(State.ACCOUNTED, step)),
                }
                if accept:
                    data["explanation"] = text
                    self.audit.append(AuditKind.GAP_EXPLAINED, supervisor_id, row["serial"], data)
                else:
                    data["return_reason"] = text
                    self.audit.append(AuditKind.GAP_RETURNED, supervisor_id, row["serial"], data)
        return [self.item(i) for i in ids]  # type: ignore[misc]

    def file_items(
        self, item_ids: Iterable[int], keeper_id: str, keeper_pin: str, note: str = ""
    ) -> list[ExplanationItem]:
        """The records keeper files reviewed items (001 art.19(2): handed to the unit's
        recorder keeper to keep on file), on their own PIN, with an optional note (where
        it is filed). Only after a supervisor accepted the account; all or none; each
        audited as ``gap_filed``."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            raise GapError("no item to file")
        note = _written(note, "filing note", minimum=0) if note and note.strip() else ""
        check = verify_pin(self.store, self.audit, keeper_id, keeper_pin, "gap_file")
        keeper = self.store.officer(keeper_id)
        if not check.ok or keeper is None or keeper.disabled:
            why = "PIN locked" if check.locked else "not verified"
            self.audit.append(
                AuditKind.GAP_STEP_REFUSED, keeper_id, ",".join(map(str, ids)),
                {"why": why, "items": ids, "step": str(Step.FILE)},
            )  # fmt: skip
            if check.locked:
                raise GapError("PIN locked: ask a supervisor (dock officer unlock)")
            raise GapError(f"officer number or PIN not recognised ({check.tries_left} tries left)")
        with self.table.transaction():  # all filed with their entries, or none
            rows = self._steppable(ids, Step.FILE, keeper_id, roles_of(keeper.role))
            now = self._clock()
            for row in rows:
                if not self.table.file(row["id"], now, keeper_id, note):
                    raise GapError(f"item {row['id']} changed meanwhile: nothing was filed")
                self.audit.append(
                    AuditKind.GAP_FILED,
                    keeper_id,
                    row["serial"],
                    {
                        "item": row["id"],
                        "officer": row["officer_id"],
                        "reviewed_by": row["reviewed_by"],
                        "kind": row["kind"],
                        "reason": row["reason"],
                        "start_ms": row["start_ms"],
                        "note": note,
                        "batch": ids,
                    },
                )
        return [self.item(i) for i in ids]  # type: ignore[misc]

    def _steppable(
        self, ids: list[int], step: Step, actor: str, roles: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """The rows of ``ids`` if ``actor`` may take ``step`` on every one; else GapError
        naming each refusal (audited as ``gap_step_refused``), nothing done."""
        rows, problems = [], []
        for item_id in ids:
            row = self.table.item(item_id)
            if row is None:
                problems.append(f"no explanation item {item_id}")
                continue
            why = refusal(
                item_id, state_of(row), step, actor, roles, row["officer_id"], row["reviewed_by"]
            )
            if why is None:
                rows.append(row)
            else:
                problems.append(why)
        if problems:
            self.audit.append(
                AuditKind.GAP_STEP_REFUSED, actor, ",".join(map(str, ids)),
                {"step": str(step), "items": ids, "why": problems},
            )  # fmt: skip
            what = "; ".join(problems)
            raise GapError(what + ("; nothing was done" if len(ids) > 1 else ""))
        return rows

    def add_account(self, item_id: int, officer_id: str, pin: str, account: str) -> ExplanationItem:
        """The officer's own account of an item (001 art.19(2): the officer writes it, the
        unit head reviews it), on their own PIN, stored with the item and audited
        (``gap_account``). Only the item's officer; while the item waits for it (new, or
        returned by the review).

        A wrong PIN and an unknown officer number are refused in the same words, and
        audited (``gap_account_refused``)."""
        text = _written(account, "account")
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
            (row,) = self._steppable([item_id], Step.ACCOUNT, officer_id, roles_of(officer.role))
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
                    "returned": row["returned_at"] is not None,
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
    continuity_tolerance_s: float = 120.0,
) -> int:
    """Open the items of ``custody``'s episode from the recorder's logs; returns how many
    (recordings its log says were made and that are gone count too: :mod:`.continuity`).

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
    if no_log and getattr(client, "gaps_from_files", False):  # a mass-storage camera
        gaps += file_gaps(recordings, start, end, round(continuity_tolerance_s * 1000))
    opened = register.open_items(serial, custody.officer_id, custody.id, gaps)
    from dock.evidence.continuity import ContinuityRegister  # recordings gone (REQUIREMENTS §4)

    flags = ContinuityRegister(store, audit).check_log(
        serial, custody, events, recordings, continuity_tolerance_s
    )
    return opened + len(flags)


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
