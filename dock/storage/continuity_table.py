"""What the dock remembers of each recorder's footage between dockings, for the
continuity flags of :mod:`dock.evidence.continuity` (``continuity_marks``): the highest
recording number it has seen listed, that recording's end, and whether the recorder
signs. The flags themselves are explanation items (``explanation_items``, through
:class:`dock.storage.register_tables.GapTable`).
"""

from __future__ import annotations

from typing import Any

from dock.storage.evidence_tables import Table, one


class ContinuityTable(Table):
    """``continuity_marks``: one row per recorder."""

    def mark(self, serial: str) -> dict[str, Any] | None:
        return one(self._db().execute("SELECT * FROM continuity_marks WHERE serial = ?", (serial,)))

    def set_mark(
        self,
        serial: str,
        last_sequence: int | None,
        last_end_ms: int | None,
        signs: bool,
        at: float,
    ) -> None:
        """The mark after a docking: the number never goes down, ``signs`` never clears."""
        self._db().execute(
            "INSERT INTO continuity_marks (serial, last_sequence, last_end_ms, signs, "
            "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET "
            "last_end_ms = CASE WHEN excluded.last_sequence > COALESCE(last_sequence, -1) "
            "THEN excluded.last_end_ms ELSE last_end_ms END, "
            "last_sequence = NULLIF(MAX(COALESCE(last_sequence, -1), "
            "COALESCE(excluded.last_sequence, -1)), -1), "
            "signs = MAX(signs, excluded.signs), updated_at = excluded.updated_at",
            (serial, last_sequence, last_end_ms, int(signs), at),
        )
