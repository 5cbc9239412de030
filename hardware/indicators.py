"""Slot LEDs and the dock's buzzer, through gpiozero.

Every device takes its gpiozero pin factory as an argument and never falls back
to gpiozero's global default: on the dock that is the real factory (lgpio), in
tests a ``gpiozero.pins.mock.MockFactory``.

``hardware`` does not import ``dock``: these classes satisfy
``dock.domain.interfaces.SlotIndicator`` and ``dock.domain.interfaces.Buzzer`` structurally.
``show`` takes a pattern name as a plain string; a ``dock.domain.interfaces.LedPattern``
is a ``StrEnum`` with exactly these values, so it can be passed as it is.

Each slot has a green and a red LED. The patterns:

================  =====  ======================================================
pattern           LED    what it does (times in seconds)
================  =====  ======================================================
``off``           both   off
``ready``         green  steady on: the recorder passed its checks
``take_this``     green  fast blink, 0.15 on / 0.15 off (about 3.3 Hz): the slot
                         an officer was just given
``busy``          green  slow pulse, 1 fading in / 1 fading out (2 s cycle);
                         where the green pin cannot do PWM, a slow blink,
                         1 on / 1 off: charging or offloading
``failed_check``  red    double blink, repeating every 1.2: on 0.15, off 0.15,
                         on 0.15, off 0.75: refused at check-out
``fault``         red    steady on: device or slot fault
================  =====  ======================================================

The blinking patterns run in gpiozero's background threads (``n=None``, or the
LED's ``source`` for the double blink), so ``show`` returns at once and the
caller needs no thread of its own. Showing a new pattern stops the previous one
first; showing the pattern already shown does nothing (a blink is not restarted
by a caller that refreshes its LEDs periodically).

The buzzer (an active buzzer on one pin):

=================  ============================================================
sound              what it does
=================  ============================================================
``refuse()``       three short beeps, 0.1 on / 0.1 off, n=3: bounded, about 0.6
``acknowledge()``  one short beep, 0.1
=================  ============================================================

Both sounds run in the background and a new sound cuts the previous one short.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from itertools import cycle
from types import TracebackType
from typing import Any, Self

from gpiozero import LED, PWMLED
from gpiozero import Buzzer as _GpioBuzzer
from gpiozero.exc import PinPWMUnsupported
from gpiozero.pins import Factory

PinSpec = int | str
"""A pin as gpiozero names it: a BCM number (17) or a name ("GPIO17", "BOARD11")."""

OFF = "off"
READY = "ready"
TAKE_THIS = "take_this"
BUSY = "busy"
FAILED_CHECK = "failed_check"
FAULT = "fault"

PATTERNS: tuple[str, ...] = (OFF, READY, TAKE_THIS, BUSY, FAILED_CHECK, FAULT)
"""The pattern names; the same strings as ``dock.domain.interfaces.LedPattern``'s values."""

TAKE_THIS_BLINK = 0.15
"""take_this: seconds on, then the same off."""

BUSY_FADE = 1.0
"""busy: seconds fading in, then the same fading out (PWM green)."""

BUSY_BLINK = 1.0
"""busy without PWM: seconds on, then the same off."""

DOUBLE_BLINK_STEP = 0.15
"""failed_check: the length of one step of :data:`DOUBLE_BLINK_SHAPE`."""

DOUBLE_BLINK_SHAPE: tuple[int, ...] = (1, 0, 1, 0, 0, 0, 0, 0)
"""failed_check: red on (1) or off (0) for each step; repeats (1.2 s cycle)."""

REFUSE_BEEP = 0.1
"""refuse: seconds on, then the same off, three times."""

REFUSE_COUNT = 3

ACK_BEEP = 0.1
"""acknowledge: seconds on, once."""


def pattern_name(pattern: object) -> str:
    """The pattern's name: a plain string or a str enum (``LedPattern``) by its value.

    Raises ValueError for anything that is not one of :data:`PATTERNS`.
    """
    value = getattr(pattern, "value", pattern)
    if not isinstance(value, str) or value not in PATTERNS:
        raise ValueError(f"unknown LED pattern {pattern!r}; expected one of {PATTERNS}")
    return value


def _require_factory(pin_factory: object) -> None:
    if pin_factory is None:
        raise ValueError("pass a gpiozero pin factory explicitly (the default is never used)")


class GpioSlotIndicator:
    """One slot's green and red LEDs; satisfies ``dock.domain.interfaces.SlotIndicator``.

    ``pwm``: True drives green as a ``PWMLED`` (busy pulses), False as a plain ``LED``
    (busy blinks slowly), None (the default) tries PWM and falls back to a plain LED
    when the pin factory cannot do PWM on that pin. ``active_high=False`` for LEDs
    wired between the pin and 3.3 V.
    """

    def __init__(
        self,
        green_pin: PinSpec,
        red_pin: PinSpec,
        pin_factory: Factory,
        *,
        active_high: bool = True,
        pwm: bool | None = None,
    ) -> None:
        _require_factory(pin_factory)
        self._lock = threading.RLock()
        self._pattern = OFF
        self._closed = False
        self._green = self._make_green(green_pin, pin_factory, active_high, pwm)
        try:
            self._red = LED(red_pin, active_high=active_high, pin_factory=pin_factory)
        except BaseException:
            self._green.close()
            raise

    @staticmethod
    def _make_green(
        pin: PinSpec, pin_factory: Factory, active_high: bool, pwm: bool | None
    ) -> LED | PWMLED:
        if pwm is False:
            return LED(pin, active_high=active_high, pin_factory=pin_factory)
        try:
            return PWMLED(pin, active_high=active_high, pin_factory=pin_factory)
        except PinPWMUnsupported:
            if pwm:
                raise
            return LED(pin, active_high=active_high, pin_factory=pin_factory)

    @property
    def pattern(self) -> str:
        """The name of the pattern shown now."""
        return self._pattern

    @property
    def pwm(self) -> bool:
        """Whether green is PWM-driven (busy pulses rather than blinks)."""
        return isinstance(self._green, PWMLED)

    def show(self, pattern: object) -> None:
        """Show ``pattern`` (a name from :data:`PATTERNS` or a ``LedPattern``)."""
        name = pattern_name(pattern)
        with self._lock:
            if self._closed:
                raise RuntimeError("the slot indicator is closed")
            if name == self._pattern:
                return
            self._stop()
            if name == READY:
                self._green.on()
            elif name == TAKE_THIS:
                self._green.blink(
                    on_time=TAKE_THIS_BLINK, off_time=TAKE_THIS_BLINK, n=None, background=True
                )
            elif name == BUSY:
                if isinstance(self._green, PWMLED):
                    self._green.pulse(
                        fade_in_time=BUSY_FADE, fade_out_time=BUSY_FADE, n=None, background=True
                    )
                else:
                    self._green.blink(
                        on_time=BUSY_BLINK, off_time=BUSY_BLINK, n=None, background=True
                    )
            elif name == FAILED_CHECK:
                self._red.source_delay = DOUBLE_BLINK_STEP
                self._red.source = cycle(DOUBLE_BLINK_SHAPE)
            elif name == FAULT:
                self._red.on()
            self._pattern = name

    def _stop(self) -> None:
        # Stop every background writer before switching off, so none can relight an LED.
        self._red.source = None
        self._green.off()
        self._red.off()

    def close(self) -> None:
        """Stop any pattern, switch both LEDs off and release the pins. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._stop()
            finally:
                self._green.close()
                self._red.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class GpioBuzzer:
    """An active buzzer on one pin; satisfies ``dock.domain.interfaces.Buzzer``."""

    def __init__(self, pin: PinSpec, pin_factory: Factory, *, active_high: bool = True) -> None:
        _require_factory(pin_factory)
        self._buzzer = _GpioBuzzer(pin, active_high=active_high, pin_factory=pin_factory)

    def refuse(self) -> None:
        """Three short beeps in the background (bounded: about 0.6 s)."""
        self._buzzer.beep(
            on_time=REFUSE_BEEP, off_time=REFUSE_BEEP, n=REFUSE_COUNT, background=True
        )

    def acknowledge(self) -> None:
        """One short beep in the background."""
        self._buzzer.beep(on_time=ACK_BEEP, off_time=0, n=1, background=True)

    def close(self) -> None:
        """Silence the buzzer and release the pin. Idempotent."""
        self._buzzer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SlotIndicatorBank(Mapping[str, GpioSlotIndicator]):
    """The indicators of several slots, built from ``{slot_id: (green_pin, red_pin)}``.

    A read-only mapping from slot id to :class:`GpioSlotIndicator`; extra keyword
    arguments (``active_high``, ``pwm``) go to every indicator. If one indicator
    cannot be built, those already built are closed before the error propagates.
    """

    def __init__(
        self,
        pins: Mapping[str, tuple[PinSpec, PinSpec]],
        pin_factory: Factory,
        **indicator_options: Any,
    ) -> None:
        _require_factory(pin_factory)
        self._indicators: dict[str, GpioSlotIndicator] = {}
        try:
            for slot_id, (green, red) in pins.items():
                self._indicators[slot_id] = GpioSlotIndicator(
                    green, red, pin_factory, **indicator_options
                )
        except BaseException:
            self.close()
            raise

    def __getitem__(self, slot_id: str) -> GpioSlotIndicator:
        return self._indicators[slot_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._indicators)

    def __len__(self) -> int:
        return len(self._indicators)

    def show(self, slot_id: str, pattern: object) -> None:
        """Show ``pattern`` on one slot; KeyError for an unknown slot."""
        self._indicators[slot_id].show(pattern)

    def all_off(self) -> None:
        for indicator in self._indicators.values():
            indicator.show(OFF)

    def close(self) -> None:
        """Close every indicator (each idempotent), even if one of them fails."""
        errors: list[BaseException] = []
        for indicator in self._indicators.values():
            try:
                indicator.close()
            except Exception as exc:  # keep closing the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
