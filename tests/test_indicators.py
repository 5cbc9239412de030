"""Slot LEDs, buzzer and status screens on gpiozero's mock pins.

Every device gets its MockFactory passed in; gpiozero's global default factory is
never touched. Blink patterns are checked on ``MockPin.states`` (PinState(timestamp,
state), each timestamp the time since the previous change) with a tolerance.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from hardware.indicators import (
    PATTERNS,
    GpioBuzzer,
    GpioSlotIndicator,
    SlotIndicatorBank,
    pattern_name,
)
from hardware.screens import ConsoleScreen, Hd44780Screen, encode_hd44780, fit_lines

GREEN, RED, BUZZER = 17, 27, 22
TOLERANCE = 0.05  # seconds; as gpiozero's own assert_states_and_times


def assert_timeline(pin: MockPin, expected: list[tuple[float, float]]) -> None:
    """The pin's first changes are ``expected`` (delay since previous change, state)."""
    actual = [(round(s.timestamp, 3), float(s.state)) for s in pin.states]
    assert len(actual) >= len(expected), actual
    for (t, state), (want_t, want_state) in zip(actual, expected, strict=False):
        assert state == pytest.approx(want_state), actual
        assert t == pytest.approx(want_t, abs=TOLERANCE), actual
    pin.assert_states_and_times(expected)  # gpiozero's own check agrees


def rising_edges(pin: MockPin) -> int:
    values = [float(s.state) for s in pin.states]
    return sum(1 for a, b in pairwise(values) if a < 0.5 <= b)


@pytest.fixture
def pwm_factory() -> Iterator[MockFactory]:
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


@pytest.fixture
def plain_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def indicator(pwm_factory: MockFactory) -> Iterator[GpioSlotIndicator]:
    with GpioSlotIndicator(GREEN, RED, pwm_factory) as ind:
        yield ind


def pins(factory: MockFactory) -> tuple[MockPin, MockPin]:
    green, red = factory.pin(GREEN), factory.pin(RED)
    green.clear_states()
    red.clear_states()
    return green, red


# -- slot indicator ------------------------------------------------------------------


def test_pattern_names_match_the_dock_enum() -> None:
    from dock.domain.interfaces import LedPattern  # the test may look at both sides

    assert {p.value for p in LedPattern} == set(PATTERNS)
    for p in LedPattern:
        assert pattern_name(p) == p.value
    with pytest.raises(ValueError):
        pattern_name("disco")


def test_factory_is_required() -> None:
    with pytest.raises(ValueError):
        GpioSlotIndicator(GREEN, RED, None)
    with pytest.raises(ValueError):
        GpioBuzzer(BUZZER, None)


def test_starts_off_and_uses_pwm_when_the_pin_can(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory
) -> None:
    assert indicator.pwm
    assert indicator.pattern == "off"
    assert pwm_factory.pin(GREEN).state == 0
    assert pwm_factory.pin(RED).state == 0


def test_ready_is_steady_green(indicator: GpioSlotIndicator, pwm_factory: MockFactory) -> None:
    green, red = pins(pwm_factory)
    indicator.show("ready")
    time.sleep(0.2)
    assert_timeline(green, [(0.0, 0), (0.0, 1)])
    assert len(green.states) == 2  # stayed on
    assert green.state == 1
    assert red.state == 0
    assert len(red.states) == 1


def test_fault_is_steady_red(indicator: GpioSlotIndicator, pwm_factory: MockFactory) -> None:
    indicator.show("ready")
    green, red = pins(pwm_factory)
    indicator.show("fault")
    time.sleep(0.2)
    assert_timeline(red, [(0.0, 0), (0.0, 1)])
    assert len(red.states) == 2
    assert_timeline(green, [(0.0, 1), (0.0, 0)])
    assert len(green.states) == 2


def test_take_this_blinks_green_fast(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory
) -> None:
    green, red = pins(pwm_factory)
    indicator.show("take_this")
    time.sleep(0.6)
    expected = [(0.0, 0), (0.0, 1), (0.15, 0), (0.15, 1), (0.15, 0)]
    assert_timeline(green, expected)
    assert len(red.states) == 1


def test_busy_pulses_green_slowly_or_blinks_without_pwm(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory, plain_factory: MockFactory
) -> None:
    # Both at once (separate factories) to keep the file quick.
    with GpioSlotIndicator(GREEN, RED, plain_factory) as plain:
        assert not plain.pwm
        green, red = pins(pwm_factory)
        plain_green, plain_red = pins(plain_factory)
        indicator.show("busy")
        plain.show("busy")
        time.sleep(1.15)

    # PWM: absolute times of each level; fades in over ~1 s, then starts fading out.
    t, timeline = 0.0, []
    for s in green.states:
        t += s.timestamp
        timeline.append((t, float(s.state)))
    peak_at = next(t for t, v in timeline if v == 1.0)
    assert peak_at == pytest.approx(1.0, abs=0.1)
    rising = [v for t, v in timeline if t < peak_at]
    assert rising == sorted(rising)
    assert sum(1 for v in rising if 0 < v < 1) >= 15  # a fade, not a blink
    assert any(0 < v < 1 for t, v in timeline if t > peak_at)  # fading out again
    assert len(red.states) == 1

    # No PWM: 1 s on, 1 s off (then closed, which switched it off before the 2 s mark).
    assert_timeline(plain_green, [(0.0, 0), (0.0, 1), (1.0, 0)])
    assert len(plain_red.states) == 1


def test_failed_check_double_blinks_red(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory
) -> None:
    green, red = pins(pwm_factory)
    indicator.show("failed_check")
    time.sleep(1.3)
    # on .15, off .15, on .15, off .75, then the next double blink
    expected = [(0.0, 0), (0.0, 1), (0.15, 0), (0.15, 1), (0.15, 0), (0.75, 1)]
    assert_timeline(red, expected)
    assert len(green.states) == 1


def test_switching_to_off_stops_the_blink(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory
) -> None:
    indicator.show("take_this")
    time.sleep(0.2)
    indicator.show("off")
    green, red = pins(pwm_factory)
    time.sleep(0.3)
    assert len(green.states) == 1  # no toggles after
    assert green.state == 0
    assert red.state == 0


def test_switching_patterns_cancels_the_previous_one(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory
) -> None:
    indicator.show("failed_check")
    time.sleep(0.2)
    indicator.show("ready")
    green, red = pins(pwm_factory)
    time.sleep(0.3)
    assert len(red.states) == 1 and red.state == 0
    assert len(green.states) == 1 and green.state == 1


def test_showing_the_same_pattern_does_not_restart_it(
    indicator: GpioSlotIndicator, pwm_factory: MockFactory
) -> None:
    indicator.show("take_this")
    time.sleep(0.05)
    green, _ = pins(pwm_factory)
    indicator.show("take_this")
    time.sleep(0.3)
    # Still the first blink's timeline: off at 0.15 after it started, on again at 0.30.
    assert_timeline(green, [(0.0, 1), (0.10, 0), (0.15, 1)])


def test_close_switches_off_and_releases_the_pins(pwm_factory: MockFactory) -> None:
    ind = GpioSlotIndicator(GREEN, RED, pwm_factory)
    ind.show("take_this")
    ind.close()
    ind.close()
    with pytest.raises(RuntimeError):
        ind.show("ready")
    with GpioSlotIndicator(GREEN, RED, pwm_factory) as again:  # pins free again
        again.show("ready")


def test_bank_builds_one_indicator_per_slot(pwm_factory: MockFactory) -> None:
    pin_map = {"1": (5, 6), "2": (13, 19), "3": (20, 21)}
    with SlotIndicatorBank(pin_map, pwm_factory) as bank:
        assert list(bank) == ["1", "2", "3"] and len(bank) == 3
        bank.show("2", "fault")
        bank["3"].show("ready")
        assert pwm_factory.pin(19).state == 1 and pwm_factory.pin(13).state == 0
        assert pwm_factory.pin(20).state == 1
        assert pwm_factory.pin(5).state == 0 and pwm_factory.pin(6).state == 0
        bank.all_off()
        assert all(pwm_factory.pin(p).state == 0 for pair in pin_map.values() for p in pair)
        with pytest.raises(KeyError):
            bank.show("9", "ready")


def test_bank_closes_what_it_built_when_a_pin_is_taken(pwm_factory: MockFactory) -> None:
    with pytest.raises(Exception, match="in use"):
        SlotIndicatorBank({"1": (5, 6), "2": (6, 7)}, pwm_factory)
    with SlotIndicatorBank({"1": (5, 6)}, pwm_factory):  # slot 1's pins were released
        pass


# -- buzzer --------------------------------------------------------------------------


def test_refuse_is_exactly_three_beeps(plain_factory: MockFactory) -> None:
    with GpioBuzzer(BUZZER, plain_factory) as buzzer:
        pin = plain_factory.pin(BUZZER)
        pin.clear_states()
        buzzer.refuse()
        time.sleep(0.75)
        expected = [(0.0, 0), (0.0, 1)] + [(0.1, 0), (0.1, 1)] * 2 + [(0.1, 0)]
        assert_timeline(pin, expected)
        assert len(pin.states) == len(expected)  # then stays off
        assert rising_edges(pin) == 3
        assert pin.state == 0


def test_acknowledge_is_one_beep(plain_factory: MockFactory) -> None:
    with GpioBuzzer(BUZZER, plain_factory) as buzzer:
        pin = plain_factory.pin(BUZZER)
        pin.clear_states()
        buzzer.acknowledge()
        time.sleep(0.3)
        assert_timeline(pin, [(0.0, 0), (0.0, 1), (0.1, 0)])
        assert len(pin.states) == 3


# -- screens -------------------------------------------------------------------------


def test_fit_lines_cuts_and_pads() -> None:
    assert fit_lines(["abcdef", "x"], 4, 3) == ["abcd", "x   ", "    "]
    assert fit_lines(["a", "b", "c"], 2, 2) == ["a ", "b "]
    assert fit_lines(["a\tb"], 3, 1) == ["a?b"]


def test_console_screen_draws_a_frame() -> None:
    out = io.StringIO()
    screen = ConsoleScreen(stream=out, width=8, height=3)
    screen.show(["READY", "slot 2 is free", "充电中", "dropped"])
    frame = "+--------+\n|READY   |\n|slot 2 i|\n|充电中     |\n+--------+\n"
    assert out.getvalue() == frame
    assert screen.lines == ["READY   ", "slot 2 i", "充电中     "]
    screen.show(["READY", "slot 2 is free", "充电中"])  # same text: nothing drawn
    assert out.getvalue().count("+--------+") == 2


RS, E, D4, D5, D6, D7 = 7, 8, 25, 24, 23, 18


class BusPin(MockPin):
    """A mock pin that also logs each change, in order, on its factory's ``bus_log``."""

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        log = getattr(self.factory, "bus_log", None)
        if changed and log is not None:
            log.append((self, value))
        return changed


@pytest.fixture
def lcd_factory() -> Iterator[MockFactory]:
    factory = MockFactory(pin_class=BusPin)
    factory.bus_log = []
    yield factory
    factory.reset()


def start_capture(factory: MockFactory) -> None:
    """Forget the bus traffic so far; :func:`nibbles` decodes what follows."""
    factory.bus_log.clear()
    for pin in (RS, E, D4, D5, D6, D7):
        factory.pin(pin).clear_states()


def nibbles(factory: MockFactory) -> list[tuple[int, int]]:
    """(RS, D7..D4) latched at each falling edge of E, decoded from the pin changes.

    Each pin starts at its level when the capture started (its first PinState).
    """
    e = factory.pin(E)
    levels = {p: bool(factory.pin(p).states[0].state) for p in (RS, D4, D5, D6, D7)}
    by_pin = {factory.pin(p): p for p in levels}
    latched = []
    for pin, value in factory.bus_log:
        if pin is e:
            if not value:
                nib = sum(int(levels[p]) << bit for bit, p in enumerate((D4, D5, D6, D7)))
                latched.append((int(levels[RS]), nib))
        else:
            levels[by_pin[pin]] = value
    assert len(latched) == sum(1 for s in e.states if not s.state) - 1  # E's own timeline
    return latched


def bytes_written(latched: list[tuple[int, int]]) -> list[tuple[str, int]]:
    assert len(latched) % 2 == 0
    out = []
    for (rs_hi, hi), (rs_lo, lo) in zip(latched[::2], latched[1::2], strict=True):
        assert rs_hi == rs_lo
        out.append(("data" if rs_hi else "cmd", hi << 4 | lo))
    return out


def ddram(writes: list[tuple[str, int]]) -> dict[int, int]:
    """What the controller's display RAM holds after ``writes`` (set-address and data)."""
    memory: dict[int, int] = {}
    address = 0
    for kind, value in writes:
        if kind == "cmd" and value & 0x80:
            address = value & 0x7F
        elif kind == "cmd" and value == 0x01:
            memory.clear()
            address = 0
        elif kind == "data":
            memory[address] = value
            address += 1
    return memory


def text_at(memory: dict[int, int], address: int, length: int) -> bytes:
    return bytes(memory.get(address + i, 0x20) for i in range(length))


def test_hd44780_initialises_in_4_bit_mode(lcd_factory: MockFactory) -> None:
    with Hd44780Screen(RS, E, D4, D5, D6, D7, lcd_factory):
        latched = nibbles(lcd_factory)
    assert latched[:4] == [(0, 3), (0, 3), (0, 3), (0, 2)]
    assert bytes_written(latched[4:]) == [
        ("cmd", 0x28),  # function set: 4-bit, 2 lines, 5x8
        ("cmd", 0x08),  # display off
        ("cmd", 0x01),  # clear
        ("cmd", 0x06),  # entry mode: increment
        ("cmd", 0x0C),  # display on
    ]


def test_hd44780_writes_rows_at_their_ddram_addresses(lcd_factory: MockFactory) -> None:
    with Hd44780Screen(RS, E, D4, D5, D6, D7, lcd_factory) as lcd:
        start_capture(lcd_factory)
        lcd.show(["READY", "slot 2"])
        writes = bytes_written(nibbles(lcd_factory))
        assert writes[0] == ("cmd", 0x80 | 0x00)
        assert writes[1:21] == [("data", c) for c in b"READY".ljust(20)]
        assert writes[21] == ("cmd", 0x80 | 0x40)
        assert writes[22:42] == [("data", c) for c in b"slot 2".ljust(20)]
        assert len(writes) == 42  # rows 3 and 4 were blank already
        memory = ddram(writes)
        assert text_at(memory, 0x00, 5) == b"READY"
        assert text_at(memory, 0x40, 6) == b"slot 2"
        assert lcd.lines[:2] == ["READY".ljust(20), "slot 2".ljust(20)]

        # Rows 3 and 4 live at 0x14 and 0x54; only changed rows are rewritten.
        start_capture(lcd_factory)
        lcd.show(["READY", "slot 2", "3 docked", "充电中 µ 25°"])
        writes = bytes_written(nibbles(lcd_factory))
        assert [w for w in writes if w[0] == "cmd"] == [("cmd", 0x94), ("cmd", 0xD4)]
        memory = ddram(writes)
        assert text_at(memory, 0x14, 8) == b"3 docked"
        assert text_at(memory, 0x54, 9) == b"??? \xe4 25\xdf"


def test_hd44780_encoding_and_geometry(lcd_factory: MockFactory) -> None:
    assert encode_hd44780("Ok ~\\中") == b"Ok ???"
    with Hd44780Screen(RS, E, D4, D5, D6, D7, lcd_factory, cols=16, rows=2) as lcd:
        assert lcd.row_addresses == (0x00, 0x40)
    with Hd44780Screen(RS, E, D4, D5, D6, D7, lcd_factory, cols=16, rows=4) as lcd:
        assert lcd.row_addresses == (0x00, 0x40, 0x10, 0x50)
    with pytest.raises(ValueError):
        Hd44780Screen(RS, E, D4, D5, D6, D7, lcd_factory, cols=40, rows=4)
    with pytest.raises(ValueError):
        Hd44780Screen(RS, E, D4, D5, D6, D7, None)
