"""The statistics' queries (REQUIREMENTS §9): read-only, each bounded by a period and a
row cap, over the dock database and the audit log.

Why a module of its own: the statistics page runs in the web process, which must never
write either database. :class:`StatsReader` opens both files read-only (SQLite's
``mode=ro``), reads every table of one request inside one snapshot per file, and goes
through sqlite-utils' ``query`` (rows as dicts). Each query is served by an index
(``schema.STATS_INDEXES`` for dock.db, ``entries_by_kind_time`` in the audit log), so a
year of a busy dock costs the rows of the period, not a scan of everything.

Nothing here decides anything (late or not, unit totals): :mod:`dock.services.stats` does.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from common.utc import utc_iso
from dock.domain.audit_kinds import AuditKind

if TYPE_CHECKING:
    from sqlite_utils import Database

#: At most this many rows come back from one query; more sets ``truncated``.
ROW_CAP = 5000
#: Returns are read one row per episode (each judged against its deadline in Python): a
#: year of a 20-slot dock on two shifts is about 15,000.
RETURNS_CAP = 100_000

#: Seconds all the queries of one request may take together (SQLite's progress handler
#: stops them after that): a page never holds a worker for long, whatever the data.
TIME_LIMIT_S = 3.0

#: Roles of the people who carry recorders (counted as officers in the ratio).
CARRYING_ROLES = ("officer", "supervisor")


class StatsUnavailable(Exception):
    """A database could not be read (missing, locked past the timeout, damaged)."""


def _open_ro(path: str, deadline: float) -> sqlite3.Connection:
    """A read-only connection: this process can never write the file through it."""
    if not os.path.exists(path):
        raise StatsUnavailable(f"{path} does not exist")
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=2, isolation_level=None)
        conn.execute("PRAGMA query_only = 1")
    except sqlite3.Error as exc:
        raise StatsUnavailable(f"{path}: {exc}") from exc
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    # Text written behind the dock's back that is not UTF-8 reads as replaced, not a crash.
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return conn


def _capped(rows: Iterator[dict[str, Any]], cap: int) -> tuple[list[dict[str, Any]], bool]:
    out: list[dict[str, Any]] = []
    for row in rows:
        if len(out) == cap:
            return out, True
        out.append(row)
    return out, False


class StatsReader:
    """Read-only queries for one statistics request; use as a context manager."""

    def __init__(self, dock_db: str, audit_db: str, time_limit_s: float = TIME_LIMIT_S) -> None:
        self.dock_db = dock_db
        self.audit_db = audit_db
        self._deadline = time.monotonic() + time_limit_s
        self._stack = contextlib.ExitStack()
        self._dock: Database | None = None
        self._audit: Database | None = None

    def __enter__(self) -> StatsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _snapshot(self, path: str) -> Database:
        conn = _open_ro(path, self._deadline)
        self._stack.callback(conn.close)
        try:
            conn.execute("BEGIN")  # one snapshot for every query of this request
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StatsUnavailable(f"{path}: {exc}") from exc
        from sqlite_utils import Database  # here: the site loads it only when stats are read

        return Database(conn, recursive_triggers=False, execute_plugins=False)

    def _q(
        self, which: str, sql: str, params: tuple[Any, ...], cap: int | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        cap = ROW_CAP if cap is None else cap
        try:
            if which == "dock":
                if self._dock is None:
                    self._dock = self._snapshot(self.dock_db)
                db = self._dock
            else:
                if self._audit is None:
                    self._audit = self._snapshot(self.audit_db)
                db = self._audit
            return _capped(db.query(sql, (*params, cap + 1)), cap)
        except sqlite3.Error as exc:
            if "interrupted" in str(exc):
                raise StatsUnavailable("too slow: choose a shorter period") from None
            raise StatsUnavailable(f"{which} database: {exc}") from exc

    # ------------------------------------------------------------------ dock.db

    def officers(self) -> tuple[list[dict[str, Any]], bool]:
        """Every person: number, name, unit, role, disabled (to name and group the rest)."""
        return self._q(
            "dock",
            "SELECT officer_id, name, unit, role, disabled FROM officers "
            "ORDER BY officer_id LIMIT ?",
            (),
        )

    def checkouts(self, start: float, end: float) -> tuple[list[dict[str, Any]], bool]:
        """Per officer, custody episodes that began in [start, end): how many, how many
        with a supervisor's override. A grant withdrawn before its recorder left the
        slot (expired, cancelled) is no episode (as in ``Store.custody_episodes``)."""
        return self._q(
            "dock",
            "SELECT officer_id, count(*) AS checkouts, "
            "count(override_by) AS overrides "
            "FROM custody WHERE out_at >= ? AND out_at < ? AND withdrawn IS NULL "
            "GROUP BY officer_id ORDER BY officer_id LIMIT ?",
            (start, end),
        )

    def returns(self, start: float, end: float, now: float) -> tuple[list[dict[str, Any]], bool]:
        """Custody episodes returned in [start, end), each with what
        :func:`dock.evidence.deadlines.deadline_report` looks at: the serial's next
        check-out after the return (time, override) and the last archive time of the
        serial from the return up to ``now`` and before that next check-out."""
        return self._q(
            "dock",
            """WITH r AS (
                SELECT c.id, c.serial, c.officer_id, c.out_at, c.in_at,
                    (SELECT n.id FROM custody n
                     WHERE n.serial = c.serial AND n.id != c.id AND n.out_at >= c.in_at
                       AND n.withdrawn IS NULL
                     ORDER BY n.out_at, n.id LIMIT 1) AS next_id
                FROM custody c WHERE c.in_at >= ? AND c.in_at < ? AND c.withdrawn IS NULL
            )
            SELECT r.id AS custody_id, r.serial, r.officer_id, r.out_at, r.in_at,
                n.out_at AS next_out_at, n.override_by AS next_override_by,
                (SELECT a.archived_at FROM archive a
                 WHERE a.serial = r.serial AND a.archived_at >= r.in_at
                   AND a.archived_at < min(coalesce(n.out_at, 1e308), ?3)
                 ORDER BY a.archived_at DESC LIMIT 1) AS offloaded_at,
                -- when its recordings ended, for deadlines that run from them
                (SELECT min(a.end_ms) FROM archive a
                 WHERE a.serial = r.serial AND a.archived_at >= r.in_at
                   AND a.archived_at < min(coalesce(n.out_at, 1e308), ?3)) AS first_end_ms,
                (SELECT max(a.end_ms) FROM archive a
                 WHERE a.serial = r.serial AND a.archived_at >= r.in_at
                   AND a.archived_at < min(coalesce(n.out_at, 1e308), ?3)) AS last_end_ms
            FROM r LEFT JOIN custody n ON n.id = r.next_id
            ORDER BY r.in_at, r.id LIMIT ?""",
            # One upper bound, so the index range stops there (archived_at <= now).
            (start, end, math.nextafter(now, math.inf)),
            RETURNS_CAP,
        )

    def gaps(self, start: float, end: float) -> tuple[list[dict[str, Any]], bool]:
        """Per officer, explanation items opened in [start, end): open, closed, and how
        many the officer gave an account for."""
        return self._q(
            "dock",
            "SELECT officer_id, count(*) AS opened, "
            "sum(closed_at IS NULL) AS open, sum(closed_at IS NOT NULL) AS closed, "
            "sum(account IS NOT NULL) AS accounted "
            "FROM explanation_items WHERE opened_at >= ? AND opened_at < ? "
            "GROUP BY officer_id ORDER BY officer_id LIMIT ?",
            (start, end),
        )

    def recorders_used(self, start: float, end: float) -> tuple[list[dict[str, Any]], bool]:
        """Per unit, the distinct recorders its people checked out in [start, end)."""
        return self._q(
            "dock",
            "SELECT o.unit AS unit, count(DISTINCT c.serial) AS recorders "
            "FROM custody c JOIN officers o ON o.officer_id = c.officer_id "
            "WHERE c.out_at >= ? AND c.out_at < ? AND c.withdrawn IS NULL "
            "GROUP BY o.unit ORDER BY o.unit LIMIT ?",
            (start, end),
        )

    def fleet(self) -> dict[str, int]:
        """Recorders on the dock's books (not lost) and people who carry one (enabled
        officers and supervisors), now."""
        placeholders = ", ".join("?" for _ in CARRYING_ROLES)
        rows, _ = self._q(
            "dock",
            "SELECT (SELECT count(*) FROM devices WHERE lost = 0) AS recorders, "
            "(SELECT count(*) FROM officers WHERE disabled = 0 "
            f"AND role IN ({placeholders})) AS officers LIMIT ?",
            CARRYING_ROLES,
        )
        return {"recorders": int(rows[0]["recorders"]), "officers": int(rows[0]["officers"])}

    # ------------------------------------------------------------------ audit.db

    def refusals(self, start: float, end: float) -> tuple[list[dict[str, Any]], bool]:
        """Per actor (the officer number given) and reason code, refused check-outs
        audited in [start, end); ``reason`` None counts the refusals themselves."""
        return self._q(
            "audit",
            """SELECT e.actor AS actor, NULL AS reason, count(*) AS refusals
            FROM entries e WHERE e.kind = ?1 AND e.time >= ?2 AND e.time < ?3
            GROUP BY e.actor
            UNION ALL
            SELECT e.actor, CAST(j.value AS TEXT), count(*)
            FROM entries e, json_each(CASE WHEN json_valid(e.data) THEN e.data ELSE '{}' END,
                                      '$.reasons') j
            WHERE e.kind = ?1 AND e.time >= ?2 AND e.time < ?3
            GROUP BY e.actor, j.value
            ORDER BY 1, 2 LIMIT ?4""",
            (AuditKind.CHECKOUT_REFUSED.value, utc_iso(start), utc_iso(end)),
        )


__all__ = [
    "CARRYING_ROLES",
    "RETURNS_CAP",
    "ROW_CAP",
    "TIME_LIMIT_S",
    "StatsReader",
    "StatsUnavailable",
]
