"""Check-out at shift start, end to end: emulated recorders over TCP, real SQLite,
the real audit log. Each failing check refuses with its own code."""

from __future__ import annotations

import sqlite3
import time

import pytest

from dock.daemon.parts import DockParts, SlotWiring
from dock.daemon.service import DockService, Override
from dock.devices.clock import FixedClock
from dock.domain.audit_kinds import AuditKind
from dock.domain.slot_state import SlotState
from firmware_protocol.messages import EventKind, FaultFlag

from .conftest import PIN


def codes(decision) -> set[str]:
    return {r["code"] for r in decision.as_dict()["reasons"]}


def test_a_good_device_is_granted_and_written_with_the_officer(make_dock) -> None:
    """003 art.21(2): a recorder is checked out to one named officer: written on the recorder, in
    the custody ledger and in the audit log, with its clock set."""
    svc, recs = make_dock({"battery_percent": 95.0})
    d = svc.checkout("1001", PIN)
    assert d.granted and d.slot == "1" and d.device == recs[0].model.serial, d
    assert recs[0].model.state["officer"] == {
        "officer_id": "1001", "name": "Wang Wei", "unit": "Traffic 3",
    }  # fmt: skip
    assert svc.store.open_custody_of_officer("1001").serial == d.device
    kinds = [e.kind for e in svc.audit.entries()]
    assert "checkout" in kinds and "enrol" in kinds and "clock_set" in kinds


def test_the_best_charged_ready_device_is_chosen(make_dock) -> None:
    svc, recs = make_dock({"battery_percent": 88.0}, {"battery_percent": 97.0})
    d = svc.checkout("1001", PIN)
    assert d.granted and d.device == recs[1].model.serial


def test_badge_identifies_the_officer(make_dock) -> None:
    """003 art.21(2): the badge identifies the named officer the recorder goes to."""
    svc, _ = make_dock({"battery_percent": 95.0})
    d = svc.checkout(badge="BADGE-1001")
    assert d.granted and d.officer_id == "1001"


@pytest.mark.parametrize(
    ("spec", "policy", "code"),
    [
        ({"battery_percent": 40.0}, None, "battery_low"),
        ({"battery_percent": 85.0, "battery_health_percent": 60}, None, "battery_runtime"),
        ({"storage_free_mb": 2000}, None, "storage_low"),
        ({}, {"allowed_firmware": ("2.0.0",)}, "firmware_not_allowed"),
        ({"recordings": 2, "recording_mb": 0.05}, None, "footage_pending"),
        ({"faults": FaultFlag.SENSOR}, None, "device_fault"),
        ({"faults": FaultFlag.STORAGE}, None, "self_test_failed"),
    ],
)
def test_each_failing_check_refuses_with_its_code(make_dock, spec, policy, code) -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: each failing pre-shift check refuses the check-out
    with its own code."""
    svc, _ = make_dock({"battery_percent": 95.0, **spec}, policy=policy)
    if code == "footage_pending":
        svc.offloader = None  # no evidence store: the footage stays on the recorder
    d = svc.checkout("1001", PIN)
    assert not d.granted
    assert {"no_device_ready", code} <= codes(d)
    assert svc.store.open_custody_of_officer("1001") is None


def test_untrusted_dock_clock_fails_closed(make_dock) -> None:
    """004 att.3 art.9: the dock never pushes a time it does not trust. Its clock says
    1.8e9 (weeks from now) and is not synchronised: the check-out is refused, and the
    recorder's own clock stays as it was (30 s fast), with no SET_TIME in its log."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "clock_offset_s": 30.0},
        clock=FixedClock(False, "kernel: clock not synchronised", 1.8e9),
    )
    d = svc.checkout("1001", PIN)
    assert not d.granted and {"clock_untrusted", "clock_drift"} <= codes(d)
    model = recs[0].model
    assert abs(model.device_time() - time.time() - 30.0) < 1.0  # not moved (to 1.8e9)
    assert not [e for e in model.state["events"] if e["kind"] == EventKind.TIME_SET]
    assert not [e for e in svc.audit.entries() if e.kind == AuditKind.CLOCK_SET]


def test_maintenance_lost_and_unknown_devices_are_never_handed_out(make_dock) -> None:
    """000 §14.1; 003 art.21: recorders flagged for maintenance, reported lost or not enrolled are
    never handed out."""
    svc, recs = make_dock({"battery_percent": 95.0}, {"battery_percent": 96.0})
    svc.store.flag_device(recs[0].model.serial, maintenance=True)
    svc.store.flag_device(recs[1].model.serial, lost=True)
    d = svc.checkout("1001", PIN)
    assert not d.granted and {"maintenance_flag", "device_lost"} <= codes(d)

    svc2, _ = make_dock({"battery_percent": 95.0}, enrol=False)
    d2 = svc2.checkout("1002", PIN)
    assert not d2.granted and "device_unknown" in codes(d2)


def test_one_device_each_second_checkout_refused(make_dock) -> None:
    """003 art.21(2): one recorder per officer: a second check-out by the same officer is
    refused."""
    svc, _ = make_dock({"battery_percent": 95.0}, {"battery_percent": 94.0})
    assert svc.checkout("1001", PIN).granted
    again = svc.checkout("1001", PIN)
    assert not again.granted and codes(again) == {"officer_has_device"}
    assert svc.checkout("1002", PIN).granted  # the other recorder goes to the other officer


def test_granted_device_waiting_in_its_slot_is_not_given_twice(make_dock) -> None:
    """003 art.21(2): a recorder granted to one officer is never given to another."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    assert svc.slot_status["1"].state is SlotState.CHECKED_OUT
    d = svc.checkout("1002", PIN)
    assert not d.granted and "no_device_ready" in codes(d)


def test_unknown_wrong_pin_and_disabled_officers_are_refused(make_dock) -> None:
    """003 art.21(2): only a named, enabled officer with the right PIN gets a recorder; each refusal
    is audited."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert codes(svc.checkout("7777", PIN)) == {"officer_unknown"}
    assert codes(svc.checkout("1001", "000000")) == {"officer_unknown"}
    svc.store.set_officer_disabled("1002", True)
    assert codes(svc.checkout("1002", PIN)) == {"officer_disabled"}
    refused = [e for e in svc.audit.entries() if e.kind == "checkout_refused"]
    assert len(refused) == 3


def test_docking_closes_custody_from_the_device_identity(make_dock) -> None:
    """003 art.21(2): the recorder's own identity closes its custody on return (the chain device,
    officer, time)."""
    svc, _ = make_dock({"battery_percent": 95.0})
    d = svc.checkout("1001", PIN)
    svc.inspect("1")  # still in its slot, not taken yet: not a return
    assert svc.store.open_custody_of_officer("1001") is not None
    svc.taken("1")  # the officer took it out
    assert svc.slot_status["1"].state is SlotState.EMPTY
    svc.inspect("1")  # ... and later docked it again
    assert svc.store.open_custody_of_officer("1001") is None
    # nothing to offload from this one, so it is checked and ready again
    assert svc.slot_status["1"].state is SlotState.READY
    checkins = [e for e in svc.audit.entries() if e.kind == "checkin"]
    assert len(checkins) == 1 and checkins[0].subject == d.device


def test_supervisor_override_needs_credentials_and_a_reason(make_dock) -> None:
    """003 art.5 (REQUIREMENTS §1): an override of a failing check needs a supervisor's credentials
    and a reason, and is audited."""
    svc, _ = make_dock({"battery_percent": 60.0})
    bad = svc.checkout("1001", PIN, override=Override("9001", "123456", "urgent"))
    assert not bad.granted and codes(bad) == {"override_refused"}
    no_reason = svc.checkout("1001", PIN, override=Override("9001", "999000", ""))
    assert codes(no_reason) == {"override_reason_missing"}
    ok = svc.checkout("1001", PIN, override=Override("9001", "999000", "riot response"))
    assert ok.granted and ok.override_by == "9001"
    overrides = [e for e in svc.audit.entries() if e.kind == "override"]
    assert overrides and overrides[0].data["reason"] == "riot response"
    assert "battery_low" in overrides[0].data["overridden"]


def test_unknown_device_cannot_be_overridden(make_dock) -> None:
    """000 §14.1: a recorder not enrolled is never handed out, not even by an override."""
    svc, _ = make_dock({"battery_percent": 95.0}, enrol=False)
    d = svc.checkout("1001", PIN, override=Override("9001", "999000", "riot response"))
    assert not d.granted and "device_unknown" in codes(d)


def test_a_tampered_audit_row_is_caught(make_dock) -> None:
    """000 §10: a check-out's audit entry changed in the database is caught by verification."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    assert svc.audit.verify().ok
    db = sqlite3.connect(svc.audit.db_path)
    # a tamperer with the file in hand removes the append-only guard first
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f'DROP TRIGGER "{name}"')
    row = db.execute("SELECT seq FROM entries WHERE kind = 'checkout'").fetchone()
    db.execute("UPDATE entries SET actor = 'someone else' WHERE seq = ?", row)
    db.commit()
    report = svc.audit.verify()
    assert not report.ok and report.first_bad == row[0]


def test_a_grant_made_by_another_process_shows_in_the_daemon(make_dock) -> None:
    from dock.daemon.composition import open_transport
    from dock.storage.store import Store

    daemon, _ = make_dock({"battery_percent": 95.0})
    daemon.sweep()
    assert daemon.slot_status["1"].state is SlotState.READY
    parts = daemon.parts
    cli = DockService(  # what `dock checkout` builds in its own process
        DockParts(
            dock_id=parts.dock_id,
            store=Store(daemon.store.path),
            audit=daemon.audit,
            policy=daemon.policy,
            clock=daemon.clock,
            slots=SlotWiring(dict(parts.slots.ports), open_transport, parts.slots.lock_dir),
        )
    )
    assert cli.checkout("1001", PIN).granted
    daemon.inspect("1")
    assert daemon.slot_status["1"].state is SlotState.CHECKED_OUT
    assert daemon.slot_status["1"].officer_id == "1001"


def test_undock_and_redock_seen_by_polling(make_dock, start_recorder) -> None:
    """003 art.21(2): a recorder taken out stays with its officer until the same recorder is docked
    again."""
    svc, recs = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    port = recs[0].url.rsplit(":", 1)[1]
    recs[0].server.stop()  # the officer takes the recorder out of the slot
    svc.inspect("1")
    assert svc.slot_status["1"].state is SlotState.EMPTY
    assert svc.store.awaiting_takeaway("1") is None  # taken: docking it again is a return
    assert svc.store.open_custody_of_officer("1001") is not None  # still out with 1001
    # end of shift: the same recorder (same state on its flash) is docked again
    start_recorder(listen=f"tcp://127.0.0.1:{port}", data_dir=recs[0].data_dir)
    svc.inspect("1")
    assert svc.store.open_custody_of_officer("1001") is None
    assert svc.slot_status["1"].state is SlotState.READY
