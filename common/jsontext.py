"""JSON a terminal or a log can show safely: the same value, nothing raw to obey.

``json.dumps`` escapes only C0 controls when ``ensure_ascii`` is off; C1 controls and
bidi overrides (which a hostile recorder or a forged message can carry) would reach
the screen raw. Here every non-printable character is ``\\u``-escaped too, while
Chinese stays readable.
"""

from __future__ import annotations

import json
from typing import Any


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **kwargs)`` with every non-printable
    character ``\\u``-escaped: same JSON value, nothing raw for a terminal to obey.

    The only raw non-printable ``json.dumps`` emits outside strings is the newline of
    ``indent``, which stays.
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


__all__ = ["json_text"]
