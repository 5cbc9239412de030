"""The dock's database: officers, enrolled devices, custody, status history.

Real SQLite on disk in WAL mode with ``synchronous=FULL`` (custody must survive a
power cut the moment it is recorded), ``busy_timeout`` for the daemon and the CLI
sharing the file, ``BEGIN IMMEDIATE`` for every write, and ``quick_check`` at
open. The schema (:mod:`dock.storage.schema`, applied here at open) itself enforces
"one device per officer, one officer per device": two partial unique indexes over open
custody rows. This class owns the tables it reads and writes (the schema module names
each table's owner), through its parts: :mod:`.store_base` (the file and its per-thread
connections), :mod:`.store_officers` (officers, PIN rules and lockout) and
:mod:`.store_archive` (archive and cases); the evidence registers use
:mod:`dock.storage.evidence_tables`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dock.storage.stats_tables import CARRYING_ROLES
from dock.storage.store_archive import ArchiveRows
from dock.storage.store_base import StoreError
from dock.storage.store_officers import (
    PIN_SCRYPT,
    PIN_TRIES,
    Officer,
    OfficerRows,
    PinCheck,
    WebToken,
    hash_pin,
    pin_problem,
)

__all__ = [
    "PIN_SCRYPT",
    "PIN_TRIES",
    "Custody",
    "Device",
    "Officer",
    "PinCheck",
    "Store",
    "StoreError",
    "WebToken",
    "hash_pin",
    "pin_problem",
]


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
    #: When the recorder's next maintenance is due (000 §14.1), None: none set.
    maintenance_due: float | None = None


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
    #: Why a grant ended before its recorder was taken ("expired", "cancelled"), else None.
    withdrawn: str | None = None


class Store(OfficerRows, ArchiveRows):
    """Thread-safe: one connection per thread, all on the same file. Officers and PINs
    are in :class:`OfficerRows`, the archive and cases in :class:`ArchiveRows`."""

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

    def open_grants(self) -> list[Custody]:
        """Grants whose recorder has not left its slot yet, oldest first."""
        rows = self._db().execute(
            "SELECT * FROM custody WHERE in_at IS NULL AND taken_at IS NULL ORDER BY out_at, id"
        )
        return [c for c in map(_custody, rows.fetchall()) if c is not None]

    def withdraw_grant(self, custody_id: int, why: str) -> Custody | None:
        """End a grant whose recorder never left its slot (``why``: "expired" or
        "cancelled"): closed in its own slot and marked, so it is no custody episode.
        None when it is no longer an open, untaken grant (taken or closed meanwhile)."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE custody SET in_at = ?, in_slot = slot_id, withdrawn = ? "
                "WHERE id = ? AND in_at IS NULL AND taken_at IS NULL",
                (self._clock(), why, custody_id),
            )
            if cur.rowcount != 1:
                return None
        return self.custody(custody_id)

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
            "battery_temp_c",
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

    # ------------------------------------------------------------------ across tables
    def custody_episodes(self, serial: str | None = None) -> list[Custody]:
        """Every custody episode (of one recorder, or all), by check-out time; a grant
        withdrawn before its recorder left the dock is none."""
        sql = "SELECT * FROM custody WHERE withdrawn IS NULL"
        args: tuple[Any, ...] = ()
        if serial is not None:
            sql, args = sql + " AND serial = ?", (serial,)
        rows = self._db().execute(sql + " ORDER BY out_at, id", args).fetchall()
        return [c for c in map(_custody, rows) if c is not None]

    def last_closed_episode(self, serial: str) -> Custody | None:
        """The recorder's latest closed custody episode (the last of
        :meth:`custody_episodes` with ``in_at`` set): one row, however long its history."""
        row = (
            self._db()
            .execute(
                "SELECT * FROM custody WHERE withdrawn IS NULL AND serial = ? "
                "AND in_at IS NOT NULL ORDER BY out_at DESC, id DESC LIMIT 1",
                (serial,),
            )
            .fetchone()
        )
        return _custody(row)

    def away_episodes(self) -> list[Custody]:
        """Custody episodes still open whose recorder has left its slot (a grant still
        waiting in its slot is none), by check-out time."""
        rows = self._db().execute(
            "SELECT * FROM custody WHERE in_at IS NULL AND taken_at IS NOT NULL "
            "AND withdrawn IS NULL ORDER BY out_at, id"
        )
        return [c for c in map(_custody, rows.fetchall()) if c is not None]

    def officer_on_record(self, officer_id: str) -> bool:
        """Whether the archive or a custody episode names this officer number."""
        db = self._db()
        return bool(
            db.execute("SELECT 1 FROM archive WHERE officer_id = ?", (officer_id,)).fetchone()
            or db.execute("SELECT 1 FROM custody WHERE officer_id = ?", (officer_id,)).fetchone()
        )

    def ratio(self) -> dict[str, Any]:
        """Recorders on the books (not lost) per enabled person who carries one (an
        officer or a supervisor; maintenance, admins, keepers and oversight carry none):
        001 art.18 asks for at least one per two officers."""
        db = self._db()
        roles = ", ".join("?" for _ in CARRYING_ROLES)
        officers = db.execute(
            f"SELECT COUNT(*) FROM officers WHERE disabled = 0 AND role IN ({roles})",
            CARRYING_ROLES,
        ).fetchone()[0]
        devices = db.execute("SELECT COUNT(*) FROM devices WHERE lost = 0").fetchone()[0]
        return {
            "officers": officers,
            "recorders": devices,
            "recorders_per_officer": round(devices / officers, 3) if officers else None,
        }


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
        row["maintenance_due"] if "maintenance_due" in set(row.keys()) else None,
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
        row["withdrawn"],
    )
