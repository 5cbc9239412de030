"""Badges read by the dock's own reader: each is decided as a check-out, and the latest
decision is kept a short while so the kiosk on the dock's screen can show it in large
type, as it shows a decision made on its keypad.

Kept in memory only, and only while fresh (:data:`BADGE_DECISION_S` on the daemon's
clock): a later visitor to the screen does not see an earlier officer's decision. What is
kept is what the screen shows: the time, the officer's number and name (none for a badge
that names no one; the badge itself is never kept), the slot and recorder of a grant, or
the reasons (codes and the dock's words) of a refusal. A badge read carries no PIN.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dock.daemon.model import Decision
from dock.daemon.parts import DockParts
from dock.devices.clock import utc_iso
from dock.evidence.handovers import Signed

#: How long a badge decision stays news: the kiosk's DECISION_MS (web_status/static/kiosk.js)
#: shows a keypad decision this long (tests/test_web_kiosk.py holds the two equal).
BADGE_DECISION_S = 20.0


class BadgeReads:
    """Decide a badge read at the dock, and remember the latest decision while fresh."""

    def __init__(
        self,
        parts: DockParts,
        decide: Callable[[str], Decision],
        handover: Callable[[str], Signed | None] | None = None,
    ) -> None:
        self.parts = parts
        self._decide = decide
        #: A badge that signs a waiting return (dock/daemon/handovers.py) is no check-out.
        self._handover = handover
        self._lock = threading.Lock()
        self._seq = 0
        self._last: dict[str, Any] | None = None
        self._at: float | None = None

    def read(self, badge: str) -> Decision | Signed:
        """A badge from the reader: the handover it signs, else the check-out decision;
        either kept for the kiosk."""
        signed = self._handover(badge) if self._handover is not None else None
        if signed is not None:
            self._keep_handover(signed)
            return signed
        decision = self._decide(badge)
        store = self.parts.store
        officer = store.officer(decision.officer_id)  # none for a badge naming no one
        at = self.parts.clock.now()
        with self._lock:
            self._seq += 1
            self._at = at
            self._last = {
                "id": self._seq,
                "at_utc": utc_iso(at),
                "expires_utc": utc_iso(at + BADGE_DECISION_S),
                "granted": decision.granted,
                "officer": officer.officer_id if officer else None,
                "officer_name": officer.name if officer else None,
                "slot": decision.slot,
                "device": decision.device,
                "assigned_on_device": decision.assigned_on_device,
                "reasons": [r.as_dict() for r in decision.reasons],
            }
        return decision

    def _keep_handover(self, signed: Signed) -> None:
        store = self.parts.store
        officer = store.officer(signed.returned_by) if signed.returned_by else None
        custodian = store.officer(signed.custodian)
        at = self.parts.clock.now()
        with self._lock:
            self._seq += 1
            self._at = at
            self._last = {
                "id": self._seq,
                "at_utc": utc_iso(at),
                "expires_utc": utc_iso(at + BADGE_DECISION_S),
                "officer": signed.returned_by,
                "officer_name": officer.name if officer else None,
                "handover": {
                    **signed.as_dict(),
                    "custodian_name": custodian.name if custodian else None,
                },
            }

    def latest(self) -> dict[str, Any] | None:
        """The latest badge decision while it is fresh on the daemon's clock, else None
        (and then forgotten)."""
        now = self.parts.clock.now()
        with self._lock:
            if self._last is None or self._at is None:
                return None
            if not 0 <= now - self._at < BADGE_DECISION_S:
                self._last = self._at = None
                return None
            return dict(self._last)
