"""Looking at the slots: identify, authenticate, set the clock, self-test, check.

Also carries out two of the state machine's actions: CloseCustody (a returned
recorder's own identity closes its custody, and its event log is read for gaps in
recording) and RunChecks (the verdict of the checks, from a reading taken since the
recorder's footage last changed).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from dock.daemon.clock_setting import ClockSetting
from dock.daemon.model import FRESH_STATES, SlotView
from dock.daemon.parts import DockParts
from dock.daemon.slot_access import SlotAccess
from dock.daemon.slot_machine import SlotMachine
from dock.daemon.sweep_workers import SweepWorkers
from dock.devices.guarantees import guarantees_of
from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NoAnswer,
    NoReply,
    ProtocolViolation,
    RecorderClient,
    RecorderRefused,
    RecordingInfo,
    Stalled,
    Status,
)
from dock.domain import slot_state as sm
from dock.domain.audit_kinds import AuditKind
from dock.domain.checks import run_checks
from dock.domain.snapshot import DeviceSnapshot
from dock.services.device_care import due_at, local_date
from dock.storage.maintenance_tables import SlotErrorTable
from firmware_protocol.messages import Capability, MsgType

log = logging.getLogger("dock.daemon.service")

#: A docked recorder is fully inspected (authenticated, clock set, self-tested,
#: footage listed) at least this often; sweeps in between only read its STATUS.
FULL_INSPECTION_EVERY_S = 60.0

#: Longest a sweep waits for its slowest slot. Slots are inspected on a few kept
#: worker threads (dock/daemon/sweep_workers.py), and a slot waiting behind a slow one
#: is handed a worker of its own, so a slow or hostile recorder delays only its own
#: slot; a sweep returns after this at the latest, with the other slots decided, while
#: the slow one goes on (each of its exchanges bounded by the client) and later sweeps
#: pass it by until it is done. Offloads run inside an inspection when
#: offload_concurrency is 1.
SWEEP_WAIT_S = 60.0

#: Status history is written on change, and at least this often while docked.
STATUS_EVERY_S = 300.0

_LINK_ERRORS = (LinkError, RecorderRefused, AuthenticationFailed)


def overdue_since(device: Any, policy: Any, now: float, tz: str) -> str | None:
    """The local date a recorder's maintenance fell due, once ``now`` has reached it
    (000 §14.1; 002 art.22); None when none is due or it is not due yet."""
    due = due_at(device, policy)
    if due is None or now < due:
        return None
    return local_date(due, tz)


class Inspection:
    """Per-slot views of what is docked, kept up to date by sweeps."""

    def __init__(
        self,
        parts: DockParts,
        access: SlotAccess,
        offloading: Callable[[str], bool],
        taken: Callable[[str], None],
    ) -> None:
        self.parts = parts
        self.access = access
        self.machine: SlotMachine  # set by the service once the action table is built
        self._offloading = offloading
        self._taken = taken
        self.views = {sid: SlotView(sid, port) for sid, port in parts.slots.ports.items()}
        self._workers = SweepWorkers(self._inspect_one, len(self.views))
        self.inspecting: set[str] = set()  # slots being inspected (or queued for it)
        self._lock = threading.Lock()
        self.full_at: dict[str, tuple[str, float]] = {}  # slot -> (serial, time)
        self.clocks = ClockSetting(parts)
        self._last_outcome: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._last_status: dict[str, tuple[tuple[Any, ...], float]] = {}
        #: slot -> (what run_checks was given, its results) of the last light poll: the
        #: checks are pure, and re-wording twelve messages per slot per sweep was CPU.
        self._last_checks: dict[str, tuple[tuple[Any, ...], list[Any]]] = {}
        self._sweep_devices: dict[str, Any] | None = None

    # ------------------------------------------------------------------ sweeps
    def sweep(self) -> list[SlotView]:
        """Inspect every slot on the sweep workers: a failure or a slow recorder in one
        slot never stops nor delays the others. Waits for them SWEEP_WAIT_S at most; a
        slot still being inspected from an earlier sweep is passed by."""
        with self._lock:
            todo = [sid for sid in self.views if sid not in self.inspecting]
            self.inspecting.update(todo)
        # the enrolled devices' rows in one read for the sweep's light polls (their
        # flags may change while docked), not one read per slot
        try:
            rows = self.parts.store.devices() if todo else []
            self._sweep_devices = {d.serial: d for d in rows}
        except Exception:  # a locked or failing database: each slot reads (and fails) alone
            log.exception("devices not read for the sweep")
            self._sweep_devices = None
        try:
            self._workers.run(todo, SWEEP_WAIT_S)
        finally:
            self._sweep_devices = None
        return [self.views[sid] for sid in self.views]

    def _inspect_one(self, slot_id: str) -> None:
        try:
            self.inspect(slot_id)
        except Exception as exc:  # a bug or a disk error: this slot is faulty
            log.exception("slot %s: inspection failed", slot_id)
            self.machine.feed(slot_id, sm.Fault(f"{type(exc).__name__}: {exc}"))
        finally:
            with self._lock:
                self.inspecting.discard(slot_id)

    def busy(self) -> set[str]:
        with self._lock:
            return set(self.inspecting)

    def inspect_now(self, slot_id: str) -> SlotView | None:
        """A full inspection of one slot at once (maintenance's "self-test now"), as a
        sweep would make it; None when the slot is being inspected or offloaded."""
        with self._lock:
            if slot_id in self.inspecting or self._offloading(slot_id):
                return None
            self.inspecting.add(slot_id)
        try:
            self.full_at.pop(slot_id, None)  # no light poll: identify, self-test, check
            self._inspect_one(slot_id)
            return self.views[slot_id]
        finally:
            with self._lock:
                self.inspecting.discard(slot_id)

    # ------------------------------------------------------------------ one slot
    def inspect(self, slot_id: str) -> SlotView:
        """Identify, authenticate, set the clock, self-test and check one slot."""
        if self._offloading(slot_id):
            return self.views[slot_id]  # busy offloading: looked at again afterwards
        return self.read(slot_id)

    def read(self, slot_id: str) -> SlotView:
        """Read the slot's recorder and feed the slot's machine what was found."""
        view = self.views[slot_id]
        feed = self.machine.feed
        try:
            with self.access.session(slot_id) as client:
                in_custody = self._inspect_with(view, client)
        except _LINK_ERRORS as exc:
            empty = isinstance(exc, NoAnswer)
            view.serial = view.snapshot = view.status = None
            view.results = []
            view.error = None if empty else str(exc)
            if empty:
                if self.machine.state(slot_id) is not sm.SlotState.EMPTY:
                    self._taken(slot_id)
            else:
                self._count_error(slot_id, exc)
                if self.machine.state(slot_id) is sm.SlotState.EMPTY:
                    feed(slot_id, sm.Docked())
                feed(slot_id, sm.Fault(str(exc)))
            return view
        serial = view.serial
        assert serial is not None and view.snapshot is not None
        status = self.machine.status[slot_id]
        if status.state is sm.SlotState.EMPTY:
            feed(slot_id, sm.Docked())
        elif status.serial not in (None, serial):
            feed(slot_id, sm.Undocked(), sm.Docked())  # another recorder, unseen swap
        if self.machine.state(slot_id) is sm.SlotState.FAULT:
            feed(slot_id, sm.FaultCleared())
        if self.machine.state(slot_id) is sm.SlotState.IDENTIFYING:
            snap = view.snapshot
            work = snap.recordings_pending + view.erasures_owed
            # CloseCustody, QueueOffload and RunChecks are carried out right here.
            feed(slot_id, sm.Identified(serial, snap.enrolled, in_custody, work))
        self._verdict(slot_id)  # the periodic re-check: a READY device can fail one
        if self.machine.state(slot_id) is sm.SlotState.READY:
            store = self.parts.store
            granted = store.open_custody_of_device(serial)
            if granted is not None and store.awaiting_takeaway(slot_id) == serial:
                # granted by another process (the command line): show it here too
                feed(slot_id, sm.CheckedOut(granted.officer_id))
        return view

    def _count_error(self, slot_id: str, exc: Exception) -> None:
        """Count the slot's link failure by kind (maintenance's per-slot counters: a bad
        contact shows as one slot with many); a full disk must not stop the sweep."""
        if isinstance(exc, AuthenticationFailed):
            kind = "auth"
        elif isinstance(exc, RecorderRefused):
            kind = "refused"
        elif isinstance(exc, Stalled | NoReply | TimeoutError):
            kind = "timeout"
        elif isinstance(exc, ProtocolViolation):
            kind = "protocol"
        else:
            kind = "link"
        try:
            SlotErrorTable(self.parts.store).count(slot_id, kind, self.parts.clock.now(), str(exc))
        except Exception:  # the counters are a help, never a reason to fail the slot
            log.exception("slot %s: link error not counted", slot_id)

    def _verdict(self, slot_id: str) -> None:
        view = self.views[slot_id]
        if view.ready:
            self.machine.feed(slot_id, sm.ChecksPassed())
        else:
            codes = tuple(r.code for r in view.failures)
            self.machine.feed(slot_id, sm.ChecksFailed(codes))

    # ------------------------------------------------------------------ actions
    def run_checks(self, slot_id: str, action: sm.RunChecks) -> None:
        """RunChecks: judge the recorder from a full reading taken since its footage last
        changed; after an offload there is none, so it is read again now, and the slot
        turns READY (or says what fails) at once instead of at the next sweep."""
        full = self.full_at.get(slot_id)
        if full is not None and full[0] == action.serial == self.views[slot_id].serial:
            self._verdict(slot_id)
        else:
            self.read(slot_id)  # ends with the verdict

    def close_custody(self, slot_id: str, action: sm.CloseCustody) -> None:
        """CloseCustody: a device that was out with an officer is back; its own identity
        closes custody, and its event log is read for gaps in recording during the
        episode (before anything is offloaded and erased)."""
        serial = action.serial
        parts = self.parts
        closed = parts.store.close_custody(serial, slot_id)
        if closed is None:
            return  # closed meanwhile (another process): nothing to record twice
        data = {"officer": closed.officer_id, "slot": slot_id, "custody": closed.id}
        parts.audit.append(AuditKind.CHECKIN, "dock", serial, data)
        parts.audit.checkpoint()  # custody changes are signed at once
        from dock.evidence.gaps import GapError, scan_episode

        try:
            with self.access.session(slot_id) as client:
                device = parts.store.device(serial)
                if device is None or client.identity is None or client.identity.serial != serial:
                    raise LinkError("a different recorder is now in the slot")
                client.authenticate(device.secret)
                opened = scan_episode(
                    client, parts.store, parts.audit, serial, closed,
                    report_manual_stops=parts.policy.explain_manual_stops,
                    continuity_tolerance_s=parts.policy.continuity_tolerance_s,
                )  # fmt: skip
        except (GapError, *_LINK_ERRORS) as exc:
            log.warning("slot %s: gaps not read: %s", slot_id, exc)
            return
        if opened:
            parts.show([parts.screen_msg("gaps_opened", n=opened), serial])

    # ------------------------------------------------------------------ reading
    def _inspect_with(self, view: SlotView, client: RecorderClient) -> bool:
        """Fill ``view`` from the recorder; True if it is back from an officer (the
        custody ledger has it out, and it was not just granted from this slot)."""
        ident = client.identity
        assert ident is not None
        if self._light_poll_enough(view, ident.serial):
            self._light_poll(view, client)
            return False
        parts = self.parts
        device = parts.store.device(ident.serial)
        enrolled = False
        if device is not None:
            client.authenticate(device.secret)
            enrolled = True
            if device.firmware != ident.firmware:
                parts.store.update_firmware(ident.serial, ident.firmware)
        status = client.status()
        trusted, why = parts.clock.synchronised()
        drift_before: float | None = status.clock_offset_s
        offset_after: float | None = None
        not_set: str | None = None
        vouched = getattr(client, "vouched", None)  # a vendor camera's, at docking
        if not getattr(client, "clock_readable", True):  # a mass-storage camera
            not_set = getattr(client, "clock_unread", "the recorder states no clock")
            drift_before = None
        elif vouched is not None:  # set (audited) or read by the vendor command set
            offset_after, drift_before = status.clock_offset_s, None
            not_set = None if vouched.clock == "set" else "read at docking, not set"
        elif enrolled and trusted:
            offset_after, not_set = self.clocks.settle(
                view.slot_id, ident.serial, client, why, status.clock_offset_s
            )
        self_test: bool | None = None
        if client.has(Capability.SELF_TEST):
            self_test = bool(client.self_test()["passed"])
        recordings = client.list_recordings()
        pending = sum(1 for r in recordings if not self._archived(ident.serial, r))
        pending += len(recordings.refused)  # still on the device, never offloadable as is
        view.erasures_owed = self._erasures_owed(client, ident.serial, recordings)
        view.assign_blocked = client.why_not(MsgType.ASSIGN)
        view.guarantees = guarantees_of(client)
        view.serial = ident.serial
        view.status = status
        view.error = None
        view.snapshot = DeviceSnapshot(
            serial=ident.serial,
            firmware=ident.firmware,
            battery_percent=status.battery_percent,
            battery_health_percent=status.battery_health_percent,
            storage_free_bytes=status.storage_free_bytes,
            clock_offset_after_sync_s=offset_after,
            clock_not_set_reason=not_set,
            recordings_pending=pending,
            fault_flags=status.fault_flags,
            self_test_passed=self_test,
            enrolled=enrolled,
            reported_lost=bool(device and device.lost),
            maintenance_flag=bool(device and device.maintenance),
            maintenance_overdue_since=overdue_since(
                device, parts.policy, parts.clock.now(), parts.timezone
            ),
        )
        view.results = run_checks(view.snapshot, parts.policy, (trusted, why), parts.locale)
        self.full_at[view.slot_id] = (ident.serial, parts.clock.now())
        self._record_status(view, status, drift_before, offset_after)
        self._audit_outcome(view)
        if not enrolled or parts.store.awaiting_takeaway(view.slot_id) == ident.serial:
            return False  # unknown (nothing closes on its word), or granted a moment ago
        return parts.store.open_custody_of_device(ident.serial) is not None

    def _archived(self, serial: str, rec: RecordingInfo) -> bool:
        """In the archive, verified against the hash the recorder states now."""
        row = self.parts.store.archived(serial, rec.id)
        return row is not None and row["sha256"] == rec.sha256

    def _erasures_owed(
        self, client: RecorderClient, serial: str, recordings: list[RecordingInfo]
    ) -> int:
        """Archived recordings the recorder still holds, due to be erased and erasable:
        an offload interrupted between the copy and the erase left them there."""
        offloader = self.parts.offloader
        if offloader is None or client.why_not(MsgType.ERASE) is not None:
            return 0
        owed = 0
        for rec in recordings:
            row = self.parts.store.archived(serial, rec.id)
            if row is None or row["sha256"] != rec.sha256:
                continue
            if offloader.erase_after_verify or row.get("second_copy_at") is not None:
                owed += 1
        return owed

    def _light_poll_enough(self, view: SlotView, serial: str) -> bool:
        """Between full inspections of the same recorder a STATUS is enough: the
        secret, self-test and footage list do not change while it sits docked."""
        full = self.full_at.get(view.slot_id)
        return (
            full is not None
            and full[0] == serial
            and view.snapshot is not None
            and view.snapshot.serial == serial
            and self.parts.clock.now() - full[1] < FULL_INSPECTION_EVERY_S
            and self.machine.state(view.slot_id) not in FRESH_STATES
        )

    def _light_poll(self, view: SlotView, client: RecorderClient) -> None:
        assert view.snapshot is not None
        status = client.status()
        trusted, why = self.parts.clock.synchronised()
        offset = view.snapshot.clock_offset_after_sync_s
        if offset is not None:
            offset = status.clock_offset_s  # still within bounds since it was set?
        view.status = status
        # the flags and the maintenance date may change while it sits docked (000 §14.1)
        serial = view.snapshot.serial
        rows = self._sweep_devices  # read at this sweep's start; else (no sweep) now
        device = rows.get(serial) if rows is not None else self.parts.store.device(serial)
        now = self.parts.clock.now()
        view.snapshot = dataclasses.replace(
            view.snapshot,
            battery_percent=status.battery_percent,
            battery_health_percent=status.battery_health_percent,
            storage_free_bytes=status.storage_free_bytes,
            fault_flags=status.fault_flags,
            clock_offset_after_sync_s=offset,
            reported_lost=bool(device and device.lost),
            maintenance_flag=bool(device and device.maintenance),
            maintenance_overdue_since=overdue_since(
                device, self.parts.policy, now, self.parts.timezone
            ),
        )
        key = (view.snapshot, self.parts.policy, trusted, why, self.parts.locale)
        kept = self._last_checks.get(view.slot_id)
        if kept is not None and kept[0] == key:
            view.results = kept[1]  # nothing the checks read has changed: same verdict
        else:
            view.results = run_checks(
                view.snapshot, self.parts.policy, (trusted, why), self.parts.locale
            )
            self._last_checks[view.slot_id] = (key, view.results)
        view.error = None
        self._record_status(view, status)
        self._audit_outcome(view)  # a check may start failing between full readings

    def _audit_outcome(self, view: SlotView) -> None:
        """The checks' outcome in the audit log when it changed (not every sweep)."""
        assert view.serial is not None
        outcome = (view.serial, tuple(r.code for r in view.failures))
        if self._last_outcome.get(view.slot_id) != outcome:
            self._last_outcome[view.slot_id] = outcome
            self.parts.audit.append(
                AuditKind.CHECKS,
                "dock",
                view.serial,
                {"slot": view.slot_id, "passed": view.ready, "failed": list(outcome[1]),
                 "reasons": [r.message for r in view.failures]},
            )  # fmt: skip

    def _record_status(
        self,
        view: SlotView,
        status: Status,
        drift_before: float | None = None,
        drift_after: float | None = None,
    ) -> None:
        """Status history for trends: on change, and at least every few minutes."""
        assert view.serial is not None
        state = "ready" if view.ready else "failed_check"
        key = (status.battery_percent, state, status.storage_free_bytes)
        last = self._last_status.get(view.serial)
        now = self.parts.clock.now()
        unchanged = last is not None and last[0] == key and now - last[1] < STATUS_EVERY_S
        if unchanged and drift_before is None:  # full inspections always record the drift
            return
        self._last_status[view.serial] = (key, now)
        self.parts.store.record_status(
            view.serial,
            battery_percent=status.battery_percent,
            battery_health_percent=status.battery_health_percent,
            battery_cycles=status.battery_cycles,
            storage_free_bytes=status.storage_free_bytes,
            drift_before_s=drift_before,
            drift_after_s=drift_after,
            state=state,
            battery_temp_c=status.battery_temp_c,
        )
