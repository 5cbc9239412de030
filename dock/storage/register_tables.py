"""The registers people keep about footage: explanation items for gaps in recording,
and access requests with the access register. Typed rows for :mod:`dock.evidence.gaps`
and :mod:`dock.evidence.access`; each table's SQL is here and nowhere else (its owner,
as :mod:`dock.storage.schema` records). Transactions as in
:mod:`dock.storage.evidence_tables`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dock.storage.evidence_tables import Table, dicts, one

# --------------------------------------------------------------------------- gaps


class GapTable(Table):
    """``explanation_items`` and ``event_log_reads``."""

    def open_item(self, values: dict[str, Any]) -> int | None:
        """A new item; None when the register has it already (same serial, kind,
        start and recording)."""
        cols = list(values)
        cur = self._db().execute(
            f"INSERT INTO explanation_items ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' for _ in cols)}) "
            "ON CONFLICT (serial, kind, start_ms, recording_id) DO NOTHING",
            tuple(values.values()),
        )
        return cur.lastrowid if cur.rowcount == 1 else None

    def item(self, item_id: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM explanation_items WHERE id = ?", (item_id,)))

    def items(self, officer_id: str | None, open_only: bool) -> list[dict[str, Any]]:
        where, args = [], []
        if officer_id is not None:
            where.append("officer_id = ?")
            args.append(officer_id)
        if open_only:
            where.append("closed_at IS NULL")
        sql = "SELECT * FROM explanation_items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return dicts(self._db().execute(sql + " ORDER BY id", args))

    def close(self, item_id: int, at: float, by: str, explanation: str) -> None:
        self._db().execute(
            "UPDATE explanation_items SET closed_at = ?, closed_by = ?, explanation = ? "
            "WHERE id = ? AND closed_at IS NULL",
            (at, by, explanation, item_id),
        )

    def set_account(self, item_id: int, account: str, at: float) -> None:
        self._db().execute(
            "UPDATE explanation_items SET account = ?, account_at = ? "
            "WHERE id = ? AND account IS NULL AND closed_at IS NULL",
            (account, at, item_id),
        )

    # The three steps (dock/domain/explanations.py decides the order; each UPDATE also
    # holds to it, so two people acting at once cannot both take a step).
    def accept(self, item_id: int, at: float, by: str, review: str) -> bool:
        """A supervisor accepted the account: reviewed, waiting to be filed."""
        cur = self._db().execute(
            "UPDATE explanation_items SET reviewed_at = ?, reviewed_by = ?, explanation = ? "
            "WHERE id = ? AND account IS NOT NULL AND reviewed_at IS NULL AND closed_at IS NULL",
            (at, by, review, item_id),
        )
        return cur.rowcount == 1

    def return_account(self, item_id: int, at: float, by: str, reason: str) -> bool:
        """A supervisor returned the account to its officer: the item waits for a new
        one (the returned text stays in the audit log)."""
        cur = self._db().execute(
            "UPDATE explanation_items SET returned_at = ?, returned_by = ?, return_reason = ?, "
            "account = NULL, account_at = NULL WHERE id = ? AND account IS NOT NULL "
            "AND reviewed_at IS NULL AND closed_at IS NULL",
            (at, by, reason, item_id),
        )
        return cur.rowcount == 1

    def file(self, item_id: int, at: float, by: str, note: str) -> bool:
        """The keeper filed a reviewed item: done (``closed_at`` too)."""
        cur = self._db().execute(
            "UPDATE explanation_items SET filed_at = ?, filed_by = ?, filing = ?, "
            "closed_at = ?, closed_by = ? WHERE id = ? AND reviewed_at IS NOT NULL "
            "AND filed_at IS NULL AND closed_at IS NULL",
            (at, by, note, at, by, item_id),
        )
        return cur.rowcount == 1

    def set_alerted(self, item_id: int, at: float) -> bool:
        """Note the at-once alert of an item; False when it was raised before."""
        cur = self._db().execute(
            "UPDATE explanation_items SET alerted_at = ? WHERE id = ? AND alerted_at IS NULL",
            (at, item_id),
        )
        return cur.rowcount == 1

    def read_since(self, serial: str, custody_id: int) -> int | None:
        """Where this episode's own earlier scan started reading the event log."""
        row = self._db().execute(
            "SELECT since FROM event_log_reads WHERE serial = ? AND custody_id = ?",
            (serial, custody_id),
        )
        found = row.fetchone()
        return None if found is None else int(found["since"])

    def last_read_end(self, serial: str) -> int | None:
        """Where the device's last scan stopped reading."""
        row = self._db().execute(
            "SELECT next FROM event_log_reads WHERE serial = ? ORDER BY read_at DESC, rowid DESC "
            "LIMIT 1",
            (serial,),
        )
        found = row.fetchone()
        return None if found is None else int(found["next"])

    def note_read(
        self, serial: str, custody_id: int, since: int, next_: int, complete: bool, at: float
    ) -> None:
        with self.transaction():
            self._db().execute(
                "INSERT INTO event_log_reads (serial, custody_id, since, next, complete, read_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial, custody_id) DO UPDATE SET "
                "next = max(next, excluded.next), complete = excluded.complete, "
                "read_at = excluded.read_at",
                (serial, custody_id, since, next_, int(complete), at),
            )


# --------------------------------------------------------------------------- access


class AccessTable(Table):
    """``access_requests`` and ``access_log`` (append-only by trigger)."""

    def request(self, request_id: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM access_requests WHERE id = ?", (request_id,)))

    def requests(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM access_requests ORDER BY id"))

    def log(self, request_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM access_log"
        params: tuple[Any, ...] = ()
        if request_id is not None:
            sql, params = sql + " WHERE request_id = ?", (request_id,)
        return dicts(self._db().execute(sql + " ORDER BY id", params))

    def add_request(
        self,
        requester: str,
        purpose: str,
        recordings: str,
        kind: str,
        at: float,
        *,
        extractor: str | None = None,
        direct_until: float | None = None,
        audit: Callable[[int], object] | None = None,
    ) -> int:
        """A new request; ``direct_until``: a supervisory body's direct access (basis
        'oversight', in force at once until then). ``audit(id)`` runs inside the
        transaction: a failed append leaves no request."""
        with self.transaction():
            if direct_until is None:
                cur = self._db().execute(
                    "INSERT INTO access_requests (requester, purpose, recordings, kind, "
                    "requested_at, extractor) VALUES (?, ?, ?, ?, ?, ?)",
                    (requester, purpose, recordings, kind, at, extractor),
                )
            else:
                cur = self._db().execute(
                    "INSERT INTO access_requests (requester, purpose, recordings, kind, "
                    "requested_at, extractor, basis, approved_by, approved_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'oversight', ?, ?, ?)",
                    (requester, purpose, recordings, kind, at, extractor, requester, at,
                     direct_until),
                )  # fmt: skip
            request_id = int(cur.lastrowid or 0)
            if audit is not None:
                audit(request_id)
        return request_id

    def approve(self, request_id: int, by: str, at: float, expires_at: float) -> bool:
        """Approve a request still undecided; False when someone decided it first."""
        with self.transaction():
            cur = self._db().execute(
                "UPDATE access_requests SET approved_by = ?, approved_at = ?, expires_at = ? "
                "WHERE id = ? AND approved_by IS NULL AND refused_reason IS NULL",
                (by, at, expires_at, request_id),
            )
        return cur.rowcount == 1

    def refuse(self, request_id: int, by: str, at: float, reason: str) -> bool:
        """Refuse a request still undecided; False when someone decided it first."""
        with self.transaction():
            cur = self._db().execute(
                "UPDATE access_requests SET refused_by = ?, refused_at = ?, refused_reason = ? "
                "WHERE id = ? AND approved_by IS NULL AND refused_reason IS NULL",
                (by, at, reason, request_id),
            )
        return cur.rowcount == 1

    def add_entry(
        self, request_id: int, who: str, what: str, action: str, at: float, place: str
    ) -> int:
        with self.transaction():
            cur = self._db().execute(
                "INSERT INTO access_log (request_id, who, what, action, at, place) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (request_id, who, what, action, at, place),
            )
        return int(cur.lastrowid or 0)

    def add_entries(
        self,
        request_id: int,
        who: str,
        whats: list[str],
        action: str,
        at: float,
        place: str,
        audit: Callable[[str, int], object],
    ) -> list[int]:
        """One register entry per recording and ``audit(what, entry)`` for each, in ONE
        transaction, committed when this returns (a failed append registers nothing)."""
        ids = []
        with self.transaction():
            for what in whats:
                cur = self._db().execute(
                    "INSERT INTO access_log (request_id, who, what, action, at, place) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (request_id, who, what, action, at, place),
                )
                ids.append(int(cur.lastrowid or 0))
                audit(what, ids[-1])
        return ids


class ConfidentialTable(Table):
    """``confidential_marks``: released, never deleted."""

    def add(
        self,
        values: dict[str, Any],
        audit: Callable[[int], object],
    ) -> int:
        cols = list(values)
        with self.transaction():
            cur = self._db().execute(
                f"INSERT INTO confidential_marks ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})",
                tuple(values.values()),
            )
            mark_id = int(cur.lastrowid or 0)
            audit(mark_id)
        return mark_id

    def mark(self, mark_id: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM confidential_marks WHERE id = ?", (mark_id,)))

    def marks(self, active_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM confidential_marks"
        if active_only:
            sql += " WHERE released_at IS NULL"
        return dicts(self._db().execute(sql + " ORDER BY id"))

    def active_for(self, serial: str, recording_id: str) -> list[dict[str, Any]]:
        """The marks in force on a recording: its own, and those of every case it is in."""
        return dicts(
            self._db().execute(
                "SELECT * FROM confidential_marks WHERE released_at IS NULL AND ("
                "(serial = ? AND recording_id = ?) OR case_number IN ("
                "SELECT case_number FROM case_links WHERE serial = ? AND recording_id = ?)"
                ") ORDER BY id",
                (serial, recording_id, serial, recording_id),
            )
        )

    def release(
        self, mark_id: int, by: str, at: float, reason: str, audit: Callable[[], object]
    ) -> bool:
        """Release a mark still in force; False when it was released already."""
        with self.transaction():
            cur = self._db().execute(
                "UPDATE confidential_marks SET released_by = ?, released_at = ?, "
                "release_reason = ? WHERE id = ? AND released_at IS NULL",
                (by, at, reason, mark_id),
            )
            if cur.rowcount == 1:
                audit()
        return cur.rowcount == 1
