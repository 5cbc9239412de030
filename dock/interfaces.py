"""The small interfaces the dock needs from the outside world.

``hardware`` (and tests) provide objects that fit them; the dock never imports
``hardware`` except in its composition root.
"""

from __future__ import annotations

from typing import Protocol


class TransportClosed(ConnectionError):
    """The link is gone (cable pulled, peer closed, device unplugged)."""


class Transport(Protocol):
    """A byte pipe to one recorder."""

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes``; b"" if nothing arrived within ``timeout`` seconds.

        Raises TransportClosed when the link is gone.
        """
        ...

    def write(self, data: bytes) -> None:
        """Write all of ``data``; raises TransportClosed when the link is gone."""
        ...

    def close(self) -> None: ...
