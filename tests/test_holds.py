"""Holds, purging and offload deadlines over a real dock: real SQLite, real archived files
and sealed bags (make_dock + sweep), real audit log."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from typing import Any

import pytest

from dock import cli_retention
from dock.evidence import holds as holds_mod
from dock.evidence.holds import (
    HoldError,
    HoldRegister,
    deadline_report,
    overdue_or_at_risk,
    purge,
    purges,
)
from dock.evidence.retention import HoldKind

from .conftest import PIN

SUPERVISOR, SUPERVISOR_PIN = "9001", "999000"
DAY = 86400.0
RETENTION_DAYS = 30


@pytest.fixture
def docked(make_dock) -> tuple[Any, HoldRegister]:
    """A dock with three recordings archived and sealed in a bag."""
    svc, _ = make_dock(
        {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.05},
        policy={"retention_days": RETENTION_DAYS},
    )
    svc.sweep()
    assert len(svc.store.archive_entries()) == 3
    return svc, HoldRegister(svc.store, svc.audit)


def run(svc: Any, register: HoldRegister, now: float, apply: bool = False) -> Any:
    return purge(
        svc.store,
        svc.audit,
        register,
        svc.offloader.evidence_dir,
        svc.policy,
        now,
        dry_run=not apply,
    )


def files(svc: Any) -> dict[str, str]:
    root = svc.offloader.evidence_dir
    return {e["recording_id"]: os.path.join(root, e["path"]) for e in svc.store.archive_entries()}


def bag_files(svc: Any) -> list[str]:
    root = os.path.join(svc.offloader.evidence_dir, "bags")
    return [
        os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n.endswith(".mp4")
    ]


def kinds(svc: Any) -> list[str]:
    return [e.kind for e in svc.audit.entries()]


def test_recordings_inside_retention_are_kept(docked) -> None:
    svc, register = docked
    for apply in (False, True):
        report = run(svc, register, time.time() + (RETENTION_DAYS - 1) * DAY, apply)
        assert report.considered == 3 and report.purged == []
        assert report.kept == {"retention": 3}
    assert all(os.path.exists(p) for p in files(svc).values())
    assert len(bag_files(svc)) == 3 and purges(svc.store) == []
    assert "purge" not in kinds(svc)


def test_past_retention_purged_on_apply_only_and_recorded(docked) -> None:
    svc, register = docked
    later = time.time() + (RETENTION_DAYS + 1) * DAY
    dry = run(svc, register, later)
    assert dry.dry_run and len(dry.purged) == 3 and len(dry.bags_partial) == 1
    assert all(os.path.exists(p) for p in files(svc).values()) and len(bag_files(svc)) == 3
    assert purges(svc.store) == [] and "purge" not in kinds(svc)

    report = run(svc, register, later, apply=True)
    assert len(report.purged) == 3 and report.kept == {} and not report.failed
    assert not any(os.path.exists(p) for p in files(svc).values())
    assert bag_files(svc) == []  # the bag's hard links went too
    assert report.bags_partial == dry.bags_partial
    rows = {r["recording_id"]: r for r in purges(svc.store)}
    entries = {e["recording_id"]: e for e in svc.store.archive_entries()}
    assert set(rows) == set(entries)
    audited = [e for e in svc.audit.entries() if e.kind == "purge"]
    assert len(audited) == 3
    for e in audited:
        archived = entries[e.data["recording"]]
        assert e.data["sha256"] == archived["sha256"].hex()
        assert e.data["path"] == archived["path"] == rows[e.data["recording"]]["path"]
        assert len(e.data["bag_links"]) == 1
    assert kinds(svc).count("bag_partially_purged") == 3
    assert svc.audit.verify().ok
    again = run(svc, register, later, apply=True)  # nothing left to consider
    assert again.considered == 0 and again.purged == []


def test_a_hold_keeps_its_recording_until_a_supervisor_releases_it(docked) -> None:
    svc, register = docked
    entries = svc.store.archive_entries()
    held = entries[1]
    h = register.place(
        held["serial"], held["recording_id"], HoldKind.COMPLAINT, "TS-2024-117", "1002"
    )
    assert [x.kind for x in register.holds_for(held["serial"], held["recording_id"])] == [
        HoldKind.COMPLAINT
    ]
    later = time.time() + 2 * RETENTION_DAYS * DAY
    report = run(svc, register, later, apply=True)
    assert len(report.purged) == 2 and report.kept == {"hold": 1}
    paths = files(svc)
    assert os.path.exists(paths[held["recording_id"]])
    assert [os.path.exists(p) for rid, p in paths.items() if rid != held["recording_id"]] == [
        False,
        False,
    ]
    assert len(bag_files(svc)) == 1  # the held recording's bag link stays

    with pytest.raises(HoldError, match="wrong PIN"):
        register.release(h.id, SUPERVISOR, "000000", "complaint withdrawn")
    with pytest.raises(HoldError, match="not a supervisor"):
        register.release(h.id, "1001", PIN, "complaint withdrawn")
    with pytest.raises(HoldError, match="reason"):
        register.release(h.id, SUPERVISOR, SUPERVISOR_PIN, " ")
    assert register.record(h.id).released_at is None
    assert run(svc, register, later, apply=True).kept == {"hold": 1}

    register.release(h.id, SUPERVISOR, SUPERVISOR_PIN, "complaint withdrawn")
    with pytest.raises(HoldError, match="already released"):
        register.release(h.id, SUPERVISOR, SUPERVISOR_PIN, "again")
    report = run(svc, register, later, apply=True)
    assert report.purged == [f"{held['serial']}/{held['recording_id']}"]
    assert not os.path.exists(paths[held["recording_id"]]) and bag_files(svc) == []
    k = kinds(svc)
    assert k.count("hold_placed") == 1 and k.count("hold_released") == 1
    assert k.count("hold_release_refused") == 3
    assert svc.audit.verify().ok
    with pytest.raises(HoldError, match="already purged"):
        register.place(held["serial"], held["recording_id"], "complaint", "X", "1002")


def test_doubt_keeps(docked) -> None:
    svc, register = docked
    a, b, c = svc.store.archive_entries()
    with svc.store._write() as db:  # a hold kind this version does not know, no start time
        db.execute(
            "INSERT INTO holds (serial, recording_id, kind, reference, placed_at, placed_by) "
            "VALUES (?, ?, 'future_kind', 'R-1', ?, 'hq')",
            (a["serial"], a["recording_id"], time.time()),
        )
        db.execute("UPDATE archive SET start_ms = 0 WHERE recording_id = ?", (b["recording_id"],))
    with pytest.raises(HoldError, match="unknown hold kind"):
        register.place(c["serial"], c["recording_id"], "whatever", "R-2", "hq")
    with pytest.raises(HoldError, match="not in the archive"):
        register.place(c["serial"], "NO-SUCH", "complaint", "R-2", "hq")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"), svc.store._write() as db:
        db.execute("DELETE FROM holds")
    report = run(svc, register, time.time() + 99 * DAY, apply=True)
    assert report.kept == {"invalid": 2} and len(report.purged) == 1
    assert all(os.path.exists(files(svc)[e["recording_id"]]) for e in (a, b))


def test_a_crash_around_the_deletion_is_finished_on_the_next_run(docked, monkeypatch) -> None:
    svc, register = docked
    later = time.time() + 99 * DAY
    first, _, _ = svc.store.archive_entries()

    def crash_before_unlink(path: str, links: list[str]) -> None:
        raise KeyboardInterrupt  # killed after the audit entry, before the deletion

    monkeypatch.setattr(holds_mod, "_delete", crash_before_unlink)
    with pytest.raises(KeyboardInterrupt):
        run(svc, register, later, apply=True)
    monkeypatch.undo()
    assert os.path.exists(files(svc)[first["recording_id"]]) and purges(svc.store) == []

    real_record = holds_mod._record_purge

    def crash_before_row(*a: Any) -> None:
        raise KeyboardInterrupt  # killed after the deletion, before the purge row

    monkeypatch.setattr(holds_mod, "_record_purge", crash_before_row)
    with pytest.raises(KeyboardInterrupt):
        run(svc, register, later, apply=True)
    monkeypatch.setattr(holds_mod, "_record_purge", real_record)
    assert not os.path.exists(files(svc)[first["recording_id"]]) and purges(svc.store) == []

    report = run(svc, register, later, apply=True)
    assert report.completed == [f"{first['serial']}/{first['recording_id']}"]
    assert len(report.purged) == 2 and len(purges(svc.store)) == 3
    assert not any(os.path.exists(p) for p in files(svc).values())
    assert kinds(svc).count("purge") == 4  # the first one audited twice, never unrecorded
    assert svc.audit.verify().ok


def test_deadline_report_from_return_to_offload(make_dock) -> None:
    svc, recs = make_dock({"battery_percent": 95.0}, policy={"offload_deadline_hours": 24.0})
    model = recs[0].model
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    model._generate_recordings(2, 50_000, 0)  # recorded on shift
    model.save()
    offloader, svc.offloader = svc.offloader, None  # returned; the offload has not run yet
    svc.inspect("1")
    episode = svc.store.custody_history()[0]
    assert episode.in_at is not None and svc.store.archive_entries() == []
    in_at = episode.in_at

    def state(now: float) -> str:
        (row,) = deadline_report(svc.store, svc.policy, svc.timezone, now)
        return row["state"]

    assert state(in_at) == "on_time"
    assert state(in_at + 23 * 3600) == "at_risk"
    assert state(in_at + 25 * 3600) == "overdue"
    late = deadline_report(svc.store, svc.policy, svc.timezone, in_at + 25 * 3600)
    assert [r["custody_id"] for r in overdue_or_at_risk(late)] == [episode.id]
    row = late[0]
    assert row["serial"] == model.serial and row["officer_id"] == "1001"
    assert row["deadline_utc"].endswith("Z") and "(UTC+08:00)" in row["deadline_local"]
    assert row["remaining_s"] == pytest.approx(-3600, abs=1)

    svc.offloader = offloader
    svc.offload("1")
    assert len(svc.store.archive_entries()) == 2
    (row,) = deadline_report(svc.store, svc.policy, svc.timezone, in_at + 25 * 3600)
    assert row["state"] == "done" and row["offload_basis"] == "archive"
    assert overdue_or_at_risk([row]) == []

    # A return with no footage: due until the next check-out shows nothing was pending.
    svc.sweep()
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    svc.inspect("1")
    t = time.time()
    rows = deadline_report(svc.store, svc.policy, svc.timezone, t + 25 * 3600)
    assert [r["state"] for r in rows] == ["done", "overdue"]
    svc.sweep()
    assert svc.checkout("1001", PIN).granted
    rows = deadline_report(svc.store, svc.policy, svc.timezone, t + 25 * 3600)
    assert [r["state"] for r in rows] == ["done", "done"]
    assert rows[1]["offload_basis"] == "nothing_pending"


def test_cli_commands(docked, monkeypatch, capsys) -> None:
    svc, _ = docked
    monkeypatch.setattr(cli_retention, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor", default="clerk")
    parser.add_argument("--config")
    cli_retention.add_retention_commands(parser.add_subparsers(dest="command", required=True))

    def dock(*argv: str) -> tuple[int, str]:
        args = parser.parse_args(argv)
        code = args.func(args)
        return code, capsys.readouterr().out

    e = svc.store.archive_entries()[0]
    code, out = dock(
        "hold", "add", e["serial"], e["recording_id"], "--kind", "litigation",
        "--reference", "CASE-9", "--until", "2099-12-31",
    )  # fmt: skip
    assert code == 0 and "hold 1 placed" in out
    code, out = dock("hold", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["reference"] == "CASE-9" and listed["until"].startswith("2099-12-31T16:00")
    code, out = dock("purge", "--json")
    assert code == 0 and json.loads(out)["kept"] == {"hold": 1, "retention": 2}
    code, out = dock("purge", "--apply")
    assert code == 0 and "0 purged" in out and "kept: hold 1, retention 2" in out
    code, _ = dock(
        "hold", "release", "1", "--supervisor", SUPERVISOR, "--pin", "1", "--reason", "x"
    )
    assert code == 1
    code, out = dock("deadlines", "--json")
    assert code == 0 and json.loads(out) == []
    assert svc.audit.verify().ok
