"""The appraisal page and the purge that cites it, in headless Chromium (issue 17;
004 att.2 §6: destruction follows an approved appraisal; 001 art.20: the hold kinds on the
holds page), in English and Chinese, screenshots of each to look at."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dock.domain.hold_kinds import KINDS
from dock.services import officers

from .web_harness import PEOPLE, login, set_language

SUP, SUP_PIN = PEOPLE["supervisor"][0], PEOPLE["supervisor"][1]
ADMIN = PEOPLE["admin"][0]
SUP2, SUP2_PIN = "9002", "808541"
FOOTAGE = {"serial": "EMU0001", "recordings": 2, "recording_mb": 0.05}


def kinds(svc: Any, kind: str) -> list[Any]:
    return [e for e in svc.audit.entries() if e.kind == kind]


def test_a_purge_on_the_page_cites_an_appraisal_another_supervisor_approved(
    make_web_dock, page, screenshot
) -> None:
    """004 att.2 §6: a supervisor proposes every recording a purge would take, with a
    reason; approving their own proposal is refused (in Chinese on a zh page); a second
    supervisor approves it; the purge page refuses to apply without the appraisal's
    number and purges with it."""
    web = make_web_dock(FOOTAGE)
    svc, url = web.svc, web.url
    svc.parts.policy = dataclasses.replace(svc.policy, retention_days=0)  # past retention
    officers.add(svc, ADMIN, SUP2, "Qian Lei", "Traffic 3", SUP2_PIN, role="supervisor")
    files = [os.path.join(svc.offloader.evidence_dir, e["path"])
             for e in svc.store.archive_entries()]  # fmt: skip
    assert len(files) == 2

    login(page, web, "supervisor")
    set_language(page, web, "en")
    page.goto(url + "/supervisor/appraisals")
    form = page.locator("[data-test=propose]")
    form.locator("input[name=candidates]").check()
    form.locator("input[name=reason]").fill("retention ended, nothing held")
    form.locator("input[name=pin]").fill(SUP_PIN)
    form.locator("button[type=submit]").click()
    assert page.inner_text("[data-test=done]") == "Appraisal 1 proposed (2 recordings)."
    row = page.locator("tr[data-appraisal='1']")
    assert row.locator("[data-test=state]").inner_text().startswith("proposed")
    screenshot(page, "supervisor-appraisal-proposed-en-1280")

    set_language(page, web, "zh")
    page.goto(url + "/supervisor/appraisals")
    approve = page.locator("tr[data-appraisal='1'] form").first
    approve.locator("input[name=pin]").fill(SUP_PIN)
    approve.locator("button").click()
    problem = page.inner_text("[data-test=problem]")
    assert "须由另一位主管决定" in problem and "\n" not in problem.strip(), problem
    screenshot(page, "supervisor-appraisal-own-refused-zh-1280")
    (refused,) = kinds(svc, "appraisal_refused")
    assert refused.actor == SUP and "another supervisor decides" in refused.data["why"]

    set_language(page, web, "en")
    page.goto(url + "/supervisor/purge")

    def apply(appraisal: str) -> None:
        page.fill("input[name=pin]", SUP_PIN)
        page.fill("input[name=second]", SUP2)
        page.fill("input[name=second_pin]", SUP2_PIN)
        page.fill("input[name=appraisal]", appraisal)
        page.click("button.danger")

    apply("")
    assert "needs an approved appraisal" in page.inner_text("[data-test=problem]")
    apply("1")  # proposed, not approved
    assert "appraisal 1 is not approved (proposed)" in page.inner_text("[data-test=problem]")
    assert all(os.path.exists(f) for f in files) and not kinds(svc, "purge")

    page.context.clear_cookies()
    login(page, web, SUP2, pin=SUP2_PIN)
    set_language(page, web, "zh")
    page.goto(url + "/supervisor/appraisals")
    approve = page.locator("tr[data-appraisal='1'] form").first
    approve.locator("input[name=pin]").fill(SUP2_PIN)
    approve.locator("button").click()
    assert page.inner_text("[data-test=done]") == "鉴定 1 已批准。"
    state = page.locator("tr[data-appraisal='1'] [data-test=state]").inner_text()
    assert state.startswith("已批准") and SUP2 in state
    screenshot(page, "supervisor-appraisal-approved-zh-1280")
    set_language(page, web, "en")
    page.goto(url + "/supervisor/appraisals")
    screenshot(page, "supervisor-appraisal-approved-en-1280")

    page.context.clear_cookies()
    login(page, web, "supervisor")
    set_language(page, web, "en")
    page.goto(url + "/supervisor/purge")
    apply("1")
    assert "2 of 2 recordings purged" in page.inner_text("[data-test=purge-result]")
    assert not any(os.path.exists(f) for f in files)
    assert all(e.data["appraisal"] == 1 for e in kinds(svc, "purge"))


def test_the_holds_page_offers_every_long_term_trigger_in_both_languages(
    web_dock, page, screenshot
) -> None:
    """001 art.20; 000 §14.4; 004 att.1 art.5: the holds page offers each long-term
    trigger as a kind, in English and in Chinese."""
    login(page, web_dock, "supervisor")
    for lang in ("en", "zh"):
        set_language(page, web_dock, lang)
        page.goto(web_dock.url + "/supervisor/holds")
        options = page.locator("select[name=kind] option")
        values = [options.nth(i).get_attribute("value") for i in range(options.count())]
        labels = [options.nth(i).inner_text() for i in range(options.count())]
        assert values == [k.kind.value for k in KINDS]
        assert labels == [getattr(k, lang) for k in KINDS]
        page.select_option("select[name=kind]", "state_compensation")
        screenshot(page, f"supervisor-hold-kinds-{lang}-1280")
