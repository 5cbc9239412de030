"""What maintenance staff read of the dock database, and the per-slot error counters.

The maintenance pages show what the dock already records (status history, the event
log reads and the gaps they found, enrolled devices) without any other code owning a
query for it; :class:`SlotErrorTable` owns ``slot_errors`` (dock.storage.schema): how
often each slot's link failed, by kind, counted rather than logged row by row, so a bad
contact that fails every sweep for a month is one row per kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dock.storage.evidence_tables import Table, dicts

#: The kinds of link failure a slot counts (dock.daemon.inspection classifies them).
SLOT_ERROR_KINDS: tuple[str, ...] = ("link", "timeout", "auth", "protocol", "refused")

#: Longest last message kept per counter (it is a recorder's or the link's words).
_MESSAGE_LIMIT = 300

#: Most status rows one device's plots read: a dense week at STATUS_EVERY_S.
HISTORY_LIMIT = 2000


@dataclass(frozen=True)
class SlotErrors:
    """One slot's counters: kind -> count, and when and what the last failure was."""

    slot_id: str
    counts: dict[str, int]
    last_at: float | None
    last_message: str

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class SlotErrorTable(Table):
    """``slot_errors``: counted by the daemon's inspection, read by the pages."""

    def count(self, slot_id: str, kind: str, at: float, message: str) -> None:
        if kind not in SLOT_ERROR_KINDS:
            raise ValueError(f"not a slot error kind: {kind!r}")
        with self.transaction():
            self._db().execute(
                "INSERT INTO slot_errors (slot_id, kind, count, first_at, last_at, last_message) "
                "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (slot_id, kind) DO UPDATE SET "
                "count = count + 1, last_at = excluded.last_at, "
                "last_message = excluded.last_message",
                (slot_id, kind, at, at, message[:_MESSAGE_LIMIT]),
            )

    def by_slot(self) -> dict[str, SlotErrors]:
        rows = dicts(self._db().execute("SELECT * FROM slot_errors ORDER BY slot_id, kind"))
        out: dict[str, SlotErrors] = {}
        for r in rows:
            slot = r["slot_id"]
            had = out.get(slot)
            counts = dict(had.counts) if had else {}
            counts[r["kind"]] = int(r["count"])
            last_at, last_message = (had.last_at, had.last_message) if had else (None, "")
            if last_at is None or r["last_at"] > last_at:
                last_at, last_message = float(r["last_at"]), str(r["last_message"])
            out[slot] = SlotErrors(slot, counts, last_at, last_message)
        return out


class MaintenanceReads(Table):
    """Reads for the maintenance pages; they write nothing."""

    def status_series(self, serial: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
        """The newest ``limit`` status rows of one device, oldest first (for plots)."""
        rows = dicts(
            self._db().execute(
                "SELECT * FROM device_status WHERE serial = ? ORDER BY at DESC, rowid DESC LIMIT ?",
                (serial, limit),
            )
        )
        rows.reverse()
        return rows

    def last_status(self) -> dict[str, dict[str, Any]]:
        """Each device's newest status row, by serial."""
        rows = dicts(
            self._db().execute(
                "SELECT s.* FROM device_status s JOIN (SELECT serial, MAX(at) AS at "
                "FROM device_status GROUP BY serial) m ON s.serial = m.serial AND s.at = m.at"
            )
        )
        return {r["serial"]: r for r in rows}

    def event_log_reads(self, serial: str, limit: int = 200) -> list[dict[str, Any]]:
        """Where each custody episode's scan read the recorder's event log, newest first."""
        return dicts(
            self._db().execute(
                "SELECT * FROM event_log_reads WHERE serial = ? ORDER BY read_at DESC LIMIT ?",
                (serial, limit),
            )
        )

    def gaps(self, serial: str, limit: int = 200) -> list[dict[str, Any]]:
        """What the event log reads found: the device's explanation items, newest first."""
        return dicts(
            self._db().execute(
                "SELECT id, officer_id, custody_id, kind, reason, start_ms, end_ms, "
                "recording_id, detail, opened_at, closed_at, closed_by "
                "FROM explanation_items WHERE serial = ? ORDER BY start_ms DESC LIMIT ?",
                (serial, limit),
            )
        )

    def firmware_inventory(self) -> list[dict[str, Any]]:
        """(model, firmware, count) across enrolled devices, most common first."""
        return dicts(
            self._db().execute(
                "SELECT model, firmware, COUNT(*) AS count FROM devices "
                "GROUP BY model, firmware ORDER BY model, count DESC, firmware"
            )
        )
