"""How every program of the project logs (``dock``, ``dock-web``, ``dock-hq``): one line
per event on standard error, in a form chosen once at start.

* ``journal``: under systemd (``JOURNAL_STREAM`` names standard error, systemd.exec(5)),
  ``<N>logger: message`` with the syslog priority N, which journald takes as the entry's
  priority (SyslogLevelPrefix) and strips; no time: journald stamps each entry.
* ``text``: standard error is a pipe or a file but not the journal (a container, a
  redirection): ``2026-11-30T20:47:47.522Z warning logger: message``, time in UTC.
* ``terminal``: standard error is a terminal: ``20:47:47 warning logger: message``,
  local time.
* ``json``: asked for (``--log-format json`` or ``DOCK_LOG_FORMAT=json``) for log
  shippers: one JSON object per line (:class:`common.jsonlog.JsonFormatter`).

Every human line is one line and safe for a terminal: what a recorder or a message
said is escaped (:func:`common.printable.escaped`), a multi-line message is folded with
`` | ``, and an exception adds only its type and message; the whole traceback is written
only at DEBUG level (a second line, priority 7) or in the JSON line's ``exc``.

The priorities, and the rule every ``log.*`` call of the project follows, so that
``journalctl -p warning -u dock`` shows only what needs a person:

* ERROR (3): something failed that a person must put right: footage not copied or
  not verified, the audit log not kept, a refused broker, an internal error.
* WARNING (4): needs a person's look soon but nothing failed yet: a deadline at risk,
  a recorder not returned, the broker unreachable, a weakening setting, a device that
  cannot be used.
* INFO (6): what happened in the normal course: a recorder docked, a check-out granted
  *or refused* (a refusal is the dock working), an offload finished, footage safe,
  connected to the broker. The default level of the daemons.
* DEBUG (7): what helps a developer: each request, each session, progress.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from typing import Any, TextIO

from common.jsonlog import JsonFormatter
from common.jsontext import json_text
from common.printable import escaped
from common.utc import utc_iso

#: ``auto`` picks journal, text or terminal from where standard error goes.
FORMATS = ("auto", "journal", "text", "terminal", "json")
#: The environment variable that picks the format when no option does.
FORMAT_ENV = "DOCK_LOG_FORMAT"
#: The longest message kept in a human line, in characters after escaping.
MESSAGE_LIMIT = 4000

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: The format :func:`setup_logging` chose (None before), for :func:`error_line`.
_chosen: str | None = None


class LogFormatError(ValueError):
    """A log format that is not one of :data:`FORMATS` (said in one line)."""


def priority(levelno: int) -> int:
    """The syslog priority of a Python level: 2 crit, 3 err, 4 warning, 6 info, 7 debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def one_line(text: object) -> str:
    """``text`` on one line, escaped: lines joined with `` | ``, bounded."""
    lines = [escaped(part.strip()) for part in str(text).splitlines() if part.strip()]
    folded = " | ".join(lines)
    if len(folded) > MESSAGE_LIMIT:
        folded = folded[: MESSAGE_LIMIT - 3] + "..."
    return folded


class LineFormatter(logging.Formatter):
    """One human line per record, headed for ``style`` (journal, text or terminal)."""

    def __init__(self, style: str, tracebacks: bool = False) -> None:
        super().__init__()
        self.style = style
        self.tracebacks = tracebacks

    def head(self, record: logging.LogRecord, pri: int | None = None) -> str:
        name = escaped(record.name)
        if self.style == "journal":
            return f"<{priority(record.levelno) if pri is None else pri}>{name}: "
        level = record.levelname.lower()
        if self.style == "text":
            return f"{utc_iso(record.created)} {level} {name}: "
        return f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {level} {name}: "

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except (TypeError, ValueError) as exc:  # a wrong format string: still one line
            message = f"{record.msg!r} {record.args!r} ({exc})"
        line = self.head(record) + one_line(message)
        extra = [
            f"{escaped(k)}={one_line(v if isinstance(v, str) else json_text(v, default=str))}"
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        ]
        if extra:
            line += " " + " ".join(extra)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: {one_line(error)}"
            if self.tracebacks or record.levelno >= logging.CRITICAL:  # a crash keeps it
                folded = one_line("".join(traceback.format_exception(error)))
                line += "\n" + self.head(record, 7) + "traceback: " + folded
        return line


def is_journal(stream: TextIO) -> bool:
    """Whether ``stream`` is the journal's stream systemd gave this service
    (``JOURNAL_STREAM=DEV:INODE`` naming the stream's file, systemd.exec(5))."""
    given = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = given.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except (ValueError, OSError, AttributeError):  # unset, malformed, or no file
        return False


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False


def choose_format(requested: str | None = None, stream: TextIO | None = None) -> str:
    """The format of the log lines: ``requested`` (an option) or ``$DOCK_LOG_FORMAT``,
    and where that is ``auto``: journal, terminal or text, from where ``stream`` goes."""
    stream = sys.stderr if stream is None else stream
    given = requested or os.environ.get(FORMAT_ENV) or "auto"
    fmt = given.strip().lower()
    if fmt not in FORMATS:
        raise LogFormatError(
            f"log format {escaped(given)!s} is not one of {', '.join(FORMATS)} "
            f"(--log-format or {FORMAT_ENV})"
        )
    if fmt != "auto":
        return fmt
    if is_journal(stream):
        return "journal"
    return "terminal" if is_terminal(stream) else "text"


def formatter_for(fmt: str, tracebacks: bool = False) -> logging.Formatter:
    """The formatter of a chosen format (:func:`choose_format`)."""
    if fmt == "json":
        return JsonFormatter()
    return LineFormatter(fmt, tracebacks)


def setup_logging(
    level: str = "INFO", log_format: str | None = None, stream: TextIO | None = None
) -> str:
    """Send every record at ``level`` and above to ``stream`` (standard error) as one
    line in the chosen format, which is returned. LogFormatError for an unknown format,
    ValueError for an unknown level."""
    global _chosen
    stream = sys.stderr if stream is None else stream
    fmt = choose_format(log_format, stream)
    _chosen = fmt
    root = logging.getLogger()
    root.setLevel(level.upper())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(fmt, root.level <= logging.DEBUG))
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # a library's warnings are log lines too, not raw text
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return fmt


def error_line(text: str, program: str) -> str:
    """A command's one-line error (``dock: no such file``) as its stream should carry
    it: with priority 3 in the journal, as a JSON entry in JSON, else as it is; so
    that ``journalctl -p err`` shows why a service did not start."""
    if _chosen == "journal":
        return f"<3>{one_line(text)}"
    if _chosen == "json":
        record = logging.makeLogRecord(
            {"name": program, "levelno": logging.ERROR, "levelname": "ERROR", "msg": text}
        )
        return JsonFormatter().format(record)
    return text


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """A crash as one critical log entry (and its traceback as one more), not as
    dozens of bare lines that journald would each take for an entry at info."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("crash").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("crash").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def add_log_format_option(parser: Any, default: Any = None) -> None:
    """``--log-format`` on an argparse parser (``default``: None, or SUPPRESS)."""
    parser.add_argument(
        "--log-format",
        default=default,
        choices=FORMATS,
        help=f"log lines: auto (default: journal under systemd, else text or terminal), "
        f"journal, text, terminal or json (also ${FORMAT_ENV})",
    )


__all__ = [
    "FORMATS",
    "FORMAT_ENV",
    "LineFormatter",
    "LogFormatError",
    "add_log_format_option",
    "choose_format",
    "error_line",
    "formatter_for",
    "is_journal",
    "one_line",
    "priority",
    "setup_logging",
]
