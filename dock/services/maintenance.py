"""Maintenance's tests of a slot: "self-test now" and the LED, buzzer and screen test.

The daemon does the work (it alone holds the recorders and the GPIO pins); this writes
the ``slot_test`` entry with the person who asked, so a test run from the web site is
on the record like every other action. The subject is the docked recorder's serial
(so it shows in that device's history), else ``slot N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from dock.domain.audit_kinds import AuditKind
from dock.services.context import DockContext
from dock.services.errors import RequestError


class MaintainedDock(DockContext, Protocol):
    """A dock that can run these tests: ``dock.daemon``'s DockService."""

    def self_test(self, slot_id: str) -> dict[str, Any] | None: ...

    def indicator_test(self, slot_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class SelfTest:
    slot: str
    serial: str | None
    #: The recorder's own self-test (None: nothing docked, or it cannot run one).
    self_test_passed: bool | None
    ready: bool
    #: The checks that failed: code and message in the dock's language.
    failed: list[dict[str, str]] = field(default_factory=list)
    #: Why the slot could not be read (a link failure), else None.
    error: str | None = None


@dataclass(frozen=True)
class IndicatorTest:
    slot: str
    led: bool
    patterns: list[str]
    buzzer: bool
    screen: bool


def _slot(dock: DockContext, slot: str) -> None:
    if slot not in dock.views:
        raise RequestError(f"no slot {slot!r}")


def self_test(dock: MaintainedDock, actor: str, slot: str) -> SelfTest:
    """Inspect ``slot`` in full now (the recorder's self-test and every check)."""
    _slot(dock, slot)
    found = dock.self_test(slot)
    if found is None:
        raise RequestError(f"slot {slot} is being inspected or offloaded: try again shortly")
    result = SelfTest(
        slot=slot,
        serial=found.get("serial"),
        self_test_passed=found.get("self_test_passed"),
        ready=bool(found.get("ready")),
        failed=list(found.get("failed") or []),
        error=found.get("error"),
    )
    dock.audit.append(
        AuditKind.SLOT_TEST,
        actor,
        result.serial or f"slot {slot}",
        {
            "test": "self_test",
            "slot": slot,
            "self_test_passed": result.self_test_passed,
            "ready": result.ready,
            "failed": [f["code"] for f in result.failed],
            "error": result.error,
        },
    )
    return result


def indicator_test(dock: MaintainedDock, actor: str, slot: str) -> IndicatorTest:
    """Show each LED pattern of ``slot`` in turn, beep, and put a test line on the screen."""
    _slot(dock, slot)
    started = dock.indicator_test(slot)
    if started is None:
        raise RequestError(f"a test of slot {slot} is running already")
    result = IndicatorTest(
        slot=slot,
        led=bool(started.get("led")),
        patterns=list(started.get("patterns") or []),
        buzzer=bool(started.get("buzzer")),
        screen=bool(started.get("screen")),
    )
    serial = dock.views[slot].serial if hasattr(dock.views[slot], "serial") else None
    dock.audit.append(
        AuditKind.SLOT_TEST,
        actor,
        serial or f"slot {slot}",
        {"test": "indicators", "slot": slot, "led": result.led, "buzzer": result.buzzer,
         "screen": result.screen},
    )  # fmt: skip
    return result
