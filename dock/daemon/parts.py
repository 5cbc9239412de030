"""The dock's collaborators, built once by the composition root and shared.

Every part of the daemon (slot access, inspection, check-out, offloads, maintenance)
reads its collaborators from one ``DockParts``, so replacing one (a test's clock, the
locale, the offloader) is seen by all of them at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dock.daemon.display import Display
from dock.daemon.model import DECISION_MESSAGES, Reason
from dock.devices.ums.attach import UmsSlot
from dock.domain.checks import message_for
from dock.domain.interfaces import (
    Buzzer,
    ClockSource,
    LedPattern,
    Screen,
    SlotIndicator,
    Transport,
    VendorControl,
)
from dock.domain.policy import Policy
from dock.evidence.offload import Offloader
from dock.evidence.replication import ReplicationEngine
from dock.storage.audit import AuditLog
from dock.storage.store import Store

log = logging.getLogger("dock.daemon.parts")


@dataclass
class SlotWiring:
    """Where each slot's recorder is reached, and where the per-slot lock files live."""

    ports: dict[str, str]
    open_transport: Callable[[str], Transport]
    lock_dir: str
    #: slot id -> the vendor-command-set camera there, None when there is none
    #: (composition.open_vendor_control; docs/VENDOR-CAMERAS.md).
    open_vendor: Callable[[str], VendorControl | None] | None = None
    #: slot id -> its mass-storage camera (driver "ums" or "auto": dock/devices/ums/attach.py).
    ums: dict[str, UmsSlot] = field(default_factory=dict)


@dataclass
class Feedback:
    """What people at the dock see and hear: LEDs, buzzer, screen, in their language."""

    locale: str = "zh"
    indicators: dict[str, SlotIndicator] = field(default_factory=dict)
    screen: Screen | None = None
    buzzer: Buzzer | None = None
    #: The screen's own language when it cannot draw the dock's (an HD44780 and "zh").
    screen_locale: str | None = None
    #: Idle text, decisions held a while, offloads per slot (None: lines go straight on).
    display: Display | None = None
    #: The GPIO pin factory the LEDs, buzzer and LCD are driven through (None: no GPIO).
    pin_factory: object | None = None
    #: What to close at shutdown (LEDs off, pins released), in order.
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Switch off and release every GPIO device; each one even if another fails."""
        closers, self.closers = self.closers, []
        self.indicators, self.buzzer = {}, None  # a late state change finds nothing to drive
        for close in closers:
            with contextlib.suppress(Exception):  # shutting down: the next one still closes
                close()


@dataclass
class DockParts:
    """Everything the dock's service needs from outside, in one typed place."""

    dock_id: str
    store: Store
    audit: AuditLog
    policy: Policy
    clock: ClockSource
    slots: SlotWiring
    feedback: Feedback = field(default_factory=Feedback)
    #: None: no evidence store configured, so footage waits on the recorders.
    offloader: Offloader | None = None
    timezone: str = "Asia/Shanghai"
    min_pin_length: int = 6
    #: Seconds a grant waits for its recorder to be taken (``[dock] grant_expiry_s``).
    grant_expiry_s: float = 120.0
    #: Seconds a return may be signed for at the dock before it is recorded unsigned
    #: (dock.evidence.handovers, 001 art.19(3)).
    handover_window_s: float = 300.0
    #: Sealed packages to central storage (dock/evidence/replication.py); None: no
    #: ``[[replication.target]]`` configured.
    replication: ReplicationEngine | None = None

    @property
    def locale(self) -> str:
        return self.feedback.locale

    @locale.setter
    def locale(self, value: str) -> None:
        self.feedback.locale = value

    def msg(self, code: str, **detail: Any) -> str:
        """A reason's words in the dock's language (the dock's own, else a check's)."""
        own = DECISION_MESSAGES.get(code)
        if own is None:
            return message_for(code, self.feedback.locale, **detail)
        text = own["zh" if self.feedback.locale.lower().startswith("zh") else "en"]
        return text.format(**detail)

    @property
    def screen_locale(self) -> str:
        return self.feedback.screen_locale or self.feedback.locale

    def screen_msg(self, code: str, **detail: Any) -> str:
        """A message as ``msg`` words it, in the screen's language."""
        if self.screen_locale == self.feedback.locale:
            return self.msg(code, **detail)
        own = DECISION_MESSAGES.get(code)
        if own is not None:
            return own["zh" if self.screen_locale.startswith("zh") else "en"].format(**detail)
        return message_for(code, self.screen_locale, **detail)

    def reason(self, code: str, words: str | None = None, **detail: Any) -> Reason:
        """A refusal reason worded by ``words`` (default: ``code``) in the dock's language,
        with its screen text in the screen's language when that differs."""
        text = self.msg(words or code, **detail)
        on_screen = self.screen_msg(words or code, **detail)
        return Reason(code, text, screen=on_screen if on_screen != text else None)

    def led(self, slot_id: str, pattern: LedPattern) -> None:
        ind = self.feedback.indicators.get(slot_id)
        if ind is not None:
            try:
                ind.show(pattern)
            except Exception as exc:  # an LED never stops the slot's state machine
                log.warning("slot %s: LED pattern %s not shown: %s", slot_id, pattern, exc)
        display = self.feedback.display
        if display is not None and pattern == LedPattern.OFF:  # OFF: the slot is empty
            display.slot_emptied(slot_id)

    def show(self, lines: list[str]) -> None:
        """A decision or a notice: on the screen for a while, then back to idle."""
        if self.feedback.display is not None:
            self.feedback.display.decision(lines)
        elif self.feedback.screen is not None:
            self.feedback.screen.show(lines)
