"""The dock database's connection: the file, one connection per thread, write transactions.

:class:`~dock.storage.store.Store` is built on this with its parts
(:mod:`.store_officers`, :mod:`.store_archive`); each part's statements run on the same
per-thread connection, so a caller's transaction spans them all.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from dock.storage import schema
from dock.storage.sqlite_tx import immediate


class StoreError(Exception):
    """A request the data does not allow (unknown officer, duplicate badge, ...)."""


class StoreBase:
    """Thread-safe: one connection per thread, all on the same file."""

    def __init__(self, path: str, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._local = threading.local()
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, mode=0o700, exist_ok=True)
        db = self._db()
        ok = db.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise StoreError(f"{path}: database damaged ({ok}); restore it from backup")
        schema.apply(db)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA foreign_keys=ON")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db())

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the store stamps rows with (tests pass a fake one)."""
        return self._clock

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
