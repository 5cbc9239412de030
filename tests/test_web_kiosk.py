"""The kiosk (issue 12), in headless Chromium against a dock with emulated recorders:
check-out on the keypad, refusals with their reasons, the return's "footage safe",
a grant that expires and one cancelled, and the kiosk refused elsewhere than the dock.
Moments come from the dock's progress (a sweep, a decision, the grid's next poll), and
the grant's age from a clock the test drives; nothing sleeps on the wall clock."""

from __future__ import annotations

import dataclasses
from typing import Any

from dock.domain.audit_kinds import AuditKind

from .web_harness import DESKTOP, KIOSK, set_language

PIN = "246810"


class StoreClock:
    """The clock the dock's database stamps grants with, driven by the test."""

    def __init__(self) -> None:
        import time

        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def shoot(page: Any, screenshot: Any, name: str) -> None:
    """The page at the kiosk's size and a desktop's (back to the kiosk's after)."""
    for size, label in ((DESKTOP, "1280x800"), (KIOSK, "800x480")):
        page.set_viewport_size(size)
        screenshot(page, f"kiosk-{name}-{label}")


def open_kiosk(page: Any, web: Any, lang: str) -> None:
    page.set_viewport_size(KIOSK)
    set_language(page, web, lang)
    page.goto(web.url + "/kiosk")
    page.wait_for_selector("#slots .slot-card")


def keypad(page: Any, digits: str) -> None:
    for d in digits:
        page.click(f"#keypad .key[data-key='{d}']")


def enter(page: Any, number: str, pin: str) -> None:
    """The number on the on-screen keypad, the PIN on a keyboard (both work)."""
    keypad(page, number)
    page.click("#ok")
    page.keyboard.type(pin)
    page.keyboard.press("Enter")


def card(page: Any, slot: str) -> Any:
    return page.locator(f"#slots .slot-card[data-slot='{slot}']")


def kinds(web: Any, kind: AuditKind) -> list[Any]:
    return [e for e in web.svc.audit.entries() if e.kind == kind]


def test_pin_on_the_keypad_grants_the_slot_and_the_grid_follows_the_take(
    web_dock, page, screenshot
):
    """003 art.21(2): a PIN on the kiosk grants the named officer a slot, and the grid follows
    the take."""
    open_kiosk(page, web_dock, "en")
    assert page.locator("#prompt").inner_text() == "Swipe your badge or enter your number"
    shoot(page, screenshot, "idle-en")
    keypad(page, "1001")
    page.click("#ok")
    page.keyboard.type("2468")
    assert page.locator("#entry-value").inner_text() == "••••"  # the PIN never shown
    shoot(page, screenshot, "keypad-en")
    page.keyboard.type("10")
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel[data-outcome='granted']")
    assert page.locator("#decision-title").inner_text() == "Take slot 1"
    assert "EMU0001 for Wang Wei" in page.locator("#decision-lines").inner_text()
    page.wait_for_selector("#slots .slot-card.take[data-slot='1']")  # highlighted
    assert "For Wang Wei" in card(page, "1").inner_text()
    assert PIN not in page.content()  # nothing of the PIN stays in the page
    shoot(page, screenshot, "granted-en")
    (entry,) = kinds(web_dock, AuditKind.CHECKOUT)
    assert entry.actor == "1001"  # the officer the daemon identified

    web_dock.recorders[0].server.stop()  # the officer takes the recorder
    web_dock.svc.sweep()
    page.wait_for_selector("#slots .slot-card[data-slot='1'][data-state='empty']")
    text = card(page, "1").inner_text()
    assert "Checked out" in text and "Out with Wang Wei" in text and "EMU0001" in text


def test_refused_with_every_reason_in_the_docks_language(web_dock, page, screenshot):
    """003 art.5; 004 att.3 art.10; 000 §14.1: a refused check-out shows every failing check's
    reason on the kiosk."""
    open_kiosk(page, web_dock, "zh")
    enter(page, "1002", "000000")
    page.wait_for_selector("#panel[data-outcome='refused']")
    assert page.locator("#decision-title").inner_text() == "未能领用"
    assert "警号或密码错误" in page.locator("#decision-lines").inner_text()
    shoot(page, screenshot, "refused-zh")

    web_dock.svc.locale = "en"  # a dock whose language is English
    web_dock.svc.store.open_custody("EMU0002", "1001", "2")  # 1001 already holds one
    open_kiosk(page, web_dock, "en")
    enter(page, "1001", PIN)
    page.wait_for_selector("#panel[data-outcome='refused']")
    assert page.locator("#decision-title").inner_text() == "Not granted"
    assert page.locator("#decision-lines li").all_inner_texts() == ["Already holds EMU0002"]
    shoot(page, screenshot, "refused-en")
    codes = [e.data["reasons"] for e in kinds(web_dock, AuditKind.CHECKOUT_REFUSED)]
    assert codes == [["officer_unknown"], ["officer_has_device"]]


def test_a_return_with_footage_says_footage_safe_with_the_officers_name(
    make_web_dock, start_recorder, page, screenshot
):
    web = make_web_dock({"serial": "EMU0001"})
    assert web.svc.checkout("1001", PIN).granted
    rec = web.recorders[0]
    port = rec.url.rsplit(":", 1)[1]
    rec.server.stop()  # taken out on patrol ...
    web.svc.sweep()
    rec.model._generate_recordings(3, 40_000, 0)  # ... recorded on shift ...
    rec.model.save()
    start_recorder(listen=f"tcp://127.0.0.1:{port}", data_dir=rec.data_dir)  # ... back
    web.svc.sweep()  # the return: custody closed, footage offloaded and verified
    for lang, words in (("en", "Wang Wei: Footage safe: 3 recordings verified, you may go"),
                        ("zh", "Wang Wei：录像已安全保存：3 段已校验，您可以离开")):  # fmt: skip
        open_kiosk(page, web, lang)
        notice = card(page, "1").locator(".slot-notice.safe")
        notice.wait_for()
        assert notice.inner_text() == words
        shoot(page, screenshot, f"return-{lang}")


def test_a_grant_expires_and_an_officer_cancels_theirs(web_dock, page, screenshot):
    clock = StoreClock()
    web_dock.svc.store._clock = clock  # grants are stamped, and aged, on this clock
    open_kiosk(page, web_dock, "zh")
    shoot(page, screenshot, "idle-zh")
    keypad(page, "1001")
    page.click("#ok")
    keypad(page, "2468")
    shoot(page, screenshot, "keypad-zh")
    keypad(page, "10")
    page.click("#ok")
    page.wait_for_selector("#panel[data-outcome='granted']")
    assert page.locator("#decision-title").inner_text() == "请取 1 号槽位"
    page.wait_for_selector("#slots .slot-card.take[data-slot='1']")
    shoot(page, screenshot, "granted-zh")

    clock.t += web_dock.svc.grant_expiry_s + 1  # not picked up in time
    web_dock.svc.sweep()
    page.wait_for_selector("#slots .slot-card[data-slot='1'][data-state='ready']:not(.take)")
    (expired,) = kinds(web_dock, AuditKind.GRANT_EXPIRED)
    assert expired.actor == "dock" and expired.data["officer"] == "1001"

    page.click("#decision")  # back to the keypad
    enter(page, "1001", PIN)
    page.wait_for_selector("#panel[data-outcome='granted']")
    page.click("#decision")
    page.click("#mode")
    assert page.locator("#prompt").inner_text() == "取消领用：请输入警号和密码"
    enter(page, "1001", PIN)
    page.wait_for_selector("#panel[data-outcome='cancelled']")
    assert page.locator("#decision-title").inner_text() == "已取消 1 号槽位的领用"
    (cancelled,) = kinds(web_dock, AuditKind.GRANT_CANCELLED)
    assert cancelled.actor == "1001"
    page.wait_for_selector("#slots .slot-card[data-slot='1'][data-state='ready']:not(.take)")
    assert web_dock.svc.store.open_custody_of_officer("1001") is None


def test_the_kiosk_answers_only_the_docks_own_addresses(make_web_dock):
    web = make_web_dock({"serial": "EMU0001"}, serve=False)
    client = web.app.test_client()
    assert client.get("/kiosk").status_code == 200  # the test client is 127.0.0.1
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    page = client.get("/kiosk", environ_base=elsewhere)
    assert page.status_code == 403 and b"Traceback" not in page.data
    assert client.get("/kiosk/slots", environ_base=elsewhere).status_code == 403
    with client.session_transaction() as s:
        s["csrf"] = "t" * 43
    answer = client.post(
        "/kiosk/checkout",
        json={"officer": "1001", "pin": PIN},
        headers={"X-CSRF-Token": "t" * 43},
        environ_base=elsewhere,
    )
    assert answer.status_code == 403
    assert kinds(web, AuditKind.CHECKOUT) == []  # nothing reached the daemon
    bad = client.post(
        "/kiosk/checkout", json={"officer": "<b>1001</b>", "pin": PIN},
        headers={"X-CSRF-Token": "t" * 43},
    )  # fmt: skip
    assert bad.status_code == 400  # digits only, said in one line
    said = bad.get_json()["error"]
    assert said in ("Enter digits only: a number and a PIN.", "只能输入数字：警号和密码。")
    narrowed = dataclasses.replace(web.cfg.web, kiosk_allowed_from=("10.0.0.9",))
    web.app.extensions["dock_config"] = dataclasses.replace(web.cfg, web=narrowed)
    assert client.get("/kiosk").status_code == 403  # 127.0.0.1 no longer listed


class DaemonClock:
    """The daemon's clock (``svc.clock``: status times, a badge decision's age, a return
    notice's), moved forward by the test; otherwise the dock's own."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ahead = 0.0

    def now(self) -> float:
        return float(self.inner.now()) + self.ahead

    def synchronised(self) -> tuple[bool, str]:
        return self.inner.synchronised()  # type: ignore[no-any-return]


def next_poll(page: Any) -> None:
    """Wait until the grid has been polled again (what the page shows is then current)."""
    before = page.locator("#slots").get_attribute("data-polled")
    page.wait_for_function(
        "b => document.getElementById('slots').getAttribute('data-polled') !== b", arg=before
    )


def test_a_badge_read_at_the_dock_shows_its_decision_without_a_key_pressed(
    web_dock, page, screenshot
):
    """The daemon's badge path (``dock run``'s badge thread calls ``svc.badge_read``):
    the open kiosk shows the grant, then every refusal reason in the dock's language,
    each once, for the time a keypad decision stays; never the badge, never after."""
    import pathlib
    import re

    import web_status
    from dock.daemon.badge_reads import BADGE_DECISION_S

    script = (pathlib.Path(web_status.__file__).parent / "static" / "kiosk.js").read_text("utf-8")
    (ms,) = re.findall(r"DECISION_MS = (\d+);", script)
    assert int(ms) == BADGE_DECISION_S * 1000  # as long as a keypad decision shows

    svc = web_dock.svc
    clock = DaemonClock(svc.clock)
    svc.clock = clock
    svc.store.add_officer("1003", "Zhou Jie", "Traffic 3", "135790", badge="B-7731003")
    svc.store.add_officer("1004", "Wu Fang", "Traffic 3", "135790", badge="B-7731004")
    open_kiosk(page, web_dock, "en")
    assert page.locator("#decision").is_hidden()

    assert svc.badge_read("B-7731003").granted  # swiped at the dock
    page.wait_for_selector("#panel[data-outcome='granted']")
    assert page.locator("#decision-title").inner_text() == "Take slot 1"
    assert page.locator("#decision-lines li").all_inner_texts() == ["Recorder EMU0001 for Zhou Jie"]
    page.wait_for_selector("#slots .slot-card.take[data-slot='1']")
    shoot(page, screenshot, "badge-granted-en")
    open_kiosk(page, web_dock, "zh")  # a page opened meanwhile shows it too, worded for it
    page.wait_for_selector("#panel[data-outcome='granted']")
    assert page.locator("#decision-title").inner_text() == "请取 1 号槽位"
    assert "记录仪 EMU0001，领用人 Zhou Jie" in page.locator("#decision-lines").inner_text()
    shoot(page, screenshot, "badge-granted-zh")
    clock.ahead += BADGE_DECISION_S  # its time is up: gone without a touch
    page.wait_for_selector("#decision", state="hidden")
    assert page.locator("#prompt").inner_text() == "请刷卡或输入警号"
    assert svc.badge_decision is None

    open_kiosk(page, web_dock, "zh")  # a dock in Chinese, the page too
    assert not svc.badge_read("B-7731004").granted  # slot 1 granted, slot 2 low
    page.wait_for_selector("#panel[data-outcome='refused']")
    assert page.locator("#decision-title").inner_text() == "未能领用"
    reasons = page.locator("#decision-lines li").all_inner_texts()
    assert reasons[0] == "无可用设备" and len(reasons) >= 2
    assert all(r.startswith("2: ") for r in reasons[1:]), reasons  # every failed check
    shoot(page, screenshot, "badge-refused-zh")
    page.click("#decision")  # dismissed: not shown again by the next polls
    next_poll(page)
    next_poll(page)
    assert page.locator("#decision").is_hidden()

    assert not svc.badge_read("B-0000000").granted  # a badge that names no one
    page.wait_for_selector("#panel[data-outcome='refused']")
    assert page.locator("#decision-lines li").all_inner_texts() == ["身份无法识别"]
    assert "B-0000000" not in page.content()
    assert "B-0000000" not in str(svc.badge_decision)

    svc.locale = "en"
    open_kiosk(page, web_dock, "en")
    assert not svc.badge_read("B-7731003").granted
    page.wait_for_selector("#decision-lines li:text('Already holds EMU0001')")
    assert page.locator("#decision-title").inner_text() == "Not granted"
    shoot(page, screenshot, "badge-refused-en")
    clock.ahead += BADGE_DECISION_S
    page.wait_for_selector("#decision", state="hidden")
    svc.checkout("1001", PIN)  # a decision by number and PIN is not a badge's
    assert svc.badge_decision is None
    page.reload()  # a later visitor sees none of it
    page.wait_for_selector("#slots .slot-card")
    next_poll(page)
    assert page.locator("#decision").is_hidden()
    assert "Already holds" not in page.content()  # the grid still says whose grant waits


def test_a_return_with_no_footage_says_so_with_the_officers_name(
    make_web_dock, start_recorder, page, screenshot
):
    from web_status.kiosk.views import RETURN_NOTICE_S

    web = make_web_dock({"serial": "EMU0001"})
    clock = DaemonClock(web.svc.clock)
    web.svc.clock = clock
    assert web.svc.checkout("1001", PIN).granted
    rec = web.recorders[0]
    port = rec.url.rsplit(":", 1)[1]
    rec.server.stop()  # taken out on patrol, nothing recorded ...
    web.svc.sweep()
    start_recorder(listen=f"tcp://127.0.0.1:{port}", data_dir=rec.data_dir)  # ... back
    web.svc.sweep()  # the return: custody closed, nothing to offload
    assert web.svc.store.open_custody_of_officer("1001") is None
    for lang, words in (("en", "Wang Wei: Returned: no new footage, you may go"),
                        ("zh", "Wang Wei：已归还：没有新录像，您可以离开")):  # fmt: skip
        open_kiosk(page, web, lang)
        notice = card(page, "1").locator(".slot-notice.safe")
        notice.wait_for()
        assert notice.inner_text() == words
        shoot(page, screenshot, f"return-nothing-{lang}")
    clock.ahead += RETURN_NOTICE_S + 1  # as long as "footage safe", then gone
    page.wait_for_selector("#slots .slot-card[data-slot='1']:not(.notice)")
    assert "Wang Wei" not in card(page, "1").inner_text()
