"""The officer's page (issue 12) in Chromium: an officer sees only their own recorder,
returns and explanation items, and adds their account to a gap on their PIN; the
account is audited with them as actor."""

from __future__ import annotations

from typing import Any

from dock.evidence.gap_detection import Gap
from dock.evidence.gaps import GapRegister

from .web_harness import KIOSK, PEOPLE, login, set_language

OFFICER, OTHER = PEOPLE["officer"][0], PEOPLE["officer2"][0]
PIN = PEOPLE["officer"][1]


def open_gap(svc: Any, officer: str, serial: str, reason: str) -> int:
    """An explanation item of ``officer``, as a scan of their episode would open it."""
    gaps = GapRegister(svc.store, svc.audit)
    gaps.open_items(serial, officer, None, [Gap("interrupted", reason, 1_000, 2_000, None)])
    return max(i.id for i in gaps.list_items(officer))


def test_an_officer_sees_only_their_own_and_adds_an_account(web_dock, page, screenshot) -> None:
    """001 art.19(2); 002 art.26: an officer sees only their own recorder and gaps, and writes
    their account."""
    svc = web_dock.svc
    assert svc.checkout(OFFICER, PIN).granted  # their recorder now
    mine = open_gap(svc, OFFICER, "EMU0001", "battery cut <b>mine</b>")
    open_gap(svc, OTHER, "EMU0002", "someone else's gap")
    login(page, web_dock, "officer")
    page.goto(web_dock.url + "/officer/")
    assert "EMU0001" in page.inner_text("#recorder-now")
    items = page.locator(".gap")
    assert items.count() == 1  # not the other officer's
    assert "<b>mine</b>" in items.first.inner_text()  # recorder text shown inert
    screenshot(page, "officer-zh-1280")
    set_language(page, web_dock, "en")
    page.goto(web_dock.url + "/officer/")
    screenshot(page, "officer-en-1280")

    form = page.locator(f'.gap[data-item="{mine}"] form')
    form.locator("textarea").fill("too short")
    form.locator("input[name=pin]").fill(PIN)
    form.locator("button").click()
    assert "at least 10 characters" in page.inner_text("[data-test=problem]")

    form = page.locator(f'.gap[data-item="{mine}"] form')
    form.locator("textarea").fill("The battery ran out during a long night patrol.")
    form.locator("input[name=pin]").fill(PIN)
    form.locator("button").click()
    assert "recorded" in page.inner_text("[data-test=done]")
    assert "long night patrol" in page.inner_text(f'.gap[data-item="{mine}"]')
    (entry,) = [e for e in svc.audit.entries() if e.kind == "gap_account"]
    assert entry.actor == OFFICER and entry.data["item"] == mine

    page.set_viewport_size(KIOSK)
    screenshot(page, "officer-en-800")
    set_language(page, web_dock, "zh")
    page.goto(web_dock.url + "/officer/")
    screenshot(page, "officer-zh-800")


def test_an_officers_api_shows_only_theirs(web_dock, page) -> None:
    """002 art.26: an officer's API shows only their own."""
    svc = web_dock.svc
    open_gap(svc, OTHER, "EMU0002", "not for 1001")
    login(page, web_dock, "officer")
    me = page.request.get(web_dock.url + "/api/v1/officer/me").json()
    assert me["officer_id"] == OFFICER and me["gaps"] == [] and me["now"] is None
