"""The GPIO pin factory the dock drives its LEDs, buzzer and LCD through.

gpiozero picks a factory by itself: ``GPIOZERO_PIN_FACTORY`` when it is set (``lgpio``,
``rpigpio``, ``pigpio``, ``native``, ``mock``), else the first of lgpio (the one that
works on a Raspberry Pi 5), RPi.GPIO, pigpio and its native driver that loads. This
module asks gpiozero for that choice once, at start, and never lets gpiozero fall
back to a global default later: every device gets the factory passed in.

On a machine without GPIO (not a Pi, no ``/dev/gpiochip*``, no permission) gpiozero
raises after a warning per factory it tried; :func:`open_pin_factory` turns all of
that into one :class:`GpioUnavailable` whose message is one line for the log.
"""

from __future__ import annotations

import os
import warnings

from gpiozero import Device
from gpiozero.pins import Factory

#: gpiozero's own variable naming the factory to use (``mock`` in tests).
FACTORY_ENV = "GPIOZERO_PIN_FACTORY"


class GpioUnavailable(Exception):
    """No GPIO pin factory can be used here; the message says why, in one line."""


def open_pin_factory() -> Factory:
    """gpiozero's default pin factory, chosen as gpiozero chooses it.

    Raises GpioUnavailable (one line: what was tried and why each failed) when none
    loads; gpiozero's per-factory warnings are gathered into it, not printed.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            factory: Factory = Device._default_pin_factory()
        except Exception as exc:
            tried = [str(w.message) for w in caught if "Falling back" in str(w.message)]
            why = "; ".join([*tried, str(exc)]) if tried else str(exc)
            chosen = os.environ.get(FACTORY_ENV)
            where = f"{FACTORY_ENV}={chosen}: " if chosen else ""
            raise GpioUnavailable(f"{where}{why}".replace("\n", " ")) from None
    return factory


def factory_name(factory: object) -> str:
    """A short name for the log: ``LGPIOFactory`` -> ``lgpio``, ``MockFactory`` -> ``mock``."""
    name = type(factory).__name__
    return name.removesuffix("Factory").lower() or name
