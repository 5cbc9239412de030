"""The handover on return at the dock (001 art.19(3); 003 art.21(2)): a docking that
closes custody asks whoever returned the recorder to sign for it, by badge at the dock's
reader or by officer number and PIN (at the kiosk, or ``dock handover``), within the
register's window; :mod:`dock.evidence.handovers` records the outcome.

A badge read while a return waits signs it when the badge's officer is that recorder's
custodian, or when the kiosk armed the reader for that slot (someone else returning it
pressed "sign with badge" first); any other badge is a check-out as before. Nothing here
ever holds up an offload: the register is written beside it, never in front of it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dock.daemon.parts import DockParts
from dock.devices.clock import utc_iso
from dock.evidence.handovers import HandoverError, HandoverRegister, Signed
from dock.storage.store import Custody

log = logging.getLogger("dock.daemon.handovers")

#: How long the kiosk's "sign with badge" keeps the reader for one slot (seconds).
ARM_S = 20.0


class Handovers:
    """Pending returns at the dock: signed by badge or PIN, or recorded unsigned."""

    def __init__(self, parts: DockParts) -> None:
        self.parts = parts
        self._lock = threading.Lock()
        self._armed: tuple[str, float] | None = None  # (slot, until) on the daemon's clock

    @property
    def register(self) -> HandoverRegister:
        parts = self.parts
        return HandoverRegister(parts.store, parts.audit, window_s=parts.handover_window_s)

    def docked(self, slot_id: str, closed: Custody | None) -> None:
        """A docking closed ``closed``: ask for the handover on the screen."""
        if closed is None:
            return
        if self.register.awaiting(closed, slot_id):
            self.parts.show([self.parts.screen_msg("handover_sign", slot=slot_id), closed.serial])

    # ------------------------------------------------------------------ signing
    def badge(self, badge: str) -> Signed | None:
        """A badge read at the dock signs a waiting return (its custodian's, or the slot
        the kiosk armed); None when it signs nothing (it is then a check-out)."""
        store = self.parts.store
        officer = store.officer_by_badge(badge)
        if officer is None or officer.disabled:
            return None
        register = self.register
        pending = None
        slot = self._take_armed()
        if slot is not None:
            pending = register.pending_in(slot)
        if pending is None:
            pending = register.pending_of(officer.officer_id)
        if pending is None:
            return None
        try:
            signed = register.sign_with_badge(pending, officer)
        except HandoverError as exc:
            log.info("badge signs no handover: %s", exc)
            return None
        self._done(signed)
        return signed

    def sign_pin(self, slot_id: str, officer_id: str, pin: str) -> dict[str, Any]:
        """Number and PIN given for the return in ``slot_id``: what the kiosk shows."""
        if slot_id not in self.parts.slots.ports:
            return {"signed": False, "code": "no_slot", "message": f"no slot {slot_id!r}"}
        try:
            signed = self.register.sign_with_pin(slot_id, officer_id, pin)
        except HandoverError as exc:
            return {
                "signed": False,
                "code": exc.code,
                "message": str(exc),
                "tries_left": exc.tries_left,
            }
        self._done(signed)
        return self.worded(signed)

    def arm(self, slot_id: str) -> dict[str, Any]:
        """The kiosk's "sign with badge" for ``slot_id``: the next badge read within
        ARM_S signs that return, whoever's badge it is."""
        if self.register.pending_in(slot_id) is None:
            return {"armed": False, "code": "nothing_pending", "slot": slot_id}
        now = self.parts.clock.now()
        with self._lock:
            self._armed = (slot_id, now + ARM_S)
        return {"armed": True, "slot": slot_id, "seconds": ARM_S}

    def _take_armed(self) -> str | None:
        now = self.parts.clock.now()
        with self._lock:
            armed, self._armed = self._armed, None
        if armed is None or now >= armed[1]:
            return None
        return armed[0]

    def _done(self, signed: Signed) -> None:
        parts = self.parts
        lines = [parts.screen_msg("handover_signed", slot=signed.slot)]
        if not signed.by_custodian:
            lines.append(parts.screen_msg("handover_by_other"))
        parts.show(lines)
        buzzer = parts.feedback.buzzer
        if buzzer is not None:
            buzzer.acknowledge()

    def worded(self, signed: Signed) -> dict[str, Any]:
        """A signed handover with the names of who returned it and whose it was."""
        store = self.parts.store
        by = store.officer(signed.returned_by) if signed.returned_by else None
        custodian = store.officer(signed.custodian)
        return {
            "signed": True,
            **signed.as_dict(),
            "returned_by_name": by.name if by else None,
            "custodian_name": custodian.name if custodian else None,
            "at_utc": utc_iso(signed.at),
        }

    # ------------------------------------------------------------------ nobody signed
    def expire(self) -> list[Signed]:
        """Returns whose window passed unsigned, recorded as such (each sweep)."""
        try:
            return self.register.expire()
        except Exception:  # the register never stops a sweep (an offload may follow)
            log.exception("handovers not expired this sweep")
            return []
