"""Is this serial device a recorder's port? Asked before the dock opens a device path.

Opening a serial port with pyserial switches it to raw mode at the link's baud rate,
and a session then writes to it. A configuration whose port names somebody's terminal
(a stale ``/dev/pts/N`` from a finished demo, ``/dev/tty1``) must never get that far.
A recorder's port is a character device whose sysfs entry is a USB CDC-ACM interface
(``/dev/ttyACM0``, or a udev name such as ``/dev/bwc/slot-3`` linking to one). A
pseudo-terminal is accepted only when this very process holds its other end (an
emulator started in this process, a test); ``dock probe PORT`` skips the check, since
a person named the port by hand. Looking uses ``stat`` and sysfs only: nothing is
opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct

#: Where sysfs is mounted (a test points it at a tree of its own).
SYS_ROOT = "/sys"
#: Linux's pseudo-terminal slaves: majors 136..143 (UNIX98_PTY_SLAVE_MAJOR and on).
PTS_MAJORS = range(136, 144)
#: ioctl asking a pseudo-terminal master for its slave's number (Linux's TIOCGPTN).
TIOCGPTN = 0x80045430
#: The kernel driver of a USB CDC-ACM interface: what a recorder's serial port is.
RECORDER_DRIVER = "cdc_acm"
#: Open descriptors looked at for pseudo-terminal masters, at most.
MAX_FDS = 65536


class PortRefused(PermissionError):
    """The dock will not use this port (its message says which and why, in one line);
    nothing was opened and nothing written."""


def check_recorder_port(path: str) -> None:
    """Return when ``path`` may be opened as a recorder's port; PortRefused when it is
    not one; OSError (FileNotFoundError: nothing there) when it cannot be looked at."""
    why = refusal(path)
    if why is not None:
        raise PortRefused(f"port {path} refused: {why}; nothing was sent to it")


def refusal(path: str) -> str | None:
    """Why ``path`` is not a recorder's port, or None when it is one."""
    st = os.stat(path)  # follows a udev link to the device itself
    if not stat.S_ISCHR(st.st_mode):
        return "it is not a character device (a serial port)"
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if major in PTS_MAJORS:
        if (major - PTS_MAJORS.start) * 256 + minor in _own_pty_numbers():
            return None
        return (
            "it is a pseudo-terminal (someone's terminal window or login), not a recorder; "
            "only `dock probe PORT` opens a terminal named by hand"
        )
    driver = _driver(major, minor)
    if driver == RECORDER_DRIVER:
        return None
    what = f"its driver is {driver}" if driver else "no USB device is behind it"
    return f"not a USB CDC-ACM serial device, as a recorder's port is ({what})"


def _driver(major: int, minor: int) -> str | None:
    """The kernel driver bound to the hardware behind a character device, from sysfs."""
    link = os.path.join(SYS_ROOT, "dev", "char", f"{major}:{minor}", "device", "driver")
    try:
        return os.path.basename(os.path.realpath(link, strict=True))
    except OSError:
        return None


def _own_pty_numbers() -> set[int]:
    """Numbers of the pseudo-terminals whose master this process holds open."""
    numbers: set[int] = set()
    try:
        fds = os.listdir("/proc/self/fd")[:MAX_FDS]
    except OSError:
        return numbers
    for name in fds:
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(f"/proc/self/fd/{name}") not in ("/dev/ptmx", "/dev/pts/ptmx"):
                continue
            answer = fcntl.ioctl(int(name), TIOCGPTN, b"\0\0\0\0")
            numbers.add(struct.unpack("I", answer)[0])
    return numbers
