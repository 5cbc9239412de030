"""The audit log read by someone who may not write it: the web site's audit viewer.

Opens ``audit.db`` read-only (no key, no lock, never a write), and pages through it
by ``seq`` (keyset paging: a page is "the newest N entries below seq S matching the
filter"), so a log of millions of entries costs one bounded query per page. Every query
is cut off after ``QUERY_LIMIT_S`` seconds (SQLite's progress handler), so a filter that
matches almost nothing in a huge log says "narrow it" instead of holding a worker.

What a page shows is what is stored; whether it is still what was written is for the
chain's verification (the daemon's ``audit_verify``) to say.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from dock.storage.audit.chain import as_text
from dock.storage.audit.model import ENTRY_COLUMNS, AuditEntry

#: Entries in one page at most.
PAGE_MAX = 200
#: Seconds one query may run.
QUERY_LIMIT_S = 2.0


class AuditQueryTooSlow(Exception):
    """The filter would take longer than QUERY_LIMIT_S to answer: narrow it."""


@dataclass(frozen=True)
class AuditFilter:
    """Every field optional; times are the stored UTC text (``...Z``), from inclusive,
    to exclusive."""

    kind: str | None = None
    actor: str | None = None
    subject: str | None = None
    time_from: str | None = None
    time_to: str | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    #: Ask for ``before=this`` for the next (older) page; None: this was the last.
    older: int | None
    head_seq: int


class AuditReader:
    """Read-only pages of one dock's audit log."""

    def __init__(self, db_path: str, query_limit_s: float = QUERY_LIMIT_S) -> None:
        self.db_path = db_path
        self.query_limit_s = query_limit_s

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(
            f"file:{quote(self.db_path)}?mode=ro", uri=True, check_same_thread=False
        )
        conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
        deadline = time.monotonic() + self.query_limit_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("PRAGMA busy_timeout = 2000")
            yield conn
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise AuditQueryTooSlow(
                    f"more than {self.query_limit_s:g} s for this filter: narrow it"
                ) from None
            raise
        finally:
            conn.close()

    def page(self, where: AuditFilter, before: int | None = None, limit: int = 50) -> AuditPage:
        """The newest ``limit`` entries matching ``where`` with seq below ``before``."""
        limit = max(1, min(int(limit), PAGE_MAX))
        clauses, args = _clauses(where)
        if before is not None:
            clauses.append("seq < ?")
            args.append(int(before))
        sql = f"SELECT {ENTRY_COLUMNS} FROM entries"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC LIMIT ?"
        with self._connection() as conn:
            conn.execute("BEGIN")
            rows = conn.execute(sql, (*args, limit + 1)).fetchall()
            head = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0]
        entries = [_entry(r) for r in rows[:limit]]
        older = entries[-1].seq if len(rows) > limit and entries else None
        return AuditPage(entries, older, int(head))

    def entry(self, seq: int) -> AuditEntry | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE seq = ?", (int(seq),)
            ).fetchone()
        return None if row is None else _entry(row)

    def actors(self, limit: int = 200) -> list[str]:
        """Who wrote entries (for the filter's choices), at most ``limit``."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT actor FROM entries ORDER BY actor LIMIT ?", (limit,)
            ).fetchall()
        return [as_text(r[0]) for r in rows]


def _clauses(where: AuditFilter) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    for column, value in (
        ("kind", where.kind),
        ("actor", where.actor),
        ("subject", where.subject),
    ):
        if value:
            clauses.append(f"{column} = ?")
            args.append(value)
    if where.time_from:
        clauses.append("time >= ?")
        args.append(where.time_from)
    if where.time_to:
        clauses.append("time < ?")
        args.append(where.time_to)
    return clauses, args


def _entry(r: tuple[object, ...]) -> AuditEntry:
    seq, time_, kind, actor, subject, data, prev_hash, hash_ = r
    try:
        parsed = json.loads(as_text(data))
    except ValueError:
        parsed = {"(stored data is not JSON)": as_text(data)}
    if not isinstance(parsed, dict):
        parsed = {"(stored data)": parsed}
    return AuditEntry(
        int(seq),  # type: ignore[call-overload]
        as_text(time_), as_text(kind), as_text(actor), as_text(subject),
        parsed, as_text(prev_hash), as_text(hash_),
    )  # fmt: skip
