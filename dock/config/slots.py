"""``[[slot]]``: the bays, the link to the recorder in each, and its LEDs.

Also the port syntax (``check_port``), which the badge reader's serial port shares.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import INVALID, Bad, Checker, as_str, choice, kind, show
from dock.config.hardware import pin

PORT_EXAMPLES = "a device path such as /dev/ttyACM0, tcp://HOST:PORT or usb:1-1.2"
EMULATED_SCHEME = "emulated:"

_SLOT_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
#: Same shape as hardware.usb_transport.parse_port_path (dock may not import hardware).
_USB_PORT_PATH = re.compile(r"(\d{1,3})-(\d{1,3}(?:\.\d{1,3}){0,6})")
#: pyserial URL schemes that need HOST:PORT, and those that take anything after ://.
_HOST_PORT_SCHEMES = ("tcp", "socket", "rfc2217")
_FREE_SCHEMES = ("loop",)


@dataclass(frozen=True)
class SlotConfig:
    """One ``[[slot]]``: a bay, the link to the recorder in it, and its LEDs."""

    id: str
    port: str
    led_green: int | None = None
    led_red: int | None = None
    #: "protocol" (the dock's own), "ums" (a mass-storage camera: ``model`` says how it
    #: is identified) or "auto" (a volume on ``disk`` if one is there, else the protocol).
    driver: str = "protocol"
    #: The ``[[model]]`` of the camera in this bay (driver "ums" or "auto").
    model: str | None = None
    #: The block device (or image) of a mass-storage camera; None: /dev/bwc/slot-<id>.disk.
    disk: str | None = None

    @property
    def disk_path(self) -> str:
        return self.disk or f"/dev/bwc/slot-{self.id}.disk"


SLOT_DRIVERS = ("protocol", "ums", "auto")
SLOT_KEYS = tuple(f.name for f in dataclasses.fields(SlotConfig))


def _slot_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = as_str(value, 'id = "1"')
    if not _SLOT_ID.fullmatch(text):
        raise Bad(
            f"{show(text)} is not a valid slot id",
            'use 1 to 16 letters, digits, "_" or "-", e.g. id = "1" or id = "A3"',
        )
    return text


def _port(allow_emulated: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = as_str(value, 'port = "/dev/ttyACM0"').strip()
        return check_port(text, allow_emulated)

    return check


def check_port(text: str, allow_emulated: bool) -> str:
    """The port in canonical form (used to find duplicates); Bad if unusable."""
    if not text:
        raise Bad("empty", f"give {PORT_EXAMPLES}")
    if text.startswith(EMULATED_SCHEME):
        link = text.removeprefix(EMULATED_SCHEME)
        if allow_emulated or (link.startswith("/") and ".." not in link.split("/")):
            return text  # a named link of `dock run --emulate` (a socket, never a tty)
        raise Bad(
            f"{show(text)}: emulated ports exist only under `dock run --emulate N`",
            f"give {PORT_EXAMPLES}",
        )
    if text.startswith("usb:"):
        m = _USB_PORT_PATH.fullmatch(text.removeprefix("usb:"))
        if m is None:
            raise Bad(
                f"{show(text)} is not a USB port path",
                "write usb:BUS-PORT[.PORT...] as Linux names it under /sys/bus/usb/devices, "
                "e.g. usb:1-1.2",
            )
        bus, ports = int(m.group(1)), [int(p) for p in m.group(2).split(".")]
        if not 1 <= bus <= 255 or not all(1 <= p <= 255 for p in ports):
            raise Bad(f"{show(text)}: USB bus and port numbers are 1..255", "e.g. usb:1-1.2")
        return f"usb:{bus}-{'.'.join(map(str, ports))}"
    if text.startswith("/"):
        if not text.startswith("/dev/") or len(text) <= len("/dev/"):
            raise Bad(
                f"{show(text)} is not a device path",
                "serial devices live under /dev, e.g. /dev/ttyACM0 or "
                "/dev/serial/by-path/platform-...-usb-0:1.2:1.0",
            )
        return os.path.normpath(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.startswith(("tty", "ACM")):
            raise Bad(f"{show(text)} is not a full device path", f"write /dev/{text}")
        if _USB_PORT_PATH.fullmatch(text):
            raise Bad(f"{show(text)} lacks its scheme", f"write usb:{text}")
        raise Bad(f"{show(text)} is not a port", f"give {PORT_EXAMPLES}")
    scheme = scheme.lower()
    if scheme in _FREE_SCHEMES:
        return f"{scheme}://{rest}"
    if scheme in _HOST_PORT_SCHEMES:
        m = re.fullmatch(r"([^/?#]*)(.*)", rest)
        assert m is not None
        host, colon, number = m.group(1).rpartition(":")
        if not colon or not host or not number.isdigit() or not 1 <= int(number) <= 65535:
            raise Bad(
                f"{show(text)} lacks a host and port", f"write {scheme}://HOST:PORT (port 1-65535)"
            )
        return f"{scheme}://{host.lower()}:{int(number)}{m.group(2)}"
    known = ", ".join(f"{s}://" for s in (*_HOST_PORT_SCHEMES, *_FREE_SCHEMES))
    raise Bad(f"{show(text)}: unknown scheme {scheme}://", f"use {known}, a /dev path or usb:")


def _disk(value: Any) -> str:
    text = as_str(value, 'disk = "/dev/bwc/slot-1.disk"')
    if not os.path.isabs(text) or "\x00" in text:
        raise Bad(f"{show(text)} is not an absolute path", 'e.g. disk = "/dev/bwc/slot-1.disk"')
    return os.path.normpath(text)


def check_slots(
    ck: Checker, data: Mapping[str, Any], allow_emulated: bool, pins: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Every ``[[slot]]``'s values; the LED pins go into ``pins`` to find clashes."""
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
            ck.problem(where, f"expected a table, got {kind(table)}", "write it as [[slot]]")
            continue
        ck.unknown_keys(where, table, SLOT_KEYS)
        slot_id = ck.get(
            table, where, "id", _slot_id, missing_fix='give the bay a short name, e.g. id = "1"'
        )
        port = ck.get(
            table, where, "port", _port(allow_emulated), missing_fix=f"give {PORT_EXAMPLES}"
        )
        green = ck.get(table, where, "led_green", pin, None)
        red = ck.get(table, where, "led_red", pin, None)
        driver = ck.get(table, where, "driver", choice(SLOT_DRIVERS, 'driver = "ums"'), "protocol")
        model = ck.get(table, where, "model", lambda v: as_str(v, 'model = "DSJ-V8"'), None)
        disk = ck.get(table, where, "disk", _disk, None)
        if driver in ("ums", "auto") and model is None:
            ck.problem(f"{where}.model", f'driver = "{driver}" needs the camera\'s model',
                       'name a [[model]], e.g. model = "DSJ-V8"')  # fmt: skip
        if slot_id is not INVALID:
            if slot_id in ids:
                ck.problem(
                    f"{where}.id",
                    f'"{slot_id}" is already the id of {ids[slot_id]}',
                    "give every slot its own id",
                )
            else:
                ids[slot_id] = where
        if port is not INVALID:
            if port in ports:
                ck.problem(
                    f"{where}.port",
                    f"{show(table['port'])} is already the port of {ports[port]}",
                    "give each slot its own port (one link per recorder)",
                )
            else:
                ports[port] = where
        for name, number in (("led_green", green), ("led_red", red)):
            if number is not None and number is not INVALID:
                pins.append((f"{where}.{name}", number))
        slots.append({"id": slot_id, "port": port, "led_green": green, "led_red": red,
                      "driver": driver, "model": model, "disk": disk})  # fmt: skip
    return slots
