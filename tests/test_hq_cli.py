"""dock-hq as an operator runs it: subprocesses against a real mosquitto and a real file."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hq.commands import load_key, public_key_b64
from hq.store import Store
from mqtt_contract import contract
from tests.broker import Broker, find_mosquitto
from tests.test_hq_monitor import WAIT, FakeDock, verify, wait_until

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")

ROOT = Path(__file__).resolve().parent.parent


def dock_hq(
    *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hq.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def key(tmp_path) -> tuple[str, bytes]:
    path = str(tmp_path / "hq.pem")
    done = dock_hq("keygen", "--out", path)
    assert done.returncode == 0, done.stderr
    return path, base64.b64decode(done.stdout.strip())


@pytest.fixture
def daemon(mosquitto, tmp_path) -> Iterator[tuple[subprocess.Popen, str]]:
    db = str(tmp_path / "fleet.sqlite3")
    cfg = tmp_path / "hq.toml"
    cfg.write_text(f'port = {mosquitto.port}\ndb = "{db}"\nname = "cli"\nbattery_health_min = 75\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "hq.cli", "run", "--config", str(cfg), "--log-format", "json"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: b"hq-cli" in _log(mosquitto) and os.path.exists(db), "dock-hq run")
        yield proc, db
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(WAIT)


def _log(broker: Broker) -> bytes:
    return broker.log_text().encode()


def test_keygen_writes_a_private_key_0600_and_prints_the_public_one(key, tmp_path):
    path, public = key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert base64.b64decode(public_key_b64(load_key(path))) == public
    assert len(public) == 32
    again = dock_hq("keygen", "--out", path)
    assert again.returncode == 2 and "refusing" in again.stderr


def test_run_fleet_alerts_ack(mosquitto, daemon, tmp_path):
    proc, db = daemon
    dock = FakeDock(mosquitto, site="north", dock="dock-07")
    try:
        # the subscription may come a moment after the connection: repeat until stored
        def arrived() -> list:
            dock.birth()
            dock.state("ready")
            slot = {"slot": "1", "state": "ready", "serial": "BWC-1", "battery_pct": 90}
            dock.health(1, slots=[{**slot, "battery_health_pct": 70, "drift_s": 0.0}])
            out = dock_hq("fleet", "--db", db, "--json")
            assert out.returncode == 0, out.stderr
            return [d for d in json.loads(out.stdout) if d["health_seq"] == 1 and d["software"]]

        [row] = wait_until(arrived, "the dock in fleet --json")
        assert (row["site"], row["dock"], row["state"]) == ("north", "dock-07", "ready")
        assert row["outbox_pending"] == 0 and row["slot_ids"] == ["1", "2"]
        assert row["open_alerts"] == {"battery_health": 1}  # 70 % < battery_health_min 75

        table = dock_hq("fleet", "--db", db)
        assert table.returncode == 0
        assert "dock-07" in table.stdout and "0.1.0" in table.stdout
        assert all(len(line) <= 80 for line in table.stdout.splitlines())

        listed = dock_hq("alerts", "--db", db, "--json")
        [alert] = json.loads(listed.stdout)
        assert alert["kind"] == "battery_health" and alert["subject"] == "BWC-1"
        text = dock_hq("alerts", "--db", db).stdout
        assert "battery_health" in text and all(len(x) <= 80 for x in text.splitlines())

        acked = dock_hq("ack", str(alert["id"]), "--by", "duty officer", "--db", db)
        assert acked.returncode == 0, acked.stderr
        [alert] = json.loads(dock_hq("alerts", "--db", db, "--json").stdout)
        assert alert["acked_by"] == "duty officer"  # a condition: open until the battery is fine
        assert dock_hq("ack", "999", "--by", "x", "--db", db).returncode == 1
    finally:
        dock.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT) == 0
    logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "monitor stopped" for entry in logs)


def test_command_round_trip_with_a_dock_that_replies(mosquitto, key, tmp_path):
    path, public = key
    db = str(tmp_path / "fleet.sqlite3")
    Store(db).close()  # as `dock-hq run` leaves it
    dock = FakeDock(mosquitto)
    dock.reply_with = lambda cmd: {"id": cmd["id"], "ok": True, "time": contract.utc(0)}
    try:
        done = dock_hq(
            *("command", "s1", "d1", "flag", "--serial", "BWC-9", "--maintenance"),
            *("--note", "cracked lens", "--by", "duty officer", "--key", path),
            *("--port", str(mosquitto.port), "--json", "--timeout", str(WAIT), "--db", db),
        )
        assert done.returncode == 0, done.stderr
        store = Store(db)  # the command is in headquarters' register
        row = store.db.execute("SELECT command, by, site, dock FROM commands").fetchone()
        store.close()
        assert tuple(row) == ("flag", "duty officer", "s1", "d1")
        out = json.loads(done.stdout)
        assert out["reply"]["ok"] is True
        msg, command = dock.commands.get(timeout=WAIT)
        assert command["id"] == out["command"]["id"]
        assert command["args"] == {"serial": "BWC-9", "maintenance": True, "note": "cracked lens"}
        assert command["by"] == "duty officer"
        assert msg.topic == contract.dock_topic("s1", "d1", contract.Kind.CMD, "flag")
        verify(public, command)

        dock.reply_with = lambda c: {"id": c["id"], "ok": False, "time": "1970-01-01T00:00:00Z"}
        refused = dock_hq(
            *("command", "s1", "d1", "status", "--key", path, "--port", str(mosquitto.port)),
        )
        assert refused.returncode == 1 and "refused" in refused.stdout
    finally:
        dock.close()


def test_command_without_a_dock_times_out(mosquitto, key):
    path, _ = key
    done = dock_hq(
        *("command", "s1", "nobody", "status", "--key", path),
        *("--port", str(mosquitto.port), "--timeout", "1"),
    )
    assert done.returncode == 3 and "no reply" in done.stdout


def test_command_needs_its_arguments(key):
    path, _ = key
    done = dock_hq("command", "s1", "d1", "resend", "--key", path, "--boot", "b")
    assert done.returncode == 2 and "--from-seq" in done.stderr


def test_unknown_config_key_is_named(tmp_path):
    cfg = tmp_path / "hq.toml"
    cfg.write_text('port = 1883\nbattery_helth_min = 70\ndb = "x"\n')
    done = dock_hq("fleet", "--config", str(cfg))
    assert done.returncode == 2 and "battery_helth_min" in done.stderr


def test_password_comes_from_a_file_or_the_environment(tmp_path, key):
    path, _ = key
    with Broker(tmp_path / "auth", passwords={"hq": "s3cret", "dock": "d0ck"}) as broker:
        pw = tmp_path / "pw"
        pw.write_text("s3cret\n")
        args = ("command", "s1", "d1", "status", "--key", path, "--port", str(broker.port))
        ok = dock_hq(*args, "--username", "hq", "--password-file", str(pw), "--timeout", "1")
        assert ok.returncode == 3, ok.stderr  # connected; nobody answers
        env_ok = dock_hq(
            *args, "--username", "hq", "--timeout", "1", env={"DOCK_HQ_PASSWORD": "s3cret"}
        )
        assert env_ok.returncode == 3, env_ok.stderr
        wrong = dock_hq(
            *args, "--username", "hq", "--timeout", "5", env={"DOCK_HQ_PASSWORD": "nope"}
        )
        assert wrong.returncode == 3 and "refused" in wrong.stderr


def test_killed_daemon_loses_nothing(mosquitto, tmp_path):
    """SIGKILL in the middle of a stream: what was not committed was not acknowledged
    either, so the broker delivers it again to the next run."""
    db = str(tmp_path / "fleet.sqlite3")
    args = [sys.executable, "-m", "hq.cli", "run", "--port", str(mosquitto.port), "--db", db]

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stored() -> int:
        if not os.path.exists(db):
            return 0
        store = Store(db)
        try:
            return store.db.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            store.close()

    proc = start()
    dock = FakeDock(mosquitto)
    try:
        # seq 1 again and again until the daemon has it: then its session exists
        wait_until(lambda: dock.event(1, serial="X") or stored() == 1, "the daemon subscribed")
        for seq in range(2, 201):
            dock.event(seq, serial="X")
        proc.kill()
        proc.wait(WAIT)
        for seq in range(201, 251):
            dock.event(seq, serial="X")
        proc = start()
        wait_until(lambda: stored() == 250, "all 250 events", timeout=60)
    finally:
        dock.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(WAIT)


@pytest.mark.parametrize("command", ["run", "fleet", "alerts", "ack", "command", "keygen"])
def test_every_help_prints(command, capsys):
    from hq.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: dock-hq " + command in capsys.readouterr().out
