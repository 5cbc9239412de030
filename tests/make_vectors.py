"""Generate ``firmware_protocol/vectors/vectors.json`` from the real encoder.

Run ``.venv/bin/python tests/make_vectors.py`` after any change to the protocol
code and commit the result; ``tests/test_vectors.py`` fails while the committed
file differs from what this script produces. Everything is fixed (session ids,
nonces, keys, clock readings), so the output is byte-for-byte reproducible.

``--dump NAME`` prints the annotated hex dump of one valid frame vector, as used
for the worked examples in PROTOCOL.md section 7.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import hmac
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dock.devices.recorder_client import dock_session_config
from firmware_protocol import auth
from firmware_protocol.codec import FIELD_HEAD, REQ_ID, FieldType, MalformedMessage, Schema
from firmware_protocol.framing import (
    ABSOLUTE_MAX_PAYLOAD,
    END,
    FRAME_VERSION,
    HEADER,
    HEADER_SIZE,
    OVERHEAD,
    START,
    TRAILER_SIZE,
    Frame,
    FrameDecoder,
    FrameError,
    FrameKind,
    crc16_ccitt_false,
    encode_frame,
)
from firmware_protocol.messages import (
    PROTOCOL_VERSION,
    REPLY_BIT,
    Capability,
    ErrorCode,
    EventKind,
    FaultFlag,
    Message,
    MsgType,
    RecordingFlag,
    StopReason,
    UnknownMessage,
    decode,
    encode,
    error,
    reply,
    request,
    schema_for,
)
from firmware_protocol.session import SYN_PAYLOAD, Role, Session, SessionConfig
from firmware_protocol.stream import reply_parts
from hardware.emulator.recorder import MAX_READ

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "firmware_protocol" / "vectors" / "vectors.json"

# ----------------------------------------------------------------- fixed inputs
SESSION_ID = 0x5EED0001
SERIAL = "EMU0001"
SECRET = bytes(range(0x00, 0x20))
HOST_NONCE = bytes(range(0x20, 0x40))
DEVICE_NONCE = bytes(range(0x40, 0x60))
DEVICE_KEY_SEED = bytes(range(0x60, 0x80))
#: Ephemeral X25519 private keys of the re-keying ENROL in the conversation.
HOST_X25519 = bytes(range(0x80, 0xA0))
DEVICE_X25519 = bytes(range(0xC0, 0xE0))
#: Recording REC000001: 4 KiB whose bytes 0xB0..0xBF include 0xB7, the first byte of both
#: markers (the READ example shows that payload bytes are sent unchanged).
FOOTAGE = bytes(range(256)) * 16
FOOTAGE_SHA256 = hashlib.sha256(FOOTAGE).digest()
READ_OFFSET, READ_LENGTH = 0xB0, 16
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RECORDER_CONFIG = SessionConfig(max_payload=MAX_READ + 1024, window=16)


def _device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(DEVICE_KEY_SEED)


def _x25519_public(seed: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def _session_key() -> bytes:
    return auth.session_key(SECRET, SERIAL, SESSION_ID, HOST_NONCE, DEVICE_NONCE)


def _public_key() -> bytes:
    return (
        _device_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


# ----------------------------------------------------------------- JSON helpers
def to_json(value: Any) -> Any:
    """Decoded field values as JSON: bytes become lowercase hex, the rest stays."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def from_json(schema: Schema, fields: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`to_json`, guided by the schema (hex back to bytes)."""
    specs = schema.by_name()
    out: dict[str, Any] = {}
    for name, value in fields.items():
        spec = specs[name]
        items = value if spec.repeated else [value]
        conv = []
        for item in items:
            if spec.type is FieldType.BYTES:
                conv.append(bytes.fromhex(item))
            elif spec.type is FieldType.NESTED:
                assert spec.nested is not None
                conv.append(from_json(spec.nested, item))
            else:
                conv.append(item)
        out[name] = conv if spec.repeated else conv[0]
    return out


def message_json(msg: Message) -> dict[str, Any]:
    return {
        "type": msg.msg_type.name,
        "is_reply": msg.is_reply,
        "req_id": msg.req_id,
        "fields": to_json(msg.fields),
    }


def split_frames(data: bytes) -> list[bytes]:
    """Cut a clean byte stream into frames, using each header's LEN."""
    out, pos = [], 0
    while pos < len(data):
        assert data.startswith(START, pos)
        length = HEADER.unpack_from(data, pos + len(START))[-1]
        end = pos + OVERHEAD + length
        out.append(data[pos:end])
        pos = end
    return out


def frame_vector(
    name: str, direction: str, raw: bytes, note: str = "", counter: int | None = None
) -> dict[str, Any]:
    """A valid frame: wire bytes, header values, and the decoded message if any."""
    (frame,) = FrameDecoder().feed(raw)
    assert isinstance(frame, Frame), (name, frame)
    h = len(START)
    version, kind, seq, ack, msg_type, length = HEADER.unpack_from(raw, h)
    vec: dict[str, Any] = {"name": name, "direction": direction}
    if note:
        vec["note"] = note
    vec["frame"] = raw.hex()
    vec["header"] = {
        "version": version,
        "kind": FrameKind(kind).name,
        "seq": seq,
        "ack": ack,
        "msg_type": msg_type,
        "length": length,
        "header_crc": int.from_bytes(raw[h + HEADER.size : h + HEADER_SIZE], "big"),
        "crc": int.from_bytes(raw[-len(END) - TRAILER_SIZE : -len(END)], "big"),
    }
    vec["payload"] = frame.payload.hex()
    if frame.kind in (FrameKind.SYN, FrameKind.SYN_ACK):
        sid, window, max_payload = SYN_PAYLOAD.unpack(frame.payload)
        vec["syn"] = {"session_id": sid, "window": window, "max_payload": max_payload}
    if frame.kind is FrameKind.MSG:
        try:
            vec["message"] = message_json(decode(frame.msg_type, frame.payload))
        except UnknownMessage:
            vec["message"] = None
        parts = auth.split_authenticator(frame.payload) if vec["message"] else None
        if parts is not None:
            _, got, mac = parts
            assert got == counter, (name, got, counter)
            vec["authenticator"] = {"counter": got, "mac": mac.hex()}
    return vec


# ----------------------------------------------------------------- (a) valid frames
Step = tuple[str, Message | tuple[int, bytes], str, Message | list[Message], int | None]


def _conversation() -> list[Step]:
    """(request name, request, reply name, reply, counter), in the order a dock would
    send them; a counter means both are sealed with the session key (section 5.4)."""
    host_mac = auth.host_proof(SECRET, SERIAL, HOST_NONCE, DEVICE_NONCE)
    device_mac = auth.device_proof(SECRET, SERIAL, HOST_NONCE, DEVICE_NONCE)
    signature = _device_key().sign(FOOTAGE_SHA256)
    rec2_sha = hashlib.sha256(b"REC000002").digest()
    caps = int(sum(Capability))
    steps: list[Step] = []
    counter = 0

    def next_counter(sealed: bool) -> int | None:
        nonlocal counter
        if not sealed:
            return None
        counter += 1
        return counter

    def add(
        msg_type: MsgType,
        req: dict[str, Any],
        rep: dict[str, Any],
        tag: str = "",
        sealed: bool = False,
    ) -> None:
        base = msg_type.name.lower() + tag
        req_id = len(steps) + 1
        steps.append(
            (
                f"{base}_request",
                request(msg_type, req_id, **req),
                f"{base}_reply",
                reply(msg_type, req_id, **rep),
                next_counter(sealed),
            )
        )

    def add_error(
        name: str, req: Message | tuple[int, bytes], err: Message, sealed: bool = False
    ) -> None:
        steps.append((f"{name}_request", req, f"{name}_error", err, next_counter(sealed)))

    add(
        MsgType.HELLO,
        {"min_version": 1, "max_version": PROTOCOL_VERSION, "host_id": "dock"},
        {
            "version": PROTOCOL_VERSION,
            "firmware": "1.4.2",
            "model": "BWC-EMU-1",
            "serial": SERIAL,
            "capabilities": caps,
            "vendor": "Open Dock Reference",
            "enrolled": True,
            "device_public_key": _public_key(),
        },
    )
    add(
        MsgType.STATUS,
        {},
        {
            "battery_percent": 85,
            "charging": True,
            "storage_total": 32 << 30,
            "storage_free": 30 << 30,
            "recording": False,
            "device_time_ms": T0_MS - 1234,
            "fault_flags": int(FaultFlag(0)),
            "recording_count": 3,
            "event_count": 7,
            "officer_id": "4711",
            "battery_health_percent": 94,
            "battery_cycles": 212,
            "battery_temp_decicelsius": -45,
            "receive_time_ms": T0_MS - 1240,
        },
    )
    rid = len(steps) + 1
    add_error(
        "set_time_unauthenticated",
        request(MsgType.SET_TIME, rid, utc_ms=T0_MS, source="ntp"),
        error(rid, ErrorCode.AUTH_REQUIRED, "SET_TIME needs authentication", MsgType.SET_TIME),
    )
    add(MsgType.AUTH_CHALLENGE, {"host_nonce": HOST_NONCE}, {"device_nonce": DEVICE_NONCE})
    add(MsgType.AUTH_PROVE, {"host_mac": host_mac}, {"device_mac": device_mac})
    add(
        MsgType.SET_TIME,
        {"utc_ms": T0_MS, "source": "ntp"},
        {"drift_ms": -1234, "device_time_ms": T0_MS + 2},
        sealed=True,
    )
    add(
        MsgType.ASSIGN,
        {"officer_id": "4711", "officer_name": "Zoë Okafor", "unit": "Patrol 3"},
        {},
        sealed=True,
    )
    add(
        MsgType.LIST_RECORDINGS,
        {"start": 0, "max_count": 2},
        {
            "total": 3,
            "recordings": [
                {
                    "id": "REC000001",
                    "start_ms": T0_MS - 7_200_000,
                    "end_ms": T0_MS - 7_199_000,
                    "size": len(FOOTAGE),
                    "sha256": FOOTAGE_SHA256,
                    "signature": signature,
                    "flags": int(RecordingFlag.IMPORTANT),
                    "sequence": 1,
                    "officer_id": "4711",
                    "stop_reason": int(StopReason.MANUAL),
                },
                {
                    "id": "REC000002",
                    "start_ms": T0_MS - 7_100_000,
                    "end_ms": T0_MS - 7_000_000,
                    "size": 2 << 20,
                    "sha256": rec2_sha,
                    "flags": int(RecordingFlag.INTERRUPTED | RecordingFlag.CONTINUES_PREVIOUS),
                    "sequence": 2,
                    "previous_id": "REC000001",
                    "stop_reason": int(StopReason.BATTERY),
                },
            ],
        },
    )
    add(
        MsgType.READ,
        {"id": "REC000001", "offset": READ_OFFSET, "length": READ_LENGTH},
        {"offset": READ_OFFSET, "data": FOOTAGE[READ_OFFSET : READ_OFFSET + READ_LENGTH]},
    )
    rid = len(steps) + 1
    half = READ_OFFSET + READ_LENGTH // 2
    steps.append(
        (
            "read_stream_request",
            request(
                MsgType.READ_STREAM,
                rid,
                id="REC000001",
                offset=READ_OFFSET,
                length=READ_LENGTH,
                chunk=READ_LENGTH // 2,
            ),
            "read_stream_reply",
            [
                reply(MsgType.READ_STREAM, rid, offset=READ_OFFSET, data=FOOTAGE[READ_OFFSET:half]),
                reply(
                    MsgType.READ_STREAM,
                    rid,
                    offset=half,
                    data=FOOTAGE[half : READ_OFFSET + READ_LENGTH],
                    last=True,
                ),
            ],
            None,
        )
    )
    add(
        MsgType.EVENTS,
        {"since": 0, "max_count": 3},
        {
            "next": 3,
            "events": [
                {"index": 0, "time_ms": T0_MS - 9_000_000, "kind": int(EventKind.POWER_ON)}
                | {"battery_percent": 97},
                {
                    "index": 1,
                    "time_ms": T0_MS - 7_200_000,
                    "kind": int(EventKind.RECORD_START),
                    "recording_id": "REC000001",
                },
                {
                    "index": 2,
                    "time_ms": T0_MS - 7_000_000,
                    "kind": int(EventKind.INTERRUPTED),
                    "reason": int(StopReason.BATTERY),
                    "recording_id": "REC000002",
                    "detail": "battery exhausted",
                },
            ],
        },
    )
    add(
        MsgType.SELF_TEST,
        {},
        {
            "passed": False,
            "items": [
                {"name": "sensor", "passed": True},
                {"name": "clock", "passed": False, "detail": "RTC oscillator stopped"},
                {"name": "battery", "passed": True},
            ],
        },
    )
    rid = len(steps) + 1
    add_error(
        "erase_wrong_hash",
        request(MsgType.ERASE, rid, id="REC000001", sha256=rec2_sha),
        error(rid, ErrorCode.HASH_MISMATCH, "stated hash is not this recording's", MsgType.ERASE),
        sealed=True,
    )
    add(MsgType.ERASE, {"id": "REC000001", "sha256": FOOTAGE_SHA256}, {}, sealed=True)
    add(
        MsgType.MASS_STORAGE,
        {"enable": True},
        {"enabled": True, "volume_label": SERIAL, "local_path": "/media/EMU0001"},
        sealed=True,
    )
    host_pub, device_pub = _x25519_public(HOST_X25519), _x25519_public(DEVICE_X25519)
    add(
        MsgType.ENROL,
        {"host_public_key": host_pub},
        {
            "device_public_key": device_pub,
            "signature": _device_key().sign(
                auth.enrol_signed_message(SERIAL, host_pub, device_pub)
            ),
        },
        tag="_rekey",
        sealed=True,
    )
    rid = len(steps) + 1
    add_error(
        "unknown_type",
        (0x0042, REQ_ID.pack(rid) + FIELD_HEAD.pack(1, 1) + b"\x00"),
        error(rid, ErrorCode.UNKNOWN_MESSAGE, "unknown message type 0x0042", 0x0042),
    )
    return steps


def valid_frames() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One dock <-> recorder conversation through two real sessions, plus NAK and RST."""
    d2r, r2d = "dock_to_recorder", "recorder_to_dock"
    dock = Session(Role.INITIATOR, dock_session_config())
    rec = Session(Role.RESPONDER, RECORDER_CONFIG)
    now = 0.0
    frames: list[dict[str, Any]] = []
    control: list[dict[str, Any]] = []

    dock.connect(SESSION_ID, now)
    syn = dock.outgoing()
    rec.receive(syn, now)
    syn_ack = rec.outgoing()
    dock.receive(syn_ack, now)
    control.append(frame_vector("syn", d2r, syn, "the dock opens session 0x5EED0001"))
    control.append(frame_vector("syn_ack", r2d, syn_ack, "the recorder accepts it"))

    key = _session_key()
    for req_name, req, rep_name, rep, counter in _conversation():
        now += 0.01
        wire, body = req if isinstance(req, tuple) else encode(req)
        if counter is not None:
            body = auth.seal(
                key, reply=False, session_id=SESSION_ID, counter=counter, wire_type=wire, body=body
            )
        dock.send(wire, body, now)
        out = dock.outgoing()
        (delivered,) = rec.receive(out, now)
        assert delivered.payload == body  # type: ignore[union-attr]
        frames.append(frame_vector(req_name, d2r, out, counter=counter))
        replies = rep if isinstance(rep, list) else [rep]
        for i, one in enumerate(replies):
            now += 0.01
            rep_wire, rep_body = encode(one)
            if counter is not None:
                rep_body = auth.seal(
                    key,
                    reply=True,
                    session_id=SESSION_ID,
                    counter=counter,
                    wire_type=rep_wire,
                    body=rep_body,
                )
            if one.msg_type is MsgType.READ_STREAM:  # the pieces a recorder sends are the same
                f = one.fields
                parts = reply_parts(one.req_id, f["offset"], f["data"], f.get("last", False))
                assert b"".join(parts) == rep_body
            rec.send(rep_wire, rep_body, now)
            back = rec.outgoing()
            assert len(dock.receive(back, now)) == 1
            name = rep_name if len(replies) == 1 else f"{rep_name}_{i + 1}"
            frames.append(frame_vector(name, r2d, back, counter=counter))
    now += 0.01
    control.append(
        frame_vector("ack", d2r, dock.outgoing(), "the dock acknowledges the last reply")
    )

    # NAK: the recorder sees sequence 2 while still expecting 1.
    dock = Session(Role.INITIATOR, dock_session_config())
    rec = Session(Role.RESPONDER, RECORDER_CONFIG)
    dock.connect(SESSION_ID + 1, 0.0)
    rec.receive(dock.outgoing(), 0.0)
    dock.receive(rec.outgoing(), 0.0)
    for i in (1, 2):
        dock.send(*encode(request(MsgType.STATUS, i)), 0.01)
    first, second = split_frames(dock.outgoing())
    assert rec.receive(second, 0.02) == []
    note = "sequence 1 was lost; sequence 2 arrived and is buffered"
    control.append(frame_vector("nak", r2d, rec.outgoing(), note))

    # RST: a recorder that has just restarted gets a MSG for a session it never saw.
    blank = Session(Role.RESPONDER, RECORDER_CONFIG)
    assert blank.receive(first, 0.03) == []
    control.append(frame_vector("rst", r2d, blank.outgoing(), "answer to a MSG without session"))
    return frames, control


# ----------------------------------------------------------------- (b) decoder
def _frame_json(item: Frame | FrameError) -> dict[str, Any]:
    if isinstance(item, Frame):
        return {
            "frame": {
                "kind": item.kind.name,
                "seq": item.seq,
                "ack": item.ack,
                "msg_type": item.msg_type,
                "payload": item.payload.hex(),
            }
        }
    assert item.discarded > 0, item
    return {
        "error": item.code.value,
        "discarded": item.discarded,
        "seq": item.seq,
        "kind": None if item.kind is None else item.kind.name,
    }


def _raw_frame(
    version: int, kind: int, seq: int, ack: int, msg_type: int, length: int, payload: bytes
) -> bytes:
    """A frame with arbitrary header values but correct CRCs (for header-rule vectors)."""
    head = HEADER.pack(version, kind, seq, ack, msg_type, length)
    head += crc16_ccitt_false(head).to_bytes(2, "big")
    crc = zlib.crc32(payload, zlib.crc32(head)).to_bytes(4, "big")
    return START + head + payload + crc + END


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def decoder_vectors() -> list[dict[str, Any]]:
    a = encode_frame(FrameKind.MSG, 7, 3, MsgType.READ.reply, b"A" * 24)
    b = encode_frame(FrameKind.MSG, 8, 3, MsgType.READ.reply, b"B" * 24)
    c = encode_frame(FrameKind.MSG, 9, 3, MsgType.READ.reply, b"C" * 24)
    ack = encode_frame(FrameKind.ACK, 0, 12, 0)
    long = encode_frame(FrameKind.MSG, 10, 3, MsgType.READ.reply, b"L" * 200)
    next_long = encode_frame(FrameKind.MSG, 11, 3, MsgType.READ.reply, b"N" * 150)
    noise = bytes.fromhex("0011223344556677c3e5")
    inner = encode_frame(FrameKind.MSG, 99, 0, MsgType.ERASE, b"erase me")
    carrier = encode_frame(FrameKind.MSG, 9, 3, MsgType.READ.reply, b"xxxx" + inner + b"yyyy")
    markers = encode_frame(FrameKind.MSG, 0xB7, 0xB7C3, 0xB7E5, b"\xb7\xc3\xb7\xe5\xb7\x00\xb7")
    # test-input sanity: 0xB7 only in the markers of a, so the offsets below hit what they say
    assert a.count(b"\xb7") == 2 and len(a) == OVERHEAD + 24
    assert len(a[:40] + ack + next_long) >= len(long)  # enough bytes to find the END missing
    payload_at = len(START) + HEADER_SIZE  # first payload byte
    cases: list[tuple[str, str, int, list[bytes]]] = [
        ("good_frame", "one clean frame", ABSOLUTE_MAX_PAYLOAD, [a]),
        (
            "markers_inside_frame",
            "SEQ, ACK, TYPE and payload containing 0xB7 and both marker patterns: sent "
            "unchanged and delivered as they are (a good frame is not searched for START)",
            ABSOLUTE_MAX_PAYLOAD,
            [markers],
        ),
        (
            "payload_bit_flipped",
            "bit 0 of the 5th payload byte of the first frame flipped, the second intact: "
            "bad_crc with SEQ, the rest of the damaged frame is noise, the second is found",
            ABSOLUTE_MAX_PAYLOAD,
            [_flip(a, payload_at + 4) + b],
        ),
        (
            "crc_bit_flipped",
            "a bit of the CRC-32 trailer flipped",
            ABSOLUTE_MAX_PAYLOAD,
            [_flip(a, len(a) - 6, 3) + b],
        ),
        (
            "header_bit_flipped",
            "a bit of the SEQ field flipped: the header CRC fails, so SEQ is not reported",
            ABSOLUTE_MAX_PAYLOAD,
            [_flip(a, 2 + 5, 1) + b],
        ),
        (
            "wrong_version",
            "VERSION 2 with a correct header CRC",
            ABSOLUTE_MAX_PAYLOAD,
            [_raw_frame(2, FrameKind.MSG, 7, 3, MsgType.READ.reply, 4, b"vers") + b],
        ),
        (
            "unknown_kind",
            "KIND 0x07 with a correct header CRC",
            ABSOLUTE_MAX_PAYLOAD,
            [_raw_frame(FRAME_VERSION, 0x07, 7, 3, 0, 4, b"kind") + b],
        ),
        (
            "declared_length_over_limit",
            "a complete, correct frame whose LEN (24) exceeds this decoder's max_payload (16): "
            "refused from its header alone",
            16,
            [a + ack],
        ),
        (
            "end_marker_bit_flipped",
            "a bit of the END marker flipped: bad_end as soon as the frame's last byte is in",
            ABSOLUTE_MAX_PAYLOAD,
            [_flip(a, len(a) - 1, 4), b],
        ),
        (
            "length_below_payload",
            "LEN says 10 but 12 payload bytes are sent (both CRCs computed over what is "
            "sent): END is not where LEN puts it",
            ABSOLUTE_MAX_PAYLOAD,
            [_raw_frame(FRAME_VERSION, FrameKind.MSG, 7, 3, 2, 10, b"twelve bytes") + b],
        ),
        (
            "start_then_end",
            "START immediately followed by END: the header CRC fails",
            ABSOLUTE_MAX_PAYLOAD,
            [START + END + b],
        ),
        (
            "leading_noise",
            "noise (including a lone 0xC3 and 0xE5) before a frame",
            ABSOLUTE_MAX_PAYLOAD,
            [noise + a],
        ),
        (
            "garbage_between_frames",
            "noise between two frames",
            ABSOLUTE_MAX_PAYLOAD,
            [a + noise + b],
        ),
        (
            "noise_across_deliveries",
            "noise in two deliveries: one noise report per delivery",
            ABSOLUTE_MAX_PAYLOAD,
            [noise, noise + a],
        ),
        (
            "false_start_in_garbage",
            "garbage containing a START pattern whose 18 'header' bytes (garbage and the start "
            "of the next frame) fail the header CRC; the next frame is found by rescanning",
            ABSOLUTE_MAX_PAYLOAD,
            [a + b"\x55\x55" + START + noise + b],
        ),
        (
            "stray_end_marker",
            "an END marker outside any frame is noise",
            ABSOLUTE_MAX_PAYLOAD,
            [END + a],
        ),
        (
            "cut_in_header_then_good_frame",
            "the first 10 bytes of a frame, then a complete frame: the header CRC fails",
            ABSOLUTE_MAX_PAYLOAD,
            [a[:10] + b],
        ),
        (
            "cut_in_payload_then_good_frame",
            "a frame cut after 30 bytes (header complete), then a complete frame: bad_end with "
            "SEQ (so the receiver can NAK at once), then the good frame found by rescanning",
            ABSOLUTE_MAX_PAYLOAD,
            [a[:30] + b],
        ),
        (
            "cut_long_frame_holds_later_frames",
            "a frame with LEN 200 cut after 40 bytes, then an ACK frame: nothing comes out until "
            "LEN's worth of bytes has arrived; then bad_end, and both later frames are found",
            ABSOLUTE_MAX_PAYLOAD,
            [long[:40] + ack, next_long],
        ),
        (
            "frames_after_damage_all_found",
            "a frame with a damaged payload followed by three good frames in one delivery",
            ABSOLUTE_MAX_PAYLOAD,
            [_flip(a, payload_at) + b + ack + c],
        ),
        (
            "split_delivery",
            "one frame delivered in five pieces: inside START, inside the header, "
            "inside the payload, inside END",
            ABSOLUTE_MAX_PAYLOAD,
            [a[:1], a[1:12], a[12:40], a[40:-1], a[-1:]],
        ),
        (
            "split_start_after_noise",
            "noise ending in 0xB7, then 0xC3 and the rest of a frame in the next delivery",
            ABSOLUTE_MAX_PAYLOAD,
            [noise + a[:1], a[1:]],
        ),
        (
            "trailing_b7_not_a_start",
            "noise ending in 0xB7 is held back; the next delivery shows it was noise",
            ABSOLUTE_MAX_PAYLOAD,
            [noise + b"\xb7", b"\x00" + a],
        ),
        (
            "duplicate_frame",
            "the same frame twice: the frame layer delivers both (the session drops one)",
            ABSOLUTE_MAX_PAYLOAD,
            [a + a],
        ),
        (
            "damaged_carrier_exposes_embedded_frame",
            "a frame whose payload contains a complete valid frame, damaged outside that "
            "frame: after bad_crc the rescan finds and delivers the embedded frame "
            "(PROTOCOL.md section 2.2 explains why this is accepted)",
            ABSOLUTE_MAX_PAYLOAD,
            [_flip(carrier, payload_at + 1)],
        ),
        (
            "intact_carrier_of_embedded_frame",
            "the same carrier undamaged: only the carrier is delivered",
            ABSOLUTE_MAX_PAYLOAD,
            [carrier],
        ),
    ]
    out = []
    for name, description, max_payload, feeds in cases:
        dec = FrameDecoder(max_payload)
        steps = []
        for data in feeds:
            got = dec.feed(data)
            steps.append(
                {
                    "data": data.hex(),
                    "outputs": [_frame_json(i) for i in got],
                    "buffered": dec.buffered,
                }
            )
        out.append(
            {
                "name": name,
                "description": description,
                "max_payload": max_payload,
                "feeds": steps,
            }
        )
    return out


# ----------------------------------------------------------------- (c) bodies
def _tlv(tag: int, value: bytes) -> bytes:
    return FIELD_HEAD.pack(tag, len(value)) + value


def body_vectors() -> list[dict[str, Any]]:
    rid = REQ_ID.pack(0x01020304)
    hello_ok = _tlv(1, b"\x00\x01") + _tlv(2, b"\x00\x01")
    rec_without_hash = _tlv(1, b"REC1") + _tlv(2, bytes(8)) + _tlv(3, bytes(8)) + _tlv(4, bytes(8))
    cases: list[tuple[str, str, int, bytes]] = [
        ("empty_body", "no request id at all", MsgType.STATUS, b""),
        (
            "short_request_id",
            "three bytes where the request id needs four",
            MsgType.STATUS,
            b"\x00" * 3,
        ),
        ("status_minimal", "a request id and nothing else", MsgType.STATUS, rid),
        ("hello_minimal", "required fields only", MsgType.HELLO, rid + hello_ok),
        (
            "unknown_tag_skipped",
            "tag 99 is not in the schema: skipped",
            MsgType.HELLO,
            rid + _tlv(99, b"future") + hello_ok,
        ),
        (
            "missing_required",
            "HELLO without max_version",
            MsgType.HELLO,
            rid + _tlv(1, b"\x00\x01"),
        ),
        (
            "integer_wrong_size",
            "min_version (u16) sent as four bytes",
            MsgType.HELLO,
            rid + _tlv(1, b"\x00\x00\x00\x01") + _tlv(2, b"\x00\x01"),
        ),
        (
            "truncated_field_header",
            "three bytes after the last field: too few for tag + length",
            MsgType.HELLO,
            rid + hello_ok + b"\x03\x00\x00",
        ),
        (
            "length_beyond_body",
            "a field claiming 200 bytes with 4 left",
            MsgType.HELLO,
            rid + hello_ok + FIELD_HEAD.pack(3, 200) + b"dock",
        ),
        (
            "unknown_tag_length_beyond_body",
            "even an unknown field must fit the body",
            MsgType.HELLO,
            rid + hello_ok + FIELD_HEAD.pack(99, 5) + b"abc",
        ),
        (
            "bad_utf8",
            "host_id that is not UTF-8",
            MsgType.HELLO,
            rid + hello_ok + _tlv(3, b"\xff\xfe"),
        ),
        (
            "empty_string",
            "a zero-length string is valid",
            MsgType.HELLO,
            rid + hello_ok + _tlv(3, b""),
        ),
        ("bool_not_0_or_1", "enable = 2", MsgType.MASS_STORAGE, rid + _tlv(1, b"\x02")),
        (
            "fixed_size_bytes_wrong",
            "ERASE sha256 of 31 bytes",
            MsgType.ERASE,
            rid + _tlv(1, b"REC000001") + _tlv(2, bytes(31)),
        ),
        (
            "singular_field_repeated",
            "HELLO min_version twice",
            MsgType.HELLO,
            rid + hello_ok + _tlv(1, b"\x00\x01"),
        ),
        (
            "repeated_field_absent",
            "LIST_RECORDINGS reply with no recordings: an empty list",
            MsgType.LIST_RECORDINGS.reply,
            rid + _tlv(1, b"\x00\x00\x00\x00"),
        ),
        (
            "nested_missing_required",
            "a recording without its sha256",
            MsgType.LIST_RECORDINGS.reply,
            rid + _tlv(1, b"\x00\x00\x00\x01") + _tlv(2, rec_without_hash),
        ),
        (
            "unknown_request_type",
            "type 0x0042 is not defined",
            0x0042,
            rid + _tlv(1, b"x"),
        ),
        (
            "unknown_reply_type",
            "type 0x8042 is not defined",
            0x0042 | REPLY_BIT,
            rid,
        ),
        (
            "unknown_type_short_body",
            "no request id in the body (null): the ERROR echoes 0",
            0x0042,
            b"\x01",
        ),
        (
            "error_reply",
            "ERROR (0xFFFF) with every field",
            MsgType.ERROR,
            rid + _tlv(1, b"\x00\x05") + _tlv(2, b"no recording X") + _tlv(3, b"\x00\x06"),
        ),
        (
            "reply_bit_alone",
            "0x8000 alone: the reply bit on type 0, which is not defined",
            REPLY_BIT,
            rid,
        ),
    ]
    out = []
    for name, description, wire_type, payload in cases:
        vec: dict[str, Any] = {
            "name": name,
            "description": description,
            "wire_type": wire_type,
            "payload": payload.hex(),
        }
        try:
            msg = decode(wire_type, payload)
        except UnknownMessage as exc:
            vec["outcome"] = "UnknownMessage"
            vec["req_id"] = exc.req_id
        except MalformedMessage:
            vec["outcome"] = "MalformedMessage"
        else:
            vec["outcome"] = "ok"
            vec["message"] = message_json(msg)
        out.append(vec)
    return out


# ----------------------------------------------------------------- (d) auth, (e) CRCs
def auth_vector() -> dict[str, Any]:
    s = SERIAL.encode()
    prefix = len(s).to_bytes(2, "big") + s
    host_input = auth.HOST_LABEL + prefix + DEVICE_NONCE + HOST_NONCE
    device_input = auth.DEVICE_LABEL + prefix + HOST_NONCE + DEVICE_NONCE
    host_mac = auth.host_proof(SECRET, SERIAL, HOST_NONCE, DEVICE_NONCE)
    device_mac = auth.device_proof(SECRET, SERIAL, HOST_NONCE, DEVICE_NONCE)
    # The inputs are built here from the specification, independently of auth.py.
    assert host_mac == hmac.new(SECRET, host_input, hashlib.sha256).digest()
    assert device_mac == hmac.new(SECRET, device_input, hashlib.sha256).digest()
    return {
        "secret": SECRET.hex(),
        "serial": SERIAL,
        "host_nonce": HOST_NONCE.hex(),
        "device_nonce": DEVICE_NONCE.hex(),
        "host_mac_input": host_input.hex(),
        "host_mac": host_mac.hex(),
        "device_mac_input": device_input.hex(),
        "device_mac": device_mac.hex(),
    }


def _hkdf_by_hand(ikm: bytes, salt: bytes, info: bytes) -> tuple[bytes, bytes]:
    """(PRK, OKM) of HKDF-SHA256 for 32 bytes, written out from RFC 5869."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return prk, hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def session_key_vector() -> dict[str, Any]:
    s = SERIAL.encode()
    salt = HOST_NONCE + DEVICE_NONCE
    info = auth.SESSION_KEY_LABEL + len(s).to_bytes(2, "big") + s + SESSION_ID.to_bytes(4, "big")
    prk, key = _hkdf_by_hand(SECRET, salt, info)
    assert key == _session_key()
    return {
        "secret": SECRET.hex(),
        "serial": SERIAL,
        "session_id": SESSION_ID,
        "host_nonce": HOST_NONCE.hex(),
        "device_nonce": DEVICE_NONCE.hex(),
        "hkdf_salt": salt.hex(),
        "hkdf_info": info.hex(),
        "hkdf_prk": prk.hex(),
        "session_key": key.hex(),
    }


def enrol_vector() -> dict[str, Any]:
    host = X25519PrivateKey.from_private_bytes(HOST_X25519)
    host_pub, device_pub = _x25519_public(HOST_X25519), _x25519_public(DEVICE_X25519)
    shared = host.exchange(X25519PrivateKey.from_private_bytes(DEVICE_X25519).public_key())
    s = SERIAL.encode()
    salt = host_pub + device_pub
    info = auth.ENROL_KEY_LABEL + len(s).to_bytes(2, "big") + s
    prk, secret = _hkdf_by_hand(shared, salt, info)
    assert secret == auth.enrol_secret(shared, SERIAL, host_pub, device_pub)
    signed = auth.enrol_signed_message(SERIAL, host_pub, device_pub)
    return {
        "serial": SERIAL,
        "host_private_key": HOST_X25519.hex(),
        "host_public_key": host_pub.hex(),
        "device_private_key": DEVICE_X25519.hex(),
        "device_public_key": device_pub.hex(),
        "shared": shared.hex(),
        "hkdf_salt": salt.hex(),
        "hkdf_info": info.hex(),
        "hkdf_prk": prk.hex(),
        "secret": secret.hex(),
        "signed_message": signed.hex(),
        "device_signing_public_key": _public_key().hex(),
        "signature": _device_key().sign(signed).hex(),
    }


def signature_vector() -> dict[str, Any]:
    return {
        "private_key_seed": DEVICE_KEY_SEED.hex(),
        "public_key": _public_key().hex(),
        "content_description": "bytes 0x00..0xFF repeated 16 times (4096 bytes)",
        "sha256": FOOTAGE_SHA256.hex(),
        "signature": _device_key().sign(FOOTAGE_SHA256).hex(),
    }


def crc_vectors() -> list[dict[str, Any]]:
    check = b"123456789"
    return [
        {
            "name": "CRC-16/CCITT-FALSE",
            "width": 16,
            "poly": 0x1021,
            "init": 0xFFFF,
            "refin": False,
            "refout": False,
            "xorout": 0x0000,
            "input": check.hex(),
            "check": crc16_ccitt_false(check),
        },
        {
            "name": "CRC-32/ISO-HDLC",
            "width": 32,
            "poly": 0x04C11DB7,
            "init": 0xFFFFFFFF,
            "refin": True,
            "refout": True,
            "xorout": 0xFFFFFFFF,
            "input": check.hex(),
            "check": zlib.crc32(check),
        },
    ]


# ----------------------------------------------------------------- assembly
def build_vectors() -> dict[str, Any]:
    frames, control = valid_frames()
    return {
        "description": (
            "Test vectors for the dock <-> recorder protocol (firmware_protocol/PROTOCOL.md). "
            "Generated by tests/make_vectors.py from the reference implementation; do not edit. "
            "Byte strings are lowercase hex."
        ),
        "constants": {
            "protocol_version": PROTOCOL_VERSION,
            "frame_version": FRAME_VERSION,
            "start": START.hex(),
            "end": END.hex(),
            "header_size": HEADER_SIZE,
            "frame_overhead": OVERHEAD,
            "absolute_max_payload": ABSOLUTE_MAX_PAYLOAD,
            "reply_bit": REPLY_BIT,
        },
        "crc": crc_vectors(),
        "frames": frames,
        "session_frames": control,
        "decoder": decoder_vectors(),
        "bodies": body_vectors(),
        "auth": auth_vector(),
        "session_key": session_key_vector(),
        "enrol": enrol_vector(),
        "signature": signature_vector(),
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------- annotated dumps
def _hexline(data: bytes) -> str:
    return " ".join(f"{x:02x}" for x in data)


def _dump_bytes(lines: list[str], data: bytes, comment: str, indent: str) -> None:
    """Wire bytes with a comment on the first line; 16 bytes per line."""
    if not data:
        lines.append(f"{'':<47} | {indent}{comment}".rstrip())
        return
    for i in range(0, len(data), 16):
        note = f"{indent}{comment}" if i == 0 else ""
        lines.append(f"{_hexline(data[i : i + 16]):<47} | {note}".rstrip())


_ENUM_FIELDS: dict[tuple[str, str], type[enum.IntEnum] | type[enum.IntFlag]] = {
    ("Error", "code"): ErrorCode,
    ("HelloReply", "capabilities"): Capability,
    ("StatusReply", "fault_flags"): FaultFlag,
    ("Recording", "flags"): RecordingFlag,
    ("Recording", "stop_reason"): StopReason,
    ("Event", "kind"): EventKind,
    ("Event", "reason"): StopReason,
}


def _enum_text(enum_cls: type[enum.IntEnum] | type[enum.IntFlag], number: int) -> str:
    if issubclass(enum_cls, enum.IntFlag):
        names = [m.name for m in enum_cls if m & number]
        return " | ".join(n for n in names if n) or "none"
    try:
        return enum_cls(number).name
    except ValueError:
        return "unknown"


def _dump_fields(lines: list[str], schema: Schema, data: bytes, indent: str) -> None:
    specs = schema.by_tag()
    pos = 0
    while pos < len(data):
        tag, length = FIELD_HEAD.unpack_from(data, pos)
        head, value = data[pos : pos + 5], data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        spec = specs.get(tag)
        name = spec.name if spec else "(unknown)"
        _dump_bytes(lines, head, f"tag {tag} {name}, length {length}", indent)
        if spec is not None and spec.type is FieldType.NESTED:
            assert spec.nested is not None
            _dump_fields(lines, spec.nested, value, indent + "  ")
            continue
        if spec is None or spec.type is FieldType.BYTES:
            shown = f"({len(value)} bytes)"
        elif spec.type is FieldType.STR:
            shown = json.dumps(value.decode(), ensure_ascii=False)
        elif spec.type is FieldType.BOOL:
            shown = "true" if value[0] else "false"
        else:
            fmt = {"u8": ">B", "u16": ">H", "u32": ">I", "u64": ">Q", "i32": ">i", "i64": ">q"}
            number = struct.unpack(fmt[spec.type.value], value)[0]
            shown = str(number)
            enum_cls = _ENUM_FIELDS.get((schema.name, spec.name))
            if enum_cls is not None:
                shown += f" ({_enum_text(enum_cls, number)})"
        _dump_bytes(lines, value, f"  = {shown}", indent)


def annotate(raw: bytes) -> str:
    body = raw[len(START) : -len(END)]  # VERSION..CRC
    version, kind, seq, ack, msg_type, length = HEADER.unpack_from(body)
    payload = body[HEADER_SIZE:-TRAILER_SIZE]
    lines: list[str] = []
    lines.append(f"{_hexline(START):<47} | START")
    h = body[:HEADER_SIZE]
    _dump_bytes(lines, h[0:1], f"VERSION {version}", "")
    _dump_bytes(lines, h[1:2], f"KIND {FrameKind(kind).name}", "")
    _dump_bytes(lines, h[2:6], f"SEQ {seq}", "")
    _dump_bytes(lines, h[6:10], f"ACK {ack}", "")
    type_name = ""
    if kind == FrameKind.MSG:
        try:
            base, is_reply, _ = schema_for(msg_type)
            type_name = f" {base.name}{' reply' if is_reply and base is not MsgType.ERROR else ''}"
        except (KeyError, ValueError):
            type_name = " (unknown)"
    _dump_bytes(lines, h[10:12], f"TYPE 0x{msg_type:04x}{type_name}", "")
    _dump_bytes(lines, h[12:16], f"LEN {length}", "")
    _dump_bytes(lines, h[16:18], f"HCRC 0x{int.from_bytes(h[16:18], 'big'):04x}", "")
    if kind in (FrameKind.SYN, FrameKind.SYN_ACK) and len(payload) == SYN_PAYLOAD.size:
        sid, window, max_payload = SYN_PAYLOAD.unpack(payload)
        _dump_bytes(lines, payload[0:4], f"session id 0x{sid:08x}", "")
        _dump_bytes(lines, payload[4:6], f"window {window}", "")
        _dump_bytes(lines, payload[6:10], f"max payload {max_payload}", "")
    elif kind == FrameKind.MSG and len(payload) >= 4:
        _dump_bytes(lines, payload[:4], f"request id {int.from_bytes(payload[:4], 'big')}", "")
        try:
            _, _, schema = schema_for(msg_type)
        except (KeyError, ValueError):
            schema = Schema("unknown")
        _dump_fields(lines, schema, payload[4:], "")
    elif kind in (FrameKind.ACK, FrameKind.NAK) and payload:
        bits = int.from_bytes(payload, "big")
        width = len(payload) * 8
        held = [ack + 2 + i for i in range(width) if bits >> (width - 1 - i) & 1]
        text = ", ".join(str(n) for n in held)
        _dump_bytes(lines, payload, f"SACK bitmap: holds SEQ {text}", "")
    elif payload:
        _dump_bytes(lines, payload, "payload", "")
    crc = body[-TRAILER_SIZE:]
    _dump_bytes(lines, crc, f"CRC 0x{int.from_bytes(crc, 'big'):08x}", "")
    lines.append(f"{_hexline(END):<47} | END")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT, help="where to write the JSON")
    parser.add_argument("--dump", metavar="NAME", help="print an annotated frame vector")
    args = parser.parse_args(argv)
    vectors = build_vectors()
    if args.dump:
        for vec in vectors["frames"] + vectors["session_frames"]:
            if vec["name"] == args.dump:
                print(annotate(bytes.fromhex(vec["frame"])))
                return 0
        print(f"no frame vector named {args.dump!r}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(vectors), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
