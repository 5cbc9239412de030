"""Frame layer: turns a noisy byte stream into checked frames and back.

Pure: bytes in, frames or errors out. The decoder never raises on input, never
hands up a frame whose checks fail, and keeps its buffer bounded, so a serial
line full of garbage costs memory proportional to one maximum frame only.

A frame is delimited by START and END markers, and everything between them is
escaped so the markers cannot occur inside (the HDLC idea): resynchronisation is
immediate after garbage or a frame cut short, and footage that happens to contain
frame-like bytes can never surface as a frame. See PROTOCOL.md section 2.

    START   2  0xB7 0xC3
    ---- escaped: every 0xB7 below is sent as 0xB7 0x00 ----
    VERSION 1  frame format version (1)
    KIND    1  FrameKind
    SEQ     4  sender's sequence number (0 for unsequenced frames)
    ACK     4  highest in-order sequence received from the peer
    TYPE    2  message type (0 for session-control frames)
    LEN     4  payload length
    HCRC    2  CRC-16/CCITT-FALSE of VERSION..LEN (16 bytes)
    PAYLOAD n
    CRC     4  CRC-32 (ISO-HDLC, as zlib) of VERSION..PAYLOAD
    ---- end of escaped part ----
    END     2  0xB7 0xE5

All integers are big-endian.
"""

from __future__ import annotations

import binascii
import enum
import struct
import zlib
from dataclasses import dataclass

ESC = 0xB7
START = b"\xb7\xc3"
END = b"\xb7\xe5"
_ESCAPED = b"\xb7\x00"
_RAW = b"\xb7"
FRAME_VERSION = 1
HEADER = struct.Struct(">BBIIHI")  # 16 bytes, then HCRC
HEADER_SIZE = HEADER.size + 2
TRAILER_SIZE = 4
#: Unescaped bytes around a payload (header, HCRC, CRC), without the markers.
OVERHEAD = HEADER_SIZE + TRAILER_SIZE
#: Hard ceiling on any payload, whatever a peer announces.
ABSOLUTE_MAX_PAYLOAD = 1 << 20


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

    NOISE = "noise"  # bytes outside any START..END
    TRUNCATED = "truncated"  # a new START arrived before this frame's END
    TOO_LONG = "too_long"  # no END within the size limit, or LEN above it
    BAD_HEADER_CRC = "bad_header_crc"
    BAD_VERSION = "bad_version"
    BAD_KIND = "bad_kind"
    BAD_LENGTH = "bad_length"  # LEN disagrees with the bytes between the markers
    BAD_CRC = "bad_crc"


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    seq: int
    ack: int
    msg_type: int
    payload: bytes


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


def escape(data: bytes) -> bytes:
    return data.replace(_RAW, _ESCAPED)


def unescape(data: bytes) -> bytes:
    return data.replace(_ESCAPED, _RAW)


def encode_frame(
    kind: FrameKind, seq: int, ack: int, msg_type: int, payload: bytes | memoryview = b""
) -> bytes:
    """Build one frame. Raises ValueError for a payload above the absolute limit."""
    n = len(payload)
    if n > ABSOLUTE_MAX_PAYLOAD:
        raise ValueError(f"payload of {n} bytes exceeds {ABSOLUTE_MAX_PAYLOAD}")
    head = HEADER.pack(FRAME_VERSION, int(kind), seq, ack, msg_type, n)
    head += crc16_ccitt_false(head).to_bytes(2, "big")
    crc = zlib.crc32(payload, zlib.crc32(head)).to_bytes(4, "big")
    return b"".join((START, escape(head), escape(bytes(payload)), escape(crc), END))


def _sound_header(body: bytes) -> tuple[int, int, int, int, int] | FrameErrorCode:
    """Parse an unescaped header: (kind, seq, ack, type, len) or why it is unsound."""
    if len(body) < HEADER_SIZE:
        return FrameErrorCode.BAD_LENGTH
    version, kind, seq, ack, msg_type, length = HEADER.unpack_from(body)
    if crc16_ccitt_false(body[: HEADER.size]) != int.from_bytes(body[16:18], "big"):
        return FrameErrorCode.BAD_HEADER_CRC
    if version != FRAME_VERSION:
        return FrameErrorCode.BAD_VERSION
    if kind not in _KINDS:
        return FrameErrorCode.BAD_KIND
    return kind, seq, ack, msg_type, length


class FrameDecoder:
    """Incremental decoder; feed it whatever arrived, get frames and errors in order."""

    def __init__(self, max_payload: int = ABSOLUTE_MAX_PAYLOAD) -> None:
        self.max_payload = min(max_payload, ABSOLUTE_MAX_PAYLOAD)
        # Escaping can at most double the body; anything longer cannot be a frame.
        self._max_raw = 2 * (self.max_payload + OVERHEAD) + len(START) + len(END)
        self._buf = bytearray()
        self._noise = 0
        self._scan = 2  # where to resume looking for END in a frame still arriving
        self._discarding = False  # inside an over-long frame: skip to the next START

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameError]:
        buf = self._buf
        buf += data
        out: list[Frame | FrameError] = []
        pos = 0
        while True:
            s = buf.find(START, pos)
            if s < 0:
                keep = 1 if buf and buf[-1] == ESC else 0  # maybe half a START
                self._skip(len(buf) - keep - pos)
                pos = len(buf) - keep
                break
            self._skip(s - pos)
            self._discarding = False
            pos = s
            scan = s + max(2, self._scan - 1)
            e = buf.find(END, scan)
            limit = e if e >= 0 else len(buf)
            nxt = buf.find(START, scan, limit)
            if nxt >= 0:
                self._flush_noise(out)
                seq, kind = self._header_hint(bytes(buf[s + 2 : nxt]))
                out.append(FrameError(FrameErrorCode.TRUNCATED, nxt - s, seq, kind))
                pos, self._scan = nxt, 2
                continue
            if e < 0:
                if len(buf) - s > self._max_raw:
                    keep = 1 if buf[-1] == ESC else 0  # maybe half the next START
                    self._flush_noise(out)
                    out.append(FrameError(FrameErrorCode.TOO_LONG, len(buf) - keep - s))
                    self._discarding = True
                    pos, self._scan = len(buf) - keep, 2
                else:
                    self._scan = len(buf) - s  # resume here when more arrives
                break
            self._flush_noise(out)
            out.append(self._decode(bytes(buf[s + 2 : e]), e + 2 - s))
            pos, self._scan = e + 2, 2
        self._flush_noise(out)
        del buf[:pos]
        return out

    def _skip(self, n: int) -> None:
        if n > 0 and not self._discarding:
            self._noise += n

    def _flush_noise(self, out: list[Frame | FrameError]) -> None:
        if self._noise:
            out.append(FrameError(FrameErrorCode.NOISE, self._noise))
            self._noise = 0

    def _header_hint(self, raw: bytes) -> tuple[int | None, FrameKind | None]:
        head = _sound_header(unescape(raw[: 2 * HEADER_SIZE])[:HEADER_SIZE])
        if isinstance(head, FrameErrorCode):
            return None, None
        return head[1], _KINDS[head[0]]

    def _decode(self, raw: bytes, size: int) -> Frame | FrameError:
        body = unescape(raw)
        head = _sound_header(body)
        if isinstance(head, FrameErrorCode):
            return FrameError(head, size)
        kind_raw, seq, ack, msg_type, length = head
        kind = _KINDS[kind_raw]
        if length > self.max_payload:
            return FrameError(FrameErrorCode.TOO_LONG, size, seq, kind)
        if len(body) != HEADER_SIZE + length + TRAILER_SIZE:
            return FrameError(FrameErrorCode.BAD_LENGTH, size, seq, kind)
        if zlib.crc32(memoryview(body)[:-4]) != int.from_bytes(body[-4:], "big"):
            return FrameError(FrameErrorCode.BAD_CRC, size, seq, kind)
        return Frame(kind, seq, ack, msg_type, body[HEADER_SIZE:-TRAILER_SIZE])


_KINDS = {int(k): k for k in FrameKind}
