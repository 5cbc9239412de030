"""The dock's collaborators, built once by the composition root and shared.

Every part of the daemon (slot access, inspection, check-out, offloads, maintenance)
reads its collaborators from one ``DockParts``, so replacing one (a test's clock, the
locale, the offloader) is seen by all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dock.daemon.model import DECISION_MESSAGES
from dock.domain.checks import message_for
from dock.domain.interfaces import (
    Buzzer,
    ClockSource,
    LedPattern,
    Screen,
    SlotIndicator,
    Transport,
)
from dock.domain.policy import Policy
from dock.evidence.offload import Offloader
from dock.storage.audit import AuditLog
from dock.storage.store import Store


@dataclass
class SlotWiring:
    """Where each slot's recorder is reached, and where the per-slot lock files live."""

    ports: dict[str, str]
    open_transport: Callable[[str], Transport]
    lock_dir: str


@dataclass
class Feedback:
    """What people at the dock see and hear: LEDs, buzzer, screen, in their language."""

    locale: str = "zh"
    indicators: dict[str, SlotIndicator] = field(default_factory=dict)
    screen: Screen | None = None
    buzzer: Buzzer | None = None


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

    def led(self, slot_id: str, pattern: LedPattern) -> None:
        ind = self.feedback.indicators.get(slot_id)
        if ind is not None:
            ind.show(pattern)

    def show(self, lines: list[str]) -> None:
        if self.feedback.screen is not None:
            self.feedback.screen.show(lines)
