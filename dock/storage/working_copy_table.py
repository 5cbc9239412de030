"""``working_copies``: the files a view or copy wrote under the exports folder, each
registered before it exists, with its removal's intent and record. The SQL for the
table is here and nowhere else (its owner, as :mod:`dock.storage.schema` records);
:mod:`dock.evidence.working_copies` decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dock.storage.evidence_tables import Table, dicts


class WorkingCopyTable(Table):
    """``working_copies``, read with its request's ``expires_at``."""

    def add(self, rows: list[dict[str, Any]]) -> list[int]:
        """Register files about to be written (one transaction); their ids."""
        ids = []
        with self.transaction():
            for r in rows:
                cur = self._db().execute(
                    "INSERT INTO working_copies (request_id, action, who, what, path, folder, "
                    "made_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (r["request_id"], r["action"], r["who"], r["what"], r["path"], r["folder"],
                     r["made_at"]),
                )  # fmt: skip
                ids.append(int(cur.lastrowid or 0))
        return ids

    def present(self) -> list[dict[str, Any]]:
        """Every file not yet recorded as removed, with its request's ``expires_at``."""
        return dicts(
            self._db().execute(
                "SELECT w.*, r.expires_at AS expires_at FROM working_copies w "
                "JOIN access_requests r ON r.id = w.request_id "
                "WHERE w.removed_at IS NULL ORDER BY w.id"
            )
        )

    def all(self) -> list[dict[str, Any]]:
        return dicts(self._db().execute("SELECT * FROM working_copies ORDER BY id"))

    def intend(self, copy_id: int, at: float) -> None:
        """The removal's intent, committed before the file is touched."""
        with self.transaction():
            self._db().execute(
                "UPDATE working_copies SET removing_at = ? WHERE id = ? AND removing_at IS NULL",
                (at, copy_id),
            )

    def removed(self, copy_id: int, at: float, outcome: str, audit: Callable[[], object]) -> bool:
        """Record the removal with ``audit()`` in one transaction; False when it was
        recorded already (by another run)."""
        with self.transaction():
            cur = self._db().execute(
                "UPDATE working_copies SET removed_at = ?, outcome = ? "
                "WHERE id = ? AND removed_at IS NULL",
                (at, outcome, copy_id),
            )
            if cur.rowcount != 1:
                return False
            audit()
        return True


__all__ = ["WorkingCopyTable"]
