"""An audit log that cannot be cut or rewritten unnoticed (issue 10, section 4).

Inside its own database a hash chain cannot show that its newest entries were cut off
with their checkpoints, that every checkpoint was deleted and the chain re-hashed, or
that the whole log was emptied. A checkpoint kept outside the database (the log's own
copy, or headquarters' through ``--against``) shows each; without one, verify says it
cannot tell. ``meta`` is covered too. And ``dock audit verify FILE`` checks an export on
any machine against the dock's key fingerprint.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.domain.audit_kinds import AuditKind
from dock.storage import audit
from dock.storage.audit import (
    NO_OUTSIDE_CHECKPOINT,
    AuditLog,
    OutsideCheckpoint,
    checkpoint_file_text,
    read_checkpoint_file,
)
from dock.storage.keys import fingerprint, public_key_bytes

from .conftest import write_dock_config
from .test_audit import DOCK, Clock, fill, rehash_from, tamper

DOCK_CLI = [sys.executable, "-m", "dock.cli.main"]
EVERY = 100
N = 350  # checkpoints at 100, 200, 300; the copy outside holds 300


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def template(tmp_path_factory, key) -> Path:
    folder = tmp_path_factory.mktemp("outside")
    db = folder / "audit.db"
    copy = folder / "copy" / "checkpoint.json"
    with AuditLog(str(db), key, DOCK, EVERY, Clock(), copy_path=str(copy)) as log:
        fill(log, N)
    return folder


@pytest.fixture
def dock_files(template, tmp_path) -> tuple[Path, Path]:
    """(database, copy outside it) of a sound log of N entries, fresh for each test."""
    shutil.copytree(template, tmp_path / "t")
    return tmp_path / "t" / "audit.db", tmp_path / "t" / "copy" / "checkpoint.json"


def open_log(db: Path, key: Ed25519PrivateKey, copy: Path | None) -> AuditLog:
    return AuditLog(
        str(db), key, DOCK, EVERY, Clock(), copy_path=None if copy is None else str(copy)
    )


def wipe(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM entries")
    conn.execute("DELETE FROM checkpoints")


CUT_NEWEST = ["DELETE FROM entries WHERE seq > 250", "DELETE FROM checkpoints WHERE seq > 250"]
REHASHED = [
    "UPDATE entries SET actor = 'someone else' WHERE seq = 120",
    rehash_from(120),
    "DELETE FROM checkpoints",
]
EMPTIED = [wipe]
#: What an intruder does to a log, what verify says with a copy kept outside.
ATTACKS = {
    "newest entries cut with their checkpoints": (CUT_NEWEST, audit.REMOVED, 251),
    "every checkpoint deleted and the chain re-hashed": (
        REHASHED, audit.CHECKPOINT_MISMATCH, 1,
    ),
    "log emptied": (EMPTIED, audit.REMOVED, 1),
}  # fmt: skip


def test_the_copy_outside_is_the_newest_checkpoint(dock_files, key) -> None:
    """000 §10: the checkpoint kept outside the database is the newest."""
    db, copy = dock_files
    kept = read_checkpoint_file(str(copy))
    with open_log(db, key, copy) as log:
        assert (kept.dock_id, kept.checkpoint) == (DOCK, log.checkpoints()[-1])
        report = log.verify()
        assert report.ok and report.outside == [f"entry 300 ({copy})"], report.describe()
        assert NO_OUTSIDE_CHECKPOINT not in report.describe()
        log.checkpoint()  # the next checkpoint extends it: it replaces the copy
        assert read_checkpoint_file(str(copy)).checkpoint.seq == N
    assert json.loads(copy.read_text())["fingerprint"] == fingerprint(key)
    assert sorted(os.listdir(copy.parent)) == ["checkpoint.json"]  # no temporary left


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attack_fails_verify_with_the_copy_kept_outside(attack, dock_files, key) -> None:
    """000 §10: a log cut back and regrown fails verification against the copy kept outside."""
    statements, reason, first_bad = ATTACKS[attack]
    db, copy = dock_files
    tamper(db, *statements)
    with open_log(db, key, copy) as log:
        report = log.verify()
    assert (report.ok, report.reason, report.first_bad) == (False, reason, first_bad), (
        report.describe()
    )
    assert str(copy) in report.detail


@pytest.mark.parametrize("attack", ATTACKS)
def test_without_anything_outside_verify_says_it_cannot_tell(attack, dock_files, key) -> None:
    """000 §10: without a checkpoint kept outside, verification says it cannot tell."""
    statements, _, _ = ATTACKS[attack]
    db, _copy = dock_files
    tamper(db, *statements)
    with open_log(db, key, None) as log:
        report = log.verify()
    assert report.ok and report.outside == []
    assert NO_OUTSIDE_CHECKPOINT in report.describe()


@pytest.mark.parametrize("attack", ATTACKS)
def test_headquarters_checkpoint_catches_it_when_the_copy_went_too(attack, dock_files, key):
    """000 §10: headquarters' checkpoint catches a cut when the copy outside went too."""
    statements, reason, first_bad = ATTACKS[attack]
    db, copy = dock_files
    hq = read_checkpoint_file(str(copy))  # what headquarters accepted: the same checkpoint
    hq = OutsideCheckpoint(hq.dock_id, hq.checkpoint, "hq.json")
    tamper(db, *statements)
    copy.unlink()
    with open_log(db, key, copy) as log:
        report = log.verify(against=[hq])
    assert (report.ok, report.reason, report.first_bad) == (False, reason, first_bad)
    assert "hq.json" in report.detail


def test_after_a_cut_the_copy_is_not_replaced_by_the_regrown_log(dock_files, key, caplog):
    db, copy = dock_files
    tamper(db, *CUT_NEWEST)
    with open_log(db, key, copy) as log:
        fill(log, 200, start=1000)  # the log grows past the copy's entry 300 again
        assert log.checkpoints()[-1].seq > 300
        report = log.verify()
    assert read_checkpoint_file(str(copy)).checkpoint.seq == 300  # what was cut, kept
    # entries up to 200 are still vouched for by the log's own checkpoint 200
    assert (report.ok, report.reason, report.first_bad) == (False, audit.CHECKPOINT_MISMATCH, 201)
    assert "entries 201..300 were rewritten" in report.detail
    assert "no longer holds entry 300" in caplog.text  # said at the first checkpoint after


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("UPDATE meta SET value = '2' WHERE key = 'format'", "format is '2', not '1'"),
        ("DELETE FROM meta WHERE key = 'format'", "format is missing"),
        ("DELETE FROM meta", "dock_id is missing"),
        ("INSERT INTO meta VALUES ('checkpoint_every', '1000000')", "checkpoint_every"),
    ],
)
def test_a_changed_meta_fails_verify(statement, says, dock_files, key) -> None:
    db, copy = dock_files
    tamper(db, statement)
    with open_log(db, key, copy) as log:
        report = log.verify()
        log.append(AuditKind.CHECKOUT, "a", "b", {})  # the dock goes on and does not repair meta
        again = log.verify()
    assert (report.ok, report.reason) == (False, audit.META_CHANGED)
    assert says in report.detail and says in again.detail


def test_a_forged_or_damaged_copy_fails_verify(dock_files, key, tmp_path) -> None:
    """000 §10: a forged or damaged checkpoint copy fails verification."""
    db, copy = dock_files
    kept = read_checkpoint_file(str(copy)).checkpoint
    intruder = Ed25519PrivateKey.generate()
    forged = audit.Checkpoint(
        kept.seq,
        kept.head_hash,
        kept.time,
        public_key_bytes(intruder).hex(),
        intruder.sign(audit.checkpoint_message(DOCK, kept.seq, kept.head_hash, kept.time)).hex(),
    )
    copy.write_text(checkpoint_file_text(DOCK, forged))
    with open_log(db, key, copy) as log:
        report = log.verify()
    assert (report.ok, report.reason) == (False, audit.BAD_OUTSIDE_CHECKPOINT)
    assert "signed by another key" in report.detail
    copy.write_text("{not json")
    with open_log(db, key, copy) as log:
        assert log.verify().reason == audit.BAD_OUTSIDE_CHECKPOINT


# --- the command line ------------------------------------------------------------------


def dock(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DOCK_CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def configured(tmp_path) -> tuple[str, Path, Path]:
    """A dock configuration whose audit log has entries and checkpoints: (config, db, copy)."""
    from dock.config import load_config
    from dock.daemon.composition import open_audit_log

    cfg_path, state, _ = write_dock_config(tmp_path, "tcp://127.0.0.1:9", DOCK)
    cfg = load_config(cfg_path, env={})
    with open_audit_log(cfg) as log:
        fill(log, 250)
    return cfg_path, Path(state) / "audit.db", Path(cfg.dock.audit_copy_path)


def test_dock_audit_verify_fails_on_a_cut_and_says_when_it_cannot_tell(configured) -> None:
    """000 §10: `dock audit verify` fails on a cut log, and says when it cannot tell."""
    cfg, db, copy = configured
    good = dock("--config", cfg, "audit", "verify")
    assert good.returncode == 0 and "OK" in good.stdout, good.stderr
    assert "matches the checkpoints kept outside: entry 200" in good.stdout
    tamper(db, "DELETE FROM entries WHERE seq > 150", "DELETE FROM checkpoints WHERE seq > 150")
    cut = dock("--config", cfg, "audit", "verify")
    assert cut.returncode == 1
    assert "BAD at entry 151: removed" in cut.stdout and "151..200 were removed" in cut.stdout
    hq_copy = copy.parent.parent / "from-hq.json"
    copy.rename(hq_copy)  # the intruder removed the copy too: only headquarters' is left
    blind = dock("--config", cfg, "audit", "verify")
    assert blind.returncode == 0 and NO_OUTSIDE_CHECKPOINT in blind.stdout
    against = dock("--config", cfg, "audit", "verify", "--against", str(hq_copy))
    assert against.returncode == 1 and "BAD at entry 151" in against.stdout
    assert dock("--config", cfg, "audit", "verify", "--against", "/nonexistent").returncode == 2


def test_dock_audit_verify_fails_on_a_flipped_meta(configured) -> None:
    cfg, db, _ = configured
    tamper(db, "UPDATE meta SET value = '0' WHERE key = 'format'")
    out = dock("--config", cfg, "audit", "verify", "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["reason"] == audit.META_CHANGED


def test_dock_audit_verify_file_checks_an_export_against_the_fingerprint(
    configured, tmp_path
) -> None:
    cfg, _, _ = configured
    export = tmp_path / "elsewhere" / "audit.jsonl"
    export.parent.mkdir()
    assert dock("--config", cfg, "audit", "export", str(export)).returncode == 0
    status = json.loads(dock("--config", cfg, "audit", "verify", "--json").stdout)
    fp = status["public_key_fingerprint"]
    # On another machine: no configuration, no database, only the file and the label.
    shutil.rmtree(tmp_path / "state")
    good = dock("audit", "verify", str(export), "--fingerprint", fp)
    assert good.returncode == 0 and "audit log OK" in good.stdout, good.stderr
    assert (
        dock("audit", "verify", str(export), "--fingerprint", fp.replace(":", "")).returncode == 0
    )

    lines = export.read_text("utf-8").splitlines()
    entry = json.loads(lines[42])
    assert entry["type"] == "entry"
    entry["actor"] = "somebody else"
    lines[42] = audit.canonical_json(entry)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n", "utf-8")
    bad = dock("audit", "verify", str(tampered), "--fingerprint", fp)
    assert bad.returncode == 1
    assert f"BAD at entry {entry['seq']}: changed" in bad.stdout

    other = dock("audit", "verify", str(export), "--fingerprint", "0123:4567:89ab:cdef")
    assert other.returncode == 1 and "signed by another key" in other.stdout
    for usage in (
        ["audit", "verify", str(export)],  # no key to check against
        ["audit", "verify", str(export), "--fingerprint", "nonsense"],
        ["audit", "verify", str(tmp_path / "missing.jsonl"), "--fingerprint", fp],
    ):
        out = dock(*usage)
        assert out.returncode == 2, (usage, out.stdout, out.stderr)
        assert out.stderr.startswith("dock audit verify: ")
