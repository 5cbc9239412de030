"""Fixity checks of the archive on real files: a real dock offloads emulated recorders,
then the archive is damaged the ways disks and people damage it."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import stat

import pytest

from dock.cli import archive as cli_archive
from dock.evidence.bagit import MANIFEST, TAGMANIFEST
from dock.evidence.fixity import sample_size, verify_archive


@pytest.fixture
def archived(make_dock):
    """A dock that has offloaded and sealed 3 recordings of one recorder."""
    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.1})
    svc.sweep()
    assert len(svc.store.archive_entries()) == 3
    return svc


def run(svc, **kw):
    return verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit, **kw)


def evidence_path(svc, rel: str) -> str:
    return os.path.join(svc.offloader.evidence_dir, rel)


def tree_state(root: str) -> dict[str, tuple]:
    """Every file's bytes, mode and mtime: what a fixity check must leave alone."""
    state = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            state[path] = (digest, st.st_mode, st.st_size, st.st_mtime_ns)
    return state


def the_bag(svc) -> str:
    seals = [e for e in svc.audit.entries() if e.kind == "seal"]
    assert len(seals) == 1
    return evidence_path(svc, seals[0].data["bag"])


def rewrite(path: str, change) -> None:
    """Change a read-only file in place, then make it read-only again (same inode)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | stat.S_IWUSR)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        change(data)
        f.seek(0)
        f.write(data)
        f.truncate()
    os.chmod(path, mode)


def replace_file(path: str, data: bytes) -> None:
    """A new inode in place of ``path`` (breaks a hard link to the archive copy)."""
    folder = os.path.dirname(path)
    folder_mode = stat.S_IMODE(os.stat(folder).st_mode)
    os.chmod(folder, folder_mode | stat.S_IWUSR)
    os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o444)
    os.chmod(folder, folder_mode)


def flip(data: bytearray) -> None:
    data[len(data) // 2] ^= 0x01


def test_an_intact_archive_passes_and_the_run_is_audited(archived) -> None:
    """004 att.2 §4: a fixity check of an intact archive passes, and the run is audited."""
    report = run(archived)
    assert (report.checked, report.intact, report.bad) == (3, 3, [])
    assert (report.bags_checked, report.bags_bad) == (1, 0) and report.clean
    checks = [e for e in archived.audit.entries() if e.kind == "fixity_check"]
    assert len(checks) == 1
    assert checks[0].data["checked"] == 3 and checks[0].data["bad"] == 0
    assert not [e for e in archived.audit.entries() if e.kind == "fixity_failure"]
    assert archived.audit.verify().ok


def test_a_flipped_byte_is_reported_with_its_recording(archived) -> None:
    """004 att.2 §4: one flipped byte in the archive is reported with its recording."""
    entry = archived.store.archive_entries()[1]
    path = evidence_path(archived, entry["path"])
    rewrite(path, flip)
    before = tree_state(archived.offloader.evidence_dir)
    report = run(archived)
    files = [p for p in report.bad if p["kind"] == "file"]
    assert len(files) == 1
    assert files[0]["recording"] == entry["recording_id"]
    assert files[0]["serial"] == entry["serial"] and files[0]["path"] == entry["path"]
    assert "SHA-256" in files[0]["problem"]
    assert (report.checked, report.intact) == (3, 2) and not report.clean and not report.ok
    if os.stat(path).st_nlink > 1:  # the bag hard-links the same inode: it shows there too
        assert report.bags_bad == 1
    assert tree_state(archived.offloader.evidence_dir) == before  # nothing touched
    failures = [e for e in archived.audit.entries() if e.kind == "fixity_failure"]
    assert len(failures) == len(report.bad)
    assert any(f.data["recording"] == entry["recording_id"] for f in failures)


def test_a_deleted_file_is_reported(archived) -> None:
    """004 att.2 §4; 000 §13.2: an archived file deleted is reported."""
    entry = archived.store.archive_entries()[0]
    path = evidence_path(archived, entry["path"])
    folder = os.path.dirname(path)
    mode = stat.S_IMODE(os.stat(folder).st_mode)
    os.chmod(folder, mode | stat.S_IWUSR)
    os.unlink(path)
    os.chmod(folder, mode)
    report = run(archived)
    files = [p for p in report.bad if p["kind"] == "file"]
    assert [(p["recording"], p["problem"]) for p in files] == [
        (entry["recording_id"], "missing: the archived file is not on disk")
    ]
    assert report.intact == 2


def test_a_file_made_writable_is_reported_though_its_bytes_are_intact(archived) -> None:
    """004 att.2 §4; 000 §10: an archived file made writable is reported, though its bytes are
    intact."""
    entry = archived.store.archive_entries()[2]
    os.chmod(evidence_path(archived, entry["path"]), 0o644)
    report = run(archived)
    files = [p for p in report.bad if p["kind"] == "file"]
    assert len(files) == 1 and files[0]["recording"] == entry["recording_id"]
    assert files[0]["problem"].startswith("writable")
    assert not [p for p in report.bad if p["kind"] == "bag"]  # manifests still match


def test_a_tampered_bag_payload_is_reported_and_the_archive_copy_is_not(archived) -> None:
    """004 att.2 §4: a tampered package payload is reported, and the intact archive copy is not."""
    bag = the_bag(archived)
    data_dir = os.path.join(bag, "data")
    name = sorted(os.listdir(data_dir))[0]
    with open(os.path.join(data_dir, name), "rb") as f:
        data = bytearray(f.read())
    flip(data)
    replace_file(os.path.join(data_dir, name), bytes(data))
    report = run(archived)
    assert report.intact == report.checked == 3  # the archive's own copies are intact
    assert (report.bags_checked, report.bags_bad) == (1, 1)
    assert report.bad and all(p["kind"] == "bag" and p["recording"] is None for p in report.bad)
    assert any(name in p["problem"] for p in report.bad)
    assert report.bad[0]["path"] == os.path.relpath(bag, archived.offloader.evidence_dir)


def test_a_bag_resealed_by_a_forger_fails_against_the_audit_log(archived) -> None:
    """000 §10; 004 att.2 §4: a package resealed by a forger fails against the signed audit log."""
    bag = the_bag(archived)
    data_dir = os.path.join(bag, "data")
    name = sorted(os.listdir(data_dir))[0]
    with open(os.path.join(data_dir, name), "rb") as f:
        old = f.read()
    new = bytearray(old)
    flip(new)
    replace_file(os.path.join(data_dir, name), bytes(new))
    old_hex, new_hex = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
    rewrite(os.path.join(bag, MANIFEST), lambda d: d.__setitem__(
        slice(None), bytes(d).replace(old_hex.encode(), new_hex.encode())))  # fmt: skip
    with open(os.path.join(bag, MANIFEST), "rb") as f:
        manifest_hex = hashlib.sha256(f.read()).hexdigest()

    def fix_tagmanifest(d: bytearray) -> None:
        lines = bytes(d).decode().splitlines(keepends=True)
        d[:] = "".join(
            f"{manifest_hex}  {MANIFEST}\n" if line.rstrip().endswith(" " + MANIFEST) else line
            for line in lines
        ).encode()

    rewrite(os.path.join(bag, TAGMANIFEST), fix_tagmanifest)
    report = run(archived)
    bag_problems = [p["problem"] for p in report.bad if p["kind"] == "bag"]
    assert len(bag_problems) == 1  # the bag itself validates: only the seal catches it
    assert "does not match its seal" in bag_problems[0]


def test_sampling_half_of_six_recordings_checks_three(make_dock) -> None:
    """004 att.2 §4: periodic sampling: a half sample of six recordings checks three."""
    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 6, "recording_mb": 0.05})
    svc.sweep()
    assert len(svc.store.archive_entries()) == 6
    seen: set[str] = set()
    report = run(
        svc,
        sample_fraction=0.5,
        rng=random.Random(7),
        progress=lambda label, done, total: seen.add(label),
    )
    assert (report.archived, report.checked, report.intact) == (6, 3, 3) and len(seen) == 3
    assert report.bags_checked == 1  # bags are always validated in full
    assert sample_size(1, 0.01) == 1 and sample_size(30, 0.1) == 3 and sample_size(0, 0.5) == 0
    with pytest.raises(ValueError):
        sample_size(6, 0)


def test_an_empty_archive_passes(make_dock) -> None:
    svc, _ = make_dock({"battery_percent": 95.0})
    report = run(svc, sample_fraction=0.1)
    assert (report.checked, report.bags_checked, report.bad) == (0, 0, [])


def namespace(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"config": None, "actor": "tester", "json": False, **kw})


def test_archive_verify_command_exit_codes(archived, monkeypatch, capsys) -> None:
    """004 att.2 §4: `dock archive verify` says by its exit status whether the archive is intact."""
    monkeypatch.setattr(cli_archive, "service_from", lambda args: archived)
    assert cli_archive.cmd_archive_verify(namespace(sample=None)) == 0
    out = capsys.readouterr()
    assert "all intact" in out.out and "100 %" in out.err  # a progress bar per file
    entry = archived.store.archive_entries()[0]
    rewrite(evidence_path(archived, entry["path"]), flip)
    assert cli_archive.cmd_archive_verify(namespace(sample=None, json=True)) == 1
    report = json.loads(capsys.readouterr().out)
    assert entry["recording_id"] in {p["recording"] for p in report["bad"]}
    assert cli_archive.cmd_archive_verify(namespace(sample=0.0)) == 2
    checks = [e for e in archived.audit.entries() if e.kind == "fixity_check"]
    assert [c.actor for c in checks] == ["tester", "tester"]


def test_archive_list_command(archived, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_archive, "service_from", lambda args: archived)
    assert cli_archive.cmd_archive_list(namespace(officer=None, json=True)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    entry = archived.store.archive_entries()[0]
    assert rows[0]["sha256"] == bytes(entry["sha256"]).hex()
    assert rows[0]["start_utc"].endswith("Z") and "(UTC" in rows[0]["start_local"]
    assert all(r["erased_on_device"] for r in rows)
    assert cli_archive.cmd_archive_list(namespace(officer="nobody", json=True)) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli_archive.cmd_archive_list(namespace(officer=None)) == 0
    text = capsys.readouterr().out
    assert rows[0]["sha256"][:12] in text and rows[0]["recording_id"] in text


def test_archive_commands_parse() -> None:
    parser = argparse.ArgumentParser()
    cli_archive.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["archive", "verify", "--sample", "10%", "--json"])
    assert args.func is cli_archive.cmd_archive_verify and args.sample == pytest.approx(0.1)
    args = parser.parse_args(["archive", "list", "--officer", "1001"])
    assert args.func is cli_archive.cmd_archive_list and args.officer == "1001"
    with pytest.raises(SystemExit):
        parser.parse_args(["archive", "verify", "--sample", "1.5"])


# --- the daemon's daily sample (dock/daemon/maintenance.py) ------------------------


def test_daily_sample_logs_and_audits_a_damaged_file_as_an_error(
    archived, monkeypatch, caplog
) -> None:
    """004 att.2 §4 periodic sampling: a damaged file found by the daemon's daily sample
    is logged as an error naming the file, and audited; the intact ones do not hide it."""
    import dock.daemon.maintenance as maintenance

    monkeypatch.setattr(maintenance, "FIXITY_SAMPLE", 1.0)  # the sample takes every file
    entry = archived.store.archive_entries()[1]
    rewrite(evidence_path(archived, entry["path"]), flip)
    with caplog.at_level("INFO", logger="dock.daemon.maintenance"):
        archived.housekeeping(1e9)
    errors = [
        r for r in caplog.records if r.name == "dock.daemon.maintenance" and r.levelname == "ERROR"
    ]
    assert errors, caplog.text
    assert any(entry["path"] in r.getMessage() for r in errors), caplog.text
    failures = [e for e in archived.audit.entries() if e.kind == "fixity_failure"]
    assert any(f.data["path"] == entry["path"] for f in failures)
    (check,) = [e for e in archived.audit.entries() if e.kind == "fixity_check"]
    assert check.data["ok"] is False and check.data["intact"] == 2


def test_daily_sample_of_an_empty_archive_is_nothing_to_check(make_dock, caplog) -> None:
    """004 att.2 §4 periodic sampling: an archive with nothing in it yet (a new dock, at
    every start) is "nothing to check", never an error."""
    svc, _ = make_dock({"battery_percent": 95.0})
    with caplog.at_level("INFO", logger="dock.daemon.maintenance"):
        svc.housekeeping(1e9)
    mine = [r for r in caplog.records if r.name == "dock.daemon.maintenance"]
    assert not [r for r in mine if r.levelno >= 30], caplog.text
    assert any("nothing to check" in r.getMessage() for r in caplog.records), caplog.text
    (check,) = [e for e in svc.audit.entries() if e.kind == "fixity_check"]
    assert check.data["ok"] is True and check.data["archived"] == 0
