"""A real Mosquitto broker for tests, on its own free port on 127.0.0.1.

Never the system broker on 1883: every ``Broker`` writes its own configuration,
password file, ACL file, certificates, log and persistence database under the
directory it is given, and listens on a port nobody else holds.

    with Broker(tmp_path, passwords={"hq": "s3cret"}, acl="user hq\\ntopic read bwc/#") as b:
        client.connect(b.host, b.port)

Written for mosquitto 2.0 (checked against 2.0.11 and its mosquitto.conf(5)).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds for a started broker to accept TCP connections
POLL_INTERVAL = 0.05
STOP_TIMEOUT = 10.0  # seconds for SIGTERM (which saves persistence) before SIGKILL
BIND_ATTEMPTS = 10  # restarts on the same port that found it still taken
BIND_RETRY_DELAY = 0.1
LOG_TAIL_LINES = 30

_live: set[subprocess.Popen[bytes]] = set()


class BrokerError(RuntimeError):
    """The broker did not start, or died; the message carries the tail of its log."""


def find_mosquitto() -> str | None:
    """The mosquitto binary (often in /usr/sbin, outside a user's PATH), or None."""
    return _find("mosquitto", "/usr/sbin/mosquitto")


def find_mosquitto_passwd() -> str | None:
    return _find("mosquitto_passwd", "/usr/bin/mosquitto_passwd")


def _find(name: str, fallback: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return fallback if os.access(fallback, os.X_OK) else None


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Broker:
    """One mosquitto process; a context manager that starts it and stops it.

    ``acl``: the text of an ACL file (mosquitto.conf(5), ``acl_file``).
    ``passwords``: user -> password, written with mosquitto_passwd.
    ``tls``: the listener speaks TLS only, with a CA made here; clients need a
    certificate from :meth:`client_cert`, whose CN is their username for the ACL.
    ``allow_anonymous``: by default true unless ``passwords`` or ``tls`` is given.
    """

    host = HOST

    def __init__(
        self,
        tmp_path: str | os.PathLike[str],
        *,
        acl: str | None = None,
        passwords: dict[str, str] | None = None,
        tls: bool = False,
        persistence: bool = True,
        allow_anonymous: bool | None = None,
    ) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError("no mosquitto binary (neither on PATH nor /usr/sbin/mosquitto)")
        self.binary = binary
        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        # A fresh directory each time, so that several brokers can share tmp_path.
        self.dir = Path(tempfile.mkdtemp(prefix="mosquitto-", dir=tmp_path))
        self.conf_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self.stderr_path = self.dir / "stderr.log"
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self.acl = acl
        self.passwords = dict(passwords or {})
        self.tls = tls
        self.persistence = persistence
        if allow_anonymous is None:
            allow_anonymous = not self.passwords and not tls
        self.allow_anonymous = allow_anonymous
        self.port = free_port()
        self._port_chosen_here = True
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._stderr = None
        self.ca_path: Path | None = None
        self._ca_key: ec.EllipticCurvePrivateKey | None = None
        self._ca_cert: x509.Certificate | None = None
        self._server_cert_path: Path | None = None
        self._server_key_path: Path | None = None
        if tls:
            self._make_ca()
        self._password_path = self._write_passwords() if self.passwords else None
        self._acl_path = self._write_acl() if acl is not None else None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Broker:
        """Start mosquitto; return once it accepts TCP connections (at most 10 s)."""
        if self.alive:
            raise BrokerError(f"mosquitto already running on {self.host}:{self.port}")
        for attempt in range(BIND_ATTEMPTS):
            self._write_conf()
            self._spawn()
            if self._wait_ready():
                self._port_chosen_here = False  # from now on restarts keep this port
                return self
            text = self._failure_text()
            if "Address already in use" not in text or attempt == BIND_ATTEMPTS - 1:
                raise BrokerError(f"mosquitto on port {self.port} did not start:\n{text}")
            if self._port_chosen_here:
                self.port = free_port()  # somebody took it between choice and start
            else:
                time.sleep(BIND_RETRY_DELAY)  # restart: wait for the old socket to go
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM, so that mosquitto saves its persistence database; SIGKILL after 10 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash; whatever was not autosaved is lost."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        self._reap()

    def restart(self) -> Broker:
        """Stop if running, then start again on the same port and persistence directory."""
        self.stop()
        return self.start()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_text(self) -> str:
        """Everything mosquitto logged so far (all runs: the file is appended to)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive else "stopped"
        return f"<Broker {self.host}:{self.port} {state} in {self.dir}>"

    # ---------------------------------------------------------------- TLS

    def client_cert(self, name: str) -> tuple[str, str]:
        """A client certificate with CN=``name`` signed by this broker's CA: (cert, key) paths."""
        if self._ca_key is None or self._ca_cert is None:
            raise BrokerError("client_cert() needs Broker(..., tls=True)")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        cert_path, key_path = self._issue(
            f"client-{safe}",
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            san=None,
        )
        return str(cert_path), str(key_path)

    def _make_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bwc test CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        self._ca_key, self._ca_cert = key, cert
        self.ca_path = self.dir / "ca.crt"
        self.ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        san = x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
        )
        self._server_cert_path, self._server_key_path = self._issue(
            "server",
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
            [ExtendedKeyUsageOID.SERVER_AUTH],
            san=san,
        )

    def _issue(
        self,
        stem: str,
        subject: x509.Name,
        usages: list[x509.ObjectIdentifier],
        san: x509.SubjectAlternativeName | None,
    ) -> tuple[Path, Path]:
        assert self._ca_key is not None and self._ca_cert is not None
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{stem}.crt", self.dir / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path

    # ---------------------------------------------------------------- files

    def _write_passwords(self) -> Path:
        path = self.dir / "passwords"
        tool = find_mosquitto_passwd()
        if tool is None:
            raise BrokerError("passwords= needs mosquitto_passwd (package mosquitto)")
        for i, (user, password) in enumerate(self.passwords.items()):
            args = [tool, "-b", *(["-c"] if i == 0 else []), str(path), user, password]
            done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
            if done.returncode != 0:
                raise BrokerError(f"mosquitto_passwd failed for {user!r}: {done.stderr.strip()}")
        path.chmod(0o600)
        return path

    def _write_acl(self) -> Path:
        path = self.dir / "acl"
        text = self.acl or ""
        path.write_text(text if text.endswith("\n") else text + "\n")
        path.chmod(0o600)
        return path

    def _write_conf(self) -> None:
        lines = [
            f"# written by tests/broker.py for {self.dir}",
            "per_listener_settings false",
            f"allow_anonymous {str(self.allow_anonymous).lower()}",
        ]
        if os.geteuid() == 0:
            # As root mosquitto would switch to the user "mosquitto", who cannot
            # read a pytest tmp_path (mode 0700); stay the user who runs the tests.
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.data_dir}/",
                "autosave_interval 1",
            ]
        else:
            lines.append("persistence false")
        lines += [
            f"log_dest file {self.log_path}",
            "log_type all",
            "connection_messages true",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            # 0 would also mean "no maximum" in 2.0.11; a large bound is as good for tests.
            "max_queued_messages 1000000",
            "max_inflight_messages 0",  # 0: no maximum
            "set_tcp_nodelay true",
        ]
        if self._password_path is not None:
            lines.append(f"password_file {self._password_path}")
        if self._acl_path is not None:
            lines.append(f"acl_file {self._acl_path}")
        lines.append(f"listener {self.port} {self.host}")
        if self.tls:
            lines += [
                f"cafile {self.ca_path}",
                f"certfile {self._server_cert_path}",
                f"keyfile {self._server_key_path}",
                "require_certificate true",
                "use_identity_as_username true",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    # ---------------------------------------------------------------- process

    def _spawn(self) -> None:
        self._reap()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in _reap
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            cwd=self.dir,
        )
        _live.add(self._proc)

    def _wait_ready(self) -> bool:
        """True once a TCP connect succeeds while the process lives; False if it died.

        A TCP connect alone is not proof: another process holding the port accepts
        it too while our mosquitto is still on its way to "Address already in use".
        So this run's log must also say "running", which mosquitto writes only
        after it has opened its listeners.
        """
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self._logged_running():
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((self.host, self.port), timeout=POLL_INTERVAL * 4),
                ):
                    if self._proc.poll() is None:
                        return True
            time.sleep(POLL_INTERVAL)
        self.kill()
        raise BrokerError(
            f"mosquitto did not accept connections on {self.host}:{self.port} "
            f"within {START_TIMEOUT} s:\n{self._failure_text()}"
        )

    def _logged_running(self) -> bool:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return b" running" in f.read()
        except FileNotFoundError:
            return False

    def _failure_text(self) -> str:
        code = self._proc.poll() if self._proc is not None else None
        self._reap()
        parts = [f"exit code {code}"]
        for label, path in (("stderr", self.stderr_path), ("log", self.log_path)):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                continue
            if lines:
                parts.append(f"--- {label} ({path}):\n" + "\n".join(lines[-LOG_TAIL_LINES:]))
        return "\n".join(parts)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            _live.discard(self._proc)
        if self._stderr is not None and (self._proc is None or self._proc.poll() is not None):
            self._stderr.close()
            self._stderr = None


@atexit.register
def _kill_leftovers() -> None:
    """No broker outlives the test run, even one whose test forgot to stop it."""
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT)
