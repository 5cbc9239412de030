"""The handover register: who handed each returned recorder back (REQUIREMENTS.md §4, §2).

001 art.19(3): on return the officer hands the records over and signs the handover
register. 003 art.21(2): a recorder is not lent to anyone else, so a return by someone
other than its custodian is a fact to record and show, not to hide. The dock cannot take
a handwritten signature; it takes who proves to be at the slot instead: the badge read at
the dock's reader, or an officer number and PIN (checked by :mod:`dock.storage.pins`,
under the same lockout as a check-out).

A docking that closes a custody episode opens a pending handover (``awaiting``); within
``window_s`` someone signs it (``sign``), or it is recorded unsigned (``expire``). Each
outcome is one row of the append-only ``handovers`` table written in the same
transaction as its audit entry: ``handover`` (the custodian signed), ``handover_by_other``
(someone else did: flagged), ``handover_unsigned`` (nobody did: flagged). The offload
never waits for any of it: footage safety comes first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.storage.audit import AuditLog
from dock.storage.handover_table import HandoverTable
from dock.storage.pins import verify as verify_pin
from dock.storage.store import Custody, Officer, Store

__all__ = ["HOW", "WINDOW_S", "HandoverError", "HandoverRegister", "Signed"]

#: How the person returning a recorder was identified.
HOW = ("badge", "pin", "none")
#: How long after docking a return may be signed for, by default (seconds).
WINDOW_S = 300.0


class HandoverError(Exception):
    """A signature the register refuses; ``code`` says which for a front end to word:
    ``nothing_pending``, ``not_verified`` (with ``tries_left``), ``locked``, ``disabled``."""

    def __init__(self, code: str, message: str, tries_left: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.tries_left = tries_left


@dataclass(frozen=True)
class Signed:
    """One row of the register, as written."""

    entry: int
    custody_id: int
    serial: str
    slot: str
    custodian: str
    returned_by: str | None
    how: str
    by_custodian: bool | None
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "custody": self.custody_id,
            "serial": self.serial,
            "slot": self.slot,
            "custodian": self.custodian,
            "returned_by": self.returned_by,
            "how": self.how,
            "by_custodian": self.by_custodian,
        }


class HandoverRegister:
    """Pending returns and the register of their handovers."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        clock: Callable[[], float] | None = None,
        window_s: float = WINDOW_S,
    ) -> None:
        self.store = store
        self.audit = audit
        self.table = HandoverTable(store)
        self._clock = clock or store.clock
        self.window_s = window_s

    def awaiting(self, closed: Custody, slot_id: str) -> bool:
        """A docking closed ``closed``: its handover waits for a signature. False when
        it was already waiting or registered (the same return seen twice)."""
        at = closed.in_at if closed.in_at is not None else self._clock()
        return self.table.add_pending(
            closed.id, closed.serial, slot_id, closed.officer_id, at, at + self.window_s
        )

    def pending(self) -> list[dict[str, Any]]:
        """Returns still waiting for a signature, oldest first."""
        return self.table.pending()

    def pending_in(self, slot_id: str) -> dict[str, Any] | None:
        """The newest return waiting in ``slot_id``, if any."""
        found = [p for p in self.table.pending() if p["slot_id"] == slot_id]
        return found[-1] if found else None

    def pending_of(self, officer_id: str) -> dict[str, Any] | None:
        """The newest return of ``officer_id``'s recorder still waiting, if any."""
        found = [p for p in self.table.pending() if p["custodian"] == officer_id]
        return found[-1] if found else None

    # ------------------------------------------------------------------ signing
    def sign_with_pin(self, slot_id: str, officer_id: str, pin: str) -> Signed:
        """The person at ``slot_id`` gives their number and PIN (the check-out's lockout)."""
        pending = self.pending_in(slot_id)
        if pending is None:
            raise HandoverError("nothing_pending", f"slot {slot_id}: no return waits to be signed")
        check = verify_pin(self.store, self.audit, officer_id, pin, "handover")
        officer = self.store.officer(officer_id)
        if not check.ok or officer is None:
            why = "PIN locked" if check.locked else "not verified"
            self._refused(officer_id, pending, why)
            if check.locked:
                raise HandoverError("locked", "PIN locked: ask a supervisor (dock officer unlock)")
            raise HandoverError(
                "not_verified",
                f"officer number or PIN not recognised ({check.tries_left} tries left)",
                check.tries_left,
            )
        return self._sign(pending, officer, "pin")

    def sign_with_badge(self, pending: dict[str, Any], officer: Officer) -> Signed:
        """The badge read at the dock named ``officer`` (the caller found the officer)."""
        return self._sign(pending, officer, "badge")

    def _refused(self, who: str, pending: dict[str, Any], why: str) -> None:
        self.audit.append(
            AuditKind.HANDOVER_REFUSED,
            who,
            pending["serial"],
            {"why": why, "slot": pending["slot_id"], "custody": pending["custody_id"]},
        )

    def _sign(self, pending: dict[str, Any], officer: Officer, how: str) -> Signed:
        if officer.disabled:
            self._refused(officer.officer_id, pending, "disabled")
            raise HandoverError("disabled", f"officer {officer.officer_id} is disabled")
        by_custodian = officer.officer_id == pending["custodian"]
        kind = AuditKind.HANDOVER if by_custodian else AuditKind.HANDOVER_BY_OTHER
        return self._register(pending, officer.officer_id, how, by_custodian, kind)

    def _register(
        self,
        pending: dict[str, Any],
        returned_by: str | None,
        how: str,
        by_custodian: bool | None,
        kind: AuditKind,
    ) -> Signed:
        at = self._clock()
        with self.table.transaction():  # the register's row with its audit entry, or neither
            entry = self.table.register(pending, returned_by, how, by_custodian, at)
            if entry is None:
                raise HandoverError(
                    "nothing_pending",
                    f"slot {pending['slot_id']}: no return waits to be signed",
                )
            self.audit.append(
                kind,
                returned_by or "dock",
                pending["serial"],
                {
                    "entry": entry,
                    "custody": pending["custody_id"],
                    "slot": pending["slot_id"],
                    "custodian": pending["custodian"],
                    "returned_by": returned_by,
                    "how": how,
                    "by_custodian": by_custodian,
                },
            )
        self.audit.checkpoint()  # custody changes are signed at once
        return Signed(
            entry, pending["custody_id"], pending["serial"], pending["slot_id"],
            pending["custodian"], returned_by, how, by_custodian, at,
        )  # fmt: skip

    # ------------------------------------------------------------------ nobody signed
    def expire(self, now: float | None = None) -> list[Signed]:
        """Returns nobody signed for within the window, recorded as unsigned."""
        now = self._clock() if now is None else now
        out = []
        for pending in self.table.pending():
            if pending["due_at"] > now:
                continue
            try:
                out.append(self._register(pending, None, "none", None, AuditKind.HANDOVER_UNSIGNED))
            except HandoverError:
                continue  # signed meanwhile
        return out

    # ------------------------------------------------------------------ reading
    def of_custody(self, custody_id: int) -> dict[str, Any] | None:
        return self.table.of_custody(custody_id)
