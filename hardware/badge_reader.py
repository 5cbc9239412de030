"""Badge readers: a serial RFID reader, or a keyboard-wedge reader (a USB reader that
"types" the badge number and Enter).

Both deliver one badge id per line (most readers end a read with CR or CR LF).
Ids are cleaned of whitespace and control characters; an over-long line (line
noise, a stuck key) is dropped rather than passed on as a badge.

A keyboard-wedge reader is read from its own input device (``/dev/input/by-id/...``)
through python-evdev, grabbed (EVIOCGRAB) so its keystrokes reach no console or
login prompt, and decoded key by key (:class:`KeyDecoder`). Under systemd standard
input is ``/dev/null``: :func:`keyboard_badges` (stdin) is for a terminal only.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TextIO

import serial

MAX_BADGE = 64

log = logging.getLogger("hardware.badge_reader")


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


# -- keyboard-wedge readers through evdev ------------------------------------------------

#: Linux input event type of a key (linux/input-event-codes.h).
EV_KEY = 1
#: Key codes (linux/input-event-codes.h, a stable kernel ABI) and what they type.
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
_DIGITS = {2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0"}
_KEYPAD = {79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9", 82: "0"}
_LETTERS = (  # the three rows of letters, each numbered on from its first key
    dict(zip(range(16, 26), "qwertyuiop", strict=True))
    | dict(zip(range(30, 39), "asdfghjkl", strict=True))
    | dict(zip(range(44, 51), "zxcvbnm", strict=True))
)
KEY_MINUS, KEY_KPMINUS = 12, 74
#: Modifier and lock keys a reader may press around a character: they type nothing.
_SILENT = {29, 97, 56, 100, 58, 69, 125, 126}  # ctrl, alt, caps/num lock, meta

#: A new badge starts when no key came for this long (a half-typed read is dropped).
KEY_GAP_S = 1.0


def key_text(code: int, shift: bool) -> str | None:
    """What key ``code`` types (shift held or not); None for a key a badge never has."""
    if code in _DIGITS:
        return _DIGITS[code]
    if code in _KEYPAD:
        return _KEYPAD[code]
    if code in _LETTERS:
        return _LETTERS[code].upper() if shift else _LETTERS[code]
    if code in (KEY_MINUS, KEY_KPMINUS):
        return "_" if shift and code == KEY_MINUS else "-"
    return None


class KeyDecoder:
    """Key events in, a badge id out at each Enter.

    Only key presses type; a key's auto-repeat (a stuck key), a key no badge has,
    more than ``max_len`` characters, or an Enter with nothing before it spoil the
    line, and it is dropped at its Enter. A gap of more than ``gap_s`` between keys
    starts a new line (a read cut short by an unplugged reader never joins the next).
    """

    def __init__(self, max_len: int = MAX_BADGE, gap_s: float = KEY_GAP_S) -> None:
        self.max_len = max_len
        self.gap_s = gap_s
        self.reset()

    def reset(self) -> None:
        self._chars: list[str] = []
        self._spoilt = False
        self._shift: set[int] = set()
        self._last: float | None = None

    def feed(self, code: int, value: int, timestamp: float) -> str | None:
        """One key event (``value``: 1 pressed, 0 released, 2 repeated); the badge at Enter."""
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if value == 1:
                self._shift.add(code)
            elif value == 0:
                self._shift.discard(code)
            return None
        if value == 0 or code in _SILENT:
            return None
        if self._last is not None and timestamp - self._last > self.gap_s:
            self._chars, self._spoilt = [], False
        self._last = timestamp
        if value != 1:  # auto-repeat: a key held down, never a reader's typing
            self._spoilt = True
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            chars, spoilt = self._chars, self._spoilt
            self._chars, self._spoilt = [], False
            return None if spoilt else clean_badge("".join(chars))
        text = key_text(code, bool(self._shift))
        if text is None or len(self._chars) >= self.max_len:
            self._spoilt = True
        else:
            self._chars.append(text)
        return None


class InputEvent(Protocol):
    type: int
    code: int
    value: int

    def timestamp(self) -> float: ...


class InputDevice(Protocol):
    """What the reader needs of ``evdev.InputDevice``."""

    def fileno(self) -> int: ...

    def grab(self) -> None: ...

    def read(self) -> Iterable[InputEvent]: ...

    def close(self) -> None: ...


def open_evdev(path: str) -> InputDevice:
    """The input device at ``path`` through python-evdev (Linux only)."""
    import evdev

    device: Any = evdev.InputDevice(path)
    return device


#: Back-off between attempts to open a missing reader: from the first to the last.
REOPEN_FIRST_S = 0.5
REOPEN_MAX_S = 30.0


class EvdevBadgeReader:
    """A keyboard-wedge badge reader on its input device, grabbed; ``read`` like
    :class:`SerialBadgeReader`'s. A reader that is missing, unplugged, not readable by
    this user or grabbed by another process is tried again with back-off (0.5 s doubling
    to 30 s); that is logged once when it goes and once when it comes back."""

    def __init__(
        self,
        path: str,
        poll_s: float = 0.2,
        open_device: Callable[[str], InputDevice] = open_evdev,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.poll_s = poll_s
        self._open_device = open_device
        self._clock = clock
        self._device: InputDevice | None = None
        self._decoder = KeyDecoder()
        self._ready: deque[str] = deque()
        self._backoff = REOPEN_FIRST_S
        self._retry_at = 0.0
        self._gone = False  # said so in the log

    @property
    def open(self) -> bool:
        return self._device is not None

    def read(self) -> str | None:
        """One badge if a whole read arrived within about ``poll_s``, else None. Never
        raises for the device: a problem is logged (once) and the device reopened."""
        if self._ready:
            return self._ready.popleft()
        if self._device is None and not self._reopen():
            time.sleep(max(0.0, min(self.poll_s, self._retry_at - self._clock())))
            return None
        device = self._device
        assert device is not None
        try:
            readable, _, _ = select.select([device.fileno()], [], [], self.poll_s)
            if readable:
                for event in device.read():
                    if event.type == EV_KEY:
                        badge = self._decoder.feed(event.code, event.value, event.timestamp())
                        if badge is not None:
                            self._ready.append(badge)
        except BlockingIOError:
            pass
        except (OSError, ValueError) as exc:  # ENODEV: unplugged; ValueError: fd closed
            self._lost(exc)
        return self._ready.popleft() if self._ready else None

    def _reopen(self) -> bool:
        if self._clock() < self._retry_at:
            return False
        device = None
        try:
            device = self._open_device(self.path)
            device.grab()  # its keys reach no console; EBUSY: another process holds it
        except (OSError, ImportError) as exc:
            if device is not None:
                device.close()
            self._lost(exc)
            return False
        self._device = device
        self._decoder.reset()
        self._backoff = REOPEN_FIRST_S
        if self._gone:
            log.info("badge reader %s is back", self.path)
        self._gone = False
        return True

    def _lost(self, exc: BaseException) -> None:
        if self._device is not None:
            with contextlib.suppress(OSError):
                self._device.close()
            self._device = None
        self._decoder.reset()
        if not self._gone:
            log.warning(
                "badge reader %s cannot be read (%s); trying again every %g s at most",
                self.path,
                _why(exc),
                REOPEN_MAX_S,
            )
            self._gone = True
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(REOPEN_MAX_S, self._backoff * 2)

    def close(self) -> None:
        if self._device is not None:
            self._device.close()  # closing the file ends the grab
            self._device = None


def _why(exc: BaseException) -> str:
    """An open or read error in words an operator acts on."""
    if isinstance(exc, ImportError):
        return "python-evdev is not installed"
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return "no such device: is it plugged in? ls -l /dev/input/by-id/"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied: the dock's user must be in the group 'input'"
    if code == errno.EBUSY:
        return "another program has grabbed it"
    if code == errno.ENODEV:
        return "unplugged"
    return str(exc) or type(exc).__name__
