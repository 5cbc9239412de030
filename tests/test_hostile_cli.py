"""Issue 9, hostile peers, as a person sees it: a recorder whose serial, model,
firmware, vendor, officer and recording ids carry terminal escapes (ESC[2J, BEL, C1
CSI, NUL, a bidi override) and an impossible start time. Every command runs as its
own process against the recorder on a TCP port; no raw control character may reach
the terminal, and no traceback."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

from dock.storage.store import Store
from dock.support.logs import JsonFormatter
from hardware.screens import ConsoleScreen, fit_lines

from .conftest import write_dock_config
from .hostile_content import HOSTILE

DOCK = [sys.executable, "-m", "dock.cli.main"]
TEXTS = {
    "serial": f"EMU{HOSTILE}1",
    "model": f"M{HOSTILE}",
    "firmware": f"1.4.2{HOSTILE}",
    "vendor": f"V{HOSTILE}",
}
OFFICER = f"10{HOSTILE}01"


def dock(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DOCK, *args], capture_output=True, text=True, timeout=120)


def raw_controls(text: str) -> list[str]:
    return sorted({hex(ord(c)) for c in text if not (c.isprintable() or c in "\n\r")})


def check(out: subprocess.CompletedProcess, what: str, *, shows: str = "\\x1b[2J") -> None:
    for name, stream in (("stdout", out.stdout), ("stderr", out.stderr)):
        assert not raw_controls(stream), f"{what}: raw {raw_controls(stream)} on {name}"
        assert "Traceback" not in stream, f"{what}: {stream}"
    if shows:
        assert shows in out.stdout + out.stderr, f"{what}: {out.stdout}{out.stderr}"


def hostile(serve_hostile, recordings: int = 2):
    h = serve_hostile(TEXTS, recordings=recordings)
    for i, rec in enumerate(h.model.ordered_recordings()):
        h.firmware.ids[rec.id] = f"REC{HOSTILE}{i}"
        h.firmware.listing[rec.id] = {"officer_id": OFFICER}
    h.firmware.status = {"officer_id": OFFICER}
    return h


def test_probe_shows_hostile_texts_escaped(serve_hostile) -> None:
    h = hostile(serve_hostile)
    out = dock("probe", h.url)
    assert out.returncode == 0, out.stderr
    check(out, "probe")
    assert "\\u202e" in out.stdout and "\\x9b" in out.stdout and "\\x00" in out.stdout
    as_json = dock("probe", h.url, "--json")
    check(as_json, "probe --json", shows="")
    report = json.loads(as_json.stdout)  # the same values, escaped the JSON way
    assert report["serial"] == TEXTS["serial"] and report["officer_id"] == OFFICER


def test_every_command_shows_hostile_texts_escaped(serve_hostile, tmp_path) -> None:
    h = hostile(serve_hostile)
    cfg, state, _evidence = write_dock_config(tmp_path, h.url)
    base = ("--config", cfg)

    out = dock(*base, "device", "enrol", "--slot", "1")
    assert out.returncode == 0, out.stderr
    check(out, "device enrol")

    out = dock(*base, "device", "list")
    check(out, "device list")
    check(dock(*base, "device", "list", "--json"), "device list --json", shows="")

    out = dock(*base, "offload", "--slot", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    check(out, "offload")
    assert "100 %" in out.stderr and "REC\\x1b[2J" in out.stderr  # the progress bar
    assert h.model.recordings == {}

    store = Store(str(state / "dock.db"))  # a row with a time no calendar has (the
    try:  # client refuses such a listing now; an older dock may have stored one)
        store.add_archived("EMU9", "REC9", bytes(32), 1, "x.mp4", None, 2**63 - 1, 2**63 - 1)
    finally:
        store.close()
    out = dock(*base, "archive", "list")
    assert out.returncode == 0, out.stderr
    check(out, "archive list")
    assert "invalid time" in out.stdout
    out = dock(*base, "archive", "list", "--json")
    check(out, "archive list --json", shows="")
    rows = json.loads(out.stdout)
    assert sorted(r["recording_id"] for r in rows) == [f"REC{HOSTILE}0", f"REC{HOSTILE}1", "REC9"]

    out = dock(*base, "archive", "verify")
    check(out, "archive verify", shows="")

    out = dock(*base, "status")
    assert out.returncode == 0, out.stderr
    check(out, "status")
    check(dock(*base, "status", "--json"), "status --json", shows="")


def test_dock_run_and_its_logs_show_hostile_texts_escaped(serve_hostile, tmp_path) -> None:
    h = hostile(serve_hostile)
    cfg, _state, _evidence = write_dock_config(tmp_path, h.url)
    assert dock("--config", cfg, "device", "enrol", "--slot", "1").returncode == 0
    out = dock("--config", cfg, "--log-level", "INFO", "run", "--once")
    assert out.returncode == 0, out.stderr
    check(out, "run --once")
    assert "REC\\x1b[2J" in out.stderr  # logged (escaped) while offloading
    assert h.model.recordings == {}


def test_a_recorder_refusal_with_escapes_is_one_clean_line(serve_hostile, tmp_path) -> None:
    h = hostile(serve_hostile, recordings=1)
    cfg, _state, _evidence = write_dock_config(tmp_path, h.url)
    assert dock("--config", cfg, "device", "enrol", "--slot", "1").returncode == 0
    h.firmware.erase_refusal = f"not erased{HOSTILE}"
    out = dock("--config", cfg, "--log-level", "INFO", "offload", "--slot", "1")
    check(out, "offload refused", shows="")
    assert len(h.model.recordings) == 1  # archived, and still on the device
    for args in (("offload", "--slot", "1"), ("offload", "--slot", "1", "--json"), ("status",)):
        check(dock("--config", cfg, *args), " ".join(args), shows="")


def test_logs_escape_what_a_terminal_would_obey() -> None:
    record = logging.makeLogRecord(
        {"msg": "slot %s: %s", "args": ("1", TEXTS["serial"]), "serial": TEXTS["serial"]}
    )
    line = JsonFormatter().format(record)
    assert not raw_controls(line)
    assert json.loads(line)["msg"] == f"slot 1: {TEXTS['serial']}"


def test_the_screen_shows_no_control_characters() -> None:
    stream = io.StringIO()
    ConsoleScreen(stream).show([TEXTS["serial"], OFFICER])
    assert not raw_controls(stream.getvalue())
    assert all(line.isprintable() for line in fit_lines([TEXTS["model"]], 20, 4))
