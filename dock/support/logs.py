"""The dock's logs: one line per event on stderr, in the form chosen once at start
(journal, text, terminal or JSON). It all lives in :mod:`common.logsetup` (shared with
``hq`` and ``dock-web``); this module keeps the dock's import path.
"""

from __future__ import annotations

from common.jsonlog import JsonFormatter
from common.logsetup import (
    LogFormatError,
    add_log_format_option,
    choose_format,
    error_line,
    setup_logging,
)

__all__ = ["JsonFormatter", "LogFormatError", "add_log_format_option", "choose_format",
           "error_line", "setup_logging"]  # fmt: skip
