"""Text a recorder chose, made safe for a terminal, a log line or a file name.

A recorder states its serial, model, firmware, vendor, officer and recording ids; a
hostile or broken one can put anything there (ESC sequences that clear or rewrite the
screen, C1 controls, NUL, bidi overrides that reorder what is shown, ``..``). Such text
never reaches a person or the file system verbatim:

* :func:`shown` for plain terminal output: every character that is not printable
  (``str.isprintable``: C0/C1 controls, DEL, format characters such as U+202E,
  line/paragraph separators, unassigned code points) and the backslash are written
  as ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN`` (and ``\\\\``), so the escape cannot
  be forged by sending it literally; the result is bounded in length.
* :func:`json_text` for JSON on a terminal or in a log: ``json.dumps`` escapes only
  C0 controls when ``ensure_ascii`` is off, so the rest is ``\\u``-escaped too
  (the parsed value is unchanged; Chinese stays readable).
* :func:`safe_name` for one file-name component: ASCII letters, digits, ``-``,
  ``_`` and ``.``; never ``.``/``..`` or a leading dot; bounded in bytes; and
  a short hash of the original when anything had to change, so distinct inputs
  do not silently share a name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from common.jsontext import json_text
from common.printable import escaped

#: Default bound of :func:`shown`, in characters after escaping.
SHOWN_LIMIT = 120
#: Default bound of :func:`safe_name`, in bytes before the hash suffix.
NAME_BYTES = 64
#: What a cut ends with.
ELLIPSIS = "..."

_NAME_CHAR = re.compile(r"[A-Za-z0-9._-]")


def shown(text: object, limit: int = SHOWN_LIMIT) -> str:
    """``text`` as it may be printed: escaped (:func:`escaped`), at most ``limit``
    characters (a cut ends with ``...``). ``None`` is shown as ``-``."""
    if text is None:
        return "-"
    s = escaped(text)
    if len(s) > limit:
        s = s[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS
    return s


def safe_name(text: object, max_bytes: int = NAME_BYTES) -> str:
    """One file-name component for ``text``, never verbatim from a recorder.

    Other characters become ``-``; a leading dot becomes ``-`` (so never ``.``,
    ``..`` or a hidden name); at most ``max_bytes`` bytes. When any of that changed
    the text, ``~`` and 8 hex digits of the SHA-256 of the original are appended:
    ``"../x"`` and ``"--x"`` stay apart. At most ``max_bytes + 9`` bytes.
    """
    raw = text if isinstance(text, str) else str(text)
    name = "".join(ch if _NAME_CHAR.fullmatch(ch) else "-" for ch in raw)[:max_bytes]
    if name.startswith("."):
        name = "-" + name[1:]
    if name == raw and name:
        return name
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name or '-'}~{digest}"


#: Unicode categories kept in a :func:`safe_label`: letters, marks and digits of any script.
_LABEL_CATEGORIES = ("L", "M", "N")
#: Punctuation kept besides: the hyphen, the full stop (never leading) and the middle dots
#: of names such as 买买提·艾力.
_LABEL_PUNCTUATION = frozenset("-.\u00b7\u30fb")


def safe_label(text: object, max_bytes: int = NAME_BYTES) -> str:
    """One file-name component for a person's or a case's name, readable in its own
    script (王伟 stays 王伟): NFC-normalised; letters, marks and digits of any script,
    ``-``, ``.`` and the middle dot kept, everything else (``/``, ``\\``, ``_``, spaces,
    NUL and other controls, bidi overrides and other format characters) becomes ``-``;
    never ``.``, ``..`` or a leading dot; cut to ``max_bytes`` bytes of UTF-8 on a
    character boundary. When anything but the normalisation changed the text, ``~`` and
    8 hex digits of the SHA-256 of the normalised text are appended (at most ``max_bytes
    + 9`` bytes), so two names that differ stay apart."""
    raw = unicodedata.normalize("NFC", text if isinstance(text, str) else str(text))
    kept = "".join(
        ch if ch in _LABEL_PUNCTUATION or unicodedata.category(ch)[0] in _LABEL_CATEGORIES else "-"
        for ch in raw
    )
    name = kept.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")
    if name.startswith("."):
        name = "-" + name[1:]
    if name == raw and name:
        return name
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name or '-'}~{digest}"


__all__ = [
    "ELLIPSIS",
    "NAME_BYTES",
    "SHOWN_LIMIT",
    "escaped",
    "json_text",
    "safe_label",
    "safe_name",
    "shown",
]
