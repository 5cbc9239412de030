"""Fuzzing the dock's side of the link (issue 9, hostile peers), bounded for CI.

(a) Arbitrary bytes and arbitrary well-formed frames into a session, and bodies
    built field by field (deeper than random bytes get) into the message codec:
    never an exception, memory bounded. (Plain random bytes into the frame decoder
    and the codec are fuzzed in test_framing.py and test_codec.py.)
(b) A recorder whose every reply may be hostile (``tests.hostile_recorder``):
    passed on, replaced by random field values of its type, one field changed to a
    random or boundary value, an ERROR with a random code, a reply of another type,
    repeated, dropped, held back (and so overtaken), or joined by unsolicited
    replies. The dock's RecorderClient must only ever return validated values or
    raise its documented exceptions (LinkError and its kinds, RecorderRefused,
    AuthenticationFailed), within its bounds on requests, entries and (virtual) time.

Examples per test: ``DOCK_FUZZ_EXAMPLES`` (default 40: the CI run is a few seconds).
A campaign: ``DOCK_FUZZ_EXAMPLES=5000 .venv/bin/pytest -q tests/test_fuzz_hostile.py
--hypothesis-show-statistics`` (docs/SECURITY.md, "Fuzzing").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dock.devices.recorder_client import (
    AuthenticationFailed,
    Bounds,
    EventLog,
    LinkError,
    RecorderClient,
    RecorderRefused,
    RecordingInfo,
    RecordingList,
    Status,
    recording_problem,
)
from firmware_protocol.codec import FieldType, MalformedMessage, Schema
from firmware_protocol.framing import FrameKind, encode_frame
from firmware_protocol.messages import REPLIES, Message, MsgType, UnknownMessage, decode
from firmware_protocol.session import Role, Session, SessionConfig, SessionEvent
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec

from .hostile_recorder import Hold, HostileFirmware, LoopTransport, Plan, VirtualClock

EXAMPLES = int(os.environ.get("DOCK_FUZZ_EXAMPLES", "40"))
SECRET = bytes(range(32))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.timeout(max(120, EXAMPLES * 3))


# ---------------------------------------------------------------------- values
_INT = {
    FieldType.U8: (0, 2**8 - 1),
    FieldType.U16: (0, 2**16 - 1),
    FieldType.U32: (0, 2**32 - 1),
    FieldType.U64: (0, 2**64 - 1),
    FieldType.I32: (-(2**31), 2**31 - 1),
    FieldType.I64: (-(2**63), 2**63 - 1),
}


def _value(f: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    if f.type in _INT:
        lo, hi = _INT[f.type]
        edges = sorted({lo, hi, 0, 1, max(lo, -1), hi // 2, min(hi, 2**31), min(hi, 10**12)})
        s: st.SearchStrategy[Any] = st.one_of(st.sampled_from(edges), st.integers(lo, hi))
    elif f.type is FieldType.BOOL:
        s = st.booleans()
    elif f.type is FieldType.STR:
        s = st.one_of(st.text(max_size=12), st.text(min_size=120, max_size=200))
    elif f.type is FieldType.BYTES:
        s = st.binary(min_size=f.size or 0, max_size=f.size or 600)
    else:
        s = values(f.nested, depth + 1)
    if f.repeated:
        s = st.lists(s, max_size=3 if depth else 140)
    return s


def values(schema: Schema, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: _value(f, depth) for f in schema.fields if f.required}
    optional = {f.name: _value(f, depth) for f in schema.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


# ---------------------------------------------------------------------- (a) session, codec
_frames = st.builds(
    encode_frame,
    st.sampled_from(list(FrameKind)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.binary(max_size=80),
)


@FUZZ
@given(
    st.sampled_from([Role.INITIATOR, Role.RESPONDER]),
    st.lists(st.one_of(st.binary(max_size=64), _frames), max_size=24),
)
def test_a_session_takes_any_bytes_and_frames_without_raising(role: Role, chunks: list) -> None:
    cfg = SessionConfig(max_payload=4096)
    s = Session(role, cfg)
    if role is Role.INITIATOR:
        s.connect(7, 0.0)
    now = 0.0
    for chunk in chunks:
        events: list[Any] = s.receive(chunk, now)
        now += 0.05
        events += s.on_timer(now)
        assert all(isinstance(e, SessionEvent) for e in events)
        s.outgoing()
        assert s._decoder.buffered <= cfg.max_payload + 64  # one frame at most


def _tlv(tag: int, raw: bytes) -> bytes:
    return bytes([tag]) + len(raw).to_bytes(4, "big") + raw


_field = st.builds(
    _tlv,
    st.integers(0, 20),
    st.one_of(
        st.binary(max_size=10),
        st.sampled_from([b"", b"\x00", b"\x01", b"\xff" * 8, b"\x00" * 32, b"\x80" * 4]),
        st.lists(st.builds(_tlv, st.integers(0, 12), st.binary(max_size=9)), max_size=4).map(
            b"".join
        ),
    ),
)


@FUZZ
@given(
    st.sampled_from([int(t.reply) if t is not MsgType.ERROR else 0xFFFF for t in REPLIES]),
    st.integers(0, 2**32 - 1),
    st.lists(_field, max_size=12),
)
def test_bodies_built_field_by_field_decode_or_raise_protocol_errors(
    wire: int, req_id: int, fields: list[bytes]
) -> None:
    body = req_id.to_bytes(4, "big") + b"".join(fields)
    try:
        msg = decode(wire, body)
    except (MalformedMessage, UnknownMessage):
        return
    assert msg.req_id == req_id and msg.is_reply


# ---------------------------------------------------------------------- (b) the client
#: Small bounds, so that the fuzzer reaches them in a few requests.
BOUNDS = Bounds(
    max_recordings=200,
    recording_count_slack=16,
    list_deadline_s=120.0,
    max_events=300,
    max_event_bytes=64 << 10,
    events_deadline_s=120.0,
    read_window_s=2.0,
    self_test_timeout_s=10.0,
)
REPLY_TIMEOUT = 15.0
#: Virtual seconds an operation may take at most: its deadline, then a reply
#: timeout and a re-opening or three on top.
TIME_BOUND = 120.0 + 4 * (REPLY_TIMEOUT + 5.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> RecorderModel:
    folder = str(tmp_path_factory.mktemp("fuzz-recorder"))
    return RecorderModel.open(
        folder, RecorderSpec(recordings=3, recording_mb=0.002, secret=SECRET, interrupted=1)
    )


ACTIONS = (
    "honest",
    "random",
    "mutate",
    "error",
    "other_type",
    "repeat",
    "drop",
    "hold",
    "unsolicited",
)


def hostile(data: st.DataObject) -> Callable[[Message | None, Message], Plan]:
    def rewrite(request: Message | None, answer: Message) -> Plan:
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        rid = answer.req_id
        if action == "honest":
            return answer
        if action == "random":
            fields = data.draw(values(REPLIES[answer.msg_type]), label="fields")
            return Message(answer.msg_type, True, rid, fields)
        if action == "mutate":
            schema = REPLIES[answer.msg_type]
            if not schema.fields:
                return answer
            f = data.draw(st.sampled_from(schema.fields), label="field")
            changed = dict(answer.fields)
            if not f.required and data.draw(st.booleans(), label="remove"):
                changed.pop(f.name, None)
            else:
                changed[f.name] = data.draw(_value(f), label="value")
            return Message(answer.msg_type, True, rid, changed)
        if action == "error":
            fields = data.draw(values(REPLIES[MsgType.ERROR]), label="error")
            return Message(MsgType.ERROR, True, rid, fields)
        if action == "other_type":
            kind = data.draw(st.sampled_from([k for k in REPLIES if k is not MsgType.ERROR]))
            return Message(kind, True, rid, data.draw(values(REPLIES[kind]), label="fields"))
        if action == "repeat":
            return [answer] * data.draw(st.integers(2, 3), label="copies")
        if action == "drop":
            return None
        if action == "hold":
            delay = data.draw(st.floats(0.0, 2 * REPLY_TIMEOUT), label="delay")
            return Hold([answer], delay=delay)
        ids = data.draw(st.lists(st.integers(0, 2**32 - 1), max_size=5), label="ids")
        return [*(Message(answer.msg_type, True, i, answer.fields) for i in ids), answer]

    return rewrite


DOCUMENTED = (LinkError, RecorderRefused, AuthenticationFailed)


def _check_status(s: Status, _: Any) -> None:
    assert 0 <= s.battery_percent <= 100
    assert 0 <= s.storage_free_bytes <= s.storage_total_bytes


def _check_list(recs: RecordingList, client: RecorderClient) -> None:
    status = client.last_status
    assert status is not None
    assert len(recs) + len(recs.refused) <= min(
        BOUNDS.max_recordings, status.recording_count + BOUNDS.recording_count_slack
    )
    assert len({r.id for r in recs}) == len(recs)
    for r in recs:
        assert isinstance(r, RecordingInfo)
        fields = {**r.__dict__}
        assert recording_problem(fields, status.storage_total_bytes, BOUNDS) is None


def _check_events(log: EventLog, client: RecorderClient) -> None:
    assert len(log.events) <= BOUNDS.max_events
    assert log.next == log.since + len(log.events)
    assert [e["index"] for e in log.events] == list(range(log.since, log.next))


@FUZZ
@given(
    st.lists(st.sampled_from(["status", "list", "events", "self_test", "read"]), max_size=4),
    st.data(),
)
def test_a_hostile_recorder_gets_only_validated_values_or_documented_errors(
    model: RecorderModel, ops: list[str], data: st.DataObject
) -> None:
    clock = VirtualClock()
    armed = [False]
    lie = hostile(data)

    def rewrite(request: Message | None, answer: Message) -> Plan:
        return lie(request, answer) if armed[0] else answer

    firmware = HostileFirmware(model, rewrite, monotonic=clock)
    transport = LoopTransport(firmware, clock, latency=0.01)
    client = RecorderClient(transport, monotonic=clock, bounds=BOUNDS, timeout=REPLY_TIMEOUT)
    client.open()
    client.authenticate(SECRET)
    honest_rec = RecordingInfo.from_fields(
        {**model.ordered_recordings()[0].__dict__, "sequence": None}
    )
    armed[0] = True
    for op in [*ops, "status"]:
        before_t, before_n = clock.now, sum(firmware.requests.values())
        try:
            _run(op, client, honest_rec)
            event(f"{op}: returned")
        except DOCUMENTED as exc:
            event(f"{op}: {type(exc).__name__}")
        assert clock.now - before_t <= TIME_BOUND, op
        requests = sum(firmware.requests.values()) - before_n
        assert requests <= _request_bound(op), (op, requests)
        assert len(client._replies) <= BOUNDS.max_pending_replies


def _run(op: str, client: RecorderClient, rec: RecordingInfo) -> None:
    if op == "status":
        _check_status(client.status(), client)
    elif op == "list":
        _check_list(client.list_recordings(), client)
    elif op == "events":
        _check_events(client.read_events(0), client)
    elif op == "self_test":
        assert isinstance(client.self_test()["passed"], bool)
    else:
        got: list[tuple[int, int]] = []

        def sink(offset: int, chunk: bytes) -> None:
            assert offset == (got[-1][0] + got[-1][1] if got else 0), "out of order"
            assert offset + len(chunk) <= rec.size, "beyond the recording"
            got.append((offset, len(chunk)))

        assert client.read_recording(rec, sink) == rec.size
        assert sum(n for _, n in got) == rec.size


def _request_bound(op: str) -> int:
    reopen = 4 * 4  # a re-opening costs a HELLO and an authentication, up to 4 times
    return {
        "status": 1,
        "list": 1 + BOUNDS.max_recordings + 16 + reopen,
        "events": 1 + BOUNDS.max_events + 1,
        "self_test": 1,
        # READ is bounded by time (the goodput floor), not count: at 10 ms a round
        # trip, 14 requests in flight, a few windows.
        "read": 14 * int(TIME_BOUND / 0.01) + reopen,
    }[op] + 1  # a STATUS the listing or event read asks first


@FUZZ
@given(
    st.lists(st.sampled_from(["set_time", "assign", "erase", "status"]), max_size=3),
    st.data(),
)
def test_a_hostile_handshake_and_privileged_replies_raise_only_documented_errors(
    model: RecorderModel, ops: list[str], data: st.DataObject
) -> None:
    """HELLO, AUTH_CHALLENGE, AUTH_PROVE and the privileged requests' replies lie too."""
    clock = VirtualClock()
    firmware = HostileFirmware(model, hostile(data), monotonic=clock)
    transport = LoopTransport(firmware, clock, latency=0.01)
    client = RecorderClient(transport, monotonic=clock, bounds=BOUNDS, timeout=REPLY_TIMEOUT)
    try:
        client.open()
        client.authenticate(SECRET)
    except DOCUMENTED as exc:
        event(f"open/authenticate: {type(exc).__name__}")
        return
    event("open/authenticate: returned")
    for op in ops:
        before = clock.now
        try:
            if op == "set_time":
                assert isinstance(client.set_time(1_750_000_000.0, "fuzz"), float)
            elif op == "assign":
                client.assign("1001", "Wang Wei", "Traffic 3")
            elif op == "erase":  # a wrong hash: an honest recorder refuses, nothing goes
                client.erase(model.ordered_recordings()[0].id, bytes(32))
            else:
                _check_status(client.status(), client)
            event(f"{op}: returned")
        except DOCUMENTED as exc:
            event(f"{op}: {type(exc).__name__}")
        assert clock.now - before <= TIME_BOUND, op
    assert len(model.recordings) == 3
