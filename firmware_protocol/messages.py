"""The message dictionary: every message type, its fields, and the enums they use.

This table is the protocol; PROTOCOL.md section 4 describes the same facts and
``tests/test_vectors.py`` keeps the two in step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .codec import FieldSpec as F
from .codec import FieldType as T
from .codec import MalformedMessage, Schema, decode_body, encode_body

PROTOCOL_VERSION = 2
#: Versions this implementation can speak, lowest first. Version 1 sessions carry
#: no request authenticators: a version 2 peer serves or sends only unprivileged
#: requests in them (a dock reads an old recorder, never changes or erases it).
SUPPORTED_VERSIONS = (1, 2)
#: The first version whose privileged requests carry a session authenticator.
AUTHENTICATED_VERSION = 2
REPLY_BIT = 0x8000


class MsgType(enum.IntEnum):
    HELLO = 0x0001
    STATUS = 0x0002
    SET_TIME = 0x0003
    ASSIGN = 0x0004
    LIST_RECORDINGS = 0x0005
    READ = 0x0006
    ERASE = 0x0007
    EVENTS = 0x0008
    SELF_TEST = 0x0009
    MASS_STORAGE = 0x000A
    AUTH_CHALLENGE = 0x000B
    AUTH_PROVE = 0x000C
    ENROL = 0x000D
    READ_STREAM = 0x000E
    ERROR = 0xFFFF

    @property
    def reply(self) -> int:
        return int(self) | REPLY_BIT


class ErrorCode(enum.IntEnum):
    UNKNOWN_MESSAGE = 1
    MALFORMED = 2
    AUTH_REQUIRED = 3
    AUTH_FAILED = 4
    NOT_FOUND = 5
    HASH_MISMATCH = 6
    OUT_OF_RANGE = 7
    BUSY = 8
    UNSUPPORTED = 9
    VERSION_UNSUPPORTED = 10
    STORAGE = 11
    INTERNAL = 12
    NOT_ENROLLED = 13
    ALREADY_ENROLLED = 14


class Capability(enum.IntFlag):
    """Optional features a recorder announces in HELLO. Absent bits mean absent."""

    BATTERY_HEALTH = 1 << 0
    SIGNATURE = 1 << 1
    MASS_STORAGE = 1 << 2
    EVENT_LOG = 1 << 3
    SELF_TEST = 1 << 4
    ASSIGN = 1 << 5
    ERASE = 1 << 6
    #: READ_STREAM: one request, many replies (PROTOCOL.md 4.5.15, 6.2a).
    STREAM_READ = 1 << 7


class EventKind(enum.IntEnum):
    POWER_ON = 1
    POWER_OFF = 2
    RECORD_START = 3
    RECORD_STOP = 4
    INTERRUPTED = 5
    LOW_BATTERY = 6
    TIME_SET = 7
    ASSIGNED = 8
    ERASED = 9
    FAULT = 10
    DOCKED = 11
    UNDOCKED = 12


class StopReason(enum.IntEnum):
    MANUAL = 1
    BATTERY = 2
    STORAGE_FULL = 3
    FAULT = 4
    OTHER = 5


class RecordingFlag(enum.IntFlag):
    IMPORTANT = 1 << 0
    INTERRUPTED = 1 << 1
    CONTINUES_PREVIOUS = 1 << 2


class FaultFlag(enum.IntFlag):
    SENSOR = 1 << 0
    STORAGE = 1 << 1
    BATTERY = 1 << 2
    CLOCK = 1 << 3
    MICROPHONE = 1 << 4
    OVERHEAT = 1 << 5


# Messages that change the device: refused with AUTH_REQUIRED until the dock has
# proved itself with AUTH_CHALLENGE / AUTH_PROVE in this session, and (version 2)
# refused with AUTH_FAILED unless they carry a valid session authenticator.
# ENROL is privileged too once the recorder holds a secret (re-keying).
PRIVILEGED = frozenset({MsgType.SET_TIME, MsgType.ASSIGN, MsgType.ERASE, MsgType.MASS_STORAGE})

RECORDING = Schema(
    "Recording",
    (
        F(1, "id", T.STR, required=True),
        F(2, "start_ms", T.I64, required=True),
        F(3, "end_ms", T.I64, required=True),
        F(4, "size", T.U64, required=True),
        F(5, "sha256", T.BYTES, required=True, size=32),
        F(6, "signature", T.BYTES, size=64),
        F(7, "flags", T.U32),
        F(8, "sequence", T.U32),
        F(9, "previous_id", T.STR),
        F(10, "officer_id", T.STR),
        F(11, "stop_reason", T.U8),
    ),
)
EVENT = Schema(
    "Event",
    (
        F(1, "index", T.U32, required=True),
        F(2, "time_ms", T.I64, required=True),
        F(3, "kind", T.U8, required=True),
        F(4, "reason", T.U8),
        F(5, "recording_id", T.STR),
        F(6, "battery_percent", T.U8),
        F(7, "detail", T.STR),
    ),
)
SELF_TEST_ITEM = Schema(
    "SelfTestItem",
    (
        F(1, "name", T.STR, required=True),
        F(2, "passed", T.BOOL, required=True),
        F(3, "detail", T.STR),
    ),
)

REQUESTS: dict[MsgType, Schema] = {
    MsgType.HELLO: Schema(
        "Hello",
        (
            F(1, "min_version", T.U16, required=True),
            F(2, "max_version", T.U16, required=True),
            F(3, "host_id", T.STR),
        ),
    ),
    MsgType.STATUS: Schema("Status"),
    MsgType.SET_TIME: Schema(
        "SetTime", (F(1, "utc_ms", T.I64, required=True), F(2, "source", T.STR))
    ),
    MsgType.ASSIGN: Schema(
        "Assign",
        (
            F(1, "officer_id", T.STR, required=True),
            F(2, "officer_name", T.STR, required=True),
            F(3, "unit", T.STR, required=True),
        ),
    ),
    MsgType.LIST_RECORDINGS: Schema(
        "ListRecordings", (F(1, "start", T.U32), F(2, "max_count", T.U16))
    ),
    MsgType.READ: Schema(
        "Read",
        (
            F(1, "id", T.STR, required=True),
            F(2, "offset", T.U64, required=True),
            F(3, "length", T.U32, required=True),
        ),
    ),
    MsgType.READ_STREAM: Schema(
        "ReadStream",
        (
            F(1, "id", T.STR, required=True),
            F(2, "offset", T.U64, required=True),
            F(3, "length", T.U64, required=True),
            F(4, "chunk", T.U32, required=True),
        ),
    ),
    MsgType.ERASE: Schema(
        "Erase",
        (F(1, "id", T.STR, required=True), F(2, "sha256", T.BYTES, required=True, size=32)),
    ),
    MsgType.EVENTS: Schema("Events", (F(1, "since", T.U32), F(2, "max_count", T.U16))),
    MsgType.SELF_TEST: Schema("SelfTest"),
    MsgType.MASS_STORAGE: Schema("MassStorage", (F(1, "enable", T.BOOL, required=True),)),
    MsgType.AUTH_CHALLENGE: Schema(
        "AuthChallenge", (F(1, "host_nonce", T.BYTES, required=True, size=32),)
    ),
    MsgType.AUTH_PROVE: Schema("AuthProve", (F(1, "host_mac", T.BYTES, required=True, size=32),)),
    MsgType.ENROL: Schema(
        "Enrol",
        (
            # Version 1 only: the secret itself, in clear. Version 2 refuses it.
            F(1, "secret", T.BYTES, size=32),
            # Version 2: the dock's ephemeral X25519 public key (section 5.3).
            F(2, "host_public_key", T.BYTES, size=32),
        ),
    ),
}

REPLIES: dict[MsgType, Schema] = {
    MsgType.HELLO: Schema(
        "HelloReply",
        (
            F(1, "version", T.U16, required=True),
            F(2, "firmware", T.STR, required=True),
            F(3, "model", T.STR, required=True),
            F(4, "serial", T.STR, required=True),
            F(5, "capabilities", T.U32, required=True),
            F(6, "vendor", T.STR),
            F(7, "enrolled", T.BOOL),
            F(8, "device_public_key", T.BYTES, size=32),
        ),
    ),
    MsgType.STATUS: Schema(
        "StatusReply",
        (
            F(1, "battery_percent", T.U8, required=True),
            F(2, "charging", T.BOOL, required=True),
            F(3, "storage_total", T.U64, required=True),
            F(4, "storage_free", T.U64, required=True),
            F(5, "recording", T.BOOL, required=True),
            F(6, "device_time_ms", T.I64, required=True),
            F(7, "fault_flags", T.U32, required=True),
            F(8, "recording_count", T.U32, required=True),
            F(9, "event_count", T.U32),
            F(10, "officer_id", T.STR),
            F(11, "battery_health_percent", T.U8),
            F(12, "battery_cycles", T.U32),
            F(13, "battery_temp_decicelsius", T.I32),
            # The device clock when the request was delivered (section 6.5): with
            # device_time_ms (read when the reply is built) the dock can leave the
            # recorder's processing time out of its clock offset, NTP-style.
            F(14, "receive_time_ms", T.I64),
        ),
    ),
    MsgType.SET_TIME: Schema(
        "SetTimeReply",
        (F(1, "drift_ms", T.I64, required=True), F(2, "device_time_ms", T.I64, required=True)),
    ),
    MsgType.ASSIGN: Schema("AssignReply"),
    MsgType.LIST_RECORDINGS: Schema(
        "ListRecordingsReply",
        (
            F(1, "total", T.U32, required=True),
            F(2, "recordings", T.NESTED, repeated=True, nested=RECORDING),
        ),
    ),
    MsgType.READ: Schema(
        "ReadReply", (F(1, "offset", T.U64, required=True), F(2, "data", T.BYTES, required=True))
    ),
    MsgType.READ_STREAM: Schema(
        "ReadStreamReply",
        (
            F(1, "offset", T.U64, required=True),
            F(2, "data", T.BYTES, required=True),
            F(3, "last", T.BOOL),
        ),
    ),
    MsgType.ERASE: Schema("EraseReply"),
    MsgType.EVENTS: Schema(
        "EventsReply",
        (
            F(1, "next", T.U32, required=True),
            F(2, "events", T.NESTED, repeated=True, nested=EVENT),
        ),
    ),
    MsgType.SELF_TEST: Schema(
        "SelfTestReply",
        (
            F(1, "passed", T.BOOL, required=True),
            F(2, "items", T.NESTED, repeated=True, nested=SELF_TEST_ITEM),
        ),
    ),
    MsgType.MASS_STORAGE: Schema(
        "MassStorageReply",
        (
            F(1, "enabled", T.BOOL, required=True),
            F(2, "volume_label", T.STR),
            F(3, "local_path", T.STR),
        ),
    ),
    MsgType.AUTH_CHALLENGE: Schema(
        "AuthChallengeReply", (F(1, "device_nonce", T.BYTES, required=True, size=32),)
    ),
    MsgType.AUTH_PROVE: Schema(
        "AuthProveReply", (F(1, "device_mac", T.BYTES, required=True, size=32),)
    ),
    MsgType.ENROL: Schema(
        "EnrolReply",
        (
            F(1, "device_public_key", T.BYTES, size=32),
            F(2, "signature", T.BYTES, size=64),
        ),
    ),
    MsgType.ERROR: Schema(
        "Error",
        (
            F(1, "code", T.U16, required=True),
            F(2, "message", T.STR),
            F(3, "request_type", T.U16),
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: its type, whether it is a reply, its request id, fields."""

    msg_type: MsgType
    is_reply: bool
    req_id: int
    fields: dict[str, Any]

    @property
    def wire_type(self) -> int:
        if self.msg_type is MsgType.ERROR:
            return int(MsgType.ERROR)
        return self.msg_type.reply if self.is_reply else int(self.msg_type)


class UnknownMessage(Exception):
    """A type code this implementation does not know; answer ERROR UNKNOWN_MESSAGE."""

    def __init__(self, wire_type: int, req_id: int | None) -> None:
        super().__init__(f"unknown message type 0x{wire_type:04x}")
        self.wire_type = wire_type
        self.req_id = req_id


def schema_for(wire_type: int) -> tuple[MsgType, bool, Schema]:
    """Map a wire type to (MsgType, is_reply, schema); raises KeyError if unknown."""
    if wire_type == MsgType.ERROR:
        return MsgType.ERROR, True, REPLIES[MsgType.ERROR]
    is_reply = bool(wire_type & REPLY_BIT)
    base = MsgType(wire_type & ~REPLY_BIT)  # ValueError if unknown
    table = REPLIES if is_reply else REQUESTS
    return base, is_reply, table[base]


def encode(msg: Message) -> tuple[int, bytes]:
    """Encode to (wire type, payload)."""
    _, _, schema = schema_for(msg.wire_type)
    return msg.wire_type, encode_body(schema, msg.req_id, msg.fields)


def decode(wire_type: int, payload: bytes | memoryview) -> Message:
    """Decode a frame's type and payload. Raises UnknownMessage or MalformedMessage."""
    try:
        base, is_reply, schema = schema_for(wire_type)
    except (KeyError, ValueError):
        req_id = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else None
        raise UnknownMessage(wire_type, req_id) from None
    req_id, fields = decode_body(schema, payload)
    return Message(base, is_reply, req_id, fields)


def request(msg_type: MsgType, req_id: int, **fields: Any) -> Message:
    return Message(msg_type, False, req_id, fields)


def reply(msg_type: MsgType, req_id: int, **fields: Any) -> Message:
    return Message(msg_type, True, req_id, fields)


def error(
    req_id: int, code: ErrorCode, message: str = "", request_type: int | None = None
) -> Message:
    fields: dict[str, Any] = {"code": int(code)}
    if message:
        fields["message"] = message
    if request_type is not None:
        fields["request_type"] = request_type
    return Message(MsgType.ERROR, True, req_id, fields)


__all__ = [
    "Capability",
    "ErrorCode",
    "EventKind",
    "FaultFlag",
    "MalformedMessage",
    "Message",
    "MsgType",
    "RecordingFlag",
    "StopReason",
    "UnknownMessage",
    "decode",
    "encode",
    "error",
    "reply",
    "request",
]
