"""The audit log's schema (audit.db) and its versions.

Version 1 is the schema of the first releases, which kept no version: a database without
one is given 1 once its tables are checked to be those. The tables, indexes and append-
only triggers are (re)made ``IF NOT EXISTS`` at every open, as before versions were kept.

A later version may only add: tables, columns, indexes. The chain is evidence, and a
migration that rewrote it would make every earlier export and checkpoint a liar, so each
numbered step is checked: the rows of ``entries``, ``checkpoints`` and ``meta``, every
table's existing columns and the append-only triggers are the same after it, or the step
is rolled back (:func:`keeps_chain`).
"""

from __future__ import annotations

import hashlib
import sqlite3

from common.sqlite_schema import (
    SchemaError,
    Step,
    Upgrade,
    migrate,
    require_tables,
    run_all,
    table_columns,
)
from common.sqlite_schema import schema_state as read_schema_state

#: The schema this code writes, in ``PRAGMA user_version``.
SCHEMA_VERSION = 1

_APPEND_ONLY = "BEFORE {op} ON {table} BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"

#: The triggers that keep the chain append-only.
TRIGGERS = tuple(
    f"{table}_no_{op.lower()}"
    for table in ("entries", "checkpoints")
    for op in ("UPDATE", "DELETE")
)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        seq INTEGER PRIMARY KEY,
        head_hash TEXT NOT NULL,
        time TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature TEXT NOT NULL
    )""",
    # Guards against the dock's own code (a purge job, a migration), not against an
    # attacker, who can drop them: verify() is what catches an attacker.
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} "
        + _APPEND_ONLY.format(op=op, table=table)
        for table in ("entries", "checkpoints")
        for op in ("UPDATE", "DELETE")
    ),
    # Read by the statistics and the audit viewer (kind over a period), never by the
    # chain: an index is not part of what the hashes cover.
    "CREATE INDEX IF NOT EXISTS entries_by_kind_time ON entries(kind, time)",
    # The viewer's filters by device and by person, and a device's history, paged by seq.
    "CREATE INDEX IF NOT EXISTS entries_by_subject ON entries(subject, seq)",
    "CREATE INDEX IF NOT EXISTS entries_by_actor ON entries(actor, seq)",
)

_TABLES = (
    ("entries", "seq, time, kind, actor, subject, data, prev_hash, hash"),
    ("checkpoints", "seq, head_hash, time, public_key, signature"),
    ("meta", "key, value"),
)


def _version_1(db: sqlite3.Connection) -> None:
    """Records the version of a database the first releases made, once its tables are
    today's; a new database's tables were just made."""
    require_tables(db, run_all(*SCHEMA))


#: Numbered steps: (version, step), in order; each may only add (see :func:`keeps_chain`).
MIGRATIONS: tuple[tuple[int, Step], ...] = ((1, _version_1),)


def fingerprint(db: sqlite3.Connection) -> tuple[str, dict[str, list[str]], list[str]]:
    """What no migration may change: a digest of every row of the chain's tables (their
    original columns, in order), the tables' columns, and the append-only triggers."""
    digest = hashlib.sha256()
    for table, columns in _TABLES:
        digest.update(f"\x00{table}\x00".encode())
        for row in db.execute(f"SELECT {columns} FROM {table} ORDER BY 1"):
            digest.update(repr(tuple(row)).encode("utf-8", "surrogatepass"))
    triggers = sorted(
        str(r[0])
        for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        if str(r[0]) in TRIGGERS
    )
    return digest.hexdigest(), table_columns(db), triggers


def keeps_chain(number: int, step: Step) -> Step:
    """``step``, refused (SchemaError, its transaction rolled back) if it changed a row
    of the chain, dropped or changed a column or table, or dropped a trigger."""

    def checked(db: sqlite3.Connection) -> None:
        rows, columns, triggers = fingerprint(db)
        step(db)
        rows_after, columns_after, triggers_after = fingerprint(db)
        kept_columns = all(columns_after.get(t, [])[: len(c)] == c for t, c in columns.items())
        if rows_after != rows or not kept_columns or triggers_after != triggers:
            raise SchemaError(
                f"{_path(db)}: audit schema step {number} would change the chain's rows, "
                "columns or triggers: a migration of the audit log may only add"
            )

    return checked


def apply(db: sqlite3.Connection, path: str) -> Upgrade:
    """Bring audit.db to :data:`SCHEMA_VERSION` (a backup first when it is behind);
    every numbered step runs under :func:`keeps_chain`."""
    steps = [(n, keeps_chain(n, step)) for n, step in MIGRATIONS]
    return migrate(db, path, SCHEMA_VERSION, steps, every_open=run_all(*SCHEMA))


def schema_state(path: str) -> tuple[int | None, int]:
    """(audit.db's schema version, this code's) read without writing (``dock check``)."""
    return read_schema_state(path, SCHEMA_VERSION)


def _path(db: sqlite3.Connection) -> str:
    return str(db.execute("PRAGMA database_list").fetchone()[2])


__all__ = ["MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "apply", "keeps_chain", "schema_state"]
