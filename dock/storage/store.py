"""The dock's database: officers, enrolled devices, custody, status history.

Real SQLite on disk in WAL mode with ``synchronous=FULL`` (custody must survive a
power cut the moment it is recorded), ``busy_timeout`` for the daemon and the CLI
sharing the file, ``BEGIN IMMEDIATE`` for every write, and ``quick_check`` at
open. The schema (:mod:`dock.storage.schema`, applied here at open) itself enforces
"one device per officer, one officer per device": two partial unique indexes over open
custody rows. This class owns the tables it reads and writes (the schema module names
each table's owner); the evidence registers use :mod:`dock.storage.evidence_tables`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from dock.storage import schema
from dock.storage.sqlite_tx import immediate

PIN_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

#: Wrong PINs in a row after which an officer number's PIN is locked, until a supervisor
#: unlocks it (``dock officer unlock``).
PIN_TRIES = 5


class StoreError(Exception):
    """A request the data does not allow (unknown officer, duplicate badge, ...)."""


@dataclass(frozen=True)
class Officer:
    officer_id: str
    name: str
    unit: str
    badge: str | None
    role: str
    disabled: bool


@dataclass(frozen=True)
class Device:
    serial: str
    model: str
    firmware: str
    secret: bytes
    enrolled_at: float
    lost: bool
    maintenance: bool
    note: str


@dataclass(frozen=True)
class Custody:
    id: int
    serial: str
    officer_id: str
    slot_id: str
    out_at: float
    in_at: float | None
    override_by: str | None
    override_reason: str | None


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one PIN tried for one officer number.

    What may be shown to whoever typed it: ``ok``, ``locked`` and ``tries_left``, which
    are the same for an officer number that exists and one that does not. ``known``
    (whether the number exists) is for the audit log only.
    """

    ok: bool
    locked: bool  # the number's PIN is locked (by this try or before)
    just_locked: bool  # this try locked it: audit it
    tries_left: int  # wrong PINs left before the lock; 0 when locked
    known: bool


def hash_pin(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, **PIN_SCRYPT)


def _run(pin: str, step: int) -> bool:
    return all((int(b) - int(a)) % 10 == step % 10 for a, b in itertools.pairwise(pin))


def pin_problem(pin: str, min_length: int = 6, officer_id: str | None = None) -> str | None:
    """Why ``pin`` may not be set, in one line; None when it may. Refused: not all digits,
    shorter than ``min_length``, one digit repeated (000000), a run up or down (123456,
    654321, 890123), a short pattern repeated (121212, 123123), the officer number."""
    if pin and not (pin.isascii() and pin.isdigit()):
        return "the PIN must be digits only (0-9)"
    if len(pin) < min_length:
        return f"the PIN must be at least {min_length} digits"
    if len(set(pin)) == 1:
        return f"the PIN is one digit repeated ({pin[0] * 6}): choose one that is not"
    if _run(pin, 1) or _run(pin, -1):
        return "the PIN is a run of digits (like 123456 or 654321): choose one that is not"
    for size in range(2, len(pin) // 2 + 1):
        if len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size):
            return "the PIN repeats a short pattern (like 121212): choose one that does not"
    if officer_id is not None and pin == officer_id:
        return "the PIN is the officer number: choose one that is not"
    return None


class Store:
    """Thread-safe: one connection per thread, all on the same file."""

    def __init__(self, path: str, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._local = threading.local()
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, mode=0o700, exist_ok=True)
        db = self._db()
        ok = db.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise StoreError(f"{path}: database damaged ({ok}); restore it from backup")
        schema.apply(db)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db())

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the store stamps rows with (tests pass a fake one)."""
        return self._clock

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ------------------------------------------------------------------ officers
    def add_officer(
        self,
        officer_id: str,
        name: str,
        unit: str,
        pin: str,
        badge: str | None = None,
        role: str = "officer",
        min_pin_length: int = 6,
        audit: Callable[[], object] | None = None,
    ) -> Officer:
        """``audit`` writes its audit entry inside this transaction (as for
        :meth:`add_archived`): a failed append leaves no officer."""
        if not officer_id.strip() or not name.strip():
            raise StoreError("officer number and name must not be empty")
        problem = pin_problem(pin, min_pin_length, officer_id)
        if problem is not None:
            raise StoreError(problem)
        salt = os.urandom(16)
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO officers VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    (officer_id, name, unit, badge, salt, hash_pin(pin, salt), role, self._clock()),
                )
                # Tries on this number from before it existed are not the new officer's.
                db.execute("DELETE FROM pin_failures WHERE officer_id = ?", (officer_id,))
                if audit is not None:
                    audit()
        except sqlite3.IntegrityError as exc:
            what = "badge" if "badge" in str(exc) else "officer number"
            raise StoreError(f"that {what} is already registered") from exc
        return self.officer(officer_id)  # type: ignore[return-value]

    def officer(self, officer_id: str) -> Officer | None:
        row = self._db().execute("SELECT * FROM officers WHERE officer_id = ?", (officer_id,))
        return _officer(row.fetchone())

    def officer_by_badge(self, badge: str) -> Officer | None:
        row = self._db().execute("SELECT * FROM officers WHERE badge = ?", (badge,))
        return _officer(row.fetchone())

    def officers(self) -> list[Officer]:
        rows = self._db().execute("SELECT * FROM officers ORDER BY officer_id").fetchall()
        return [o for o in map(_officer, rows) if o is not None]

    def check_pin(self, officer_id: str, pin: str) -> bool:
        """Whether the PIN opens; counts towards the lockout like ``verify_pin`` (whose
        outcome says more, and which dock.storage.pins.verify audits: prefer that)."""
        return self.verify_pin(officer_id, pin).ok

    def verify_pin(self, officer_id: str, pin: str) -> PinCheck:
        """Try a PIN for an officer number; PIN_TRIES wrong ones in a row lock it until
        ``unlock_pin``. The same work and the same answer whether or not the number
        exists: one scrypt, one constant-time comparison, one row counted."""
        row = (
            self._db()
            .execute("SELECT pin_salt, pin_hash FROM officers WHERE officer_id = ?", (officer_id,))
            .fetchone()
        )
        known = row is not None
        salt = row["pin_salt"] if known else b"\0" * 16
        expected = bytes(row["pin_hash"]) if known else bytes(PIN_SCRYPT["dklen"])
        matches = hmac.compare_digest(hash_pin(pin, salt), expected) and known
        now = self._clock()
        with self._write() as db:
            tried = db.execute(
                "SELECT failures, locked_at FROM pin_failures WHERE officer_id = ?", (officer_id,)
            ).fetchone()
            if tried is not None and tried["locked_at"] is not None:
                db.execute(
                    "UPDATE pin_failures SET failures = failures + 1, last_at = ? "
                    "WHERE officer_id = ?",
                    (now, officer_id),
                )
                return PinCheck(False, True, False, 0, known)
            if matches:
                db.execute("DELETE FROM pin_failures WHERE officer_id = ?", (officer_id,))
                return PinCheck(True, False, False, PIN_TRIES, known)
            failures = (tried["failures"] if tried is not None else 0) + 1
            lock = failures >= PIN_TRIES
            db.execute(
                "INSERT INTO pin_failures (officer_id, failures, last_at, locked_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (officer_id) DO UPDATE SET "
                "failures = excluded.failures, last_at = excluded.last_at, "
                "locked_at = excluded.locked_at",
                (officer_id, failures, now, now if lock else None),
            )
        return PinCheck(False, lock, lock, max(0, PIN_TRIES - failures), known)

    def pin_locked(self, officer_id: str) -> bool:
        row = (
            self._db()
            .execute("SELECT locked_at FROM pin_failures WHERE officer_id = ?", (officer_id,))
            .fetchone()
        )
        return row is not None and row["locked_at"] is not None

    def locked_pins(self) -> set[str]:
        """Officer numbers whose PIN is locked (numbers without an officer included)."""
        rows = self._db().execute("SELECT officer_id FROM pin_failures WHERE locked_at IS NOT NULL")
        return {r["officer_id"] for r in rows}

    def unlock_pin(self, officer_id: str, audit: Callable[[bool], object] | None = None) -> bool:
        """Forget the wrong PINs of a number; True if its PIN was locked. ``audit`` (given
        that answer) writes its entry inside this transaction."""
        with self._write() as db:
            was = db.execute(
                "SELECT locked_at FROM pin_failures WHERE officer_id = ?", (officer_id,)
            ).fetchone()
            db.execute("DELETE FROM pin_failures WHERE officer_id = ?", (officer_id,))
            if audit is not None:
                audit(was is not None and was["locked_at"] is not None)
        return was is not None and was["locked_at"] is not None

    def set_officer_disabled(
        self, officer_id: str, disabled: bool, audit: Callable[[], object] | None = None
    ) -> None:
        """``audit`` writes its entry inside this transaction: never one without the other."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE officers SET disabled = ? WHERE officer_id = ?", (int(disabled), officer_id)
            )
            if cur.rowcount == 0:
                raise StoreError(f"no officer {officer_id}")
            if audit is not None:
                audit()

    # ------------------------------------------------------------------ devices
    def enrol_device(self, serial: str, model: str, firmware: str, secret: bytes) -> Device:
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO devices (serial, model, firmware, secret, enrolled_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (serial, model, firmware, secret, self._clock()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"device {serial} is already enrolled") from exc
        return self.device(serial)  # type: ignore[return-value]

    def keep_pending_secret(self, serial: str, secret: bytes) -> None:
        """Write the agreed secret down before the recorder can commit it."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO pending_secrets (serial, secret, created_at) "
                "VALUES (?, ?, ?)",
                (serial, secret, self._clock()),
            )

    def pending_secret(self, serial: str) -> bytes | None:
        row = (
            self._db()
            .execute("SELECT secret FROM pending_secrets WHERE serial = ?", (serial,))
            .fetchone()
        )
        return None if row is None else bytes(row["secret"])

    def commit_pending_secret(self, serial: str, model: str, firmware: str) -> Device:
        """The recorder proved it holds the pending secret: enrol it, in one step."""
        try:
            with self._write() as db:
                row = db.execute(
                    "SELECT secret FROM pending_secrets WHERE serial = ?", (serial,)
                ).fetchone()
                if row is None:
                    raise StoreError(f"no pending enrolment for {serial}")
                db.execute(
                    "INSERT INTO devices (serial, model, firmware, secret, enrolled_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (serial, model, firmware, row["secret"], self._clock()),
                )
                db.execute("DELETE FROM pending_secrets WHERE serial = ?", (serial,))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"device {serial} is already enrolled") from exc
        return self.device(serial)  # type: ignore[return-value]

    def device(self, serial: str) -> Device | None:
        row = self._db().execute("SELECT * FROM devices WHERE serial = ?", (serial,)).fetchone()
        return _device(row)

    def devices(self) -> list[Device]:
        rows = self._db().execute("SELECT * FROM devices ORDER BY serial").fetchall()
        return [d for d in map(_device, rows) if d is not None]

    def flag_device(
        self,
        serial: str,
        *,
        lost: bool | None = None,
        maintenance: bool | None = None,
        note: str = "",
        audit: Callable[[], object] | None = None,
    ) -> Device:
        """``audit`` writes its entry inside this transaction: never a flag without it."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM devices WHERE serial = ?", (serial,)).fetchone() is None:
                raise StoreError(f"device {serial} is not enrolled")
            if lost is not None:
                db.execute("UPDATE devices SET lost = ? WHERE serial = ?", (int(lost), serial))
            if maintenance is not None:
                db.execute(
                    "UPDATE devices SET maintenance = ? WHERE serial = ?",
                    (int(maintenance), serial),
                )
            if note:
                db.execute("UPDATE devices SET note = ? WHERE serial = ?", (note, serial))
            if audit is not None:
                audit()
        return self.device(serial)  # type: ignore[return-value]

    def update_firmware(self, serial: str, firmware: str) -> None:
        with self._write() as db:
            db.execute("UPDATE devices SET firmware = ? WHERE serial = ?", (firmware, serial))

    # ------------------------------------------------------------------ custody
    def open_custody(
        self,
        serial: str,
        officer_id: str,
        slot_id: str,
        override_by: str | None = None,
        override_reason: str | None = None,
    ) -> Custody:
        """Record a check-out; the schema refuses a second open custody for either side."""
        try:
            with self._write() as db:
                cur = db.execute(
                    "INSERT INTO custody (serial, officer_id, slot_id, out_at, override_by, "
                    "override_reason) VALUES (?, ?, ?, ?, ?, ?)",
                    (serial, officer_id, slot_id, self._clock(), override_by, override_reason),
                )
                custody_id = cur.lastrowid
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{serial} or officer {officer_id} already has open custody") from exc
        return self.custody(custody_id)  # type: ignore[arg-type,return-value]

    def close_custody(self, serial: str, slot_id: str) -> Custody | None:
        """Docking closes the device's open custody; returns it, or None if none was open."""
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM custody WHERE serial = ? AND in_at IS NULL", (serial,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE custody SET in_at = ?, in_slot = ? WHERE id = ?",
                (self._clock(), slot_id, row["id"]),
            )
        return self.custody(row["id"])

    def mark_taken(self, slot_id: str) -> None:
        """The device granted from ``slot_id`` has left it: seeing it again is a return."""
        with self._write() as db:
            db.execute(
                "UPDATE custody SET taken_at = ? WHERE slot_id = ? AND in_at IS NULL "
                "AND taken_at IS NULL",
                (self._clock(), slot_id),
            )

    def awaiting_takeaway(self, slot_id: str) -> str | None:
        """The serial granted from ``slot_id`` and not yet taken out of it, if any."""
        row = (
            self._db()
            .execute(
                "SELECT serial FROM custody "
                "WHERE slot_id = ? AND in_at IS NULL AND taken_at IS NULL",
                (slot_id,),
            )
            .fetchone()
        )
        return None if row is None else row["serial"]

    def custody(self, custody_id: int) -> Custody | None:
        row = self._db().execute("SELECT * FROM custody WHERE id = ?", (custody_id,)).fetchone()
        return _custody(row)

    def open_custody_of_officer(self, officer_id: str) -> Custody | None:
        row = (
            self._db()
            .execute("SELECT * FROM custody WHERE officer_id = ? AND in_at IS NULL", (officer_id,))
            .fetchone()
        )
        return _custody(row)

    def open_custody_of_device(self, serial: str) -> Custody | None:
        row = (
            self._db()
            .execute("SELECT * FROM custody WHERE serial = ? AND in_at IS NULL", (serial,))
            .fetchone()
        )
        return _custody(row)

    def custody_history(self, limit: int = 100) -> list[Custody]:
        rows = self._db().execute("SELECT * FROM custody ORDER BY id DESC LIMIT ?", (limit,))
        return [c for c in map(_custody, rows.fetchall()) if c is not None]

    # ------------------------------------------------------------------ status
    def record_status(self, serial: str, **values: Any) -> None:
        cols = [
            "battery_percent",
            "battery_health_percent",
            "battery_cycles",
            "storage_free_bytes",
            "drift_before_s",
            "drift_after_s",
            "state",
        ]
        unknown = set(values) - set(cols)
        if unknown:
            raise ValueError(f"unknown status fields {sorted(unknown)}")
        with self._write() as db:
            db.execute(
                f"INSERT INTO device_status (serial, at, {', '.join(cols)}) "
                f"VALUES (?, ?, {', '.join('?' for _ in cols)})",
                (serial, self._clock(), *[values.get(c) for c in cols]),
            )

    def status_history(self, serial: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT * FROM device_status WHERE serial = ? ORDER BY at DESC, rowid DESC LIMIT ?",
            (serial, limit),
        )
        return [dict(r) for r in rows.fetchall()]

    # ------------------------------------------------------------------ archive
    def add_archived(
        self,
        serial: str,
        recording_id: str,
        sha256: bytes,
        size: int,
        path: str,
        officer_id: str | None,
        start_ms: int,
        end_ms: int,
        audit: Callable[[], object] | None = None,
    ) -> None:
        """A recording verified in the archive (after its file was renamed into place).

        ``audit`` writes its audit entry inside this transaction: a crash leaves either
        both or the entry alone (then the next run finds the file and adds the row
        again), never a row without its entry.
        """
        with self._write() as db:
            db.execute(
                "INSERT INTO archive (serial, recording_id, sha256, size, path, officer_id, "
                "start_ms, end_ms, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (serial, recording_id, sha256, size, path, officer_id, start_ms, end_ms,
                 self._clock()),
            )  # fmt: skip
            if audit is not None:
                audit()

    def archived(self, serial: str, recording_id: str) -> dict[str, Any] | None:
        row = (
            self._db()
            .execute(
                "SELECT * FROM archive WHERE serial = ? AND recording_id = ?",
                (serial, recording_id),
            )
            .fetchone()
        )
        return None if row is None else dict(row)

    def mark_erased(
        self, serial: str, recording_id: str, audit: Callable[[], object] | None = None
    ) -> None:
        """The device copy is gone. ``audit`` writes its entry inside this transaction
        (as for :meth:`add_archived`): never an erased row without its entry."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE archive SET erased_at = ? "
                "WHERE serial = ? AND recording_id = ? AND erased_at IS NULL",
                (self._clock(), serial, recording_id),
            )
            if audit is not None and cur.rowcount:
                audit()

    def confirm_second_copy(
        self,
        serial: str,
        recording_id: str,
        where: str,
        audit: Callable[[], object] | None = None,
    ) -> None:
        """A second copy of an archived recording exists elsewhere (the unit's platform).
        ``audit`` writes its entry inside this transaction."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE archive SET second_copy_at = ?, second_copy_where = ? "
                "WHERE serial = ? AND recording_id = ?",
                (self._clock(), where, serial, recording_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"{serial}/{recording_id} is not in the archive")
            if audit is not None:
                audit()

    def attach_case(
        self,
        case_number: str,
        serial: str,
        recording_id: str,
        by: str,
        audit: Callable[[], object] | None = None,
    ) -> bool:
        """File an archived recording under a case (or event) number. The original is
        never renamed or moved: the case is a link. Returns False if already attached.
        ``audit`` writes its entry inside this transaction, only for a new link."""
        if not case_number.strip():
            raise StoreError("the case number must not be empty")
        if self.archived(serial, recording_id) is None:
            raise StoreError(f"{serial}/{recording_id} is not in the archive")
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO case_links VALUES (?, ?, ?, ?, ?)",
                (case_number.strip(), serial, recording_id, self._clock(), by),
            )
            if audit is not None and cur.rowcount == 1:
                audit()
        return cur.rowcount == 1

    def case_recordings(self, case_number: str) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT a.* FROM case_links c JOIN archive a "
            "ON a.serial = c.serial AND a.recording_id = c.recording_id "
            "WHERE c.case_number = ? ORDER BY a.start_ms",
            (case_number,),
        )
        return [dict(r) for r in rows.fetchall()]

    def archive_entries(self) -> list[dict[str, Any]]:
        rows = self._db().execute("SELECT * FROM archive ORDER BY archived_at, rowid")
        return [dict(r) for r in rows.fetchall()]

    def archive_by_start(self, serial: str | None = None) -> list[dict[str, Any]]:
        """Archive rows (of one recorder, or all) in recording order."""
        sql = "SELECT * FROM archive"
        args: tuple[Any, ...] = ()
        if serial is not None:
            sql, args = sql + " WHERE serial = ?", (serial,)
        rows = self._db().execute(sql + " ORDER BY start_ms, rowid", args)
        return [dict(r) for r in rows.fetchall()]

    def latest_archived_at(
        self, serial: str, since: float, until: float, before: float | None = None
    ) -> float | None:
        """The last ``archived_at`` of ``serial`` in [since, until] (and < ``before``)."""
        sql = (
            "SELECT max(archived_at) FROM archive WHERE serial = ? AND archived_at >= ? "
            "AND archived_at <= ?"
        )
        params: tuple[Any, ...] = (serial, since, until)
        if before is not None:
            sql, params = sql + " AND archived_at < ?", (*params, before)
        found = self._db().execute(sql, params).fetchone()[0]
        return None if found is None else float(found)

    def custody_episodes(self, serial: str | None = None) -> list[Custody]:
        """Every custody episode (of one recorder, or all), by check-out time."""
        sql = "SELECT * FROM custody"
        args: tuple[Any, ...] = ()
        if serial is not None:
            sql, args = sql + " WHERE serial = ?", (serial,)
        rows = self._db().execute(sql + " ORDER BY out_at, id", args).fetchall()
        return [c for c in map(_custody, rows) if c is not None]

    def officer_on_record(self, officer_id: str) -> bool:
        """Whether the archive or a custody episode names this officer number."""
        db = self._db()
        return bool(
            db.execute("SELECT 1 FROM archive WHERE officer_id = ?", (officer_id,)).fetchone()
            or db.execute("SELECT 1 FROM custody WHERE officer_id = ?", (officer_id,)).fetchone()
        )

    def ratio(self) -> dict[str, Any]:
        """Recorders per officer: the regulation asks for at least one per two officers."""
        db = self._db()
        officers = db.execute("SELECT COUNT(*) FROM officers WHERE disabled = 0").fetchone()[0]
        devices = db.execute("SELECT COUNT(*) FROM devices WHERE lost = 0").fetchone()[0]
        return {
            "officers": officers,
            "recorders": devices,
            "recorders_per_officer": round(devices / officers, 3) if officers else None,
        }


def _officer(row: sqlite3.Row | None) -> Officer | None:
    if row is None:
        return None
    return Officer(
        row["officer_id"],
        row["name"],
        row["unit"],
        row["badge"],
        row["role"],
        bool(row["disabled"]),
    )


def _device(row: sqlite3.Row | None) -> Device | None:
    if row is None:
        return None
    return Device(
        row["serial"],
        row["model"],
        row["firmware"],
        row["secret"],
        row["enrolled_at"],
        bool(row["lost"]),
        bool(row["maintenance"]),
        row["note"],
    )


def _custody(row: sqlite3.Row | None) -> Custody | None:
    if row is None:
        return None
    return Custody(
        row["id"],
        row["serial"],
        row["officer_id"],
        row["slot_id"],
        row["out_at"],
        row["in_at"],
        row["override_by"],
        row["override_reason"],
    )
