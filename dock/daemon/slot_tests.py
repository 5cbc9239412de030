"""Maintenance's tests of one slot, run by the daemon (the one owner of recorders and
of the LEDs, buzzer and screen): "self-test now" (a full inspection of the slot at
once: identify, authenticate, set the clock, the recorder's own self-test, the checks)
and the LED, buzzer and screen test.

The services (:mod:`dock.services.maintenance`) audit each with the person who asked;
these only do the work and say what happened, as plain data.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from dock.daemon.inspection import Inspection
from dock.daemon.parts import DockParts
from dock.daemon.slot_machine import SlotMachine
from dock.domain import slot_state as sm
from dock.domain.interfaces import LedPattern

log = logging.getLogger("dock.daemon.slot_tests")

#: The LED patterns the test shows, in order (then the slot's own again).
TEST_PATTERNS: tuple[LedPattern, ...] = (
    LedPattern.READY,
    LedPattern.TAKE_THIS,
    LedPattern.BUSY,
    LedPattern.FAILED_CHECK,
    LedPattern.FAULT,
)
#: Seconds each pattern is shown: long enough for a person to tell them apart.
STEP_S = 1.0

#: The screen's test line, in the screen's language.
_TEST_LINE = {"zh": "测试：{slot} 号槽位", "en": "Test: slot {slot}"}


def self_test(inspection: Inspection, slot_id: str) -> dict[str, Any] | None:
    """A full inspection of ``slot_id`` now; what it found, or None when the slot is
    being inspected or offloaded already (ask again in a moment)."""
    view = inspection.inspect_now(slot_id)
    if view is None:
        return None
    snap = view.snapshot
    return {
        "slot": slot_id,
        "serial": view.serial,
        "ready": view.ready,
        "self_test_passed": None if snap is None else snap.self_test_passed,
        "failed": [{"code": r.code, "message": r.message} for r in view.failures],
        "error": view.error,
    }


class IndicatorTests:
    """The LED, buzzer and screen test, one at a time per slot, each in its own thread
    so the request returns at once and no check-out waits for the blinking."""

    def __init__(self, parts: DockParts, machine: SlotMachine) -> None:
        self.parts = parts
        self.machine = machine
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, slot_id: str) -> dict[str, Any] | None:
        """Start the test on ``slot_id``; what it will show, or None when one runs there."""
        feedback = self.parts.feedback
        with self._lock:
            if slot_id in self._running:
                return None
            worker = threading.Thread(
                target=self._run, args=(slot_id,), name=f"indicator-test-{slot_id}", daemon=True
            )
            self._running[slot_id] = worker
        worker.start()
        return {
            "slot": slot_id,
            "led": slot_id in feedback.indicators,
            "patterns": [p.value for p in TEST_PATTERNS],
            "buzzer": feedback.buzzer is not None,
            "screen": feedback.screen is not None or feedback.display is not None,
        }

    def running(self, slot_id: str) -> bool:
        with self._lock:
            return slot_id in self._running

    def _run(self, slot_id: str) -> None:
        parts = self.parts
        try:
            locale = parts.screen_locale
            line = _TEST_LINE["zh" if locale.lower().startswith("zh") else "en"]
            parts.show([line.format(slot=slot_id), parts.dock_id])
            buzzer = parts.feedback.buzzer
            if buzzer is not None:
                buzzer.acknowledge()
            indicator = parts.feedback.indicators.get(slot_id)
            if indicator is not None:
                for pattern in TEST_PATTERNS:
                    indicator.show(pattern)
                    time.sleep(STEP_S)
                # What the slot showed before the test: its state's pattern.
                indicator.show(sm.LED_FOR[self.machine.state(slot_id)])
        except Exception:  # a driver failing must not take the daemon down
            log.exception("slot %s: indicator test failed", slot_id)
        finally:
            with self._lock:
                self._running.pop(slot_id, None)
