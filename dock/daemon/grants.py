"""Grants not taken: a granted recorder left in its slot past ``grant_expiry_s`` expires,
and an officer may cancel their own grant (with their PIN or badge).

Either way the grant's custody is withdrawn (closed where it was granted, marked, never
a custody episode), the officer the grant wrote into the recorder is undone where the
dock can (the officer it named before is written back; the protocol has no request that
clears an officer, so a recorder that named no one before keeps naming this one until
its next check-out, and the audit entry says so), the withdrawal is audited
(``grant_expired`` by the dock, ``grant_cancelled`` by the officer) and signed at once,
and the slot's recorder is checked again before it is READY.

Apart from check-out so the decision path stays what it was; the sweep runs ``expire``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from dock.daemon.checkout import Checkout
from dock.daemon.model import Reason
from dock.daemon.parts import DockParts
from dock.daemon.slot_access import SlotAccess
from dock.daemon.slot_machine import SlotMachine
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NoAnswer,
    RecorderRefused,
)
from dock.domain import slot_state as sm
from dock.domain.audit_kinds import AuditKind
from dock.storage.store import Custody
from firmware_protocol.messages import MsgType

log = logging.getLogger("dock.daemon.grants")

_LINK_ERRORS = (LinkError, RecorderRefused, AuthenticationFailed)


@dataclass(frozen=True)
class Granted:
    """What a grant changed on its recorder, to undo it: whether the officer was written
    into it, and the officer it named before (None: no one)."""

    written: bool
    before: str | None


@dataclass(frozen=True)
class Withdrawal:
    """The answer to a cancel: withdrawn or refused, with the reasons (a refusal is an
    answer, as a refused check-out is)."""

    cancelled: bool
    slot: str | None
    device: str | None
    officer_id: str
    reasons: list[Reason]
    undone_on_device: bool | None = None
    not_undone_why: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cancelled": self.cancelled,
            "slot": self.slot,
            "device": self.device,
            "officer": self.officer_id,
            "undone_on_device": self.undone_on_device,
            "not_undone_why": self.not_undone_why,
            "reasons": [r.as_dict() for r in self.reasons],
        }


class Grants:
    """Grants waiting for their recorder to be taken: expiry and cancelling."""

    def __init__(
        self, parts: DockParts, access: SlotAccess, checkouts: Checkout, machine: SlotMachine
    ) -> None:
        self.parts = parts
        self.access = access
        self.checkouts = checkouts
        self.machine = machine
        self._granted: dict[int, Granted] = {}  # custody id -> what its grant changed
        self._lock = threading.Lock()  # one withdrawal at a time

    def granted(self, custody_id: int, written: bool, before: str | None) -> None:
        """Remember what a grant changed on its recorder (lost at a restart: then said)."""
        self._granted[custody_id] = Granted(written, before)

    def expire(self) -> list[Custody]:
        """Withdraw every grant older than ``grant_expiry_s`` whose recorder is still in
        its slot; the grants withdrawn. A grant's age is read on the clock that stamped
        it (the store's), so a clock that steps between the two cannot age it."""
        now = self.parts.store.clock()
        due = [
            c for c in self.parts.store.open_grants()
            if now - c.out_at >= self.parts.grant_expiry_s
        ]  # fmt: skip
        done = []
        for custody in due:
            if self._withdraw(custody, AuditKind.GRANT_EXPIRED, "dock") is not None:
                done.append(custody)
        return done

    def cancel(
        self, officer_id: str | None, pin: str | None, badge: str | None = None
    ) -> Withdrawal:
        """The officer (identified as for a check-out) cancels their grant not yet taken."""
        parts = self.parts
        officer, reasons = self.checkouts.identify(officer_id, pin, badge)
        who = officer.officer_id if officer else (officer_id or f"badge:{badge}")
        custody = None
        if officer is not None and not reasons:
            held = parts.store.open_custody_of_officer(officer.officer_id)
            grants = {c.id: c for c in parts.store.open_grants()}
            custody = grants.get(held.id) if held is not None else None
            if custody is None:
                reasons = [Reason("no_grant", parts.msg("no_grant"))]
        if custody is None:
            return Withdrawal(False, None, None, who, reasons)
        undone = self._withdraw(custody, AuditKind.GRANT_CANCELLED, who)
        if undone is None:  # taken (or withdrawn) meanwhile
            none = Reason("no_grant", parts.msg("no_grant"))
            return Withdrawal(False, None, None, who, [none])
        return Withdrawal(True, custody.slot_id, custody.serial, who, [], *undone)

    # ------------------------------------------------------------------ one grant
    def _withdraw(
        self, custody: Custody, kind: AuditKind, actor: str
    ) -> tuple[bool | None, str | None] | None:
        """Withdraw one grant whose recorder is still in its slot: (undone on the
        recorder, why not), or None when it is gone (taken: the sweep records that)."""
        with self._lock:
            slot, serial = custody.slot_id, custody.serial
            try:
                undone, why = self._undo_on_device(custody)
            except NoAnswer:
                return None  # the recorder has left: a take-away, not an expiry
            withdrawn = self.parts.store.withdraw_grant(
                custody.id, "expired" if kind == AuditKind.GRANT_EXPIRED else "cancelled"
            )
            if withdrawn is None:
                return None
            self._granted.pop(custody.id, None)
            data: dict[str, Any] = {
                "slot": slot,
                "custody": custody.id,
                "officer": custody.officer_id,
                "undone_on_device": undone,
            }
            if why is not None:
                data["why"] = why
            self.parts.audit.append(kind, actor, serial, data)
            self.parts.audit.checkpoint()  # custody changes are signed at once
            self.machine.feed(slot, sm.GrantWithdrawn())
            words = "grant_expired" if kind == AuditKind.GRANT_EXPIRED else "grant_cancelled"
            self.parts.show([self.parts.msg(words, slot=slot), serial])
            log.info("slot %s: grant of %s to %s %s", slot, serial, custody.officer_id, words)
            return undone, why

    def _undo_on_device(self, custody: Custody) -> tuple[bool | None, str | None]:
        """Write back the officer the recorder named before the grant: (True, None) when
        done, (None, None) when the grant wrote nothing, else (False, why). NoAnswer
        when the recorder is no longer in its slot (looked at in every case)."""
        granted = self._granted.get(custody.id)
        names = f"it names officer {custody.officer_id} until its next check-out"
        try:
            with self.access.session(custody.slot_id) as client:
                if client.identity is None or client.identity.serial != custody.serial:
                    raise NoAnswer("a different recorder is in the slot: the granted one left")
                if granted is not None and not granted.written:
                    return None, None
                if granted is None:
                    return False, (
                        "what the recorder named before this grant is not known (the dock "
                        f"restarted since): {names}"
                    )
                if granted.before == custody.officer_id:
                    return True, None
                if granted.before is None:
                    return False, (
                        "the recorder named no officer before and the protocol cannot clear "
                        f"one: {names}"
                    )
                before = self.parts.store.officer(granted.before)
                device = self.parts.store.device(custody.serial)
                if before is None or device is None:
                    return False, f"officer {granted.before}, named before, is unknown: {names}"
                client.authenticate(device.secret)
                why_not = client.why_not(MsgType.ASSIGN)
                if why_not is not None:
                    return False, f"{why_not}: {names}"
                client.assign(before.officer_id, before.name, before.unit)
        except NoAnswer:
            raise
        except _LINK_ERRORS as exc:
            return False, f"the recorder could not be written ({exc}): {names}"
        return True, None
