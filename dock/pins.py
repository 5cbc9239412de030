"""PIN checks with their audit: every place an officer or supervisor proves who they are
with a PIN (check-out, a supervisor's override, gap explanations and accounts, access
approvals, hold releases, unlocking a PIN) goes through ``verify``, so one lockout counts
them all and a lockout is always in the audit log.

What a person is told (docs/OPERATIONS.md, "PINs"): a wrong PIN and an officer number
that does not exist are refused in the same words, with the same tries left, and lock
alike after ``PIN_TRIES``; so a stranger cannot learn which numbers exist, and the officer
still sees the lock coming. Only a locked PIN is named as such.
"""

from __future__ import annotations

from typing import Any

from .store import PIN_TRIES, PinCheck, Store

__all__ = ["PIN_TRIES", "PinCheck", "verify"]


def verify(store: Store, audit: Any, officer_id: str, pin: str, purpose: str) -> PinCheck:
    """``store.verify_pin``, and the lockout it causes audited (``pin_locked``, subject
    the number, with what it was for and whether the number exists)."""
    check = store.verify_pin(officer_id, pin)
    if check.just_locked:
        audit.append(
            "pin_locked",
            "dock",
            officer_id,
            {"purpose": purpose, "tries": PIN_TRIES, "known": check.known},
        )
    return check
