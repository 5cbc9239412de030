"""One write transaction on an SQLite connection, the same way everywhere in the dock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (the write lock now, not at the first write: no deadlock
    between two writers), ``COMMIT``; ``ROLLBACK`` on any error, also when ``COMMIT``
    itself failed (a full disk), so the connection is never left inside a transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
