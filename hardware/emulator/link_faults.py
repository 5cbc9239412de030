"""Fault injection for an emulated recorder's link: a noisy, lossy, stalling cable.

Applied by the emulator's server loop to the bytes it reads and writes, so the
dock under test sees exactly what a bad USB-serial cable would give it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class LinkFaults:
    bit_error_rate: float = 0.0
    #: Probability that one write (one or more whole frames) is lost.
    drop_rate: float = 0.0
    stall_after_bytes: int | None = None
    stall_seconds: float = 0.0
    disconnect_after_bytes: int | None = None
    seed: int | None = None

    def validate(self) -> None:
        if not 0 <= self.bit_error_rate < 0.01:
            raise ValueError("bit error rate must be in [0, 0.01)")
        if not 0 <= self.drop_rate < 1:
            raise ValueError("drop rate must be in [0, 1)")


def flip_bits(data: bytes | memoryview, ber: float, rng: random.Random) -> bytes | memoryview:
    """Flip each bit independently with probability ``ber`` (geometric gaps)."""
    if ber <= 0 or not data:
        return data
    out: bytearray | None = None
    bits = len(data) * 8
    pos = int(rng.expovariate(ber))
    while pos < bits:
        if out is None:
            out = bytearray(data)
        out[pos >> 3] ^= 1 << (pos & 7)
        pos += 1 + int(rng.expovariate(ber))
    return data if out is None else bytes(out)


class FaultInjector:
    def __init__(self, faults: LinkFaults) -> None:
        faults.validate()
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.bytes_sent = 0
        self._stalled = False
        self._disconnected = False

    @property
    def active(self) -> bool:
        """Whether anything may still happen to outgoing bytes (else they pass as they are)."""
        f = self.faults
        return bool(
            f.bit_error_rate
            or f.drop_rate
            or f.disconnect_after_bytes is not None
            or (f.stall_after_bytes is not None and not self._stalled)
        )

    def inbound(self, data: bytes | memoryview) -> bytes | memoryview:
        return flip_bits(data, self.faults.bit_error_rate, self.rng)

    def outbound(self, data: bytes) -> bytes:
        """What actually leaves: possibly corrupted, possibly nothing."""
        if not data:
            return data
        if self.faults.drop_rate and self.rng.random() < self.faults.drop_rate:
            return b""
        limit = self.faults.disconnect_after_bytes
        if limit is not None and not self._disconnected and self.bytes_sent + len(data) >= limit:
            data = data[: max(0, limit - self.bytes_sent)]
            self._disconnected = True
        self.bytes_sent += len(data)
        return bytes(flip_bits(data, self.faults.bit_error_rate, self.rng))

    def take_disconnect(self) -> bool:
        """True once, when the disconnect point has just been reached."""
        if self._disconnected and self.faults.disconnect_after_bytes is not None:
            self.faults.disconnect_after_bytes = None  # only the first connection is cut
            return True
        return False

    def take_stall(self) -> float:
        """Seconds to go silent now (once, when the stall point is passed)."""
        at = self.faults.stall_after_bytes
        if at is not None and not self._stalled and self.bytes_sent >= at:
            self._stalled = True
            return self.faults.stall_seconds
        return 0.0
