"""A real OpenSSH ``sshd`` for the SFTP replication tests, on a free port of 127.0.0.1.

Its own host key, client key, authorized_keys and sshd_config in a temporary folder
(``sshd -D -e -f cfg``; ``internal-sftp``; never the system's sshd or its keys); the
login is the user running the tests (root allowed by this config only). :meth:`kill`
(SIGKILL) and :meth:`start` again on the same port emulate a server lost mid-upload.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import subprocess
from pathlib import Path

import psutil

from dock.config.replication import TargetConfig
from tests.replica_servers import HOST, ServerError, find, free_port, kill_group, wait_listening


def sshd_binary() -> str | None:
    return find("sshd")


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return (path.with_suffix(".pub") if path.suffix else Path(str(path) + ".pub")).read_text()


class Sshd:
    def __init__(self, folder: Path, root_dir: Path | None = None) -> None:
        binary = sshd_binary()
        if binary is None:
            raise ServerError("no sshd (openssh-server) on this machine")
        self.binary = binary
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.root_dir = root_dir or folder / "central"
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.host_key = folder / "host_ed25519"
        host_pub = _keygen(self.host_key)
        self.client_key = folder / "client_ed25519"
        (folder / "authorized_keys").write_text(_keygen(self.client_key))
        os.chmod(folder / "authorized_keys", 0o600)
        self.known_hosts = folder / "known_hosts"
        kind, blob = host_pub.split()[:2]
        self.known_hosts.write_text(f"[{HOST}]:{self.port} {kind} {blob}\n")
        self.config = folder / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress {HOST}\nHostKey {self.host_key}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin yes\nUsePAM no\nStrictModes no\n"
            f"AllowUsers {self.user}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
            "MaxStartups 50\n"
        )
        self.log = folder / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-D", "-e", "-f", str(self.config)],
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        wait_listening(self.proc, self.port, self.log, "sshd")
        return self

    def kill(self) -> None:
        """SIGKILL sshd and every session it forked (a server lost mid-upload)."""
        if self.proc is None:
            return
        # each session's process is sshd's child in a session of its own: by pid, first
        children = []
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(self.proc.pid).children(recursive=True)
        kill_group(self.proc)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self.proc.wait(10)
        psutil.wait_procs(children, timeout=10)

    def stop(self) -> None:
        self.kill()

    def target(self, name: str = "central", **changes: object) -> TargetConfig:
        values: dict[str, object] = {
            "name": name, "kind": "sftp", "host": HOST, "port": self.port, "user": self.user,
            "path": str(self.root_dir), "key_file": str(self.client_key),
            "known_hosts_file": str(self.known_hosts), "connect_timeout_s": 10.0,
            "io_timeout_s": 10.0,
        }  # fmt: skip
        values.update(changes)
        return TargetConfig(**values)  # type: ignore[arg-type]
