"""REQUIREMENTS.md §8 (issue 17): recorders maintained on a schedule (000 §14.1; 002
art.22; 003 art.21) and only enrolled recorders accepted on the dock's ports (004 att.2
§9). Emulated recorders over TCP, real SQLite, the real audit log. Each test names the
article it enforces."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dock.cli.custody import print_status
from dock.domain.audit_kinds import AuditKind
from dock.domain.slot_state import SlotState
from dock.services import devices
from dock.services.device_care import local_date
from dock.services.errors import RequestError
from dock.services.requests import call
from dock.services.status import status_report
from firmware_protocol.messages import EventKind

from .conftest import PIN


def codes(decision) -> set[str]:
    return {r["code"] for r in decision.as_dict()["reasons"]}


def local_day(svc, days: int) -> str:
    return (datetime.now(ZoneInfo(svc.timezone)).date() + timedelta(days=days)).isoformat()


# --------------------------------------------------------------------------- maintenance


def test_a_recorder_past_its_maintenance_date_is_refused_with_the_reason(make_dock) -> None:
    """000 §14.1; 002 art.22: recorders are maintained on a schedule. A recorder whose
    maintenance fell due yesterday fails the pre-shift check with "maintenance overdue
    since <date>": the check-out is refused with that reason, the failing check is
    audited, and the listing says OVERDUE. A date in the future does not refuse."""
    svc, _ = make_dock({"battery_percent": 95.0})
    future = call(svc, "device.maintenance_due", {"serial": "EMU0001", "due": local_day(svc, 30)},
                  actor="tech")  # fmt: skip
    assert future.due == local_day(svc, 30)
    (row,) = devices.listing(svc)
    assert row.maintenance_due == local_day(svc, 30) and not row.maintenance_overdue
    svc.sweep()
    assert svc.views["1"].ready  # not due yet: nothing refused

    yesterday = local_day(svc, -1)
    call(svc, "device.maintenance_due", {"serial": "EMU0001", "due": yesterday}, actor="tech")
    svc.sweep()
    d = svc.checkout("1002", PIN)
    assert not d.granted and "maintenance_flag" in codes(d)
    (reason,) = [r for r in d.as_dict()["reasons"] if r["code"] == "maintenance_flag"]
    assert yesterday in reason["message"]
    view = svc.views["1"]
    (failure,) = view.failures
    assert failure.detail == {"case": "overdue", "since": yesterday}
    from dock.domain.checks import message_for

    assert message_for("maintenance_flag", "en", **failure.detail) == (
        f"Maintenance overdue since {yesterday}"
    )
    checks = [e for e in svc.audit.entries() if e.kind == AuditKind.CHECKS]
    assert "maintenance_flag" in checks[-1].data["failed"]
    assert any(yesterday in r for r in checks[-1].data["reasons"])
    (set_entry, _) = [e for e in svc.audit.entries() if e.kind == AuditKind.MAINTENANCE_DUE]
    assert set_entry.actor == "tech" and set_entry.data == {"due": local_day(svc, 30)}
    (row,) = devices.listing(svc)
    assert row.maintenance_overdue and row.maintenance_due == yesterday


def test_a_maintenance_date_is_set_only_for_an_enrolled_recorder_and_a_real_date(
    make_dock,
) -> None:
    """000 §14.1: a due date names an enrolled recorder and a calendar date; each mistake
    is refused in one line; ``none`` clears it and the recorder passes again."""
    svc, _ = make_dock({"battery_percent": 95.0})
    for serial, due, said in (("NOPE", "2030-01-01", "device NOPE is not enrolled"),
                              ("EMU0001", "31/12/2030", "is not an ISO date")):  # fmt: skip
        with pytest.raises(RequestError, match=said) as refused:
            call(svc, "device.maintenance_due", {"serial": serial, "due": due}, actor="tech")
        assert "\n" not in str(refused.value)
    call(svc, "device.maintenance_due", {"serial": "EMU0001", "due": local_day(svc, -3)},
         actor="tech")  # fmt: skip
    svc.sweep()
    assert not svc.views["1"].ready
    cleared = call(svc, "device.maintenance_due", {"serial": "EMU0001", "due": "none"},
                   actor="tech")  # fmt: skip
    assert cleared.due is None
    svc.sweep()
    assert svc.views["1"].ready


# --------------------------------------------------------------------------- enrolment


def test_an_unenrolled_recorder_is_not_offloaded_checked_out_or_written_to(make_dock) -> None:
    """004 att.2 §9: only enrolled recorders are accepted on the dock's ports. A recorder
    the dock does not know, docked with footage and a clock 40 s off, is not offloaded
    into anyone's folder, not checked out, and nothing is written to it (no clock set, no
    officer, no erase); it is reported: the failing check in the audit log (which
    headquarters hears as checks.failed) and a status line naming the slot."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.05, "clock_offset_s": 40.0},
        enrol=False,
    )
    model = recs[0].model
    before = sorted(r.id for r in model.ordered_recordings())
    svc.sweep()
    assert svc.slot_status["1"].state is SlotState.FAILED_CHECK
    d = svc.checkout("1001", PIN)
    assert not d.granted and "device_unknown" in codes(d)
    assert call(svc, "device.offload", {"slot": "1"}, actor="tech") is None  # refused
    svc.sweep()
    assert svc.store.archive_entries() == []
    assert svc.store.open_custody_of_officer("1001") is None
    assert sorted(r.id for r in model.ordered_recordings()) == before  # nothing erased
    kinds = {e["kind"] for e in model.state["events"]}
    assert EventKind.TIME_SET not in kinds and model.state.get("officer") is None
    assert not [e for e in svc.audit.entries() if e.kind == AuditKind.CLOCK_SET]
    (checks,) = [e for e in svc.audit.entries() if e.kind == AuditKind.CHECKS]
    assert checks.subject == model.serial and "device_unknown" in checks.data["failed"]
    out = io.StringIO()
    with redirect_stdout(out):
        print_status(status_report(svc, svc.sweep()))
    assert f"UNKNOWN RECORDER in slot 1: {model.serial} is not enrolled" in out.getvalue()


def test_a_maintenance_interval_schedules_every_recorder_and_each_repair(make_dock) -> None:
    """000 §14.1; 002 art.22: with ``maintenance_interval_days`` a recorder with no date of
    its own falls due that long after its enrolment; marking it repaired sets the next
    due date an interval ahead (audited)."""
    svc, _ = make_dock({"battery_percent": 95.0}, policy={"maintenance_interval_days": 90})
    enrolled = svc.store.device("EMU0001").enrolled_at
    (row,) = devices.listing(svc)
    assert row.maintenance_due == local_date(enrolled + 90 * 86400, svc.timezone)
    svc.sweep()
    assert svc.views["1"].ready
    later = enrolled + 91 * 86400  # the interval has run: overdue
    svc.clock.now = lambda: later  # type: ignore[method-assign]
    svc.sweep()
    (failure,) = svc.views["1"].failures
    assert failure.code == "maintenance_flag" and failure.detail["case"] == "overdue"
    call(svc, "device.flag", {"serial": "EMU0001", "maintenance": False}, actor="tech")
    (entry,) = [e for e in svc.audit.entries() if e.kind == AuditKind.MAINTENANCE_DUE]
    assert entry.data == {"due": local_date(later + 90 * 86400, svc.timezone),
                          "after": "repaired", "interval_days": 90}  # fmt: skip
    svc.sweep()
    assert svc.views["1"].ready
