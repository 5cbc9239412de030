"""Headquarters' fleet database: every table and index, created when a Store opens.

Apart from :mod:`hq.store` so the tables can be read in one place; ``CREATE ... IF NOT
EXISTS`` throughout, so opening an existing file changes nothing. The schema's version is
kept in ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`, brought forward at open by
:func:`apply`, a backup first: :mod:`common.sqlite_schema`). :data:`SCHEMA` is version 1
as the first releases made it; every change since is a numbered step in :data:`MIGRATIONS`.
"""

from __future__ import annotations

import sqlite3

from common.sqlite_schema import Step, Upgrade, migrate, require_tables, run_all, statements
from common.sqlite_schema import schema_state as read_schema_state

#: The schema this code writes: 1, the tables below, which the first releases made
#: without a version; 2, the docks' replication backlog (:data:`REPLICATION`).
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS docks (
    site TEXT NOT NULL, dock TEXT NOT NULL,
    state TEXT, state_time TEXT, boot TEXT,
    software TEXT, config_hash TEXT, policy TEXT, started TEXT, slot_ids TEXT,
    last_seen_at REAL, last_health_at REAL,
    health_boot TEXT, health_seq INTEGER, health_time TEXT, health TEXT,
    outbox_pending INTEGER,
    PRIMARY KEY (site, dock)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slots (
    site TEXT NOT NULL, dock TEXT NOT NULL, slot TEXT NOT NULL,
    state TEXT, serial TEXT, battery_pct REAL, battery_health_pct REAL, drift_s REAL,
    failed TEXT, time TEXT,
    PRIMARY KEY (site, dock, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    site TEXT NOT NULL, dock TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL,
    type TEXT NOT NULL, time TEXT NOT NULL, received_at REAL NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (site, dock, boot, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS boots (
    site TEXT NOT NULL, dock TEXT NOT NULL, boot TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,   -- distinct seqs stored
    max_seq INTEGER NOT NULL DEFAULT 0,    -- highest seq stored
    last_event INTEGER NOT NULL DEFAULT 0, -- highest seq the dock said it sent
    PRIMARY KEY (site, dock, boot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    site TEXT NOT NULL, dock TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    t REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_key ON failures (site, dock, kind, subject, t);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, dock TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    detail TEXT NOT NULL, opened_at REAL NOT NULL, last_at REAL NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    closed_at REAL, acked_by TEXT, acked_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (site, dock, kind, subject)
    WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, dock TEXT NOT NULL, command TEXT NOT NULL,
    args TEXT NOT NULL, by TEXT NOT NULL, issued TEXT NOT NULL, sent_at REAL,
    reply_ok INTEGER, reply_error TEXT, reply_time TEXT
);
-- Audit checkpoints docks reported (hq/checkpoints.py): status 1 accepted, 0 rejected
-- (an alert says why), -1 forgotten by a person (dock-hq checkpoint --forget).
CREATE TABLE IF NOT EXISTS checkpoints (
    site TEXT NOT NULL, dock TEXT NOT NULL, seq INTEGER NOT NULL, head TEXT NOT NULL,
    time TEXT NOT NULL, t REAL NOT NULL, prev_seq INTEGER, prev_head TEXT,
    public_key TEXT, signature TEXT, status INTEGER NOT NULL, received_at REAL NOT NULL,
    boot TEXT, event_seq INTEGER, forgotten_by TEXT, forgotten_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS checkpoints_accepted ON checkpoints (site, dock, seq)
    WHERE status = 1;
CREATE INDEX IF NOT EXISTS checkpoints_rejected ON checkpoints (site, dock, seq, head)
    WHERE status = 0;
"""


#: Version 2: each dock's replication backlog per target, as its newest health said
#: (MQTT.md, health ``replication``); ``deadline_hours`` is the dock's policy.
REPLICATION = """
CREATE TABLE IF NOT EXISTS replication (
    site TEXT NOT NULL, dock TEXT NOT NULL, target TEXT NOT NULL,
    pending INTEGER NOT NULL, sending INTEGER NOT NULL, failed INTEGER NOT NULL,
    replicated_24h INTEGER NOT NULL, oldest_pending_at TEXT, last_success_at TEXT,
    last_error TEXT, deadline_hours REAL NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (site, dock, target)
) WITHOUT ROWID
"""


def _version_1(db: sqlite3.Connection) -> None:
    """Records the version once the tables are today's (a new database's just were)."""
    require_tables(db, run_all(*statements(SCHEMA)))


#: Numbered steps: (version, step), in order.
MIGRATIONS: tuple[tuple[int, Step], ...] = ((1, _version_1), (2, run_all(REPLICATION)))


def apply(db: sqlite3.Connection, path: str) -> Upgrade:
    """Bring the fleet database to :data:`SCHEMA_VERSION`; SchemaTooNew (one line) for a
    database a newer release wrote."""
    today = run_all(*statements(SCHEMA))  # made at every open, as before versions
    return migrate(db, path, SCHEMA_VERSION, MIGRATIONS, every_open=today)


def schema_state(path: str) -> tuple[int | None, int]:
    """(the fleet database's schema version, this code's), read without writing."""
    return read_schema_state(path, SCHEMA_VERSION)
