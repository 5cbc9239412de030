"""Message bodies: round trips, forward compatibility, and malformed input."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol.codec import FieldType, MalformedMessage, Schema
from firmware_protocol.messages import (
    REPLIES,
    REQUESTS,
    ErrorCode,
    Message,
    MsgType,
    UnknownMessage,
    decode,
    encode,
    error,
    request,
)

_INT_RANGES = {
    FieldType.U8: (0, 2**8 - 1),
    FieldType.U16: (0, 2**16 - 1),
    FieldType.U32: (0, 2**32 - 1),
    FieldType.U64: (0, 2**64 - 1),
    FieldType.I32: (-(2**31), 2**31 - 1),
    FieldType.I64: (-(2**63), 2**63 - 1),
}


def values_for(schema: Schema, depth: int = 0) -> st.SearchStrategy[dict]:
    parts: dict[str, st.SearchStrategy] = {}
    optional: dict[str, st.SearchStrategy] = {}
    for f in schema.fields:
        if f.type in _INT_RANGES:
            s: st.SearchStrategy = st.integers(*_INT_RANGES[f.type])
        elif f.type is FieldType.BOOL:
            s = st.booleans()
        elif f.type is FieldType.STR:
            s = st.text(max_size=20)
        elif f.type is FieldType.BYTES:
            s = st.binary(min_size=f.size or 0, max_size=f.size or 64)
        else:
            assert f.nested is not None
            s = values_for(f.nested, depth + 1)
        if f.repeated:
            s = st.lists(s, max_size=3)
        (parts if f.required else optional)[f.name] = s
    return st.fixed_dictionaries(parts, optional=optional)


def any_message() -> st.SearchStrategy[Message]:
    def build(kind: MsgType, is_reply: bool) -> st.SearchStrategy[Message]:
        schema = (REPLIES if is_reply else REQUESTS)[kind]
        return st.builds(
            lambda rid, vals: Message(kind, is_reply, rid, vals),
            st.integers(0, 2**32 - 1),
            values_for(schema),
        )

    options = [build(k, False) for k in REQUESTS] + [build(k, True) for k in REPLIES]
    return st.one_of(options)


@settings(max_examples=400)
@given(any_message())
def test_every_message_round_trips(msg: Message) -> None:
    wire, body = encode(msg)
    back = decode(wire, body)
    assert back.msg_type is msg.msg_type and back.is_reply == msg.is_reply
    assert back.req_id == msg.req_id
    schema = (REPLIES if msg.is_reply else REQUESTS)[msg.msg_type]
    for f in schema.fields:
        if f.repeated:
            assert back.fields[f.name] == msg.fields.get(f.name, [])
        elif f.name in msg.fields:
            assert back.fields[f.name] == msg.fields[f.name]
        else:
            assert f.name not in back.fields


@settings(max_examples=400)
@given(st.integers(0, 0xFFFF), st.binary(max_size=200))
def test_arbitrary_bodies_decode_or_raise_protocol_errors(wire: int, body: bytes) -> None:
    with contextlib.suppress(MalformedMessage, UnknownMessage):
        decode(wire, body)


def test_unknown_fields_from_a_newer_peer_are_skipped() -> None:
    wire, body = encode(request(MsgType.READ, 9, id="REC1", offset=5, length=10))
    newer = body + bytes([200]) + (3).to_bytes(4, "big") + b"new"
    assert decode(wire, newer).fields == {"id": "REC1", "offset": 5, "length": 10}


def test_missing_required_field_is_malformed() -> None:
    wire, body = encode(request(MsgType.READ, 9, id="REC1", offset=5, length=10))
    try:
        decode(wire, body[:-9])  # drop the length field
    except MalformedMessage as exc:
        assert "length" in str(exc)
    else:
        raise AssertionError("truncated READ decoded")


def test_unknown_message_type_keeps_request_id_for_the_error() -> None:
    try:
        decode(0x0077, (1234).to_bytes(4, "big"))
    except UnknownMessage as exc:
        assert exc.req_id == 1234
    else:
        raise AssertionError


def test_error_reply_round_trips() -> None:
    wire, body = encode(error(5, ErrorCode.HASH_MISMATCH, "no", int(MsgType.ERASE)))
    msg = decode(wire, body)
    assert msg.msg_type is MsgType.ERROR
    assert msg.fields == {"code": 6, "message": "no", "request_type": 7}
