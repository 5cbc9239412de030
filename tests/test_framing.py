"""The frame decoder: never raises, never hands up a damaged frame, always resyncs."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol.framing import (
    ABSOLUTE_MAX_PAYLOAD,
    START,
    Frame,
    FrameDecoder,
    FrameError,
    FrameErrorCode,
    FrameKind,
    crc16_ccitt_false,
    encode_frame,
)

frames_st = st.builds(
    lambda kind, seq, ack, t, p: (kind, seq, ack, t, p),
    st.sampled_from(list(FrameKind)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**16 - 1),
    st.binary(max_size=300),
)


def frames_of(items: list[Frame | FrameError]) -> list[Frame]:
    return [i for i in items if isinstance(i, Frame)]


def test_crc16_catalogue_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@given(frames_st)
def test_roundtrip_one_frame(f: tuple) -> None:
    kind, seq, ack, t, payload = f
    out = FrameDecoder().feed(encode_frame(kind, seq, ack, t, payload))
    assert out == [Frame(kind, seq, ack, t, payload)]


@given(st.lists(frames_st, max_size=8), st.lists(st.binary(max_size=40), max_size=9), st.data())
def test_noise_between_frames_is_skipped(frames: list, noises: list, data: st.DataObject) -> None:
    """Garbage that contains no sync pattern never costs a frame."""
    # noise without 0xB7 holds no START; pad so every gap has an entry
    noises = [n.replace(b"\xb7", b"") for n in noises] + [b""] * (len(frames) + 1)
    stream = b""
    for i, f in enumerate(frames):
        stream += noises[i] + encode_frame(*f)
    stream += noises[len(frames)]
    dec = FrameDecoder()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    out: list[Frame | FrameError] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += dec.feed(stream[prev:c])
        prev = c
    assert frames_of(out) == [Frame(*f) for f in frames]


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_any_bytes_give_frames_or_errors_never_an_exception(blob: bytes, step: int) -> None:
    dec = FrameDecoder(max_payload=4096)
    for i in range(0, len(blob), step):
        for item in dec.feed(blob[i : i + step]):
            assert isinstance(item, Frame | FrameError)
    # bounded memory: never more than one maximum frame buffered
    assert dec.buffered <= 4096 + 26


@settings(max_examples=200)
@given(st.lists(frames_st, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_corruption_never_yields_a_frame_that_was_not_sent(
    frames: list, rnd: random.Random
) -> None:
    sent = [Frame(*f) for f in frames]
    stream = bytearray(b"".join(encode_frame(*f) for f in frames))
    for _ in range(rnd.randint(1, 6)):
        stream[rnd.randrange(len(stream))] ^= 1 << rnd.randrange(8)
    got = frames_of(FrameDecoder().feed(bytes(stream)))
    for g in got:
        assert g in sent


def test_damaged_payload_reports_its_sequence_number() -> None:
    good = encode_frame(FrameKind.MSG, 7, 3, 0x8006, b"footage" * 10)
    bad = bytearray(good)
    bad[40] ^= 0x10
    out = FrameDecoder().feed(bytes(bad) + good)
    assert isinstance(out[0], FrameError) and out[0].code is FrameErrorCode.BAD_CRC
    assert out[0].seq == 7
    assert frames_of(out) == [Frame(FrameKind.MSG, 7, 3, 0x8006, b"footage" * 10)]
    assert out[1].code is FrameErrorCode.NOISE  # the damaged body, rescanned


def test_frames_after_a_damaged_one_are_all_found() -> None:
    frames = [encode_frame(FrameKind.MSG, i, 0, 0x8006, bytes([i]) * 300) for i in range(1, 5)]
    stream = bytearray(b"".join(frames))
    stream[100] ^= 0x40  # inside the first payload
    got = frames_of(FrameDecoder().feed(bytes(stream)))
    assert [f.seq for f in got] == [2, 3, 4]


def test_cut_frame_then_good_frame() -> None:
    a = encode_frame(FrameKind.MSG, 1, 0, 2, b"a" * 100)
    b = encode_frame(FrameKind.MSG, 2, 0, 2, b"b" * 100)
    out = FrameDecoder().feed(a[:60] + b)
    assert frames_of(out) == [Frame(FrameKind.MSG, 2, 0, 2, b"b" * 100)]
    cut = [o for o in out if isinstance(o, FrameError)]
    assert cut[0].code is FrameErrorCode.BAD_END and cut[0].seq == 1  # so it can be NAKed


def test_junk_after_a_start_marker_is_noise_with_bounded_memory() -> None:
    dec = FrameDecoder(max_payload=1024)
    out = dec.feed(START + b"\x01" * 5000)
    assert [o.code for o in out if isinstance(o, FrameError)] == [
        FrameErrorCode.BAD_HEADER_CRC,
        FrameErrorCode.NOISE,
    ]
    assert dec.buffered < 10
    good = encode_frame(FrameKind.ACK, 0, 1, 0)
    assert frames_of(dec.feed(b"\x02" * 100 + good)) == [Frame(FrameKind.ACK, 0, 1, 0, b"")]


def test_declared_length_above_limit_is_refused() -> None:
    dec = FrameDecoder(max_payload=1024)
    out = dec.feed(encode_frame(FrameKind.MSG, 1, 0, 2, b"z" * 2048))
    assert [o.code for o in out] == [FrameErrorCode.TOO_LONG, FrameErrorCode.NOISE]
    assert dec.buffered < 10


def test_encoder_refuses_payload_above_absolute_limit() -> None:
    try:
        encode_frame(FrameKind.MSG, 1, 0, 2, bytes(ABSOLUTE_MAX_PAYLOAD + 1))
    except ValueError:
        return
    raise AssertionError("oversize payload was encoded")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(FrameDecoder.LEND, 3 * FrameDecoder.LEND), min_size=1, max_size=12),
    st.integers(1, 70_000),
    st.integers(0, 2**32),
)
def test_long_payloads_handed_up_without_a_copy_are_never_overwritten(
    sizes: list[int], step: int, seed: int
) -> None:
    """Footage handed up as a view stays bit for bit what was sent while it is held,
    however the bytes arrive (read into the decoder's own buffer, or fed), and
    whatever the holder lets go of meanwhile; a payload is never writable."""
    rnd = random.Random(seed)
    sent = [rnd.randbytes(n) for n in sizes]
    wire = b"".join(encode_frame(FrameKind.MSG, i + 1, 0, 0x8006, p) for i, p in enumerate(sent))
    dec = FrameDecoder()
    got: list[Frame] = []
    held: list[tuple[bytes, bytes | memoryview]] = []
    pos = 0
    while pos < len(wire):
        if rnd.random() < 0.5:
            room = dec.buffer(step)
            n = min(len(room), len(wire) - pos)
            room[:n] = wire[pos : pos + n]
            room.release()
            new = frames_of(dec.commit(n))
        else:
            n = min(step, len(wire) - pos)
            new = frames_of(dec.feed(wire[pos : pos + n]))
        pos += n
        for f in new:
            i = len(got)
            got.append(f)
            assert f.payload == sent[i]
            assert isinstance(f.payload, bytes) or f.payload.readonly
            if rnd.random() < 0.5:
                held.append((sent[i], f.payload))
        got = [Frame(f.kind, f.seq, f.ack, f.msg_type, b"") for f in got]  # let go
        for want, payload in held:
            assert payload == want
    assert len(got) == len(sent)
    assert len(dec._spares) <= FrameDecoder.SPARES
