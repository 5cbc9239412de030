"""A deterministic simulated link for driving two sans-I/O sessions in virtual time.

Faults act on whole writes (drop, duplicate, delay = reorder) and on bits
(corruption), with a seeded random source so a failing case replays exactly.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from firmware_protocol.session import Delivered, LinkFailed, Role, Session, SessionConfig


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    bit_error_rate: float = 0.0
    latency: float = 0.001


@dataclass
class Outcome:
    to_responder: list[tuple[int, bytes]] = field(default_factory=list)
    to_initiator: list[tuple[int, bytes]] = field(default_factory=list)
    failed: str | None = None
    steps: int = 0


def corrupt(data: bytes, ber: float, rng: random.Random) -> bytes:
    if ber <= 0 or not data:
        return data
    out = bytearray(data)
    bits = len(out) * 8
    pos = int(rng.expovariate(ber))
    while pos < bits:
        out[pos // 8] ^= 1 << (pos % 8)
        pos += 1 + int(rng.expovariate(ber))
    return bytes(out)


def run_pair(
    a_msgs: list[tuple[int, bytes]],
    b_msgs: list[tuple[int, bytes]],
    faults: Faults,
    seed: int,
    config: SessionConfig | None = None,
    max_steps: int = 200_000,
) -> Outcome:
    """Open a session, send a's messages to b and b's to a, return what arrived."""
    rng = random.Random(seed)
    cfg = config or SessionConfig(rto_initial=0.05, max_retries=40)
    a, b = Session(Role.INITIATOR, cfg), Session(Role.RESPONDER, cfg)
    out = Outcome()
    now = 0.0
    heap: list[tuple[float, int, str, bytes]] = []
    counter = 0
    a.connect(rng.getrandbits(32), now)
    a_queue, b_queue = list(a_msgs), list(b_msgs)

    def transmit(src: Session, dst: str) -> None:
        nonlocal counter
        data = src.outgoing()
        if not data:
            return
        copies = 0 if rng.random() < faults.drop else 1
        if copies and rng.random() < faults.duplicate:
            copies = 2
        for _ in range(copies):
            delay = faults.latency
            if rng.random() < faults.reorder:
                delay += rng.uniform(0, 0.02)
            counter += 1
            heapq.heappush(
                heap, (now + delay, counter, dst, corrupt(data, faults.bit_error_rate, rng))
            )

    def feed_app(s: Session, queue: list[tuple[int, bytes]]) -> None:
        from firmware_protocol.session import State

        while queue and s.state is State.OPEN and s.can_send:
            t, p = queue.pop(0)
            s.send(t, p, now)

    while out.steps < max_steps:
        out.steps += 1
        feed_app(a, a_queue)
        feed_app(b, b_queue)
        transmit(a, "b")
        transmit(b, "a")
        done = (
            len(out.to_responder) == len(a_msgs)
            and len(out.to_initiator) == len(b_msgs)
            and not a_queue
            and not b_queue
            and a.in_flight == 0
            and b.in_flight == 0
        )
        if done:
            return out
        deadlines = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
        if heap:
            deadlines.append(heap[0][0])
        if not deadlines:
            out.failed = "stuck: nothing scheduled"
            return out
        now = max(now, min(deadlines))
        while heap and heap[0][0] <= now:
            _, _, dst, data = heapq.heappop(heap)
            target = b if dst == "b" else a
            for ev in target.receive(data, now):
                if isinstance(ev, Delivered):
                    sink = out.to_responder if dst == "b" else out.to_initiator
                    sink.append((ev.msg_type, ev.payload))
                elif isinstance(ev, LinkFailed):
                    out.failed = ev.reason
                    return out
        for s in (a, b):
            for ev in s.on_timer(now):
                if isinstance(ev, LinkFailed):
                    out.failed = ev.reason
                    return out
    out.failed = "step bound reached"
    return out
