"""The real dock and site run under their units' hardening (systemd/*.service).

systemd is not PID 1 where these tests run (a container, CI), so the units cannot be
started; their sandbox is rebuilt instead, from the unit files, as close as a root
process can without systemd:

* ProtectSystem=strict + ReadWritePaths: a private mount namespace with every mount
  read-only but /proc, /sys, /dev, and the state folder bound read-write;
* PrivateTmp: fresh /tmp and /var/tmp; ProtectHome: /home and /root empty;
* User=, CapabilityBoundingSet=, NoNewPrivileges: setpriv to nobody, no capabilities;
* the seccomp settings (SystemCallFilter, RestrictAddressFamilies,
  MemoryDenyWriteExecute, RestrictNamespaces, RestrictRealtime): tests/unit_sandbox.py,
  read from the unit file;
* the code run by Debian's /usr/bin/python3, as the package runs it.

Not rebuilt: DevicePolicy/DeviceAllow (the emulated recorders use sockets),
PrivateUsers, ProtectProc, ProtectKernel*, LockPersonality. Needs root, unshare,
setpriv and Debian's python3 with python3-seccomp; skipped, saying which, without.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
SANDBOX = ROOT / "tests" / "unit_sandbox.py"
SYSTEM_PYTHON = "/usr/bin/python3"
SITE_PACKAGES = (
    ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
) / "site-packages"


@pytest.fixture(autouse=True)
def _needs_a_sandbox() -> None:
    if os.geteuid() != 0:
        pytest.skip("rebuilding a unit's sandbox needs root (mount namespace, setpriv)")
    for tool in ("unshare", "setpriv", "findmnt", "systemd-analyze"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import seccomp, cryptography"],
        env={"PYTHONPATH": f"{ROOT}:{SITE_PACKAGES}"},
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip("Debian's python3 with python3-seccomp and the venv's packages is needed")


def sandboxed(unit: str, state: Path, command: list[str]) -> list[str]:
    """The command line that runs ``command`` under ``unit``'s rebuilt sandbox, with
    ``state`` (made here, owned by nobody) its only writable folder besides /tmp."""
    state.mkdir(parents=True, exist_ok=True)
    shutil.chown(state, "nobody", "nogroup")
    script = f"""set -e
exec 3<"{state}" 4<"{ROOT}"
for m in $(findmnt -rn -o TARGET | sort -u); do
    case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
    mount -o bind,remount,ro "$m"
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mkdir -p "{state}"
mount --no-canonicalize --bind /proc/self/fd/3 "{state}"
mount -o bind,remount,rw "{state}"
exec 3<&-
mount -t tmpfs -o mode=0 tmpfs /home
mount -t tmpfs -o mode=0 tmpfs /root
# The checkout, read-only, where it was (a clone under /tmp is hidden by now).
mkdir -p "{ROOT}"
mount --no-canonicalize --bind /proc/self/fd/4 "{ROOT}"
mount -o bind,remount,ro "{ROOT}"
exec 4<&-
cd /tmp
exec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \\
    --bounding-set=-all --no-new-privs "$@"
"""
    env = [
        "env",
        "-i",
        "PATH=/usr/bin:/bin",
        "LANG=C.UTF-8",
        f"PYTHONPATH={ROOT}:{SITE_PACKAGES}",
    ]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sandbox",
        *env,
        SYSTEM_PYTHON,
        str(SANDBOX),
        str(SYSTEMD / unit),
        "--",
        *command,
    ]


PROBE = """
import ctypes, errno, mmap, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def unshare_net():
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "unshare")
def fails(what, call, code):
    try:
        call()
    except OSError as exc:
        assert exc.errno == code, (what, exc)
        print(what, "refused")
    else:
        print(what, "ALLOWED")
fails("write /etc", lambda: open("/etc/dock-probe", "w"), errno.EROFS)
fails("write the checkout", lambda: open("{root}/probe", "w"), errno.EROFS)
fails("read /root", lambda: os.listdir("/root"), errno.EACCES)
fails("mmap w+x", lambda: mmap.mmap(-1, 4096, prot=7), errno.EPERM)
fails("packet socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW), errno.EAFNOSUPPORT)
fails("set affinity", lambda: os.sched_setaffinity(0, {{0}}), errno.EPERM)
fails("unshare", unshare_net, errno.EPERM)
open("{state}/probe", "w").write("ok")
open("/tmp/probe", "w").write("ok")
status = open("/proc/self/status").read()
print("uid", os.getuid(), "CapEff", status.split("CapEff:")[1].split()[0],
      "NoNewPrivs", status.split("NoNewPrivs:")[1].split()[0],
      "Seccomp", status.split("Seccomp_filters:")[1].split()[0])
"""


def test_the_rebuilt_sandbox_refuses_what_the_unit_refuses(tmp_path: Path) -> None:
    """The tests below can fail: the sandbox they run in is real."""
    state = tmp_path / "state"
    code = PROBE.format(root=ROOT, state=state)
    done = subprocess.run(
        sandboxed("dock.service", state, [SYSTEM_PYTHON, "-c", code]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ALLOWED" not in done.stdout and done.stdout.count("refused") == 7
    assert "uid 65534 CapEff 0000000000000000 NoNewPrivs 1" in done.stdout
    assert int(done.stdout.split("Seccomp")[1]) >= 5
    assert (state / "probe").read_text() == "ok"


def test_dock_runs_sweeps_and_offloads_under_its_unit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    command = [SYSTEM_PYTHON, "-m", "dock.cli.main", "--log-level", "INFO"]
    command += ["run", "--emulate", "2", "--sweeps", "3", "--state-dir", str(state / "dock")]
    done = subprocess.run(
        sandboxed("dock.service", state, command), capture_output=True, text=True, timeout=180
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "control interface listening" in out  # chown of control.sock allowed
    assert "footage safe" in out  # the emulated recorder's footage copied and verified
    assert "error" not in out.lower().replace("est. error", "")
    assert (state / "dock" / "signing.key").exists()
    assert any((state / "dock" / "evidence").rglob("*"))


#: Run under the dock's unit: an offload worker forked by its fork server serves a job.
FORKED_WORKER = """
from dock.daemon.offload_process import worker_command
from dock.daemon.worker_forks import ForkServer
from dock.evidence.bulk_copy import MAX_JOB, decode_line, encode_line
server = ForkServer(worker_command("serve_forks"))
server.start()
worker = server.fork()
job = {"t": "job", "url": "emulated:/tmp/nobody.sock", "serial": "X", "jobs": []}
worker.stdin.write(encode_line(job, MAX_JOB))
worker.stdin.flush()
said = decode_line(worker.stdout.readline())
worker.kill()
print(said["t"], worker.wait(timeout=30), flush=True)
server.close()
"""


def test_an_offload_worker_is_forked_and_works_under_the_dock_unit(tmp_path: Path) -> None:
    """The fork server (a Unix socketpair, descriptors passed, fork, PR_SET_PDEATHSIG)
    and its worker run under the dock's seccomp filters and as nobody."""
    state = tmp_path / "state"
    done = subprocess.run(
        sandboxed("dock.service", state, [SYSTEM_PYTHON, "-c", FORKED_WORKER]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["fatal", "-9"], done.stdout + done.stderr[-3000:]


#: Run under the dock's unit: a file to an SFTP target through OpenSSH's client and back.
SFTP_ROUND_TRIP = """
import io
from dock.config.replication import TargetConfig
from dock.replicas.sftp import SftpTarget
target = SftpTarget(TargetConfig(
    name="central", kind="sftp", host="127.0.0.1", port={port}, user={user!r}, path={path!r},
    key_file={key!r}, known_hosts_file={known!r}))
assert target.uses_openssh()
target.connect()
target.upload("x/evidence.bin", io.BytesIO(b"footage" * 1000), 0, 7000, lambda n: None)
print("read back", b"".join(target.read("x/evidence.bin")) == b"footage" * 1000, flush=True)
target.close()
"""


def test_replication_goes_through_openssh_under_the_dock_unit(tmp_path: Path) -> None:
    """OpenSSH's client, run by the dock as its SFTP transport, works under the dock's
    seccomp filters, as nobody, with no home and no /etc/ssh configuration read."""
    from tests.sshd_server import Sshd, sshd_binary

    if sshd_binary() is None or shutil.which("ssh") is None:
        pytest.skip("no sshd (openssh-server) or ssh (openssh-client)")
    server = Sshd(tmp_path / "sshd").start()
    try:
        state = tmp_path / "state"
        state.mkdir()
        key, known = state / "replica_ed25519", state / "known_hosts"
        shutil.copy(server.client_key, key)
        shutil.copy(server.known_hosts, known)
        for path in (key, known):
            shutil.chown(path, "nobody", "nogroup")
            path.chmod(0o600)
        code = SFTP_ROUND_TRIP.format(
            port=server.port, user=server.user, path=str(server.root_dir), key=str(key),
            known=str(known),
        )  # fmt: skip
        done = subprocess.run(
            sandboxed("dock.service", state, [SYSTEM_PYTHON, "-c", code]),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["read", "back", "True"], done.stdout + done.stderr[-3000:]
    assert (server.root_dir / "x" / "evidence.bin").read_bytes() == b"footage" * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_dock_web_serves_the_kiosk_under_its_unit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    dock = state / "dock"
    # a dock's state first (database, config), made by the daemon under its own unit
    command = [SYSTEM_PYTHON, "-m", "dock.cli.main", "run", "--emulate", "1", "--once"]
    made = subprocess.run(
        sandboxed("dock.service", state, [*command, "--state-dir", str(dock)]),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    port = free_port()
    web = [SYSTEM_PYTHON, "-m", "web_status.server", "--config", str(dock / "dock.toml")]
    server = subprocess.Popen(
        sandboxed("dock-web.service", state, [*web, "--port", str(port)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = None
        deadline = time.monotonic() + 60
        for _ in range(600):  # until it answers, it exits, or a minute has passed
            if server.poll() is not None or time.monotonic() > deadline:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/kiosk", timeout=5) as r:
                    page = (r.status, r.read().decode("utf-8"))
                break
            except (urllib.error.URLError, ConnectionError):
                # not listening yet: wait for it to start (or to exit), bounded
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=0.1)
        assert page is not None, "dock-web did not answer"
        assert page[0] == 200 and "<html" in page[1].lower()
        assert (dock / "web-secret.key").exists()  # written in the state folder
    finally:
        server.terminate()
        try:
            out, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate(timeout=30)
    assert "Traceback" not in out, out[-3000:]
