"""Continuity of footage (REQUIREMENTS §4, issue 17): no selective keeping, after-the-fact
recording or inserted footage; officers may not keep, copy or delete footage themselves
(003 art.11, 003 art.13; 001 art.19(3); 002 art.23). Each docking flags recordings missing from
the recorder's numbering, recordings made outside the custody episode and footage a
recorder that signs did not sign: an explanation item the supervisor sees, an audit
entry, an event to headquarters; the footage is archived all the same.

Every flag is raised through a real offload of an emulated recorder (its knobs:
``film``, ``delete_on_device``), and an honest recorder raises none.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from typing import Any

import pytest

from dock.config import emulated_config
from dock.daemon.composition import build_reporter, build_service
from dock.domain.audit_kinds import AuditKind
from dock.evidence.continuity import (
    MISSING,
    OUTSIDE_EPISODE,
    UNSIGNED,
    Mark,
    find_breaks,
    find_unlisted,
)
from dock.evidence.gaps import GapRegister
from dock.reporting.events import AuditView, event_for
from dock.reporting.feed import feed
from dock.reporting.outbox import Outbox
from dock.storage.store import Custody
from firmware_protocol.messages import Capability, EventKind
from hardware.emulator.recorder_model import LEGACY_CAPABILITIES
from hardware.screens import ConsoleScreen
from hq.alerts import AlertKind, event_rule
from mqtt_contract.contract import EventType

from .conftest import PIN

KINDS = (MISSING, OUTSIDE_EPISODE, UNSIGNED)
FLAG_AUDITS = (
    AuditKind.RECORDING_MISSING,
    AuditKind.RECORDING_OUTSIDE_EPISODE,
    AuditKind.RECORDING_UNSIGNED,
)


# --- helpers --------------------------------------------------------------------------


def _out(svc: Any) -> Custody:
    """Officer 1001 checks the recorder in slot 1 out and takes it away."""
    assert svc.checkout("1001", PIN).granted
    svc.taken("1")
    custody = svc.store.open_custody_of_officer("1001")
    assert custody is not None
    return custody


def _back(svc: Any) -> None:
    """The recorder is docked again: custody closes, its footage is offloaded."""
    svc.inspect("1")
    assert svc.store.open_custody_of_officer("1001") is None


def _flags(svc: Any) -> list[Any]:
    """The continuity items in the supervisor's register (the gap queue's listing)."""
    items = GapRegister(svc.store, svc.audit).list_items()
    return [i for i in items if i.kind in KINDS]


def _entries(svc: Any, *kinds: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind in kinds]


def _archived(svc: Any, serial: str, rid: str) -> bool:
    return svc.store.archived(serial, rid) is not None


# --- 1. missing from the recorder's numbering -----------------------------------------


def test_a_recording_deleted_before_docking_is_flagged_and_the_rest_archived(make_dock) -> None:
    """003 art.11, 003 art.13; 001 art.19(3); 002 art.23: an officer may not delete footage. The
    recorder numbers its clips 1, 2, 3; clip 2 is deleted on the device before docking:
    one ``missing`` item names number 2 for the officer and the supervisor, the entry is
    audited, and clips 1 and 3 are archived all the same."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    custody = _out(svc)
    clips = rec.model.film(3)
    assert [c.index for c in clips] == [1, 2, 3]
    rec.model.delete_on_device(clips[1].id)
    _back(svc)
    (item,) = _flags(svc)
    assert (item.kind, item.reason, item.recording_id) == (
        MISSING, "deleted_before_docking", clips[2].id,
    )  # fmt: skip
    assert item.detail.startswith("recording 2 missing") and "deleted before docking" in item.detail
    assert (item.officer_id, item.custody_id, item.serial) == ("1001", custody.id, rec.model.serial)
    assert (item.start_ms, item.end_ms) == (clips[0].end_ms, clips[2].start_ms)  # the window
    assert [i.id for i in GapRegister(svc.store, svc.audit).list_items("1001")] == [item.id]
    (entry,) = _entries(svc, AuditKind.RECORDING_MISSING)
    assert entry.data["missing"] == [2, 2] and entry.data["item"] == item.id
    assert _archived(svc, rec.model.serial, clips[0].id)
    assert _archived(svc, rec.model.serial, clips[2].id)


def test_recordings_deleted_between_two_episodes_are_flagged_from_the_remembered_number(
    make_dock,
) -> None:
    """003 art.13; 001 art.19(3): the dock remembers the last number it saw on each
    recorder, so clips deleted at the start of the next episode (numbers 3 and 4, after
    clips 1 and 2 were archived at the last return) are flagged: ``recordings 3..4``."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    _out(svc)
    rec.model.film(2)
    _back(svc)
    assert _flags(svc) == []
    _out(svc)
    clips = rec.model.film(3)
    assert [c.index for c in clips] == [3, 4, 5]
    rec.model.delete_on_device(clips[0].id)
    rec.model.delete_on_device(clips[1].id, logged=False)  # not even in the device's log
    _back(svc)
    (item,) = _flags(svc)
    assert item.kind == MISSING and item.detail.startswith("recordings 3..4 missing")
    assert item.recording_id == clips[2].id
    (entry,) = _entries(svc, AuditKind.RECORDING_MISSING)
    assert entry.data["missing"] == [3, 4]


def test_the_last_recordings_deleted_are_flagged_from_the_recorders_log(make_dock) -> None:
    """003 art.11, 003 art.13; 001 art.19(3): an officer who deletes the last clips of the
    episode (no later number shows the hole), or every clip, still leaves them in the
    recorder's log: each is flagged at the return, even with nothing left to offload."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    custody = _out(svc)
    clips = rec.model.film(2)
    for clip in clips:
        rec.model.delete_on_device(clip.id)
    _back(svc)
    items = _flags(svc)
    assert sorted((i.kind, i.recording_id) for i in items) == [(MISSING, c.id) for c in clips]
    assert all(i.custody_id == custody.id and i.officer_id == "1001" for i in items)
    assert "by the recorder's log" in items[0].detail
    assert len(_entries(svc, AuditKind.RECORDING_MISSING)) == 2
    _out(svc)  # the next episode: numbered on from 3, nothing more is missing
    rec.model.film(1)
    _back(svc)
    assert len(_flags(svc)) == 2


def test_the_first_recording_deleted_at_a_first_docking_is_flagged_once(make_dock) -> None:
    """003 art.13; 001 art.19(3): at a recorder's first docking the dock knows no number
    yet: the first clip deleted is found in the log; a middle one is the numbering's (one
    item each, never two for one recording)."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    _out(svc)
    clips = rec.model.film(4)
    rec.model.delete_on_device(clips[0].id)
    rec.model.delete_on_device(clips[2].id)
    _back(svc)
    got = sorted((i.recording_id, i.detail.split(" (")[0]) for i in _flags(svc))
    assert got == [
        (clips[0].id, f"recording {clips[0].id}"),
        (clips[3].id, "recording 3 missing from the recorder's numbering"),
    ]


# --- 2. outside the custody episode ---------------------------------------------------


def test_a_recording_made_before_the_check_out_is_flagged_within_tolerance_is_not(
    make_dock,
) -> None:
    """003 art.11; 002 art.23 (no after-the-fact recording, no inserted footage): a clip
    timed an hour before the check-out comes back with the recorder; it is archived and
    flagged ``outside_episode`` (before_checkout). A clip 60 s before the check-out is
    within the policy's clock tolerance (120 s) and is not."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    assert svc.policy.continuity_tolerance_s == 120.0
    custody = _out(svc)
    out_ms = round(custody.out_at * 1000)
    early = rec.model.film(1, start_ms=out_ms - 3_600_000)[0]
    near = rec.model.film(1, start_ms=out_ms - 60_000)[0]
    honest = rec.model.film(2)
    _back(svc)
    (item,) = _flags(svc)
    assert (item.kind, item.reason, item.recording_id) == (
        OUTSIDE_EPISODE, "before_checkout", early.id,
    )  # fmt: skip
    assert (item.officer_id, item.custody_id) == ("1001", custody.id)
    assert f"custody episode {custody.id}" in item.detail
    (entry,) = _entries(svc, AuditKind.RECORDING_OUTSIDE_EPISODE)
    assert entry.data["recording"] == early.id
    for clip in (early, near, *honest):
        assert _archived(svc, rec.model.serial, clip.id)


def test_a_recording_made_after_the_return_is_flagged(make_dock) -> None:
    """003 art.13; 002 art.23: footage made while the recorder sat in the dock after its
    return (no custody episode covers it) is flagged ``outside_episode`` (after_return)
    when it is offloaded."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    _out(svc)
    rec.model.film(1)
    _back(svc)
    assert _flags(svc) == []
    late = rec.model.film(1, start_ms=int(time.time() * 1000) + 600_000)[0]
    svc.offload("1")
    (item,) = _flags(svc)
    assert (item.kind, item.reason, item.recording_id) == (OUTSIDE_EPISODE, "after_return", late.id)
    assert _archived(svc, rec.model.serial, late.id)


# --- 3. unsigned footage from a recorder that signs -----------------------------------


def test_an_unsigned_recording_from_a_recorder_that_signs_is_flagged(make_dock) -> None:
    """003 art.11; 002 art.23 (no inserted footage): the recorder announces its device key
    and signs every clip; one clip comes back without a signature. It is archived and
    flagged ``unsigned``; the signed ones are not."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    _out(svc)
    signed = rec.model.film(2)
    bare = rec.model.film(1, signed=False)[0]
    assert bare.signature is None and all(c.signature for c in signed)
    _back(svc)
    (item,) = _flags(svc)
    assert (item.kind, item.reason, item.recording_id) == (UNSIGNED, "no_signature", bare.id)
    assert "announces a device key" in item.detail
    (entry,) = _entries(svc, AuditKind.RECORDING_UNSIGNED)
    assert entry.data["recording"] == bare.id
    assert _archived(svc, rec.model.serial, bare.id)


def test_a_recording_whose_signature_does_not_verify_is_flagged_and_kept(make_dock) -> None:
    """003 art.11; 002 art.23 (no inserted footage): a clip whose signature does not
    verify against the recorder's key is not archived (it stays on the recorder, the
    offload reports it failed) and the supervisor has an ``unsigned`` item for it."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    _out(svc)
    good = rec.model.film(1)[0]
    forged = rec.model.film(1)[0]
    forged.signature = bytes(64)
    rec.model.save()
    _back(svc)
    (item,) = _flags(svc)
    assert (item.kind, item.reason, item.recording_id) == (UNSIGNED, "bad_signature", forged.id)
    assert _archived(svc, rec.model.serial, good.id)
    assert not _archived(svc, rec.model.serial, forged.id)
    assert forged.id in rec.model.recordings  # left on the recorder


def test_a_recorder_that_signed_before_and_stops_is_flagged(make_dock) -> None:
    """003 art.11; 002 art.23: a recorder whose earlier footage was signed and that now
    announces no key (new firmware, or another device posing as it) brings unsigned
    clips: flagged, from what the dock remembers."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    _out(svc)
    rec.model.film(1)
    _back(svc)
    caps = Capability(rec.model.state["capabilities"]) & ~Capability.SIGNATURE
    rec.model.state["capabilities"] = int(caps)
    rec.model.save()
    _out(svc)
    bare = rec.model.film(1)[0]
    assert bare.signature is None
    _back(svc)
    (item,) = _flags(svc)
    assert (item.kind, item.recording_id) == (UNSIGNED, bare.id)
    assert "signed its earlier recordings" in item.detail


def test_a_recorder_that_never_signs_raises_no_unsigned_flag(make_dock) -> None:
    """002 art.23 (no false alarm): a recorder without the SIGNATURE capability is
    verified against its capture hash only (PROTOCOL.md 6.7): its clips are not
    flagged."""
    svc, (rec,) = make_dock({"battery_percent": 95.0, "capabilities": LEGACY_CAPABILITIES})
    _out(svc)
    rec.model.film(2)
    _back(svc)
    assert _flags(svc) == []
    assert len(svc.store.archive_entries()) == 2


# --- no false alarm -------------------------------------------------------------------


def test_an_honest_recorder_raises_no_flag_over_two_episodes(make_dock) -> None:
    """003 art.11, 003 art.13; 001 art.19(3); 002 art.23 (no false alarm): consecutive numbers,
    every clip inside its episode, every clip signed, two episodes: no item, no entry."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    for _ in range(2):
        _out(svc)
        rec.model.film(3)
        _back(svc)
    assert len(svc.store.archive_entries()) == 6
    assert _flags(svc) == []
    assert _entries(svc, *FLAG_AUDITS) == []


# --- reaching headquarters ------------------------------------------------------------


def test_each_flag_is_an_event_for_headquarters_and_an_alert_there(make_dock, tmp_path) -> None:
    """003 art.11, 003 art.13; 001 art.19(3); 002 art.23: headquarters hears of every flag as
    ``continuity.flagged`` (queued in the outbox from the audit log) and raises a
    ``footage_continuity`` alert for it."""
    svc, (rec,) = make_dock({"battery_percent": 95.0})
    outbox = Outbox(str(tmp_path / "outbox.db"))
    feed(svc.audit, outbox, "boot1", 1.0)  # reporting starts here
    custody = _out(svc)
    clips = rec.model.film(3)
    rec.model.delete_on_device(clips[1].id)
    rec.model.film(1, start_ms=round(custody.out_at * 1000) - 3_600_000)
    rec.model.film(1, signed=False)
    _back(svc)
    for _ in range(100):
        if feed(svc.audit, outbox, "boot1", 1.0) == 0:
            break
    events = [json.loads(p.payload) for p in outbox.pending(1000)]
    flagged = [e for e in events if e["type"] == EventType.CONTINUITY_FLAGGED]
    assert sorted(e["data"]["kind"] for e in flagged) == [MISSING, OUTSIDE_EPISODE, UNSIGNED]
    for e in flagged:
        assert e["data"]["serial"] == rec.model.serial and e["data"]["officer"] == "1001"
        decision = event_rule("s1", "d1", e)
        assert [a.key.kind for a in decision.open] == [AlertKind.FOOTAGE_CONTINUITY]
    missing = next(e for e in flagged if e["data"]["kind"] == MISSING)
    assert missing["data"]["missing"] == [2, 2]
    outbox.close()


def test_a_flag_reaches_headquarters_over_a_real_broker(tmp_path, start_recorder) -> None:
    """002 art.23; 003 art.13: a recording deleted before docking reaches headquarters
    through a real Mosquitto as ``continuity.flagged``."""
    from tests.broker import Broker, find_mosquitto
    from tests.mqtt_listener import Listener

    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary")
    rec = start_recorder(listen="tcp://127.0.0.1:0", recordings=0, battery_percent=95.0)
    with Broker(tmp_path) as broker:
        cfg = emulated_config(1, str(tmp_path / "state"))
        cfg = dataclasses.replace(
            cfg,
            slots=(dataclasses.replace(cfg.slots[0], port=rec.url),),
            mqtt=dataclasses.replace(cfg.mqtt, host=broker.host, port=broker.port, site="s1"),
        )
        svc = build_service(cfg, screen=ConsoleScreen(io.StringIO()))
        svc.enrol("1", "admin")
        svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
        reporter = build_reporter(cfg, svc)
        assert reporter is not None
        hq = Listener(broker.host, broker.port)
        reporter.start()
        try:
            hq.wait_for(lambda: hq.on("/birth"))
            _out(svc)
            clips = rec.model.film(4)
            rec.model.delete_on_device(clips[1].id)
            rec.model.delete_on_device(clips[2].id)
            _back(svc)
            got = hq.wait_for(lambda: hq.on("/event/continuity.flagged"), timeout=30)
        finally:
            reporter.stop()
            hq.close()
    (event,) = got
    assert event["data"]["kind"] == MISSING and event["data"]["missing"] == [2, 3]


# --- the rules, table by table --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Rec:
    id: str
    start_ms: int
    end_ms: int
    signature: bytes | None = b"s" * 64
    sequence: int | None = None
    time_doubt: str | None = None


def _ep(i: int, out_s: float, in_s: float | None) -> Custody:
    return Custody(i, "S", "1001", "1", out_s, in_s, None, None)


EP = [_ep(1, 1000.0, 2000.0)]


@pytest.mark.parametrize(
    ("recs", "mark", "want"),
    [
        # consecutive from the remembered number: nothing
        ([_Rec("a", 1_100_000, 1_101_000, sequence=5)], Mark(4, 1_050_000), []),
        # one skipped after the mark
        ([_Rec("a", 1_100_000, 1_101_000, sequence=6)], Mark(4, 1_050_000),
         [(MISSING, "a", 1_050_000, (5, 5))]),
        # a hole between two listed ones at a first docking (no mark)
        ([_Rec("a", 1_100_000, 1_101_000, sequence=1), _Rec("b", 1_200_000, 1_201_000,
                                                           sequence=4)],
         Mark(), [(MISSING, "b", 1_101_000, (2, 3))]),
        # numbers at or below the mark (kept on the device, already seen): nothing
        ([_Rec("a", 1_100_000, 1_101_000, sequence=3)], Mark(4, 1_050_000), []),
        # no numbers at all: cannot be judged
        ([_Rec("a", 1_100_000, 1_101_000)], Mark(4, 1_050_000), []),
        # a number beyond u32 is no number
        ([_Rec("a", 1_100_000, 1_101_000, sequence=1 << 40)], Mark(4, 1_050_000), []),
    ],
)  # fmt: skip
def test_find_breaks_numbering(recs, mark, want) -> None:
    """003 art.11, 003 art.13; 001 art.19(3): holes in the recorder's numbering."""
    got = find_breaks(recs, [], mark, EP, False, 120_000)
    assert [(b.kind, b.recording_id, b.start_ms, b.numbers) for b in got] == want


@pytest.mark.parametrize(
    ("rec", "want"),
    [
        (_Rec("in", 1_000_000, 2_000_000), None),
        (_Rec("early-ok", 880_000, 1_100_000), None),  # 120 s before: tolerated
        (_Rec("late-ok", 1_900_000, 2_120_000), None),  # 120 s after: tolerated
        (_Rec("early", 879_999, 1_100_000), "before_checkout"),
        (_Rec("late", 1_900_000, 2_120_001), "after_return"),
        (_Rec("long", 500_000, 2_500_000), "before_checkout"),
    ],
)
def test_find_breaks_episode(rec, want) -> None:
    """003 art.11; 002 art.23: a recording outside [check-out, return] beyond the
    tolerance is after-the-fact or inserted footage."""
    got = [b for b in find_breaks([rec], [rec.id], Mark(), EP, True, 120_000)]
    assert [b.reason for b in got if b.kind == OUTSIDE_EPISODE] == ([want] if want else [])


def test_find_breaks_judges_only_new_recordings_and_no_episode_no_judgement() -> None:
    """002 art.23: archived recordings were judged when they came; a recorder never
    checked out has no episode to compare with."""
    early = _Rec("x", 1, 2, signature=None)
    assert find_breaks([early], [], Mark(signs=True), EP, True, 0) == []
    got = find_breaks([early], ["x"], Mark(), [], True, 0)
    assert [b.kind for b in got] == [UNSIGNED]
    assert find_breaks([early], ["x"], Mark(), [], False, 0) == []


def test_every_flag_kind_is_reported_to_headquarters() -> None:
    """003 art.11; 002 art.23: each flag's audit kind becomes ``continuity.flagged``."""
    for kind in FLAG_AUDITS:
        view = AuditView(1, "t", kind, "dock", "S", {"item": 3, "kind": "k", "detail": "d"})
        found = event_for(view, 1.0)
        assert found is not None and found[0] is EventType.CONTINUITY_FLAGGED
        assert found[1]["item"] == 3 and found[1]["serial"] == "S"


# --- reaching the supervisor ----------------------------------------------------------


def test_the_supervisor_sees_the_flag_in_the_gap_queue_in_both_languages(make_web_dock) -> None:
    """003 art.11, 003 art.13; 001 art.19(3); 002 art.23: a recording deleted before docking is
    in the supervisor's queue of explanation items (/supervisor/gaps), named in English
    and Chinese with what the dock found, and in the officer's own open items."""
    from .test_web_foundation import log_in

    web = make_web_dock({"serial": "EMU0001", "battery_percent": 95.0}, serve=False)
    svc, rec = web.svc, web.recorders[0]
    _out(svc)
    clips = rec.model.film(3)
    rec.model.delete_on_device(clips[1].id)
    _back(svc)
    (item,) = _flags(svc)
    sup = web.app.test_client()
    assert log_in(sup, "supervisor").status_code == 302
    sup.get("/lang/en")
    page = sup.get("/supervisor/gaps").get_data(as_text=True)
    assert f'data-item="{item.id}"' in page
    assert "recording missing (deleted before docking?)" in page
    assert "recording 2 missing" in page
    sup.get("/lang/zh")
    assert "录像缺失（入站前被删除？）" in sup.get("/supervisor/gaps").get_data(as_text=True)
    officer = web.app.test_client()
    assert log_in(officer, "officer").status_code == 302
    officer.get("/lang/en")
    assert "recording missing (deleted before docking?)" in officer.get("/officer/").get_data(
        as_text=True
    )


def test_find_unlisted_only_the_episodes_own_recordings_that_are_gone() -> None:
    """003 art.11, 003 art.13; 001 art.19(3): the log's recordings of this episode, neither listed
    nor archived, are gone; one started before the check-out (a recorder's history from
    before the dock, say) is not this officer's, and an archived one is not gone."""
    start = int(EventKind.RECORD_START)
    events = [
        {"kind": start, "time_ms": 1_100_000, "recording_id": "R-in"},
        {"kind": start, "time_ms": 1_150_000, "recording_id": "R-archived"},
        {"kind": start, "time_ms": 500_000, "recording_id": "R-before"},
        {"kind": start, "time_ms": 2_500_000, "recording_id": "R-after"},
        {"kind": start, "time_ms": 1_200_000, "recording_id": "R-listed"},
    ]
    listed = [_Rec("R-listed", 1_200_000, 1_201_000)]
    got = find_unlisted(events, listed, lambda rid: rid == "R-archived", EP[0], Mark(), 120_000)
    assert [(b.kind, b.recording_id, b.custody_id) for b in got] == [(MISSING, "R-in", 1)]


def test_a_recording_outside_the_episode_because_of_a_wrong_clock_says_so() -> None:
    """003 art.11; 004 att.3 art.9: a recording flagged outside its episode whose times
    the dock already doubts (the recorder's clock) carries that doubt in its detail, so
    the supervisor can tell a clock from inserted footage."""
    rec = _Rec("z", 5_000, 6_000, time_doubt="start before 2000-01-01")
    (flag,) = find_breaks([rec], ["z"], Mark(), EP, False, 120_000)
    assert flag.kind == OUTSIDE_EPISODE and "start before 2000-01-01" in flag.detail
