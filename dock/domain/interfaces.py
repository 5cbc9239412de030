"""The small interfaces the dock needs from the outside world.

``hardware`` (and tests) provide objects that fit them; the dock never imports
``hardware`` except in its composition root.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from enum import StrEnum
from queue import Queue
from typing import Any, Protocol


class TransportClosed(ConnectionError):
    """The link is gone (cable pulled, peer closed, device unplugged)."""


class Transport(Protocol):
    """A byte pipe to one recorder."""

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes``; b"" if nothing arrived within ``timeout`` seconds.

        Raises TransportClosed when the link is gone.
        """
        ...

    def write(self, data: bytes) -> None:
        """Write all of ``data``; raises TransportClosed when the link is gone."""
        ...

    def close(self) -> None: ...


class LedPattern(StrEnum):
    """What a slot's LED says; distinct blink patterns, see hardware/indicators.py."""

    OFF = "off"
    READY = "ready"  # steady green: passes its checks
    TAKE_THIS = "take_this"  # fast blink: the slot an officer was just given
    BUSY = "busy"  # slow pulse: charging or offloading
    FAILED_CHECK = "failed_check"  # double blink: refused at check-out
    FAULT = "fault"  # steady red / rapid flash: device or slot fault


class SlotIndicator(Protocol):
    """The LED(s) of one slot."""

    def show(self, pattern: LedPattern) -> None: ...


class Buzzer(Protocol):
    def refuse(self) -> None:
        """The refusal sound: short, unmistakable, bounded in time."""
        ...

    def acknowledge(self) -> None: ...


class Screen(Protocol):
    """The dock's status screen: a few lines of text (LCD, OLED, or a console)."""

    def show(self, lines: list[str]) -> None: ...


class ClockSource(Protocol):
    """Whether this dock's own clock may be trusted to set recorders' clocks."""

    def synchronised(self) -> tuple[bool, str]:
        """(trusted, reason); reason says why not, or which source vouches for it."""
        ...

    def now(self) -> float:
        """UTC seconds since the epoch."""
        ...


class VendorControl(Protocol):
    """A body camera taking the common vendor command set (docs/VENDOR-CAMERAS.md).

    Failures raise OSError, one line, never containing the password: PermissionError
    when the camera says no (a wrong password), TimeoutError when it does not answer,
    ConnectionError when it is gone, another OSError for an answer refused; ValueError
    for an argument refused before anything was sent.
    """

    #: The USB serial string when it is a plain id (how the dock finds its enrolment).
    usb_serial: str | None

    def login(self, password: str) -> None: ...

    def device_id(self) -> str: ...

    def clock_offset(self, now: Callable[[], float]) -> float | None:
        """The camera's clock minus ``now()``, in seconds; None: it does not report it."""
        ...

    def set_clock(self, utc: float) -> None: ...

    def battery(self) -> int | None:
        """Percent; None where the model does not report it."""
        ...

    def disk_mode(self) -> None:
        """Switch to disk mode: it comes back as a USB mass-storage device."""
        ...

    def close(self) -> None: ...


class BrokerLink(Protocol):
    """A connection to the MQTT broker, reconnecting by itself.

    Everything it learns arrives in ``inbox`` as tuples, read by one thread:
    ``("connected",)``, ``("disconnected", reason)``, ``("ack", handle, ok, reason)`` for a
    QoS 1 publish (``handle`` as ``publish`` returned it, unique across reconnections;
    ``ok`` False when the broker refused it, e.g. not authorised), and
    ``("message", topic, payload)``.
    """

    inbox: Queue[tuple[Any, ...]]

    def start(self, will_topic: str, will_payload: Callable[[], bytes]) -> None:
        """Connect in the background; the broker publishes the will (retained) if we die.
        ``will_payload`` is asked again for each connection (it carries its time)."""

    def stop(self) -> None:
        """Disconnect cleanly (no will) and stop reconnecting."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Hashable | None:
        """QoS 1; the handle its ack will carry, or None when it was not sent."""

    def subscribe(self, topic: str) -> None: ...
