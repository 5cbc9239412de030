"""The one configuration checker both dock.toml and hq.toml are read with.

A ``Checker`` collects every problem in a file (``key: what is wrong — how to fix it``)
instead of stopping at the first, and the warnings for settings that are allowed but
weaken something or are spelt the old way. The readers below check one value each and
raise ``Bad`` with the message; ``Checker.get`` turns that into a problem qualified by
the key's path. Standard library only: the dock and headquarters both read their files
with it, and neither may import the other.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: (key, what is wrong, how to fix it)
Problem = tuple[str, str, str]


class Bad(Exception):
    """A value a reader refuses: what is wrong with it, and the fix."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


class _Invalid:
    """Placeholder for a value that failed its check (a problem is already recorded)."""


INVALID: Any = _Invalid()
REQUIRED: Any = object()


def qualified(where: str, name: str) -> str:
    """``where.name``, or ``name`` alone at the top of a file."""
    return f"{where}.{name}" if where else name


class Checker:
    """Collects every problem and warning of one file, each naming its key."""

    def __init__(self) -> None:
        self.issues: list[Problem] = []
        self.warnings: list[str] = []

    @property
    def problems(self) -> list[str]:
        return [f"{key}: {what} — {fix}" for key, what, fix in self.issues]

    def problem(self, key: str, what: str, fix: str) -> None:
        self.issues.append((key, what, fix))

    def warn(self, key: str, text: str) -> None:
        self.warnings.append(f"{key}: {text}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
        """A problem for every key not in ``known``: a typo is never silently ignored."""
        known = list(known)
        for name in table:
            if name in known:
                continue
            key = qualified(where, name)
            match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if match:
                self.problem(key, "unknown key", f'did you mean "{match[0]}"?')
            else:
                self.problem(key, "unknown key", f"remove it; [{where}] knows {', '.join(known)}")

    def renamed(
        self, where: str, table: Mapping[str, Any], old_names: Mapping[str, str]
    ) -> dict[str, Any]:
        """``table`` with keys spelt the old way under their new names, each warned about
        (deployed files keep working); both spellings at once is a problem."""
        out: dict[str, Any] = {}
        for name, value in table.items():
            new = old_names.get(name)
            if new is None:
                out.setdefault(name, value)
                continue
            if new in table:
                self.problem(
                    qualified(where, name),
                    f"is the old name of {new}, which is also given",
                    f"remove {name}",
                )
                continue
            self.warn(qualified(where, name), f"is an old name — write {new} instead")
            out[new] = value
        return out

    def table(self, data: Mapping[str, Any], name: str) -> dict[str, Any]:
        """``[name]`` of ``data`` ({} when absent); a problem if it is not a table."""
        value = data.get(name, {})
        if isinstance(value, dict):
            return value
        self.problem(
            name, f"expected a table, got {kind(value)}", f"write [{name}] and its keys below"
        )
        return {}

    def get(
        self,
        table: Mapping[str, Any],
        where: str,
        name: str,
        check: Callable[[Any], Any],
        default: Any = REQUIRED,
        missing_fix: str = "",
    ) -> Any:
        """``table[name]`` through ``check``; INVALID (and a problem) if it is refused."""
        key = qualified(where, name)
        if name not in table:
            if default is REQUIRED:
                self.problem(key, "missing", missing_fix)
                return INVALID
            return default
        try:
            return check(table[name])
        except Bad as bad:
            self.problem(key, bad.what, bad.fix)
            return INVALID


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What to say of a file that is not UTF-8: where, and the fix."""
    byte = exc.object[exc.start : exc.start + 1].hex()
    return (
        f"not UTF-8 text (byte 0x{byte} at offset {exc.start}) — save the file as UTF-8 "
        "(TOML files are UTF-8; e.g. iconv -f GB18030 -t UTF-8)"
    )


# --- the readers ----------------------------------------------------------------


def show(value: Any) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def kind(value: Any) -> str:
    """What a TOML value is, for "expected X, got Y" messages."""
    if isinstance(value, bool):
        return f"a boolean ({show(value)})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({show(value)})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a date/time ({value})"


def as_int(value: Any, example: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    fix = f"write a whole number without quotes, e.g. {example}"
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        fix = f"remove the quotes: {example.split('=')[0].strip()} = {value.strip()}"
    raise Bad(f"expected an integer, got {kind(value)}", fix)


def as_float(value: Any, example: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    fix = f"write a number without quotes, e.g. {example}"
    if isinstance(value, str):
        try:
            float(value)
            fix = f"remove the quotes: {example.split('=')[0].strip()} = {value.strip()}"
        except ValueError:
            pass
    raise Bad(f"expected a number, got {kind(value)}", fix)


def as_str(value: Any, example: str) -> str:
    if isinstance(value, str):
        return value
    raise Bad(f"expected a string, got {kind(value)}", f"quote it, e.g. {example}")


def nonempty(example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = as_str(value, example).strip()
        if not text:
            raise Bad("empty", f"give a value, e.g. {example}")
        return text

    return check


def choice(options: Iterable[str], example: str) -> Callable[[Any], str]:
    options = tuple(options)

    def check(value: Any) -> str:
        text = as_str(value, example)
        if text in options:
            return text
        quoted = [f'"{o}"' for o in options]
        listed = " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted)
        match = difflib.get_close_matches(text, options, n=1, cutoff=0.5)
        hint = f'did you mean "{match[0]}"? ' if match else ""
        raise Bad(f"{show(text)} is not one of the choices", f"{hint}use {listed}")

    return check


def int_range(lo: int, hi: int, name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = as_int(value, f"{name} = {lo}")
        if not lo <= number <= hi:
            raise Bad(f"{number} is out of range", f"use a whole number from {lo} to {hi}")
        return number

    return check


def positive_float(name: str, example: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        number = as_float(value, f"{name} = {example}")
        if not number > 0:
            raise Bad(f"{number} is not positive", f"use a number above 0, e.g. {example}")
        return number

    return check
