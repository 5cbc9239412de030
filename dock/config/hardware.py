"""``[gpio]`` and ``[gpio.hd44780]``: the buzzer and the screen; the GPIO pin numbers
every section uses, and the rule that no two things share a pin."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.checker import INVALID, Bad, Checker, as_int, choice, int_range, kind, show

SCREENS = ("console", "hd44780")
#: BCM GPIO numbers on the Raspberry Pi's 40-pin header.
GPIO_PINS = range(0, 28)
HD44780_PINS = ("rs", "e", "d4", "d5", "d6", "d7")


@dataclass(frozen=True)
class Hd44780Pins:
    """``[gpio.hd44780]``: a character LCD wired in 4-bit mode."""

    rs: int
    e: int
    d4: int
    d5: int
    d6: int
    d7: int
    columns: int = 20
    rows: int = 4


@dataclass(frozen=True)
class GpioConfig:
    buzzer: int | None = None
    screen: str = "console"
    hd44780: Hd44780Pins | None = None


GPIO_KEYS = tuple(f.name for f in dataclasses.fields(GpioConfig))
HD44780_KEYS = tuple(f.name for f in dataclasses.fields(Hd44780Pins))


def pin(value: Any) -> int:
    """A BCM GPIO number that exists on the header."""
    number = as_int(value, "led_green = 17")
    if number not in GPIO_PINS:
        raise Bad(
            f"GPIO {number} does not exist",
            f"use a BCM GPIO number from {GPIO_PINS.start} to {GPIO_PINS.stop - 1}",
        )
    return number


def check_gpio(
    ck: Checker, table: Mapping[str, Any], pins: list[tuple[str, int]]
) -> dict[str, Any]:
    """``[gpio]``'s values; its pins go into ``pins`` to find clashes."""
    ck.unknown_keys("gpio", table, GPIO_KEYS)
    buzzer = ck.get(table, "gpio", "buzzer", pin, None)
    if buzzer is not None and buzzer is not INVALID:
        pins.append(("gpio.buzzer", buzzer))
    screen = ck.get(table, "gpio", "screen", choice(SCREENS, 'screen = "console"'), "console")
    lcd: Any = None
    raw = table.get("hd44780")
    if raw is not None and not isinstance(raw, dict):
        ck.problem("gpio.hd44780", f"expected a table, got {kind(raw)}", "write [gpio.hd44780]")
    elif screen == "hd44780" and raw is None:
        ck.problem(
            "gpio.hd44780",
            'missing (screen = "hd44780" needs its pins)',
            f"add a [gpio.hd44780] table with {', '.join(HD44780_PINS)}",
        )
    elif raw is not None and screen not in ("hd44780", INVALID):
        ck.problem(
            "gpio.hd44780",
            f"is given but screen = {show(screen)}",
            'set screen = "hd44780", or remove the [gpio.hd44780] table',
        )
    elif raw is not None:
        ck.unknown_keys("gpio.hd44780", raw, HD44780_KEYS)
        values: dict[str, Any] = {}
        for name in HD44780_PINS:
            values[name] = ck.get(
                raw,
                "gpio.hd44780",
                name,
                pin,
                missing_fix=f"give the BCM GPIO number wired to the LCD's {name.upper()} pin",
            )
            if values[name] is not INVALID:
                pins.append((f"gpio.hd44780.{name}", values[name]))
        values["columns"] = ck.get(raw, "gpio.hd44780", "columns", int_range(8, 40, "columns"), 20)
        values["rows"] = ck.get(raw, "gpio.hd44780", "rows", int_range(1, 4, "rows"), 4)
        lcd = values
    return {"buzzer": buzzer, "screen": screen, "hd44780": lcd}


def gpio_config(values: Mapping[str, Any]) -> GpioConfig:
    """The checked values of ``check_gpio`` as a GpioConfig."""
    lcd = values["hd44780"]
    return GpioConfig(
        buzzer=values["buzzer"],
        screen=values["screen"],
        hd44780=Hd44780Pins(**lcd) if lcd is not None else None,
    )


def check_screen_locale(ck: Checker, screen: Any, locale: Any) -> None:
    """An HD44780's character ROM has no Chinese: with locale = "zh" its text is English."""
    if screen == "hd44780" and isinstance(locale, str) and locale.startswith("zh"):
        ck.warn(
            "gpio.screen",
            'an HD44780 cannot draw Chinese: with locale = "zh" the LCD shows its text in '
            "English (the console, the CLI and the kiosk page stay in Chinese)",
        )


def check_pin_clashes(ck: Checker, pins: list[tuple[str, int]]) -> None:
    """Each LED, the buzzer and each screen pin on its own GPIO."""
    first: dict[int, str] = {}
    for key, number in pins:
        if number in first:
            ck.problem(
                key,
                f"GPIO {number} is already used by {first[number]}",
                "give each LED, the buzzer and each screen pin its own GPIO",
            )
        else:
            first[number] = key
