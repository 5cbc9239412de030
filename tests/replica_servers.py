"""Real replication servers for tests, each on its own free port on 127.0.0.1.

* :class:`Samba`: Debian's ``smbd`` with its own smb.conf, private/lock/state/pid
  folders and passdb (tdbsam) under a temporary folder: never the system's Samba.
* :class:`CephRgw`: a real S3 server, Debian's Ceph (one monitor, one memstore OSD)
  and its S3 gateway ``radosgw``, all under a temporary folder.
* :class:`MotoS3`: moto's S3 stand-in (not a real server), and :class:`TcpCutter`, a
  relay whose cut drops the link mid-transfer.

Start-up waits poll the port, bounded in time; a server that dies or never listens is a
:class:`ServerError` carrying the tail of its log. Each server runs in a process group
of its own, so :meth:`kill` (SIGKILL to the group) takes its forked workers too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
POLL = 0.05


class ServerError(RuntimeError):
    """A server did not start or died; the message has the end of its log."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def find(name: str, *fallbacks: str) -> str | None:
    """A binary on PATH or in the sbin folders a user's PATH often lacks."""
    found = shutil.which(name)
    if found:
        return found
    for f in (*fallbacks, f"/usr/sbin/{name}", f"/sbin/{name}"):
        if os.access(f, os.X_OK):
            return f
    return None


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    """Until ``port`` accepts connections; ServerError if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        if listening(port):
            return
        time.sleep(POLL)
    raise ServerError(f"{what} did not listen on {port} in {START_TIMEOUT:.0f} s:\n{tail(log)}")


def kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL the process group ``proc`` leads (started with start_new_session)."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


# ------------------------------------------------------------------------------- Samba


class Samba:
    """One smbd serving one share, user ``root`` with ``password`` in its own passdb."""

    user = "root"  # the share's unix user (smbd maps a Samba user to a unix one)
    share = "evidence"

    def __init__(
        self, base: Path, share_path: Path, password: str = "s3cret-pw", encrypt: str = "desired"
    ) -> None:
        self.encrypt = encrypt  # smb.conf's "smb encrypt": desired, required or off
        self.smbd = find("smbd")
        self.smbpasswd = find("smbpasswd", "/usr/bin/smbpasswd")
        if self.smbd is None or self.smbpasswd is None:
            raise ServerError("no smbd/smbpasswd (Debian package samba: scripts/bootstrap.sh)")
        self.dir = base
        self.share_path = share_path
        self.password = password
        self.port = free_port()
        self.conf = base / "smb.conf"
        self.log = base / "smbd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self._write_conf()
        self._add_user()

    def _write_conf(self) -> None:
        d = self.dir
        self.conf.write_text(
            f"""[global]
server role = standalone server
smb ports = {self.port}
interfaces = {HOST}
bind interfaces only = yes
private dir = {d}/private
lock directory = {d}/lock
state directory = {d}/state
cache directory = {d}/cache
pid directory = {d}/pid
ncalrpc dir = {d}/ncalrpc
log file = {d}/smbd.log.file
passdb backend = tdbsam:{d}/passdb.tdb
server min protocol = SMB3
smb encrypt = {self.encrypt}
map to guest = never
restrict anonymous = 2
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes
disable netbios = yes
unix password sync = no
obey pam restrictions = no
strict sync = yes

[{self.share}]
path = {self.share_path}
read only = no
valid users = {self.user}
"""
        )

    def _add_user(self) -> None:
        done = subprocess.run(
            [self.smbpasswd, "-c", str(self.conf), "-s", "-a", self.user],
            input=f"{self.password}\n{self.password}\n".encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise ServerError(f"smbpasswd -a failed: {done.stdout!r} {done.stderr!r}")

    def start(self) -> Samba:
        """Start smbd (again, on the same port after :meth:`kill`)."""
        assert self.smbd is not None
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.smbd, "--foreground", "--no-process-group", "--debug-stdout",
                 "-s", str(self.conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_listening(self._proc, self.port, self.log, "smbd")
        return self

    def kill(self) -> None:
        """SIGKILL smbd and every worker it forked (a crash, not a shutdown)."""
        kill_group(self._proc)
        self._proc = None

    def __enter__(self) -> Samba:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


# ------------------------------------------------------------------------------- S3


class MotoS3:
    """moto's S3 server (``moto_server``), with signatures and IAM checked: NOT a real S3
    server (none installs from the registries reached here; see dock/replicas/s3.py).

    ``auth=True`` (``INITIAL_NO_AUTH_ACTION_COUNT``): the first three requests (make a
    user, its access key and its policy) go unchecked; every later one must be signed
    with that key. Only for the credentials tests: moto 5.2 miscomputes the signature of
    a request whose query has a "/" (ListMultipartUploads with a key as prefix), so the
    other tests run it without checks.
    Its state is in memory: a restart loses it, so a link cut is made with
    :class:`TcpCutter` between the client and it instead of killing it."""

    bucket = "evidence"

    def __init__(self, base: Path, auth: bool = False) -> None:
        self.auth = auth
        self.binary = find("moto_server", str(Path(sys.executable).parent / "moto_server"))
        if self.binary is None:
            raise ServerError("no moto_server (pip install 'moto[server]': the test extras)")
        self.port = free_port()
        self.log = base / "moto.log"
        self.url = f"http://{HOST}:{self.port}"
        self.access_key = "dock-test-key"
        self.secret_key = "dock-test-secret"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoS3:
        import boto3  # the test extras' client, only to set the server up

        assert self.binary is not None
        env = dict(os.environ, MOTO_PORT=str(self.port))
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-H", HOST, "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=env,
            )  # fmt: skip
        wait_listening(self._proc, self.port, self.log, "moto_server")
        kw = {"endpoint_url": self.url, "region_name": "us-east-1"}
        if self.auth:
            self._make_user(kw)
        s3 = boto3.client(
            "s3", aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, **kw
        )
        s3.create_bucket(Bucket=self.bucket)
        return self

    def _make_user(self, kw: dict[str, str]) -> None:
        import boto3

        iam = boto3.client("iam", aws_access_key_id="x", aws_secret_access_key="x", **kw)
        iam.create_user(UserName="dock")
        key = iam.create_access_key(UserName="dock")["AccessKey"]
        iam.put_user_policy(
            UserName="dock", PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":"s3:*","Resource":"*"}]}',
        )  # fmt: skip
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    def kill(self) -> None:
        kill_group(self._proc)
        self._proc = None

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class TcpCutter:
    """A TCP relay on its own port to ``port``: :meth:`cut` closes the listener and every
    relayed connection at once (the link dies mid-transfer), :meth:`start` again mends it
    on the same port. Threads, one pair per connection; each relay loop ends when either
    side closes."""

    def __init__(self, port: int) -> None:
        import threading

        self.target = port
        self.port = free_port()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> TcpCutter:
        import threading

        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((HOST, self.port))
        ls.listen(16)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()
        return self

    def _accept(self, ls: socket.socket) -> None:
        import threading

        while True:  # ends when cut() closes the listener
            try:
                client, _ = ls.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.target), timeout=10)
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        while True:  # ends when either side closes or is cut
            try:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
            except OSError:
                break
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept (close alone would leave the
            # listening socket alive until that accept returned)
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


# ------------------------------------------------------------------------------- Ceph


OSD_ATTEMPTS = 4
OSD_WAIT = 8.0  # seconds for one OSD start to be "up" (it takes about 2 here)


class CephRgw:
    """A real S3 server: Debian's Ceph (one monitor, one OSD on memstore, no manager) and
    its S3 gateway radosgw, each a foreground process in its own group, all under
    ``base``. Users ``dock`` (no quota) and ``tight`` (a user quota of ``TIGHT_BYTES``),
    each with a bucket ``evidence``/``tight``. Killing radosgw keeps the data (it lives
    in the OSD), so a killed and restarted gateway shows what a real server keeps."""

    access_key, secret_key = "DOCKTESTKEY", "dock-test-secret"
    tight_key, tight_secret = "TIGHTTESTKEY", "tight-test-secret"
    bucket, tight_bucket = "evidence", "tight"
    TIGHT_BYTES = 4 * 1024 * 1024

    def __init__(self, base: Path) -> None:
        names = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
        found = {n: find(n) for n in names}
        missing = [n for n, p in found.items() if p is None]
        if missing:
            raise ServerError(f"no {', '.join(missing)} (Debian's ceph: ensure_s3_server)")
        self.bin: dict[str, str] = {n: str(p) for n, p in found.items()}
        self.dir = base
        self.conf = base / "ceph.conf"
        self.mon_port, self.port = free_port(), free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.osd_attempts = 0

    def _run(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run([*args], capture_output=True, timeout=timeout, check=False, text=True)
        if done.returncode != 0:
            raise ServerError(f"{' '.join(args[:3])}... failed: {done.stderr[-2000:]}")
        return done.stdout

    def _try(self, *args: str) -> str | None:
        """A CLI call's output, None when it fails (the monitor still starting)."""
        try:
            return self._run(*args, timeout=15)
        except (ServerError, subprocess.TimeoutExpired):
            return None

    def _until(self, ready: Callable[[], bool], what: str, log: str) -> None:
        """Poll ``ready`` until true, for at most START_TIMEOUT seconds."""
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if time.monotonic() > deadline:
                raise ServerError(f"{what} in {START_TIMEOUT:.0f} s:\n{tail(self.dir / log)}")
            time.sleep(0.2)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.dir / "log" / f"{name}.out").open("ab") as log:
            proc = subprocess.Popen(
                [*args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._procs[name] = proc
        return proc

    def _write_conf(self, fsid: str) -> None:
        d = self.dir
        self.conf.write_text(
            f"""[global]
fsid = {fsid}
mon host = v1:{HOST}:{self.mon_port}
public addr = {HOST}
cluster addr = {HOST}
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms bind ipv6 = false
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 1073741824
osd data = {d}/osd$id
mon data = {d}/mon$id
[client.rgw]
rgw frontends = beast endpoint={HOST}:{self.port}
rgw data = {d}/rgw
rgw bucket quota ttl = 0
rgw user quota bucket sync interval = 0
rgw user quota sync interval = 0
"""
        )

    def start(self) -> CephRgw:
        """Monitor, OSD (up), gateway (listening), users and buckets: ~15 s here."""
        import uuid

        for sub in ("run", "log", "mona", "osd0", "rgw"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._write_conf(str(uuid.uuid4()))
        c, b = str(self.conf), self.bin
        monmap = str(self.dir / "monmap")
        self._run(b["monmaptool"], "--create", "--addv", "a", f"[v1:{HOST}:{self.mon_port}]",
                  "--fsid", self._fsid(), monmap)  # fmt: skip
        self._run(b["ceph-mon"], "-c", c, "--mkfs", "-i", "a", "--monmap", monmap)
        mon = self._spawn("mon", b["ceph-mon"], "-c", c, "-f", "-i", "a")
        wait_listening(mon, self.mon_port, self.dir / "log" / "mon.a.log", "ceph-mon")
        self._until(lambda: self._try(b["ceph"], "-c", c, "osd", "stat") is not None,
                    "the monitor did not answer", "log/mon.a.log")  # fmt: skip
        self._start_osd()
        self.start_gateway()
        admin = (b["radosgw-admin"], "-c", c)
        self._run(*admin, "user", "create", "--uid=dock", "--display-name=dock",
                  f"--access-key={self.access_key}", f"--secret-key={self.secret_key}")  # fmt: skip
        self._run(*admin, "user", "create", "--uid=tight", "--display-name=tight",
                  f"--access-key={self.tight_key}",
                  f"--secret-key={self.tight_secret}")  # fmt: skip
        self._run(*admin, "quota", "set", "--quota-scope=user", "--uid=tight",
                  f"--max-size={self.TIGHT_BYTES}")  # fmt: skip
        self._run(*admin, "quota", "enable", "--quota-scope=user", "--uid=tight")
        import boto3

        for key, secret, bucket in (
            (self.access_key, self.secret_key, self.bucket),
            (self.tight_key, self.tight_secret, self.tight_bucket),
        ):
            boto3.client(
                "s3", endpoint_url=self.url, region_name="us-east-1",
                aws_access_key_id=key, aws_secret_access_key=secret,
            ).create_bucket(Bucket=bucket)  # fmt: skip
        return self

    def _start_osd(self) -> None:
        """One memstore OSD, up. Its first boot sometimes fails to register ('wrong
        fsid', seen in about one start in three here, cause not found): then it is made
        again from nothing, at most OSD_ATTEMPTS times, each bounded in time."""
        import uuid

        c, b = str(self.conf), self.bin
        for attempt in range(1, OSD_ATTEMPTS + 1):
            self.osd_attempts = attempt
            shutil.rmtree(self.dir / "osd0", ignore_errors=True)
            (self.dir / "osd0").mkdir()
            self._run(b["ceph-osd"], "-c", c, "-i", "0", "--mkfs", "--osd-uuid",
                      str(uuid.uuid4()))  # fmt: skip
            self._spawn("osd", b["ceph-osd"], "-c", c, "-f", "-i", "0")
            deadline = time.monotonic() + OSD_WAIT
            while time.monotonic() < deadline:
                if "1 up" in (self._try(b["ceph"], "-c", c, "osd", "stat") or ""):
                    return
                time.sleep(0.2)
            kill_group(self._procs.pop("osd", None))
            self._try(b["ceph"], "-c", c, "osd", "purge", "0", "--yes-i-really-mean-it")
        raise ServerError(
            f"the OSD did not come up in {OSD_ATTEMPTS} tries:\n{tail(self.dir / 'log/osd.0.log')}"
        )

    def _fsid(self) -> str:
        for line in self.conf.read_text().splitlines():
            if line.startswith("fsid = "):
                return line.split(" = ", 1)[1]
        raise ServerError("no fsid in ceph.conf")

    def start_gateway(self) -> None:
        """radosgw (again, on the same port after :meth:`kill_gateway`)."""
        rgw = self._spawn("rgw", self.bin["radosgw"], "-c", str(self.conf), "-n", "client.rgw",
                          "-f")  # fmt: skip
        deadline = time.monotonic() + 60  # pools are made on the first start
        while not listening(self.port):
            if rgw.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"radosgw did not listen:\n{tail(self.dir / 'log/rgw.out')}")
            time.sleep(POLL)

    def kill_gateway(self) -> None:
        """SIGKILL radosgw (a crash of the S3 server; the OSD keeps what it stored)."""
        kill_group(self._procs.pop("rgw", None))

    def stop(self) -> None:
        for name in ("rgw", "osd", "mon"):
            kill_group(self._procs.pop(name, None))

    def __enter__(self) -> CephRgw:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
