"""Server words in a dock message: a server's error text is untrusted, so it is escaped
(no newline or control character can forge a log line) and bounded before it is shown."""

from __future__ import annotations


def one_line(text: object, limit: int = 200) -> str:
    """``text`` escaped to printable ASCII on one line, at most ``limit`` characters."""
    s = str(text).encode("unicode_escape", "backslashreplace").decode("ascii", "replace")
    return s if len(s) <= limit else s[: limit - 3] + "..."
