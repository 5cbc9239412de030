"""The per-slot state machine: table, exhaustive and sequence (property) tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dock.domain.interfaces import LedPattern
from dock.domain.slot_state import (
    ACTION_TYPES,
    EVENT_TYPES,
    LED_FOR,
    Action,
    Alert,
    Buzz,
    Charging,
    CheckedOut,
    ChecksFailed,
    ChecksPassed,
    CloseCustody,
    Docked,
    Fault,
    FaultCleared,
    GrantWithdrawn,
    Identified,
    IdentifyFailed,
    OffloadDone,
    OffloadFailed,
    OffloadStarted,
    QueueOffload,
    RunChecks,
    ShowLed,
    SlotState,
    SlotStatus,
    Undocked,
    transition,
)

S = SlotState
KNOWN = Identified("A", enrolled=True, in_custody=False, pending_recordings=0)
RETURN = Identified("A", enrolled=True, in_custody=True, pending_recordings=3)
UNKNOWN = Identified("X", enrolled=False, in_custody=False, pending_recordings=0)

#: An event path from EMPTY to each state (the realistic way to get there).
PATHS: dict[SlotState, list] = {
    S.EMPTY: [],
    S.IDENTIFYING: [Docked()],
    S.CHARGING: [Docked(), KNOWN],
    S.OFFLOADING: [Docked(), RETURN],
    S.READY: [Docked(), KNOWN, ChecksPassed()],
    S.FAILED_CHECK: [Docked(), KNOWN, ChecksFailed(("battery_low",))],
    S.CHECKED_OUT: [Docked(), KNOWN, ChecksPassed(), CheckedOut("officer-7")],
    S.FAULT: [Docked(), KNOWN, Fault("overheat")],
}
#: More ways into some states: they differ in what the slot knows.
VARIANT_PATHS: list[list] = [
    *PATHS.values(),
    [Docked(), UNKNOWN],  # FAILED_CHECK, unknown device
    [Docked(), RETURN, Docked()],  # IDENTIFYING after a re-dock, offload outstanding
    [Docked(), RETURN, OffloadFailed("io")],  # FAULT, offload owed
    [Docked(), RETURN, Fault("hot")],  # FAULT, offload outstanding
    [Docked(), IdentifyFailed("timeout")],  # FAULT, never identified
    [Docked(), KNOWN, ChecksPassed(), CheckedOut("o"), ChecksFailed(("clock",))],
]


def run(events: Iterable, status: SlotStatus | None = None) -> tuple[SlotStatus, list[Action]]:
    status = SlotStatus() if status is None else status
    every: list[Action] = []
    for event in events:
        status, actions = transition(status, event)
        every.extend(actions)
    return status, every


def at(state: SlotState) -> SlotStatus:
    status, _ = run(PATHS[state])
    assert status.state is state
    return status


def shape(actions: list[Action]) -> list[object]:
    """Actions with alerts reduced to their code (details are prose)."""
    return [("Alert", a.code) if isinstance(a, Alert) else a for a in actions]


def led(state: SlotState) -> ShowLed:
    return ShowLed(LED_FOR[state])


# --- the table -----------------------------------------------------------------------

TABLE = [
    # (from, event, to, actions)
    (S.EMPTY, Docked(), S.IDENTIFYING, [led(S.IDENTIFYING)]),
    (
        S.IDENTIFYING,
        UNKNOWN,
        S.FAILED_CHECK,
        [led(S.FAILED_CHECK), ("Alert", "device_unknown")],
    ),
    (
        S.IDENTIFYING,
        Identified("X", enrolled=False, in_custody=True, pending_recordings=9),
        S.FAILED_CHECK,
        [led(S.FAILED_CHECK), ("Alert", "device_unknown")],
    ),
    (
        S.IDENTIFYING,
        RETURN,
        S.OFFLOADING,
        [led(S.OFFLOADING), CloseCustody("A"), QueueOffload("A")],
    ),
    (
        S.IDENTIFYING,
        Identified("A", enrolled=True, in_custody=True, pending_recordings=0),
        S.OFFLOADING,
        [led(S.OFFLOADING), CloseCustody("A"), QueueOffload("A")],
    ),
    (
        S.IDENTIFYING,
        Identified("A", enrolled=True, in_custody=False, pending_recordings=2),
        S.OFFLOADING,
        [led(S.OFFLOADING), QueueOffload("A")],
    ),
    (S.IDENTIFYING, KNOWN, S.CHARGING, [led(S.CHARGING), RunChecks("A")]),
    (
        S.IDENTIFYING,
        IdentifyFailed("auth timeout"),
        S.FAULT,
        [led(S.FAULT), ("Alert", "identify_failed")],
    ),
    (S.OFFLOADING, OffloadStarted(), S.OFFLOADING, []),
    (S.OFFLOADING, OffloadDone(), S.CHARGING, [led(S.CHARGING), RunChecks("A")]),
    (
        S.OFFLOADING,
        OffloadFailed("hash mismatch"),
        S.FAULT,
        [led(S.FAULT), ("Alert", "offload_failed")],
    ),
    (S.OFFLOADING, ChecksPassed(), S.OFFLOADING, []),
    (S.CHARGING, ChecksPassed(), S.READY, [led(S.READY)]),
    (S.CHARGING, ChecksFailed(("battery_low",)), S.FAILED_CHECK, [led(S.FAILED_CHECK)]),
    (S.CHARGING, Charging(55), S.CHARGING, []),
    (S.FAILED_CHECK, ChecksPassed(), S.READY, [led(S.READY)]),
    (S.FAILED_CHECK, ChecksFailed(("clock_drift",)), S.FAILED_CHECK, []),
    (S.READY, ChecksFailed(("battery_low",)), S.FAILED_CHECK, [led(S.FAILED_CHECK)]),
    (S.READY, ChecksPassed(), S.READY, []),
    (S.READY, CheckedOut("officer-7"), S.CHECKED_OUT, [led(S.CHECKED_OUT), Buzz("ack")]),
    (S.READY, CheckedOut(""), S.READY, [Buzz("refuse"), ("Alert", "checkout_refused")]),
    (
        S.CHECKED_OUT,
        ChecksFailed(("battery_low",)),
        S.FAILED_CHECK,
        [led(S.FAILED_CHECK), Buzz("refuse"), ("Alert", "checkout_revoked")],
    ),
    (S.CHECKED_OUT, ChecksPassed(), S.CHECKED_OUT, []),
    (S.CHECKED_OUT, Undocked(), S.EMPTY, [led(S.EMPTY)]),
    (
        S.OFFLOADING,
        Undocked(),
        S.EMPTY,
        [led(S.EMPTY), ("Alert", "removed_without_checkout"), ("Alert", "offload_interrupted")],
    ),
    (S.READY, Undocked(), S.EMPTY, [led(S.EMPTY), ("Alert", "removed_without_checkout")]),
    (S.FAULT, Undocked(), S.EMPTY, [led(S.EMPTY), ("Alert", "removed_without_checkout")]),
    (S.EMPTY, Undocked(), S.EMPTY, []),
    (S.FAULT, FaultCleared(), S.IDENTIFYING, [led(S.IDENTIFYING)]),
    (S.FAULT, Fault("again"), S.FAULT, [("Alert", "slot_fault")]),
    (S.EMPTY, Fault("contacts shorted"), S.EMPTY, [("Alert", "slot_fault")]),
    (
        S.CHECKED_OUT,
        Fault("overheat"),
        S.FAULT,
        [led(S.FAULT), Buzz("refuse"), ("Alert", "checkout_revoked"), ("Alert", "slot_fault")],
    ),
    (S.READY, Docked(), S.IDENTIFYING, [led(S.IDENTIFYING), ("Alert", "slot_redock")]),
    (S.CHECKED_OUT, Docked(), S.IDENTIFYING, [led(S.IDENTIFYING), ("Alert", "slot_redock")]),
    (S.IDENTIFYING, Docked(), S.IDENTIFYING, [("Alert", "slot_redock")]),
    (S.CHARGING, OffloadDone(), S.CHARGING, []),
    (S.READY, FaultCleared(), S.READY, []),
    (S.EMPTY, KNOWN, S.EMPTY, []),
]
TABLE += [
    (state, Fault("overheat"), S.FAULT, [led(S.FAULT), ("Alert", "slot_fault")])
    for state in S
    if state not in (S.EMPTY, S.FAULT, S.CHECKED_OUT)
]
TABLE += [
    (state, CheckedOut("officer-7"), state, [Buzz("refuse"), ("Alert", "checkout_refused")])
    for state in S
    if state is not S.READY
]


@pytest.mark.parametrize(
    ("start", "event", "end", "expected"),
    TABLE,
    ids=[f"{row[0].value}-{type(row[1]).__name__}-{i}" for i, row in enumerate(TABLE)],
)
def test_transition_table(start, event, end, expected):
    new, actions = transition(at(start), event)
    assert new.state is end
    assert shape(actions) == expected


def test_failed_check_keeps_codes_and_passing_later_clears_them():
    """003 art.5; 004 att.3 art.10: a failed check keeps its codes for the slot until a later
    check passes."""
    status, _ = run([*PATHS[S.CHARGING], ChecksFailed(("battery_low", "clock_drift"))])
    assert status.failed_codes == ("battery_low", "clock_drift")
    status, _ = transition(status, Charging(95))
    assert status.battery_percent == 95 and status.failed_codes == ("battery_low", "clock_drift")
    status, _ = transition(status, ChecksFailed(("clock_drift",)))
    assert status.failed_codes == ("clock_drift",)
    status, actions = transition(status, ChecksPassed())
    assert status.state is S.READY and status.failed_codes == ()
    assert actions == [ShowLed(LedPattern.READY)]


def test_refused_checkout_names_the_failed_codes():
    """003 art.5; 004 att.3 art.10; 000 §14.1: a refused check-out names the failing checks'
    codes."""
    status, _ = run([*PATHS[S.CHARGING], ChecksFailed(("battery_low",))])
    new, actions = transition(status, CheckedOut("officer-7"))
    assert new == status
    assert actions[0] == Buzz("refuse")
    assert actions[1].code == "checkout_refused" and "battery_low" in actions[1].detail


def test_unknown_device_is_never_made_ready():
    """000 §14.1: a recorder not enrolled is never made ready."""
    status, _ = run([Docked(), UNKNOWN])
    assert status.failed_codes == ("device_unknown",)
    for event in (ChecksPassed(), ChecksFailed(("battery_low",)), OffloadDone(), Charging(100)):
        status, _ = transition(status, event)
        assert status.state is S.FAILED_CHECK and status.failed_codes == ("device_unknown",)
    _, actions = transition(status, CheckedOut("officer-7"))
    assert Buzz("refuse") in actions


def test_return_happy_path_closes_custody_and_offloads_exactly_once():
    """003 art.21(2); 001 art.19(4): a return closes custody and offloads exactly once."""
    events = [
        Docked(),
        RETURN,
        OffloadStarted(),
        Charging(40),
        ChecksPassed(),  # stale: ignored while offloading
        OffloadDone(),
        ChecksFailed(("battery_low",)),
        Charging(90),
        ChecksPassed(),
        CheckedOut("officer-9"),
        Undocked(),
    ]
    status, actions = run(events)
    assert status == SlotStatus()
    assert [a for a in actions if not isinstance(a, ShowLed)] == [
        CloseCustody("A"),
        QueueOffload("A"),
        RunChecks("A"),
        Buzz("ack"),
    ]
    assert [a.pattern for a in actions if isinstance(a, ShowLed)] == [
        LedPattern.BUSY,  # identifying
        LedPattern.BUSY,  # offloading
        LedPattern.BUSY,  # charging, checks running
        LedPattern.FAILED_CHECK,
        LedPattern.READY,
        LedPattern.TAKE_THIS,
        LedPattern.OFF,
    ]


def test_redock_while_offloading_keeps_custody_and_does_not_requeue():
    # The ledger still says "in custody" on re-identification (it lags): no second
    # CloseCustody, and the offload in flight is not queued twice.
    """003 art.21(2): a recorder docked again while offloading keeps its custody record and is
    not queued twice."""
    status, actions = run([Docked(), RETURN, Docked(), RETURN])
    assert status.state is S.OFFLOADING and status.custody_closed and status.offload_outstanding
    assert actions.count(CloseCustody("A")) == 1 and actions.count(QueueOffload("A")) == 1
    status, actions = run([OffloadDone(), ChecksPassed()], status)
    assert status.state is S.READY


def test_redock_after_a_grant_closes_the_custody_it_opened():
    # Returned (custody closed), granted again, taken and brought back without the slot
    # seeing the undock: the grant opened a new custody, which must be closed.
    """003 art.21(2): a recorder docked again after its grant closes the custody the grant
    opened."""
    start = [Docked(), RETURN, OffloadDone(), ChecksPassed(), CheckedOut("officer-7")]
    status, actions = run([*start, Docked()])
    assert status.state is S.IDENTIFYING and status.officer_id is None
    status, actions = transition(status, RETURN)
    assert actions == [led(S.OFFLOADING), CloseCustody("A"), QueueOffload("A")]


def test_failed_offload_is_retried_after_the_fault_clears():
    status, actions = run([Docked(), RETURN, OffloadFailed("hash mismatch")])
    assert status.state is S.FAULT and status.offload_owed and not status.offload_outstanding
    alert = next(a for a in actions if isinstance(a, Alert))
    assert alert.code == "offload_failed" and "footage stays on the device" in alert.detail
    status, _ = transition(status, ChecksPassed())
    assert status.state is S.FAULT
    # Re-identified: the ledger has closed custody and the device (wrongly) reports
    # nothing pending; the offload is still owed.
    status, actions = run(
        [FaultCleared(), Identified("A", enrolled=True, in_custody=False, pending_recordings=0)],
        status,
    )
    assert status.state is S.OFFLOADING and QueueOffload("A") in actions
    assert CloseCustody("A") not in actions
    status, _ = run([OffloadDone(), ChecksPassed()], status)
    assert status.state is S.READY


def test_an_authentication_glitch_does_not_lose_custody():
    """003 art.21(2): an authentication glitch does not lose the custody record."""
    glitch = Identified("A", enrolled=False, in_custody=False, pending_recordings=0)
    status, actions = run([Docked(), RETURN, Docked(), glitch])
    assert status.state is S.FAILED_CHECK and status.failed_codes == ("device_unknown",)
    assert status.custody_closed and status.offload_owed
    status, more = run([Docked(), RETURN], status)
    assert status.state is S.OFFLOADING
    assert (actions + more).count(CloseCustody("A")) == 1
    assert (actions + more).count(QueueOffload("A")) == 1  # the first is still in flight
    _, gone = transition(status, Undocked())
    assert ("Alert", "offload_interrupted") in shape(gone)


def test_a_different_device_after_a_redock_starts_a_new_session():
    status, _ = run([Docked(), RETURN, Docked()])
    status, actions = transition(status, KNOWN.__class__("B", True, False, 0))
    assert status.state is S.CHARGING and status.serial == "B"
    assert not status.custody_closed and not status.offload_owed
    assert ("Alert", "offload_interrupted") in shape(actions)


def test_late_offload_result_outside_offloading_is_recorded():
    status, _ = run([Docked(), RETURN, Fault("hot")])
    assert status.offload_outstanding
    done, actions = transition(status, OffloadDone())
    assert done.state is S.FAULT and not done.offload_outstanding and not done.offload_owed
    assert actions == []
    failed, actions = transition(status, OffloadFailed("cable"))
    assert failed.state is S.FAULT and failed.offload_owed and not failed.offload_outstanding
    assert shape(actions) == [("Alert", "offload_failed")]


@pytest.mark.parametrize(
    "changes",
    [
        {"enrolled": False},
        {"serial": None},
        {"serial": ""},
        {"offload_owed": True},
        {"offload_outstanding": True},
    ],
)
@pytest.mark.parametrize("state", [S.CHARGING, S.FAILED_CHECK])
def test_checks_passed_never_readies_a_device_that_may_not_be_ready(state, changes):
    """003 art.5; 000 §14.1: a passing check never readies a recorder that may not be handed out."""
    status = dataclasses.replace(at(state), **changes)
    assert transition(status, ChecksPassed()) == (status, [])


def test_odd_inputs_do_not_raise():
    status = at(S.READY)
    for garbage in (None, 42, "Docked", Docked, object()):
        assert transition(status, garbage) == (status, [])
    weird = [
        Identified(None, True, True, None),  # type: ignore[arg-type]
        Identified("A", "yes", 1, "many"),  # type: ignore[arg-type]
        ChecksFailed(None),  # type: ignore[arg-type]
        ChecksFailed("battery_low"),  # type: ignore[arg-type]
        ChecksFailed([1, 2]),  # type: ignore[arg-type]
        Charging(None),  # type: ignore[arg-type]
        CheckedOut(None),  # type: ignore[arg-type]
        Fault(None),  # type: ignore[arg-type]
    ]
    for state in S:
        for event in weird:
            new, actions = transition(at(state), event)
            assert isinstance(new.state, SlotState)
            assert not any(
                isinstance(a, Alert) and a.code == "state_machine_error" for a in actions
            )


def test_identified_without_a_usable_serial_is_an_identify_failure():
    new, actions = transition(at(S.IDENTIFYING), Identified("", True, False, 0))
    assert new.state is S.FAULT
    assert shape(actions) == [led(S.FAULT), ("Alert", "identify_failed")]


def test_unknown_pending_count_is_read_on_the_safe_side():
    """001 art.19(4): an unknown count of footage still on the recorder is read as some: it is
    offloaded first."""
    new, actions = transition(at(S.IDENTIFYING), Identified("A", True, False, None))  # type: ignore[arg-type]
    assert new.state is S.OFFLOADING and QueueOffload("A") in actions


def test_internal_error_is_contained():
    class Evil:
        def __format__(self, spec):
            raise RuntimeError("boom")

    status = at(S.READY)
    new, actions = transition(status, Fault(Evil()))  # type: ignore[arg-type]
    assert new is status
    assert shape(actions) == [("Alert", "state_machine_error")]


def test_led_for_covers_every_state():
    assert set(LED_FOR) == set(S)
    assert LED_FOR[S.EMPTY] is LedPattern.OFF
    assert {LED_FOR[s] for s in (S.IDENTIFYING, S.CHARGING, S.OFFLOADING)} == {LedPattern.BUSY}


# --- every (state, event) pair ------------------------------------------------------

SAMPLE_EVENTS = [
    Docked(),
    Undocked(),
    KNOWN,
    RETURN,
    UNKNOWN,
    Identified("B", True, False, 5),
    Identified("A", True, True, 0),
    Identified("", True, False, 0),
    IdentifyFailed("timeout"),
    OffloadStarted(),
    OffloadDone(),
    OffloadFailed("hash mismatch"),
    ChecksPassed(),
    ChecksFailed(("battery_low",)),
    ChecksFailed(()),
    Charging(0),
    Charging(100),
    Charging(-5),
    CheckedOut("officer-7"),
    CheckedOut(""),
    GrantWithdrawn(),
    Fault("overheat"),
    FaultCleared(),
]


def check_step(old: SlotStatus, event: object, new: SlotStatus, actions: list) -> None:
    """What holds for every single transition, whatever the input."""
    assert isinstance(new, SlotStatus) and isinstance(new.state, SlotState)
    assert isinstance(actions, list)
    assert all(isinstance(a, ACTION_TYPES) for a in actions)
    assert not any(isinstance(a, Alert) and a.code == "state_machine_error" for a in actions)
    leds = [a for a in actions if isinstance(a, ShowLed)]
    if new.state is not old.state:
        assert leds == [ShowLed(LED_FOR[new.state])]
    else:
        assert leds == []
    if new.state is S.CHECKED_OUT and old.state is not S.CHECKED_OUT:
        assert old.state is S.READY and isinstance(event, CheckedOut)
    if new.state is S.READY and old.state is not S.READY:
        assert new.enrolled is True
    if isinstance(event, Undocked):
        assert new.state is S.EMPTY
    assert transition(old, event) == (new, actions)  # deterministic


def check_consistent(status: SlotStatus) -> None:
    """What holds for every status reachable from EMPTY."""
    assert bool(status.failed_codes) == (status.state is S.FAILED_CHECK)
    assert (status.officer_id is not None) == (status.state is S.CHECKED_OUT)
    assert (status.fault_reason is not None) == (status.state is S.FAULT)
    if status.state is S.EMPTY:
        assert status == SlotStatus()
    if status.state in (S.READY, S.CHECKED_OUT, S.CHARGING):
        assert status.enrolled and not status.offload_owed and not status.offload_outstanding
    if status.state is S.OFFLOADING:
        assert status.offload_outstanding


def test_event_samples_cover_every_event_type():
    assert {type(e) for e in SAMPLE_EVENTS} == set(EVENT_TYPES)


@pytest.mark.parametrize("path", VARIANT_PATHS, ids=lambda p: "-".join(type(e).__name__ for e in p))
def test_every_state_event_pair_is_defined(path):
    start, _ = run(path)
    check_consistent(start)
    for event in SAMPLE_EVENTS:
        new, actions = transition(start, event)
        check_step(start, event, new, actions)
        check_consistent(new)
        if new == start:
            # an explicit no-op carries no actions, except alerts/buzzes that report
            assert all(isinstance(a, Alert | Buzz) for a in actions)


def test_variant_paths_reach_every_state():
    assert {run(p)[0].state for p in VARIANT_PATHS} == set(S)


# --- sequences ----------------------------------------------------------------------

serials = st.sampled_from(["A", "B"])
identifications = st.builds(
    Identified,
    serials,
    st.sampled_from([True, True, True, False]),
    st.booleans(),
    st.integers(0, 2),
)
any_event = st.one_of(
    st.just(Docked()),
    st.just(Undocked()),
    identifications,
    st.builds(IdentifyFailed, st.just("timeout")),
    st.just(OffloadStarted()),
    st.just(OffloadDone()),
    st.builds(OffloadFailed, st.just("hash mismatch")),
    st.just(ChecksPassed()),
    st.builds(
        ChecksFailed,
        st.lists(st.sampled_from(["battery_low", "clock_drift"]), max_size=2).map(tuple),
    ),
    st.builds(Charging, st.integers(0, 100)),
    st.builds(CheckedOut, st.sampled_from(["officer-7", "officer-9", ""])),
    st.builds(Fault, st.just("overheat")),
    st.just(FaultCleared()),
)


@st.composite
def episode(draw) -> list:
    """A dock-to-take-away visit, possibly cut short, with any events mixed in."""
    visit = [
        Docked(),
        draw(identifications),
        OffloadStarted(),
        OffloadDone(),
        draw(st.sampled_from([ChecksPassed(), ChecksFailed(("battery_low",))])),
        ChecksPassed(),
        CheckedOut(draw(st.sampled_from(["officer-7", "officer-9"]))),
        Undocked(),
    ]
    visit = visit[: draw(st.integers(1, len(visit)))]
    mixed: list = []
    for event in visit:
        mixed.extend(draw(st.lists(any_event, max_size=1)))
        mixed.append(event)
    return mixed


sequences = st.lists(episode(), max_size=4).map(lambda visits: [e for v in visits for e in v])


class Oracle:
    """Watches one slot's transitions and checks the custody and offload invariants,
    from the events and actions alone."""

    def __init__(self) -> None:
        self.new_session()

    def new_session(self) -> None:
        self.identified_enrolled: bool | None = None  # the last identification's verdict
        self.outstanding = False  # a QueueOffload not yet answered
        self.new_custody_period()

    def new_custody_period(self) -> None:
        self.closes = 0
        self.returned = False
        self.queued_since_return = 0
        self.results_since_return = 0
        self.done_since_last_queue = True

    def step(self, old: SlotStatus, event: object, new: SlotStatus, actions: list) -> None:
        check_step(old, event, new, actions)
        check_consistent(new)
        identified_here = old.state is S.IDENTIFYING and isinstance(event, Identified)
        if isinstance(event, Docked) and old.state is S.EMPTY:
            self.new_session()
        if identified_here and old.serial is not None and event.serial != old.serial:
            self.new_session()  # the old device left unnoticed
        if identified_here:
            self.identified_enrolled = event.enrolled is True
        if isinstance(event, IdentifyFailed) and old.state is S.IDENTIFYING:
            self.identified_enrolled = None

        was_outstanding = self.outstanding
        if isinstance(event, OffloadDone | OffloadFailed) and old.state is not S.EMPTY:
            if self.outstanding:
                self.results_since_return += self.returned
                self.done_since_last_queue = isinstance(event, OffloadDone)
            self.outstanding = False
        for action in actions:
            if isinstance(action, CloseCustody):
                self.closes += 1
                assert self.closes == 1, "custody closed twice in one custody period"
                self.returned = True
                self.queued_since_return = int(was_outstanding)
                self.results_since_return = 0
            if isinstance(action, QueueOffload):
                assert not self.outstanding, "offload queued while one is in flight"
                self.outstanding = True
                self.done_since_last_queue = False
                self.queued_since_return += self.returned
        if identified_here and event.enrolled is True and event.in_custody:
            # a return: its custody is closed exactly once (a ledger that still says "in
            # custody" after the close is lagging), and its footage is offloaded
            assert self.closes == 1
            if any(isinstance(a, CloseCustody) for a in actions):
                assert new.state is S.OFFLOADING and self.outstanding

        if new.state is S.READY and old.state is not S.READY:
            assert self.identified_enrolled is True, "an unknown device became READY"
            assert not self.outstanding and self.done_since_last_queue
            if self.returned:
                assert self.closes == 1
                assert self.queued_since_return >= 1
                # every offload queued since the return was answered; on the happy path
                # (one attempt) that is exactly one QueueOffload
                assert self.queued_since_return == self.results_since_return
        if isinstance(event, Undocked):
            if old.state is not S.EMPTY:
                assert ShowLed(LedPattern.OFF) in actions
            if old.state is S.OFFLOADING:
                assert ("Alert", "offload_interrupted") in shape(actions)
            self.new_session()
        if new.state is S.CHECKED_OUT and old.state is not S.CHECKED_OUT:
            self.new_custody_period()  # the grant opens a new custody period


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences)
def test_sequences_keep_the_invariants(sequence):
    oracle = Oracle()
    status = SlotStatus()
    for event in sequence:
        new, actions = transition(status, event)
        oracle.step(status, event, new, actions)
        status = new


text = st.one_of(st.none(), st.just(""), st.sampled_from(["A", "B"]), st.integers(-3, 3))
odd_events = st.one_of(
    st.sampled_from(SAMPLE_EVENTS),
    st.builds(Identified, text, st.one_of(st.booleans(), text), text, text),
    st.builds(ChecksFailed, st.one_of(text, st.lists(text, max_size=3))),
    st.builds(Charging, text),
    st.builds(CheckedOut, text),
    st.builds(Fault, text),
    st.builds(OffloadFailed, text),
    st.builds(IdentifyFailed, text),
    st.sampled_from([None, 0, "Docked", Docked]),
)
any_status = st.builds(
    SlotStatus,
    state=st.sampled_from(list(S)),
    serial=st.one_of(st.none(), st.sampled_from(["", "A", "B"])),
    enrolled=st.booleans(),
    custody_closed=st.booleans(),
    offload_owed=st.booleans(),
    offload_outstanding=st.booleans(),
    failed_codes=st.lists(st.sampled_from(["battery_low", "device_unknown"]), max_size=2).map(
        tuple
    ),
    officer_id=st.one_of(st.none(), st.just("officer-7")),
    fault_reason=st.one_of(st.none(), st.just("overheat")),
    battery_percent=st.one_of(st.none(), st.integers(0, 100)),
)


@settings(max_examples=200, deadline=None)
@given(any_status, odd_events)
def test_any_status_and_any_event_never_raise(status, event):
    new, actions = transition(status, event)
    check_step(status, event, new, actions)
    assert dataclasses.is_dataclass(new)


def test_a_withdrawn_grant_is_judged_again_before_it_is_ready():
    """A grant that expired or was cancelled: the slot leaves CHECKED_OUT for CHARGING and
    the recorder is checked again; anywhere else it changes nothing."""
    ready, _ = run([Docked(), KNOWN, ChecksPassed()])
    granted, _ = transition(ready, CheckedOut("officer-7"))
    new, actions = transition(granted, GrantWithdrawn())
    assert new.state is S.CHARGING and new.officer_id is None
    assert actions == [ShowLed(LED_FOR[S.CHARGING]), RunChecks("A")]
    assert transition(ready, GrantWithdrawn()) == (ready, [])
