"""``dock run``'s status table on a terminal: drawn once, then redrawn in place.

Only where standard output is a terminal (:func:`open_live_table`); in a pipe or the
journal the daemon says what changed in log lines instead (:mod:`dock.cli.slot_events`).
Each redraw moves the cursor back to the table's first line (CSI n F) and clears to the
end of the screen (CSI J): the terminal's scrollback does not grow with the sweeps.
Every line is cut to the terminal's width (a wide character counts two columns), so no
line wraps and the count of lines to go back is right. Log lines written to the same
terminal go above the table (:meth:`LiveTable.attach_logs`), which is then drawn again
below them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from typing import TextIO

CSI = "\x1b["


def cells(ch: str) -> int:
    """Columns a character takes on a terminal: 2 for wide, 0 for combining, else 1."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def fit(line: str, columns: int) -> str:
    """``line`` cut to at most ``columns`` terminal columns."""
    used = 0
    for i, ch in enumerate(line):
        used += cells(ch)
        if used > columns:
            return line[:i]
    return line


class _Above:
    """A log handler's stream that writes above the table."""

    def __init__(self, table: LiveTable) -> None:
        self.table = table

    def write(self, text: str) -> int:
        self.table.write_above(text)
        return len(text)

    def flush(self) -> None:
        """Each write is flushed already."""


class LiveTable:
    """The table (and a note under it) on terminal ``out``, redrawn in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()
        self._table: list[str] = []
        self._note: str | None = None
        self._drawn = 0  # lines of the last drawing, to go back over
        self._handlers: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []

    def show(self, lines: Sequence[str]) -> None:
        """Replace the table by ``lines`` (already safe to print: ``status_lines``)."""
        with self._lock:
            self._table = list(lines)
            self._redraw("")

    def note(self, line: str) -> None:
        """A line kept under the table until the next note (the last badge read)."""
        with self._lock:
            self._note = line
            self._redraw("")

    def write_above(self, text: str) -> None:
        """``text`` (log lines) printed above the table, which is drawn again below."""
        with self._lock:
            self._redraw(text)

    def _size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.out.fileno())
            return max(10, size.columns - 1), max(3, size.lines - 1)
        except (OSError, ValueError, AttributeError):
            return 79, 23

    def _redraw(self, above: str) -> None:
        columns, rows = self._size()
        lines = [*self._table, *([self._note] if self._note else [])]
        if len(lines) > rows:  # going back past the top of the screen is not possible
            lines = [*lines[: rows - 1], f"... {len(lines) - rows + 1} more line(s)"]
        frame = "".join(f"{fit(line, columns)}\n" for line in lines)
        back = f"{CSI}{self._drawn}F{CSI}J" if self._drawn else ""
        self.out.write(back + above + frame)
        self.out.flush()
        self._drawn = len(lines)

    def attach_logs(self) -> None:
        """Log handlers writing to this same terminal write above the table from now."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and _same_terminal(
                handler.stream, self.out
            ):
                old = handler.setStream(_Above(self))  # type: ignore[arg-type,unused-ignore]
                if old is not None:
                    self._handlers.append((handler, old))

    def close(self) -> None:
        """Give the log handlers their stream back; the table stays on the screen."""
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers.clear()


def _same_terminal(a: TextIO, b: TextIO) -> bool:
    try:
        return a.isatty() and os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def open_live_table(out: TextIO) -> LiveTable | None:
    """A live table on ``out`` when it is a terminal; None for a pipe, a file or the
    journal (the daemon then logs what changed)."""
    try:
        if not out.isatty():
            return None
    except (ValueError, AttributeError):
        return None
    if os.environ.get("TERM") == "dumb":  # no cursor movement there
        return None
    return LiveTable(out)


@contextlib.contextmanager
def printed_as_log(out: TextIO, logger: logging.Logger) -> Iterator[None]:
    """What the block prints on ``out`` goes there on a terminal, else into the log at
    INFO, one record per line (no bare text in the journal or among JSON lines)."""
    if open_live_table(out) is not None:
        yield
        return
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                logger.info("%s", line.strip())


__all__ = ["LiveTable", "cells", "fit", "open_live_table", "printed_as_log"]
