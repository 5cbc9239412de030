"""Maintenance on a schedule on the maintenance pages, in headless Chromium (issue 17;
000 §14.1; 002 art.22): the due date set on a recorder's page, shown there and in the
list, in English and Chinese; past it the recorder fails its pre-shift check."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dock.domain.audit_kinds import AuditKind

from .web_harness import PEOPLE, login, set_language


def test_a_maintenance_due_date_is_set_shown_and_refuses_the_recorder_once_past(
    web_dock, page, screenshot
) -> None:
    """000 §14.1; 002 art.22: maintenance staff set a recorder's maintenance due date on
    its page (audited with the person); a date to come shows as due, a date past as
    overdue, on the page and in the list; past it the pre-shift check fails with
    "maintenance overdue since <date>"."""
    svc, url = web_dock.svc, web_dock.url
    serial = web_dock.recorders[0].model.serial
    today = datetime.now(ZoneInfo(svc.timezone)).date()
    soon, past = (today + timedelta(days=20)).isoformat(), (today - timedelta(days=2)).isoformat()
    login(page, web_dock, "maintenance")
    set_language(page, web_dock, "en")
    page.goto(f"{url}/maintenance/device/{serial}")
    page.fill("#due-date", soon)
    page.click("#due button[type=submit]")
    assert page.inner_text("#due [data-test=due]") == f"maintenance due {soon}"
    svc.sweep()
    assert not any(r.code == "maintenance_flag" for r in svc.views["1"].failures)

    page.fill("#due-date", past)
    page.click("#due button[type=submit]")
    assert page.inner_text("#due [data-test=due]") == f"maintenance overdue since {past}"
    screenshot(page, "maintenance-due-overdue-en-1280")
    set_language(page, web_dock, "zh")
    page.goto(f"{url}/maintenance/device/{serial}")
    assert page.inner_text("#due [data-test=due]") == f"维护保养已逾期（自{past}起）"
    screenshot(page, "maintenance-due-overdue-zh-1280")
    page.goto(f"{url}/maintenance/")
    row = page.locator(f"tr[data-serial={serial}] [data-test=due]")
    assert row.inner_text() == f"维护保养已逾期（自{past}起）"
    screenshot(page, "maintenance-list-due-zh-1280")
    set_language(page, web_dock, "en")
    page.goto(f"{url}/maintenance/")
    screenshot(page, "maintenance-list-due-en-1280")

    svc.sweep()
    (failure,) = [r for r in svc.views["1"].failures if r.code == "maintenance_flag"]
    assert failure.detail == {"case": "overdue", "since": past}
    entries = [e for e in svc.audit.entries() if e.kind == AuditKind.MAINTENANCE_DUE]
    assert [(e.actor, e.subject, e.data["due"]) for e in entries] == [
        (PEOPLE["maintenance"][0], serial, soon),
        (PEOPLE["maintenance"][0], serial, past),
    ]
