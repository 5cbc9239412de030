"""``[clock]``: whether this dock's clock may be trusted to set recorders' clocks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import Checker, choice, positive_float

CLOCK_SOURCES = ("system", "trusted")


@dataclass(frozen=True)
class ClockConfig:
    """``[clock]``: whether this dock's clock may be trusted to set recorders' clocks."""

    source: str = "system"
    max_offset_s: float = 0.5


CLOCK_KEYS = tuple(f.name for f in dataclasses.fields(ClockConfig))


def check_clock(ck: Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[clock]``'s values; a trusted clock is allowed but warned about."""
    ck.unknown_keys("clock", table, CLOCK_KEYS)
    clock = {
        "source": ck.get(
            table, "clock", "source", choice(CLOCK_SOURCES, 'source = "system"'), "system"
        ),
        "max_offset_s": ck.get(
            table, "clock", "max_offset_s", positive_float("max_offset_s", 0.5), 0.5
        ),
    }
    if clock["source"] == "trusted":
        ck.warn(
            "clock.source",
            "\"trusted\": recorders' clocks will be set from this dock's clock without "
            'checking it is synchronised; for tests and emulation only (use "system")',
        )
        if "max_offset_s" in table:
            ck.warn("clock.max_offset_s", 'has no effect with source = "trusted"')
    return clock
