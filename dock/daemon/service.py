"""The dock's service: inspect slots, check devices, check out, check in, enrol.

Everything a user can ask of the dock goes through here (the CLI, the daemon and,
later, the status page), so every custody change, check result, clock set and
enrolment is audited in one place. ``DockService`` is a thin facade: each job lives in
its own module (slot_access, inspection, checkout, offload_pool, maintenance), and the
one table of what is done for each state-machine action is built here.
"""

from __future__ import annotations

import logging
from typing import Any

from dock.daemon.badge_reads import BadgeReads
from dock.daemon.checkout import Checkout
from dock.daemon.grants import Grants, Withdrawal
from dock.daemon.handovers import Handovers
from dock.daemon.inspection import Inspection
from dock.daemon.maintenance import Maintenance, MaintenanceJob
from dock.daemon.model import (
    DECISION_MESSAGES,
    FRESH_STATES,
    HANDOUT_STATES,
    Decision,
    Override,
    Reason,
    SlotView,
)
from dock.daemon.offload_pool import OffloadPool, Progress
from dock.daemon.parts import DockParts
from dock.daemon.returns import Returns
from dock.daemon.slot_access import SlotAccess
from dock.daemon.slot_machine import Handler, SlotMachine
from dock.daemon.slot_tests import IndicatorTests, self_test
from dock.daemon.vendor_cameras import VendorBays, enrol_in_slot
from dock.domain import slot_state as sm
from dock.domain.audit_kinds import AuditKind
from dock.domain.interfaces import Buzzer, ClockSource, Screen, SlotIndicator
from dock.domain.policy import Policy
from dock.evidence.handovers import Signed
from dock.evidence.offload import Offloader, OffloadReport
from dock.storage.audit import AuditLog
from dock.storage.store import Officer, Store, StoreError

__all__ = [
    "DECISION_MESSAGES",
    "FRESH_STATES",
    "HANDOUT_STATES",
    "Decision",
    "DockService",
    "Override",
    "Reason",
    "SlotView",
]

log = logging.getLogger("dock.daemon.service")


#: The log level of each slot alert (common/logsetup.py says the rule): WARNING for what
#: needs a person; a refusal or a re-docking is the dock working (INFO).
ALERT_LEVELS: dict[str, int] = {
    "checkout_refused": logging.INFO,
    "checkout_revoked": logging.INFO,
    "slot_redock": logging.INFO,
    "state_machine_error": logging.ERROR,
}


def decision_line(decision: Decision) -> str:
    """A check-out decision in one log line: granted with slot and recorder, or refused
    with every reason."""
    who = f"officer {decision.officer_id}"
    if decision.granted:
        by = f" (override by {decision.override_by})" if decision.override_by else ""
        return f"check-out granted: {who} takes slot {decision.slot} ({decision.device}){by}"
    reasons = "; ".join(f"[{r.code}] {r.message}" for r in decision.reasons) or "no reason"
    return f"check-out refused: {who}: {reasons}"


class DockService:
    """The dock's public API, composed of its parts; see the module docstring."""

    def __init__(self, parts: DockParts, offload_concurrency: int = 1) -> None:
        self.parts = parts
        self.access = SlotAccess(parts.slots)
        self.access.vendor = VendorBays(parts)
        self.inspection = Inspection(parts, self.access, self._is_offloading, self.taken)
        self.offloads = OffloadPool(
            parts,
            self.access,
            self.inspection.views,
            changed=self._footage_changed,
            run=lambda slot_id: self.offload(slot_id),  # what callers see as .offload
            concurrency=offload_concurrency,
        )
        self.machine = SlotMachine(parts.slots.ports, self.action_handlers())
        self.inspection.machine = self.offloads.machine = self.machine
        self.checkouts = Checkout(parts, self.access, self.inspection, self.sweep)
        self.grants = Grants(parts, self.access, self.checkouts, self.machine)
        self.returns = Returns(parts)
        self.offloads.nothing_to_offload = self.returns.nothing_to_offload
        self.handovers = Handovers(parts)
        self.badges = BadgeReads(
            parts, lambda badge: self.checkout(badge=badge, refresh=False), self.handovers.badge
        )
        self.maintenance = Maintenance(parts)
        self.indicator_tests = IndicatorTests(parts, self.machine)

    def action_handlers(self) -> dict[type, Handler]:
        """What the daemon does for each action the slot state machine returns."""
        return {
            sm.ShowLed: lambda slot_id, a: self.parts.led(slot_id, a.pattern),
            sm.Buzz: self._buzz,
            sm.Alert: lambda slot_id, a: log.log(
                ALERT_LEVELS.get(a.code, logging.WARNING),
                "slot %s: %s (%s)",
                slot_id,
                a.code,
                a.detail,
            ),
            sm.QueueOffload: self.offloads.queue_offload,
            sm.CloseCustody: self._close_custody,
            sm.RunChecks: self.inspection.run_checks,
        }

    def _buzz(self, slot_id: str, action: sm.Buzz) -> None:
        buzzer = self.parts.feedback.buzzer
        if buzzer is None:
            return
        if action.kind == "ack":
            buzzer.acknowledge()
        else:
            buzzer.refuse()

    def _close_custody(self, slot_id: str, action: sm.CloseCustody) -> None:
        """The recorder is back: custody closed (inspection), then the handover asked for
        (001 art.19(3)); the offload queued after it never waits for the signature."""
        held = self.parts.store.open_custody_of_device(action.serial)
        try:
            self.inspection.close_custody(slot_id, action)
        finally:  # custody closed: the handover is asked for even if reading gaps failed
            closed = None if held is None else self.parts.store.custody(held.id)
            if closed is not None and closed.in_at is not None:
                try:
                    self.handovers.docked(slot_id, closed)
                except Exception:  # footage first: the offload that follows still runs
                    log.exception("slot %s: handover of %s not asked for", slot_id, closed.serial)

    def _is_offloading(self, slot_id: str) -> bool:
        return self.offloads.is_running(slot_id)

    def _footage_changed(self, slot_id: str) -> None:
        self.inspection.full_at.pop(slot_id, None)  # look again in full

    # ------------------------------------------------------------------ slots
    def inspect(self, slot_id: str) -> SlotView:
        """Identify, authenticate, set the clock, self-test and check one slot."""
        return self.inspection.inspect(slot_id)

    def sweep(self) -> list[SlotView]:
        """Inspect every slot on the sweep workers (see Inspection.sweep); then
        withdraw the grants not taken in time."""
        views = self.inspection.sweep()
        self.grants.expire()
        self.handovers.expire()  # returns nobody signed for in time: recorded unsigned
        return views

    def busy_slots(self) -> set[str]:
        """Slots whose inspection (or offload) is still running."""
        return self.inspection.busy() | self.offloads.busy()

    def taken(self, slot_id: str) -> None:
        """The granted device left its slot: from now on, docking it is a return."""
        self.parts.store.mark_taken(slot_id)
        self._footage_changed(slot_id)
        self.machine.feed(slot_id, sm.Undocked())

    def self_test(self, slot_id: str) -> dict[str, Any] | None:
        """Maintenance's "self-test now": a full inspection of one slot at once (see
        dock.daemon.slot_tests); None when the slot is busy."""
        return self_test(self.inspection, slot_id)

    def indicator_test(self, slot_id: str) -> dict[str, Any] | None:
        """Show the slot's LED patterns in turn, beep, a test line on the screen; None
        when a test of that slot is running."""
        return self.indicator_tests.start(slot_id)

    # ------------------------------------------------------------------ check-out
    def identify(
        self, officer_id: str | None, pin: str | None, badge: str | None
    ) -> tuple[Officer | None, list[Reason]]:
        return self.checkouts.identify(officer_id, pin, badge)

    def checkout(
        self,
        officer_id: str | None = None,
        pin: str | None = None,
        badge: str | None = None,
        override: Override | None = None,
        refresh: bool = True,
    ) -> Decision:
        """Pick a ready device for the officer, write the officer into it, record custody."""
        decision = self.checkouts.checkout(officer_id, pin, badge, override, refresh)
        log.info("%s", decision_line(decision))
        if decision.granted and decision.slot is not None:
            # What the recorder named before, from the reading the decision was made on:
            # written back if the grant expires or is cancelled.
            status = self.views[decision.slot].status
            custody = self.store.open_custody_of_officer(decision.officer_id)
            if custody is not None:
                before = status.officer_id if status is not None else None
                self.grants.granted(custody.id, bool(decision.assigned_on_device), before)
        return decision

    def badge_read(self, badge: str) -> Decision | Signed:
        """A badge from the dock's own reader (``dock run``'s badge thread): the handover
        of a waiting return it signs (dock/daemon/handovers.py), else a check-out decided
        on the last sweep; kept a short while for the kiosk (dock/daemon/badge_reads.py)."""
        return self.badges.read(badge)

    def sign_handover(self, slot_id: str, officer_id: str, pin: str) -> dict[str, Any]:
        """Whoever returned the recorder in ``slot_id`` signs for it with number and PIN
        (dock/daemon/handovers.py): the register's entry, or why not."""
        return self.handovers.sign_pin(slot_id, officer_id, pin)

    def arm_handover(self, slot_id: str) -> dict[str, Any]:
        """The next badge read signs the return waiting in ``slot_id`` (the kiosk)."""
        return self.handovers.arm(slot_id)

    def cancel_grant(
        self, officer_id: str | None = None, pin: str | None = None, badge: str | None = None
    ) -> Withdrawal:
        """The officer cancels their own grant not yet taken (dock/daemon/grants.py)."""
        return self.grants.cancel(officer_id, pin, badge)

    # ------------------------------------------------------------------ offload
    def offload(self, slot_id: str, progress: Progress | None = None) -> OffloadReport | None:
        """Offload, verify and erase every recording on the recorder in ``slot_id``."""
        serial = self.views[slot_id].serial
        report = None
        try:
            report = self.offloads.offload(slot_id, self.returns.start(slot_id, serial, progress))
        finally:
            self.returns.finished(slot_id, report)
        return report

    def wait_offloads(self, timeout: float = 600.0) -> None:
        """Block until every queued and running offload has finished (bounded)."""
        self.offloads.wait(timeout)

    # ------------------------------------------------------------------ maintenance
    def housekeeping(self, now: float) -> None:
        """Every maintenance job once, in this thread (tests, the command line): finish
        seals and purges, raise offload deadlines, sample fixity once a day, remove expired
        working copies, one replication turn (and local copies freed after it)."""
        self.maintenance.run_all(now)

    def start_maintenance(self, seals_every_s: float = 5.0) -> list[MaintenanceJob]:
        """The maintenance jobs in their own threads, off the check-out path."""
        return self.maintenance.start(seals_every_s)

    def stop_maintenance(self, timeout: float = 60.0) -> list[str]:
        """Stop the maintenance threads (bounded); names of any still running."""
        return self.maintenance.stop(timeout)

    # ------------------------------------------------------------------ enrolment
    def enrol(self, slot_id: str, actor: str) -> str:
        """Agree a secret with the recorder in ``slot_id`` and remember it.

        Atomic from both sides: the dock writes the agreed secret down (pending)
        before it authenticates with it, and the recorder commits it only on that
        authentication; a failure or a kill anywhere leaves a state the next
        ``enrol`` completes or starts over from.
        """
        store = self.parts.store
        with self.access.session(slot_id) as client:
            ident = client.identity
            assert ident is not None
            if store.device(ident.serial) is not None:
                raise StoreError(f"device {ident.serial} is already enrolled")
            pending = store.pending_secret(ident.serial)
            if ident.enrolled and pending is not None:
                # An earlier enrol got as far as the recorder committing: finish it.
                client.authenticate(pending)
            else:
                secret = client.enrol()
                store.keep_pending_secret(ident.serial, secret)
                client.authenticate(secret)  # the recorder commits it now
            store.commit_pending_secret(ident.serial, ident.model, ident.firmware)
        data = {"slot": slot_id, "model": ident.model}
        self.parts.audit.append(AuditKind.ENROL, actor, ident.serial, data)
        return ident.serial

    def enrol_vendor(self, slot_id: str, actor: str, password: str, model: str) -> str:
        """Enrol the camera of the vendor command set in ``slot_id`` with its password
        (dock/daemon/vendor_cameras.py)."""
        return enrol_in_slot(self.parts, slot_id, actor, password, model)

    # ------------------------------------------------------------------ what callers read
    # The collaborators live in ``parts``; these read (and, for tests, replace) them.
    @property
    def dock_id(self) -> str:
        return self.parts.dock_id

    @property
    def store(self) -> Store:
        return self.parts.store

    @property
    def audit(self) -> AuditLog:
        return self.parts.audit

    @property
    def policy(self) -> Policy:
        return self.parts.policy

    @property
    def clock(self) -> ClockSource:
        return self.parts.clock

    @clock.setter
    def clock(self, clock: ClockSource) -> None:
        self.parts.clock = clock

    @property
    def offloader(self) -> Offloader | None:
        return self.parts.offloader

    @offloader.setter
    def offloader(self, offloader: Offloader | None) -> None:
        self.parts.offloader = offloader

    @property
    def locale(self) -> str:
        return self.parts.feedback.locale

    @locale.setter
    def locale(self, locale: str) -> None:
        self.parts.feedback.locale = locale

    @property
    def timezone(self) -> str:
        return self.parts.timezone

    @property
    def min_pin_length(self) -> int:
        return self.parts.min_pin_length

    @property
    def indicators(self) -> dict[str, SlotIndicator]:
        return self.parts.feedback.indicators

    @property
    def screen(self) -> Screen | None:
        return self.parts.feedback.screen

    @property
    def buzzer(self) -> Buzzer | None:
        return self.parts.feedback.buzzer

    @property
    def views(self) -> dict[str, SlotView]:
        return self.inspection.views

    @property
    def slot_status(self) -> dict[str, sm.SlotStatus]:
        return self.machine.status

    @property
    def offload_progress(self) -> dict[str, dict[str, Any]]:
        """Each running offload's progress: the pool's, with the offload as a whole."""
        out = {}
        for slot_id, one in list(self.offloads.progress.items()):
            out[slot_id] = {**one, **(self.returns.progress(slot_id) or {})}
        return out

    @property
    def offload_outcomes(self) -> dict[str, dict[str, Any]]:
        """Each slot's last offload: recordings verified, failed, the returning officer."""
        return dict(self.returns.last)

    @property
    def badge_decision(self) -> dict[str, Any] | None:
        """The latest decision for a badge read at the dock, while fresh (else None)."""
        return self.badges.latest()

    @property
    def grant_expiry_s(self) -> float:
        return self.parts.grant_expiry_s

    @property
    def offload_concurrency(self) -> int:
        return self.offloads.concurrency

    @offload_concurrency.setter
    def offload_concurrency(self, n: int) -> None:
        self.offloads.concurrency = n
