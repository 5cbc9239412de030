"""The two programs as a user runs them: separate processes, real ptys and sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

SECRET_HEX = "11" * 32
EMULATOR = [sys.executable, "-m", "hardware.emulator_cli"]
DOCK = [sys.executable, "-m", "dock.cli"]


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
    assert report["protocol_version"] == 1
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
    out = dock("run", "--emulate", "3", "--once", "--data-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if "EMU000" in line]
    assert len(rows) == 3
    assert "low battery" in rows[1] and "clock drifted" in rows[2]
    assert "+47.0 s" in rows[2]
