"""READ_STREAM replies (PROTOCOL.md 4.5.15) without copying the footage they carry.

A reply is an ordinary TLV body (``ReadStreamReply``); these two functions only
spare the bytes of footage a copy on each side. ``reply_parts`` builds it as pieces
(a 22-byte prefix, the data as read from storage, and the ``last`` field when it is
the last), which the session sends back to back; ``decode_reply`` reads the layout
the reference encoder produces with a view onto the payload, and gives any other
valid TLV layout to the general codec, so both accept and refuse the same bodies.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .codec import FIELD_HEAD, MalformedMessage, decode_body
from .messages import REPLIES, MsgType

#: REQ_ID, then field 1 (offset, u64) and the head of field 2 (data): 22 bytes.
PREFIX = struct.Struct(">IBIQBI")
#: Field 3 (``last``) set: what ends the final reply of a stream.
LAST = FIELD_HEAD.pack(3, 1) + b"\x01"
_SCHEMA = REPLIES[MsgType.READ_STREAM]


class StreamReply(NamedTuple):  # a tuple: one made per reply, cheaply
    req_id: int
    offset: int
    #: The payload's own bytes (a read-only view when the payload was ``bytes``).
    data: bytes | memoryview
    last: bool


def reply_parts(
    req_id: int, offset: int, data: bytes | memoryview, last: bool
) -> tuple[bytes | memoryview, ...]:
    """The body of one READ_STREAM reply, as pieces never joined."""
    head = PREFIX.pack(req_id & 0xFFFFFFFF, 1, 8, offset, 2, len(data))
    return (head, data, LAST) if last else (head, data)


def decode_reply(payload: bytes | memoryview) -> StreamReply:
    """Decode a READ_STREAM reply body. Raises MalformedMessage as ``decode`` would."""
    size = len(payload)
    if size >= PREFIX.size:
        req_id, t1, l1, offset, t2, n = PREFIX.unpack_from(payload)
        end = PREFIX.size + n
        if t1 == 1 and l1 == 8 and t2 == 2 and end <= size:
            view = memoryview(payload)
            rest = size - end
            if rest == 0:
                return StreamReply(req_id, offset, view[PREFIX.size : end], False)
            if rest == len(LAST) and view[end : end + 5] == LAST[:5] and view[end + 5] <= 1:
                return StreamReply(req_id, offset, view[PREFIX.size : end], view[end + 5] == 1)
    req_id, fields = decode_body(_SCHEMA, payload)  # any other layout: the general rules
    return StreamReply(req_id, fields["offset"], fields["data"], bool(fields.get("last")))


__all__ = ["LAST", "PREFIX", "MalformedMessage", "StreamReply", "decode_reply", "reply_parts"]
