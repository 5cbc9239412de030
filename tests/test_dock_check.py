"""``dock check`` (dock/cli/check.py): one line per check, ok/WARN/FAIL, exit 1 on a FAIL;
and it changes nothing: no state folder, database, key or lock is made, nothing is
written (the tree's listing and times are the same after it, and it gives the same
answers on a read-only state folder)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dock.cli.check_items import broker, clock, gpio
from dock.cli.main import main
from dock.config import MqttConfig
from tests.service_user import as_entry_point, shared_tmp, throwaway_user


def write_config(folder: Path, extra: str = "", state: Path | None = None) -> Path:
    state = state or folder / "state"
    path = folder / "dock.toml"
    path.write_text(
        f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{state}"\n'
        f'evidence_dir = "{folder}/evidence"\n\n[[slot]]\nid = "1"\nport = "/dev/ttyACM0"\n' + extra
    )
    return path


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    """``dock --config CONFIG check --json``, in this process."""
    code = main(["--config", str(config), "check", "--json"])
    return code, json.loads(capsys.readouterr().out)


def lines_of(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """check name -> (level, reason) (the last line of that name)."""
    return {c["check"]: (c["level"], c["reason"]) for c in report["checks"]}


def snapshot(top: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``top`` with its mode, size and modification time (ns)."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for name in [".", *dirs, *files]:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            found[os.path.relpath(path, top)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def make_state(config: Path) -> None:
    """The state a first start leaves: dock.db, audit.db, signing.key, locks/."""
    done = subprocess.run(
        [*as_entry_point("dock.cli.main"), "--config", str(config), "device", "list"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# --- it creates nothing -----------------------------------------------------------


def test_a_fresh_installation_is_checked_without_making_its_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    before = snapshot(tmp_path)
    code, report = check(config, capsys)
    assert snapshot(tmp_path) == before  # no state folder, no database, no key
    lines = lines_of(report)
    assert lines["state_dir"][0] == "WARN" and "does not exist yet" in lines["state_dir"][1]
    assert lines["dock.db"] == ("ok", "not made yet (the first start makes it, schema 3)")
    assert lines["signing key"][0] == "ok" and "not made yet" in lines["signing key"][1]
    assert code == 0 and report["ok"] is True


def test_an_existing_state_is_read_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    make_state(config)
    before = snapshot(tmp_path)
    code, report = check(config, capsys)
    assert snapshot(tmp_path) == before  # no -wal/-shm left, no key rewritten, no lock
    lines = lines_of(report)
    assert lines["dock.db"] == ("ok", "schema 3")
    assert lines["audit.db"] == ("ok", "schema 1")
    assert lines["signing key"][0] == "ok" and "0600" in lines["signing key"][1]
    assert lines["state files"][0] == "ok"
    assert code == 0, report


def test_a_read_only_state_gives_the_same_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """Run as the state's owner, who may not write it: the databases' versions are read
    all the same (nothing needs opening for writing), and only the folder's own line
    says it is not writable."""
    with throwaway_user() as user, shared_tmp() as tmp:
        folder = Path(tmp)
        state = folder / "state"
        state.mkdir(mode=0o700)
        config = write_config(folder)
        os.chmod(config, 0o644)
        make_state(config)  # as root: then handed to the user, read-only
        for path in [state, *state.rglob("*")]:
            os.chown(path, user.uid, user.gid)
            os.chmod(path, 0o500 if path.is_dir() else 0o400)
        before = snapshot(folder)
        done = subprocess.run(
            [*as_entry_point("dock.cli.main"), "--config", str(config), "check", "--json"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "DOCK_SERVICE_USER": user.name},
        )  # fmt: skip
        assert snapshot(folder) == before
    lines = lines_of(json.loads(done.stdout))
    assert lines["dock.db"] == ("ok", "schema 3") and lines["audit.db"] == ("ok", "schema 1")
    assert lines["state_dir"][0] == "FAIL" and "not writable" in lines["state_dir"][1]
    assert lines["state files"][0] == "ok"  # every file is the user's: it checked as them
    assert done.returncode == 1


# --- what it finds ----------------------------------------------------------------


def test_a_root_owned_file_in_the_state_is_a_failure() -> None:
    """Issue 13: a command once run as root left signing.key owned by root."""
    with throwaway_user() as user, shared_tmp() as tmp:
        folder = Path(tmp)
        state = folder / "state"
        state.mkdir(mode=0o710)
        os.chown(state, user.uid, user.gid)
        (folder / "evidence").mkdir(mode=0o750)
        os.chown(folder / "evidence", user.uid, user.gid)
        (state / "signing.key").write_bytes(b"x" * 32)  # root's, as the bug left it
        os.chmod(state / "signing.key", 0o600)
        config = write_config(folder)
        os.chmod(config, 0o644)
        done = subprocess.run(
            [*as_entry_point("dock.cli.main"), "--config", str(config), "check"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "DOCK_SERVICE_USER": user.name},
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == [
        f"FAIL state files: not owned by {user.name}: signing.key (root); the service cannot "
        f"use them: chown -R {user.name}: {state}"
    ]


def test_bad_modes_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    (state / "signing.key").write_bytes(b"x" * 32)
    os.chmod(state / "signing.key", 0o644)
    secret = tmp_path / "password"
    secret.write_text("hunter2")
    os.chmod(secret, 0o644)
    mqtt = f'host = "127.0.0.1"\nport = 1\nsite = "x"\npassword_file = "{secret}"\nusername = "u"'
    config = write_config(tmp_path, f"\n[mqtt]\n{mqtt}\n")
    code, report = check(config, capsys)
    lines = lines_of(report)
    assert lines["state_dir"] == ("FAIL", f"{state} is writable by everyone: chmod o-w {state}")
    assert lines["signing key"][0] == "FAIL" and "chmod 0600" in lines["signing key"][1]
    assert lines["mqtt.password_file"][0] == "FAIL" and "everyone" in lines["mqtt.password_file"][1]
    assert code == 1 and report["ok"] is False


def test_schema_versions_newer_and_older(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    for name, version in (("dock.db", 99), ("audit.db", 0)):
        db = sqlite3.connect(state / name)
        db.execute("CREATE TABLE t (x)")
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
        db.close()
    (state / "outbox.db").write_bytes(b"not a database, but long enough to have a header" * 3)
    code, report = check(write_config(tmp_path), capsys)
    lines = lines_of(report)
    assert lines["dock.db"][0] == "FAIL" and "newer than this software's 3" in lines["dock.db"][1]
    older = ("WARN", "schema 0: brought to 1 at the next start (a backup first)")
    assert lines["audit.db"] == older
    assert lines["outbox.db"][0] == "FAIL" and "not an SQLite database" in lines["outbox.db"][1]
    assert code == 1


def test_a_bad_configuration_is_its_problems_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "dock.toml"
    config.write_text('[dock]\nid = "d1"\n"\\u001b[2Jsite" = "s"\n')
    code = main(["--config", str(config), "check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "\x1b" not in out and "\\x1b[2Jsite" in out
    assert all(line.startswith("FAIL config: ") for line in out.splitlines()), out
    assert not (tmp_path / "state").exists()


# --- clock, GPIO, broker --------------------------------------------------------


def test_the_clock_is_a_warning_at_worst() -> None:
    assert clock("trusted", 0.5).level == "WARN"
    line = clock("system", 0.5)  # whatever this machine says: never an exception
    assert line.level in ("ok", "WARN") and line.reason


def test_gpio(tmp_path: Path) -> None:
    assert gpio([]).reason == "no GPIO configured"
    nothing = gpio([17, 27], dev=str(tmp_path))
    assert nothing.level == "WARN" and "no " in nothing.reason and "GPIO 17, 27" in nothing.reason
    (tmp_path / "gpiochip0").write_bytes(b"")  # a file, not a GPIO chip
    fake = gpio([17], dev=str(tmp_path))
    assert fake.level == "WARN" and "gpiochip0" in fake.reason


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts and closes each connection (bounded)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        for _ in range(5):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    thread.join(timeout=10)


def test_broker(listener: int, tmp_path: Path) -> None:
    assert broker(MqttConfig()).level == "ok"
    plain = broker(MqttConfig(host="127.0.0.1", port=listener, site="s"))
    assert plain.level == "ok" and "answers" in plain.reason
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # bound, not listening: refused
        refused = broker(MqttConfig(host="127.0.0.1", port=closed_port, site="s"), timeout=2)
    assert refused.level == "WARN" and "unreachable" in refused.reason
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    tls = broker(MqttConfig(host="127.0.0.1", port=listener, site="s", ca_file=str(ca)))
    assert tls.level == "FAIL" and "TLS handshake failed" in tls.reason
