"""A configuration must never make the dock open someone else's terminal.

A finished demo left ``/dev/pts/N`` ports in its configuration; a later ``dock`` command
opened whatever terminal had that number by then, switched it to raw 115200 baud and
wrote to it. Now the dock refuses, before opening it, any device that is not a
recorder's port (hardware/port_guard.py), and the demo's recorders are named links that
vanish with it (hardware/emulator/links.py).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import termios

import pytest

from hardware import port_guard
from hardware.port_guard import PortRefused
from hardware.transports import LinkClosed, SerialTransport

from .conftest import write_dock_config

DOCK = [sys.executable, "-m", "dock.cli.main"]


def dock(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*DOCK, *args], capture_output=True, text=True, timeout=timeout)


def drained(master: int, looks: int = 20, wait_s: float = 0.05) -> bytes:
    """Whatever reached the terminal's other end: a bounded number of short looks."""
    got = b""
    for _ in range(looks):
        ready, _, _ = select.select([master], [], [], wait_s)
        if not ready:
            continue
        try:
            got += os.read(master, 4096)
        except OSError:  # EIO: nothing on the other end any more
            break
    return got


@pytest.fixture
def strangers_terminal():
    """A pseudo-terminal standing for another user's terminal: (master, slave, path)."""
    master, slave = os.openpty()
    os.set_blocking(master, False)
    yield master, slave, os.ttyname(slave)
    os.close(master)
    os.close(slave)


@pytest.mark.parametrize(
    "command",
    [("status",), ("run", "--sweeps", "1", "--interval", "0.1")],
    ids=["status", "run"],
)
def test_a_terminal_named_in_the_configuration_is_never_touched(
    tmp_path, strangers_terminal, command
) -> None:
    master, slave, path = strangers_terminal
    before = termios.tcgetattr(slave)
    cfg, _state, _evidence = write_dock_config(tmp_path, path)
    out = dock("--config", cfg, *command)
    said = [line for line in (out.stdout + out.stderr).splitlines() if "refused" in line]
    assert said, out.stdout + out.stderr
    assert f"port {path} refused: it is a pseudo-terminal" in said[0]
    assert "nothing was sent to it" in said[0]
    assert drained(master) == b""  # not one byte reached the terminal
    assert termios.tcgetattr(slave) == before  # still in its own mode and speed


def test_a_device_that_is_no_recorders_port_is_refused_before_opening() -> None:
    with pytest.raises(PortRefused, match=r"port /dev/null refused: not a USB CDC-ACM"):
        SerialTransport("/dev/null")
    with pytest.raises(PortRefused, match="not a character device"):
        SerialTransport("/tmp")
    with pytest.raises(PortRefused, match="hwgrep:// is not a recorder's link"):
        SerialTransport("hwgrep://.*")  # pyserial would open whatever port matches


def test_a_missing_device_is_an_empty_bay_not_a_refusal() -> None:
    with pytest.raises(LinkClosed, match="cannot open /dev/ttyACM-none") as caught:
        SerialTransport("/dev/ttyACM-none")
    assert not isinstance(caught.value, PortRefused)


def _fake_sysfs(root, driver: str) -> None:
    """sysfs as Linux shows a tty on a USB interface bound to ``driver``, for the device
    number of /dev/null (the test's stand-in for the recorder's character device)."""
    rdev = os.stat("/dev/null").st_rdev
    interface = root / "devices" / "usb1" / "1-1" / "1-1.2:1.0"
    (root / "bus" / "usb" / "drivers" / driver).mkdir(parents=True)
    interface.mkdir(parents=True)
    (interface / "driver").symlink_to(root / "bus" / "usb" / "drivers" / driver)
    (root / "dev" / "char").mkdir(parents=True)
    entry = root / "dev" / "char" / f"{os.major(rdev)}:{os.minor(rdev)}"
    entry.mkdir()
    (entry / "device").symlink_to(interface)


def test_a_cdc_acm_port_and_its_udev_name_are_accepted(tmp_path, monkeypatch) -> None:
    _fake_sysfs(tmp_path / "sys", "cdc_acm")
    monkeypatch.setattr(port_guard, "SYS_ROOT", str(tmp_path / "sys"))
    bay = tmp_path / "bwc"
    bay.mkdir()
    (bay / "slot-1").symlink_to("/dev/null")  # as udev names /dev/bwc/slot-1
    assert port_guard.refusal("/dev/null") is None
    assert port_guard.refusal(str(bay / "slot-1")) is None


def test_a_usb_serial_adapter_is_not_a_recorder(tmp_path, monkeypatch) -> None:
    _fake_sysfs(tmp_path / "sys", "ftdi_sio")
    monkeypatch.setattr(port_guard, "SYS_ROOT", str(tmp_path / "sys"))
    assert "its driver is ftdi_sio" in (port_guard.refusal("/dev/null") or "")


def test_a_terminal_this_process_made_may_be_used(strangers_terminal) -> None:
    """An emulator (or a test) in this process holds its pty's other end: accepted."""
    _master, _slave, path = strangers_terminal
    assert port_guard.refusal(path) is None
    SerialTransport(path).close()


def test_the_demos_configuration_names_no_terminal_and_is_inert_once_it_ends(tmp_path) -> None:
    out = dock("run", "--emulate", "2", "--once", "--state-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    written = (tmp_path / "dock.toml").read_text()
    assert "/dev/pts" not in written and "/dev/" not in written
    links = [f"emulated:{tmp_path}/recorders/slot-{n}.sock" for n in (1, 2)]
    assert all(f'port = "{link}"' in written for link in links)
    assert sorted(p.name for p in (tmp_path / "recorders").glob("*.sock")) == []  # gone
    later = dock("--config", str(tmp_path / "dock.toml"), "status")
    assert later.returncode == 0, later.stderr
    rows = [line for line in later.stdout.splitlines() if "refused" in line]
    assert len(rows) == 2
    assert all("emulated recorders behind it are not running" in row for row in rows)
    assert sorted(p.name for p in (tmp_path / "recorders").glob("*.sock")) == []
