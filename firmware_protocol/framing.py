"""Frame layer: turns a noisy byte stream into checked frames and back.

Pure: bytes in, frames or errors out. The decoder never raises on input, never
hands up a frame whose checks fail, and keeps its buffer bounded, so a serial
line full of garbage costs memory proportional to one maximum frame only.

Frames are length-delimited, not byte-stuffed: a recorder can send footage
straight from flash (DMA) behind a header, and the dock never touches a payload
byte except to check its CRC. Resynchronisation comes from the header's own CRC
(a false START is rejected before its length is believed) and from rescanning:
when a frame fails its checks, decoding resumes just after its START, so a frame
that began inside a cut-short one is still found. See PROTOCOL.md section 2.

    START   2  0xB7 0xC3
    VERSION 1  frame format version (1)
    KIND    1  FrameKind
    SEQ     4  sender's sequence number (0 for unsequenced frames)
    ACK     4  highest in-order sequence received from the peer
    TYPE    2  message type (0 for session-control frames)
    LEN     4  payload length
    HCRC    2  CRC-16/CCITT-FALSE of VERSION..LEN (16 bytes)
    PAYLOAD n
    CRC     4  CRC-32 (ISO-HDLC, as zlib) of VERSION..PAYLOAD
    END     2  0xB7 0xE5

All integers are big-endian.
"""

from __future__ import annotations

import binascii
import enum
import struct
from binascii import crc_hqx  # CRC-16/CCITT-FALSE with 0xFFFF: crc16_ccitt_false
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

try:  # the same CRC-32 as zlib's, computed with SIMD instructions: 4x faster
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - zlib-ng is a dependency; stay correct without it
    from zlib import crc32

START = b"\xb7\xc3"
END = b"\xb7\xe5"
FRAME_VERSION = 1
HEADER = struct.Struct(">BBIIHI")  # 16 bytes, then HCRC
HEADER_SIZE = HEADER.size + 2
TRAILER_SIZE = 4
#: Bytes around a payload: START, header, HCRC, CRC, END.
OVERHEAD = len(START) + HEADER_SIZE + TRAILER_SIZE + len(END)
#: Hard ceiling on any payload, whatever a peer announces.
ABSOLUTE_MAX_PAYLOAD = 1 << 20


def _unheld(buf: bytearray) -> bool:
    """True when no view of ``buf`` is alive: a bytearray that has lent its buffer (a
    memoryview, or any slice of one, exists) cannot change size; one that has not is
    grown by a byte and shrunk back."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True


class FrameKind(enum.IntEnum):
    """What a frame carries; only MSG frames are sequenced and delivered up."""

    MSG = 0x01
    ACK = 0x02
    NAK = 0x03
    SYN = 0x04
    SYN_ACK = 0x05
    RST = 0x06


class FrameErrorCode(enum.Enum):
    """Why bytes were discarded; machine-readable names used in test vectors."""

    NOISE = "noise"  # bytes outside any frame
    BAD_HEADER_CRC = "bad_header_crc"
    BAD_VERSION = "bad_version"
    BAD_KIND = "bad_kind"
    TOO_LONG = "too_long"  # LEN above the receiver's limit
    BAD_END = "bad_end"  # no END marker where LEN says the frame ends (cut short)
    BAD_CRC = "bad_crc"


class Frame(NamedTuple):  # a tuple: one is made per frame, 8x faster than a frozen dataclass
    kind: FrameKind
    seq: int
    ack: int
    msg_type: int
    #: ``bytes``, or for a long payload a read-only view of the buffer it was read
    #: into (see ``FrameDecoder.LEND``): the decoder never writes there again.
    payload: bytes | memoryview


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes the decoder threw away, and why. Never fatal: decoding goes on."""

    code: FrameErrorCode
    discarded: int
    #: Sequence number and kind from a frame whose header was sound but whose body
    #: was not, so the session can ask for exactly that frame again.
    seq: int | None = None
    kind: FrameKind | None = None


def crc16_ccitt_false(data: bytes | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout)."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_header(kind: FrameKind, seq: int, ack: int, msg_type: int, length: int) -> bytes:
    """START and the header with its CRC: what precedes a payload on the wire."""
    head = HEADER.pack(FRAME_VERSION, int(kind), seq, ack, msg_type, length)
    return START + head + crc16_ccitt_false(head).to_bytes(2, "big")


def encode_frame(
    kind: FrameKind, seq: int, ack: int, msg_type: int, payload: bytes | memoryview = b""
) -> bytes:
    """Build one frame. Raises ValueError for a payload above the absolute limit."""
    return b"".join(encode_frame_parts(kind, seq, ack, msg_type, (payload,)))


def encode_frame_parts(
    kind: FrameKind, seq: int, ack: int, msg_type: int, parts: Sequence[bytes | memoryview]
) -> list[bytes | memoryview]:
    """One frame as pieces (header, the payload's own parts, trailer), never joined:
    a transport writes them with one gathering write (``writev``/``sendmsg``), so a
    payload of footage is not copied to frame it. Raises ValueError as ``encode_frame``."""
    n = sum(map(len, parts))  # map, filter: no Python-level call per piece
    if n > ABSOLUTE_MAX_PAYLOAD:
        raise ValueError(f"payload of {n} bytes exceeds {ABSOLUTE_MAX_PAYLOAD}")
    fields = HEADER.pack(FRAME_VERSION, kind, seq, ack, msg_type, n)  # encode_header, inline
    head = START + fields + crc_hqx(fields, 0xFFFF).to_bytes(2, "big")
    crc = crc32(memoryview(head)[2:])
    for p in parts:
        crc = crc32(p, crc)
    return [head, *filter(len, parts), crc.to_bytes(4, "big") + END]


class FrameDecoder:
    """Incremental decoder; feed it whatever arrived, get frames and errors in order.

    It owns one buffer, reused from frame to frame: ``feed`` copies bytes into it,
    or a transport reads straight into it (``buffer`` then ``commit``), so no read
    allocates. A good frame's short payload is copied out, once, into the ``bytes``
    handed up; a long one (footage) is not copied at all: it is handed up as a
    read-only view of the buffer, which is then set aside and never written again
    while anything holds a view of it (``_unheld``: it has no export left), and the
    decoder goes on in a spare one. The buffer grows to hold one frame of the
    largest size allowed plus one read, never more; at most SPARES buffers are
    kept besides it (those still held are the holder's memory, as ``bytes`` were).
    """

    #: Room the buffer starts with; it grows (by replacement) when a frame needs more.
    INITIAL = 64 * 1024
    #: A frame lacking at least this many bytes is read to its end exactly.
    EXACT = 16 * 1024
    #: A payload at least this long is lent (a view), not copied.
    LEND = 16 * 1024
    #: Buffers kept aside for reuse once nothing holds a view of them.
    SPARES = 4

    def __init__(self, max_payload: int = ABSOLUTE_MAX_PAYLOAD) -> None:
        self.max_payload = min(max_payload, ABSOLUTE_MAX_PAYLOAD)
        self._buf = bytearray(self.INITIAL)
        self._view = memoryview(self._buf)
        self._lent_view = self._view.toreadonly()  # what lent payloads are cut from
        self._lent = False  # a payload in _buf is lent: change buffers before a write
        self._spares: list[bytearray] = []  # set-aside buffers, oldest first
        self._start = 0  # live bytes are _buf[_start:_end]
        self._end = 0
        self._need = 0  # bytes the frame under way still lacks (0: none known)
        self._noise = 0

    @property
    def buffered(self) -> int:
        return self._end - self._start

    def buffer(self, size: int) -> memoryview:
        """Writable room for a transport to read into; then call ``commit`` with the
        count. While a long frame is under way the room is exactly what it lacks, so
        the read ends where the frame ends and the buffer is empty again (nothing is
        moved); otherwise up to ``size`` bytes, at most INITIAL."""
        want = self._need if self._need >= self.EXACT else min(size, self.INITIAL)
        if len(self._buf) - self._end < want:
            self._make_room(want)
        return self._view[self._end : self._end + want]

    def commit(self, n: int) -> list[Frame | FrameError]:
        """Decode after ``n`` bytes were written into the room ``buffer`` gave."""
        if not 0 <= n <= len(self._buf) - self._end:
            raise ValueError(f"commit of {n} bytes: the buffer had room for fewer")
        self._end += n
        return self._decode()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameError]:
        n = len(data)
        self._make_room(n)
        self._view[self._end : self._end + n] = data
        self._end += n
        return self._decode()

    def _make_room(self, n: int) -> None:
        if len(self._buf) - self._end >= n:
            return
        live = self._end - self._start
        if len(self._buf) >= live + n:  # move what is live to the front
            self._view[:live] = self._view[self._start : self._end]
        else:  # grow by replacement: views handed out keep the old buffer
            size = max(live + n, 2 * len(self._buf))
            new = bytearray(size)
            new[:live] = self._view[self._start : self._end]
            self._use(new)
        self._start, self._end = 0, live

    def _use(self, buf: bytearray) -> None:
        self._buf, self._view = buf, memoryview(buf)
        self._lent_view = self._view.toreadonly()

    def _change_buffers(self) -> None:
        """The buffer holds a lent payload: set it aside and go on in a spare one
        nobody holds a view of (or a new one), with the bytes not yet decoded."""
        old, spares = self._buf, self._spares
        live = self._end - self._start
        new = None
        for i in range(len(spares)):
            if len(spares[i]) >= live and _unheld(spares[i]):
                new = spares.pop(i)
                break
        if new is None:
            new = bytearray(max(len(old), self.INITIAL))
        new[:live] = self._view[self._start : self._end]
        spares.append(old)
        if len(spares) > self.SPARES:
            del spares[0]  # still held, or the holder's to free: never reused
        self._use(new)
        self._start, self._end = 0, live
        self._lent = False

    def _decode(self) -> list[Frame | FrameError]:
        buf, view = self._buf, self._view
        out: list[Frame | FrameError] = []
        pos = self._start
        end_of_data = self._end
        self._need = 0
        while True:
            s = buf.find(START, pos, end_of_data)
            if s < 0:
                # half a START
                keep = 1 if end_of_data > pos and buf[end_of_data - 1] == START[0] else 0
                self._noise += end_of_data - keep - pos
                pos = end_of_data - keep
                break
            self._noise += s - pos
            pos = s
            h = s + 2
            if end_of_data - h < HEADER_SIZE:
                break
            version, kind_raw, seq, ack, msg_type, length = HEADER.unpack_from(buf, h)
            bad: FrameErrorCode | None = None
            if crc_hqx(view[h : h + 16], 0xFFFF) != (buf[h + 16] << 8 | buf[h + 17]):
                bad = FrameErrorCode.BAD_HEADER_CRC
            elif version != FRAME_VERSION:
                bad = FrameErrorCode.BAD_VERSION
            elif kind_raw not in _KINDS:
                bad = FrameErrorCode.BAD_KIND
            if bad is not None:
                self._flush_noise(out)
                out.append(FrameError(bad, len(START)))
                pos = h  # a false or damaged START: look again right after it
                continue
            kind = _KINDS[kind_raw]
            if length > self.max_payload:
                self._flush_noise(out)
                out.append(FrameError(FrameErrorCode.TOO_LONG, len(START), seq, kind))
                pos = h
                continue
            p = h + HEADER_SIZE
            c = p + length
            e = c + _TAIL
            if end_of_data < e:
                self._need = e - end_of_data
                break  # wait for the rest
            if self._noise:
                self._flush_noise(out)
            if view[c + 4 : e] != END:
                out.append(FrameError(FrameErrorCode.BAD_END, len(START), seq, kind))
                pos = h  # cut short: a real frame may start inside it
            elif crc32(view[h:c]) != int.from_bytes(view[c : c + 4], "big"):
                out.append(FrameError(FrameErrorCode.BAD_CRC, len(START), seq, kind))
                pos = h
            elif length >= self.LEND:
                out.append(Frame(kind, seq, ack, msg_type, self._lent_view[p:c]))
                self._lent = True
                pos = e
            else:
                out.append(Frame(kind, seq, ack, msg_type, bytes(view[p:c])))
                pos = e
        if self._noise:
            self._flush_noise(out)
        if pos >= end_of_data:
            self._start = self._end = 0
        else:
            self._start = pos
        if self._lent:
            self._change_buffers()
        return out

    def _flush_noise(self, out: list[Frame | FrameError]) -> None:
        if self._noise:
            out.append(FrameError(FrameErrorCode.NOISE, self._noise))
            self._noise = 0


_KINDS = {int(k): k for k in FrameKind}
_TAIL = TRAILER_SIZE + len(END)
