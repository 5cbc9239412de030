"""The checks of ``dock check``, one function per subject, each returning its lines.

Every check only reads: ``stat``, ``statvfs``, ``access``, a database file's header (or
a read-only connection where the daemon has it open: ``schema_state``), the clock
sources' answers, a GPIO chip opened read-only for its line count, a TCP (and TLS)
handshake with the broker. Nothing here opens a recorder, builds the dock, or creates,
changes or removes a file. What a line says may come from the configuration: the
command escapes it when printing.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import socket
import ssl
import stat
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

OK, WARN, FAIL = "ok", "WARN", "FAIL"
#: Most state-directory entries looked at for their owner (bounded on a full folder).
OWNER_SCAN_MAX = 2000
#: Seconds to reach the broker (TCP, then TLS).
BROKER_TIMEOUT_S = 3.0
#: GPIO_GET_CHIPINFO_IOCTL (linux/gpio.h): struct gpiochip_info {char name[32];
#: char label[32]; __u32 lines;}, read-only.
_CHIPINFO = struct.Struct("32s32sI")
GPIO_GET_CHIPINFO_IOCTL = 0x80000000 | (_CHIPINFO.size << 16) | (0xB4 << 8) | 0x01


@dataclass(frozen=True)
class Line:
    """One line of ``dock check``: what was checked, ok/WARN/FAIL, and why."""

    name: str
    level: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "level": self.level, "reason": self.reason}


def me() -> str:
    """The user this process runs as (after the switch from root, the dock's)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def existing_parent(path: str) -> str:
    """``path`` or the nearest folder above it that exists."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


# --- permissions ----------------------------------------------------------------


def folder(name: str, path: str, mode_hint: str) -> Line:
    """A folder the dock writes: there (or makeable), ours, writable, not world-writable."""
    user = me()
    fix = f"install -d -o {user} -g {user} -m {mode_hint} {path}"
    if not os.path.exists(path):
        parent = existing_parent(path)
        if os.access(parent, os.W_OK | os.X_OK):
            return Line(name, WARN, f"{path} does not exist yet: the first start makes it ({fix})")
        return Line(name, FAIL, f"{path} does not exist and {user} cannot make it: {fix}")
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return Line(name, FAIL, f"{path} is not a folder")
    if st.st_uid != os.geteuid():
        owner = owner_name(st.st_uid)
        return Line(name, FAIL, f"{path} is owned by {owner}, not {user}: chown {user} {path}")
    if not os.access(path, os.W_OK | os.X_OK):
        return Line(name, FAIL, f"{path} is not writable by {user}: chmod u+rwx {path}")
    if st.st_mode & stat.S_IWOTH:
        return Line(name, FAIL, f"{path} is writable by everyone: chmod o-w {path}")
    return Line(name, OK, f"{path} (owner {user}, mode {stat.S_IMODE(st.st_mode):04o})")


def foreign_files(state_dir: str) -> Line:
    """Files in the state folder someone else owns (a command once run as root)."""
    if not os.path.isdir(state_dir):
        return Line("state files", OK, "no state folder yet")
    uid, found, seen = os.geteuid(), [], 0
    for top, dirs, files in os.walk(state_dir):
        for entry in sorted(dirs) + sorted(files):
            seen += 1
            path = os.path.join(top, entry)
            try:
                owner = os.lstat(path).st_uid
            except OSError:
                continue
            if owner != uid:
                found.append(f"{os.path.relpath(path, state_dir)} ({owner_name(owner)})")
            if seen >= OWNER_SCAN_MAX:
                break
        if seen >= OWNER_SCAN_MAX:
            break
    if not found:
        return Line("state files", OK, f"every file owned by {me()}")
    listed = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return Line(
        "state files",
        FAIL,
        f"not owned by {me()}: {listed}; the service cannot use them: chown -R {me()}: {state_dir}",
    )


def signing_key(state_dir: str) -> Line:
    path = os.path.join(state_dir, "signing.key")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Line("signing key", OK, f"{path} not made yet (the first start makes it, 0600)")
    except OSError as exc:
        return Line("signing key", FAIL, f"{path}: {exc.strerror}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Line("signing key", FAIL, f"{path} has mode {mode:04o}: chmod 0600 {path}")
    return Line("signing key", OK, f"{path} (mode {mode:04o})")


def config_file(path: str | None) -> Line | None:
    """The configuration file itself: nobody but its owners may change the dock."""
    if path is None:
        return None
    st = os.stat(path)
    if st.st_mode & stat.S_IWOTH:
        return Line("config file", FAIL, f"{path} is writable by everyone: chmod o-w {path}")
    return None


def secret_files(named: Iterable[tuple[str, str, bool]]) -> list[Line]:
    """Files the configuration names: (key, path, secret). Readable by this user; a
    secret one (a private key, a password) readable by nobody else."""
    lines = []
    for key, path, secret in named:
        if not path:
            continue
        if not os.access(path, os.R_OK):
            why = "does not exist" if not os.path.exists(path) else f"is not readable by {me()}"
            lines.append(Line(key, FAIL, f"{path} {why}"))
        elif secret and os.stat(path).st_mode & stat.S_IROTH:
            lines.append(Line(key, FAIL, f"{path} is readable by everyone: chmod 0600 {path}"))
        else:
            lines.append(Line(key, OK, path))
    return lines


# --- databases ------------------------------------------------------------------


def schema(name: str, path: str, state: Callable[[str], tuple[int | None, int]]) -> Line:
    """A database's schema version against this software's, read without migrating."""
    from common.sqlite_schema import SchemaError

    try:
        found, code = state(path)
    except SchemaError as exc:
        return Line(name, FAIL, str(exc))
    if found is None:
        return Line(name, OK, f"not made yet (the first start makes it, schema {code})")
    if found > code:
        return Line(
            name, FAIL, f"schema {found} is newer than this software's {code}: install the newer "
            "release again"
        )  # fmt: skip
    if found < code:
        why = f"schema {found}: brought to {code} at the next start (a backup first)"
        return Line(name, WARN, why)
    return Line(name, OK, f"schema {found}")


# --- clock, disk ----------------------------------------------------------------


def clock(source: str, max_offset_s: float) -> Line:
    """Whether the dock's clock is synchronised, as the daemon will ask it."""
    from dock.devices.clock import NO_SOURCE, SystemClock

    if source == "trusted":
        return Line("clock", WARN, 'source = "trusted": not checked (tests and emulation only)')
    try:
        synced, why = SystemClock(max_offset_s).synchronised()
    except Exception as exc:  # a source this machine answers strangely: unknown, said
        return Line("clock", WARN, f"unknown ({type(exc).__name__}: {exc})")
    if synced:
        return Line("clock", OK, why)
    if why == NO_SOURCE:
        why = "unknown: no time source answered (timedatectl, chronyc, adjtimex)"
        return Line("clock", WARN, why)
    return Line("clock", WARN, f"{why}: every check-out is refused until it is synchronised")


def free_bytes(path: str) -> int | None:
    try:
        st = os.statvfs(existing_parent(path))
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def disk(name: str, path: str, floor: int, want: int, want_why: str) -> Line:
    """Free room where ``path`` lives: FAIL below ``floor``, WARN below ``want``."""
    free = free_bytes(path)
    if free is None:
        return Line(name, WARN, f"{path}: free space unknown")
    said = f"{_size(free)} free on {existing_parent(path)}"
    if free < floor:
        return Line(name, FAIL, f"{said}; the dock needs {_size(floor)} at least")
    if free < want:
        return Line(name, WARN, f"{said}; less than {want_why} ({_size(want)})")
    return Line(name, OK, said)


def _size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --- GPIO -----------------------------------------------------------------------


def chip_info(path: str) -> tuple[str, int]:
    """(label, line count) of a GPIO character device, opened read-only."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        raw = fcntl.ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, bytes(_CHIPINFO.size))
    finally:
        os.close(fd)
    _name, label, lines = _CHIPINFO.unpack(raw)
    return label.split(b"\0", 1)[0].decode("ascii", "replace"), lines


def gpio(pins: list[int], dev: str = "/dev") -> Line:
    """The configured pins exist on a GPIO chip this user can open."""
    if not pins:
        return Line("gpio", OK, "no GPIO configured")
    wanted = ", ".join(str(p) for p in sorted(set(pins)))
    off = "the dock runs without LEDs, buzzer and LCD"
    chips = sorted(glob.glob(os.path.join(dev, "gpiochip*")))
    if not chips:
        return Line("gpio", WARN, f"GPIO {wanted} configured but no {dev}/gpiochip* here: {off}")
    problems = []
    for chip in chips:
        try:
            label, lines = chip_info(chip)
        except OSError as exc:
            problems.append(f"{chip}: {exc.strerror or exc}")
            continue
        if max(pins) < lines:
            return Line("gpio", OK, f"GPIO {wanted} on {chip} ({label}, {lines} lines)")
        problems.append(f"{chip} ({label}) has {lines} lines")
    hint = f" (is {me()} in the group gpio?)" if any("denied" in p for p in problems) else ""
    return Line("gpio", WARN, f"GPIO {wanted}: {'; '.join(problems)}{hint}: {off}")


def gpio_pins(cfg: Any) -> list[int]:
    """Every GPIO number the configuration wires: slot LEDs, buzzer, LCD."""
    pins = [p for s in cfg.slots for p in (s.led_green, s.led_red) if p is not None]
    if cfg.gpio.buzzer is not None:
        pins.append(cfg.gpio.buzzer)
    lcd = cfg.gpio.hd44780
    if cfg.gpio.screen == "hd44780" and lcd is not None:
        pins += [lcd.rs, lcd.e, lcd.d4, lcd.d5, lcd.d6, lcd.d7]
    return pins


# --- broker ---------------------------------------------------------------------


def broker(mqtt: Any, timeout: float = BROKER_TIMEOUT_S) -> Line:
    """The broker answers a TCP connection (and, with TLS, a verified handshake)."""
    if not mqtt.enabled:
        return Line("broker", OK, "reporting to headquarters is off ([mqtt] host not set)")
    where = f"{mqtt.host}:{mqtt.broker_port}"
    try:
        sock = socket.create_connection((mqtt.host, mqtt.broker_port), timeout=timeout)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        return Line("broker", WARN, f"{where} unreachable ({why}): events wait in the outbox")
    with sock:
        if not mqtt.tls:
            return Line("broker", OK, f"{where} answers (no TLS)")
        try:
            context = ssl.create_default_context(cafile=mqtt.ca_file)
            if mqtt.cert_file:
                context.load_cert_chain(mqtt.cert_file, mqtt.key_file or None)
            with context.wrap_socket(sock, server_hostname=mqtt.host):
                pass
        except (OSError, ssl.SSLError, ValueError) as exc:
            return Line("broker", FAIL, f"{where}: TLS handshake failed ({exc})")
    return Line("broker", OK, f"{where} answers, TLS verified against {mqtt.ca_file}")


__all__ = [
    "FAIL",
    "OK",
    "WARN",
    "Line",
    "broker",
    "chip_info",
    "clock",
    "config_file",
    "disk",
    "folder",
    "foreign_files",
    "gpio",
    "gpio_pins",
    "schema",
    "secret_files",
    "signing_key",
]
