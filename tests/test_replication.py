"""The replication engine against a target in a local folder (tests/replica_fake.py):
the queue, sending, resume, verification, failures, the second copy, the schedule and
the bandwidth limit. The same engine against a real sshd: tests/test_replication_sftp.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dock.config.replication import ReplicationConfig, window_minutes
from dock.domain.replication_pace import DAY, TokenBucket, in_windows
from dock.evidence.replication import ReplicationEngine, may_free_local
from dock.storage.replication_table import (
    replication_backlog,
    replication_rows,
    replication_targets,
)
from tests.replica_fake import FolderTarget


def sealed_dock(make_dock, **policy):
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.3},
        policy=policy or None,
    )
    svc.offloader.erase_after_verify = svc.policy.erase_on_device == "after_verify"
    svc.sweep()
    assert len(svc.store.archive_entries()) == 2
    return svc, recs


def engine(svc, target, **cfg):
    return ReplicationEngine(
        svc.store,
        svc.audit,
        svc.offloader.evidence_dir,
        "dock-7",
        [target],
        ReplicationConfig(**cfg),
    )


def local_files(svc):
    bags = os.path.join(svc.offloader.evidence_dir, "bags")
    out = {}
    for d, _, fs in os.walk(bags):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, bags)] = Path(p).read_bytes()
    return out


def remote_files(root):
    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def test_a_sealed_package_is_replicated_verified_and_counts_as_the_second_copy(
    make_dock, tmp_path
) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target)
    report = eng.run_once()
    assert len(report.replicated) == 1 and not report.failed
    bag = report.replicated[0][1]
    remote = remote_files(str(tmp_path / "central" / "dock-7"))
    local = {os.path.basename(bag) + "/" + k.split("/", 2)[2]: v
             for k, v in local_files(svc).items()}  # fmt: skip
    assert remote == local and any(k.endswith("tagmanifest-sha256.txt") for k in remote)
    [row] = replication_rows(svc.store)
    assert row["state"] == "replicated" and row["verified_at"] and row["percent"] == 100
    kinds = [e.kind for e in svc.audit.entries()]
    assert kinds.count("package_replicated") == 1 and kinds.count("second_copy") == 2
    for e in svc.store.archive_entries():
        assert e["second_copy_where"].startswith("replica fake: dock-7/")
        assert may_free_local(svc.store, e["serial"], e["recording_id"])
    assert eng.run_once().replicated == []  # nothing sent twice
    health = replication_targets(svc.store, row["verified_at"])["fake"]
    assert health["pending"] == 0 and health["replicated_24h"] == 1 and health["last_error"] is None


def test_nothing_counts_before_verification_and_a_corrupt_copy_is_sent_again(
    make_dock, tmp_path
) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target)
    flipped: list[str] = []

    def corrupt_once(name: str, rel: str) -> None:
        if "/data/" in rel and not flipped:
            p = target._p(rel)
            data = bytearray(Path(p).read_bytes())
            data[len(data) // 2] ^= 0x01
            Path(p).write_bytes(bytes(data))
            flipped.append(rel)
            assert replication_rows(svc.store)[0]["state"] == "verifying"
            assert all(e["second_copy_at"] is None for e in svc.store.archive_entries())

    eng.before_verify = corrupt_once
    report = eng.run_once()
    assert flipped and len(report.replicated) == 1
    assert [u for u in target.uploads if u[0] == flipped[0] + ".part"] == [
        (flipped[0] + ".part", 0), (flipped[0] + ".part", 0)]  # fmt: skip
    assert remote_files(target.root)  # and the copy there now matches: verified


def test_a_copy_that_never_matches_fails_with_its_reason_and_nothing_counts(
    make_dock, tmp_path
) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target, max_attempts=2)

    def always_corrupt(name: str, rel: str) -> None:
        if rel.endswith("bag-info.txt"):
            with open(target._p(rel), "ab") as f:
                f.write(b"x")

    eng.before_verify = always_corrupt
    report = eng.run_once()
    assert not report.replicated and "did not match the manifest after 2 rounds" in (
        report.failed[0][2])  # fmt: skip
    [row] = replication_rows(svc.store)
    assert row["state"] == "failed" and row["next_try"] > row["updated_at"]
    assert all(e["second_copy_at"] is None for e in svc.store.archive_entries())
    assert [e.kind for e in svc.audit.entries()].count("replication_failed") == 1


def test_an_interrupted_upload_resumes_from_the_partial(make_dock, tmp_path) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target)
    target.cut_after = 100_000
    report = eng.run_once()
    assert report.failed and "connection lost" in report.failed[0][2]
    [row] = replication_rows(svc.store)
    assert row["state"] == "failed" and row["attempts"] == 1
    target.cut_after = None
    eng.retry(None)
    assert len(eng.run_once().replicated) == 1
    resumed = [u for u in target.uploads if u[1] == 100_000]
    assert len(resumed) == 1  # the partial went on from its 100 000 bytes


def test_target_full_or_away_fails_clearly_and_the_backlog_shows_it(make_dock, tmp_path) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target)
    target.room = 50_000
    report = eng.run_once()
    assert "no space left" in report.failed[0][2]
    target.room, target.down = None, True
    eng.retry(None)
    report = eng.run_once()
    assert "connection refused" in report.failed[0][2]
    backlog = replication_backlog(svc.store, 1e12, 24 * 3600)
    assert backlog["open"] == 1 and backlog["counts"]["failed"] == 1 and backlog["overdue"] == 1
    [(name, health)] = replication_targets(svc.store, 1e12).items()
    assert name == "fake" and health["pending"] == 1 and health["failed"] == 1
    assert "connection refused" in health["last_error"] and health["last_success_at"] is None
    assert all(e["second_copy_at"] is None for e in svc.store.archive_entries())
    first = svc.store.archive_entries()[0]
    assert not may_free_local(svc.store, first["serial"], first["recording_id"])


def test_a_package_published_before_a_crash_is_verified_not_sent_again(make_dock, tmp_path) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target)
    eng.before_verify = lambda *a: (_ for _ in ()).throw(KeyboardInterrupt())  # a kill
    with pytest.raises(KeyboardInterrupt):
        eng.run_once()
    sent = len(target.uploads)
    eng.before_verify = None
    assert len(engine(svc, target).run_once().replicated) == 1
    assert len(target.uploads) == sent  # only verified this time
    assert [e.kind for e in svc.audit.entries()].count("package_replicated") == 1


def test_outside_the_allowed_windows_nothing_starts(make_dock, tmp_path) -> None:
    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    eng = engine(svc, target, allowed=("02:00-02:01",))
    noon = 1_767_268_800.0  # 2026-01-01 12:00 UTC
    import datetime as dt

    eng.schedule.tz = dt.UTC
    report = eng.run_once(noon)
    assert report.skipped_schedule and target.uploads == []
    assert replication_rows(svc.store)[0]["state"] == "pending"  # queued all the same


def test_urgent_packages_go_first(make_dock, tmp_path) -> None:
    svc, _ = make_dock(
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1},
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1},
    )
    svc.sweep()
    eng = engine(svc, FolderTarget(str(tmp_path / "c")))
    eng.reconcile()
    rows = replication_rows(svc.store)
    assert len(rows) == 2
    newest = max(rows, key=lambda r: (r["sealed_at"], r["seal_id"]))
    member = eng.table.members(newest["seal_id"])[0]
    svc.store.attach_case("CASE-1", member["serial"], member["recording_id"], "9001")
    first = replication_rows(svc.store)[0]
    assert first["seal_id"] == newest["seal_id"] and first["urgent"] == 1


# --- the pure parts ---------------------------------------------------------------------


@given(st.integers(0, DAY - 1), st.integers(0, DAY - 1), st.integers(0, DAY - 1))
def test_windows_hold_exactly_their_minutes(start: int, length: int, minute: int) -> None:
    end = (start + max(1, length)) % DAY
    if end == start:
        end = (start + 1) % DAY
    inside = (minute - start) % DAY < (end - start) % DAY
    assert in_windows([(start, end)], minute) == inside


def test_window_text_and_whole_day() -> None:
    assert window_minutes("22:00-06:00") == (1320, 360)
    assert in_windows([window_minutes("00:00-24:00")], 1439)
    assert not in_windows([window_minutes("08:30-17:30")], 17 * 60 + 30)
    assert in_windows([], 5)
    with pytest.raises(ValueError):
        window_minutes("8:30-17:30")


@given(st.lists(st.integers(1, 256 << 10), min_size=1, max_size=40), st.integers(1, 10_000_000))
def test_token_bucket_never_exceeds_its_rate(chunks: list[int], rate: int) -> None:
    t = [0.0]
    bucket = TokenBucket(rate, max(256 << 10, rate / 4), lambda: t[0],
                         lambda s: t.__setitem__(0, t[0] + s))  # fmt: skip
    for n in chunks:
        bucket.take(n)
    sent = sum(chunks)
    # everything beyond the first burst took at least its time at the rate (the engine's
    # reads are never larger than the burst)
    assert t[0] >= (sent - bucket.burst) / rate - 1e-6
    assert t[0] <= sent / rate + 1e-6


def test_no_limit_never_sleeps() -> None:
    bucket = TokenBucket(0, 1, lambda: 0.0, lambda s: pytest.fail("slept"))
    bucket.take(10**9)


def test_retry_is_a_request_that_makes_failed_packages_due_now(make_dock, tmp_path) -> None:
    from dock.services.errors import RequestError
    from dock.services.requests import call

    svc, _ = sealed_dock(make_dock)
    target = FolderTarget(str(tmp_path / "central"))
    target.down = True
    eng = engine(svc, target)
    eng.run_once()
    [row] = replication_rows(svc.store)
    assert row["state"] == "failed" and eng.run_once().failed == []  # waiting: backoff
    with pytest.raises(RequestError, match="name one package"):
        call(svc, "replication.retry", {}, actor="9001")
    with pytest.raises(RequestError, match="no replicated or queued package"):
        call(svc, "replication.retry", {"package": "nope"}, actor="9001")
    real_append = svc.audit.append

    def broken(*a, **k):  # the audit entry fails: the retry is undone with it
        raise OSError("audit log unwritable")

    svc.audit.append = broken
    with pytest.raises(OSError):
        call(svc, "replication.retry", {"all_failed": True}, actor="9001")
    svc.audit.append = real_append
    assert replication_rows(svc.store)[0]["state"] == "failed"
    done = call(svc, "replication.retry", {"package": os.path.basename(row["bag"])},
                actor="9001")  # fmt: skip
    assert done["retried"] == 1 and replication_rows(svc.store)[0]["state"] == "pending"
    [asked] = [e for e in svc.audit.entries() if e.kind == "replication_retry"]
    assert asked.actor == "9001" and asked.data["packages"] == [row["bag"]]
    assert (
        asked.data["rows"][0]["target"] == "fake" and "refused" in asked.data["rows"][0]["reason"]
    )
    assert call(svc, "replication.retry", {"all_failed": True}, actor="9001")["retried"] == 0
    assert [e.kind for e in svc.audit.entries()].count("replication_retry") == 1  # nothing: none
    target.down = False
    assert len(eng.run_once().replicated) == 1


def test_a_target_away_is_one_audit_entry_not_one_per_package(make_dock, tmp_path) -> None:
    svc, _ = make_dock(
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1},
        {"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1},
    )
    svc.sweep()
    target = FolderTarget(str(tmp_path / "c"))
    target.down = True
    report = engine(svc, target).run_once()
    assert len(report.failed) == 2
    assert [e.kind for e in svc.audit.entries()].count("replication_failed") == 1
    assert {r["state"] for r in replication_rows(svc.store)} == {"failed"}


def test_a_new_package_is_queued_by_its_seal_before_any_job_turn(tmp_path, start_recorder) -> None:
    """The production wiring (composition): an offload's seal enqueues its package at
    once; no replication job has run (the target is never reached)."""
    import dataclasses
    import io

    from dock.config.load import emulated_config
    from dock.config.replication import TargetConfig
    from dock.daemon.composition import build_service
    from hardware.screens import ConsoleScreen

    rec = start_recorder(listen="tcp://127.0.0.1:0", recordings=2, recording_mb=0.05,
                         battery_percent=95.0)  # fmt: skip
    cfg = emulated_config(1, str(tmp_path / "state"))
    target = TargetConfig("central", "sftp", "127.0.0.1", port=9, path="up", user="u",
                          key_file=str(tmp_path / "none"),
                          known_hosts_file=str(tmp_path / "none"))  # fmt: skip
    cfg = dataclasses.replace(
        cfg, slots=(dataclasses.replace(cfg.slots[0], port=rec.url),),
        replication=ReplicationConfig(targets=(target,)),
    )  # fmt: skip
    svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
    assert svc.parts.replication is not None
    svc.parts.replication.run_once = lambda *a, **k: pytest.fail("no job turn here")
    for slot in svc.views:
        svc.enrol(slot, "admin")
    assert replication_rows(svc.store) == []
    svc.sweep()
    [seal] = svc.offloader.seals.table.audited().values()
    rows = replication_rows(svc.store)
    assert [(r["seal_id"], r["target"], r["state"]) for r in rows] == [
        (seal["id"], "central", "pending")]  # fmt: skip


@pytest.mark.parametrize("hold", ["none", "officer", "episode", "officer_other_period"])
def test_packages_under_an_officer_or_episode_hold_go_first(make_dock, tmp_path, hold) -> None:
    """An older package of nobody's, then a shift of officer 1001: a hold on the
    officer (in the hold's period) or on the episode puts the shift's package first."""
    from dock.domain.hold_kinds import HoldKind
    from dock.evidence.holds import HoldRegister
    from tests.conftest import PIN

    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.05})
    svc.sweep()  # the older package
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    recs[0].model._generate_recordings(1, 50_000, 0)
    recs[0].model.save()
    svc.sweep()  # returned: the shift's package
    older, shift = sorted(svc.offloader.seals.table.audited().values(), key=lambda s: s["id"])
    holds = HoldRegister(svc.store, svc.audit)
    if hold == "officer":
        holds.place_officer("1001", HoldKind.COMPLAINT, "TS-1", "9001")
    elif hold == "episode":
        holds.place_episode(svc.store.custody_history()[0].id, HoldKind.COMPLAINT, "TS-2", "9001")
    elif hold == "officer_other_period":  # the hold's period ended before the shift
        holds.place_officer("1001", HoldKind.COMPLAINT, "TS-3", "9001", from_at=1.0, to_at=2.0)
    eng = engine(svc, FolderTarget(str(tmp_path / "central")))
    eng.reconcile()
    order = [r["seal_id"] for r in eng.table.due("fake", 1e12)]
    urgent = hold in ("officer", "episode")
    assert order == ([shift["id"], older["id"]] if urgent else [older["id"], shift["id"]])
    assert [bool(r["urgent"]) for r in replication_rows(svc.store)] == [urgent, False]
