"""Cases and the records of one party together (一户式: 000 §14.2; 003 art.14): the case
files (number, cause, party, open or closed) and, searched by party, that party's cases,
the recordings filed under them and the explanation items of those recordings, in one
view. Read from the dock database (``dock.services.cases``), as the other pages read;
nothing here changes the dock. The party is text a person typed: bounded, escaped where
shown (autoescape), compared as a value, never part of a path."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from dock.domain.roles import KEEPER, OVERSIGHT, SUPERVISOR
from dock.services import cases
from dock.services.cases import CASE_TEXT_MAX
from dock.services.errors import RequestError
from web_status import i18n
from web_status.auth import dock, require_role
from web_status.home.views import AREAS
from web_status.officer.acting import Problem, text
from web_status.supervisor import bp

#: Who may see every case file and a party's records: those who keep and oversee them.
READERS = (SUPERVISOR, KEEPER, OVERSIGHT)


@bp.get("/cases")
@require_role(*READERS)
def cases_page() -> tuple[str, int]:
    store = dock().store
    typed = request.args.get("party", "")
    found: dict[str, Any] | None = None
    problem, status = None, 200
    if typed.strip():
        try:
            name = text(request.args, "party", "cases.party", limit=CASE_TEXT_MAX)
            found = cases.party_in(store, name)
        except Problem as p:
            problem, status = p.message, p.status
        except RequestError:  # not printable: the same one line as too long
            problem, status = i18n.t("cases.err.party", limit=CASE_TEXT_MAX), 400
    page = render_template(
        "supervisor/cases.html", files=cases.files(store), found=found, problem=problem,
        typed=typed[:CASE_TEXT_MAX], limit=CASE_TEXT_MAX,
    )  # fmt: skip
    return page, status


MESSAGES: dict[str, dict[str, str]] = {
    "cases.title": {"en": "Cases", "zh": "案件"},
    "cases.hint": {
        "en": "Every case file, and the records of one party subject to enforcement kept "
        "together across its cases: its cases, the recordings filed under them and their "
        "explanation items.",
        "zh": "全部案件，以及同一执法对象在各案件中的记录一户式集中查看：其案件、"
        "归入案件的录像及相关说明事项。",
    },
    "cases.all": {"en": "Case files", "zh": "案件列表"},
    "cases.none": {"en": "No case file yet.", "zh": "暂无案件。"},
    "cases.number": {"en": "Case", "zh": "案件编号"},
    "cases.cause": {"en": "Cause", "zh": "案由"},
    "cases.party": {"en": "Party", "zh": "执法对象"},
    "cases.state": {"en": "State", "zh": "状态"},
    "cases.opened": {"en": "Opened", "zh": "立案"},
    "cases.closed": {"en": "Closed", "zh": "结案"},
    "cases.state.open": {"en": "open", "zh": "未结"},
    "cases.state.closed": {"en": "closed", "zh": "已结"},
    "cases.search": {"en": "Records of one party", "zh": "执法对象记录（一户式）"},
    "cases.find": {"en": "Show", "zh": "查询"},
    "cases.of_party": {
        "en": "{party}: {cases} case(s), {recordings} recording(s), {items} explanation item(s)",
        "zh": "{party}：{cases} 个案件，{recordings} 条录像，{items} 个说明事项",
    },
    "cases.nothing": {"en": "No case of this party.", "zh": "该执法对象没有案件。"},
    "cases.recordings": {"en": "Recordings", "zh": "录像"},
    "cases.no_recordings": {"en": "No recording filed.", "zh": "没有归入的录像。"},
    "cases.serial": {"en": "Recorder", "zh": "记录仪"},
    "cases.recording": {"en": "Recording", "zh": "录像编号"},
    "cases.officer": {"en": "Officer", "zh": "民警"},
    "cases.times": {"en": "Recorded", "zh": "录制时间"},
    "cases.archived": {"en": "Archived as", "zh": "归档文件名"},
    "cases.explanations": {"en": "Explanation items", "zh": "说明事项"},
    "cases.no_explanations": {"en": "No explanation item.", "zh": "没有说明事项。"},
    "cases.item": {"en": "Item", "zh": "事项"},
    "cases.kind": {"en": "What", "zh": "情况"},
    "cases.item_state": {"en": "Explanation", "zh": "说明"},
    "cases.item.open": {"en": "waiting", "zh": "待说明"},
    "cases.err.party": {
        "en": "The party must be printable text of at most {limit} characters.",
        "zh": "执法对象须为不超过 {limit} 个字符的可打印文本。",
    },
}
i18n.register(MESSAGES, "web_status.supervisor.cases")

#: The keeper's and the oversight body's start pages link here (a supervisor reaches it
#: from their pages' menu).
if not any(a[0] == "supervisor.cases_page" for a in AREAS):
    AREAS.append(("supervisor.cases_page", "cases.title", (KEEPER, OVERSIGHT)))
