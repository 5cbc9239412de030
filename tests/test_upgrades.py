"""Upgrades keep data (issue 13): the databases a release wrote (committed under
tests/fixtures/upgrade/v<N>/ by make_fixtures.py) open with this code with every row
intact, the audit chain still verifying, and the version this code writes; a schema
step to come is preceded by a backup of the old database, runs in its own transaction,
and a start killed between two steps is finished by the next; a database from a newer
release is refused in one line."""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common import sqlite_schema
from common.sqlite_schema import SchemaError, SchemaTooNew, schema_state, write_backup
from dock.reporting import outbox as outbox_module
from dock.reporting.outbox import Outbox
from dock.storage import schema as dock_schema
from dock.storage.audit import AuditLog
from dock.storage.audit import schema as audit_schema
from dock.storage.store import Store
from hq import schema as fleet_schema
from hq.store import Store as FleetStore
from tests.fixtures.upgrade.make_fixtures import DOCK_ID, audit_key

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "upgrade").glob("v*"))


@dataclass(frozen=True)
class Database:
    """One of the four databases: its file, its schema module, how its owner opens it."""

    file: str
    module: Any  # holds SCHEMA_VERSION and MIGRATIONS
    open: Callable[[str], Any]


DATABASES = {
    "dock.db": Database("dock.db", dock_schema, Store),
    "audit.db": Database("audit.db", audit_schema, lambda p: AuditLog(p, audit_key(), DOCK_ID)),
    "outbox.db": Database("outbox.db", outbox_module, Outbox),
    "fleet.db": Database("fleet.db", fleet_schema, FleetStore),
}


def version_of(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def rows(path: Path | str, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in db.execute(query)]
    finally:
        db.close()


def backups(folder: Path, name: str) -> list[str]:
    return sorted(glob.glob(str(folder / f"{name}.v*.bak")))


@pytest.fixture(params=FIXTURES, ids=lambda p: p.name)
def release(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of one release's databases, as an installed dock and headquarters keep them."""
    folder = tmp_path / "state"
    shutil.copytree(request.param, folder)
    return folder


@pytest.fixture
def opened() -> Iterator[Callable[[Database, Path], Any]]:
    """Open a database with its owner's class; closed at the end of the test."""
    handles: list[Any] = []

    def open_(db: Database, path: Path) -> Any:
        handle = db.open(str(path))
        handles.append(handle)
        return handle

    yield open_
    for handle in handles:
        handle.close()


# --- a release's databases, opened by this code ---------------------------------------


def test_a_releases_databases_open_with_their_data(release: Path, opened: Callable) -> None:
    found = {name: version_of(release / name) for name in DATABASES}
    dock = opened(DATABASES["dock.db"], release / "dock.db")
    audit = opened(DATABASES["audit.db"], release / "audit.db")
    outbox = opened(DATABASES["outbox.db"], release / "outbox.db")
    fleet = opened(DATABASES["fleet.db"], release / "fleet.db")

    assert {o.officer_id: o.role for o in dock.officers()} == {"S1": "supervisor", "O7": "officer"}
    assert dock.check_pin("O7", "715382")
    assert [d.serial for d in dock.devices()] == ["BWC-0001"]
    assert dock.archived("BWC-0001", "REC-0001")["officer_id"] == "O7"
    assert [r["recording_id"] for r in dock.case_recordings("2026-0001")] == ["REC-0001"]
    [episode] = dock.custody_history()
    assert episode.officer_id == "O7" and episode.in_at is not None

    report = audit.verify()
    assert report.ok, report
    assert audit.head()[0] == 7 and [e.kind for e in audit.entries()][-1] == "device_flag"
    assert audit.checkpoints()  # the signed checkpoints are still there, and still verify

    assert outbox.count_pending() == 4 and outbox.cursor("audit") == 6

    assert {a["kind"] for a in fleet.alerts(include_closed=True)} == {"dock_lost", "scanner_hit"}
    assert fleet.gaps("site-1", DOCK_ID, "boot-1", 4) == [(3, 3)]
    assert [d["dock"] for d in fleet.fleet()] == [DOCK_ID]

    for name, db in DATABASES.items():
        assert version_of(release / name) == db.module.SCHEMA_VERSION, name
        made = backups(release, name)
        if found[name] == db.module.SCHEMA_VERSION:
            assert made == [], f"{name}: nothing to migrate, yet a backup"
        else:
            [backup] = made
            assert f".v{found[name]}." in backup and version_of(Path(backup)) == found[name]


def test_a_second_start_migrates_nothing_and_backs_up_nothing(
    release: Path, opened: Callable
) -> None:
    for db in DATABASES.values():
        opened(db, release / db.file).close()
    before = {name: backups(release, name) for name in DATABASES}
    for db in DATABASES.values():
        opened(db, release / db.file)
    assert {name: backups(release, name) for name in DATABASES} == before


def test_the_audit_chain_in_the_backup_is_the_one_upgraded(release: Path, opened: Callable) -> None:
    """The upgrade rewrote nothing: the backup's entries and checkpoints are the log's."""
    audit = opened(DATABASES["audit.db"], release / "audit.db")
    audit.close()
    query = "SELECT seq, hash FROM entries UNION ALL SELECT seq, signature FROM checkpoints"
    for backup in backups(release, "audit.db"):
        assert rows(backup, query) == rows(release / "audit.db", query)


# --- a step to come ----------------------------------------------------------------------

PROBE = "CREATE TABLE upgrade_probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"


class Killed(Exception):
    """The process 'dies' here: the step raised after the step before it committed."""


@pytest.mark.parametrize("name", list(DATABASES))
def test_a_future_step_backs_up_first_runs_and_resumes_after_a_kill(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: Callable
) -> None:
    db = DATABASES[name]
    path = tmp_path / name
    shutil.copyfile(FIXTURES[-1] / name, path)
    opened(db, path).close()  # today's version first (a 0 -> 1 backup may be made here)
    today = db.module.SCHEMA_VERSION
    old_backups = backups(tmp_path, name)
    before = rows(path, "SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    counts = {t: rows(path, f"SELECT count(*) FROM {t}")[0][0] for t, _ in before}
    seen_backup_in_step: list[bool] = []
    dies = [True]

    def add_probe(conn: sqlite3.Connection) -> None:
        seen_backup_in_step.append(len(backups(tmp_path, name)) == len(old_backups) + 1)
        conn.execute(PROBE)

    def second(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO upgrade_probe (note) VALUES ('second step')")
        if dies[0]:
            raise Killed

    steps = (*db.module.MIGRATIONS, (today + 1, add_probe), (today + 2, second))
    monkeypatch.setattr(db.module, "MIGRATIONS", steps)
    monkeypatch.setattr(db.module, "SCHEMA_VERSION", today + 2)

    with pytest.raises(Killed):
        opened(db, path)
    assert seen_backup_in_step == [True]  # the backup was there before the first step ran
    assert version_of(path) == today + 1  # the first step committed, with its number
    assert rows(path, "SELECT note FROM upgrade_probe") == []  # the second rolled back
    [backup] = sorted(set(backups(tmp_path, name)) - set(old_backups))
    assert version_of(Path(backup)) == today
    assert rows(backup, "SELECT name, sql FROM sqlite_master WHERE type = 'table'") == before
    assert oct(stat.S_IMODE(os.stat(backup).st_mode)) == oct(stat.S_IMODE(os.stat(path).st_mode))

    dies[0] = False  # the next start
    opened(db, path)
    assert version_of(path) == today + 2
    assert rows(path, "SELECT note FROM upgrade_probe") == [("second step",)]
    assert seen_backup_in_step == [True]  # the first step was not run again
    for table, count in counts.items():  # every row kept
        assert rows(path, f"SELECT count(*) FROM {table}")[0][0] == count, table
    if name == "audit.db":
        assert opened(db, path).verify().ok


def test_an_audit_step_that_would_rewrite_the_chain_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: Callable
) -> None:
    """A migration of the audit log may add; one that drops a trigger to change an entry,
    or changes meta, is rolled back and the log still verifies."""
    db = DATABASES["audit.db"]
    path = tmp_path / "audit.db"
    shutil.copyfile(FIXTURES[-1] / "audit.db", path)
    opened(db, path).close()

    def rewrites(conn: sqlite3.Connection) -> None:
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("UPDATE entries SET actor = 'nobody' WHERE seq = 1")
        conn.execute(
            "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries "
            "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
        )

    def adds(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE entries ADD COLUMN shipped_at TEXT")
        conn.execute(PROBE)

    for step in (rewrites, lambda conn: conn.execute("DELETE FROM meta")):
        monkeypatch.setattr(db.module, "MIGRATIONS", (*audit_schema.MIGRATIONS[:1], (2, step)))
        monkeypatch.setattr(db.module, "SCHEMA_VERSION", 2)
        with pytest.raises(SchemaError, match="may only add"):
            opened(db, path)
        assert version_of(path) == 1
    monkeypatch.setattr(db.module, "MIGRATIONS", (*audit_schema.MIGRATIONS[:1], (2, adds)))
    log = opened(db, path)
    assert version_of(path) == 2 and log.verify().ok
    first, *_ = log.entries()
    assert first.actor == "admin"  # the entry the refused step tried to change


# --- a database from a newer release ------------------------------------------------------


@pytest.mark.parametrize("name", list(DATABASES))
def test_a_database_from_a_newer_release_is_refused_untouched(
    name: str, tmp_path: Path, opened: Callable
) -> None:
    db = DATABASES[name]
    path = tmp_path / name
    shutil.copyfile(FIXTURES[-1] / name, path)
    newer = db.module.SCHEMA_VERSION + 1
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    content = path.read_bytes()
    with pytest.raises(SchemaTooNew) as refused:
        opened(db, path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message
    assert f"schema {newer}" in message and f"software's {db.module.SCHEMA_VERSION}" in message
    assert path.read_bytes() == content and backups(tmp_path, name) == []


@pytest.mark.parametrize(("command", "name"), [("status", "dock.db"), ("outbox", "outbox.db")])
def test_dock_on_a_newer_database_says_so_in_one_line(
    command: str, name: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copyfile(FIXTURES[-1] / name, state / name)
    raw = sqlite3.connect(state / name)
    raw.execute(f"PRAGMA user_version = {DATABASES[name].module.SCHEMA_VERSION + 1}")
    raw.close()
    config = tmp_path / "dock.toml"
    config.write_text(
        f'[dock]\nid = "{DOCK_ID}"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{tmp_path / "evidence"}"\n\n'
        '[[slot]]\nid = "1"\nport = "tcp://127.0.0.1:1"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "dock.cli.main", "--config", str(config), command],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert str(state / name) in line and "newer" in line, line
    assert "may write" not in line  # not told to look at permissions: it is the version


def test_dock_hq_on_a_newer_fleet_database_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    shutil.copyfile(FIXTURES[-1] / "fleet.db", path)
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {fleet_schema.SCHEMA_VERSION + 1}")
    raw.close()
    done = subprocess.run(
        [sys.executable, "-m", "hq.cli", "fleet", "--db", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert str(path) in line and "newer" in line, line


# --- the steps themselves ------------------------------------------------------------------


def schema_sql(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return sorted(db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"))


def fresh(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    return db


@pytest.fixture(scope="module")
def dock_schema_at_once(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    db = fresh(tmp_path_factory.mktemp("at_once") / "dock.db")
    try:
        dock_schema.apply(db)
        return schema_sql(db)
    finally:
        db.close()


@pytest.mark.parametrize("k", range(len(dock_schema.STEPS) + 1))
def test_any_prefix_of_dock_steps_then_the_rest_is_the_same_schema(
    k: int, tmp_path: Path, dock_schema_at_once: list
) -> None:
    """A dock.db left after any first k steps (an older release, or a start killed
    there) is brought to the schema a new database gets, whichever k."""
    db = fresh(tmp_path / "dock.db")
    try:
        for step in dock_schema.STEPS[:k]:
            step(db)
        dock_schema.apply(db)
        assert schema_sql(db) == dock_schema_at_once
        assert sqlite_schema.user_version(db) == dock_schema.SCHEMA_VERSION
    finally:
        db.close()


def every_step(db: sqlite3.Connection) -> None:
    for step in dock_schema.STEPS:
        step(db)


@pytest.mark.parametrize("j", range(len(dock_schema.MIGRATIONS) + 1))
def test_any_prefix_of_dock_migrations_then_the_rest_is_the_same_schema(
    j: int, tmp_path: Path, dock_schema_at_once: list
) -> None:
    db = fresh(tmp_path / "dock.db")
    try:
        done = dock_schema.MIGRATIONS[:j]
        version = done[-1][0] if done else 0
        sqlite_schema.migrate(db, str(tmp_path / "dock.db"), version, done, every_open=every_step)
        assert sqlite_schema.user_version(db) == version
        dock_schema.apply(db)
        assert schema_sql(db) == dock_schema_at_once
    finally:
        db.close()


# --- backups and the read-only look ------------------------------------------------------


def test_a_backup_never_overwrites_another_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    shutil.copyfile(FIXTURES[-1] / "outbox.db", path)
    os.chmod(path, 0o640)
    db = sqlite3.connect(path)
    try:
        first = write_backup(db, str(path), 0, now=1_767_225_600.0)
        second = write_backup(db, str(path), 0, now=1_767_225_600.0)
    finally:
        db.close()
    assert first == f"{path}.v0.20260101T000000Z.bak"
    assert second == f"{path}.v0.20260101T000000Z-2.bak"
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["outbox.db", os.path.basename(first), os.path.basename(second)]
    )  # no temporary file left
    for made in (first, second):
        assert stat.S_IMODE(os.stat(made).st_mode) == 0o640
        assert rows(made, "SELECT count(*) FROM events") == [(4,)]


def test_two_processes_starting_at_once_make_one_backup_and_run_each_step_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon and the web site start together after an upgrade: the one that takes
    the write lock second finds the upgrade under way, and neither backs up nor steps
    again."""
    path = tmp_path / "x.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (a)")
    setup.execute("PRAGMA user_version = 1")
    setup.close()
    second_has_read = threading.Event()
    ran: list[str] = []
    read_version = sqlite_schema.user_version

    def user_version(db: sqlite3.Connection) -> int:
        version = read_version(db)
        if threading.current_thread().name == "second":
            second_has_read.set()  # after the read: set before, the first could commit first
        return version

    monkeypatch.setattr(sqlite_schema, "user_version", user_version)
    results: dict[str, sqlite_schema.Upgrade] = {}

    def start(name: str) -> None:
        db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        try:
            results[name] = sqlite_schema.migrate(db, str(path), 2, steps)
        finally:
            db.close()

    def step_2(db: sqlite3.Connection) -> None:
        ran.append(threading.current_thread().name)
        second.start()  # it reads version 1 while this one holds the lock, then waits
        assert second_has_read.wait(10)
        db.execute("ALTER TABLE t ADD COLUMN b")

    steps = [(1, lambda db: None), (2, step_2)]
    second = threading.Thread(target=start, args=("second",), name="second")
    start("first")
    second.join(30)
    assert not second.is_alive()
    assert ran == [threading.main_thread().name]  # step 2 ran once, in the first
    assert results["second"].found == 1 and results["second"].backup is None
    assert results["first"].backup is not None and backups(tmp_path, "x.db") == [
        results["first"].backup
    ]
    assert version_of(path) == 2


def test_a_start_that_finds_an_upgrade_under_way_backs_up_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second of two starts read version 1 before the first committed step 2 of 3:
    under the lock it finds 2, and goes on from there without a second backup (which
    would say version 1 and hold version 2)."""
    path = tmp_path / "x.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (a)")
    setup.execute("PRAGMA user_version = 1")
    setup.close()
    dies = [True]

    def step_3(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE t ADD COLUMN c")
        if dies[0]:
            raise Killed

    steps = [(1, lambda db: None), (2, lambda db: db.execute("ALTER TABLE t ADD COLUMN b")),
             (3, step_3)]  # fmt: skip
    first = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(Killed):  # the first start, still at work: step 2 done, 3 not yet
        sqlite_schema.migrate(first, str(path), 3, steps)
    first.close()
    [made] = backups(tmp_path, "x.db")
    reads = iter([1])  # what the second start read before the first committed step 2
    read_version = sqlite_schema.user_version
    monkeypatch.setattr(
        sqlite_schema, "user_version", lambda db: next(reads, None) or read_version(db)
    )
    dies[0] = False
    second = sqlite3.connect(path, isolation_level=None)
    try:
        done = sqlite_schema.migrate(second, str(path), 3, steps)
    finally:
        second.close()
    assert (done.found, done.version, done.backup) == (1, 3, None)
    assert backups(tmp_path, "x.db") == [made]


@pytest.mark.parametrize("name", list(DATABASES))
def test_schema_state_reads_the_version_and_writes_nothing(
    name: str, tmp_path: Path, opened: Callable
) -> None:
    db = DATABASES[name]
    path = tmp_path / name
    shutil.copyfile(FIXTURES[-1] / name, path)
    found_before = version_of(path)
    content, listing = path.read_bytes(), sorted(os.listdir(tmp_path))
    assert db.module.schema_state(str(path)) == (found_before, db.module.SCHEMA_VERSION)
    assert path.read_bytes() == content and sorted(os.listdir(tmp_path)) == listing
    handle = opened(db, path)  # open (WAL in use): read through a read-only connection
    assert db.module.schema_state(str(path)) == (db.module.SCHEMA_VERSION,) * 2
    handle.close()
    assert db.module.schema_state(str(tmp_path / "none.db")) == (None, db.module.SCHEMA_VERSION)


def test_schema_state_of_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dock.db"
    path.write_bytes(b"not a database, but long enough to have a header " * 4)
    with pytest.raises(SchemaError, match="not an SQLite database") as refused:
        schema_state(str(path), 3)
    assert "\n" not in str(refused.value)


def test_the_daemon_on_a_newer_outbox_runs_without_reporting_and_says_why(
    tmp_path: Path,
) -> None:
    """A dock downgraded under a newer outbox keeps offloading; reporting stays off, one
    error line (no traceback) names the file, and the outbox is left as it was."""
    state = tmp_path / "state"
    state.mkdir()
    shutil.copyfile(FIXTURES[-1] / "outbox.db", state / "outbox.db")
    raw = sqlite3.connect(state / "outbox.db")
    raw.execute(f"PRAGMA user_version = {outbox_module.SCHEMA_VERSION + 1}")
    raw.close()
    content = (state / "outbox.db").read_bytes()
    config = tmp_path / "dock.toml"
    config.write_text(
        f'[dock]\nid = "{DOCK_ID}"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{tmp_path / "evidence"}"\n\n'
        '[[slot]]\nid = "1"\nport = "tcp://127.0.0.1:1"\n\n'
        '[mqtt]\nhost = "127.0.0.1"\nport = 1\nsite = "s"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "dock.cli.main", "--config", str(config), "run", "--once"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if "reporting to headquarters" in x]
    assert str(state / "outbox.db") in line and "newer" in line, line
    assert (state / "outbox.db").read_bytes() == content
