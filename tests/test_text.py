"""dock.support.text and the total time display: what a recorder states, made safe to show or
to name a file with (issue 9)."""

from __future__ import annotations

import json

import pytest

from dock.devices.clock import local_display, utc_datetime, utc_iso
from dock.support.text import json_text, safe_name, shown

CONTROLS = "\x1b[2J\x07\x9b\x00\u202e\u2028\x7f\ud800"


def test_shown_escapes_every_control_and_format_character() -> None:
    text = f"EMU{CONTROLS}1"
    out = shown(text)
    assert out.isprintable()
    assert out == "EMU\\x1b[2J\\x07\\x9b\\x00\\u202e\\u2028\\x7f\\ud8001"
    assert shown("王伟 REC-1") == "王伟 REC-1"  # printable text is left alone
    assert shown("a\\x1b") == "a\\\\x1b"  # a literal backslash cannot forge an escape
    assert shown(None) == "-" and shown(42) == "42"


def test_shown_is_bounded() -> None:
    out = shown("\x1b" * 10_000, limit=40)
    assert len(out) == 40 and out.endswith("...")


def test_json_text_is_the_same_json_with_nothing_raw() -> None:
    value = {"serial": f"EMU{CONTROLS[:-1]}", "name": "王伟", "emoji": "\U000e0001"}
    for indent in (None, 2):
        out = json_text(value, indent=indent)
        assert all(c.isprintable() or c == "\n" for c in out)
        assert json.loads(out) == value
    assert "王伟" in json_text(value)


@pytest.mark.parametrize(
    "raw",
    ["..", ".", "", "/", "../../etc/passwd", ".hidden", "a\x00b", "a\nb", "x" * 300, "王伟"],
)
def test_safe_name_is_one_plain_bounded_component(raw: str) -> None:
    name = safe_name(raw)
    assert name not in ("", ".", "..") and not name.startswith(".")
    assert "/" not in name and all(c.isascii() and c.isprintable() for c in name)
    assert len(name.encode()) <= 64 + 9
    assert name != raw  # changed, so it carries a hash of the original


def test_safe_name_keeps_plain_ids_and_keeps_distinct_inputs_apart() -> None:
    assert safe_name("REC000001") == "REC000001" and safe_name("1001") == "1001"
    raws = ["a/b", "a-b", "a\nb", "a.b", "a:b", "a" * 70, "a" * 71, "..", "-."]
    assert len({safe_name(r) for r in raws}) == len(raws)


@pytest.mark.parametrize(
    "t", [2**63 - 1, -(2**63), 253_402_300_800, float("nan"), float("inf"), -float("inf")]
)
def test_impossible_times_are_shown_as_such_never_raised(t: float) -> None:
    assert utc_datetime(t) is None
    assert utc_iso(t).startswith("invalid time")
    assert local_display(t, "Asia/Shanghai").startswith("invalid time")


def test_times_at_the_edges_of_the_calendar() -> None:
    assert utc_iso(-1) == "1969-12-31T23:59:59.000Z"
    assert utc_iso(-62_135_596_800) == "0001-01-01T00:00:00.000Z"
    assert local_display(-62_135_596_800, "America/New_York").startswith("invalid time")
    assert utc_iso(253_402_300_799) == "9999-12-31T23:59:59.000Z"
