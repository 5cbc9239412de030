"""The alert rules on their own: tables of inputs and the alerts they open or close."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hq.alerts import (
    CLEARING,
    AlertKey,
    AlertKind,
    DockSeen,
    Thresholds,
    event_rule,
    failure_of,
    failure_rule,
    health_rule,
    missing_rule,
    silent_rule,
    state_rule,
)

TH = Thresholds()
#: The machine may be busy with other suites: no timing checks on generated examples.
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
S, D = "s1", "d1"


def opened(decision) -> set[tuple[str, str]]:
    return {(a.key.kind.value, a.key.subject) for a in decision.open}


def closed(decision) -> set[tuple[str, str]]:
    return {(k.kind.value, k.subject) for k in decision.close}


@pytest.mark.parametrize(
    ("state", "opens", "closes"),
    [
        ("lost", {("dock_lost", "")}, set()),
        ("ready", set(), {("dock_lost", ""), ("dock_silent", "")}),
        ("stopped", set(), {("dock_lost", ""), ("dock_silent", "")}),
    ],
)
def test_state(state, opens, closes):
    d = state_rule(S, D, {"state": state, "boot": "b", "time": "2026-01-01T00:00:00.000Z"})
    assert opened(d) == opens
    assert closed(d) == closes


def slot(**fields):
    return {"slot": "1", "state": "ready", "serial": "BWC-1", **fields}


@pytest.mark.parametrize(
    ("slots", "opens", "closes"),
    [
        ([], set(), {("dock_silent", "")}),
        (
            [slot(battery_health_pct=79, drift_s=0.0)],
            {("battery_health", "BWC-1")},
            {("dock_silent", ""), ("clock_drift_now", "BWC-1")},
        ),
        (
            [slot(battery_health_pct=80, drift_s=-2.5)],
            {("clock_drift_now", "BWC-1")},
            {("dock_silent", ""), ("battery_health", "BWC-1")},
        ),
        # unknown values (older firmware) neither open nor close
        ([slot(battery_health_pct=None, drift_s=None)], set(), {("dock_silent", "")}),
        # an empty slot has no device to blame
        (
            [{"slot": "2", "state": "empty", "serial": None, "battery_health_pct": 10}],
            set(),
            {("dock_silent", "")},
        ),
        # booleans are not numbers
        ([slot(battery_health_pct=True)], set(), {("dock_silent", "")}),
    ],
)
def test_health(slots, opens, closes):
    d = health_rule(S, D, {"slots": slots, "dock": {}}, TH)
    assert opened(d) == opens
    assert closed(d) == closes


def event(kind, **data):
    return {"type": kind, "boot": "b", "seq": 1, "time": "2026-01-01T00:00:00.000Z", "data": data}


@pytest.mark.parametrize(
    ("ev", "opens", "closes"),
    [
        (event("deadline.overdue", serial="X", due="…"), {("offload_overdue", "X")}, set()),
        (event("offload.done", serial="X", failed=0), set(), {("offload_overdue", "X")}),
        (event("offload.done", serial="X", failed=2), set(), set()),
        (event("clock.drift", serial="X", drift_before_s=9), {("clock_drift", "X")}, set()),
        (
            event("scanner.hit", serial="X", recording="R1", detail="EICAR"),
            {("scanner_hit", "X/R1")},
            set(),
        ),
        (event("fixity.failed", path="/a/b", serial="X"), {("fixity_failed", "/a/b")}, set()),
        # 000 §14.1; 002 art.22; 003 art.21: a recorder not back by the end of its shift,
        # until it is checked in
        (
            event("recorder.not_returned", serial="X", officer="1001", due="…"),
            {("recorder_not_returned", "X")},
            set(),
        ),
        (event("checkin", serial="X"), set(), {("recorder_not_returned", "X")}),
        # 001 art.19(3); 003 art.21(2): a return signed for by another, or by nobody
        (
            event("handover.flagged", serial="X", custody=7, flag="by_other", returned_by="1002"),
            {("handover_flagged", "X/7")},
            set(),
        ),
        (event("checks.failed", serial="X", failed=["battery_low"]), set(), set()),
    ],
)
def test_event(ev, opens, closes):
    """003 art.13; 004 att.2 §4; 004 att.2 §8; 003 art.21; 001 art.19(3): headquarters
    opens an alert for an overdue offload, a clock drift, a scanner hit, a failed fixity
    check, a recorder not returned and a return signed for by another or by nobody."""
    d = event_rule(S, D, ev)
    assert opened(d) == opens
    assert closed(d) == closes


@pytest.mark.parametrize(
    ("ev", "counter"),
    [
        (event("checks.failed", serial="X", failed=["battery_low"]), ("checks_failing", "X")),
        (event("checks.failed", serial="X", failed=[]), None),  # the checks pass again
        (event("checkout.refused", officer="1001", reasons=["lost"]), ("refusals", "")),
        (event("checkin", serial="X"), None),
    ],
)
def test_failure_of(ev, counter):
    found = failure_of(ev)
    assert (None if found is None else (found[0].value, found[1])) == counter


@pytest.mark.parametrize(
    ("kind", "count", "raised"),
    [
        (AlertKind.CHECKS_FAILING, 2, False),
        (AlertKind.CHECKS_FAILING, 3, True),
        (AlertKind.REFUSALS, 4, False),
        (AlertKind.REFUSALS, 5, True),
    ],
)
def test_failure_bounds(kind, count, raised):
    assert bool(failure_rule(S, D, kind, "X", count, TH).open) is raised


@RELAXED
@given(received=st.integers(0, 10_000), expected=st.integers(0, 10_000))
def test_missing_opens_exactly_when_short(received, expected):
    d = missing_rule(S, D, "b", received, expected)
    key = AlertKey(S, D, AlertKind.EVENTS_MISSING, "b")
    if received < expected:
        assert [a.key for a in d.open] == [key] and not d.close
        assert str(expected - received) in d.open[0].detail
    else:
        assert d.close == [key] and not d.open


@RELAXED
@given(
    last=st.one_of(st.none(), st.floats(0, 10_000)),
    since=st.floats(0, 10_000),
    now=st.floats(0, 20_000),
    state=st.sampled_from([None, "ready", "lost", "stopped"]),
)
def test_silent(last, since, now, state):
    d = silent_rule([DockSeen(S, D, state, last)], now, since, TH)
    heard = max(last or since, since)
    expect = state not in ("lost", "stopped") and now - heard > TH.silent_after_s
    assert bool(d.open) is expect
    assert not d.close


def test_silent_counts_from_hq_start():
    # heard an hour before headquarters (re)started: not silent until 3 intervals after
    docks = [DockSeen(S, D, "ready", 1000.0)]
    assert not silent_rule(docks, 4600 + 179, 4600, TH).open
    assert silent_rule(docks, 4600 + 181, 4600, TH).open


@RELAXED
@given(
    st.dictionaries(
        st.sampled_from(["battery_health_pct", "drift_s", "serial", "slot", "state"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    )
)
def test_health_never_raises_on_odd_slots(fields):
    health_rule(S, D, {"slots": [fields, "junk", 3], "dock": {}}, TH)


def test_clearing_kinds_are_conditions():
    # the event kinds need a person: they never clear by themselves
    assert AlertKind.SCANNER_HIT not in CLEARING
    assert AlertKind.FIXITY_FAILED not in CLEARING
    assert AlertKind.DOCK_LOST in CLEARING


def test_a_recording_that_could_not_go_on_tells_the_head_at_once() -> None:
    """002 art.20, 003 art.11, 004 att.1 art.3: an interruption for battery, storage or
    a fault opens an alert, not only an explanation item; a manual stop does not."""
    from hq.alerts import event_rule

    def decide(kind: str) -> list:
        event = {"type": "gap.found", "data": {"serial": "S1", "item": 7, "kind": kind,
                                               "reason": "battery", "officer": "1001"}}  # fmt: skip
        return event_rule("s", "d", event).open

    (opened,) = decide("interrupted")
    assert opened.key.kind == AlertKind.RECORDING_INTERRUPTED and opened.key.subject == "S1/7"
    assert len(decide("fault")) == 1
    assert decide("manual_stop") == []


def test_a_locked_pin_is_an_alert_until_a_supervisor_unlocks_it() -> None:
    from hq.alerts import event_rule

    locked = {"type": "pin.locked", "data": {"officer": "1001", "tries": 5, "known": True}}
    (opened,) = event_rule("s", "d", locked).open
    assert opened.key.kind == AlertKind.PIN_LOCKED and opened.key.subject == "1001"
    unlocked = {"type": "pin.unlocked", "data": {"officer": "1001", "by": "9001"}}
    (closed,) = event_rule("s", "d", unlocked).close
    assert (closed.kind, closed.subject) == (AlertKind.PIN_LOCKED, "1001")
