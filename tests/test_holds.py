"""Holds, purging and offload deadlines over a real dock: real SQLite, real archived files
and sealed bags (make_dock + sweep), real audit log."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dock.cli import appraisals as cli_appraisals
from dock.cli import retention as cli_retention
from dock.evidence import purge_batches
from dock.evidence.deadlines import deadline_report, overdue_or_at_risk
from dock.evidence.fixity import verify_archive
from dock.evidence.holds import HoldError, HoldRegister
from dock.evidence.purging import purge, purges
from dock.evidence.retention import HoldKind
from dock.storage import schema
from dock.storage.store import Store

from .appraisal_help import approved_appraisal
from .conftest import PIN

SUPERVISOR, SUPERVISOR_PIN = "9001", "999000"
SECOND, SECOND_PIN = "9002", "808541"
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
    svc.store.add_officer(SECOND, "Qian Lei", "Traffic 3", SECOND_PIN, role="supervisor")
    assert len(svc.store.archive_entries()) == 3
    return svc, HoldRegister(svc.store, svc.audit)


def run(svc: Any, register: HoldRegister, now: float, apply: bool = False) -> Any:
    return purge(
        svc.store,
        svc.audit,
        register,
        svc.offloader.seals,
        svc.offloader.evidence_dir,
        svc.policy,
        now,
        dry_run=not apply,
        approved_by=(SUPERVISOR, SECOND) if apply else (),
        actor="clerk",
        appraisal=approved_appraisal(svc, now) if apply else None,
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
    """000 §14.3; 003 art.15; 001 art.20: nothing is purged before its retention ends."""
    svc, register = docked
    for apply in (False, True):
        report = run(svc, register, time.time() + (RETENTION_DAYS - 1) * DAY, apply)
        assert report.considered == 3 and report.purged == []
        assert report.kept == {"retention": 3}
    assert all(os.path.exists(p) for p in files(svc).values())
    assert len(bag_files(svc)) == 3 and purges(svc.store) == []
    assert "purge" not in kinds(svc)


def test_past_retention_purged_on_apply_only_and_recorded(docked) -> None:
    """000 §14.3; 004 att.2 §6: past its retention a recording is purged only when applied, and
    every purge is recorded."""
    svc, register = docked
    later = time.time() + (RETENTION_DAYS + 1) * DAY
    dry = run(svc, register, later)
    assert dry.dry_run and len(dry.purged) == 3 and len(dry.removed) == 1
    assert all(os.path.exists(p) for p in files(svc).values()) and len(bag_files(svc)) == 3
    assert purges(svc.store) == [] and "purge" not in kinds(svc)

    report = run(svc, register, later, apply=True)
    assert len(report.purged) == 3 and report.kept == {} and not report.failed
    assert not any(os.path.exists(p) for p in files(svc).values())
    assert bag_files(svc) == []  # the package went with its last recording
    assert report.removed == dry.removed
    rows = {r["recording_id"]: r for r in purges(svc.store)}
    entries = {e["recording_id"]: e for e in svc.store.archive_entries()}
    assert set(rows) == set(entries)
    (intent,) = [e for e in svc.audit.entries() if e.kind == "purge_intent"]
    (done,) = [e for e in svc.audit.entries() if e.kind == "purge"]
    assert intent.seq < done.seq and done.data["bag"] == report.removed[0]
    assert sorted(done.data["recordings"]) == sorted(entries)
    for item in intent.data["record"]["recordings"]:
        archived = entries[item["recording"]]
        assert item["sha256"] == archived["sha256"].hex()
        assert item["path"] == archived["path"] == rows[item["recording"]]["path"]
    assert svc.audit.verify().ok
    assert verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit).ok
    again = run(svc, register, later, apply=True)  # nothing left to consider
    assert again.considered == 0 and again.purged == []


def test_a_hold_keeps_its_recording_until_a_supervisor_releases_it(docked) -> None:
    """000 §14.4; 001 art.20: a hold keeps its recording until a supervisor releases it, on their
    PIN with a reason, audited."""
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
    """000 §14.4: a hold the dock cannot read keeps its recording."""
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
    """004 att.2 §6: a purge cut by a crash is finished, and recorded, on the next run."""
    svc, register = docked
    later = time.time() + 99 * DAY
    first, _, _ = svc.store.archive_entries()

    def crash(*a: Any) -> None:
        raise KeyboardInterrupt  # killed after the intent, before the package went

    monkeypatch.setattr(purge_batches, "_retire", crash)
    with pytest.raises(KeyboardInterrupt):
        run(svc, register, later, apply=True)
    monkeypatch.undo()
    assert not os.path.exists(files(svc)[first["recording_id"]]) and purges(svc.store) == []
    assert run(svc, register, later).pending  # a dry run says it is unfinished

    report = run(svc, register, later, apply=True)
    assert len(report.completed) == 1 and report.purged == [] and len(purges(svc.store)) == 3
    assert not any(os.path.exists(p) for p in files(svc).values()) and bag_files(svc) == []
    assert kinds(svc).count("purge") == 1 and kinds(svc).count("purge_intent") == 1
    assert svc.audit.verify().ok


def test_deadline_report_from_return_to_offload(make_dock) -> None:
    """003 art.13: the offload deadline report, from the return to the offload."""
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
    assert [r["state"] for r in rows] == ["done", "done", "overdue"]
    assert rows[1]["offload_basis"] == "nothing_pending"
    # 002 art.23: the recorder now away 25 h is overdue before it is docked
    assert rows[2]["away"] and rows[2]["returned_at"] is None


def test_cli_commands(docked, monkeypatch, capsys) -> None:
    """001 art.20 (holds), 004 att.2 §6 (a purge applied cites an approved appraisal)."""
    svc, _ = docked
    monkeypatch.setattr(cli_retention, "service_from", lambda args: svc)
    monkeypatch.setattr(cli_appraisals, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor", default="clerk")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_retention.register(sub)
    cli_appraisals.register(sub)

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
    four_eyes = ("--supervisor", SUPERVISOR, "--supervisor-pin", SUPERVISOR_PIN,
                 "--second-supervisor", SECOND, "--second-pin", SECOND_PIN)  # fmt: skip
    code, out = dock("purge", "--apply", *four_eyes)  # 004 att.2 §6: no appraisal cited
    assert code == 2 and out == "" and svc.audit.find("purge_intent", "EMU0001") is None
    ids = [f"{x['serial']}:{x['recording_id']}" for x in svc.store.archive_entries()]
    code, out = dock("appraisal", "propose", *ids, "--proposer", SUPERVISOR,
                     "--pin", SUPERVISOR_PIN, "--reason", "retention ended")  # fmt: skip
    assert code == 0 and out.startswith("appraisal 1: 3 recording(s) proposed by 9001")
    code, out = dock("appraisal", "approve", "1", "--supervisor", SECOND, "--pin", SECOND_PIN)
    assert code == 0 and "approved by 9002" in out
    code, out = dock("purge", "--apply", *four_eyes, "--appraisal", "1")
    assert code == 0 and "0 purged" in out and "kept: hold 1, retention 2" in out
    code, _ = dock(
        "hold", "release", "1", "--supervisor", SUPERVISOR, "--pin", "1", "--reason", "x"
    )
    assert code == 1
    code, out = dock("deadlines", "--json")
    assert code == 0 and json.loads(out) == []
    assert svc.audit.verify().ok


# --------------------------------------------------------------------------- scoped holds


@pytest.fixture
def shifts(make_dock) -> tuple[Any, HoldRegister, list[int], list[list[str]]]:
    """Three shifts on one recorder (officers 1001, 1002, 1001): each checked out,
    recorded on, returned and offloaded: a custody episode and a package each."""
    svc, recs = make_dock({"battery_percent": 95.0}, policy={"retention_days": RETENTION_DAYS})
    svc.store.add_officer(SECOND, "Qian Lei", "Traffic 3", SECOND_PIN, role="supervisor")
    model = recs[0].model
    svc.sweep()
    episodes, recordings = [], []
    for officer in ("1001", "1002", "1001"):
        before = {e["recording_id"] for e in svc.store.archive_entries()}
        assert svc.checkout(officer, PIN).granted
        svc.taken("1")
        model._generate_recordings(2, 50_000, 0)
        model.save()
        svc.sweep()  # returned: custody closed, footage offloaded and sealed
        episodes.append(svc.store.custody_history()[0].id)
        new = [e for e in svc.store.archive_entries() if e["recording_id"] not in before]
        assert len(new) == 2 and {e["officer_id"] for e in new} == {officer}
        recordings.append([e["recording_id"] for e in new])
    return svc, HoldRegister(svc.store, svc.audit), episodes, recordings


def purged_ids(report: Any) -> set[str]:
    return {name.split("/")[1] for name in report.purged}


def test_a_hold_on_a_case_keeps_what_is_attached_now_and_later(shifts) -> None:
    """000 §14.4, 001 art.20, 004 att.1 art.5: footage used as evidence is kept; a hold
    on the case keeps every recording attached to it, also those attached after it."""
    svc, register, _episodes, recs = shifts
    serial = svc.store.archive_entries()[0]["serial"]
    svc.store.attach_case("C-7", serial, recs[0][0], "1001")
    hold = register.place_case("C-7", HoldKind.EVIDENCE_CASE, "C-7", "1001")
    assert register.covered(hold) == [(serial, recs[0][0])]
    svc.store.attach_case("C-7", serial, recs[2][1], "1001")  # attached after the hold
    assert len(register.covered(hold)) == 2
    later = time.time() + (RETENTION_DAYS + 1) * DAY
    report = run(svc, register, later, apply=True)
    assert purged_ids(report) == {r for shift in recs for r in shift} - {recs[0][0], recs[2][1]}
    kept = [i for i in report.items if i["action"] == "keep"]
    assert {i["recording_id"] for i in kept} == {recs[0][0], recs[2][1]}
    assert all("on case C-7" in i["reason"] for i in kept)
    assert verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit).ok
    register.release(hold.id, SUPERVISOR, SUPERVISOR_PIN, "case file closed and handed over")
    assert purged_ids(run(svc, register, later, apply=True)) == {recs[0][0], recs[2][1]}
    placed = [e for e in svc.audit.entries() if e.kind == "hold_placed"]
    assert placed[0].data["scope"] == "case" and placed[0].data["on"] == "case C-7"


def test_a_hold_on_an_officer_and_one_on_an_episode(shifts) -> None:
    """000 §14.4 (complaints, obstructed officers): an officer's recordings in a period,
    or one custody episode's, are kept until released."""
    svc, register, episodes, recs = shifts
    with svc.store._write() as db:  # the first shift was yesterday
        db.executemany("UPDATE archive SET start_ms = start_ms - 86400000 WHERE recording_id = ?",
                       [(r,) for r in recs[0]])  # fmt: skip
    rows = {e["recording_id"]: e for e in svc.store.archive_entries()}
    third_start = min(rows[r]["start_ms"] for r in recs[2]) / 1000
    register.place_officer("1001", HoldKind.COMPLAINT, "TS-11", "1002", from_at=third_start)
    register.place_episode(episodes[1], HoldKind.OFFICERS_OBSTRUCTED, "INC-3", "1001")
    with pytest.raises(HoldError, match="no officer"):
        register.place_officer("4242", HoldKind.COMPLAINT, "TS-12", "1002")
    with pytest.raises(HoldError, match="no custody episode"):
        register.place_episode(999, HoldKind.COMPLAINT, "TS-12", "1002")
    with pytest.raises(HoldError, match="ends before"):
        register.place_officer("1001", HoldKind.COMPLAINT, "X", "1002", 10.0, 5.0)
    report = run(svc, register, time.time() + (RETENTION_DAYS + 1) * DAY, apply=True)
    assert purged_ids(report) == set(recs[0])  # the first shift: 1001 before the period
    reasons = {i["recording_id"]: i["reason"] for i in report.items if i["action"] == "keep"}
    assert all("on officer 1001 from" in reasons[r] for r in recs[2])
    assert all(f"on episode {episodes[1]}" in reasons[r] for r in recs[1])
    assert verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit).ok


def test_scoped_holds_from_the_command_line(shifts, monkeypatch, capsys) -> None:
    svc, _register, episodes, _recs = shifts
    monkeypatch.setattr(cli_retention, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor", default="clerk")
    parser.add_argument("--config")
    cli_retention.register(parser.add_subparsers(dest="command", required=True))

    def dock(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args(argv)
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    local = datetime.now(ZoneInfo(svc.timezone))  # dates are the dock's local days
    today, yesterday = local.date().isoformat(), (local - timedelta(days=1)).date().isoformat()
    code, out, _ = dock("hold", "add", "--officer", "1002", "--from", yesterday, "--to", today,
                        "--kind", "complaint", "--reference", "TS-20")  # fmt: skip
    assert code == 0 and "placed on officer 1002" in out and "2 recording(s) now" in out
    code, out, _ = dock("hold", "add", "--case", "C-9", "--kind", "litigation",
                        "--reference", "C-9")  # fmt: skip
    assert code == 0 and "0 recording(s) now and any attached later" in out
    code, out, _ = dock("hold", "add", "--episode", str(episodes[0]), "--kind", "petition",
                        "--reference", "P-1")  # fmt: skip
    assert code == 0 and "2 recording(s) now" in out
    code, _, err = dock("hold", "add", "--case", "C-9", "--episode", "1", "--kind", "petition",
                        "--reference", "P-2")  # fmt: skip
    assert code == 2 and "give one of" in err
    code, _, err = dock("hold", "add", "--case", "C-9", "--from", today, "--kind", "petition",
                        "--reference", "P-2")  # fmt: skip
    assert code == 2 and "--from and --to go with --officer" in err
    code, out, _ = dock("hold", "list")
    assert "officer 1002 from" in out and "case C-9" in out and f"episode {episodes[0]}" in out
    code, out, _ = dock("hold", "list", "--json")
    listed = {h["scope"]: h for h in json.loads(out)}
    assert listed["episode"]["recordings_now"] == 2 and listed["case"]["case_number"] == "C-9"
    assert listed["officer"]["officer_id"] == "1002" and listed["officer"]["from_at"]
    assert listed["officer"]["to_at"].endswith("T16:00:00.000Z")  # the end of the local day
    code, out, _ = dock("purge", "--json")
    kept = json.loads(out)["kept"]
    assert kept == {"hold": 4, "retention": 2}, kept


def test_holds_of_an_earlier_version_keep_working(make_dock, tmp_path) -> None:
    """A holds table from before scopes: the columns are added, the old holds stay holds
    on their recording, and what a hold covers cannot be changed afterwards."""
    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.05},
                       policy={"retention_days": RETENTION_DAYS})  # fmt: skip
    svc.sweep()
    a, b = svc.store.archive_entries()
    with svc.store._write() as db:  # the table as the first release created it
        db.execute("DROP TABLE holds")  # (empty: no hold placed yet)
        db.execute(
            "CREATE TABLE holds (id INTEGER PRIMARY KEY, serial TEXT NOT NULL, "
            "recording_id TEXT NOT NULL, kind TEXT NOT NULL, reference TEXT NOT NULL, "
            "placed_at REAL NOT NULL, placed_by TEXT NOT NULL, until REAL, released_at REAL, "
            "released_by TEXT, release_reason TEXT)"
        )
        db.execute(
            "INSERT INTO holds (serial, recording_id, kind, reference, placed_at, placed_by) "
            "VALUES (?, ?, 'complaint', 'OLD-1', ?, 'hq')",
            (a["serial"], a["recording_id"], time.time()),
        )
    Store(svc.store.path).close()  # the dock opens the file again: the columns are added
    db = sqlite3.connect(svc.store.path, isolation_level=None)
    schema.apply(db)  # twice: idempotent
    db.close()
    register = HoldRegister(svc.store, svc.audit)
    (old,) = register.records()
    assert old.scope == "recording" and old.target() == f"{a['serial']}/{a['recording_id']}"
    svc.store.add_officer(SECOND, "Qian Lei", "Traffic 3", SECOND_PIN, role="supervisor")
    report = run(svc, register, time.time() + (RETENTION_DAYS + 1) * DAY, apply=True)
    assert report.kept == {"hold": 1} and purged_ids(report) == {b["recording_id"]}
    refused = pytest.raises(sqlite3.IntegrityError, match="only by one release")
    with refused, svc.store._write() as db:
        db.execute("UPDATE holds SET scope = 'case', case_number = 'X'")
