"""Badge readers: a serial RFID reader, or a keyboard-wedge reader typing into stdin.

Both deliver one badge id per line (most readers end a read with CR or CR LF).
Ids are cleaned of whitespace and control characters; an over-long line (line
noise, a stuck key) is dropped rather than passed on as a badge.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import serial

MAX_BADGE = 64


def clean_badge(raw: bytes | str) -> str | None:
    """The badge id in one line, or None if it is empty or implausible."""
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    badge = "".join(ch for ch in text if ch.isprintable()).strip()
    if not badge or len(badge) > MAX_BADGE or "\ufffd" in badge:
        return None
    return badge


class SerialBadgeReader:
    """An RFID reader on a serial port (or any pyserial URL, e.g. loop:// in tests)."""

    def __init__(self, url: str, baudrate: int = 9600, poll_s: float = 0.2) -> None:
        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=poll_s)
        self._buf = bytearray()

    def read(self) -> str | None:
        """One badge if a whole line has arrived within the poll time, else None."""
        chunk = self.port.read(max(1, self.port.in_waiting))
        self._buf += chunk
        for sep in (b"\r\n", b"\n", b"\r"):
            if sep in self._buf:
                line, _, rest = bytes(self._buf).partition(sep)
                self._buf = bytearray(rest)
                return clean_badge(line)
        if len(self._buf) > 4 * MAX_BADGE:
            self._buf.clear()  # no line end in sight: noise
        return None

    def close(self) -> None:
        self.port.close()


def keyboard_badges(stream: TextIO | None = None) -> Iterator[str]:
    """Badges typed by a keyboard-wedge reader into standard input, one per line."""
    for line in stream or sys.stdin:
        badge = clean_badge(line)
        if badge is not None:
            yield badge
