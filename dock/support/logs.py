"""Structured logs: one JSON object per line on stderr, the same line headquarters writes.

The formatter lives in :mod:`common.jsonlog` (shared with ``hq``); this module keeps
the dock's import path.
"""

from __future__ import annotations

from common.jsonlog import JsonFormatter, setup_logging

__all__ = ["JsonFormatter", "setup_logging"]
