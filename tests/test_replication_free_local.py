"""``free_local_after_days``: a local copy freed by a purge only once every target holds
a verified replica for N days and nothing else keeps it (dock/evidence/replication_free.py).
Targets are real folders (tests/replica_fake.py); time is injected, never slept."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from dock.config.replication import ReplicationConfig
from dock.domain.hold_kinds import HoldKind
from dock.evidence import purge_batches
from dock.evidence.holds import HoldRegister
from dock.evidence.purge_records import unfinished
from dock.evidence.replication import ReplicationEngine, may_free_local
from dock.evidence.replication_free import free_local
from dock.storage.replication_table import replication_rows
from tests.conftest import PIN
from tests.replica_fake import FolderTarget

DAY = 86400.0
RETENTION_DAYS = 30
FREE_DAYS = 45


def dock_with_targets(make_dock, tmp_path) -> tuple[Any, ReplicationEngine, list[FolderTarget]]:
    svc, recs = make_dock({"battery_percent": 95.0}, policy={"retention_days": RETENTION_DAYS})
    svc.sweep()
    assert svc.checkout("1001", PIN).granted  # one shift of officer 1001: an episode
    svc.taken("1")
    recs[0].model._generate_recordings(2, 200_000, 0)
    recs[0].model.save()
    svc.sweep()  # returned: footage offloaded and sealed
    assert len(svc.store.archive_entries()) == 2
    targets = [
        FolderTarget(str(tmp_path / "a"), "site-a"),
        FolderTarget(str(tmp_path / "b"), "site-b"),
    ]
    eng = ReplicationEngine(svc.store, svc.audit, svc.offloader.evidence_dir, "dock-7", targets,
                            ReplicationConfig(free_local_after_days=FREE_DAYS))  # fmt: skip
    return svc, eng, targets


def free(svc: Any, now: float, targets: tuple[str, ...] = ("site-a", "site-b")) -> Any:
    return free_local(svc.store, svc.audit, HoldRegister(svc.store, svc.audit),
                      svc.offloader.seals, svc.offloader.evidence_dir, svc.policy, "dock-7",
                      list(targets), FREE_DAYS, now)  # fmt: skip


def local_files(svc: Any) -> list[str]:
    out = []
    for d, _, fs in os.walk(svc.offloader.evidence_dir):
        out += [os.path.join(d, f) for f in fs if f.endswith((".mp4", ".MP4", ".txt"))]
    return out


def archived_footage(svc: Any) -> list[str]:
    return [
        os.path.join(svc.offloader.evidence_dir, e["path"]) for e in svc.store.archive_entries()
    ]


def kinds(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def verified_at(svc: Any) -> float:
    return max(r["verified_at"] for r in replication_rows(svc.store))


def test_freed_only_when_every_target_verified_and_n_days_passed(make_dock, tmp_path) -> None:
    svc, eng, targets = dock_with_targets(make_dock, tmp_path)
    targets[1].down = True
    eng.run_once()  # site-a verified, site-b failed
    states = {r["target"]: r["state"] for r in replication_rows(svc.store)}
    assert states == {"site-a": "replicated", "site-b": "failed"}
    assert not free(svc, time.time() + 400 * DAY).purged  # one target without a replica
    first = svc.store.archive_entries()[0]
    assert not may_free_local(svc.store, first["serial"], first["recording_id"],
                              ["site-a", "site-b"])  # fmt: skip
    assert may_free_local(svc.store, first["serial"], first["recording_id"], ["site-a"])
    assert all(os.path.exists(p) for p in archived_footage(svc))
    targets[1].down = False
    eng.retry(None)
    eng.run_once()
    at = verified_at(svc)
    # retention (30 days) is over, the replicas are not 45 days old: kept
    assert not free(svc, at + (FREE_DAYS - 1) * DAY).purged
    report = free(svc, at + FREE_DAYS * DAY + 1)
    assert len(report.purged) == 2 and not report.failed
    assert not any(os.path.exists(p) for p in archived_footage(svc))
    [bag] = {r["bag"] for r in replication_rows(svc.store)}
    assert not os.path.lexists(os.path.join(svc.offloader.evidence_dir, bag))
    [entry] = kinds(svc, "purge")
    assert entry.data["reason"] == "freed_after_replication" and entry.actor == "dock"
    assert [r["target"] for r in entry.data["replicas"]] == ["site-a", "site-b"]
    assert all(
        r["remote"].startswith("dock-7/") and r["verified_at"] for r in entry.data["replicas"]
    )
    [intent] = kinds(svc, "purge_intent")
    assert all(r["reason"].startswith("freed_after_replication: site-a: dock-7/")
               for r in intent.data["record"]["recordings"])  # fmt: skip
    for e in svc.store.archive_entries():  # still says where the footage is
        assert e["second_copy_where"].startswith("replica site-")
    assert {r["state"] for r in replication_rows(svc.store)} == {"replicated"}
    assert all(r["verified_at"] for r in replication_rows(svc.store))
    # the footage is still at both targets
    for t in targets:
        assert any(f.endswith(".txt") for _, _, fs in os.walk(t.root) for f in fs)
    assert not free(svc, at + 400 * DAY).purged  # nothing twice
    assert svc.audit.verify().ok


def test_unset_never_frees(make_dock, tmp_path) -> None:
    svc, eng, _ = dock_with_targets(make_dock, tmp_path)
    eng.run_once()
    report = free_local(svc.store, svc.audit, HoldRegister(svc.store, svc.audit),
                        svc.offloader.seals, svc.offloader.evidence_dir, svc.policy, "dock-7",
                        ["site-a", "site-b"], 0, time.time() + 4000 * DAY)  # fmt: skip
    assert not report.purged and all(os.path.exists(p) for p in archived_footage(svc))


@pytest.mark.parametrize("keeper", ["recording", "officer", "episode", "open_case"])
def test_a_hold_or_an_open_case_keeps_the_whole_package(make_dock, tmp_path, keeper) -> None:
    svc, eng, _ = dock_with_targets(make_dock, tmp_path)
    eng.run_once()
    first = svc.store.archive_entries()[0]
    holds = HoldRegister(svc.store, svc.audit)
    if keeper == "recording":
        holds.place(first["serial"], first["recording_id"], HoldKind.COMPLAINT, "TS-1", "1002")
    elif keeper == "officer":
        holds.place_officer("1001", HoldKind.COMPLAINT, "TS-2", "9001")
    elif keeper == "episode":
        episode = svc.store.custody_history()[0].id
        holds.place_episode(episode, HoldKind.COMPLAINT, "TS-3", "9001")
    else:
        svc.store.open_case("C-1", "traffic", "party", "9001")
        svc.store.attach_case("C-1", first["serial"], first["recording_id"], "9001")
    report = free(svc, verified_at(svc) + 400 * DAY)
    assert not report.purged and not kinds(svc, "purge_intent")
    assert all(os.path.exists(p) for p in archived_footage(svc))
    why = {i["reason"].split(":", 1)[0] for i in report.items if i["action"] == "keep"}
    assert why == ({"case_open"} if keeper == "open_case" else {"hold"}), report.items


def test_a_replica_whose_verification_failed_does_not_count(make_dock, tmp_path) -> None:
    svc, eng, targets = dock_with_targets(make_dock, tmp_path)
    eng.config = ReplicationConfig(free_local_after_days=FREE_DAYS, max_attempts=1)

    def corrupt(name: str, rel: str) -> None:
        if name == "site-b" and rel.endswith("bag-info.txt"):
            with open(targets[1]._p(rel), "ab") as f:
                f.write(b"x")

    eng.before_verify = corrupt
    eng.run_once()
    states = {r["target"]: r["state"] for r in replication_rows(svc.store)}
    assert states == {"site-a": "replicated", "site-b": "failed"}
    assert not free(svc, time.time() + 400 * DAY).purged
    assert all(os.path.exists(p) for p in archived_footage(svc))


def test_a_kill_between_intent_and_unlink_is_finished_at_start(
    make_dock, tmp_path, monkeypatch
) -> None:
    svc, eng, _ = dock_with_targets(make_dock, tmp_path)
    eng.run_once()

    def killed(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt  # the process dies after the intent, before any unlink

    monkeypatch.setattr(purge_batches, "_run", killed)
    with pytest.raises(KeyboardInterrupt):
        free(svc, verified_at(svc) + 400 * DAY)
    monkeypatch.undo()
    assert len(kinds(svc, "purge_intent")) == 1 and unfinished(svc.store)
    assert all(os.path.exists(p) for p in archived_footage(svc))
    svc.housekeeping(time.time())  # the daemon's start-up reconciliation
    assert not unfinished(svc.store) and len(kinds(svc, "purge")) == 1
    assert kinds(svc, "purge")[0].data["reason"] == "freed_after_replication"
    assert not any(os.path.exists(p) for p in archived_footage(svc))
    assert svc.audit.verify().ok


def test_the_daemons_housekeeping_frees_when_configured(make_dock, tmp_path) -> None:
    """The replication job (here one housekeeping turn) replicates, then frees once the
    replicas are old enough: the wiring in dock/daemon/maintenance.py."""
    svc, eng, _ = dock_with_targets(make_dock, tmp_path)
    svc.parts.replication = eng
    svc.housekeeping(time.time())
    assert {r["state"] for r in replication_rows(svc.store)} == {"replicated"}
    assert all(os.path.exists(p) for p in archived_footage(svc))
    svc.housekeeping(verified_at(svc) + FREE_DAYS * DAY + 1)
    assert not any(os.path.exists(p) for p in archived_footage(svc))
    assert kinds(svc, "purge")[0].data["reason"] == "freed_after_replication"
