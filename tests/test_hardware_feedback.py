"""The LEDs, buzzer, LCD and badge reader as ``dock run`` really drives them.

The pin factory is chosen the way production chooses it: gpiozero's own selection,
here steered to its mock factory by ``GPIOZERO_PIN_FACTORY=mock``. The LCD's text is
read back from the pins themselves (the bytes latched at each falling edge of E).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import io
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from dock.cli.main import main
from dock.config import emulated_config, load_config
from dock.daemon import display as display_module
from dock.daemon.composition import build_feedback, build_service
from dock.daemon.control_server import control_socket_path
from dock.daemon.display import Display
from dock.services.daemon_link import DaemonLink
from hardware import badge_reader, gpio
from hardware.badge_reader import EvdevBadgeReader, KeyDecoder, key_text
from hardware.screens import ConsoleScreen

from .conftest import wait_until

PIN = "246810"
GREEN1, RED1, GREEN2, RED2, BUZZER = 5, 6, 13, 19, 26
LCD = {"rs": 25, "e": 24, "d4": 23, "d5": 17, "d6": 27, "d7": 22}


def write_config(tmp_path: Any, urls: list[str], locale: str = "zh") -> str:
    """A dock.toml with two slots' LEDs, a buzzer and a 20x4 HD44780."""
    leds = [(GREEN1, RED1), (GREEN2, RED2)]
    text = (
        f'[dock]\nid = "d1"\nsite = "s"\nunit = "u"\nstate_dir = "{tmp_path / "state"}"\n'
        f'evidence_dir = "{tmp_path / "evidence"}"\nlocale = "{locale}"\n\n'
        '[clock]\nsource = "trusted"\n\n'
    )
    for i, (url, (green, red)) in enumerate(zip(urls, leds, strict=False), start=1):
        text += f'[[slot]]\nid = "{i}"\nport = "{url}"\nled_green = {green}\nled_red = {red}\n\n'
    text += f'[gpio]\nbuzzer = {BUZZER}\nscreen = "hd44780"\n\n[gpio.hd44780]\n'
    text += "".join(f"{k} = {v}\n" for k, v in LCD.items())
    path = tmp_path / "dock.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def absolute(pin: Any) -> list[tuple[float, bool]]:
    """A mock pin's history as (monotonic time, state): it keeps each change's time
    since the one before, and the time of its last change."""
    out, t = [], pin._last_change
    for s in reversed(pin.states):
        out.append((t, bool(s.state)))
        t -= s.timestamp
    return out[::-1]


def lcd_text(factory: Any, cols: int = 20) -> list[str]:
    """What an HD44780 on ``factory``'s pins shows, decoded from the pins' histories."""
    history = {n: absolute(factory.pin(pin)) for n, pin in LCD.items()}

    def at(name: str, t: float) -> bool:
        value = False
        for when, state in history[name]:
            if when > t:
                break
            value = state
        return value

    nibbles = []
    e_states = history["e"]
    for before, after in itertools.pairwise(e_states):
        if before[1] and not after[1]:  # falling edge: D4..D7 latched
            t = after[0]
            bits = sum(at(f"d{4 + i}", t) << i for i in range(4))
            nibbles.append((at("rs", t), bits))
    nibbles = nibbles[4:]  # the initialisation's single nibbles (3, 3, 3, 2)
    ddram = {a: " " for a in range(0x80)}
    address = 0
    for (rs, high), (_, low) in zip(nibbles[::2], nibbles[1::2], strict=False):
        byte = high << 4 | low
        if rs:
            ddram[address] = chr(byte)
            address = (address + 1) & 0x7F
        elif byte & 0x80:
            address = byte & 0x7F
        elif byte == 0x01:
            ddram = {a: " " for a in range(0x80)}
    starts = (0x00, 0x40, cols, 0x40 + cols)
    return ["".join(ddram[s + i] for i in range(cols)).rstrip() for s in starts]


@pytest.fixture
def spy_factory(monkeypatch) -> list[Any]:
    """Production's factory selection, steered to gpiozero's mock factory; what it made."""
    monkeypatch.setenv(gpio.FACTORY_ENV, "mock")
    made: list[Any] = []
    real = gpio.open_pin_factory

    def spy() -> Any:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(gpio, "open_pin_factory", spy)
    return made


@pytest.fixture
def two_recorders(start_recorder) -> list[Any]:
    good = start_recorder(listen="tcp://127.0.0.1:0", recordings=0, battery_percent=95.0)
    flat = start_recorder(listen="tcp://127.0.0.1:0", recordings=0, battery_percent=30.0)
    return [good, flat]


def prepare(path: str) -> None:
    """Enrol the recorders and add an officer, as an administrator would beforehand."""
    svc = build_service(load_config(path), screen=ConsoleScreen(io.StringIO()))
    for slot in svc.views:
        svc.enrol(slot, "admin")
    svc.store.add_officer("1001", "王伟 Wang Wei", "Traffic 3", PIN)


@contextlib.contextmanager
def sigterm_restored() -> Iterator[None]:
    old = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def test_dock_run_drives_leds_buzzer_and_lcd_through_gpiozeros_own_factory(
    tmp_path, two_recorders, spy_factory, monkeypatch, capsys
) -> None:
    path = write_config(tmp_path, [r.url for r in two_recorders])
    prepare(path)
    monkeypatch.setattr(display_module, "DECISION_HOLD_S", 0.5)
    seen: dict[str, Any] = {}

    def officer_at_the_dock() -> None:
        try:
            assert wait_until(lambda: bool(spy_factory), timeout=20)
            factory = spy_factory[0]
            green, red, buzzer = factory.pin(GREEN1), factory.pin(RED2), factory.pin(BUZZER)
            assert wait_until(lambda: green.state and red.state, timeout=20)  # first sweep
            # the screen is drawn after the LEDs: wait for its first words, not for a time
            wait_until(lambda: lcd_text(factory)[0].strip() != "", timeout=20)
            seen["idle"] = lcd_text(factory)
            sock = control_socket_path(str(tmp_path / "state"))
            decision = DaemonLink(sock).request("checkout", {"officer": "1001", "pin": PIN})
            seen["decision"] = decision
            seen["granted"] = lcd_text(factory)  # drawn before the answer was sent
            start = len(green.states)
            seen["blinks"] = wait_until(lambda: len(green.states) - start >= 4, timeout=5)
            seen["beep"] = wait_until(
                lambda: any(s.state for s in buzzer.states) and not buzzer.state
            )
            seen["back_to_idle"] = wait_until(lambda: lcd_text(factory)[0] == seen["idle"][0])
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=officer_at_the_dock)
    with sigterm_restored():
        helper.start()
        code = main(["--config", path, "run", "--interval", "0.3", "--sweeps", "200"])
        helper.join(timeout=30)
    assert code == 0
    factory = spy_factory[0]
    assert type(factory).__name__ == "MockFactory"
    assert seen["idle"][0] == "Swipe badge/enter ID"  # English: an HD44780 has no Chinese
    assert seen["decision"]["granted"] and seen["decision"]["slot"] == "1"
    assert seen["blinks"], "slot 1's green LED blinks: take this one"
    assert seen["beep"], "the grant's beep"
    assert seen["granted"][:2] == ["Take slot 1", "1001 EMU0001"]  # the number, not 王伟
    assert seen["back_to_idle"], "the daemon's loop cleared the decision"
    assert lcd_text(factory)[0] == "Dock stopped"  # what the LCD keeps once stopped
    assert not factory.pin(GREEN1).state and not factory.pin(RED2).state  # LEDs off
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.skipif(
    bool(glob.glob("/dev/gpiochip*")), reason="this machine has GPIO: the fallback is not reached"
)
def test_gpio_configured_without_gpio_one_warning_and_the_console(tmp_path, two_recorders):
    path = write_config(tmp_path, [r.url for r in two_recorders])
    env = {k: v for k, v in os.environ.items() if k != gpio.FACTORY_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "dock.cli.main", "--config", path, "run", "--once"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "GPIO is configured" in line]
    assert len(warnings) == 1, done.stderr
    assert "the slot LEDs and the buzzer and the LCD stay off" in warnings[0]
    assert "Traceback" not in done.stderr and "PinFactoryFallback" not in done.stderr
    assert "screen: 请刷卡或输入警号" in done.stderr  # the console screen, in the dock's language


def test_a_pin_that_cannot_be_claimed_leaves_one_warning_and_the_console(tmp_path, caplog):
    class Denied(MockFactory):  # type: ignore[misc]
        def pin(self, spec: Any, **kwargs: Any) -> Any:
            if spec == BUZZER:
                raise PermissionError(errno.EACCES, "Permission denied", "/dev/gpiochip0")
            return super().pin(spec, **kwargs)

    cfg = load_config(write_config(tmp_path, ["/dev/ttyACM0", "/dev/ttyACM1"]))
    factory = Denied()
    with caplog.at_level(logging.INFO, logger="dock.daemon.composition"):
        feedback = build_feedback(cfg, factory, None)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "composition" in r.name]
    assert len(warned) == 1 and "Permission denied" in warned[0].getMessage()
    assert feedback.indicators == {} and feedback.buzzer is None
    assert isinstance(feedback.screen, ConsoleScreen) and feedback.pin_factory is None
    assert not factory.pin(GREEN1).state  # the LEDs built before the buzzer were released


def test_hd44780_with_chinese_is_a_config_warning(tmp_path) -> None:
    zh = load_config(write_config(tmp_path, ["/dev/ttyACM0"], locale="zh"))
    assert any(w.startswith("gpio.screen: an HD44780 cannot draw Chinese") for w in zh.warnings)
    en = load_config(write_config(tmp_path, ["/dev/ttyACM0"], locale="en"))
    assert not any(w.startswith("gpio.screen") for w in en.warnings)


# ---------------------------------------------------------------------- the screen's text
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_display_idle_decision_held_then_idle_again() -> None:
    screen, clock = ConsoleScreen(io.StringIO()), FakeClock()
    shown = Display(screen, lambda: "en", hold_s=5.0, clock=clock)
    assert shown.tick() == float("inf")  # nothing due
    assert screen.lines[0].rstrip() == "Swipe badge/enter ID"
    shown.decision(["Take slot 2", "1001 EMU0002"])
    assert screen.lines[0].rstrip() == "Take slot 2"
    clock.now += 4.9
    assert shown.tick() == pytest.approx(0.1)  # the loop is told when to come back
    assert screen.lines[0].rstrip() == "Take slot 2"
    clock.now += 0.1
    shown.tick()
    assert screen.lines[0].rstrip() == "Swipe badge/enter ID"


def test_display_offload_progress_and_done_per_slot() -> None:
    screen, clock = ConsoleScreen(io.StringIO()), FakeClock()
    shown = Display(screen, lambda: "en", clock=clock)
    shown.offload_started("1", expected=3)
    shown.offload_progress("1", "a.mp4", 50, 100)
    shown.offload_progress("2", "b.mp4", 1, 4)
    assert shown.tick() == display_module.PROGRESS_REFRESH_S  # redrawn while copying
    assert [line.rstrip() for line in screen.lines[:3]] == [
        "Swipe badge/enter ID", "Slot 1: 1/3 50%", "Slot 2: copy 25%",
    ]  # fmt: skip
    shown.offload_done("1", verified=3)
    shown.offload_failed("2")
    shown.tick()
    assert [line.rstrip() for line in screen.lines[1:3]] == [
        "Slot 2: not done",
        "Slot 1: done 3 OK",
    ]
    shown.slot_emptied("1")  # the officer took it away
    shown.tick()
    assert [line.rstrip() for line in screen.lines[1:3]] == ["Slot 2: not done", ""]
    clock.now += display_module.DONE_HOLD_S
    shown.tick()
    assert screen.lines[1].strip() == ""


def test_a_returned_recorder_shows_done_in_chinese_on_the_console(make_dock) -> None:
    svc, _ = make_dock({"recordings": 2})
    svc.sweep()  # docked with footage: offloaded, verified, erased
    lines = svc.parts.feedback.display.idle_lines()
    assert lines == ["请刷卡或输入警号", "1号 完成 2个已核验"]


def test_a_broken_screen_never_stops_a_decision(make_dock, caplog) -> None:
    svc, _ = make_dock({"recordings": 0})

    class Broken:
        def show(self, lines: list[str]) -> None:
            raise OSError(errno.EIO, "I/O error")

    svc.parts.feedback.display.screen = Broken()
    with caplog.at_level(logging.WARNING):
        assert svc.checkout("1001", PIN).granted
        svc.checkout("1002", PIN)
    assert len([r for r in caplog.records if "cannot be drawn" in r.getMessage()]) == 1


def test_emulated_config_uses_no_gpio() -> None:
    from dock.daemon.composition import uses_gpio

    assert not uses_gpio(emulated_config(2, "/tmp/x"))


# ---------------------------------------------------------------------- the badge reader
def keys(decoder: KeyDecoder, text: str, t0: float = 0.0) -> list[str | None]:
    """Type ``text`` (``\\n`` is Enter) as a reader does: press and release each key."""
    by_char = {key_text(c, False): c for c in range(1, 100) if key_text(c, False)}
    by_upper = {key_text(c, True): c for c in range(1, 100) if key_text(c, True)}
    out: list[str | None] = []
    t = t0
    for ch in text:
        t += 0.01
        if ch == "\n":
            out.append(decoder.feed(badge_reader.KEY_ENTER, 1, t))
            decoder.feed(badge_reader.KEY_ENTER, 0, t)
        elif ch in by_char:
            out.append(decoder.feed(by_char[ch], 1, t))
            decoder.feed(by_char[ch], 0, t)
        else:
            decoder.feed(badge_reader.KEY_LEFTSHIFT, 1, t)
            out.append(decoder.feed(by_upper[ch], 1, t))
            decoder.feed(by_upper[ch], 0, t)
            decoder.feed(badge_reader.KEY_LEFTSHIFT, 0, t)
    return [b for b in out if b is not None]


def test_key_decoder_gives_badges_at_enter() -> None:
    d = KeyDecoder()
    assert keys(d, "04a1b2c3\nBADGE-1001\n0000\n") == ["04a1b2c3", "BADGE-1001", "0000"]
    assert keys(d, "\n") == []  # an Enter alone is no badge


def test_key_decoder_drops_noise() -> None:
    d = KeyDecoder(max_len=8)
    assert keys(d, "123456789\n12\n") == ["12"]  # over-long: dropped, the next read fine
    d.feed(2, 1, 1.0)
    d.feed(2, 2, 1.3)  # auto-repeat: a stuck key
    assert d.feed(badge_reader.KEY_ENTER, 1, 1.4) is None
    d.feed(15, 1, 2.0)  # Tab: no badge has it
    assert d.feed(badge_reader.KEY_ENTER, 1, 2.1) is None
    assert keys(d, "12", t0=3.0) == []
    assert keys(d, "34\n", t0=5.0) == ["34"]  # "12" was cut short: a gap starts anew


def test_key_codes_are_the_kernels() -> None:
    ecodes = pytest.importorskip("evdev.ecodes", reason="python-evdev not installed")
    assert key_text(ecodes.KEY_0, False) == "0" and key_text(ecodes.KEY_9, False) == "9"
    assert key_text(ecodes.KEY_KP7, False) == "7" and key_text(ecodes.KEY_Q, True) == "Q"
    assert key_text(ecodes.KEY_M, False) == "m" and key_text(ecodes.KEY_L, False) == "l"
    assert (badge_reader.KEY_ENTER, badge_reader.KEY_KPENTER) == (
        ecodes.KEY_ENTER, ecodes.KEY_KPENTER,
    )  # fmt: skip
    assert badge_reader.EV_KEY == ecodes.EV_KEY


@dataclasses.dataclass
class Event:
    code: int
    value: int
    t: float
    type: int = badge_reader.EV_KEY

    def timestamp(self) -> float:
        return self.t


class FakeDevice:
    """An input device: a pipe to make select() see events, a list of them, a grab."""

    def __init__(self, events: list[Event]) -> None:
        self.r, self.w = os.pipe()
        self.events = events
        self.grabbed = self.closed = False
        self.unplugged = False
        os.write(self.w, b"x")

    def fileno(self) -> int:
        return self.r

    def grab(self) -> None:
        self.grabbed = True

    def read(self) -> list[Event]:
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        events, self.events = self.events, []
        return events

    def close(self) -> None:
        if not self.closed:
            os.close(self.r)
            os.close(self.w)
        self.closed = True


def typed(text: str) -> list[Event]:
    events = []
    for i, ch in enumerate(text):
        code = (
            badge_reader.KEY_ENTER
            if ch == "\n"
            else next(c for c in range(1, 100) if key_text(c, False) == ch)
        )
        events += [Event(code, 1, i * 0.01), Event(code, 0, i * 0.01)]
    return events


def test_evdev_reader_grabs_reads_and_reopens_an_unplugged_reader(caplog) -> None:
    clock = FakeClock()
    opened: list[FakeDevice] = []
    missing = [True]

    def open_device(path: str) -> FakeDevice:
        if missing[0]:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        opened.append(FakeDevice(typed("0451\n")))
        return opened[-1]

    reader = EvdevBadgeReader("/dev/input/by-id/x-event-kbd", 0.01, open_device, clock)
    with caplog.at_level(logging.INFO, logger="hardware.badge_reader"):
        assert reader.read() is None and reader.read() is None  # not plugged in
        missing[0] = False
        assert reader.read() is None  # still waiting out its back-off
        clock.now += badge_reader.REOPEN_FIRST_S
        assert reader.read() == "0451"
        assert opened[0].grabbed, "grabbed: its keys reach no console"
        opened[0].unplugged = True
        assert reader.read() is None  # ENODEV: closed, tried again later
        assert opened[0].closed and not reader.open
        clock.now += badge_reader.REOPEN_FIRST_S
        assert reader.read() == "0451"  # plugged in again
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "cannot be read" in m]) == 2  # once per outage
    assert "no such device: is it plugged in?" in said[0]
    assert "unplugged" in said[2] and said[1].endswith("is back")
    reader.close()


def test_evdev_reader_with_a_real_virtual_keyboard() -> None:
    if not os.access("/dev/uinput", os.R_OK | os.W_OK):
        pytest.skip("/dev/uinput is not usable here (no uinput module or no permission)")
    evdev = pytest.importorskip("evdev")
    ecodes = evdev.ecodes
    with evdev.UInput({ecodes.EV_KEY: list(range(1, 100))}, name="badge-test") as ui:
        assert wait_until(lambda: os.path.exists(ui.device.path))
        reader = EvdevBadgeReader(ui.device.path, 0.05)
        try:
            assert wait_until(lambda: reader.read() is None and reader.open)
            for code in (ecodes.KEY_1, ecodes.KEY_2, ecodes.KEY_ENTER):
                ui.write(ecodes.EV_KEY, code, 1)
                ui.write(ecodes.EV_KEY, code, 0)
            ui.syn()
            got: list[str] = []
            assert wait_until(lambda: got.append(reader.read() or "") or "12" in got)
        finally:
            reader.close()


def test_a_state_change_after_the_feedback_closed_drives_nothing(tmp_path, two_recorders):
    """At shutdown the LEDs close before the last offloads end: their slot changes are
    carried out all the same, with nothing to light."""
    cfg = load_config(write_config(tmp_path, [r.url for r in two_recorders]))
    factory = MockFactory()
    svc = build_service(cfg, pin_factory=factory)
    for slot in svc.views:
        svc.enrol(slot, "admin")
    svc.parts.feedback.close()
    svc.sweep()  # slot 1 ready, slot 2 failed: LED changes with no LED left
    assert svc.machine.state("1").value == "ready"
    assert not factory.pin(GREEN1).state and not factory.pin(RED2).state
