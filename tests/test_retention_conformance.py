"""REQUIREMENTS.md §6 (issue 17): every long-term trigger a hold kind that keeps footage
from a purge (000 §14.4; 001 art.20; 004 att.1 art.5), destruction only after an approved
appraisal (004 att.2 §6), and the yearly hand-over to the archivist (004 att.2 §7).

Over a real dock (make_dock: real SQLite, archived files, sealed BagIt packages, audit
log). Each test names the article it enforces, so ``grep`` from an article finds it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import bagit
import pytest

from dock.cli import archive as cli_archive
from dock.cli import handover as cli_handover
from dock.domain.hold_kinds import KINDS, HoldKind
from dock.evidence.appraisals import VALID_DAYS, AppraisalError, AppraisalRegister
from dock.evidence.bagit import validate_bag
from dock.evidence.holds import HoldError, HoldRegister
from dock.evidence.purge_records import purge_state
from dock.evidence.purging import purge
from dock.evidence.yearly import handovers
from dock.services.errors import Refused, RequestError
from dock.services.requests import call

SUP1, SUP1_PIN = "9001", "999000"
SUP2, SUP2_PIN = "9002", "808541"
KEEPER, KEEPER_PIN = "7001", "470147"
DAY = 86400.0
RETENTION_DAYS = 30
LATER = time.time() + (RETENTION_DAYS + 10) * DAY


@pytest.fixture
def docked(make_dock) -> tuple[Any, HoldRegister]:
    """Three recordings archived and sealed; two supervisors and a keeper."""
    svc, _ = make_dock(
        {"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.05},
        policy={"retention_days": RETENTION_DAYS},
    )
    svc.sweep()
    svc.store.add_officer(SUP2, "Qian Lei", "Traffic 3", SUP2_PIN, role="supervisor")
    svc.store.add_officer(KEEPER, "Sun Yue", "Traffic 3", KEEPER_PIN, role="keeper")
    assert len(svc.store.archive_entries()) == 3
    return svc, HoldRegister(svc.store, svc.audit)


def dry_run(svc: Any, register: HoldRegister, now: float = LATER) -> Any:
    return purge(
        svc.store, svc.audit, register, svc.offloader.seals, svc.offloader.evidence_dir,
        svc.policy, now, dry_run=True,
    )  # fmt: skip


def action_of(report: Any, rid: str) -> tuple[str, str]:
    (item,) = [i for i in report.items if i["recording_id"] == rid]
    return item["action"], item["reason"]


# --------------------------------------------------------------------------- hold kinds


def test_every_long_term_trigger_is_a_hold_kind_that_keeps_footage_from_purge(docked) -> None:
    """001 art.20(1) (evidence; obstruction; emergencies and mass incidents; petition,
    appeal, reconsideration, litigation, review, state compensation; major, difficult or
    complex cases), 000 §14.4 (objection, complaint), 004 att.1 art.5 (disputes): each is
    a named hold kind; a hold of each kind keeps its recording from a purge whose
    retention has run, and once released the recording may go."""
    svc, register = docked
    rid = svc.store.archive_entries()[0]["recording_id"]
    named = {k.kind for k in KINDS}
    for needed in ("disputed", "complaint", "petition", "appeal", "litigation",
                   "reconsideration", "review", "state_compensation", "officers_obstructed",
                   "emergency_incident", "evidence_case", "major_case"):  # fmt: skip
        assert needed in named, needed
    assert named == set(HoldKind) and all(k.en and k.zh and k.articles for k in KINDS)
    for info in KINDS:
        hold = register.place("EMU0001", rid, info.kind, f"REF-{info.kind}", SUP1)
        action, reason = action_of(dry_run(svc, register), rid)
        assert action == "keep" and reason.startswith(f"hold: {info.kind.value} "), info
        register.release(hold.id, SUP1, SUP1_PIN, "case closed")
    assert action_of(dry_run(svc, register), rid)[0] == "would_purge"


def test_an_unknown_hold_kind_is_refused_in_one_line_naming_the_valid_ones(docked) -> None:
    """001 art.20: a hold's reason is one of the regulation's triggers; a mistyped kind is
    refused (nothing placed), the refusal one line listing every valid kind."""
    svc, register = docked
    rid = svc.store.archive_entries()[0]["recording_id"]
    args = {"kind": "grudge", "reference": "X-1", "serial": "EMU0001", "recording": rid}
    with pytest.raises(HoldError) as refused:
        call(svc, "hold.add", args, actor=SUP1)
    said = str(refused.value)
    assert "\n" not in said and said.startswith("unknown hold kind 'grudge' (one of ")
    assert all(k.kind.value in said for k in KINDS)
    assert register.records() == []


# --------------------------------------------------------------------------- appraisals

FOUR_EYES = {"supervisor": SUP1, "supervisor_pin": SUP1_PIN,
             "second_supervisor": SUP2, "second_pin": SUP2_PIN}  # fmt: skip


def kinds_of(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def archived_ids(svc: Any) -> list[str]:
    return [f"{e['serial']}:{e['recording_id']}" for e in svc.store.archive_entries()]


@pytest.fixture
def later(docked, monkeypatch) -> tuple[Any, HoldRegister]:
    """The dock's clock after every recording's retention has run."""
    svc, register = docked
    monkeypatch.setattr(svc.clock, "now", lambda: LATER)
    return svc, register


def test_a_purge_without_an_approved_appraisal_is_refused_and_purges_nothing(later) -> None:
    """004 att.2 §6: destruction follows an approved appraisal. Applying a purge with two
    supervisors but no appraisal, or citing one only proposed, or a rejected one, is
    refused in one line (audited) and nothing is purged."""
    svc, _ = later
    with pytest.raises(RequestError, match="needs an approved appraisal"):
        call(svc, "purge.run", {"apply": True, **FOUR_EYES}, actor="clerk")
    proposed = call(svc, "appraisal.propose", {"proposer": KEEPER, "pin": KEEPER_PIN,
                    "reason": "retention ended", "candidates": True}, actor="clerk")  # fmt: skip
    assert proposed.state == "proposed" and len(proposed.recordings) == 3
    (entry,) = kinds_of(svc, "appraisal_proposed")
    assert entry.actor == KEEPER and entry.data["appraisal"] == proposed.id
    assert len(entry.data["recordings"]) == 3 and entry.data["reason"] == "retention ended"
    with pytest.raises(Refused) as refused:
        call(svc, "purge.run", {"apply": True, **FOUR_EYES, "appraisal": proposed.id},
             actor="clerk")  # fmt: skip
    assert str(refused.value) == f"appraisal {proposed.id} is not approved (proposed)"
    (why,) = kinds_of(svc, "purge_refused")
    assert why.data["appraisal"] == proposed.id and "not approved" in why.data["why"]
    call(svc, "appraisal.reject", {"appraisal_id": proposed.id, "supervisor": SUP1,
         "pin": SUP1_PIN, "reason": "keep for the audit"}, actor="clerk")  # fmt: skip
    with pytest.raises(Refused, match="is not approved \\(rejected\\)"):
        call(svc, "purge.run", {"apply": True, **FOUR_EYES, "appraisal": proposed.id},
             actor="clerk")  # fmt: skip
    assert not kinds_of(svc, "purge_intent") and len(svc.store.archive_entries()) == 3
    assert all(purge_state(svc.store, *i.split(":")) is None for i in archived_ids(svc))


def test_an_appraisal_is_not_approved_by_its_proposer(later) -> None:
    """004 att.2 §6: the appraisal is approved by a supervisor other than the one who
    proposed it: the proposer's approval is refused (audited), the database refuses it
    too, and a purge citing the still-unapproved appraisal is refused."""
    svc, _ = later
    proposed = call(svc, "appraisal.propose", {"proposer": SUP1, "pin": SUP1_PIN,
                    "reason": "retention ended", "recordings": archived_ids(svc)},
                    actor="clerk")  # fmt: skip
    with pytest.raises(Refused) as refused:
        call(svc, "appraisal.approve", {"appraisal_id": proposed.id, "supervisor": SUP1,
             "pin": SUP1_PIN}, actor="clerk")  # fmt: skip
    assert "another supervisor decides" in str(refused.value)
    (entry,) = kinds_of(svc, "appraisal_refused")
    assert entry.actor == SUP1 and entry.data["appraisal"] == proposed.id
    sql = ("UPDATE appraisals SET state = 'approved', decided_by = proposed_by, "
           "decided_at = 1, expires_at = 9e12 WHERE id = ?")  # fmt: skip
    with (
        pytest.raises(sqlite3.IntegrityError, match="someone other than its proposer"),
        svc.store._write() as db,
    ):
        db.execute(sql, (proposed.id,))
    with pytest.raises(Refused, match="is not approved"):
        call(svc, "purge.run", {"apply": True, **FOUR_EYES, "appraisal": proposed.id},
             actor="clerk")  # fmt: skip
    assert not kinds_of(svc, "purge_intent")
    # a keeper proposes but never approves
    with pytest.raises(Refused, match="is not a supervisor"):
        call(svc, "appraisal.approve", {"appraisal_id": proposed.id, "supervisor": KEEPER,
             "pin": KEEPER_PIN}, actor="clerk")  # fmt: skip


def test_a_purge_citing_an_approved_appraisal_purges_only_what_it_lists(later) -> None:
    """004 att.2 §6: with an approved, unexpired appraisal the purge goes ahead, but only
    for the recordings it lists (another recording past retention is kept as
    ``unappraised``); the appraisal's id is in the purge record and both audit entries."""
    svc, _ = later
    ids = archived_ids(svc)
    proposed = call(svc, "appraisal.propose", {"proposer": KEEPER, "pin": KEEPER_PIN,
                    "reason": "retention ended", "recordings": ids[:2]},
                    actor="clerk")  # fmt: skip
    approved = call(svc, "appraisal.approve", {"appraisal_id": proposed.id,
                    "supervisor": SUP2, "pin": SUP2_PIN}, actor="clerk")  # fmt: skip
    assert approved.state == "approved" and approved.decided_by == SUP2
    (entry,) = kinds_of(svc, "appraisal_approved")
    assert svc.audit.checkpoints()[-1].seq >= entry.seq  # signed at once
    report = call(svc, "purge.run", {"apply": True, **FOUR_EYES, "appraisal": proposed.id},
                  actor="clerk")  # fmt: skip
    assert sorted(report.purged) == sorted(i.replace(":", "/") for i in ids[:2])
    assert report.kept == {"unappraised": 1} and not report.failed
    assert (
        action_of(report, ids[2].split(":")[1])[1] == f"unappraised: not in appraisal {proposed.id}"
    )
    (intent,) = kinds_of(svc, "purge_intent")
    (done,) = kinds_of(svc, "purge")
    assert intent.data["appraisal"] == done.data["appraisal"] == proposed.id
    assert intent.data["record"]["appraisal"]["approved_by"] == SUP2
    assert intent.data["record"]["appraisal"]["proposed_by"] == KEEPER
    assert svc.audit.verify().ok


def test_an_expired_appraisal_is_refused(later, monkeypatch) -> None:
    """004 att.2 §6: an approval is cited while it is valid; past its expiry a purge
    citing it is refused and nothing is purged."""
    svc, _ = later
    proposed = call(svc, "appraisal.propose", {"proposer": KEEPER, "pin": KEEPER_PIN,
                    "reason": "retention ended", "candidates": True}, actor="clerk")  # fmt: skip
    call(svc, "appraisal.approve", {"appraisal_id": proposed.id, "supervisor": SUP1,
         "pin": SUP1_PIN}, actor="clerk")  # fmt: skip
    monkeypatch.setattr(svc.clock, "now", lambda: LATER + (VALID_DAYS + 1) * DAY)
    with pytest.raises(Refused, match=f"appraisal {proposed.id} expired at "):
        call(svc, "purge.run", {"apply": True, **FOUR_EYES, "appraisal": proposed.id},
             actor="clerk")  # fmt: skip
    assert not kinds_of(svc, "purge_intent")


# --------------------------------------------------------------------------- hand-over


def test_the_yearly_hand_over_is_a_valid_bag_listing_the_years_records(docked, tmp_path) -> None:
    """004 att.2 §7: the year's records are handed to the unit's archivist: a BagIt bag
    (valid for bagit-python and for the dock's own validator) whose register lists the
    year's recordings with their hashes, officers, cases and holds, and the sealed packages
    with their tag-manifest digests; a recording of another year is not in it. The
    hand-over is recorded and audited; a second one of the same year is a re-issue."""
    svc, register = docked
    entries = svc.store.archive_entries()
    ids = [e["recording_id"] for e in entries]
    zone = ZoneInfo(svc.timezone)
    year = datetime.now(zone).year
    starts = (
        int(datetime(year - 1, 6, 1, tzinfo=UTC).timestamp() * 1000),  # the year before
        int(datetime(year, 1, 1, tzinfo=zone).timestamp() * 1000),
    )  # its first instant
    with svc.store._write() as db:
        db.execute("UPDATE archive SET start_ms = ? WHERE recording_id = ?", (starts[0], ids[2]))
        db.execute("UPDATE archive SET start_ms = ? WHERE recording_id = ?", (starts[1], ids[1]))
        db.execute("UPDATE archive SET officer_id = '1001' WHERE recording_id = ?", (ids[0],))
    register.place("EMU0001", ids[0], HoldKind.LITIGATION, "L-1", SUP1)
    # the recording of the year before is purged this year, after an approved appraisal
    proposed = call(svc, "appraisal.propose", {"proposer": KEEPER, "pin": KEEPER_PIN,
                    "reason": "retention ended", "recordings": [f"EMU0001:{ids[2]}"]},
                    actor="clerk")  # fmt: skip
    call(svc, "appraisal.approve", {"appraisal_id": proposed.id, "supervisor": SUP2,
         "pin": SUP2_PIN}, actor="clerk")  # fmt: skip
    purged = call(svc, "purge.run", {"apply": True, **FOUR_EYES, "appraisal": proposed.id},
                  actor="clerk")  # fmt: skip
    assert purged.purged == [f"EMU0001/{ids[2]}"]
    entries = {e["recording_id"]: e for e in svc.store.archive_entries()}
    out = str(tmp_path / f"handover-{year}")
    done = call(svc, "archive.handover", {"year": year, "to": out}, actor=KEEPER)
    assert done.reissue_of is None and done.recordings == 2 and done.packages == 1
    bagit.Bag(out).validate()
    assert validate_bag(out).ok
    with open(os.path.join(out, "data", "register.json"), encoding="utf-8") as f:
        reg = json.load(f)
    listed = {r["recording"]: r for r in reg["recordings"]}
    assert set(listed) == set(ids[:2])
    for rid in ids[:2]:
        row = listed[rid]
        assert row["sha256"] == bytes(entries[rid]["sha256"]).hex()
        assert row["officer"] == entries[rid]["officer_id"]
    assert listed[ids[0]]["holds"] == [1]
    assert reg["officers"] == [{"officer": "1001", "name": "Wang Wei"}]
    assert [h["reference"] for h in reg["holds"]] == ["L-1"]
    ((gone),) = reg["purges"]
    assert gone["recording_id"] == ids[2] and gone["purged_at"].endswith("Z")
    assert [a["id"] for a in reg["appraisals"]] == [proposed.id]
    (package,) = reg["packages"]
    seal = svc.offloader.seals.table.audited()[entries[ids[0]]["bag_id"]]
    assert package["tagmanifest_sha256"] == seal["tagmanifest_sha256"]
    with open(os.path.join(out, "data", "packages.txt"), encoding="utf-8") as f:
        text = f.read()
    assert seal["tagmanifest_sha256"] in text
    assert all(bytes(entries[rid]["sha256"]).hex() in text for rid in ids[:2])
    with open(os.path.join(out, "data", "register.csv"), encoding="utf-8", newline="") as f:
        table = list(csv.reader(f))  # the same register for the archivist's spreadsheet
    assert table[0][:3] == ["serial", "recording", "officer"]
    assert sorted(row[1] for row in table[1:]) == sorted(ids[:2])
    (entry,) = kinds_of(svc, "archive_handover")
    assert entry.actor == KEEPER and entry.data["year"] == year
    assert entry.data["tagmanifest_sha256"] == done.tagmanifest_sha256

    again = call(svc, "archive.handover", {"year": year, "to": out + "-again"}, actor=KEEPER)
    assert again.reissue_of == done.id
    assert [r["year"] for r in handovers(svc.store)] == [year, year]
    beside = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert beside == [], beside  # no working folder left beside what the archivist takes
    with pytest.raises(RequestError, match="exists already"):
        call(svc, "archive.handover", {"year": year, "to": out}, actor=KEEPER)
    with pytest.raises(RequestError, match="not inside the exports folder"):  # a web session
        call(svc, "archive.handover", {"year": year, "to": str(tmp_path / "elsewhere")},
             actor=KEEPER, roles=("keeper",), exports=str(tmp_path / "exports"))  # fmt: skip


def test_dock_archive_handover_on_the_command_line(docked, tmp_path, monkeypatch, capsys) -> None:
    """004 att.2 §7: ``dock archive handover --year YEAR DIR`` writes the bag and says so;
    a second one of the year says it is a re-issue."""
    svc, _ = docked
    monkeypatch.setattr(cli_archive, "service_from", lambda args: svc)
    monkeypatch.setattr(cli_handover, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor", default="keeper-login")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_archive.register(sub)
    year = datetime.now(ZoneInfo(svc.timezone)).year

    def dock(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args(argv)
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = dock("archive", "handover", "--year", str(year), str(tmp_path / "a"))
    assert code == 0 and f"hand-over 1 of {year}: 3 recording(s)" in out, err
    code, out, _ = dock("archive", "handover", "--year", str(year), str(tmp_path / "b"))
    assert code == 0 and "a re-issue of hand-over 1" in out
    code, _, err = dock("archive", "handover", "--year", "1999", str(tmp_path / "c"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "1999" in err
    code, out, _ = dock("archive", "handovers")
    assert code == 0 and "re-issue of 1" in out


def test_an_appraisal_needs_a_reason_and_archived_recordings(later) -> None:
    """004 att.2 §6: an appraisal says why and lists recordings in the archive; each
    mistake is refused in one line (audited) and nothing is proposed."""
    svc, _ = later
    rid = svc.store.archive_entries()[0]["recording_id"]
    for args, said in (
        ({"reason": "  ", "recordings": [f"EMU0001:{rid}"]}, "an appraisal needs a reason"),
        ({"reason": "old", "recordings": ["EMU0001:NOPE"]},
         "recording EMU0001/NOPE is not in the archive"),
    ):  # fmt: skip
        with pytest.raises(Refused) as refused:
            call(svc, "appraisal.propose", {"proposer": KEEPER, "pin": KEEPER_PIN, **args},
                 actor="clerk")  # fmt: skip
        assert str(refused.value) == said
    with pytest.raises(AppraisalError, match="lists at least one recording"):
        AppraisalRegister(svc.store, svc.audit).propose(KEEPER, KEEPER_PIN, "old", [])
    assert len(kinds_of(svc, "appraisal_refused")) == 3 and not kinds_of(svc, "appraisal_proposed")
