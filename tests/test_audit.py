"""The audit log on real SQLite files: tampering through a separate connection is caught.

The tampering is what someone with write access to the database (but not the key)
could do; each case must make verify() fail and name the first entry that can no
longer be trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dock.domain.audit_kinds import AuditKind
from dock.storage import audit
from dock.storage.audit import AuditError, AuditLog, verify_export
from dock.storage.keys import (
    KeyFileError,
    fingerprint,
    load_or_create_signing_key,
    public_key_bytes,
)

DOCK = "DOCK-0042"
N = 350  # checkpoints at 100, 200, 300; 301..350 not yet signed
EVERY = 100


# --- an auditor's own implementation of the module docstring ------------------------


def F(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def auditor_hash(prev: str, dock: str, seq: int, *fields: str) -> str:
    parts = ["bwc-dock-audit/v1", prev, dock, str(seq), *fields]
    return hashlib.sha256(b"".join(F(p) for p in parts)).hexdigest()


def auditor_checkpoint_message(dock: str, seq: int, head: str, time: str) -> bytes:
    return b"".join(F(p) for p in ("bwc-dock-audit-checkpoint/v1", dock, str(seq), head, time))


# --- fixtures -------------------------------------------------------------------------


class Clock:
    """A deterministic clock: 1.25 s per reading from 2024-05-01T08:00:00Z."""

    def __init__(self) -> None:
        self.t = 1_714_550_400.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.t += 1.25
            return self.t


def fill(log: AuditLog, n: int, start: int = 0) -> None:
    kinds = [
        AuditKind.CHECKOUT, AuditKind.CHECKS, AuditKind.OVERRIDE, AuditKind.CLOCK_SET,
        AuditKind.ENROL, AuditKind.CONFIG, AuditKind.OFFICER_ADD,
    ]  # fmt: skip
    for i in range(start, start + n):
        log.append(
            kinds[i % len(kinds)],
            f"officer-{i % 9} 李{i % 3}",
            f"EMU{i % 5:04d}",
            {"i": i, "battery": 80 + i % 20, "passed": i % 4 != 0, "note": "ok\n"},
        )


@pytest.fixture(scope="module")
def dock_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def template(tmp_path_factory, dock_key) -> Path:
    """A closed database with N entries, built once and copied by each test."""
    path = tmp_path_factory.mktemp("template") / "audit.db"
    with AuditLog(str(path), dock_key, DOCK, checkpoint_every=EVERY, clock=Clock()) as log:
        fill(log, N)
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture
def db(template, tmp_path) -> Path:
    path = tmp_path / "audit.db"
    shutil.copyfile(template, path)
    return path


def open_log(db: Path, key: Ed25519PrivateKey) -> AuditLog:
    return AuditLog(str(db), key, DOCK, checkpoint_every=EVERY, clock=Clock())


def tamper(db: Path, *statements: str | Callable[[sqlite3.Connection], None]) -> None:
    """What an intruder does with the sqlite3 shell: drop the guards, then edit."""
    conn = sqlite3.connect(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        if callable(statement):
            statement(conn)
        else:
            conn.execute(statement)
    conn.commit()
    conn.close()


def rehash_from(seq: int, until: int = 1 << 62) -> Callable[[sqlite3.Connection], None]:
    """Recompute hash and prev_hash of entries ``seq``..``until`` (default: all later)."""

    def edit(conn: sqlite3.Connection) -> None:
        (prev,) = conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq - 1,)).fetchone()
        rows = conn.execute(
            "SELECT seq, time, kind, actor, subject, data FROM entries "
            "WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (seq, until),
        ).fetchall()
        for s, *fields in rows:
            h = auditor_hash(prev, DOCK, s, *fields)
            conn.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, s))
            prev = h

    return edit


SWAP_ALL = """
UPDATE entries SET
  (time, kind, actor, subject, data, prev_hash, hash) =
  (SELECT time, kind, actor, subject, data, prev_hash, hash FROM entries AS o
   WHERE o.seq = CASE entries.seq WHEN 40 THEN 60 ELSE 40 END)
WHERE seq IN (40, 60)
"""
SWAP_CONTENT = """
UPDATE entries SET
  (time, kind, actor, subject, data) =
  (SELECT time, kind, actor, subject, data FROM entries AS o
   WHERE o.seq = CASE entries.seq WHEN 40 THEN 60 ELSE 40 END)
WHERE seq IN (40, 60)
"""


# --- the sound log --------------------------------------------------------------------


def test_a_sound_log_verifies_and_an_auditor_can_recompute_it(db, dock_key) -> None:
    """000 §10: a sound audit log verifies, and an auditor can recompute its chain."""
    with open_log(db, dock_key) as log:
        report = log.verify()
        assert report.ok, report.describe()
        assert (report.entries_checked, report.checkpoints_checked) == (N, 3)
        assert (report.last_checkpoint, report.unsigned_tail) == (300, 50)
        assert report.head_seq == N and (N, report.head_hash) == log.head()
        assert report.public_key_fingerprint == fingerprint(dock_key)
        entries = list(log.entries())
        tail = list(log.entries(since=340))
        cps = log.checkpoints()
    assert [e.seq for e in entries] == list(range(1, N + 1))
    assert [e.seq for e in tail] == list(range(341, N + 1))
    assert tail[0].data == {"i": 340, "battery": 80, "passed": False, "note": "ok\n"}
    assert entries[0].time == "2024-05-01T08:00:01.250Z" and entries[0].kind == AuditKind.CHECKOUT
    prev = "0" * 64
    for e in entries:
        data = json.dumps(e.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert e.prev_hash == prev
        assert e.hash == auditor_hash(prev, DOCK, e.seq, e.time, e.kind, e.actor, e.subject, data)
        prev = e.hash
    by_seq = {e.seq: e for e in entries}
    assert [c.seq for c in cps] == [100, 200, 300]
    for c in cps:
        assert (
            c.head_hash == by_seq[c.seq].hash and c.public_key == public_key_bytes(dock_key).hex()
        )
        Ed25519PublicKey.from_public_bytes(public_key_bytes(dock_key)).verify(
            bytes.fromhex(c.signature), auditor_checkpoint_message(DOCK, c.seq, c.head_hash, c.time)
        )


def test_the_dock_itself_cannot_update_or_delete(db) -> None:
    """000 §10: the audit log is append-only: the dock itself cannot update or delete an entry."""
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE entries SET data = '{}' WHERE seq = 5")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM checkpoints")
    conn.close()


def test_checkpoint_signs_the_head_and_the_count_restarts(db, dock_key) -> None:
    """000 §10: a checkpoint signs the chain's head (an electronic signature)."""
    with open_log(db, dock_key) as log:
        assert log.checkpoint() == N
        assert log.checkpoint() == N  # nothing new: no second checkpoint
        fill(log, EVERY, start=N)  # the next automatic one is EVERY after the manual one
        assert [c.seq for c in log.checkpoints()] == [100, 200, 300, N, N + EVERY]
        assert log.verify().ok


def test_refuses_bad_input_another_docks_log_and_a_damaged_file(db, dock_key, tmp_path) -> None:
    with open_log(db, dock_key) as log:
        with pytest.raises(TypeError, match="not an audit kind"):
            log.append("Custody Change", "a", "b", {})
        with pytest.raises(ValueError):
            log.append(AuditKind.CHECKOUT, "a", "b", {"x": float("nan")})
        with pytest.raises(ValueError):
            log.append(AuditKind.CHECKOUT, "a\udc80", "b", {})
        assert log.head()[0] == N
    with pytest.raises(AuditError, match="belongs to dock 'DOCK-0042'"):
        AuditLog(str(db), dock_key, "DOCK-0043")
    damaged = tmp_path / "damaged.db"
    raw = bytearray(db.read_bytes())
    raw[4096 * 2 : 4096 * 3] = b"\xa5" * 4096
    damaged.write_bytes(bytes(raw))
    with pytest.raises(AuditError, match="damaged"):
        AuditLog(str(damaged), dock_key, DOCK)


def test_an_empty_log_verifies_and_exports(tmp_path, dock_key) -> None:
    with AuditLog(str(tmp_path / "a.db"), dock_key, DOCK) as log:
        assert log.verify().ok and log.checkpoint() == 0
        log.export(str(tmp_path / "e.jsonl"))
    report = verify_export(str(tmp_path / "e.jsonl"))
    assert report.ok and report.entries_checked == 0


# --- tampering in the database --------------------------------------------------------

TAMPERS = {
    "data updated": (
        ["""UPDATE entries SET data = '{"battery":99,"i":122,"note":"ok\\n","passed":true}'
            WHERE seq = 123"""],
        123, audit.CHANGED,
    ),
    "actor updated": (["UPDATE entries SET actor = 'officer-9' WHERE seq = 7"], 7, audit.CHANGED),
    "middle row deleted": (["DELETE FROM entries WHERE seq = 150"], 150, audit.REMOVED),
    "data made a blob": (["UPDATE entries SET data = x'7b7d' WHERE seq = 8"], 8, audit.CHANGED),
    "invalid UTF-8 written": (
        ["UPDATE entries SET actor = CAST(x'ff' AS TEXT) WHERE seq = 9"], 9, audit.CHANGED,
    ),
    "first row deleted": (["DELETE FROM entries WHERE seq = 1"], 1, audit.REMOVED),
    "deleted and renumbered": (
        ["DELETE FROM entries WHERE seq BETWEEN 150 AND 152",
         "UPDATE entries SET seq = seq - 3 WHERE seq > 152"],
        150, audit.REMOVED,
    ),
    "two rows swapped": ([SWAP_ALL], 40, audit.REORDERED),
    "two rows' contents swapped": ([SWAP_CONTENT], 40, audit.REORDERED),
    "tail deleted after a checkpoint covered it": (
        ["DELETE FROM entries WHERE seq > 250"], 251, audit.REMOVED,
    ),
    "tail and its checkpoint's entry deleted": (
        ["DELETE FROM entries WHERE seq >= 300"], 300, audit.REMOVED,
    ),
    "one row rewritten and re-hashed": (
        ["UPDATE entries SET subject = 'EMU9999' WHERE seq = 77", rehash_from(77, 77)],
        77, audit.CHANGED,  # 78 no longer links to 77's new hash
    ),
    "row rewritten, it and all later re-hashed": (
        ["UPDATE entries SET actor = 'someone else' WHERE seq = 250", rehash_from(250)],
        201, audit.CHECKPOINT_MISMATCH,  # only checkpoint 300 can tell: 201..300 suspect
    ),
    "checkpoint signature forged": (
        ["UPDATE checkpoints SET signature = '00' || substr(signature, 3) WHERE seq = 200"],
        101, audit.BAD_CHECKPOINT_SIGNATURE,
    ),
    "checkpoint re-timed": (
        ["UPDATE checkpoints SET time = '2030-01-01T00:00:00.000Z' WHERE seq = 100"],
        1, audit.BAD_CHECKPOINT_SIGNATURE,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", TAMPERS)
def test_tampering_is_caught_and_the_first_bad_entry_named(case, db, dock_key) -> None:
    """000 §10: tampering is caught, and the first entry no longer to be trusted is named."""
    statements, first_bad, reason = TAMPERS[case]
    tamper(db, *statements)
    with open_log(db, dock_key) as log:
        report = log.verify()
    assert not report.ok
    assert (report.reason, report.first_bad) == (reason, first_bad), report.describe()
    assert f"entry {report.first_bad}" in report.describe()


def test_rewriting_with_the_attackers_own_key_is_caught(db, dock_key) -> None:
    """000 §10: a log rewritten and signed with an attacker's own key is caught."""
    intruder = Ed25519PrivateKey.generate()

    def resign(conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT seq, time FROM checkpoints").fetchall()
        for seq, time in rows:
            (head,) = conn.execute("SELECT hash FROM entries WHERE seq = ?", (seq,)).fetchone()
            sig = intruder.sign(auditor_checkpoint_message(DOCK, seq, head, time)).hex()
            pub = public_key_bytes(intruder).hex()
            conn.execute(
                "UPDATE checkpoints SET head_hash = ?, signature = ?, public_key = ? WHERE seq = ?",
                (head, sig, pub, seq),
            )

    tamper(db, "UPDATE entries SET data = '{}' WHERE seq = 5", rehash_from(5), resign)
    with open_log(db, dock_key) as log:
        report = log.verify()
        assert (report.ok, report.reason, report.first_bad) == (False, audit.WRONG_KEY, 1)
        # trusting the key the database names is exactly what an intruder wants:
        assert log.verify(public_key_bytes(intruder)).ok


def test_a_cut_unsigned_tail_is_the_documented_limit(db, dock_key) -> None:
    """000 §10: Entries after the newest checkpoint can vanish unnoticed locally; the report says
    how many were unsigned, and head() is what to anchor elsewhere."""
    tamper(db, "DELETE FROM entries WHERE seq > 320")
    with open_log(db, dock_key) as log:
        report = log.verify()
    assert report.ok and report.head_seq == 320 and report.unsigned_tail == 20


# --- export ---------------------------------------------------------------------------


def test_export_round_trip_without_the_database(db, dock_key, tmp_path) -> None:
    """000 §10: an exported log verifies without the database."""
    out = tmp_path / "export" / "audit.jsonl"
    out.parent.mkdir()
    with open_log(db, dock_key) as log:
        summary = log.export(str(out))
        assert summary.entries == N and summary.head_hash == log.head()[1]
        assert log.checkpoints()[-1].seq == N  # export signed the tail first
    assert os.listdir(out.parent) == ["audit.jsonl"]  # no temporary file left behind
    db.unlink()
    report = verify_export(str(out))
    assert report.ok, report.describe()
    assert (report.entries_checked, report.unsigned_tail) == (N, 0)
    assert report.public_key_fingerprint == fingerprint(dock_key)
    assert verify_export(str(out), public_key_bytes(dock_key)).ok
    other = public_key_bytes(Ed25519PrivateKey.generate())
    assert verify_export(str(out), other).reason == audit.WRONG_KEY
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["dock_id"] == DOCK
    assert lines[-1]["type"] == "signature"
    assert sum(1 for x in lines if x["type"] == "entry") == N


def _edit_export(path: Path, edit: Callable[[list[dict]], list[dict]]) -> None:
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    text = "".join(audit.canonical_json(x) + "\n" for x in edit(lines))
    path.write_text(text, "utf-8")


def _set(seq: int, **changes: object) -> Callable[[list[dict]], list[dict]]:
    def edit(lines: list[dict]) -> list[dict]:
        return [{**x, **changes} if x["type"] == "entry" and x["seq"] == seq else x for x in lines]

    return edit


EXPORT_TAMPERS = {
    "entry data": (_set(42, data='{"i":0}'), 42, audit.CHANGED),
    "entry line removed": (
        lambda ls: [x for x in ls if not (x["type"] == "entry" and x["seq"] == 99)],
        99, audit.REMOVED,
    ),
    "entry lines swapped": (
        lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 1, audit.REORDERED,
    ),
    "last entries removed": (
        lambda ls: [x for x in ls if not (x["type"] == "entry" and x["seq"] > 340)],
        341, audit.REMOVED,
    ),
    "header time changed": (
        lambda ls: [{**ls[0], "exported_at": "2020-01-01T00:00:00.000Z"}, *ls[1:]],
        None, audit.BAD_EXPORT_SIGNATURE,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", EXPORT_TAMPERS)
def test_a_tampered_export_is_caught(case, db, dock_key, tmp_path) -> None:
    """000 §10: a tampered export of the audit log is caught."""
    out = tmp_path / "audit.jsonl"
    with open_log(db, dock_key) as log:
        log.export(str(out))
    edit, first_bad, reason = EXPORT_TAMPERS[case]
    _edit_export(out, edit)
    report = verify_export(str(out))
    assert (report.ok, report.reason, report.first_bad) == (False, reason, first_bad), (
        report.describe()
    )


def test_a_cut_export_and_one_forged_with_another_key(db, dock_key, tmp_path) -> None:
    """000 §10: an export cut short, or forged with another key, is caught."""
    out = tmp_path / "audit.jsonl"
    with open_log(db, dock_key) as log:
        log.export(str(out))
    blob = out.read_bytes()
    out.write_bytes(blob[: len(blob) // 2])
    assert verify_export(str(out)).reason == audit.MALFORMED
    # Someone builds a whole log of their own with the dock's id: it verifies against
    # the key it names, so the supervisor must pin the dock's key (or its fingerprint).
    intruder = Ed25519PrivateKey.generate()
    with AuditLog(str(tmp_path / "fake.db"), intruder, DOCK, clock=Clock()) as fake:
        fill(fake, 10)
        fake.export(str(out))
    assert verify_export(str(out)).public_key_fingerprint != fingerprint(dock_key)
    assert verify_export(str(out), public_key_bytes(dock_key)).reason == audit.WRONG_KEY


@pytest.fixture(scope="module")
def small_export(tmp_path_factory) -> bytes:
    """A short export with the awkward characters: CJK, control characters, quotes."""
    folder = tmp_path_factory.mktemp("small")
    key = Ed25519PrivateKey.generate()
    with AuditLog(str(folder / "a.db"), key, "码头-7", checkpoint_every=4, clock=Clock()) as log:
        log.append(AuditKind.ENROL, "管理员\u0001", 'EMU"1"', {"secret_id": "ab", "v": [1.5, None]})
        log.append("clock_set", "dock", "EMU0002", {"drift_s": -47.125, "trusted": True})
        fill(log, 9)
        log.export(str(folder / "e.jsonl"))
    blob = (folder / "e.jsonl").read_bytes()
    assert verify_export(str(folder / "e.jsonl")).ok
    return blob


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_byte_change_in_an_export_is_caught(small_export, tmp_path_factory, data):
    """000 §10: any single byte changed in an export is caught."""
    position = data.draw(st.integers(0, len(small_export) - 1), label="position")
    xor = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(small_export)
    changed[position] ^= xor
    path = tmp_path_factory.getbasetemp() / "mutated.jsonl"
    path.write_bytes(bytes(changed))
    report = verify_export(str(path))
    assert not report.ok, (position, xor, report.describe())


# --- concurrency ----------------------------------------------------------------------


def test_concurrent_appends_from_threads_and_two_instances(tmp_path, dock_key) -> None:
    path = str(tmp_path / "audit.db")
    logs = [AuditLog(path, dock_key, DOCK, checkpoint_every=7) for _ in range(2)]
    per_thread = 60
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                logs[t % 2].append(AuditKind.CHECKOUT, f"thread-{t}", "EMU0001", {"t": t, "i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    report = logs[0].verify()
    assert report.ok and report.entries_checked == 4 * per_thread, report.describe()
    got = sorted((e.data["t"], e.data["i"]) for e in logs[1].entries())
    assert got == [(t, i) for t in range(4) for i in range(per_thread)]
    for log in logs:
        log.close()


# --- the key --------------------------------------------------------------------------


def test_key_is_created_0600_and_loaded_again(tmp_path) -> None:
    """000 §10: the signing key is the dock's alone (mode 0600) and loaded again."""
    path = tmp_path / "keys" / "dock.key"
    key = load_or_create_signing_key(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert os.listdir(path.parent) == ["dock.key"]
    again = load_or_create_signing_key(str(path))
    assert public_key_bytes(again) == public_key_bytes(key) and len(public_key_bytes(key)) == 32
    assert len(fingerprint(public_key_bytes(key))) == 19


def test_a_key_others_can_read_or_a_broken_key_is_refused(tmp_path) -> None:
    """000 §10: a signing key others can read, or a broken one, is refused."""
    path = tmp_path / "dock.key"
    load_or_create_signing_key(str(path))
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match=rf"{path}.*0644.*chmod 600 {path}"):
        load_or_create_signing_key(str(path))
    path.chmod(0o600)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match=rf"{path} cannot be parsed.*move {path} away"):
        load_or_create_signing_key(str(path))


def test_concurrent_first_starts_agree_on_one_key(tmp_path) -> None:
    path = str(tmp_path / "dock.key")
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def first_start() -> None:
        start.wait()
        keys.append(public_key_bytes(load_or_create_signing_key(path)))

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert os.listdir(tmp_path) == ["dock.key"]
