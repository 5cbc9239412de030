"""Every word the site shows, in Chinese and English, and times in the dock's zone.

Each area keeps its words in ``web_status/<area>/messages.py`` as ``MESSAGES = {"key":
{"en": "...", "zh": "..."}}`` (keys start with the area's name: ``home.title``); the app
factory gathers them once (:func:`register`). ``t(key, **kw)`` is the same in code and
templates. The language is the session's (``/lang/<en|zh>``), else the dock's ``locale``.
A key missing from the catalogue shows as the key itself (and tests fail on it); a
value given to ``t`` is formatted in, never interpreted (Jinja escapes the result).
"""

from __future__ import annotations

import datetime
import logging
import re
import zoneinfo
from collections.abc import Mapping

from flask import current_app, has_request_context, session

log = logging.getLogger("web_status.i18n")

LANGUAGES = ("zh", "en")
#: key -> {"en": text, "zh": text}; filled by :func:`register` from each area.
CATALOGUE: dict[str, dict[str, str]] = {}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def register(messages: Mapping[str, Mapping[str, str]], where: str) -> None:
    """Add an area's MESSAGES; a key defined twice or missing a language is refused at
    start, not shown half-translated."""
    for key, texts in messages.items():
        missing = [lang for lang in LANGUAGES if not texts.get(lang)]
        if missing:
            raise ValueError(f"{where}: {key!r} has no {', '.join(missing)} text")
        if key in CATALOGUE and CATALOGUE[key] != dict(texts):
            raise ValueError(f"{where}: {key!r} is defined twice")
        CATALOGUE[key] = dict(texts)


def language() -> str:
    """The language of this request: the session's choice, else the dock's locale."""
    if has_request_context():
        chosen = session.get("lang")
        if chosen in LANGUAGES:
            return str(chosen)
        return str(current_app.config.get("DOCK_LOCALE", "zh"))
    return "zh"


def t(key: str, lang: str | None = None, **values: object) -> str:
    """The text of ``key`` in ``lang`` (default: this request's), ``{name}`` filled from
    ``values`` (a missing value stays as written)."""
    texts = CATALOGUE.get(key)
    if texts is None:
        log.warning("no text for %r", key)
        return key
    text = texts.get(lang or language()) or texts["en"]
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def fmt_time(value: float | str | None, tz: str | None = None) -> str:
    """A time (seconds since the epoch, or the stored UTC text ``...Z``) in the dock's
    time zone with the zone shown: ``2026-11-22 14:45:07 CST (UTC+08:00)``; "-" for none."""
    if value is None or value == "":
        return "-"
    try:
        if isinstance(value, str):
            d = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=datetime.UTC)
        else:
            d = datetime.datetime.fromtimestamp(float(value), datetime.UTC)
        zone = zoneinfo.ZoneInfo(tz or current_app.config.get("DOCK_TIMEZONE", "Asia/Shanghai"))
        local = d.astimezone(zone)
    except (ValueError, OverflowError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return str(value)[:40]
    offset = local.utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (UTC{sign}{hh:02d}:{mm:02d})"
