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
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class BadgeConfig:
    reader: str = "none"
    baudrate: int = 9600


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


def check_badge(ck: Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[badge]``'s values; a baud rate with no serial reader is a warning."""
    ck.unknown_keys("badge", table, BADGE_KEYS)
    badge = {
        "reader": ck.get(table, "badge", "reader", _badge_reader, "none"),
        "baudrate": ck.get(table, "badge", "baudrate", _baudrate, 9600),
    }
    if badge["reader"] in BADGE_READERS and "baudrate" in table:
        ck.warn("badge.baudrate", f"has no effect with reader = {show(badge['reader'])}")
    return badge
