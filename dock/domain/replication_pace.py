"""When and how fast replication may send: the allowed windows and the token bucket.

Pure (the clock and the sleep are passed in), so both are unit-tested exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: Minutes in a day.
DAY = 24 * 60


def in_windows(windows: Sequence[tuple[int, int]], minute_of_day: int) -> bool:
    """Whether ``minute_of_day`` (0..1439, local) falls in one of the (start, end) windows
    (start inclusive, end exclusive; ``end < start`` crosses midnight). No windows:
    always allowed."""
    if not windows:
        return True
    m = minute_of_day % DAY
    for start, end in windows:
        end %= DAY + 1
        if start < end:
            if start <= m < end:
                return True
        elif m >= start or m < end:  # across midnight ("22:00-06:00"; "00:00-24:00" above)
            return True
    return False


class TokenBucket:
    """A rate limit of ``rate`` bytes/s with a burst of ``burst`` bytes (at least one
    chunk): :meth:`take` waits (through ``sleep``) until ``n`` bytes may go. A rate of 0
    is no limit. Not thread-safe: the engine sends one file at a time."""

    def __init__(
        self,
        rate: float,
        burst: float,
        now: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._now = now
        self._sleep = sleep
        self._tokens = burst
        self._at = now()

    def wait_for(self, n: int) -> float:
        """Seconds ``n`` bytes must wait now (0 when they may go); refills the bucket."""
        if self.rate <= 0:
            return 0.0
        t = self._now()
        self._tokens = min(self.burst, self._tokens + (t - self._at) * self.rate)
        self._at = t
        return 0.0 if self._tokens >= n else (n - self._tokens) / self.rate

    def take(self, n: int) -> None:
        """Wait until ``n`` bytes may go, then spend them (a chunk larger than the burst
        is let through once the bucket is full, leaving it in debt)."""
        if self.rate <= 0:
            return
        need = min(n, self.burst)
        for _ in range(1000):  # bounded: each wait is computed to suffice
            delay = self.wait_for(int(need))
            if delay <= 0:
                break
            self._sleep(delay)
        self._tokens -= n
