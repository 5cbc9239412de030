"""Badge readers over a real pyserial loopback and a text stream."""

from __future__ import annotations

import io

from hardware.badge_reader import SerialBadgeReader, clean_badge, keyboard_badges


def test_serial_reader_gives_one_badge_per_line() -> None:
    reader = SerialBadgeReader("loop://", poll_s=0.05)
    try:
        reader.port.write(b"04A1B2C3\r\n")
        got = [reader.read() for _ in range(5)]
        assert "04A1B2C3" in got
        reader.port.write(b"0000FF\r")
        reader.port.write(b"\n0000EE\n")
        seen = [b for b in (reader.read() for _ in range(10)) if b]
        assert seen == ["0000FF", "0000EE"]
    finally:
        reader.close()


def test_noise_is_not_a_badge() -> None:
    assert clean_badge(b"\x00\x01  \r") is None
    assert clean_badge(b"\xff\xfe") is None
    assert clean_badge("x" * 65) is None
    assert clean_badge(" 04A1 \n") == "04A1"


def test_keyboard_wedge_lines() -> None:
    stream = io.StringIO("04A1B2C3\n\n  \nBADGE-1001\n")
    assert list(keyboard_badges(stream)) == ["04A1B2C3", "BADGE-1001"]
