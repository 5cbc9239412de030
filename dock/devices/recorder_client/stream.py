"""The dock's side of READ_STREAM (PROTOCOL.md 6.2a): every reply checked against
what was asked before a byte of it reaches the sink.

A stream is one request for ``[start, stop)`` of a recording in replies of at most
``chunk`` bytes. Its replies must come in order, each starting exactly where the
previous ended, none empty but the last, none past ``stop``, and the last ending
exactly at ``stop``; a second stream's replies may only follow the first's last.
Anything else (an offset out of order, a duplicate, an overlap, extra bytes, a
stream that ends short or a reply to a stream never asked for) is a
ProtocolViolation. Memory: what one read from the link delivers, at most.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from dock.devices.recorder_client.bounds import MAX_ID_BYTES
from dock.devices.recorder_client.errors import ProtocolViolation, RecorderRefused
from firmware_protocol.messages import MalformedMessage, MsgType, decode
from firmware_protocol.stream import decode_reply

#: Replies per stream the dock asks for: small enough that the next stream picks up
#: a new chunk size soon, large enough that re-asking costs little (one round trip).
STREAM_FRAMES = 64
#: Streams the dock keeps requested at once: the next is asked for while the
#: current one flows, so the recorder never waits for a request.
STREAMS_AHEAD = 2

_REPLY = MsgType.READ_STREAM.reply
_ERROR = int(MsgType.ERROR)


@dataclass
class Stream:
    req_id: int
    start: int
    stop: int
    chunk: int
    next: int = field(init=False)
    done: bool = False
    refused: RecorderRefused | None = None

    def __post_init__(self) -> None:
        self.next = self.start


class StreamReader:
    """The streams of one read: requested, receiving, and the checked data waiting
    for the sink, in order."""

    def __init__(self, rec_id: str) -> None:
        self.rec_id = rec_id[:MAX_ID_BYTES]
        self.streams: deque[Stream] = deque()
        #: (offset, data, damaged copies) checked and waiting for the sink
        self.ready: deque[tuple[int, bytes | memoryview, int]] = deque()

    def expect(self, req_id: int, start: int, stop: int, chunk: int) -> None:
        self.streams.append(Stream(req_id, start, stop, chunk))

    @property
    def open(self) -> int:
        return len(self.streams)

    def has_news(self) -> bool:
        """Data to hand on, or the oldest stream over (ended or refused)."""
        head = self.streams[0] if self.streams else None
        return bool(self.ready) or head is None or head.done or head.refused is not None

    def finish(self) -> None:
        """Drop the streams that are over; raise the refusal that ended one."""
        while self.streams and (self.streams[0].done or self.streams[0].refused):
            head = self.streams.popleft()
            if head.refused is not None:
                raise head.refused

    def offer(self, wire_type: int, payload: bytes | memoryview, damaged: int) -> bool:
        """Take a delivered message if it belongs to these streams (True), else leave
        it to the caller (False). ProtocolViolation when it breaks the stream."""
        if wire_type == _ERROR:
            return self._offer_error(payload)
        if wire_type != _REPLY:
            return False
        try:
            r = decode_reply(payload)
        except MalformedMessage as exc:
            raise ProtocolViolation(f"READ_STREAM of {self.rec_id!r}: {exc}") from None
        streams = self.streams
        head = streams[0] if streams else None  # the one receiving, as a rule
        if head is not None and (head.done or head.refused is not None):
            head = next((s for s in streams if not s.done and s.refused is None), None)
        if head is None or r.req_id != head.req_id:
            asked = any(s.req_id == r.req_id for s in self.streams)
            raise ProtocolViolation(
                f"READ_STREAM of {self.rec_id!r}: a reply to request {r.req_id} "
                + ("before the stream ahead of it ended" if asked else "the dock is not reading")
            )
        n = len(r.data)
        if r.offset != head.next:
            raise ProtocolViolation(
                f"{self._where(head)}: {n} bytes at {r.offset}, expected the bytes at {head.next}"
            )
        if n > head.chunk or r.offset + n > head.stop:
            raise ProtocolViolation(
                f"{self._where(head)}: {n} bytes at {r.offset}, more than asked "
                f"(chunks of at most {head.chunk}, up to {head.stop})"
            )
        if r.last and r.offset + n != head.stop:
            raise ProtocolViolation(
                f"{self._where(head)}: ended at {r.offset + n}, short of {head.stop}"
            )
        if not n and not r.last:
            raise ProtocolViolation(f"{self._where(head)}: an empty reply at {r.offset}")
        if n:
            self.ready.append((r.offset, r.data, damaged))
        head.next += n
        head.done = r.last
        return True

    def _where(self, s: Stream) -> str:
        return f"READ_STREAM of {self.rec_id!r} [{s.start}, {s.stop})"

    def _offer_error(self, payload: bytes | memoryview) -> bool:
        try:
            msg = decode(_ERROR, payload)
        except MalformedMessage:
            return False
        stream = next((s for s in self.streams if s.req_id == msg.req_id), None)
        if stream is None or stream.done:
            return False
        f = msg.fields
        stream.refused = RecorderRefused(f["code"], f.get("message", ""), f.get("request_type"))
        return True
