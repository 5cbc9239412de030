"""``[officers]``: how officers prove who they are at check-out."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import INVALID, Checker, int_range


@dataclass(frozen=True)
class OfficersConfig:
    min_pin_length: int = 6


OFFICERS_KEYS = tuple(f.name for f in dataclasses.fields(OfficersConfig))


def check_officers(ck: Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[officers]``'s values; a PIN shorter than the default is warned about."""
    ck.unknown_keys("officers", table, OFFICERS_KEYS)
    officers = {
        "min_pin_length": ck.get(
            table, "officers", "min_pin_length", int_range(4, 32, "min_pin_length"), 6
        )
    }
    if officers["min_pin_length"] is not INVALID and officers["min_pin_length"] < 6:
        ck.warn("officers.min_pin_length", f"{officers['min_pin_length']} is below the default 6")
    return officers
