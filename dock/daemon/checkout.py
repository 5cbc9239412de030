"""Check-out: who is asking, which ready recorder they get, and the custody record.

Reads only what the last sweep (or a refresh) learnt of the slots, so a decision needs
no lock the maintenance jobs or other slots' work could hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dock.daemon.inspection import Inspection
from dock.daemon.model import HANDOUT_STATES, Decision, Override, Reason, SlotView
from dock.daemon.parts import DockParts
from dock.daemon.slot_access import SlotAccess
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    RecorderClient,
    RecorderRefused,
)
from dock.domain import slot_state as sm
from dock.domain.audit_kinds import AuditKind
from dock.storage import pins
from dock.storage.store import Officer, StoreError
from firmware_protocol.messages import ErrorCode, MsgType


class Checkout:
    """Identify officers and decide check-outs, with supervisors' overrides."""

    def __init__(
        self,
        parts: DockParts,
        access: SlotAccess,
        inspection: Inspection,
        sweep: Callable[[], object],
    ) -> None:
        self.parts = parts
        self.access = access
        self.inspection = inspection
        self._sweep = sweep

    def identify(
        self, officer_id: str | None, pin: str | None, badge: str | None
    ) -> tuple[Officer | None, list[Reason]]:
        parts = self.parts
        officer: Officer | None = None
        if badge:
            officer = parts.store.officer_by_badge(badge)
        elif officer_id is not None and pin is not None:
            check = pins.verify(parts.store, parts.audit, officer_id, pin, "checkout")
            if check.locked:
                return None, [parts.reason("pin_locked")]
            if not check.ok:  # a wrong PIN, or no such number: the same words
                wrong = parts.reason("officer_unknown", "pin_wrong", left=check.tries_left)
                return None, [wrong]
            officer = parts.store.officer(officer_id)
        if officer is None:
            return None, [parts.reason("officer_unknown")]
        if officer.disabled:
            return officer, [parts.reason("officer_disabled")]
        return officer, []

    def checkout(
        self,
        officer_id: str | None = None,
        pin: str | None = None,
        badge: str | None = None,
        override: Override | None = None,
        refresh: bool = True,
    ) -> Decision:
        """Pick a ready device for the officer, write the officer into it, record custody."""
        parts = self.parts
        officer, reasons = self.identify(officer_id, pin, badge)
        who = officer.officer_id if officer else (officer_id or f"badge:{badge}")
        if not reasons and officer is not None:
            held = parts.store.open_custody_of_officer(officer.officer_id)
            if held is not None:
                reasons = [parts.reason("officer_has_device", serial=held.serial)]
        if reasons:
            return self._refuse(who, reasons)
        assert officer is not None
        supervisor = None
        if override is not None:
            supervisor, problem = self._check_override(override)
            if problem is not None:
                return self._refuse(who, [problem])
        if refresh:
            self._sweep()
        views = self.inspection.views
        machine = self.inspection.machine
        busy = self.inspection.busy()
        candidates = sorted(
            (
                v
                for v in views.values()
                if v.snapshot is not None
                and parts.store.awaiting_takeaway(v.slot_id) is None
                and machine.state(v.slot_id) in HANDOUT_STATES
                and v.slot_id not in busy  # its recorder is busy: not now
            ),
            key=lambda v: -v.snapshot.battery_percent,  # type: ignore[union-attr]
        )
        # A recorder that cannot be re-assigned and still names another officer would
        # stamp that officer on this one's footage: never handed to this one.
        stale = [v for v in candidates if self._names_another(v, officer.officer_id)]
        candidates = [v for v in candidates if v not in stale]
        chosen = next((v for v in candidates if v.ready), None)
        if chosen is None and supervisor is not None:
            chosen = next((v for v in candidates if self._overridable(v)), None)
        if chosen is None:
            docked = [v for v in views.values() if v.snapshot is not None]
            reasons = self._why_none(docked)
            for v in stale:
                stated = v.status.officer_id if v.status else None
                reasons.append(self._officer_on_device(v.slot_id, stated))
            return self._refuse(who, reasons)
        return self._grant(officer, chosen, supervisor, override)

    @staticmethod
    def _names_another(view: SlotView, officer_id: str) -> bool:
        stated = view.status.officer_id if view.status is not None else None
        return view.assign_blocked is not None and stated not in (None, officer_id)

    @staticmethod
    def _officer_on_device(slot_id: str, stated: str | None) -> Reason:
        return Reason(
            "officer_on_device",
            f"{slot_id}: recorder names officer {stated} and cannot be re-assigned",
        )

    def _check_override(self, o: Override) -> tuple[Officer | None, Reason | None]:
        parts = self.parts
        if not parts.policy.supervisor_override_allowed:
            return None, parts.reason("override_not_allowed")
        check = pins.verify(parts.store, parts.audit, o.supervisor_id, o.supervisor_pin, "override")
        if check.locked:
            return None, parts.reason("override_pin_locked")
        sup = parts.store.officer(o.supervisor_id)
        if sup is None or sup.role != "supervisor" or sup.disabled or not check.ok:
            return None, parts.reason("override_refused")
        if len(o.reason.strip()) < 4:
            return None, parts.reason("override_reason_missing")
        return sup, None

    def _overridable(self, v: SlotView) -> bool:
        failed = {r.code for r in v.failures}
        return bool(failed) and not failed & set(self.parts.policy.never_overridable)

    def _why_none(self, candidates: list[SlotView]) -> list[Reason]:
        reasons = [self.parts.reason("no_device_ready")]
        seen: set[str] = set()
        for v in candidates:
            for r in v.failures:
                if r.code not in seen:
                    seen.add(r.code)
                    screen = r.message_in(self.parts.screen_locale)
                    reasons.append(
                        Reason(
                            r.code,
                            f"{v.slot_id}: {r.message}",
                            screen=f"{v.slot_id}: {screen}" if screen != r.message else None,
                        )
                    )
        return reasons

    def _grant(
        self,
        officer: Officer,
        view: SlotView,
        supervisor: Officer | None,
        override: Override | None,
    ) -> Decision:
        parts = self.parts
        serial = view.serial
        assert serial is not None
        try:
            with self.access.session(view.slot_id) as client:
                device = parts.store.device(serial)
                assert device is not None
                client.authenticate(device.secret)
                if client.identity is None or client.identity.serial != serial:
                    raise LinkError("a different recorder is now in the slot")
                not_assigned = self._assign(client, officer)
                stated = client.status().officer_id if not_assigned is not None else None
        except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
            return self._refuse(
                officer.officer_id, [Reason("device_unreachable", f"{view.slot_id}: {exc}")]
            )
        if stated not in (None, officer.officer_id):
            return self._refuse(officer.officer_id, [self._officer_on_device(view.slot_id, stated)])
        try:
            custody = parts.store.open_custody(
                serial,
                officer.officer_id,
                view.slot_id,
                override_by=supervisor.officer_id if supervisor else None,
                override_reason=override.reason if override else None,
            )
        except StoreError as exc:
            return self._refuse(officer.officer_id, [Reason("custody_conflict", str(exc))])
        data: dict[str, Any] = {
            "slot": view.slot_id,
            "custody": custody.id,
            "officer": officer.officer_id,
            "assigned_on_device": not_assigned is None,
        }
        if not_assigned is not None:
            data["why"] = not_assigned
        if supervisor is not None and override is not None:
            data |= {
                "override_by": supervisor.officer_id,
                "reason": override.reason,
                "overridden": [r.code for r in view.failures],
            }
            parts.audit.append(AuditKind.OVERRIDE, supervisor.officer_id, serial, data)
        parts.audit.append(AuditKind.CHECKOUT, officer.officer_id, serial, data)
        parts.audit.checkpoint()  # custody changes are signed at once
        self.inspection.machine.feed(view.slot_id, sm.CheckedOut(officer.officer_id))
        parts.show(self._grant_lines(officer, view.slot_id, serial, not_assigned is not None))
        return Decision(
            True,
            view.slot_id,
            serial,
            [],
            officer.officer_id,
            supervisor.officer_id if supervisor else None,
            assigned_on_device=not_assigned is None,
            not_assigned_why=not_assigned,
        )

    def _grant_lines(
        self, officer: Officer, slot_id: str, serial: str, not_assigned: bool
    ) -> list[str]:
        """The grant on the screen: the slot to take, who and which recorder. A name the
        screen cannot draw (Chinese on an HD44780) is given as the officer's number."""
        parts = self.parts
        who = officer.name
        if parts.screen_locale != parts.locale and not officer.name.isascii():
            who = officer.officer_id
        lines = [parts.screen_msg("take_slot", slot=slot_id), f"{who} {serial}"]
        return lines + ([parts.screen_msg("not_assigned")] if not_assigned else [])

    @staticmethod
    def _assign(client: RecorderClient, officer: Officer) -> str | None:
        """Write the officer into the recorder; why not, where it cannot take it (no
        ASSIGN, protocol version 1, or it answers UNSUPPORTED): the grant stands, the
        custody ledger names the officer (PROTOCOL.md 6.7). Other refusals raise."""
        why_not = client.why_not(MsgType.ASSIGN)
        if why_not is not None:
            return why_not
        try:
            client.assign(officer.officer_id, officer.name, officer.unit)
        except RecorderRefused as exc:
            if exc.code != ErrorCode.UNSUPPORTED:
                raise
            return f"recorder refused ASSIGN ({exc})"
        return None

    def _refuse(self, who: str, reasons: list[Reason]) -> Decision:
        self.parts.audit.append(
            AuditKind.CHECKOUT_REFUSED, who, "", {"reasons": [r.code for r in reasons]}
        )
        self.parts.show([r.screen or r.message for r in reasons[:4]])
        if self.parts.feedback.buzzer is not None:
            self.parts.feedback.buzzer.refuse()
        return Decision(False, None, None, reasons, who)
