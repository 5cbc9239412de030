"""Offload on docking, end to end: footage verified into the archive, then erased on the
device; and with faults, nothing lost and nothing erased before it is verified."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

from dock.domain.slot_state import SlotState
from dock.evidence import offload as offload_mod
from hardware.emulator.link_faults import LinkFaults

from .conftest import PIN, archived_bytes


def test_footage_is_archived_verified_and_then_erased(make_dock) -> None:
    """001 art.19(4); 000 §13.2: footage is copied, verified bit for bit against the capture hash,
    archived read-only, and only then erased on the recorder."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.2})
    model = recs[0].model
    expected = {r.id: r.sha256 for r in model.recordings.values()}
    svc.sweep()  # docking: identify, then offload
    files = archived_bytes(svc)
    assert {rid: hashlib.sha256(b).digest() for rid, b in files.items()} == expected
    assert model.recordings == {}  # erased on the device only after verification
    for e in svc.store.archive_entries():
        path = os.path.join(svc.offloader.evidence_dir, e["path"])
        assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert model.serial in os.path.basename(path) and e["erased_at"] is not None
    kinds = [e.kind for e in svc.audit.entries()]
    assert kinds.count("offload_file") == 3 and kinds.count("erase") == 3
    svc.sweep()  # checked again in full: nothing pending any more
    assert svc.slot_status["1"].state is SlotState.READY
    assert svc.checkout("1001", PIN).granted


def test_an_interrupted_offload_resumes_without_loss_or_duplicates(make_dock) -> None:
    """001 art.19(4): an offload cut mid-way loses nothing, erases nothing unverified, and finishes
    at the next docking without duplicates."""
    faults = LinkFaults(disconnect_after_bytes=300_000)
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.25, "link_faults": faults}
    )
    model = recs[0].model
    expected = {r.id: r.sha256 for r in model.recordings.values()}
    svc.offloader.use_mass_storage = False  # the footage must cross the cut cable
    svc.sweep()  # the cable is cut during the second recording
    assert svc.slot_status["1"].state is SlotState.FAULT
    archived = {e["recording_id"] for e in svc.store.archive_entries()}
    assert set(model.recordings) | archived == set(expected)  # nothing lost
    assert set(model.recordings) == set(expected) - {
        e["recording_id"] for e in svc.store.archive_entries() if e["erased_at"]
    }  # nothing erased that is not verified in the archive
    svc.sweep()  # docked again (the emulator accepts a new connection): finishes
    files = archived_bytes(svc)
    assert {rid: hashlib.sha256(b).digest() for rid, b in files.items()} == expected
    assert len(svc.store.archive_entries()) == 2 and model.recordings == {}


def test_a_capture_hash_mismatch_quarantines_and_erases_nothing(make_dock) -> None:
    """001 art.19(4); 003 art.11: a copy that does not match the capture hash is quarantined, and
    nothing is erased."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    model = recs[0].model
    bad = model.ordered_recordings()[0]
    bad.sha256 = hashlib.sha256(b"not this footage").digest()  # the recorder's own record
    bad.signature = None
    svc.sweep()
    assert bad.id in model.recordings  # still on the device
    assert svc.store.archived(model.serial, bad.id) is None
    quarantine = [
        os.path.join(d, f)
        for d, _, names in os.walk(svc.offloader.evidence_dir)
        for f in names
        if "quarantine" in d
    ]
    assert len(quarantine) == 2  # the first copy and the re-read, both kept
    assert svc.slot_status["1"].state is SlotState.FAULT
    failed = [e for e in svc.audit.entries() if e.kind == "offload_failed"]
    assert failed and failed[0].data["recording"] == bad.id


def test_a_bad_device_signature_erases_nothing(make_dock) -> None:
    """001 art.19(4); 000 §10: footage whose device signature fails is not archived and stays on the
    recorder."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1})
    model = recs[0].model
    rec = model.ordered_recordings()[0]
    rec.signature = bytes(64)
    svc.sweep()
    assert rec.id in model.recordings and svc.store.archived(model.serial, rec.id) is None


def test_not_enough_room_keeps_the_footage_on_the_device(make_dock, monkeypatch) -> None:
    """001 art.19(4): without room for the copy, the footage stays on the recorder."""
    monkeypatch.setattr(offload_mod, "ROOM_MARGIN", 1 << 60)
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    svc.sweep()
    assert len(recs[0].model.recordings) == 2
    assert svc.store.archive_entries() == []
    assert svc.slot_status["1"].state is SlotState.FAULT
    refused = [e for e in svc.audit.entries() if e.kind == "offload_refused"]
    assert refused and "not enough room" in refused[0].data["reason"]


def test_each_custody_episode_is_sealed_as_a_bagit_package(make_dock) -> None:
    """000 §10: each custody episode's footage is sealed as a package whose hash is in the signed
    audit log."""
    from dock.evidence.bagit import tagmanifest_digest, validate_bag

    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    svc.sweep()
    seals = [e for e in svc.audit.entries() if e.kind == "seal"]
    assert len(seals) == 1
    bag = os.path.join(svc.offloader.evidence_dir, seals[0].data["bag"])
    assert validate_bag(bag).ok
    assert tagmanifest_digest(bag) == seals[0].data["tagmanifest_sha256"]
    assert sorted(seals[0].data["recordings"]) == ["REC000001", "REC000002"]


def test_a_scanner_hit_quarantines_and_keeps_the_footage_on_the_device(make_dock) -> None:
    """004 att.2 §8: files are checked before archiving: a scanner hit is quarantined and the
    footage kept on the recorder."""
    from dock.daemon.composition import command_scanner

    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    model = recs[0].model
    flagged = model.ordered_recordings()[1].id
    # a stand-in for clamscan: exit 1 ("found") for the second recording's file
    script = f"import sys; sys.exit(1 if '{flagged}' in sys.argv[1] else 0)"
    svc.offloader.scanner = command_scanner((sys.executable, "-c", script))
    svc.sweep()
    assert flagged in model.recordings  # the original stays on the recorder
    assert svc.store.archived(model.serial, flagged) is None
    hits = [e for e in svc.audit.entries() if e.kind == "scanner_hit"]
    assert len(hits) == 1 and hits[0].data["recording"] == flagged
    assert os.path.exists(os.path.join(svc.offloader.evidence_dir, hits[0].data["quarantined"]))
    assert svc.slot_status["1"].state is SlotState.FAULT


def test_mass_storage_is_used_where_the_recorder_offers_it(make_dock) -> None:
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.2})
    svc.sweep()
    files = [e for e in svc.audit.entries() if e.kind == "offload_file"]
    assert [e.data["via"] for e in files] == ["mass_storage", "mass_storage"]
    assert recs[0].model.recordings == {}
    assert not os.path.exists(os.path.join(recs[0].data_dir, "mass-storage"))  # left again


def test_older_recorder_without_mass_storage_offloads_over_the_protocol(make_dock) -> None:
    from hardware.emulator.recorder_model import LEGACY_CAPABILITIES

    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.2,
         "capabilities": LEGACY_CAPABILITIES}
    )  # fmt: skip
    svc.sweep()
    files = [e for e in svc.audit.entries() if e.kind == "offload_file"]
    assert [e.data["via"] for e in files] == ["protocol", "protocol"]
    assert recs[0].model.recordings == {}


def test_a_return_with_an_interrupted_recording_opens_an_explanation_item(make_dock) -> None:
    """002 art.20; 001 art.19(2): a return with an interrupted recording opens an explanation
    item."""
    from dock.evidence.gaps import GapRegister

    svc, recs = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    model = recs[0].model
    # out on patrol: one recording, cut when the battery ran out
    model._generate_recordings(1, 100_000, interrupted=1)
    import time

    time.sleep(0.3)
    now_ms = int(time.time() * 1000)
    rec = model.ordered_recordings()[-1]
    rec.start_ms, rec.end_ms = now_ms - 200, now_ms - 100  # during the shift just ended
    for e in model.state["events"]:
        if e.get("recording_id") == rec.id:
            e["time_ms"] = rec.start_ms if e["kind"] == 3 else rec.end_ms
    model.save()
    svc.inspect("1")  # docked again: custody closes, the event log is read, footage offloaded
    items = GapRegister(svc.store, svc.audit).list_items(officer_id="1001")
    assert len(items) == 1 and items[0].reason == "battery"
    assert svc.store.open_custody_of_officer("1001") is None


def test_housekeeping_raises_overdue_offloads_once_and_samples_fixity(make_dock) -> None:
    """003 art.13; 004 att.2 §4: an overdue offload is raised once, and the archive's fixity is
    sampled."""
    import time

    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1})
    svc.sweep()  # offloads the footage that was on it
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    recs[0].model._generate_recordings(1, 50_000, interrupted=0)  # recorded on patrol
    recs[0].model.save()
    svc.offloader.use_mass_storage = False
    svc.offloader.erase_after_verify = True
    svc.offloader.scanner = lambda path: (False, "scanner failed")  # offload keeps failing
    svc.inspect("1")  # returned: custody closed, offload fails, footage stays
    later = time.time() + 25 * 3600  # a day later, still not offloaded
    svc.housekeeping(later)
    svc.housekeeping(later + 3600)  # raised once per episode and state, not every time
    overdue = [e for e in svc.audit.entries() if e.kind == "deadline_overdue"]
    assert len(overdue) == 1 and overdue[0].subject == recs[0].model.serial
    assert [e for e in svc.audit.entries() if e.kind == "fixity_check"]


def test_several_slots_offload_together_within_the_cap(make_dock) -> None:
    specs = [{"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.3} for _ in range(3)]
    svc, recs = make_dock(*specs)
    svc.offload_concurrency = 2
    seen_running = []
    original = svc.offload

    def spy(slot_id, progress=None):
        seen_running.append(len(svc.offloads.busy()))
        return original(slot_id, progress)

    svc.offload = spy  # type: ignore[method-assign]
    svc.sweep()
    svc.wait_offloads()
    assert max(seen_running) <= 2  # never more than the cap at once
    assert len(svc.store.archive_entries()) == 6
    assert all(r.model.recordings == {} for r in recs)
    svc.sweep()
    assert all(svc.slot_status[s].state is SlotState.READY for s in svc.views)


def test_offload_over_a_noisy_line_is_exact(make_dock) -> None:
    """001 art.19(4): over a noisy line the archived copy is still bit for bit the recording."""
    faults = LinkFaults(bit_error_rate=1e-5, drop_rate=0.01, seed=3)
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.3, "link_faults": faults}
    )
    expected = {r.id: r.sha256 for r in recs[0].model.recordings.values()}
    svc.offloader.use_mass_storage = False
    svc.sweep()
    files = archived_bytes(svc)
    assert {rid: hashlib.sha256(b).digest() for rid, b in files.items()} == expected
    assert recs[0].model.recordings == {}


def test_a_mismatch_is_read_once_more_before_giving_up(make_dock) -> None:
    """001 art.19(4): a copy that does not verify is read once more before the recording is
    quarantined."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 1, "recording_mb": 0.1})
    rec = recs[0].model.ordered_recordings()[0]
    rec.sha256 = hashlib.sha256(b"other").digest()
    rec.signature = None
    svc.sweep()
    kinds = [e.kind for e in svc.audit.entries()]
    assert kinds.count("offload_retry") == 1 and "offload_failed" in kinds
    assert rec.id in recs[0].model.recordings


def test_erase_only_after_a_second_copy_when_the_policy_says_so(make_dock) -> None:
    """004 att.3 art.5; 004 att.2 §4: when the policy says so, the recorder's copy is erased only
    after a second copy off the dock."""
    svc, recs = make_dock(
        {"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1},
        policy={"erase_on_device": "after_second_copy"},
    )
    svc.offloader.erase_after_verify = svc.policy.erase_on_device == "after_verify"
    model = recs[0].model
    svc.sweep()
    assert len(svc.store.archive_entries()) == 2 and len(model.recordings) == 2  # kept
    svc.store.confirm_second_copy(model.serial, "REC000001", "unit platform")
    svc.offload("1")
    assert set(model.recordings) == {"REC000002"}  # only the confirmed one went


def test_offload_progress_is_visible_per_slot_while_it_runs(make_dock) -> None:
    from dock.services.status import status_report

    svc, _ = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.5})
    svc.offloader.use_mass_storage = False
    seen = []

    def watch(recording: str, done: int, total: int) -> None:
        seen.append(status_report(svc, list(svc.views.values()))["slots"][0]["offload"])

    svc.offload("1", progress=watch)
    assert seen[0]["recording"] == "REC000001" and seen[0]["done"] <= seen[0]["total"]
    last = {k: seen[-1][k] for k in ("recording", "done", "total")}  # and the whole's
    assert last == {"recording": "REC000002", "done": 524288, "total": 524288}
    assert "1" not in svc.offload_progress  # cleared when done


def test_a_case_is_attached_later_without_renaming_the_original(make_dock) -> None:
    """000 §13.2; 003 art.19: attaching a case later never renames or changes the original file."""
    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 2, "recording_mb": 0.1})
    svc.sweep()
    before = {e["recording_id"]: e["path"] for e in svc.store.archive_entries()}
    serial = recs[0].model.serial
    assert svc.store.attach_case("2026-JX-0042", serial, "REC000002", "clerk")
    assert not svc.store.attach_case("2026-JX-0042", serial, "REC000002", "clerk")
    rows = svc.store.case_recordings("2026-JX-0042")
    assert [r["recording_id"] for r in rows] == ["REC000002"]
    after = {e["recording_id"]: e["path"] for e in svc.store.archive_entries()}
    assert after == before  # the original keeps its name and place
    assert os.path.exists(os.path.join(svc.offloader.evidence_dir, rows[0]["path"]))
