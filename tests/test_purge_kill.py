"""kill -9 of ``dock purge --apply`` at every crash point of a purge (issue 10 section 3).

As in tests/test_offload_kill.py, the kills come from the dock's own crash points
(``DOCK_CRASH_AT=<point>:<n>``, dock/support/crashpoints.py ``PURGE_POINTS``): the real
``dock purge --apply`` subprocess, approved by two supervisors, sends itself SIGKILL
the n-th time it reaches the point. Each kill is followed by another run, which goes
on from where the last one died (and is itself killed further on), then a clean run.

After every kill: every package on disk passes bagit-python; every recording that is
not being purged is intact and in a package on disk whose seal is in the audit log; a
purged file is gone only after its purge intent was audited. After the clean run of a
round: ``dock archive verify`` exits 0, the replaced package is gone, nothing is left
over; in the end ``dock audit verify`` exits 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
from typing import Any

import pytest

from dock.config import load_config
from dock.daemon.composition import build_service
from dock.support.crashpoints import ENV, PURGE_POINTS
from hardware.screens import ConsoleScreen

from .conftest import write_dock_config
from .test_cli import DOCK

SUP = ("--supervisor", "9001", "--supervisor-pin", "999000",
       "--second-supervisor", "9002", "--second-pin", "808541")  # fmt: skip
OLD_MS = 40 * 86400 * 1000  # back-dated beyond the 30 days of retention

#: (what the round purges, the kills in order). Each kill's run goes on with the purge
#: the previous one left, so every point is reached in the order a purge reaches them.
ROUNDS = (
    (
        "one of a package's two recordings: the package is re-sealed",
        (
            "purge.intent.after:1",  # intent audited, nothing on disk changed
            "seal.start:1",  # building the new package in its temporary folder
            "purge.reseal.made:1",  # new package in place, its seal not audited
            "purge.reseal.after:1",  # new package sealed, old one and the file still there
            "purge.file.after:1",  # the purged file unlinked
            "purge.bag.aside:1",  # old package renamed aside
            "purge.done.before:1",  # everything gone, purge entry not written
        ),
    ),
    (
        "both recordings of a package: the package is removed",
        (
            "purge.intent.after:1",
            "purge.file.after:1",  # one file of two unlinked
            "purge.bag.aside:1",
            "purge.done.before:1",
        ),
    ),
)


@dataclasses.dataclass
class Dock:
    base: list[str]
    state: Any
    evidence: Any
    packages: list[list[str]]  # recording ids, per package

    def db(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.state / 'dock.db'}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        return db

    def run(self, *argv: str, crash: str = "") -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != ENV}
        if crash:
            env[ENV] = crash
        return subprocess.run([*self.base, *argv], capture_output=True, text=True, env=env,
                              timeout=120)  # fmt: skip

    def audit(self) -> list[tuple[int, str, dict[str, Any]]]:
        path = self.state / "audit.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return [(seq, kind, json.loads(data)) for seq, kind, data in
                    db.execute("SELECT seq, kind, data FROM entries ORDER BY seq")]  # fmt: skip


@pytest.fixture
def dock(tmp_path, start_recorder) -> Dock:
    """Two packages of two recordings each, sealed by a real offload; two supervisors."""
    rec = start_recorder(listen="tcp://127.0.0.1:0", recordings=2, recording_mb=0.05,
                         battery_percent=95.0)  # fmt: skip
    cfg_path, state, evidence = write_dock_config(tmp_path, rec.url, "purge")
    with open(cfg_path, "a", encoding="utf-8") as f:
        f.write("\n[policy]\nretention_days = 30\n")
    svc = build_service(load_config(cfg_path), screen=ConsoleScreen(io.StringIO()))
    svc.enrol("1", "admin")
    svc.store.add_officer("9001", "Zhao Min", "Traffic 3", "999000", role="supervisor")
    svc.store.add_officer("9002", "Qian Lei", "Traffic 3", "808541", role="supervisor")
    svc.sweep()
    rec.model._generate_recordings(2, 50_000, 0)
    rec.model.save()
    assert svc.offload("1").ok
    rows = svc.store.archive_entries()
    packages: dict[int, list[str]] = {}
    for r in rows:
        packages.setdefault(r["bag_id"], []).append(r["recording_id"])
    svc.store.close()
    svc.audit.close()
    assert [len(p) for p in packages.values()] == [2, 2]
    return Dock([*DOCK, "--config", cfg_path, "--actor", "clerk"], state, evidence,
                list(packages.values()))  # fmt: skip


def back_date(d: Dock, recordings: list[str]) -> None:
    with contextlib.closing(sqlite3.connect(d.state / "dock.db")) as db, db:
        db.executemany("UPDATE archive SET start_ms = start_ms - ? WHERE recording_id = ?",
                       [(OLD_MS, r) for r in recordings])  # fmt: skip


def appraise(d: Dock) -> tuple[str, ...]:
    """004 att.2 §6: an appraisal of what the purge will take, proposed by one supervisor
    and approved by the other; the options that cite it."""
    p = d.run("appraisal", "propose", "--candidates", "--proposer", "9001", "--pin", "999000",
              "--reason", "retention ended", "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    number = str(json.loads(p.stdout)["id"])
    p = d.run("appraisal", "approve", number, "--supervisor", "9002", "--pin", "808541")
    assert p.returncode == 0, p.stderr
    return ("--appraisal", number)


def packages_on_disk(d: Dock) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(d.evidence / "bags"):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        if "bagit.txt" in files:
            found.append(os.path.relpath(folder, d.evidence))
            dirs[:] = []
    return sorted(found)


def check_after_kill(d: Dock, after: str) -> list[str]:
    """What must hold at any instant of a purge: the violations found, as sentences."""
    import bagit

    bad: list[str] = []
    entries = d.audit()
    sealed = {data["bag"] for _, kind, data in entries if kind == "seal"}
    intents = {r for _, kind, data in entries if kind == "purge_intent"
               for r in data["recordings"]}  # fmt: skip
    manifests: dict[str, set[str]] = {}
    for rel in packages_on_disk(d):
        try:
            bagit.Bag(str(d.evidence / rel)).validate()
        except bagit.BagError as exc:
            bad.append(f"after {after}: {rel} invalid for bagit-python: {exc}")
        with open(d.evidence / rel / "manifest-sha256.txt", encoding="utf-8") as f:
            manifests[rel] = {line.split()[0] for line in f if line.strip()}
    with contextlib.closing(d.db()) as db:
        going = {r[0] for r in db.execute("SELECT recording_id FROM purge_members")}
        rows = [dict(r) for r in db.execute("SELECT * FROM archive")]
    for row in rows:
        rid, path = row["recording_id"], d.evidence / row["path"]
        if rid in going:
            if not path.exists() and rid not in intents:
                bad.append(f"after {after}: {rid} removed without an audited purge intent")
            continue
        if hashlib.sha256(path.read_bytes()).digest() != row["sha256"]:
            bad.append(f"after {after}: {rid} not intact")
        digest = bytes(row["sha256"]).hex()
        if not any(digest in m and rel in sealed for rel, m in manifests.items()):
            bad.append(f"after {after}: {rid} in no sealed package on disk")
    return bad


def test_every_purge_crash_point_is_in_the_campaign() -> None:
    planned = {k.rpartition(":")[0] for _, kills in ROUNDS for k in kills}
    assert set(PURGE_POINTS) <= planned, "a purge crash point the campaign never kills at"


def test_a_purge_killed_at_every_point_is_finished_and_leaves_the_archive_valid(dock) -> None:
    """004 att.2 §6 and §4: a kill -9 anywhere in a purge never leaves a recording
    outside a valid sealed package, nor a file removed before its audited intent; the
    next run finishes the purge, after which dock archive verify exits 0."""
    d = dock
    violations: list[str] = []
    for number, (what, kills) in enumerate(ROUNDS):
        package = d.packages[number]
        purged = package[:1] if number == 0 else package
        back_date(d, purged)
        before = packages_on_disk(d)
        cited = appraise(d)
        for crash in kills:
            p = d.run("purge", "--apply", *SUP, *cited, "--json", crash=crash)
            assert p.returncode == -signal.SIGKILL, f"{what}: {crash} not reached: {p.stderr}"
            violations += check_after_kill(d, crash)
        p = d.run("purge", "--apply", *SUP, *cited, "--json")
        assert p.returncode == 0, p.stderr
        report = json.loads(p.stdout)
        assert report["completed"] and report["failed"] == {}, report
        violations += check_after_kill(d, f"the clean run of round {number + 1}")
        verify = d.run("archive", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        after = packages_on_disk(d)
        assert len(set(before) - set(after)) == 1, (before, after)  # the replaced package
        assert len(after) == len(before) - (number == 1)  # re-sealed, or removed
        leftovers = [os.path.join(f, x) for f, ds, fs in os.walk(d.evidence / "bags")
                     for x in ds + fs if x.startswith(".")]  # fmt: skip
        assert leftovers == []
        with contextlib.closing(d.db()) as db:
            done = {r[0] for r in db.execute("SELECT recording_id FROM purges")}
        assert set(purged) <= done
        for rid in purged:
            assert not any(rid in name for _f, _d, names in os.walk(d.evidence) for name in names)
    assert violations == []
    entries = d.audit()
    kinds = [kind for _, kind, _ in entries]
    assert kinds.count("purge_intent") == kinds.count("purge") == len(ROUNDS)
    audit = d.run("audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr
