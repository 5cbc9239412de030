"""Recorders away from the dock, over a real dock (real SQLite, a real emulated recorder,
the real audit log): late for their offload before they are docked (REQUIREMENTS §4:
002 art.23, 001 art.19(3), 004 att.1 art.5), and raised when not back by the end of their
shift (REQUIREMENTS §8: 000 §14.1; 002 art.22; 003 art.21). Times are passed in as
``now`` (or the database's clock is set back): nothing waits on the wall clock."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dock.daemon.maintenance import Maintenance
from dock.domain.audit_kinds import AuditKind
from dock.domain.policy import PRESETS
from dock.evidence.deadlines import deadline_report
from dock.evidence.shift_returns import not_returned, return_due
from dock.reporting.events import event_for
from dock.services.status import status_report
from hq.alerts import AlertKind, event_rule
from mqtt_contract.contract import EventType

from .conftest import PIN

H = 3600.0


class StoreClock:
    """The clock the dock's database stamps custody with, set by the test."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _away(make_dock, policy: dict[str, Any] | None = None, **spec: Any) -> tuple[Any, Any]:
    """A dock of one recorder, checked out to officer 1001 and taken away."""
    svc, recs = make_dock({"battery_percent": 95.0, **spec}, policy=policy)
    for _ in range(5):  # a link that failed once is read again at the next sweep
        svc.sweep()
        if svc.views["1"].ready:
            break
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    return svc, recs


def _kinds(svc: Any, kind: AuditKind) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def _states(svc: Any, now: float) -> list[tuple[bool, str]]:
    return [(r["away"], r["state"]) for r in deadline_report(svc.store, svc.policy, "UTC", now)]


def test_a_recorder_kept_away_is_at_risk_then_overdue_before_it_is_docked(make_dock) -> None:
    """002 art.23: 24 h from the recording. Away, the dock does not know when its
    recordings were made, so it counts from the check-out: at risk at 18 h, overdue
    after 24 h, each raised once (audit, then headquarters), while still away."""
    svc, _ = _away(make_dock)
    (episode,) = svc.store.custody_episodes()
    out = episode.out_at
    assert _states(svc, out + 10 * H) == [(True, "on_time")]
    assert _states(svc, out + 19 * H) == [(True, "at_risk")]
    assert _states(svc, out + 3 * 24 * H) == [(True, "overdue")]

    m = Maintenance(svc.parts)
    for now in (out + 10 * H, out + 19 * H, out + 20 * H, out + 25 * H, out + 26 * H):
        m.deadlines(now)
    (risk,) = _kinds(svc, AuditKind.DEADLINE_AT_RISK)
    (late,) = _kinds(svc, AuditKind.DEADLINE_OVERDUE)
    assert risk.subject == late.subject == episode.serial
    assert late.data["away"] is True and late.data["custody_id"] == episode.id
    assert late.data["returned_at"] is None and late.data["deadline_from"] == "recording"
    # headquarters hears of it as deadline.overdue with the contract's names
    kind, data = event_for(late, 1.0)  # type: ignore[misc]
    assert kind is EventType.DEADLINE_OVERDUE
    assert data["officer"] == "1001" and data["due"] == late.data["deadline_utc"]

    # a restarted daemon (a new Maintenance) does not raise them again
    again = Maintenance(svc.parts)
    again.deadlines(out + 27 * H)
    assert len(_kinds(svc, AuditKind.DEADLINE_OVERDUE)) == 1
    assert len(_kinds(svc, AuditKind.DEADLINE_AT_RISK)) == 1


def test_docked_the_recordings_own_times_count(make_dock) -> None:
    """002 art.23: once offloaded, the archived recordings' times start the deadline (kept
    within the episode): a recorder checked out 30 h ago whose footage was made in the
    last minutes and offloaded at once is on time, though 30 h have passed since the
    check-out the dock counted from while it was away."""
    svc, recs = make_dock({"battery_percent": 95.0})
    for _ in range(5):
        svc.sweep()
        if svc.views["1"].ready:
            break
    clock = StoreClock(time.time() - 30 * H)  # checked out 30 h ago
    svc.store._clock = clock
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    (episode,) = svc.store.custody_episodes()
    assert _states(svc, time.time()) == [(True, "overdue")]  # away: from the check-out
    recs[0].model.film(2)  # made just now
    clock.t = time.time()
    svc.inspect("1")  # docked: returned, offloaded
    if not svc.store.archive_entries():
        svc.offload("1")
    assert len(svc.store.archive_entries()) == 2
    (row,) = deadline_report(svc.store, svc.policy, "UTC", time.time() + 60)
    assert (row["away"], row["offload_basis"], row["state"]) == (False, "archive", "done")
    first_end = min(e["end_ms"] for e in svc.store.archive_entries()) / 1000
    assert row["started_at"] == _iso(first_end) and first_end > episode.out_at + 29 * H


def _iso(t: float) -> str:
    from dock.devices.clock import utc_iso

    return utc_iso(t)


def test_under_the_return_rule_a_recorder_away_has_no_deadline(make_dock) -> None:
    """003 art.13: 24 h after the return; a recorder away is not late for its offload
    (the shift-end alert covers it), and is late 24 h after it comes back."""
    svc, _ = _away(make_dock, policy={"offload_deadline_from": "return"})
    (episode,) = svc.store.custody_episodes()
    assert deadline_report(svc.store, svc.policy, "UTC", episode.out_at + 5 * 24 * H) == []


def test_working_day_rule_away_over_the_weekend(make_dock) -> None:
    """001 art.19(3): one working day after the activity ended; away, from the check-out:
    overdue at the latest by the end of the second working day after check-out."""
    svc, _ = _away(make_dock, policy={"offload_deadline_working_days": 1,
                                      "offload_deadline_from": "activity_end"})  # fmt: skip
    (episode,) = svc.store.custody_episodes()
    rows = deadline_report(svc.store, svc.policy, "UTC", episode.out_at + 5 * 24 * H)
    assert [(r["away"], r["state"], r["deadline_from"]) for r in rows] == [
        (True, "overdue", "activity_end")
    ]


# --------------------------------------------------------------------------- shift end


@pytest.mark.parametrize(
    ("shift_hours", "grace", "due_h"),
    [(10.0, 30, 10.5), (12.0, 30, 12.5), (8.0, 1, 8 + 1 / 60)],
)
def test_return_due_is_the_end_of_the_shift_plus_the_grace(shift_hours, grace, due_h) -> None:
    """000 §14.1; 002 art.22; 003 art.21: a recorder is due back at the end of its shift."""
    import dataclasses

    p = dataclasses.replace(PRESETS["strictest"], shift_hours=shift_hours,
                            return_grace_minutes=grace)  # fmt: skip
    assert return_due(1000.0, p) == pytest.approx(1000.0 + due_h * H)


def test_return_due_refuses_a_nonsense_shift() -> None:
    """000 §14.1: a shift of no length would raise every recorder at once."""
    import dataclasses

    with pytest.raises(ValueError):
        return_due(0.0, dataclasses.replace(PRESETS["strictest"], shift_hours=0.0))
    with pytest.raises(ValueError):
        return_due(0.0, dataclasses.replace(PRESETS["strictest"], return_grace_minutes=-1))


def test_a_recorder_not_back_by_the_end_of_its_shift_raises_an_alert_once(make_dock) -> None:
    """000 §14.1; 002 art.22; 003 art.21: a recorder not docked by the end of its shift
    (10 h + 30 min by default) is raised once per episode: an audit entry, an event for
    headquarters (an alert there until its check-in) and a line on the status."""
    svc, _ = _away(make_dock)
    (episode,) = svc.store.custody_episodes()
    due = episode.out_at + 10.5 * H
    assert not_returned(svc.store, svc.policy, "UTC", due) == []
    (row,) = not_returned(svc.store, svc.policy, "UTC", due + 1)
    assert (row["serial"], row["officer_id"], row["custody_id"]) == (
        episode.serial, "1001", episode.id,
    )  # fmt: skip

    m = Maintenance(svc.parts)
    m.deadlines(due - 60)
    assert _kinds(svc, AuditKind.RECORDER_NOT_RETURNED) == []
    m.deadlines(due + 60)
    m.deadlines(due + 3 * H)
    Maintenance(svc.parts).deadlines(due + 4 * H)  # a restart: not raised again
    (entry,) = _kinds(svc, AuditKind.RECORDER_NOT_RETURNED)
    assert entry.actor == "dock" and entry.subject == episode.serial
    assert entry.data["officer_id"] == "1001" and entry.data["due_utc"] == _iso(due)

    kind, data = event_for(entry, 1.0)  # type: ignore[misc]
    assert kind is EventType.RECORDER_NOT_RETURNED
    assert data["officer"] == "1001" and data["due"] == _iso(due)
    event = {"type": kind.value, "subject": episode.serial, "data": data}
    opened = event_rule("s", "d", event)
    assert [(a.key.kind, a.key.subject) for a in opened.open] == [
        (AlertKind.RECORDER_NOT_RETURNED, episode.serial)
    ]
    back = event_rule("s", "d", {"type": "checkin", "data": {"serial": episode.serial}})
    assert [(k.kind, k.subject) for k in back.close] == [
        (AlertKind.RECORDER_NOT_RETURNED, episode.serial)
    ]


def test_the_status_names_a_recorder_not_returned(make_dock, capsys) -> None:
    """000 §14.1; 002 art.22; 003 art.21: `dock status` says which recorder is not back,
    whose it is and since when, until it is docked."""
    from dock.cli.custody import print_status

    svc, recs = make_dock({"battery_percent": 95.0})
    for _ in range(5):
        svc.sweep()
        if svc.views["1"].ready:
            break
    clock = StoreClock(time.time() - 11 * H)  # checked out 11 h ago
    svc.store._clock = clock
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    report = status_report(svc, svc.views.values())
    (row,) = report["not_returned"]
    assert row["serial"] == recs[0].model.serial and row["officer_id"] == "1001"
    print_status(report)
    out = capsys.readouterr().out
    assert f"NOT RETURNED: {row['serial']} of officer 1001" in out

    clock.t = time.time()
    svc.inspect("1")  # docked again
    assert status_report(svc, svc.views.values())["not_returned"] == []


def test_statistics_count_a_late_offload_from_the_recording(make_dock) -> None:
    """002 art.23 (REQUIREMENTS §9, late offloads): footage made 29 h before it was
    offloaded is late though it was offloaded minutes after the return; the statistics
    say so as the dock's own deadline report does."""
    from dock.services.stats import statistics

    svc, recs = make_dock({"battery_percent": 95.0})
    for _ in range(5):
        svc.sweep()
        if svc.views["1"].ready:
            break
    clock = StoreClock(time.time() - 30 * H)
    svc.store._clock = clock
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    device_now_ms = int(recs[0].model.device_time() * 1000)
    recs[0].model.film(2, start_ms=device_now_ms - int(29 * H * 1000))
    clock.t = time.time()
    svc.inspect("1")
    if not svc.store.archive_entries():
        svc.offload("1")
    now = time.time() + 60
    (row,) = deadline_report(svc.store, svc.policy, "UTC", now)
    assert row["state"] == "done_late"
    tables = statistics(svc.store.path, svc.audit.db_path, svc.policy, "UTC", now)["tables"]
    (late,) = tables["late_offloads"]["rows"]
    assert (late["returns"], late["late"], late["on_time"]) == (1, 1, 0)


def test_dock_deadlines_shows_a_recorder_away(make_dock, monkeypatch, capsys) -> None:
    """002 art.23: `dock deadlines` lists a recorder still away with where its deadline
    started, and exits 1 while one is overdue."""
    import argparse

    from dock.cli import retention as cli_retention

    svc, recs = make_dock({"battery_percent": 95.0})
    for _ in range(5):
        svc.sweep()
        if svc.views["1"].ready:
            break
    svc.store._clock = StoreClock(time.time() - 3 * 24 * H)  # out three days
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    monkeypatch.setattr(cli_retention, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    cli_retention.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deadlines"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    serial = recs[0].model.serial
    (line,) = [x for x in out.splitlines() if x.startswith(serial)]
    assert "AWAY since" in line and "from the recording" in line and "overdue" in line
    assert "1 episode(s) listed (1 away), 1 overdue or at risk" in out
