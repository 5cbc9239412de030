"""The handover register's tables (``handovers``, append-only by trigger, and
``handover_pending``), behind typed methods for :mod:`dock.evidence.handovers`.

Statements run on the store's per-thread connection: inside ``with table.transaction():``
they commit together with an audit entry appended in between (as the other registers).
"""

from __future__ import annotations

from typing import Any

from dock.storage.evidence_tables import Table, dicts, one


class HandoverTable(Table):
    """``handovers`` (who handed each returned recorder back) and ``handover_pending``."""

    def add_pending(
        self, custody_id: int, serial: str, slot_id: str, custodian: str, at: float, due: float
    ) -> bool:
        """A return waiting for a signature; False when it is pending or registered already."""
        with self.transaction():
            db = self._db()
            if db.execute("SELECT 1 FROM handovers WHERE custody_id = ?", (custody_id,)).fetchone():
                return False
            cur = db.execute(
                "INSERT INTO handover_pending (custody_id, serial, slot_id, custodian, "
                "docked_at, due_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (custody_id, serial, slot_id, custodian, at, due),
            )
        return cur.rowcount == 1

    def pending(self) -> list[dict[str, Any]]:
        """Returns waiting for a signature, oldest first."""
        return dicts(self._db().execute("SELECT * FROM handover_pending ORDER BY docked_at, rowid"))

    def pending_one(self, custody_id: int) -> dict[str, Any] | None:
        return one(
            self._db().execute("SELECT * FROM handover_pending WHERE custody_id = ?", (custody_id,))
        )

    def register(
        self,
        pending: dict[str, Any],
        returned_by: str | None,
        how: str,
        by_custodian: bool | None,
        at: float,
    ) -> int | None:
        """The register's row for a pending return, which leaves the pending list; None
        when someone else registered it first. Call inside ``transaction()``."""
        db = self._db()
        gone = db.execute(
            "DELETE FROM handover_pending WHERE custody_id = ?", (pending["custody_id"],)
        )
        if gone.rowcount != 1:
            return None
        cur = db.execute(
            "INSERT INTO handovers (custody_id, serial, slot_id, custodian, returned_by, how, "
            "by_custodian, docked_at, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pending["custody_id"],
                pending["serial"],
                pending["slot_id"],
                pending["custodian"],
                returned_by,
                how,
                None if by_custodian is None else int(by_custodian),
                pending["docked_at"],
                at,
            ),
        )
        return int(cur.lastrowid or 0)

    def of_custody(self, custody_id: int) -> dict[str, Any] | None:
        return one(
            self._db().execute("SELECT * FROM handovers WHERE custody_id = ?", (custody_id,))
        )

    def entries(self, serial: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The register, newest first (of one recorder, or all)."""
        sql, args = "SELECT * FROM handovers", ()  # type: tuple[str, tuple[Any, ...]]
        if serial is not None:
            sql, args = sql + " WHERE serial = ?", (serial,)
        return dicts(self._db().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)))
