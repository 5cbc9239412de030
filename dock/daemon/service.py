"""The dock's service layer: inspect slots, check devices, check out, check in, enrol.

Everything a user can ask of the dock goes through here (the CLI, the daemon and,
later, the status page), so every custody change, check result, clock set and
enrolment is audited in one place. Talking to a slot takes that slot's lock file,
so the daemon's sweeps and a command-line check-out never interleave on one port.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dock.devices.recorder_client import (
    AuthenticationFailed,
    LinkError,
    NoAnswer,
    RecorderClient,
    RecorderRefused,
    RecordingInfo,
    Status,
)
from dock.domain import slot_state as sm
from dock.domain.checks import CheckResult, message_for, run_checks
from dock.domain.interfaces import ClockSource, LedPattern, Screen, SlotIndicator, Transport
from dock.domain.policy import Policy
from dock.domain.snapshot import DeviceSnapshot
from dock.storage import pins
from dock.storage.audit import AuditLog
from dock.storage.store import Officer, Store, StoreError
from firmware_protocol.messages import Capability, ErrorCode, MsgType

log = logging.getLogger("dock.daemon.service")

#: Slot states from which a device may be handed out (READY), or handed out by a
#: supervisor's override (FAILED_CHECK); not while offloading, faulty or taken.
HANDOUT_STATES = (sm.SlotState.READY, sm.SlotState.FAILED_CHECK)

#: States in which a slot's recorder must be fully inspected: just docked or faulty.
FRESH_STATES = (sm.SlotState.EMPTY, sm.SlotState.IDENTIFYING, sm.SlotState.FAULT)

#: How often the daemon looks at offload deadlines, and samples the archive's fixity.
DEADLINES_EVERY_S = 60.0
FIXITY_EVERY_S = 24 * 3600.0
FIXITY_SAMPLE = 0.05

#: A docked recorder is fully inspected (authenticated, clock set, self-tested,
#: footage listed) at least this often; sweeps in between only read its STATUS.
FULL_INSPECTION_EVERY_S = 60.0

#: Longest a sweep waits for its slowest slot. Each slot is inspected in its own
#: thread, so a slow or hostile recorder delays only its own slot; a sweep returns
#: after this at the latest, with the other slots decided, while the slow one goes on
#: (each of its exchanges bounded by the client) and later sweeps pass it by until it
#: is done. Offloads run inside an inspection when offload_concurrency is 1.
SWEEP_WAIT_S = 60.0

#: Seconds a recorder has to open a session when the dock looks at its slot: silence
#: usually means that no recorder is docked there (PROTOCOL.md 3.7).
SLOT_OPEN_TIMEOUT_S = 3.0

#: A recorder's clock is set again when it is further off than this.
CLOCK_SET_THRESHOLD_S = 0.05
#: Status history is written on change, and at least this often while docked.
STATUS_EVERY_S = 300.0

#: Reasons a check-out is refused that are about the officer or the dock, not one
#: device (those come from dock.domain.checks). Short enough for a 20-column screen line.
DECISION_MESSAGES: dict[str, dict[str, str]] = {
    "officer_unknown": {"zh": "身份无法识别", "en": "Officer not recognised"},
    # An officer number with a wrong PIN and a number that does not exist read the same,
    # tries left included (docs/OPERATIONS.md, "PINs"); only a locked PIN says so.
    "pin_wrong": {"zh": "警号或密码错误，还可试{left}次", "en": "Wrong ID/PIN: {left} left"},
    "pin_locked": {"zh": "密码已锁定，请找主管解锁", "en": "PIN locked: ask a supervisor"},
    "override_pin_locked": {"zh": "主管密码已锁定", "en": "Supervisor PIN locked"},
    "officer_disabled": {"zh": "该警员已停用", "en": "Officer disabled"},
    "officer_has_device": {"zh": "已领用设备 {serial}", "en": "Already holds {serial}"},
    "no_device_ready": {"zh": "无可用设备", "en": "No recorder ready"},
    "override_not_allowed": {"zh": "政策不允许越权", "en": "Override not allowed"},
    "override_refused": {"zh": "主管身份验证失败", "en": "Supervisor not verified"},
    "override_reason_missing": {"zh": "请填写越权理由", "en": "Give a reason"},
    "take_slot": {"zh": "请取 {slot} 号槽位", "en": "Take slot {slot}"},
    "no_room": {"zh": "证据存储空间不足", "en": "Evidence disk full"},
    "gaps_opened": {"zh": "录像中断{n}处待说明", "en": "{n} gap(s) to explain"},
    "not_assigned": {"zh": "警员未写入记录仪", "en": "Officer not on device"},
}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class SlotView:
    """What the dock last learnt about one slot."""

    slot_id: str
    port: str
    serial: str | None = None
    snapshot: DeviceSnapshot | None = None
    results: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    status: Status | None = None
    #: Recordings archived and verified, due to be erased, that the recorder can erase:
    #: an offload still has work even when nothing is left to copy.
    erasures_owed: int = 0
    #: Why the dock cannot write an officer into this recorder (None: it can).
    assign_blocked: str | None = None

    @property
    def ready(self) -> bool:
        return (
            self.snapshot is not None and bool(self.results) and all(r.passed for r in self.results)
        )

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


@dataclass(frozen=True)
class Decision:
    granted: bool
    slot: str | None
    device: str | None
    reasons: list[Reason]
    officer_id: str
    override_by: str | None = None
    #: For a grant: whether the officer was written into the recorder (ASSIGN), and
    #: why not where it was not (PROTOCOL.md 6.7). None for a refusal.
    assigned_on_device: bool | None = None
    not_assigned_why: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "granted": self.granted,
            "slot": self.slot,
            "device": self.device,
            "officer": self.officer_id,
            "override_by": self.override_by,
            "assigned_on_device": self.assigned_on_device,
            "not_assigned_why": self.not_assigned_why,
            "reasons": [r.as_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class Override:
    supervisor_id: str
    supervisor_pin: str
    reason: str


class DockService:
    def __init__(
        self,
        *,
        dock_id: str,
        store: Store,
        audit: AuditLog,
        policy: Policy,
        clock: ClockSource,
        slots: dict[str, str],
        open_transport: Callable[[str], Transport],
        lock_dir: str,
        locale: str = "zh",
        indicators: dict[str, SlotIndicator] | None = None,
        screen: Screen | None = None,
        buzzer: Any = None,
        min_pin_length: int = 6,
        timezone: str = "Asia/Shanghai",
        offloader: Any = None,
        offload_concurrency: int = 1,
    ) -> None:
        self.offload_concurrency = offload_concurrency
        self._state_lock = threading.RLock()
        self._offloading: dict[str, threading.Thread] = {}
        self._inspecting: dict[str, threading.Thread] = {}  # slot -> its inspection
        self._inline_offload = threading.Lock()  # offload_concurrency 1: one at a time
        self._offload_queue: list[str] = []
        #: slot -> {"recording", "done", "total"} of the offload running there
        self.offload_progress: dict[str, dict[str, Any]] = {}
        self.timezone = timezone
        self.offloader = offloader
        self.dock_id = dock_id
        self.store = store
        self.audit = audit
        self.policy = policy
        self.clock = clock
        self.locale = locale
        self.views = {sid: SlotView(sid, port) for sid, port in slots.items()}
        self._open_transport = open_transport
        self._lock_dir = lock_dir
        os.makedirs(lock_dir, exist_ok=True)
        self.indicators = indicators or {}
        self.screen = screen
        self.buzzer = buzzer
        self.min_pin_length = min_pin_length
        self.slot_status = {sid: sm.SlotStatus() for sid in slots}
        self._clock_set: set[str] = set()  # recorders whose clock this run has set
        self._clock_not_set: dict[str, str] = {}  # serial -> why its clock was not set
        self._full_at: dict[str, tuple[str, float]] = {}  # slot -> (serial, time)
        self._last_deadlines = float("-inf")
        self._last_fixity = float("-inf")
        self._deadline_alerts: set[tuple[int, str]] = set()
        self._last_outcome: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._last_status: dict[str, tuple[tuple[Any, ...], float]] = {}

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _slot(self, slot_id: str, timeout: float = 10.0) -> Iterator[RecorderClient]:
        """The slot's lock, and an open session with the recorder in it."""
        view = self.views[slot_id]
        path = os.path.join(self._lock_dir, f"slot-{slot_id}.lock")
        with open(path, "a+") as lock:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LinkError(f"slot {slot_id} is busy") from None
                    time.sleep(0.01)
            try:
                # Replies are waited for REPLY_TIMEOUT_S, as PROTOCOL.md 3.7 says.
                client = RecorderClient(self._open_transport(view.port))
            except (ConnectionError, ValueError) as exc:  # port gone: nothing docked there
                raise NoAnswer(f"slot {slot_id}: {exc}") from exc
            try:
                client.open(timeout=SLOT_OPEN_TIMEOUT_S)
                yield client
            finally:
                client.close()

    def _msg(self, code: str, **detail: Any) -> str:
        own = DECISION_MESSAGES.get(code)
        if own is None:
            return message_for(code, self.locale, **detail)
        text = own["zh" if self.locale.lower().startswith("zh") else "en"]
        return text.format(**detail)

    def _led(self, slot_id: str, pattern: LedPattern) -> None:
        ind = self.indicators.get(slot_id)
        if ind is not None:
            ind.show(pattern)

    def _show(self, lines: list[str]) -> None:
        if self.screen is not None:
            self.screen.show(lines)

    # ------------------------------------------------------------------ inspect
    def inspect(self, slot_id: str) -> SlotView:
        """Identify, authenticate, set the clock, self-test and check one slot."""
        view = self.views[slot_id]
        if slot_id in self._offloading:
            return view  # its recorder is busy offloading: looked at again afterwards
        status = self.slot_status[slot_id]
        try:
            with self._slot(slot_id) as client:
                returned = self._inspect_with(view, client)
        except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
            empty = isinstance(exc, NoAnswer)
            view.serial = view.snapshot = view.status = None
            view.results = []
            view.error = None if empty else str(exc)
            if empty:
                if status.state is not sm.SlotState.EMPTY:
                    self.taken(slot_id)
            else:
                if status.state is sm.SlotState.EMPTY:
                    self._feed(slot_id, sm.Docked())
                self._feed(slot_id, sm.Fault(str(exc)))
            return view
        serial = view.serial
        assert serial is not None and view.snapshot is not None
        if status.state is sm.SlotState.EMPTY:
            self._feed(slot_id, sm.Docked())
        elif status.serial not in (None, serial):
            self._feed(slot_id, sm.Undocked(), sm.Docked())  # another recorder, unseen swap
        if self.slot_status[slot_id].state is sm.SlotState.FAULT:
            self._feed(slot_id, sm.FaultCleared())
        if self.slot_status[slot_id].state is sm.SlotState.IDENTIFYING:
            snap = view.snapshot
            work = snap.recordings_pending + view.erasures_owed
            self._feed(slot_id, sm.Identified(serial, snap.enrolled, returned, work))
        if view.ready:
            self._feed(slot_id, sm.ChecksPassed())
        else:
            self._feed(slot_id, sm.ChecksFailed(tuple(r.code for r in view.failures)))
        if self.slot_status[slot_id].state is sm.SlotState.READY:
            granted = self.store.open_custody_of_device(serial)
            if granted is not None and self.store.awaiting_takeaway(slot_id) == serial:
                # granted by another process (the command line): show it here too
                self._feed(slot_id, sm.CheckedOut(granted.officer_id))
        return view

    def _feed(self, slot_id: str, *events: object) -> None:
        """Run the slot's state machine and carry out what it asks for."""
        with self._state_lock:  # offload workers report from their own threads
            self._feed_locked(slot_id, *events)

    def _feed_locked(self, slot_id: str, *events: object) -> None:
        for event in events:
            status, actions = sm.transition(self.slot_status[slot_id], event)
            self.slot_status[slot_id] = status
            for action in actions:
                if isinstance(action, sm.ShowLed):
                    self._led(slot_id, action.pattern)
                elif isinstance(action, sm.Alert):
                    log.warning("slot %s: %s (%s)", slot_id, action.code, action.detail)
                elif isinstance(action, sm.Buzz) and self.buzzer is not None:
                    if action.kind == "ack":
                        self.buzzer.acknowledge()
                    else:
                        self.buzzer.refuse()
                elif isinstance(action, sm.QueueOffload):
                    view = self.views[slot_id]
                    nothing = view.snapshot is not None and view.snapshot.recordings_pending == 0
                    if nothing and view.erasures_owed == 0:
                        self._feed(slot_id, sm.OffloadStarted(), sm.OffloadDone())
                    elif self.offloader is None:
                        log.info("slot %s: footage waits: no evidence store configured", slot_id)
                    else:
                        self._queue_offload(slot_id)
                # CloseCustody and RunChecks: inspect() does both itself.

    def _inspect_with(self, view: SlotView, client: RecorderClient) -> bool:
        """Fill ``view`` from the recorder; True if this was a return (custody closed)."""
        ident = client.identity
        assert ident is not None
        if self._light_poll_enough(view, ident.serial):
            self._light_poll(view, client)
            return False
        device = self.store.device(ident.serial)
        enrolled = False
        if device is not None:
            client.authenticate(device.secret)
            enrolled = True
            if device.firmware != ident.firmware:
                self.store.update_firmware(ident.serial, ident.firmware)
        status = client.status()
        trusted, why = self.clock.synchronised()
        drift_before = status.clock_offset_s
        offset_after: float | None = None
        not_set: str | None = None
        needs_set = abs(drift_before) > CLOCK_SET_THRESHOLD_S or ident.serial not in self._clock_set
        if enrolled and trusted and not needs_set:
            offset_after = drift_before  # set earlier in this run and still within bounds
        elif enrolled and trusted:
            not_set = self._set_clock(client, why)
            if not_set is None:
                offset_after = client.status().clock_offset_s
                self._clock_set.add(ident.serial)
                self._clock_not_set.pop(ident.serial, None)
                self.audit.append(
                    "clock_set",
                    "dock",
                    ident.serial,
                    {"slot": view.slot_id, "drift_before_s": drift_before, "after_s": offset_after},
                )
            else:
                # Strictest reading: the clock must be within the limit at check-out; one
                # the dock cannot set passes only if it already is (PROTOCOL.md 6.7).
                offset_after = drift_before
                self._note_clock_not_set(view.slot_id, ident.serial, not_set, drift_before)
        self_test: bool | None = None
        if client.has(Capability.SELF_TEST):
            self_test = bool(client.self_test()["passed"])
        recordings = client.list_recordings()
        pending = sum(1 for r in recordings if not self._archived(ident.serial, r))
        pending += len(recordings.refused)  # still on the device, never offloadable as is
        view.erasures_owed = self._erasures_owed(client, ident.serial, recordings)
        view.assign_blocked = client.why_not(MsgType.ASSIGN)
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
        )
        view.results = run_checks(view.snapshot, self.policy, (trusted, why), self.locale)
        self._full_at[view.slot_id] = (ident.serial, self.clock.now())
        self._record_status(view, status, drift_before, offset_after)
        outcome = (ident.serial, tuple(r.code for r in view.failures))
        if self._last_outcome.get(view.slot_id) != outcome:  # audit changes, not every sweep
            self._last_outcome[view.slot_id] = outcome
            self.audit.append(
                "checks",
                "dock",
                ident.serial,
                {"slot": view.slot_id, "passed": view.ready, "failed": list(outcome[1])},
            )
        return self._close_custody_if_back(view, ident.serial, client, enrolled)

    def _set_clock(self, client: RecorderClient, source: str) -> str | None:
        """Set the recorder's clock from the dock's; why not, where it cannot be set."""
        why_not = client.why_not(MsgType.SET_TIME)
        if why_not is not None:  # a version 1 recorder: nothing is sent
            return why_not
        try:
            client.set_time(self.clock.now(), source=source)
        except RecorderRefused as exc:
            return f"recorder refused SET_TIME ({exc})"
        return None

    def _note_clock_not_set(self, slot_id: str, serial: str, why: str, offset: float) -> None:
        """Audit a clock left as it is: once per recorder and reason in this run."""
        if self._clock_not_set.get(serial) == why:
            return
        self._clock_not_set[serial] = why
        limit = self.policy.max_clock_drift_after_sync_s
        self.audit.append(
            "clock_not_set",
            "dock",
            serial,
            {"slot": slot_id, "reason": why, "offset_s": offset, "max_s": limit,
             "within_limit": abs(offset) <= limit},
        )  # fmt: skip

    def _archived(self, serial: str, rec: RecordingInfo) -> bool:
        """In the archive, verified against the hash the recorder states now."""
        row = self.store.archived(serial, rec.id)
        return row is not None and row["sha256"] == rec.sha256

    def _erasures_owed(
        self, client: RecorderClient, serial: str, recordings: list[RecordingInfo]
    ) -> int:
        """Archived recordings the recorder still holds, due to be erased and erasable:
        an offload interrupted between the copy and the erase left them there."""
        if self.offloader is None or client.why_not(MsgType.ERASE) is not None:
            return 0
        owed = 0
        for rec in recordings:
            row = self.store.archived(serial, rec.id)
            if row is None or row["sha256"] != rec.sha256:
                continue
            if self.offloader.erase_after_verify or row.get("second_copy_at") is not None:
                owed += 1
        return owed

    def _light_poll_enough(self, view: SlotView, serial: str) -> bool:
        """Between full inspections of the same recorder a STATUS is enough: the
        secret, self-test and footage list do not change while it sits docked."""
        full = self._full_at.get(view.slot_id)
        return (
            full is not None
            and full[0] == serial
            and view.snapshot is not None
            and view.snapshot.serial == serial
            and self.clock.now() - full[1] < FULL_INSPECTION_EVERY_S
            and self.slot_status[view.slot_id].state not in FRESH_STATES
        )

    def _light_poll(self, view: SlotView, client: RecorderClient) -> None:
        assert view.snapshot is not None
        status = client.status()
        trusted, why = self.clock.synchronised()
        offset = view.snapshot.clock_offset_after_sync_s
        if offset is not None:
            offset = status.clock_offset_s  # still within bounds since it was set?
        view.status = status
        view.snapshot = dataclasses.replace(
            view.snapshot,
            battery_percent=status.battery_percent,
            battery_health_percent=status.battery_health_percent,
            storage_free_bytes=status.storage_free_bytes,
            fault_flags=status.fault_flags,
            clock_offset_after_sync_s=offset,
        )
        view.results = run_checks(view.snapshot, self.policy, (trusted, why), self.locale)
        view.error = None
        self._record_status(view, status)

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
        now = self.clock.now()
        unchanged = last is not None and last[0] == key and now - last[1] < STATUS_EVERY_S
        if unchanged and drift_before is None:  # full inspections always record the drift
            return
        self._last_status[view.serial] = (key, now)
        self.store.record_status(
            view.serial,
            battery_percent=status.battery_percent,
            battery_health_percent=status.battery_health_percent,
            battery_cycles=status.battery_cycles,
            storage_free_bytes=status.storage_free_bytes,
            drift_before_s=drift_before,
            drift_after_s=drift_after,
            state=state,
        )

    def _close_custody_if_back(
        self, view: SlotView, serial: str, client: RecorderClient, authenticated: bool
    ) -> bool:
        """A device that was out with an officer is back: its own identity closes custody,
        and its event log is read for gaps in recording during the episode."""
        if self.store.awaiting_takeaway(view.slot_id) == serial:
            return False  # granted a moment ago and not taken out of its slot yet
        closed = self.store.close_custody(serial, view.slot_id)
        if closed is None:
            return False
        self.audit.append(
            "checkin",
            "dock",
            serial,
            {"officer": closed.officer_id, "slot": view.slot_id, "custody": closed.id},
        )
        self.audit.checkpoint()  # custody changes are signed at once
        if authenticated:
            from dock.evidence.gaps import GapError, scan_episode

            try:
                opened = scan_episode(
                    client, self.store, self.audit, serial, closed,
                    report_manual_stops=self.policy.explain_manual_stops,
                )  # fmt: skip
            except (GapError, LinkError, RecorderRefused) as exc:
                log.warning("slot %s: gaps not read: %s", view.slot_id, exc)
            else:
                if opened:
                    self._show([self._msg("gaps_opened", n=opened), serial])
        return True

    def sweep(self) -> list[SlotView]:
        """Inspect every slot, each in its own thread: a failure or a slow recorder in
        one slot never stops nor delays the others. Waits for them SWEEP_WAIT_S at
        most; a slot still being inspected from an earlier sweep is passed by."""
        started = []
        with self._state_lock:
            for sid in self.views:
                if sid in self._inspecting:
                    continue
                worker = threading.Thread(
                    target=self._inspect_one, args=(sid,), name=f"inspect-{sid}"
                )
                self._inspecting[sid] = worker
                started.append(worker)
        for worker in started:
            worker.start()
        deadline = time.monotonic() + SWEEP_WAIT_S
        for worker in started:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        return [self.views[sid] for sid in self.views]

    def _inspect_one(self, slot_id: str) -> None:
        try:
            self.inspect(slot_id)
        except Exception as exc:  # a bug or a disk error: this slot is faulty
            log.exception("slot %s: inspection failed", slot_id)
            self._feed(slot_id, sm.Fault(f"{type(exc).__name__}: {exc}"))
        finally:
            with self._state_lock:
                self._inspecting.pop(slot_id, None)

    def busy_slots(self) -> set[str]:
        """Slots whose inspection (or offload) is still running."""
        with self._state_lock:
            return set(self._inspecting) | set(self._offloading)

    # ------------------------------------------------------------------ officers
    def identify(
        self, officer_id: str | None, pin: str | None, badge: str | None
    ) -> tuple[Officer | None, list[Reason]]:
        officer: Officer | None = None
        if badge:
            officer = self.store.officer_by_badge(badge)
        elif officer_id is not None and pin is not None:
            check = pins.verify(self.store, self.audit, officer_id, pin, "checkout")
            if check.locked:
                return None, [Reason("pin_locked", self._msg("pin_locked"))]
            if not check.ok:  # a wrong PIN, or no such number: the same words
                wrong = self._msg("pin_wrong", left=check.tries_left)
                return None, [Reason("officer_unknown", wrong)]
            officer = self.store.officer(officer_id)
        if officer is None:
            return None, [Reason("officer_unknown", self._msg("officer_unknown"))]
        if officer.disabled:
            return officer, [Reason("officer_disabled", self._msg("officer_disabled"))]
        return officer, []

    # ------------------------------------------------------------------ check-out
    def checkout(
        self,
        officer_id: str | None = None,
        pin: str | None = None,
        badge: str | None = None,
        override: Override | None = None,
        refresh: bool = True,
    ) -> Decision:
        """Pick a ready device for the officer, write the officer into it, record custody."""
        officer, reasons = self.identify(officer_id, pin, badge)
        who = officer.officer_id if officer else (officer_id or f"badge:{badge}")
        if not reasons and officer is not None:
            held = self.store.open_custody_of_officer(officer.officer_id)
            if held is not None:
                reasons = [
                    Reason(
                        "officer_has_device",
                        self._msg("officer_has_device", serial=held.serial),
                    )
                ]
        if reasons:
            return self._refuse(who, reasons)
        assert officer is not None
        supervisor = None
        if override is not None:
            supervisor, problem = self._check_override(override)
            if problem is not None:
                return self._refuse(who, [problem])
        if refresh:
            self.sweep()
        candidates = sorted(
            (
                v
                for v in self.views.values()
                if v.snapshot is not None
                and self.store.awaiting_takeaway(v.slot_id) is None
                and self.slot_status[v.slot_id].state in HANDOUT_STATES
                and v.slot_id not in self._inspecting  # its recorder is busy: not now
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
            docked = [v for v in self.views.values() if v.snapshot is not None]
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
        if not self.policy.supervisor_override_allowed:
            return None, Reason("override_not_allowed", self._msg("override_not_allowed"))
        check = pins.verify(self.store, self.audit, o.supervisor_id, o.supervisor_pin, "override")
        if check.locked:
            return None, Reason("override_pin_locked", self._msg("override_pin_locked"))
        sup = self.store.officer(o.supervisor_id)
        if sup is None or sup.role != "supervisor" or sup.disabled or not check.ok:
            return None, Reason("override_refused", self._msg("override_refused"))
        if len(o.reason.strip()) < 4:
            return None, Reason("override_reason_missing", self._msg("override_reason_missing"))
        return sup, None

    def _overridable(self, v: SlotView) -> bool:
        failed = {r.code for r in v.failures}
        return bool(failed) and not failed & set(self.policy.never_overridable)

    def _why_none(self, candidates: list[SlotView]) -> list[Reason]:
        reasons = [Reason("no_device_ready", self._msg("no_device_ready"))]
        seen: set[str] = set()
        for v in candidates:
            for r in v.failures:
                if r.code not in seen:
                    seen.add(r.code)
                    reasons.append(Reason(r.code, f"{v.slot_id}: {r.message}"))
        return reasons

    def _grant(
        self,
        officer: Officer,
        view: SlotView,
        supervisor: Officer | None,
        override: Override | None,
    ) -> Decision:
        serial = view.serial
        assert serial is not None
        try:
            with self._slot(view.slot_id) as client:
                device = self.store.device(serial)
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
            custody = self.store.open_custody(
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
            self.audit.append("override", supervisor.officer_id, serial, data)
        self.audit.append("checkout", officer.officer_id, serial, data)
        self.audit.checkpoint()  # custody changes are signed at once
        self._feed(view.slot_id, sm.CheckedOut(officer.officer_id))  # LED: take this one
        lines = [self._msg("take_slot", slot=view.slot_id), f"{officer.name} {serial}"]
        self._show(lines + ([self._msg("not_assigned")] if not_assigned else []))
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
        self.audit.append("checkout_refused", who, "", {"reasons": [r.code for r in reasons]})
        self._show([r.message for r in reasons[:4]])
        if self.buzzer is not None:
            self.buzzer.refuse()
        return Decision(False, None, None, reasons, who)

    def taken(self, slot_id: str) -> None:
        """The granted device left its slot: from now on, docking it is a return."""
        self.store.mark_taken(slot_id)
        self._full_at.pop(slot_id, None)
        self._feed(slot_id, sm.Undocked())

    # ------------------------------------------------------------------ housekeeping
    def housekeeping(self, now: float) -> None:
        """What the daemon does now and then besides sweeping: finish what an
        interrupted offload left (audit entries, seals) and what an interrupted purge
        left (evidence/purging.py), raise offload deadlines at risk
        or overdue (once per episode and state), and sample the archive's fixity once
        a day."""
        from dock.evidence.fixity import verify_archive
        from dock.evidence.deadlines import deadline_report, overdue_or_at_risk

        if self.offloader is not None:
            for why in self.offloader.complete_seals().failed:
                self.audit.append("seal_failed", "dock", "", {"error": why})
            from dock.evidence.purging import complete as complete_purges

            done = complete_purges(
                self.store, self.audit, self.offloader.seals, self.offloader.evidence_dir
            )
            for what in done.completed:
                log.info("finished an unfinished purge: %s", what)

        if now - self._last_deadlines >= DEADLINES_EVERY_S:
            self._last_deadlines = now
            for row in overdue_or_at_risk(
                deadline_report(self.store, self.policy, self.timezone, now)
            ):
                key = (row["custody_id"], row["state"])
                if key not in self._deadline_alerts:
                    self._deadline_alerts.add(key)
                    log.warning("offload deadline %s: %s", row["state"], row)
                    self.audit.append(f"deadline_{row['state']}", "dock", row["serial"], row)
        if self.offloader is not None and now - self._last_fixity >= FIXITY_EVERY_S:
            self._last_fixity = now
            report = verify_archive(
                self.store, self.offloader.evidence_dir, self.audit,
                sample_fraction=FIXITY_SAMPLE,
            )  # fmt: skip
            self._log_fixity(report)

    @staticmethod
    def _log_fixity(report: Any) -> None:
        """The daily sample's outcome in the log (each problem is also audited, as
        ``fixity_failure``, by verify_archive): an error per problem, naming the file or
        bag; an empty archive is nothing to check, not a failure."""
        if report.nothing_to_check:
            log.info("fixity sample: nothing to check (the archive is empty)")
            return
        for p in report.bad:
            what = "bag" if p["kind"] == "bag" else f"{p['serial']} {p['recording']}"
            log.error("fixity sample: %s %s: %s", what, p["path"], p["problem"])
        log.log(
            logging.INFO if report.ok else logging.ERROR,
            "fixity sample: %d of %d file(s) checked, %d intact; %d bag(s) checked, %d bad",
            report.checked, report.archived, report.intact, report.bags_checked,
            report.bags_bad,
        )  # fmt: skip

    # ------------------------------------------------------------------ offload
    def _queue_offload(self, slot_id: str) -> None:
        """Offload now (one at a time), or in a worker, at most ``offload_concurrency``
        recorders together: the disk, not a lock of ours, should be the limit."""
        if self.offload_concurrency <= 1:
            with self._inline_offload:  # inside this slot's inspection thread
                self.offload(slot_id)
            return
        with self._state_lock:
            if slot_id in self._offloading or slot_id in self._offload_queue:
                return
            self._offload_queue.append(slot_id)
        self._start_offload_workers()

    def _start_offload_workers(self) -> None:
        with self._state_lock:
            while self._offload_queue and len(self._offloading) < self.offload_concurrency:
                slot_id = self._offload_queue.pop(0)
                worker = threading.Thread(
                    target=self._offload_worker, args=(slot_id,), name=f"offload-{slot_id}"
                )
                self._offloading[slot_id] = worker
                worker.start()

    def _offload_worker(self, slot_id: str) -> None:
        try:
            self.offload(slot_id)
        except Exception:  # never leave a slot marked busy for ever
            log.exception("slot %s: offload worker failed", slot_id)
            self._feed(slot_id, sm.OffloadFailed("internal error"))
        finally:
            with self._state_lock:
                self._offloading.pop(slot_id, None)
            self._start_offload_workers()

    def wait_offloads(self, timeout: float = 600.0) -> None:
        """Block until every queued and running offload has finished (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._state_lock:
                workers = list(self._offloading.values())
                if not workers and not self._offload_queue:
                    return
            for w in workers:
                w.join(timeout=max(0.0, deadline - time.monotonic()))

    def _tracker(self, slot_id: str, progress: Any) -> Any:
        """Keep each slot's offload progress for the status page and JSON."""

        def track(recording: str, done: int, total: int) -> None:
            self.offload_progress[slot_id] = {"recording": recording, "done": done, "total": total}
            if progress is not None:
                progress(recording, done, total)

        return track

    def offload(self, slot_id: str, progress: Any = None) -> Any:
        """Offload, verify and erase every recording on the recorder in ``slot_id``."""
        serial = self.views[slot_id].serial
        self._feed(slot_id, sm.OffloadStarted())
        try:
            with self._slot(slot_id) as client:
                ident = client.identity
                device = self.store.device(ident.serial) if ident else None
                if device is None:
                    raise LinkError(f"slot {slot_id}: recorder is not enrolled")
                client.authenticate(device.secret)
                report = self.offloader.offload(client, slot_id, self._tracker(slot_id, progress))
        except (LinkError, RecorderRefused, AuthenticationFailed) as exc:
            log.warning("slot %s: offload stopped: %s", slot_id, exc)
            self._feed(slot_id, sm.OffloadFailed(str(exc)))
            self.audit.append("offload_failed", "dock", serial or "", {"error": str(exc)})
            return None
        self.offload_progress.pop(slot_id, None)
        self._full_at.pop(slot_id, None)  # what is on the device changed: look again in full
        for why in report.seal_failed:  # footage archived and verified: the seal is retried
            log.error("slot %s: %s", slot_id, why)
        if not (report.failed or report.not_enough_room or report.damaged):
            self._feed(slot_id, sm.OffloadDone())
        elif report.not_enough_room:
            self._feed(slot_id, sm.OffloadFailed("not enough room in the evidence store"))
            self._show([self._msg("no_room"), f"{slot_id}: {serial}"])
        else:
            problems = [*report.failed.values(), *report.damaged.values()]
            self._feed(slot_id, sm.OffloadFailed("; ".join(problems)))
        return report

    # ------------------------------------------------------------------ enrolment
    def enrol(self, slot_id: str, actor: str) -> str:
        """Agree a secret with the recorder in ``slot_id`` and remember it.

        Atomic from both sides: the dock writes the agreed secret down (pending)
        before it authenticates with it, and the recorder commits it only on that
        authentication; a failure or a kill anywhere leaves a state the next
        ``enrol`` completes or starts over from.
        """
        with self._slot(slot_id) as client:
            ident = client.identity
            assert ident is not None
            if self.store.device(ident.serial) is not None:
                raise StoreError(f"device {ident.serial} is already enrolled")
            pending = self.store.pending_secret(ident.serial)
            if ident.enrolled and pending is not None:
                # An earlier enrol got as far as the recorder committing: finish it.
                client.authenticate(pending)
            else:
                secret = client.enrol()
                self.store.keep_pending_secret(ident.serial, secret)
                client.authenticate(secret)  # the recorder commits it now
            self.store.commit_pending_secret(ident.serial, ident.model, ident.firmware)
        self.audit.append("enrol", actor, ident.serial, {"slot": slot_id, "model": ident.model})
        return ident.serial
