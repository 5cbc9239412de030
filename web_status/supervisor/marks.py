"""Confidentiality marks (issue 17; 002 art.26, 003 art.20, 001 art.17(3)): a supervisor or
the keeper marks recordings or a case confidential with a category and a reason, on their
own PIN; only a supervisor releases a mark. Each is a daemon request as the person
(``access.mark``, ``access.unmark``): the daemon checks the PIN and role and audits it.
Marked recordings narrow access everywhere else (the daemon's rules, not this page's)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import render_template

from dock.domain.roles import KEEPER, SUPERVISOR
from dock.services import access
from web_status import i18n
from web_status.auth import dock, person, require_role
from web_status.i18n import t
from web_status.officer.acting import FIELD_MAX, Problem, act, form_or_json, pin, text
from web_status.supervisor import bp

_RECORDING = re.compile(r"^[^\s:/]{1,64}[:/][^\s:/]{1,128}$")
REASON_MAX = 500


def mark(fields: Mapping[str, Any]) -> Any:
    category = text(fields, "category", "marks.category")
    if category not in access.CATEGORIES:
        raise Problem(t("marks.err.choice"))
    raw = fields.get("recordings", "")
    recordings = [x for x in str(raw).split() if x][:200]
    case = text(fields, "case", "marks.case", required=False, limit=FIELD_MAX)
    if bool(recordings) == bool(case):
        raise Problem(t("marks.err.what"))
    if not all(_RECORDING.match(r) for r in recordings):
        raise Problem(t("marks.err.what"))
    args: dict[str, Any] = {
        "by": person().id,
        "pin": pin(fields, "pin", "supervisor.your_pin"),
        "category": category,
        "reason": text(fields, "reason", "marks.reason", limit=REASON_MAX),
    }
    if case:
        args["case"] = case
    else:
        args["recordings"] = recordings
    return act("access.mark", args)


def release(mark_id: int, fields: Mapping[str, Any]) -> Any:
    args = {"mark_id": mark_id, "supervisor": person().id,
            "pin": pin(fields, "pin", "supervisor.your_pin"),
            "reason": text(fields, "reason", "marks.reason", limit=REASON_MAX)}  # fmt: skip
    return act("access.unmark", args)


def _page(status: int = 200, **extra: Any) -> tuple[str, int]:
    page = render_template(
        "supervisor/marks.html", marks=access.marks(dock().store), categories=access.CATEGORIES,
        may_release=SUPERVISOR in person().roles, **extra,
    )  # fmt: skip
    return page, status


@bp.get("/marks")
@require_role(SUPERVISOR, KEEPER)
def marks() -> tuple[str, int]:
    return _page()


@bp.post("/marks")
@require_role(SUPERVISOR, KEEPER)
def add_mark() -> tuple[str, int]:
    fields = form_or_json()
    try:
        made = mark(fields)
    except Problem as p:
        typed = {k: v for k, v in fields.items() if "pin" not in k}
        return _page(p.status, problem=p.message, typed=typed)
    return _page(done=t("marks.done", ids=", ".join(map(str, made or []))))


@bp.post("/marks/<int:mark_id>/release")
@require_role(SUPERVISOR)
def release_mark(mark_id: int) -> tuple[str, int]:
    try:
        release(mark_id, form_or_json())
    except Problem as p:
        return _page(p.status, problem=p.message)
    return _page(done=t("marks.released", mark=mark_id))


MESSAGES: dict[str, dict[str, str]] = {
    "marks.title": {"en": "Confidentiality marks", "zh": "保密标记"},
    "marks.hint": {
        "en": "Recordings with state or commercial secrets or personal privacy: marked "
        "recordings are hidden from other officers, need a second supervisor to approve "
        "and a confirmation to copy or export; the export's description states the mark.",
        "zh": "涉及国家秘密、商业秘密或个人隐私的录像：作标记后对其他民警不可见，"
        "审批须另一名主管，复制或导出须确认，导出说明注明标记。",
    },
    "marks.list": {"en": "Marks in force", "zh": "生效中的标记"},
    "marks.none": {"en": "No marks in force.", "zh": "暂无生效的标记。"},
    "marks.what": {"en": "Marked", "zh": "标记对象"},
    "marks.category": {"en": "Category", "zh": "类别"},
    "marks.category.state_secret": {"en": "state secret", "zh": "国家秘密"},
    "marks.category.commercial_secret": {"en": "commercial secret", "zh": "商业秘密"},
    "marks.category.personal_privacy": {"en": "personal privacy", "zh": "个人隐私"},
    "marks.reason": {"en": "Reason", "zh": "理由"},
    "marks.by": {"en": "By", "zh": "标记人"},
    "marks.case": {"en": "or a case number", "zh": "或案件编号"},
    "marks.recordings": {"en": "Recordings (SERIAL:RECORDING)", "zh": "录像（序列号:录像编号）"},
    "marks.new": {"en": "Mark confidential", "zh": "作保密标记"},
    "marks.send": {"en": "Mark", "zh": "标记"},
    "marks.release": {"en": "Release", "zh": "解除"},
    "marks.done": {"en": "Marked (mark {ids}).", "zh": "已标记（标记 {ids}）。"},
    "marks.released": {"en": "Mark {mark} released.", "zh": "标记 {mark} 已解除。"},
    "marks.err.choice": {"en": "Choose one of the categories.", "zh": "请选择所列类别之一。"},
    "marks.err.what": {
        "en": "Give recordings (SERIAL:RECORDING) or one case number, not both.",
        "zh": "请给出录像（序列号:录像编号）或一个案件编号，二者择一。",
    },
}
i18n.register(MESSAGES, "web_status.supervisor.marks")
