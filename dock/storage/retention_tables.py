"""The tables of retention's paperwork, behind typed methods: appraisals (004 att.2 §6),
the yearly hand-overs to the archivist (004 att.2 §7) and the recorders' maintenance due
dates (000 §14.1). Owners as :mod:`dock.storage.schema` records; the rules are
:mod:`dock.evidence.appraisals`, :mod:`dock.evidence.yearly` and
:mod:`dock.services.devices`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dock.storage.evidence_tables import Table, dicts, one


class AppraisalTable(Table):
    """``appraisals`` and ``appraisal_members``."""

    def add(
        self, proposed_by: str, proposed_at: float, reason: str, members: Sequence[tuple[str, str]]
    ) -> int:
        """A proposal and its recordings (inside the caller's transaction)."""
        db = self._db()
        cur = db.execute(
            "INSERT INTO appraisals (proposed_by, proposed_at, reason) VALUES (?, ?, ?)",
            (proposed_by, proposed_at, reason),
        )
        appraisal = int(cur.lastrowid or 0)
        db.executemany(
            "INSERT INTO appraisal_members (appraisal, serial, recording_id) VALUES (?, ?, ?)",
            [(appraisal, s, r) for s, r in members],
        )
        return appraisal

    def decide(
        self,
        appraisal: int,
        state: str,
        decided_by: str,
        decided_at: float,
        note: str,
        expires_at: float | None,
    ) -> bool:
        """Approve or reject a proposal once; False when it was decided meanwhile."""
        cur = self._db().execute(
            "UPDATE appraisals SET state = ?, decided_by = ?, decided_at = ?, note = ?, "
            "expires_at = ? WHERE id = ? AND state = 'proposed'",
            (state, decided_by, decided_at, note, expires_at, appraisal),
        )
        return cur.rowcount == 1

    def get(self, appraisal: int) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM appraisals WHERE id = ?", (appraisal,)))

    def members(self, appraisal: int) -> list[tuple[str, str]]:
        rows = self._db().execute(
            "SELECT serial, recording_id FROM appraisal_members WHERE appraisal = ? "
            "ORDER BY serial, recording_id",
            (appraisal,),
        )
        return [(r[0], r[1]) for r in rows]

    def every(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM appraisals ORDER BY id"))


class ArchiveHandoverTable(Table):
    """``archive_handovers``: one row per hand-over of a year's records."""

    def add(self, values: dict[str, Any]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self._db().execute(
            f"INSERT INTO archive_handovers ({cols}) VALUES ({marks})", tuple(values.values())
        )
        return int(cur.lastrowid or 0)

    def of_year(self, year: int) -> list[dict[str, Any]]:
        return dicts(
            self._db().execute(
                "SELECT * FROM archive_handovers WHERE year = ? ORDER BY id", (year,)
            )
        )

    def every(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM archive_handovers ORDER BY id"))

    def year_rows(self, table: str, column: str, start: float, end: float) -> list[dict[str, Any]]:
        """Rows of ``table`` whose ``column`` (seconds) lies in [start, end): the year's
        custody, holds and purges for the register."""
        assert table in ("custody", "holds", "purges", "appraisals") and column.isidentifier()
        return dicts(
            self._db().execute(
                f"SELECT * FROM {table} WHERE {column} >= ? AND {column} < ? ORDER BY {column}",
                (start, end),
            )
        )

    def case_links(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM case_links ORDER BY case_number"))


class MaintenanceDueTable(Table):
    """``devices.maintenance_due``: when a recorder's next maintenance is due."""

    def set_due(self, serial: str, due: float | None, audit: Callable[[], object]) -> bool:
        """Set (or clear) the due date with its audit entry, one transaction; False when
        the recorder is not enrolled."""
        with self.transaction():
            cur = self._db().execute(
                "UPDATE devices SET maintenance_due = ? WHERE serial = ?", (due, serial)
            )
            if cur.rowcount != 1:
                return False
            audit()
        return True


__all__ = ["AppraisalTable", "ArchiveHandoverTable", "MaintenanceDueTable"]
