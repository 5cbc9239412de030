"""Issue 10 sections 1 and 2: every archived recording ends up in exactly one sealed
package whatever interrupts the seal, and a recorder's copy is erased only against the
archived file as it is on disk at that moment, never on a database row alone."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.evidence import seals as seals_mod
from dock.evidence.fixity import verify_archive
from dock.evidence.seals import SealRegister
from dock.storage.audit import AuditLog
from dock.storage.store import Store


def _damage(path: str) -> None:
    os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"tampered")


def test_a_damaged_archive_copy_stops_the_erase_under_after_second_copy(make_dock) -> None:
    """001 art.19(4): erase only after the copy is verified bit for bit, and that copy
    is the file on disk now: a second copy confirmed later does not erase on the row."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1},
        policy={"erase_on_device": "after_second_copy"},
    )
    svc.offloader.erase_after_verify = False
    model = recs[0].model
    svc.sweep()
    assert len(model.recordings) == 2  # kept until a second copy exists
    row = svc.store.archived(model.serial, "REC000001")
    _damage(os.path.join(svc.offloader.evidence_dir, row["path"]))
    for rid in ("REC000001", "REC000002"):
        svc.store.confirm_second_copy(model.serial, rid, "unit platform")
    report = svc.offload("1")
    assert "REC000001" in model.recordings, "erased against a damaged archive copy"
    assert "REC000002" not in model.recordings  # the intact one went
    assert "REC000001" in report.damaged and report.erased == ["REC000002"]
    kinds = [(e.kind, e.data.get("recording")) for e in svc.audit.entries()]
    assert ("archive_damaged", "REC000001") in kinds
    assert ("erase", "REC000001") not in kinds
    intent = [e for e in svc.audit.entries() if e.kind == "erase_intent"]
    assert [e.data["recording"] for e in intent] == ["REC000002"]
    assert intent[0].data["verified"] == "read back now"


def test_a_seal_that_fails_is_reported_as_such_and_made_by_the_next_offload(
    make_dock, monkeypatch
) -> None:
    """000 §10: A full disk at the seal: the footage is archived, verified and erased; the report
    says the package is missing (not that recordings failed), and the next run seals."""
    svc, _recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    real = seals_mod.make_bag

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(seals_mod, "make_bag", full_disk)
    report = svc.offload("1")
    assert report.failed == {} and len(report.erased) == 2
    assert report.seal_failed and "No space left" in report.seal_failed[0]
    assert report.bag is None
    problems = verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit).bad
    assert sorted(p["recording"] for p in problems if "no sealed package" in p["problem"]) == [
        "REC000001",
        "REC000002",
    ]  # dock archive verify says so, not "all intact"
    monkeypatch.setattr(seals_mod, "make_bag", real)
    svc.housekeeping(0.0)  # the daemon completes it without a recorder
    seals = [e for e in svc.audit.entries() if e.kind == "seal"]
    assert len(seals) == 1 and sorted(seals[0].data["recordings"]) == ["REC000001", "REC000002"]
    assert verify_archive(svc.store, svc.offloader.evidence_dir, svc.audit).ok


def _store_with_rows(tmp_path, n: int = 2) -> tuple[Store, AuditLog, str]:
    evidence = tmp_path / "evidence"
    store = Store(str(tmp_path / "dock.db"))
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "d1")
    for i in range(1, n + 1):
        rel = f"1001/2026-01-01/rec{i}.mp4"
        path = evidence / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"footage {i}".encode()
        path.write_bytes(data)
        store.add_archived(
            "S1", f"REC{i}", hashlib.sha256(data).digest(), len(data), rel, "1001",
            1_767_225_600_000 + i, 1_767_225_601_000 + i,
        )  # fmt: skip
    return store, audit, str(evidence)


def test_an_interrupted_claim_is_finished_with_the_same_members_once(tmp_path) -> None:
    """000 §10: a seal interrupted by a crash is finished with the same recordings, once."""
    store, audit, evidence = _store_with_rows(tmp_path)
    reg = SealRegister(store, audit, evidence)
    seal = reg._claim("S1", reg.unsealed())  # the intent, then a crash before the bag
    assert reg.unsealed() == [] and reg.pending()[0]["state"] == "intent"
    store.add_archived("S1", "REC9", hashlib.sha256(b"x").digest(), 1, "1001/x.mp4", "1001", 9, 9)
    (tmp_path / "evidence" / "1001" / "x.mp4").write_bytes(b"x")
    outcome = reg.complete()
    bags = [b for b, _, _ in outcome.sealed]
    assert bags[0] == seal["bag"] and len(bags) == 2  # the claimed one first, then REC9's
    sealed = [e.data["recordings"] for e in audit.entries() if e.kind == "seal"]
    assert sorted(map(sorted, sealed)) == [["REC1", "REC2"], ["REC9"]]
    assert reg.complete().sealed == []  # nothing twice


def test_a_made_package_without_its_entry_gets_exactly_one(tmp_path) -> None:
    """000 §10: a sealed package made without its audit entry gets exactly one."""
    store, audit, evidence = _store_with_rows(tmp_path)
    reg = SealRegister(store, audit, evidence)
    seal = reg._claim("S1", reg.unsealed())
    members = reg.members(seal["id"])
    digest, oxum = reg._make(seal, members, os.path.join(evidence, seal["bag"]))
    # crash: the bag is in place, the database still says "intent", no seal entry
    reg.complete()
    entries = [e for e in audit.entries() if e.kind == "seal"]
    assert len(entries) == 1 and entries[0].data["tagmanifest_sha256"] == digest
    assert entries[0].data["payload_oxum"] == oxum


def test_packages_sealed_before_the_register_existed_are_adopted(tmp_path) -> None:
    """000 §10: Upgrading: recordings an earlier version sealed are not sealed a second time."""
    store, audit, evidence = _store_with_rows(tmp_path)
    old = {"bag": "bags/1001/old", "tagmanifest_sha256": "ab", "recordings": ["REC1"]}
    audit.append("seal", "dock", "S1", old)
    reg = SealRegister(store, audit, evidence)
    assert [r["recording_id"] for r in reg.unsealed()] == ["REC2"]
    reg.complete()
    sealed = [e.data["recordings"] for e in audit.entries() if e.kind == "seal"]
    assert sealed == [["REC1"], ["REC2"]]


def test_footage_from_a_recorder_whose_clock_reset_is_offloaded_and_marked(make_dock) -> None:
    """004 att.3 art.9: A recorder that lost its clock (1970) still has real footage: it is
    offloaded, verified and sealed, not left on the device, and its doubtful time is audited."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    model = recs[0].model
    for i, r in enumerate(model.ordered_recordings()):
        r.start_ms, r.end_ms = 60_000 * (i + 1), 60_000 * (i + 1) + 30_000
    model.save()
    report = svc.offload("1")
    assert sorted(report.erased) == ["REC000001", "REC000002"] and report.failed == {}
    files = [e for e in svc.audit.entries() if e.kind == "offload_file"]
    assert len(files) == 2
    assert all(e.data["time_doubt"].startswith("start ") for e in files)
    assert report.bag is not None
