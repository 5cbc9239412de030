"""The two programs as a user runs them: separate processes, real ptys and sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .conftest import write_dock_config

SECRET_HEX = "11" * 32
EMULATOR = [sys.executable, "-m", "hardware.emulator.cli"]
DOCK = [sys.executable, "-m", "dock.cli.main"]


@pytest.fixture
def emulator(tmp_path) -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> str:
        p = subprocess.Popen(
            [*EMULATOR, "--data-dir", str(tmp_path / f"r{len(procs)}"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        assert line, p.stderr.read() if p.stderr else "emulator printed nothing"
        return line

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(timeout=10) == 0
        finally:
            if p.poll() is None:
                p.kill()


def dock(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*DOCK, *args], capture_output=True, text=True, timeout=timeout)


def test_probe_json_reports_what_the_recorder_was_given(emulator) -> None:
    url = emulator(
        "--serial", "CLI0001", "--battery", "42", "--storage-free-mb", "1000",
        "--clock-offset", "30", "--recordings", "2", "--recording-mb", "0.1",
    )  # fmt: skip
    assert url.startswith("/dev/pts/")
    out = dock("probe", url, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["serial"] == "CLI0001"
    assert report["protocol_version"] == 2
    assert report["firmware"] == "1.4.2"
    assert report["battery_percent"] == 42
    assert report["storage_free_bytes"] == (1000 << 20) - 2 * int(0.1 * (1 << 20))
    assert report["storage_total_bytes"] == 32 << 30
    assert report["clock_offset_s"] == pytest.approx(30, abs=1)
    assert len(report["recordings"]) == 2 and report["recording_count"] == 2


def test_probe_over_tcp_with_the_right_secret(emulator) -> None:
    url = emulator("--listen", "tcp://127.0.0.1:0", "--secret", SECRET_HEX, "--recordings", "1")
    assert url.startswith("tcp://127.0.0.1:")
    out = dock("probe", url, "--json", "--secret", SECRET_HEX)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["authenticated"] is True
    human = dock("probe", url)
    assert "recorder   EMU0001" in human.stdout


def test_wrong_secret_exits_4_with_a_reason(emulator) -> None:
    url = emulator("--secret", SECRET_HEX, "--recordings", "1")
    out = dock("probe", url, "--secret", "22" * 32)
    assert out.returncode == 4
    assert "authentication failed" in out.stderr and "AUTH_FAILED" in out.stderr


def test_silent_port_exits_3_and_says_nothing_answered() -> None:
    master, slave = os.openpty()
    try:
        out = dock("probe", os.ttyname(slave), "--timeout", "1")
    finally:
        os.close(master)
        os.close(slave)
    assert out.returncode == 3
    assert "no recorder answered" in out.stderr


def test_missing_port_and_bad_secret_are_clear_errors() -> None:
    out = dock("probe", "/dev/does-not-exist")
    assert out.returncode == 3 and "/dev/does-not-exist" in out.stderr
    out = dock("probe", "/dev/null", "--secret", "abc")
    assert out.returncode == 2 and "64 hex digits" in out.stderr
    out = dock("probe", "tcp://127.0.0.1:1")
    assert out.returncode == 3 and "cannot connect" in out.stderr


def test_run_with_emulated_recorders_shows_every_slot(tmp_path) -> None:
    out = dock("run", "--emulate", "4", "--once", "--state-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if "EMU000" in line}
    assert "ready" in rows["1"]  # healthy
    assert "footage" in rows["2"] or "录像" in rows["2"]  # back with footage
    assert "11 %" in rows["3"]  # low battery
    assert "未登记" in rows["4"]  # the unknown recorder is shown as such
    assert (tmp_path / "dock.toml").exists()


def test_checkout_from_another_process_while_the_daemon_runs(tmp_path) -> None:
    daemon = subprocess.Popen(
        [*DOCK, "run", "--emulate", "3", "--state-dir", str(tmp_path), "--interval", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stderr is not None
        for _ in range(200):  # wait for the first sweep (logged)
            if "first sweep done" in daemon.stderr.readline():
                break
        env = {**os.environ, "DOCK_CONFIG": str(tmp_path / "dock.toml")}

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*DOCK, *args], capture_output=True, text=True, env=env, timeout=60
            )

        first = run("checkout", "--officer", "1001", "--pin", "246810", "--json")
        assert first.returncode == 0, first.stderr
        decision = json.loads(first.stdout)
        assert decision["granted"] and decision["slot"] == "1" and decision["device"] == "EMU0001"
        again = run("checkout", "--officer", "1001", "--pin", "246810", "--json")
        assert again.returncode == 1
        assert [r["code"] for r in json.loads(again.stdout)["reasons"]] == ["officer_has_device"]
        status = json.loads(run("status", "--json").stdout)
        assert status["slots"][0]["awaiting_takeaway"] is True
        verify = run("audit", "verify")
        assert verify.returncode == 0 and "OK" in verify.stdout
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)


def test_a_bad_config_file_names_the_key_and_the_fix(tmp_path) -> None:
    bad = tmp_path / "dock.toml"
    bad.write_text('[dock]\nid = "d1"\nsite = "s"\nunit = "u"\n\n[[slot]]\nid = "1"\n')
    out = dock("--config", str(bad), "status")
    assert out.returncode == 2
    assert "slot[1].port" in out.stderr


def test_daemon_decides_a_badge_read_on_its_serial_reader(tmp_path) -> None:
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    daemon = subprocess.Popen(
        [*DOCK, "run", "--emulate", "2", "--state-dir", str(tmp_path), "--interval", "0.5",
         "--badge-reader", os.ttyname(slave)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert daemon.stderr is not None
        for _ in range(200):
            if "first sweep done" in daemon.stderr.readline():
                break
        os.write(master, b"BADGE-1001\r\n")
        decision = None
        for _ in range(200):  # the decision is logged, one line
            line = daemon.stderr.readline()
            if "check-out " in line:
                decision = line
                break
        assert decision is not None and "check-out granted: officer 1001 takes slot" in decision
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
        os.close(master)
        os.close(slave)


def test_offload_command_shows_progress_and_reports(emulator, tmp_path) -> None:
    url = emulator("--listen", "tcp://127.0.0.1:0", "--recordings", "2", "--recording-mb", "0.2")
    cfg, _state, evidence = write_dock_config(tmp_path, url, "d1")
    assert dock("--config", str(cfg), "device", "enrol", "--slot", "1").returncode == 0
    out = dock("--config", str(cfg), "offload", "--slot", "1", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["archived"] == ["REC000001", "REC000002"] == report["erased"]
    assert "100 %" in out.stderr  # the progress bar reached the end
    again = json.loads(dock("--config", str(cfg), "offload", "--slot", "1", "--json").stdout)
    assert again["archived"] == [] and again["erased"] == []
    files = [
        f
        for d, _, names in os.walk(evidence)
        for f in names
        if not os.path.relpath(d, evidence).startswith("bags")
    ]
    assert len(files) == 2
