"""Recorders not returned by the end of their shift.

REQUIREMENTS.md §8: devices are registered, maintained and not lost through poor custody
(000 §14.1; 002 art.22; 003 art.21, which counts lending a recorder to someone else among
the faults): a recorder not back by the end of the shift it was checked out for raises
an alert. A shift is ``policy.shift_hours`` long from the check-out (the length the
battery check asks runtime for); the alert comes ``policy.return_grace_minutes`` after
that. :func:`return_due` is pure; :func:`not_returned` applies it to the custody
episodes still open in the dock's database.
"""

from __future__ import annotations

import math
from typing import Any

from dock.devices.clock import local_display, utc_iso
from dock.domain.policy import Policy
from dock.storage.store import Store


def return_due(out_at: float, policy: Policy) -> float:
    """When a recorder checked out at ``out_at`` (epoch seconds) must be back, alert
    included: the end of its shift plus the grace. Raises ValueError for a policy that
    would make no sense (a shift not above zero, a negative grace)."""
    hours, grace = policy.shift_hours, policy.return_grace_minutes
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise ValueError(f"shift_hours {hours!r} is not a number")
    if not math.isfinite(hours) or hours <= 0:
        raise ValueError(f"shift_hours {hours!r} must be finite and > 0")
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise ValueError(f"return_grace_minutes {grace!r} must be a whole number >= 0")
    return float(out_at) + hours * 3600.0 + grace * 60.0


def not_returned(store: Store, policy: Policy, tz: str, now: float) -> list[dict[str, Any]]:
    """The custody episodes still open at ``now`` whose recorder is past its return
    (:func:`return_due`), longest away first. A grant whose recorder never left its slot
    is not one: it expires on its own (``grant_expired``)."""
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for c in store.away_episodes():
        due = return_due(c.out_at, policy)
        if now <= due:
            continue
        rows.append(
            (
                c.out_at,
                c.id,
                {
                    "custody_id": c.id,
                    "serial": c.serial,
                    "officer_id": c.officer_id,
                    "out_at": utc_iso(c.out_at),
                    "due_utc": utc_iso(due),
                    "due_local": local_display(due, tz),
                    "away_s": round(now - c.out_at, 3),
                },
            )
        )
    rows.sort(key=lambda r: r[:2])
    return [r[2] for r in rows]


__all__ = ["not_returned", "return_due"]
