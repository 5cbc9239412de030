"""The maintenance pages in Chromium (issue 12): a recorder's history as plots drawn from
the status rows the dock recorded, flag and repair audited with the person, the LED,
buzzer and screen test reaching the daemon's hardware, self-test now, and per-slot link
error counters counting failures injected on one slot's cable."""

from __future__ import annotations

from typing import Any

import pytest

from dock.daemon import slot_tests
from dock.domain.audit_kinds import AuditKind
from dock.domain.interfaces import LedPattern, TransportClosed
from dock.storage.maintenance_tables import MaintenanceReads, SlotErrorTable

from .conftest import wait_until
from .web_harness import PEOPLE, login, set_language

pytestmark = pytest.mark.usefixtures("browser")


def _plot_values(page: Any, key: str) -> list[float]:
    return [
        float(v)
        for v in page.eval_on_selector_all(
            f"svg[data-series={key}] circle.point", "els => els.map(e => e.dataset.value)"
        )
    ]


def _plot_heights(page: Any, key: str) -> list[float]:
    return [
        float(v)
        for v in page.eval_on_selector_all(
            f"svg[data-series={key}] circle.point", "els => els.map(e => e.getAttribute('cy'))"
        )
    ]


def test_device_page_plots_the_recorded_history(web_dock, page, screenshot) -> None:
    """004 att.3 art.16; 004 att.3 art.9: a recorder's page plots its recorded battery and clock
    drift history."""
    svc = web_dock.svc
    model = web_dock.recorders[0].model
    serial = model.serial
    for health, cycles in ((91, 230), (87, 260), (84, 301)):
        model.state["battery_health"], model.state["battery_cycles"] = health, cycles
        assert svc.self_test("1") is not None  # a full inspection: one status row each
    rows = MaintenanceReads(svc.store).status_series(serial)
    recorded = [r["battery_health_percent"] for r in rows]
    assert recorded[-3:] == [91, 87, 84]

    login(page, web_dock, "maintenance")
    page.goto(f"{web_dock.url}/maintenance/")
    page.click(f"tr[data-serial={serial}] a")
    assert page.locator("h1").inner_text().endswith(serial)
    assert _plot_values(page, "health") == [float(v) for v in recorded]
    heights = _plot_heights(page, "health")
    assert heights[-1] > heights[-2] > heights[-3]  # lower health is drawn lower
    cycles = [float(r["battery_cycles"]) for r in rows]
    assert _plot_values(page, "cycles") == cycles
    temps = [float(r["battery_temp_c"]) for r in rows]
    assert _plot_values(page, "temperature") == temps and temps[-1] == pytest.approx(29.1)
    drift_rows = [r for r in rows if r["drift_before_s"] is not None]
    assert len(_plot_values(page, "drift")) == len(drift_rows) > 0
    screenshot(page, "maintenance-device-zh")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/maintenance/device/{serial}")
    assert "Battery health" in page.inner_text("#history")
    screenshot(page, "maintenance-device-en")


def test_flag_and_repair_are_audited_with_the_person(web_dock, page) -> None:
    """000 §14.1; 003 art.21: flagging a recorder for maintenance and its repair are audited with
    the person."""
    serial = web_dock.recorders[1].model.serial
    login(page, web_dock, "maintenance")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/maintenance/device/{serial}")
    page.fill("#note", "<b>cracked</b> housing")
    page.click("button[value=maintenance]")
    assert "now in maintenance" in page.inner_text("main")
    assert page.locator(".note-text", has_text="<b>cracked</b> housing").count() == 1
    assert web_dock.svc.store.device(serial).maintenance
    page.click("button[value=repaired]")
    assert "repaired" in page.inner_text("main")
    assert not web_dock.svc.store.device(serial).maintenance
    flags = [e for e in web_dock.svc.audit.entries() if e.kind == AuditKind.DEVICE_FLAG]
    maint = PEOPLE["maintenance"][0]
    assert [(e.actor, e.subject, e.data["maintenance"]) for e in flags] == [
        (maint, serial, True),
        (maint, serial, False),
    ]
    assert page.locator("#faults tr[data-kind=device_flag]").count() == 2


class RecordingIndicator:
    def __init__(self) -> None:
        self.shown: list[LedPattern] = []

    def show(self, pattern: LedPattern) -> None:
        self.shown.append(pattern)


class CountingBuzzer:
    def __init__(self) -> None:
        self.acks = 0

    def refuse(self) -> None:
        pass

    def acknowledge(self) -> None:
        self.acks += 1


def test_indicator_test_and_self_test_reach_the_daemon(web_dock, page, monkeypatch) -> None:
    svc = web_dock.svc
    monkeypatch.setattr(slot_tests, "STEP_S", 0.01)
    led, buzzer, lines = RecordingIndicator(), CountingBuzzer(), []
    svc.parts.feedback.indicators["2"] = led
    svc.parts.feedback.buzzer = buzzer
    monkeypatch.setattr(svc.parts, "show", lines.append)
    login(page, web_dock, "maintenance")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/maintenance/")
    page.click("tr[data-slot='2'] button.indicator-test")
    assert "Slot 2: showing 5 LED patterns" in page.inner_text("main")
    wait_until(lambda: not svc.indicator_tests.running("2"))
    state_led = LedPattern.FAILED_CHECK  # slot 2's recorder is low on battery
    assert led.shown == [*slot_tests.TEST_PATTERNS, state_led]
    # The screen speaks the dock's language (zh), whatever the page's.
    assert buzzer.acks == 1 and lines == [["测试：2 号槽位", svc.dock_id]]

    page.click("tr[data-slot='2'] button.self-test")
    text = page.inner_text("main")
    serial = web_dock.recorders[1].model.serial
    assert f"Slot 2: {serial} self-test passed; checks failed: battery" in text
    tests = [e for e in svc.audit.entries() if e.kind == AuditKind.SLOT_TEST]
    assert [(e.actor, e.subject, e.data["test"]) for e in tests] == [
        (PEOPLE["maintenance"][0], serial, "indicators"),
        (PEOPLE["maintenance"][0], serial, "self_test"),
    ]


def test_slot_counters_count_link_failures(web_dock, page, screenshot) -> None:
    svc = web_dock.svc
    bad_port = svc.parts.slots.ports["2"]
    opened = svc.parts.slots.open_transport

    class CutCable:
        """A contact that fails as soon as the dock speaks."""

        def read(self, max_bytes: int, timeout: float) -> bytes:
            raise TransportClosed("contact lost")

        def write(self, data: bytes) -> None:
            raise TransportClosed("contact lost")

        def close(self) -> None:
            pass

    def flaky(port: str) -> Any:
        return CutCable() if port == bad_port else opened(port)

    svc.parts.slots.open_transport = flaky
    for _ in range(3):
        svc.sweep()
    counted = SlotErrorTable(svc.store).by_slot()
    assert counted["2"].total == 3 and "1" not in counted

    login(page, web_dock, "maintenance")
    page.goto(f"{web_dock.url}/maintenance/")
    row = page.locator("tr[data-slot='2']")
    kind = next(k for k, n in counted["2"].counts.items() if n)
    assert row.locator(f"td.err-{kind}").inner_text() == "3"
    assert page.locator("tr[data-slot='1'] td.err-link").inner_text() == "0"
    screenshot(page, "maintenance-index-zh")
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/maintenance/")
    assert "Link errors per slot" in page.inner_text("#slots")
    screenshot(page, "maintenance-index-en")
    # Officers and supervisors are refused the maintenance pages, on the server.
    for who in ("officer", "supervisor"):
        page.context.clear_cookies()
        login(page, web_dock, who)
        assert page.goto(f"{web_dock.url}/maintenance/").status == 403
        assert page.goto(f"{web_dock.url}/api/v1/maintenance/slots").status == 403
