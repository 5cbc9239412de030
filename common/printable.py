"""Text made safe to print: every character a terminal could obey is written as an escape.

A recorder or a message can put anything in a serial, an id or an error text (ESC
sequences, C1 controls, NUL, bidi overrides). :func:`escaped` writes every character
that is not printable (``str.isprintable``), and the backslash, as ``\\xNN``,
``\\uNNNN`` or ``\\UNNNNNNNN`` (``\\\\``), so an escape cannot be forged by sending it
literally. Shared by the dock's output (``dock.support.text.shown``) and the log lines
of every program (:mod:`common.logsetup`).
"""

from __future__ import annotations


def escape_char(ch: str) -> str:
    """One character as its escape."""
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escaped(text: object) -> str:
    """``text`` with every non-printable character and the backslash escaped (unbounded)."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() and "\\" not in s:
        return s
    return "".join(ch if ch.isprintable() and ch != "\\" else escape_char(ch) for ch in s)


__all__ = ["escape_char", "escaped"]
