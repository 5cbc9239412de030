"""PIN checks with their audit: every place an officer or supervisor proves who they are
with a PIN (check-out, a supervisor's override, gap explanations and accounts, access
approvals, hold releases, purges, case attachments, unlocking a PIN) goes through
``verify``, so one lockout counts them all and a lockout is always in the audit log.
``authorise`` adds the role: who may do what is checked in one place.

What a person is told (docs/OPERATIONS.md, "PINs"): a wrong PIN and an officer number
that does not exist are refused in the same words, with the same tries left, and lock
alike after ``PIN_TRIES``; so a stranger cannot learn which numbers exist, and the officer
still sees the lock coming. Only a locked PIN is named as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.storage.store import PIN_TRIES, PinCheck, Store

__all__ = ["PIN_TRIES", "Authorised", "PinCheck", "authorise", "verify"]


@dataclass(frozen=True)
class Authorised:
    """Whether a person proved who they are and holds a role allowed to act; ``why``
    is one line to show when not (the same for a wrong PIN and an unknown number)."""

    ok: bool
    officer_id: str
    why: str = ""
    locked: bool = False


def verify(store: Store, audit: Any, officer_id: str, pin: str, purpose: str) -> PinCheck:
    """``store.verify_pin``, and the lockout it causes audited (``pin_locked``, subject
    the number, with what it was for and whether the number exists)."""
    check = store.verify_pin(officer_id, pin)
    if check.just_locked:
        audit.append(
            AuditKind.PIN_LOCKED,
            "dock",
            officer_id,
            {"purpose": purpose, "tries": PIN_TRIES, "known": check.known},
        )
    return check


def authorise(
    store: Store,
    audit: Any,
    officer_id: str,
    pin: str,
    purpose: str,
    roles: tuple[str, ...] = ("supervisor",),
) -> Authorised:
    """``verify`` the PIN, then that the officer is enabled and holds one of ``roles``.
    A wrong PIN, an unknown number and a disabled officer read alike."""
    check = verify(store, audit, officer_id, pin, purpose)
    officer = store.officer(officer_id)
    if check.locked:
        return Authorised(False, officer_id, f"PIN of {officer_id} locked: ask a supervisor", True)
    if not check.ok or officer is None or officer.disabled:
        why = f"{officer_id}: wrong ID/PIN ({check.tries_left} left)"
        return Authorised(False, officer_id, why)
    if officer.role not in roles:
        return Authorised(False, officer_id, f"{officer_id} is not a {' or '.join(roles)}")
    return Authorised(True, officer_id)
