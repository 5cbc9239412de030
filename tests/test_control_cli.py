"""``dock`` commands that touch recorders go through the daemon when one runs, and work
on their own when none does; the person at the terminal sees the same either way."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dock.cli.main import main
from dock.daemon.control_handlers import service_handlers
from dock.daemon.control_server import ControlServer
from dock.services.daemon_link import DaemonLink, control_socket_path
from dock.services.status import status_report

from .conftest import PIN, wait_until

DOCK = [sys.executable, "-m", "dock.cli.main"]


def write_config(svc: Any, path: str) -> str:
    """The dock.toml of a dock built by make_dock (its state directory and slots)."""
    state = os.path.dirname(svc.parts.slots.lock_dir)
    lines = [
        "[dock]",
        'id = "emulated"',
        'site = "emulated"',
        'unit = "emulated"',
        f'state_dir = "{state}"',
        f'evidence_dir = "{svc.offloader.evidence_dir}"',
        "",
        "[clock]",
        'source = "trusted"',
    ]
    for slot, port in svc.parts.slots.ports.items():
        lines += ["", "[[slot]]", f'id = "{slot}"', f'port = "{port}"']
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def _root_logger_restored(monkeypatch) -> None:
    """main() points the root logger at this test's captured stderr: put it back after."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)


@pytest.fixture
def daemon_of() -> Iterator[Any]:
    """``daemon_of(svc)``: svc served on its control socket, as ``dock run`` does."""
    servers: list[ControlServer] = []

    def start(svc: Any) -> ControlServer:
        path = control_socket_path(os.path.dirname(svc.parts.slots.lock_dir))
        server = ControlServer(path, service_handlers(svc, threading.Lock(), status_report))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop(timeout=30)


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    # The command's own lines; not the JSON log, nor the dock's screen (drawn on stderr by
    # a console screen where the dock runs: the daemon's, when it decides); progress
    # bars are indented (a finished one only, off a terminal).
    said = [line for line in err.split("\n") if line.startswith(("dock ", "\r", "  "))]
    return code, out, "\n".join(said)


def test_checkout_through_the_daemon_shows_what_a_local_one_shows(
    make_dock, daemon_of, tmp_path, monkeypatch, capsys
) -> None:
    local, _ = make_dock({"serial": "A1"}, {"serial": "A2"})
    remote, _ = make_dock({"serial": "A1"}, {"serial": "A2"})
    local_cfg = write_config(local, str(tmp_path / "local.toml"))
    remote_cfg = write_config(remote, str(tmp_path / "remote.toml"))
    daemon_of(remote)
    for argv in (
        ["checkout", "--officer", "1001", "--pin", PIN],
        ["checkout", "--officer", "1001", "--pin", PIN],  # one each: refused
        ["checkout", "--officer", "1002", "--pin", "000001", "--json"],  # wrong PIN
        ["checkout", "--badge", "BADGE-1001", "--json"],
        ["checkout"],  # neither officer nor badge: a usage error
    ):
        here = run_cli(capsys, "--config", local_cfg, *argv)
        with monkeypatch.context() as m:
            no_local_dock(m)
            there = run_cli(capsys, "--config", remote_cfg, *argv)
        assert there == here, argv
    assert remote.store.open_custody_of_officer("1001") is not None


def no_local_dock(monkeypatch: Any) -> None:
    import dock.daemon.composition as composition

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the command line opened the dock itself")

    monkeypatch.setattr(composition, "build_service", refuse)
    monkeypatch.setattr(composition, "open_transport", refuse)


def test_the_command_line_works_alone_when_no_daemon_runs(make_dock, tmp_path, capsys) -> None:
    svc, _ = make_dock({"serial": "L1"})
    cfg = write_config(svc, str(tmp_path / "dock.toml"))
    stale = control_socket_path(os.path.dirname(svc.parts.slots.lock_dir))
    import socket

    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a killed daemon's file
    left.bind(stale)
    left.close()
    code, out, _ = run_cli(capsys, "--config", cfg, "checkout", "--officer", "1001",
                           "--pin", PIN, "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["device"] == "L1"


def test_status_enrol_and_offload_go_through_the_daemon(
    make_dock, daemon_of, tmp_path, monkeypatch, capsys
) -> None:
    svc, _ = make_dock({"serial": "E1", "recordings": 2}, enrol=False)
    cfg = write_config(svc, str(tmp_path / "dock.toml"))
    daemon_of(svc)
    no_local_dock(monkeypatch)
    code, out, err = run_cli(capsys, "--config", cfg, "--actor", "admin", "device", "enrol",
                             "--slot", "1")  # fmt: skip
    assert (code, out) == (0, "recorder E1 in slot 1 enrolled\n"), err
    code, _, err = run_cli(capsys, "--config", cfg, "device", "enrol", "--slot", "1")
    assert code == 2 and err.startswith("dock device: ") and "already enrolled" in err
    code, out, err = run_cli(capsys, "--config", cfg, "offload", "--slot", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["archived"] == ["REC000001", "REC000002"]
    assert "100 %" in err  # the progress bar, drawn from the daemon's progress lines
    code, out, _ = run_cli(capsys, "--config", cfg, "status", "--json")
    report = json.loads(out)
    assert code == 0 and report["slots"][0]["device"] == "E1"
    code, _, err = run_cli(capsys, "--config", cfg, "offload", "--slot", "9")
    assert code == 2 and "no slot" in err


# ---------------------------------------------------------------------- dock run
@pytest.fixture
def dock_run(tmp_path) -> Iterator[Any]:
    started: list[subprocess.Popen] = []

    def start(state: str, *extra: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [*DOCK, "run", "--emulate", "2", "--state-dir", state, "--interval", "0.5", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def first_sweep(p: subprocess.Popen) -> None:
    assert p.stderr is not None
    for _ in range(200):  # bounded: logged once the first sweep is done
        line = p.stderr.readline()
        if not line or "first sweep done" in line:
            break
    assert p.poll() is None, p.stderr.read() if p.stderr else ""


def test_dock_run_serves_the_control_socket(dock_run, tmp_path) -> None:
    state = str(tmp_path / "state")
    daemon = dock_run(state)
    first_sweep(daemon)
    path = control_socket_path(state)
    assert oct(os.stat(path).st_mode & 0o777) == "0o660"
    decision = DaemonLink(path).request("checkout", {"officer": "1001", "pin": "246810"})
    assert decision["granted"] is True and decision["slot"] == "1"
    # The command line in another process, through the daemon.
    env = {**os.environ, "DOCK_CONFIG": os.path.join(state, "dock.toml")}
    again = subprocess.run([*DOCK, "checkout", "--officer", "1001", "--pin", "246810"],
                           capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert again.returncode == 1 and "officer_has_device" in again.stdout
    # A second daemon on the same state directory refuses in one line.
    second = dock_run(state)
    assert second.wait(timeout=60) == 5
    assert second.stderr is not None
    err = second.stderr.read().strip()
    assert "\n" not in err  # one log line: "<time> error dock.cli.run: another ..."
    assert err.endswith(f" error dock.cli.run: another dock daemon is already running for {state}")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    assert not os.path.exists(path)


def test_a_killed_daemons_socket_is_replaced_at_the_next_start(dock_run, tmp_path) -> None:
    state = str(tmp_path / "state")
    killed = dock_run(state)
    first_sweep(killed)
    killed.kill()
    killed.wait(timeout=30)
    path = control_socket_path(state)
    assert os.path.exists(path)  # left behind, nothing answers on it
    daemon = dock_run(state)
    first_sweep(daemon)
    assert wait_until(lambda: DaemonLink(path).request("status", {})["dock"] == "emulated")
