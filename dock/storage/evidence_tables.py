"""The evidence registers' tables in the dock database, behind typed methods.

:mod:`dock.evidence` decides; these classes only read and write rows, so the SQL for
each table is in one module (its owner, as :mod:`dock.storage.schema` records). They
share the :class:`~dock.storage.store.Store`'s per-thread connection: statements run
inside ``with table.transaction():`` commit together, with whatever the caller does in
between (an audit entry appended inside the transaction commits with its change, or a
failed append rolls the change back), exactly as the evidence code decides.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dock.storage.store import Store


class _Raced(sqlite3.Error):
    """Another process claimed some of these recordings first (rolls the claim back)."""


def dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    return [dict(r) for r in cur.fetchall()]


def one(cur: sqlite3.Cursor) -> dict[str, Any] | None:
    row = cur.fetchone()
    return None if row is None else dict(row)


class Table:
    """One owner's statements on the store's connection."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT`` (``ROLLBACK`` on any error): the methods
        called inside, on this thread, are one transaction."""
        with self._store._write():
            yield

    def _db(self) -> sqlite3.Connection:
        return self._store._db()


# --------------------------------------------------------------------------- seals


class SealTable(Table):
    """``seals``, and ``archive.bag_id`` (which package a recording is sealed in)."""

    def needs_adoption(self) -> bool:
        """No package recorded yet: ``seal`` entries an earlier version wrote (before
        this table) may name packages to adopt."""
        return self._db().execute("SELECT 1 FROM seals LIMIT 1").fetchone() is None

    def unsealed(self, serial: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM archive WHERE bag_id IS NULL"
        args: tuple[Any, ...] = ()
        if serial is not None:
            sql, args = sql + " AND serial = ?", (serial,)
        return dicts(self._db().execute(sql + " ORDER BY start_ms, rowid", args))

    def pending(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM seals WHERE state != 'audited' ORDER BY id"))

    def audited(self) -> dict[int, dict[str, Any]]:
        rows = self._db().execute("SELECT * FROM seals WHERE state = 'audited'")
        return {r["id"]: dict(r) for r in rows}

    def members(self, seal_id: int) -> list[dict[str, Any]]:
        return dicts(
            self._db().execute(
                "SELECT * FROM archive WHERE bag_id = ? ORDER BY start_ms, rowid", (seal_id,)
            )
        )

    def by_bag(self, bag: str) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM seals WHERE bag = ?", (bag,)))

    def by_id(self, seal_id: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM seals WHERE id = ?", (seal_id,)))

    def claim(
        self,
        serial: str,
        rows: list[dict[str, Any]],
        choose_bag: Callable[[], str],
        created_at: float,
    ) -> tuple[int, str] | None:
        """Write a seal's intent: its path (``choose_bag``, asked inside the transaction)
        and its members, in one transaction; None (rolled back) when another process
        sealed some of ``rows`` meanwhile."""
        try:
            with self.transaction():
                db = self._db()
                bag = choose_bag()
                cur = db.execute(
                    "INSERT INTO seals (serial, bag, state, created_at) VALUES (?, ?, 'intent', ?)",
                    (serial, bag, created_at),
                )
                seal_id = int(cur.lastrowid or 0)
                claimed = 0
                for r in rows:
                    claimed += db.execute(
                        "UPDATE archive SET bag_id = ? "
                        "WHERE serial = ? AND recording_id = ? AND bag_id IS NULL",
                        (seal_id, r["serial"], r["recording_id"]),
                    ).rowcount
                if claimed != len(rows):
                    raise _Raced()
        except _Raced:
            return None
        return seal_id, bag

    def set_made(self, seal_id: int, digest: str, oxum: str) -> None:
        with self.transaction():
            self._db().execute(
                "UPDATE seals SET state = 'made', tagmanifest_sha256 = ?, payload_oxum = ? "
                "WHERE id = ?",
                (digest, oxum, seal_id),
            )

    def set_audited(self, seal_id: int) -> None:
        with self.transaction():
            self._db().execute("UPDATE seals SET state = 'audited' WHERE id = ?", (seal_id,))

    def put_audited(self, serial: str, bag: str, digest: str, oxum: str, created_at: float) -> int:
        """A package sealed in one step (a re-seal): its row as ``audited``; its id."""
        cur = self._db().execute(
            "INSERT INTO seals (serial, bag, state, tagmanifest_sha256, payload_oxum, "
            "created_at) VALUES (?, ?, 'audited', ?, ?, ?) ON CONFLICT (bag) DO UPDATE "
            "SET state = 'audited', tagmanifest_sha256 = excluded.tagmanifest_sha256, "
            "payload_oxum = excluded.payload_oxum RETURNING id",
            (serial, bag, digest, oxum, created_at),
        )
        return int(cur.fetchone()[0])

    def move_member(self, recording_id: str, from_seal: int, to_seal: int) -> None:
        self._db().execute(
            "UPDATE archive SET bag_id = ? WHERE bag_id = ? AND recording_id = ?",
            (to_seal, from_seal, recording_id),
        )

    def adopt(
        self,
        serial: str,
        bag: str,
        digest: str | None,
        oxum: str | None,
        recording_ids: list[str],
        created_at: float,
    ) -> int | None:
        """Record a package an earlier version sealed, and claim its unsealed members,
        in one transaction; how many it claimed, None when the package was known."""
        with self.transaction():
            db = self._db()
            cur = db.execute(
                "INSERT OR IGNORE INTO seals (serial, bag, state, tagmanifest_sha256, "
                "payload_oxum, created_at) VALUES (?, ?, 'audited', ?, ?, ?)",
                (serial, bag, digest, oxum, created_at),
            )
            if cur.rowcount == 0:
                return None
            seal_id = cur.lastrowid
            return sum(
                db.execute(
                    "UPDATE archive SET bag_id = ? "
                    "WHERE serial = ? AND recording_id = ? AND bag_id IS NULL",
                    (seal_id, serial, rid),
                ).rowcount
                for rid in recording_ids
            )

    def not_sealed(self) -> list[dict[str, Any]]:
        """Archive rows in no package whose seal is audited."""
        return dicts(
            self._db().execute(
                "SELECT a.* FROM archive a LEFT JOIN seals s ON a.bag_id = s.id "
                "WHERE s.id IS NULL OR s.state != 'audited' ORDER BY a.rowid"
            )
        )


# --------------------------------------------------------------------------- holds


class HoldTable(Table):
    """``holds`` (release-only: the schema's triggers refuse anything else)."""

    def insert(self, values: dict[str, Any]) -> int:
        cols = list(values)
        cur = self._db().execute(
            f"INSERT INTO holds ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            tuple(values.values()),
        )
        return int(cur.lastrowid or 0)

    def get(self, hold_id: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM holds WHERE id = ?", (hold_id,)))

    def release(self, hold_id: int, at: float, by: str, reason: str) -> None:
        self._db().execute(
            "UPDATE holds SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ?",
            (at, by, reason, hold_id),
        )

    def every(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM holds ORDER BY id"))

    def on_recording(self, serial: str, recording_id: str) -> list[dict[str, Any]]:
        return dicts(
            self._db().execute(
                "SELECT * FROM holds WHERE scope = 'recording' AND serial = ? AND recording_id = ?",
                (serial, recording_id),
            )
        )

    def on_cases_of(self, serial: str, recording_id: str) -> list[dict[str, Any]]:
        """Holds on a case the recording is attached to."""
        return dicts(
            self._db().execute(
                "SELECT * FROM holds WHERE scope = 'case' AND case_number IN "
                "(SELECT case_number FROM case_links WHERE serial = ? AND recording_id = ?)",
                (serial, recording_id),
            )
        )

    def on_other_scopes(self) -> list[dict[str, Any]]:
        """Holds on an officer, an episode, or a scope a later version knows."""
        return dicts(
            self._db().execute("SELECT * FROM holds WHERE scope NOT IN ('recording', 'case')")
        )


# --------------------------------------------------------------------------- purges


class PurgeTable(Table):
    """``purges`` (the permanent record), ``purge_batches`` and ``purge_members``."""

    def is_purged(self, serial: str, recording_id: str) -> bool:
        row = self._db().execute(
            "SELECT 1 FROM purges WHERE serial = ? AND recording_id = ?", (serial, recording_id)
        )
        return row.fetchone() is not None

    def batch_of(self, serial: str, recording_id: str) -> dict[str, Any] | None:
        """The batch (token, state) a recording is a member of, if any."""
        return one(
            self._db().execute(
                "SELECT b.token, b.state FROM purge_members m JOIN purge_batches b "
                "ON b.id = m.batch WHERE m.serial = ? AND m.recording_id = ?",
                (serial, recording_id),
            )
        )

    def records(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM purges ORDER BY purged_at, rowid"))

    def gone_or_going(self) -> set[tuple[str, str]]:
        db = self._db()
        purged = db.execute("SELECT serial, recording_id FROM purges").fetchall()
        going = db.execute("SELECT serial, recording_id FROM purge_members").fetchall()
        return {(r[0], r[1]) for r in [*purged, *going]}

    def unfinished(self) -> list[dict[str, Any]]:
        return dicts(
            self._db().execute("SELECT * FROM purge_batches WHERE state != 'done' ORDER BY id")
        )

    def batched_seals(self) -> set[int]:
        rows = self._db().execute("SELECT seal_id FROM purge_batches")
        return {r[0] for r in rows if r[0] is not None}

    def batch(self, batch_id: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM purge_batches WHERE id = ?", (batch_id,)))

    def add_batch(self, values: dict[str, Any]) -> int:
        """A batch in state ``intent`` (call inside :meth:`transaction`)."""
        cols = [*values, "state"]
        cur = self._db().execute(
            f"INSERT INTO purge_batches ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' for _ in values)}, 'intent')",
            tuple(values.values()),
        )
        return int(cur.lastrowid or 0)

    def add_member(self, batch_id: int, serial: str, recording_id: str, reason: str) -> None:
        self._db().execute(
            "INSERT INTO purge_members (batch, serial, recording_id, reason) VALUES (?, ?, ?, ?)",
            (batch_id, serial, recording_id, reason),
        )

    def members(self, batch_id: int) -> list[dict[str, Any]]:
        """A batch's recordings: archive rows with ``purge_reason``."""
        return dicts(
            self._db().execute(
                "SELECT a.*, m.reason AS purge_reason FROM purge_members m JOIN archive a "
                "ON a.serial = m.serial AND a.recording_id = m.recording_id "
                "WHERE m.batch = ? ORDER BY a.start_ms, a.rowid",
                (batch_id,),
            )
        )

    def set_resealed(self, batch_id: int) -> None:
        with self.transaction():
            self._db().execute(
                "UPDATE purge_batches SET state = 'resealed' WHERE id = ?", (batch_id,)
            )

    def add_record(self, m: dict[str, Any], purged_at: float) -> None:
        """The permanent record of one purged recording (once; call inside a transaction)."""
        self._db().execute(
            "INSERT OR IGNORE INTO purges (serial, recording_id, sha256, path, purged_at, "
            "reason) VALUES (?, ?, ?, ?, ?, ?)",
            (m["serial"], m["recording_id"], m["sha256"], m["path"], purged_at,
             m["purge_reason"]),
        )  # fmt: skip

    def set_done(self, batch_id: int, done_at: float) -> None:
        self._db().execute(
            "UPDATE purge_batches SET state = 'done', done_at = ? WHERE id = ?",
            (done_at, batch_id),
        )

    def left_partial(self) -> list[dict[str, Any]]:
        """Audited packages with purged members that no batch replaced."""
        return dicts(
            self._db().execute(
                "SELECT DISTINCT s.* FROM seals s JOIN archive a ON a.bag_id = s.id "
                "JOIN purges p ON p.serial = a.serial AND p.recording_id = a.recording_id "
                "WHERE s.state = 'audited' AND s.id NOT IN "
                "(SELECT seal_id FROM purge_batches WHERE seal_id IS NOT NULL) ORDER BY s.id"
            )
        )

    def purged_members(self, seal_id: int) -> list[dict[str, Any]]:
        """A package's purged recordings: archive rows with ``purged_at`` and ``reason``."""
        return dicts(
            self._db().execute(
                "SELECT a.*, p.purged_at, p.reason FROM archive a JOIN purges p "
                "ON p.serial = a.serial AND p.recording_id = a.recording_id "
                "WHERE a.bag_id = ? ORDER BY a.start_ms, a.rowid",
                (seal_id,),
            )
        )
