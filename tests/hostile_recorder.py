"""A recorder that answers within the protocol but lies (issue 9, "hostile peers").

``HostileFirmware`` is the reference firmware (``hardware.emulator.recorder.RecorderFirmware``)
with every reply passed through a ``rewrite(request, reply)`` function on its way
out: the reply can be sent as it is, changed, replaced, repeated, dropped or held
back (until a gate opens, or for a while). It sits exactly where the emulator sits:
behind an ``EmulatorServer`` on a pty or TCP port, or behind ``LoopTransport``, an
in-process transport that runs dock and firmware in virtual time (timeouts cost no
wall-clock time), for fuzzing.

Replies the firmware authenticates (to privileged requests) are passed through
untouched unless ``rewrite`` changes them, in which case they go out unsealed: the
dock must refuse them, which is a finding of its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_protocol.messages import Message, MsgType, decode, encode, reply
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import RecorderModel


@dataclass
class Hold:
    """Send ``messages`` later: once ``gate`` is set, or ``delay`` seconds from now."""

    messages: list[Message]
    gate: threading.Event | None = None
    delay: float | None = None
    due: float = field(default=0.0, init=False)


#: What a rewrite may answer: one message, several (in order), a Hold, or None (drop).
Plan = Message | list[Message] | Hold | None
Rewrite = Callable[[Message | None, Message], Plan]


def honest(request: Message | None, answer: Message) -> Plan:
    return answer


class _HookedSession:
    """The firmware's session with ``send`` routed through the firmware's hook."""

    def __init__(self, session: Any, hook: Callable[[Any, int, bytes, float], None]) -> None:
        self._session = session
        self._hook = hook

    def send(self, msg_type: int, payload: bytes, now: float) -> None:
        self._hook(self._session, msg_type, payload, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class HostileFirmware(RecorderFirmware):
    """The reference firmware, its replies rewritten by ``rewrite``.

    It serves READ, not READ_STREAM (no STREAM_READ announced), so that rewrites of
    READ replies reach the dock; lying streams are tests/test_stream_read.py's.
    """

    STREAMS = False

    def __init__(self, model: RecorderModel, rewrite: Rewrite = honest, **kw: Any) -> None:
        self.rewrite = rewrite
        self.requests: Counter[MsgType] = Counter()
        self.held: list[Hold] = []
        self._current: Message | None = None
        self._lock = threading.Lock()
        super().__init__(model, **kw)

    # The firmware assigns ``self.session`` when it starts and after a link failure.
    @property  # type: ignore[override]
    def session(self) -> Any:
        return self._hooked

    @session.setter
    def session(self, value: Any) -> None:
        self._hooked = _HookedSession(value, self._send_hook)

    def _handle(self, wire_type: int, payload: bytes, now: float) -> None:
        self._current = None
        super()._handle(wire_type, payload, now)

    def _answer(self, msg: Message) -> Message:
        self._current = msg
        self.requests[msg.msg_type] += 1
        return super()._answer(msg)

    def _send_hook(self, session: Any, wire_type: int, payload: bytes, now: float) -> None:
        try:
            answer = decode(wire_type, payload)
        except Exception:  # sealed or otherwise opaque: as the firmware made it
            session.send(wire_type, payload, now)
            return
        plan = self.rewrite(self._current, answer)
        if plan is answer:
            session.send(wire_type, payload, now)  # unchanged, seal and all
        elif isinstance(plan, Hold):
            plan.due = now + (plan.delay or 0.0)
            with self._lock:
                self.held.append(plan)
        else:
            for m in [] if plan is None else plan if isinstance(plan, list) else [plan]:
                session.send(*encode(m), now)

    # ------------------------------------------------------------------ held replies
    def _release(self) -> None:
        now = self._mono()
        with self._lock:
            ready = [h for h in self.held if self._due(h, now)]
            self.held = [h for h in self.held if h not in ready]
        for h in ready:
            for m in h.messages:
                self._hooked._session.send(*encode(m), now)

    @staticmethod
    def _due(h: Hold, now: float) -> bool:
        if h.gate is not None:
            return h.gate.is_set()
        return now >= h.due

    def on_timer(self) -> None:
        self._release()
        super().on_timer()

    def outgoing(self) -> bytes:
        self._release()
        return super().outgoing()

    def outgoing_parts(self) -> list[bytes | memoryview]:
        self._release()
        return super().outgoing_parts()

    def next_deadline(self) -> float | None:
        deadline = super().next_deadline()
        with self._lock:
            held = list(self.held)
        for h in held:
            due = self._mono() + 0.02 if h.gate is not None else h.due  # poll a gate
            deadline = due if deadline is None else min(deadline, due)
        return deadline


# ---------------------------------------------------------------------- rewrites
def answer_with(msg_type: MsgType, change: Callable[[Message, Message], Plan]) -> Rewrite:
    """Rewrite only the replies to ``msg_type`` (ERRORs included); the rest stay honest."""

    def rewrite(request: Message | None, answer: Message) -> Plan:
        if request is None or request.msg_type is not msg_type:
            return answer
        return change(request, answer)

    return rewrite


def fields_of(answer: Message, **changes: Any) -> Message:
    return reply(answer.msg_type, answer.req_id, **{**answer.fields, **changes})


def endless_events(request: Message, answer: Message) -> Plan:
    """An event log that never ends: every page full, ``next`` always further on."""
    since = request.fields.get("since", 0)
    n = min(request.fields.get("max_count", 128), 128)
    events = [
        {"index": since + i, "time_ms": 1_700_000_000_000 + since + i, "kind": 1} for i in range(n)
    ]
    return fields_of(answer, next=since + n, events=events)


def one_byte_reads(request: Message, answer: Message) -> Plan:
    """Every READ reply cut to one byte (within the protocol: a reply may be short)."""
    if answer.msg_type is not MsgType.READ:
        return answer
    return fields_of(answer, data=answer.fields["data"][:1])


class VirtualClock:
    """Monotonic seconds that move only when told (or when a transport waits)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class LoopTransport:
    """A ``Transport`` straight into a firmware object, in virtual time.

    ``write`` hands the bytes to the firmware at once; ``read`` returns what the
    firmware has to say, and when it has nothing, moves the clock on to the
    firmware's next deadline or the end of the wait, whichever is first, as if the
    dock had waited that long. A hostile recorder that holds its replies back
    therefore costs the test no time. ``latency`` is what each read that brings
    bytes costs, so a chatty exchange takes virtual time too.
    """

    def __init__(
        self, firmware: RecorderFirmware, clock: VirtualClock, latency: float = 0.0
    ) -> None:
        self.firmware = firmware
        self.clock = clock
        self.latency = latency
        self.closed = False
        self.bytes_in = 0  # written by the dock
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        from dock.domain.interfaces import TransportClosed

        if self.closed:
            raise TransportClosed("closed")
        self.bytes_in += len(data)
        self.firmware.receive(bytes(data))

    def read(self, max_bytes: int, timeout: float) -> bytes:
        from dock.domain.interfaces import TransportClosed

        if self.closed:
            raise TransportClosed("closed")
        if not self._buf:
            self._buf += self.firmware.outgoing()
        if not self._buf:
            end = self.clock.now + max(0.0, timeout)
            due = self.firmware.next_deadline()
            self.clock.now = max(self.clock.now, end if due is None else min(end, due))
            self.firmware.on_timer()
            self._buf += self.firmware.outgoing()
        out = bytes(self._buf[:max_bytes])
        del self._buf[:max_bytes]
        if out:
            self.clock.now += self.latency
        return out

    def close(self) -> None:
        self.closed = True
