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
KEEPER, KEEPER_PIN = "7101", "470147"
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


def test_the_keeper_proposes_an_appraisal_but_never_decides_one(
    make_web_dock, page, screenshot
) -> None:
    """004 att.2 §6 (002 art.22: a designated keeper of the records): the keeper reaches
    the appraisals from their start page and proposes listed recordings on their own PIN;
    the page offers them no approval, and the daemon refuses one they send anyway."""
    web = make_web_dock(FOOTAGE)
    svc, url = web.svc, web.url
    officers.add(svc, ADMIN, KEEPER, "Sun Yue", "Traffic 3", KEEPER_PIN, role="keeper")
    (first, *_rest) = [f"{e['serial']}:{e['recording_id']}" for e in svc.store.archive_entries()]
    login(page, web, KEEPER, pin=KEEPER_PIN)
    set_language(page, web, "zh")
    page.click("a[href$='/supervisor/appraisals']")
    form = page.locator("[data-test=propose]")
    form.locator("textarea[name=recordings]").fill(first)
    form.locator("input[name=reason]").fill("保存期满")
    form.locator("input[name=pin]").fill(KEEPER_PIN)
    form.locator("button[type=submit]").click()
    assert page.inner_text("[data-test=done]") == "已提请鉴定 1（1 条录像）。"
    assert page.locator("tr[data-appraisal='1'] form").count() == 0  # no approve/reject
    screenshot(page, "keeper-appraisal-proposed-zh-1280")
    # an approval sent by hand (with the session's form token) is refused: not a supervisor
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    response = page.request.post(
        url + "/supervisor/appraisals/1/approve", form={"pin": KEEPER_PIN, "csrf_token": csrf}
    )
    assert response.status == 403
    (proposed,) = kinds(svc, "appraisal_proposed")
    assert proposed.actor == KEEPER and proposed.data["recordings"] == [first.replace(":", "/")]
    assert not kinds(svc, "appraisal_approved")
