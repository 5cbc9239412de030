"""kill -9 of the dock at random points of an offload, again and again: afterwards every
recording is in the archive exactly once and verified, none was erased before it was
verified, and the audit log verifies."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

from hardware.footage import expected_sha256

from .conftest import write_dock_config
from .test_cli import DOCK, EMULATOR

RECORDINGS = 8
SIZE_MB = 2.0


def test_offload_survives_repeated_kill_minus_9(tmp_path) -> None:
    rng = random.Random(20261122)
    emu = subprocess.Popen(
        [*EMULATOR, "--listen", "tcp://127.0.0.1:0", "--data-dir", str(tmp_path / "rec"),
         "--serial", "KILL01", "--recordings", str(RECORDINGS), "--recording-mb", str(SIZE_MB)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        cfg, state, evidence = write_dock_config(tmp_path, url, "d1")
        base = [*DOCK, "--config", str(cfg)]
        enrol = subprocess.run([*base, "device", "enrol", "--slot", "1"], capture_output=True)
        assert enrol.returncode == 0, enrol.stderr
        kills = 0
        delay = 0.2
        for _ in range(40):  # bounded: kill later and later until one run finishes by itself
            p = subprocess.Popen(
                [*base, "offload", "--slot", "1", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(delay + rng.uniform(0, 0.05))
            if p.poll() is not None:
                p.wait(timeout=30)
                break
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            kills += 1
            delay += 0.03
        assert kills >= 3, "the offload always finished before the kill: make it longer"
        final = subprocess.run([*base, "offload", "--slot", "1", "--json"], capture_output=True)
        assert final.returncode == 0, final.stderr
        assert json.loads(final.stdout)["failed"] == {}

        # every recording exactly once in the archive, verified against its capture hash
        import sqlite3

        db = sqlite3.connect(state / "dock.db")
        rows = db.execute("SELECT recording_id, sha256, path, erased_at FROM archive").fetchall()
        ids = sorted(r[0] for r in rows)
        assert ids == [f"REC{i:06d}" for i in range(1, RECORDINGS + 1)]
        size = int(SIZE_MB * (1 << 20))
        for rid, sha, path, erased_at in rows:
            index = int(rid[3:])
            assert sha == expected_sha256("KILL01", index, size)
            with open(evidence / path, "rb") as f:
                assert hashlib.sha256(f.read()).digest() == sha
            assert erased_at is not None
        published = [
            f for d, _, names in os.walk(evidence) for f in names
            if not os.path.relpath(d, evidence).startswith(("quarantine", "bags"))
            and not f.startswith(".")
        ]  # fmt: skip
        assert len(published) == RECORDINGS  # no duplicates under other names
        # the recorder erased only what the archive holds verified: here, everything
        state_json = json.loads((tmp_path / "rec" / "state.json").read_text())
        assert state_json["recordings"] == []
        verify = subprocess.run([*base, "audit", "verify"], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.wait(timeout=10)


def test_nothing_is_erased_that_is_not_archived_while_killed(tmp_path) -> None:
    """Between kills, the recorder's missing recordings are always a subset of the
    verified archive."""
    rng = random.Random(7)
    emu = subprocess.Popen(
        [*EMULATOR, "--listen", "tcp://127.0.0.1:0", "--data-dir", str(tmp_path / "rec"),
         "--serial", "KILL02", "--recordings", "4", "--recording-mb", "0.4",
         "--legacy"],  # no mass storage: the footage crosses the protocol
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        cfg, state, _evidence = write_dock_config(tmp_path, url, "d2")
        base = [*DOCK, "--config", str(cfg)]
        assert subprocess.run([*base, "device", "enrol", "--slot", "1"]).returncode == 0
        everything = {f"REC{i:06d}" for i in range(1, 5)}
        for _ in range(6):
            p = subprocess.Popen([*base, "offload", "--slot", "1"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(rng.uniform(0.2, 1.0))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            on_device = {
                r["id"]
                for r in json.loads((tmp_path / "rec" / "state.json").read_text())["recordings"]
            }
            import sqlite3

            db = sqlite3.connect(state / "dock.db")
            archived = {r[0] for r in db.execute("SELECT recording_id FROM archive")}
            db.close()
            assert everything - on_device <= archived
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.wait(timeout=10)
    assert sys.platform.startswith("linux")
