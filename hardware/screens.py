"""The dock's status screen: a character LCD (HD44780) or, for development, the console.

Both satisfy ``dock.domain.interfaces.Screen`` structurally (``show(lines)``) and fit the
text to the display in the same way (:func:`fit_lines`): the first ``rows`` lines
are shown, each cut or padded with spaces to ``cols`` characters; further lines
are dropped. Showing the same text again does nothing, so a caller may refresh
the screen as often as it likes.

Characters: the console shows any printable character, Chinese included (a
terminal may draw those two columns wide; the cut counts characters). The LCD
can only show what is in its character ROM. :class:`Hd44780Screen` assumes the
common ROM A00 (Japanese): ASCII from space to ``}`` except the backslash (A00
has a yen sign there), plus the few Latin and Greek letters and symbols of
:data:`HD44780_A00_EXTRAS` (``°``, ``µ``, ``ä``, ``ö``, ``ü``, ...). Every other
character (Chinese, emoji, ``\\``, ``~``, control characters) is written as
``?``. Non-printable characters are shown as ``?`` on the console too.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Self, TextIO

from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

PinSpec = int | str
"""A pin as gpiozero names it: a BCM number (17) or a name ("GPIO17", "BOARD11")."""

HD44780_A00_EXTRAS: Mapping[str, int] = {
    "¥": 0x5C,
    "→": 0x7E,
    "←": 0x7F,
    "°": 0xDF,
    "α": 0xE0,
    "ä": 0xE1,
    "β": 0xE2,
    "ß": 0xE2,
    "ε": 0xE3,
    "µ": 0xE4,
    "μ": 0xE4,
    "√": 0xE8,
    "ñ": 0xEE,
    "ö": 0xEF,
    "θ": 0xF2,
    "∞": 0xF3,
    "Ω": 0xF4,
    "ü": 0xF5,
    "Σ": 0xF6,
    "π": 0xF7,
    "÷": 0xFD,
}
"""Characters outside ASCII that ROM A00 has, and their character codes."""

REPLACEMENT = "?"


def fit_lines(lines: Sequence[str], cols: int, rows: int) -> list[str]:
    """Exactly ``rows`` strings of exactly ``cols`` characters.

    The first ``rows`` lines, each cut or padded with spaces to ``cols`` characters;
    missing lines are blank; non-printable characters become ``?``.
    """
    fitted = []
    for row in range(rows):
        text = lines[row] if row < len(lines) else ""
        text = "".join(ch if ch.isprintable() else REPLACEMENT for ch in str(text))
        fitted.append(text[:cols].ljust(cols))
    return fitted


def encode_hd44780(text: str) -> bytes:
    """``text`` as HD44780 ROM A00 character codes, one byte per character.

    Characters the ROM does not have become ``?``.
    """
    out = bytearray()
    for ch in text:
        code = ord(ch)
        if 0x20 <= code <= 0x7D and ch != "\\":
            out.append(code)
        else:
            out.append(HD44780_A00_EXTRAS.get(ch, ord(REPLACEMENT)))
    return bytes(out)


_screen_log = logging.getLogger("dock.screen")


class _Closing:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ConsoleScreen(_Closing):
    """A screen drawn as a text box on a stream, for development and tests; without a
    stream, the dock's log (logger ``dock.screen``): one line per new text,
    ``screen: Swipe badge/enter ID | Slot 1: copy 40%``, at INFO when its words change
    and at DEBUG when only its numbers do (progress), so the journal is not flooded.

    With ``stream``, each ``show`` with new text draws one frame::

        +--------------------+
        |READY               |
        |slot 2              |
        |                    |
        |                    |
        +--------------------+
    """

    #: A terminal draws Chinese (the dock's text stays in the dock's language).
    shows_chinese = True

    def __init__(self, stream: TextIO | None = None, width: int = 20, height: int = 4) -> None:
        if width < 1 or height < 1:
            raise ValueError("width and height must be at least 1")
        self._stream = stream
        self.width = width
        self.height = height
        self._lock = threading.Lock()
        self._shown: list[str] | None = None
        self._gist = ""  # the last logged text, numbers left out

    @property
    def lines(self) -> list[str]:
        """The lines shown last, fitted to the screen (blank before the first show)."""
        return list(self._shown or fit_lines([], self.width, self.height))

    def show(self, lines: Sequence[str]) -> None:
        fitted = fit_lines(lines, self.width, self.height)
        with self._lock:
            if fitted == self._shown:
                return
            self._shown = fitted
            if self._stream is None:
                said = " | ".join(line.rstrip() for line in fitted if line.strip())
                gist = re.sub(r"[0-9]+", "#", said)
                level = logging.INFO if gist != self._gist else logging.DEBUG
                self._gist = gist
                _screen_log.log(level, "screen: %s", said)
                return
            border = "+" + "-" * self.width + "+"
            frame = "\n".join([border, *(f"|{line}|" for line in fitted), border]) + "\n"
            self._stream.write(frame)
            self._stream.flush()

    def close(self) -> None:
        """Nothing to release; the stream belongs to the caller."""


# HD44780 instructions (datasheet table 6) and their flags.
_CLEAR = 0x01
_ENTRY_MODE = 0x04
_ENTRY_INCREMENT = 0x02
_DISPLAY_CONTROL = 0x08
_DISPLAY_ON = 0x04
_FUNCTION_SET = 0x20
_FUNCTION_2_LINES = 0x08
_SET_DDRAM = 0x80

# Waits, with margin over the datasheet's figures at 270 kHz.
_POWER_ON_WAIT = 0.05  # > 40 ms after Vcc rises
_INIT_WAIT_LONG = 0.005  # > 4.1 ms after the first "8-bit" nibble
_INIT_WAIT_SHORT = 0.0002  # > 100 us after the second
_CLEAR_WAIT = 0.002  # clear display: 1.52 ms
_EXEC_WAIT = 50e-6  # most instructions and data writes: 37 us (+4 us)
_ENABLE_PULSE = 1e-6  # E high >= 450 ns; E cycle >= 1 us


def _delay(seconds: float) -> None:
    """Wait ``seconds``; a busy wait below 1 ms, where ``time.sleep`` overshoots."""
    if seconds >= 0.001:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Hd44780Screen(_Closing):
    """A character LCD with an HD44780 (or compatible) controller, in 4-bit mode.

    Wiring: RS, E and D4..D7 on GPIO pins, R/W tied to ground (the driver only
    writes and waits out each instruction's execution time instead of reading the
    busy flag), D0..D3 unconnected. Rows start at DDRAM addresses 0x00, 0x40,
    ``cols``, 0x40 + ``cols`` (for 20x4: 0x00, 0x40, 0x14, 0x54). Text is encoded
    for character ROM A00 (see :func:`encode_hd44780`); anything else shows as ``?``.

    The display is initialised on construction (by instruction, so it works whether
    the controller powered up in 8-bit mode or was left in 4-bit mode) and cleared.
    ``show`` rewrites only the rows whose text changed; ``redraw`` rewrites all of
    them (for example after a brown-out garbled the display).
    """

    #: Character ROM A00 has no Chinese: the dock shows English here (a config warning).
    shows_chinese = False

    def __init__(
        self,
        rs: PinSpec,
        e: PinSpec,
        d4: PinSpec,
        d5: PinSpec,
        d6: PinSpec,
        d7: PinSpec,
        pin_factory: Factory,
        cols: int = 20,
        rows: int = 4,
    ) -> None:
        if pin_factory is None:
            raise ValueError("pass a gpiozero pin factory explicitly (the default is never used)")
        if not 1 <= rows <= 4 or not 1 <= cols <= 40 or (rows > 2 and cols > 20):
            raise ValueError(f"unsupported HD44780 geometry {cols}x{rows}")
        self.cols = cols
        self.rows = rows
        self.row_addresses: tuple[int, ...] = (0x00, 0x40, cols, 0x40 + cols)[:rows]
        self._lock = threading.Lock()
        self._closed = False
        self._devices: list[DigitalOutputDevice] = []
        try:
            for pin in (rs, e, d4, d5, d6, d7):
                self._devices.append(
                    DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory)
                )
        except BaseException:
            self._release()
            raise
        self._rs, self._e, *self._data_pins = self._devices
        self._shown = fit_lines([], cols, rows)
        try:
            self._initialise()
        except BaseException:
            self._release()
            raise

    # -- the bus ---------------------------------------------------------------------

    def _write_nibble(self, nibble: int) -> None:
        for bit, device in enumerate(self._data_pins):
            device.value = bool(nibble >> bit & 1)
        self._e.on()
        _delay(_ENABLE_PULSE)
        self._e.off()  # the controller latches D4..D7 on E's falling edge
        _delay(_ENABLE_PULSE)

    def _write_byte(self, value: int, *, data: bool, wait: float = _EXEC_WAIT) -> None:
        self._rs.value = data
        self._write_nibble(value >> 4)
        self._write_nibble(value & 0x0F)
        _delay(wait)

    def _command(self, value: int, wait: float = _EXEC_WAIT) -> None:
        self._write_byte(value, data=False, wait=wait)

    def _initialise(self) -> None:
        # Datasheet figure 24, "initializing by instruction", 4-bit interface.
        _delay(_POWER_ON_WAIT)
        self._rs.off()
        self._write_nibble(0x3)
        _delay(_INIT_WAIT_LONG)
        self._write_nibble(0x3)
        _delay(_INIT_WAIT_SHORT)
        self._write_nibble(0x3)
        _delay(_INIT_WAIT_SHORT)
        self._write_nibble(0x2)  # now in 4-bit mode
        _delay(_INIT_WAIT_SHORT)
        lines = _FUNCTION_2_LINES if self.rows > 1 else 0
        self._command(_FUNCTION_SET | lines)  # 4-bit, 1 or 2 lines, 5x8 dots
        self._command(_DISPLAY_CONTROL)  # display off
        self._command(_CLEAR, wait=_CLEAR_WAIT)
        self._command(_ENTRY_MODE | _ENTRY_INCREMENT)  # cursor moves right, no shift
        self._command(_DISPLAY_CONTROL | _DISPLAY_ON)  # display on, cursor and blink off

    def _write_row(self, row: int, text: str) -> None:
        self._command(_SET_DDRAM | self.row_addresses[row])
        for code in encode_hd44780(text):
            self._write_byte(code, data=True)

    # -- the Screen interface --------------------------------------------------------

    @property
    def lines(self) -> list[str]:
        """The lines shown last, fitted to the display, before ROM substitution."""
        return list(self._shown)

    def show(self, lines: Sequence[str]) -> None:
        fitted = fit_lines(lines, self.cols, self.rows)
        with self._lock:
            self._check_open()
            for row, text in enumerate(fitted):
                if text != self._shown[row]:
                    self._write_row(row, text)
                    self._shown[row] = text

    def redraw(self) -> None:
        """Write every row again, whether or not it changed."""
        with self._lock:
            self._check_open()
            for row, text in enumerate(self._shown):
                self._write_row(row, text)

    def clear(self) -> None:
        with self._lock:
            self._check_open()
            self._command(_CLEAR, wait=_CLEAR_WAIT)
            self._shown = fit_lines([], self.cols, self.rows)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the screen is closed")

    def close(self) -> None:
        """Release the pins; the LCD keeps showing its last text. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._release()

    def _release(self) -> None:
        for device in self._devices:
            device.close()
