"""Issue 9, hostile peers: a recorder that answers within the protocol but lies must
cost the dock a bounded number of round trips, bytes, memory and time.

Each test runs the dock's RecorderClient against ``tests.hostile_recorder``: the
reference firmware with its replies rewritten, in process and in virtual time
(timeouts cost no wall-clock time). A guard closes the link after far more requests
than the bound allows, so code without the bound fails instead of hanging.
"""

from __future__ import annotations

import pytest

from dock.devices.recorder_client import (
    DEFAULT_BOUNDS,
    Bounds,
    LinkError,
    ProtocolViolation,
    RecorderClient,
    RecordingInfo,
    Stalled,
)
from firmware_protocol.messages import Message, MsgType
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec

from .conftest import SECRET
from .hostile_recorder import (
    Hold,
    HostileFirmware,
    LoopTransport,
    Plan,
    Rewrite,
    VirtualClock,
    answer_with,
    endless_events,
    fields_of,
    honest,
    one_byte_reads,
)

pytestmark = pytest.mark.timeout(120)


class Rig:
    """A client and a hostile firmware joined by a LoopTransport, with a guard."""

    def __init__(
        self,
        model: RecorderModel,
        rewrite: Rewrite = honest,
        guard: int = 2_000,
        latency: float = 0.0,
        bounds: Bounds | None = None,
    ) -> None:
        self.clock = VirtualClock()
        self.guard = guard

        def guarded(request: Message | None, answer: Message) -> Plan:
            if sum(self.firmware.requests.values()) > guard:
                self.transport.closed = True  # the code under test did not stop itself
            return rewrite(request, answer)

        self.firmware = HostileFirmware(model, guarded, monotonic=self.clock)
        self.transport = LoopTransport(self.firmware, self.clock, latency=latency)
        self.client = RecorderClient(self.transport, monotonic=self.clock, bounds=bounds)
        self.client.open()

    def requests(self, msg_type: MsgType) -> int:
        return self.firmware.requests[msg_type]


@pytest.fixture
def model(tmp_path):
    def make(**spec: object) -> RecorderModel:
        spec.setdefault("recordings", 3)
        spec.setdefault("recording_mb", 0.02)
        spec.setdefault("secret", SECRET)
        return RecorderModel.open(str(tmp_path / "rec"), RecorderSpec(**spec))  # type: ignore[arg-type]

    return make


# ---------------------------------------------------------------------- 1. EVENTS
def test_an_event_log_that_never_ends_is_read_only_as_far_as_status_announced(model) -> None:
    rig = Rig(model(), answer_with(MsgType.EVENTS, endless_events))
    announced = rig.client.status().event_count
    assert announced is not None and announced < 128
    log = rig.client.read_events(0)
    assert rig.requests(MsgType.EVENTS) == 1  # one page covers what STATUS announced
    assert log.next == len(log.events) == 128 and log.complete


def test_an_event_log_that_never_ends_stops_at_the_hard_cap(model) -> None:
    def lying_status(request: Message, answer: Message) -> Plan:
        return fields_of(answer, event_count=2**32 - 1)

    def rewrite(request: Message | None, answer: Message) -> Plan:
        if request is not None and request.msg_type is MsgType.STATUS:
            return lying_status(request, answer)
        return answer_with(MsgType.EVENTS, endless_events)(request, answer)

    rig = Rig(model(), rewrite, guard=400)
    events = rig.client.events()  # today's interface, too
    cap = DEFAULT_BOUNDS.max_events
    assert len(events) == cap
    assert rig.requests(MsgType.EVENTS) == -(-cap // 128)
    log = rig.client.read_events(0)
    assert not log.complete and log.next == cap


@pytest.mark.parametrize(
    "lie",
    [
        lambda since, evs: {"next": since + len(evs) + 1, "events": evs},  # skips one
        lambda since, evs: {"next": since, "events": evs},  # does not advance
        lambda since, evs: {"next": since + len(evs), "events": evs[:1] * 3},  # wrong index
    ],
    ids=["next-skips", "next-stuck", "indexes-repeat"],
)
def test_event_pages_that_do_not_add_up_are_refused(model, lie) -> None:
    def rewrite(request: Message, answer: Message) -> Plan:
        since = request.fields.get("since", 0)
        return fields_of(answer, **lie(since, answer.fields["events"]))

    rig = Rig(model(), answer_with(MsgType.EVENTS, rewrite))
    with pytest.raises(ProtocolViolation, match="EVENTS"):
        rig.client.read_events(0)
    assert rig.requests(MsgType.EVENTS) == 1


def test_a_long_honest_event_log_is_read_from_the_cursor_on(model) -> None:
    m = model()
    for i in range(3 * 128):
        m.log(1, detail=f"boot {i}")
    rig = Rig(m)
    first = rig.client.read_events(0)
    assert first.complete and first.next == len(m.state["events"]) == len(first.events)
    m.log(3, recording_id="REC9")
    rig.client.status()  # what the next read is bounded by
    pages = rig.requests(MsgType.EVENTS)
    again = rig.client.read_events(first.next)
    assert [e["recording_id"] for e in again.events] == ["REC9"]
    assert rig.requests(MsgType.EVENTS) - pages == 1


# ---------------------------------------------------------------------- 3. LIST_RECORDINGS
def test_a_recording_list_whose_total_lies_is_refused_at_once(model) -> None:
    template: list[dict] = []

    def one_a_page(request: Message, answer: Message) -> Plan:
        template.extend(answer.fields["recordings"][: 1 - len(template)])
        start = request.fields.get("start", 0)
        made = {**template[0], "id": f"FAKE{start}", "sequence": start}
        return fields_of(answer, total=50_000, recordings=[made])

    rig = Rig(model(), answer_with(MsgType.LIST_RECORDINGS, one_a_page), guard=500)
    with pytest.raises(ProtocolViolation, match="50000 recordings"):
        rig.client.list_recordings()
    assert rig.requests(MsgType.LIST_RECORDINGS) == 1


def test_a_recording_list_that_repeats_its_page_is_refused(model) -> None:
    m = model()
    page0: list[dict] = []

    def repeat(request: Message, answer: Message) -> Plan:
        if not page0:
            page0.extend(answer.fields["recordings"][:1])
        return fields_of(answer, recordings=list(page0))

    rig = Rig(m, answer_with(MsgType.LIST_RECORDINGS, repeat), guard=500)
    with pytest.raises(ProtocolViolation, match="twice"):
        rig.client.list_recordings()
    assert rig.requests(MsgType.LIST_RECORDINGS) == 2


def test_a_recording_list_longer_than_status_announced_is_refused(model) -> None:
    slack = DEFAULT_BOUNDS.recording_count_slack
    rig = Rig(model(recordings=slack + 2, recording_mb=0.001))

    def status_says_one(request: Message, answer: Message) -> Plan:
        return fields_of(answer, recording_count=1)

    rig.firmware.rewrite = answer_with(MsgType.STATUS, status_says_one)
    rig.client.status()
    with pytest.raises(ProtocolViolation, match="STATUS said 1"):
        rig.client.list_recordings()
    rig.firmware.rewrite = honest
    rig.client.status()
    assert len(rig.client.list_recordings()) == slack + 2


# ---------------------------------------------------------------------- 4. impossible values
BASE = {
    "id": "REC1",
    "start_ms": 1_700_000_000_000,
    "end_ms": 1_700_000_060_000,
    "size": 1000,
    "sha256": bytes(32),
}


@pytest.mark.parametrize(
    "change, why",
    [
        ({"size": 2**64 - 1}, "size"),
        ({"size": (1 << 40) + 1}, "size"),
        ({"start_ms": 2**63 - 1}, "start"),
        ({"start_ms": -1}, "start"),
        ({"end_ms": 253_402_300_800_000}, "end"),  # the year 10000
        ({"id": ""}, "id"),
        ({"id": "R" * 129}, "id"),
        ({"id": "录" * 43}, "id"),  # 129 bytes of UTF-8
        ({"previous_id": "P" * 200}, "previous_id"),
        ({"officer_id": "O" * 200}, "officer_id"),
    ],
)
def test_impossible_recording_values_are_refused_at_decode(change, why) -> None:
    with pytest.raises(ProtocolViolation, match=why):
        RecordingInfo.from_fields({**BASE, **change})


@pytest.mark.parametrize(
    "change, why",
    [
        ({"start_ms": 0, "end_ms": 60_000}, "start"),  # a clock reset to 1970
        ({"start_ms": 900_000_000_000}, "start"),  # 1998
        ({"end_ms": 4_200_000_000_000}, "end"),  # 2103
        ({"end_ms": 1_699_999_999_999}, "end"),  # before its start
    ],
)
def test_doubtful_times_are_kept_and_marked_not_refused(change, why) -> None:
    """The footage is real even when the recorder's clock is not: offloaded, marked."""
    rec = RecordingInfo.from_fields({**BASE, **change})
    assert rec.time_doubt is not None and why in rec.time_doubt
    assert RecordingInfo.from_fields(BASE).time_doubt is None


def test_a_recording_larger_than_the_recorders_storage_is_refused() -> None:
    assert RecordingInfo.from_fields(BASE, storage_total=1000).size == 1000
    with pytest.raises(ProtocolViolation, match="storage"):
        RecordingInfo.from_fields(BASE, storage_total=999)


def test_a_refused_recording_is_reported_and_the_others_listed(model) -> None:
    def one_huge(request: Message, answer: Message) -> Plan:
        recs = [dict(r) for r in answer.fields["recordings"]]
        recs[1]["size"] = 2**64 - 1
        return fields_of(answer, recordings=recs)

    rig = Rig(model(recordings=3), answer_with(MsgType.LIST_RECORDINGS, one_huge))
    recs = rig.client.list_recordings()
    assert [r.id for r in recs] == ["REC000001", "REC000003"]
    ((rid, reason),) = [(x.recording_id, x.reason) for x in recs.refused]
    assert rid == "REC000002" and "size" in reason


# ---------------------------------------------------------------------- 2. READ goodput
def test_one_byte_reads_fail_with_a_clear_error_once_goodput_falls_below_the_floor(
    model,
) -> None:
    bounds = Bounds(read_min_bytes_per_s=4096, read_window_s=2.0)
    rig = Rig(
        model(recordings=1, recording_mb=0.25),
        answer_with(MsgType.READ, one_byte_reads),
        guard=20_000,
        latency=0.005,
        bounds=bounds,
    )
    (rec,) = rig.client.list_recordings()
    got = bytearray()
    with pytest.raises(Stalled, match="bytes/s") as exc:
        rig.client.read_recording(rec, lambda off, data: got.extend(data))
    assert "\n" not in str(exc.value)
    assert 0 < len(got) < rec.size
    assert rig.transport.closed is False  # the bound, not the guard, ended it


def test_an_honest_read_over_a_slow_line_keeps_going(model) -> None:
    bounds = Bounds(read_min_bytes_per_s=4096, read_window_s=2.0)
    rig = Rig(model(recordings=1, recording_mb=0.25), latency=0.05, bounds=bounds)
    (rec,) = rig.client.list_recordings()
    assert rig.client.read_recording(rec, lambda off, data: None) == rec.size


def test_read_replies_longer_than_asked_are_refused(model) -> None:
    def longer(request: Message, answer: Message) -> Plan:
        return fields_of(answer, data=answer.fields["data"] + b"x")

    rig = Rig(model(recordings=1), answer_with(MsgType.READ, longer))
    (rec,) = rig.client.list_recordings()
    with pytest.raises(ProtocolViolation, match="READ"):
        rig.client.read_recording(rec, lambda off, data: None)


# ---------------------------------------------------------------------- replies themselves
def test_a_reply_of_another_type_is_refused(model) -> None:
    def swap(request: Message, answer: Message) -> Plan:
        return Message(MsgType.SELF_TEST, True, answer.req_id, {"passed": True, "items": []})

    rig = Rig(model(), answer_with(MsgType.STATUS, swap))
    with pytest.raises(ProtocolViolation, match="STATUS"):
        rig.client.status()


def test_unsolicited_replies_do_not_pile_up(model) -> None:
    def flood(request: Message, answer: Message) -> Plan:
        extra = [Message(MsgType.STATUS, True, 10_000 + i, answer.fields) for i in range(500)]
        return [*extra, answer]

    rig = Rig(model(), answer_with(MsgType.STATUS, flood))
    for _ in range(3):
        rig.client.status()
    assert len(rig.client._replies) <= 64


@pytest.mark.parametrize(
    "change",
    [{"battery_percent": 101}, {"storage_free": 2**40, "storage_total": 2**30}],
    ids=["battery", "storage"],
)
def test_impossible_status_values_are_refused(model, change) -> None:
    rig = Rig(model(), answer_with(MsgType.STATUS, lambda q, a: fields_of(a, **change)))
    with pytest.raises(ProtocolViolation, match="STATUS"):
        rig.client.status()


# ---------------------------------------------------------------------- 6. SELF_TEST
def test_a_self_test_slower_than_its_bound_fails(model) -> None:
    from dock.devices.recorder_client import SELF_TEST_TIMEOUT_S

    slow = SELF_TEST_TIMEOUT_S + 1
    rig = Rig(model(), answer_with(MsgType.SELF_TEST, lambda q, a: Hold([a], delay=slow)))
    assert rig.client.timeout > slow  # the bound is the self-test's own, not the reply's
    start = rig.clock.now
    with pytest.raises(Stalled, match="SELF_TEST"):
        rig.client.self_test()
    assert rig.clock.now - start == pytest.approx(SELF_TEST_TIMEOUT_S, abs=0.5)


def test_a_self_test_within_its_bound_passes(model) -> None:
    from dock.devices.recorder_client import SELF_TEST_TIMEOUT_S

    quick = SELF_TEST_TIMEOUT_S - 1
    rig = Rig(model(), answer_with(MsgType.SELF_TEST, lambda q, a: Hold([a], delay=quick)))
    assert rig.client.self_test()["passed"] in (True, False)


def test_every_failure_here_is_a_link_error() -> None:
    assert issubclass(ProtocolViolation, LinkError) and issubclass(Stalled, LinkError)


def test_an_impossible_recording_stays_on_the_device_and_the_others_are_offloaded(
    make_dock,
) -> None:
    from dock.domain.slot_state import SlotState

    svc, recs = make_dock({"battery_percent": 95.0, "recordings": 3, "recording_mb": 0.1})
    model = recs[0].model
    huge, forever, fine = model.ordered_recordings()
    huge.size = 2**64 - 1  # blocked every offload as "not enough room"
    forever.start_ms = 2**63 - 1  # made `dock archive list` crash ever after
    svc.sweep()
    assert {e["recording_id"] for e in svc.store.archive_entries()} == {fine.id}
    assert set(model.recordings) == {huge.id, forever.id}  # never erased
    refused = [e for e in svc.audit.entries() if e.kind == "offload_failed"]
    assert all(e.data.get("refused") for e in refused)  # headquarters hears of them too
    assert {e.data["recording"] for e in refused} == {huge.id, forever.id}
    assert any(e.data["error"].startswith("refused: size") for e in refused)
    assert svc.slot_status["1"].state is SlotState.FAULT  # the footage waits for a person
    assert svc.views["1"].snapshot is None or svc.views["1"].snapshot.recordings_pending


# ---------------------------------------------------------------------- 1. gaps, in turns
@pytest.fixture
def ledger(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dock.storage.audit import AuditLog
    from dock.storage.store import Store

    store = Store(str(tmp_path / "dock.db"))
    audit = AuditLog(str(tmp_path / "audit.db"), Ed25519PrivateKey.generate(), "DOCK-T")
    store.add_officer("1001", "Wang Wei", "Traffic 3", "246810")
    yield store, audit
    audit.close()
    store.close()


def _custody(store, serial: str, out_ms: int, in_ms: int):
    from dock.storage.store import Store

    now = [out_ms / 1000]
    clocked = Store(store.path, clock=lambda: now[0])
    if clocked.device(serial) is None:
        clocked.enrol_device(serial, "BWC-EMU-1", "1.4.2", SECRET)
    clocked.open_custody(serial, "1001", "1")
    now[0] = in_ms / 1000
    closed = clocked.close_custody(serial, "1")
    clocked.close()
    return closed


def _interrupted(m: RecorderModel, at_ms: int, rid: str) -> None:
    from firmware_protocol.messages import EventKind, StopReason

    m._append_event(at_ms - 60_000, EventKind.RECORD_START, recording_id=rid)
    m._append_event(at_ms, EventKind.INTERRUPTED, reason=int(StopReason.BATTERY), recording_id=rid)


def test_gaps_at_the_end_of_a_long_event_log_are_found_and_the_log_read_in_turns(
    model, ledger
) -> None:
    from dock.evidence.continuity import MISSING
    from dock.evidence.gaps import INTERRUPTED, GapRegister, scan_episode
    from firmware_protocol.messages import EventKind

    store, audit = ledger
    m = model(recordings=0)
    t0 = 1_750_000_000_000
    for i in range(1000):  # years of an honest log before this dock ever saw it
        m._append_event(t0 - 10**9 + i, EventKind.POWER_ON)
    _interrupted(m, t0 + 3_600_000, "REC9")
    rig = Rig(m, bounds=Bounds(max_events=300))
    rig.client.authenticate(SECRET)
    first = _custody(store, m.serial, t0, t0 + 8 * 3_600_000)
    # the gap, and the recording the log names that the recorder no longer holds (a
    # continuity flag: deleted before docking? REQUIREMENTS §4)
    assert scan_episode(rig.client, store, audit, m.serial, first) == 2
    assert rig.requests(MsgType.EVENTS) <= 3  # the tail, not the whole log

    t1 = t0 + 24 * 3_600_000  # the next shift: only what came since is read
    _interrupted(m, t1 + 3_600_000, "REC10")
    rig.client.status()
    second = _custody(store, m.serial, t1, t1 + 8 * 3_600_000)
    pages = rig.requests(MsgType.EVENTS)
    assert scan_episode(rig.client, store, audit, m.serial, second) == 2
    assert rig.requests(MsgType.EVENTS) - pages == 1
    assert scan_episode(rig.client, store, audit, m.serial, first) == 0  # nothing twice

    m.state["events"] = []  # the recorder's log restarted (a factory reset)
    t2 = t1 + 24 * 3_600_000
    _interrupted(m, t2 + 3_600_000, "REC11")
    rig.client.status()
    third = _custody(store, m.serial, t2, t2 + 8 * 3_600_000)
    assert scan_episode(rig.client, store, audit, m.serial, third) == 2
    items = GapRegister(store, audit).list_items("1001")
    assert [i.recording_id for i in items if i.kind == INTERRUPTED] == ["REC9", "REC10", "REC11"]
    assert [i.recording_id for i in items if i.kind == MISSING] == ["REC9", "REC10", "REC11"]


# ---------------------------------------------------------------------- 6. timing, as written
def _protocol_md() -> str:
    import pathlib

    import firmware_protocol

    return (pathlib.Path(firmware_protocol.__file__).parent / "PROTOCOL.md").read_text()


def test_the_reply_timeout_is_the_one_protocol_md_states_and_the_daemon_uses(make_dock) -> None:
    import re

    from dock.devices.recorder_client import REPLY_TIMEOUT_S

    stated = re.search(
        r"waits\s+at\s+most\s+(\d+)\s+s\s+for\s+the\s+reply\s+to\s+each\s+request", _protocol_md()
    )
    assert stated is not None and float(stated.group(1)) == REPLY_TIMEOUT_S
    svc, _ = make_dock({"battery_percent": 95.0})
    with svc.access.session("1") as client:
        assert client.timeout == REPLY_TIMEOUT_S  # READ, STATUS, ... in sweeps and offloads


def test_protocol_md_bounds_the_self_test_as_the_dock_enforces_it() -> None:
    import re

    from dock.devices.recorder_client import SELF_TEST_TIMEOUT_S

    section = _protocol_md().split("#### 4.5.9 SELF_TEST")[1].split("####")[0]
    stated = re.search(r"MUST\s+answer\s+within\s+(\d+)\s+s", section)
    assert stated is not None and float(stated.group(1)) == SELF_TEST_TIMEOUT_S


@pytest.mark.parametrize("msg_type", [MsgType.HELLO, MsgType.AUTH_CHALLENGE, MsgType.AUTH_PROVE])
def test_a_handshake_answered_with_another_reply_type_is_a_protocol_violation(
    model, msg_type
) -> None:
    # Found by tests/test_fuzz_hostile.py: a KeyError escaped from the re-opening of
    # a session in the middle of a read.
    def swap(request: Message, answer: Message) -> Plan:
        return Message(MsgType.ASSIGN, True, answer.req_id, {})

    clock = VirtualClock()
    firmware = HostileFirmware(model(), answer_with(msg_type, swap), monotonic=clock)
    client = RecorderClient(LoopTransport(firmware, clock), monotonic=clock)
    with pytest.raises(ProtocolViolation, match="not the reply asked for"):
        client.open()
        client.authenticate(SECRET)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"serial": ""}, "serial"),
        ({"serial": "S" * 65}, "serial"),
        ({"model": "M" * 129}, "model"),
        ({"firmware": "F" * 129}, "firmware"),
        ({"version": 7}, "version"),
    ],
)
def test_an_impossible_hello_is_refused(change, why) -> None:
    """Issue 9: HELLO's serial names files, slots and audit entries: bounded, printable."""
    from dock.devices.recorder_client import hello_problem

    hello = {"version": 2, "serial": "EMU0001", "model": "M", "firmware": "1", "capabilities": 0}
    assert hello_problem(hello) is None
    problem = hello_problem({**hello, **change})
    assert problem is not None and why in problem
