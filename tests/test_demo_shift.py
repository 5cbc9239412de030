"""``./scripts/demo`` shows a whole shift, and the emulator's control socket that plays
the wearer's part (hardware/emulator/shift.py, control.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.emulator.control import MAX_LINE, ask
from hardware.emulator.control_cli import main as control_main
from hardware.emulator.fleet import EmulatedFleet, start_emulated_recorders
from hardware.emulator.footage import expected_sha256

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 6  # filmed while away: 3 MB, a second and a half over the bay's slow link


def test_the_demo_shows_a_whole_shift_until_the_footage_is_safe(tmp_path) -> None:
    state = tmp_path / "dock"
    out = subprocess.run(
        [sys.executable, "-m", "hardware.emulator.shift", "--state-dir", str(state),
         "--seconds", str(SECONDS)],
        env={**os.environ, "DEMO_ONCE": "1"}, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    log = (state / "dock-run.log").read_text(errors="replace")[-3000:]
    assert out.returncode == 0, out.stderr + out.stdout + log
    text = out.stdout
    steps = [line for line in text.splitlines() if re.match(r"\[\d+\] ", line)]
    said = [
        "Starting the dock with 4 emulated recorders",
        "Officer 1001 (王伟 Wang Wei) checks out a recorder with PIN 246810",
        "takes EMU0001 out of slot 1",
        f"EMU0001 films {SECONDS} s",
        "puts EMU0001 back in slot 1",
        "offloads the footage",
        "Where the footage is",
    ]
    assert len(steps) == len(said), steps
    assert all(want in step for want, step in zip(said, steps, strict=True)), steps
    assert "granted: take EMU0001 from slot 1" in text
    away = text.index("the dock: slot 1 is empty; EMU0001 is away with officer 1001")
    back = text.index("the dock: EMU0001 is back in slot 1")
    safe = text.index("footage safe: 1 recording(s) verified, returned by officer 1001")
    assert away < back < safe
    progress = [int(p) for p in re.findall(r"offloading EMU0001: (\d+) %", text)]
    assert progress and min(progress) < 100, text  # seen while copying, not only at the end
    assert progress == sorted(progress)
    # the archive holds the recording made while away, byte for byte as the recorder made it
    capture = expected_sha256("EMU0001", 1, SECONDS * 500_000)
    (archived,) = (state / "evidence" / "1001").glob("*/1001_*_EMU0001_*_REC000001.mp4")
    assert hashlib.sha256(archived.read_bytes()).digest() == capture
    assert str(archived) in text and f"sha256 {capture.hex()[:16]}" in text
    assert "= the recorder's capture hash" in text
    # --once: the dock has stopped, its links and sockets with it
    assert not (state / "control.sock").exists()
    assert list((state / "recorders").glob("*.sock")) == []


def test_the_demo_script_runs_the_shift_after_setting_up() -> None:
    script = (ROOT / "scripts" / "demo").read_text()
    assert "ensure_venv run" in script
    assert script.rstrip().endswith('exec "$VENV/bin/python" -m hardware.emulator.shift "$@"')


@pytest.fixture
def fleet(tmp_path) -> Iterator[EmulatedFleet]:
    started = start_emulated_recorders(2, str(tmp_path / "recorders"))
    yield started
    started.stop()


def raw(path: str, data: bytes) -> list[dict]:
    """Send raw bytes to the control socket; every reply line until it closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        with sock.makefile("rb") as f:
            return [json.loads(line) for line in f.readlines(1 << 20)]


def test_bad_requests_get_one_line_and_the_fleet_keeps_running(fleet) -> None:
    path = fleet.control.path
    assert ask(path, {"command": "fly"}) == {
        "ok": False, "error": "unknown command \"fly\": use status, undock, record, dock",
    }  # fmt: skip
    assert (
        'no slot "9": the slots are 1, 2' in ask(path, {"command": "undock", "slot": "9"})["error"]
    )
    assert "whole seconds" in ask(path, {"command": "record", "slot": "1", "seconds": "x"})["error"]
    assert (
        "take it out first" in ask(path, {"command": "record", "slot": "1", "seconds": 5})["error"]
    )
    (reply,) = raw(path, b"not json\n")
    assert reply == {"ok": False, "error": "not JSON: send one JSON object per line"}
    (reply,) = raw(path, b"[1, 2]\n")
    assert "a request is a JSON object" in reply["error"]
    replies = raw(path, b"x" * (MAX_LINE + 10) + b"\n" + b'{"command": "status"}\n')
    assert replies == [
        {"ok": False, "error": f"line longer than {MAX_LINE} bytes: connection closed"}
    ]  # nothing after an oversize line is read
    status = ask(path, {"command": "status"})  # still serving
    assert status["ok"] and [b["docked"] for b in status["bays"]] == [True, True]


def test_undock_record_dock_change_what_a_dock_finds(fleet, tmp_path) -> None:
    path = fleet.control.path
    link = tmp_path / "recorders" / "slot-1.sock"
    assert link.stat().st_mode & 0o777 == 0o600  # only the dock's user connects
    out = ask(path, {"command": "undock", "slot": "1"})
    assert out["ok"] and out["docked"] is False and out["link"] is None
    assert not link.exists()  # as unplugged: nothing to connect to
    assert "already out" in ask(path, {"command": "undock", "slot": "1"})["error"]
    filmed = ask(path, {"command": "record", "slot": "1", "seconds": 2})
    assert filmed["ok"] and filmed["recording"] == "REC000001" and filmed["seconds"] == 2
    with open(filmed["path"], "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == filmed["sha256"]
    assert (
        "seconds must be 1..3600"
        in ask(path, {"command": "record", "slot": "1", "seconds": 0})["error"]
    )
    out = ask(path, {"command": "dock", "slot": "1"})
    assert out["ok"] and out["docked"] and out["recordings"] == 1
    assert link.stat().st_mode & 0o777 == 0o600  # back, as private as before
    assert "already in its bay" in ask(path, {"command": "dock", "slot": "1"})["error"]


def test_the_control_command_line_says_one_line_on_failure(fleet, tmp_path, capsys) -> None:
    assert control_main(["--socket", str(tmp_path), "undock", "2"]) == 0  # the state dir
    assert capsys.readouterr().out.startswith("slot 2: EMU0002 out of its bay")
    assert control_main(["--socket", fleet.control.path, "record", "9", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'no slot "9"' in err
    assert control_main(["--socket", str(tmp_path / "none.sock"), "status"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot reach the emulated recorders" in err
