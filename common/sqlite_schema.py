"""Schema versions for every SQLite database of the project, and the upgrade at start.

Each database says its schema in ``PRAGMA user_version``. At start its owner calls
:func:`migrate` with the version its code writes and its numbered steps; a database
that is behind is first copied (the SQLite backup API, a consistent snapshot, fsynced)
to ``<file>.v<old>.<UTC time>.bak`` beside it, then brought forward one step at a time,
each step in its own write transaction that also sets ``user_version`` to the step's
number. A process killed meanwhile leaves a database at the last step that committed;
the next start goes on from there. A database newer than the code is refused with one
line: the older code cannot know what the newer one changed.

:func:`schema_state` reads the version without writing anything (``dock check``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: A schema step: statements run on the connection inside a write transaction.
Step = Callable[[sqlite3.Connection], None]

log = logging.getLogger("upgrade")

#: How many backup names are tried when one of the same second already exists.
_NAME_TRIES = 100
_HEADER = b"SQLite format 3\x00"
_USER_VERSION_AT = 60  # the database header's user_version field: 4 bytes, big-endian


class SchemaError(sqlite3.DatabaseError):
    """A database this code cannot bring to its schema; the message is one line."""


class SchemaTooNew(SchemaError):
    """The database was written by a newer release than this one."""


@dataclass(frozen=True)
class Upgrade:
    """What :func:`migrate` did: the version found, the version now, and the backup
    written before the first step (None: none was needed)."""

    found: int
    version: int
    backup: str | None


def migrate(
    db: sqlite3.Connection,
    path: str,
    version: int,
    steps: Sequence[tuple[int, Step]],
    *,
    every_open: Step | None = None,
) -> Upgrade:
    """Bring the database at ``path`` (open as ``db``, autocommit: ``isolation_level``
    None, no transaction open) to schema ``version``.

    ``steps``: (number, step) in increasing order, the last numbered ``version``; those
    numbered above the database's version run, in order, each in its own transaction
    with foreign keys off and checked before the commit (SQLite's way to rebuild a
    table). ``every_open``: an idempotent step (``CREATE ... IF NOT EXISTS``) run at
    every open, after the backup and before the numbered steps.

    The backup is written under the write lock, in the transaction of the first step:
    two processes starting at once (the daemon and the web site) make one backup.
    """
    numbers = [n for n, _ in steps]
    if numbers != sorted(set(numbers)) or (numbers and numbers[-1] != version):
        raise ValueError(f"steps {numbers} do not lead in order to version {version}")
    found = user_version(db)
    _refuse_newer(path, found, version)
    pending = [(n, step) for n, step in steps if n > found]
    backup: list[str] = []

    def first(conn: sqlite3.Connection) -> None:
        """Under the write lock: the backup, unless another process started upgrading
        since ``found`` was read (it made one), then what runs at every open."""
        now = user_version(conn)
        _refuse_newer(path, now, version)
        if now == found < version and _has_tables(conn) and os.path.isfile(path):
            # From a reader of its own: the backup API waits forever on a connection in a
            # write transaction; a reader sees the last commit, which the lock holds still.
            source = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, timeout=30)
            try:
                backup.append(write_backup(source, path, found))
            finally:
                source.close()
            log.warning(
                "%s: schema %d, this software writes %d: backup written to %s before upgrading",
                path, found, version, backup[0],
            )  # fmt: skip
        if every_open is not None:
            every_open(conn)

    _in_transaction(db, [(None, first), *pending[:1]])  # the backup and the first step
    for number, step in pending[1:]:
        _in_transaction(db, [(number, step)])
    return Upgrade(found, user_version(db), backup[0] if backup else None)


def _refuse_newer(path: str, found: int, version: int) -> None:
    if found > version:
        raise SchemaTooNew(
            f"{path}: the database is of schema {found}, newer than this software's "
            f"{version}: install the newer release again (or put back the backup "
            "made before the upgrade)"
        )


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _has_tables(db: sqlite3.Connection) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone()
        is not None
    )


def _in_transaction(db: sqlite3.Connection, steps: Sequence[tuple[int | None, Step]]) -> None:
    """One write transaction: each step, and after a numbered one ``user_version`` set to
    its number (None: unchanged). Another process may have run a step since the version
    was read: it is read again under the write lock, and a step done is not run twice.
    Foreign keys are off while a numbered step runs (a table they point at may be
    rebuilt) and checked before the commit."""
    numbered = any(number is not None for number, _ in steps)
    keys_on = numbered and bool(db.execute("PRAGMA foreign_keys").fetchone()[0])
    if keys_on:
        db.execute("PRAGMA foreign_keys=OFF")  # not inside a transaction: it would not take
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            for number, step in steps:
                if number is None:
                    step(db)
                elif user_version(db) < number:
                    step(db)
                    broken = db.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise SchemaError(
                            f"schema step {number} left {len(broken)} broken references"
                        )
                    db.execute(f"PRAGMA user_version = {int(number)}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        if keys_on:
            db.execute("PRAGMA foreign_keys=ON")


def write_backup(db: sqlite3.Connection, path: str, found: int, now: float | None = None) -> str:
    """Copy the database to ``<path>.v<found>.<UTC time>.bak`` and return that name.

    Written under a temporary name and linked into place, so a backup file is always
    whole and an existing one is never overwritten; fsynced (file and folder), with the
    original's mode (and owner, when run as root)."""
    folder = os.path.dirname(os.path.abspath(path))
    st = os.stat(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.v{found}.{os.getpid()}.bak.tmp")
    _remove(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IMODE(st.st_mode))
    try:
        if os.geteuid() == 0:
            os.fchown(fd, st.st_uid, st.st_gid)
        target = sqlite3.connect(tmp)
        try:
            db.backup(target)
        finally:
            target.close()
        os.fsync(fd)
        name = _link_unused(tmp, f"{os.path.abspath(path)}.v{found}.{stamp}")
    finally:
        os.close(fd)
        _remove(tmp)
    _fsync_folder(folder)
    return name


def _link_unused(tmp: str, stem: str) -> str:
    """Link ``tmp`` as ``stem.bak`` (or ``stem-2.bak``, ...): never over an existing file."""
    for n in range(1, _NAME_TRIES + 1):
        name = f"{stem}.bak" if n == 1 else f"{stem}-{n}.bak"
        try:
            os.link(tmp, name)
        except FileExistsError:
            continue
        return name
    raise SchemaError(f"{stem}.bak: {_NAME_TRIES} backups of the same second exist already")


def _remove(path: str) -> None:
    """``path`` and what SQLite may have left beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def schema_state(path: str, code_version: int) -> tuple[int | None, int]:
    """(the database's schema version, ``code_version``) without changing anything:
    None for a database not made yet. Read from the file's header when no other
    process has it open in WAL mode (opening it, even read-only, would leave ``-wal``
    and ``-shm`` files behind, owned by whoever asked); else through a read-only
    connection (``mode=ro``), which sees what the WAL holds. SchemaError (one line)
    for a file that is not an SQLite database."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return None, code_version
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read it ({exc.strerror})") from exc
    if len(header) == 0:
        return 0, code_version  # an empty file is an empty database to SQLite
    if len(header) < 100 or not header.startswith(_HEADER):
        raise SchemaError(f"{path}: not an SQLite database")
    if not (os.path.exists(path + "-wal") and os.path.exists(path + "-shm")):
        return int.from_bytes(header[_USER_VERSION_AT : _USER_VERSION_AT + 4], "big"), code_version
    try:
        db = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, timeout=5)
        try:
            return user_version(db), code_version
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise SchemaError(f"{path}: cannot read its schema version ({exc})") from exc


def _uri_path(path: str) -> str:
    """``path`` for a ``file:`` URI: absolute, with ``?``, ``#`` and ``%`` escaped."""
    escaped = os.path.abspath(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return escaped


def table_columns(db: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table's column names, in order (``sqlite_`` tables left out)."""
    tables = [
        str(r[0])
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: [str(r[1]) for r in db.execute(f'PRAGMA table_info("{t}")')] for t in tables}


def require_tables(db: sqlite3.Connection, today: Step) -> None:
    """SchemaError unless every table ``today`` makes (on an empty database) is in
    ``db`` with the same columns: how a database from before versions were kept is
    recognised as today's before it is given version 1."""
    want_db = sqlite3.connect(":memory:")
    try:
        today(want_db)
        want = table_columns(want_db)
    finally:
        want_db.close()
    have = table_columns(db)
    for table, columns in want.items():
        if have.get(table) != columns:
            found = "missing" if table not in have else f"has columns {have[table]}"
            path = db.execute("PRAGMA database_list").fetchone()[2]
            raise SchemaError(
                f"{path}: not a database this software made (table {table} {found}, "
                f"expected {columns})"
            )


def statements(script: str) -> list[str]:
    """An SQL script's statements, one by one: ``executescript`` would commit the
    transaction a step runs in."""
    found: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            found.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buf.splitlines()
    ):
        raise ValueError(f"an incomplete SQL statement at the end: {buf.strip()[:60]!r}")
    return found


def run_all(*sql: str) -> Step:
    """A step that runs these statements in order."""

    def step(db: sqlite3.Connection) -> None:
        for statement in sql:
            db.execute(statement)

    return step


__all__ = [
    "SchemaError",
    "SchemaTooNew",
    "Step",
    "Upgrade",
    "migrate",
    "require_tables",
    "run_all",
    "schema_state",
    "statements",
    "table_columns",
    "user_version",
    "write_backup",
]
