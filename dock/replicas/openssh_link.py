"""OpenSSH's own client (``ssh``) as the byte pipe under an SFTP session.

Why: paramiko runs SSH's packets, windows and MACs in Python; with its crypto in OpenSSL
it still moved 56-90 MiB/s here where ``scp`` moved ~140, and replication with a read-back
moves every byte twice. OpenSSH's client does the SSH layer in C in its own process (on
another core), and paramiko's SFTP layer talks to it over a socket pair: 1.5-2.2x
paramiko's rate both ways (bench/RESULTS.md). The SFTP requests, their answers and every
check above them stay the same code.

The client is run with nothing of the machine's or the user's configuration
(``-F /dev/null``): the host key only from the target's ``known_hosts_file`` (strict,
never learnt, never updated), the key only from its ``key_file`` (no agent), no password
prompt, no forwarding, no multiplexing, no local command. Its failures (stderr, kept
bounded) become the target's one-line errors.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import math
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from dock.config.replication import TargetConfig
from dock.domain.replica import ReplicaAuthError, ReplicaError, ReplicaUnavailable
from dock.replicas.oneline import one_line

#: What of the client's stderr is kept (its last lines) to explain a failure.
_STDERR_KEEP = 4096
#: A path given to the client as an option: ssh splits option values at blanks and quotes
#: and expands ``%`` tokens, so anything else goes through paramiko instead.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/+@:,=%-]*")
#: What the client says of a key file it cannot use (it then also says "Permission denied").
_KEY_FILE = re.compile(
    r"load key|identity file .* not accessible|no such identity|bad permissions|"
    r"unprotected private key|invalid format", re.IGNORECASE,
)  # fmt: skip
#: The client's own failures (exit status 255 is also a command's to give).
_CLIENT_SAYS = re.compile(
    r"^ssh: |host key|permission denied|load key|identity file|kex_exchange|"
    r"connection (refused|closed|reset|timed out)|control ?socket|subsystem request",
    re.IGNORECASE | re.MULTILINE,
)
#: The socket pair's buffers each way (Linux caps them at net.core.wmem_max/rmem_max).
PIPE_BUFFER = 1 << 20
#: How long a client that was told to end (its input closed) gets before it is killed.
_END_S = 2.0


#: Where Debian's openssh-client puts the client: taken first, whatever PATH says.
SSH = "/usr/bin/ssh"


def ssh_binary() -> str | None:
    if os.path.isfile(SSH):  # not os.access: a service's seccomp filter may refuse it
        return SSH
    return shutil.which("ssh")


def usable(cfg: TargetConfig) -> bool:
    """Whether OpenSSH's client can serve ``cfg``: it is installed and the target logs in
    with a key whose path (and the known_hosts file's) it can be given. A password it
    cannot take without a terminal: those targets use paramiko."""
    return (
        ssh_binary() is not None
        and bool(cfg.key_file)
        and all(plain_path(p) for p in (cfg.key_file, cfg.known_hosts_file))
    )


#: AES-GCM moved to the head of OpenSSH's own cipher order (``^``), on a CPU that does AES
#: in hardware: there it costs both ends ~30 % less CPU than ChaCha20-Poly1305, OpenSSH's
#: first choice (bench/RESULTS.md). A Raspberry Pi 4 has no AES instructions: the default
#: order stays, ChaCha20 first. The server still chooses among what both speak.
AES_FIRST = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"


@functools.cache
def hardware_aes(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has AES instructions (x86 ``flags``, ARM ``Features``: ``aes``)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and "aes" in value.split():
            return True
    return False


def plain_path(path: str) -> bool:
    """Whether ``path`` can be given to the client as an option's value."""
    return _PLAIN_PATH.fullmatch(path) is not None


def _opt(path: str) -> str:
    return path.replace("%", "%%")


def ssh_argv(
    cfg: TargetConfig,
    remote: str,
    *,
    subsystem: bool = False,
    control: str = "",
    master: bool = False,
) -> list[str]:
    """The client's command line for ``cfg``: ``remote`` is a command for the server's
    shell, or with ``subsystem`` a subsystem's name (``sftp``). ``control``: the socket of
    the session's own connection, which the client opens (``master``) or uses (a command
    run in it: no second connection, key exchange and login)."""
    binary = ssh_binary()
    if binary is None:
        raise ReplicaUnavailable(f"{cfg.name}: OpenSSH's client (ssh) is not installed")
    alive_s = max(1, math.ceil(cfg.io_timeout_s / 3))
    options = {
        "BatchMode": "yes", "StrictHostKeyChecking": "yes", "UpdateHostKeys": "no",
        "UserKnownHostsFile": _opt(cfg.known_hosts_file), "GlobalKnownHostsFile": "/dev/null",
        "CheckHostIP": "no", "IdentitiesOnly": "yes", "IdentityAgent": "none",
        "PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no",
        "ControlMaster": "yes" if master else "no", "ControlPath": _opt(control) or "none",
        "ControlPersist": "no", "ClearAllForwardings": "yes",
        "ForwardAgent": "no", "ForwardX11": "no", "PermitLocalCommand": "no",
        "ConnectTimeout": str(max(1, math.ceil(cfg.connect_timeout_s))),
        "ServerAliveInterval": str(alive_s), "ServerAliveCountMax": "3",
        "LogLevel": "ERROR",
    }  # fmt: skip
    if hardware_aes():
        options["Ciphers"] = AES_FIRST
    argv = [binary, "-F", "/dev/null", "-T", "-x", "-a", "-i", _opt(cfg.key_file)]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    if subsystem:
        argv.append("-s")
    return [*argv, "-p", str(cfg.effective_port), "-l", cfg.user, "--", cfg.host, remote]


class _Stderr:
    """The client's stderr drained on a thread (a server may write there without end),
    its last :data:`_STDERR_KEEP` bytes kept."""

    def __init__(self, stream: object) -> None:
        self._tail: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True,
                                        name="ssh-stderr")  # fmt: skip
        self._thread.start()

    def _drain(self, stream: object) -> None:
        read = getattr(stream, "read1", None) or stream.read  # type: ignore[attr-defined]
        with contextlib.suppress(OSError, ValueError):
            while chunk := read(4096):
                with self._lock:
                    self._tail.append(chunk)
                    self._size += len(chunk)
                    while self._size - len(self._tail[0]) >= _STDERR_KEEP:
                        self._size -= len(self._tail.popleft())

    def text(self, wait_s: float = 1.0) -> str:
        self._thread.join(wait_s)
        with self._lock:
            data = b"".join(self._tail)[-_STDERR_KEEP:]
        return data.decode("utf-8", "replace")


class PipeSocket:
    """Our end of the socket pair with the client, as paramiko's SFTP layer uses a
    channel. Not a ``socket.socket``: for one of those paramiko polls ``select`` in a loop
    with no end, where a channel's ``recv`` keeps the timeout set here."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.send = sock.send
        self.recv = sock.recv
        self.settimeout = sock.settimeout
        self.gettimeout = sock.gettimeout
        self.setblocking = sock.setblocking
        self.fileno = sock.fileno

    def get_name(self) -> str:
        return "ssh"

    def recv_ready(self) -> bool:
        return bool(select.select([self._sock], [], [], 0)[0])

    def close(self) -> None:
        self._sock.close()


class OpenSshLink:
    """One ``ssh -s sftp`` client process and our end of its socket pair. The client is
    its connection's master: a command (``sha256sum``) runs in a session of the same
    connection, through a control socket in a folder only this user can enter."""

    def __init__(self, cfg: TargetConfig) -> None:
        self.cfg = cfg
        if ssh_binary() is None:  # before anything is made that would need removing
            raise ReplicaUnavailable(f"{cfg.name}: OpenSSH's client (ssh) is not installed")
        self._folder = tempfile.mkdtemp(prefix="dock-ssh-")  # mode 0700
        self.control = os.path.join(self._folder, "c")
        ours, theirs = socket.socketpair()
        for end in (ours, theirs):  # a whole 255 KiB request per call, not in pieces
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                end.setsockopt(socket.SOL_SOCKET, option, PIPE_BUFFER)
        self.sock = PipeSocket(ours)
        argv = ssh_argv(cfg, "sftp", subsystem=True, control=self.control, master=True)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=theirs.fileno(),
                stdout=theirs.fileno(), stderr=subprocess.PIPE, close_fds=True,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            self.sock.close()
            self._remove_folder()
            raise ReplicaUnavailable(f"{cfg.name}: cannot start ssh ({exc.strerror})") from None
        finally:
            theirs.close()
        self._stderr = _Stderr(self.proc.stderr)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def failure(self, where: str) -> ReplicaError:
        """What the client said when the session could not start, as the target's error."""
        self.close()
        return classify(where, self.cfg.user, self.proc.returncode, self._stderr.text())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()  # the client sees its input end and leaves
        try:
            try:
                self.proc.wait(_END_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(_END_S)
            if self.proc.stderr is not None:
                self._stderr.text(_END_S)
                with contextlib.suppress(OSError):
                    self.proc.stderr.close()
        finally:
            self._remove_folder()

    def _remove_folder(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.control)  # a killed master leaves its socket
        with contextlib.suppress(OSError):
            os.rmdir(self._folder)

    def exec(self, command: str, limit_s: float, max_bytes: int) -> tuple[int, bytes, bytes]:
        """Run ``command`` at the server in a session of its own: (exit status, stdout,
        stderr), each bounded to ``max_bytes``, the whole within ``limit_s``."""
        return run_bounded(self.cfg, command, limit_s, max_bytes, control=self.control)


def run_bounded(
    cfg: TargetConfig, command: str, limit_s: float, max_bytes: int, *, control: str = ""
) -> tuple[int, bytes, bytes]:
    """``command`` at the server (in the connection of ``control`` where it is open, else
    a connection of its own), bounded as :meth:`OpenSshLink.exec` says."""
    deadline = time.monotonic() + limit_s
    try:
        proc = subprocess.Popen(
            ssh_argv(cfg, command, control=control), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise ReplicaUnavailable(f"{cfg.name}: cannot start ssh ({exc.strerror})") from None
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    got = {out_fd: bytearray(), err_fd: bytearray()}
    try:
        open_fds = list(got)
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplicaUnavailable(f"{cfg.name}: no answer within {limit_s:.0f} s")
            ready, _, _ = select.select(open_fds, [], [], min(left, 1.0))
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    open_fds.remove(fd)
                    continue
                got[fd] += data
                if len(got[fd]) > max_bytes:
                    raise ReplicaError(f"{cfg.name}: too much output from the server")
        status = proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise ReplicaUnavailable(f"{cfg.name}: no exit status within {limit_s:.0f} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(_END_S)
        proc.stdout.close()
        proc.stderr.close()
    out, err = bytes(got[out_fd]), bytes(got[err_fd])
    said = err.decode("utf-8", "replace")
    if status == 255 and _CLIENT_SAYS.search(said):  # the client's own: no command ran
        raise classify(f"{cfg.name} ({cfg.host}:{cfg.effective_port})", cfg.user, status, said)
    return status, out, err


def classify(where: str, user: str, status: int | None, stderr: str) -> ReplicaError:
    """OpenSSH's client's failure (its exit status and what it wrote) as one line."""
    text = stderr.lower()
    changed = "identification has changed" in text or "has changed and you have" in text
    if changed:
        return ReplicaAuthError(
            f"{where}: the server's host key differs from known_hosts_file: refused"
        )
    if "host key verification failed" in text or "host key is known" in text:
        return ReplicaAuthError(
            f"{where}: the server's host key is not in known_hosts_file: refused"
        )
    key = [line for line in stderr.splitlines() if _KEY_FILE.search(line)]
    if key:  # ssh then also says "Permission denied": the key, not the server, is at fault
        return ReplicaAuthError(f"{where}: key_file unusable ({last_line(key[-1])})")
    if "permission denied" in text:
        return ReplicaAuthError(f"{where}: login refused for user {user!r}")
    if "subsystem request failed" in text:
        return ReplicaError(f"{where}: the server refused the sftp subsystem")
    said = last_line(stderr) or f"ssh ended with status {status}"
    return ReplicaUnavailable(f"{where}: cannot connect ({said})")


def last_line(text: str) -> str:
    """The client's last non-empty line, escaped and bounded (:func:`one_line`)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return one_line(lines[-1]) if lines else ""
