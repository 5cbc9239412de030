"""Chinese pages say in Chinese what the daemon reports in codes or English (issue 12):
the maintenance page's slot states, and the audit viewer's verification reason and detail
line. The daemon's own text is left as it wrote it (the API and the command line show
it); the page translates at display time, from the code where there is one, else from
the known English message (web_status/audit/verdict_words.py)."""

from __future__ import annotations

import re
import sqlite3

from web_status.audit import verdict_words
from web_status.home.messages import MESSAGES as HOME

from .web_harness import login, set_language

STATES_EN = {v["en"] for k, v in HOME.items() if k.startswith("home.state.")}
ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")


def test_a_zh_maintenance_page_names_slot_states_in_chinese(web_dock, page, screenshot) -> None:
    login(page, web_dock, "maintenance")
    set_language(page, web_dock, "zh")
    page.goto(web_dock.url + "/maintenance/")
    cells = page.locator("table.slots td.state")
    shown = [cells.nth(i).inner_text().strip() for i in range(cells.count())]
    codes = [cells.nth(i).get_attribute("data-state") for i in range(cells.count())]
    assert codes == ["ready", "failed_check"]  # one healthy recorder, one low on battery
    assert shown == ["可领用", "检查未通过"]
    assert not STATES_EN & set(shown) and not set(codes) & set(shown)
    screenshot(page, "maintenance-zh-1280")
    set_language(page, web_dock, "en")
    page.goto(web_dock.url + "/maintenance/")
    assert [cells.nth(i).inner_text().strip() for i in range(2)] == ["ready", "failed a check"]
    screenshot(page, "maintenance-en-1280")


def test_a_zh_audit_verdict_says_why_in_chinese(web_dock, page, screenshot) -> None:
    db = sqlite3.connect(web_dock.svc.audit.db_path)  # an old entry changed behind its back
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("UPDATE entries SET actor = 'nobody' WHERE seq = 3")
    db.commit()
    db.close()
    login(page, web_dock, "admin")
    set_language(page, web_dock, "zh")
    page.goto(f"{web_dock.url}/audit/")
    page.click("button.verify")
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-ok") == "false"
    line = verdict.locator(".note-text").inner_text()
    assert "第 3 条" in line and not ENGLISH_WORD.search(line), line
    assert not ENGLISH_WORD.search(verdict.locator("strong").inner_text())
    screenshot(page, "audit-tampered-words-zh-1280")
    # the daemon's words unchanged in English, and in what the API gives
    set_language(page, web_dock, "en")
    page.goto(f"{web_dock.url}/audit/")
    page.click("button.verify")
    assert "entry 3" in page.locator("#verdict .note-text").inner_text()
    screenshot(page, "audit-tampered-words-en-1280")


def test_every_known_detail_reads_in_chinese_with_its_numbers() -> None:
    for en, _zh in verdict_words._DETAILS:
        names = dict.fromkeys(re.findall(r"\{(\w+)\}", en))
        values = {n: str(40 + i) for i, n in enumerate(names)}
        text = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], en)
        said = verdict_words.detail(text, "zh")
        assert not ENGLISH_WORD.search(said), (text, said)
        assert all(v in said for v in values.values()), (text, said)
        assert verdict_words.detail(text, "en") == text
    joined = "entry 7's content does not match its hash; entries 5..9 are not vouched for"
    said = verdict_words.detail(joined, "zh")
    assert said == "第 7 条的内容与其哈希不符；第 5 至 9 条无检查点担保"
    assert verdict_words.detail("something new from the daemon", "zh") == (
        "something new from the daemon"  # not known: shown as written, never guessed
    )
