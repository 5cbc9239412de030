"""Gaps in recording within a custody episode, and the explanation items a supervisor closes.

REQUIREMENTS.md §5: recording must run without interruption from arrival to departure
(002 art.19; 003 art.9, 11); an interruption needs an explanation afterwards (002 art.20;
001 art.19(2)), and the dock finds gaps and device faults in the recorder's logs and opens
an item that a supervisor closes. Three parts:

* ``find_gaps`` is pure: the recorder's event log and recording list in, the items out,
  in a deterministic order, so every rule is a row of a table test.
* ``GapRegister`` keeps the items in the dock database (table ``explanation_items``) and
  audits every opening and closing; re-reading the same log opens nothing twice.
* ``scan_episode`` reads one recorder through an authenticated client and opens the
  items of one custody episode.

What counts, and why:

* An INTERRUPTED event (battery, storage full, fault, other) inside the episode is a gap
  from the interruption to the next restart, or to the end of the episode if recording
  never resumed in it. A RECORD_STOP whose reason is not MANUAL is the same thing logged
  differently (and a stop without any reason cannot be told apart from one: it is asked
  about as ``other``).
* A recording flagged INTERRUPTED (or stopped for a reason other than MANUAL) with no such
  event is still reported, from its end: event logs roll over, recording lists do not lie
  about their own flags. An event and its recording's flag are one item.
* A FAULT event inside the episode is an item of its own: the fault needs a look even when
  recording went on, and a fault that also cut a recording gives two items because the
  device and the gap are answered by different people.
* A manual stop is not an interruption: it is the officer's decision at the end of an
  action, and §5 asks for explanations of interruptions for objective causes (battery,
  storage, fault, weather, obstruction), not of an officer ending one incident and
  starting the next. So by default a manual stop opens no item (an officer who films 20
  incidents would otherwise leave 19, and bury the real interruptions among them). A unit
  that wants every stop-and-restart within an episode looked at, since the dock cannot
  tell a stop between two actions from a stop in the middle of one (002 art.19 asks for
  the whole action), sets the policy's ``explain_manual_stops``
  (``report_manual_stops=True`` here): each is then a ``manual_stop`` item. The last stop
  of an episode is never an item.

Closing: the officer writes an account of the item on their own PIN (``add_account``,
once, before the review), and a supervisor closes it with a written explanation on
theirs (``close_item``; ``close_items`` closes several with one explanation, all or
none): 001 art.19(2), the officer writes the account, the unit head reviews it.

Event times are the recorder's clock, which the dock sets at every inspection before a
check-out; the episode bounds are the dock's custody times (epoch seconds, here ms).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dock.devices.recorder_client import EventLog, RecorderClient
from dock.storage.audit import AuditLog
from dock.storage.pins import verify as verify_pin
from dock.storage.store import Custody, Store
from firmware_protocol.messages import Capability, EventKind, RecordingFlag, StopReason

INTERRUPTED = "interrupted"
FAULT = "fault"
MANUAL_STOP = "manual_stop"
KINDS = (INTERRUPTED, FAULT, MANUAL_STOP)

#: Shortest written explanation accepted when closing an item (002 art.20: written).
MIN_EXPLANATION = 10

_I64 = 1 << 63


class GapError(Exception):
    """A request the register refuses (unknown or closed item, unverified supervisor, ...)."""


class RecordingLike(Protocol):
    """What ``find_gaps`` reads of a recording (``RecordingInfo`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def stop_reason(self) -> int | None: ...


@dataclass(frozen=True)
class Gap:
    """One thing to explain. ``end_ms`` is None when the episode has no end yet."""

    kind: str
    reason: str
    start_ms: int
    end_ms: int | None
    recording_id: str | None
    detail: str = ""


@dataclass(frozen=True)
class _Event:
    order: tuple[int, int, int]
    time_ms: int
    kind: EventKind
    reason: int | None
    recording_id: str | None
    detail: str


@dataclass(frozen=True)
class _Rec:
    id: str
    start_ms: int | None
    end_ms: int
    flags: int
    stop_reason: int | None


def _int(value: Any) -> int | None:
    """An int that fits the protocol's I64, or None: malformed fields are ignored."""
    if isinstance(value, int) and not isinstance(value, bool) and -_I64 <= value < _I64:
        return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason_name(code: int | None) -> str:
    """battery / storage_full / fault / other; anything unknown (or MANUAL) is ``other``."""
    try:
        reason = StopReason(code) if code is not None else StopReason.OTHER
    except ValueError:
        return "other"
    return "other" if reason is StopReason.MANUAL else reason.name.lower()


def _parse_events(events: Iterable[Any]) -> list[_Event]:
    out = []
    for pos, e in enumerate(events):
        if not isinstance(e, Mapping):
            continue
        t, k = _int(e.get("time_ms")), _int(e.get("kind"))
        if t is None or k is None:
            continue
        try:
            kind = EventKind(k)
        except ValueError:
            continue
        index = _int(e.get("index"))
        out.append(
            _Event(
                (t, pos if index is None else index, pos),
                t,
                kind,
                _int(e.get("reason")),
                _text(e.get("recording_id")),
                _text(e.get("detail")) or "",
            )
        )
    return sorted(out, key=lambda ev: ev.order)


def _parse_recordings(recordings: Iterable[Any]) -> list[_Rec]:
    out = []
    for r in recordings:
        rid, end = _text(getattr(r, "id", None)), _int(getattr(r, "end_ms", None))
        if rid is None or end is None:
            continue
        flags = _int(getattr(r, "flags", 0)) or 0
        out.append(
            _Rec(
                rid,
                _int(getattr(r, "start_ms", None)),
                end,
                flags,
                _int(getattr(r, "stop_reason", None)),
            )
        )
    return sorted(out, key=lambda r: (r.end_ms, r.id))


def find_gaps(
    events: Sequence[Mapping[str, Any]],
    recordings: Sequence[RecordingLike],
    episode_start_ms: int | None,
    episode_end_ms: int | None,
    report_manual_stops: bool = False,
) -> list[Gap]:
    """The items to explain for one episode (bounds inclusive; None: unbounded).

    Never raises on malformed input: an event or recording missing what a rule needs is
    skipped. Sorted by (start_ms, kind, recording_id, reason, detail); no two items share
    the register's key (kind, start_ms, recording_id), and an event and its recording's
    INTERRUPTED flag give one item.
    """
    evs = _parse_events(events)
    recs = _parse_recordings(recordings)
    by_id = {r.id: r for r in recs}

    def inside(t: int) -> bool:
        return (episode_start_ms is None or t >= episode_start_ms) and (
            episode_end_ms is None or t <= episode_end_ms
        )

    # Every moment recording (re)started, from the log and from the recording list.
    restarts = sorted(
        {(e.time_ms, e.recording_id or "") for e in evs if e.kind is EventKind.RECORD_START}
        | {(r.start_ms, r.id) for r in recs if r.start_ms is not None}
    )

    def next_restart(t: int, own: str | None) -> int | None:
        i = bisect.bisect_left(restarts, (t, ""))
        for when, rid in restarts[i:]:
            if not own or rid != own:
                return when
        return None

    def gap_end(t: int, own: str | None) -> int | None:
        r = next_restart(t, own)
        if r is None or (episode_end_ms is not None and r > episode_end_ms):
            return episode_end_ms
        return r

    found: dict[tuple[str, Any], Gap] = {}
    cut: set[str] = set()  # recordings with an interruption item
    cut_at: set[int] = set()  # times of interruptions logged without a recording id
    cut_ends: set[int] = set()  # start times of every interruption item
    manual: list[_Event] = []
    fault_details: dict[tuple[str, Any], list[str]] = {}
    for e in evs:
        if not inside(e.time_ms):
            continue
        rid = e.recording_id
        if e.kind is EventKind.FAULT:
            key: tuple[str, Any] = (FAULT, (e.time_ms, rid or ""))
            details = fault_details.setdefault(key, [])
            detail = e.detail or "the recorder logged a fault"
            if detail not in details:  # faults in one millisecond: one item, every detail
                details.append(detail)
                found[key] = Gap(FAULT, FAULT, e.time_ms, e.time_ms, rid, "; ".join(details))
            continue
        if e.kind not in (EventKind.INTERRUPTED, EventKind.RECORD_STOP):
            continue
        reason = e.reason
        if reason is None and rid in by_id:
            reason = by_id[rid].stop_reason
        if e.kind is EventKind.RECORD_STOP and reason == StopReason.MANUAL:
            manual.append(e)
            continue
        key = (INTERRUPTED, rid) if rid else (INTERRUPTED, ("@", e.time_ms))
        if key in found:
            continue
        if rid:
            cut.add(rid)
        else:
            cut_at.add(e.time_ms)
        cut_ends.add(e.time_ms)
        name = _reason_name(reason)
        what = "interrupted" if e.kind is EventKind.INTERRUPTED else "stopped"
        detail = e.detail or f"the recorder logged recording {what} ({name})"
        found[key] = Gap(INTERRUPTED, name, e.time_ms, gap_end(e.time_ms, rid), rid, detail)

    for r in recs:
        flagged = bool(r.flags & RecordingFlag.INTERRUPTED)
        not_manual = r.stop_reason is not None and r.stop_reason != StopReason.MANUAL
        if not (flagged or not_manual) or not inside(r.end_ms):
            continue
        if r.id in cut or r.end_ms in cut_at:
            continue
        cut.add(r.id)
        cut_ends.add(r.end_ms)
        detail = "the recording list says it was cut short; the event log has no entry for it"
        found[(INTERRUPTED, r.id)] = Gap(
            INTERRUPTED,
            _reason_name(r.stop_reason),
            r.end_ms,
            gap_end(r.end_ms, r.id),
            r.id,
            detail,
        )

    for e in manual if report_manual_stops else []:
        rid = e.recording_id
        if rid in cut or (not rid and e.time_ms in cut_ends):
            continue  # the recording says it was cut: that item covers it
        restart = next_restart(e.time_ms, rid)
        if restart is None or not inside(restart):
            continue  # the end of the last action of the episode
        key = (MANUAL_STOP, rid) if rid else (MANUAL_STOP, ("@", e.time_ms))
        if key not in found:
            detail = f"stopped by hand and restarted {(restart - e.time_ms) / 1000:g} s later"
            found[key] = Gap(MANUAL_STOP, "manual", e.time_ms, restart, rid, detail)

    # Different rows of ``found`` may still share the register's key: keep the first.
    out: dict[tuple[str, int, str], Gap] = {}
    for g in sorted(found.values(), key=_sort_key):
        out.setdefault((g.kind, g.start_ms, g.recording_id or ""), g)
    return list(out.values())


def _sort_key(g: Gap) -> tuple[int, str, str, str, str]:
    return (g.start_ms, g.kind, g.recording_id or "", g.reason, g.detail)


# --- the register -------------------------------------------------------------------------

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS explanation_items (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL,
    officer_id TEXT NOT NULL,
    custody_id INTEGER,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    recording_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    opened_at REAL NOT NULL,
    closed_at REAL,
    closed_by TEXT,
    explanation TEXT,
    account TEXT,
    account_at REAL,
    UNIQUE (serial, kind, start_ms, recording_id)
)""",
    "CREATE INDEX IF NOT EXISTS explanation_items_by_officer "
    "ON explanation_items(officer_id, closed_at)",
    # Where each episode's scan read the recorder's event log: the next episode reads
    # on from there, so an honest long log is read in turns, within the client's bound.
    """CREATE TABLE IF NOT EXISTS event_log_reads (
    serial TEXT NOT NULL,
    custody_id INTEGER NOT NULL,
    since INTEGER NOT NULL,
    next INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    read_at REAL NOT NULL,
    PRIMARY KEY (serial, custody_id)
)""",
)


#: Columns added since the table was first made: (name, type), added to an older table.
ADDED_COLUMNS = (("account", "TEXT"), ("account_at", "REAL"))


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
        self._clock = clock or getattr(store, "_clock", time.time)
        with store._write() as db:
            for statement in SCHEMA:
                db.execute(statement)
            have = {r[1] for r in db.execute("PRAGMA table_info(explanation_items)")}
            for name, kind in ADDED_COLUMNS:
                if name not in have:  # a database from before the column existed
                    db.execute(f"ALTER TABLE explanation_items ADD COLUMN {name} {kind}")

    def open_items(
        self, serial: str, officer_id: str, custody_id: int | None, gaps: Iterable[Gap]
    ) -> int:
        """Open an item per gap not yet in the register; returns how many were new."""
        opened = 0
        with self.store._write() as db:
            for g in gaps:
                cur = db.execute(
                    "INSERT INTO explanation_items (serial, officer_id, custody_id, kind, "
                    "reason, start_ms, end_ms, recording_id, detail, opened_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (serial, kind, start_ms, recording_id) DO NOTHING",
                    (serial, officer_id, custody_id, g.kind, g.reason, g.start_ms, g.end_ms,
                     g.recording_id or "", g.detail, self._clock()),
                )  # fmt: skip
                if cur.rowcount != 1:
                    continue
                opened += 1
                self.audit.append(
                    "gap_opened",
                    "dock",
                    serial,
                    {
                        "item": cur.lastrowid,
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
        db = self.store._db()
        row = db.execute(
            "SELECT since FROM event_log_reads WHERE serial = ? AND custody_id = ?",
            (serial, custody_id),
        ).fetchone()
        if row is not None:
            return int(row["since"])
        row = db.execute(
            "SELECT next FROM event_log_reads WHERE serial = ? ORDER BY read_at DESC, rowid DESC "
            "LIMIT 1",
            (serial,),
        ).fetchone()
        return None if row is None else int(row["next"])

    def note_events_read(self, serial: str, custody_id: int, log: EventLog) -> None:
        with self.store._write() as db:
            db.execute(
                "INSERT INTO event_log_reads (serial, custody_id, since, next, complete, read_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial, custody_id) DO UPDATE SET "
                "next = max(next, excluded.next), complete = excluded.complete, "
                "read_at = excluded.read_at",
                (serial, custody_id, log.since, log.next, int(log.complete), self._clock()),
            )

    def item(self, item_id: int) -> ExplanationItem | None:
        row = (
            self.store._db()
            .execute("SELECT * FROM explanation_items WHERE id = ?", (item_id,))
            .fetchone()
        )
        return None if row is None else _item(row)

    def list_items(
        self, officer_id: str | None = None, open_only: bool = True
    ) -> list[ExplanationItem]:
        """Items, oldest first; of one officer when given; only open ones unless told."""
        where, args = [], []
        if officer_id is not None:
            where.append("officer_id = ?")
            args.append(officer_id)
        if open_only:
            where.append("closed_at IS NULL")
        sql = "SELECT * FROM explanation_items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.store._db().execute(sql + " ORDER BY id", args).fetchall()
        return [_item(r) for r in rows]

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
                "gap_explain_refused", supervisor_id, ",".join(map(str, ids)),
                {"why": "PIN locked" if check.locked else "not verified", "items": ids},
            )  # fmt: skip
            if check.locked:
                raise GapError("supervisor PIN locked: another supervisor unlocks it")
            raise GapError("supervisor not verified (wrong PIN, not a supervisor or disabled)")
        with self.store._write() as db:
            rows, problems = [], []
            for item_id in ids:
                row = db.execute(
                    "SELECT * FROM explanation_items WHERE id = ?", (item_id,)
                ).fetchone()
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
                db.execute(
                    "UPDATE explanation_items SET closed_at = ?, closed_by = ?, explanation = ? "
                    "WHERE id = ? AND closed_at IS NULL",
                    (now, supervisor_id, text, row["id"]),
                )
                self.audit.append(
                    "gap_explained",
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
            self.audit.append("gap_account_refused", officer_id, str(item_id), {"why": why})
            if check.locked:
                raise GapError("PIN locked: ask a supervisor (dock officer unlock)")
            raise GapError(f"officer number or PIN not recognised ({check.tries_left} tries left)")
        if officer.disabled:
            raise GapError(f"officer {officer_id} is disabled")
        with self.store._write() as db:
            row = db.execute("SELECT * FROM explanation_items WHERE id = ?", (item_id,)).fetchone()
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
            db.execute(
                "UPDATE explanation_items SET account = ?, account_at = ? "
                "WHERE id = ? AND account IS NULL AND closed_at IS NULL",
                (text, self._clock(), item_id),
            )
            self.audit.append(
                "gap_account",
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
                "event_log_partly_read", "dock", serial,
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
