"""The archive and case tables of the dock database: what was offloaded, erased, copied
elsewhere and filed under a case.

A part of :class:`~dock.storage.store.Store`, apart from officers, devices and custody;
:mod:`dock.evidence` decides, these methods only read and write rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dock.storage.store_base import StoreBase, StoreError


class ArchiveRows(StoreBase):
    """``archive`` and ``case_links``."""

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
        case_number: str | None = None,
        hash_taken: str | None = None,
    ) -> None:
        """A recording verified in the archive (after its file was renamed into place).
        ``case_number``: the case its custody episode is filed under; linked in the same
        transaction (``case_links``, attached by ``dock``).

        ``audit`` writes its audit entry inside this transaction: a crash leaves either
        both or the entry alone (then the next run finds the file and adds the row
        again), never a row without its entry.
        """
        with self._write() as db:
            db.execute(
                "INSERT INTO archive (serial, recording_id, sha256, size, path, officer_id, "
                "start_ms, end_ms, archived_at, hash_taken) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (serial, recording_id, sha256, size, path, officer_id, start_ms, end_ms,
                 self._clock(), hash_taken),
            )  # fmt: skip
            if case_number:
                db.execute(
                    "INSERT OR IGNORE INTO case_links VALUES (?, ?, ?, ?, ?)",
                    (case_number, serial, recording_id, self._clock(), "dock"),
                )
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
            self._case_open_for_attach(db, case_number.strip(), by)
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

    # ------------------------------------------------------------------ case files

    def _case_open_for_attach(self, db: Any, case_number: str, by: str) -> None:
        """A case attached to must be open: made (open) when it has no file yet."""
        row = db.execute(
            "SELECT closed_at FROM cases WHERE case_number = ?", (case_number,)
        ).fetchone()
        if row is not None and row[0] is not None:
            raise StoreError(f"case {case_number} is closed: reopen it first")
        if row is None:
            db.execute(
                "INSERT INTO cases (case_number, opened_at, opened_by) VALUES (?, ?, ?)",
                (case_number, self._clock(), by),
            )

    def case_file(self, case_number: str) -> dict[str, Any] | None:
        """The case's file (cause, party, open or closed); a case number attached to
        before case files were kept, and never closed, is open: ``opened_at`` its first
        link. None when the number is unknown."""
        db = self._db()
        row = db.execute("SELECT * FROM cases WHERE case_number = ?", (case_number,)).fetchone()
        if row is not None:
            return dict(row)
        first = db.execute(
            "SELECT min(attached_at), attached_by FROM case_links WHERE case_number = ?",
            (case_number,),
        ).fetchone()
        if first[0] is None:
            return None
        return {
            "case_number": case_number, "cause": "", "party": "", "opened_at": first[0],
            "opened_by": first[1], "closed_at": None, "closed_by": None,
        }  # fmt: skip

    def open_case(
        self,
        case_number: str,
        cause: str,
        party: str,
        by: str,
        audit: Callable[[], object] | None = None,
    ) -> bool:
        """Open (or reopen) a case's file with its cause and party (either left as it
        was when empty). Returns True when it was not open before. ``audit`` writes its
        entry inside this transaction."""
        with self._write() as db:
            row = db.execute(
                "SELECT closed_at FROM cases WHERE case_number = ?", (case_number,)
            ).fetchone()
            if row is None:
                linked = db.execute(
                    "SELECT min(attached_at) FROM case_links WHERE case_number = ?",
                    (case_number,),
                ).fetchone()[0]
                db.execute(
                    "INSERT INTO cases (case_number, cause, party, opened_at, opened_by) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (case_number, cause, party, linked or self._clock(), by),
                )
                new = linked is None
            else:
                new = row[0] is not None
                db.execute(
                    "UPDATE cases SET cause = CASE WHEN ? = '' THEN cause ELSE ? END, "
                    "party = CASE WHEN ? = '' THEN party ELSE ? END, "
                    "closed_at = NULL, closed_by = NULL WHERE case_number = ?",
                    (cause, cause, party, party, case_number),
                )
            if audit is not None:
                audit()
        return new

    def close_case(
        self, case_number: str, by: str, audit: Callable[[], object] | None = None
    ) -> None:
        """Close an open case: from now its footage follows ordinary retention again."""
        with self._write() as db:
            row = db.execute(
                "SELECT closed_at FROM cases WHERE case_number = ?", (case_number,)
            ).fetchone()
            linked = db.execute(
                "SELECT min(attached_at), min(attached_by) FROM case_links WHERE case_number = ?",
                (case_number,),
            ).fetchone()
            if row is None and linked[0] is None:
                raise StoreError(f"no case {case_number}")
            if row is not None and row[0] is not None:
                raise StoreError(f"case {case_number} is already closed")
            if row is None:  # attached to before case files were kept
                db.execute(
                    "INSERT INTO cases (case_number, opened_at, opened_by) VALUES (?, ?, ?)",
                    (case_number, linked[0], linked[1]),
                )
            db.execute(
                "UPDATE cases SET closed_at = ?, closed_by = ? WHERE case_number = ?",
                (self._clock(), by, case_number),
            )
            if audit is not None:
                audit()

    def cases_of_recording(self, serial: str, recording_id: str) -> list[dict[str, Any]]:
        """Every case the recording is attached to, with its file's ``closed_at`` (None:
        open, also for a case attached to before case files were kept)."""
        rows = self._db().execute(
            "SELECT l.case_number, c.closed_at FROM case_links l "
            "LEFT JOIN cases c ON c.case_number = l.case_number "
            "WHERE l.serial = ? AND l.recording_id = ? ORDER BY l.case_number",
            (serial, recording_id),
        )
        return [dict(r) for r in rows.fetchall()]

    def attach_episode(
        self,
        case_number: str,
        custody_id: int,
        by: str,
        audit: Callable[[], object] | None = None,
    ) -> bool:
        """File a custody episode under a case before its footage is offloaded. Returns
        False if already filed. ``audit`` writes its entry inside this transaction."""
        with self._write() as db:
            self._case_open_for_attach(db, case_number, by)
            cur = db.execute(
                "INSERT OR IGNORE INTO case_episodes VALUES (?, ?, ?, ?)",
                (case_number, custody_id, self._clock(), by),
            )
            if audit is not None and cur.rowcount == 1:
                audit()
        return cur.rowcount == 1

    def episode_case(self, custody_id: int) -> dict[str, Any] | None:
        """The case an episode was first filed under (its number and cause), or None."""
        row = (
            self._db()
            .execute(
                "SELECT e.case_number, coalesce(c.cause, '') AS cause FROM case_episodes e "
                "LEFT JOIN cases c ON c.case_number = e.case_number WHERE e.custody_id = ? "
                "ORDER BY e.attached_at, e.case_number LIMIT 1",
                (custody_id,),
            )
            .fetchone()
        )
        return None if row is None else dict(row)

    def case_files(self, limit: int = 500) -> list[dict[str, Any]]:
        """The case files, open ones first, newest opened first within each (at most
        ``limit``)."""
        rows = self._db().execute(
            "SELECT * FROM cases ORDER BY closed_at IS NOT NULL, opened_at DESC, case_number "
            "LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows.fetchall()]

    def party_records(self, party: str) -> dict[str, list[dict[str, Any]]]:
        """Everything kept of one party subject to enforcement, across its cases: the
        cases, the recordings attached to them and the explanation items of those
        recordings or of the custody episodes filed under them (一户式)."""
        db = self._db()
        cases = [
            dict(r)
            for r in db.execute(
                "SELECT * FROM cases WHERE party = ? ORDER BY opened_at, case_number", (party,)
            ).fetchall()
        ]
        recordings = [
            dict(r)
            for r in db.execute(
                "SELECT l.case_number, a.* FROM cases c "
                "JOIN case_links l ON l.case_number = c.case_number "
                "JOIN archive a ON a.serial = l.serial AND a.recording_id = l.recording_id "
                "WHERE c.party = ? ORDER BY a.start_ms, a.serial, a.recording_id, l.case_number",
                (party,),
            ).fetchall()
        ]
        items = [
            dict(r)
            for r in db.execute(
                "SELECT i.* FROM explanation_items i WHERE i.id IN ("
                " SELECT i2.id FROM explanation_items i2 JOIN case_links l"
                " ON l.serial = i2.serial AND l.recording_id = i2.recording_id"
                " JOIN cases c ON c.case_number = l.case_number WHERE c.party = ?"
                " UNION SELECT i3.id FROM explanation_items i3 JOIN case_episodes e"
                " ON e.custody_id = i3.custody_id"
                " JOIN cases c ON c.case_number = e.case_number WHERE c.party = ?"
                ") ORDER BY i.start_ms, i.id",
                (party, party),
            ).fetchall()
        ]
        return {"cases": cases, "recordings": recordings, "explanations": items}

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

    def archived_span(
        self, serial: str, since: float, until: float, before: float | None = None
    ) -> tuple[float, float, float] | None:
        """Of ``serial``'s archive rows archived in [since, until] (and < ``before``): the
        last ``archived_at`` and the first and last recording end (epoch seconds, as the
        recorder's clock gave them); None when there is none."""
        sql = (
            "SELECT max(archived_at), min(end_ms), max(end_ms) FROM archive "
            "WHERE serial = ? AND archived_at >= ? AND archived_at <= ?"
        )
        params: tuple[Any, ...] = (serial, since, until)
        if before is not None:
            sql, params = sql + " AND archived_at < ?", (*params, before)
        last, first_end, last_end = self._db().execute(sql, params).fetchone()
        if last is None:
            return None
        return float(last), first_end / 1000.0, last_end / 1000.0

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
