"""The dock's configuration: one TOML file, checked in full at start.

``load_config()`` reads the file (argument, else ``$DOCK_CONFIG``, else
``/etc/dock/dock.toml``), checks every key and raises one ``ConfigError`` listing
every problem found, each as ``key: what is wrong — how to fix it``. Unknown keys are
errors (a typo must never be silently ignored). Settings that are allowed but weaken
the dock (a policy laxer than its preset, a trusted clock) are logged as warnings and
kept in ``DockConfig.warnings``. docs/CONFIG.md is the reference for every key.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dock.config.mqtt import MQTT_ID_RE, MQTT_KEYS, MqttConfig, parse_mqtt
from dock.domain.policy import DEFAULT_PRESET, PRESETS, Policy, policy_from

log = logging.getLogger("dock.config.load")

DEFAULT_PATH = "/etc/dock/dock.toml"
ENV_VAR = "DOCK_CONFIG"

LOCALES = ("zh", "en")
CLOCK_SOURCES = ("system", "trusted")
SCREENS = ("console", "hd44780")
BADGE_READERS = ("none", "keyboard")
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
#: BCM GPIO numbers on the Raspberry Pi's 40-pin header.
GPIO_PINS = range(0, 28)
HD44780_PINS = ("rs", "e", "d4", "d5", "d6", "d7")

PORT_EXAMPLES = "a device path such as /dev/ttyACM0, tcp://HOST:PORT or usb:1-1.2"
EMULATED_SCHEME = "emulated:"

_DOCK_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SLOT_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
#: Same shape as hardware.usb_transport.parse_port_path (dock may not import hardware).
_USB_PORT_PATH = re.compile(r"(\d{1,3})-(\d{1,3}(?:\.\d{1,3}){0,6})")
#: pyserial URL schemes that need HOST:PORT, and those that take anything after ://.
_HOST_PORT_SCHEMES = ("tcp", "socket", "rfc2217")
_FREE_SCHEMES = ("loop",)


class ConfigError(ValueError):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[str], path: str | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        where = path or "configuration"
        n = len(self.problems)
        head = f"{where}: {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


# --- the configuration ----------------------------------------------------------


@dataclass(frozen=True)
class DockSettings:
    """``[dock]``: who this dock is and where it keeps things."""

    id: str
    site: str
    unit: str
    state_dir: str = "/var/lib/dock"
    evidence_dir: str = "/srv/evidence"
    locale: str = "zh"
    timezone: str = "Asia/Shanghai"
    #: The audit log's newest checkpoint, kept outside its database ("": the default).
    audit_checkpoint_copy: str = ""

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def audit_copy_path(self) -> str:
        """Where the audit log keeps its newest checkpoint outside its database."""
        return self.audit_checkpoint_copy or os.path.join(
            self.state_dir, "audit-copy", "checkpoint.json"
        )


@dataclass(frozen=True)
class SlotConfig:
    """One ``[[slot]]``: a bay, the link to the recorder in it, and its LEDs."""

    id: str
    port: str
    led_green: int | None = None
    led_red: int | None = None


@dataclass(frozen=True)
class ClockConfig:
    """``[clock]``: whether this dock's clock may be trusted to set recorders' clocks."""

    source: str = "system"
    max_offset_s: float = 0.5


@dataclass(frozen=True)
class Hd44780Pins:
    """``[gpio.hd44780]``: a character LCD wired in 4-bit mode."""

    rs: int
    e: int
    d4: int
    d5: int
    d6: int
    d7: int
    columns: int = 20
    rows: int = 4


@dataclass(frozen=True)
class GpioConfig:
    buzzer: int | None = None
    screen: str = "console"
    hd44780: Hd44780Pins | None = None


@dataclass(frozen=True)
class BadgeConfig:
    reader: str = "none"
    baudrate: int = 9600


@dataclass(frozen=True)
class ScannerConfig:
    """``[scanner]``: a malware scanner run on each file before it is archived, e.g.
    ``command = ["clamdscan", "--no-summary", "--fdpass"]``; the file path is appended.
    Exit status 0 = clean, 1 = found; anything else is a scanner failure (fail closed)."""

    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfficersConfig:
    min_pin_length: int = 6


@dataclass(frozen=True)
class DockConfig:
    dock: DockSettings
    policy: Policy
    slots: tuple[SlotConfig, ...]
    clock: ClockConfig = ClockConfig()
    gpio: GpioConfig = GpioConfig()
    badge: BadgeConfig = BadgeConfig()
    officers: OfficersConfig = OfficersConfig()
    scanner: ScannerConfig = ScannerConfig()
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    #: Names of the policy fields the file overrides (informational).
    policy_overrides: tuple[str, ...] = ()
    #: Allowed but weakening settings, already logged; for the status page / audit.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: The file this came from; None for emulated_config().
    path: str | None = field(default=None, compare=False)

    @property
    def slot_ports(self) -> dict[str, str]:
        """Slot id -> port, in file order."""
        return {s.id: s.port for s in self.slots}


# --- the keys each table accepts (docs/CONFIG.md documents each) ------------------

SECTIONS = ("dock", "policy", "slot", "clock", "gpio", "badge", "officers", "scanner", "mqtt")
DOCK_KEYS = tuple(f.name for f in dataclasses.fields(DockSettings))
SLOT_KEYS = tuple(f.name for f in dataclasses.fields(SlotConfig))
CLOCK_KEYS = tuple(f.name for f in dataclasses.fields(ClockConfig))
GPIO_KEYS = tuple(f.name for f in dataclasses.fields(GpioConfig))
HD44780_KEYS = tuple(f.name for f in dataclasses.fields(Hd44780Pins))
BADGE_KEYS = tuple(f.name for f in dataclasses.fields(BadgeConfig))
OFFICERS_KEYS = tuple(f.name for f in dataclasses.fields(OfficersConfig))
POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(Policy) if f.name != "name")
POLICY_KEYS = ("preset", *POLICY_FIELDS)
_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "dock": DOCK_KEYS,
    "policy": POLICY_KEYS,
    "slot": SLOT_KEYS,
    "clock": CLOCK_KEYS,
    "gpio": GPIO_KEYS,
    "badge": BADGE_KEYS,
    "officers": OFFICERS_KEYS,
    "scanner": ("command",),
    "mqtt": MQTT_KEYS,
}


# --- public entry points --------------------------------------------------------


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ
) -> DockConfig:
    """Read and check the configuration; ConfigError lists every problem."""
    if path is None:
        path = env.get(ENV_VAR) or DEFAULT_PATH
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: no such file — copy docs/dock.example.toml there and edit it, "
                f"or point {ENV_VAR} at your file"
            ],
            path,
        ) from None
    except OSError as exc:
        raise ConfigError(
            [f"{path}: cannot read ({exc.strerror or exc}) — check the path and permissions"],
            path,
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [f"{path}: not valid TOML ({exc}) — fix the syntax at that line"], path
        ) from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; an editor may have saved GBK
        raise ConfigError([f"{path}: {not_utf8(exc)}"], path) from None
    return _build(data, path=path, allow_emulated=False)


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What to say of a file that is not UTF-8: where, and the fix."""
    byte = exc.object[exc.start : exc.start + 1].hex()
    return (
        f"not UTF-8 text (byte 0x{byte} at offset {exc.start}) — save the file as UTF-8 "
        "(TOML files are UTF-8; e.g. iconv -f GB18030 -t UTF-8)"
    )


def emulated_config(count: int, state_dir: str) -> DockConfig:
    """A valid configuration for ``dock run --emulate N``.

    Slots are ``"1"``..``"N"`` on placeholder ports ``emulated:1``..``emulated:N``
    that the caller replaces with the emulators' URLs (``dataclasses.replace``). The
    clock is trusted (there is no real recorder to mis-set); files may not do this
    with ``emulated:`` ports.
    """
    if count < 1:
        raise ValueError(f"emulated_config: count must be at least 1, got {count}")
    state_dir = os.path.abspath(state_dir)
    data = {
        "dock": {
            "id": "emulated",
            "site": "emulated",
            "unit": "emulated",
            "state_dir": state_dir,
            "evidence_dir": os.path.join(state_dir, "evidence"),
        },
        "slot": [{"id": str(i), "port": f"{EMULATED_SCHEME}{i}"} for i in range(1, count + 1)],
        "clock": {"source": "trusted"},
    }
    return _build(data, path=None, allow_emulated=True)


def config_hash(cfg: DockConfig) -> str:
    """SHA-256 (hex) of a canonical JSON rendering of the resolved configuration.

    Resolved values, not the file's text: key order, comments, spelling out a
    default, and the order of the ``[[slot]]`` tables (sorted by id here) do not
    change it. ``path``, ``warnings`` and ``policy_overrides`` are left out.
    """
    canonical = {
        "dock": dataclasses.asdict(cfg.dock),
        "policy": dataclasses.asdict(cfg.policy),
        "slots": sorted((dataclasses.asdict(s) for s in cfg.slots), key=lambda s: s["id"]),
        "clock": dataclasses.asdict(cfg.clock),
        "gpio": dataclasses.asdict(cfg.gpio),
        "badge": dataclasses.asdict(cfg.badge),
        "officers": dataclasses.asdict(cfg.officers),
        "scanner": list(cfg.scanner.command),
        "mqtt": dataclasses.asdict(cfg.mqtt),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- checking -------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


class _Invalid:
    """Placeholder for a value that failed its check (a problem is already recorded)."""


_INVALID: Any = _Invalid()
_REQUIRED: Any = object()


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def problem(self, key: str, what: str, fix: str) -> None:
        self.problems.append(f"{key}: {what} — {fix}")

    def warn(self, key: str, text: str) -> None:
        self.warnings.append(f"{key}: {text}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
        known = list(known)
        for name in table:
            if name in known:
                continue
            key = f"{where}.{name}" if where else name
            match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if match:
                self.problem(key, "unknown key", f'did you mean "{match[0]}"?')
            else:
                self.problem(key, "unknown key", f"remove it; [{where}] knows {', '.join(known)}")

    def get(
        self,
        table: Mapping[str, Any],
        where: str,
        name: str,
        check: Callable[[Any], Any],
        default: Any = _REQUIRED,
        missing_fix: str = "",
    ) -> Any:
        key = f"{where}.{name}"
        if name not in table:
            if default is _REQUIRED:
                self.problem(key, "missing", missing_fix)
                return _INVALID
            return default
        try:
            return check(table[name])
        except _Bad as bad:
            self.problem(key, bad.what, bad.fix)
            return _INVALID


def _show(value: Any) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({_show(value)})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({_show(value)})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a date/time ({value})"


def _as_int(value: Any, example: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    fix = f"write a whole number without quotes, e.g. {example}"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        fix = f"remove the quotes: {example.split('=')[0].strip()} = {value.strip()}"
    raise _Bad(f"expected an integer, got {_kind(value)}", fix)


def _as_float(value: Any, example: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    fix = f"write a number without quotes, e.g. {example}"
    if isinstance(value, str):
        try:
            float(value)
            fix = f"remove the quotes: {example.split('=')[0].strip()} = {value.strip()}"
        except ValueError:
            pass
    raise _Bad(f"expected a number, got {_kind(value)}", fix)


def _as_str(value: Any, example: str) -> str:
    if isinstance(value, str):
        return value
    raise _Bad(f"expected a string, got {_kind(value)}", f"quote it, e.g. {example}")


def _nonempty(example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _as_str(value, example).strip()
        if not text:
            raise _Bad("empty", f"give a value, e.g. {example}")
        return text

    return check


def _choice(options: Iterable[str], example: str) -> Callable[[Any], str]:
    options = tuple(options)

    def check(value: Any) -> str:
        text = _as_str(value, example)
        if text in options:
            return text
        quoted = [f'"{o}"' for o in options]
        listed = " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted)
        match = difflib.get_close_matches(text, options, n=1, cutoff=0.5)
        hint = f'did you mean "{match[0]}"? ' if match else ""
        raise _Bad(f"{_show(text)} is not one of the choices", f"{hint}use {listed}")

    return check


def _int_range(lo: int, hi: int, name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = _as_int(value, f"{name} = {lo}")
        if not lo <= number <= hi:
            raise _Bad(f"{number} is out of range", f"use a whole number from {lo} to {hi}")
        return number

    return check


def _positive_float(name: str, example: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        number = _as_float(value, f"{name} = {example}")
        if not number > 0:
            raise _Bad(f"{number} is not positive", f"use a number above 0, e.g. {example}")
        return number

    return check


def _pin(value: Any) -> int:
    pin = _as_int(value, "led_green = 17")
    if pin not in GPIO_PINS:
        raise _Bad(
            f"GPIO {pin} does not exist",
            f"use a BCM GPIO number from {GPIO_PINS.start} to {GPIO_PINS.stop - 1}",
        )
    return pin


def _abs_path(example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _nonempty(example)(value)
        if not os.path.isabs(text):
            raise _Bad(
                f"{_show(text)} is a relative path",
                f"give an absolute path (the service's working directory is not fixed), "
                f"e.g. {example}",
            )
        return os.path.normpath(text)

    return check


def _dock_id(value: Any) -> str:
    text = _as_str(value, 'id = "dock-01"')
    if not _DOCK_ID.fullmatch(text):
        raise _Bad(
            f"{_show(text)} is not a valid dock id",
            'use 1 to 32 letters, digits, "_" or "-", e.g. id = "hz-xh-dock01"',
        )
    return text


def _slot_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = _as_str(value, 'id = "1"')
    if not _SLOT_ID.fullmatch(text):
        raise _Bad(
            f"{_show(text)} is not a valid slot id",
            'use 1 to 16 letters, digits, "_" or "-", e.g. id = "1" or id = "A3"',
        )
    return text


def _timezone(value: Any) -> str:
    text = _as_str(value, 'timezone = "Asia/Shanghai"').strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    else:
        return text
    names = sorted(zoneinfo.available_timezones())
    match = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    if not match:
        lowered = {n.lower(): n for n in names}
        match = [lowered[text.lower()]] if text.lower() in lowered else []
    hint = f'did you mean "{match[0]}"? ' if match else ""
    raise _Bad(
        f"{_show(text)} is not an IANA time zone",
        f'{hint}use a name such as "Asia/Shanghai" or "Asia/Urumqi"',
    )


def _port(allow_emulated: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _as_str(value, 'port = "/dev/ttyACM0"').strip()
        return _check_port(text, allow_emulated)

    return check


def _check_port(text: str, allow_emulated: bool) -> str:
    """The port in canonical form (used to find duplicates); _Bad if unusable."""
    if not text:
        raise _Bad("empty", f"give {PORT_EXAMPLES}")
    if text.startswith(EMULATED_SCHEME):
        if allow_emulated:
            return text
        raise _Bad(
            f"{_show(text)}: emulated ports exist only under `dock run --emulate N`",
            f"give {PORT_EXAMPLES}",
        )
    if text.startswith("usb:"):
        m = _USB_PORT_PATH.fullmatch(text.removeprefix("usb:"))
        if m is None:
            raise _Bad(
                f"{_show(text)} is not a USB port path",
                "write usb:BUS-PORT[.PORT...] as Linux names it under /sys/bus/usb/devices, "
                "e.g. usb:1-1.2",
            )
        bus, ports = int(m.group(1)), [int(p) for p in m.group(2).split(".")]
        if not 1 <= bus <= 255 or not all(1 <= p <= 255 for p in ports):
            raise _Bad(f"{_show(text)}: USB bus and port numbers are 1..255", "e.g. usb:1-1.2")
        return f"usb:{bus}-{'.'.join(map(str, ports))}"
    if text.startswith("/"):
        if not text.startswith("/dev/") or len(text) <= len("/dev/"):
            raise _Bad(
                f"{_show(text)} is not a device path",
                "serial devices live under /dev, e.g. /dev/ttyACM0 or "
                "/dev/serial/by-path/platform-...-usb-0:1.2:1.0",
            )
        return os.path.normpath(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.startswith(("tty", "ACM")):
            raise _Bad(f"{_show(text)} is not a full device path", f"write /dev/{text}")
        if _USB_PORT_PATH.fullmatch(text):
            raise _Bad(f"{_show(text)} lacks its scheme", f"write usb:{text}")
        raise _Bad(f"{_show(text)} is not a port", f"give {PORT_EXAMPLES}")
    scheme = scheme.lower()
    if scheme in _FREE_SCHEMES:
        return f"{scheme}://{rest}"
    if scheme in _HOST_PORT_SCHEMES:
        m = re.fullmatch(r"([^/?#]*)(.*)", rest)
        assert m is not None
        host, colon, number = m.group(1).rpartition(":")
        if not colon or not host or not number.isdigit() or not 1 <= int(number) <= 65535:
            raise _Bad(
                f"{_show(text)} lacks a host and port", f"write {scheme}://HOST:PORT (port 1-65535)"
            )
        return f"{scheme}://{host.lower()}:{int(number)}{m.group(2)}"
    known = ", ".join(f"{s}://" for s in (*_HOST_PORT_SCHEMES, *_FREE_SCHEMES))
    raise _Bad(f"{_show(text)}: unknown scheme {scheme}://", f"use {known}, a /dev path or usb:")


def _command(value: Any) -> tuple[str, ...]:
    fix = 'give the command as a list of strings, e.g. ["clamdscan", "--no-summary"]'
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _Bad("must be a non-empty list of strings", fix)
    return tuple(value)


def _badge_reader(value: Any) -> str:
    text = _as_str(value, 'reader = "keyboard"').strip()
    if text in BADGE_READERS:
        return text
    fix = 'use "none", "keyboard", or a serial port such as /dev/ttyUSB0'
    if text.startswith(("usb:", "tcp://", EMULATED_SCHEME)):
        raise _Bad(f"{_show(text)} is not a serial port", fix)
    try:
        return _check_port(text, allow_emulated=False)
    except _Bad:
        match = difflib.get_close_matches(text, BADGE_READERS, n=1, cutoff=0.5)
        hint = f'did you mean "{match[0]}"? ' if match else ""
        raise _Bad(f"{_show(text)} is not a badge reader", hint + fix) from None


def _baudrate(value: Any) -> int:
    rate = _as_int(value, "baudrate = 9600")
    if rate not in BAUDRATES:
        raise _Bad(f"{rate} is not a standard baud rate", f"use one of {BAUDRATES}")
    return rate


# --- [policy] -------------------------------------------------------------------

_POLICY_TYPES: dict[str, Any] = typing.get_type_hints(Policy)


def _policy_value(name: str, value: Any) -> Any:
    """An override checked and converted to the Policy field's type; _Bad if wrong."""
    hint = _POLICY_TYPES[name]
    default = getattr(PRESETS[DEFAULT_PRESET], name)
    example = f"{name} = {_show(list(default) if isinstance(default, tuple) else default)}"
    if hint is bool:
        if isinstance(value, bool):
            return value
        fix = "write true or false without quotes"
        raise _Bad(f"expected a boolean, got {_kind(value)}", fix)
    if hint is int:
        number = _as_int(value, example)
        if name.endswith("_percent"):
            if not 0 <= number <= 100:
                raise _Bad(f"{number} is not a percentage", "use a whole number from 0 to 100")
        elif number <= 0:
            raise _Bad(f"{number} is not positive", f"use a whole number above 0, e.g. {example}")
        return number
    if hint is float:
        number = _as_float(value, example)
        if not number > 0:
            raise _Bad(f"{number} is not positive", f"use a number above 0, e.g. {example}")
        return number
    if hint == int | None:
        # TOML has no null: 0 stands for "not set".
        number = _as_int(value, f"{name} = 1")
        if number < 0:
            raise _Bad(f"{number} is negative", "use 0 (not set) or a whole number above 0")
        return number or None
    if hint == tuple[str, ...]:
        if not isinstance(value, list):
            raise _Bad(f"expected an array of strings, got {_kind(value)}", f"e.g. {name} = []")
        bad = [v for v in value if not isinstance(v, str) or not v.strip()]
        if bad:
            raise _Bad(
                f"{_kind(bad[0])} in the array", 'every entry must be a quoted string, e.g. ["a"]'
            )
        return tuple(value)
    if hint is str and name == "erase_on_device":
        from dock.domain.policy import ERASE_MODES

        if value not in ERASE_MODES:
            raise _Bad(f"{_show(value)} is not an erase mode", f"use one of {list(ERASE_MODES)}")
        return value
    raise _Bad(f"has a type ({hint}) the configuration cannot set", "remove it")  # pragma: no cover


def _higher_is_laxer(new: Any, old: Any) -> bool:
    return new > old


def _lower_is_laxer(new: Any, old: Any) -> bool:
    return new < old


def _drops_entries(new: tuple[str, ...], old: tuple[str, ...]) -> bool:
    return bool(set(old) - set(new))


def _widens_firmware(new: tuple[str, ...], old: tuple[str, ...]) -> bool:
    # Empty means "any firmware".
    return bool(old) and (not new or bool(set(new) - set(old)))


#: For each Policy field: whether a value is laxer than the preset's. The deadline
#: fields are judged together in _deadline_laxer. A test checks every field has a rule.
LAXER: dict[str, Callable[[Any, Any], bool] | None] = {
    "offload_deadline_hours": None,
    "offload_deadline_working_days": None,
    "retention_days": _lower_is_laxer,
    "min_recorders_per_officer": _lower_is_laxer,
    "shift_hours": _lower_is_laxer,
    "recording_hours_per_shift": _lower_is_laxer,
    "battery_hours_when_new": _higher_is_laxer,
    "min_battery_percent": _lower_is_laxer,
    "assumed_battery_health_percent": _higher_is_laxer,
    "bytes_per_recording_hour": _lower_is_laxer,
    "max_clock_drift_after_sync_s": _higher_is_laxer,
    "allowed_firmware": _widens_firmware,
    "erase_on_device": lambda new, old: new == "after_verify" and old != new,
    "supervisor_override_allowed": lambda new, old: new and not old,
    "never_overridable": _drops_entries,
    "explain_manual_stops": lambda new, old: old and not new,
}


def _describe_deadline(p: Policy) -> str:
    if p.offload_deadline_working_days is not None:
        n = p.offload_deadline_working_days
        return f"{n} working day{'s' if n != 1 else ''}"
    return f"{p.offload_deadline_hours:g} h"


def _deadline_laxer(new: Policy, old: Policy) -> bool:
    new_days, old_days = new.offload_deadline_working_days, old.offload_deadline_working_days
    if new_days is not None and old_days is not None:
        return new_days > old_days
    if new_days is None and old_days is None:
        return new.offload_deadline_hours > old.offload_deadline_hours
    if new_days is not None:  # working days always last at least as long as 24 h each
        return new_days * 24 >= old.offload_deadline_hours
    return new.offload_deadline_hours > (old_days or 0) * 24


def _check_policy(ck: _Checker, table: Mapping[str, Any]) -> tuple[Policy | None, tuple[str, ...]]:
    ck.unknown_keys("policy", {k: v for k, v in table.items() if k != "name"}, POLICY_KEYS)
    if "name" in table:
        ck.problem("policy.name", "cannot be set", 'choose a preset with preset = "..." instead')
    preset = ck.get(
        table, "policy", "preset", _choice(PRESETS, f'preset = "{DEFAULT_PRESET}"'), DEFAULT_PRESET
    )
    overrides: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        if name in table:
            value = ck.get(table, "policy", name, lambda v, n=name: _policy_value(n, v))
            if value is not _INVALID:
                overrides[name] = value
    if preset is _INVALID or len(overrides) != len([n for n in POLICY_FIELDS if n in table]):
        return None, ()
    base = PRESETS[preset]
    try:
        policy = policy_from(preset, overrides)
    except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - checked above
        ck.problem("policy", f"rejected by policy_from ({exc})", "check the overrides")
        return None, ()
    if policy.offload_deadline_working_days is not None and "offload_deadline_hours" in overrides:
        ck.problem(
            "policy.offload_deadline_hours",
            f"has no effect: the deadline counts working days "
            f"(offload_deadline_working_days = {policy.offload_deadline_working_days})",
            "also set offload_deadline_working_days = 0 to count hours, or remove this key",
        )
    if _deadline_laxer(policy, base):
        ck.warn(
            "policy",
            f"offload deadline {_describe_deadline(policy)} is laxer than preset "
            f'"{preset}" ({_describe_deadline(base)})',
        )
    for name, value in overrides.items():
        rule = LAXER.get(name)
        old = getattr(base, name)
        if rule is not None and rule(value, old):
            ck.warn(
                f"policy.{name}",
                f'{_show(_plain(value))} is laxer than preset "{preset}" ({_show(_plain(old))})',
            )
    return policy, tuple(sorted(overrides))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- the whole file -------------------------------------------------------------


def _table(ck: _Checker, data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if isinstance(value, dict):
        return value
    ck.problem(name, f"expected a table, got {_kind(value)}", f"write [{name}] and its keys below")
    return {}


def _check_top(ck: _Checker, data: Mapping[str, Any]) -> None:
    for name in data:
        if name in SECTIONS:
            continue
        homes = [s for s, keys in _SECTION_KEYS.items() if name in keys]
        if homes:
            ck.problem(name, "is outside any table", f"move it under [{homes[0]}]")
            continue
        match = difflib.get_close_matches(name, SECTIONS, n=1, cutoff=0.6)
        if match:
            ck.problem(name, "unknown table", f'did you mean "{match[0]}"?')
        else:
            ck.problem(name, "unknown table", f"remove it; the tables are {', '.join(SECTIONS)}")


def _check_slots(
    ck: _Checker, data: Mapping[str, Any], allow_emulated: bool, pins: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    raw = data.get("slot")
    if raw is None:
        ck.problem("slot", "no slots", "add one [[slot]] table (id, port) per bay")
        return []
    if isinstance(raw, dict):
        ck.problem("slot", "is a single table", "write each slot as [[slot]] (double brackets)")
        return []
    if not isinstance(raw, list) or not raw:
        ck.problem("slot", "no slots", "add one [[slot]] table (id, port) per bay")
        return []
    slots: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    ports: dict[str, str] = {}
    for n, table in enumerate(raw, start=1):
        where = f"slot[{n}]"
        if not isinstance(table, dict):
            ck.problem(where, f"expected a table, got {_kind(table)}", "write it as [[slot]]")
            continue
        ck.unknown_keys(where, table, SLOT_KEYS)
        slot_id = ck.get(
            table, where, "id", _slot_id, missing_fix='give the bay a short name, e.g. id = "1"'
        )
        port = ck.get(
            table, where, "port", _port(allow_emulated), missing_fix=f"give {PORT_EXAMPLES}"
        )
        green = ck.get(table, where, "led_green", _pin, None)
        red = ck.get(table, where, "led_red", _pin, None)
        if slot_id is not _INVALID:
            if slot_id in ids:
                ck.problem(
                    f"{where}.id",
                    f'"{slot_id}" is already the id of {ids[slot_id]}',
                    "give every slot its own id",
                )
            else:
                ids[slot_id] = where
        if port is not _INVALID:
            if port in ports:
                ck.problem(
                    f"{where}.port",
                    f"{_show(table['port'])} is already the port of {ports[port]}",
                    "give each slot its own port (one link per recorder)",
                )
            else:
                ports[port] = where
        for name, pin in (("led_green", green), ("led_red", red)):
            if pin is not None and pin is not _INVALID:
                pins.append((f"{where}.{name}", pin))
        slots.append({"id": slot_id, "port": port, "led_green": green, "led_red": red})
    return slots


def _check_gpio(
    ck: _Checker, table: Mapping[str, Any], pins: list[tuple[str, int]]
) -> dict[str, Any]:
    ck.unknown_keys("gpio", table, GPIO_KEYS)
    buzzer = ck.get(table, "gpio", "buzzer", _pin, None)
    if buzzer is not None and buzzer is not _INVALID:
        pins.append(("gpio.buzzer", buzzer))
    screen = ck.get(table, "gpio", "screen", _choice(SCREENS, 'screen = "console"'), "console")
    lcd: Any = None
    raw = table.get("hd44780")
    if raw is not None and not isinstance(raw, dict):
        ck.problem("gpio.hd44780", f"expected a table, got {_kind(raw)}", "write [gpio.hd44780]")
    elif screen == "hd44780" and raw is None:
        ck.problem(
            "gpio.hd44780",
            'missing (screen = "hd44780" needs its pins)',
            f"add a [gpio.hd44780] table with {', '.join(HD44780_PINS)}",
        )
    elif raw is not None and screen != "hd44780":
        ck.problem(
            "gpio.hd44780",
            f"is given but screen = {_show(screen)}",
            'set screen = "hd44780", or remove the [gpio.hd44780] table',
        )
    elif raw is not None:
        ck.unknown_keys("gpio.hd44780", raw, HD44780_KEYS)
        values: dict[str, Any] = {}
        for name in HD44780_PINS:
            values[name] = ck.get(
                raw,
                "gpio.hd44780",
                name,
                _pin,
                missing_fix=f"give the BCM GPIO number wired to the LCD's {name.upper()} pin",
            )
            if values[name] is not _INVALID:
                pins.append((f"gpio.hd44780.{name}", values[name]))
        values["columns"] = ck.get(raw, "gpio.hd44780", "columns", _int_range(8, 40, "columns"), 20)
        values["rows"] = ck.get(raw, "gpio.hd44780", "rows", _int_range(1, 4, "rows"), 4)
        lcd = values
    return {"buzzer": buzzer, "screen": screen, "hd44780": lcd}


def _check_pin_clashes(ck: _Checker, pins: list[tuple[str, int]]) -> None:
    first: dict[int, str] = {}
    for key, pin in pins:
        if pin in first:
            ck.problem(
                key,
                f"GPIO {pin} is already used by {first[pin]}",
                "give each LED, the buzzer and each screen pin its own GPIO",
            )
        else:
            first[pin] = key


def _build(data: Mapping[str, Any], path: str | None, allow_emulated: bool) -> DockConfig:
    ck = _Checker()
    _check_top(ck, data)

    dock_t = _table(ck, data, "dock")
    ck.unknown_keys("dock", dock_t, DOCK_KEYS)
    dock = {
        "id": ck.get(
            dock_t, "dock", "id", _dock_id, missing_fix='name this dock, e.g. id = "hz-xh-dock01"'
        ),
        "site": ck.get(
            dock_t,
            "dock",
            "site",
            _nonempty('site = "西湖区行政服务中心"'),
            missing_fix='say where the dock stands, e.g. site = "西湖区行政服务中心"',
        ),
        "unit": ck.get(
            dock_t,
            "dock",
            "unit",
            _nonempty('unit = "西湖区市场监督管理局"'),
            missing_fix='name the unit whose footage this is, e.g. unit = "西湖区市场监督管理局"',
        ),
        "state_dir": ck.get(
            dock_t, "dock", "state_dir", _abs_path('state_dir = "/var/lib/dock"'), "/var/lib/dock"
        ),
        "evidence_dir": ck.get(
            dock_t,
            "dock",
            "evidence_dir",
            _abs_path('evidence_dir = "/srv/evidence"'),
            "/srv/evidence",
        ),
        "locale": ck.get(dock_t, "dock", "locale", _choice(LOCALES, 'locale = "zh"'), "zh"),
        "timezone": ck.get(dock_t, "dock", "timezone", _timezone, "Asia/Shanghai"),
        "audit_checkpoint_copy": ck.get(
            dock_t,
            "dock",
            "audit_checkpoint_copy",
            _abs_path('audit_checkpoint_copy = "/srv/dock-audit/checkpoint.json"'),
            "",
        ),
    }

    policy, overridden = _check_policy(ck, _table(ck, data, "policy"))

    pins: list[tuple[str, int]] = []
    slots = _check_slots(ck, data, allow_emulated, pins)

    clock_t = _table(ck, data, "clock")
    ck.unknown_keys("clock", clock_t, CLOCK_KEYS)
    clock = {
        "source": ck.get(
            clock_t, "clock", "source", _choice(CLOCK_SOURCES, 'source = "system"'), "system"
        ),
        "max_offset_s": ck.get(
            clock_t, "clock", "max_offset_s", _positive_float("max_offset_s", 0.5), 0.5
        ),
    }
    if clock["source"] == "trusted":
        ck.warn(
            "clock.source",
            "\"trusted\": recorders' clocks will be set from this dock's clock without "
            'checking it is synchronised; for tests and emulation only (use "system")',
        )
        if "max_offset_s" in clock_t:
            ck.warn("clock.max_offset_s", 'has no effect with source = "trusted"')

    gpio = _check_gpio(ck, _table(ck, data, "gpio"), pins)
    _check_pin_clashes(ck, pins)

    badge_t = _table(ck, data, "badge")
    ck.unknown_keys("badge", badge_t, BADGE_KEYS)
    badge = {
        "reader": ck.get(badge_t, "badge", "reader", _badge_reader, "none"),
        "baudrate": ck.get(badge_t, "badge", "baudrate", _baudrate, 9600),
    }
    if badge["reader"] in BADGE_READERS and "baudrate" in badge_t:
        ck.warn("badge.baudrate", f"has no effect with reader = {_show(badge['reader'])}")

    officers_t = _table(ck, data, "officers")
    ck.unknown_keys("officers", officers_t, OFFICERS_KEYS)
    officers = {
        "min_pin_length": ck.get(
            officers_t, "officers", "min_pin_length", _int_range(4, 32, "min_pin_length"), 6
        )
    }
    if officers["min_pin_length"] is not _INVALID and officers["min_pin_length"] < 6:
        ck.warn("officers.min_pin_length", f"{officers['min_pin_length']} is below the default 6")

    scanner_t = _table(ck, data, "scanner")
    ck.unknown_keys("scanner", scanner_t, ("command",))
    scanner = ck.get(scanner_t, "scanner", "command", _command, ())

    mqtt_t = _table(ck, data, "mqtt")
    ck.unknown_keys("mqtt", mqtt_t, MQTT_KEYS)
    mqtt, mqtt_problems = parse_mqtt(
        {k: v for k, v in mqtt_t.items() if k in MQTT_KEYS}, dock["id"]
    )
    for key, what, fix in mqtt_problems:
        ck.problem(key, what, fix)
    if mqtt is not None and mqtt.enabled:
        for s in slots:
            if isinstance(s.get("id"), str) and not MQTT_ID_RE.match(s["id"]):
                ck.problem(
                    f"slot {s['id']!r}",
                    "with [mqtt] a slot id is a topic level",
                    'use letters, digits, "_", "-" or ".", starting with a letter or digit',
                )

    if ck.problems or policy is None:
        raise ConfigError(ck.problems, path)
    for text in ck.warnings:
        log.warning("%s%s", f"{path}: " if path else "", text)
    lcd = gpio["hd44780"]
    return DockConfig(
        dock=DockSettings(**dock),
        policy=policy,
        slots=tuple(SlotConfig(**s) for s in slots),
        clock=ClockConfig(**clock),
        gpio=GpioConfig(
            buzzer=gpio["buzzer"],
            screen=gpio["screen"],
            hd44780=Hd44780Pins(**lcd) if lcd is not None else None,
        ),
        badge=BadgeConfig(**badge),
        officers=OfficersConfig(**officers),
        scanner=ScannerConfig(command=tuple(scanner)),
        mqtt=mqtt or MqttConfig(),
        policy_overrides=overridden,
        warnings=tuple(ck.warnings),
        path=path,
    )
