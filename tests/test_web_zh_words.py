"""Chinese pages say in Chinese what the daemon reports in codes or English (issue 12):
the maintenance page's slot states, and the audit viewer's verification reason and detail
line. The daemon's own text is left as it wrote it (the API and the command line show
it); the page translates at display time, from the code where there is one, else from
the known English message (web_status/daemon_words.py, web_status/audit/verdict_words.py):
the services' refusals on the officer's and supervisor's pages, each audit kind's name in
the audit viewer and the maintenance faults, the reasons of a purge run."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

from dock.domain.audit_kinds import AuditKind
from web_status import daemon_words, i18n
from web_status.audit import verdict_words
from web_status.audit.messages import MESSAGES as AUDIT
from web_status.home.messages import MESSAGES as HOME

from .test_web_supervisor import SUP, SUP_PIN, archive_one
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


# --------------------------------------------------------------------------------------
# The services' refusals, the audit kinds and the purge reasons (web_status/daemon_words.py)

CJK = re.compile(r"[\u4e00-\u9fff]")
#: Where the daemon's refusals are written: every message raised there must have words.
DOCK = Path(__file__).resolve().parents[1] / "dock"
REFUSING = [
    *sorted(p for p in (DOCK / "services").glob("*.py") if p.name != "daemon_link.py"),
    *(
        DOCK / "evidence" / f"{name}.py"
        for name in ("holds", "gaps", "access", "purging", "working_copies", "export", "appraisals")
    ),
    DOCK / "storage" / "pins.py",
]
#: What a formatted part says where a number will not do: purge_state's words
#: (dock/evidence/purge_records.py), the roles a PIN check wants (dock/storage/pins.py).
STAND_INS = {"gone": "was already purged", "' or '.join(roles)": "supervisor"}
#: The errors that come back to a page as a refusal (dock/daemon/web_handlers.py).
REFUSAL_ERRORS = ("RequestError", "Refused", "HoldError", "GapError", "AccessError", "ValueError")


def _filled(english: str) -> tuple[str, dict[str, str]]:
    names = dict.fromkeys(re.findall(r"\{(\w+)\}", english))
    values = {n: f"{40 + i}" for i, n in enumerate(names)}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], english), values


def _message(node: ast.expr) -> str | None:
    """The text a raise writes, its formatted parts as stand-ins; None when it is not
    written there (``str(exc)``, a reason made elsewhere)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for i, part in enumerate(node.values):
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            elif isinstance(part, ast.FormattedValue):
                name = ast.unparse(part.value)
                out.append(STAND_INS.get(name, f"{70 + i}"))
        return "".join(out)
    return None


def _refusals_in_the_code() -> list[tuple[str, str]]:
    found = []
    for path in REFUSING:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            said: ast.expr | None = None
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                func = ast.unparse(node.exc.func)
                if func.endswith(REFUSAL_ERRORS):
                    said = node.exc.args[0]
            elif isinstance(node, ast.Call) and node.args:
                func = ast.unparse(node.func)
                if func.endswith(("refuse", "deny")):
                    said = node.args[-1]
                elif func == "Authorised" and len(node.args) >= 3:
                    said = node.args[2]
            elif isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "why":
                said = node.value
            text = _message(said) if said is not None else None
            if text is not None:
                found.append((f"{path.name}:{node.lineno}", text))
    return found


def test_every_refusal_the_services_write_has_chinese_words() -> None:
    found = _refusals_in_the_code()
    assert len(found) > 80  # the walk finds them (the raises, the reasons, the PIN checks)
    untranslated = [
        (where, text) for where, text in found if daemon_words.refusal(text, "zh") == text
    ]
    assert not untranslated, "give these refusals their words in web_status/daemon_words.py"


def test_each_known_refusal_reads_in_chinese_with_its_numbers() -> None:
    for en, zh in daemon_words.REFUSALS.pairs:
        text, values = _filled(en)
        said = daemon_words.refusal(text, "zh")
        assert said == re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], zh), (en, said)
        assert CJK.search(said) and all(v in said for v in values.values()), (text, said)
        assert daemon_words.refusal(text, "en") == text
    # the ones a person meets most, whole, as the daemon writes them
    for english, chinese in (
        ("the two supervisors must be two different people", "两名主管必须是不同的两个人"),
        ("9001: wrong ID/PIN (2 left)", "9001：警号或密码错误（还可尝试 2 次）"),
        ("PIN of 1001 locked: ask a supervisor", "1001 的密码已锁定：请联系主管解锁"),
        ("release refused: unknown supervisor or wrong PIN", "解除被拒绝：主管未知或密码错误"),
        ("release refused: 1001 is not a supervisor", "解除被拒绝：1001 不是主管"),
        ("hold 12 was already released", "保全 12 已被解除"),
        ("request 7 is pending", "申请 7 的状态为“待审批”"),
        ("item 3 is reviewed and waiting to be filed: a supervisor reviews only an item "
         "with the officer's account; no explanation item 5; nothing was done",
         "事项 3 已审核，等待归档：主管只审核已有民警陈述的事项；没有待说明事项 5；未执行任何操作"),
        ("recording EMU0001/REC000001 was already purged", "录像 EMU0001/REC000001 已被清除"),
    ):  # fmt: skip
        assert daemon_words.refusal(english, "zh") == chinese
    for unknown in ("something new from the daemon", "release refused: a reason not known"):
        assert daemon_words.refusal(unknown, "en") == unknown
    assert daemon_words.refusal("something new from the daemon", "zh") == (
        "something new from the daemon"
    )
    # a known frame around a reason not known: the frame in Chinese, the reason as written
    assert daemon_words.refusal("release refused: a reason not known", "zh") == (
        "解除被拒绝：a reason not known"
    )


def test_every_audit_kind_has_its_name_in_both_languages() -> None:
    i18n.register(AUDIT, "web_status.audit")
    for kind in AuditKind:
        texts = AUDIT.get(f"audit.kind.{kind.value}")
        assert texts and texts.get("en") and texts.get("zh"), f"{kind.value} has no words"
        assert CJK.search(texts["zh"]) and not CJK.search(texts["en"]), kind.value
        assert daemon_words.kind_label(kind.value, "zh") == texts["zh"]
        assert daemon_words.kind_label(kind, "en") == texts["en"]
    assert daemon_words.kind_label("a_kind_of_an_old_log", "zh") == "a_kind_of_an_old_log"


def test_purge_reasons_read_in_chinese_with_their_dates_and_names() -> None:
    for english, chinese in (
        ("retention: 90 days run until 2027-01-01T00:00:00Z",
         "保存期：90 天，至 2027-01-01T00:00:00Z"),
        ("retention: 3650 days (long_term) run until 2036-01-01T00:00:00Z",
         "保存期：3650 天（long_term），至 2036-01-01T00:00:00Z"),
        ("hold: evidence_case 'C-1' on case C-1 placed by 9001, permanent; "
         "retention: 90 days run until 2027-01-01T00:00:00Z",
         "保全：案件证据 'C-1'（案件 C-1），由 9001 设立，永久；"
         "保存期：90 天，至 2027-01-01T00:00:00Z"),
        ("hold: complaint 'X 2' on officer 1001 from 2026-01-01T00:00:00Z placed by 9001, "
         "until 2027-01-01T00:00:00Z",
         "保全：投诉 'X 2'（民警 1001，自 2026-01-01T00:00:00Z 起），由 9001 设立，"
         "至 2027-01-01T00:00:00Z"),
        ("purge: retention ended, no active hold since 2026-01-01T00:00:00Z",
         "可清除：保存期已满，自 2026-01-01T00:00:00Z 起无有效保全"),
        ("unsealed: in no sealed package yet (sealed at the next offload)",
         "未封存：尚未封入封存包（下次导出时封存）"),
        ("invalid: hold petition 'P' on episode 4 released without a reason",
         "无效：保全 信访 'P'（领用记录 4）被解除但没有理由"),
        ("invalid: case closed in the future (2030-01-01T00:00:00Z); nothing of it purged",
         "无效：结案时间在将来（2030-01-01T00:00:00Z）；其中未清除任何录像"),
    ):  # fmt: skip
        assert daemon_words.purge_reason(english, "zh") == chinese
        assert daemon_words.purge_reason(english, "en") == english
    assert daemon_words.purge_reason("keep: a reason not known", "zh") == "keep: a reason not known"


def test_a_supervisors_refusal_and_the_audit_kind_read_in_chinese(
    web_dock, page, screenshot
) -> None:
    svc, url = web_dock.svc, web_dock.url
    archive_one(svc)
    login(page, web_dock, "supervisor")
    set_language(page, web_dock, "zh")
    page.goto(url + "/supervisor/purge")
    page.click("form[action$='/purge/preview'] button")
    reason = page.locator("[data-test=purge-result] td.reason").first
    english = reason.get_attribute("title") or ""
    assert ENGLISH_WORD.search(english) and CJK.search(reason.inner_text()), english
    # the same supervisor twice: the daemon refuses (in English, audited so); the page in zh
    page.fill("input[name=pin]", SUP_PIN)
    page.fill("input[name=second]", SUP)
    page.fill("input[name=second_pin]", SUP_PIN)
    page.click("button.danger")
    problem = page.inner_text("[data-test=problem]")
    assert problem == "被拒绝：两名主管必须是不同的两个人", problem
    screenshot(page, "supervisor-purge-refused-zh-1280")
    refused = [e for e in svc.audit.entries() if e.kind == AuditKind.PURGE_REFUSED]
    assert [e.data["why"] for e in refused] == ["the two supervisors must be two different people"]
    # the audit viewer names the kind in Chinese, the stored kind as its title
    page.goto(url + "/audit/?kind=purge_refused")
    cell = page.locator("tr.entry td.kind").first
    assert cell.inner_text().strip() == "清除被拒绝"
    assert cell.get_attribute("title") == "purge_refused"
    screenshot(page, "audit-kinds-zh-1280")
