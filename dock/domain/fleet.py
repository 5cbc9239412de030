"""Recorders per officer against the policy's minimum (001 art.18: at least one recorder
per two officers). Pure: the counts come from the store, the minimum from the policy."""

from __future__ import annotations

from typing import Any


def ratio_verdict(recorders: int, officers: int, minimum: float) -> dict[str, Any]:
    """JSON-ready: the counts, recorders per officer (None with no officers), the
    ``minimum`` and ``shortfall`` (True when there are fewer recorders per officer than
    the minimum; None when there is nobody to count against)."""
    per = round(recorders / officers, 3) if officers else None
    # compared unrounded: 2 recorders for 5 officers is 0.4, below 0.5 whatever is shown
    shortfall = None if not officers else recorders < minimum * officers
    return {
        "officers": officers,
        "recorders": recorders,
        "recorders_per_officer": per,
        "minimum": minimum,
        "shortfall": shortfall,
    }


def ratio_line(fleet: dict[str, Any]) -> str:
    """The status line for the ratio: the numbers, the minimum and SHORTFALL below it."""
    line = f"fleet: {fleet['recorders']} recorder(s) for {fleet['officers']} officer(s)"
    per, minimum = fleet.get("recorders_per_officer"), fleet.get("minimum")
    if per is not None:
        line += f", {per:.2f} per officer"
    if minimum is not None:
        line += f", minimum {float(minimum):.2f} (001 art.18)"
    if fleet.get("shortfall"):
        line += ": SHORTFALL"
    elif fleet.get("shortfall") is False:
        line += ": met"
    return line


__all__ = ["ratio_line", "ratio_verdict"]
