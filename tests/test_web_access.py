"""Footage access on the pages (issue 17, REQUIREMENTS section 7), in Chromium, over a dock
whose emulated recorder's footage was really offloaded and archived: a supervisor marks a
recording confidential; another officer neither sees it listed nor may ask for it; an
officer asks to view, and once a supervisor approved, views: the register entry is written
before the copy, which is a copy of the archived bytes; a supervisory body reads the
marked recording directly, registered. Screenshots in both languages."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from dock.services import access

from .web_harness import PEOPLE, login, set_language

SUP, SUP_PIN = PEOPLE["supervisor"][0], PEOPLE["supervisor"][1]
OFFICER, OTHER, OTHER_PIN = PEOPLE["officer"][0], PEOPLE["officer2"][0], PEOPLE["officer2"][1]
OVERSIGHT, OVERSIGHT_PIN = "5001", "517394"
FOOTAGE = {"serial": "EMU0001", "recordings": 2, "recording_mb": 0.05}


def kinds(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def test_marks_narrow_and_views_are_registered_first_on_the_pages(
    make_web_dock, page, screenshot
) -> None:
    """003 art.17 (registered before viewing); 004 att.2 §5 (a copy, never the original);
    002 art.26, 003 art.20, 001 art.17(3) (confidential recordings narrowed);
    001 art.20(3), 002 art.25 (a supervisory body reads directly, registered)."""
    web = make_web_dock(FOOTAGE, {"serial": "EMU0002"})
    svc, url = web.svc, web.url
    with svc.store._write() as db:  # the footage is officer 1001's
        db.execute("UPDATE archive SET officer_id = ?", (OFFICER,))
    svc.store.add_officer(OVERSIGHT, "Zhou Jian", "纪检组", OVERSIGHT_PIN, role="oversight")
    entries = sorted(svc.store.archive_entries(), key=lambda e: e["recording_id"])
    marked, plain = (f"{e['serial']}:{e['recording_id']}" for e in entries)

    # a supervisor marks one recording confidential (personal privacy), on their PIN
    login(page, web, "supervisor")
    set_language(page, web, "en")
    page.goto(url + "/supervisor/marks")
    page.fill("textarea[name=recordings]", marked)
    page.select_option("select[name=category]", "personal_privacy")
    page.fill("input[name=reason]", "a witness's face")
    page.fill("form.grid input[name=pin]", SUP_PIN)
    page.click("form.grid button[type=submit]")
    assert "Marked" in page.inner_text("[data-test=done]")
    assert page.inner_text("[data-test=category]") == "personal privacy"
    (mark,) = kinds(svc, "confidential_mark")
    assert mark.actor == SUP and mark.subject == marked.replace(":", "/")
    screenshot(page, "marks-en-1280")
    set_language(page, web, "zh")
    page.goto(url + "/supervisor/marks")
    assert page.inner_text("[data-test=category]") == "个人隐私"
    screenshot(page, "marks-zh-1280")
    page.context.clear_cookies()

    # another officer: the marked recording is not even listed; asks to view the other
    login(page, web, OTHER, OTHER_PIN)
    set_language(page, web, "en")
    page.goto(url + "/officer/footage")
    listed = page.locator("tr[data-recording]")
    assert listed.count() == 1 and listed.first.get_attribute("data-recording") == plain
    page.check(f'input[name=recordings][value="{plain}"]')
    page.select_option("select[name=kind]", "view")
    page.fill("input[name=purpose]", "complaint 2026-17 <b>review</b>")
    page.click("#ask button[type=submit]")
    assert "a supervisor other than you decides it" in page.inner_text("[data-test=done]")
    (req,) = access.requests_of(svc.store, OTHER, 0)
    assert req["state"] == "pending" and page.locator("[data-test=view]").count() == 0
    assert "<b>review</b>" in page.inner_text(f'tr[data-request="{req["id"]}"]')  # inert

    access.approve(svc, SUP, req["id"], SUP, SUP_PIN)
    page.goto(url + "/officer/footage")
    page.click(f'tr[data-request="{req["id"]}"] [data-test=view]')
    assert "Registered, then 1 working copies" in page.inner_text("[data-test=done]")
    (logged,) = access.register(svc).log(req["id"])
    assert logged["who"] == OTHER and logged["action"] == "view"
    href = page.locator("[data-test=copy-file]").first.get_attribute("href")
    body = page.request.get(url + href).body()
    plain_entry = entries[1]
    assert hashlib.sha256(body).digest() == bytes(plain_entry["sha256"])
    original = os.path.join(svc.offloader.evidence_dir, plain_entry["path"])
    copies = [f for d, _, fs in os.walk(web.cfg.dock.state_dir) for f in fs
              if f == os.path.basename(original)]  # fmt: skip
    assert copies  # the copy is under the exports folder, the original untouched
    screenshot(page, "footage-en-1280")
    set_language(page, web, "zh")
    page.goto(url + "/officer/footage")
    assert "查阅（先登记）" in page.inner_text("#requests")
    screenshot(page, "footage-zh-1280")
    page.context.clear_cookies()

    # a supervisory body reads the marked recording directly, registered first
    login(page, web, OVERSIGHT, OVERSIGHT_PIN)
    set_language(page, web, "en")
    page.goto(url + "/officer/footage")
    assert page.locator("[data-test=direct-hint]").count() == 1
    assert page.request.get(url + href).status == 404  # another person's copy: not theirs
    page.check(f'input[name=recordings][value="{marked}"]')
    page.fill("input[name=purpose]", "纪检 review 2026-3")
    page.click("#ask button[type=submit]")
    assert "in force" in page.inner_text("[data-test=done]")
    (direct,) = access.requests_of(svc.store, OVERSIGHT, 0)
    assert direct["basis"] == "oversight" and not [
        e for e in kinds(svc, "access_approve") if e.subject == f"access_request:{direct['id']}"
    ]
    page.click(f'tr[data-request="{direct["id"]}"] [data-test=view]')
    assert [r["who"] for r in access.register(svc).log(direct["id"])] == [OVERSIGHT]
    screenshot(page, "footage-oversight-en-1280")
