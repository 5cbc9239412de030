"""The dock's outbox: events for headquarters, on disk until the broker acknowledges them.

paho-mqtt keeps unacknowledged messages in memory only, so a restart would lose them.
Here an event is written (synchronous=FULL) before it is published and marked sent only
on PUBACK; a restart republishes whatever was not acknowledged, and headquarters drops
the duplicates by (boot, seq). Events are fed from the audit log under a cursor kept in
the same transaction as the rows, so each audit entry becomes exactly one event.

Bound: events are never dropped. Sent events are kept ``KEEP_SENT_S`` for ``resend``
requests, then pruned. Health is not stored here (only the newest matters).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from common.sqlite_schema import Step, migrate, require_tables, run_all, statements
from common.sqlite_schema import schema_state as read_schema_state
from dock.reporting.events import AuditView
from dock.storage.sqlite_tx import immediate
from mqtt_contract.contract import ContractError, Kind, encode, parse_utc, utc

log = logging.getLogger("dock.outbox")

KEEP_SENT_S = 30 * 86400.0
#: Above this many unsent events the dock warns (it still keeps them all).
WARN_PENDING = 100_000
#: Hashes of fed audit entries kept (the newest): how far back a cut is located exactly.
KEEP_FED = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    payload BLOB NOT NULL,
    queued REAL NOT NULL,
    sent REAL,
    UNIQUE (boot, seq)
);
CREATE INDEX IF NOT EXISTS events_unsent ON events (id) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS commands_seen (id TEXT PRIMARY KEY, seen REAL NOT NULL);
-- The last seq given out in each boot: kept apart from the events, which are pruned,
-- so a seq is never given out twice in one boot however long the dock runs.
CREATE TABLE IF NOT EXISTS boots (
    boot TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, first_queued REAL NOT NULL
);
-- The hash of each audit entry fed (the newest KEEP_FED): if the log goes backwards,
-- where it still agrees with what was reported is found here.
CREATE TABLE IF NOT EXISTS fed (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL) WITHOUT ROWID;
"""

#: The outbox's schema version (``PRAGMA user_version``): 1, the tables above, which the
#: first releases made without a version. A table added later goes in ``_SCHEMA``
#: (``IF NOT EXISTS``, made at every open); anything else is a numbered step here.
SCHEMA_VERSION = 1


def _version_1(db: sqlite3.Connection) -> None:
    """Records the version once the tables are today's (a new outbox's just were)."""
    require_tables(db, run_all(*statements(_SCHEMA)))


MIGRATIONS: tuple[tuple[int, Step], ...] = ((1, _version_1),)


def schema_state(path: str) -> tuple[int | None, int]:
    """(the outbox's schema version, this code's), read without writing (``dock check``)."""
    return read_schema_state(path, SCHEMA_VERSION)


@dataclass(frozen=True)
class Pending:
    id: int
    type: str
    payload: bytes


class Outbox:
    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        today = run_all(*statements(_SCHEMA))  # made at every open, as before versions
        try:
            migrate(self._db, path, SCHEMA_VERSION, MIGRATIONS, every_open=today)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db)

    # --- cursors into the audit log ---------------------------------------------

    def cursor(self, name: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def mark(self, name: str) -> str | None:
        """A text kept beside the cursors: the hash of the entry (``audit_hash``) and the
        head of the checkpoint (``checkpoint_head``) each cursor stands on."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def start_cursors(
        self,
        entry_head: int,
        checkpoint_head: int,
        entry_hash: str | None = None,
        checkpoint_hash: str | None = None,
    ) -> None:
        """First start of reporting: events begin now, not with years of old audit entries."""
        start = (
            ("audit", entry_head, "audit_hash", entry_hash),
            ("checkpoint", checkpoint_head, "checkpoint_head", checkpoint_hash),
        )
        with self._write() as db:
            for name, value, mark, text in start:
                if db.execute("SELECT 1 FROM meta WHERE key = ?", (name,)).fetchone():
                    continue  # started already (by another reporter): it stays
                db.execute("INSERT INTO meta VALUES (?, ?)", (name, str(value)))
                if text is not None:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (mark, text))
                    if name == "audit" and value:  # where reporting starts, as it was
                        db.execute("INSERT OR REPLACE INTO fed VALUES (?, ?)", (value, text))

    def enqueue(
        self,
        boot: str,
        items: Iterable[tuple[str, AuditView, dict[str, Any], bool]],
        cursors: dict[str, int | str],
        expected: dict[str, int | None] | None = None,
        fed: Iterable[tuple[int, str]] = (),
        forget_fed_after: int | None = None,
    ) -> int | None:
        """Queue events and move the cursors (and the hashes kept with them) in one
        transaction; returns how many.

        ``fed``: (seq, hash) of the audit entries these events were read from (all of
        them, with or without an event); ``forget_fed_after``: drop the hashes kept for
        entries after this seq (the log went back there).

        ``items``: (event type, source entry, event data, is an audit entry).
        ``expected``: the cursors these items were read after; if another process moved
        them meanwhile nothing is queued (the entries would be queued twice) and the
        answer is None.
        """
        count = 0
        with self._write() as db:
            for name, value in (expected or {}).items():
                row = db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
                if (None if row is None else int(row[0])) != value:
                    return None
            row = db.execute("SELECT last_seq FROM boots WHERE boot = ?", (boot,)).fetchone()
            seq = int(row[0]) if row is not None else 0
            now = self._clock()
            for etype, entry, data, is_entry in items:
                seq += 1
                body: dict[str, Any] = {
                    "type": etype,
                    "boot": boot,
                    "seq": seq,
                    "time": _wire_time(entry.time, now),
                    "actor": entry.actor,
                    "subject": entry.subject,
                    "data": data,
                }
                if is_entry:
                    body["audit_seq"] = entry.seq
                db.execute(
                    "INSERT INTO events (boot, seq, type, payload, queued) VALUES (?, ?, ?, ?, ?)",
                    (boot, seq, str(etype), encode(Kind.EVENT, body), now),
                )
                count += 1
            for name, cursor in cursors.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, str(cursor)))
            if forget_fed_after is not None:
                db.execute("DELETE FROM fed WHERE seq > ?", (forget_fed_after,))
            db.executemany("INSERT OR REPLACE INTO fed VALUES (?, ?)", fed)
            if count:
                db.execute(
                    "INSERT INTO boots VALUES (?, ?, ?) "
                    "ON CONFLICT (boot) DO UPDATE SET last_seq = excluded.last_seq",
                    (boot, seq, now),
                )
        return count

    def fed_hash(self, seq: int) -> str | None:
        """The hash the audit entry ``seq`` had when it was fed, if still kept."""
        row = self._db.execute("SELECT hash FROM fed WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def oldest_fed(self) -> int | None:
        row = self._db.execute("SELECT min(seq) FROM fed").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # --- publishing -------------------------------------------------------------

    def pending(self, limit: int, after_id: int = 0) -> list[Pending]:
        rows = self._db.execute(
            "SELECT id, type, payload FROM events WHERE sent IS NULL AND id > ? "
            "ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [Pending(int(r[0]), r[1], bytes(r[2])) for r in rows]

    def mark_sent(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        now = self._clock()
        with self._write() as db:
            db.executemany("UPDATE events SET sent = ? WHERE id = ?", [(now, i) for i in ids])

    def count_pending(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events WHERE sent IS NULL").fetchone()[0])

    def summary(self) -> dict[str, Any]:
        """For people: how far behind reporting is (``dock outbox``)."""
        db = self._db
        pending, oldest = db.execute(
            "SELECT count(*), min(queued) FROM events WHERE sent IS NULL"
        ).fetchone()
        kept, last_sent = db.execute(
            "SELECT count(*), max(sent) FROM events WHERE sent IS NOT NULL"
        ).fetchone()
        return {
            "pending": int(pending),
            "oldest_pending": utc(oldest) if oldest is not None else None,
            "sent_kept": int(kept),
            "last_sent": utc(last_sent) if last_sent is not None else None,
            "last_event": self.last_event(),
        }

    def last_event(self) -> dict[str, Any] | None:
        """The newest event queued (also once pruned): the last seq of the latest boot."""
        latest = self.recent_boots(1)
        return latest[0] if latest else None

    def recent_boots(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last seq of the latest boots: headquarters notices events of an earlier
        boot that never arrived (lost at the end of that boot) from these. Newest first by
        rowid (the order boots first queued), which a clock set back cannot reorder."""
        rows = self._db.execute(
            "SELECT boot, last_seq FROM boots ORDER BY rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [{"boot": b, "seq": int(s)} for b, s in rows]

    def resend(self, boot: str, from_seq: int, to_seq: int) -> int:
        """Queue already-sent events again (headquarters missed them); returns how many."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE events SET sent = NULL WHERE boot = ? AND seq BETWEEN ? AND ?",
                (boot, from_seq, to_seq),
            )
            return cur.rowcount

    def prune(self) -> int:
        cutoff = self._clock() - KEEP_SENT_S
        with self._write() as db:
            n = db.execute("DELETE FROM events WHERE sent IS NOT NULL AND sent < ?", (cutoff,))
            db.execute("DELETE FROM commands_seen WHERE seen < ?", (cutoff,))
            (newest,) = db.execute("SELECT max(seq) FROM fed").fetchone()
            if (
                newest is not None
                and db.execute("DELETE FROM fed WHERE seq <= ?", (newest - KEEP_FED,)).rowcount
            ):
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('fed_pruned', ?)",
                    (str(newest - KEEP_FED),),
                )
            # boots rows stay: one small row per start of the dock, and a running boot's
            # counter must never go (its seq would start again at 1).
            return n.rowcount

    # --- commands from headquarters ---------------------------------------------

    def first_sight(self, command_id: str) -> bool:
        """Remember a command id; False if it was seen before (a replay)."""
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO commands_seen VALUES (?, ?)", (command_id, self._clock())
            )
            return cur.rowcount == 1


def _wire_time(audit_time: str, fallback: float) -> str:
    """The audit log's UTC time in the contract's format. They agree; this guards it, as
    one unreadable time would otherwise stop every later event at ``encode``."""
    try:
        return utc(parse_utc(audit_time))
    except ContractError:
        return utc(fallback)
