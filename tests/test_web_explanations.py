"""The three steps of an explanation item on the pages, in Chromium (001 art.19(2)), and
the at-once alert shown to supervisors (002 art.20; 003 art.11; 004 att.1 art.3): the
officer writes the account on their page, a supervisor returns it with a reason and then
accepts it on theirs, the records keeper files it on the keeper's page; each step audited
with the logged-in person as actor; en and zh screenshots."""

from __future__ import annotations

from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.evidence.gap_detection import Gap
from dock.evidence.gaps import GapRegister

from .web_harness import PEOPLE, login, set_language

OFFICER, PIN = PEOPLE["officer"][0], PEOPLE["officer"][1]
SUP, SUP_PIN = PEOPLE["supervisor"][0], PEOPLE["supervisor"][1]
KEEPER, KEEPER_PIN = "5001", "135790"
ACCOUNT = "Battery ran out at the <b>market</b> inspection; spare fitted at 14:25."


def actors(svc: Any, kind: AuditKind) -> list[str]:
    return [e.actor for e in svc.audit.entries() if e.kind == kind]


def open_items(svc: Any) -> tuple[int, int]:
    """A battery cut (recording could not continue: alerted) and a stop for another
    reason, as the scan of officer 1001's episode opens them."""
    reg = GapRegister(svc.store, svc.audit)
    reg.open_items("EMU0001", OFFICER, None, [
        Gap("interrupted", "battery", 1_000_000, 1_060_000, "REC000007", "battery exhausted"),
        Gap("interrupted", "other", 2_000_000, 2_010_000, "REC000009", "stopped"),
    ])  # fmt: skip
    battery, other = (i.id for i in reg.list_items(OFFICER))
    return battery, other


def as_person(page: Any, web: Any, who: str, pin: str | None = None) -> None:
    """Log ``who`` in afresh, the pages in English."""
    page.context.clear_cookies()
    login(page, web, who, pin)
    set_language(page, web, "en")


def write_account(page: Any, web: Any, item: int, text: str) -> None:
    page.goto(web.url + "/officer/")
    form = page.locator(f'.gap[data-item="{item}"] form')
    form.locator("textarea").fill(text)
    form.locator("input[name=pin]").fill(PIN)
    form.locator("button").click()


def review(page: Any, web: Any, item: int, text: str, button: str) -> None:
    page.goto(web.url + "/supervisor/gaps")
    page.check(f'input[name=ids][value="{item}"]')
    page.fill("textarea[name=text]", text)
    page.fill("input[name=pin]", SUP_PIN)
    page.click(button)


def test_account_review_return_and_filing_on_the_pages(web_dock, page, screenshot) -> None:
    """001 art.19(2): the officer writes the account, the supervisor reviews it (returns it
    with a reason the officer sees, then accepts it), the keeper files it; 002 art.20:
    the battery cut is an alert on the supervisor's pages until the account is accepted."""
    svc, url = web_dock.svc, web_dock.url
    svc.store.add_officer(KEEPER, "Sun Mei", "Records", KEEPER_PIN, role="keeper")
    battery, other = open_items(svc)

    # the supervisor sees the alert at once, before any account exists
    as_person(page, web_dock, "supervisor")
    page.goto(url + "/supervisor/")
    alerts = page.locator("[data-test=alerts]")
    assert alerts.get_attribute("role") == "alert"
    assert f"Item {battery}" in alerts.inner_text() and "battery exhausted" in alerts.inner_text()
    assert f"Item {other}" not in alerts.inner_text()  # another reason: no alert
    screenshot(page, "explanations-supervisor-alert-en-1280")
    set_language(page, web_dock, "zh")
    page.goto(url + "/supervisor/")
    assert "无法继续录像" in page.inner_text("[data-test=alerts]")
    assert "电量耗尽" in page.inner_text("[data-test=alerts]")
    screenshot(page, "explanations-supervisor-alert-zh-1280")
    page.goto(url + "/supervisor/gaps")  # nothing to review yet: no box to tick
    assert page.locator("input[name=ids]").count() == 0

    # the officer writes the account
    as_person(page, web_dock, "officer")
    write_account(page, web_dock, battery, "Battery.  That is all.")
    assert "recorded" in page.inner_text("[data-test=done]")
    state = page.locator(f'.gap[data-item="{battery}"] [data-test=state]')
    assert state.get_attribute("data-state") == "accounted"

    # the supervisor returns it with a reason
    as_person(page, web_dock, "supervisor")
    review(page, web_dock, battery, "Say when and where it ran out.", "[data-test=return]")
    assert "returned" in page.inner_text("[data-test=done]")
    assert actors(svc, AuditKind.GAP_RETURNED) == [SUP]

    # the officer sees why, and writes it again
    as_person(page, web_dock, "officer")
    page.goto(url + "/officer/")
    said = page.inner_text(f'.gap[data-item="{battery}"] [data-test=returned]')
    assert "Say when and where it ran out." in said and SUP in said
    screenshot(page, "explanations-officer-returned-en-1280")
    set_language(page, web_dock, "zh")
    page.goto(url + "/officer/")
    assert "已退回" in page.inner_text(f'.gap[data-item="{battery}"] [data-test=returned]')
    screenshot(page, "explanations-officer-returned-zh-1280")
    set_language(page, web_dock, "en")
    write_account(page, web_dock, battery, ACCOUNT)
    assert "recorded" in page.inner_text("[data-test=done]")
    assert actors(svc, AuditKind.GAP_ACCOUNT) == [OFFICER, OFFICER]

    # the supervisor accepts it: the alert is answered
    as_person(page, web_dock, "supervisor")
    page.goto(url + "/supervisor/gaps")
    row = page.locator(f'tr[data-item="{battery}"]')
    assert "<b>market</b>" in row.inner_text()  # what the officer wrote, shown inert
    screenshot(page, "explanations-supervisor-review-en-1280")
    set_language(page, web_dock, "zh")
    page.goto(url + "/supervisor/gaps")
    screenshot(page, "explanations-supervisor-review-zh-1280")
    set_language(page, web_dock, "en")
    review(page, web_dock, battery, "Checked against the battery log.", "button >> text=Accept")
    assert "accepted" in page.inner_text("[data-test=done]")
    assert page.locator("[data-test=alerts]").count() == 0
    assert actors(svc, AuditKind.GAP_EXPLAINED) == [SUP]

    # the keeper files it; a wrong PIN first
    as_person(page, web_dock, KEEPER, KEEPER_PIN)
    page.goto(url + "/keeper/")
    row = page.locator(f'tr[data-item="{battery}"]')
    assert "<b>market</b>" in row.inner_text() and "battery log" in row.inner_text()
    assert page.locator(f'tr[data-item="{other}"]').count() == 0  # not reviewed
    screenshot(page, "explanations-keeper-en-1280")
    set_language(page, web_dock, "zh")
    page.goto(url + "/keeper/")
    assert "待归档" in page.inner_text("h1")
    screenshot(page, "explanations-keeper-zh-1280")
    page.check(f'input[name=ids][value="{battery}"]')
    page.fill("input[name=note]", "档案柜 3")
    page.fill("input[name=pin]", "000000")
    page.click("[data-test=file]")
    assert "密码" in page.inner_text("[data-test=problem]")  # said in Chinese
    assert svc.store.officer(KEEPER) is not None
    set_language(page, web_dock, "en")
    page.goto(url + "/keeper/")
    page.check(f'input[name=ids][value="{battery}"]')
    page.fill("input[name=note]", "cabinet 3, folder 2026-11")
    page.fill("input[name=pin]", KEEPER_PIN)
    page.click("[data-test=file]")
    assert "filed" in page.inner_text("[data-test=done]")
    assert "cabinet 3" in page.inner_text(f'tr[data-filed="{battery}"]')
    assert actors(svc, AuditKind.GAP_FILED) == [KEEPER]
    screenshot(page, "explanations-keeper-filed-en-1280")
    set_language(page, web_dock, "zh")
    page.goto(url + "/keeper/")
    screenshot(page, "explanations-keeper-filed-zh-1280")


def test_each_page_of_a_step_is_its_roles_only(web_dock, page) -> None:
    """001 art.19(2); 002 art.22: the keeper's page is the keeper's; an officer or a
    supervisor is refused it, and the keeper is refused the supervisor's review."""
    svc = web_dock.svc
    svc.store.add_officer(KEEPER, "Sun Mei", "Records", KEEPER_PIN, role="keeper")
    for who in ("officer", "supervisor"):
        as_person(page, web_dock, who)
        assert page.goto(web_dock.url + "/keeper/").status == 403
        assert page.request.get(web_dock.url + "/api/v1/keeper/gaps").status == 403
    as_person(page, web_dock, KEEPER, KEEPER_PIN)
    assert page.goto(web_dock.url + "/keeper/").status == 200
    assert page.goto(web_dock.url + "/supervisor/gaps").status == 403
    assert page.request.get(web_dock.url + "/api/v1/keeper/gaps").json() == {
        "items": [],
        "filed": [],
    }
