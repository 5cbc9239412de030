"""``dock run`` under systemd: READY=1 when it can answer, WATCHDOG=1 after each sweep of
its own loop (so a hung sweep stops the pings), STOPPING=1 at shutdown
(dock/daemon/systemd_notify.py). systemd is played by a real AF_UNIX datagram socket
named in NOTIFY_SOCKET, as sd_notify(3) describes it."""

from __future__ import annotations

import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dock.daemon.slot_access import SLOT_OPEN_TIMEOUT_S
from dock.daemon.systemd_notify import ServiceNotifier, status_text, watchdog_seconds

BIN = Path(sys.executable).parent
INTERVAL = 0.2  # seconds between sweeps in these runs


class FakeSystemd:
    """The notification socket: every datagram received, with when it arrived."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.got: list[tuple[float, set[str]]] = []

    def wait_for(self, want: Callable[[set[str]], bool], timeout: float) -> float:
        """Receive until a message satisfies ``want``; its arrival time. Bounded."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            fields = set(data.decode().splitlines())
            now = time.monotonic()
            self.got.append((now, fields))
            if want(fields):
                return now
        raise AssertionError(f"no such message within {timeout} s; got {self.got[-5:]}")

    def pings_until(self, end: float) -> list[float]:
        """Arrival times of WATCHDOG=1 received until ``end`` (monotonic)."""
        times = []
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            now = time.monotonic()
            fields = set(data.decode().splitlines())
            self.got.append((now, fields))
            if "WATCHDOG=1" in fields:
                times.append(now)
        return times

    def pings_until_close(self, gap: float, timeout: float) -> list[float]:
        """Arrival times of WATCHDOG=1 until two come less than ``gap`` apart. Bounded."""
        times: list[float] = []
        deadline = time.monotonic() + timeout
        while len(times) < 2 or times[-1] - times[-2] >= gap:
            times.append(self.wait_for(lambda m: "WATCHDOG=1" in m, deadline - time.monotonic()))
        return times

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(tmp_path / "notify.sock"))
    yield fake
    fake.close()


def _daemon(args: list[str], notify: FakeSystemd, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "60000000"}
    env.pop("WATCHDOG_PID", None)
    out = open(tmp / "daemon.log", "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [str(BIN / "dock"), "run", "--interval", str(INTERVAL), *args],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def test_ready_then_a_ping_per_sweep_then_stopping(systemd: FakeSystemd, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = _daemon(["--emulate", "2", "--state-dir", str(state)], systemd, tmp_path)
    try:
        systemd.wait_for(lambda m: "READY=1" in m, timeout=90)
        # READY means the control socket answers: a front end can connect at once.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(state / "control.sock"))
        for _ in range(5):
            systemd.wait_for(lambda m: "WATCHDOG=1" in m, timeout=30)
        proc.send_signal(signal.SIGTERM)
        systemd.wait_for(lambda m: "STOPPING=1" in m, timeout=60)
        assert proc.wait(timeout=90) == 0
    finally:
        _stop(proc)
    messages = [m for _, m in systemd.got]
    assert sum("READY=1" in m for m in messages) == 1
    first = next(m for m in messages if "READY=1" in m)
    assert "WATCHDOG=1" in first  # the first sweep is done when READY comes
    assert any(f.startswith("STATUS=2 slot(s): ") for f in first), first
    assert sum("WATCHDOG=1" in m for m in messages) >= 6
    assert "WATCHDOG=1" not in messages[-1]  # STOPPING is the last word


def _emulator(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    """A recorder on a TCP port, in its own process (so the test can freeze it)."""
    proc = subprocess.Popen(
        [str(BIN / "recorder-emulator"), "--listen", "tcp://127.0.0.1:0",
         "--data-dir", str(tmp / "recorder"), "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the emulator did not say its address"
    return proc, proc.stdout.readline().strip()


def _config(tmp: Path, url: str) -> Path:
    path = tmp / "dock.toml"
    path.write_text(
        f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{tmp}/state"\n'
        f'evidence_dir = "{tmp}/evidence"\n\n[clock]\nsource = "trusted"\n\n'
        f'[[slot]]\nid = "1"\nport = "{url}"\n'
    )
    return path


def test_a_hung_sweep_stops_the_pings_until_it_completes(
    systemd: FakeSystemd, tmp_path: Path
) -> None:
    """The recorder stops answering mid-run (its process frozen): the sweep waits for it
    (the session's open timeout, SLOT_OPEN_TIMEOUT_S, at least), and meanwhile no ping
    goes out; each ping that comes is a sweep that finished. Thawed, the pings come at
    the sweep interval again. A ping from a timer thread would fail both."""
    emulator, url = _emulator(tmp_path)
    proc = _daemon(["--config", str(_config(tmp_path, url))], systemd, tmp_path)
    try:
        systemd.wait_for(lambda m: "READY=1" in m, timeout=90)
        for _ in range(3):
            systemd.wait_for(lambda m: "WATCHDOG=1" in m, timeout=30)
        emulator.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        settled = frozen + 1.0  # a sweep that had its answer before the freeze ends by then
        systemd.pings_until(settled)
        window_end = settled + 2.5 * SLOT_OPEN_TIMEOUT_S
        frozen_pings = systemd.pings_until(window_end)
        emulator.send_signal(signal.SIGCONT)
        thawed = systemd.pings_until_close(SLOT_OPEN_TIMEOUT_S / 2, timeout=60)
    finally:
        emulator.send_signal(signal.SIGCONT)
        _stop(proc)
        emulator.terminate()
        emulator.wait(timeout=30)
    edges = [settled, *frozen_pings, window_end]
    gaps = [b - a for a, b in itertools.pairwise(edges)]
    # While the recorder is frozen, pings come only as often as stuck sweeps end.
    assert len(frozen_pings) <= 3, frozen_pings
    assert max(gaps) >= SLOT_OPEN_TIMEOUT_S * 0.9, gaps
    pairs = itertools.pairwise(frozen_pings)
    assert all(b - a >= SLOT_OPEN_TIMEOUT_S * 0.9 for a, b in pairs), frozen_pings
    # Thawed: sweeps finish at once again, pings close together.
    assert thawed[-1] - thawed[-2] < SLOT_OPEN_TIMEOUT_S / 2, thawed


# --- the messages themselves --------------------------------------------------------


def _report(*states: str, trusted: bool = True) -> dict[str, Any]:
    return {"slots": [{"state": s} for s in states], "clock": {"trusted": trusted}}


def test_status_is_sent_when_it_changes_and_ping_every_time() -> None:
    sent: list[str] = []
    notify = ServiceNotifier(sent.append, watchdog_s=60.0)
    notify.swept(_report("ready", "empty"))
    notify.swept(_report("ready", "empty"))
    notify.swept(_report("ready", "fault", trusted=False))
    notify.stopping()
    assert sent == [
        "READY=1\nSTATUS=2 slot(s): 1 empty, 1 ready; clock trusted\nWATCHDOG=1",
        "WATCHDOG=1",
        "STATUS=2 slot(s): 1 fault, 1 ready; clock NOT trusted\nWATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_nothing_is_sent_outside_systemd() -> None:
    notify = ServiceNotifier.from_environment({})
    assert not notify.enabled
    notify.swept(_report("ready"))
    notify.stopping()  # no socket, no error


def test_the_watchdog_is_ours_only_when_systemd_says_so() -> None:
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}, pid=7) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=7) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, pid=7) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_seconds({}) is None


def test_status_text_is_one_short_printable_line() -> None:
    text = status_text({"slots": [{"state": "x\nWATCHDOG=1" * 50}], "clock": {}})
    assert "\n" not in text and len(text) <= 200
