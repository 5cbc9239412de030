"""The units under a real systemd: a container booted with systemd-nspawn.

Where these tests run systemd is not PID 1, but it can be in a container: a root
folder made here of this machine's /usr (read-only), a copy of its /etc holding the
repository's units and generator, and the checkout at /opt/bwc-checkout (read-only). Booted
into a target of its own, systemd runs the generator (with a state folder whose name
has a space), dock.service (Type=notify, the emulated dock on Debian's python3 as the
package runs it, WatchdogSec shortened to 15 s) and dock-web.service; a report unit
then writes what systemd says, freezes the daemon to see the watchdog restart it,
and powers the container off. About 25 s. Needs root, systemd-nspawn, unshare and
Debian's python3 with python3-systemd; skipped, saying which, without.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
SITE = ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
HOST_PYTHONPATH = f"{ROOT}:{SITE}/site-packages"
#: Where the container sees the checkout (bound read-only, wherever CI cloned it).
CHECKOUT = "/opt/bwc-checkout"
PYTHONPATH = f"{CHECKOUT}:{CHECKOUT}/{SITE.relative_to(ROOT)}/site-packages"
STATE = "/srv/dock state"

TARGET = """[Unit]
Description=proof: the dock's units under a real systemd
Requires=proof-setup.service
Wants=dock.service dock-web.service dock-hq.service mosquitto.service proof-report.service
After=proof-setup.service
"""
SETUP = f"""[Unit]
Description=proof: user and folders, as the package makes them
DefaultDependencies=no
After=local-fs.target systemd-sysusers.service
Before=dock.service dock-web.service dock-hq.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'useradd --system --user-group --no-create-home dock-hq; \\
useradd --system --user-group --no-create-home dock; \\
install -d -o dock -g dock -m 0710 "{STATE}"; install -d -o dock -g dock -m 0750 /srv/evidence'
"""
DOCK_DROPIN = f"""[Service]
Environment=PYTHONPATH={PYTHONPATH}
ExecStart=
ExecStart=/usr/bin/python3 -m dock.cli.main --log-level INFO run --emulate 2 \\
    --state-dir "{STATE}/emu"
WatchdogSec=15
TimeoutAbortSec=5
"""
WEB_DROPIN = f"""[Service]
Environment=PYTHONPATH={PYTHONPATH}
ExecStart=
ExecStart=/usr/bin/python3 -m web_status.server --config "{STATE}/emu/dock.toml" --port 8080
"""
HQ_DROPIN = f"""[Service]
Environment=PYTHONPATH={PYTHONPATH}
ExecStart=
ExecStart=/usr/bin/python3 -m hq.cli run --config /etc/dock-hq/hq.toml
"""
REPORT_UNIT = """[Unit]
Description=proof: what systemd says, then power off
After=dock.service dock-web.service dock-hq.service
[Service]
Type=oneshot
ExecStart=/bin/sh /proof/report.sh
StandardOutput=append:/proof/out.txt
StandardError=append:/proof/out.txt
ExecStopPost=/usr/bin/systemctl --no-block poweroff
"""
# Bounded waits inside the container (a report that never finishes is cut by the
# test's timeout: the container is then stopped with it).
REPORT = """set -u
echo "== drop-in"; cat /run/systemd/generator/dock.service.d/50-paths.conf
echo "== dock"; systemctl show dock -p ActiveState,SubState,StatusText,ReadWritePaths,NRestarts
url=http://127.0.0.1:8080/kiosk
get="import urllib.request as u; print('GET', u.urlopen('$url', timeout=5).status)"
for i in $(seq 1 100); do python3 -c "$get" 2>/dev/null && break; sleep 0.2; done
echo "== dock-web"; systemctl show dock-web -p ActiveState,SubState
echo "== dock-hq"
for i in $(seq 1 100); do
    journalctl -u dock-hq -o cat | grep -q "connected to broker" && break; sleep 0.2
done
systemctl show dock-hq -p ActiveState,SubState
journalctl -u dock-hq -o cat | grep "connected to broker"
ls /var/lib/dock-hq
echo "== security"
for u in dock dock-web dock-hq; do systemd-analyze security $u --no-pager | tail -1; done
echo "== watchdog"
kill -STOP "$(systemctl show dock -p MainPID --value)"
for i in $(seq 1 120); do
    [ "$(systemctl show dock -p NRestarts --value)" -ge 1 ] &&
    [ "$(systemctl show dock -p ActiveState --value)" = active ] && break
    sleep 0.5
done
systemctl show dock -p ActiveState,NRestarts
journalctl -u dock --no-pager -o cat | grep -E "Watchdog timeout|result 'watchdog'"
echo "== end"
"""
BOOT = """set -e
R="$1"
mkdir -p "$R"/usr "$R"{checkout} "$R"/var "$R"/tmp "$R"/srv "$R"/dev "$R"/proc "$R"/sys \\
    "$R"/run "$R"/root "$R"/home "$R"/proof
for d in bin lib sbin lib64; do [ -L "/$d" ] && ln -s "usr/$d" "$R/$d"; done
mount --bind /usr "$R/usr"; mount -o bind,remount,ro "$R/usr"
mount --bind "$5" "$R{checkout}"; mount -o bind,remount,ro "$R{checkout}"
chmod 1777 "$R/tmp"
exec systemd-nspawn --quiet --keep-unit --register=no --link-journal=no --uuid="$2" \\
    --private-network -D "$R" --bind="$3:/etc" --bind="$4:/proof" \\
    -b -- systemd.unit=dock-proof.target
""".replace("{checkout}", CHECKOUT)


@pytest.fixture
def container(tmp_path: Path) -> tuple[Path, Path, Path]:
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    for tool in ("systemd-nspawn", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import systemd.daemon, cryptography"],
        env={"PYTHONPATH": HOST_PYTHONPATH},
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip("Debian's python3 with python3-systemd and the venv's packages is needed")
    etc = tmp_path / "etc"
    shutil.copytree("/etc", etc, symlinks=True, ignore_dangling_symlinks=True)
    (etc / "machine-id").write_text("")
    units = etc / "systemd" / "system"
    for name in ("dock.service", "dock-web.service", "dock-hq.service"):
        shutil.copy(SYSTEMD / name, units / name)
    for name, text in (
        ("dock-proof.target", TARGET),
        ("proof-setup.service", SETUP),
        ("proof-report.service", REPORT_UNIT),
        ("dock.service.d/proof.conf", DOCK_DROPIN),
        ("dock-web.service.d/proof.conf", WEB_DROPIN),
        ("dock-hq.service.d/proof.conf", HQ_DROPIN),
    ):
        (units / name).parent.mkdir(exist_ok=True)
        (units / name).write_text(text)
    generators = etc / "systemd" / "system-generators"
    generators.mkdir(exist_ok=True)
    shutil.copy(SYSTEMD / "dock-paths-generator", generators)
    (etc / "dock").mkdir(exist_ok=True)
    (etc / "dock" / "dock.toml").write_text(
        f'[dock]\nstate_dir = "{STATE}"\nevidence_dir = "/srv/evidence"\n'
    )
    (etc / "dock-hq").mkdir(exist_ok=True)
    (etc / "dock-hq" / "hq.toml").write_text('[mqtt]\nhost = "127.0.0.1"\nport = 1883\n')
    proof = tmp_path / "proof"
    proof.mkdir()
    (proof / "report.sh").write_text(REPORT)
    return tmp_path / "root", etc, proof


def test_units_run_under_systemd(container: tuple[Path, Path, Path]) -> None:
    root, etc, proof = container
    boot = ["unshare", "--mount", "--propagation", "private", "sh", "-c", BOOT, "boot"]
    done = subprocess.run(
        [*boot, str(root), uuid.uuid4().hex, str(etc), str(proof), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = (proof / "out.txt").read_text() if (proof / "out.txt").exists() else ""
    assert "== end" in report, (done.stdout[-3000:], done.stderr[-2000:], report)
    # the generator's drop-in, with its quoted folder, read by systemd as one path
    assert f'ReadWritePaths="{STATE}"' in report
    assert f'ReadWritePaths="{STATE}" /srv/evidence' in report
    # Type=notify: active once the daemon said READY=1, with its status line
    dock = report.split("== dock\n")[1].split("GET")[0]
    assert "ActiveState=active" in dock and "SubState=running" in dock
    assert re.search(r"StatusText=2 slot\(s\): .*clock trusted", dock)
    assert "GET 200" in report  # dock-web serves /kiosk under its unit
    web = report.split("== dock-web\n")[1].split("==")[0]
    assert "ActiveState=active" in web
    levels = [float(x) for x in re.findall(r"Overall exposure level for \S+: (\d+\.\d)", report)]
    assert len(levels) == 3 and levels[0] <= 4.0 and levels[1] <= 2.5 and levels[2] <= 2.5
    hq = report.split("== dock-hq\n")[1].split("==")[0]  # through its sandbox to the broker
    assert "ActiveState=active" in hq and "connected to broker 127.0.0.1:1883" in hq
    assert "fleet.sqlite3" in hq
    # a frozen daemon is restarted by the watchdog
    watchdog = report.split("== watchdog\n")[1]
    assert "Watchdog timeout" in watchdog and "result 'watchdog'" in watchdog
    assert "ActiveState=active" in watchdog and "NRestarts=1" in watchdog
