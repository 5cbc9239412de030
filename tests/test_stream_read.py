"""READ_STREAM (PROTOCOL.md 4.5.15, 6.2a): the codec, the reference recorder over a
real pty and TCP, resuming after a break, lying recorders, and old recorders."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dock.devices.recorder_client import ProtocolViolation, RecorderClient
from dock.devices.recorder_client.errors import LinkError, RecorderRefused
from firmware_protocol.codec import MalformedMessage, decode_body
from firmware_protocol.framing import Frame, FrameDecoder, FrameKind
from firmware_protocol.messages import REPLIES, Capability, MsgType
from firmware_protocol.session import Role, Session, SessionConfig
from firmware_protocol.stream import decode_reply, reply_parts
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import ALL_CAPABILITIES
from hardware.emulator.server import EmulatorServer

SCHEMA = REPLIES[MsgType.READ_STREAM]


# ----------------------------------------------------------------------------- codec
@given(
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, (1 << 64) - 1),
    st.binary(max_size=300),
    st.booleans(),
)
def test_reply_pieces_decode_to_what_was_sent(req_id, offset, data, last) -> None:
    body = b"".join(reply_parts(req_id, offset, data, last))
    r = decode_reply(body)
    assert (r.req_id, r.offset, bytes(r.data), r.last) == (req_id, offset, data, last)
    got_id, fields = decode_body(SCHEMA, body)  # the general codec reads it the same
    assert (got_id, fields["offset"], fields["data"]) == (req_id, offset, data)
    assert bool(fields.get("last")) == last


def _general(body: bytes) -> tuple | type[Exception]:
    try:
        req_id, f = decode_body(SCHEMA, body)
    except MalformedMessage:
        return MalformedMessage
    return (req_id, f["offset"], f["data"], bool(f.get("last")))


def _fast(body: bytes) -> tuple | type[Exception]:
    try:
        r = decode_reply(body)
    except MalformedMessage:
        return MalformedMessage
    return (r.req_id, r.offset, bytes(r.data), r.last)


@given(st.binary(max_size=80))
def test_fast_decoding_accepts_and_refuses_what_the_codec_does(body) -> None:
    assert _fast(body) == _general(body)


@given(st.binary(max_size=40), st.binary(max_size=12), st.booleans())
def test_fast_decoding_of_near_miss_layouts(data, tail, last) -> None:
    """The reference layout followed by anything: same answer as the general codec."""
    body = b"".join(reply_parts(7, 100, data, last)) + tail
    assert _fast(body) == _general(body)


# ----------------------------------------------------------------------------- helpers
def read_all(c: RecorderClient, rec, offset: int = 0) -> dict[int, bytes]:
    parts: dict[int, bytes] = {}

    def sink(off: int, data) -> None:
        assert off not in parts, f"byte {off} delivered twice"
        parts[off] = bytes(data)

    c.read_recording(rec, sink, offset=offset)
    return parts


def joined(parts: dict[int, bytes]) -> bytes:
    out, pos = bytearray(), 0
    for off in sorted(parts):
        assert off == pos, "a gap or an overlap in what the sink got"
        out += parts[off]
        pos += len(parts[off])
    return bytes(out)


class CountingFirmware(RecorderFirmware):
    """The reference firmware, counting the requests it serves (per session)."""

    def __init__(self, *a, **kw) -> None:
        self.requests: list[tuple[str, dict]] = []
        super().__init__(*a, **kw)

    def _answer(self, msg):
        self.requests.append((msg.msg_type.name, dict(msg.fields)))
        return super()._answer(msg)


def swap_firmware(r, cls: type[RecorderFirmware]) -> RecorderFirmware:
    """Serve ``r``'s recorder with firmware ``cls`` on a new server of the same kind."""
    listen = "pty" if r.url.startswith("/dev/") else "tcp://127.0.0.1:0"
    r.server.stop()
    fw = cls(r.model)
    r.server = EmulatorServer(fw, listen).start()  # the fixture stops this one
    return fw


# ----------------------------------------------------------------------------- honest
@pytest.mark.parametrize("listen", ["pty", "tcp://127.0.0.1:0"])
def test_a_stream_reads_every_byte_bit_for_bit(start_recorder, listen: str) -> None:
    r = start_recorder(listen=listen, recordings=2, recording_mb=1.3)
    fw = swap_firmware(r, CountingFirmware)
    with r.client() as c:
        ident = c.open()
        assert Capability.STREAM_READ in ident.capabilities
        for rec in c.list_recordings():
            assert hashlib.sha256(joined(read_all(c, rec))).digest() == rec.sha256
    kinds = [k for k, _ in fw.requests]
    assert "READ" not in kinds and kinds.count("READ_STREAM") >= 2
    # Each stream asked where the one before it stopped: no byte asked twice.
    spans = [(f["offset"], f["length"]) for k, f in fw.requests if k == "READ_STREAM"]
    assert spans[0][0] == 0


def test_an_old_recorder_without_the_capability_is_read_with_read(start_recorder) -> None:
    caps = ALL_CAPABILITIES & ~Capability.STREAM_READ
    r = start_recorder(
        listen="tcp://127.0.0.1:0", recordings=1, recording_mb=0.6, capabilities=caps
    )
    fw = swap_firmware(r, CountingFirmware)
    with r.client() as c:
        assert Capability.STREAM_READ not in c.open().capabilities
        (rec,) = c.list_recordings()
        assert hashlib.sha256(joined(read_all(c, rec))).digest() == rec.sha256
    kinds = [k for k, _ in fw.requests]
    assert "READ_STREAM" not in kinds and "READ" in kinds


def test_a_dock_that_does_not_ask_for_streams_reads_a_new_recorder_with_read(
    start_recorder,
) -> None:
    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=1, recording_mb=0.6)
    fw = swap_firmware(r, CountingFirmware)
    with r.client() as c:
        c.use_streams = False
        assert Capability.STREAM_READ in c.open().capabilities
        (rec,) = c.list_recordings()
        assert hashlib.sha256(joined(read_all(c, rec))).digest() == rec.sha256
    kinds = [k for k, _ in fw.requests]
    assert "READ_STREAM" not in kinds and "READ" in kinds


class BreakingFirmware(CountingFirmware):
    """Goes silent once, in its first session, after ``after`` bytes of stream."""

    after = 700_000

    def _send_stream_reply(self, req_id, offset, data, last, now) -> None:
        if self.after is not None and offset + len(data) > self.after:
            self.after = None
            self.session = type(self.session)(self.session.role, self.session.config)
            self._new_session()  # the recorder lost its session: nothing more comes
            return
        super()._send_stream_reply(req_id, offset, data, last, now)


def test_a_broken_stream_resumes_at_the_last_byte_received(start_recorder) -> None:
    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=1, recording_mb=2)
    fw = swap_firmware(r, BreakingFirmware)
    with r.client(timeout=2) as c:
        c.open()
        (rec,) = c.list_recordings()
        parts = read_all(c, rec)
    assert hashlib.sha256(joined(parts)).digest() == rec.sha256
    hellos = [i for i, (k, _) in enumerate(fw.requests) if k == "HELLO"]
    assert len(hellos) == 2, "the break was not exercised"
    first = [f for k, f in fw.requests[: hellos[1]] if k == "READ_STREAM"]
    after = [f for k, f in fw.requests[hellos[1] :] if k == "READ_STREAM"]
    resumed = after[0]["offset"]
    # Resumed where the dock's checked bytes ended: inside the first session's span,
    # past byte 0, and no byte asked for twice after it.
    assert 0 < resumed <= 700_000 and resumed > first[0]["offset"]
    assert min(f["offset"] for f in after) == resumed


# ----------------------------------------------------------------------------- lying
Lie = Callable[[int, int, bytes, bool], list[tuple[int, int, bytes, bool]]]


def lying(lie: Lie) -> type[RecorderFirmware]:
    class Lying(RecorderFirmware):
        def _send_stream_reply(self, req_id, offset, data, last, now) -> None:
            for rid, off, d, end in lie(req_id, offset, bytes(data), last):
                super()._send_stream_reply(rid, off, d, end, now)

    return Lying


def after(limit: int, lie: Lie) -> Lie:
    """Honest up to ``limit`` bytes, then ``lie``."""

    def go(rid: int, off: int, data: bytes, last: bool):
        return lie(rid, off, data, last) if off >= limit else [(rid, off, data, last)]

    return go


LIES: dict[str, tuple[Lie, str]] = {
    "wrong offset": (lambda rid, o, d, e: [(rid, o + 1, d, e)], "expected the bytes at"),
    "duplicate": (lambda rid, o, d, e: [(rid, o, d, False), (rid, o, d, e)], "expected the"),
    "overlap": (
        lambda rid, o, d, e: [(rid, o, d[:-4], False), (rid, o + len(d) - 8, d[-8:], e)],
        "expected the bytes at",
    ),
    "extra bytes": (lambda rid, o, d, e: [(rid, o, d + b"x", e)], "more than asked"),
    "too long": (lambda rid, o, d, e: [(rid, o, d + d, e)], "more than asked"),
    "ends short": (lambda rid, o, d, e: [(rid, o, d, True)], "short of"),
    "empty reply": (lambda rid, o, d, e: [(rid, o, b"", False), (rid, o, d, e)], "empty reply"),
    "another request": (lambda rid, o, d, e: [(rid + 5, o, d, e)], "request"),
}


@pytest.mark.parametrize("name", list(LIES))
def test_a_lying_stream_is_a_protocol_violation_and_nothing_false_is_kept(
    start_recorder, name: str
) -> None:
    lie, words = LIES[name]
    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=1, recording_mb=0.5)
    swap_firmware(r, lying(after(100_000, lie)))
    footage = Path(r.model.recording_path("REC000001")).read_bytes()
    with r.client(timeout=3) as c:
        c.open()
        (rec,) = c.list_recordings()
        parts: dict[int, bytes] = {}
        with pytest.raises(ProtocolViolation, match=words) as exc:
            c.read_recording(rec, lambda off, d: parts.__setitem__(off, bytes(d)))
    assert "\n" not in str(exc.value) and "READ_STREAM" in str(exc.value)
    got = joined(parts)
    assert 0 < len(got) < rec.size and got == footage[: len(got)]  # only true bytes


def test_a_stream_that_stops_is_a_clear_link_error(start_recorder) -> None:
    def silent(rid, o, d, e):
        return []

    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=1, recording_mb=0.5)
    swap_firmware(r, lying(after(100_000, silent)))
    with r.client(timeout=1) as c:
        c.open()
        (rec,) = c.list_recordings()
        parts: dict[int, bytes] = {}
        with pytest.raises(LinkError) as exc:
            c.read_recording(rec, lambda off, d: parts.__setitem__(off, bytes(d)))
    assert "\n" not in str(exc.value)
    assert 0 < sum(map(len, parts.values())) < rec.size


# ----------------------------------------------------------------------------- delayed ACK
def _open_pair(window: int = 16) -> tuple[Session, Session]:
    dock = Session(Role.INITIATOR, SessionConfig(window=window))
    rec = Session(Role.RESPONDER, SessionConfig(window=window))
    dock.connect(1, 0.0)
    rec.receive(dock.outgoing(), 0.0)
    dock.receive(rec.outgoing(), 0.0)
    return dock, rec


def _acks(parts: list) -> int:
    """Frames that acknowledge (ACK, or NAK with its selective acknowledgement)."""
    frames = FrameDecoder().feed(b"".join(parts))
    kinds = (FrameKind.ACK, FrameKind.NAK)
    return sum(1 for f in frames if isinstance(f, Frame) and f.kind in kinds)


def test_in_order_acks_wait_for_half_the_window_and_no_longer() -> None:
    dock, rec = _open_pair(16)
    frames = []
    for i in range(16):
        rec.send(MsgType.READ_STREAM.reply, b"%d" % i, 0.0)
        frames.append(rec.outgoing())
    sent = []
    for f in frames:
        assert len(dock.receive(f, 0.0)) == 1
        sent.append(_acks(dock.outgoing_parts(defer_ack=True)))
    assert sent == [0] * 7 + [1] + [0] * 7 + [1]  # one ACK per half window
    rec.receive(b"", 0.0)
    dock.receive(frames[-1], 0.0)  # a duplicate: its ACK goes at once
    assert _acks(dock.outgoing_parts(defer_ack=True)) == 1


def test_an_ack_for_a_frame_out_of_order_is_never_delayed() -> None:
    dock, rec = _open_pair(16)
    first, second = [], []
    rec.send(MsgType.READ_STREAM.reply, b"a", 0.0)
    first.append(rec.outgoing())
    rec.send(MsgType.READ_STREAM.reply, b"b", 0.0)
    second.append(rec.outgoing())
    assert dock.receive(second[0], 0.0) == []  # held out of order
    assert _acks(dock.outgoing_parts(defer_ack=True)) >= 1  # with its SACK, at once
    assert len(dock.receive(first[0], 0.0)) == 2


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(1, 32))
def test_a_deferred_ack_is_sent_whenever_the_reader_would_wait(defer_each, window) -> None:
    """Whatever the reader defers, an ACK owed always goes out once it asks without
    deferring (as the dock does before any read that would wait)."""
    dock, rec = _open_pair(window)
    for defer in defer_each:
        if not rec.can_send:
            break
        rec.send(MsgType.READ_STREAM.reply, b"x", 0.0)
        dock.receive(rec.outgoing(), 0.0)
        rec.receive(b"".join(dock.outgoing_parts(defer_ack=defer)), 0.0)
    rec.receive(b"".join(dock.outgoing_parts()), 0.0)
    assert rec.in_flight == 0  # everything sent was acknowledged


def test_a_recording_erased_during_its_stream_ends_it_with_the_recorders_error(
    start_recorder,
) -> None:
    class Erasing(RecorderFirmware):
        def _send_stream_reply(self, req_id, offset, data, last, now) -> None:
            super()._send_stream_reply(req_id, offset, data, last, now)
            if offset >= 200_000 and "REC000001" in self.model.recordings:
                self._close_reading()
                self.model.erase("REC000001")

    r = start_recorder(listen="tcp://127.0.0.1:0", recordings=1, recording_mb=1)
    swap_firmware(r, Erasing)
    with r.client(timeout=3) as c:
        c.open()
        (rec,) = c.list_recordings()
        parts: dict[int, bytes] = {}
        with pytest.raises(RecorderRefused, match="NOT_FOUND"):
            c.read_recording(rec, lambda off, d: parts.__setitem__(off, bytes(d)))
    got = joined(parts)
    assert 200_000 < len(got) < rec.size
