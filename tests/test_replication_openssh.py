"""The SFTP target's SSH layer as OpenSSH's own client (dock/replicas/openssh_link.py),
against a real sshd on 127.0.0.1: chosen where it can serve, run with nothing of the
machine's configuration, and every way it fails told in one line with nothing left
running."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
from pathlib import Path

import psutil
import pytest

from dock.domain.replica import ReplicaAuthError, ReplicaError, ReplicaUnavailable
from dock.replicas import openssh_link, sftp
from dock.replicas.sftp import SftpTarget
from tests.hostile_content import HOSTILE
from tests.replica_servers import free_port
from tests.sshd_server import Sshd, sshd_binary

pytestmark = pytest.mark.skipif(
    sshd_binary() is None or openssh_link.ssh_binary() is None,
    reason="no sshd (openssh-server) or ssh (openssh-client)",
)


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def ssh_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "ssh"]


def test_a_key_target_goes_through_openssh_run_with_nothing_of_the_machine(sshd) -> None:
    target = SftpTarget(sshd.target())
    assert target.uses_openssh()
    target.connect()
    try:
        [client] = ssh_children()
        argv = client.cmdline()
        for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "IdentityAgent=none",
                       "GlobalKnownHostsFile=/dev/null", "ControlMaster=yes",
                       f"UserKnownHostsFile={sshd.known_hosts}"):  # fmt: skip
            assert option in argv
        [path] = [a.split("=", 1)[1] for a in argv if a.startswith("ControlPath=")]
        control = Path(path)
        assert stat.S_IMODE(control.parent.stat().st_mode) == 0o700  # only this user's
        assert argv[argv.index("-F") + 1] == "/dev/null"  # no ssh_config, no ~/.ssh/config
        assert argv[-3:] == ["--", "127.0.0.1", "sftp"] and "-s" in argv
        # the server's own limits (limits@openssh.com): 255 KiB requests, not 32 KiB
        assert target._request == sftp.OPENSSH_REQUEST
        assert target.size("nothing-here") is None
    finally:
        target.close()
    assert ssh_children() == []  # the client ended with the session
    assert not control.parent.exists()


def test_a_command_runs_in_the_session_own_connection(sshd) -> None:
    """remote-sha256sum's command goes through the SFTP session's connection: no second
    key exchange and login per file (here: the server takes no new connection at all)."""
    target = SftpTarget(sshd.target())
    target.connect()
    try:
        os.kill(sshd.proc.pid, signal.SIGKILL)  # the listener only: the session lives on
        sshd.proc.wait(10)
        with pytest.raises(ReplicaUnavailable, match="cannot connect"):
            openssh_link.run_bounded(sshd.target(), "true", 10.0, 1024)
        assert target._exec("printf in-session", 10.0) == (0, b"in-session", b"")
    finally:
        target.close()


def test_a_password_target_or_a_path_ssh_cannot_take_goes_through_paramiko(sshd, tmp_path) -> None:
    assert not SftpTarget(sshd.target(key_file="", password_file="/etc/dock/pw")).uses_openssh()
    spaced = tmp_path / "a folder" / "key"
    spaced.parent.mkdir()
    shutil.copy(sshd.client_key, spaced)
    target = SftpTarget(sshd.target(key_file=str(spaced)))
    assert not target.uses_openssh()
    target.connect()
    try:
        assert ssh_children() == []
        assert target.size("nothing-here") is None
    finally:
        target.close()


def test_openssh_chosen_but_not_installed_is_one_line_and_auto_falls_back(
    sshd, monkeypatch
) -> None:
    monkeypatch.setattr(openssh_link, "ssh_binary", lambda: None)
    before = dock_ssh_folders()
    with pytest.raises(ReplicaUnavailable, match=r"OpenSSH.s client .* is not installed"):
        SftpTarget(sshd.target(ssh_client="openssh")).connect()
    assert dock_ssh_folders() <= before  # nothing made for a client that is not there
    auto = SftpTarget(sshd.target())
    assert not auto.uses_openssh()
    auto.connect()
    auto.close()


def test_nothing_listening_is_unavailable_in_one_line() -> None:
    cfg = Sshd.__new__(Sshd)  # only its target(): no server at all on this port
    cfg.port, cfg.user, cfg.root_dir = free_port(), "nobody", Path("/nonexistent")
    cfg.client_key, cfg.known_hosts = Path("/etc/hostname"), Path("/etc/hostname")
    with pytest.raises(ReplicaUnavailable, match="cannot connect") as err:
        SftpTarget(cfg.target(ssh_client="openssh")).connect()
    assert "\n" not in str(err.value) and "refused" in str(err.value).lower()
    assert ssh_children() == []


def test_a_server_that_never_speaks_is_unavailable_and_nothing_is_left_running(sshd) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
    cfg = sshd.target(port=silent.getsockname()[1], connect_timeout_s=1.0)
    try:
        with pytest.raises(ReplicaUnavailable) as err:
            SftpTarget(cfg).connect()
    finally:
        for s in [silent, *held]:
            s.close()
    assert "\n" not in str(err.value)
    assert ssh_children() == []


def test_a_server_that_stops_answering_mid_session_is_unavailable(sshd) -> None:
    target = SftpTarget(sshd.target(io_timeout_s=2.0))
    target.connect()
    sessions = psutil.Process(sshd.proc.pid).children(recursive=True)
    assert sessions
    try:
        for p in sessions:
            p.send_signal(signal.SIGSTOP)
        with pytest.raises(ReplicaUnavailable):
            target.size("anything")
    finally:
        for p in sessions:
            p.send_signal(signal.SIGCONT)
        target.close()
    assert ssh_children() == []


def test_what_the_client_says_becomes_one_printable_line() -> None:
    said = f"Warning: x\n\nkex_exchange_identification: {HOSTILE} read: Connection reset\n"
    err = openssh_link.classify("central (h:22)", "dock", 255, said)
    assert isinstance(err, ReplicaUnavailable)
    text = str(err)
    assert "\n" not in text and all(c.isprintable() for c in text)
    assert text.startswith("central (h:22): cannot connect (kex_exchange_identification:")
    changed = (
        "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed."
    )
    assert "differs" in str(openssh_link.classify("c", "u", 255, changed))
    assert isinstance(openssh_link.classify("c", "u", 255, changed), ReplicaAuthError)
    refused = openssh_link.classify("c", "u", 255, "subsystem request failed on channel 0")
    assert type(refused) is ReplicaError and "sftp subsystem" in str(refused)


def test_a_command_with_endless_output_is_cut_off(sshd) -> None:
    cfg = sshd.target()
    with pytest.raises(ReplicaError, match="too much output"):
        openssh_link.run_bounded(cfg, "yes", 10.0, 64 << 10)
    status, out, _ = openssh_link.run_bounded(cfg, "printf ok; exit 3", 10.0, 64 << 10)
    assert (status, out) == (3, b"ok")
    assert ssh_children() == []
    assert os.path.exists(sshd.client_key)


@pytest.mark.parametrize(
    ("cpuinfo", "aes"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 pclmulqdq aes avx2\n", True),  # x86, AES-NI
        ("processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n", True),  # Pi 5
        ("processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n", False),  # Pi 4
        ("flags\t\t: fpu aesx\n", False),
    ],
)
def test_aes_gcm_goes_first_only_on_a_cpu_with_aes_instructions(tmp_path, cpuinfo, aes) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert openssh_link.hardware_aes(str(path)) is aes
    assert openssh_link.hardware_aes(str(tmp_path / "none")) is False


def test_a_server_without_aes_gcm_is_still_reached(tmp_path, monkeypatch) -> None:
    """AES-GCM first is a preference: a server that speaks only ChaCha20-Poly1305 is
    reached with it, and the transfer is whole."""
    monkeypatch.setattr(openssh_link, "hardware_aes", lambda: True)
    server = Sshd(tmp_path / "chacha")
    server.config.write_text(server.config.read_text() + "Ciphers chacha20-poly1305@openssh.com\n")
    server.start()
    target = SftpTarget(server.target())
    try:
        assert "Ciphers=" + openssh_link.AES_FIRST in openssh_link.ssh_argv(server.target(), "x")
        target.connect()
        data = os.urandom(300 << 10)
        target.upload("f.part", io.BytesIO(data), 0, len(data), lambda _n: None)
        assert b"".join(target.read("f.part")) == data
    finally:
        target.close()
        server.stop()


def dock_ssh_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("dock-ssh-*")}


@pytest.mark.parametrize("problem", ["group-readable", "missing", "not a key"])
def test_a_key_file_ssh_cannot_use_is_said_to_be_the_key_not_the_login(
    sshd, tmp_path, problem
) -> None:
    key = tmp_path / "key"
    if problem != "missing":
        key.write_bytes(sshd.client_key.read_bytes() if problem == "group-readable" else b"x\n")
        key.chmod(0o640 if problem == "group-readable" else 0o600)
    before = dock_ssh_folders()
    with pytest.raises(ReplicaAuthError, match="key_file unusable") as err:
        SftpTarget(sshd.target(key_file=str(key), ssh_client="openssh")).connect()
    assert "\n" not in str(err.value) and "login refused" not in str(err.value)
    assert ssh_children() == [] and dock_ssh_folders() <= before


def test_a_known_hosts_file_that_cannot_be_read_is_said_so(sshd, tmp_path) -> None:
    with pytest.raises(ReplicaAuthError, match=r"known_hosts_file .* unreadable"):
        SftpTarget(sshd.target(known_hosts_file=str(tmp_path / "nope"))).connect()
    with pytest.raises(ReplicaAuthError, match="ssh cannot be given this path"):
        SftpTarget(
            sshd.target(known_hosts_file=str(tmp_path / "a b"), ssh_client="openssh")
        ).connect()


@pytest.mark.parametrize("client", ["openssh", "paramiko"])
def test_a_shell_that_prints_before_sftp_is_one_line_and_leaves_nothing(tmp_path, client) -> None:
    """An account whose shell prints text before the SFTP server starts (a chatty
    .bashrc) breaks SFTP: one line that says so, no client or folder left, no traceback."""
    server = Sshd(tmp_path / "chatty")
    text = server.config.read_text().replace(
        "Subsystem sftp internal-sftp",
        "Subsystem sftp echo Welcome to the evidence server; exec /usr/lib/openssh/sftp-server",
    )
    server.config.write_text(text)
    server.start()
    before = dock_ssh_folders()
    try:
        with pytest.raises(ReplicaError, match="not SFTP") as err:
            SftpTarget(server.target(ssh_client=client)).connect()
    finally:
        server.stop()
    assert "\n" not in str(err.value)
    assert ssh_children() == [] and dock_ssh_folders() <= before
