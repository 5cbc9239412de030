"""kill -9 of ``dock offload`` from a mass-storage camera, at points chosen by progress.

The camera is a real FAT image (mkfs.vfat) in a bay configured ``driver = "ums"``, read
through the same code as a mounted volume would be. ``DOCK_CRASH_AT=<point>:<n>`` makes
the real ``dock offload --slot 1`` subprocess SIGKILL itself the n-th time it reaches a
crash point (dock/support/crashpoints.py): no wall-clock sleep decides anything, and a
point the offload no longer reaches fails the test by its name.

After every kill: every file gone from the camera is in the archive, bit-identical to the
footage put on it, with its erase_intent written first; every file under a final archive
name is footage. After the clean run: each recording archived exactly once, verified,
deleted from the camera (policy allows it here); ``dock audit verify`` exits 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dock.support.crashpoints import ENV

from .test_ums_daemon import write_config
from .ums_helpers import footage_set, image_files, make_image

DOCK = [sys.executable, "-m", "dock.cli.main"]
MIB = 1 << 20

#: Kills in order, each resumed by the next run (progress: the n-th chunk, verify, ...).
ROUNDS = {
    "copy-verify-publish": ("copy.chunk:2", "verify.start:2", "erase.before:1",
                            "publish.after_rename:1", "seal.start:1"),
    "rows-erase-confirm": ("copy.chunk:5", "publish.before_rename:1", "publish.after_row:1",
                           "erase.intent.before:1", "erase.after:1", "audit.erase.before:1",
                           "audit.confirm.before:1"),
    "seal": ("seal.before_rename:1", "seal.made.after:1"),
    "done": ("audit.done.before:1",),
}  # fmt: skip


class Bay:
    def __init__(self, tmp: Path) -> None:
        self.footage = footage_set(3, int(2.5 * MIB), seed=7)  # 3 chunks of 1 MiB each
        self.img = make_image(str(tmp / "cam.img"), self.footage, size_kb=32768)
        self.config = write_config(tmp, self.img, "erase_on_mass_storage = true\n")
        self.state, self.evidence = tmp / "state", tmp / "evidence"
        self.by_hash = {f.sha256: f for f in self.footage}
        self.violations: list[str] = []

    def dock(self, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({ENV: crash} if crash else {})}
        env.pop(ENV, None) if crash is None else None
        return subprocess.run([*DOCK, "--config", self.config, *args], capture_output=True,
                              text=True, env=env, timeout=300, check=False)  # fmt: skip

    def rows(self) -> list[dict]:
        with contextlib.closing(
            sqlite3.connect(f"file:{self.state}/dock.db?mode=ro", uri=True)
        ) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM archive")]

    def audit(self) -> list[tuple[str, dict]]:
        with contextlib.closing(
            sqlite3.connect(f"file:{self.state}/audit.db?mode=ro", uri=True)
        ) as db:
            return [
                (k, json.loads(d))
                for k, d in db.execute("SELECT kind, data FROM entries ORDER BY seq")
            ]

    def gone(self) -> list:
        there = image_files(self.img)
        return [f for f in self.footage if f.name not in there]

    def published(self) -> list[Path]:
        out = []
        for folder, dirs, names in os.walk(self.evidence):
            dirs[:] = [d for d in dirs if d not in ("quarantine", "bags")]
            out += [Path(folder) / n for n in names if not n.startswith(".")]
        return out

    def check(self, after: str) -> None:
        rows = {bytes(r["sha256"]): r for r in self.rows()}
        intents = {d.get("sha256") for k, d in self.audit() if k == "erase_intent"}
        for f in self.gone():
            row = rows.get(f.sha256)
            if row is None:
                self.violations.append(f"after {after}: {f.name} deleted, not archived")
                continue
            data = (self.evidence / row["path"]).read_bytes()
            if hashlib.sha256(data).digest() != f.sha256:
                self.violations.append(f"after {after}: {f.name} deleted; archive copy differs")
            if f.sha256.hex() not in intents:
                self.violations.append(f"after {after}: {f.name} deleted without intent first")
        for path in self.published():
            if hashlib.sha256(path.read_bytes()).digest() not in self.by_hash:
                self.violations.append(f"after {after}: {path} is not footage")


@pytest.mark.parametrize("name", sorted(ROUNDS))
def test_kill_9_during_a_mass_storage_offload_loses_nothing(name: str, tmp_path) -> None:
    bay = Bay(tmp_path)
    enrolled = bay.dock("device", "enrol", "--slot", "1")
    assert enrolled.returncode == 0, enrolled.stderr
    for point in ROUNDS[name]:
        run = bay.dock("offload", "--slot", "1", "--json", crash=point)
        assert run.returncode == -9, (
            f"{point} not reached (exit {run.returncode}): {run.stderr[-500:]}"
        )
        bay.check(point)
    done = bay.dock("offload", "--slot", "1", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    bay.check("the clean run")
    assert bay.violations == []
    rows = bay.rows()
    assert sorted(bytes(r["sha256"]) for r in rows) == sorted(bay.by_hash)  # each once
    assert all(r["erased_at"] is not None for r in rows)
    assert image_files(bay.img) == set()
    published = [hashlib.sha256(p.read_bytes()).digest() for p in bay.published()]
    assert sorted(published) == sorted(bay.by_hash)  # exactly one copy each
    verify = bay.dock("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
