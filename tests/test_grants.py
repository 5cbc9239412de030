"""Grants not taken (issue 12): a grant left in its slot past ``grant_expiry_s`` expires,
and an officer can cancel their own. The dock's clock is driven past the expiry; nothing
waits on the wall clock."""

from __future__ import annotations

import time

from dock.domain import slot_state as sm
from dock.domain.audit_kinds import AuditKind
from dock.evidence.deadlines import deadline_report
from dock.services import requests
from dock.services.status import status_report

from .conftest import PIN


class StoreClock:
    """The clock the dock's database stamps grants with, driven by the test (the
    recorders' clocks and the dock's own are left alone: they are checked against
    each other at every sweep)."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def _dock(make_dock):
    """A dock of one recorder, its database on a clock the test drives."""
    svc, recs = make_dock({})
    clock = StoreClock()
    svc.store._clock = clock
    for _ in range(5):  # a link that failed once is read again at the next sweep
        svc.sweep()
        if svc.slot_status["1"].state is sm.SlotState.READY:
            break
    assert svc.slot_status["1"].state is sm.SlotState.READY
    return svc, recs, clock


def _entries(svc, kind: AuditKind) -> list:
    return [e for e in svc.audit.entries() if e.kind == kind]


def test_a_grant_not_taken_expires_and_the_recorder_is_ready_again(make_dock):
    """003 art.21(2): a grant not taken expires: the custody record never names an officer who
    did not take the recorder."""
    svc, recs, clock = _dock(make_dock)
    assert svc.checkout("1001", PIN).granted
    assert recs[0].model.officer_id() == "1001"

    clock.t += svc.parts.grant_expiry_s - 1
    svc.sweep()
    assert svc.slot_status["1"].state is sm.SlotState.CHECKED_OUT  # not yet

    clock.t += 2
    svc.sweep()
    assert svc.store.open_custody_of_officer("1001") is None
    assert svc.slot_status["1"].state is sm.SlotState.READY  # checked again, ready
    (entry,) = _entries(svc, AuditKind.GRANT_EXPIRED)
    assert entry.actor == "dock" and entry.subject == "EMU0001"
    assert entry.data["officer"] == "1001" and entry.data["undone_on_device"] is False
    assert "cannot clear" in entry.data["why"]  # it named no one before: said so
    # No custody episode: no offload deadline for a recorder that never left.
    assert svc.store.custody_episodes() == []
    assert deadline_report(svc.store, svc.policy, svc.timezone, clock.t + 86400 * 3) == []
    # The officer may check out again at once.
    assert svc.checkout("1001", PIN).granted


def test_an_officer_cancels_their_grant_and_the_recorder_names_its_officer_again(make_dock):
    """003 art.21(2): an officer cancels their grant; the recorder no longer names them."""
    svc, recs, _clock = _dock(make_dock)
    recs[0].model.assign("1001", "Wang Wei", "Traffic 3")  # its last officer, returned
    assert svc.checkout("1002", PIN).granted
    assert recs[0].model.officer_id() == "1002"
    (row,) = status_report(svc, svc.views.values())["slots"]  # what the kiosk shows
    assert row["grant"]["officer"] == "1002" and row["grant"]["officer_name"] == "Li Na"
    assert row["grant"]["expires_utc"] > row["grant"]["since_utc"]

    wrong = svc.cancel_grant("1002", "000000")
    assert not wrong.cancelled and wrong.reasons[0].code == "officer_unknown"
    nothing = svc.cancel_grant("1001", PIN)
    assert not nothing.cancelled and [r.code for r in nothing.reasons] == ["no_grant"]

    done = requests.call(svc, "custody.cancel_grant", {"officer": "1002", "pin": PIN}, actor="k")
    assert done.cancelled and done.slot == "1" and done.device == "EMU0001"
    assert done.undone_on_device is True
    assert recs[0].model.officer_id() == "1001"  # as before the grant
    (entry,) = _entries(svc, AuditKind.GRANT_CANCELLED)
    assert entry.actor == "1002" and entry.data["custody"] is not None
    assert svc.store.open_custody_of_officer("1002") is None
    assert svc.slot_status["1"].state is sm.SlotState.READY
    (row,) = status_report(svc, svc.views.values())["slots"]
    assert row["grant"] is None and row["state"] == "ready"


def test_a_grant_taken_in_time_does_not_expire(make_dock):
    """003 art.21(2): a grant taken in time stays with its officer."""
    svc, recs, clock = _dock(make_dock)
    assert svc.checkout("1001", PIN).granted
    recs[0].server.stop()  # taken out of the slot
    clock.t += svc.parts.grant_expiry_s + 5
    svc.sweep()
    assert svc.store.open_custody_of_officer("1001") is not None  # out with the officer
    assert _entries(svc, AuditKind.GRANT_EXPIRED) == []
