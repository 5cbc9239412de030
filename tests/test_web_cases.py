"""The cases page (REQUIREMENTS section 6: records of the same party kept together, 一户式;
000 §14.2; 003 art.14) in headless Chromium: every case file, and searched by party that
party's cases, the recordings filed under them and their explanation items in one view,
in English and Chinese; an officer is refused it; a hostile party is inert or refused."""

from __future__ import annotations

from typing import Any

from dock.evidence.gap_detection import Gap
from dock.evidence.gaps import GapRegister
from dock.services.requests import call

from .web_harness import PEOPLE, login, set_language

OFFICER, PIN = PEOPLE["officer"][0], PEOPLE["officer"][1]
SUP, SUP_PIN = PEOPLE["supervisor"][0], PEOPLE["supervisor"][1]
KEEPER, KEEPER_PIN = "7101", "470147"
PARTY, OTHER = "张三 <b>Zhang</b>", "李四"


def _archive(svc: Any, rid: str, start_ms: int) -> str:
    path = f"1001-Wang Wei/EMU0001/{rid}.mp4"
    svc.store.add_archived("EMU0001", rid, b"\1" * 32, 10, path, OFFICER, start_ms,
                           start_ms + 60_000)  # fmt: skip
    return path


def _cases(svc: Any) -> None:
    """Two cases of PARTY (one closed), one of OTHER; a recording filed under each, and
    an explanation item on the first case's recording."""
    for case, cause, party in (("C-1", "盗窃", PARTY), ("C-2", "殴打", PARTY),
                               ("C-3", "盗窃", OTHER)):  # fmt: skip
        call(svc, "case.open", {"case": case, "cause": cause, "party": party,
                                "officer": OFFICER, "pin": PIN}, actor="clerk")  # fmt: skip
    for n, case in enumerate(("C-1", "C-2", "C-3"), start=1):
        _archive(svc, f"REC00000{n}", 1_764_000_000_000 + n * 3_600_000)
        call(svc, "case.attach", {"case": case, "recordings": [f"EMU0001:REC00000{n}"],
                                  "officer": OFFICER, "pin": PIN}, actor="clerk")  # fmt: skip
    gaps = GapRegister(svc.store, svc.audit)
    gaps.open_items("EMU0001", OFFICER, None,
                    [Gap("interrupted", "battery", 1_764_003_600_500, 1_764_003_601_000,
                         "REC000001")])  # fmt: skip
    call(svc, "case.close", {"case": "C-2", "officer": SUP, "pin": SUP_PIN}, actor="clerk")


def test_one_partys_cases_recordings_and_items_are_shown_together(
    web_dock, page, screenshot
) -> None:
    """000 §14.2; 003 art.14: a supervisor searches a party and sees both its cases (one
    open, one closed), the recording filed under each and the explanation item, in one
    view; the other party's case and recording are not in it. The list of every case
    file shows all three. In English and Chinese; the keeper reaches it from the start
    page."""
    svc, url = web_dock.svc, web_dock.url
    _cases(svc)
    login(page, web_dock, "supervisor")
    set_language(page, web_dock, "en")
    page.goto(url + "/supervisor/cases")
    files = page.locator("[data-test=files] tbody tr")
    assert [files.nth(i).get_attribute("data-case") for i in range(files.count())] == [
        "C-3", "C-1", "C-2"]  # open ones first, then the closed  # fmt: skip
    assert page.locator("[data-test=files] tr[data-case='C-2'] [data-test=state]"
                        ).inner_text() == "closed"  # fmt: skip
    page.locator("[data-test=search] input[name=party]").fill(PARTY)
    page.locator("[data-test=search] button").click()
    view = page.locator("[data-test=party]")
    assert view.get_attribute("data-party") == PARTY
    assert page.locator("[data-test=summary]").inner_text() == (
        f"{PARTY}: 2 case(s), 2 recording(s), 1 explanation item(s)")  # fmt: skip
    shown = view.locator("[data-test=party-cases] tbody tr")
    assert [shown.nth(i).get_attribute("data-case") for i in range(shown.count())] == [
        "C-1", "C-2"]  # fmt: skip
    recordings = view.locator("[data-test=party-recordings] tbody tr")
    rows = [recordings.nth(i).get_attribute("data-recording") for i in range(recordings.count())]
    assert rows == ["EMU0001:REC000001", "EMU0001:REC000002"]
    first = recordings.first.inner_text()
    assert "C-1" in first and OFFICER in first and "1001-Wang Wei/EMU0001/REC000001.mp4" in first
    items = view.locator("[data-test=party-explanations] tbody tr")
    assert items.count() == 1 and "battery" in items.first.inner_text()
    assert "C-3" not in view.inner_text() and "REC000003" not in view.inner_text()
    assert page.locator("b", has_text="Zhang").count() == 0  # the party's markup is text
    screenshot(page, "supervisor-cases-party-en-1280")

    set_language(page, web_dock, "zh")
    page.goto(url + "/supervisor/cases?party=" + OTHER)
    assert page.locator("[data-test=summary]").inner_text() == (
        f"{OTHER}：1 个案件，1 条录像，0 个说明事项")  # fmt: skip
    assert "REC000003" in page.locator("[data-test=party]").inner_text()
    assert "REC000001" not in page.locator("[data-test=party]").inner_text()
    screenshot(page, "supervisor-cases-party-zh-1280")
    page.goto(url + "/supervisor/cases?party=" + PARTY.replace("<", "%3C").replace(">", "%3E"))
    screenshot(page, "supervisor-cases-party2-zh-1280")

    # the keeper: from the start page (no supervisor menu), the same view
    svc.store.add_officer(KEEPER, "Zhou Jian", "Records", KEEPER_PIN, role="keeper")
    page.context.clear_cookies()
    login(page, web_dock, KEEPER, KEEPER_PIN)
    page.goto(url + "/")
    page.click("a[href='/supervisor/cases']")
    page.locator("[data-test=search] input[name=party]").fill(OTHER)
    page.locator("[data-test=search] button").click()
    assert "REC000003" in page.locator("[data-test=party-recordings]").inner_text()
    screenshot(page, "keeper-cases-party-zh-1280")


def test_an_officer_is_refused_the_cases_page(web_dock, page) -> None:
    """000 §14.2; 003 art.14: a party's records are for those who keep and oversee them:
    an officer is refused the page (403), its search too."""
    _cases(web_dock.svc)
    login(page, web_dock, "officer")
    for path in ("/supervisor/cases", "/supervisor/cases?party=" + OTHER):
        answer = page.request.get(web_dock.url + path)
        assert answer.status == 403 and "REC000003" not in answer.text(), path


def test_a_hostile_party_is_inert_or_refused_in_one_line(web_dock, page, screenshot) -> None:
    """000 §14.2; 003 art.14: the party is text a person typed: markup in it is shown as
    text (nothing runs), one too long or with control characters is refused in one line
    of the page's language, and nothing is looked up."""
    svc = web_dock.svc
    hostile = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"
    call(svc, "case.open", {"case": "C-9", "party": hostile, "officer": OFFICER, "pin": PIN},
         actor="clerk")  # fmt: skip
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, web_dock, "supervisor")
    set_language(page, web_dock, "en")
    page.goto(web_dock.url + "/supervisor/cases")
    page.locator("[data-test=files] a", has_text="<script>").click()  # the party's link
    assert page.locator("[data-test=party]").get_attribute("data-party") == hostile
    assert page.locator("[data-test=summary]").inner_text().startswith(hostile + ": 1 case(s)")
    assert page.title() != "owned" and not dialogs and page.locator("main img").count() == 0
    screenshot(page, "supervisor-cases-hostile-en-1280")
    for bad, lang, words in (("x" * 5000, "en", "at most 200 characters"),
                             ("张三\x1b[31m", "zh", "不超过 200 个字符")):  # fmt: skip
        set_language(page, web_dock, lang)
        answer = page.goto(web_dock.url + "/supervisor/cases?party=" + bad.replace("\x1b", "%1B"))
        assert answer is not None and answer.status == 400
        problem = page.inner_text("[data-test=problem]").strip()
        assert words in problem and "\n" not in problem, problem
        assert page.locator("[data-test=party]").count() == 0
        assert len(page.locator("input[name=party]").input_value()) <= 200
    screenshot(page, "supervisor-cases-refused-zh-1280")
