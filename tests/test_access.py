"""Access requests, the access register and evidence exports, on real offloaded footage:
nothing is seen or copied without a supervisor's approval, and an export hands out
verified copies with their written description, never the sealed originals."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import stat

import pytest

from dock.cli import access as cli_access
from dock.devices.clock import utc_iso
from dock.evidence.access import AccessError, AccessRegister
from dock.evidence.bagit import make_bag, read_bag_info, tagmanifest_digest, validate_bag
from dock.evidence.export import export
from dock.evidence.iso import write_iso

SUPERVISOR, SUPERVISOR_PIN = "9001", "999000"


class Clock:
    """A clock the test moves: approvals expire."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def docked(make_dock):
    """A dock with two recordings offloaded (and sealed) into its archive."""
    svc, _recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    svc.sweep()
    entries = svc.store.archive_entries()
    assert len(entries) == 2
    clock = Clock()
    return svc, AccessRegister(svc.store, svc.audit, clock=clock), entries, clock


def _recs(entries) -> list[tuple[str, str]]:
    return [(e["serial"], e["recording_id"]) for e in entries]


def _export(svc, reg, request_id, dest, iso=None, actor="1002", **kw):
    return export(
        reg,
        request_id,
        str(dest),
        actor=actor,
        extractor="Li Na",
        place="西湖区市场监督管理局 证据室 Room 3",
        evidence_dir=svc.offloader.evidence_dir,
        dock_id=svc.dock_id,
        iso_path=None if iso is None else str(iso),
        unit="西湖区市场监督管理局",
        timezone=svc.timezone,
        **kw,
    )


def _originals(svc, entries) -> dict[str, tuple[int, int, int]]:
    out = {}
    for e in entries:
        st = os.stat(os.path.join(svc.offloader.evidence_dir, e["path"]))
        out[e["path"]] = (st.st_ino, stat.S_IMODE(st.st_mode), st.st_nlink)
    return out


def _inodes(root: str) -> int:
    return sum(len(files) + len(dirs) for _, dirs, files in os.walk(root))


def test_an_unapproved_request_cannot_export_or_record_access(docked, tmp_path) -> None:
    """003 art.17; 004 att.3 art.15; 002 art.26: viewing, copying and export need approval: a
    pending or refused request exports nothing and registers nothing."""
    svc, reg, entries, _ = docked
    req = reg.request("1002", "traffic accident 2026-031", _recs(entries), "export")
    assert req.state(reg.clock()) == "pending"
    with pytest.raises(AccessError, match="pending"):
        _export(svc, reg, req.id, tmp_path / "out")
    with pytest.raises(AccessError, match="pending"):
        reg.record_access(req.id, "1002", _recs(entries)[0], "view")
    assert not (tmp_path / "out").exists() and reg.log() == []

    reg.refuse(req.id, SUPERVISOR, SUPERVISOR_PIN, "no case number")
    with pytest.raises(AccessError, match="refused"):
        _export(svc, reg, req.id, tmp_path / "out")
    with pytest.raises(AccessError, match="already refused"):
        reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN)
    with pytest.raises(AccessError, match="not in the archive"):
        reg.request("1002", "why", [("NOPE", "REC")], "view")
    denied = [e for e in svc.audit.entries() if e.kind == "access_denied"]
    assert [e.data["step"] for e in denied] == ["export", "view", "export", "approve", "request"]


def test_nobody_approves_their_own_request_nor_without_a_supervisor_pin(docked) -> None:
    """003 art.17; 001 art.19: approval is a supervisor's, on their own PIN, never of their own
    request; each refusal is audited."""
    svc, reg, entries, _ = docked
    own = reg.request(SUPERVISOR, "review", _recs(entries), "view")
    with pytest.raises(AccessError, match="own request"):
        reg.approve(own.id, SUPERVISOR, SUPERVISOR_PIN)
    req = reg.request("1002", "review", _recs(entries), "view")
    with pytest.raises(AccessError, match="wrong supervisor PIN"):
        reg.approve(req.id, SUPERVISOR, "000000")
    with pytest.raises(AccessError, match="not an active supervisor"):
        reg.approve(req.id, "1001", "246810")  # an officer's right PIN is not enough
    assert reg.get(req.id).approved_by is None and reg.get(own.id).approved_by is None
    reasons = [e.data["reason"] for e in svc.audit.entries() if e.kind == "access_denied"]
    assert len(reasons) == 3 and "wrong supervisor PIN" in reasons


def test_the_register_records_only_what_an_approval_covers(docked) -> None:
    """003 art.17; 004 att.3 art.15: the append-only register records who viewed what, why, where
    and when, only within an approval."""
    svc, reg, entries, clock = docked
    first, second = _recs(entries)
    req = reg.request("1002", "complaint 17", [first], "view")
    reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN, valid_for_s=3600)
    entry = reg.record_access(req.id, "1002", first, "view", place="review room 2")
    with pytest.raises(AccessError, match="allows view, not copy"):
        reg.record_access(req.id, "1002", first, "copy")
    with pytest.raises(AccessError, match="not covered"):
        reg.record_access(req.id, "1002", second, "view")
    clock.t += 3600
    with pytest.raises(AccessError, match="expired"):
        reg.record_access(req.id, "1002", first, "view")
    (row,) = reg.log()
    assert row["id"] == entry and row["who"] == "1002" and row["place"] == "review room 2"
    assert row["what"] == f"{first[0]}/{first[1]}" and row["action"] == "view"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"), svc.store._write() as db:
        db.execute("DELETE FROM access_log")
    kinds = [e.kind for e in svc.audit.entries()]
    assert {"access_request", "access_approve", "access_record", "access_denied"} <= set(kinds)


def test_an_approved_export_is_a_new_bag_of_verified_copies(docked, tmp_path) -> None:
    """004 att.2 §5; 001 art.19; 003 art.16: an approved export is a new package of verified
    copies, never the sealed originals, with its written description and a disc image."""
    svc, reg, entries, clock = docked
    evidence = svc.offloader.evidence_dir
    before, inodes_before = _originals(svc, entries), _inodes(evidence)
    assert all(mode == 0o444 for _, mode, _ in before.values())
    req = reg.request("1002", "court case (2026) 浙0106 刑初 12", _recs(entries), "export")
    reg.approve(req.id, SUPERVISOR, SUPERVISOR_PIN)
    with pytest.raises(AccessError, match="into the archive"):
        _export(svc, reg, req.id, os.path.join(evidence, "out"))

    pycdlib = pytest.importorskip("pycdlib")
    iso = tmp_path / "disc" / "export.iso"
    iso.parent.mkdir()
    result = _export(svc, reg, req.id, tmp_path / "out", iso)

    assert validate_bag(result.bag_path).ok
    assert tagmanifest_digest(result.bag_path) == result.tagmanifest_sha256
    data = os.path.join(result.bag_path, "data")
    for e in entries:
        copy = os.path.join(data, os.path.basename(e["path"]))
        with open(copy, "rb") as f:
            assert hashlib.sha256(f.read()).digest() == bytes(e["sha256"])
        assert os.stat(copy).st_nlink == 1  # a copy, not a link to the original
    # the archive's originals and the sealed bags are untouched: no new links, files, modes
    assert _originals(svc, entries) == before and _inodes(evidence) == inodes_before

    with open(os.path.join(data, "description.txt"), encoding="utf-8") as f:
        text = f.read()
    for needle in (
        f"dock {svc.dock_id}",
        "西湖区市场监督管理局",
        "提取人 Extractor: 1002 Li Na",
        "Extraction place: 西湖区市场监督管理局 证据室 Room 3",
        utc_iso(clock.t),
        "(UTC+08:00)",
        "浙0106",
        f"Approved by (head of the keeping unit): {SUPERVISOR} Zhao Min at",
        *(bytes(e["sha256"]).hex() for e in entries),
        *(utc_iso(e["start_ms"] / 1000) for e in entries),
    ):
        assert needle in text
    info = read_bag_info(result.bag_path)
    assert info["Contact-Name"] == ["1002 Li Na"] and info["Access-Request"] == [str(req.id)]

    # the disc image holds the same bytes under the same names
    disc = pycdlib.PyCdlib()
    disc.open(str(iso))
    try:
        top = "/" + os.path.basename(result.bag_path)
        for dirpath, _, files in os.walk(result.bag_path):
            for name in files:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, result.bag_path).replace(os.sep, "/")
                out = _Sink()
                disc.get_file_from_iso_fp(out, joliet_path=f"{top}/{rel}")
                with open(path, "rb") as f:
                    assert out.h.digest() == hashlib.sha256(f.read()).digest(), rel
    finally:
        disc.close()
    with open(iso, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == result.iso_sha256

    (audited,) = [e for e in svc.audit.entries() if e.kind == "access_export"]
    assert audited.data["tagmanifest_sha256"] == result.tagmanifest_sha256
    assert audited.data["iso_sha256"] == result.iso_sha256
    logged = reg.log(req.id)
    assert [r["action"] for r in logged] == ["export", "export"]
    assert {r["what"] for r in logged} == {f"{s}/{r}" for s, r in _recs(entries)}
    assert all(r["who"] == "1002" and "Room 3" in r["place"] for r in logged)
    assert svc.audit.verify().ok


class _Sink:
    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return len(data)


def test_a_disc_image_keeps_long_and_chinese_names(tmp_path) -> None:
    """001 art.19; 003 art.16; 000 §14.4; 004 att.1 art.5: the export's disc image (the
    long-term copy on disc) keeps long and Chinese file names."""
    pycdlib = pytest.importorskip("pycdlib")
    src = tmp_path / "src"
    src.mkdir()
    names = ["执法记录仪_西湖区_2026年11月22日_交通事故现场录像.mp4", "a" * 80 + ".mp4", "b.txt"]
    for i, name in enumerate(names):
        (src / name).write_bytes(bytes([i]) * (1000 + i))
    bag = make_bag(str(tmp_path / "bag"), {n: str(src / n) for n in names}, {}, link=False)
    iso = str(tmp_path / "bag.iso")
    write_iso(bag.path, iso, "test")
    disc = pycdlib.PyCdlib()
    disc.open(iso)
    try:
        listed = {
            c.file_identifier().decode("utf-16_be")
            for c in disc.list_children(joliet_path="/bag/data")
            if not (c.is_dot() or c.is_dotdot())
        }
        for name in names[::2]:
            out = _Sink()
            disc.get_file_from_iso_fp(out, rr_path=f"/bag/data/{name}")
            assert out.h.digest() == hashlib.sha256((src / name).read_bytes()).digest()
    finally:
        disc.close()
    assert len(listed) == 3 and "b.txt" in listed  # long names are cut, and stay distinct
    assert all(len(n.encode()) <= 64 and n.endswith((".mp4", ".txt")) for n in listed)
    assert any(n.startswith("执法记录仪_西湖区") for n in listed)


def test_the_command_line(docked, tmp_path, monkeypatch, capsys) -> None:
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

    recs = [f"{s}:{r}" for s, r in _recs(entries)]
    assert run("--actor", "1002", "access", "request", "--purpose", "case 9", "--kind",
               "export", *recs)[0] == 0  # fmt: skip
    code, out = run("access", "list", "--json")
    (req,) = json.loads(out)
    assert code == 0 and req["state"] == "pending" and req["requester"] == "1002"
    assert run("--actor", "1002", "export", str(req["id"]), "--to", str(tmp_path / "o"),
               "--extractor", "X", "--place", "P")[0] == 1  # fmt: skip
    assert run("access", "approve", str(req["id"]), "--supervisor", SUPERVISOR, "--pin",
               "111111")[0] == 1  # fmt: skip
    assert run("access", "approve", str(req["id"]), "--supervisor", SUPERVISOR, "--pin",
               SUPERVISOR_PIN)[0] == 0  # fmt: skip
    code, out = run("export", str(req["id"]), "--to", str(tmp_path / "o"), "--extractor",
                    "Li Na", "--place", "evidence room", "--json")  # fmt: skip
    assert code == 1 and not (tmp_path / "o").exists()  # clerk is not who the request names
    code, out = run("--actor", "1002", "export", str(req["id"]), "--to", str(tmp_path / "o"),
                    "--extractor", "Li Na", "--place", "evidence room", "--json")  # fmt: skip
    assert code == 0 and validate_bag(json.loads(out)["bag"]).ok
    code, out = run("access", "log", "--json")
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["export", "export"]
