"""``ums_volumes``: the camera a mass-storage volume was, by its volume serial.

A camera identified by its footage file names (``[[model]] identity = "file_names"``)
states nothing once an offload has emptied it, and a dock restarted then (or killed mid-
offload) must still know it to finish: the volume serial it showed while it held footage
names it. Only where exactly one camera of that model showed that serial: a serial that
two cameras share (a factory image) names neither.
"""

from __future__ import annotations

import time

from dock.storage.evidence_tables import Table


class UmsVolumeTable(Table):
    """Owner of ``ums_volumes`` (dock.storage.schema)."""

    def remember(self, volume_serial: str, model: str, serial: str) -> None:
        with self.transaction():
            self._db().execute(
                "INSERT OR REPLACE INTO ums_volumes (volume_serial, model, serial, seen_at) "
                "VALUES (?, ?, ?, ?)",
                (volume_serial, model, serial, time.time()),
            )

    def recall(self, volume_serial: str, model: str) -> str | None:
        rows = (
            self._db()
            .execute(
                "SELECT serial FROM ums_volumes WHERE volume_serial = ? AND model = ? LIMIT 2",
                (volume_serial, model),
            )
            .fetchall()
        )
        return str(rows[0][0]) if len(rows) == 1 else None
