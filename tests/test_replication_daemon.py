"""`dock run` as installed (the production wiring, dock/daemon/composition.py) with a
``[[replication.target]]``: a recorder's footage offloaded, sealed, and replicated to a
real sshd; the daemon killed (SIGKILL) mid-upload and started again loses and counts
nothing twice; `dock replication` shows the outcome."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dock.support import crashpoints
from tests.conftest import write_dock_config
from tests.sshd_server import Sshd, sshd_binary

pytestmark = pytest.mark.skipif(sshd_binary() is None, reason="no sshd (openssh-server)")

EMULATOR = [sys.executable, "-m", "hardware.emulator.cli"]
DOCK = [sys.executable, "-m", "dock.cli.main"]
WAIT_S = 120.0


def dock(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DOCK, *args], capture_output=True, text=True, timeout=120,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


def wait_for(what: str, check, timeout: float = WAIT_S, proc=None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the daemon exited ({proc.returncode}) waiting for {what}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def audit_kinds(state: Path) -> list[str]:
    with sqlite3.connect(f"file:{state / 'audit.db'}?mode=ro", uri=True) as db:
        return [r[0] for r in db.execute("SELECT kind FROM entries ORDER BY seq")]


def files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def queue(state: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(f"file:{state / 'dock.db'}?mode=ro", uri=True) as db:
            return list(db.execute("SELECT bag, state FROM replication_queue"))
    except sqlite3.OperationalError:
        return []


def test_dock_run_replicates_and_survives_a_kill_mid_upload(tmp_path) -> None:
    """The daemon keeps the second copy going through a kill (004 att.3 art.5; 004 att.2
    §4): replicated once, verified, nothing lost or counted twice."""
    sshd = Sshd(tmp_path / "sshd").start()
    emulator = subprocess.Popen(
        [*EMULATOR, "--data-dir", str(tmp_path / "rec"), "--listen", "tcp://127.0.0.1:0",
         "--recordings", "2", "--recording-mb", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    daemon: subprocess.Popen[bytes] | None = None
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        cfg, state, evidence = write_dock_config(tmp_path, url, "dock-9")
        t = sshd.target()
        with open(cfg, "a", encoding="utf-8") as f:
            f.write(
                "\n[replication]\nbandwidth_kib_s = 2048\n\n[[replication.target]]\n"
                f'name = "central"\nkind = "sftp"\nhost = "{t.host}"\nport = {t.port}\n'
                f'user = "{t.user}"\npath = "{t.path}"\nkey_file = "{t.key_file}"\n'
                f'known_hosts_file = "{t.known_hosts_file}"\n'
            )
        assert dock("--config", cfg, "device", "enrol", "--slot", "1").returncode == 0
        log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 (closed below)

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([*DOCK, "--config", cfg, "run", "--interval", "0.5"],
                                    stdout=log, stderr=log, stdin=subprocess.DEVNULL)  # fmt: skip

        daemon = start()
        central = sshd.root_dir / "dock-9"

        def a_partial() -> list[Path]:
            return [p for p in central.rglob("*.part") if p.stat().st_size > 0]

        wait_for("an upload under way", a_partial, proc=daemon)
        assert [s for _, s in queue(state)] == ["sending"]
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(30)

        daemon = start()
        wait_for("the package replicated",
                 lambda: queue(state) and all(s == "replicated" for _, s in queue(state)),
                 proc=daemon)  # fmt: skip
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        log.close()

        [(bag, _)] = queue(state)
        local = Path(evidence) / bag
        remote = central / os.path.basename(bag)
        got = {str(p.relative_to(remote)): p.read_bytes() for p in remote.rglob("*") if p.is_file()}
        want = {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()}
        assert got == want and len(got) >= 6
        kinds = audit_kinds(state)
        assert kinds.count("package_replicated") == 1 and kinds.count("second_copy") == 2

        out = dock("--config", cfg, "replication", "--json")
        assert out.returncode == 0, out.stderr
        [row] = json.loads(out.stdout)
        assert row["state"] == "replicated" and row["target"] == "central"
        human = dock("--config", cfg, "replication")
        assert "replicated" in human.stdout and "0 not yet replicated" in human.stdout
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait(30)
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(10)
        sshd.stop()


@pytest.fixture
def enrolled_dock(tmp_path):  # type: ignore[no-untyped-def]
    """A real sshd, an emulated recorder with two short recordings, and a dock
    configured to replicate to the sshd with the recorder enrolled: (cfg, state,
    evidence, sshd)."""
    sshd = Sshd(tmp_path / "sshd").start()
    emulator = subprocess.Popen(
        [*EMULATOR, "--data-dir", str(tmp_path / "rec"), "--listen", "tcp://127.0.0.1:0",
         "--recordings", "2", "--recording-mb", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        cfg, state, evidence = write_dock_config(tmp_path, url, "dock-9")
        t = sshd.target()
        with open(cfg, "a", encoding="utf-8") as f:
            f.write(
                "\n[[replication.target]]\n"
                f'name = "central"\nkind = "sftp"\nhost = "{t.host}"\nport = {t.port}\n'
                f'user = "{t.user}"\npath = "{t.path}"\nkey_file = "{t.key_file}"\n'
                f'known_hosts_file = "{t.known_hosts_file}"\n'
            )
        assert dock("--config", cfg, "device", "enrol", "--slot", "1").returncode == 0
        yield cfg, state, evidence, sshd
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(10)
        sshd.stop()


def test_dock_run_once_takes_one_replication_turn(enrolled_dock) -> None:
    """`dock run --once` (the housekeeping, run_all): the sweep offloads and seals, and
    the same run replicates and verifies the package at the real sshd."""
    cfg, state, _evidence, sshd = enrolled_dock
    assert queue(state) == []
    out = dock("--config", cfg, "run", "--once")
    assert out.returncode == 0, out.stderr
    [(bag, st)] = queue(state)
    assert st == "replicated"
    assert (sshd.root_dir / "dock-9" / os.path.basename(bag) / "bag-info.txt").is_file()
    assert audit_kinds(state).count("package_replicated") == 1


@pytest.mark.parametrize("point", sorted(crashpoints.REPLICATION_POINTS))
def test_a_kill_at_each_replication_point_is_finished_by_the_next_run(enrolled_dock, point) -> None:
    """A kill -9 at each replication crash point (004 att.3 art.5: the second copy): the
    next run finishes the package once, each recording's second copy recorded once, the
    bytes at the target equal to the dock's."""
    cfg, state, evidence, sshd = enrolled_dock
    killed = dock("--config", cfg, "run", "--once", env={crashpoints.ENV: f"{point}:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "package_replicated" not in audit_kinds(state)
    out = dock("--config", cfg, "run", "--once")
    assert out.returncode == 0, out.stderr
    [(bag, st)] = queue(state)
    assert st == "replicated"
    kinds = audit_kinds(state)
    assert kinds.count("package_replicated") == 1
    assert kinds.count("second_copy") == 2  # one per recording, never twice
    local = Path(evidence) / bag if not os.path.isabs(bag) else Path(bag)
    assert files(sshd.root_dir / "dock-9" / os.path.basename(bag)) == files(local)
