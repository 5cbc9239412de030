"""Holds and offload deadlines: the pure rules given the dock's data.

``retention.decide`` says whether a recording may go and ``deadlines.deadline_status``
where a return stands; neither reads storage. This module feeds them from the dock's
database (REQUIREMENTS.md §4, §6); :mod:`.purging` carries out the purges they allow.

* :class:`HoldRegister` keeps holds in the dock database. A hold is placed on one
  recording, or on a *scope* that covers recordings now and later: a case (every
  recording attached to it, also those attached after the hold), an officer (their
  recordings, optionally between two times) or a custody episode. A hold is never
  deleted or edited, only released, once, by a supervisor with their own PIN and a
  reason (triggers refuse anything else); every change is in the audit log.
* The ``purges`` table is the permanent record of what was purged, and
  ``purge_batches`` / ``purge_members`` the purges under way (:mod:`.purging`).
* :func:`deadline_report` lists returned recorders against their offload deadline.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.domain.policy import Policy
from dock.evidence.deadlines import deadline_status
from dock.evidence.retention import Hold, HoldKind, Instant
from dock.storage.audit import AuditLog
from dock.storage.pins import verify as verify_pin
from dock.storage.store import Store

#: Created on first use in the dock database; the triggers make holds release-only and
#: purge records permanent, so a slip in code cannot quietly lift a hold or hide a purge.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS holds (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        reference TEXT NOT NULL,
        placed_at REAL NOT NULL,
        placed_by TEXT NOT NULL,
        until REAL,
        released_at REAL,
        released_by TEXT,
        release_reason TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS holds_by_recording ON holds(serial, recording_id)",
    """CREATE TABLE IF NOT EXISTS purges (
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        sha256 BLOB NOT NULL,
        path TEXT NOT NULL,
        purged_at REAL NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (serial, recording_id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS holds_never_deleted BEFORE DELETE ON holds
    BEGIN SELECT RAISE(ABORT, 'holds are never deleted, only released'); END""",
    """CREATE TRIGGER IF NOT EXISTS holds_release_only BEFORE UPDATE ON holds
    WHEN OLD.released_at IS NOT NULL
      OR NEW.id IS NOT OLD.id OR NEW.serial IS NOT OLD.serial
      OR NEW.recording_id IS NOT OLD.recording_id OR NEW.kind IS NOT OLD.kind
      OR NEW.reference IS NOT OLD.reference OR NEW.placed_at IS NOT OLD.placed_at
      OR NEW.placed_by IS NOT OLD.placed_by OR NEW.until IS NOT OLD.until
      OR NEW.released_at IS NULL OR NEW.released_by IS NULL
      OR coalesce(NEW.release_reason, '') = ''
    BEGIN SELECT RAISE(ABORT, 'a hold changes only by one release with a reason'); END""",
    """CREATE TRIGGER IF NOT EXISTS purges_never_deleted BEFORE DELETE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purges_never_changed BEFORE UPDATE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    # A purge under way, one batch per package that loses recordings (purging.py):
    # its record and state; a recording is in at most one batch.
    """CREATE TABLE IF NOT EXISTS purge_batches (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        serial TEXT NOT NULL,
        seal_id INTEGER UNIQUE,
        old_bag TEXT,
        old_digest TEXT,
        new_bag TEXT,
        state TEXT NOT NULL CHECK (state IN ('intent', 'resealed', 'done')),
        actor TEXT NOT NULL,
        record TEXT NOT NULL,
        package_record BLOB,
        created_at REAL NOT NULL,
        done_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS purge_members (
        batch INTEGER NOT NULL REFERENCES purge_batches(id),
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (serial, recording_id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS purge_batches_kept BEFORE DELETE ON purge_batches
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purge_batches_forward BEFORE UPDATE ON purge_batches
    WHEN OLD.state = 'done' OR NEW.record IS NOT OLD.record OR NEW.token IS NOT OLD.token
      OR NEW.seal_id IS NOT OLD.seal_id OR NEW.old_bag IS NOT OLD.old_bag
      OR NEW.new_bag IS NOT OLD.new_bag OR NEW.actor IS NOT OLD.actor
      OR NEW.package_record IS NOT OLD.package_record
      OR (OLD.state = 'resealed' AND NEW.state = 'intent')
    BEGIN SELECT RAISE(ABORT, 'a purge batch only moves forward'); END""",
    """CREATE TRIGGER IF NOT EXISTS purge_members_kept BEFORE DELETE ON purge_members
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purge_members_fixed BEFORE UPDATE ON purge_members
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
)

#: Columns added to ``holds`` for holds on a scope (a database from before gets them
#: with the defaults: every earlier hold is on one recording, as it was).
HOLD_ADDED_COLUMNS = (
    ("scope", "TEXT NOT NULL DEFAULT 'recording'"),
    ("case_number", "TEXT"),
    ("officer_id", "TEXT"),
    ("from_at", "REAL"),
    ("to_at", "REAL"),
    ("custody_id", "INTEGER"),
)

#: Added after the columns: what a hold covers never changes either.
HOLD_SCOPE_FIXED = """CREATE TRIGGER IF NOT EXISTS holds_scope_fixed BEFORE UPDATE ON holds
    WHEN NEW.scope IS NOT OLD.scope OR NEW.case_number IS NOT OLD.case_number
      OR NEW.officer_id IS NOT OLD.officer_id OR NEW.from_at IS NOT OLD.from_at
      OR NEW.to_at IS NOT OLD.to_at OR NEW.custody_id IS NOT OLD.custody_id
    BEGIN SELECT RAISE(ABORT, 'a hold changes only by one release with a reason'); END"""

#: What a hold can be placed on.
SCOPES = ("recording", "case", "officer", "episode")


class HoldError(Exception):
    """A hold request the data or the credentials do not allow."""


def ensure_tables(store: Store) -> None:
    """Create the holds and purge tables, and add the scope columns to a holds table
    from before them (idempotent)."""
    with store._write() as db:
        for statement in SCHEMA:
            db.execute(statement)
        have = {r[1] for r in db.execute("PRAGMA table_info(holds)")}
        for name, kind in HOLD_ADDED_COLUMNS:
            if name not in have:
                db.execute(f"ALTER TABLE holds ADD COLUMN {name} {kind}")
        db.execute(HOLD_SCOPE_FIXED)
        db.execute(
            "CREATE INDEX IF NOT EXISTS holds_by_scope ON holds(scope, case_number, officer_id)"
        )


# --------------------------------------------------------------------------- holds


@dataclass(frozen=True)
class HoldRecord:
    """One row of the holds table, as stored (``kind`` may be a kind this version does not
    know, ``scope`` a scope it does not know; ``retention.decide`` then keeps).

    ``scope`` is what the hold is on: ``recording`` (``serial``/``recording_id``),
    ``case`` (``case_number``), ``officer`` (``officer_id``, recordings starting in
    [``from_at``, ``to_at``), either end open) or ``episode`` (``custody_id``)."""

    id: int
    serial: str
    recording_id: str
    kind: str
    reference: str
    placed_at: float
    placed_by: str
    until: float | None
    released_at: float | None
    released_by: str | None
    release_reason: str | None
    scope: str = "recording"
    case_number: str | None = None
    officer_id: str | None = None
    from_at: float | None = None
    to_at: float | None = None
    custody_id: int | None = None

    def as_hold(self) -> Hold:
        try:
            kind: Any = HoldKind(self.kind)
        except ValueError:
            kind = self.kind  # decide() reports it as invalid and keeps
        if self.scope not in SCOPES:
            kind = f"{self.kind} on unknown scope {self.scope}"  # invalid: keeps
        return Hold(
            kind=kind,
            reference=self.reference,
            placed_at=self.placed_at,
            placed_by=self.placed_by,
            released_at=self.released_at,
            release_reason=self.release_reason,
            until=self.until,
            scope="" if self.scope == "recording" else self.target(),
        )

    def target(self) -> str:
        """What the hold is on, in words: ``S/R``, ``case C``, ``officer O from .. to ..``,
        ``episode N``."""
        if self.scope == "recording":
            return f"{self.serial}/{self.recording_id}"
        if self.scope == "case":
            return f"case {self.case_number}"
        if self.scope == "officer":
            span = ""
            if self.from_at is not None:
                span += f" from {utc_iso(self.from_at)}"
            if self.to_at is not None:
                span += f" to {utc_iso(self.to_at)}"
            return f"officer {self.officer_id}{span}"
        if self.scope == "episode":
            return f"episode {self.custody_id}"
        return f"unknown scope {self.scope!r}"

    def active(self, now: float) -> bool:
        if self.released_at is not None:
            return False
        return self.until is None or now < self.until

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("placed_at", "until", "released_at", "from_at", "to_at"):
            d[key] = None if d[key] is None else utc_iso(d[key])
        d["on"] = self.target()
        return d


class HoldRegister:
    """Holds on archived recordings, in the dock database; every change audited.

    A change and its audit entry go together: the audit entry is appended inside the
    database transaction, so a failed append rolls the change back. A crash between the
    two commits can leave an audited release that did not take effect -- the safe side.
    """

    def __init__(
        self, store: Store, audit: AuditLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        ensure_tables(store)

    # ------------------------------------------------------------------ placing
    def place(
        self,
        serial: str,
        recording_id: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold one archived recording (permanent unless ``until``, epoch seconds).

        Only recordings in the archive and not purged: a hold on a mistyped id would
        protect nothing while looking as if it did."""
        if self.store.archived(serial, recording_id) is None:
            raise HoldError(f"recording {serial}/{recording_id} is not in the archive")

        def check(db: sqlite3.Connection) -> None:
            gone = purge_state(db, serial, recording_id)
            if gone is not None:
                raise HoldError(f"recording {serial}/{recording_id} {gone}")

        return self._insert(
            {"scope": "recording", "serial": serial, "recording_id": recording_id},
            kind, reference, placed_by, until, check,
        )  # fmt: skip

    def place_case(
        self,
        case_number: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold every recording attached to a case: those attached now and those
        attached later, until the hold is released (or ``until``)."""
        case_number = case_number.strip()
        if not case_number:
            raise HoldError("a hold on a case needs the case number")
        return self._insert(
            {"scope": "case", "case_number": case_number}, kind, reference, placed_by, until
        )

    def place_officer(
        self,
        officer_id: str,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        from_at: float | None = None,
        to_at: float | None = None,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold an officer's recordings (named as theirs by the recorder, or made in a
        custody episode of theirs) that start in [``from_at``, ``to_at``); an end left
        out is open: also recordings archived later."""
        officer_id = officer_id.strip()
        db = self.store._db()
        known = (
            self.store.officer(officer_id) is not None
            or db.execute("SELECT 1 FROM archive WHERE officer_id = ?", (officer_id,)).fetchone()
            or db.execute("SELECT 1 FROM custody WHERE officer_id = ?", (officer_id,)).fetchone()
        )
        if not officer_id or not known:
            raise HoldError(f"no officer {officer_id!r} is known to this dock")
        for t in (from_at, to_at):
            if t is not None and not math.isfinite(t):
                raise HoldError("--from and --to must be times")
        if from_at is not None and to_at is not None and to_at <= from_at:
            raise HoldError("the hold's period ends before it starts")
        return self._insert(
            {"scope": "officer", "officer_id": officer_id, "from_at": from_at, "to_at": to_at},
            kind, reference, placed_by, until,
        )  # fmt: skip

    def place_episode(
        self,
        custody_id: int,
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None = None,
    ) -> HoldRecord:
        """Hold every recording of one custody episode (check-out to return, and the
        offload after the return): see :func:`episode_recordings`."""
        if self.store.custody(custody_id) is None:
            raise HoldError(f"no custody episode {custody_id}")
        return self._insert(
            {"scope": "episode", "custody_id": custody_id}, kind, reference, placed_by, until
        )

    def _insert(
        self,
        target: dict[str, Any],
        kind: HoldKind | str,
        reference: str,
        placed_by: str,
        until: float | None,
        check: Callable[[sqlite3.Connection], None] | None = None,
    ) -> HoldRecord:
        try:
            hold_kind = HoldKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in HoldKind)
            raise HoldError(f"unknown hold kind {kind!r} (one of {known})") from None
        if not reference.strip() or not placed_by.strip():
            raise HoldError("a hold needs a reference (case, complaint, ...) and who places it")
        placed_at = float(self.clock())
        if until is not None and not (math.isfinite(until) and until > placed_at):
            raise HoldError(f"until {until!r} is not a time after now")
        row = {"serial": "", "recording_id": "", **target}
        with self.store._write() as db:
            if check is not None:
                check(db)
            cols = ["kind", "reference", "placed_at", "placed_by", "until", *row]
            cur = db.execute(
                f"INSERT INTO holds ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                (hold_kind.value, reference, placed_at, placed_by, until, *row.values()),
            )
            hold_id = int(cur.lastrowid or 0)
            record = self._record(db, hold_id)
            data: dict[str, Any] = {
                "hold": hold_id,
                "scope": record.scope,
                "on": record.target(),
                "kind": hold_kind.value,
                "reference": reference,
                "until": None if until is None else utc_iso(until),
            }
            if record.scope == "recording":
                data["recording"] = record.recording_id
            else:
                data["recordings_now"] = len(self._covered(db, record))
            self.audit.append("hold_placed", placed_by, record.serial or record.target(), data)
        return record

    # ------------------------------------------------------------------ releasing
    def release(
        self, hold_id: int, released_by: str, supervisor_pin: str, reason: str, by: str = ""
    ) -> HoldRecord:
        """End a hold early: only a supervisor, with their own PIN, giving a reason.
        A refusal is audited too (``hold_release_refused``). ``by``: who typed the
        command (the login), recorded beside the supervisor."""
        check = verify_pin(self.store, self.audit, released_by, supervisor_pin, "hold_release")
        officer = self.store.officer(released_by)
        why = None
        if not reason.strip():
            why = "a release needs a reason"
        elif check.locked:
            why = "supervisor PIN locked: another supervisor unlocks it"
        elif not check.ok or officer is None or officer.disabled:
            why = "unknown supervisor or wrong PIN"
        elif officer.role != "supervisor":
            why = f"{released_by} is not a supervisor"
        if why is not None:
            self.audit.append(
                "hold_release_refused", released_by, "", {"hold": hold_id, "why": why, "by": by}
            )
            raise HoldError(f"release refused: {why}")
        with self.store._write() as db:
            row = db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone()
            if row is None:
                raise HoldError(f"no hold {hold_id}")
            if row["released_at"] is not None:
                raise HoldError(f"hold {hold_id} was already released")
            db.execute(
                "UPDATE holds SET released_at = ?, released_by = ?, release_reason = ? "
                "WHERE id = ?",
                (float(self.clock()), released_by, reason, hold_id),
            )
            record = self._record(db, hold_id)
            data: dict[str, Any] = {
                "hold": hold_id,
                "scope": record.scope,
                "on": record.target(),
                "kind": row["kind"],
                "reference": row["reference"],
                "reason": reason,
                "supervisor": released_by,
                "by": by,
            }
            if record.scope == "recording":
                data["recording"] = row["recording_id"]
            self.audit.append("hold_released", released_by, row["serial"] or record.target(), data)
        return record

    # ------------------------------------------------------------------ reading
    def record(self, hold_id: int) -> HoldRecord:
        return self._record(self.store._db(), hold_id)

    @staticmethod
    def _record(db: sqlite3.Connection, hold_id: int) -> HoldRecord:
        row = db.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone()
        if row is None:
            raise HoldError(f"no hold {hold_id}")
        return HoldRecord(**dict(row))

    def records(
        self, serial: str | None = None, recording_id: str | None = None
    ) -> list[HoldRecord]:
        """Every hold (released ones too), oldest first; or those that cover one
        recording (on it, or on a case, officer or episode it belongs to)."""
        db = self.store._db()
        if serial is None:
            rows = db.execute("SELECT * FROM holds ORDER BY id").fetchall()
            return [HoldRecord(**dict(r)) for r in rows]
        return self.covering(serial, recording_id or "")

    def covering(self, serial: str, recording_id: str) -> list[HoldRecord]:
        """Every hold ever placed that covers the recording, oldest first. A hold of a
        scope this version does not know covers every recording (any doubt keeps)."""
        db = self.store._db()
        found: dict[int, HoldRecord] = {}
        for r in db.execute(
            "SELECT * FROM holds WHERE scope = 'recording' AND serial = ? AND recording_id = ?",
            (serial, recording_id),
        ):
            found[r["id"]] = HoldRecord(**dict(r))
        for r in db.execute(
            "SELECT * FROM holds WHERE scope = 'case' AND case_number IN "
            "(SELECT case_number FROM case_links WHERE serial = ? AND recording_id = ?)",
            (serial, recording_id),
        ):
            found[r["id"]] = HoldRecord(**dict(r))
        scoped = db.execute(
            "SELECT * FROM holds WHERE scope NOT IN ('recording', 'case')"
        ).fetchall()
        if scoped:
            row = self.store.archived(serial, recording_id)
            episodes = episodes_of(db, row) if row is not None else []
            officers = {e["officer_id"] for e in episodes}
            if row is not None and row["officer_id"]:
                officers.add(row["officer_id"])
            start = row["start_ms"] / 1000 if row is not None else None
            for r in scoped:
                h = HoldRecord(**dict(r))
                if h.scope == "episode":
                    hit = h.custody_id in {e["id"] for e in episodes}
                elif h.scope == "officer":
                    hit = h.officer_id in officers and _within(start, h.from_at, h.to_at)
                else:
                    hit = True  # a scope from a later version: any doubt keeps
                if hit:
                    found[h.id] = h
        return [found[k] for k in sorted(found)]

    def holds_for(self, serial: str, recording_id: str) -> list[Hold]:
        """Every hold ever placed that covers the recording, for ``retention.decide``."""
        return [r.as_hold() for r in self.covering(serial, recording_id)]

    def covered(self, hold: HoldRecord) -> list[tuple[str, str]]:
        """(serial, recording id) of the archived recordings a hold covers now."""
        return self._covered(self.store._db(), hold)

    def _covered(self, db: sqlite3.Connection, hold: HoldRecord) -> list[tuple[str, str]]:
        if hold.scope == "recording":
            return [(hold.serial, hold.recording_id)]
        if hold.scope == "case":
            rows = db.execute(
                "SELECT c.serial, c.recording_id FROM case_links c JOIN archive a "
                "ON a.serial = c.serial AND a.recording_id = c.recording_id "
                "WHERE c.case_number = ? ORDER BY a.start_ms",
                (hold.case_number,),
            ).fetchall()
            return [(r[0], r[1]) for r in rows]
        if hold.scope == "episode":
            episode = db.execute(
                "SELECT * FROM custody WHERE id = ?", (hold.custody_id,)
            ).fetchone()
            if episode is None:
                return []
            return [(r["serial"], r["recording_id"]) for r in episode_recordings(db, episode)]
        out = []
        for r in db.execute("SELECT * FROM archive ORDER BY start_ms, rowid").fetchall():
            if any(h.id == hold.id for h in self.covering(r["serial"], r["recording_id"])):
                out.append((r["serial"], r["recording_id"]))
        return out


def episodes_of(db: sqlite3.Connection, row: dict[str, Any]) -> list[sqlite3.Row]:
    """The custody episodes an archived recording belongs to: those of its recorder
    during which it started (check-out to return), and the one whose return it was
    offloaded after (before the recorder's next check-out). Both, where they differ: a
    hold on either covers it."""
    start_s = row["start_ms"] / 1000
    episodes = db.execute(
        "SELECT * FROM custody WHERE serial = ? ORDER BY out_at, id", (row["serial"],)
    ).fetchall()
    found: list[sqlite3.Row] = []
    for i, e in enumerate(episodes):
        during = e["out_at"] <= start_s and (e["in_at"] is None or start_s <= e["in_at"])
        nxt = episodes[i + 1]["out_at"] if i + 1 < len(episodes) else None
        after_return = (
            e["in_at"] is not None
            and row["archived_at"] >= e["in_at"]
            and (nxt is None or row["archived_at"] < nxt)
        )
        if during or after_return:
            found.append(e)
    return found


def episode_recordings(db: sqlite3.Connection, episode: sqlite3.Row) -> list[sqlite3.Row]:
    """The archived recordings of one custody episode (see :func:`episodes_of`)."""
    rows = db.execute(
        "SELECT * FROM archive WHERE serial = ? ORDER BY start_ms, rowid", (episode["serial"],)
    ).fetchall()
    return [r for r in rows if any(e["id"] == episode["id"] for e in episodes_of(db, dict(r)))]


def _within(start: float | None, from_at: float | None, to_at: float | None) -> bool:
    """Whether a recording's start lies in [from_at, to_at); unknown start: yes (keeps)."""
    if start is None or start <= 0:
        return True
    return (from_at is None or start >= from_at) and (to_at is None or start < to_at)


def purge_state(db: sqlite3.Connection, serial: str, recording_id: str) -> str | None:
    """Why a recording can no longer be held or attached to a case ("was already
    purged", "is being purged (...)"), or None when it is in the archive to stay."""
    try:
        if db.execute(
            "SELECT 1 FROM purges WHERE serial = ? AND recording_id = ?", (serial, recording_id)
        ).fetchone():
            return "was already purged"
        going = db.execute(
            "SELECT b.token, b.state FROM purge_members m JOIN purge_batches b "
            "ON b.id = m.batch WHERE m.serial = ? AND m.recording_id = ?",
            (serial, recording_id),
        ).fetchone()
    except sqlite3.OperationalError:  # no purge tables yet: nothing was ever purged
        return None
    if going is None:
        return None
    if going["state"] == "done":
        return "was already purged"
    return f"is being purged (purge {going['token']}, completed by `dock purge --apply`)"


def purges(store: Store) -> list[dict[str, Any]]:
    """The purge records, oldest first (hash as hex)."""
    ensure_tables(store)
    rows = store._db().execute("SELECT * FROM purges ORDER BY purged_at, rowid").fetchall()
    return [dict(r) | {"sha256": bytes(r["sha256"]).hex()} for r in rows]


# --------------------------------------------------------------------------- deadlines


def deadline_report(store: Store, policy: Policy, tz: str, now: Instant) -> list[dict[str, Any]]:
    """Every returned custody episode against its offload deadline, oldest return first.

    When an episode counts as offloaded (the store knows archive rows, not which footage
    was on the recorder at its return), the rule is:

    1. ``offloaded_at`` = the latest ``archived_at`` of the serial's archive rows archived
       at or after the return (``in_at``), up to ``now`` and before the serial's next
       check-out (later rows belong to a later episode) -- basis ``archive``;
    2. else, when the serial's next check-out happened (by ``now``) without a supervisor
       override, it passed the ``footage_pending`` check, so nothing of this episode was
       left to offload: done at its return -- basis ``nothing_pending``;
    3. else not offloaded (``offloaded_at`` None): ``on_time``, ``at_risk`` or ``overdue``.

    Limits: an offload that archived only part of the footage counts as an offload
    (the failure shows on the slot and in the audit log); a recorder returned with no
    footage shows as due until its next check-out. Public holidays are not known to the
    dock, so working-day deadlines count Monday to Friday.
    """
    at = _epoch(now)
    db = store._db()
    episodes = db.execute(
        "SELECT id, serial, officer_id, out_at, in_at, override_by FROM custody ORDER BY out_at, id"
    ).fetchall()
    by_serial: dict[str, list[sqlite3.Row]] = {}
    for e in episodes:
        by_serial.setdefault(e["serial"], []).append(e)
    rows: list[dict[str, Any]] = []
    for e in sorted((e for e in episodes if e["in_at"] is not None), key=lambda e: e["in_at"]):
        in_at = float(e["in_at"])
        later = [n for n in by_serial[e["serial"]] if n["id"] != e["id"] and n["out_at"] >= in_at]
        nxt = later[0] if later else None
        sql = (
            "SELECT max(archived_at) FROM archive WHERE serial = ? AND archived_at >= ? "
            "AND archived_at <= ?"
        )
        params: tuple[Any, ...] = (e["serial"], in_at, at)
        if nxt is not None:
            sql, params = sql + " AND archived_at < ?", (*params, float(nxt["out_at"]))
        found = db.execute(sql, params).fetchone()[0]
        basis: str | None = None
        offloaded_at: float | None = None
        if found is not None:
            offloaded_at, basis = float(found), "archive"
        elif nxt is not None and nxt["out_at"] <= at and nxt["override_by"] is None:
            offloaded_at, basis = in_at, "nothing_pending"
        ds = deadline_status(in_at, offloaded_at, at, policy, tz)
        deadline = ds.deadline.timestamp()
        rows.append(
            {
                "custody_id": e["id"],
                "serial": e["serial"],
                "officer_id": e["officer_id"],
                "returned_at": utc_iso(in_at),
                "deadline_utc": utc_iso(deadline),
                "deadline_local": local_display(deadline, tz),
                "offloaded_at": None if offloaded_at is None else utc_iso(offloaded_at),
                "offload_basis": basis,
                "state": ds.state,
                "remaining_s": round(ds.remaining.total_seconds(), 3),
            }
        )
    return rows


def overdue_or_at_risk(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that need someone to act: the alert of REQUIREMENTS.md §4."""
    return [r for r in report if r["state"] in ("overdue", "at_risk")]


# --------------------------------------------------------------------------- helpers


def _epoch(t: Instant) -> float:
    """Epoch seconds from an aware datetime or a number; a naive datetime is refused."""
    if isinstance(t, datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("now is a naive datetime; pass an aware one or epoch seconds")
        return t.astimezone(UTC).timestamp()
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"now {t!r} is neither an aware datetime nor epoch seconds")
    return float(t)


__all__ = [
    "SCOPES",
    "HoldError",
    "HoldRecord",
    "HoldRegister",
    "deadline_report",
    "ensure_tables",
    "episode_recordings",
    "episodes_of",
    "overdue_or_at_risk",
    "purge_state",
    "purges",
]
