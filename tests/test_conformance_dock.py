"""Rules the dock enforces that once passed the whole suite with their behaviour removed
(issue 17): each test below fails when its rule is broken in one line, and names the
article it enforces (REQUIREMENTS.md), so ``grep`` from an article finds it.

The recorder's side is observed where the recorder is: the emulated recorder's own
clock and event log, the READ requests it was sent."""

from __future__ import annotations

import hashlib
import time

from dock.devices.recorder_client import RecorderClient
from dock.domain.audit_kinds import AuditKind
from dock.services.status import status_report
from dock.storage.audit.checkpoint_files import read_checkpoint_file
from firmware_protocol.messages import EventKind, Message, MsgType
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec

from .conftest import PIN, SECRET
from .hostile_recorder import HostileFirmware, LoopTransport, Plan, VirtualClock


def time_sets(model: RecorderModel) -> list[dict]:
    """SET_TIMEs the recorder obeyed, from its own event log."""
    return [e for e in model.state["events"] if e["kind"] == EventKind.TIME_SET]


# ---------------------------------------------------------------------- 3. clock
def test_the_recorders_clock_is_set_and_the_drift_found_is_recorded(make_dock) -> None:
    """004 att.3 art.9: recording times must match the written record, so the dock sets
    each recorder's clock from its own trusted clock (the recorder's clock really moves)
    and records the drift it found: in the audit entry and in the status history."""
    svc, recs = make_dock({"battery_percent": 95.0, "clock_offset_s": 30.0})
    model = recs[0].model
    assert svc.checkout("1001", PIN).granted
    assert abs(model.device_time() - time.time()) < 1.0  # was 30 s fast
    assert len(time_sets(model)) == 1  # SET_TIME reached it, once
    (entry, *_) = [e for e in svc.audit.entries() if e.kind == AuditKind.CLOCK_SET]
    assert entry.subject == model.serial
    assert abs(entry.data["drift_before_s"] - 30.0) < 1.0 and abs(entry.data["after_s"]) < 1.0
    measured = [r for r in svc.store.status_history(model.serial) if r["drift_before_s"]]
    assert measured, "the drift found is not in the status history"
    assert abs(measured[-1]["drift_before_s"] - 30.0) < 1.0
    assert abs(measured[-1]["drift_after_s"]) < 1.0


# ---------------------------------------------------------------------- 1. checks
def test_a_failing_check_is_shown_at_the_slot_with_its_reason_and_audited(make_dock) -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: a recorder whose battery fails the pre-shift
    check is refused, the screen says why (the check's own words, not only "no recorder
    ready"), the slot's row (``dock status``, the kiosk's card) names the reason, and the
    failing check is in the audit log with its reason (the LED: test_dock_feedback.py)."""
    svc, recs = make_dock({"battery_percent": 40.0})
    serial = recs[0].model.serial
    decision = svc.checkout("1001", PIN)
    assert not decision.granted
    (battery,) = [r for r in svc.views["1"].failures if r.code == "battery_low"]
    words = battery.message_in(svc.parts.screen_locale)
    assert "40" in words
    shown = [line.rstrip() for line in svc.screen.lines]
    assert any(line.startswith(f"1: {words}"[:20]) for line in shown), shown
    (row,) = status_report(svc, svc.views.values())["slots"]
    assert row["state"] == "failed_check"
    assert {"code": "battery_low", "message": battery.message} in row["failed"]
    checks = [e for e in svc.audit.entries() if e.kind == AuditKind.CHECKS]
    assert checks and checks[-1].subject == serial and checks[-1].data["passed"] is False
    assert "battery_low" in checks[-1].data["failed"]
    assert battery.message in checks[-1].data["reasons"]
    refused = [e for e in svc.audit.entries() if e.kind == AuditKind.CHECKOUT_REFUSED]
    assert refused and "battery_low" in refused[-1].data["reasons"]


# ---------------------------------------------------------------------- 4. signatures
def test_a_check_out_is_signed_by_a_checkpoint_at_once(make_dock) -> None:
    """000 §10 (tamper-evident storage, electronic signatures): custody changes are signed
    at once. Right after a check-out, a signed checkpoint covers its audit entry, in the
    audit database and in the checkpoint file kept outside it."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    (entry,) = [e for e in svc.audit.entries() if e.kind == AuditKind.CHECKOUT]
    report = svc.audit.verify()
    assert report.ok and report.last_checkpoint >= entry.seq
    assert svc.audit.checkpoints()[-1].seq >= entry.seq
    outside = read_checkpoint_file(str(svc.audit.copy_path))
    assert outside.checkpoint.seq >= entry.seq


# ---------------------------------------------------------------------- 4. offload
def test_a_read_broken_mid_way_resumes_at_its_offset_not_at_byte_0(tmp_path) -> None:
    """001 art.19(4) (offload copies, then verifies): when the session breaks in the
    middle of a READ, the dock re-opens it and asks for the rest from the first byte it
    has not received, never from byte 0; every byte arrives once, and the copy is whole."""
    spec = RecorderSpec(serial="EMU0001", recordings=1, recording_mb=0.25, secret=SECRET)
    model = RecorderModel.open(str(tmp_path / "rec"), spec)
    hellos = 0
    reads: list[tuple[int, int]] = []  # (session, offset) of each READ the recorder got
    lost: list[int] = []

    def rewrite(request: Message | None, answer: Message) -> Plan:
        nonlocal hellos
        if request is not None and request.msg_type is MsgType.HELLO:
            hellos += 1
        if request is None or request.msg_type is not MsgType.READ:
            return answer
        offset = request.fields["offset"]
        reads.append((hellos, offset))
        if hellos == 1 and offset >= 100_000:
            lost.append(offset)
            return None  # the reply never comes: the session breaks
        return answer

    clock = VirtualClock()
    firmware = HostileFirmware(model, rewrite, monotonic=clock)
    client = RecorderClient(LoopTransport(firmware, clock), monotonic=clock)
    client.open()
    client.authenticate(SECRET)
    (rec,) = client.list_recordings()
    got: dict[int, bytes] = {}

    def sink(offset: int, data: bytes) -> None:
        assert offset not in got, f"byte {offset} delivered twice"
        got[offset] = data

    assert client.read_recording(rec, sink) == rec.size
    assert lost, "the break was not exercised"
    resumed_at = min(lost)
    after = [offset for session, offset in reads if session > 1]
    assert after and after[0] == resumed_at > 0, (resumed_at, after[:3])
    assert min(after) == resumed_at  # nothing asked again from byte 0
    blob = b"".join(got[k] for k in sorted(got))
    assert len(blob) == rec.size and hashlib.sha256(blob).digest() == rec.sha256


def test_the_kiosk_card_of_a_failing_slot_gives_the_checks_reason(make_web_dock) -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: on the kiosk's grid, a slot whose recorder
    fails a pre-shift check says which check and why, not only that it is not ready."""
    web = make_web_dock({"serial": "EMU0001", "battery_percent": 12}, serve=False)
    (battery,) = [r for r in web.svc.views["1"].failures if r.code == "battery_low"]
    answer = web.app.test_client().get("/kiosk/slots")
    assert answer.status_code == 200
    (card,) = answer.get_json()["slots"]
    assert card["state"] == "failed_check"
    assert battery.message in card["lines"], card


def test_a_recorder_whose_clock_drifts_again_is_set_again(make_dock) -> None:
    """004 att.3 art.9: a recorder set once and found off again at its next full reading
    (more than the dock's threshold) is set again, and the new drift is recorded."""
    svc, recs = make_dock({"battery_percent": 95.0})
    model = recs[0].model
    svc.sweep()
    before = len(time_sets(model))
    model.set_time(time.time() + 5.0)  # its clock jumps 5 s while it sits in the slot
    svc.inspection.full_at.clear()  # the next sweep reads it in full
    svc.sweep()
    assert abs(model.device_time() - time.time()) < 1.0
    assert len(time_sets(model)) == before + 2  # the jump, then the dock's SET_TIME
    last = [e for e in svc.audit.entries() if e.kind == AuditKind.CLOCK_SET][-1]
    assert abs(last.data["drift_before_s"] - 5.0) < 1.0


def test_a_recorder_already_close_to_the_dock_is_still_set_at_its_first_reading(
    make_dock,
) -> None:
    """004 att.3 art.9: every recorder is set from the dock's clock at its first reading,
    even one already within the dock's threshold (its drift, however small, recorded);
    only afterwards does a recorder within bounds go unset."""
    svc, recs = make_dock({"battery_percent": 95.0, "clock_offset_s": 0.0})
    model = recs[0].model
    svc.sweep()
    assert len(time_sets(model)) == 1
    (entry,) = [e for e in svc.audit.entries() if e.kind == AuditKind.CLOCK_SET]
    assert abs(entry.data["drift_before_s"]) < 1.0


def test_a_return_is_signed_by_a_checkpoint_at_once(make_dock) -> None:
    """000 §10: custody changes are signed at once: right after a recorder comes back,
    a signed checkpoint covers its check-in entry."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    svc.inspect("1")  # docked again: a return
    (checkin,) = [e for e in svc.audit.entries() if e.kind == AuditKind.CHECKIN]
    assert svc.audit.checkpoints()[-1].seq >= checkin.seq
    assert svc.audit.verify().last_checkpoint >= checkin.seq


def test_a_cancelled_grant_is_signed_by_a_checkpoint_at_once(make_dock) -> None:
    """000 §10: custody changes are signed at once: right after an officer cancels the
    grant of a recorder they did not take, a signed checkpoint covers the entry."""
    svc, _ = make_dock({"battery_percent": 95.0})
    assert svc.checkout("1001", PIN).granted
    svc.cancel_grant("1001", PIN)
    (cancelled,) = [e for e in svc.audit.entries() if e.kind == AuditKind.GRANT_CANCELLED]
    assert svc.audit.checkpoints()[-1].seq >= cancelled.seq
