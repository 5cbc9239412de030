"""Session layer: reliable, ordered, exactly-once delivery over a lossy frame link.

Sans-I/O and clock-free: every call takes ``now`` (seconds, any monotonic origin)
from the caller. Bytes come in through ``receive`` and go out through ``outgoing``;
``next_deadline`` says when to call ``on_timer``. The same class serves the dock
(initiator) and the recorder (responder), so footage flowing recorder -> dock gets
the same guarantees as commands flowing dock -> recorder.

Mechanisms (PROTOCOL.md section 3): 32-bit sequence numbers per direction,
cumulative ACKs piggybacked on every frame, a receive window that buffers frames
arriving out of order, NAKs for damaged or missing frames (fast retransmit),
one retransmission timer for the oldest frame not yet acknowledged (restarted
whenever the cumulative ACK advances, so a window queued behind a slow link is
never timed from its first frame; RFC 6298), RTT estimation (SRTT/RTTVAR) with
Karn's rule and an RTO that backs off on a timeout until a new sample, and a
SYN/SYN_ACK open that a restarted peer can repeat.

Over 400 lines on purpose: these mechanisms share one state (sequence numbers, window,
timers, RTT) that every frame changes, so they are read and reviewed together in one
class, as h11 keeps its state machine in one file.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .framing import (
    ABSOLUTE_MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameError,
    FrameErrorCode,
    FrameKind,
    encode_frame_parts,
)

SYN_PAYLOAD = struct.Struct(">IHI")  # session id, window, max payload
MAX_SEQ = 0xFFFFFFFF
#: Every peer must accept payloads of at least this size, whatever it announces.
MIN_PAYLOAD = 512


class Role(enum.Enum):
    INITIATOR = "initiator"  # the dock
    RESPONDER = "responder"  # the recorder


class State(enum.Enum):
    CLOSED = "closed"
    SYN_SENT = "syn_sent"
    OPEN = "open"
    FAILED = "failed"


class Delivered(NamedTuple):
    """A message from the peer, delivered exactly once and in order. A tuple: one
    is made per message, 8x faster than a frozen dataclass."""

    msg_type: int
    #: ``bytes``, or a read-only view for a long one (``Frame.payload``)
    payload: bytes | memoryview
    #: Damaged copies of this frame seen before a good one: how hard the line was
    #: on it (the dock sizes its READs from this).
    damaged_copies: int = 0


@dataclass(frozen=True, slots=True)
class Opened:
    session_id: int


@dataclass(frozen=True, slots=True)
class PeerReset:
    """The peer has no (or a new) session: everything unacknowledged is void."""

    reason: str


@dataclass(frozen=True, slots=True)
class LinkFailed:
    reason: str


_CARRIES_ACK = (FrameKind.MSG, FrameKind.NAK, FrameKind.ACK)

SessionEvent = Delivered | Opened | PeerReset | LinkFailed
#: A message body: one buffer, or pieces sent back to back (never joined: footage
#: read from storage goes out behind its header without a copy).
Payload = bytes | tuple[bytes | memoryview, ...]


def payload_size(payload: Payload) -> int:
    return len(payload) if isinstance(payload, bytes) else sum(map(len, payload))


class SessionError(Exception):
    """Misuse of the session API (sending while not open, oversize payload)."""


@dataclass
class SessionConfig:
    window: int = 8
    max_payload: int = 256 * 1024
    rto_initial: float = 0.5
    rto_min: float = 0.02
    rto_max: float = 4.0
    max_retries: int = 10
    #: A receiver repeats a NAK for the same gap no sooner than this.
    nak_interval: float = 0.02


@dataclass
class SessionStats:
    frames_sent: int = 0
    frames_received: int = 0
    retransmits: int = 0
    naks_sent: int = 0
    duplicates: int = 0
    damaged: int = 0
    noise_bytes: int = 0
    #: Damaged copies of the frame the receiver awaits next: a growing count means
    #: a frame the line cannot carry (too long for its error rate).
    awaited_damaged: int = 0


@dataclass
class _Outstanding:
    msg_type: int
    payload: Payload
    sent_at: float
    retries: int = 0
    retransmitted: bool = False
    sacked: bool = False


class Session:
    """One end of a session. Not thread-safe: drive it from one loop."""

    _ack_due: bool  # an ACK (with SACK) is owed to the peer; set by _reset_sequences

    def __init__(self, role: Role, config: SessionConfig | None = None) -> None:
        self.role = role
        self.config = config or SessionConfig()
        if not 1 <= self.config.window <= 1024:
            raise ValueError("window must be 1..1024")
        self.state = State.CLOSED
        self.session_id = 0
        self.stats = SessionStats()
        self._decoder = FrameDecoder(min(self.config.max_payload, ABSOLUTE_MAX_PAYLOAD))
        self._out: list[bytes | memoryview] = []
        self._reset_sequences()
        self._syn_sent_at = 0.0
        self._syn_retries = 0
        self._srtt: float | None = None
        self._min_rtt = float("inf")
        self._rttvar = 0.0
        self._rto = self.config.rto_initial
        #: Timeouts since the last valid RTT sample: the RTO in force is doubled this
        #: many times (RFC 6298 5.5; Karn: kept until a frame never resent is acked).
        self._backoffs = 0
        #: When the cumulative ACK last advanced: the timer runs from here (5.3).
        self._progress_at = 0.0

    # ----------------------------------------------------------------- public API
    @property
    def peer_max_payload(self) -> int:
        return self._peer_max_payload

    @property
    def in_flight(self) -> int:
        return len(self._unacked) + len(self._pending)

    @property
    def can_send(self) -> bool:
        """True while a new message would go out at once rather than queue."""
        return (
            self.state is State.OPEN
            and len(self._unacked) < self._send_window
            and not self._pending
        )

    @property
    def rto(self) -> float:
        """The retransmission timeout in force (the estimate, backed off)."""
        return self._backoff(self._backoffs)

    @property
    def srtt(self) -> float | None:
        return self._srtt

    def connect(self, session_id: int, now: float) -> None:
        """Initiator: open (or re-open) a session. ``session_id`` is a caller's nonce."""
        if self.role is not Role.INITIATOR:
            raise SessionError("only the initiator connects")
        self._reset_sequences()
        self.session_id = session_id & 0xFFFFFFFF
        self.state = State.SYN_SENT
        self._syn_retries = 0
        self._send_syn(FrameKind.SYN, now)

    def send(self, msg_type: int, payload: Payload | Sequence[bytes], now: float) -> None:
        """Queue a message for reliable delivery. ``payload`` may be pieces (kept as
        they are until acknowledged: the caller must not change them)."""
        if self.state is not State.OPEN:
            raise SessionError(f"cannot send in state {self.state.value}")
        body: Payload = (
            bytes(payload)
            if isinstance(payload, (bytes, bytearray, memoryview))
            else tuple(payload)
        )
        size = len(body) if isinstance(body, bytes) else sum(map(len, body))  # payload_size
        if size > self._peer_max_payload:
            raise SessionError(
                f"payload of {size} bytes exceeds the peer's {self._peer_max_payload}"
            )
        self._pending.append((msg_type, body))
        self._pump(now)

    def receive(self, data: bytes | bytearray | memoryview, now: float) -> list[SessionEvent]:
        """Feed bytes from the link; returns what happened, in order."""
        return self._process(self._decoder.feed(data), now)

    def receive_buffer(self, size: int) -> memoryview:
        """Room to read up to ``size`` bytes from the link into (no copy on the way
        in); then call ``receive_into`` with the count read."""
        return self._decoder.buffer(size)

    def receive_into(self, n: int, now: float) -> list[SessionEvent]:
        """``receive`` for ``n`` bytes a transport wrote into ``receive_buffer``."""
        return self._process(self._decoder.commit(n), now)

    def _process(self, items: list[Frame | FrameError], now: float) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        stats = self.stats
        for item in items:
            if isinstance(item, FrameError):
                self._on_frame_error(item, now)
                continue
            stats.frames_received += 1
            if (
                item.kind is FrameKind.MSG
                and item.seq == self._expected
                and not self._ooo
                and self.state is State.OPEN
            ):  # the common case, the next frame in order: _on_frame and _on_msg, inline
                if self._unacked:
                    self._on_ack(item.ack, now)
                events.append(Delivered(item.msg_type, item.payload, self._damage.pop(item.seq, 0)))
                self._expected += 1
                self._ack_due = True
                self._acks_owed += 1
                stats.awaited_damaged = 0
                if self._nak_times:
                    for old in [k for k in self._nak_times if k < self._expected]:
                        del self._nak_times[old]
            else:
                self._on_frame(item, now, events)
        if self._pending and self.state is State.OPEN:
            self._pump(now)
        return events

    def outgoing(self) -> bytes:
        """Bytes to write to the link now (possibly empty)."""
        parts = self.outgoing_parts()
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def outgoing_parts(self, defer_ack: bool = False) -> list[bytes | memoryview]:
        """``outgoing`` as pieces, for one gathering write (``writev``/``sendmsg``).

        ``defer_ack``: the caller has more bytes to read at once, so a standalone ACK
        for frames that arrived in order may wait, until half the window is owed
        (the peer never stalls for it) or the caller runs out of bytes and asks
        again without it. ACKs for duplicates and out-of-order frames never wait.
        """
        if self._ack_due and self.state is State.OPEN:
            if defer_ack and not self._ack_urgent and 2 * self._acks_owed < self._send_window:
                out, self._out = self._out, []
                return out
            self._emit(FrameKind.ACK, 0, 0, self._sack_bitmap())
        self._ack_due = False
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        if self.state is State.SYN_SENT:
            return self._syn_sent_at + self._backoff(self._syn_retries)
        if self.state is not State.OPEN:
            return None
        oldest = self._oldest()
        if oldest is None:
            return None
        return max(self._progress_at, oldest[1].sent_at) + self._backoff(self._backoffs)

    def on_timer(self, now: float) -> list[SessionEvent]:
        """Retransmit what is overdue; fail the link after too many tries."""
        if self.state is State.SYN_SENT:
            if now >= self._syn_sent_at + self._backoff(self._syn_retries):
                if self._syn_retries >= self.config.max_retries:
                    return self._fail("no answer to session open")
                self._syn_retries += 1
                self.stats.retransmits += 1
                self._send_syn(FrameKind.SYN, now)
            return []
        if self.state is not State.OPEN:
            return []
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        oldest = self._oldest()
        assert oldest is not None
        seq, o = oldest
        if o.retries >= self.config.max_retries:
            return self._fail(f"frame {seq} unacknowledged after {o.retries} retries")
        # Nothing was acknowledged for a whole RTO: resend the oldest frame, and the
        # frames before the highest one the peer holds (proved lost, their NAKs lost
        # too); not the rest of the window, which a slow link may still be carrying.
        held = [s for s, x in self._unacked.items() if x.sacked]
        top = max(held, default=seq)
        for s, x in self._unacked.items():
            if s > top:
                break
            if not x.sacked:
                x.retries += 1
                self._retransmit(s, x, now)
        if self._backoff(self._backoffs) < self.config.rto_max:
            self._backoffs += 1
        return []

    # ------------------------------------------------------------------ internals
    def _reset_sequences(self) -> None:
        self._next_seq = 1
        self._expected = 1
        self._unacked: dict[int, _Outstanding] = {}
        self._pending: deque[tuple[int, Payload]] = deque()
        self._ooo: dict[int, tuple[int, bytes | memoryview]] = {}
        self._ack_due = False
        self._ack_urgent = False  # owed for a duplicate or a frame out of order
        self._acks_owed = 0  # frames delivered in order since the last ACK went out
        self._nak_times: dict[int, float] = {}
        self._damage: dict[int, int] = {}
        self._send_window = self.config.window
        self._peer_max_payload = min(self.config.max_payload, ABSOLUTE_MAX_PAYLOAD)

    def _backoff(self, retries: int) -> float:
        return min(self._rto * (2**retries), self.config.rto_max)

    def _oldest(self) -> tuple[int, _Outstanding] | None:
        """The oldest unacknowledged frame the peer does not hold: the timer's."""
        for item in self._unacked.items():
            if not item[1].sacked:
                return item
        return None

    def _fail(self, reason: str) -> list[SessionEvent]:
        if self.role is Role.RESPONDER and self.state is State.OPEN:
            # Tell the dock at once, rather than leave it waiting for replies
            # that will never come; it re-opens and resumes.
            self._emit(FrameKind.RST, 0, 0, b"")
        self.state = State.FAILED
        return [LinkFailed(reason)]

    def _send_syn(self, kind: FrameKind, now: float) -> None:
        body = SYN_PAYLOAD.pack(self.session_id, self.config.window, self.config.max_payload)
        self._emit(kind, 0, 0, body)
        self._syn_sent_at = now

    def _emit(self, kind: FrameKind, seq: int, msg_type: int, payload: Payload) -> None:
        ack = self._expected - 1 if self.state is State.OPEN else 0
        parts = (payload,) if isinstance(payload, bytes) else payload
        self._out += encode_frame_parts(kind, seq, ack, msg_type, parts)
        self.stats.frames_sent += 1
        if kind in _CARRIES_ACK:
            self._ack_due = False  # this frame carries the cumulative ACK already
            self._ack_urgent = False
            self._acks_owed = 0

    def _pump(self, now: float) -> None:
        while self._pending and len(self._unacked) < self._send_window:
            if self._next_seq >= MAX_SEQ:
                raise SessionError("sequence space exhausted: re-open the session")
            msg_type, payload = self._pending.popleft()
            seq = self._next_seq
            self._next_seq += 1
            self._unacked[seq] = _Outstanding(msg_type, payload, now)
            self._emit(FrameKind.MSG, seq, msg_type, payload)

    def _retransmit(self, seq: int, o: _Outstanding, now: float) -> None:
        o.sent_at = now
        o.retransmitted = True
        self.stats.retransmits += 1
        self._emit(FrameKind.MSG, seq, o.msg_type, o.payload)

    def _on_frame_error(self, err: FrameError, now: float) -> None:
        if err.code is FrameErrorCode.NOISE:
            self.stats.noise_bytes += err.discarded
            return
        self.stats.damaged += 1
        if (
            err.kind is FrameKind.MSG
            and self.state is State.OPEN
            and err.seq is not None
            and self._expected <= err.seq < self._expected + self.config.window
        ):
            if err.seq == self._expected:
                self.stats.awaited_damaged += 1
            self._damage[err.seq] = self._damage.get(err.seq, 0) + 1
            # A damaged copy proves our last NAK for it was served: ask again now.
            self._nak_times.pop(err.seq, None)
            self._nak_holes(err.seq, now)

    def _nak_holes(self, upto: int, now: float) -> None:
        """Ask again for every frame from the next expected one up to ``upto`` that
        has not arrived, each at most once per ``nak_interval``."""
        last = min(upto, self._expected + self.config.window - 1)
        for seq in range(self._expected, last + 1):
            if seq in self._ooo:
                continue
            if now - self._nak_times.get(seq, float("-inf")) < self.config.nak_interval:
                continue
            self._nak_times[seq] = now
            self.stats.naks_sent += 1
            self._emit(FrameKind.NAK, seq, 0, self._sack_bitmap())

    def _on_frame(self, f: Frame, now: float, events: list[SessionEvent]) -> None:
        kind = f.kind
        if kind is FrameKind.SYN:
            self._on_syn(f, now, events)
            return
        if kind is FrameKind.SYN_ACK:
            self._on_syn_ack(f, now, events)
            return
        if kind is FrameKind.RST:
            if self.role is Role.INITIATOR and self.state in (State.OPEN, State.SYN_SENT):
                self.state = State.CLOSED
                events.append(PeerReset("peer has no session"))
            return
        if self.state is not State.OPEN:
            if self.role is Role.RESPONDER and kind is FrameKind.MSG:
                self._emit(FrameKind.RST, 0, 0, b"")
            return
        self._on_ack(f.ack, now)
        if kind in (FrameKind.ACK, FrameKind.NAK) and f.payload:
            self._on_sack(f.ack, f.payload, now)
        if kind is FrameKind.NAK:
            o = self._unacked.get(f.seq)
            # A NAK that left the peer before our latest copy could have arrived is
            # about an older copy: ignore it, the latest is on its way.
            # (Before the first RTT sample there is nothing to wait for.)
            guard = 0.0 if self._min_rtt == float("inf") else 0.5 * self._min_rtt
            if o is not None and now - o.sent_at >= guard:
                self._retransmit(f.seq, o, now)
        elif kind is FrameKind.MSG:
            self._on_msg(f, now, events)

    def _on_syn(self, f: Frame, now: float, events: list[SessionEvent]) -> None:
        if self.role is not Role.RESPONDER or len(f.payload) < SYN_PAYLOAD.size:
            return
        sid, window, max_payload = SYN_PAYLOAD.unpack_from(f.payload)
        if not (self.state is State.OPEN and sid == self.session_id):
            self._reset_sequences()
            self.session_id = sid
            self.state = State.OPEN
            self._apply_peer_params(window, max_payload)
            events.append(Opened(sid))
        # A repeated SYN means our SYN_ACK was lost: answer again, keep the session.
        self._send_syn(FrameKind.SYN_ACK, now)

    def _on_syn_ack(self, f: Frame, now: float, events: list[SessionEvent]) -> None:
        if self.role is not Role.INITIATOR or self.state is not State.SYN_SENT:
            return
        if len(f.payload) < SYN_PAYLOAD.size:
            return
        sid, window, max_payload = SYN_PAYLOAD.unpack_from(f.payload)
        if sid != self.session_id:
            return
        self._apply_peer_params(window, max_payload)
        if self._syn_retries == 0:
            self._sample_rtt(now - self._syn_sent_at)
        self.state = State.OPEN
        events.append(Opened(sid))

    def _apply_peer_params(self, window: int, max_payload: int) -> None:
        self._send_window = max(1, min(self.config.window, window))
        self._peer_max_payload = max(MIN_PAYLOAD, min(max_payload, ABSOLUTE_MAX_PAYLOAD))

    def _on_ack(self, ack: int, now: float) -> None:
        unacked = self._unacked
        if not unacked or ack < next(iter(unacked)):
            return
        self._progress_at = now  # the timer restarts (RFC 6298 5.3)
        while unacked:
            seq = next(iter(unacked))
            if seq > ack:
                break
            o = unacked.pop(seq)
            # Karn: an ACK of a resent frame is ambiguous; a frame SACKed earlier was
            # sampled then, and its cumulative ACK waited on another frame.
            if not (o.retransmitted or o.sacked):
                self._sample_rtt(now - o.sent_at)

    def _sack_bitmap(self) -> bytes:
        """Which frames after the first missing one we already hold (ACK/NAK payload).

        Bit i (most significant bit of byte 0 first) stands for sequence
        ``ACK + 2 + i``; trailing zero bytes are left out.
        """
        if not self._ooo:
            return b""
        base = self._expected + 1
        bits = 0
        span = max(self._ooo) - base + 1
        nbytes = (span + 7) // 8
        for seq in self._ooo:
            i = seq - base
            bits |= 1 << (nbytes * 8 - 1 - i)
        return bits.to_bytes(nbytes, "big")

    def _on_sack(self, ack: int, bitmap: bytes | memoryview, now: float) -> None:
        base = ack + 2
        bits = int.from_bytes(bitmap, "big")
        width = len(bitmap) * 8
        for seq, o in self._unacked.items():
            i = seq - base
            if 0 <= i < width and bits >> (width - 1 - i) & 1 and not o.sacked:
                o.sacked = True
                if not o.retransmitted:
                    self._sample_rtt(now - o.sent_at)

    def _sample_rtt(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        self._min_rtt = min(self._min_rtt, rtt)
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        rto = self._srtt + 4 * self._rttvar
        self._rto = min(max(rto, self.config.rto_min), self.config.rto_max)
        self._backoffs = 0  # a frame never resent got through: the estimate holds

    def _on_msg(self, f: Frame, now: float, events: list[SessionEvent]) -> None:
        seq = f.seq
        if seq < self._expected:
            self.stats.duplicates += 1
            self._ack_due = self._ack_urgent = True  # our earlier ACK may have been lost
            return
        if seq >= self._expected + self.config.window:
            return  # beyond what we promised to buffer: the sender will repeat it
        if seq > self._expected:
            if seq in self._ooo:
                self.stats.duplicates += 1
            else:
                self._ooo[seq] = (f.msg_type, f.payload)
            self._ack_due = self._ack_urgent = True  # tell the sender what we hold (SACK)
            self._nak_holes(seq - 1, now)
            return
        events.append(Delivered(f.msg_type, f.payload, self._damage.pop(seq, 0)))
        self._expected += 1
        while self._expected in self._ooo:
            msg_type, payload = self._ooo.pop(self._expected)
            events.append(Delivered(msg_type, payload, self._damage.pop(self._expected, 0)))
            self._expected += 1
        self._ack_due = True
        self._acks_owed += 1
        self.stats.awaited_damaged = 0
        if self._nak_times:
            for old in [k for k in self._nak_times if k < self._expected]:
                del self._nak_times[old]
        if self._ooo:
            self._nak_holes(max(self._ooo) - 1, now)  # the next gaps are already known
