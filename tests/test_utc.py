"""The one UTC time format (common.utc): every stored time truncates toward the past.

Audit entries, checkpoint files, bag-info, MQTT messages and log lines all use it; a
time rounded up could name a second that had not begun when the event happened.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.jsonlog import JsonFormatter
from common.utc import RESOLUTION_S, floor_ms, parse_utc_ms, utc_iso
from dock.devices import clock
from dock.storage import audit
from mqtt_contract import contract

#: The years 1 to 9999, the calendar the format can write.
FIRST, LAST = -62_135_596_800.0, 253_402_300_799.999
TIMES = st.floats(min_value=FIRST, max_value=LAST, allow_nan=False, allow_infinity=False)


@given(TIMES)
def test_format_truncates_never_rounds_up(t: float) -> None:
    ms = parse_utc_ms(utc_iso(t))
    shown = ms / 1000
    assert shown <= t < (ms + 1) / 1000
    assert math.floor(shown) <= math.floor(t)  # never into the next second
    assert RESOLUTION_S == 0.001


@given(st.integers(min_value=round(FIRST * 1000), max_value=round(LAST * 1000)))
def test_parse_then_format_gives_the_same_text(ms: int) -> None:
    text = utc_iso(ms / 1000)
    assert parse_utc_ms(text) == ms
    assert utc_iso(contract.parse_utc(text)) == text  # what the outbox re-formats


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (1_700_000_000.123, "2023-11-14T22:13:20.123Z"),
        (1_700_000_000.9999, "2023-11-14T22:13:20.999Z"),
        (1_700_000_000.9999998, "2023-11-14T22:13:20.999Z"),  # was 21.000Z in two copies
        (-0.0001, "1969-12-31T23:59:59.999Z"),
        (0, "1970-01-01T00:00:00.000Z"),
    ],
)
def test_every_writer_agrees(t: float, text: str) -> None:
    assert utc_iso(t) == clock.utc_iso(t) == contract.utc(t) == audit.utc_iso(t) == text
    record = logging.makeLogRecord({"msg": "m", "created": t})
    assert json.loads(JsonFormatter().format(record))["ts"] == text


@pytest.mark.parametrize("t", [float("nan"), float("inf"), 2**63 - 1, 253_402_300_800])
def test_an_impossible_time_raises_for_storage_and_is_named_for_display(t: float) -> None:
    with pytest.raises((ValueError, OverflowError)):
        utc_iso(t)
    assert clock.utc_iso(t).startswith("invalid time")


@pytest.mark.parametrize("text", ["2026-11-22T09:05:53Z", "2026-02-30T00:00:00.000Z", "x", 7])
def test_parse_takes_only_the_format(text: object) -> None:
    with pytest.raises(ValueError):
        parse_utc_ms(text)  # type: ignore[arg-type]


def test_integers_are_exact() -> None:
    assert floor_ms(2**40) == 2**40 * 1000
