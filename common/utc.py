"""The one UTC time format: ISO 8601 to the millisecond, ``2026-11-22T06:45:07.123Z``.

Audit entries, checkpoint files, bag-info, MQTT messages and log lines all store
times in this form, so there is one formatter and one rule: **truncate toward the
past**. A time is shown as the last whole millisecond at or before it, never the next
one: an audit or evidence time rounded up could name a second that had not begun
(``...40.9996`` is ``...40.999Z``, never ``...41.000Z``).

A time is a float of seconds since the epoch. Floats are binary, so the instant meant
by ``1764398707.123`` is not exactly representable; the rule is applied to the
float's shortest decimal spelling (``repr``), which is the number as written. So
formatting a parsed time gives back the same text, and truncation never invents a
millisecond the float does not hold.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

#: The format's resolution, in seconds.
RESOLUTION_S = 0.001

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z")


def floor_ms(t: float) -> int:
    """Whole milliseconds since the epoch at or before ``t`` (as written, see above).

    Raises ValueError for NaN or an infinity.
    """
    if isinstance(t, int):
        return t * 1000
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"not a time: {t!r}")
    return int((Decimal(repr(t)) * 1000).to_integral_value(rounding=ROUND_FLOOR))


def utc_datetime(t: float) -> datetime:
    """``t`` as an aware UTC datetime, truncated to the millisecond.

    Raises ValueError or OverflowError for a time outside the years 1 to 9999 (or NaN).
    """
    return _EPOCH + timedelta(milliseconds=floor_ms(t))


def utc_iso(t: float) -> str:
    """``t`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, truncated toward the past.

    Raises ValueError or OverflowError for a time no calendar here can show.
    """
    d = utc_datetime(t)
    return f"{d.year:04d}-{d:%m-%dT%H:%M:%S}.{d.microsecond // 1000:03d}Z"


def parse_utc_ms(text: str) -> int:
    """Milliseconds since the epoch of a time :func:`utc_iso` wrote (exactly that form).

    Raises ValueError for anything else.
    """
    m = _ISO_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"time {text!r}: expected ISO 8601 UTC like 2026-11-22T09:05:53.120Z")
    year, month, day, hour, minute, second, ms = (int(v) for v in m.groups())
    # rejects month 13, 24:00:00, Feb 30
    d = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (d - _EPOCH) // timedelta(milliseconds=1) + ms


__all__ = ["RESOLUTION_S", "floor_ms", "parse_utc_ms", "utc_datetime", "utc_iso"]
