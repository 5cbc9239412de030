"""``[badge]``: the badge reader officers check out with."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import Bad, Checker, as_int, as_str, show
from dock.config.slots import EMULATED_SCHEME, check_port

BADGE_READERS = ("none", "keyboard")
INPUT_DIR = "/dev/input/"
STABLE_DIRS = (INPUT_DIR + "by-id/", INPUT_DIR + "by-path/")
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class BadgeConfig:
    reader: str = "none"
    baudrate: int = 9600
    #: reader = "keyboard": the reader's input device (/dev/input/by-id/...-event-kbd),
    #: read through evdev and grabbed, never standard input (/dev/null under systemd).
    device: str | None = None


BADGE_KEYS = tuple(f.name for f in dataclasses.fields(BadgeConfig))


def _badge_reader(value: Any) -> str:
    text = as_str(value, 'reader = "keyboard"').strip()
    if text in BADGE_READERS:
        return text
    fix = 'use "none", "keyboard", or a serial port such as /dev/ttyUSB0'
    if text.startswith(("usb:", "tcp://", EMULATED_SCHEME)):
        raise Bad(f"{show(text)} is not a serial port", fix)
    try:
        return check_port(text, allow_emulated=False)
    except Bad:
        match = difflib.get_close_matches(text, BADGE_READERS, n=1, cutoff=0.5)
        hint = f'did you mean "{match[0]}"? ' if match else ""
        raise Bad(f"{show(text)} is not a badge reader", hint + fix) from None


def _baudrate(value: Any) -> int:
    rate = as_int(value, "baudrate = 9600")
    if rate not in BAUDRATES:
        raise Bad(f"{rate} is not a standard baud rate", f"use one of {BAUDRATES}")
    return rate


def _input_device(value: Any) -> str:
    text = as_str(value, 'device = "/dev/input/by-id/usb-...-event-kbd"').strip()
    if not text.startswith(INPUT_DIR) or ".." in text.split("/") or "\0" in text:
        raise Bad(
            f"{show(text)} is not an input device",
            f"give the reader's device under {INPUT_DIR}by-id/ (ls -l {INPUT_DIR}by-id/)",
        )
    return text


def check_badge(ck: Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[badge]``'s values; a baud rate with no serial reader is a warning, a keyboard
    reader without its input device a problem (standard input is /dev/null under systemd)."""
    ck.unknown_keys("badge", table, BADGE_KEYS)
    badge = {
        "reader": ck.get(table, "badge", "reader", _badge_reader, "none"),
        "baudrate": ck.get(table, "badge", "baudrate", _baudrate, 9600),
        "device": ck.get(table, "badge", "device", _input_device, None),
    }
    if badge["reader"] in BADGE_READERS and "baudrate" in table:
        ck.warn("badge.baudrate", f"has no effect with reader = {show(badge['reader'])}")
    if badge["reader"] == "keyboard" and "device" not in table:
        ck.problem(
            "badge.device",
            'missing (reader = "keyboard" reads the reader\'s own input device, not '
            "standard input, which is /dev/null under systemd)",
            f'add device = "{INPUT_DIR}by-id/<your reader>-event-kbd"',
        )
    elif badge["reader"] != "keyboard" and "device" in table:
        ck.warn("badge.device", f"has no effect with reader = {show(badge['reader'])}")
    elif isinstance(badge["device"], str) and not badge["device"].startswith(STABLE_DIRS):
        ck.warn(
            "badge.device",
            f"{show(badge['device'])} may name another device after a reboot: use its name "
            f"under {INPUT_DIR}by-id/ or by-path/",
        )
    return badge
