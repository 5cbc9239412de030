"""The supervisor's pages (issue 12) in Chromium: closing two gaps at once, placing and
releasing a hold, approving an access request, a purge preview, and an override that
grants a refused check-out; each audited with the logged-in supervisor as actor. An
officer is refused every supervisor route, page and API alike."""

from __future__ import annotations

import re
from typing import Any

from dock.evidence.gaps import GapRegister
from dock.services import access

from .test_web_officer import open_gap
from .web_harness import PEOPLE, login, set_language

SUP, SUP_PIN = PEOPLE["supervisor"][0], PEOPLE["supervisor"][1]
OFFICER, OTHER, PIN = PEOPLE["officer"][0], PEOPLE["officer2"][0], PEOPLE["officer"][1]


def actors(svc: Any, kind: str) -> list[str]:
    return [e.actor for e in svc.audit.entries() if e.kind == kind]


def archive_one(svc: Any, rid: str = "REC000001") -> None:
    svc.store.add_archived("EMU0001", rid, b"\1" * 32, 10, f"EMU0001/{rid}.mp4", OFFICER,
                           1_000, 2_000)  # fmt: skip


def shoot_both(page: Any, web: Any, screenshot: Any, path: str, name: str) -> None:
    for lang in ("en", "zh"):
        set_language(page, web, lang)
        page.goto(web.url + path)
        screenshot(page, f"supervisor-{name}-{lang}-1280")


def test_a_supervisor_decides_and_each_decision_is_theirs(web_dock, page, screenshot) -> None:
    """001 art.19(2); 003 art.17: a supervisor closes gap items and decides access requests, each
    decision audited as theirs."""
    svc, url = web_dock.svc, web_dock.url
    a = open_gap(svc, OFFICER, "EMU0001", "cut one")
    b = open_gap(svc, OTHER, "EMU0002", "cut two")
    gaps = GapRegister(svc.store, svc.audit)  # 001 art.19(2): the accounts come first
    gaps.add_account(a, OFFICER, PIN, "The storm cut the power at the crossing.")
    gaps.add_account(b, OTHER, PIN, "The storm cut the power on the bridge.")
    archive_one(svc)
    req = access.request(svc, OFFICER, "complaint 7", "view", ["EMU0001:REC000001"])
    login(page, web_dock, "supervisor")
    set_language(page, web_dock, "en")

    # two accounts accepted with one explanation (the review)
    page.goto(url + "/supervisor/gaps")
    page.check(f'input[name=ids][value="{a}"]')
    page.check(f'input[name=ids][value="{b}"]')
    page.fill("textarea[name=text]", "One incident: the storm cut power to both.")
    page.fill("input[name=pin]", SUP_PIN)
    page.click("form button[type=submit] >> text=Accept")
    assert "accepted" in page.inner_text("[data-test=done]")
    assert actors(svc, "gap_explained") == [SUP, SUP]

    # a hold placed on a recording, then released with a reason
    page.goto(url + "/supervisor/holds")
    page.select_option("select[name=scope]", "recording")
    page.fill("input[name=target]", "EMU0001:REC000001")
    page.select_option("select[name=kind]", "complaint")
    page.fill("input[name=reference]", "C-2026-7")
    page.click("text=Place the hold")
    assert "placed" in page.inner_text("[data-test=done]")
    row = page.locator("tr[data-hold]").first
    row.locator("input[name=reason]").fill("complaint withdrawn")
    row.locator("input[name=pin]").fill("000000")  # wrong: refused, nothing released
    row.locator("button").click()
    assert "Refused" in page.inner_text("[data-test=problem]")
    row = page.locator("tr[data-hold]").first
    row.locator("input[name=reason]").fill("complaint withdrawn")
    row.locator("input[name=pin]").fill(SUP_PIN)
    row.locator("button").click()
    assert "released" in page.inner_text("[data-test=done]")
    assert actors(svc, "hold_placed") == [SUP] and actors(svc, "hold_released") == [SUP]

    # an access request approved
    page.goto(url + "/supervisor/access")
    form = page.locator(f'tr[data-request="{req.id}"] form').first
    form.locator("input[name=pin]").fill(SUP_PIN)
    form.locator("button").click()
    assert "approved" in page.inner_text(f'tr[data-request="{req.id}"] [data-test=state]')
    assert actors(svc, "access_approve") == [SUP]

    # a purge preview: nothing changes (a dry run writes no audit entry: see the report)
    page.goto(url + "/supervisor/purge")
    page.click("text=Preview (dry run)")
    assert "would be purged" in page.inner_text("[data-test=purge-result]")
    assert svc.store.archived("EMU0001", "REC000001") is not None

    # an override grants a check-out the dock refused (the other recorder: low battery)
    assert svc.checkout(OFFICER, PIN).granted
    refused = svc.checkout(OTHER, PIN)
    assert not refused.granted
    page.goto(url + "/supervisor/override")
    page.fill("input[name=officer]", OTHER)
    page.fill("input[name=officer_pin]", PIN)
    page.fill("input[name=reason]", "urgent call-out, spare battery carried")
    page.fill("input[name=pin]", SUP_PIN)
    page.click("text=Override and check out")
    assert "Granted" in page.inner_text("[data-test=decision]")
    assert actors(svc, "override") == [SUP]

    for path, name in (("/supervisor/", "index"), ("/supervisor/gaps", "gaps"),
                       ("/supervisor/holds", "holds"), ("/supervisor/access", "access"),
                       ("/supervisor/purge", "purge"), ("/supervisor/override", "override"),
                       ("/supervisor/chain?serial=EMU0001", "chain")):  # fmt: skip
        shoot_both(page, web_dock, screenshot, path, name)


def test_an_officer_is_refused_every_supervisor_route(web_dock, page) -> None:
    """002 art.22, 25; 001 art.15: an officer is refused every supervisor route."""
    login(page, web_dock, "officer")
    page.goto(web_dock.url + "/officer/")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    rules = [r for r in web_dock.app.url_map.iter_rules()
             if r.rule.startswith(("/supervisor", "/api/v1/supervisor"))]  # fmt: skip
    assert len(rules) > 20
    for rule in rules:
        path = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1).strip(), rule.rule)
        path = re.sub(r"<(?:int:)?[a-z_]+>", "1", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            headers = {"X-CSRF-Token": token}
            answer = page.request.fetch(web_dock.url + path, method=method, headers=headers,
                                        data={} if method == "POST" else None)  # fmt: skip
            assert answer.status == 403, (method, path, answer.status)
