"""Archived names, case files and the party subject to enforcement (REQUIREMENTS sections
4 and 6): files named by the officer's name and number and the case's cause (001
art.19(4)); the records of one party kept together across cases (000 §14.2; 003 art.14);
footage attached to an open case never purged (000 §14.4; 001 art.20; 004 att.1 art.5)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from dock.devices.recorder_client import RecordingInfo
from dock.evidence.offload import archive_name
from dock.services import cases
from dock.services.errors import RequestError
from dock.services.purge import purge as purge_service
from dock.services.requests import call as _call

from .conftest import PIN
from .test_gaps import _film_incidents

SUP, SUP_PIN = "9001", "999000"


def call(svc: Any, actor: str, name: str, arguments: dict[str, Any]) -> Any:
    """A request through the one request table, as the command line makes it."""
    return _call(svc, name, arguments, actor=actor)


DAY = 86400.0
RETENTION_DAYS = 30
LATER = time.time() + (RETENTION_DAYS + 10) * DAY


def _rec(rid: str = "REC000001") -> RecordingInfo:
    start = 1_764_000_000_000
    return RecordingInfo(rid, start, start + 1000, 1, bytes(32), None, 0, 1, None, None, None)


def _shift(svc: Any, recs: list, officer: str, count: int = 2, case: str | None = None,
           battery_cut_at: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """``officer`` takes the recorder of slot 1 (filing the episode under ``case`` while
    out), films ``count`` clips, docks it and it is offloaded: the new archive rows."""
    before = {e["recording_id"] for e in svc.store.archive_entries()}
    assert svc.checkout(officer, PIN).granted
    svc.taken("1")
    if case is not None:
        call(svc, "clerk", "case.episode", {"case": case, "officer": officer, "pin": PIN})
    _film_incidents(recs[0].model, count, battery_cut_at)
    svc.inspect("1")
    assert svc.offload("1").ok
    return [e for e in svc.store.archive_entries() if e["recording_id"] not in before]


def _attach(svc: Any, case: str, *rids: str, officer: str = "1001") -> Any:
    recordings = [f"EMU0001:{rid}" for rid in rids]
    given = {"case": case, "recordings": recordings, "officer": officer, "pin": PIN}
    return call(svc, "clerk", "case.attach", given)


def _open(svc: Any, case: str, cause: str = "", party: str = "") -> None:
    call(svc, "clerk", "case.open",
         {"case": case, "cause": cause, "party": party, "officer": "1001", "pin": PIN})  # fmt: skip


# ------------------------------------------------------------------- names (001 art.19(4))


def test_archived_files_carry_the_officers_name_and_number(make_dock) -> None:
    """001 art.19(4) (姓名加案由): a file archived from an officer's shift is named with
    their number and their name, in their own script (王伟 stays 王伟), in their folder."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 0})
    svc.store.add_officer("1003", "王伟", "Traffic 3", PIN)
    rows = _shift(svc, recs, "1003")
    assert len(rows) == 2
    for row in rows:
        folder, name = os.path.split(row["path"])
        assert folder.split(os.sep)[0] == "1003"
        assert name.startswith("1003_王伟_EMU0001_"), name
        assert os.path.isfile(os.path.join(svc.offloader.evidence_dir, row["path"]))


def test_a_case_filed_before_return_is_in_the_names_and_links_the_footage(make_dock) -> None:
    """001 art.19(4): the officer files the recorder they carry under case C-7 (cause
    盗窃) before bringing it back: its files are named with the officer and the case and
    its cause, and are in the case as they are archived (the offload's entry says so)."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 0})
    _open(svc, "C-7", cause="盗窃", party="张三")
    rows = _shift(svc, recs, "1001", case="C-7")
    assert rows and all("_C-7-盗窃_EMU0001_" in os.path.basename(r["path"]) for r in rows)
    assert all(os.path.basename(r["path"]).startswith("1001_Wang-Wei~") for r in rows)
    linked = {r["recording_id"] for r in svc.store.case_recordings("C-7")}
    assert linked == {r["recording_id"] for r in rows}
    files = [e for e in svc.audit.entries() if e.kind == "offload_file"]
    assert {e.data.get("case") for e in files[-len(rows) :]} == {"C-7"}
    assert [e.data["case"] for e in svc.audit.entries() if e.kind == "case_episode"] == ["C-7"]
    # made after the recorder came back: outside the episode, so not named with its case
    before = {e["recording_id"] for e in svc.store.archive_entries()}
    model = recs[0].model
    model._generate_recordings(1, 20_000, interrupted=0)
    clip = model.ordered_recordings()[-1]
    clip.start_ms = int(svc.store.custody_episodes("EMU0001")[-1].in_at * 1000) + 1000
    clip.end_ms = clip.start_ms + 1
    model.save()
    svc.offload("1")
    (late,) = [e for e in svc.store.archive_entries() if e["recording_id"] not in before]
    assert "C-7" not in late["path"] and late["recording_id"] not in {
        r["recording_id"] for r in svc.store.case_recordings("C-7")
    }


def test_no_recorder_carried_no_episode_filed(make_dock) -> None:
    """001 art.19(4): filing under a case before return needs a recorder out; otherwise
    one line says why and nothing is filed."""
    svc, _recs = make_dock({"battery_percent": 95.0})
    with pytest.raises(RequestError, match="carries no recorder now"):
        call(svc, "clerk", "case.episode", {"case": "C-1", "officer": "1002", "pin": PIN})


HOSTILE = [
    "../../etc/passwd",
    "a/b\\c",
    "x\x00y\n",
    "\u202egpj.exe",
    "..",
    ".",
    "名" * 200,
    "A" * 1000,
    "C:\\Windows",
    "e\u0301",  # decomposed: NFC makes it é
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_and_cases_map_to_one_safe_file_name(hostile: str, tmp_path) -> None:
    """001 art.19(4): a name or case from the configuration or the store never names a
    path outside the archive: no separator, control, bidi override or ``..``, bounded in
    bytes (NAME_MAX with room for the temporary), NFC, and names that differ stay apart."""
    folder, name = archive_name("1001", "EMU1", _rec(), officer_name=hostile, case=hostile)
    assert folder == os.path.join("1001", "2025-11-24")
    assert os.sep not in name and "\\" not in name and name not in (".", "..")
    assert not any(ch in name for ch in "\x00\n\u202e") and name.isprintable()
    assert len(name.encode()) <= 246 and not name.startswith(".")
    root = str(tmp_path)
    where = os.path.realpath(os.path.join(root, folder, name))
    assert os.path.dirname(where) == os.path.join(root, folder)
    assert archive_name("1001", "EMU1", _rec(), officer_name=hostile + "x")[1] != name


def test_names_stay_readable_and_normalised() -> None:
    """001 art.19(4): a Chinese name and a decomposed accent read as written (NFC)."""
    _, name = archive_name("1001", "EMU1", _rec(), officer_name="王伟", case="C-1-盗窃")
    assert name == "1001_王伟_C-1-盗窃_EMU1_20251124T160000Z_REC000001.mp4"
    _, composed = archive_name("1001", "EMU1", _rec(), officer_name="Jos\u00e9")
    _, decomposed = archive_name("1001", "EMU1", _rec(), officer_name="Jose\u0301")
    assert composed == decomposed == "1001_José_EMU1_20251124T160000Z_REC000001.mp4"


# -------------------------------------------------- one party, together (000 §14.2; 003 art.14)


def test_one_partys_records_are_listed_together_across_cases(make_dock, capsys) -> None:
    """000 §14.2; 003 art.14 (一户式): the footage of two cases of party 张三 and the
    explanation item of a shift filed under one of them come back together; a case of
    another party does not."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 0})
    _open(svc, "C-1", cause="盗窃", party="张三")
    _open(svc, "C-2", cause="殴打", party="张三")
    _open(svc, "C-3", cause="盗窃", party="李四")
    first = _shift(svc, recs, "1001", count=3, case="C-1", battery_cut_at=1)
    second = _shift(svc, recs, "1001", count=2)
    third = _shift(svc, recs, "1001", count=1)
    _attach(svc, "C-2", second[0]["recording_id"])
    _attach(svc, "C-3", third[0]["recording_id"])
    got = cases.party(svc, "张三")
    assert [c["case_number"] for c in got["cases"]] == ["C-1", "C-2"]
    want = {r["recording_id"] for r in first} | {second[0]["recording_id"]}
    assert {r["recording_id"] for r in got["recordings"]} == want
    assert len(got["explanations"]) == 1 and got["explanations"][0]["reason"] == "battery"
    assert {r["recording_id"] for r in cases.party(svc, "李四")["recordings"]} == {
        third[0]["recording_id"]
    }
    assert cases.party(svc, "王五") == {"party": "王五", "cases": [], "recordings": [],
                                        "explanations": []}  # fmt: skip
    from dock.cli import cases as cli_cases

    class Args:
        party, json = "张三", False

    cli_cases.service_from = lambda args: svc  # type: ignore[assignment]
    assert cli_cases.cmd_party(Args()) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.startswith("party 张三: 2 case(s), 4 recording(s), 1 explanation item(s)")


# ------------------------------------------ an open case keeps (000 §14.4; 001 art.20)


def _decisions(svc: Any, monkeypatch: Any) -> dict[str, tuple[str, str]]:
    monkeypatch.setattr(svc.clock, "now", lambda: LATER)
    report = purge_service(svc, "clerk")  # a dry run: what would go
    return {i["recording_id"]: (i["action"], i["reason"]) for i in report.items}


def test_footage_attached_to_an_open_case_is_not_purged_until_the_case_closes(
    make_dock, monkeypatch
) -> None:
    """000 §14.4; 001 art.20; 004 att.1 art.5: past its retention, a recording attached
    to an open case is kept (no hold needed); the others of its package would go. Once a
    supervisor closes the case, ordinary retention applies and it would go too."""
    svc, _recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.05},
                           policy={"retention_days": RETENTION_DAYS})  # fmt: skip
    svc.sweep()
    rids = [e["recording_id"] for e in svc.store.archive_entries()]
    _attach(svc, "C-9", rids[0])
    got = _decisions(svc, monkeypatch)
    assert got[rids[0]] == ("keep", "case_open: evidence in an open case")
    assert {got[r][0] for r in rids[1:]} == {"would_purge"}
    with pytest.raises(Exception, match="supervisor"):  # an officer may not close it
        call(svc, "clerk", "case.close", {"case": "C-9", "officer": "1001", "pin": PIN})
    assert _decisions(svc, monkeypatch)[rids[0]][0] == "keep"
    call(svc, "clerk", "case.close", {"case": "C-9", "officer": SUP, "pin": SUP_PIN})
    assert _decisions(svc, monkeypatch)[rids[0]][0] == "would_purge"
    assert [e.data["case"] for e in svc.audit.entries() if e.kind == "case_close"] == ["C-9"]
    with pytest.raises(RequestError, match="is closed: reopen it first"):
        _attach(svc, "C-9", rids[1])
    _open(svc, "C-9")  # reopened: kept again
    assert _decisions(svc, monkeypatch)[rids[0]][0] == "keep"


def test_an_open_case_keeps_footage_while_its_retention_has_not_ended_either(
    make_dock, monkeypatch
) -> None:
    """001 art.20: closing a case does not cut retention short: before the retention
    ends the footage stays whether the case is open or closed."""
    svc, _recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.05},
                           policy={"retention_days": RETENTION_DAYS})  # fmt: skip
    svc.sweep()
    (rid,) = [e["recording_id"] for e in svc.store.archive_entries()]
    _attach(svc, "C-5", rid)
    call(svc, "clerk", "case.close", {"case": "C-5", "officer": SUP, "pin": SUP_PIN})
    report = purge_service(svc, "clerk")  # now: within retention
    assert [i["action"] for i in report.items] == ["keep"]
    assert report.items[0]["reason"].startswith("retention:")


def test_footage_in_two_cases_is_kept_while_either_is_open(make_dock, monkeypatch) -> None:
    """000 §14.4; 001 art.20: a recording filed under two cases stays while one of them
    is still open, whichever closes first; it goes when both are closed."""
    svc, _recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.05},
                           policy={"retention_days": RETENTION_DAYS})  # fmt: skip
    svc.sweep()
    (rid,) = [e["recording_id"] for e in svc.store.archive_entries()]
    _attach(svc, "C-1", rid)
    _attach(svc, "C-2", rid)
    for case in ("C-1", "C-2"):
        assert _decisions(svc, monkeypatch)[rid] == ("keep", "case_open: evidence in an open case")
        call(svc, "clerk", "case.close", {"case": case, "officer": SUP, "pin": SUP_PIN})
    assert _decisions(svc, monkeypatch)[rid][0] == "would_purge"


def test_case_commands_on_the_command_line(make_dock, monkeypatch, capsys) -> None:
    """000 §14.4; 001 art.20: `dock case open|close|show` say the case's state in one
    line; an officer may not close a case (refused, exit 1, audited), bad input is one
    line and exit 2, never a traceback."""
    import argparse
    import io

    from dock.cli import cases as cli_cases

    svc, _recs = make_dock({"battery_percent": 95.0})
    monkeypatch.setattr(cli_cases, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor", default="clerk")
    parser.add_argument("--config")
    cli_cases.register(parser.add_subparsers(dest="command", required=True))

    def dock(*argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        args = parser.parse_args(argv)
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = dock("case", "open", "C-4", "--cause", "盗窃", "--party", "张三",
                        "--officer", "1001", "--pin", PIN)  # fmt: skip
    assert (code, out) == (0, "case C-4: open; cause: 盗窃; party: 张三\n")
    code, _, err = dock("case", "close", "C-4", "--officer", "1001", "--pin", PIN)
    assert code == 1 and err.count("\n") == 1 and "refused" in err
    assert [e.data["action"] for e in svc.audit.entries() if e.kind == "case_refused"] == [
        "case_close"
    ]
    code, _, err = dock("case", "open", " ", "--officer", "1001", "--pin", PIN)
    assert code == 2 and err.count("\n") == 1 and "must not be empty" in err
    code, _, err = dock("case", "open", "C-5", "--party", "x\x1b[2J", "--officer", "1001",
                        "--pin", PIN)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "printable" in err
    code, out, _ = dock("case", "close", "C-4", "--officer", SUP, "--pin", SUP_PIN)
    assert code == 0 and out.startswith("case C-4: closed; cause: 盗窃; party: 张三")
    code, out, _ = dock("case", "show", "C-4")
    assert code == 0 and "case C-4: closed" in out
    code, _, err = dock("case", "close", "C-4", "--officer", SUP, "--pin", SUP_PIN)
    assert code == 2 and "already closed" in err and err.count("\n") == 1
