"""The handover on return at the kiosk (001 art.19(3); 003 art.21(2)), in headless
Chromium against a dock with emulated recorders: a just-docked slot asks who returned
its recorder; a number and PIN on the keypad sign for it (a wrong PIN refused with the
tries left, a return by someone else said as such), or "sign with badge" makes the next
badge read at the dock the signature; the card then says who handed it back. In English
and Chinese. Moments come from the dock's progress (a sweep, a signature, the grid's next
poll); nothing sleeps on the wall clock."""

from __future__ import annotations

from typing import Any

from dock.domain.audit_kinds import AuditKind
from dock.storage.handover_table import HandoverTable

from .test_web_kiosk import card, enter, kinds, open_kiosk, shoot

PIN = "246810"


def out_and_back(web: Any, rec: Any, start_recorder: Any, officer: str) -> Any:
    """``officer`` takes the recorder on patrol, records, and docks it again; the new
    running recorder (same flash) is returned."""
    assert web.svc.checkout(officer, PIN).granted
    port = rec.url.rsplit(":", 1)[1]
    rec.server.stop()
    web.svc.sweep()
    rec.model._generate_recordings(2, 40_000, 0)
    rec.model.save()
    back = start_recorder(listen=f"tcp://127.0.0.1:{port}", data_dir=rec.data_dir)
    web.svc.sweep()  # the return: custody closed, handover asked for, footage offloaded
    web.svc.wait_offloads(timeout=60)
    assert web.svc.store.open_custody_of_officer(officer) is None
    return back


def test_the_kiosk_asks_who_returned_the_recorder_and_records_a_return_by_another(
    make_web_dock, start_recorder, page, screenshot
):
    """001 art.19(3): the handover signed at the kiosk's keypad (the check-out's PIN
    lockout: a wrong PIN says the tries left); 003 art.21(2): Li Na signing for Wang
    Wei's recorder is recorded as a return by someone else and said so in large type."""
    web = make_web_dock({"serial": "EMU0001"})
    out_and_back(web, web.recorders[0], start_recorder, "1001")
    open_kiosk(page, web, "en")
    ask = card(page, "1").locator(".slot-handover")
    ask.wait_for()
    assert ask.locator(".slot-handover-ask").inner_text() == "Who returned it? Sign the handover"
    shoot(page, screenshot, "handover-ask-en")

    card(page, "1").locator("button.handover-pin").click()
    assert page.locator("#prompt").inner_text() == "Slot 1: who returned it? Your number, then PIN"
    enter(page, "1002", "000000")
    page.wait_for_selector("#panel[data-outcome='refused']")
    assert page.locator("#decision-title").inner_text() == "Not signed"
    lines = page.locator("#decision-lines li").all_inner_texts()
    assert lines == ["Wrong number or PIN: 4 tries left"]
    shoot(page, screenshot, "handover-wrong-pin-en")
    page.click("#decision")

    card(page, "1").locator("button.handover-pin").click()
    enter(page, "1002", PIN)
    page.wait_for_selector("#panel[data-outcome='signed-other']")
    assert page.locator("#decision-title").inner_text() == "Handover signed: slot 1"
    assert page.locator("#decision-lines li").all_inner_texts() == [
        "Recorder EMU0001 handed back by Li Na",
        "Not its holder Wang Wei: recorded and shown to the supervisor",
    ]
    assert PIN not in page.content()
    shoot(page, screenshot, "handover-by-other-en")
    page.wait_for_selector("#slots .slot-card[data-slot='1']:not(:has(.slot-handover))")
    assert "Handed back by Li Na, not its holder Wang Wei" in card(page, "1").inner_text()
    (flag,) = kinds(web, AuditKind.HANDOVER_BY_OTHER)
    assert flag.actor == "1002" and flag.data["custodian"] == "1001" and flag.data["how"] == "pin"
    (row,) = HandoverTable(web.svc.store).entries()
    assert row["returned_by"] == "1002" and row["by_custodian"] == 0


def test_in_chinese_the_badge_at_the_dock_signs_after_the_kiosk_asks(
    make_web_dock, start_recorder, page, screenshot
):
    """001 art.19(3): "sign with badge" on the card, then the badge read at the dock's
    reader is the signature (the custodian's here), shown in large type in Chinese; a
    number and PIN on the keypad sign the next return, also in Chinese."""
    web = make_web_dock({"serial": "EMU0001"})
    web.svc.store.add_officer("1003", "陈宇", "Traffic 3", PIN, badge="B-1003")
    rec = out_and_back(web, web.recorders[0], start_recorder, "1003")
    open_kiosk(page, web, "zh")
    ask = card(page, "1").locator(".slot-handover")
    ask.wait_for()
    assert ask.locator(".slot-handover-ask").inner_text() == "谁归还的？请签收移交"
    shoot(page, screenshot, "handover-ask-zh")
    card(page, "1").locator("button.handover-badge").click()
    page.wait_for_selector("#panel[data-outcome='swipe']")
    assert page.locator("#decision-title").inner_text() == "1 号槽位：请现在在读卡器上刷卡"
    shoot(page, screenshot, "handover-swipe-zh")

    signed = web.svc.badge_read("B-1003")  # dock run's badge thread
    assert signed.how == "badge" and signed.by_custodian is True
    page.wait_for_selector("#panel[data-outcome='signed']")
    assert page.locator("#decision-title").inner_text() == "1 号槽位已签收移交"
    assert page.locator("#decision-lines li").all_inner_texts() == ["记录仪 EMU0001 由 陈宇 交回"]
    assert "B-1003" not in page.content()
    shoot(page, screenshot, "handover-badge-signed-zh")
    page.wait_for_selector("#slots .slot-card[data-slot='1']:not(:has(.slot-handover))")
    assert "由 陈宇 交回" in card(page, "1").inner_text()
    (entry,) = kinds(web, AuditKind.HANDOVER)
    assert entry.actor == "1003" and entry.data["how"] == "badge"

    out_and_back(web, rec, start_recorder, "1003")  # the next shift's return
    page.click("#decision")
    card(page, "1").locator("button.handover-pin").wait_for()
    card(page, "1").locator("button.handover-pin").click()
    assert page.locator("#prompt").inner_text() == "1 号槽位：谁归还的？请输入警号和密码"
    enter(page, "1003", PIN)
    page.wait_for_selector("#panel[data-outcome='signed']")
    assert page.locator("#decision-lines li").all_inner_texts() == ["记录仪 EMU0001 由 陈宇 交回"]
    shoot(page, screenshot, "handover-pin-signed-zh")
    assert [e.data["how"] for e in kinds(web, AuditKind.HANDOVER)] == ["badge", "pin"]


def test_the_custody_views_show_who_handed_each_recorder_back(
    make_web_dock, start_recorder, page, screenshot
):
    """001 art.19(3), 003 art.21(2): the officer's returns and the supervisor's custody
    chain say who handed the recorder back and how, a return by someone else marked as
    such, and one nobody signed for as unsigned; the supervisor's first page lists both
    to look at; in English and Chinese."""
    from .web_harness import login, set_language

    web = make_web_dock({"serial": "EMU0001"})
    rec = out_and_back(web, web.recorders[0], start_recorder, "1001")
    assert web.svc.sign_handover("1", "1002", PIN)["by_custodian"] is False
    out_and_back(web, rec, start_recorder, "1001")
    web.svc.handovers.register.expire(now=web.svc.store.clock() + 10**6)  # nobody signed

    login(page, web, "officer")
    set_language(page, web, "en")
    page.goto(web.url + "/officer/")
    cells = page.locator("#returns td.handed-back").all_inner_texts()
    assert cells == ["not signed for", "Li Na 1002 (PIN), not the holder"]  # newest first
    shoot(page, screenshot, "officer-returns-handover-en")

    page.context.clear_cookies()  # the next person at the desk
    login(page, web, "supervisor")
    set_language(page, web, "zh")
    page.goto(web.url + "/supervisor/chain?serial=EMU0001")
    cells = page.locator("td.handed-back").all_inner_texts()
    assert cells == ["Li Na 1002（密码），非领用人", "未签收"]  # oldest first
    screenshot(page, "supervisor-chain-handover-zh")
    page.goto(web.url + "/supervisor/")  # the supervisor's first page lists both
    assert page.locator("#handovers h2").inner_text() == "需关注的归还：非领用人交回或未签收"
    cells = page.locator("#handovers td.handed-back").all_inner_texts()
    assert cells == ["未签收", "Li Na 1002（密码），非领用人"]  # newest first
    screenshot(page, "supervisor-index-handovers-zh")
