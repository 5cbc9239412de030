"""Frame layer: turns a noisy byte stream into checked frames and back.

Pure: bytes in, frames or errors out. The decoder never raises on input, never
hands up a frame whose CRCs fail, and keeps its buffer bounded, so a serial line
full of garbage costs memory proportional to one maximum frame only.

Layout (big-endian), see PROTOCOL.md section 2:

    0  2  SYNC     0xB7 0xC3
    2  1  VERSION  frame format version (1)
    3  1  KIND     FrameKind
    4  4  SEQ      sender's sequence number (0 for unsequenced frames)
    8  4  ACK      highest in-order sequence received from the peer
   12  2  TYPE     message type (0 for session-control frames)
   14  4  LEN      payload length
   18  2  HCRC     CRC-16/CCITT-FALSE of bytes 0..17
   20  n  PAYLOAD
 20+n  4  CRC      CRC-32 (ISO-HDLC, as zlib) of bytes 0..20+n-1
"""

from __future__ import annotations

import binascii
import enum
import struct
import zlib
from dataclasses import dataclass

SYNC = b"\xb7\xc3"
FRAME_VERSION = 1
HEADER = struct.Struct(">2sBBIIHI")
HEADER_SIZE = HEADER.size + 2  # 18 bytes of fields + HCRC
TRAILER_SIZE = 4
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

    NOISE = "noise"  # bytes before a sync pattern
    BAD_HEADER_CRC = "bad_header_crc"
    BAD_VERSION = "bad_version"
    BAD_KIND = "bad_kind"
    TOO_LONG = "too_long"
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
    #: The sequence number from a frame whose header was sound but payload was not,
    #: so the session can ask for exactly that frame again; None otherwise.
    seq: int | None = None
    kind: FrameKind | None = None


def crc16_ccitt_false(data: bytes | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout)."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(
    kind: FrameKind, seq: int, ack: int, msg_type: int, payload: bytes | memoryview = b""
) -> bytes:
    """Build one frame. Raises ValueError for a payload above the absolute limit."""
    n = len(payload)
    if n > ABSOLUTE_MAX_PAYLOAD:
        raise ValueError(f"payload of {n} bytes exceeds {ABSOLUTE_MAX_PAYLOAD}")
    head = HEADER.pack(SYNC, FRAME_VERSION, int(kind), seq, ack, msg_type, n)
    head += crc16_ccitt_false(head).to_bytes(2, "big")
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b"".join((head, payload, crc.to_bytes(4, "big")))


class FrameDecoder:
    """Incremental decoder with resynchronisation.

    Feed it whatever arrived; it returns frames and errors in stream order. After a
    bad header it slides one byte past the sync pattern and searches again, so a
    frame that starts inside the garbage of a cut frame is still found.
    """

    def __init__(self, max_payload: int = ABSOLUTE_MAX_PAYLOAD) -> None:
        self.max_payload = min(max_payload, ABSOLUTE_MAX_PAYLOAD)
        self._buf = bytearray()
        self._noise = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameError]:
        self._buf += data
        out: list[Frame | FrameError] = []
        buf = self._buf
        pos = 0
        while True:
            start = buf.find(SYNC, pos)
            if start < 0:
                # Keep a trailing 0xB7: it may be the first half of a sync pattern.
                keep = 1 if buf and buf[-1] == SYNC[0] else 0
                self._noise += len(buf) - pos - keep
                pos = len(buf) - keep
                break
            self._noise += start - pos
            pos = start
            if len(buf) - pos < HEADER_SIZE:
                break
            fields = HEADER.unpack_from(buf, pos)
            _, version, kind_raw, seq, ack, msg_type, length = fields
            hcrc = int.from_bytes(buf[pos + 18 : pos + 20], "big")
            bad: FrameErrorCode | None = None
            if crc16_ccitt_false(memoryview(buf)[pos : pos + 18]) != hcrc:
                bad = FrameErrorCode.BAD_HEADER_CRC
            elif version != FRAME_VERSION:
                bad = FrameErrorCode.BAD_VERSION
            elif kind_raw not in _KINDS:
                bad = FrameErrorCode.BAD_KIND
            elif length > self.max_payload:
                bad = FrameErrorCode.TOO_LONG
            if bad is not None:
                self._flush_noise(out)
                out.append(FrameError(bad, 2))
                pos += 2
                continue
            end = pos + HEADER_SIZE + length + TRAILER_SIZE
            if len(buf) < end:
                break
            view = memoryview(buf)
            crc = int.from_bytes(view[end - 4 : end], "big")
            ok = zlib.crc32(view[pos : end - 4]) == crc
            kind = _KINDS[kind_raw]
            self._flush_noise(out)
            if ok:
                payload = bytes(view[pos + HEADER_SIZE : end - 4])
                out.append(Frame(kind, seq, ack, msg_type, payload))
                pos = end
            else:
                # The header was sound, so its length is trusted: skip the whole frame
                # but tell the session which sequence number was damaged. Skipping
                # (rather than rescanning the payload) matters: footage may itself
                # contain bytes that look like frames, which must never surface.
                out.append(FrameError(FrameErrorCode.BAD_CRC, end - pos, seq, kind))
                pos = end
            view.release()
        self._flush_noise(out)
        del buf[:pos]
        return out

    def _flush_noise(self, out: list[Frame | FrameError]) -> None:
        if self._noise:
            out.append(FrameError(FrameErrorCode.NOISE, self._noise))
            self._noise = 0


_KINDS = {int(k): k for k in FrameKind}
