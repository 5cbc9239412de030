"""Issue 10 section 3: purges that leave the archive valid, approved by two supervisors.

Over a real dock (make_dock: real SQLite, archived files, sealed BagIt packages, audit
log). Every package left on disk is checked with bagit-python, an archivist's tool that
is not ours, and the archive with ``verify_archive`` / ``dock archive verify``. The kill
-9 campaign of a purge is tests/test_purge_kill.py.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import time
from typing import Any

import bagit
import pytest

from dock.cli import appraisals as cli_appraisals
from dock.cli import archive as cli_archive
from dock.cli import cases as cli_cases
from dock.cli import retention as cli_retention
from dock.evidence import purge_batches
from dock.evidence import purging as purging_mod
from dock.evidence.bagit import validate_bag
from dock.evidence.fixity import find_bags, verify_archive
from dock.evidence.holds import HoldRegister
from dock.evidence.purging import RECORD_FILE, complete, purge, purges
from dock.evidence.retention import HoldKind

from .appraisal_help import approved_appraisal
from .conftest import PIN

SUP1, SUP1_PIN = "9001", "999000"
SUP2, SUP2_PIN = "9002", "808541"
DAY = 86400.0
RETENTION_DAYS = 30
LATER = time.time() + (RETENTION_DAYS + 10) * DAY


@pytest.fixture
def two_packages(make_dock) -> tuple[Any, HoldRegister, list[str], list[str]]:
    """A dock with two sealed packages of one recorder: three recordings, then two."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.05},
        policy={"retention_days": RETENTION_DAYS},
    )
    svc.store.add_officer(SUP2, "Qian Lei", "Traffic 3", SUP2_PIN, role="supervisor")
    svc.sweep()
    first = [e["recording_id"] for e in svc.store.archive_entries()]
    model = recs[0].model
    model._generate_recordings(2, 50_000, 0)
    model.save()
    assert svc.offload("1").ok
    second = [e["recording_id"] for e in svc.store.archive_entries() if e["recording_id"]
              not in first]  # fmt: skip
    assert len(first) == 3 and len(second) == 2 and len(find_bags(evidence(svc))) == 2
    return svc, HoldRegister(svc.store, svc.audit), first, second


def evidence(svc: Any) -> str:
    return svc.offloader.evidence_dir


def run(svc: Any, register: HoldRegister, now: float = LATER, apply: bool = True) -> Any:
    return purge(
        svc.store, svc.audit, register, svc.offloader.seals, evidence(svc), svc.policy, now,
        dry_run=not apply, approved_by=(SUP1, SUP2) if apply else (), actor="clerk",
        appraisal=approved_appraisal(svc, now) if apply else None,
    )  # fmt: skip


def bag_of(svc: Any, rid: str) -> str:
    row = svc.store._db().execute(
        "SELECT s.bag FROM archive a JOIN seals s ON s.id = a.bag_id WHERE a.recording_id = ?",
        (rid,),
    )
    return row.fetchone()[0]


def assert_all_valid(svc: Any) -> None:
    """Every package on disk passes bagit-python and our validator; the archive verifies."""
    for rel in find_bags(evidence(svc)):
        path = os.path.join(evidence(svc), rel)
        bagit.Bag(path).validate()  # raises bagit.BagValidationError naming the problem
        assert validate_bag(path).ok, validate_bag(path).problems
    report = verify_archive(svc.store, evidence(svc), svc.audit)
    assert report.ok, report.bad
    assert svc.audit.verify().ok


def entries(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def test_a_purge_replaces_each_package_and_leaves_every_check_green(two_packages) -> None:
    """004 att.2 §6 (every purge recorded), 000 §14.3: a lawful, audited purge of part of
    a package replaces the package by one holding what remains plus the purge record;
    a package wholly purged goes; bagit-python and the fixity check stay green."""
    svc, register, first, second = two_packages
    old_first, old_second = bag_of(svc, first[0]), bag_of(svc, second[0])
    for rid in first[1:]:  # the first package keeps two of its three recordings
        register.place("EMU0001", rid, HoldKind.COMPLAINT, "TS-1", "1002")
    archived = {e["recording_id"]: e for e in svc.store.archive_entries()}
    report = run(svc, register)

    assert sorted(report.purged) == sorted(f"EMU0001/{r}" for r in [first[0], *second])
    assert report.kept == {"hold": 2} and report.failed == {}
    assert report.removed == [old_second]
    ((replaced),) = report.resealed
    assert replaced["bag"] == old_first and replaced["remaining"] == 2
    new = replaced["as"]
    assert bag_of(svc, first[1]) == bag_of(svc, first[2]) == new
    for gone in (old_first, old_second):
        assert not os.path.exists(os.path.join(evidence(svc), gone))
    for rid in [first[0], *second]:
        assert not os.path.exists(os.path.join(evidence(svc), archived[rid]["path"]))
    assert_all_valid(svc)

    # The new package: the remaining footage and the purge record, covered by the seal.
    new_dir = os.path.join(evidence(svc), new)
    assert sorted(os.listdir(os.path.join(new_dir, "data"))) == sorted(
        os.path.basename(archived[r]["path"]) for r in first[1:]
    )
    with open(os.path.join(new_dir, "tagmanifest-sha256.txt"), encoding="utf-8") as f:
        assert RECORD_FILE in f.read()
    with open(os.path.join(new_dir, RECORD_FILE), encoding="utf-8") as f:
        (record,) = json.load(f)["purges"]
    assert record["approved_by"] == [SUP1, SUP2] and record["requested_by"] == "clerk"
    assert record["rule"] == {"policy": svc.policy.name, "retention_days": RETENTION_DAYS,
                              "counted_from": "recording start"}  # fmt: skip
    (item,) = record["recordings"]
    gone = archived[first[0]]
    assert item["recording"] == first[0] and item["path"] == gone["path"]
    assert item["size"] == gone["size"] and item["sha256"] == bytes(gone["sha256"]).hex()
    assert item["reason"].startswith("purge:") and item["holds_checked"] == []
    assert record["package"]["bag"] == old_first

    # The audit log: the intent first, then the new seal naming what it supersedes,
    # then the purge; actor the first supervisor, both supervisors named.
    old_seal = next(e for e in entries(svc, "seal") if e.data["bag"] == old_first)
    (new_seal,) = [e for e in entries(svc, "seal") if e.data["bag"] == new]
    assert new_seal.data["supersedes"] == {
        "bag": old_first, "tagmanifest_sha256": old_seal.data["tagmanifest_sha256"]
    }  # fmt: skip
    intents = {e.data["bag"]: e for e in entries(svc, "purge_intent")}
    done = {e.data["bag"]: e for e in entries(svc, "purge")}
    assert set(intents) == set(done) == {old_first, old_second}
    assert intents[old_first].seq < new_seal.seq < done[old_first].seq
    assert done[old_first].data["superseded_by"] == new
    assert done[old_second].data["superseded_by"] is None
    for e in [*intents.values(), *done.values()]:
        assert e.actor == SUP1 and e.data["approved_by"] == [SUP1, SUP2]
    assert (
        intents[old_second].data["record"]["recordings"][0]["sha256"]
        == bytes(archived[second[0]]["sha256"]).hex()
    )
    assert {r["recording_id"] for r in purges(svc.store)} == {first[0], *second}
    assert run(svc, register).purged == []  # nothing twice

    # Later purges of the same footage: the record travels with it.
    hold_ids = [h.id for h in register.records()]
    register.release(hold_ids[0], SUP1, SUP1_PIN, "complaint withdrawn")
    report = run(svc, register)
    assert report.purged == [f"EMU0001/{first[1]}"] and report.resealed[0]["bag"] == new
    newer = report.resealed[0]["as"]
    with open(os.path.join(evidence(svc), newer, RECORD_FILE), encoding="utf-8") as f:
        chain = json.load(f)["purges"]
    assert [[i["recording"] for i in p["recordings"]] for p in chain] == [[first[0]], [first[1]]]
    assert_all_valid(svc)
    register.release(hold_ids[1], SUP1, SUP1_PIN, "complaint withdrawn")
    report = run(svc, register)
    assert report.removed == [newer] and find_bags(evidence(svc)) == []
    assert_all_valid(svc)


def test_dock_archive_verify_exits_0_after_a_purge(two_packages, monkeypatch, capsys) -> None:
    """004 att.2 §4, §6: the outside tester's case: before, a purge left the package
    failing dock archive verify for ever."""
    svc, register, first, _second = two_packages
    register.place("EMU0001", first[2], HoldKind.LITIGATION, "CASE-7", "1002")
    assert run(svc, register).resealed
    monkeypatch.setattr(cli_archive, "service_from", lambda args: svc)
    args = argparse.Namespace(sample=None, json=False, actor="clerk", config=None)
    assert cli_archive.cmd_archive_verify(args) == 0
    assert "all intact" in capsys.readouterr().out
    assert not entries(svc, "fixity_failure")


def test_fixity_still_reports_a_package_removed_without_a_purge(two_packages) -> None:
    """004 att.2 §4: a retired package's absence is expected; any other sealed package's is not."""
    svc, register, first, _second = two_packages
    register.place("EMU0001", first[0], HoldKind.COMPLAINT, "TS-2", "1002")
    run(svc, register)  # first package re-sealed, second removed by the purge
    survivor = bag_of(svc, first[0])
    os.chmod(os.path.join(evidence(svc), survivor), 0o755)
    shutil.rmtree(os.path.join(evidence(svc), survivor))
    bad = verify_archive(svc.store, evidence(svc), svc.audit).bad
    assert [p["path"] for p in bad if p["kind"] == "bag"] == [survivor]
    assert "sealed in the audit log" in next(p for p in bad if p["kind"] == "bag")["problem"]


def test_a_dry_run_changes_nothing(two_packages) -> None:
    """004 att.2 §6: a purge's dry run changes nothing, and applying it needs two different
    supervisors."""
    svc, register, _first, _second = two_packages
    before = sorted(find_bags(evidence(svc)))
    report = run(svc, register, apply=False)
    assert report.dry_run and len(report.purged) == 5
    assert sorted(report.removed) == before and report.resealed == []
    assert sorted(find_bags(evidence(svc))) == before
    assert not entries(svc, "purge_intent") and purges(svc.store) == []
    with pytest.raises(ValueError, match="two different supervisors"):
        purge(svc.store, svc.audit, register, svc.offloader.seals, evidence(svc), svc.policy,
              LATER, dry_run=False, approved_by=(SUP1, SUP1))  # fmt: skip


def test_a_remaining_recording_that_is_damaged_stops_the_purge_of_its_package(
    two_packages,
) -> None:
    """Any doubt keeps: the old package may hold the only good copy of what remains."""
    svc, register, first, second = two_packages
    register.place("EMU0001", first[2], HoldKind.COMPLAINT, "TS-3", "1002")
    row = svc.store.archived("EMU0001", first[2])
    path = os.path.join(evidence(svc), row["path"])
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # a bit flipped in place: the old package shares the inode
        f.seek(10)
        f.write(b"X")
    os.chmod(path, 0o444)
    report = run(svc, register)
    assert report.kept == {"hold": 1, "invalid": 2} and report.removed == [bag_of(svc, second[0])]
    assert os.path.exists(os.path.join(evidence(svc), bag_of(svc, first[0])))


# --------------------------------------------------------------------------- crashes


def test_an_interrupted_purge_is_reported_then_finished_by_the_daemon(
    two_packages, monkeypatch
) -> None:
    """A crash after the intent: dock archive verify says so (not 'sealed but missing'),
    and the daemon's housekeeping finishes the purge; then everything is green."""
    svc, register, first, _second = two_packages
    register.place("EMU0001", first[2], HoldKind.COMPLAINT, "TS-4", "1002")

    def killed(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt  # the process dies between the new seal and the removals

    monkeypatch.setattr(purge_batches, "_retire", killed)
    with pytest.raises(KeyboardInterrupt):
        run(svc, register)
    monkeypatch.undo()
    bad = verify_archive(svc.store, evidence(svc), svc.audit).bad
    assert bad and all("was interrupted" in p["problem"] for p in bad), bad
    svc.housekeeping(time.time())
    assert len(entries(svc, "purge")) == 1 and not purging_mod.unfinished(svc.store)
    assert_all_valid(svc)


def test_a_failed_step_is_audited_and_retried(two_packages, monkeypatch) -> None:
    """004 att.2 §6: a failed step of a purge is audited and retried."""
    svc, register, first, _second = two_packages
    register.place("EMU0001", first[2], HoldKind.COMPLAINT, "TS-5", "1002")
    real = svc.offloader.seals.reseal

    def full_disk(*a: Any, **k: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(svc.offloader.seals, "reseal", full_disk)
    report = run(svc, register)
    assert list(report.failed) == [bag_of(svc, first[0])]
    assert any(i["action"] == "failed" for i in report.items)
    assert entries(svc, "purge_failed")
    assert os.path.exists(os.path.join(evidence(svc), bag_of(svc, first[0])))  # kept whole
    monkeypatch.setattr(svc.offloader.seals, "reseal", real)
    again = run(svc, register)
    assert again.completed and again.failed == {}
    assert_all_valid(svc)


def test_a_package_an_earlier_version_left_partial_is_resealed(two_packages) -> None:
    """Upgrading: a purge by an earlier version unlinked files from a sealed package,
    leaving it invalid; the next housekeeping re-seals what remains, with a record
    naming the earlier purge entry."""
    svc, _register, first, _second = two_packages
    row = svc.store.archived("EMU0001", first[0])
    bag = bag_of(svc, first[0])
    name = os.path.basename(row["path"])
    seq = svc.audit.append("purge", "clerk", "EMU0001", {
        "recording": first[0], "sha256": bytes(row["sha256"]).hex(), "size": row["size"],
        "path": row["path"], "reason": "purge: retention ended", "bag_links": [],
    })  # fmt: skip
    os.unlink(os.path.join(evidence(svc), row["path"]))
    os.unlink(os.path.join(evidence(svc), bag, "data", name))
    with svc.store._write() as db:
        db.execute(
            "INSERT INTO purges VALUES (?, ?, ?, ?, ?, ?)",
            ("EMU0001", first[0], row["sha256"], row["path"], time.time(), "purge: old"),
        )
    assert not verify_archive(svc.store, evidence(svc), svc.audit).ok  # as the tester saw
    svc.housekeeping(time.time())
    assert_all_valid(svc)
    new = bag_of(svc, first[1])
    assert new != bag and not os.path.exists(os.path.join(evidence(svc), bag))
    with open(os.path.join(evidence(svc), new, RECORD_FILE), encoding="utf-8") as f:
        (record,) = json.load(f)["purges"]
    assert record["earlier_purges"][0]["audit_entries"] == [seq]
    assert complete(svc.store, svc.audit, svc.offloader.seals, evidence(svc)).completed == []


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def cli(two_packages, monkeypatch, capsys) -> Any:
    svc = two_packages[0]
    for module in (cli_retention, cli_cases, cli_appraisals):
        monkeypatch.setattr(module, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor", default="clerk")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_retention.register(sub)
    cli_cases.register(sub)
    cli_appraisals.register(sub)
    monkeypatch.setattr(svc.clock, "now", lambda: LATER)

    def dock(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        args = parser.parse_args(argv)
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    return dock


FOUR_EYES = ("--supervisor", SUP1, "--supervisor-pin", SUP1_PIN,
             "--second-supervisor", SUP2, "--second-pin", SUP2_PIN)  # fmt: skip


def test_purge_apply_needs_two_different_supervisors(two_packages, cli) -> None:
    """004 att.2 §6: destruction follows an approved appraisal: two supervisors, each
    on their own PIN (with its lockout); the audit names them, not the login. A dry run
    needs nobody."""
    svc = two_packages[0]
    code, out, _ = cli("purge")
    assert code == 0 and "5 would purge" in out
    code, out, err = cli("appraisal", "propose", "--candidates", "--proposer", SUP1, "--pin",
                         SUP1_PIN, "--reason", "retention ended")  # fmt: skip
    assert code == 0 and "appraisal 1: 5 recording(s)" in out, err
    assert cli("appraisal", "approve", "1", "--supervisor", SUP2, "--pin", SUP2_PIN)[0] == 0
    cited = ("--appraisal", "1")
    refusals = [
        (("purge", "--apply"), 2, "needs two supervisors"),
        (("purge", "--apply", *FOUR_EYES), 2, "needs the approved appraisal"),
        (("purge", "--apply", "--supervisor", SUP1, "--supervisor-pin", SUP1_PIN,
          "--second-supervisor", SUP1, "--second-pin", SUP1_PIN, *cited), 1,
         "two different people"),
        (("purge", "--apply", *FOUR_EYES[:6], "--second-pin", "000000", *cited), 1,
         "wrong ID/PIN"),
        (("purge", "--apply", "--supervisor", "1001", "--supervisor-pin", PIN,
          *FOUR_EYES[4:], *cited), 1, "1001 is not a supervisor"),
    ]  # fmt: skip
    for argv, status, said in refusals:
        code, out, err = cli(*argv)
        assert code == status and said in err and len(err.strip().splitlines()) == 1, err
        assert out == ""
    assert len(find_bags(evidence(svc))) == 2 and not entries(svc, "purge_intent")
    assert len(entries(svc, "purge_refused")) == 3
    assert svc.store.verify_pin(SUP2, SUP2_PIN).ok  # the wrong one was counted, then reset

    # PINs typed at the prompt (read from standard input when it is not a terminal)
    code, out, err = cli("purge", "--apply", "--supervisor", SUP1, "--second-supervisor", SUP2,
                         *cited, stdin=f"{SUP1_PIN}\n{SUP2_PIN}\n")  # fmt: skip
    assert code == 0, err
    assert "5 purged" in out and "removed: all of it purged" in out
    for e in entries(svc, "purge_intent") + entries(svc, "purge"):
        assert e.actor == SUP1 and e.data["approved_by"] == [SUP1, SUP2]
    assert all(e.data["by"] == "clerk" for e in entries(svc, "purge_intent"))
    assert find_bags(evidence(svc)) == []


def test_a_locked_pin_stops_a_purge(two_packages, cli) -> None:
    """004 att.2 §6: a supervisor whose PIN is locked cannot approve a purge."""
    svc = two_packages[0]
    for _ in range(5):
        svc.store.verify_pin(SUP2, "000000")
    code, _out, err = cli("purge", "--apply", *FOUR_EYES, "--appraisal", "1")
    assert code == 1 and "locked" in err and not entries(svc, "purge_intent")


def test_hold_release_names_the_supervisor(two_packages, cli) -> None:
    """000 §14.4; 001 art.20: releasing a hold needs a supervisor, named in the record."""
    svc, _register, first, _ = two_packages
    code, out, _ = cli("hold", "add", "EMU0001", first[0], "--kind", "complaint",
                       "--reference", "TS-9")  # fmt: skip
    assert code == 0
    code, _, err = cli("hold", "release", "1", "--supervisor", "1001", "--supervisor-pin", PIN,
                       "--reason", "withdrawn")  # fmt: skip
    assert code == 1 and "not a supervisor" in err
    code, out, _ = cli("hold", "release", "1", "--supervisor", SUP1, "--reason", "withdrawn",
                       stdin=f"{SUP1_PIN}\n")  # fmt: skip
    assert code == 0 and "released" in out
    (released,) = entries(svc, "hold_released")
    assert released.actor == SUP1 and released.data["by"] == "clerk"


def test_case_attach_needs_an_officers_or_supervisors_pin(two_packages, cli) -> None:
    """REQUIREMENTS 7-8 (002 art.22; 001 art.19): the keeper files footage under a case
    on their own credentials; the audit names them, not the login."""
    svc, register, first, second = two_packages
    rec = f"EMU0001:{first[0]}"
    code, _, err = cli("case", "attach", "C-1", rec)
    assert code == 2 and "--officer" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("case", "attach", "C-1", rec, "--officer", "1002", "--pin", "000000")
    assert code == 1 and "wrong ID/PIN" in err
    assert svc.store.case_recordings("C-1") == []
    assert entries(svc, "case_attach_refused")[0].actor == "1002"
    code, out, _ = cli("case", "attach", "C-1", rec, "--officer", "1002", "--pin", PIN)
    assert code == 0 and "1 recording(s)" in out
    (attached,) = entries(svc, "case_attach")
    assert attached.actor == "1002" and attached.data["by"] == "clerk"
    code, out, _ = cli("case", "attach", "C-2", f"EMU0001:{second[0]}", "--officer", SUP1,
                       stdin=f"{SUP1_PIN}\n")  # fmt: skip
    assert code == 0  # a supervisor too
    run(svc, register)
    code, _, err = cli("case", "attach", "C-3", f"EMU0001:{second[1]}", "--officer", "1002",
                       "--pin", PIN)  # fmt: skip
    assert code == 2 and "already purged" in err
