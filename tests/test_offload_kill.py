"""kill -9 of ``dock offload`` inside every phase of an offload, chosen by progress.

The kills come from the dock's own crash points (dock/support/crashpoints.py): with
``DOCK_CRASH_AT=<point>:<n>`` the real ``dock offload --slot 1 --json`` subprocess
sends itself SIGKILL the n-th time it reaches ``<point>``. No wall-clock sleep decides
anything, so the campaign kills in the same places on a quiet machine and a loaded one,
and a point the offload no longer reaches fails the test by its name instead of
letting it pass by luck.

After every kill: whatever is gone from the recorder is in the archive, bit-identical
to the footage the recorder captured (``hardware.emulator.footage.expected_sha256``), and
every file under a final archive name holds exactly its recording. After each round
a clean offload: every recording archived exactly once, bit-identical, erased from the
recorder; in the end ``dock audit verify`` exits 0.

``DOCK_KILL_CAMPAIGN=300 .venv/bin/pytest -s -m slow tests/test_offload_kill.py``
runs the long campaign: 300 kills drawn at random (seeded) from the phases.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from dock.support.crashpoints import ENV, POINTS
from hardware.emulator.footage import expected_sha256

from .conftest import write_dock_config
from .test_cli import DOCK, EMULATOR

MIB = 1 << 20
PHASES = ("copy", "verify", "publish", "erase", "seal", "audit")


def phase(point: str) -> str:
    return point.split(".", 1)[0]


@dataclass(frozen=True)
class Round:
    """One recorder, fresh footage, and the kills of its offload in order."""

    legacy: bool  # True: no mass storage, the footage crosses the protocol in chunks
    recordings: int
    mb: float
    kills: tuple[str, ...]  # "<point>:<n>"


# Each round's kills are ordered so that every one is reached: a killed offload resumes
# where the last one died, and a seal (or offload_done) kill ends a round, since that
# run has archived everything left on the recorder.
CI_ROUNDS = (
    Round(
        legacy=True,
        recordings=4,
        mb=0.5,
        kills=(
            "copy.start:1",  # REC1: an empty temporary file
            "copy.chunk:1",  # REC1 again: first chunk written (stale partial removed first)
            "copy.chunk:4",
            "verify.start:1",  # REC1 written and fsynced, not read back
            "publish.before_rename:1",  # REC1 verified, not renamed
            "publish.after_rename:1",  # REC1 in place, no database row
            "verify.existing:1",  # REC1 found in place: killed while re-hashing it
            "publish.after_row:1",  # REC1 row, no offload_file audit entry
            "erase.before:1",  # REC1 archived, still on the recorder
            "erase.after:1",  # REC1 erased, not marked
            "audit.confirm.before:1",  # REC1 erasure noticed, marked, not audited
            "audit.erase.before:1",  # REC2 erased and marked, not audited
            "seal.start:1",  # REC3, REC4 archived; killed building their bag
        ),
    ),
    Round(
        legacy=False,
        recordings=4,
        mb=0.5,
        kills=(
            "copy.chunk:2",  # REC2's first chunk (REC1 done)
            "verify.start:2",  # REC3 (REC2 done)
            "seal.before_rename:1",  # bag of REC3, REC4 complete, not renamed
        ),
    ),
    Round(
        legacy=True,
        recordings=3,
        mb=0.5,
        kills=(
            "erase.before:2",  # REC2 archived, not erased
            "seal.after_rename:1",  # bag of REC3 in place, its seal not audited
        ),
    ),
    Round(
        legacy=False,
        recordings=3,
        mb=0.5,
        kills=(
            "publish.after_rename:2",  # REC2 in place, no row
            "audit.done.before:1",  # REC2, REC3 archived and sealed, offload_done not audited
        ),
    ),
    Round(
        legacy=False,
        recordings=3,
        mb=0.5,
        kills=(
            "erase.intent.before:1",  # REC1 archived and verified, no erase_intent yet
            "seal.intent.after:1",  # REC1 read back and erased, REC2-3 done; package claimed
        ),
    ),
    Round(
        legacy=True,
        recordings=2,
        mb=0.5,
        kills=("seal.made.after:1",),  # package made, its seal entry not written
    ),
)


@dataclass
class Outcome:
    crash: str  # "<point>:<n>", "" for a clean run
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Results:
    outcomes: list[Outcome] = field(default_factory=list, repr=False)
    kills: collections.Counter[str] = field(default_factory=collections.Counter)
    not_reached: list[str] = field(default_factory=list)
    #: invariant broken after a kill or a clean run: each a sentence naming the kill
    violations: list[str] = field(default_factory=list)
    #: (serial, recording) -> the crash point after which the anomaly first showed
    erased_unaudited: dict[tuple[str, str], str] = field(default_factory=dict)
    archived_unaudited: dict[tuple[str, str], str] = field(default_factory=dict)
    unsealed: dict[tuple[str, str], str] = field(default_factory=dict)
    erased_without_intent: dict[tuple[str, str], str] = field(default_factory=dict)
    sealed_twice: dict[tuple[str, str], int] = field(default_factory=dict)
    #: bag folder -> the crash point after which it showed with no seal entry
    bags_without_seal: dict[str, str] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    #: bag folder -> what bagit-python (an archivist's tool, not ours) finds wrong
    bagit_invalid: dict[str, str] = field(default_factory=dict)
    bags: int = 0
    audit_verify: subprocess.CompletedProcess[str] | None = None
    archive_verify: subprocess.CompletedProcess[str] | None = None
    rounds: int = 0
    recordings: int = 0
    seconds: float = 0.0

    def by_point(self) -> collections.Counter[str]:
        counts: collections.Counter[str] = collections.Counter()
        for crash, k in self.kills.items():
            counts[crash.rpartition(":")[0]] += k
        return counts

    def by_phase(self) -> dict[str, int]:
        counts = dict.fromkeys(PHASES, 0)
        for point, k in self.by_point().items():
            counts[phase(point)] += k
        return counts

    @staticmethod
    def anomalies_by_point(found: dict[Any, str]) -> dict[str, int]:
        return dict(
            sorted(collections.Counter(c.rpartition(":")[0] for c in found.values()).items())
        )

    def summary(self) -> str:
        return json.dumps(
            {
                "seconds": round(self.seconds, 1),
                "rounds": self.rounds,
                "recordings": self.recordings,
                "kills": sum(self.kills.values()),
                "kills_by_phase": self.by_phase(),
                "kills_by_point": dict(sorted(self.by_point().items())),
                "draws_not_reached": len(self.not_reached),
                "violations": len(self.violations),
                "erased_without_erase_entry": self.anomalies_by_point(self.erased_unaudited),
                "archived_without_offload_file_entry": self.anomalies_by_point(
                    self.archived_unaudited
                ),
                "archived_never_sealed": self.anomalies_by_point(self.unsealed),
                "bags_without_seal_entry": self.anomalies_by_point(self.bags_without_seal),
                "sealed_twice": len(self.sealed_twice),
                "erased_without_intent": len(self.erased_without_intent),
                "bagit_python_invalid": len(self.bagit_invalid),
                "leftover_temporaries": len(self.leftovers),
                "audit_verify_exit": self.audit_verify and self.audit_verify.returncode,
                "archive_verify_exit": self.archive_verify and self.archive_verify.returncode,
            },
            indent=2,
        )


class Campaign:
    """One dock (state and evidence kept throughout) and a fresh recorder per round."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.results = Results()
        self.serial = ""
        self.size = 0
        self.rec_dir = ""
        self.ids: set[str] = set()
        self.base: list[str] = []
        self.state: Any = None
        self.evidence: Any = None
        self._emu: subprocess.Popen[str] | None = None
        self._row_born: dict[tuple[str, str], str] = {}  # recording -> crash of its run
        self._sizes: dict[str, int] = {}  # serial -> recording size

    # --- the processes

    def start_round(self, legacy: bool, recordings: int, mb: float) -> None:
        self.stop_recorder()
        self.results.rounds += 1
        self.results.recordings += recordings
        self.serial = f"KILL{self.results.rounds:04d}"
        self.size = int(mb * MIB)
        self.ids = {f"REC{i:06d}" for i in range(1, recordings + 1)}
        self._sizes[self.serial] = self.size
        self.rec_dir = str(self.root / f"rec-{self.serial}")
        self._emu = subprocess.Popen(
            [*EMULATOR, "--listen", "tcp://127.0.0.1:0", "--data-dir", self.rec_dir,
             "--serial", self.serial, "--recordings", str(recordings),
             "--recording-mb", str(mb), *(["--legacy"] if legacy else [])],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self._emu.stdout is not None
        url = self._emu.stdout.readline().strip()
        assert url.startswith("tcp://"), f"emulator did not start: {url!r}"
        cfg, self.state, self.evidence = write_dock_config(self.root, url, "kill")
        self.base = [*DOCK, "--config", str(cfg)]
        enrol = subprocess.run(
            [*self.base, "device", "enrol", "--slot", "1"], capture_output=True, text=True
        )
        assert enrol.returncode == 0, enrol.stderr

    def stop_recorder(self) -> None:
        if self._emu is not None:
            self._emu.send_signal(signal.SIGTERM)
            try:
                self._emu.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._emu.kill()
                self._emu.wait()
            self._emu = None

    def offload(self, crash: str = "") -> Outcome:
        """One ``dock offload`` run, armed to die at ``crash`` (``<point>:<n>``) if given."""
        env = {k: v for k, v in os.environ.items() if k != ENV}
        if crash:
            env[ENV] = crash
        rows_before = set(self._rows())
        p = subprocess.run(
            [*self.base, "offload", "--slot", "1", "--json"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        out = Outcome(crash, p.returncode, p.stdout, p.stderr[-2000:])
        self.results.outcomes.append(out)
        for key in set(self._rows()) - rows_before:
            self._row_born[key] = crash or "clean run"
        if crash and p.returncode == -signal.SIGKILL:
            self.results.kills[crash] += 1
        elif crash:
            self.results.not_reached.append(crash)
        if p.returncode not in (0, -signal.SIGKILL):
            self.results.violations.append(
                f"{crash or 'clean run'}: dock offload exited {p.returncode}: {out.stderr}"
            )
        self.check_invariants(crash or "clean run")
        return out

    def end_round(self, last: Outcome | None = None) -> None:
        """A clean offload (``last``, when that one finished), then everything of this
        recorder is checked."""
        out = last if last is not None and last.returncode == 0 else self.offload()
        if out.returncode == 0 and json.loads(out.stdout)["failed"]:
            self.results.violations.append(f"{self.serial}: clean offload: {out.stdout}")
        self.check_round()

    def finish(self) -> None:
        self.stop_recorder()
        if not self.base:
            return
        self.results.audit_verify = subprocess.run(
            [*self.base, "audit", "verify"], capture_output=True, text=True
        )
        self.results.archive_verify = subprocess.run(
            [*self.base, "archive", "verify"], capture_output=True, text=True
        )
        self.results.bagit_invalid = _bagit_python_problems(self.evidence / "bags")

    # --- what is where

    def _rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        path = self.state / "dock.db" if self.state is not None else None
        if path is None or not path.exists():
            return {}
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            return {
                (r["serial"], r["recording_id"]): dict(r)
                for r in db.execute("SELECT * FROM archive")
            }

    def _audit(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        path = self.state / "audit.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return [
                (seq, kind, subject, json.loads(data))
                for seq, kind, subject, data in db.execute(
                    "SELECT seq, kind, subject, data FROM entries ORDER BY seq"
                )
            ]

    def _on_device(self) -> set[str]:
        with open(os.path.join(self.rec_dir, "state.json"), encoding="utf-8") as f:
            return {r["id"] for r in json.load(f)["recordings"]}

    def _gone_ids(self) -> set[str]:
        return self.ids - self._on_device()

    def _expected(self, serial: str, rid: str) -> bytes:
        return expected_sha256(serial, int(rid[3:]), self._sizes[serial])

    def _published(self) -> dict[str, list[str]]:
        """Files under final names in the archive tree: recording key -> paths."""
        found: dict[str, list[str]] = collections.defaultdict(list)
        for folder, dirs, names in os.walk(self.evidence):
            rel = os.path.relpath(folder, self.evidence)
            if rel.split(os.sep)[0] in ("quarantine", "bags"):
                dirs.clear()
                continue
            dirs[:] = [d for d in dirs if d != "quarantine"]
            for name in names:
                if not name.startswith("."):
                    found[name].append(os.path.join(folder, name))
        return found

    # --- the checks

    def check_invariants(self, after: str) -> None:
        """What must hold at any instant, also right after a kill -9."""
        res = self.results
        rows = self._rows()
        # Nothing is gone from the recorder that the archive does not hold verified.
        for rid in sorted(self._gone_ids()):
            row = rows.get((self.serial, rid))
            if row is None:
                res.violations.append(f"after {after}: {self.serial}/{rid} erased, not archived")
                continue
            with open(self.evidence / row["path"], "rb") as f:
                digest = hashlib.sha256(f.read()).digest()
            if digest != self._expected(self.serial, rid) or row["sha256"] != digest:
                res.violations.append(
                    f"after {after}: {self.serial}/{rid} erased; archive copy differs"
                )
        # Nothing unverified ever sits under a final archive name.
        for name, paths in self._published().items():
            serial, rid = name[:-4].split("_")[1], name[:-4].split("_")[-1]
            for path in paths:
                with open(path, "rb") as f:
                    if hashlib.sha256(f.read()).digest() != self._expected(serial, rid):
                        res.violations.append(f"after {after}: {path} is not its recording")
        # The audit log is never behind the database, at any instant: an erased row has
        # its erase entry, an archived one its offload_file entry (issue 10 section 2).
        entries = self._audit()
        erase_entries = {(s, d.get("recording")) for _, k, s, d in entries if k == "erase"}
        file_entries = {(s, d.get("recording")) for _, k, s, d in entries if k == "offload_file"}
        for key, row in rows.items():
            if row["erased_at"] is not None and key not in erase_entries:
                res.erased_unaudited.setdefault(key, after)
            if key not in file_entries:
                res.archived_unaudited.setdefault(key, after)
        # Every recording gone from the recorder had its erase_intent written first,
        # naming how the archived copy was verified just before.
        intents = {(s, d.get("recording")) for _, k, s, d in entries
                   if k == "erase_intent" and d.get("verified")}  # fmt: skip
        for rid in self._gone_ids():
            if (self.serial, rid) not in intents:
                res.erased_without_intent.setdefault((self.serial, rid), after)

    def check_round(self) -> None:
        """After the clean run: this recorder's footage archived once, verified, erased."""
        res = self.results
        rows = {k: r for k, r in self._rows().items() if k[0] == self.serial}
        ids = self.ids
        if self._on_device():
            res.violations.append(f"{self.serial}: still on the recorder {self._on_device()}")
        if {rid for _, rid in rows} != ids:
            res.violations.append(f"{self.serial}: archived {sorted(rows)} of {sorted(ids)}")
        published = self._published()
        for (serial, rid), row in rows.items():
            name = os.path.basename(row["path"])
            if len(published.get(name, [])) != 1:
                res.violations.append(f"{serial}/{rid}: {len(published.get(name, []))} copies")
            if row["sha256"] != self._expected(serial, rid) or row["erased_at"] is None:
                res.violations.append(f"{serial}/{rid}: archive row {row}")
        for name in published:
            if self.serial in name and not any(name == os.path.basename(r["path"])
                                               for r in rows.values()):  # fmt: skip
                res.violations.append(f"{name}: published without an archive row")
        entries = self._audit()
        sealed = {
            (s, rid) for _, k, s, d in entries if k == "seal" for rid in d.get("recordings", [])
        }
        for key in rows:
            if key not in sealed:
                res.unsealed.setdefault(key, self._row_born.get(key, "?"))
        # A package put in place by a killed run is sealed by the next one (section 1).
        sealed_bags = {d.get("bag") for _, k, _, d in entries if k == "seal"}
        bags = self.evidence / "bags"
        for officer in os.listdir(bags) if bags.exists() else ():
            for bag in os.listdir(bags / officer):
                rel = os.path.join("bags", officer, bag)
                if not bag.startswith(".") and rel not in sealed_bags:
                    res.bags_without_seal.setdefault(rel, self.serial)
        # Each recording in exactly one package.
        counts = collections.Counter(
            (s, rid) for _, k, s, d in entries if k == "seal" for rid in d.get("recordings", [])
        )
        res.sealed_twice.update({key: n for key, n in counts.items() if n > 1})
        res.leftovers = []
        for folder, dirs, names in os.walk(self.evidence):
            rel = os.path.relpath(folder, self.evidence)
            for d in dirs:
                if d.startswith("."):
                    res.leftovers.append(os.path.join(rel, d))
            res.leftovers += [os.path.join(rel, n) for n in names if n.startswith(".")]
            dirs[:] = [d for d in dirs if not d.startswith(".")]


def _bagit_python_problems(bags: Any) -> dict[str, str]:
    """Every package validated by bagit-python, in full (the test extras install it)."""
    import bagit

    problems: dict[str, str] = {}
    for officer in sorted(os.listdir(bags)) if os.path.isdir(bags) else ():
        for name in sorted(os.listdir(os.path.join(bags, officer))):
            path = os.path.join(bags, officer, name)
            if name.startswith("."):
                continue
            try:
                bagit.Bag(path).validate()
            except bagit.BagError as exc:
                problems[os.path.join(officer, name)] = str(exc)
    return problems


def run_campaign(root: Any, rounds: tuple[Round, ...]) -> Results:
    started = time.monotonic()
    c = Campaign(root)
    try:
        for r in rounds:
            c.start_round(r.legacy, r.recordings, r.mb)
            for crash in r.kills:
                c.offload(crash)
            c.end_round()
    finally:
        c.finish()
    c.results.seconds = time.monotonic() - started
    return c.results


@pytest.fixture(scope="module")
def ci(tmp_path_factory) -> Results:
    return run_campaign(tmp_path_factory.mktemp("kill"), CI_ROUNDS)


def test_every_crash_point_is_in_the_campaign() -> None:
    planned = {k.rpartition(":")[0] for r in CI_ROUNDS for k in r.kills}
    assert planned == set(POINTS), "a crash point the CI campaign never kills at"


def test_every_kill_landed_inside_every_phase(ci: Results) -> None:
    print(ci.summary())
    assert ci.not_reached == [], (
        f"crash points never reached (the offload finished first): {ci.not_reached}"
    )
    assert sum(ci.kills.values()) == sum(len(r.kills) for r in CI_ROUNDS)
    assert all(ci.by_phase()[p] >= 1 for p in PHASES), ci.by_phase()


def test_nothing_erased_before_it_was_verified(ci: Results) -> None:
    """001 art.19(4): After every kill and every clean run: each recording gone from the recorder is
    archived bit-identical; every file under a final name is exactly its recording; after each
    round everything is archived exactly once and erased."""
    assert ci.violations == []


def test_audit_log_verifies_after_the_kills(ci: Results) -> None:
    """000 §10: the audit log verifies after every kill."""
    assert ci.audit_verify is not None
    assert ci.audit_verify.returncode == 0, ci.audit_verify.stdout + ci.audit_verify.stderr


def test_every_erasure_has_its_audit_entry(ci: Results) -> None:
    """000 §13.2; 001 art.19(4): every erasure on a recorder has its audit entry, whatever the
    kills."""
    assert ci.erased_unaudited == {}


def test_every_archived_recording_has_its_offload_file_entry(ci: Results) -> None:
    """000 §10: every archived recording has its audit entry, whatever the kills."""
    assert ci.archived_unaudited == {}


def test_every_archived_recording_is_sealed(ci: Results) -> None:
    """000 §10: Exactly one package each, whatever the kills interrupted (issue 10 section 1)."""
    assert ci.unsealed == {}
    assert ci.sealed_twice == {}


def test_every_erase_was_preceded_by_its_intent_and_a_verification(ci: Results) -> None:
    """001 art.19(4): the log is never missing an erase: its intent is written first
    (issue 10 s. 2)."""
    assert ci.erased_without_intent == {}


def test_every_bag_has_its_seal_and_the_archive_verifies(ci: Results) -> None:
    """000 §10: every package has its seal in the audit log, and the archive verifies."""
    assert ci.bags_without_seal == {}
    assert ci.bagit_invalid == {}
    assert ci.archive_verify is not None
    assert ci.archive_verify.returncode == 0, ci.archive_verify.stdout


# --------------------------------------------------------------------------- long run

#: Highest n drawn per point: per chunk, per recording, or once per offload.
MAX_N = {
    "copy.chunk": 8,
    "copy.start": 3,
    "verify.start": 3,
    "publish.before_rename": 3,
    "publish.after_rename": 3,
    "publish.after_row": 3,
    "erase.intent.before": 3,
    "erase.before": 3,
    "erase.after": 3,
    "audit.erase.before": 3,
}


def run_random_campaign(root: Any, kills: int, seed: int) -> Results:
    """``kills`` kill -9s, each at a point drawn at random: first a phase, then a point
    of it, then n. A draw the offload does not reach lets it finish: the round ends."""
    rng = random.Random(seed)
    by_phase = {p: sorted(n for n in POINTS if phase(n) == p) for p in PHASES}
    started = time.monotonic()
    c = Campaign(root)
    try:
        while sum(c.results.kills.values()) < kills:
            c.start_round(rng.random() < 0.5, rng.randint(3, 8), rng.choice((0.25, 0.5, 1.0)))
            out = None
            for _ in range(30):  # bounded, in case every draw is reached
                point = rng.choice(by_phase[rng.choice(PHASES)])
                out = c.offload(f"{point}:{rng.randint(1, MAX_N.get(point, 1))}")
                if out.returncode != -signal.SIGKILL:
                    break  # not reached: that offload finished the round's work
            c.end_round(out)
            res = c.results
            print(
                f"round {res.rounds}: {sum(res.kills.values())} kills, "
                f"{len(res.not_reached)} not reached, {len(res.violations)} violations, "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
    finally:
        c.finish()
    c.results.seconds = time.monotonic() - started
    return c.results


@pytest.mark.slow
@pytest.mark.timeout(0)  # by hand: 300 kills took 55-72 min on a loaded 2-core VM
@pytest.mark.skipif(
    not os.environ.get("DOCK_KILL_CAMPAIGN"), reason="set DOCK_KILL_CAMPAIGN=<kills> to run"
)
def test_random_kill_campaign(tmp_path) -> None:
    kills = int(os.environ["DOCK_KILL_CAMPAIGN"])
    seed = int(os.environ.get("DOCK_KILL_SEED", "20261122"))
    res = run_random_campaign(tmp_path, kills, seed)
    print(f"seed {seed}\n{res.summary()}")
    for title, found in (
        ("erased without an erase audit entry", res.erased_unaudited),
        ("archived without an offload_file audit entry", res.archived_unaudited),
        ("archived, never sealed", res.unsealed),
    ):
        for (serial, rid), point in sorted(found.items()):
            print(f"  {title}: {serial}/{rid} after {point}")
    for bag, point in sorted(res.bags_without_seal.items()):
        print(f"  bag without a seal entry: {bag} after {point}")
    print(f"dock archive verify: exit {res.archive_verify and res.archive_verify.returncode}")
    print(f"bagit-python: {len(res.bagit_invalid)} invalid package(s) {res.bagit_invalid}")
    assert res.violations == []
    assert res.audit_verify is not None and res.audit_verify.returncode == 0
    assert res.erased_unaudited == {} and res.archived_unaudited == {}
    assert res.unsealed == {} and res.sealed_twice == {} and res.bags_without_seal == {}
    assert res.erased_without_intent == {} and res.bagit_invalid == {}
    assert res.archive_verify is not None and res.archive_verify.returncode == 0
    assert sum(res.kills.values()) >= kills
    assert all(res.by_phase()[p] >= 1 for p in PHASES), res.by_phase()
