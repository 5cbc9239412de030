"""systemd/60-bwc-recorders.rules and its helper bwc-slot-name: what a docked recorder
becomes in /dev (its bay's name, group dock, ModemManager kept away).

The helper is run as a program. The rules are run by udev's own engine, `udevadm test`,
on fake devices: a sysfs tree made here is bound over /sys/devices/virtual in a mount
namespace of the test's own (with /dev, /run/udev and /etc/group private too), so no
recorder is needed and nothing outside the namespace changes. That part needs root,
unshare(1) and udevadm; it is skipped, saying so, without them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
HELPER = SYSTEMD / "bwc-slot-name"
RULES = SYSTEMD / "60-bwc-recorders.rules"
INSTALLED_HELPER = "/usr/lib/bwc-dock/bwc-slot-name"
#: The dock group's id in the namespace's /etc/group (the package makes the real one).
DOCK_GID = 64999

PI_TTY = (
    "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0"
    "/usb1/1-1/1-1.3/1-1.3:1.0/tty/ttyACM0"
)


def helper(devpath: str, bays: Path | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if bays is not None:
        env["BWC_BAYS_CONF"] = str(bays)
    done = subprocess.run(
        ["sh", str(HELPER), devpath], env=env, capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


@pytest.fixture
def bays(tmp_path: Path) -> Path:
    path = tmp_path / "bays.conf"
    path.write_text(
        "# the installer's bays\n"
        "slot-1 = 1-1.1\n"
        "  slot-3=1-1.3   # the third, by the door\n"
        "slot-x y = 1-1.4\n"  # a space in the name: skipped
        "bad = 1-1.2\n"  # not slot-...: skipped
        "slot-7 = 1-1.3.2\n"
        "slot-9 = 1-1.5"  # no newline at the end
    )
    return path


def test_a_serial_recorder_is_named_by_its_bay(bays: Path) -> None:
    assert helper(PI_TTY, bays) == {"BWC_PORT": "1-1.3", "BWC_SLOT": "slot-3"}


def test_a_usb_device_is_named_by_its_bay(bays: Path) -> None:
    devpath = "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.1"
    assert helper(devpath, bays) == {"BWC_PORT": "1-1.1", "BWC_SLOT": "slot-1"}


def test_a_port_behind_a_hub_in_a_bay_is_its_own_port(bays: Path) -> None:
    devpath = "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.3/1-1.3.2/1-1.3.2:1.0/tty/ttyACM1"
    assert helper(devpath, bays) == {"BWC_PORT": "1-1.3.2", "BWC_SLOT": "slot-7"}
    assert helper(devpath.replace("1-1.3.2", "1-1.5"), bays)["BWC_SLOT"] == "slot-9"


def test_bad_lines_name_no_bay(bays: Path) -> None:
    for port in ("1-1.4", "1-1.2", "1-1.6"):
        devpath = f"/devices/pci0000:00/0000:00:14.0/usb1/1-1/{port}"
        assert helper(devpath, bays) == {"BWC_PORT": port}


def test_no_bays_file_or_no_usb_port_names_nothing(tmp_path: Path, bays: Path) -> None:
    assert helper(PI_TTY, tmp_path / "missing.conf") == {"BWC_PORT": "1-1.3"}
    assert helper("/devices/platform/serial8250/tty/ttyS0", bays) == {}
    assert helper("/devices/virtual/tty/ttyACM0", bays) == {}


# ----------------------------------------------------------------- udev's own engine


@dataclass
class FakeDevice:
    """A USB device on a port, optionally with a CDC-ACM interface and its tty."""

    port: str
    vid: str
    pid: str
    minor: int
    tty: str | None = None


def write_device(root: Path, dev: FakeDevice) -> tuple[str, str | None]:
    """Make the device's sysfs entries under ``root`` (bound at /sys/devices/virtual);
    the syspaths of its usb_device and its tty."""
    bus = dev.port.split("-")[0]
    usb = root / f"usb{bus}" / dev.port
    usb.mkdir(parents=True)
    (usb / "uevent").write_text(
        f"MAJOR=189\nMINOR={dev.minor}\nDEVNAME=bus/usb/00{bus}/{dev.minor + 1:03d}\n"
        f"DEVTYPE=usb_device\nPRODUCT={dev.vid}/{dev.pid}/100\n"
    )
    (usb / "idVendor").write_text(dev.vid + "\n")
    (usb / "idProduct").write_text(dev.pid + "\n")
    (usb / "dev").write_text(f"189:{dev.minor}\n")
    (usb / "subsystem").symlink_to("/sys/bus/usb")
    usb_path = f"/sys/devices/virtual/usb{bus}/{dev.port}"
    if dev.tty is None:
        return usb_path, None
    iface = usb / f"{dev.port}:1.0"
    tty = iface / "tty" / dev.tty
    tty.mkdir(parents=True)
    (iface / "uevent").write_text("DEVTYPE=usb_interface\nDRIVER=cdc_acm\n")
    (iface / "subsystem").symlink_to("/sys/bus/usb")
    minor = int(dev.tty.removeprefix("ttyACM"))
    (tty / "uevent").write_text(f"MAJOR=166\nMINOR={minor}\nDEVNAME={dev.tty}\n")
    (tty / "dev").write_text(f"166:{minor}\n")
    (tty / "subsystem").symlink_to("/sys/class/tty")
    return usb_path, f"{usb_path}/{dev.port}:1.0/tty/{dev.tty}"


@dataclass
class UdevResult:
    """What `udevadm test` decided for one device: its properties and its log."""

    properties: dict[str, str]
    log: str

    def our(self, action: str) -> list[str]:
        """The values our rules file set for ``action`` (GROUP, MODE, LINK)."""
        found = re.findall(rf"60-bwc-recorders\.rules:\d+ {action} '?([^'\n]+)'?", self.log)
        return [value.strip() for value in found]


def udev_test(tmp_path: Path, rules_text: str, syspaths: list[str]) -> list[UdevResult]:
    """Run `udevadm test --action=add` on each syspath with ``rules_text`` as the only
    file in /etc/udev/rules.d, in a private mount namespace."""
    if os.geteuid() != 0:
        pytest.skip("udevadm test on fake devices needs root (a mount namespace)")
    for tool in ("unshare", "udevadm", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    wrapper = tmp_path / "bwc-slot-name"
    wrapper.write_text(f'#!/bin/sh\nBWC_BAYS_CONF={tmp_path}/bays.conf exec sh {HELPER} "$@"\n')
    wrapper.chmod(0o755)
    (rules_dir / "60-bwc-recorders.rules").write_text(
        rules_text.replace(INSTALLED_HELPER, str(wrapper))
    )
    group = tmp_path / "group"
    group.write_text(Path("/etc/group").read_text() + f"dock:x:{DOCK_GID}:\n")
    (tmp_path / "dev").mkdir()
    (tmp_path / "run-udev").mkdir()
    tests = "".join(
        f"echo '@@@ {p}'; SYSTEMD_DEVICE_VERIFY_SYSFS=0 udevadm test --action=add {p} 2>&1\n"
        for p in syspaths
    )
    script = f"""set -e
mount --make-rprivate /
mount --bind {tmp_path}/sys /sys/devices/virtual
mount --bind {rules_dir} /etc/udev/rules.d
mount --bind {group} /etc/group
mount -t tmpfs tmpfs /dev
mknod -m 666 /dev/null c 1 3
mount --bind {tmp_path}/run-udev /run
set +e
{tests}"""
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    if "@@@" not in done.stdout:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()[:200]}")
    results = []
    for chunk in done.stdout.split("@@@ ")[1:]:
        props = dict(
            line.split("=", 1)
            for line in chunk.splitlines()
            if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", line)
        )
        results.append(UdevResult(props, chunk))
    assert len(results) == len(syspaths), done.stdout[-2000:]
    return results


@pytest.fixture
def fake_sys(tmp_path: Path) -> Path:
    (tmp_path / "sys").mkdir()
    (tmp_path / "bays.conf").write_text("slot-3 = 1-1.3\nslot-4 = 1-1.4\n")
    return tmp_path / "sys"


def test_recorders_in_bays_get_their_names_and_group_dock(tmp_path: Path, fake_sys: Path) -> None:
    serial = FakeDevice("1-1.3", "2341", "8036", 2, "ttyACM0")  # any vendor's CDC-ACM
    serial_usb, serial_tty = write_device(fake_sys, serial)
    bulk_usb, _ = write_device(fake_sys, FakeDevice("1-1.4", "1209", "b0c7", 3))
    assert serial_tty is not None
    tty, usb, bulk = udev_test(tmp_path, RULES.read_text(), [serial_tty, serial_usb, bulk_usb])

    # a CDC-ACM recorder of any vendor in bay 3: /dev/bwc/slot-3, the dock's, no ModemManager
    assert tty.properties["BWC_SLOT"] == "slot-3"
    assert tty.properties["ID_MM_DEVICE_IGNORE"] == "1"
    assert "/dev/bwc/slot-3" in tty.properties["DEVLINKS"].split()
    assert tty.our("GROUP") == [str(DOCK_GID)] and tty.our("MODE") == ["0660"]
    # its USB device: ModemManager told too; not a bulk recorder, so not given to dock
    assert usb.properties["ID_MM_DEVICE_IGNORE"] == "1"
    assert usb.our("GROUP") == [] and "bwc/" not in usb.properties.get("DEVLINKS", "")
    # a USB-bulk recorder (1209:b0c7) in bay 4
    assert bulk.properties["BWC_RECORDER"] == "usb-bulk"
    assert bulk.our("GROUP") == [str(DOCK_GID)] and bulk.our("MODE") == ["0660"]
    assert "/dev/bwc/slot-4.usb" in bulk.properties["DEVLINKS"].split()
    assert bulk.properties["ID_MM_DEVICE_IGNORE"] == "1"
    for result in (tty, usb, bulk):
        assert "60-bwc-recorders.rules" in result.log
        complaint = r"60-bwc-recorders\.rules:\d+ (Invalid|Unknown|.*ignoring)"
        assert not re.search(complaint, result.log)


def test_devices_outside_bays_are_left_alone_but_known_recorders_are_the_docks(
    tmp_path: Path, fake_sys: Path
) -> None:
    _, modem_tty = write_device(fake_sys, FakeDevice("1-1.6", "2c7c", "0125", 5, "ttyACM1"))
    vendor_cam, _ = write_device(fake_sys, FakeDevice("1-1.7", "4255", "0001", 6))
    _, our_tty = write_device(fake_sys, FakeDevice("1-1.8", "1209", "b0c7", 7, "ttyACM2"))
    assert modem_tty is not None and our_tty is not None
    modem, cam, ours = udev_test(tmp_path, RULES.read_text(), [modem_tty, vendor_cam, our_tty])

    assert "BWC_SLOT" not in modem.properties and "BWC_RECORDER" not in modem.properties
    assert "ID_MM_DEVICE_IGNORE" not in modem.properties  # a real modem stays ModemManager's
    assert modem.our("GROUP") == []
    assert cam.properties["BWC_RECORDER"] == "usb-bulk" and cam.our("GROUP") == [str(DOCK_GID)]
    assert "bwc/" not in cam.properties.get("DEVLINKS", "")  # no bay, no bay name
    assert ours.properties["BWC_RECORDER"] == "cdc-acm" and ours.our("MODE") == ["0660"]


def test_udev_reports_a_broken_rule_line(tmp_path: Path, fake_sys: Path) -> None:
    """The check above can fail: udev names a bad line of ours."""
    _, tty = write_device(fake_sys, FakeDevice("1-1.3", "1209", "b0c7", 2, "ttyACM0"))
    assert tty is not None
    broken = RULES.read_text() + 'SUBSYSTEM=="tty", GRUOP="dock"\n'
    (result,) = udev_test(tmp_path, broken, [tty])
    assert re.search(r"60-bwc-recorders\.rules:\d+ Invalid key 'GRUOP'", result.log)
