"""The JSON log line: one JSON object per line, for log shippers (``--log-format json``;
:mod:`common.logsetup` chooses the format and installs the handler).

The dock and headquarters write the same line: ``ts`` (:func:`common.utc.utc_iso`),
``level``, ``logger``, ``msg``, any extra fields, and ``exc`` with a traceback. Messages
may carry what a recorder or a message stated, so the line goes through
:func:`common.jsontext.json_text`: nothing in it is raw for a terminal to obey.
"""

from __future__ import annotations

import logging
from typing import Any

from common.jsontext import json_text
from common.utc import utc_iso

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per log record, extra fields included."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utc_iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json_text(entry, default=str)


__all__ = ["JsonFormatter"]
