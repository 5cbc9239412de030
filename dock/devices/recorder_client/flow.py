"""Flow over a noisy line: how much to ask for per READ, and the goodput floor."""

from __future__ import annotations

from collections.abc import Callable

from dock.devices.recorder_client.bounds import MAX_CHUNK, MAX_ID_BYTES, MIN_CHUNK, Bounds
from dock.devices.recorder_client.errors import Stalled


class Goodput:
    """The READ goodput floor, over consecutive windows of the read's own time."""

    def __init__(self, mono: Callable[[], float], bounds: Bounds, rec_id: str) -> None:
        self._mono = mono
        self.floor = bounds.read_min_bytes_per_s
        self.window = bounds.read_window_s
        self.rec_id = rec_id[:MAX_ID_BYTES]
        self._restart()

    def _restart(self) -> None:
        self.start, self.bytes, self.excluded = self._mono(), 0, 0.0

    def exclude(self, seconds: float) -> None:
        """Time the dock itself spent (writing what it read): not the recorder's."""
        self.excluded += seconds

    def check(self, delivered: int = 0) -> None:
        self.bytes += delivered
        elapsed = self._mono() - self.start - self.excluded
        if elapsed < self.window:
            return
        rate = self.bytes / elapsed
        if rate < self.floor:
            raise Stalled(
                f"READ of {self.rec_id!r}: {rate:.0f} bytes/s over {elapsed:.0f} s, below "
                f"the floor of {self.floor} bytes/s"
            )
        self._restart()


class ChunkSizer:
    """How many bytes to ask for per READ, from how often replies arrive damaged.

    One frame per READ reply means a frame too long for the line's error rate can
    never get through; so start small, double while replies come through clean,
    and halve while most of them need repeating. On a clean USB link this reaches
    the maximum within a few hundred KiB; at a bit error rate of 1e-4 it settles
    between a quarter and one kilobyte.
    """

    INITIAL = 4096
    WINDOW = 16

    def __init__(self, minimum: int = MIN_CHUNK, maximum: int = MAX_CHUNK) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.size = min(self.INITIAL, maximum)
        self._outcomes: list[bool] = []

    def on_reply(self, damaged: bool) -> None:
        o = self._outcomes
        o.append(damaged)
        bad = sum(o)
        if len(o) >= self.WINDOW // 2 and bad * 3 >= len(o):
            self._resize(self.size // 2)
        elif len(o) >= self.WINDOW and bad * 6 < len(o):
            self._resize(self.size * 2)
        elif len(o) >= self.WINDOW:
            del o[0]

    def on_session_lost(self) -> None:
        self._resize(self.size // 4)

    def cap(self, size: int) -> None:
        self.maximum = max(self.minimum, size)
        self._resize(self.size)

    def _resize(self, size: int) -> None:
        self.size = max(self.minimum, min(self.maximum, size))
        self._outcomes.clear()
