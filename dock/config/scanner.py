"""``[scanner]``: checking offloaded files before they enter the evidence archive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import Bad, Checker

SCANNER_KEYS = ("command",)


@dataclass(frozen=True)
class ScannerConfig:
    """``[scanner]``: a malware scanner run on each file before it is archived, e.g.
    ``command = ["clamdscan", "--no-summary", "--fdpass"]``; the file path is appended.
    Exit status 0 = clean, 1 = found; anything else is a scanner failure (fail closed)."""

    command: tuple[str, ...] = ()


def _command(value: Any) -> tuple[str, ...]:
    fix = 'give the command as a list of strings, e.g. ["clamdscan", "--no-summary"]'
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise Bad("must be a non-empty list of strings", fix)
    return tuple(value)


def check_scanner(ck: Checker, table: Mapping[str, Any]) -> Any:
    """``[scanner] command`` as a tuple (INVALID if refused)."""
    ck.unknown_keys("scanner", table, SCANNER_KEYS)
    return ck.get(table, "scanner", "command", _command, ())
