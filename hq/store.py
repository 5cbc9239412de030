"""Headquarters' view of the fleet in one SQLite file (WAL), and its alerts.

One writer (the monitor's writer thread) commits a batch of messages per transaction;
any number of readers (``dock-hq fleet``, ``alerts``, ``ack``) open the same file at the
same time, which WAL allows without blocking the writer. ``synchronous=FULL``: the
monitor acknowledges messages to the broker only after their batch is committed, so a
committed batch must survive a power cut too, or the broker would not resend it.

Times: ``*_at``/``opened``/``received`` columns are headquarters' clock (epoch seconds);
``time`` columns are the dock's text (ISO 8601 UTC) as it sent it. The tables (and their
version) are in :mod:`hq.schema`; the checkpoint rows in :mod:`hq.checkpoint_rows`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from hq import schema
from hq.alerts import CLEARING, AlertKey, AlertKind, Decision, DockSeen
from hq.checkpoint_rows import CheckpointRows


class Store(CheckpointRows):
    """The fleet database. Not thread-safe: one Store per thread (or per process)."""

    def __init__(self, path: str, *, timeout_s: float = 10.0) -> None:
        self.path = path
        self.db = sqlite3.connect(
            path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        try:
            schema.apply(self.db, path)  # a backup first when it is of an older schema
        except BaseException:
            self.db.close()
            raise
        #: Open CLEARING alerts -> detail: skip writes for conditions that did not change.
        self._open: dict[AlertKey, str] = {}
        for row in self.db.execute(
            "SELECT site, dock, kind, subject, detail FROM alerts WHERE closed_at IS NULL"
        ):
            key = AlertKey(row[0], row[1], AlertKind(row[2]), row[3])
            if key.kind in CLEARING:
                self._open[key] = row[4]

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error); the alert cache follows suit."""
        saved = dict(self._open)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # also when COMMIT itself failed (disk full)
                self.db.execute("ROLLBACK")
            self._open = saved
            raise

    # ------------------------------------------------------------------ events

    def insert_event(self, site: str, dock: str, event: dict[str, Any], received: float) -> bool:
        """Store an event once; False if (site, dock, boot, seq) was stored already."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?)",
            (
                site,
                dock,
                event["boot"],
                event["seq"],
                event["type"],
                event["time"],
                received,
                json.dumps(event, ensure_ascii=False, separators=(",", ":")),
            ),
        )
        return cur.rowcount == 1

    def add_received(self, site: str, dock: str, boot: str, count: int, max_seq: int) -> None:
        self.db.execute(
            "INSERT INTO boots (site, dock, boot, received, max_seq) VALUES (?,?,?,?,?) "
            "ON CONFLICT DO UPDATE SET received = received + excluded.received, "
            "max_seq = max(max_seq, excluded.max_seq)",
            (site, dock, boot, count, max_seq),
        )

    def note_last_event(self, site: str, dock: str, boot: str, seq: int) -> None:
        self.db.execute(
            "INSERT INTO boots (site, dock, boot, last_event) VALUES (?,?,?,?) "
            "ON CONFLICT DO UPDATE SET last_event = max(last_event, excluded.last_event)",
            (site, dock, boot, seq),
        )

    def boots_missing_events(self) -> list[tuple[str, str, str]]:
        """(site, dock, boot) of every open "events missing" alert."""
        rows = self.db.execute(
            "SELECT site, dock, subject FROM alerts WHERE kind = 'events_missing' "
            "AND closed_at IS NULL"
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def boot_progress(self, site: str, dock: str, boot: str) -> tuple[int, int]:
        """(events received, events expected) of one boot of one dock."""
        row = self.db.execute(
            "SELECT received, max(max_seq, last_event) FROM boots "
            "WHERE site=? AND dock=? AND boot=?",
            (site, dock, boot),
        ).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def gaps(
        self, site: str, dock: str, boot: str, upto: int, limit: int = 20
    ) -> list[tuple[int, int]]:
        """Missing seq ranges (inclusive) in 1..``upto``, at most ``limit`` of them."""
        found: list[tuple[int, int]] = []
        expect = 1
        rows = self.db.execute(
            "SELECT seq FROM events WHERE site=? AND dock=? AND boot=? AND seq <= ? ORDER BY seq",
            (site, dock, boot, upto),
        )
        for (seq,) in rows:
            if seq > expect:
                found.append((expect, seq - 1))
                if len(found) >= limit:
                    return found
            expect = seq + 1
        if expect <= upto:
            found.append((expect, upto))
        return found[:limit]

    def count_failure(
        self, site: str, dock: str, kind: AlertKind, subject: str, t: float, window_s: float
    ) -> int:
        """Record one failure at ``t`` (the dock's time); how many fall in the window."""
        self.db.execute(
            "INSERT INTO failures VALUES (?,?,?,?,?)", (site, dock, kind.value, subject, t)
        )
        return self.db.execute(
            "SELECT count(*) FROM failures WHERE site=? AND dock=? AND kind=? AND subject=? "
            "AND t > ? AND t <= ?",
            (site, dock, kind.value, subject, t - window_s, t),
        ).fetchone()[0]

    def prune_failures(self, before: float) -> None:
        self.db.execute("DELETE FROM failures WHERE t < ?", (before,))

    # ------------------------------------------------------------------ dock state

    def _touch(self, site: str, dock: str, now: float) -> None:
        self.db.execute(
            "INSERT INTO docks (site, dock, last_seen_at) VALUES (?,?,?) "
            "ON CONFLICT DO UPDATE SET last_seen_at = excluded.last_seen_at",
            (site, dock, now),
        )

    def set_state(self, site: str, dock: str, state: dict[str, Any], now: float) -> None:
        self._touch(site, dock, now)
        self.db.execute(
            "UPDATE docks SET state=?, state_time=?, boot=? WHERE site=? AND dock=?",
            (state["state"], state["time"], state["boot"], site, dock),
        )

    def set_birth(self, site: str, dock: str, birth: dict[str, Any], now: float) -> None:
        self._touch(site, dock, now)
        self.db.execute(
            "UPDATE docks SET boot=?, software=?, config_hash=?, policy=?, started=?, "
            "slot_ids=? WHERE site=? AND dock=?",
            (
                birth["boot"],
                birth["software"],
                birth["config_hash"],
                birth.get("policy"),
                birth["started"],
                json.dumps([str(s) for s in birth["slots"]]),
                site,
                dock,
            ),
        )

    def set_health(self, site: str, dock: str, health: dict[str, Any], now: float) -> bool:
        """Keep the newest health; False (nothing written) for an older one of the same boot."""
        row = self.db.execute(
            "SELECT health_boot, health_seq FROM docks WHERE site=? AND dock=?", (site, dock)
        ).fetchone()
        if row and row[0] == health["boot"] and row[1] is not None and health["seq"] <= row[1]:
            self._touch(site, dock, now)
            return False
        self._touch(site, dock, now)
        part = health["dock"]
        pending = part.get("outbox_pending")
        self.db.execute(
            "UPDATE docks SET last_health_at=?, health_boot=?, health_seq=?, health_time=?, "
            "health=?, outbox_pending=? WHERE site=? AND dock=?",
            (
                now,
                health["boot"],
                health["seq"],
                health["time"],
                json.dumps(part, ensure_ascii=False, separators=(",", ":")),
                pending if isinstance(pending, int) else None,
                site,
                dock,
            ),
        )
        self._set_replication(site, dock, health)
        for slot in health["slots"]:
            if isinstance(slot, dict) and isinstance(slot.get("slot"), str):
                self.db.execute(
                    "INSERT INTO slots (site, dock, slot, state, serial, battery_pct, "
                    "battery_health_pct, drift_s, time) VALUES (?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT DO UPDATE SET state=excluded.state, serial=excluded.serial, "
                    "battery_pct=excluded.battery_pct, "
                    "battery_health_pct=excluded.battery_health_pct, drift_s=excluded.drift_s, "
                    "time=excluded.time",
                    (
                        site,
                        dock,
                        slot["slot"],
                        _text(slot.get("state")),
                        _text(slot.get("serial")),
                        _num(slot.get("battery_pct")),
                        _num(slot.get("battery_health_pct")),
                        _num(slot.get("drift_s")),
                        health["time"],
                    ),
                )
        return True

    def _set_replication(self, site: str, dock: str, health: dict[str, Any]) -> None:
        """The dock's backlog per target as this health says (checked by the contract);
        none kept for a dock whose health carries no ``replication`` (older, or none
        configured)."""
        self.db.execute("DELETE FROM replication WHERE site=? AND dock=?", (site, dock))
        rep = health.get("replication")
        if not isinstance(rep, dict):
            return
        for t in rep["targets"]:
            self.db.execute(
                "INSERT OR REPLACE INTO replication VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    *(site, dock, t["name"], t["pending"], t["sending"], t["failed"]),
                    *(t["replicated_24h"], t.get("oldest_pending_at"), t.get("last_success_at")),
                    *(t.get("last_error"), float(rep["deadline_hours"]), health["time"]),
                ),
            )

    def replication(self, site: str, dock: str) -> list[dict[str, Any]]:
        """The dock's backlog per target, as its newest health said."""
        rows = self.db.execute(
            "SELECT * FROM replication WHERE site=? AND dock=? ORDER BY target", (site, dock)
        )
        return [dict(r) for r in rows]

    def set_slot(self, site: str, dock: str, slot: dict[str, Any], now: float) -> None:
        self._touch(site, dock, now)
        failed = slot.get("failed")
        self.db.execute(
            "INSERT INTO slots (site, dock, slot, state, serial, battery_pct, failed, time) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET state=excluded.state, "
            "serial=excluded.serial, battery_pct=coalesce(excluded.battery_pct, battery_pct), "
            "failed=excluded.failed, time=excluded.time",
            (
                site,
                dock,
                slot["slot"],
                slot["state"],
                _text(slot.get("serial")),
                _num(slot.get("battery_pct")),
                json.dumps(failed if isinstance(failed, list) else []),
                slot["time"],
            ),
        )

    def docks_seen(self) -> list[DockSeen]:
        return [
            DockSeen(r[0], r[1], r[2], r[3])
            for r in self.db.execute("SELECT site, dock, state, last_health_at FROM docks")
        ]

    # ------------------------------------------------------------------ commands

    def record_command(self, site: str, dock: str, command: dict[str, Any], now: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO commands (id, site, dock, command, args, by, issued, sent_at) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                command["id"],
                site,
                dock,
                command["command"],
                json.dumps(command["args"], ensure_ascii=False),
                command["by"],
                command["issued"],
                now,
            ),
        )

    def record_reply(self, site: str, dock: str, reply: dict[str, Any]) -> None:
        """A dock's reply; commands sent by another headquarters client get a row too."""
        self.db.execute(
            "INSERT INTO commands (id, site, dock, command, args, by, issued, reply_ok, "
            "reply_error, reply_time) VALUES (?,?,?,'','{}','','',?,?,?) "
            "ON CONFLICT DO UPDATE SET reply_ok=excluded.reply_ok, "
            "reply_error=excluded.reply_error, reply_time=excluded.reply_time "
            "WHERE commands.site = excluded.site AND commands.dock = excluded.dock",
            (reply["id"], site, dock, int(reply["ok"]), _text(reply.get("error")), reply["time"]),
        )

    # ------------------------------------------------------------------ audit checkpoints
    # (reads and inserts: hq/checkpoint_rows.py)

    def forget_checkpoints(self, site: str, dock: str, by: str, now: float) -> int:
        """A person says the dock starts a new audit log (a new key, a reinstalled dock):
        what was held is kept, marked forgotten by whom, and no longer judged against."""
        with self.transaction():
            cur = self.db.execute(
                "UPDATE checkpoints SET status=-1, forgotten_by=?, forgotten_at=? "
                "WHERE site=? AND dock=? AND status IN (0, 1)",
                (by, now, site, dock),
            )
        return cur.rowcount

    # ------------------------------------------------------------------ alerts

    def apply(self, decision: Decision, now: float) -> list[int]:
        """Open and close alerts; returns the ids of alerts opened anew (not repeats)."""
        opened: list[int] = []
        for alert in decision.open:
            key = alert.key
            if key.kind in CLEARING and self._open.get(key) == alert.detail:
                continue  # the condition holds as before: nothing to write
            row = self.db.execute(
                "INSERT INTO alerts (site, dock, kind, subject, detail, opened_at, last_at) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (site, dock, kind, subject) "
                "WHERE closed_at IS NULL DO UPDATE SET detail=excluded.detail, "
                "last_at=excluded.last_at, count=count + ? RETURNING id, count",
                (
                    *(key.site, key.dock, key.kind.value, key.subject, alert.detail, now, now),
                    0 if key.kind in CLEARING else 1,  # a condition holding is not a repeat
                ),
            ).fetchone()
            if row[1] == 1 and key not in self._open:
                opened.append(row[0])
            if key.kind in CLEARING:
                self._open[key] = alert.detail
        for key in decision.close:
            if key in self._open:
                self.db.execute(
                    "UPDATE alerts SET closed_at=? WHERE site=? AND dock=? AND kind=? "
                    "AND subject=? AND closed_at IS NULL",
                    (now, key.site, key.dock, key.kind.value, key.subject),
                )
                del self._open[key]
        return opened

    def alerts(self, *, include_closed: bool = False) -> list[dict[str, Any]]:
        where = "" if include_closed else "WHERE closed_at IS NULL"
        return [dict(r) for r in self.db.execute(f"SELECT * FROM alerts {where} ORDER BY id")]

    def ack(self, alert_id: int, by: str, now: float) -> str:
        """Acknowledge: "acked", "unknown" or "already". An event alert closes with its
        acknowledgement; a condition stays open (and is not raised again) until it ends."""
        clearing = ",".join(f"'{k.value}'" for k in CLEARING)
        with self.transaction():
            row = self.db.execute("SELECT acked_by FROM alerts WHERE id=?", (alert_id,)).fetchone()
            if row is None:
                return "unknown"
            if row[0] is not None:
                return "already"
            self.db.execute(
                "UPDATE alerts SET acked_by=?, acked_at=?, closed_at = CASE WHEN "
                f"kind IN ({clearing}) THEN closed_at ELSE coalesce(closed_at, ?) END "
                "WHERE id=?",
                (by, now, now, alert_id),
            )
        return "acked"

    # ------------------------------------------------------------------ fleet view

    def fleet(self) -> list[dict[str, Any]]:
        """One row per dock, with its slots and open alerts, for ``dock-hq fleet``."""
        slots: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in self.db.execute("SELECT * FROM slots ORDER BY site, dock, slot"):
            row = dict(r)
            row["failed"] = json.loads(row["failed"]) if row["failed"] else []
            slots.setdefault((row.pop("site"), row.pop("dock")), []).append(row)
        alerts: dict[tuple[str, str], dict[str, int]] = {}
        for r in self.db.execute(
            "SELECT site, dock, kind, count(*) FROM alerts WHERE closed_at IS NULL "
            "GROUP BY site, dock, kind"
        ):
            alerts.setdefault((r[0], r[1]), {})[r[2]] = r[3]
        replication: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in self.db.execute("SELECT * FROM replication ORDER BY site, dock, target"):
            row = dict(r)
            replication.setdefault((row.pop("site"), row.pop("dock")), []).append(row)
        out = []
        for r in self.db.execute("SELECT * FROM docks ORDER BY site, dock"):
            row = dict(r)
            key = (row["site"], row["dock"])
            row["slot_ids"] = json.loads(row["slot_ids"]) if row["slot_ids"] else []
            row["health"] = json.loads(row["health"]) if row["health"] else None
            row["slots"] = slots.get(key, [])
            row["open_alerts"] = alerts.get(key, {})
            row["replication"] = replication.get(key, [])
            out.append(row)
        return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
