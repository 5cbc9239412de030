"""Access to footage as REQUIREMENTS.md section 7 has it (issue 17), on real offloaded
footage: a view or copy is registered before its bytes exist (003 art.17) and is a copy,
never the sealed original (004 att.2 §5); only the person the approved request names runs
it; a supervisory body reads directly, registered (001 art.20(3); 002 art.25); marks of
confidentiality narrow access (002 art.26; 003 art.20; 001 art.17(3)); an export's
description names maker, extractor, extraction time, the capture's person, time and place,
and the head of the keeping unit who approved it (002 art.24; 001 art.19; 003 art.16).

Each test names the article it enforces in its docstring."""

from __future__ import annotations

import os
import re
import sqlite3
import stat

import pytest

from dock.devices.clock import utc_iso
from dock.evidence import working_copies
from dock.evidence.access import AccessError, AccessRegister
from dock.evidence.export import export
from dock.evidence.working_copies import produce
from dock.services import access as access_service

SUPERVISOR, SUPERVISOR_PIN = "9001", "999000"
SUPERVISOR2, SUPERVISOR2_PIN = "9002", "808541"
KEEPER, KEEPER_PIN = "6001", "604826"
OVERSIGHT, OVERSIGHT_PIN = "5001", "517394"
UNIT = "西湖区市场监督管理局 (Xihu)"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def docked(make_dock):
    """A dock with two recordings of officer 1001 archived, a second supervisor, a keeper
    and a supervisory body (oversight)."""
    return docked_dock(make_dock)


def docked_dock(make_dock):
    """What the ``docked`` fixture gives (tests/test_working_copies.py uses it too)."""
    svc, _recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.05})
    svc.sweep()
    with svc.store._write() as db:  # the footage is officer 1001's
        db.execute("UPDATE archive SET officer_id = '1001'")
    svc.store.add_officer(SUPERVISOR2, "Qian Jun", "Traffic 3", SUPERVISOR2_PIN, role="supervisor")
    svc.store.add_officer(KEEPER, "Sun Mei", "Traffic 3", KEEPER_PIN, role="keeper")
    svc.store.add_officer(OVERSIGHT, "Zhou Jian", "纪检组", OVERSIGHT_PIN, role="oversight")
    entries = svc.store.archive_entries()
    assert len(entries) == 2
    clock = Clock()
    return svc, AccessRegister(svc.store, svc.audit, clock=clock), entries, clock


def _recs(entries) -> list[tuple[str, str]]:
    return [(e["serial"], e["recording_id"]) for e in entries]


def _files(root) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]


def _kinds(svc, kind: str) -> list:
    return [e for e in svc.audit.entries() if e.kind == kind]


def _view(svc, reg, request_id, dest, who, action="view", **kw):
    return produce(reg, request_id, action, str(dest), who=who,
                   evidence_dir=svc.offloader.evidence_dir, **kw)  # fmt: skip


def _export(svc, reg, request_id, dest, who, **kw):
    return export(reg, request_id, str(dest), actor=who, evidence_dir=svc.offloader.evidence_dir,
                  dock_id=svc.dock_id, unit=UNIT, timezone=svc.timezone, **kw)  # fmt: skip


def _approved(reg, who, kind, recs, **kw):
    req = reg.request(who, "complaint 2026-17 review", recs, kind, **kw)
    reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN)
    return req


# ----------------------------------------------------------------------------- register first


def test_a_view_is_registered_before_its_copy_exists(docked, tmp_path, monkeypatch) -> None:
    """003 art.17: the keeper registers who views, why and when BEFORE the viewing;
    004 att.2 §5: the viewer gets a copy, never the sealed original."""
    svc, reg, entries, _ = docked
    req = _approved(reg, "1002", "view", _recs(entries))
    seen_at_copy: list[tuple[str, bool, bool]] = []
    real_copy = working_copies.copy_one

    def observing_copy(source: str, target: str, expected: bytes) -> str:
        what = {e["path"]: f"{e['serial']}/{e['recording_id']}" for e in entries}[
            os.path.relpath(source, svc.offloader.evidence_dir)
        ]
        logged = any(r["what"] == what and r["action"] == "view" for r in reg.log(req.id))
        audited = any(e.subject == what for e in _kinds(svc, "access_record"))
        seen_at_copy.append((what, logged, audited))
        return real_copy(source, target, expected)

    monkeypatch.setattr(working_copies, "copy_one", observing_copy)
    made = _view(svc, reg, req.id, tmp_path / "viewing", "1002")
    assert [(logged, audited) for _, logged, audited in seen_at_copy] == [(True, True)] * 2
    assert len(made.files) == 2 and len(made.entries) == 2
    for f, e in zip(made.files, entries, strict=True):
        copy, original = f["path"], os.path.join(svc.offloader.evidence_dir, e["path"])
        assert os.stat(copy).st_ino != os.stat(original).st_ino  # a copy, not the original
        assert stat.S_IMODE(os.stat(copy).st_mode) == 0o444
        assert f["sha256"] == bytes(e["sha256"]).hex()
    first, _ = reg.log(req.id)
    assert first["who"] == "1002" and first["action"] == "view"


def test_a_failed_register_write_produces_nothing(docked, tmp_path, monkeypatch) -> None:
    """003 art.17: no viewing without its registration: when the register's write
    fails (the database or the audit log), no file is produced."""
    svc, reg, entries, _ = docked
    req = _approved(reg, "1002", "copy", _recs(entries))

    def broken(*_a, **_k):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(reg.table, "add_entries", broken)
    with pytest.raises(sqlite3.OperationalError):
        _view(svc, reg, req.id, tmp_path / "a", "1002", action="copy")
    assert _files(tmp_path / "a") == []
    monkeypatch.undo()

    real_append = svc.audit.append

    def audit_fails(kind, *a, **k):
        if kind == "access_record":
            raise OSError("audit log unwritable")
        return real_append(kind, *a, **k)

    monkeypatch.setattr(svc.audit, "append", audit_fails)
    with pytest.raises(OSError):
        _view(svc, reg, req.id, tmp_path / "b", "1002", action="copy")
    assert _files(tmp_path / "b") == [] and reg.log(req.id) == []  # rolled back with it


def test_view_and_copy_need_an_approved_request_of_their_kind(docked, tmp_path) -> None:
    """004 att.3 art.15; 003 art.17; 001 art.20(2): viewing and copying need approval;
    a view approval does not copy; refusals are audited and produce nothing."""
    svc, reg, entries, _ = docked
    req = reg.request("1002", "complaint 2026-17", _recs(entries), "view")
    with pytest.raises(AccessError, match="pending"):
        _view(svc, reg, req.id, tmp_path / "v", "1002")
    reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN)
    with pytest.raises(AccessError, match="allows view, not copy"):
        _view(svc, reg, req.id, tmp_path / "v", "1002", action="copy")
    assert _files(tmp_path / "v") == [] and reg.log() == []
    assert _view(svc, reg, req.id, tmp_path / "v", "1002").files
    steps = [e.data["step"] for e in _kinds(svc, "access_denied")]
    assert steps == ["view", "copy"]


# ----------------------------------------------------------------------------- who runs it


def test_only_the_person_the_request_names_runs_it(docked, tmp_path) -> None:
    """003 art.17; 001 art.19; 002 art.26: the exporter (or viewer, copier) is checked
    against the approved request: its requester, or the extractor it names; anyone
    else is refused with a one-line reason, audited, and nothing is written."""
    svc, reg, entries, _ = docked
    req = _approved(reg, "1002", "export", _recs(entries))
    for who in ("1001", SUPERVISOR):  # another officer; the approver himself
        with pytest.raises(AccessError, match=f"names 1002 to export, not {who}$"):
            _export(svc, reg, req.id, tmp_path / "out", who)
        with pytest.raises(AccessError, match=f"names 1002 to view, not {who}"):
            _view(svc, reg, req.id, tmp_path / "out", who)
    with pytest.raises(AccessError, match=r"extractor named \(Zhao Min\) is not 1002"):
        _export(svc, reg, req.id, tmp_path / "out", "1002", extractor="Zhao Min")
    assert not (tmp_path / "out").exists() and reg.log() == []
    denied = _kinds(svc, "access_denied")
    assert [e.actor for e in denied] == ["1001", "1001", SUPERVISOR, SUPERVISOR, "1002"]
    assert "\n" not in str(denied[0].data["reason"])

    # a request that names its extractor: the keeper runs it, the requester does not
    named = _approved(reg, "1002", "export", _recs(entries), extractor=KEEPER)
    with pytest.raises(AccessError, match=f"names {KEEPER} to export, not 1002"):
        _export(svc, reg, named.id, tmp_path / "k", "1002")
    result = _export(svc, reg, named.id, tmp_path / "k", KEEPER)
    assert {r["who"] for r in reg.log(named.id)} == {KEEPER}
    with open(os.path.join(result.bag_path, "data", "description.txt"), encoding="utf-8") as f:
        assert f"提取人 Extractor: {KEEPER} Sun Mei" in f.read()


# ----------------------------------------------------------------------------- oversight


def test_a_supervisory_body_reads_directly_but_is_registered(docked, tmp_path) -> None:
    """001 art.20(3); 002 art.25: 纪检/法制/信访 read records directly, without an
    approval, and may not be refused; 003 art.17: still registered before it happens,
    with who, why (a purpose is required) and when. It changes nothing."""
    svc, reg, entries, clock = docked
    with pytest.raises(AccessError, match="must say why"):
        reg.request(OVERSIGHT, "  ", _recs(entries), "view")
    req = reg.request(OVERSIGHT, "信访 complaint 2026-88", _recs(entries), "export")
    assert req.state(clock()) == "approved" and req.basis == "oversight"
    assert req.approved_at == clock() and not _kinds(svc, "access_approve")
    (asked,) = _kinds(svc, "access_request")
    assert asked.actor == OVERSIGHT and "001 art.20(3)" in asked.data["basis"]
    assert asked.data["purpose"] == "信访 complaint 2026-88"

    made = _view(svc, reg, req.id, tmp_path / "v", OVERSIGHT)
    assert len(made.files) == 2
    logged = reg.log(req.id)
    assert {(r["who"], r["action"]) for r in logged} == {(OVERSIGHT, "view")}
    assert all(r["at"] == clock() for r in logged)
    result = _export(svc, reg, req.id, tmp_path / "e", OVERSIGHT)
    with open(os.path.join(result.bag_path, "data", "description.txt"), encoding="utf-8") as f:
        text = f.read()
    assert "direct access by a supervisory body" in text and "001 art.20(3)" in text
    # reading is all: it approves nothing, marks nothing, releases nothing
    other = reg.request("1002", "review", _recs(entries), "view")
    with pytest.raises(AccessError, match="not an active supervisor"):
        reg.approve(other.id, OVERSIGHT, OVERSIGHT_PIN)
    with pytest.raises(AccessError, match="not an active supervisor or keeper"):
        reg.mark(OVERSIGHT, OVERSIGHT_PIN, "personal_privacy", "x", recordings=_recs(entries))


# ----------------------------------------------------------------------------- confidentiality


def test_confidential_marks_narrow_access(docked, tmp_path) -> None:
    """002 art.26; 003 art.20; 001 art.17(3): recordings with state or commercial
    secrets or personal privacy are marked (by a supervisor or the keeper, audited) and
    handled under confidentiality: another officer can neither list nor ask for them,
    the approval needs a supervisor other than the requester and the extractor (four
    eyes), copies and exports need an explicit confirmation and the description states
    the mark; a supervisory body still reads them (registered); only a supervisor
    releases a mark."""
    svc, reg, entries, _ = docked
    marked, plain = _recs(entries)
    with pytest.raises(AccessError, match="not an active supervisor or keeper"):
        reg.mark("1001", "246810", "personal_privacy", "witness", recordings=[marked])
    (mark_id,) = reg.mark(KEEPER, KEEPER_PIN, "personal_privacy", "a witness's face",
                          recordings=[marked])  # fmt: skip
    (audited,) = _kinds(svc, "confidential_mark")
    assert audited.actor == KEEPER and audited.data["category"] == "personal_privacy"

    # another officer: not listed, not asked for; its own officer: both
    listed = {r["recording"] for r in access_service.recordings_for(svc.store, "1002")}
    assert listed == {f"{plain[0]}:{plain[1]}"}
    assert len(access_service.recordings_for(svc.store, "1001")) == 2
    with pytest.raises(AccessError, match="is marked confidential"):
        reg.request("1002", "curiosity", [marked], "view")
    own = reg.request("1001", "my statement", [marked], "view")

    # four eyes: the keeper asks, naming supervisor 9001 to extract: 9001 may not approve
    req = reg.request(KEEPER, "court: case 2026-41", [marked, plain], "export",
                      extractor=SUPERVISOR)  # fmt: skip
    with pytest.raises(AccessError, match="other than its extractor"):
        reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN)
    reg.approve(req.id, SUPERVISOR2, SUPERVISOR2_PIN)
    with pytest.raises(AccessError, match="confirm the export"):
        _export(svc, reg, req.id, tmp_path / "e", SUPERVISOR)
    assert not (tmp_path / "e").exists()
    result = _export(svc, reg, req.id, tmp_path / "e", SUPERVISOR, confirm_confidential=True)
    with open(os.path.join(result.bag_path, "data", "description.txt"), encoding="utf-8") as f:
        text = f.read()
    assert "保密标记 Confidential: 个人隐私 personal privacy" in text
    assert f"mark {mark_id}" in text and "1 recording(s) marked" in text
    (exported,) = _kinds(svc, "access_export")
    assert exported.data["confidential"] == [f"{marked[0]}/{marked[1]}"]

    # a copy needs the confirmation too; a view of one's own footage does not
    reg.approve(own.id, SUPERVISOR, SUPERVISOR_PIN)
    assert _view(svc, reg, own.id, tmp_path / "own", "1001").files
    copy_req = _approved(reg, KEEPER, "copy", [marked])
    with pytest.raises(AccessError, match="confirm the copy"):
        _view(svc, reg, copy_req.id, tmp_path / "c", KEEPER, action="copy")

    # a supervisory body reads it without approval, registered
    direct = reg.request(OVERSIGHT, "纪检 review 2026-3", [marked], "view")
    assert _view(svc, reg, direct.id, tmp_path / "o", OVERSIGHT).files
    assert [r["who"] for r in reg.log(direct.id)] == [OVERSIGHT]

    # release: only a supervisor, audited; then another officer may ask again
    with pytest.raises(AccessError, match="not an active supervisor"):
        reg.release_mark(mark_id, KEEPER, KEEPER_PIN, "hearing over")
    reg.release_mark(mark_id, SUPERVISOR, SUPERVISOR_PIN, "hearing over")
    assert _kinds(svc, "confidential_release")[0].actor == SUPERVISOR
    assert reg.request("1002", "now open", [marked], "view").state(reg.clock()) == "pending"


def test_a_case_marked_confidential_marks_its_recordings(docked) -> None:
    """002 art.26; 003 art.20: a mark on a case covers every recording filed under it."""
    svc, reg, entries, _ = docked
    first, second = _recs(entries)
    svc.store.attach_case("(2026)浙0106刑初12", *first, by="1001")
    reg.mark(SUPERVISOR, SUPERVISOR_PIN, "state_secret", "classified", case="(2026)浙0106刑初12")
    assert reg.marks_on(first) and not reg.marks_on(second)
    with pytest.raises(AccessError, match="is marked confidential"):
        reg.request("1002", "look", [first], "view")


# ----------------------------------------------------------------------------- the description


def test_the_export_description_names_maker_extractor_time_approver_and_capture(
    docked, tmp_path
) -> None:
    """002 art.24 (the person, time and place of capture); 001 art.19 and 003 art.16
    (the maker, the extractor, the extraction time; approved by the head of the keeping
    unit): each is in the package's written description and in the audit entry,
    never blank."""
    svc, reg, entries, clock = docked
    req = reg.request("1002", "court: case 2026-41", _recs(entries), "export")
    clock.t += 60
    reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN)
    clock.t += 60
    result = _export(svc, reg, req.id, tmp_path / "out", "1002", place="证据室 Room 3")
    with open(os.path.join(result.bag_path, "data", "description.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()

    def field(label: str) -> list[str]:
        found = [ln.split(label, 1)[1].strip() for ln in lines if label in ln]
        assert found and all(found), f"{label} missing or blank"
        return found

    iso = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z UTC / \d{4}-\d{2}-\d{2} \d{2}:\d{2}"
    (extracted,) = field("提取时间 Extraction time:")
    assert re.match(iso, extracted) and utc_iso(clock.t) in extracted
    assert field("Maker (the officer who recorded):") == ["1001 Wang Wei"]
    assert field("提取人 Extractor:") == ["1002 Li Na"]
    assert field("提取地点 Extraction place:") == ["证据室 Room 3"]
    (approved,) = field("Approved by (head of the keeping unit):")
    assert (
        approved
        == f"{SUPERVISOR} Zhao Min at {utc_iso(clock.t - 60)} UTC" + approved.split("UTC", 1)[1]
    )
    assert field("拍摄人 Person capturing:") == ["1001 Wang Wei"] * 2
    starts = field("拍摄开始 Capture start:")
    assert [s.split(" UTC")[0] for s in starts] == [utc_iso(e["start_ms"] / 1000) for e in entries]
    assert all(UNIT in p and svc.dock_id in p for p in field("拍摄地点 Capture place:"))
    (audited,) = _kinds(svc, "access_export")
    assert audited.data["extraction_time"] == utc_iso(clock.t)
    assert audited.data["extractor"] == "1002 Li Na"
    assert audited.data["approved_by"] == SUPERVISOR
    assert audited.data["approved_by_name"] == f"{SUPERVISOR} Zhao Min"
    assert audited.data["approved_at"] == utc_iso(clock.t - 60)


def test_a_purpose_is_one_bounded_line(docked) -> None:
    """003 art.17 (the reason for viewing is registered): one line of at most 500
    printable characters, so a browser's bytes cannot forge lines in the register."""
    _svc, reg, entries, _ = docked
    for bad in ("ok\x1b[2Jforged", "x" * 501):
        with pytest.raises(AccessError, match="one line of at most 500"):
            reg.request("1002", bad, _recs(entries), "view")
    req = reg.request("1002", "two\nlines   here", _recs(entries), "view")
    assert req.purpose == "two lines here"


def test_the_command_line_views_copies_and_marks(docked, tmp_path, monkeypatch, capsys) -> None:
    """003 art.17 (registered before viewing), 002 art.26 (marks), through `dock access`:
    view and copy run as --actor, refused (exit 1) for anyone the request does not name;
    marks are placed and listed."""
    import argparse
    import json

    from dock.cli import access as cli_access

    svc, _reg, entries, _ = docked
    monkeypatch.setattr(cli_access, "service_from", lambda args: svc)
    parser = argparse.ArgumentParser(prog="dock")
    parser.add_argument("--config")
    parser.add_argument("--actor", default="clerk")
    cli_access.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> tuple[int, str]:
        args = parser.parse_args(list(argv))
        code = args.func(args)
        return code, capsys.readouterr().out

    first, second = (f"{s}:{r}" for s, r in _recs(entries))
    code, out = run("--actor", "1002", "access", "request", "--purpose", "complaint 9",
                    "--kind", "copy", first, second, "--json")  # fmt: skip
    req = json.loads(out)
    assert code == 0 and req["runner"] == "1002"
    assert run("access", "approve", str(req["id"]), "--supervisor", SUPERVISOR, "--pin",
               SUPERVISOR_PIN)[0] == 0  # fmt: skip
    out_dir = tmp_path / "copies"
    assert run("--actor", "1001", "access", "copy", str(req["id"]), "--to", str(out_dir))[0] == 1
    assert not out_dir.exists()
    code, out = run("--actor", "1002", "access", "view", str(req["id"]), first, "--to",
                    str(out_dir), "--json")  # fmt: skip
    made = json.loads(out)
    assert code == 0 and len(made["files"]) == 1 and os.path.isfile(made["files"][0]["path"])
    code, out = run("access", "mark", "--by", KEEPER, "--pin", KEEPER_PIN, "--category",
                    "commercial_secret", "--reason", "trade secret on screen", second)  # fmt: skip
    assert code == 0
    code, out = run("--actor", "1002", "access", "copy", str(req["id"]), "--to", str(out_dir))
    assert code == 1  # marked: a copy needs the confirmation
    code, out = run("--actor", "1002", "access", "copy", str(req["id"]), "--to", str(out_dir),
                    "--confirm-confidential")  # fmt: skip
    assert code == 0 and "registered first" in out
    code, out = run("access", "marks", "--json")
    (m,) = json.loads(out)
    assert m["category"] == "commercial_secret" and m["marked_by"] == KEEPER
    assert [e["action"] for e in _reg.log(req["id"])] == ["view", "copy", "copy"]


def test_a_supervisory_body_may_only_read() -> None:
    """001 art.20(3); 002 art.25: supervisory bodies read records (ask, view, copy, export:
    each registered); they change nothing: no approval, hold, purge, mark or account is
    theirs to make from a logged-in session."""
    from dock.domain.roles import OVERSIGHT as ROLE
    from dock.services.requests import TABLE

    theirs = sorted(name for name, r in TABLE.items() if r.allowed((ROLE,)))
    assert theirs == ["access.copy", "access.export", "access.request", "access.view"]
