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
