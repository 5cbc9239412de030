"""What the officer sees and hears at the dock: slot LEDs, the buzzer, the screen,
through gpiozero's MockFactory passed in explicitly."""

from __future__ import annotations

import dataclasses
import io
import itertools
import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from dock.config import emulated_config
from dock.daemon.composition import build_service
from dock.domain.interfaces import LedPattern
from hardware.screens import ConsoleScreen

from .conftest import wait_until

PIN = "246810"


@pytest.fixture
def dock_with_leds(tmp_path, start_recorder):
    factory = MockFactory(pin_class=MockPWMPin)
    good = start_recorder(listen="tcp://127.0.0.1:0", recordings=0, battery_percent=95.0)
    flat = start_recorder(listen="tcp://127.0.0.1:0", recordings=0, battery_percent=30.0)
    cfg = emulated_config(2, str(tmp_path / "state"))
    pins = {"1": (5, 6), "2": (13, 19)}
    slots = tuple(
        dataclasses.replace(s, port=r.url, led_green=pins[s.id][0], led_red=pins[s.id][1])
        for s, r in zip(cfg.slots, (good, flat), strict=True)
    )
    cfg = dataclasses.replace(cfg, slots=slots)
    cfg = dataclasses.replace(cfg, gpio=dataclasses.replace(cfg.gpio, buzzer=26))
    screen_out = io.StringIO()
    svc = build_service(cfg, pin_factory=factory, screen=ConsoleScreen(screen_out))
    for slot in svc.views:
        svc.enrol(slot, "admin")
    svc.store.add_officer("1001", "Wang Wei", "Traffic 3", PIN)
    svc.store.add_officer("1002", "Li Na", "Traffic 3", PIN)
    yield svc, factory, screen_out
    for ind in svc.indicators.values():
        ind.close()
    svc.buzzer.close()


def toggles(pin, since: float) -> int:
    return sum(1 for s in pin.states if s.timestamp >= since) - 1


def test_sweep_lights_ready_and_failed_slots(dock_with_leds) -> None:
    """003 art.5; 004 att.3 art.10: a failing check is shown at the slot: its LED shows a failed
    check, a ready slot's shows ready."""
    svc, factory, _ = dock_with_leds
    svc.sweep()
    assert svc.indicators["1"].pattern == LedPattern.READY.value
    assert svc.indicators["2"].pattern == LedPattern.FAILED_CHECK.value
    assert factory.pin(5).state > 0 and factory.pin(6).state == 0  # green steady on slot 1


def test_granted_slot_blinks_take_this_and_the_screen_says_which(dock_with_leds) -> None:
    """003 art.21(2): the slot granted to the named officer blinks, and the screen says which
    slot."""
    svc, factory, screen = dock_with_leds
    d = svc.checkout("1001", PIN)
    assert d.granted and d.slot == "1"
    assert svc.indicators["1"].pattern == LedPattern.TAKE_THIS.value
    start = factory.pin(5).states[-1].timestamp
    time.sleep(0.7)
    assert toggles(factory.pin(5), start) >= 3  # fast blink on the slot to take
    assert "请取 1 号槽位" in screen.getvalue()  # "take slot 1"


def test_refusal_sounds_the_buzzer_and_shows_the_reason(dock_with_leds) -> None:
    """003 art.5; 004 att.3 art.10; 000 §14.1: a refused check-out sounds the buzzer and the
    screen shows the failing check's reason."""
    svc, factory, screen = dock_with_leds
    assert svc.checkout("1001", PIN).granted
    buzz = factory.pin(26)
    assert wait_until(lambda: len(buzz.states) > 1 and not buzz.state)  # the grant's beep
    before = len(buzz.states) - 1
    refused = svc.checkout("1002", PIN)  # only the flat recorder is left
    assert not refused.granted

    def rises() -> int:
        s = buzz.states[before:]
        return sum(1 for a, b in itertools.pairwise(s) if not a.state and b.state)

    assert wait_until(lambda: rises() >= 3 and not buzz.state)
    time.sleep(0.3)  # and then silence: no fourth beep
    assert rises() == 3  # three short beeps
    assert "无可用设备" in screen.getvalue()  # "no recorder ready"
