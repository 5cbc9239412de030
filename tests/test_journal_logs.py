"""The daemon's output as journald, a log shipper and a person at a terminal see it.

``dock run --emulate 3`` runs a bounded number of sweeps (slot 1 ready, slot 2 offloaded,
slot 3 an unknown recorder) three ways: under "systemd" (``JOURNAL_STREAM`` naming the
pipe it writes to), with ``--log-format json`` (what ``journalctl -o cat | jq .`` reads),
and on a pseudo-terminal. Plus the formatter's own promises, line by line.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

import pytest

from common.logsetup import LineFormatter, LogFormatError, choose_format, setup_logging

DOCK = [sys.executable, "-m", "dock.cli.main"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["run", "--emulate", "3", "--interval", "0.2"]
SWEEPS = 15
TIMEOUT = 120.0
JOURNAL_LINE = re.compile(r"^<[0-7]>\S+: ")
#: What a status table or a screen frame would leave in a log line.
TABLE_MARKS = re.compile(r"[\u2500-\u257f]|^\s*slot\s+device\s+state|^fleet:|^\+-+\+$")
#: The only lines a clean emulated run may have at warning or above: its own trusted
#: clock (a setting for emulation only) and its deliberately unknown recorder.
EXPECTED_WARNINGS = ('clock.source: "trusted"', "slot 3: device_unknown")


def _read_all(fd: int, proc: subprocess.Popen[bytes]) -> bytes:
    """Everything written to ``fd`` until the child exits and the stream ends (bounded)."""
    out = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty's master reads EIO once the child side is closed
            break
        if not chunk:
            break
        out += chunk
    return out


def _run_to_pipes(tmp_path, *extra: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """``dock run`` with stdout and stderr on two pipes; (stdout, stderr)."""
    proc = subprocess.run(
        [*DOCK, *RUN, "--sweeps", str(SWEEPS), "--state-dir", str(tmp_path), *extra],
        capture_output=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode(), proc.stderr.decode()


def test_under_systemd_every_line_is_one_journal_entry_with_its_priority(tmp_path) -> None:
    read, write = os.pipe()
    st = os.fstat(write)  # what systemd puts in JOURNAL_STREAM for a service's stream
    env = {k: v for k, v in os.environ.items() if k != "DOCK_LOG_FORMAT"}
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    cmd = [*DOCK, *RUN, "--sweeps", str(SWEEPS), "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=write, stderr=write, env=env)
    os.close(write)
    try:
        text = _read_all(read, proc).decode()
    finally:
        os.close(read)
        proc.wait(timeout=TIMEOUT)
    assert proc.returncode == 0, text
    lines = text.splitlines()
    for line in lines:
        assert JOURNAL_LINE.match(line), f"not a journal line: {line!r}"
        assert "\x1b" not in line and "\r" not in line, line
        assert not TABLE_MARKS.search(line[line.index(":") + 1 :]), f"table in the journal: {line}"
    said = "\n".join(lines)
    assert "slot 1: recorder EMU0001 docked" in said
    assert re.search(r"<6>\S+: slot 2: offload of EMU0002 finished: .*footage safe", said), said
    assert "<6>dock.slots: slot 1: EMU0001 ready to hand out" in said
    urgent = [line for line in lines if int(line[1]) <= 4]
    unexpected = [u for u in urgent if not any(w in u for w in EXPECTED_WARNINGS)]
    assert unexpected == [], "warnings in a clean run: need no person"
    assert not [u for u in urgent if int(u[1]) <= 3], "errors in a clean run"


def test_json_on_request_every_line_of_both_streams_parses(tmp_path) -> None:
    out, err = _run_to_pipes(tmp_path, "--log-format", "json")
    lines = (out + err).splitlines()
    entries = [json.loads(line) for line in lines]  # what `journalctl -o cat | jq .` reads
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    messages = [e["msg"] for e in entries]
    assert any("footage safe" in m for m in messages), messages
    assert any(m == "slot 1: recorder EMU0001 docked" for m in messages)
    if shutil.which("jq"):  # the documented pipeline itself, where jq is installed
        jq = subprocess.run(
            ["jq", "-c", 'select(.level == "info") | .msg'],
            input=(out + err).encode(),
            capture_output=True,
            timeout=30,
        )
        assert jq.returncode == 0, jq.stderr
        assert b"footage safe" in jq.stdout
        # `journalctl -u dock` adds systemd's own lines about the unit: skipped as documented
        unit = "Started dock.service - Body-worn camera dock.\n" + out + err
        skip = subprocess.run(["jq", "-c", "-R", "fromjson? // empty"], input=unit.encode(),
                              capture_output=True, timeout=30)  # fmt: skip
        assert skip.returncode == 0 and len(skip.stdout.splitlines()) == len(lines)


def test_environment_asks_for_json_as_the_option_does(tmp_path) -> None:
    env = {**os.environ, "DOCK_LOG_FORMAT": "json"}
    out, err = _run_to_pipes(tmp_path, env=env)
    assert out == ""  # nothing but log lines, all on stderr
    assert [json.loads(line)["logger"] for line in err.splitlines()]


def test_a_pipe_gets_one_plain_line_per_event_and_no_table(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCK_LOG_FORMAT", "JOURNAL_STREAM")}
    out, err = _run_to_pipes(tmp_path, env=env)
    assert out == ""  # no status table into a pipe
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warning|error) \S+: ")
    for line in err.splitlines():
        assert stamp.match(line) and "\x1b" not in line and "\r" not in line, line


def test_on_a_terminal_the_table_is_redrawn_in_place(tmp_path) -> None:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("DOCK_LOG_FORMAT", "JOURNAL_STREAM")}
    env["TERM"] = "xterm"
    sweeps = 30
    cmd = [*DOCK, *RUN, "--sweeps", str(sweeps), "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        screen = _read_all(master, proc).decode(errors="replace")
    finally:
        os.close(master)
        proc.wait(timeout=TIMEOUT)
    assert proc.returncode == 0, screen
    back = [int(n) for n in re.findall(r"\x1b\[(\d+)F\x1b\[J", screen)]
    assert back, "the table is never redrawn in place"
    table_height = max(back)
    assert screen.count("fleet: ") > 1  # drawn more than once ...
    # ... yet what stays on the terminal is the log lines and one table: every redraw
    # goes back over the one before (a reprinted table would add its height each time).
    visible = screen.count("\n") - sum(back)
    log_line = re.compile(r"\d\d:\d\d:\d\d (info|warning|error|debug) \S+: ")
    before_table = screen[: screen.index("\nslot  device")]  # the intro and early logs
    logged_later = len(log_line.findall(screen)) - len(log_line.findall(before_table))
    assert logged_later > 0  # log lines go above the table, in the terminal's form
    expected = before_table.count("\n") + logged_later + table_height
    assert visible <= expected + 1, (visible, expected)  # not "+ reprints x height"
    assert "\r" not in screen.replace("\r\n", "\n")  # no carriage-return frames


# ---------------------------------------------------------------- the formatter itself


def _record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "dock.x", "levelno": level, "msg": msg, **extra})
    record.levelname = logging.getLevelName(level)
    return record


def test_journal_lines_carry_the_syslog_priority() -> None:
    f = LineFormatter("journal")
    assert f.format(_record("connected", logging.INFO)) == "<6>dock.x: connected"
    assert f.format(_record("late", logging.WARNING)).startswith("<4>dock.x: ")
    assert f.format(_record("lost", logging.ERROR)).startswith("<3>dock.x: ")
    assert f.format(_record("step", logging.DEBUG)).startswith("<7>dock.x: ")


def test_a_hostile_or_multi_line_message_stays_one_safe_line() -> None:
    line = LineFormatter("journal").format(_record("serial EVIL\x1b[2J\r\nsecond line\u202e"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u202e" not in line
    assert line == "<6>dock.x: serial EVIL\\x1b[2J | second line\\u202e"


def test_an_exception_is_one_line_unless_debugging() -> None:
    try:
        raise ValueError("boom\nsecond")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record("step failed", logging.ERROR, exc_info=exc_info)
    line = LineFormatter("journal").format(record)
    assert line == "<3>dock.x: step failed: ValueError: boom | second"
    debug = LineFormatter("journal", tracebacks=True).format(record).split("\n")
    assert debug[0] == line and debug[1].startswith("<7>dock.x: traceback: Traceback")
    assert len(debug) == 2  # the traceback is one more entry, at debug priority


def test_extra_fields_are_shown_as_key_value() -> None:
    line = LineFormatter("journal").format(_record("alert opened", alert_id=7, why="a\nb"))
    assert line == "<6>dock.x: alert opened alert_id=7 why=a | b"


def test_the_format_is_chosen_from_where_stderr_goes(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DOCK_LOG_FORMAT", raising=False)
    with open(tmp_path / "log", "w") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert choose_format(None, f) == "journal"
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")  # another file
        assert choose_format(None, f) == "text"
        monkeypatch.setenv("DOCK_LOG_FORMAT", "json")
        assert choose_format(None, f) == "json"
        assert choose_format("journal", f) == "journal"  # the option wins
        monkeypatch.setenv("DOCK_LOG_FORMAT", "yaml")
        with pytest.raises(LogFormatError, match="DOCK_LOG_FORMAT"):
            choose_format(None, f)


def test_a_bad_log_format_is_one_line_for_each_program() -> None:
    env = {**os.environ, "DOCK_LOG_FORMAT": "yaml"}
    for cmd in ([*DOCK, "status"], [sys.executable, "-m", "web_status.server"]):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "log format" in out.stderr


@pytest.fixture
def restore_root_logger(monkeypatch):
    import threading

    from common import logsetup

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logsetup, "_chosen", logsetup._chosen)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)


def test_setup_logging_writes_json_when_asked(tmp_path, restore_root_logger) -> None:
    with open(tmp_path / "log", "w+") as f:
        assert setup_logging("INFO", "json", stream=f) == "json"
        logging.getLogger("hq.cli").info("stats", extra={"stats": {"messages": 3}})
        logging.getLogger("hq.cli").debug("not at INFO")
        f.seek(0)
        (entry,) = [json.loads(line) for line in f.read().splitlines()]
    assert entry["msg"] == "stats" and entry["stats"] == {"messages": 3}


def test_progress_bars_draw_in_place_only_on_a_terminal(monkeypatch) -> None:
    from dock.cli.common import progress_bar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, frames in ((io.StringIO(), 0), (Tty(), 4)):
        monkeypatch.setattr(sys, "stderr", stream)
        for done in (0, 2**20, 2 * 2**20, 3 * 2**20):
            progress_bar("REC000001", done, 3 * 2**20)
        text = stream.getvalue()
        assert text.count("\r") == frames and text.count("\n") == 1
        assert text.rstrip("\n").endswith("3.0 / 3.0 MiB") and "100 %" in text


@pytest.mark.parametrize(
    ("warn_after_s", "level"), [(3600.0, logging.INFO), (0.0, logging.WARNING)]
)
def test_an_unreachable_broker_is_a_warning_only_once_it_lasts(
    monkeypatch, caplog, warn_after_s, level
) -> None:
    from dock.config import MqttConfig
    from dock.reporting import paho_link

    monkeypatch.setattr(paho_link, "DOWN_WARN_S", warn_after_s)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    link = paho_link.PahoLink(MqttConfig(host="127.0.0.1", port=port, site="s"), "d1")
    with caplog.at_level(logging.INFO, logger="dock.mqtt"):
        link.start("will", lambda: b"{}")
        deadline = time.monotonic() + 20
        while not caplog.records and time.monotonic() < deadline:  # the first attempt
            time.sleep(0.05)
        link.stop()
    (first, *_) = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert first.levelno == level, first.getMessage()
    assert "events wait in the outbox" in first.getMessage()


def _journal_env(fd: int) -> dict[str, str]:
    st = os.fstat(fd)
    env = {k: v for k, v in os.environ.items() if k != "DOCK_LOG_FORMAT"}
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    return env


def test_dock_web_under_systemd_says_a_bad_configuration_as_an_error_entry(tmp_path) -> None:
    read, write = os.pipe()
    cmd = [sys.executable, "-m", "web_status.server", "--config", str(tmp_path / "none.toml")]
    proc = subprocess.Popen(cmd, stdout=write, stderr=write, env=_journal_env(write))
    os.close(write)
    try:
        lines = _read_all(read, proc).decode().splitlines()
    finally:
        os.close(read)
        proc.wait(timeout=TIMEOUT)
    assert proc.returncode == 2
    assert lines and all(line.startswith("<3>web_status.server: ") for line in lines), lines


def test_dock_hq_run_under_systemd_writes_journal_lines(tmp_path) -> None:
    with socket.socket() as s:  # a broker port nothing listens on: hq retries
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    read, write = os.pipe()
    cmd = [sys.executable, "-m", "hq.cli", "run", "--port", str(port),
           "--db", str(tmp_path / "fleet.sqlite3")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=write, stderr=write, env=_journal_env(write))
    os.close(write)
    text = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        while b"monitor started" not in text and time.monotonic() < deadline:
            ready, _, _ = select.select([read], [], [], 0.5)
            if ready:
                chunk = os.read(read, 65536)
                if not chunk:
                    break
                text += chunk
        proc.send_signal(signal.SIGTERM)
        text += _read_all(read, proc)
    finally:
        os.close(read)
        proc.wait(timeout=TIMEOUT)
    lines = text.decode().splitlines()
    assert any(line.startswith("<6>hq.monitor: monitor started ") for line in lines), lines
    assert all(JOURNAL_LINE.match(line) for line in lines), lines


def test_a_crash_is_one_critical_entry_and_its_traceback_one_more() -> None:
    code = (
        "import threading\n"
        "from common.logsetup import setup_logging\n"
        "setup_logging('INFO', 'journal')\n"
        "t = threading.Thread(target=lambda: 1 / 0, name='worker'); t.start(); t.join()\n"
        "raise ValueError('first\\nsecond')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0] == "<2>crash: uncaught exception in thread worker: ZeroDivisionError: " + (
        "division by zero"
    )
    assert lines[1].startswith("<7>crash: traceback: Traceback (most recent call last):")
    assert lines[2] == "<2>crash: uncaught exception: ValueError: first | second"
    assert lines[3].startswith("<7>crash: traceback: ") and len(lines) == 4


def _report(*slots: dict, trusted: bool = True) -> dict:
    base = {"device": None, "state": "empty", "awaiting_takeaway": False, "failed": [],
            "error": None}  # fmt: skip
    return {"clock": {"trusted": trusted, "reason": "synchronised"},
            "slots": [{**base, **s} for s in slots]}  # fmt: skip


def test_slot_changes_say_what_an_operator_needs_once() -> None:
    from dock.cli.slot_events import changes

    low = [{"code": "battery_low", "message": "battery 11 %"}]
    docked = _report({"slot": "1", "device": "R1", "state": "failed_check", "failed": low})
    assert changes(None, docked) == [
        (logging.INFO, "slot 1: recorder R1 docked"),
        (logging.INFO, "slot 1: R1 not ready: battery 11 %"),
    ]
    charging = [{"code": "battery_low", "message": "battery 12 %"}]
    later = _report({"slot": "1", "device": "R1", "state": "failed_check", "failed": charging})
    assert changes(docked, later) == []  # the same check failing: not news
    ready = _report({"slot": "1", "device": "R1", "state": "ready"})
    assert changes(later, ready) == [(logging.INFO, "slot 1: R1 ready to hand out")]
    fault = _report({"slot": "1", "device": "R1", "state": "fault", "error": "no answer"})
    assert changes(ready, fault) == [(logging.WARNING, "slot 1: R1 fault: no answer")]
    gone = _report({"slot": "1"}, trusted=False)
    assert changes(fault, gone) == [
        (logging.WARNING, "clock NOT trusted: synchronised"),
        (logging.INFO, "slot 1: recorder R1 taken out"),
    ]
    assert changes(None, _report({"slot": "1"})) == []  # an empty dock says nothing


def test_a_command_error_under_systemd_is_an_error_entry(tmp_path) -> None:
    read, write = os.pipe()
    cmd = [*DOCK, "--config", str(tmp_path / "none.toml"), "run"]
    proc = subprocess.Popen(cmd, stdout=write, stderr=write, env=_journal_env(write))
    os.close(write)
    try:
        lines = _read_all(read, proc).decode().splitlines()
    finally:
        os.close(read)
        proc.wait(timeout=TIMEOUT)
    assert proc.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("<3>dock: "), lines  # journalctl -p err


def test_a_command_error_in_json_mode_is_a_json_entry(tmp_path) -> None:
    env = {**os.environ, "DOCK_LOG_FORMAT": "json"}
    out = subprocess.run([*DOCK, "--config", str(tmp_path / "none.toml"), "status"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 2
    (entry,) = [json.loads(line) for line in out.stderr.splitlines()]
    assert entry["level"] == "error" and entry["msg"].startswith("dock: ")
